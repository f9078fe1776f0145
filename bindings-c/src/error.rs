//! Error codes and the `vmc_error_t` object.
//!
//! Every fallible function returns a `vmc_error_code_t` and, when the caller
//! passes a non-NULL `vmc_error_t **err`, stores an error object there that
//! says what failed. Codes map one to one onto the core's
//! [`vmcontainer::ErrorKind`]; two more codes belong to the C boundary
//! itself (a broken argument, a caught panic).

use std::any::Any;
use std::ffi::{c_char, c_int, CStr, CString};

use vmcontainer::templates::TemplateError;
use vmcontainer::{Error, ErrorKind};

use crate::ffi::{free_handle, guard_value, to_cstring};

/// Result of every fallible call: `VMC_OK` (0) or the kind of failure.
///
/// The numbers are stable and only ever added to.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum vmc_error_code_t {
    /// Success.
    VMC_OK = 0,
    /// No container has this ID, ID prefix or name (`"not_found"`).
    VMC_ERROR_NOT_FOUND = 1,
    /// The reference matches several containers (`"ambiguous"`).
    VMC_ERROR_AMBIGUOUS = 2,
    /// The operation needs a running container (`"not_running"`).
    VMC_ERROR_NOT_RUNNING = 3,
    /// The operation needs a stopped container (`"running"`).
    VMC_ERROR_RUNNING = 4,
    /// A value is invalid: options, a missing or unknown image
    /// (`"invalid_input"`).
    VMC_ERROR_INVALID_INPUT = 5,
    /// No usable hypervisor, or the requested one is missing
    /// (`"hypervisor_unavailable"`).
    VMC_ERROR_HYPERVISOR_UNAVAILABLE = 6,
    /// The hypervisor refused to start the VM; the message is its own
    /// (`"start_failed"`).
    VMC_ERROR_START_FAILED = 7,
    /// A wait ran out of time (`"timeout"`).
    VMC_ERROR_TIMEOUT = 8,
    /// A template lacks required variables (`"template_variables"`).
    VMC_ERROR_TEMPLATE_VARIABLES = 9,
    /// Unknown template, or another template error (`"template"`).
    VMC_ERROR_TEMPLATE = 10,
    /// LinuxKit is missing or its build failed (`"linuxkit"`).
    VMC_ERROR_LINUXKIT = 11,
    /// The state file is corrupt (`"state_corrupt"`).
    VMC_ERROR_STATE_CORRUPT = 12,
    /// Talking to the guest (SSH) or the hypervisor (QMP) failed
    /// (`"communication"`).
    VMC_ERROR_COMMUNICATION = 13,
    /// Another file-system or process failure (`"io"`).
    VMC_ERROR_IO = 14,
    /// Getting an image failed: an HTTP error or status, a bad response, a
    /// release without the image, an interrupted download (the next attempt
    /// resumes it), a refused file name from a server, or no source could
    /// provide the image (`"download"`).
    VMC_ERROR_DOWNLOAD = 15,
    /// The image cannot be verified: no published checksum, a malformed
    /// one, or the downloaded bytes do not match it; nothing was installed
    /// (`"checksum"`).
    VMC_ERROR_CHECKSUM = 16,
    /// The caller cancelled the call through a `vmc_cancel_t`
    /// (`"cancelled"`).
    VMC_ERROR_CANCELLED = 17,
    /// The call itself is malformed: a NULL pointer where a value is
    /// required, a string that is not UTF-8, an index out of range
    /// (`"invalid_argument"`). Never produced by the runtime's own logic.
    VMC_ERROR_INVALID_ARGUMENT = 100,
    /// A bug inside the library was caught at the boundary (`"internal"`).
    /// The library stays usable; please report the message.
    VMC_ERROR_INTERNAL = 101,
}

use vmc_error_code_t::*;

impl vmc_error_code_t {
    /// The code of a core error kind. Exhaustive on purpose: a new kind in
    /// the core fails this build until it has a code.
    pub(crate) fn from_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::NotFound => VMC_ERROR_NOT_FOUND,
            ErrorKind::Ambiguous => VMC_ERROR_AMBIGUOUS,
            ErrorKind::NotRunning => VMC_ERROR_NOT_RUNNING,
            ErrorKind::Running => VMC_ERROR_RUNNING,
            ErrorKind::InvalidInput => VMC_ERROR_INVALID_INPUT,
            ErrorKind::HypervisorUnavailable => VMC_ERROR_HYPERVISOR_UNAVAILABLE,
            ErrorKind::StartFailed => VMC_ERROR_START_FAILED,
            ErrorKind::Timeout => VMC_ERROR_TIMEOUT,
            ErrorKind::TemplateVariables => VMC_ERROR_TEMPLATE_VARIABLES,
            ErrorKind::Template => VMC_ERROR_TEMPLATE,
            ErrorKind::LinuxKit => VMC_ERROR_LINUXKIT,
            ErrorKind::StateCorrupt => VMC_ERROR_STATE_CORRUPT,
            ErrorKind::Communication => VMC_ERROR_COMMUNICATION,
            ErrorKind::Io => VMC_ERROR_IO,
            ErrorKind::Download => VMC_ERROR_DOWNLOAD,
            ErrorKind::Checksum => VMC_ERROR_CHECKSUM,
            ErrorKind::Cancelled => VMC_ERROR_CANCELLED,
        }
    }

    /// The stable lower-case name (the core's `ErrorKind::as_str()`).
    pub(crate) fn name(self) -> &'static CStr {
        match self {
            VMC_OK => c"ok",
            VMC_ERROR_NOT_FOUND => c"not_found",
            VMC_ERROR_AMBIGUOUS => c"ambiguous",
            VMC_ERROR_NOT_RUNNING => c"not_running",
            VMC_ERROR_RUNNING => c"running",
            VMC_ERROR_INVALID_INPUT => c"invalid_input",
            VMC_ERROR_HYPERVISOR_UNAVAILABLE => c"hypervisor_unavailable",
            VMC_ERROR_START_FAILED => c"start_failed",
            VMC_ERROR_TIMEOUT => c"timeout",
            VMC_ERROR_TEMPLATE_VARIABLES => c"template_variables",
            VMC_ERROR_TEMPLATE => c"template",
            VMC_ERROR_LINUXKIT => c"linuxkit",
            VMC_ERROR_STATE_CORRUPT => c"state_corrupt",
            VMC_ERROR_COMMUNICATION => c"communication",
            VMC_ERROR_IO => c"io",
            VMC_ERROR_DOWNLOAD => c"download",
            VMC_ERROR_CHECKSUM => c"checksum",
            VMC_ERROR_CANCELLED => c"cancelled",
            VMC_ERROR_INVALID_ARGUMENT => c"invalid_argument",
            VMC_ERROR_INTERNAL => c"internal",
        }
    }

    /// Every code, for the name lookup from a plain `int`.
    fn all() -> [vmc_error_code_t; 20] {
        [
            VMC_OK,
            VMC_ERROR_NOT_FOUND,
            VMC_ERROR_AMBIGUOUS,
            VMC_ERROR_NOT_RUNNING,
            VMC_ERROR_RUNNING,
            VMC_ERROR_INVALID_INPUT,
            VMC_ERROR_HYPERVISOR_UNAVAILABLE,
            VMC_ERROR_START_FAILED,
            VMC_ERROR_TIMEOUT,
            VMC_ERROR_TEMPLATE_VARIABLES,
            VMC_ERROR_TEMPLATE,
            VMC_ERROR_LINUXKIT,
            VMC_ERROR_STATE_CORRUPT,
            VMC_ERROR_COMMUNICATION,
            VMC_ERROR_IO,
            VMC_ERROR_DOWNLOAD,
            VMC_ERROR_CHECKSUM,
            VMC_ERROR_CANCELLED,
            VMC_ERROR_INVALID_ARGUMENT,
            VMC_ERROR_INTERNAL,
        ]
    }
}

/// A failure on its way to the caller: a code plus the message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: vmc_error_code_t,
    pub(crate) message: String,
}

impl Failure {
    /// A malformed call (`VMC_ERROR_INVALID_ARGUMENT`).
    pub(crate) fn argument(message: impl Into<String>) -> Self {
        Failure {
            code: VMC_ERROR_INVALID_ARGUMENT,
            message: message.into(),
        }
    }

    /// A failure of the library itself (`VMC_ERROR_INTERNAL`).
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Failure {
            code: VMC_ERROR_INTERNAL,
            message: message.into(),
        }
    }

    /// A panic caught at the boundary.
    pub(crate) fn panic(payload: Box<dyn Any + Send>) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Failure::internal(format!("internal error in libvmcontainer: {what}"))
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure {
            code: vmc_error_code_t::from_kind(e.kind()),
            message: e.to_string(),
        }
    }
}

impl From<TemplateError> for Failure {
    fn from(e: TemplateError) -> Self {
        Error::from(e).into()
    }
}

/// Details of a failed call: its code, its stable kind name and a message
/// that names the input that failed. Owned by the caller; release with
/// `vmc_error_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_error_t {
    code: vmc_error_code_t,
    message: CString,
}

impl From<Failure> for vmc_error_t {
    fn from(f: Failure) -> Self {
        vmc_error_t {
            code: f.code,
            message: to_cstring(f.message),
        }
    }
}

/// The code of `err`; `VMC_ERROR_INVALID_ARGUMENT` for NULL.
///
/// # Safety
/// `err` is NULL or an error returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn vmc_error_code(err: *const vmc_error_t) -> vmc_error_code_t {
    // SAFETY: the caller passes NULL or a live error from this library.
    guard_value(VMC_ERROR_INVALID_ARGUMENT, || {
        unsafe { err.as_ref() }.map(|e| e.code)
    })
}

/// The message of `err` (UTF-8, never NULL for a non-NULL `err`), valid
/// until `err` is freed; NULL for NULL.
///
/// # Safety
/// `err` is NULL or an error returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn vmc_error_message(err: *const vmc_error_t) -> *const c_char {
    // SAFETY: the caller passes NULL or a live error from this library.
    guard_value(std::ptr::null(), || {
        unsafe { err.as_ref() }.map(|e| e.message.as_ptr())
    })
}

/// The stable kind name of `err` (`"not_found"`, `"timeout"`, ...: the
/// names of `vmc_error_code_name`); a static string, never freed. NULL for
/// NULL.
///
/// # Safety
/// `err` is NULL or an error returned by this library and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn vmc_error_kind(err: *const vmc_error_t) -> *const c_char {
    // SAFETY: the caller passes NULL or a live error from this library.
    guard_value(std::ptr::null(), || {
        unsafe { err.as_ref() }.map(|e| e.code.name().as_ptr())
    })
}

/// Releases an error. NULL is ignored.
///
/// # Safety
/// `err` is NULL or an error returned by this library, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_error_free(err: *mut vmc_error_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { free_handle(err) }
}

/// The stable lower-case name of a code (`VMC_OK` → `"ok"`,
/// `VMC_ERROR_NOT_FOUND` → `"not_found"`); `"unknown"` for a number that
/// is not a code. A static string, never freed.
#[no_mangle]
pub extern "C" fn vmc_error_code_name(code: c_int) -> *const c_char {
    guard_value(c"unknown", || {
        vmc_error_code_t::all()
            .iter()
            .find(|c| **c as c_int == code)
            .map(|c| c.name())
    })
    .as_ptr()
}

/// The number of error kinds of the core (`vmc_error_kind_at` takes
/// `0..count`). Kind `i` has the code `i + 1`; the two codes of the
/// boundary itself (`VMC_ERROR_INVALID_ARGUMENT`, `VMC_ERROR_INTERNAL`)
/// are not kinds of the core. Bindings over this library check their own
/// error lists against these.
#[no_mangle]
pub extern "C" fn vmc_error_kind_count() -> usize {
    ErrorKind::ALL.len()
}

/// The name of the core's error kind `index` (`"not_found"`, ...), a static
/// string; NULL when `index` is out of range.
#[no_mangle]
pub extern "C" fn vmc_error_kind_at(index: usize) -> *const c_char {
    guard_value(std::ptr::null(), || {
        ErrorKind::ALL
            .get(index)
            .map(|k| vmc_error_code_t::from_kind(*k).name().as_ptr())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_code_named_like_the_core() {
        for (i, kind) in ErrorKind::ALL.into_iter().enumerate() {
            let code = vmc_error_code_t::from_kind(kind);
            assert_eq!(
                code as usize,
                i + 1,
                "{kind:?}: codes follow ErrorKind::ALL"
            );
            assert_eq!(code.name().to_str().unwrap(), kind.as_str());
            // SAFETY: a static NUL-terminated string.
            let at = unsafe { CStr::from_ptr(vmc_error_kind_at(i)) };
            assert_eq!(at.to_str().unwrap(), kind.as_str());
        }
        assert_eq!(vmc_error_kind_count(), ErrorKind::ALL.len());
        assert!(vmc_error_kind_at(ErrorKind::ALL.len()).is_null());
        // Every code but OK and the boundary's own is a kind.
        assert_eq!(vmc_error_code_t::all().len(), ErrorKind::ALL.len() + 3);
    }

    #[test]
    fn code_names_by_number() {
        let name = |c: c_int| {
            // SAFETY: the function returns static NUL-terminated strings.
            unsafe { CStr::from_ptr(vmc_error_code_name(c)) }
                .to_str()
                .unwrap()
        };
        assert_eq!(name(0), "ok");
        assert_eq!(name(1), "not_found");
        assert_eq!(name(14), "io");
        assert_eq!(name(15), "download");
        assert_eq!(name(16), "checksum");
        assert_eq!(name(100), "invalid_argument");
        assert_eq!(name(-7), "unknown");
        assert_eq!(name(99), "unknown");
        for c in vmc_error_code_t::all() {
            assert_eq!(name(c as c_int), c.name().to_str().unwrap());
        }
    }

    #[test]
    fn panics_become_internal_errors() {
        let p = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        let f = Failure::panic(p);
        assert_eq!(f.code, VMC_ERROR_INTERNAL);
        assert!(f.message.contains("boom 1"), "{}", f.message);
    }
}
