//! `LinuxKitManager`: the container lifecycle over the state file, the
//! hypervisor and the guest's SSH server.

mod exec;
mod foreground;
mod launch;
mod lifecycle;
mod reconcile;
#[cfg(feature = "registry")]
mod registry;

pub use exec::DEFAULT_READY_TIMEOUT;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::container::Container;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::hypervisor::{self, detect_hypervisor, Hypervisor, QemuHypervisor};
use crate::logs::{read_log, LogFollower};
use crate::process::Identity;
use crate::state::{StateFile, StateStore};

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
        resolve_in(&self.state.load()?, reference)
    }

    /// Every known container, with records that are no longer true
    /// reconciled: a "running" one whose process is gone becomes stopped,
    /// killed or error by how it ended; an interrupted start becomes error
    /// and its hypervisor, if any, is killed. Sorted by start time.
    pub fn list(&self) -> Result<Vec<Container>> {
        let st = self.state.load()?;
        let stale: Vec<String> = st
            .containers
            .values()
            .filter(|c| reconcile::is_stale(c))
            .map(|c| c.id.clone())
            .collect();
        let st = if stale.is_empty() {
            st
        } else {
            self.state.update(|s| {
                for id in &stale {
                    if let Some(c) = s.containers.get_mut(id) {
                        reconcile::reconcile(c);
                    }
                }
                Ok::<_, Error>(s.clone())
            })?
        };
        let mut all: Vec<Container> = st.containers.into_values().collect();
        all.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        Ok(all)
    }

    /// One container by ID, prefix or name (reconciled like `list`).
    pub fn get(&self, reference: &str) -> Result<Container> {
        let id = self.resolve(reference)?;
        let c = self
            .state
            .load()?
            .containers
            .remove(&id)
            .ok_or_else(|| Error::NotFound(reference.to_string()))?;
        if reconcile::is_stale(&c) {
            return self.update_container(&id, |c| {
                reconcile::reconcile(c);
                Ok(())
            });
        }
        Ok(c)
    }

    /// [`Self::get`] for async callers: reading, locking and reconciling
    /// (which may kill a stray hypervisor) happen on a blocking thread.
    pub(crate) async fn get_async(&self, reference: &str) -> Result<Container> {
        let (this, reference) = (self.clone(), reference.to_string());
        tokio::task::spawn_blocking(move || this.get(&reference))
            .await
            .map_err(|e| Error::io("read state", self.state.path(), std::io::Error::other(e)))?
    }

    /// The record plus the paths of its files.
    pub fn inspect(&self, reference: &str) -> Result<Inspect> {
        let c = self.get(reference)?;
        Ok(Inspect {
            log_path: self.home.log_path(&c.id),
            instance_dir: self.home.instance_dir(&c.id),
            qmp_socket: c.runtime_dir.as_deref().map(hypervisor::qmp_socket),
            console_socket: c.runtime_dir.as_deref().map(hypervisor::console_socket),
            container: c,
        })
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
        let running = c.status.is_active();
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
        self.state.update(edit_one(id, f))
    }

    /// [`Self::update_container`] for async callers (the lock is waited
    /// for off the async workers).
    async fn update_container_async(
        &self,
        id: &str,
        f: impl FnOnce(&mut Container) -> Result<()>,
    ) -> Result<Container> {
        self.state.update_async(edit_one(id, f)).await
    }
}

/// A state edit applying `f` to container `id` and returning the result.
fn edit_one<'a>(
    id: &'a str,
    f: impl FnOnce(&mut Container) -> Result<()> + 'a,
) -> impl FnOnce(&mut StateFile) -> Result<Container> + 'a {
    move |s| {
        let c = s
            .containers
            .get_mut(id)
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        f(c)?;
        Ok(c.clone())
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

fn resolve_in(st: &StateFile, reference: &str) -> Result<String> {
    if reference.is_empty() {
        return Err(Error::invalid(
            "container reference",
            "",
            "must not be empty",
        ));
    }
    if st.containers.contains_key(reference) {
        return Ok(reference.to_string());
    }
    let by_name: Vec<&String> = st
        .containers
        .values()
        .filter(|c| c.name == reference)
        .map(|c| &c.id)
        .collect();
    if let [id] = by_name.as_slice() {
        return Ok((*id).clone());
    }
    let by_prefix: Vec<String> = st
        .containers
        .keys()
        .filter(|id| id.starts_with(reference))
        .cloned()
        .collect();
    match by_prefix.len() {
        1 => Ok(by_prefix[0].clone()),
        0 if by_name.len() > 1 => Err(Error::Ambiguous {
            query: reference.into(),
            matches: by_name.into_iter().cloned().collect(),
        }),
        0 => Err(Error::NotFound(reference.to_string())),
        _ => Err(Error::Ambiguous {
            query: reference.into(),
            matches: by_prefix,
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
        assert_eq!(resolve_in(&st, "abc12345").unwrap(), "abc12345");
        assert_eq!(resolve_in(&st, "web").unwrap(), "abc12345");
        // A name beats a prefix.
        assert_eq!(resolve_in(&st, "abc").unwrap(), "ffff0000");
        assert_eq!(resolve_in(&st, "abd").unwrap(), "abd00000");
        let amb = resolve_in(&st, "ab").unwrap_err();
        assert!(matches!(amb, Error::Ambiguous { .. }), "{amb}");
        assert!(amb.to_string().contains("abc12345") && amb.to_string().contains("abd00000"));
        assert!(matches!(
            resolve_in(&st, "zz").unwrap_err(),
            Error::NotFound(_)
        ));
    }
}
