//! VM snapshots (`vmc_snapshot_t`, `vmc_snapshot_list_t`), resuming one
//! as a new container, and committing a container's disk. Strings read
//! from a `vmc_snapshot_t` are borrowed: valid until it (or the list
//! holding it) is freed.

use std::ffi::{c_char, c_void, CString};
use std::path::Path;
use std::ptr;

use vmcontainer::Snapshot;

use crate::container::vmc_container_t;
use crate::error::{vmc_error_code_t, vmc_error_t, Failure};
use crate::ffi::{
    self, guard, guard_value, into_handle, malloc_bytes, obj, opt_out_arg, out_arg, str_arg,
    to_cstring,
};
use crate::manager::{output_sink, vmc_manager_t, vmc_output_fn};
use crate::options::vmc_run_options_t;

/// A saved VM (memory, devices and disk at one instant) under the home's
/// `snapshots/` directory, as it was when read. Release with
/// `vmc_snapshot_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_snapshot_t {
    meta: Snapshot,
    name: CString,
    source_id: CString,
    source_name: CString,
    image: CString,
    created_at: CString,
    qemu_version: CString,
    machine: CString,
    path: CString,
}

impl vmc_snapshot_t {
    fn new(meta: Snapshot) -> Self {
        let created = match serde_json::to_value(meta.created_at) {
            Ok(serde_json::Value::String(s)) => to_cstring(s),
            _ => CString::default(),
        };
        vmc_snapshot_t {
            name: to_cstring(meta.name.as_str()),
            source_id: to_cstring(meta.source_id.as_str()),
            source_name: to_cstring(meta.source_name.as_str()),
            image: to_cstring(meta.image.as_str()),
            created_at: created,
            qemu_version: to_cstring(meta.qemu_version.as_str()),
            machine: to_cstring(meta.machine.as_str()),
            path: to_cstring(
                meta.path
                    .as_deref()
                    .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
                    .unwrap_or_default(),
            ),
            meta,
        }
    }
}

/// Reads a field of a possibly-NULL snapshot.
fn field<T>(s: *const vmc_snapshot_t, fallback: T, f: impl FnOnce(&vmc_snapshot_t) -> T) -> T {
    // SAFETY: every accessor's contract: NULL or a live snapshot.
    guard_value(fallback, || unsafe { s.as_ref() }.map(f))
}

/// The snapshot's name. NULL for NULL.
///
/// # Safety
/// `s` is NULL or a live `vmc_snapshot_t` (also for the accessors below).
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_name(s: *const vmc_snapshot_t) -> *const c_char {
    field(s, ptr::null(), |s| s.name.as_ptr())
}

/// ID of the container it was taken from. NULL for NULL.
///
/// # Safety
/// See `vmc_snapshot_name`.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_source_id(s: *const vmc_snapshot_t) -> *const c_char {
    field(s, ptr::null(), |s| s.source_id.as_ptr())
}

/// Name of that container when the snapshot was taken. NULL for NULL.
///
/// # Safety
/// See `vmc_snapshot_name`.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_source_name(s: *const vmc_snapshot_t) -> *const c_char {
    field(s, ptr::null(), |s| s.source_name.as_ptr())
}

/// The image the source booted (still needed to resume). NULL for NULL.
///
/// # Safety
/// See `vmc_snapshot_name`.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_image(s: *const vmc_snapshot_t) -> *const c_char {
    field(s, ptr::null(), |s| s.image.as_ptr())
}

/// When it was taken, RFC 3339 in UTC. NULL for NULL.
///
/// # Safety
/// See `vmc_snapshot_name`.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_created_at(s: *const vmc_snapshot_t) -> *const c_char {
    field(s, ptr::null(), |s| s.created_at.as_ptr())
}

/// Memory in MB that every VM resumed from it has (0 for NULL).
///
/// # Safety
/// See `vmc_snapshot_name`.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_memory_mb(s: *const vmc_snapshot_t) -> u32 {
    field(s, 0, |s| s.meta.memory)
}

/// vCPUs that every VM resumed from it has (0 for NULL).
///
/// # Safety
/// See `vmc_snapshot_name`.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_cpus(s: *const vmc_snapshot_t) -> u32 {
    field(s, 0, |s| s.meta.cpus)
}

/// Bytes its files take on disk (0 for NULL).
///
/// # Safety
/// See `vmc_snapshot_name`.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_size_bytes(s: *const vmc_snapshot_t) -> u64 {
    field(s, 0, |s| s.meta.size)
}

/// QEMU version that saved it (resuming needs the same). NULL for NULL.
///
/// # Safety
/// See `vmc_snapshot_name`.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_qemu_version(s: *const vmc_snapshot_t) -> *const c_char {
    field(s, ptr::null(), |s| s.qemu_version.as_ptr())
}

/// QEMU machine type it was saved from. NULL for NULL.
///
/// # Safety
/// See `vmc_snapshot_name`.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_machine(s: *const vmc_snapshot_t) -> *const c_char {
    field(s, ptr::null(), |s| s.machine.as_ptr())
}

/// The snapshot's directory. NULL for NULL.
///
/// # Safety
/// See `vmc_snapshot_name`.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_path(s: *const vmc_snapshot_t) -> *const c_char {
    field(s, ptr::null(), |s| s.path.as_ptr())
}

/// The whole metadata as JSON (`snapshot.json` plus `path` and `size`).
/// Free `*json` with `vmc_string_free`.
///
/// # Safety
/// `s` is NULL or a live snapshot; `json` and `err` are NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_snapshot_to_json(
    s: *const vmc_snapshot_t,
    json: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let s = obj(s, "snapshot")?;
            let out = out_arg(json, "json")?;
            let text = serde_json::to_string(&s.meta)
                .map_err(|e| Failure::internal(format!("serializing snapshot: {e}")))?;
            out.set(malloc_bytes(text.as_bytes())?);
            Ok(())
        })
    }
}

/// Releases a snapshot. NULL is ignored. Never free one borrowed from a
/// list.
///
/// # Safety
/// `s` is NULL or returned through a `vmc_snapshot_t **`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_free(s: *mut vmc_snapshot_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(s) }
}

/// Several snapshots (`vmc_manager_snapshot_list`). Release with
/// `vmc_snapshot_list_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_snapshot_list_t {
    items: Vec<vmc_snapshot_t>,
}

/// Number of snapshots in `list` (0 for NULL).
///
/// # Safety
/// `list` is NULL or a live list.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_list_len(list: *const vmc_snapshot_list_t) -> usize {
    // SAFETY: forwarded caller guarantee.
    guard_value(0, || unsafe { list.as_ref() }.map(|l| l.items.len()))
}

/// Snapshot `index` of `list`, borrowed: valid until the list is freed,
/// and not to be freed itself. NULL when out of range or for NULL.
///
/// # Safety
/// `list` is NULL or a live list.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_list_get(
    list: *const vmc_snapshot_list_t,
    index: usize,
) -> *const vmc_snapshot_t {
    guard_value(ptr::null(), || {
        // SAFETY: forwarded caller guarantee.
        let l = unsafe { list.as_ref() }?;
        l.items.get(index).map(|s| s as *const _)
    })
}

/// Releases a list and every snapshot in it. NULL is ignored.
///
/// # Safety
/// `list` is NULL or a list from `vmc_manager_snapshot_list`, freed only
/// once.
#[no_mangle]
pub unsafe extern "C" fn vmc_snapshot_list_free(list: *mut vmc_snapshot_list_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(list) }
}

/// Snapshots running container `reference` as `name` (letters, digits,
/// `_.-`, starting with a letter or digit): its memory, devices and disk
/// at one instant. The container keeps running (paused only while its
/// state is written). Name taken, bad name → `VMC_ERROR_INVALID_INPUT`;
/// not running → `VMC_ERROR_NOT_RUNNING`. A failure (e.g. disk full)
/// leaves no snapshot behind. `out` may be NULL; otherwise free `*out`
/// with `vmc_snapshot_free`.
///
/// # Safety
/// `m` is a live manager; `reference` and `name` C strings; `out` and
/// `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_snapshot_create(
    m: *const vmc_manager_t,
    reference: *const c_char,
    name: *const c_char,
    out: *mut *mut vmc_snapshot_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let name = str_arg(name, "name")?;
            let out = opt_out_arg(out);
            let s = m.inner.snapshot_create(reference, name)?;
            if let Some(out) = out {
                out.set(into_handle(vmc_snapshot_t::new(s)));
            }
            Ok(())
        })
    }
}

/// Every snapshot, oldest first. Free `*out` with `vmc_snapshot_list_free`.
///
/// # Safety
/// `m` is a live manager; `out` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_snapshot_list(
    m: *const vmc_manager_t,
    out: *mut *mut vmc_snapshot_list_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let out = out_arg(out, "out")?;
            let items = m
                .inner
                .snapshot_list()?
                .into_iter()
                .map(vmc_snapshot_t::new)
                .collect();
            out.set(into_handle(vmc_snapshot_list_t { items }));
            Ok(())
        })
    }
}

/// Snapshot `name`. Unknown → `VMC_ERROR_NOT_FOUND`. Free `*out` with
/// `vmc_snapshot_free`.
///
/// # Safety
/// `m` is a live manager; `name` a C string; `out` writable; `err` NULL or
/// writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_snapshot_get(
    m: *const vmc_manager_t,
    name: *const c_char,
    out: *mut *mut vmc_snapshot_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let name = str_arg(name, "name")?;
            let out = out_arg(out, "out")?;
            let s = m.inner.snapshot_get(name)?;
            out.set(into_handle(vmc_snapshot_t::new(s)));
            Ok(())
        })
    }
}

/// Deletes snapshot `name`. Unknown → `VMC_ERROR_NOT_FOUND`; still the
/// base of containers → `VMC_ERROR_INVALID_INPUT`, naming them.
///
/// # Safety
/// `m` is a live manager; `name` a C string; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_snapshot_remove(
    m: *const vmc_manager_t,
    name: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let name = str_arg(name, "name")?;
            m.inner.snapshot_remove(name)?;
            Ok(())
        })
    }
}

/// Starts a new container that resumes snapshot `name` where its source
/// was. `opts` (NULL: the defaults) gives name, ports, SSH port and key;
/// memory, CPUs and volumes are the snapshot's (other values →
/// `VMC_ERROR_INVALID_INPUT`, as is a snapshot this QEMU or device set
/// cannot resume). Detached, it returns once the guest runs; otherwise
/// when the VM exits. Free `*out` with `vmc_container_free`.
///
/// # Safety
/// `m` is a live manager; `name` a C string; `opts` NULL or live; `out`
/// writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_run_snapshot(
    m: *const vmc_manager_t,
    name: *const c_char,
    opts: *const vmc_run_options_t,
    out: *mut *mut vmc_container_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let name = str_arg(name, "name")?;
            let out = out_arg(out, "out")?;
            let opts = opts
                .as_ref()
                .map_or_else(Default::default, |o| o.inner.clone());
            let c = m.inner.run_snapshot(name, opts)?;
            out.set(into_handle(vmc_container_t::new(c)));
            Ok(())
        })
    }
}

/// `vmc_manager_run_snapshot` in the foreground (whatever `opts` says
/// about detaching), passing the resumed VM's serial output to `on_output`
/// as it arrives, until the VM exits; as `vmc_manager_run_attached` does
/// for an image (a manager bound to a cancelled token stops the VM). Free
/// `*out` with `vmc_container_free`.
///
/// # Safety
/// As for `vmc_manager_run_snapshot`; `on_output` is a valid function and
/// `user_data` is whatever it expects.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_run_snapshot_attached(
    m: *const vmc_manager_t,
    name: *const c_char,
    opts: *const vmc_run_options_t,
    on_output: vmc_output_fn,
    user_data: *mut c_void,
    out: *mut *mut vmc_container_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let name = str_arg(name, "name")?;
            let mut sink = output_sink(on_output, user_data)?;
            let out = out_arg(out, "out")?;
            let opts = opts
                .as_ref()
                .map_or_else(Default::default, |o| o.inner.clone());
            // The core calls `sink` on this thread.
            let c = m.inner.run_snapshot_attached(name, opts, &mut sink)?;
            out.set(into_handle(vmc_container_t::new(c)));
            Ok(())
        })
    }
}

/// Writes container `reference`'s disk, flattened, to `path` (a new
/// `.qcow2` file that must not exist) as a standalone image that boots
/// on its own. A running container is paused while its disk is copied.
///
/// # Safety
/// `m` is a live manager; `reference` and `path` C strings; `err` NULL or
/// writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_commit(
    m: *const vmc_manager_t,
    reference: *const c_char,
    path: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let path = str_arg(path, "path")?;
            m.inner.commit(reference, Path::new(path))?;
            Ok(())
        })
    }
}
