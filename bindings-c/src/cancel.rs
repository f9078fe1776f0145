//! Cancelling blocking calls from another thread: `vmc_cancel_t`, and
//! manager and dev-environment handles bound to one.
//!
//! A Go context, a C program's watchdog or a signal handler's helper
//! thread calls `vmc_cancel_cancel`; every waiting call made through a
//! handle from `vmc_manager_with_cancel` / `vmc_devenv_with_cancel` (and
//! log followers opened through one) then returns `VMC_ERROR_CANCELLED`.

use vmcontainer::CancelToken;

#[cfg(feature = "devenv")]
use crate::devenv::vmc_devenv_t;
use crate::error::{vmc_error_code_t, vmc_error_t};
use crate::ffi::{self, guard, guard_value, into_handle, obj, out_arg};
use crate::manager::vmc_manager_t;

/// A cancellation flag shared between the thread that waits and the one
/// that cancels. Thread-safe. Release with `vmc_cancel_free` once no call
/// uses it.
#[allow(non_camel_case_types)]
#[derive(Debug, Default)]
pub struct vmc_cancel_t {
    pub(crate) token: CancelToken,
}

/// A new, not cancelled token; NULL only if memory is exhausted.
#[no_mangle]
pub extern "C" fn vmc_cancel_new() -> *mut vmc_cancel_t {
    guard_value(std::ptr::null_mut(), || {
        Some(into_handle(vmc_cancel_t::default()))
    })
}

/// Cancels: every waiting call using `c` returns `VMC_ERROR_CANCELLED` as
/// soon as it notices (within milliseconds), and later ones at once.
/// Permanent. Safe from any thread, also while `c` is in use. NULL is
/// ignored.
///
/// # Safety
/// `c` is NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn vmc_cancel_cancel(c: *const vmc_cancel_t) {
    // SAFETY: forwarded caller guarantee.
    guard_value((), || unsafe { c.as_ref() }.map(|c| c.token.cancel()))
}

/// Whether `c` was cancelled (false for NULL).
///
/// # Safety
/// `c` is NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn vmc_cancel_is_cancelled(c: *const vmc_cancel_t) -> bool {
    // SAFETY: forwarded caller guarantee.
    guard_value(false, || {
        unsafe { c.as_ref() }.map(|c| c.token.is_cancelled())
    })
}

/// Releases a token. NULL is ignored. Handles bound to it keep working
/// (they hold their own reference).
///
/// # Safety
/// `c` is NULL or from `vmc_cancel_new`, freed only once, with no
/// `vmc_cancel_cancel` on it still running.
#[no_mangle]
pub unsafe extern "C" fn vmc_cancel_free(c: *mut vmc_cancel_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(c) }
}

/// A handle to the same manager (same home, hypervisor and containers)
/// whose waiting calls — stop, remove, exec, wait ready, log following,
/// foreground runs, template builds — end with `VMC_ERROR_CANCELLED` once
/// `cancel` is cancelled. A foreground run is ended by stopping its VM
/// (ACPI power-down first). Starting a VM (`vmc_manager_run` detached,
/// `vmc_manager_start`) is never cut short, since that could leave a VM
/// without a record: the token is checked before it begins. Making one is
/// cheap (no I/O). Free `*out` with `vmc_manager_free`.
///
/// # Safety
/// `m` and `cancel` are live; `out` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_with_cancel(
    m: *const vmc_manager_t,
    cancel: *const vmc_cancel_t,
    out: *mut *mut vmc_manager_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let cancel = obj(cancel, "cancel")?;
            let out = out_arg(out, "out")?;
            out.set(into_handle(m.with_cancel(cancel.token.clone())));
            Ok(())
        })
    }
}

/// A handle to the same dev environment whose waiting calls (install,
/// update, check update, boot, stop, shell, test, claude) end with
/// `VMC_ERROR_CANCELLED` once `cancel` is cancelled; `vmc_devenv_serve`
/// then stops the server and reports exit code 130, like Ctrl-C. Free
/// `*out` with `vmc_devenv_free`.
///
/// # Safety
/// `d` and `cancel` are live; `out` writable; `err` NULL or writable.
#[cfg(feature = "devenv")]
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_with_cancel(
    d: *const vmc_devenv_t,
    cancel: *const vmc_cancel_t,
    out: *mut *mut vmc_devenv_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let d = obj(d, "devenv")?;
            let cancel = obj(cancel, "cancel")?;
            let out = out_arg(out, "out")?;
            out.set(into_handle(d.with_cancel(cancel.token.clone())));
            Ok(())
        })
    }
}
