//! `vmc_container_t`: an immutable snapshot of one container record, and
//! `vmc_container_list_t`. Strings read from a snapshot are borrowed: valid
//! until the snapshot (or the list holding it) is freed.

use std::ffi::{c_char, CString};
use std::ptr;

use vmcontainer::Container;

use crate::error::{vmc_error_code_t, vmc_error_t, Failure};
use crate::ffi::{self, guard, guard_value, malloc_bytes, obj, out_arg, to_cstring};
use crate::types::{static_name, vmc_image_format_t, vmc_status_t};

/// A snapshot of a container record (it does not change when the container
/// does: fetch a new one with `vmc_manager_get`). Release with
/// `vmc_container_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_container_t {
    record: Container,
    id: CString,
    name: CString,
    image: CString,
    started_at: CString,
    stopped_at: Option<CString>,
    ssh_key: Option<CString>,
    hypervisor: Option<CString>,
    accel: Option<CString>,
    exit_reason: Option<CString>,
    snapshot: Option<CString>,
    volumes: Vec<(CString, CString)>,
}

/// A timestamp exactly as the state file writes it (RFC 3339).
fn timestamp(t: &impl serde::Serialize) -> CString {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::String(s)) => to_cstring(s),
        _ => CString::default(),
    }
}

impl vmc_container_t {
    pub(crate) fn new(record: Container) -> Self {
        let opt = |s: &Option<String>| s.as_deref().map(to_cstring);
        vmc_container_t {
            id: to_cstring(record.id.as_str()),
            name: to_cstring(record.name.as_str()),
            image: to_cstring(record.image.as_str()),
            started_at: timestamp(&record.started_at),
            stopped_at: record.stopped_at.as_ref().map(timestamp),
            ssh_key: opt(&record.ssh_key),
            hypervisor: opt(&record.hypervisor),
            accel: opt(&record.accel),
            exit_reason: opt(&record.exit_reason),
            snapshot: opt(&record.snapshot),
            volumes: record
                .volumes
                .iter()
                .map(|(h, g)| (to_cstring(h.as_str()), to_cstring(g.as_str())))
                .collect(),
            record,
        }
    }
}

/// Reads a field of a possibly-NULL container.
fn field<T>(c: *const vmc_container_t, fallback: T, f: impl FnOnce(&vmc_container_t) -> T) -> T {
    // SAFETY: every accessor's contract: NULL or a live snapshot.
    guard_value(fallback, || unsafe { c.as_ref() }.map(f))
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

/// The container's ID (8 lowercase hex characters). NULL for NULL.
///
/// # Safety
/// `c` is NULL or a live `vmc_container_t` (also for the accessors below).
#[no_mangle]
pub unsafe extern "C" fn vmc_container_id(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| c.id.as_ptr())
}

/// The container's name (the ID when none was given). NULL for NULL.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_name(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| c.name.as_ptr())
}

/// The absolute image path the container was run from. NULL for NULL.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_image(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| c.image.as_ptr())
}

/// The status at the time of the snapshot; `VMC_STATUS_ERROR` for NULL.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_status(c: *const vmc_container_t) -> vmc_status_t {
    field(c, vmc_status_t::VMC_STATUS_ERROR, |c| {
        c.record.status.into()
    })
}

/// The status as its state-file string (`"running"`, ...): static, never
/// freed. NULL for NULL.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_status_name(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| {
        static_name(c.record.status.as_str()).as_ptr()
    })
}

/// PID of the hypervisor process (0 when unknown or for NULL).
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_pid(c: *const vmc_container_t) -> i32 {
    field(c, 0, |c| c.record.pid)
}

/// Memory in MB (0 for NULL).
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_memory_mb(c: *const vmc_container_t) -> u32 {
    field(c, 0, |c| c.record.memory)
}

/// Number of virtual CPUs (0 for NULL).
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_cpus(c: *const vmc_container_t) -> u32 {
    field(c, 0, |c| c.record.cpus)
}

/// Loopback host port forwarded to the guest's SSH port (0 for NULL).
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_ssh_port(c: *const vmc_container_t) -> u16 {
    field(c, 0, |c| c.record.ssh_port)
}

/// Path of the private key `exec` uses; NULL when none was given.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_ssh_key(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| opt_ptr(&c.ssh_key))
}

/// Hypervisor name (`"qemu"`, `"hyperkit"`); NULL when not recorded.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_hypervisor(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| opt_ptr(&c.hypervisor))
}

/// Accelerator chosen at start (`"kvm"`, `"hvf"`, `"tcg"`); NULL when not
/// recorded.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_accel(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| opt_ptr(&c.accel))
}

/// The snapshot the container was resumed from; NULL when it booted an
/// image.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_snapshot(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| opt_ptr(&c.snapshot))
}

/// Detected image format (`VMC_IMAGE_FORMAT_UNKNOWN` when not recorded or
/// for NULL).
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_format(c: *const vmc_container_t) -> vmc_image_format_t {
    field(c, vmc_image_format_t::VMC_IMAGE_FORMAT_UNKNOWN, |c| {
        c.record
            .format
            .map_or(vmc_image_format_t::VMC_IMAGE_FORMAT_UNKNOWN, Into::into)
    })
}

/// When the VM was (last) started, RFC 3339 in UTC as in the state file.
/// NULL for NULL.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_started_at(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| c.started_at.as_ptr())
}

/// When the VM was seen to stop, RFC 3339; NULL when it has not stopped.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_stopped_at(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| opt_ptr(&c.stopped_at))
}

/// Stores the hypervisor's exit code in `*code` and returns true when it is
/// known (foreground runs); false otherwise (and for NULL arguments).
///
/// # Safety
/// See `vmc_container_id`; `code` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_exit_code(
    c: *const vmc_container_t,
    code: *mut i32,
) -> bool {
    match field(c, None, |c| c.record.exit_code) {
        Some(v) if !code.is_null() => {
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { code.write(v) };
            true
        }
        _ => false,
    }
}

/// Stores the signal that ended the hypervisor in `*signal` and returns
/// true when one did (status `killed`, or a `stop` that had to signal);
/// false otherwise (and for NULL arguments).
///
/// # Safety
/// See `vmc_container_id`; `signal` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_exit_signal(
    c: *const vmc_container_t,
    signal: *mut i32,
) -> bool {
    match field(c, None, |c| c.record.exit_signal) {
        Some(v) if !signal.is_null() => {
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { signal.write(v) };
            true
        }
        _ => false,
    }
}

/// How the VM ended, in words (for example "stopped: the guest powered
/// off"); NULL while it has not ended or when unknown.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_exit_reason(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| opt_ptr(&c.exit_reason))
}

/// Number of forwarded ports (SSH not included).
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_port_count(c: *const vmc_container_t) -> usize {
    field(c, 0, |c| c.record.ports.len())
}

/// Port forward `index` (ordered by host port): stores it in `*host` and
/// `*guest` and returns true; false when out of range or an argument is
/// NULL.
///
/// # Safety
/// See `vmc_container_id`; `host` and `guest` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_port_at(
    c: *const vmc_container_t,
    index: usize,
    host: *mut u16,
    guest: *mut u16,
) -> bool {
    let Some((h, g)) = field(c, None, |c| {
        c.record.ports.iter().nth(index).map(|(h, g)| (*h, *g))
    }) else {
        return false;
    };
    if host.is_null() || guest.is_null() {
        return false;
    }
    // SAFETY: checked non-NULL; the caller guarantees they are writable.
    unsafe {
        host.write(h);
        guest.write(g);
    }
    true
}

/// Number of shared directories.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_volume_count(c: *const vmc_container_t) -> usize {
    field(c, 0, |c| c.volumes.len())
}

/// Shared directory `index` (ordered by host path): stores borrowed
/// strings in `*host` and `*guest` and returns true; false when out of
/// range or an argument is NULL.
///
/// # Safety
/// See `vmc_container_id`; `host` and `guest` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_volume_at(
    c: *const vmc_container_t,
    index: usize,
    host: *mut *const c_char,
    guest: *mut *const c_char,
) -> bool {
    let Some((h, g)) = field(c, None, |c| {
        c.volumes.get(index).map(|(h, g)| (h.as_ptr(), g.as_ptr()))
    }) else {
        return false;
    };
    if host.is_null() || guest.is_null() {
        return false;
    }
    // SAFETY: checked non-NULL; the caller guarantees they are writable.
    unsafe {
        host.write(h);
        guest.write(g);
    }
    true
}

/// The whole record as JSON, exactly as the state file holds it (including
/// fields this header has no accessor for). Free `*json` with
/// `vmc_string_free`.
///
/// # Safety
/// `c` is NULL or a live snapshot; `json` and `err` are NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_container_to_json(
    c: *const vmc_container_t,
    json: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let c = obj(c, "container")?;
            let out = out_arg(json, "json")?;
            let text = serde_json::to_string(&c.record)
                .map_err(|e| Failure::internal(format!("serializing container: {e}")))?;
            out.set(malloc_bytes(text.as_bytes())?);
            Ok(())
        })
    }
}

/// Releases a snapshot. NULL is ignored. Never free a snapshot borrowed
/// from a list.
///
/// # Safety
/// `c` is NULL or a snapshot returned through a `vmc_container_t **`, freed
/// only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_free(c: *mut vmc_container_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(c) }
}

/// Snapshots of several containers (`vmc_manager_list`). Release with
/// `vmc_container_list_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_container_list_t {
    pub(crate) items: Vec<vmc_container_t>,
}

/// Number of containers in `list` (0 for NULL).
///
/// # Safety
/// `list` is NULL or a live list.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_list_len(list: *const vmc_container_list_t) -> usize {
    // SAFETY: forwarded caller guarantee.
    guard_value(0, || unsafe { list.as_ref() }.map(|l| l.items.len()))
}

/// Container `index` of `list`, borrowed: valid until the list is freed,
/// and not to be freed itself. NULL when out of range or for NULL.
///
/// # Safety
/// `list` is NULL or a live list.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_list_get(
    list: *const vmc_container_list_t,
    index: usize,
) -> *const vmc_container_t {
    guard_value(ptr::null(), || {
        // SAFETY: forwarded caller guarantee.
        let l = unsafe { list.as_ref() }?;
        l.items.get(index).map(|c| c as *const _)
    })
}

/// Releases a list and every snapshot in it. NULL is ignored.
///
/// # Safety
/// `list` is NULL or a list from `vmc_manager_list`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_list_free(list: *mut vmc_container_list_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(list) }
}
