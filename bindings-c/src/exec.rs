//! Running commands in a container: `vmc_manager_exec` and the
//! `vmc_exec_result_t` it returns.

use std::ffi::{c_char, c_int};
use std::ptr;

use crate::error::{vmc_error_code_t, vmc_error_t, Failure};
use crate::ffi::{self, guard, guard_value, into_handle, obj, out_arg, str_arg, str_array_arg};
use crate::manager::vmc_manager_t;
use crate::types::transport_arg;

/// A finished command: exit code, stdout and stderr. Release with
/// `vmc_exec_result_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_exec_result_t {
    exit_code: i32,
    /// Output with a NUL appended, so it can be read as a C string.
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn with_nul(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.push(0);
    bytes
}

/// Runs `argv[0..argc]` in the guest as root over SSH (each element
/// arrives as one argument; use `sh -c` for shell syntax) and returns its
/// exit code and output. A non-zero exit code is not an error: the call
/// succeeds and the code is in the result. The container must be running
/// (`VMC_ERROR_NOT_RUNNING`); a guest that just started is waited for
/// (up to 120 s). Repeated calls reuse one SSH connection. Free `*out` with
/// `vmc_exec_result_free`.
///
/// # Safety
/// `m` is a live manager; `reference` a C string; `argv` points to `argc`
/// C strings; `out` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_exec(
    m: *const vmc_manager_t,
    reference: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    out: *mut *mut vmc_exec_result_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let cmd: Vec<String> = str_array_arg(argv, argc, "argv")?
                .into_iter()
                .map(str::to_string)
                .collect();
            let out = out_arg(out, "out")?;
            let r = m.inner.exec(reference, &cmd)?;
            out.set(into_handle(vmc_exec_result_t {
                exit_code: r.exit_code,
                stdout: with_nul(r.stdout),
                stderr: with_nul(r.stderr),
            }));
            Ok(())
        })
    }
}

/// `vmc_manager_exec` with standard input and a transport: `input` holds
/// `input_len` bytes for the command's stdin (NULL with 0 for none), and
/// `transport` is a `vmc_transport_t` (`VMC_TRANSPORT_AUTO`: the QEMU guest
/// agent when it answers, needing no SSH key, else SSH). A command killed
/// by a signal reports 128 + the signal. Free `*out` with
/// `vmc_exec_result_free`.
///
/// # Safety
/// As for `vmc_manager_exec`; `input` is NULL or points to `input_len`
/// readable bytes.
#[no_mangle]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn vmc_manager_exec_with(
    m: *const vmc_manager_t,
    reference: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    input: *const u8,
    input_len: usize,
    transport: c_int,
    out: *mut *mut vmc_exec_result_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let cmd: Vec<String> = str_array_arg(argv, argc, "argv")?
                .into_iter()
                .map(str::to_string)
                .collect();
            let input = match (input.is_null(), input_len) {
                (true, 0) => None,
                (true, _) => return Err(Failure::argument("input is NULL but input_len is not 0")),
                // SAFETY: non-NULL; the caller guarantees input_len readable bytes.
                (false, n) => Some(std::slice::from_raw_parts(input, n).to_vec()),
            };
            let opts = vmcontainer::ExecOptions {
                input,
                transport: transport_arg(transport)?,
            };
            let out = out_arg(out, "out")?;
            let r = m.inner.exec_with(reference, &cmd, &opts)?;
            out.set(into_handle(vmc_exec_result_t {
                exit_code: r.exit_code,
                stdout: with_nul(r.stdout),
                stderr: with_nul(r.stderr),
            }));
            Ok(())
        })
    }
}

/// Copies host path `host_path` into the container at `guest_path`, like
/// `docker cp` (files and directories; `DIR/.` copies a directory's
/// contents; a destination ending in `/` must be an existing directory).
/// `archive` also keeps owners (modes and times always are); `transport`
/// is a `vmc_transport_t`. A missing source, a stopped container or a
/// directory onto a file fail naming the path.
///
/// # Safety
/// `m` is a live manager; the strings are C strings; `err` is NULL or
/// writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_copy_to(
    m: *const vmc_manager_t,
    reference: *const c_char,
    host_path: *const c_char,
    guest_path: *const c_char,
    archive: bool,
    transport: c_int,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let host = str_arg(host_path, "host_path")?;
            let guest = str_arg(guest_path, "guest_path")?;
            let opts = vmcontainer::CopyOptions {
                archive,
                transport: transport_arg(transport)?,
            };
            Ok(m.inner
                .copy_to(reference, std::path::Path::new(host), guest, &opts)?)
        })
    }
}

/// Copies `guest_path` from the container to host path `host_path`, like
/// `vmc_manager_copy_to` the other way. With `archive`, owners are kept
/// only when the calling process runs as root.
///
/// # Safety
/// As for `vmc_manager_copy_to`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_copy_from(
    m: *const vmc_manager_t,
    reference: *const c_char,
    guest_path: *const c_char,
    host_path: *const c_char,
    archive: bool,
    transport: c_int,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let guest = str_arg(guest_path, "guest_path")?;
            let host = str_arg(host_path, "host_path")?;
            let opts = vmcontainer::CopyOptions {
                archive,
                transport: transport_arg(transport)?,
            };
            Ok(m.inner
                .copy_from(reference, guest, std::path::Path::new(host), &opts)?)
        })
    }
}

/// The command's exit status (255 when ssh itself failed, as with the
/// `ssh` command); -1 for NULL.
///
/// # Safety
/// `r` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn vmc_exec_result_exit_code(r: *const vmc_exec_result_t) -> i32 {
    // SAFETY: forwarded caller guarantee.
    guard_value(-1, || unsafe { r.as_ref() }.map(|r| r.exit_code))
}

/// Returns the bytes behind one stream and stores their count in `*len`.
///
/// # Safety
/// `r` is NULL or live; `len` is NULL or writable.
unsafe fn stream(
    r: *const vmc_exec_result_t,
    len: *mut usize,
    pick: fn(&vmc_exec_result_t) -> &[u8],
) -> *const c_char {
    guard_value(ptr::null(), || {
        // SAFETY: forwarded caller guarantee.
        let bytes = pick(unsafe { r.as_ref() }?);
        if !len.is_null() {
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { len.write(bytes.len() - 1) };
        }
        Some(bytes.as_ptr().cast())
    })
}

/// The command's standard output: `*len` bytes (len may be NULL) followed
/// by a NUL, so text can be used as a C string. Valid until the result is
/// freed. NULL for NULL.
///
/// # Safety
/// `r` is NULL or a live result; `len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn vmc_exec_result_stdout(
    r: *const vmc_exec_result_t,
    len: *mut usize,
) -> *const c_char {
    // SAFETY: forwarded caller guarantees.
    unsafe { stream(r, len, |r| &r.stdout) }
}

/// The command's standard error, like `vmc_exec_result_stdout`.
///
/// # Safety
/// `r` is NULL or a live result; `len` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn vmc_exec_result_stderr(
    r: *const vmc_exec_result_t,
    len: *mut usize,
) -> *const c_char {
    // SAFETY: forwarded caller guarantees.
    unsafe { stream(r, len, |r| &r.stderr) }
}

/// Releases a result. NULL is ignored.
///
/// # Safety
/// `r` is NULL or from `vmc_manager_exec`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_exec_result_free(r: *mut vmc_exec_result_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(r) }
}
