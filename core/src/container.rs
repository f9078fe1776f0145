//! The container record as stored in `containers.json`, and the options a
//! caller passes to `run`.
//!
//! Field names and meanings follow go-container so its files load unchanged;
//! fields it did not have are optional, and unknown fields are kept in
//! `extra` so a round trip never drops another tool's data.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::image::ImageFormat;

/// Lifecycle status, serialized as the lower-case strings go-container used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The hypervisor process is alive.
    Running,
    /// The VM exited normally or was stopped.
    Stopped,
    /// The VM exited with an error, or its start failed part-way.
    Error,
    /// The hypervisor was ended by a signal that `stop` did not send (an
    /// outside `kill`, the OOM killer, a crash, or the end of the foreground
    /// `run` it belonged to). go-container writes it after a SIGKILL.
    Killed,
    /// Recorded before the hypervisor starts, so a VM can never run without
    /// a record; [`Container::owner`] names the process starting it.
    Starting,
}

impl Status {
    /// The JSON string of this status.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Error => "error",
            Status::Killed => "killed",
            Status::Starting => "starting",
        }
    }

    /// Whether a hypervisor process may exist for a container in this
    /// status (`running`, or `starting`).
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Starting)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

/// One container (a VM) as recorded in the state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    /// 8 lowercase hex characters.
    pub id: String,
    /// Human-readable name, unique among containers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Image path as given to `run` (made absolute).
    pub image: String,
    /// Last known status.
    pub status: Status,
    /// PID of the hypervisor process.
    #[serde(default)]
    pub pid: i32,
    /// When the VM was (last) started.
    pub started_at: DateTime<Utc>,
    /// Forwarded ports, host port → guest port.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<u16, u16>,
    /// Memory in MB.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub memory: u32,
    /// Number of virtual CPUs.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub cpus: u32,
    /// Host port forwarded to the guest's SSH port 22 on loopback.
    #[serde(default, skip_serializing_if = "is_zero_u16")]
    pub ssh_port: u16,
    /// Private key that `exec` uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<String>,
    /// Shared directories, host path → guest path (9p, tag = guest basename).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, String>,
    /// Hypervisor name (`qemu`, `hyperkit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypervisor: Option<String>,
    /// Accelerator chosen at start (`kvm`, `hvf`, `tcg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel: Option<String>,
    /// Detected image format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ImageFormat>,
    /// Address forwarded ports listen on (default 127.0.0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_address: Option<IpAddr>,
    /// Whether `ssh_port` was picked automatically (and may be re-picked by
    /// `start`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub ssh_port_auto: bool,
    /// Directory with the QMP socket, console socket and pid file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_dir: Option<PathBuf>,
    /// Copy-on-write overlay the guest writes to (disk images only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<PathBuf>,
    /// Start time of the hypervisor process (clock ticks since boot), so a
    /// reused PID is never mistaken for this VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_start_time: Option<u64>,
    /// Exit code of the hypervisor when known (foreground runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Signal that ended the hypervisor, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_signal: Option<i32>,
    /// How the VM ended, in words (`inspect` shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_reason: Option<String>,
    /// The process the VM depends on: the one starting it (status
    /// `starting`) or the foreground `run` it belongs to. When that process
    /// is gone, the next command reconciles the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// When the VM was seen to stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<DateTime<Utc>>,
    /// The snapshot this container was resumed from; its disk is an
    /// overlay on that snapshot's, so the snapshot stays while it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Fields written by other tools, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A process identified by PID and start time (so a reused PID is never
/// mistaken for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// Its PID.
    pub pid: i32,
    /// Its start time in clock ticks since boot, where the OS tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<u64>,
}

impl Owner {
    /// The calling process.
    pub fn current() -> Self {
        let pid = std::process::id() as i32;
        Owner {
            pid,
            start_time: crate::process::start_time(pid),
        }
    }

    /// Whether the process is still alive (and is still the same process).
    pub fn is_alive(&self) -> bool {
        crate::process::Identity {
            pid: self.pid,
            start_time: self.start_time,
            marker: "",
        }
        .is_current()
    }
}

/// Options for [`crate::LinuxKitManager::run`]. `Default` gives go-container's
/// defaults (1024 MB, 1 CPU) with an automatically chosen SSH port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Container name; defaults to the ID.
    pub name: Option<String>,
    /// Return once the VM is up instead of waiting for it to exit.
    pub detach: bool,
    /// Memory in MB (default 1024).
    pub memory: Option<u32>,
    /// vCPUs (default 1).
    pub cpus: Option<u32>,
    /// Forwarded ports as (host, guest) pairs.
    pub ports: Vec<(u16, u16)>,
    /// Shared directories as (host path, guest path) pairs.
    pub volumes: Vec<(PathBuf, String)>,
    /// Host port for SSH; `None` picks a free loopback port.
    pub ssh_port: Option<u16>,
    /// Private key for `exec`.
    pub ssh_key: Option<PathBuf>,
    /// Address forwarded ports listen on; `None` means 127.0.0.1.
    pub bind_address: Option<IpAddr>,
}

/// Default memory in MB when [`RunOptions::memory`] is unset.
pub const DEFAULT_MEMORY_MB: u32 = 1024;
/// Default vCPU count when [`RunOptions::cpus`] is unset.
pub const DEFAULT_CPUS: u32 = 1;

/// Whether `name` is acceptable as a container name (Docker's rule).
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 64
}
