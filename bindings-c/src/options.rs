//! `vmc_run_options_t`: what `vmc_manager_run` should start. A builder:
//! create it, set what differs from the defaults, pass it to a run call,
//! free it. Values are checked by the run call (the core validates them
//! all at once), except where a setter has to parse text.

use std::ffi::c_char;
use std::path::PathBuf;

use vmcontainer::options::{add_port_spec, parse_bind_address, parse_volume_spec};
use vmcontainer::RunOptions;

use crate::error::{vmc_error_code_t, vmc_error_t};
use crate::ffi::{self, guard, guard_value, obj_mut, str_arg, FfiResult};

/// Options for a run. Defaults: detached (as in every library face of
/// vmcontainer; `vmc_run_options_set_detach(opts, false)` or
/// `vmc_manager_run_attached` run in the foreground), 1024 MB, 1 CPU, no
/// forwarded ports or volumes, SSH on a free loopback port picked at start,
/// no SSH key. Release with `vmc_run_options_free`.
#[allow(non_camel_case_types)]
#[derive(Debug, Default)]
pub struct vmc_run_options_t {
    pub(crate) inner: RunOptions,
}

/// Runs `f` on the options behind `opts`.
///
/// # Safety
/// `opts` is NULL or a live options object used by no other thread; `err`
/// is NULL or writable.
unsafe fn with_options(
    opts: *mut vmc_run_options_t,
    err: *mut *mut vmc_error_t,
    f: impl FnOnce(&mut RunOptions) -> FfiResult<()>,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe { guard(err, || f(&mut obj_mut(opts, "options")?.inner)) }
}

/// New options with the defaults; NULL only if memory is exhausted.
#[no_mangle]
pub extern "C" fn vmc_run_options_new() -> *mut vmc_run_options_t {
    guard_value(std::ptr::null_mut(), || {
        Some(ffi::into_handle(vmc_run_options_t::default()))
    })
}

/// Releases options. NULL is ignored.
///
/// # Safety
/// `opts` is NULL or from `vmc_run_options_new`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_run_options_free(opts: *mut vmc_run_options_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(opts) }
}

/// Container name (1-64 characters `[A-Za-z0-9_.-]`, starting with a
/// letter or digit; checked by the run call). Default: the ID.
///
/// # Safety
/// `opts` is NULL or live and not used concurrently; `name` is NULL or a C
/// string; `err` is NULL or writable. (The same holds for every setter.)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_run_options_set_name(
    opts: *mut vmc_run_options_t,
    name: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_options(opts, err, |o| {
            o.name = Some(str_arg(name, "name")?.to_string());
            Ok(())
        })
    }
}

/// Detached (true, the default): the run call returns once the VM is up
/// and the VM outlives the calling process. Foreground (false): the run
/// call returns when the VM exits.
///
/// # Safety
/// See `vmc_run_options_set_name`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_run_options_set_detach(
    opts: *mut vmc_run_options_t,
    detach: bool,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_options(opts, err, |o| {
            o.detach = detach;
            Ok(())
        })
    }
}

/// Memory in MB (default 1024).
///
/// # Safety
/// See `vmc_run_options_set_name`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_run_options_set_memory_mb(
    opts: *mut vmc_run_options_t,
    memory_mb: u32,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_options(opts, err, |o| {
            o.memory = Some(memory_mb);
            Ok(())
        })
    }
}

/// Number of virtual CPUs (default 1).
///
/// # Safety
/// See `vmc_run_options_set_name`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_run_options_set_cpus(
    opts: *mut vmc_run_options_t,
    cpus: u32,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_options(opts, err, |o| {
            o.cpus = Some(cpus);
            Ok(())
        })
    }
}

/// Loopback host port for the guest's SSH server; 0 (the default) picks a
/// free one at start.
///
/// # Safety
/// See `vmc_run_options_set_name`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_run_options_set_ssh_port(
    opts: *mut vmc_run_options_t,
    port: u16,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_options(opts, err, |o| {
            o.ssh_port = (port != 0).then_some(port);
            Ok(())
        })
    }
}

/// Private key that `vmc_manager_exec` uses to log in as root.
///
/// # Safety
/// See `vmc_run_options_set_name`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_run_options_set_ssh_key(
    opts: *mut vmc_run_options_t,
    path: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_options(opts, err, |o| {
            o.ssh_key = Some(PathBuf::from(str_arg(path, "path")?));
            Ok(())
        })
    }
}

/// Address forwarded ports listen on unless their spec names one (default
/// `127.0.0.1`), e.g. `"0.0.0.0"`. Not an IP address →
/// `VMC_ERROR_INVALID_INPUT`.
///
/// # Safety
/// See `vmc_run_options_set_name`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_run_options_set_bind_address(
    opts: *mut vmc_run_options_t,
    address: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_options(opts, err, |o| {
            o.bind_address = Some(parse_bind_address(str_arg(address, "address")?)?);
            Ok(())
        })
    }
}

/// Forwards host TCP port `host` to guest port `guest`.
///
/// # Safety
/// See `vmc_run_options_set_name`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_run_options_add_port(
    opts: *mut vmc_run_options_t,
    host: u16,
    guest: u16,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_options(opts, err, |o| {
            o.ports.push((host, guest));
            Ok(())
        })
    }
}

/// Adds a port forward written like the CLI's `-p`: `HOST:GUEST` or
/// `IP:HOST:GUEST`; an address given here applies to this mapping only.
/// A malformed spec → `VMC_ERROR_INVALID_INPUT`.
///
/// # Safety
/// See `vmc_run_options_set_name`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_run_options_add_port_spec(
    opts: *mut vmc_run_options_t,
    spec: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_options(opts, err, |o| {
            add_port_spec(o, str_arg(spec, "spec")?)?;
            Ok(())
        })
    }
}

/// Shares host directory `host` with the guest at the absolute path
/// `guest` (9p; the mount tag is the guest path's base name).
///
/// # Safety
/// See `vmc_run_options_set_name`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_run_options_add_volume(
    opts: *mut vmc_run_options_t,
    host: *const c_char,
    guest: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_options(opts, err, |o| {
            let host = PathBuf::from(str_arg(host, "host")?);
            o.volumes.push((host, str_arg(guest, "guest")?.to_string()));
            Ok(())
        })
    }
}

/// Adds a volume written like the CLI's `-v`: `HOST_PATH:/GUEST_PATH`.
/// A malformed spec → `VMC_ERROR_INVALID_INPUT`.
///
/// # Safety
/// See `vmc_run_options_set_name`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_run_options_add_volume_spec(
    opts: *mut vmc_run_options_t,
    spec: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_options(opts, err, |o| {
            o.volumes.push(parse_volume_spec(str_arg(spec, "spec")?)?);
            Ok(())
        })
    }
}
