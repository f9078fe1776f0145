//! Serial console logs: the whole log, following it with a callback, and
//! following it with a pull-style `vmc_log_follower_t`.

use std::ffi::{c_char, c_int, c_void};

use vmcontainer::blocking::{runtime, Manager};
use vmcontainer::{CancelToken, Error, LogFollower};

use crate::error::{vmc_error_code_t, vmc_error_t, Failure};
use crate::ffi::{
    self, guard, into_handle, malloc_bytes, millis, obj, obj_mut, out_arg, str_arg, FfiResult,
};
use crate::manager::vmc_manager_t;

/// Receives one log line (without its line ending): `len` bytes at `line`
/// followed by a NUL, borrowed for the duration of the call. Return 0 to
/// go on, anything else to stop following. Called on the thread that
/// called `vmc_manager_logs_follow`, never after it returns; it may call
/// other functions of this library.
#[allow(non_camel_case_types)]
pub type vmc_log_line_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, line: *const c_char, len: usize) -> c_int>;

/// The container's whole serial log so far (empty if it wrote nothing):
/// `*len` bytes (len may be NULL) followed by a NUL. Free `*out` with
/// `vmc_string_free`.
///
/// # Safety
/// `m` is a live manager; `reference` a C string; `out` writable; `len`
/// and `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_logs(
    m: *const vmc_manager_t,
    reference: *const c_char,
    out: *mut *mut c_char,
    len: *mut usize,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let out = out_arg(out, "out")?;
            let bytes = m.inner.logs(reference)?;
            out.set(malloc_bytes(&bytes)?);
            if !len.is_null() {
                // SAFETY: checked non-NULL; the caller guarantees it is
                // writable.
                len.write(bytes.len());
            }
            Ok(())
        })
    }
}

/// Follows the serial log: every line already written, then each new line
/// within milliseconds of being written, passed to `on_line`. Returns
/// `VMC_OK` once the container has stopped and all output was delivered,
/// or as soon as `on_line` returns non-zero. Blocks the calling thread
/// meanwhile; the callback runs on it.
///
/// # Safety
/// `m` is a live manager; `reference` a C string; `on_line` a valid
/// function and `user_data` whatever it expects; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_logs_follow(
    m: *const vmc_manager_t,
    reference: *const c_char,
    on_line: vmc_log_line_fn,
    user_data: *mut c_void,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let on_line = on_line.ok_or_else(|| Failure::argument("on_line is NULL"))?;
            let mut follower = m.inner.follow_logs(reference)?;
            let token = m.inner.cancel_token();
            // Each line is read on the runtime and handed over here, so the
            // callback only ever runs on the caller's thread.
            while let Some(line) = Manager::next_line_until(&mut follower, token) {
                let mut bytes = line?.into_bytes();
                let len = bytes.len();
                bytes.push(0);
                // SAFETY: the caller guarantees `on_line` and `user_data`
                // fit together; the line outlives the call.
                if on_line(user_data, bytes.as_ptr().cast(), len) != 0 {
                    break;
                }
            }
            Ok(())
        })
    }
}

/// A pull-style stream of a container's log lines
/// (`vmc_manager_logs_follower`). Use it from one thread at a time.
/// Release with `vmc_log_follow_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_log_follower_t {
    inner: LogFollower,
    /// The token of the manager it was opened through, if any.
    cancel: Option<CancelToken>,
}

/// Opens a follower on a container's log: `vmc_log_follow_next` then
/// yields every line already written, then new lines as they arrive, and
/// the end once the container has stopped. Opened through a manager from
/// `vmc_manager_with_cancel`, its waits return `VMC_ERROR_CANCELLED` once
/// that token is cancelled (from any thread; this is how another thread
/// interrupts a blocked `vmc_log_follow_next`). Free `*out` with
/// `vmc_log_follow_free`.
///
/// # Safety
/// `m` is a live manager; `reference` a C string; `out` writable; `err`
/// NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_logs_follower(
    m: *const vmc_manager_t,
    reference: *const c_char,
    out: *mut *mut vmc_log_follower_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?;
            let out = out_arg(out, "out")?;
            let inner = m.inner.follow_logs(reference)?;
            let cancel = m.inner.cancel_token().cloned();
            out.set(into_handle(vmc_log_follower_t { inner, cancel }));
            Ok(())
        })
    }
}

/// Stores the next line in `*line` (without its line ending), or NULL at
/// the end of the stream (the container stopped and everything was read).
fn store_line(
    next: Option<vmcontainer::Result<String>>,
    line: ffi::Out<*mut c_char>,
) -> FfiResult<()> {
    if let Some(l) = next {
        line.set(malloc_bytes(l?.as_bytes())?);
    }
    Ok(())
}

/// Blocks until the next line is available and stores it in `*line`
/// (free with `vmc_string_free`), or stores NULL at the end of the stream.
///
/// # Safety
/// `follower` is a live follower used by no other thread; `line` writable;
/// `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_log_follow_next(
    follower: *mut vmc_log_follower_t,
    line: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let f = obj_mut(follower, "follower")?;
            let line = out_arg(line, "line")?;
            store_line(
                Manager::next_line_until(&mut f.inner, f.cancel.as_ref()),
                line,
            )
        })
    }
}

/// Like `vmc_log_follow_next`, but waits at most `timeout_ms`: with no new
/// line by then it returns `VMC_ERROR_TIMEOUT` (and `*line` is NULL); the
/// follower stays usable and loses nothing.
///
/// # Safety
/// As for `vmc_log_follow_next`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_log_follow_next_timeout(
    follower: *mut vmc_log_follower_t,
    timeout_ms: u64,
    line: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let f = obj_mut(follower, "follower")?;
            let line = out_arg(line, "line")?;
            let wait = millis(timeout_ms);
            // Cancelling `next_line` at the deadline loses no data: it only
            // waits between reads.
            let next = runtime()
                .block_on(async {
                    let fut = async { Ok(f.inner.next_line().await) };
                    tokio::time::timeout(
                        wait,
                        vmcontainer::cancel::guard(f.cancel.as_ref(), "following the log", fut),
                    )
                    .await
                })
                .map_err(|_| Error::Timeout {
                    what: "the next log line".into(),
                    secs: wait.as_secs_f64(),
                })?
                .unwrap_or_else(|e| Some(Err(e)));
            store_line(next, line)
        })
    }
}

/// Closes a follower. NULL is ignored.
///
/// # Safety
/// `follower` is NULL or from `vmc_manager_logs_follower`, freed only once,
/// with no call on it still running.
#[no_mangle]
pub unsafe extern "C" fn vmc_log_follow_free(follower: *mut vmc_log_follower_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(follower) }
}
