//! Core errors as JS `Error` objects: the core's message, plus a `code`
//! property that names the error kind (`ERR_VMC_` + the upper-cased
//! [`vmcontainer::ErrorKind::as_str`]).

use napi::bindgen_prelude::JsObjectValue;
use napi::{Env, JsValue};
use napi_derive::napi;
use vmcontainer::ErrorKind;

/// The `code` of every error the module rejects or throws with.
#[napi(string_enum)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// No container has this ID, ID prefix or name.
    #[napi(value = "ERR_VMC_NOT_FOUND")]
    NotFound,
    /// The reference matches more than one container.
    #[napi(value = "ERR_VMC_AMBIGUOUS")]
    Ambiguous,
    /// The operation needs a running container.
    #[napi(value = "ERR_VMC_NOT_RUNNING")]
    NotRunning,
    /// The operation needs a stopped container (or `force`).
    #[napi(value = "ERR_VMC_RUNNING")]
    Running,
    /// A caller-supplied value is invalid (including a missing or unknown image).
    #[napi(value = "ERR_VMC_INVALID_INPUT")]
    InvalidInput,
    /// No usable hypervisor, or the requested one is missing.
    #[napi(value = "ERR_VMC_HYPERVISOR_UNAVAILABLE")]
    HypervisorUnavailable,
    /// The hypervisor refused to start the VM; the message is its own output.
    #[napi(value = "ERR_VMC_START_FAILED")]
    StartFailed,
    /// A wait ran out of time.
    #[napi(value = "ERR_VMC_TIMEOUT")]
    Timeout,
    /// A template needs variables that were not given.
    #[napi(value = "ERR_VMC_TEMPLATE_VARIABLES")]
    TemplateVariables,
    /// Unknown template, or a template file could not be read.
    #[napi(value = "ERR_VMC_TEMPLATE")]
    Template,
    /// LinuxKit is missing or its build failed.
    #[napi(value = "ERR_VMC_LINUXKIT")]
    LinuxKit,
    /// The state file is corrupt.
    #[napi(value = "ERR_VMC_STATE_CORRUPT")]
    StateCorrupt,
    /// Talking to the guest (SSH) or to QEMU's monitor failed.
    #[napi(value = "ERR_VMC_COMMUNICATION")]
    Communication,
    /// Any other I/O failure.
    #[napi(value = "ERR_VMC_IO")]
    Io,
    /// Getting an image failed: an HTTP error or status, a bad response, a
    /// release without the image, an interrupted download, or no source could
    /// provide it.
    #[napi(value = "ERR_VMC_DOWNLOAD")]
    Download,
    /// The image cannot be verified: no published checksum, a malformed one,
    /// or the downloaded bytes do not match it.
    #[napi(value = "ERR_VMC_CHECKSUM")]
    Checksum,
    /// The operation was cancelled (an abort signal).
    #[napi(value = "ERR_VMC_CANCELLED")]
    Cancelled,
}

impl ErrorCode {
    /// The code for a core error kind.
    pub fn of(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::NotFound => ErrorCode::NotFound,
            ErrorKind::Ambiguous => ErrorCode::Ambiguous,
            ErrorKind::NotRunning => ErrorCode::NotRunning,
            ErrorKind::Running => ErrorCode::Running,
            ErrorKind::InvalidInput => ErrorCode::InvalidInput,
            ErrorKind::HypervisorUnavailable => ErrorCode::HypervisorUnavailable,
            ErrorKind::StartFailed => ErrorCode::StartFailed,
            ErrorKind::Timeout => ErrorCode::Timeout,
            ErrorKind::TemplateVariables => ErrorCode::TemplateVariables,
            ErrorKind::Template => ErrorCode::Template,
            ErrorKind::LinuxKit => ErrorCode::LinuxKit,
            ErrorKind::StateCorrupt => ErrorCode::StateCorrupt,
            ErrorKind::Communication => ErrorCode::Communication,
            ErrorKind::Io => ErrorCode::Io,
            ErrorKind::Download => ErrorCode::Download,
            ErrorKind::Checksum => ErrorCode::Checksum,
            ErrorKind::Cancelled => ErrorCode::Cancelled,
        }
    }

    /// The string JS sees as `error.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "ERR_VMC_NOT_FOUND",
            ErrorCode::Ambiguous => "ERR_VMC_AMBIGUOUS",
            ErrorCode::NotRunning => "ERR_VMC_NOT_RUNNING",
            ErrorCode::Running => "ERR_VMC_RUNNING",
            ErrorCode::InvalidInput => "ERR_VMC_INVALID_INPUT",
            ErrorCode::HypervisorUnavailable => "ERR_VMC_HYPERVISOR_UNAVAILABLE",
            ErrorCode::StartFailed => "ERR_VMC_START_FAILED",
            ErrorCode::Timeout => "ERR_VMC_TIMEOUT",
            ErrorCode::TemplateVariables => "ERR_VMC_TEMPLATE_VARIABLES",
            ErrorCode::Template => "ERR_VMC_TEMPLATE",
            ErrorCode::LinuxKit => "ERR_VMC_LINUXKIT",
            ErrorCode::StateCorrupt => "ERR_VMC_STATE_CORRUPT",
            ErrorCode::Communication => "ERR_VMC_COMMUNICATION",
            ErrorCode::Io => "ERR_VMC_IO",
            ErrorCode::Download => "ERR_VMC_DOWNLOAD",
            ErrorCode::Checksum => "ERR_VMC_CHECKSUM",
            ErrorCode::Cancelled => "ERR_VMC_CANCELLED",
        }
    }
}

/// Builds the JS `Error` for `e` (on the JS thread) and wraps it so napi
/// throws or rejects with that very object.
pub fn to_napi(env: &Env, e: &vmcontainer::Error) -> napi::Error {
    let build = || -> napi::Result<napi::Error> {
        let mut obj = env.create_error(napi::Error::from_reason(e.to_string()))?;
        obj.set_named_property("code", ErrorCode::of(e.kind()).as_str())?;
        Ok(napi::Error::from(obj.to_unknown()))
    };
    build().unwrap_or_else(|failed| failed)
}

/// Converts a core result for a synchronous function.
pub fn sync<T>(env: &Env, r: vmcontainer::Result<T>) -> napi::Result<T> {
    r.map_err(|e| to_napi(env, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_core_kind_names() {
        for k in ErrorKind::ALL {
            assert_eq!(
                ErrorCode::of(k).as_str(),
                format!("ERR_VMC_{}", k.as_str().to_ascii_uppercase())
            );
        }
    }
}
