//! Processes in a container: `vmc_manager_spawn` and the `vmc_process_t`
//! it returns, read with a pull API (`vmc_process_read` blocks the calling
//! thread until output arrives). stdin, stdout, stderr and the wait are
//! independent: one thread may write while another reads or waits.

use std::ffi::{c_char, c_int};
use std::sync::Mutex;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vmcontainer::blocking::runtime;
use vmcontainer::spawn::{InputStream, OutputStream, ProcessControl};
use vmcontainer::{Error, ExitStatus, Process, SpawnOptions};

use crate::error::{vmc_error_code_t, vmc_error_t, Failure};
use crate::ffi::{
    self, guard, guard_value, into_handle, obj, opt_str_arg, out_arg, str_arg, str_array_arg,
};
use crate::manager::vmc_manager_t;

/// Which output `vmc_process_read` reads.
pub const VMC_STDOUT: c_int = 1;
/// Which output `vmc_process_read` reads.
pub const VMC_STDERR: c_int = 2;

/// A process started by `vmc_manager_spawn`. Release with
/// `vmc_process_free` (which kills it if it still runs).
#[allow(non_camel_case_types)]
pub struct vmc_process_t {
    process: Mutex<Process>,
    control: ProcessControl,
    stdin: Mutex<Option<InputStream>>,
    stdout: Mutex<Option<OutputStream>>,
    stderr: Mutex<Option<OutputStream>>,
}

fn io_failure(what: &str, e: std::io::Error) -> Failure {
    Failure::from(Error::Io {
        op: "talking to the process",
        path: what.into(),
        error: e,
    })
}

/// Starts `argv[0..argc]` in the running container `reference` and returns
/// at once with `*out` set: write its stdin with `vmc_process_write`, read
/// its output with `vmc_process_read`, then `vmc_process_wait`. `env` holds
/// `env_len` `"NAME=VALUE"` strings (NULL with 0 for none); `cwd` and
/// `user` may be NULL (the user runs it through the guest's `su`); `tty`
/// non-zero gives it a terminal (all output on stdout); `timeout_ms` 0
/// means none, else it is killed after that long and `vmc_process_wait`
/// fails with `VMC_ERROR_TIMEOUT`. Always over SSH. Free `*out` with
/// `vmc_process_free`.
///
/// # Safety
/// `m` is a live manager; `reference` a C string; `argv` points to `argc`
/// C strings and `env` to `env_len`; `cwd`, `user` NULL or C strings; `out`
/// writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn vmc_manager_spawn(
    m: *const vmc_manager_t,
    reference: *const c_char,
    argv: *const *const c_char,
    argc: usize,
    env: *const *const c_char,
    env_len: usize,
    cwd: *const c_char,
    user: *const c_char,
    tty: c_int,
    timeout_ms: u64,
    out: *mut *mut vmc_process_t,
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
            let env = if env.is_null() && env_len == 0 {
                Vec::new()
            } else {
                str_array_arg(env, env_len, "env")?
            };
            let mut pairs = Vec::new();
            for e in env {
                let (k, v) = e.split_once('=').ok_or_else(|| {
                    Failure::from(Error::invalid(
                        "environment entry",
                        e,
                        "expected NAME=VALUE",
                    ))
                })?;
                pairs.push((k.to_string(), v.to_string()));
            }
            let opts = SpawnOptions {
                env: pairs,
                cwd: opt_str_arg(cwd, "cwd")?.map(str::to_string),
                user: opt_str_arg(user, "user")?.map(str::to_string),
                tty: tty != 0,
                timeout: (timeout_ms > 0).then(|| ffi::millis(timeout_ms)),
                ..Default::default()
            };
            let out = out_arg(out, "out")?;
            let mut p = m.inner.spawn(reference, &cmd, &opts)?;
            out.set(into_handle(vmc_process_t {
                control: p.control(),
                stdin: Mutex::new(p.take_stdin()),
                stdout: Mutex::new(p.take_stdout()),
                stderr: Mutex::new(p.take_stderr()),
                process: Mutex::new(p),
            }));
            Ok(())
        })
    }
}

/// The process's PID in the guest (0 for NULL).
///
/// # Safety
/// `p` is NULL or a live process.
#[no_mangle]
pub unsafe extern "C" fn vmc_process_pid(p: *const vmc_process_t) -> u32 {
    // SAFETY: forwarded caller guarantee.
    guard_value(0, || unsafe { p.as_ref() }.map(|p| p.control.pid()))
}

/// Writes all `len` bytes of `data` to the process's stdin, blocking while
/// the guest catches up. Fails with `VMC_ERROR_IO` once the process no
/// longer reads, `VMC_ERROR_INVALID_ARGUMENT` after
/// `vmc_process_close_stdin`.
///
/// # Safety
/// `p` is a live process; `data` points to `len` readable bytes (or is
/// NULL with 0); `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_process_write(
    p: *const vmc_process_t,
    data: *const u8,
    len: usize,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let p = obj(p, "process")?;
            let data: &[u8] = if len == 0 {
                &[]
            } else if data.is_null() {
                return Err(Error::invalid("data", "NULL", "must point to len bytes").into());
            } else {
                std::slice::from_raw_parts(data, len)
            };
            let mut g = p.stdin.lock().unwrap_or_else(|e| e.into_inner());
            let w = g
                .as_mut()
                .ok_or_else(|| Failure::from(Error::invalid("stdin", "closed", "it was closed")))?;
            runtime()
                .block_on(w.write_all(data))
                .map_err(|e| io_failure("stdin", e))
        })
    }
}

/// Closes the process's stdin (it reads end of file). Idempotent.
///
/// # Safety
/// `p` is a live process; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_process_close_stdin(
    p: *const vmc_process_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let p = obj(p, "process")?;
            let w = p.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(mut w) = w {
                runtime()
                    .block_on(w.shutdown())
                    .map_err(|e| io_failure("stdin", e))?;
            }
            Ok(())
        })
    }
}

/// Reads up to `cap` bytes of `stream` (`VMC_STDOUT` or `VMC_STDERR`) into
/// `buf`, blocking until some arrive; `*n` is the count, 0 at the end of
/// the stream.
///
/// # Safety
/// `p` is a live process; `buf` points to `cap` writable bytes; `n`
/// writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_process_read(
    p: *const vmc_process_t,
    stream: c_int,
    buf: *mut u8,
    cap: usize,
    n: *mut usize,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let p = obj(p, "process")?;
            let n = ffi::out_value(n, "n")?;
            if buf.is_null() || cap == 0 {
                return Err(Error::invalid("buf", "NULL or empty", "must have room").into());
            }
            let which = match stream {
                VMC_STDOUT => &p.stdout,
                VMC_STDERR => &p.stderr,
                _ => {
                    return Err(Error::invalid(
                        "stream",
                        stream.to_string(),
                        "expected VMC_STDOUT (1) or VMC_STDERR (2)",
                    )
                    .into())
                }
            };
            let buf = std::slice::from_raw_parts_mut(buf, cap);
            let mut g = which.lock().unwrap_or_else(|e| e.into_inner());
            let got = match g.as_mut() {
                Some(r) => runtime()
                    .block_on(r.read(buf))
                    .map_err(|e| io_failure("output", e))?,
                None => 0,
            };
            n.set(got);
            Ok(())
        })
    }
}

/// Waits for the process to end: `*exit_code` is its code (or 128 + the
/// signal) and `*signal` the signal that ended it or 0 (either may be
/// NULL). Fails with `VMC_ERROR_TIMEOUT` when its timeout killed it.
/// Closes stdin first. Read both outputs to their end (from other threads
/// if need be): output nobody reads fills its pipe and stalls the process.
///
/// # Safety
/// `p` is a live process; `exit_code`, `signal` NULL or writable; `err`
/// NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_process_wait(
    p: *const vmc_process_t,
    exit_code: *mut c_int,
    signal: *mut c_int,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let p = obj(p, "process")?;
            p.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
            let mut proc = p.process.lock().unwrap_or_else(|e| e.into_inner());
            let st: ExitStatus = runtime().block_on(proc.wait())?;
            if !exit_code.is_null() {
                exit_code.write(st.shell_code());
            }
            if !signal.is_null() {
                signal.write(st.signal().unwrap_or(0));
            }
            Ok(())
        })
    }
}

/// Sends signal `sig` to the process and everything it started in the
/// guest. Safe to call while another thread waits.
///
/// # Safety
/// `p` is a live process; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_process_kill(
    p: *const vmc_process_t,
    sig: c_int,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let p = obj(p, "process")?;
            runtime().block_on(p.control.kill(sig))?;
            Ok(())
        })
    }
}

/// Sets the terminal size of a process spawned with `tty`.
///
/// # Safety
/// `p` is a live process; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_process_resize(
    p: *const vmc_process_t,
    cols: u16,
    rows: u16,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let p = obj(p, "process")?;
            runtime().block_on(p.control.resize(cols, rows))?;
            Ok(())
        })
    }
}

/// Releases a process; one still running is killed in the guest. NULL is
/// ignored.
///
/// # Safety
/// `p` is NULL or from `vmc_manager_spawn`, freed only once, with no call
/// on it running.
#[no_mangle]
pub unsafe extern "C" fn vmc_process_free(p: *mut vmc_process_t) {
    // The streams are dropped inside the runtime (tokio's pipes deregister
    // from its reactor).
    let _enter = runtime().enter();
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(p) }
}
