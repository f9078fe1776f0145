//! `LinuxKitManager`: the container lifecycle over the state file, the
//! hypervisor and the guest's SSH server.

mod commit;
mod copy;
mod exec;
mod foreground;
mod launch;
mod lifecycle;
mod reconcile;
#[cfg(feature = "registry")]
mod registry;
mod resolve;
mod resume;
mod snapshot;
mod spawn;
mod template_run;
pub(crate) mod transport;

use resolve::{resolve_in, Found};

pub use exec::{ExecOptions, DEFAULT_READY_TIMEOUT};
pub use launch::{Origin, OutputSink};
pub use template_run::{parse_vars, TemplateImage};

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::container::{Container, Status};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::hypervisor::{self, detect_hypervisor, Hypervisor, QemuHypervisor};
use crate::logs::{read_log, LogFollower};
use crate::process::Identity;
use crate::state::{StateError, StateFile, StateIndex, StateStore};
use crate::transport::Transport;

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
    notices: Notices,
}

/// Where one-line notices about waits go (see
/// [`LinuxKitManager::on_wait`]).
#[derive(Clone, Default)]
struct Notices(Option<Arc<NoticeFn>>);

/// A receiver of wait notices.
type NoticeFn = dyn Fn(&str) + Send + Sync;

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Notices(set)"
        } else {
            "Notices(none)"
        })
    }
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
    /// How the guest can be reached now (`agent`, `ssh`); empty when it is
    /// not running or nothing answers yet.
    pub transports: Vec<Transport>,
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
            notices: Notices::default(),
        }
    }

    /// Calls `notice` with a one-line message whenever a call has to wait
    /// for the guest without having been asked to (for example `exec` on a
    /// guest whose agent and SSH server have not answered yet): what it
    /// waits for and for how long at most. The CLI prints them on stderr.
    pub fn on_wait(mut self, notice: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.notices = Notices(Some(Arc::new(notice)));
        self
    }

    fn notice(&self, message: &str) {
        if let Some(f) = &self.notices.0 {
            f(message);
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

    /// Resolves an exact ID, an exact name, a unique ID prefix or a unique
    /// name prefix (in that order) to an ID.
    pub fn resolve(&self, reference: &str) -> Result<String> {
        let index = self.state.index()?;
        match resolve_in(&index, reference)? {
            Found::Container(id) => Ok(id),
            Found::Damaged(key) => Err(self.damaged_in(&index, &key)),
        }
    }

    /// The error for using damaged record `key`, which is wrong because of
    /// `reason`.
    fn damaged(&self, key: &str, reason: &str) -> Error {
        StateError::Damaged {
            path: self.state.path().to_path_buf(),
            key: key.to_string(),
            reason: reason.to_string(),
        }
        .into()
    }

    fn damaged_in(&self, index: &StateIndex, key: &str) -> Error {
        let reason = index
            .get(key)
            .and_then(|e| e.problem.clone())
            .unwrap_or_default();
        self.damaged(key, &reason)
    }

    /// Finds `reference` in the index and parses that one record.
    /// `Err(Damaged)` when the record cannot be used.
    fn find(&self, index: &StateIndex, reference: &str) -> Result<Container> {
        let key = match resolve_in(index, reference)? {
            Found::Container(id) | Found::Damaged(id) => id,
        };
        match index.container(&key) {
            Some(Ok(c)) => Ok(c),
            Some(Err(reason)) => Err(self.damaged(&key, &reason)),
            None => Err(Error::NotFound(reference.to_string())),
        }
    }

    /// Records of the state file that cannot be used, as errors naming
    /// each and saying how to remove it. `list` leaves them out; a front
    /// end shows these beside the listing so they are never hidden.
    pub fn damaged_records(&self) -> Result<Vec<Error>> {
        Ok(self.list_with_damaged()?.1)
    }

    /// Every known container, with records that are no longer true
    /// reconciled: a "running" one whose process is gone becomes stopped,
    /// killed or error by how it ended; an interrupted start becomes error
    /// and its hypervisor, if any, is killed. Sorted by start time.
    /// Damaged records are left out (see [`Self::list_with_damaged`]).
    pub fn list(&self) -> Result<Vec<Container>> {
        Ok(self.list_with_damaged()?.0)
    }

    /// [`Self::list`], plus an error for each damaged record of the state
    /// file (naming it and how to remove it), from one read of the file.
    pub fn list_with_damaged(&self) -> Result<(Vec<Container>, Vec<Error>)> {
        let (mut all, mut damaged) = self.state.load_records()?;
        let stale: Vec<String> = all
            .iter()
            .filter(|c| reconcile::is_stale(c))
            .map(|c| c.id.clone())
            .collect();
        if !stale.is_empty() {
            // Record what was found, then list what the file now says.
            let st = self.state.update(|s| {
                for id in &stale {
                    if let Some(c) = s.containers.get_mut(id) {
                        self.reconcile(c);
                    }
                }
                Ok::<_, Error>(s.clone())
            })?;
            all = st.containers.into_values().collect();
            damaged = st.damaged;
        }
        let damaged = damaged
            .iter()
            .map(|(k, d)| self.damaged(k, &d.reason))
            .collect();
        Ok((by_start_time(all), damaged))
    }

    /// One container by ID, prefix or name (reconciled like `list`).
    pub fn get(&self, reference: &str) -> Result<Container> {
        let c = self.find(&self.state.index()?, reference)?;
        let id = c.id.clone();
        if reconcile::is_stale(&c) {
            return self.update_container(&id, |c| {
                self.reconcile(c);
                Ok(())
            });
        }
        Ok(c)
    }

    /// [`StateStore::index`] for async callers (the file is read and
    /// scanned on a blocking thread).
    async fn index_async(&self) -> Result<StateIndex> {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || state.index())
            .await
            .map_err(|e| Error::io("read state", self.state.path(), std::io::Error::other(e)))?
            .map_err(Into::into)
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
            transports: if c.status == Status::Running {
                self.transports_now(&c)
            } else {
                Vec::new()
            },
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
        let running = c.status.is_active();
        let ident = identity(&c);
        LogFollower::open(&path, Box::new(move || running && ident.is_current()))
    }

    /// Sets a stale record right (see the `reconcile` module), letting it
    /// look only in a runtime directory this home derives for it: the
    /// record's own `runtime_dir` is input, and reconciling kills the
    /// processes that name a pid file there and reads files from it.
    fn reconcile(&self, c: &mut Container) {
        let recorded = c.runtime_dir.take();
        c.runtime_dir = self.home.trusted_runtime_dir(&c.id, recorded.as_deref());
        reconcile::reconcile(c);
        c.runtime_dir = recorded;
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

/// `all` ordered by start time, then ID. The records are large (100,000
/// of them are ~50 MB), so the order is worked out on indexes and applied
/// in place, one swap per record, instead of moving them through a sort.
fn by_start_time(mut all: Vec<Container>) -> Vec<Container> {
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| (all[a].started_at, &all[a].id).cmp(&(all[b].started_at, &all[b].id)));
    // Position k takes the record at order[k]: follow each cycle of the
    // permutation, marking positions done.
    const DONE: usize = usize::MAX;
    for start in 0..all.len() {
        let mut cur = start;
        while order[cur] != DONE {
            let next = order[cur];
            order[cur] = DONE;
            if next == start {
                break;
            }
            all.swap(cur, next);
            cur = next;
        }
    }
    all
}

/// Whether `c`'s hypervisor may be running: it is recorded as running or
/// starting, or its status is one this version does not know and its
/// process is alive.
fn may_run(c: &Container) -> bool {
    match &c.status {
        Status::Unknown(_) => identity(c).is_current(),
        s => s.is_active(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// The in-place ordering equals a plain sort.
        #[test]
        fn ordering_in_place_equals_a_sort(starts in prop::collection::vec((0i64..50, 0u32..1000), 0..60)) {
            let all: Vec<Container> = starts
                .iter()
                .map(|(t, n)| {
                    serde_json::from_value(serde_json::json!({
                        "id": format!("{n:08x}"), "image": "", "status": "stopped",
                        "started_at": chrono::DateTime::from_timestamp(*t, 0).unwrap(),
                    }))
                    .unwrap()
                })
                .collect();
            let mut want = all.clone();
            want.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
            prop_assert_eq!(by_start_time(all), want);
        }
    }
}
