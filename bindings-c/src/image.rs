//! Image-format detection.

use std::ffi::c_char;
use std::path::Path;

use crate::error::{vmc_error_code_t, vmc_error_t};
use crate::ffi::{guard, out_value, str_arg};
use crate::types::vmc_image_format_t;

/// Detects the format of the image at `path`: by content (qcow2, vmdk and
/// ISO magic bytes win when the extension is missing or lies), by
/// extension, or as a LinuxKit `NAME-kernel`/`NAME-initrd.img` pair. A
/// missing or unrecognised file gives `VMC_IMAGE_FORMAT_UNKNOWN` (not an
/// error).
///
/// # Safety
/// `path` is a C string; `format` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_detect_image_format(
    path: *const c_char,
    format: *mut vmc_image_format_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let path = str_arg(path, "path")?;
            let out = out_value(format, "format")?;
            out.set(vmcontainer::detect_image_format(Path::new(path)).into());
            Ok(())
        })
    }
}
