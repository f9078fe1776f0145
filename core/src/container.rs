//! The container record as stored in `containers.json`, and the options a
//! caller passes to `run`.
//!
//! Field names and meanings follow go-container so its files load unchanged;
//! fields it did not have are optional, and unknown fields are kept in
//! `extra` so a round trip never drops another tool's data.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::image::ImageFormat;

/// Lifecycle status, serialized as the lower-case strings go-container used.
///
/// A value this version does not know (a newer version's, or a hand edit)
/// is kept as [`Status::Unknown`] and written back unchanged, so one such
/// record never makes the state file unreadable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    /// A status string this version does not know, kept verbatim.
    Unknown(String),
}

impl Status {
    /// The JSON string of this status.
    pub fn as_str(&self) -> &str {
        match self {
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Error => "error",
            Status::Killed => "killed",
            Status::Starting => "starting",
            Status::Unknown(s) => s,
        }
    }

    /// The status a JSON string names; anything else is [`Status::Unknown`].
    pub fn parse(s: &str) -> Status {
        match s {
            "running" => Status::Running,
            "stopped" => Status::Stopped,
            "error" => Status::Error,
            "killed" => Status::Killed,
            "starting" => Status::Starting,
            other => Status::Unknown(other.to_string()),
        }
    }

    /// Whether a hypervisor process may exist for a container in this
    /// status (`running`, or `starting`). For a status this version does
    /// not know, see the manager's check of the process itself.
    pub fn is_active(&self) -> bool {
        matches!(self, Status::Running | Status::Starting)
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Status;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a status string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Status, E> {
                Ok(Status::parse(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads `null` as the type's default: go-container and hand edits write
/// `"name": null`, which must not make the whole state file unreadable.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
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
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub name: String,
    /// Image path as given to `run` (made absolute).
    pub image: String,
    /// Last known status.
    pub status: Status,
    /// PID of the hypervisor process.
    #[serde(default, deserialize_with = "null_default")]
    pub pid: i32,
    /// When the VM was (last) started.
    pub started_at: DateTime<Utc>,
    /// Forwarded ports, host port → guest port.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub ports: BTreeMap<u16, u16>,
    /// Memory in MB.
    #[serde(
        default,
        skip_serializing_if = "is_zero_u32",
        deserialize_with = "null_default"
    )]
    pub memory: u32,
    /// Number of virtual CPUs.
    #[serde(
        default,
        skip_serializing_if = "is_zero_u32",
        deserialize_with = "null_default"
    )]
    pub cpus: u32,
    /// Host port forwarded to the guest's SSH port 22 on loopback.
    #[serde(
        default,
        skip_serializing_if = "is_zero_u16",
        deserialize_with = "null_default"
    )]
    pub ssh_port: u16,
    /// Private key that `exec` uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<String>,
    /// Shared directories, host path → guest path (9p, tag = guest basename).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
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
    /// Listen address of every forwarded port that has no entry in
    /// `bind_addresses`, as vmcontainer recorded it before each mapping
    /// kept its own address. Absent (go-container, and every record written
    /// now) means 127.0.0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_address: Option<IpAddr>,
    /// Listen address of each forwarded port that does not listen on
    /// 127.0.0.1, by host port. A mapping without an entry listens on
    /// `bind_address`, else 127.0.0.1.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub bind_addresses: BTreeMap<u16, IpAddr>,
    /// Whether `ssh_port` was picked automatically (and may be re-picked by
    /// `start`).
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_default"
    )]
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
    /// Whether the hypervisor runs in its own user and mount namespace, so
    /// directories can be shared with the running VM (the dev
    /// environment's per-project `/app`).
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_default"
    )]
    pub mount_namespace: bool,
    /// The snapshot this container was resumed from; its disk is an
    /// overlay on that snapshot's, so the snapshot stays while it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Fields written by other tools, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The host port go-container forwarded to every guest's SSH server, and
/// the one its `exec` always used.
pub const GO_CONTAINER_SSH_PORT: u16 = 2222;

impl Container {
    /// Whether go-container wrote this record: it lacks the fields
    /// vmcontainer records for every VM it starts (the hypervisor and the
    /// runtime directory).
    pub fn is_go_container_record(&self) -> bool {
        self.hypervisor.is_none() && self.runtime_dir.is_none()
    }

    /// The host port `exec` reaches the guest's SSH server on: the recorded
    /// one, or go-container's fixed 2222 for its records without one.
    pub fn exec_ssh_port(&self) -> u16 {
        match self.ssh_port {
            0 if self.is_go_container_record() => GO_CONTAINER_SSH_PORT,
            p => p,
        }
    }

    /// Whether `exec` uses the user's own SSH configuration and default
    /// keys, as go-container's did: only for its records without a key.
    /// Every other container gets a private configuration and its key.
    pub fn uses_user_ssh_defaults(&self) -> bool {
        self.ssh_key.is_none() && self.is_go_container_record()
    }

    /// The address forwarded host port `host` listens on.
    pub fn bind_address_of(&self, host: u16) -> IpAddr {
        self.bind_addresses
            .get(&host)
            .copied()
            .or(self.bind_address)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// Every forwarded port as `(listen address, host port, guest port)`,
    /// ordered by host port.
    pub fn port_forwards(&self) -> Vec<(IpAddr, u16, u16)> {
        self.ports
            .iter()
            .map(|(h, g)| (self.bind_address_of(*h), *h, *g))
            .collect()
    }

    /// Host port → listen address of every forwarded port that listens
    /// beyond loopback: what `ps`, `inspect` and the faces' `bind_addresses`
    /// show, since a loopback mapping is the default and says nothing.
    pub fn wide_forwards(&self) -> BTreeMap<u16, IpAddr> {
        self.port_forwards()
            .into_iter()
            .filter(|(a, _, _)| !a.is_loopback())
            .map(|(a, h, _)| (h, a))
            .collect()
    }
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
/// defaults (1024 MB, 1 CPU) with an automatically chosen SSH port, and runs
/// detached.
///
/// Detached by default in every library face (Rust, C, Python, Node, Go): a
/// library call that blocks until the VM powers off surprises the author of
/// a script, who almost always wants to start a VM and then talk to it. The
/// foreground stays one option (or [`crate::LinuxKitManager::run_attached`],
/// which streams the output) away. Only the CLI keeps Docker's convention
/// (foreground unless `-d`), because its users expect `docker run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Container name; defaults to the ID.
    pub name: Option<String>,
    /// Return once the VM is up instead of waiting for it to exit (default
    /// true).
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
    /// Address forwarded ports listen on unless `bind_addresses` names
    /// one for them; `None` means 127.0.0.1.
    pub bind_address: Option<IpAddr>,
    /// Listen address of individual mappings, by host port (the `IP` of
    /// `-p IP:HOST:GUEST`); each wins over `bind_address` for its port.
    pub bind_addresses: BTreeMap<u16, IpAddr>,
    /// In the foreground, also copy the serial console to this process's
    /// standard output as it arrives, as go-container's foreground `run`
    /// did (the log gets it either way; the hypervisor's own messages come
    /// back in the error or the record's `exit_reason`). Ignored when
    /// detached; [`crate::LinuxKitManager::run_attached`] hands the output
    /// to a callback instead.
    pub console_to_stdout: bool,
    /// Linux: start the hypervisor in its own user and mount namespace, so
    /// host directories can be shared with the running VM later (the dev
    /// environment uses it to show each caller's project at `/app`).
    /// Needs util-linux `unshare` and unprivileged user namespaces.
    pub mount_namespace: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            name: None,
            detach: DEFAULT_DETACH,
            memory: None,
            cpus: None,
            ports: Vec::new(),
            volumes: Vec::new(),
            ssh_port: None,
            ssh_key: None,
            bind_address: None,
            bind_addresses: BTreeMap::new(),
            console_to_stdout: false,
            mount_namespace: false,
        }
    }
}

/// Whether library runs are detached when the caller does not say (see
/// [`RunOptions`] for why).
pub const DEFAULT_DETACH: bool = true;

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
