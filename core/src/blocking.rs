//! A blocking facade over [`LinuxKitManager`] for callers without an async
//! runtime (the C ABI, Python, the CLI's simple paths). One shared
//! multi-threaded tokio runtime serves every manager in the process.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use crate::container::{Container, RunOptions};
use crate::error::Result;
use crate::home::Home;
use crate::logs::LogFollower;
use crate::manager::{Inspect, LinuxKitManager};
use crate::snapshot::Snapshot;
use crate::ssh::ExecOutput;

/// The process-wide runtime the blocking facade runs on.
///
/// Fork-safe: a runtime's worker threads do not survive `fork()`, so a
/// child process (e.g. after Python's `os.fork()`) that calls this gets a
/// fresh runtime of its own; the parent's copy is leaked, never dropped,
/// because shutting it down would wait for threads that do not exist.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: Mutex<Option<(u32, &'static tokio::runtime::Runtime)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut rt = RT.lock().unwrap_or_else(|e| e.into_inner());
    match *rt {
        Some((owner, r)) if owner == pid => r,
        _ => {
            let r: &'static _ = Box::leak(Box::new(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("vmcontainer")
                    .enable_all()
                    .build()
                    .expect("failed to start the tokio runtime"),
            ));
            *rt = Some((pid, r));
            r
        }
    }
}

/// Blocking version of [`LinuxKitManager`]; each method blocks the calling
/// thread until the async operation completes.
#[derive(Debug, Clone)]
pub struct Manager {
    inner: LinuxKitManager,
}

impl Manager {
    /// A manager for `home` (default: `$VMCONTAINER_HOME` or `~/.core`)
    /// using `hypervisor` (`"qemu"`, `"hyperkit"`; default: detected).
    pub fn new(home: Option<&Path>, hypervisor: Option<&str>) -> Result<Self> {
        let home = match home {
            Some(h) => Home::new(crate::home::absolute(h)),
            None => Home::from_env()?,
        };
        let inner = match hypervisor {
            Some(name) => LinuxKitManager::with_hypervisor(home, crate::get_hypervisor(name)?),
            None => LinuxKitManager::new(home)?,
        };
        Ok(Manager { inner })
    }

    /// Wraps an async manager.
    pub fn from_async(inner: LinuxKitManager) -> Self {
        Manager { inner }
    }

    /// The async manager underneath.
    pub fn inner(&self) -> &LinuxKitManager {
        &self.inner
    }

    /// See [`LinuxKitManager::run`].
    pub fn run(&self, image: &Path, opts: RunOptions) -> Result<Container> {
        runtime().block_on(self.inner.run(image, opts))
    }
    /// See [`LinuxKitManager::start`].
    pub fn start(&self, reference: &str) -> Result<Container> {
        runtime().block_on(self.inner.start(reference))
    }
    /// See [`LinuxKitManager::stop`].
    pub fn stop(&self, reference: &str, timeout: Duration) -> Result<Container> {
        runtime().block_on(self.inner.stop(reference, timeout))
    }
    /// See [`LinuxKitManager::list`].
    pub fn list(&self) -> Result<Vec<Container>> {
        self.inner.list()
    }
    /// See [`LinuxKitManager::get`].
    pub fn get(&self, reference: &str) -> Result<Container> {
        self.inner.get(reference)
    }
    /// See [`LinuxKitManager::inspect`].
    pub fn inspect(&self, reference: &str) -> Result<Inspect> {
        self.inner.inspect(reference)
    }
    /// See [`LinuxKitManager::remove`].
    pub fn remove(&self, reference: &str, force: bool) -> Result<Container> {
        runtime().block_on(self.inner.remove(reference, force))
    }
    /// See [`LinuxKitManager::logs`].
    pub fn logs(&self, reference: &str) -> Result<Vec<u8>> {
        self.inner.logs(reference)
    }
    /// See [`LinuxKitManager::follow_logs`]; pull lines with
    /// [`Manager::next_line`].
    pub fn follow_logs(&self, reference: &str) -> Result<LogFollower> {
        let _guard = runtime().enter();
        self.inner.follow_logs(reference)
    }
    /// The next line of a follower, blocking; `None` at the end.
    pub fn next_line(follower: &mut LogFollower) -> Option<Result<String>> {
        runtime().block_on(follower.next_line())
    }
    /// See [`LinuxKitManager::exec`].
    pub fn exec(&self, reference: &str, cmd: &[String]) -> Result<ExecOutput> {
        runtime().block_on(self.inner.exec(reference, cmd))
    }
    /// See [`LinuxKitManager::snapshot_create`].
    pub fn snapshot_create(&self, reference: &str, name: &str) -> Result<Snapshot> {
        runtime().block_on(self.inner.snapshot_create(reference, name))
    }
    /// See [`LinuxKitManager::snapshot_list`].
    pub fn snapshot_list(&self) -> Result<Vec<Snapshot>> {
        self.inner.snapshot_list()
    }
    /// See [`LinuxKitManager::snapshot_get`].
    pub fn snapshot_get(&self, name: &str) -> Result<Snapshot> {
        self.inner.snapshot_get(name)
    }
    /// See [`LinuxKitManager::snapshot_remove`].
    pub fn snapshot_remove(&self, name: &str) -> Result<Snapshot> {
        self.inner.snapshot_remove(name)
    }
    /// See [`LinuxKitManager::run_snapshot`].
    pub fn run_snapshot(&self, name: &str, opts: RunOptions) -> Result<Container> {
        runtime().block_on(self.inner.run_snapshot(name, opts))
    }
    /// See [`LinuxKitManager::commit`].
    pub fn commit(&self, reference: &str, path: &Path) -> Result<std::path::PathBuf> {
        runtime().block_on(self.inner.commit(reference, path))
    }
    /// See [`LinuxKitManager::wait_ready`].
    pub fn wait_ready(&self, reference: &str, timeout: Duration) -> Result<Container> {
        runtime().block_on(self.inner.wait_ready(reference, timeout))
    }
}
