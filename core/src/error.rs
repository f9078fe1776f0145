//! The runtime's error type. Every variant carries the input that failed so a
//! message read out of context (a log line, a Python traceback) still says
//! what to fix.

use std::path::PathBuf;

use crate::devenv::DevenvError;
use crate::linuxkit::LinuxKitError;
use crate::qmp::QmpError;
#[cfg(feature = "registry")]
use crate::registry::RegistryError;
use crate::sources::SourceError;
use crate::ssh::SshError;
use crate::state::StateError;
use crate::templates::TemplateError;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No container has this ID, ID prefix or name.
    #[error("container not found: {0}")]
    NotFound(String),
    /// The reference matches more than one container.
    #[error("container reference {query:?} is ambiguous: it matches {}", matches.join(", "))]
    Ambiguous {
        /// What the caller asked for.
        query: String,
        /// The IDs it matched.
        matches: Vec<String>,
    },
    /// The operation needs a running container.
    #[error("container {0} is not running")]
    NotRunning(String),
    /// The operation needs a stopped container.
    #[error("container {0} is running; stop it first (or force removal)")]
    Running(String),
    /// A caller-supplied value is invalid.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidInput {
        /// Which input (e.g. "memory", "port mapping").
        what: &'static str,
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The image file does not exist.
    #[error("image not found: {}", .0.display())]
    ImageNotFound(PathBuf),
    /// The image exists but its format is not one we can boot.
    #[error("unknown image format: {} (expected .iso, .qcow2, .vmdk, .raw/.img, or a LinuxKit NAME-kernel/NAME-initrd.img pair)", .0.display())]
    UnknownFormat(PathBuf),
    /// No usable hypervisor, or the requested one is missing.
    #[error("hypervisor unavailable: {0}")]
    HypervisorUnavailable(String),
    /// The hypervisor refused to start the VM; `message` is its own stderr.
    #[error("{hypervisor} failed to start container {id}: {message}")]
    StartFailed {
        /// Hypervisor name.
        hypervisor: String,
        /// Container ID that was being started.
        id: String,
        /// The hypervisor's own error output.
        message: String,
    },
    /// A wait ran out of time.
    #[error("timed out after {secs:.1}s waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline in seconds.
        secs: f64,
    },
    /// A file-system or process operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The state file could not be read, locked or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// Template lookup or substitution failed.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// Building an image with LinuxKit failed.
    #[error(transparent)]
    LinuxKit(#[from] LinuxKitError),
    /// Talking to QEMU's monitor failed.
    #[error(transparent)]
    Qmp(#[from] QmpError),
    /// Running the SSH client failed.
    #[error(transparent)]
    Ssh(#[from] SshError),
    /// A dev-environment operation failed.
    #[error(transparent)]
    Devenv(#[from] DevenvError),
    /// Resolving or downloading an image failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Talking to an OCI registry, or the image store, failed.
    #[cfg(feature = "registry")]
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Stable, binding-friendly classification of [`Error`]. Bindings map these
/// one to one onto their own error classes and codes, so the set only grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// [`Error::NotFound`].
    NotFound,
    /// [`Error::Ambiguous`].
    Ambiguous,
    /// [`Error::NotRunning`].
    NotRunning,
    /// [`Error::Running`].
    Running,
    /// Invalid caller input, including a missing or unknown image.
    InvalidInput,
    /// [`Error::HypervisorUnavailable`].
    HypervisorUnavailable,
    /// [`Error::StartFailed`].
    StartFailed,
    /// [`Error::Timeout`].
    Timeout,
    /// Missing template variables.
    TemplateVariables,
    /// Unknown template or other template error.
    Template,
    /// LinuxKit missing or its build failed.
    LinuxKit,
    /// The state file is corrupt.
    StateCorrupt,
    /// SSH or QMP communication failure.
    Communication,
    /// Any other I/O failure.
    Io,
    /// Getting an image from its source failed: an HTTP error or
    /// unexpected status, a response that cannot be understood, a release
    /// without the image, an interrupted download, a file name from a
    /// server that is refused, or no source could provide the image. See
    /// [`SourceError::kind`]. Also any failure between us and an OCI
    /// registry, pushing or pulling (unreachable, no such tag or
    /// repository, access denied, a hostile manifest).
    Download,
    /// The image cannot be verified: no published checksum, a malformed
    /// one, or the downloaded bytes do not match it. See
    /// [`SourceError::kind`].
    Checksum,
}

impl ErrorKind {
    /// Lower-case, stable name of the kind, used as the Node `code` and in
    /// C error names.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Ambiguous => "ambiguous",
            ErrorKind::NotRunning => "not_running",
            ErrorKind::Running => "running",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::HypervisorUnavailable => "hypervisor_unavailable",
            ErrorKind::StartFailed => "start_failed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TemplateVariables => "template_variables",
            ErrorKind::Template => "template",
            ErrorKind::LinuxKit => "linuxkit",
            ErrorKind::StateCorrupt => "state_corrupt",
            ErrorKind::Communication => "communication",
            ErrorKind::Io => "io",
            ErrorKind::Download => "download",
            ErrorKind::Checksum => "checksum",
        }
    }
}

impl Error {
    /// The stable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Ambiguous { .. } => ErrorKind::Ambiguous,
            Error::NotRunning(_) => ErrorKind::NotRunning,
            Error::Running(_) => ErrorKind::Running,
            Error::InvalidInput { .. } | Error::ImageNotFound(_) | Error::UnknownFormat(_) => {
                ErrorKind::InvalidInput
            }
            Error::HypervisorUnavailable(_) => ErrorKind::HypervisorUnavailable,
            Error::StartFailed { .. } => ErrorKind::StartFailed,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Io { .. } => ErrorKind::Io,
            Error::State(StateError::Corrupt { .. }) => ErrorKind::StateCorrupt,
            Error::State(_) => ErrorKind::Io,
            Error::Template(TemplateError::MissingVariables { .. }) => ErrorKind::TemplateVariables,
            Error::Template(_) => ErrorKind::Template,
            Error::LinuxKit(_) => ErrorKind::LinuxKit,
            Error::Qmp(_) | Error::Ssh(_) => ErrorKind::Communication,
            Error::Devenv(e) => e.kind(),
            Error::Source(e) => e.kind(),
            #[cfg(feature = "registry")]
            Error::Registry(e) => e.kind(),
        }
    }

    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(
        what: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidInput {
            what,
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
