//! `LinuxKitManager`: the container lifecycle over the state file, the
//! hypervisor and the guest's SSH server.

mod exec;
mod launch;
mod lifecycle;

pub use exec::DEFAULT_READY_TIMEOUT;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::container::{Container, Status};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::hypervisor::{self, detect_hypervisor, Hypervisor, QemuHypervisor};
use crate::logs::{read_log, LogFollower};
use crate::process::Identity;
use crate::state::{StateError, StateFile, StateStore};

/// Default time `stop` gives the guest to power off before signalling.
pub const DEFAULT_STOP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Manages LinuxKit VMs as containers under one root directory.
///
/// Every method is safe to call from several processes at once: state
/// changes are serialised by the state file's lock.
#[derive(Debug, Clone)]
pub struct LinuxKitManager {
    home: Home,
    state: StateStore,
    hypervisor: Arc<dyn Hypervisor>,
}

/// Everything known about a container, including where its files are.
#[derive(Debug, Clone, Serialize)]
pub struct Inspect {
    /// The state record.
    #[serde(flatten)]
    pub container: Container,
    /// Serial console log.
    pub log_path: PathBuf,
    /// Persistent per-container directory.
    pub instance_dir: PathBuf,
    /// QMP socket, when the container has a runtime directory.
    pub qmp_socket: Option<PathBuf>,
    /// Serial console socket.
    pub console_socket: Option<PathBuf>,
    /// Every forwarded port with the address it listens on (the SSH
    /// forward, always on 127.0.0.1, is `ssh_port`).
    pub forwards: Vec<Forward>,
}

/// One forwarded port as [`Inspect`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Forward {
    /// Listen address on the host.
    pub bind: std::net::IpAddr,
    /// Host port.
    pub host: u16,
    /// Guest port.
    pub guest: u16,
}

impl LinuxKitManager {
    /// A manager for `home` using the best available hypervisor. A host
    /// without one still gets a manager (listing, logs and removal work);
    /// `run` then fails naming what to install.
    pub fn new(home: Home) -> Result<Self> {
        let hv = detect_hypervisor().unwrap_or_else(|_| Arc::new(QemuHypervisor::new()));
        Ok(Self::with_hypervisor(home, hv))
    }

    /// A manager for `$VMCONTAINER_HOME` (default `~/.core`).
    pub fn from_env() -> Result<Self> {
        Self::new(Home::from_env()?)
    }

    /// A manager using a specific hypervisor.
    pub fn with_hypervisor(home: Home, hypervisor: Arc<dyn Hypervisor>) -> Self {
        let state = StateStore::new(home.state_path());
        LinuxKitManager {
            home,
            state,
            hypervisor,
        }
    }

    /// The root directory.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The hypervisor in use.
    pub fn hypervisor(&self) -> &dyn Hypervisor {
        self.hypervisor.as_ref()
    }

    /// Resolves an exact ID, an exact name, or a unique ID prefix to an ID.
    pub fn resolve(&self, reference: &str) -> Result<String> {
        let st = self.state.load()?;
        match resolve_in(&st, reference)? {
            Found::Container(id) => Ok(id),
            Found::Damaged(key) => Err(self.damaged(&st, &key)),
        }
    }

    /// The error for using damaged record `key`.
    fn damaged(&self, st: &StateFile, key: &str) -> Error {
        StateError::Damaged {
            path: self.state.path().to_path_buf(),
            key: key.to_string(),
            reason: st
                .damaged
                .get(key)
                .map(|d| d.reason.clone())
                .unwrap_or_default(),
        }
        .into()
    }

    /// Records of the state file that cannot be used, as errors naming
    /// each and saying how to remove it. `list` leaves them out; a front
    /// end shows these beside the listing so they are never hidden.
    pub fn damaged_records(&self) -> Result<Vec<Error>> {
        let st = self.state.load()?;
        Ok(st.damaged.keys().map(|k| self.damaged(&st, k)).collect())
    }

    /// Every known container, with dead "running" ones reconciled to
    /// stopped. Sorted by start time. Damaged records are left out (see
    /// [`Self::list_with_damaged`]).
    pub fn list(&self) -> Result<Vec<Container>> {
        Ok(self.list_with_damaged()?.0)
    }

    /// [`Self::list`], plus an error for each damaged record of the state
    /// file (naming it and how to remove it), from one read of the file.
    pub fn list_with_damaged(&self) -> Result<(Vec<Container>, Vec<Error>)> {
        let st = self.state.load()?;
        let stale: Vec<String> = st
            .containers
            .values()
            .filter(|c| c.status == Status::Running && !identity(c).is_current())
            .map(|c| c.id.clone())
            .collect();
        let st = if stale.is_empty() {
            st
        } else {
            self.state.update(|s| {
                for id in &stale {
                    if let Some(c) = s.containers.get_mut(id) {
                        reconcile(c);
                    }
                }
                Ok::<_, Error>(s.clone())
            })?
        };
        let damaged = st.damaged.keys().map(|k| self.damaged(&st, k)).collect();
        let mut all: Vec<Container> = st.containers.into_values().collect();
        all.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        Ok((all, damaged))
    }

    /// One container by ID, prefix or name (reconciled like `list`).
    pub fn get(&self, reference: &str) -> Result<Container> {
        let mut st = self.state.load()?;
        let id = match resolve_in(&st, reference)? {
            Found::Container(id) => id,
            Found::Damaged(key) => return Err(self.damaged(&st, &key)),
        };
        let c = st
            .containers
            .remove(&id)
            .ok_or_else(|| Error::NotFound(reference.to_string()))?;
        if c.status == Status::Running && !identity(&c).is_current() {
            return self.update_container(&id, |c| {
                reconcile(c);
                Ok(())
            });
        }
        Ok(c)
    }

    /// The record plus the paths of its files.
    pub fn inspect(&self, reference: &str) -> Result<Inspect> {
        let c = self.get(reference)?;
        let rd = self.runtime_dir(&c);
        Ok(Inspect {
            log_path: self.home.log_path(&c.id),
            instance_dir: self.home.instance_dir(&c.id),
            qmp_socket: rd.as_deref().map(hypervisor::qmp_socket),
            console_socket: rd.as_deref().map(hypervisor::console_socket),
            forwards: c
                .port_forwards()
                .into_iter()
                .map(|(bind, host, guest)| Forward { bind, host, guest })
                .collect(),
            container: c,
        })
    }

    /// The container's runtime directory if its record names one this home
    /// derives for it (see [`Home::trusted_runtime_dir`]).
    fn runtime_dir(&self, c: &Container) -> Option<PathBuf> {
        self.home
            .trusted_runtime_dir(&c.id, c.runtime_dir.as_deref())
    }

    /// The container's whole serial log.
    pub fn logs(&self, reference: &str) -> Result<Vec<u8>> {
        let id = self.resolve(reference)?;
        read_log(&self.home.log_path(&id))
    }

    /// Follows the serial log: existing output, then new output within
    /// milliseconds of being written, ending when the container stops.
    pub fn follow_logs(&self, reference: &str) -> Result<LogFollower> {
        let c = self.get(reference)?;
        let path = self.home.log_path(&c.id);
        Home::ensure_dir(&self.home.logs_dir())?;
        launch::create_private_file(&path)?;
        let running = c.status == Status::Running;
        let ident = identity(&c);
        LogFollower::open(&path, Box::new(move || running && ident.is_current()))
    }

    /// Applies `f` to one container under the state lock and returns the
    /// updated record.
    fn update_container(
        &self,
        id: &str,
        f: impl FnOnce(&mut Container) -> Result<()>,
    ) -> Result<Container> {
        self.state.update(|s| {
            let c = s
                .containers
                .get_mut(id)
                .ok_or_else(|| Error::NotFound(id.to_string()))?;
            f(c)?;
            Ok(c.clone())
        })
    }
}

/// Whether `c`'s hypervisor may be running: it is recorded as running, or
/// its status is one this version does not know and its process is alive.
fn may_run(c: &Container) -> bool {
    match c.status {
        Status::Running => true,
        Status::Unknown(_) => identity(c).is_current(),
        _ => false,
    }
}

/// Marks a container whose process is gone as stopped.
fn reconcile(c: &mut Container) {
    c.status = Status::Stopped;
    if c.stopped_at.is_none() || c.stopped_at < Some(c.started_at) {
        c.stopped_at = Some(chrono::Utc::now());
    }
}

/// The process identity recorded for `c`.
fn identity(c: &Container) -> Identity<'static> {
    let marker: &'static str = match c.hypervisor.as_deref() {
        Some("hyperkit") => "hyperkit",
        _ => "qemu",
    };
    Identity {
        pid: c.pid,
        start_time: c.pid_start_time,
        marker,
    }
}

/// What a reference names: a usable container, or a damaged record.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    Container(String),
    Damaged(String),
}

fn resolve_in(st: &StateFile, reference: &str) -> Result<Found> {
    if reference.is_empty() {
        return Err(Error::invalid(
            "container reference",
            "",
            "must not be empty",
        ));
    }
    if st.containers.contains_key(reference) {
        return Ok(Found::Container(reference.to_string()));
    }
    if st.damaged.contains_key(reference) {
        return Ok(Found::Damaged(reference.to_string()));
    }
    let by_name: Vec<&String> = st
        .containers
        .values()
        .filter(|c| c.name == reference)
        .map(|c| &c.id)
        .collect();
    if let [id] = by_name.as_slice() {
        return Ok(Found::Container((*id).clone()));
    }
    // Keys are sorted, so the IDs with this prefix are one range.
    let prefixed = |keys: &mut dyn Iterator<Item = &String>| -> Vec<String> {
        keys.take_while(|k| k.starts_with(reference))
            .cloned()
            .collect()
    };
    let good = prefixed(&mut st.containers.range(reference.to_string()..).map(|(k, _)| k));
    let bad = prefixed(&mut st.damaged.range(reference.to_string()..).map(|(k, _)| k));
    match (good.len(), bad.len()) {
        (1, 0) => Ok(Found::Container(good[0].clone())),
        (0, 1) => Ok(Found::Damaged(bad[0].clone())),
        (0, 0) if by_name.len() > 1 => Err(Error::Ambiguous {
            query: reference.into(),
            matches: by_name.into_iter().cloned().collect(),
        }),
        (0, 0) => Err(Error::NotFound(reference.to_string())),
        _ => Err(Error::Ambiguous {
            query: reference.into(),
            matches: good.into_iter().chain(bad).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, name: &str) -> Container {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "image": "/x.iso", "status": "stopped",
            "pid": 0, "started_at": "2025-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn resolution_by_id_name_and_prefix() {
        let mut st = StateFile::default();
        for (id, name) in [("abc12345", "web"), ("abd00000", "db"), ("ffff0000", "abc")] {
            st.containers.insert(id.into(), rec(id, name));
        }
        let c = |id: &str| Found::Container(id.to_string());
        assert_eq!(resolve_in(&st, "abc12345").unwrap(), c("abc12345"));
        assert_eq!(resolve_in(&st, "web").unwrap(), c("abc12345"));
        // A name beats a prefix.
        assert_eq!(resolve_in(&st, "abc").unwrap(), c("ffff0000"));
        assert_eq!(resolve_in(&st, "abd").unwrap(), c("abd00000"));
        let amb = resolve_in(&st, "ab").unwrap_err();
        assert!(matches!(amb, Error::Ambiguous { .. }), "{amb}");
        assert!(amb.to_string().contains("abc12345") && amb.to_string().contains("abd00000"));
        assert!(matches!(
            resolve_in(&st, "zz").unwrap_err(),
            Error::NotFound(_)
        ));
        // Damaged records are found by key or prefix, never by name.
        st.damaged.insert(
            "../../x".into(),
            crate::state::DamagedRecord {
                reason: "bad".into(),
                raw: serde_json::json!({"name": "evil"}),
            },
        );
        let d = Found::Damaged("../../x".into());
        assert_eq!(resolve_in(&st, "../../x").unwrap(), d);
        assert_eq!(resolve_in(&st, "../").unwrap(), d);
        assert!(matches!(resolve_in(&st, "evil"), Err(Error::NotFound(_))));
    }
}
