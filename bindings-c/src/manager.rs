//! `vmc_manager_t` and the container lifecycle: run, start, stop, list,
//! get, inspect, remove, wait until ready. Exec and logs live in their own
//! modules.

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::PathBuf;

use vmcontainer::blocking::Manager;
use vmcontainer::templates::TemplateDirs;
use vmcontainer::{CancelToken, Container, RunOptions};

use crate::container::{vmc_container_list_t, vmc_container_t};
use crate::error::{vmc_error_code_t, vmc_error_t, Failure};
use crate::ffi::FfiResult;
use crate::ffi::{
    self, guard, guard_value, into_handle, malloc_bytes, millis, obj, opt_out_arg, opt_str_arg,
    out_arg, str_arg, str_array_arg, to_cstring, Out,
};
use crate::options::vmc_run_options_t;
use crate::types::{transport_arg, vmc_transport_t};

/// Time `vmc_manager_stop` callers usually give the guest to power off
/// (ACPI) before the hypervisor is signalled.
pub const VMC_DEFAULT_STOP_TIMEOUT_MS: u64 = 10_000;

/// Manages containers under one home directory (the state file, logs and
/// per-container files). Thread-safe: any number of threads may use one
/// manager at once. Release with `vmc_manager_free`; containers keep
/// running after that.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_manager_t {
    pub(crate) inner: Manager,
    home: CString,
    hypervisor: CString,
}

impl vmc_manager_t {
    /// The same manager bound to `token` (see `vmc_manager_with_cancel`).
    pub(crate) fn with_cancel(&self, token: CancelToken) -> Self {
        vmc_manager_t {
            inner: self.inner.with_cancel(token),
            home: self.home.clone(),
            hypervisor: self.hypervisor.clone(),
        }
    }
}

/// Receives serial output of a foreground VM: `len` bytes at `data`,
/// borrowed for the duration of the call. Called on the thread that called
/// `vmc_manager_run_attached`, never after it returns.
#[allow(non_camel_case_types)]
pub type vmc_output_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, data: *const u8, len: usize)>;

/// The core's output sink for a C callback: `on_output` (required) with
/// `user_data`, called on whichever thread runs the sink (the core runs it
/// on the caller's).
///
/// # Safety
/// `on_output` is a valid function and `user_data` is whatever it expects,
/// for as long as the sink lives.
pub(crate) unsafe fn output_sink(
    on_output: vmc_output_fn,
    user_data: *mut c_void,
) -> FfiResult<impl FnMut(&[u8])> {
    let f = on_output.ok_or_else(|| Failure::argument("on_output is NULL"))?;
    Ok(move |b: &[u8]| {
        // SAFETY: the caller guarantees `f` and `user_data` fit together;
        // the chunk outlives the call.
        unsafe { f(user_data, b.as_ptr(), b.len()) }
    })
}

/// Stores a snapshot of `c` in an optional out-parameter.
fn give(out: Option<Out<*mut vmc_container_t>>, c: Container) {
    if let Some(out) = out {
        out.set(into_handle(vmc_container_t::new(c)));
    }
}

/// Creates a manager. `home` is the root directory (NULL:
/// `$VMCONTAINER_HOME`, else `~/.core`); `hypervisor` is `"qemu"` or
/// `"hyperkit"` (NULL: the best one available). A host without any
/// hypervisor still gets a manager (list, logs and remove work; run fails
/// naming what to install). Free `*out` with `vmc_manager_free`.
///
/// # Safety
/// `home` and `hypervisor` are NULL or C strings; `out` is writable; `err`
/// is NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_new(
    home: *const c_char,
    hypervisor: *const c_char,
    out: *mut *mut vmc_manager_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let home = opt_str_arg(home, "home")?.map(PathBuf::from);
            let hypervisor = opt_str_arg(hypervisor, "hypervisor")?;
            let out = out_arg(out, "out")?;
            let inner = Manager::new(home.as_deref(), hypervisor)?;
            let m = vmc_manager_t {
                home: to_cstring(inner.inner().home().root().as_os_str().as_encoded_bytes()),
                hypervisor: to_cstring(inner.inner().hypervisor().name()),
                inner,
            };
            out.set(into_handle(m));
            Ok(())
        })
    }
}

/// Releases a manager. NULL is ignored. Running containers are not
/// affected.
///
/// # Safety
/// `m` is NULL or from `vmc_manager_new`, freed only once, with no call on
/// it still running.
#[no_mangle]
pub unsafe extern "C" fn vmc_manager_free(m: *mut vmc_manager_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(m) }
}

/// The manager's absolute home directory, valid until the manager is
/// freed. NULL for NULL.
///
/// # Safety
/// `m` is NULL or a live manager.
#[no_mangle]
pub unsafe extern "C" fn vmc_manager_home(m: *const vmc_manager_t) -> *const c_char {
    // SAFETY: forwarded caller guarantee.
    guard_value(std::ptr::null(), || {
        unsafe { m.as_ref() }.map(|m| m.home.as_ptr())
    })
}

/// The name of the manager's hypervisor (`"qemu"`, `"hyperkit"`), valid
/// until the manager is freed. NULL for NULL.
///
/// # Safety
/// `m` is NULL or a live manager.
#[no_mangle]
pub unsafe extern "C" fn vmc_manager_hypervisor(m: *const vmc_manager_t) -> *const c_char {
    // SAFETY: forwarded caller guarantee.
    guard_value(std::ptr::null(), || {
        unsafe { m.as_ref() }.map(|m| m.hypervisor.as_ptr())
    })
}

/// The options behind a possibly-NULL pointer (NULL: the defaults).
///
/// # Safety
/// `opts` is NULL or live.
unsafe fn options(opts: *const vmc_run_options_t) -> RunOptions {
    // SAFETY: forwarded caller guarantee.
    unsafe { opts.as_ref() }.map_or_else(RunOptions::default, |o| o.inner.clone())
}

/// Starts a new container from `image` (ISO, qcow2, vmdk, raw, or the
/// kernel file of a LinuxKit `NAME-kernel`/`NAME-initrd.img` pair) with
/// `opts` (NULL: the defaults, which run detached). Detached, it returns
/// once the VM process is up; in the foreground it returns when the VM
/// exits (output goes to the log; see `vmc_manager_run_attached`).
/// Startup failures come back here with the hypervisor's own message.
/// Free `*out` with `vmc_container_free`.
///
/// # Safety
/// `m` is a live manager; `image` a C string; `opts` NULL or live; `out`
/// writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_run(
    m: *const vmc_manager_t,
    image: *const c_char,
    opts: *const vmc_run_options_t,
    out: *mut *mut vmc_container_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let image = PathBuf::from(str_arg(image, "image")?);
            let out = out_arg(out, "out")?;
            let c = m.inner.run(&image, options(opts))?;
            give(Some(out), c);
            Ok(())
        })
    }
}

/// Runs a container in the foreground (whatever `opts` says about
/// detaching), passing its serial output to `on_output` as it arrives,
/// until the VM exits. The final status is stopped when the hypervisor
/// exited 0, else error. `on_output` runs on the calling thread, never
/// after this returns, and may call other functions of this library (for
/// example `vmc_manager_stop` on the same container from another handle
/// or this one). Free `*out` with `vmc_container_free`.
///
/// # Safety
/// As for `vmc_manager_run`; `on_output` is a valid function and
/// `user_data` is whatever it expects.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_run_attached(
    m: *const vmc_manager_t,
    image: *const c_char,
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
            let image = PathBuf::from(str_arg(image, "image")?);
            let mut sink = output_sink(on_output, user_data)?;
            let out = out_arg(out, "out")?;
            // The core calls `sink` on this thread.
            let c = m.inner.run_attached(&image, options(opts), &mut sink)?;
            give(Some(out), c);
            Ok(())
        })
    }
}

/// `count` template variables `"KEY=VALUE"` (NULL with 0 for none).
///
/// # Safety
/// `vars` is NULL or points to `count` C strings.
unsafe fn template_vars(
    vars: *const *const c_char,
    count: usize,
) -> FfiResult<std::collections::BTreeMap<String, String>> {
    if vars.is_null() && count == 0 {
        return Ok(Default::default());
    }
    // SAFETY: forwarded caller guarantee.
    let vars = unsafe { str_array_arg(vars, count, "vars")? };
    Ok(vmcontainer::manager::parse_vars(&vars)?)
}

/// Runs a container from LinuxKit template `name` (built-in, then the
/// working directory's `.core/linuxkit/`, then the manager's
/// `HOME/linuxkit/`): substitutes the `count` variables in `vars` (each
/// `"KEY=VALUE"`; NULL with 0 for none), builds an ISO with `linuxkit build
/// --format iso-bios`, and runs it with `opts` (NULL: the defaults, which
/// run detached). Memory and CPUs come from the template's `MEMORY` and
/// `CPUS` unless `opts` sets them. LinuxKit missing or failing →
/// `VMC_ERROR_LINUXKIT`; missing variables → `VMC_ERROR_TEMPLATE_VARIABLES`;
/// unknown template → `VMC_ERROR_TEMPLATE`. Free `*out` with
/// `vmc_container_free`.
///
/// # Safety
/// `m` is a live manager; `name` a C string; `vars` NULL or `count` C
/// strings; `opts` NULL or live; `out` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_run_template(
    m: *const vmc_manager_t,
    name: *const c_char,
    vars: *const *const c_char,
    count: usize,
    opts: *const vmc_run_options_t,
    out: *mut *mut vmc_container_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let name = str_arg(name, "name")?;
            let vars = template_vars(vars, count)?;
            let out = out_arg(out, "out")?;
            let dirs = template_dirs(m)?;
            give(
                Some(out),
                m.inner.run_template(&dirs, name, &vars, options(opts))?,
            );
            Ok(())
        })
    }
}

/// `vmc_manager_run_template` in the foreground (whatever `opts` says
/// about detaching), passing serial output to `on_output` as for
/// `vmc_manager_run_attached`.
///
/// # Safety
/// As for `vmc_manager_run_template`; `on_output` is a valid function and
/// `user_data` is whatever it expects.
#[no_mangle]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn vmc_manager_run_template_attached(
    m: *const vmc_manager_t,
    name: *const c_char,
    vars: *const *const c_char,
    count: usize,
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
            let vars = template_vars(vars, count)?;
            let mut sink = output_sink(on_output, user_data)?;
            let out = out_arg(out, "out")?;
            let dirs = template_dirs(m)?;
            let c = m
                .inner
                .run_template_attached(&dirs, name, &vars, options(opts), &mut sink)?;
            give(Some(out), c);
            Ok(())
        })
    }
}

/// The template directories of `m`: its home and the working directory.
fn template_dirs(m: &vmc_manager_t) -> FfiResult<TemplateDirs> {
    Ok(TemplateDirs::resolve(
        Some(m.inner.inner().home().root()),
        None,
    )?)
}

/// Boots a stopped container again, with the disk it wrote before.
/// Already running → `VMC_ERROR_RUNNING`. `out` may be NULL; otherwise free
/// `*out` with `vmc_container_free`.
///
/// # Safety
/// `m` is a live manager; `reference` a C string; `out` and `err` NULL or
/// writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_start(
    m: *const vmc_manager_t,
    reference: *const c_char,
    out: *mut *mut vmc_container_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let out = opt_out_arg(out);
            give(out, m.inner.start(reference)?);
            Ok(())
        })
    }
}

/// Stops a running container: ACPI power-down so the guest can flush its
/// disks, then SIGTERM once `timeout_ms` has passed, then SIGKILL
/// (`VMC_DEFAULT_STOP_TIMEOUT_MS` is the usual timeout). `reference` is an
/// ID, a unique ID prefix or a name. Unknown → `VMC_ERROR_NOT_FOUND`; not
/// running → `VMC_ERROR_NOT_RUNNING`. `out` may be NULL; otherwise free
/// `*out` with `vmc_container_free`.
///
/// # Safety
/// As for `vmc_manager_start`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_stop(
    m: *const vmc_manager_t,
    reference: *const c_char,
    timeout_ms: u64,
    out: *mut *mut vmc_container_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let out = opt_out_arg(out);
            give(out, m.inner.stop(reference, millis(timeout_ms))?);
            Ok(())
        })
    }
}

/// Every known container, oldest first; "running" ones whose process is
/// gone are reported (and recorded) as stopped. Free `*out` with
/// `vmc_container_list_free`.
///
/// # Safety
/// `m` is a live manager; `out` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_list(
    m: *const vmc_manager_t,
    out: *mut *mut vmc_container_list_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let out = out_arg(out, "out")?;
            let items = m
                .inner
                .list()?
                .into_iter()
                .map(vmc_container_t::new)
                .collect();
            out.set(into_handle(vmc_container_list_t { items }));
            Ok(())
        })
    }
}

/// One container by ID, unique ID prefix or name. Unknown →
/// `VMC_ERROR_NOT_FOUND` (the message names the reference); several
/// matches → `VMC_ERROR_AMBIGUOUS`. Free `*out` with `vmc_container_free`.
///
/// # Safety
/// `m` is a live manager; `reference` a C string; `out` writable; `err`
/// NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_get(
    m: *const vmc_manager_t,
    reference: *const c_char,
    out: *mut *mut vmc_container_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let out = out_arg(out, "out")?;
            give(Some(out), m.inner.get(reference)?);
            Ok(())
        })
    }
}

/// Everything known about a container as a JSON object: the record plus
/// `log_path`, `instance_dir`, `qmp_socket` and `console_socket`. Free
/// `*json` with `vmc_string_free`.
///
/// # Safety
/// As for `vmc_manager_get`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_inspect(
    m: *const vmc_manager_t,
    reference: *const c_char,
    json: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let out = out_arg(json, "json")?;
            let info = m.inner.inspect(reference)?;
            let text = serde_json::to_string(&info)
                .map_err(|e| Failure::internal(format!("serializing inspect output: {e}")))?;
            out.set(malloc_bytes(text.as_bytes())?);
            Ok(())
        })
    }
}

/// Deletes a container's record, log, disk overlay and runtime directory.
/// A running container → `VMC_ERROR_RUNNING`, unless `force`, which stops
/// it first. `out` may be NULL; otherwise it receives the removed record
/// (free with `vmc_container_free`).
///
/// # Safety
/// As for `vmc_manager_start`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_remove(
    m: *const vmc_manager_t,
    reference: *const c_char,
    force: bool,
    out: *mut *mut vmc_container_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let out = opt_out_arg(out);
            give(out, m.inner.remove(reference, force)?);
            Ok(())
        })
    }
}

/// Waits until the guest answers on its QEMU guest agent or its SSH server
/// (pinning SSH host keys), at most `timeout_ms`. Out of time →
/// `VMC_ERROR_TIMEOUT`; the VM stopped meanwhile → `VMC_ERROR_NOT_RUNNING`.
/// `out` may be NULL; otherwise free `*out` with `vmc_container_free`.
///
/// # Safety
/// As for `vmc_manager_start`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_wait_ready(
    m: *const vmc_manager_t,
    reference: *const c_char,
    timeout_ms: u64,
    out: *mut *mut vmc_container_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let out = opt_out_arg(out);
            give(out, m.inner.wait_ready(reference, millis(timeout_ms))?);
            Ok(())
        })
    }
}

/// `vmc_manager_wait_ready` for one transport: `transport` is a
/// `vmc_transport_t` (`VMC_TRANSPORT_AUTO`: whichever answers first). On
/// success, `*answered` (when `answered` is not NULL) receives the
/// `vmc_transport_t` that answered (`VMC_TRANSPORT_AGENT` or
/// `VMC_TRANSPORT_SSH`).
///
/// # Safety
/// As for `vmc_manager_start`; `answered` is NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_wait_ready_via(
    m: *const vmc_manager_t,
    reference: *const c_char,
    timeout_ms: u64,
    transport: c_int,
    out: *mut *mut vmc_container_t,
    answered: *mut c_int,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let transport = transport_arg(transport)?;
            let out = opt_out_arg(out);
            let (c, t) = m
                .inner
                .wait_ready_via(reference, millis(timeout_ms), transport)?;
            give(out, c);
            if !answered.is_null() {
                // SAFETY: non-NULL, and the caller guarantees it is writable.
                answered.write(vmc_transport_t::from(t) as c_int);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_stop_timeout_is_the_core_one() {
        assert_eq!(
            VMC_DEFAULT_STOP_TIMEOUT_MS,
            vmcontainer::DEFAULT_STOP_TIMEOUT.as_millis() as u64
        );
    }
}
