//! `vmc_container_t`: an immutable snapshot of one container record, and
//! `vmc_container_list_t`. Strings read from a snapshot are borrowed: valid
//! until the snapshot (or the list holding it) is freed.

use std::ffi::{c_char, CString};
use std::net::IpAddr;
use std::ptr;
use std::sync::OnceLock;

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
    /// NUL-terminated copies for the accessors, made on first use: a list
    /// read through `vmc_container_list_views` never needs them.
    strings: OnceLock<Strings>,
    ports: Vec<vmc_port_t>,
}

/// The C strings of a snapshot.
#[derive(Debug)]
struct Strings {
    id: CString,
    name: CString,
    image: CString,
    started_at: CString,
    stopped_at: Option<CString>,
    ssh_key: Option<CString>,
    hypervisor: Option<CString>,
    accel: Option<CString>,
    status: CString,
    port_binds: Vec<CString>,
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

impl Strings {
    fn new(record: &Container) -> Self {
        let opt = |s: &Option<String>| s.as_deref().map(to_cstring);
        Strings {
            id: to_cstring(record.id.as_str()),
            name: to_cstring(record.name.as_str()),
            image: to_cstring(record.image.as_str()),
            started_at: timestamp(&record.started_at),
            stopped_at: record.stopped_at.as_ref().map(timestamp),
            ssh_key: opt(&record.ssh_key),
            hypervisor: opt(&record.hypervisor),
            accel: opt(&record.accel),
            status: to_cstring(record.status.as_str()),
            port_binds: record
                .port_forwards()
                .iter()
                .map(|(bind, _, _)| to_cstring(bind.to_string()))
                .collect(),
            exit_reason: opt(&record.exit_reason),
            snapshot: opt(&record.snapshot),
            volumes: record
                .volumes
                .iter()
                .map(|(h, g)| (to_cstring(h.as_str()), to_cstring(g.as_str())))
                .collect(),
        }
    }
}

/// An address as the view structs carry it: family 4 or 6 and 16 bytes.
fn address_bytes(a: IpAddr) -> (u8, [u8; 16]) {
    match a {
        IpAddr::V4(a) => {
            let mut b = [0; 16];
            b[..4].copy_from_slice(&a.octets());
            (4, b)
        }
        IpAddr::V6(a) => (6, a.octets()),
    }
}

impl vmc_container_t {
    pub(crate) fn new(record: Container) -> Self {
        vmc_container_t {
            ports: record
                .port_forwards()
                .into_iter()
                .map(|(bind, host, guest)| {
                    let (bind_family, bind_address) = address_bytes(bind);
                    vmc_port_t {
                        host,
                        guest,
                        bind_family,
                        bind_address,
                    }
                })
                .collect(),
            strings: OnceLock::new(),
            record,
        }
    }

    fn s(&self) -> &Strings {
        self.strings.get_or_init(|| Strings::new(&self.record))
    }

    /// Every field at once, borrowing from the snapshot.
    fn view(&self) -> vmc_container_view_t {
        let text = |s: &str| (s.as_ptr().cast::<c_char>(), s.len());
        let opt = |s: &Option<String>| s.as_deref().map_or((ptr::null(), 0), text);
        let nanos = |t: &chrono::DateTime<chrono::Utc>| t.timestamp_nanos_opt().unwrap_or(0);
        let r = &self.record;
        let (id, id_len) = text(&r.id);
        let (name, name_len) = text(&r.name);
        let (image, image_len) = text(&r.image);
        let (ssh_key, ssh_key_len) = opt(&r.ssh_key);
        let (hypervisor, hypervisor_len) = opt(&r.hypervisor);
        let (accel, accel_len) = opt(&r.accel);
        let (exit_reason, exit_reason_len) = opt(&r.exit_reason);
        let (status_text, status_text_len) = text(r.status.as_str());
        let (snapshot, snapshot_len) = opt(&r.snapshot);
        let (bind_family, bind_address) = r.bind_address.map_or((0, [0; 16]), address_bytes);
        vmc_container_view_t {
            id,
            id_len,
            name,
            name_len,
            image,
            image_len,
            status: static_name(r.status.as_str()).as_ptr(),
            status_text,
            status_text_len,
            snapshot,
            snapshot_len,
            ssh_key,
            ssh_key_len,
            hypervisor,
            hypervisor_len,
            accel,
            accel_len,
            format: r
                .format
                .map_or(vmc_image_format_t::VMC_IMAGE_FORMAT_UNKNOWN, Into::into),
            pid: r.pid,
            memory_mb: r.memory,
            cpus: r.cpus,
            ssh_port: r.ssh_port,
            started_at_unix_nanos: nanos(&r.started_at),
            has_stopped_at: r.stopped_at.is_some(),
            stopped_at_unix_nanos: r.stopped_at.as_ref().map_or(0, nanos),
            has_exit_code: r.exit_code.is_some(),
            exit_code: r.exit_code.unwrap_or(0),
            has_exit_signal: r.exit_signal.is_some(),
            exit_signal: r.exit_signal.unwrap_or(0),
            exit_reason,
            exit_reason_len,
            bind_family,
            bind_address,
            ports: if self.ports.is_empty() {
                ptr::null()
            } else {
                self.ports.as_ptr()
            },
            port_count: self.ports.len(),
            volume_count: r.volumes.len(),
        }
    }
}

/// One forwarded port: host port → guest port.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct vmc_port_t {
    /// Host TCP port.
    pub host: u16,
    /// Guest TCP port.
    pub guest: u16,
    /// 4: the host port listens on the IPv4 address in
    /// `bind_address[0..4]`; 6: on the IPv6 address in `bind_address`.
    /// Bindings read the address from here rather than parsing
    /// `vmc_container_port_bind_address`'s text for every port.
    pub bind_family: u8,
    /// The listen address (see `bind_family`).
    pub bind_address: [u8; 16],
}

/// Every field of a snapshot at once, for language bindings that would
/// otherwise make one call per field (`vmc_container_view`,
/// `vmc_container_list_views`). Everything is borrowed from the snapshot
/// (valid until it or its list is freed). Strings are given as pointer and
/// length and are NOT NUL-terminated, except `status`; an absent optional
/// string is NULL with length 0. Times are nanoseconds since the Unix
/// epoch (UTC).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct vmc_container_view_t {
    /// The ID (8 lowercase hex characters).
    pub id: *const c_char,
    /// Its length in bytes.
    pub id_len: usize,
    /// The name.
    pub name: *const c_char,
    /// Its length in bytes.
    pub name_len: usize,
    /// The absolute image path.
    pub image: *const c_char,
    /// Its length in bytes.
    pub image_len: usize,
    /// The status as its state-file string, NUL-terminated and static
    /// (`"running"`, ...; later versions may add values). A status this
    /// library does not know reads `"unknown"` here; `status_text` keeps
    /// what the record says.
    pub status: *const c_char,
    /// The status exactly as recorded (as `vmc_container_status_name`).
    pub status_text: *const c_char,
    /// Its length in bytes.
    pub status_text_len: usize,
    /// The snapshot the container was started from, or NULL.
    pub snapshot: *const c_char,
    /// Its length in bytes.
    pub snapshot_len: usize,
    /// The private key `exec` uses, or NULL.
    pub ssh_key: *const c_char,
    /// Its length in bytes.
    pub ssh_key_len: usize,
    /// The hypervisor name, or NULL.
    pub hypervisor: *const c_char,
    /// Its length in bytes.
    pub hypervisor_len: usize,
    /// The accelerator, or NULL.
    pub accel: *const c_char,
    /// Its length in bytes.
    pub accel_len: usize,
    /// The image format.
    pub format: vmc_image_format_t,
    /// PID of the hypervisor process (0 when unknown).
    pub pid: i32,
    /// Memory in MiB.
    pub memory_mb: u32,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Loopback host port of the guest's SSH.
    pub ssh_port: u16,
    /// When the VM was (last) started.
    pub started_at_unix_nanos: i64,
    /// Whether `stopped_at_unix_nanos` is set.
    pub has_stopped_at: bool,
    /// When the VM was seen to stop.
    pub stopped_at_unix_nanos: i64,
    /// Whether `exit_code` is set.
    pub has_exit_code: bool,
    /// The hypervisor's exit code (foreground runs).
    pub exit_code: i32,
    /// Whether `exit_signal` is set.
    pub has_exit_signal: bool,
    /// The signal that ended the hypervisor, when one did.
    pub exit_signal: i32,
    /// How the VM ended, in words, or NULL.
    pub exit_reason: *const c_char,
    /// Its length in bytes.
    pub exit_reason_len: usize,
    /// 0: no listen address recorded; 4: IPv4 in `bind_address[0..4]`; 6:
    /// IPv6 in `bind_address`.
    pub bind_family: u8,
    /// The address forwarded ports listen on (see `bind_family`).
    pub bind_address: [u8; 16],
    /// The forwarded ports, ordered by host port (NULL when none).
    pub ports: *const vmc_port_t,
    /// Number of entries in `ports`.
    pub port_count: usize,
    /// Number of shared directories (`vmc_container_volume_at`).
    pub volume_count: usize,
}

/// Fills `*view` with every field of `c` and returns true; false for NULL
/// arguments.
///
/// # Safety
/// `c` is NULL or a live snapshot; `view` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_view(
    c: *const vmc_container_t,
    view: *mut vmc_container_view_t,
) -> bool {
    if view.is_null() {
        return false;
    }
    match field(c, None, |c| Some(c.view())) {
        Some(v) => {
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { view.write(v) };
            true
        }
        None => false,
    }
}

/// Fills `views[0..n]` with the fields of the first `n` containers of
/// `list`, where `n` is the smaller of `capacity` and the list's length,
/// and returns `n` (0 for NULL arguments). One call reads a whole list.
///
/// # Safety
/// `list` is NULL or a live list; `views` is NULL or writable for
/// `capacity` elements.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_list_views(
    list: *const vmc_container_list_t,
    views: *mut vmc_container_view_t,
    capacity: usize,
) -> usize {
    if views.is_null() {
        return 0;
    }
    guard_value(0, || {
        // SAFETY: forwarded caller guarantee.
        let l = unsafe { list.as_ref() }?;
        let n = l.items.len().min(capacity);
        for (i, c) in l.items.iter().take(n).enumerate() {
            // SAFETY: `i < capacity`, and the caller guarantees `views` is
            // writable for `capacity` elements.
            unsafe { views.add(i).write(c.view()) };
        }
        Some(n)
    })
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
    field(c, ptr::null(), |c| c.s().id.as_ptr())
}

/// The container's name (the ID when none was given). NULL for NULL.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_name(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| c.s().name.as_ptr())
}

/// The absolute image path the container was run from. NULL for NULL.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_image(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| c.s().image.as_ptr())
}

/// The status at the time of the snapshot; `VMC_STATUS_ERROR` for NULL.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_status(c: *const vmc_container_t) -> vmc_status_t {
    field(c, vmc_status_t::VMC_STATUS_ERROR, |c| {
        (&c.record.status).into()
    })
}

/// The status as its state-file string (`"running"`, ...; for
/// `VMC_STATUS_UNKNOWN` the text the file holds), borrowed from the
/// snapshot. NULL for NULL.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_status_name(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| c.s().status.as_ptr())
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
    field(c, ptr::null(), |c| opt_ptr(&c.s().ssh_key))
}

/// Hypervisor name (`"qemu"`, `"hyperkit"`); NULL when not recorded.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_hypervisor(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| opt_ptr(&c.s().hypervisor))
}

/// Accelerator chosen at start (`"kvm"`, `"hvf"`, `"tcg"`); NULL when not
/// recorded.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_accel(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| opt_ptr(&c.s().accel))
}

/// The snapshot the container was resumed from; NULL when it booted an
/// image.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_snapshot(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| opt_ptr(&c.s().snapshot))
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
    field(c, ptr::null(), |c| c.s().started_at.as_ptr())
}

/// When the VM was seen to stop, RFC 3339; NULL when it has not stopped.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_stopped_at(c: *const vmc_container_t) -> *const c_char {
    field(c, ptr::null(), |c| opt_ptr(&c.s().stopped_at))
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
    field(c, ptr::null(), |c| opt_ptr(&c.s().exit_reason))
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
    let Some((h, g)) = field(c, None, |c| c.ports.get(index).map(|p| (p.host, p.guest))) else {
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

/// The address port forward `index` (ordered by host port, as in
/// `vmc_container_port_at`) listens on, e.g. `"127.0.0.1"` or `"0.0.0.0"`;
/// borrowed from the snapshot. NULL when out of range or for NULL.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_port_bind_address(
    c: *const vmc_container_t,
    index: usize,
) -> *const c_char {
    field(c, ptr::null(), |c| {
        c.s()
            .port_binds
            .get(index)
            .map_or(ptr::null(), |s| s.as_ptr())
    })
}

/// Number of shared directories.
///
/// # Safety
/// See `vmc_container_id`.
#[no_mangle]
pub unsafe extern "C" fn vmc_container_volume_count(c: *const vmc_container_t) -> usize {
    field(c, 0, |c| c.record.volumes.len())
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
        c.s()
            .volumes
            .get(index)
            .map(|(h, g)| (h.as_ptr(), g.as_ptr()))
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
