//! Container IDs.

use std::ffi::c_char;

use crate::error::{vmc_error_code_t, vmc_error_t};
use crate::ffi::{guard, malloc_bytes, out_arg};

/// A new container ID: 8 lowercase hex characters from the OS CSPRNG. Free
/// `*out` with `vmc_string_free`.
///
/// # Safety
/// `out` is writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_generate_id(
    out: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let out = out_arg(out, "out")?;
            out.set(malloc_bytes(vmcontainer::generate_id().as_bytes())?);
            Ok(())
        })
    }
}
