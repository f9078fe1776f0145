//! Hypervisor detection and lookup: `vmc_hypervisor_t`.

use std::ffi::{c_char, CString};
use std::sync::Arc;

use vmcontainer::Hypervisor;

use crate::error::{vmc_error_code_t, vmc_error_t};
use crate::ffi::{
    self, guard, guard_value, into_handle, malloc_bytes, obj, opt_out_arg, out_arg, str_arg,
    to_cstring,
};

/// A hypervisor backend (QEMU or Hyperkit). Release with
/// `vmc_hypervisor_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_hypervisor_t {
    inner: Arc<dyn Hypervisor>,
    name: CString,
}

fn handle(inner: Arc<dyn Hypervisor>) -> *mut vmc_hypervisor_t {
    let name = to_cstring(inner.name());
    into_handle(vmc_hypervisor_t { inner, name })
}

/// The best hypervisor on this host (Hyperkit on macOS when installed,
/// else QEMU). None → `VMC_ERROR_HYPERVISOR_UNAVAILABLE`, naming what to
/// install. Free `*out` with `vmc_hypervisor_free`.
///
/// # Safety
/// `out` is writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_detect_hypervisor(
    out: *mut *mut vmc_hypervisor_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let out = out_arg(out, "out")?;
            out.set(handle(vmcontainer::detect_hypervisor()?));
            Ok(())
        })
    }
}

/// The hypervisor called `name` (`"qemu"` or `"hyperkit"`, any case).
/// Unknown → `VMC_ERROR_INVALID_INPUT`; not usable here →
/// `VMC_ERROR_HYPERVISOR_UNAVAILABLE`. Free `*out` with
/// `vmc_hypervisor_free`.
///
/// # Safety
/// `name` is a C string; `out` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_get_hypervisor(
    name: *const c_char,
    out: *mut *mut vmc_hypervisor_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let name = str_arg(name, "name")?;
            let out = out_arg(out, "out")?;
            out.set(handle(vmcontainer::get_hypervisor(name)?));
            Ok(())
        })
    }
}

/// The hypervisor's name (`"qemu"`, `"hyperkit"`), valid until it is
/// freed. NULL for NULL.
///
/// # Safety
/// `h` is NULL or a live hypervisor.
#[no_mangle]
pub unsafe extern "C" fn vmc_hypervisor_name(h: *const vmc_hypervisor_t) -> *const c_char {
    // SAFETY: forwarded caller guarantee.
    guard_value(std::ptr::null(), || {
        unsafe { h.as_ref() }.map(|h| h.name.as_ptr())
    })
}

/// Whether the hypervisor can run on this host now (false for NULL).
///
/// # Safety
/// `h` is NULL or a live hypervisor.
#[no_mangle]
pub unsafe extern "C" fn vmc_hypervisor_available(h: *const vmc_hypervisor_t) -> bool {
    // SAFETY: forwarded caller guarantee.
    guard_value(false, || unsafe { h.as_ref() }.map(|h| h.inner.available()))
}

/// The accelerator VMs started now would use (`"kvm"`, `"hvf"`, `"tcg"`)
/// in `*accel`, and why in `*reason` (`reason` may be NULL). The first call
/// may take a few seconds (a real boot probe); `$VMCONTAINER_ACCEL` forces
/// a choice. Free both strings with `vmc_string_free`.
///
/// # Safety
/// `h` is a live hypervisor; `accel` writable; `reason` and `err` NULL or
/// writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_hypervisor_accel(
    h: *const vmc_hypervisor_t,
    accel: *mut *mut c_char,
    reason: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let h = obj(h, "hypervisor")?;
            let accel = out_arg(accel, "accel")?;
            let reason = opt_out_arg(reason);
            let choice = h.inner.accel()?;
            let name = malloc_bytes(choice.accel.as_str().as_bytes())?;
            if let Some(reason) = reason {
                match malloc_bytes(choice.reason.as_bytes()) {
                    Ok(p) => reason.set(p),
                    Err(e) => {
                        ffi::free_bytes(name);
                        return Err(e);
                    }
                }
            }
            accel.set(name);
            Ok(())
        })
    }
}

/// Releases a hypervisor. NULL is ignored.
///
/// # Safety
/// `h` is NULL or from this library, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_hypervisor_free(h: *mut vmc_hypervisor_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(h) }
}
