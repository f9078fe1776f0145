//! Snapshots: a running VM's memory, devices and disk frozen at one
//! instant under `snapshots/<name>/`, from which any number of new
//! containers resume in well under a second.
//!
//! A snapshot directory holds:
//!
//! | file | content |
//! |---|---|
//! | `snapshot.json` | [`Snapshot`]: what the VM needs to resume (QEMU version, machine type, memory, CPUs, devices, image) |
//! | `memory.raw` | guest RAM, byte for byte, sparse (never-used RAM takes no space) |
//! | `state.bin` | the device state: QEMU's migration stream without RAM |
//! | `disk.qcow2` | the disk at that instant, read-only (disk images only) |
//!
//! Clones map `memory.raw` copy-on-write, so they start without reading it
//! and share its unchanged pages through the page cache. A snapshot is
//! built in `.tmp-<name>-<random>/` and renamed into place when complete,
//! so a listed snapshot is never half-written.
//!
//! The container operations (`snapshot_create`, `run_snapshot`, …) are
//! methods of [`crate::LinuxKitManager`]; this module holds the files.

pub(crate) mod convert;
pub(crate) mod migrate;
mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::image::ImageFormat;

pub use store::{PendingSnapshot, SnapshotStore};

/// Version of the `snapshot.json` layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Metadata file in a snapshot directory.
pub const META_FILE: &str = "snapshot.json";
/// Guest RAM in a snapshot directory.
pub const MEMORY_FILE: &str = "memory.raw";
/// Device state in a snapshot directory.
pub const STATE_FILE: &str = "state.bin";
/// Frozen disk in a snapshot directory.
pub const DISK_FILE: &str = "disk.qcow2";

/// One snapshot, as stored in `snapshots/<name>/snapshot.json`.
///
/// `path` and `size` are filled in when a snapshot is read back; they are
/// not stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Name, unique in the home (the directory's name).
    pub name: String,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
    /// ID of the container it was taken from.
    pub source_id: String,
    /// Name of that container at the time.
    pub source_name: String,
    /// The image that container booted (needed again to resume: a disk
    /// snapshot is an overlay on it, an ISO or kernel stays attached).
    pub image: String,
    /// The image's format.
    pub format: ImageFormat,
    /// Size and modification time of the image file (`<bytes>:<ns>`), so a
    /// changed image is refused instead of resumed into nonsense.
    pub image_fingerprint: String,
    /// Memory in MB; a resumed VM has exactly this much.
    pub memory: u32,
    /// vCPUs; a resumed VM has exactly this many.
    pub cpus: u32,
    /// QEMU version that saved it (`major.minor.micro`); resuming needs the
    /// same one.
    pub qemu_version: String,
    /// Machine type (e.g. `pc-i440fx-7.2`), pinned when resuming.
    pub machine: String,
    /// The machine's RAM block name (e.g. `pc.ram`).
    pub ram_id: String,
    /// Accelerator it ran under (`tcg`, `kvm`, `hvf`).
    pub accel: String,
    /// The guest-visible part of the QEMU command line, in order (see
    /// [`crate::hypervisor::migration::guest_abi`]).
    pub devices: Vec<String>,
    /// 9p shares (host path → guest path); a resumed VM gets the same.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, String>,
    /// Whether `disk.qcow2` is part of it (disk images).
    pub disk: bool,
    /// The snapshot its disk is layered on, when the source was itself
    /// resumed from one; that snapshot is kept while this one exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// How long the source was paused while its state was written, in ms.
    #[serde(default)]
    pub source_pause_ms: u64,
    /// Private key `exec` used for the source; the default for clones,
    /// whose guest has the same authorized keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<String>,
    /// The guest's SSH host keys as pinned for the source (`TYPE BASE64`
    /// lines): clones have the same memory, so the same keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_keys: Vec<String>,
    /// The snapshot's directory (when read back).
    #[serde(default, skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub path: Option<PathBuf>,
    /// Bytes its files take on disk (when read back; a disk shared with
    /// the source container counts here too).
    #[serde(default, skip_serializing_if = "is_zero", skip_deserializing)]
    pub size: u64,
    /// Fields written by newer versions, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Snapshot failures, each naming the snapshot.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No snapshot has this name.
    #[error("snapshot not found: {0}")]
    NotFound(String),
    /// The name is taken.
    #[error("snapshot {0:?} already exists; remove it first (snapshot rm) or pick another name")]
    Exists(String),
    /// Containers or other snapshots still use it as their base.
    #[error("snapshot {name:?} is in use by {}; remove them first", users.join(", "))]
    InUse {
        /// The snapshot.
        name: String,
        /// `container ID (name)` or `snapshot NAME` for each user.
        users: Vec<String>,
    },
    /// It cannot be resumed here (or with these options).
    #[error("snapshot {name:?} cannot be resumed: {reason}")]
    Incompatible {
        /// The snapshot.
        name: String,
        /// What differs.
        reason: String,
    },
    /// The operation cannot be done on this container.
    #[error("cannot snapshot container {id}: {reason}")]
    Unsupported {
        /// The container.
        id: String,
        /// Why.
        reason: String,
    },
    /// `snapshot.json` cannot be read.
    #[error("snapshot metadata {} is corrupt ({reason}); it was left untouched", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Saving or loading the VM state failed.
    #[error("snapshot {name:?}: {message}")]
    Failed {
        /// The snapshot.
        name: String,
        /// What QEMU (or the file system) said.
        message: String,
    },
}

impl SnapshotError {
    /// The stable kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::NotFound(_) => ErrorKind::NotFound,
            SnapshotError::Exists(_)
            | SnapshotError::InUse { .. }
            | SnapshotError::Incompatible { .. }
            | SnapshotError::Unsupported { .. } => ErrorKind::InvalidInput,
            SnapshotError::Corrupt { .. } => ErrorKind::StateCorrupt,
            SnapshotError::Failed { .. } => ErrorKind::Io,
        }
    }
}

/// Checks a snapshot name: container-name rules (`[A-Za-z0-9][A-Za-z0-9_.-]*`,
/// at most 64 characters), so it is always one plain path component.
pub fn validate_name(name: &str) -> crate::Result<()> {
    if crate::container::is_valid_name(name) {
        Ok(())
    } else {
        Err(crate::Error::invalid(
            "snapshot name",
            name,
            "use 1-64 characters [A-Za-z0-9_.-], starting with a letter or digit (no path separators)",
        ))
    }
}

/// `<bytes>:<mtime ns>` of a file, or an empty string if it cannot be read.
pub fn fingerprint(path: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => format!(
            "{}:{}",
            m.len(),
            i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec())
        ),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_single_path_components() {
        for ok in ["base", "web-1.warm", "A_b"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "a/b", "../x", ".tmp-x", "-x", "a b", &"x".repeat(65)] {
            let e = validate_name(bad).unwrap_err();
            assert!(e.to_string().contains("snapshot name"), "{e}");
        }
    }
}
