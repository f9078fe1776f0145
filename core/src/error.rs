//! The runtime's error type. Every variant carries the input that failed so a
//! message read out of context (a log line, a Python traceback) still says
//! what to fix.

use std::borrow::Cow;
use std::path::PathBuf;

use crate::copy::CopyError;
#[cfg(feature = "devenv")]
use crate::devenv::DevenvError;
use crate::linuxkit::LinuxKitError;
use crate::qga::QgaError;
use crate::qmp::QmpError;
#[cfg(feature = "registry")]
use crate::registry::RegistryError;
use crate::snapshot::SnapshotError;
#[cfg(feature = "sources")]
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
    #[error("container not found: {}", shown(.0))]
    NotFound(String),
    /// The reference matches more than one container.
    #[error("container reference {:?} is ambiguous: it matches {}", shown(.query), shown_list(.matches))]
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
    #[error("invalid {what} {:?}: {reason}", shown(.value))]
    InvalidInput {
        /// Which input (e.g. "memory", "port mapping").
        what: &'static str,
        /// The value as given.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The image file does not exist.
    #[error("image not found: {}", shown(&.0.to_string_lossy()))]
    ImageNotFound(PathBuf),
    /// The image exists but its format is not one we can boot.
    #[error("unknown image format: {} (expected .iso, .qcow2, .vmdk, .raw/.img, or a LinuxKit NAME-kernel/NAME-initrd.img pair)", shown(&.0.to_string_lossy()))]
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
    /// No transport reaches the guest (neither its agent nor SSH), or not
    /// the one the caller asked for.
    #[error("container {id} is unreachable: {reason}")]
    Unreachable {
        /// The container.
        id: String,
        /// What was tried and what each transport showed.
        reason: String,
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
    #[error("{op} {}: {error}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
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
    /// Talking to the QEMU Guest Agent failed.
    #[error(transparent)]
    Agent(#[from] QgaError),
    /// A copy between host and guest failed.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// A dev-environment operation failed.
    #[cfg(feature = "devenv")]
    #[error(transparent)]
    Devenv(#[from] DevenvError),
    /// Resolving or downloading an image failed.
    #[cfg(feature = "sources")]
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The caller cancelled the operation (a [`crate::CancelToken`], a Go
    /// context, an abort signal) before it finished; `0` says what was
    /// cancelled.
    #[error("{0} was cancelled")]
    Cancelled(String),
    /// A snapshot operation failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// Talking to an OCI registry, or the image store, failed.
    #[cfg(feature = "registry")]
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Stable, binding-friendly classification of [`Error`]. Bindings map these
/// one to one onto their own error classes and codes, so the set only grows.
/// It does not depend on cargo features: a build without `sources` never
/// produces [`ErrorKind::Download`] or [`ErrorKind::Checksum`], but every
/// face still knows them.
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
    /// The state file is corrupt, one of its records is damaged, or it is
    /// not a regular file.
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
    /// The caller cancelled the operation ([`Error::Cancelled`]).
    Cancelled,
}

impl ErrorKind {
    /// Every kind, in the order of their C codes (`VMC_ERROR_NOT_FOUND` =
    /// 1, ...). The bindings derive their error classes, codes and
    /// sentinels from this list, and their tests check it against what
    /// they export, so a kind added here without a binding counterpart
    /// fails CI. Add new kinds at the end.
    pub const ALL: [ErrorKind; 17] = [
        ErrorKind::NotFound,
        ErrorKind::Ambiguous,
        ErrorKind::NotRunning,
        ErrorKind::Running,
        ErrorKind::InvalidInput,
        ErrorKind::HypervisorUnavailable,
        ErrorKind::StartFailed,
        ErrorKind::Timeout,
        ErrorKind::TemplateVariables,
        ErrorKind::Template,
        ErrorKind::LinuxKit,
        ErrorKind::StateCorrupt,
        ErrorKind::Communication,
        ErrorKind::Io,
        ErrorKind::Download,
        ErrorKind::Checksum,
        ErrorKind::Cancelled,
    ];

    /// The kind called `name` (an [`ErrorKind::as_str`] value).
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// One line saying what the kind means, for the bindings' docs.
    pub fn description(self) -> &'static str {
        match self {
            ErrorKind::NotFound => {
                "no container has this ID, ID prefix or name (or the dev image is not installed)"
            }
            ErrorKind::Ambiguous => "the reference matches more than one container",
            ErrorKind::NotRunning => "the operation needs a running container",
            ErrorKind::Running => "the operation needs a stopped container (stop it, or force)",
            ErrorKind::InvalidInput => {
                "a value passed in is invalid, or the image is missing or unknown"
            }
            ErrorKind::HypervisorUnavailable => {
                "no usable hypervisor, or the requested one is not installed"
            }
            ErrorKind::StartFailed => {
                "the hypervisor refused to start the VM; the message is its own"
            }
            ErrorKind::Timeout => "a wait ran out of time",
            ErrorKind::TemplateVariables => "a template needs variables that were not given",
            ErrorKind::Template => "unknown template, or a template file could not be read",
            ErrorKind::LinuxKit => "LinuxKit is not installed, or building an image with it failed",
            ErrorKind::StateCorrupt => "the state file (or image manifest) is corrupt",
            ErrorKind::Communication => "talking to the guest (SSH) or the hypervisor (QMP) failed",
            ErrorKind::Io => "another file-system or process operation failed",
            ErrorKind::Download => "getting an image from its source failed",
            ErrorKind::Checksum => "the image cannot be verified against its checksum",
            ErrorKind::Cancelled => "the caller cancelled the operation",
        }
    }

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
            ErrorKind::Cancelled => "cancelled",
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
            Error::State(
                StateError::Corrupt { .. }
                | StateError::Damaged { .. }
                | StateError::Unusable { .. },
            ) => ErrorKind::StateCorrupt,
            Error::State(_) => ErrorKind::Io,
            Error::Template(TemplateError::MissingVariables { .. }) => ErrorKind::TemplateVariables,
            Error::Template(TemplateError::InvalidValue { .. }) => ErrorKind::InvalidInput,
            Error::Template(_) => ErrorKind::Template,
            Error::LinuxKit(_) => ErrorKind::LinuxKit,
            Error::Qmp(_) | Error::Ssh(_) | Error::Agent(_) | Error::Unreachable { .. } => {
                ErrorKind::Communication
            }
            #[cfg(feature = "devenv")]
            Error::Devenv(e) => e.kind(),
            Error::Copy(e) => match e {
                CopyError::NotRunning { .. } => ErrorKind::NotRunning,
                CopyError::Guest { .. } => ErrorKind::Communication,
                CopyError::Host { .. } => ErrorKind::Io,
                _ => ErrorKind::InvalidInput,
            },
            #[cfg(feature = "sources")]
            Error::Source(e) => e.kind(),
            Error::Cancelled(_) => ErrorKind::Cancelled,
            Error::Snapshot(e) => e.kind(),
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
            error: source,
        }
    }
}

/// How many characters of a caller's value a message repeats.
pub const SHOWN_CHARS: usize = 200;

/// `value` cut to at most `max` characters, saying how much was left out,
/// for use in a message: a 100 kB argument must not become a 100 kB error
/// line. The error values themselves keep the whole input.
pub fn clip(value: &str, max: usize) -> Cow<'_, str> {
    match value.char_indices().nth(max) {
        None => Cow::Borrowed(value),
        Some((cut, _)) => Cow::Owned(format!(
            "{}…({} more bytes)",
            &value[..cut],
            value.len() - cut
        )),
    }
}

/// [`clip`] to [`SHOWN_CHARS`].
pub fn shown(value: &str) -> Cow<'_, str> {
    clip(value, SHOWN_CHARS)
}

/// A list of values for a message: the first few, then how many more.
pub fn shown_list(values: &[String]) -> String {
    const FIRST: usize = 10;
    let mut out = values
        .iter()
        .take(FIRST)
        .map(|v| clip(v, 64).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    if values.len() > FIRST {
        out.push_str(&format!(" and {} more", values.len() - FIRST));
    }
    out
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_clipped_in_messages_only() {
        let long = "x".repeat(100_000);
        let e = Error::invalid("name", long.clone(), "too long");
        let msg = e.to_string();
        assert!(msg.len() < 400, "{}", msg.len());
        assert!(msg.contains("more bytes"), "{msg}");
        match e {
            Error::InvalidInput { value, .. } => assert_eq!(value, long),
            other => panic!("{other:?}"),
        }
        assert_eq!(clip("héllo", 2), "hé…(3 more bytes)");
        assert_eq!(clip("héllo", 5), "héllo");
        let many: Vec<String> = (0..25).map(|i| format!("{i:08x}")).collect();
        let l = shown_list(&many);
        assert!(
            l.ends_with(" and 15 more") && l.starts_with("00000000, "),
            "{l}"
        );
        let amb = Error::Ambiguous {
            query: "0".into(),
            matches: many,
        };
        assert!(amb.to_string().contains("and 15 more"), "{amb}");
        let nf = Error::NotFound("y".repeat(5000)).to_string();
        assert!(nf.len() < 400, "{nf}");
    }

    /// Position of `k` in [`ErrorKind::ALL`]; exhaustive, so a new kind
    /// does not compile until it is placed in the list.
    fn position(k: ErrorKind) -> usize {
        match k {
            ErrorKind::NotFound => 0,
            ErrorKind::Ambiguous => 1,
            ErrorKind::NotRunning => 2,
            ErrorKind::Running => 3,
            ErrorKind::InvalidInput => 4,
            ErrorKind::HypervisorUnavailable => 5,
            ErrorKind::StartFailed => 6,
            ErrorKind::Timeout => 7,
            ErrorKind::TemplateVariables => 8,
            ErrorKind::Template => 9,
            ErrorKind::LinuxKit => 10,
            ErrorKind::StateCorrupt => 11,
            ErrorKind::Communication => 12,
            ErrorKind::Io => 13,
            ErrorKind::Download => 14,
            ErrorKind::Checksum => 15,
            ErrorKind::Cancelled => 16,
        }
    }

    #[test]
    fn all_lists_every_kind_once_with_a_unique_name() {
        let mut names = std::collections::HashSet::new();
        for (i, k) in ErrorKind::ALL.into_iter().enumerate() {
            assert_eq!(position(k), i, "{k:?}");
            assert!(names.insert(k.as_str()), "{k:?}");
            assert_eq!(ErrorKind::from_name(k.as_str()), Some(k));
            assert!(!k.description().is_empty());
            assert!(k
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
        assert_eq!(ErrorKind::from_name("nope"), None);
    }

    #[test]
    fn cancelled_names_what() {
        let e = Error::Cancelled("waiting for SSH of container abc".into());
        assert_eq!(e.kind(), ErrorKind::Cancelled);
        assert!(e.to_string().contains("waiting for SSH of container abc"));
    }
}
