//! A blocking facade over [`LinuxKitManager`] for callers without an async
//! runtime (the C ABI, Python, the CLI's simple paths). One shared
//! multi-threaded tokio runtime serves every manager in the process.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use crate::cancel::{self, CancelToken};
use crate::container::{Container, RunOptions};
use crate::copy::CopyOptions;
use crate::error::Result;
use crate::home::Home;
use crate::logs::LogFollower;
use crate::manager::{ExecOptions, Inspect, LinuxKitManager};
use crate::snapshot::Snapshot;
use crate::ssh::ExecOutput;
use crate::templates::TemplateDirs;
use crate::transport::Transport;

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
///
/// A manager made with [`Manager::with_cancel`] ends its waits with
/// [`crate::Error::Cancelled`] once the token is cancelled (from any
/// thread). Starting a VM (`run` detached, `start`) is never cut short —
/// a half-started VM would be left without a record — so the token is
/// checked before it begins; a foreground run is ended by stopping the VM.
#[derive(Debug, Clone)]
pub struct Manager {
    inner: LinuxKitManager,
    cancel: Option<CancelToken>,
}

impl Manager {
    /// A manager for `home` (default: `$VMCONTAINER_HOME` or `~/.core`)
    /// using `hypervisor` (`"qemu"`, `"hyperkit"`; default: detected).
    pub fn new(home: Option<&Path>, hypervisor: Option<&str>) -> Result<Self> {
        let home = Home::resolve(home)?;
        let inner = match hypervisor {
            Some(name) => LinuxKitManager::with_hypervisor(home, crate::get_hypervisor(name)?),
            None => LinuxKitManager::new(home)?,
        };
        Ok(Self::from_async(inner))
    }

    /// Wraps an async manager.
    pub fn from_async(inner: LinuxKitManager) -> Self {
        Manager {
            inner,
            cancel: None,
        }
    }

    /// The same manager whose waits end when `token` is cancelled.
    pub fn with_cancel(&self, token: CancelToken) -> Self {
        Manager {
            inner: self.inner.clone(),
            cancel: Some(token),
        }
    }

    /// The token given to [`Self::with_cancel`], if any.
    pub fn cancel_token(&self) -> Option<&CancelToken> {
        self.cancel.as_ref()
    }

    /// The async manager underneath.
    pub fn inner(&self) -> &LinuxKitManager {
        &self.inner
    }

    /// Runs `fut` to completion, or until the token is cancelled.
    fn wait<T>(&self, what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        runtime().block_on(cancel::guard(self.cancel.as_ref(), what, fut))
    }

    /// Fails if the token is already cancelled (before an operation that
    /// must not be cut short).
    fn check(&self, what: &str) -> Result<()> {
        self.cancel.as_ref().map_or(Ok(()), |t| t.check(what))
    }

    /// See [`LinuxKitManager::run`]. Foreground (`opts.detach == false`)
    /// waits for the VM to exit; see [`Self::run_attached`].
    pub fn run(&self, image: &Path, opts: RunOptions) -> Result<Container> {
        if !opts.detach {
            return self.run_attached(image, opts, &mut |_: &[u8]| {});
        }
        self.check("run")?;
        runtime().block_on(self.inner.run(image, opts))
    }

    /// Runs a container in the foreground until the VM exits, calling
    /// `on_output` with its serial output as it arrives, on this thread
    /// (so it need not be `Send`). Cancelling the token stops the VM (ACPI
    /// power-down first) and then fails with [`crate::Error::Cancelled`].
    pub fn run_attached(
        &self,
        image: &Path,
        opts: RunOptions,
        on_output: &mut dyn FnMut(&[u8]),
    ) -> Result<Container> {
        let image = image.to_path_buf();
        self.attached(on_output, move |m, mut sink, stop| async move {
            m.run_attached_until(&image, opts, &mut *sink, stop.wait())
                .await
        })
    }

    /// Runs the foreground VM that `start` begins on the runtime, handing
    /// its queued serial output to `on_output` on this thread, and turns a
    /// cancelled token (which `start`'s [`StopSignal`] obeys by stopping
    /// the VM) into [`crate::Error::Cancelled`].
    fn attached<F, Fut>(&self, on_output: &mut dyn FnMut(&[u8]), start: F) -> Result<Container>
    where
        F: FnOnce(LinuxKitManager, Box<dyn FnMut(&[u8]) + Send>, StopSignal) -> Fut,
        Fut: Future<Output = Result<Container>> + Send + 'static,
    {
        self.check("foreground run")?;
        let token = self.cancel.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let sink = Box::new(move |b: &[u8]| {
            let _ = tx.send(b.to_vec());
        });
        let task = runtime().spawn(start(self.inner.clone(), sink, StopSignal(token.clone())));
        for chunk in rx {
            on_output(&chunk);
        }
        let c = runtime()
            .block_on(task)
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        match token {
            Some(t) if t.is_cancelled() => Err(crate::Error::Cancelled(format!(
                "foreground run of container {} (the VM was stopped)",
                c.id
            ))),
            _ => Ok(c),
        }
    }

    /// See [`LinuxKitManager::run_template`]: builds template `name` with
    /// `vars` and runs it (foreground when `opts.detach` is false). The
    /// build is cancellable; the start is not, as for [`Self::run`].
    pub fn run_template(
        &self,
        dirs: &TemplateDirs,
        name: &str,
        vars: &BTreeMap<String, String>,
        opts: RunOptions,
    ) -> Result<Container> {
        if !opts.detach {
            return self.run_template_attached(dirs, name, vars, opts, &mut |_: &[u8]| {});
        }
        let what = format!("building template {name}");
        let image = self.wait(&what, self.inner.build_template(dirs, name, vars))?;
        self.run(&image.path, image.size(opts))
    }

    /// [`Self::run_template`] in the foreground, with output as for
    /// [`Self::run_attached`].
    pub fn run_template_attached(
        &self,
        dirs: &TemplateDirs,
        name: &str,
        vars: &BTreeMap<String, String>,
        opts: RunOptions,
        on_output: &mut dyn FnMut(&[u8]),
    ) -> Result<Container> {
        let what = format!("building template {name}");
        let image = self.wait(&what, self.inner.build_template(dirs, name, vars))?;
        self.run_attached(&image.path, image.size(opts), on_output)
    }

    /// See [`LinuxKitManager::start`] (checked for cancellation first,
    /// never cut short).
    pub fn start(&self, reference: &str) -> Result<Container> {
        self.check("start")?;
        runtime().block_on(self.inner.start(reference))
    }
    /// See [`LinuxKitManager::stop`].
    pub fn stop(&self, reference: &str, timeout: Duration) -> Result<Container> {
        self.wait(
            &format!("stop of {reference}"),
            self.inner.stop(reference, timeout),
        )
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
        self.wait(
            &format!("removal of {reference}"),
            self.inner.remove(reference, force),
        )
    }
    /// See [`LinuxKitManager::logs`].
    pub fn logs(&self, reference: &str) -> Result<Vec<u8>> {
        self.inner.logs(reference)
    }
    /// See [`LinuxKitManager::follow_logs`]; pull lines with
    /// [`Manager::next_line`] or [`Manager::next_line_until`].
    pub fn follow_logs(&self, reference: &str) -> Result<LogFollower> {
        let _guard = runtime().enter();
        self.inner.follow_logs(reference)
    }
    /// The next line of a follower, blocking; `None` at the end.
    pub fn next_line(follower: &mut LogFollower) -> Option<Result<String>> {
        runtime().block_on(follower.next_line())
    }
    /// [`Self::next_line`] that fails with [`crate::Error::Cancelled`]
    /// once `token` is cancelled; the follower loses nothing and stays
    /// usable with another token.
    pub fn next_line_until(
        follower: &mut LogFollower,
        token: Option<&CancelToken>,
    ) -> Option<Result<String>> {
        let fut = async { Ok(follower.next_line().await) };
        match runtime().block_on(cancel::guard(token, "following the log", fut)) {
            Ok(line) => line,
            Err(e) => Some(Err(e)),
        }
    }
    /// See [`LinuxKitManager::exec`].
    pub fn exec(&self, reference: &str, cmd: &[String]) -> Result<ExecOutput> {
        self.wait(
            &format!("exec in {reference}"),
            self.inner.exec(reference, cmd),
        )
    }
    /// See [`LinuxKitManager::spawn`]. The process's streams and waits are
    /// futures: run them on [`runtime`] (`runtime().block_on(...)`).
    pub fn spawn(
        &self,
        reference: &str,
        cmd: &[String],
        opts: &crate::SpawnOptions,
    ) -> Result<crate::Process> {
        self.wait(
            &format!("spawn in {reference}"),
            self.inner.spawn(reference, cmd, opts),
        )
    }

    /// See [`LinuxKitManager::exec_with`].
    pub fn exec_with(
        &self,
        reference: &str,
        cmd: &[String],
        opts: &ExecOptions,
    ) -> Result<ExecOutput> {
        self.wait(
            &format!("exec in {reference}"),
            self.inner.exec_with(reference, cmd, opts),
        )
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
    /// See [`LinuxKitManager::run_snapshot`]: checked for cancellation
    /// first, never cut short, as [`Self::run`]; in the foreground
    /// (`opts.detach == false`) it waits for the VM to exit, as
    /// [`Self::run_snapshot_attached`].
    pub fn run_snapshot(&self, name: &str, opts: RunOptions) -> Result<Container> {
        if !opts.detach {
            return self.run_snapshot_attached(name, opts, &mut |_: &[u8]| {});
        }
        self.check("run from a snapshot")?;
        runtime().block_on(self.inner.run_snapshot(name, opts))
    }
    /// [`Self::run_snapshot`] in the foreground, with output and
    /// cancellation as for [`Self::run_attached`].
    pub fn run_snapshot_attached(
        &self,
        name: &str,
        opts: RunOptions,
        on_output: &mut dyn FnMut(&[u8]),
    ) -> Result<Container> {
        let name = name.to_string();
        self.attached(on_output, move |m, mut sink, stop| async move {
            m.run_snapshot_attached_until(&name, opts, &mut *sink, stop.wait())
                .await
        })
    }
    /// See [`LinuxKitManager::commit`].
    pub fn commit(&self, reference: &str, path: &Path) -> Result<std::path::PathBuf> {
        runtime().block_on(self.inner.commit(reference, path))
    }
    /// See [`LinuxKitManager::wait_ready`].
    pub fn wait_ready(&self, reference: &str, timeout: Duration) -> Result<Container> {
        self.wait(
            &format!("waiting for {reference} to be ready"),
            self.inner.wait_ready(reference, timeout),
        )
    }
    /// See [`LinuxKitManager::wait_ready_via`].
    pub fn wait_ready_via(
        &self,
        reference: &str,
        timeout: Duration,
        transport: Transport,
    ) -> Result<(Container, Transport)> {
        self.wait(
            &format!("waiting for {reference} to be ready"),
            self.inner.wait_ready_via(reference, timeout, transport),
        )
    }
    /// See [`LinuxKitManager::push`]; `opts.progress` runs on this thread.
    #[cfg(feature = "registry")]
    pub fn push(
        &self,
        image: &Path,
        reference: &str,
        opts: crate::registry::PushOptions<'_>,
    ) -> Result<crate::registry::PushReport> {
        self.wait(
            &format!("push to {reference}"),
            self.inner.push(image, reference, opts),
        )
    }
    /// See [`LinuxKitManager::pull`]; `opts.progress` runs on this thread.
    /// Cancelling leaves a partial download that the next pull resumes;
    /// nothing is installed.
    #[cfg(feature = "registry")]
    pub fn pull(
        &self,
        reference: &str,
        opts: crate::registry::PullOptions<'_>,
    ) -> Result<crate::registry::PulledImage> {
        self.wait(
            &format!("pull of {reference}"),
            self.inner.pull(reference, opts),
        )
    }
    /// See [`LinuxKitManager::pulled_images`].
    #[cfg(feature = "registry")]
    pub fn pulled_images(&self) -> Result<Vec<crate::registry::StoredImage>> {
        self.inner.pulled_images()
    }
    /// See [`LinuxKitManager::export_kubevirt`].
    #[cfg(feature = "registry")]
    pub fn export_kubevirt(&self, target: &str, image_ref: Option<&str>) -> Result<String> {
        self.inner.export_kubevirt(target, image_ref)
    }
    /// See [`LinuxKitManager::copy_to`].
    pub fn copy_to(
        &self,
        reference: &str,
        host: &Path,
        guest: &str,
        opts: &CopyOptions,
    ) -> Result<()> {
        self.wait(
            &format!("copy into {reference}"),
            self.inner.copy_to(reference, host, guest, opts),
        )
    }
    /// See [`LinuxKitManager::copy_from`].
    pub fn copy_from(
        &self,
        reference: &str,
        guest: &str,
        host: &Path,
        opts: &CopyOptions,
    ) -> Result<()> {
        self.wait(
            &format!("copy from {reference}"),
            self.inner.copy_from(reference, guest, host, opts),
        )
    }
}

/// Completes when a foreground run should stop: the manager's token was
/// cancelled (never, without one).
pub struct StopSignal(Option<CancelToken>);

impl StopSignal {
    /// Waits for the stop; the reason recorded in the container's
    /// `exit_reason`.
    pub async fn wait(self) -> String {
        match self.0 {
            Some(t) => t.cancelled().await,
            None => std::future::pending().await,
        }
        "the caller cancelled it".to_string()
    }
}
