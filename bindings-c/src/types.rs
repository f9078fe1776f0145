//! Values shared by several handles: library-owned strings, container
//! status and image format.

use std::ffi::{c_char, c_int, CStr};

use vmcontainer::{ImageFormat, Status};

use crate::ffi::guard_value;

/// Releases a string or buffer the library returned through a `char **`
/// out-parameter (IDs, logs, JSON, template text). NULL is ignored. Such
/// strings are allocated with `malloc`, so `free(3)` is equivalent.
///
/// # Safety
/// `s` is NULL or a string returned by this library, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_string_free(s: *mut c_char) {
    // SAFETY: the caller passes NULL or a pointer from `malloc_bytes`,
    // which used `malloc`. `free` cannot unwind.
    unsafe { crate::ffi::free_bytes(s) }
}

/// Lifecycle status of a container; the names are the lower-case strings
/// of the state file.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum vmc_status_t {
    /// `"running"`: the hypervisor process is alive.
    VMC_STATUS_RUNNING = 0,
    /// `"stopped"`: the VM exited normally or was stopped.
    VMC_STATUS_STOPPED = 1,
    /// `"error"`: the VM exited with an error.
    VMC_STATUS_ERROR = 2,
    /// `"killed"`: the hypervisor was ended by a signal that `stop` did not
    /// send (an outside kill, a crash, the end of its foreground run);
    /// go-container writes it after a SIGKILL.
    VMC_STATUS_KILLED = 3,
    /// `"starting"`: recorded before the hypervisor starts; a start that
    /// was interrupted becomes `"error"` at the next call.
    VMC_STATUS_STARTING = 4,
    /// A status this version does not know (a newer version's), kept as
    /// written; `vmc_container_status_name` gives its text.
    VMC_STATUS_UNKNOWN = 100,
}

impl From<&Status> for vmc_status_t {
    fn from(s: &Status) -> Self {
        match s {
            Status::Running => vmc_status_t::VMC_STATUS_RUNNING,
            Status::Stopped => vmc_status_t::VMC_STATUS_STOPPED,
            Status::Error => vmc_status_t::VMC_STATUS_ERROR,
            Status::Killed => vmc_status_t::VMC_STATUS_KILLED,
            Status::Starting => vmc_status_t::VMC_STATUS_STARTING,
            Status::Unknown(_) => vmc_status_t::VMC_STATUS_UNKNOWN,
        }
    }
}

/// Format of a bootable image; the names are those of the state file.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum vmc_image_format_t {
    /// `"unknown"`: not bootable.
    VMC_IMAGE_FORMAT_UNKNOWN = 0,
    /// `"iso"`: ISO 9660, attached read-only.
    VMC_IMAGE_FORMAT_ISO = 1,
    /// `"qcow2"`.
    VMC_IMAGE_FORMAT_QCOW2 = 2,
    /// `"vmdk"`.
    VMC_IMAGE_FORMAT_VMDK = 3,
    /// `"raw"` (`.raw`, `.img`).
    VMC_IMAGE_FORMAT_RAW = 4,
    /// `"kernel+initrd"`: LinuxKit's `NAME-kernel` + `NAME-initrd.img`.
    VMC_IMAGE_FORMAT_KERNEL_INITRD = 5,
}

impl From<ImageFormat> for vmc_image_format_t {
    fn from(f: ImageFormat) -> Self {
        use vmc_image_format_t::*;
        match f {
            ImageFormat::Iso => VMC_IMAGE_FORMAT_ISO,
            ImageFormat::Qcow2 => VMC_IMAGE_FORMAT_QCOW2,
            ImageFormat::Vmdk => VMC_IMAGE_FORMAT_VMDK,
            ImageFormat::Raw => VMC_IMAGE_FORMAT_RAW,
            ImageFormat::KernelInitrd => VMC_IMAGE_FORMAT_KERNEL_INITRD,
            ImageFormat::Unknown => VMC_IMAGE_FORMAT_UNKNOWN,
        }
    }
}

fn statuses() -> [Status; 5] {
    [
        Status::Running,
        Status::Stopped,
        Status::Error,
        Status::Killed,
        Status::Starting,
    ]
}

fn formats() -> [ImageFormat; 6] {
    [
        ImageFormat::Unknown,
        ImageFormat::Iso,
        ImageFormat::Qcow2,
        ImageFormat::Vmdk,
        ImageFormat::Raw,
        ImageFormat::KernelInitrd,
    ]
}

/// A static C string for a core `as_str()` name.
pub(crate) fn static_name(name: &str) -> &'static CStr {
    match name {
        "running" => c"running",
        "stopped" => c"stopped",
        "error" => c"error",
        "killed" => c"killed",
        "starting" => c"starting",
        "iso" => c"iso",
        "qcow2" => c"qcow2",
        "vmdk" => c"vmdk",
        "raw" => c"raw",
        "kernel+initrd" => c"kernel+initrd",
        _ => c"unknown",
    }
}

/// The name of a status (`"running"`, `"stopped"`, `"error"`, `"killed"`,
/// `"starting"`), `"unknown"` for `VMC_STATUS_UNKNOWN` and any other
/// number. A static string, never freed.
#[no_mangle]
pub extern "C" fn vmc_status_name(status: c_int) -> *const c_char {
    guard_value(c"unknown", || {
        statuses()
            .iter()
            .find(|s| vmc_status_t::from(*s) as c_int == status)
            .map(|s| static_name(s.as_str()))
    })
    .as_ptr()
}

/// The name of an image format (`"iso"`, `"qcow2"`, `"vmdk"`, `"raw"`,
/// `"kernel+initrd"`, `"unknown"`), `"unknown"` for any other number. A
/// static string, never freed.
#[no_mangle]
pub extern "C" fn vmc_image_format_name(format: c_int) -> *const c_char {
    guard_value(c"unknown", || {
        formats()
            .iter()
            .find(|f| vmc_image_format_t::from(**f) as c_int == format)
            .map(|f| static_name(f.as_str()))
    })
    .as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(p: *const c_char) -> &'static str {
        // SAFETY: the name functions return static NUL-terminated strings.
        unsafe { CStr::from_ptr(p) }.to_str().unwrap()
    }

    #[test]
    fn names_match_the_state_file() {
        for s in statuses() {
            assert_eq!(
                text(vmc_status_name(vmc_status_t::from(&s) as c_int)),
                s.as_str()
            );
        }
        for f in formats() {
            let n = vmc_image_format_t::from(f) as c_int;
            assert_eq!(text(vmc_image_format_name(n)), f.as_str());
        }
        assert_eq!(text(vmc_status_name(42)), "unknown");
        assert_eq!(text(vmc_image_format_name(-1)), "unknown");
    }

    #[test]
    fn string_free_accepts_null() {
        // SAFETY: NULL is allowed.
        unsafe { vmc_string_free(std::ptr::null_mut()) };
    }
}

/// How a call reaches the guest. Functions take it as an `int` holding one
/// of these values (any other value is `VMC_ERROR_INVALID_ARGUMENT`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum vmc_transport_t {
    /// The QEMU guest agent when it answers, else SSH.
    VMC_TRANSPORT_AUTO = 0,
    /// The guest agent only (no SSH key needed).
    VMC_TRANSPORT_AGENT = 1,
    /// SSH only.
    VMC_TRANSPORT_SSH = 2,
}

impl From<vmcontainer::Transport> for vmc_transport_t {
    fn from(t: vmcontainer::Transport) -> Self {
        use vmcontainer::Transport;
        match t {
            Transport::Auto => vmc_transport_t::VMC_TRANSPORT_AUTO,
            Transport::Agent => vmc_transport_t::VMC_TRANSPORT_AGENT,
            Transport::Ssh => vmc_transport_t::VMC_TRANSPORT_SSH,
        }
    }
}

/// The core transport for a `vmc_transport_t` value passed as an int.
pub(crate) fn transport_arg(t: c_int) -> crate::ffi::FfiResult<vmcontainer::Transport> {
    use vmcontainer::Transport;
    match t {
        0 => Ok(Transport::Auto),
        1 => Ok(Transport::Agent),
        2 => Ok(Transport::Ssh),
        _ => Err(crate::error::Failure::argument(format!(
            "transport {t} is not a vmc_transport_t (0 auto, 1 agent, 2 ssh)"
        ))),
    }
}
