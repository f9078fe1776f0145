//! `vmcontainer.devenv`: the dev environment (`core-devops` image, the
//! `core-dev` VM with the project at `/app`) and the serve/test detection.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use vmcontainer::devenv::{
    self as core, BootOptions, ClaudeOptions, ServeOptions, ShellOptions, TestOptions,
};

use crate::blocking::{detached, interruptible, interruptible_unless};
use crate::container::Container;
use crate::errors::{invalid, to_py};
use crate::progress::Progress;
use crate::repr;

/// The dev environment of one vmcontainer home (default
/// `$VMCONTAINER_HOME`, else `~/.core`), configured by its `config.yaml`.
/// Like `Manager`, every call releases the GIL and the long ones (install,
/// update, boot, stop, shell, serve, test, claude) can be interrupted with
/// Ctrl-C.
#[pyclass(module = "vmcontainer.devenv", frozen)]
pub struct DevOps {
    inner: core::DevOps,
}

fn seconds(what: &'static str, secs: Option<f64>, default: Duration) -> PyResult<Duration> {
    secs.map_or(Ok(default), |s| {
        vmcontainer::options::seconds(what, s).map_err(to_py)
    })
}

fn u32_arg(what: &'static str, v: Option<i64>) -> PyResult<Option<u32>> {
    crate::options::count(what, v, u32::MAX).map_err(to_py)
}

fn port_arg(what: &'static str, v: i64) -> PyResult<u16> {
    match crate::options::count(what, Some(v), u16::MAX.into()).map_err(to_py)? {
        Some(p) if p != 0 => Ok(p as u16),
        _ => Err(invalid(what, v, "ports must be between 1 and 65535")),
    }
}

#[pymethods]
impl DevOps {
    #[new]
    #[pyo3(signature = (home = None))]
    fn new(py: Python<'_>, home: Option<PathBuf>) -> PyResult<Self> {
        let blocking = detached(py, || core::blocking::DevOps::new(home.as_deref()))?;
        Ok(DevOps {
            inner: blocking.inner().clone(),
        })
    }

    /// Whether the dev image is downloaded and verified.
    fn is_installed(&self, py: Python<'_>) -> bool {
        py.detach(|| self.inner.is_installed())
    }

    /// Downloads, verifies and installs the latest dev image (nothing to do
    /// when that release is installed already). `progress(downloaded,
    /// total)` is called on this thread as bytes arrive; `total` is None
    /// when the server does not say.
    #[pyo3(signature = (progress = None))]
    fn install(&self, py: Python<'_>, progress: Option<Py<PyAny>>) -> PyResult<InstallReport> {
        let p = Progress::new(progress);
        let mut report = |done, total| p.report(done, total);
        let fut = self.inner.install(&mut report);
        Ok(interruptible_unless(py, fut, &|| p.failed(), || p.take_error())?.into())
    }

    /// The installed and the latest published version.
    fn check_update(&self, py: Python<'_>) -> PyResult<UpdateInfo> {
        let u = interruptible(py, self.inner.check_update())?;
        Ok(UpdateInfo {
            current: u.current,
            latest: u.latest,
            has_update: u.has_update,
        })
    }

    /// Installs the latest image if it differs from the installed one;
    /// None when already current. Refuses while the dev VM runs.
    #[pyo3(signature = (progress = None))]
    fn update(
        &self,
        py: Python<'_>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Option<InstallReport>> {
        let p = Progress::new(progress);
        let mut report = |done, total| p.report(done, total);
        let fut = self.inner.update(&mut report);
        Ok(interruptible_unless(py, fut, &|| p.failed(), || p.take_error())?.map(Into::into))
    }

    /// Boots the dev VM (`core-dev`, detached) with `project` (default:
    /// the current directory) at `/app`, and waits up to `ready_timeout`
    /// seconds (default 60) for its SSH host key. Memory and CPUs default
    /// to `config.yaml`'s, else 4096 MB and 2. Refuses when it is already
    /// running unless `fresh`, which replaces it.
    #[pyo3(signature = (*, memory = None, cpus = None, fresh = false, project = None,
        ssh_key = None, ready_timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn boot(
        &self,
        py: Python<'_>,
        memory: Option<i64>,
        cpus: Option<i64>,
        fresh: bool,
        project: Option<PathBuf>,
        ssh_key: Option<PathBuf>,
        ready_timeout: Option<f64>,
    ) -> PyResult<Container> {
        let opts = boot_options(memory, cpus, fresh, project, ssh_key, ready_timeout)?;
        Ok(interruptible(py, self.inner.boot(opts))?.into())
    }

    /// Stops the dev VM.
    fn stop(&self, py: Python<'_>) -> PyResult<Container> {
        Ok(interruptible(py, self.inner.stop())?.into())
    }

    /// Whether the dev VM is running.
    fn is_running(&self, py: Python<'_>) -> PyResult<bool> {
        detached(py, || self.inner.is_running())
    }

    /// Installed, running, version, container, resources, uptime.
    fn status(&self, py: Python<'_>) -> PyResult<DevStatus> {
        let s = detached(py, || self.inner.status())?;
        Ok(DevStatus {
            installed: s.installed,
            running: s.running,
            image_version: s.image_version,
            image_path: s.image_path,
            container_id: s.container_id,
            memory: s.memory,
            cpus: s.cpus,
            ssh_port: s.ssh_port,
            uptime_secs: s.uptime_secs,
            project: s.project,
        })
    }

    /// Runs `command` (an argv list; default: a login shell) in the dev VM
    /// over SSH attached to this process's terminal, forwarding the SSH
    /// agent unless `agent=False`; `console=True` attaches to the serial
    /// console instead (detach with Ctrl-]). Returns the exit code.
    #[pyo3(signature = (command = None, *, console = false, agent = true))]
    fn shell(
        &self,
        py: Python<'_>,
        command: Option<Vec<String>>,
        console: bool,
        agent: bool,
    ) -> PyResult<i32> {
        let opts = ShellOptions {
            console,
            command: command.unwrap_or_default(),
            no_agent: !agent,
            ..Default::default()
        };
        interruptible(py, self.inner.shell(opts))
    }

    /// The command `serve` would run (`command`, else the detected one),
    /// without running it; needs no VM.
    #[pyo3(signature = (command = None, *, project = None, path = None))]
    fn serve_command(
        &self,
        py: Python<'_>,
        command: Option<Vec<String>>,
        project: Option<PathBuf>,
        path: Option<PathBuf>,
    ) -> PyResult<String> {
        let opts = ServeOptions {
            project,
            path,
            command: command.unwrap_or_default(),
            ..Default::default()
        };
        detached(py, || self.inner.serve_command(&opts))
    }

    /// Serves the project from the dev VM: `command` (argv) or the
    /// detected one, in `/app` (or `/app/<path>`), guest port `guest_port`
    /// forwarded to 127.0.0.1:`port`. Runs until the server exits or
    /// Ctrl-C; returns its exit code.
    #[pyo3(signature = (command = None, *, project = None, path = None, port = 8000, guest_port = 8000))]
    fn serve(
        &self,
        py: Python<'_>,
        command: Option<Vec<String>>,
        project: Option<PathBuf>,
        path: Option<PathBuf>,
        port: i64,
        guest_port: i64,
    ) -> PyResult<i32> {
        let opts = ServeOptions {
            project,
            path,
            port: port_arg("port", port)?,
            guest_port: port_arg("guest port", guest_port)?,
            command: command.unwrap_or_default(),
            ..Default::default()
        };
        interruptible(py, self.inner.serve(opts, std::future::pending()))
    }

    /// Runs the project's tests in the dev VM: `command` (argv) wins, then
    /// the command `name`d in `.core/test.yaml`, then its default, then
    /// detection. Returns the exit code.
    #[pyo3(signature = (command = None, *, name = None, project = None))]
    fn test(
        &self,
        py: Python<'_>,
        command: Option<Vec<String>>,
        name: Option<String>,
        project: Option<PathBuf>,
    ) -> PyResult<i32> {
        let opts = TestOptions {
            project,
            name,
            command: command.unwrap_or_default(),
            ..Default::default()
        };
        interruptible(py, self.inner.test(opts))
    }

    /// The shell command line `test` would run, without running it.
    #[pyo3(signature = (command = None, *, name = None, project = None))]
    fn test_command(
        &self,
        py: Python<'_>,
        command: Option<Vec<String>>,
        name: Option<String>,
        project: Option<PathBuf>,
    ) -> PyResult<String> {
        let opts = TestOptions {
            project,
            name,
            command: command.unwrap_or_default(),
            ..Default::default()
        };
        detached(py, || self.inner.test_command(&opts))
    }

    /// Runs Claude Code in the dev VM (booting it if needed) with the
    /// project at `/app`, forwarding the selected credentials (`auth`: any
    /// of "anthropic", "gh", "ssh", "git"; default all that are
    /// available) without putting any secret on a command line. Returns
    /// its exit code.
    #[pyo3(signature = (args = None, *, model = None, auth = None, project = None))]
    fn claude(
        &self,
        py: Python<'_>,
        args: Option<Vec<String>>,
        model: Option<String>,
        auth: Option<Vec<String>>,
        project: Option<PathBuf>,
    ) -> PyResult<i32> {
        let auth = auth
            .map(|names| {
                names
                    .iter()
                    .map(|n| n.parse::<core::Auth>().map_err(to_py))
                    .collect::<PyResult<Vec<_>>>()
            })
            .transpose()?;
        let opts = ClaudeOptions {
            project,
            model,
            auth,
            args: args.unwrap_or_default(),
            ..Default::default()
        };
        interruptible(py, self.inner.claude(opts))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "DevOps(home={})",
            repr(
                py,
                &self.inner.manager().home().root().display().to_string()
            )
        )
    }
}

fn boot_options(
    memory: Option<i64>,
    cpus: Option<i64>,
    fresh: bool,
    project: Option<PathBuf>,
    ssh_key: Option<PathBuf>,
    ready_timeout: Option<f64>,
) -> PyResult<BootOptions> {
    let d = BootOptions::default();
    Ok(BootOptions {
        memory: u32_arg("memory", memory)?,
        cpus: u32_arg("cpus", cpus)?,
        fresh,
        project,
        ssh_key,
        ready_timeout: seconds("ready timeout", ready_timeout, d.ready_timeout)?,
    })
}

/// What `install` or `update` did.
#[pyclass(module = "vmcontainer.devenv", frozen, get_all)]
pub struct InstallReport {
    /// The installed image file.
    path: PathBuf,
    /// Its version.
    version: String,
    /// The source it came from (`github` or `cdn`).
    source: String,
    /// Its sha256 (hex).
    sha256: String,
    /// Its size in bytes.
    size: u64,
    /// Bytes reused from an interrupted earlier download.
    resumed_from: u64,
    /// True when that release was installed already (nothing downloaded).
    already_installed: bool,
}

impl From<core::InstallReport> for InstallReport {
    fn from(r: core::InstallReport) -> Self {
        InstallReport {
            path: r.path,
            version: r.version,
            source: r.source,
            sha256: r.sha256,
            size: r.size,
            resumed_from: r.resumed_from,
            already_installed: r.already_installed,
        }
    }
}

#[pymethods]
impl InstallReport {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "InstallReport(version={}, source={}, size={}, already_installed={})",
            repr(py, &self.version),
            repr(py, &self.source),
            self.size,
            if self.already_installed {
                "True"
            } else {
                "False"
            }
        )
    }
}

/// Result of `check_update`.
#[pyclass(module = "vmcontainer.devenv", frozen, get_all)]
pub struct UpdateInfo {
    /// The installed version.
    current: String,
    /// The latest published version.
    latest: String,
    /// Whether they differ.
    has_update: bool,
}

#[pymethods]
impl UpdateInfo {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "UpdateInfo(current={}, latest={}, has_update={})",
            repr(py, &self.current),
            repr(py, &self.latest),
            if self.has_update { "True" } else { "False" }
        )
    }
}

/// Result of `status`.
#[pyclass(module = "vmcontainer.devenv", frozen, get_all)]
pub struct DevStatus {
    /// Whether the image is downloaded.
    installed: bool,
    /// Whether the dev VM is running.
    running: bool,
    /// Installed image version.
    image_version: Option<String>,
    /// The image file (present or not).
    image_path: PathBuf,
    /// The dev VM's container ID.
    container_id: Option<String>,
    /// Memory in MB.
    memory: Option<u32>,
    /// vCPUs.
    cpus: Option<u32>,
    /// Host port of the guest's SSH.
    ssh_port: Option<u16>,
    /// Seconds since the VM started (running only).
    uptime_secs: Option<u64>,
    /// Project directory shared at `/app`.
    project: Option<PathBuf>,
}

#[pymethods]
impl DevStatus {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "DevStatus(installed={}, running={}, image_version={}, container_id={})",
            if self.installed { "True" } else { "False" },
            if self.running { "True" } else { "False" },
            self.image_version
                .as_deref()
                .map_or("None".into(), |v| repr(py, v)),
            self.container_id
                .as_deref()
                .map_or("None".into(), |v| repr(py, v)),
        )
    }
}

/// A project's `.core/test.yaml`.
#[pyclass(module = "vmcontainer.devenv", frozen, get_all)]
pub struct TestConfig {
    /// Schema version.
    version: u32,
    /// Default test command (a shell command line; may be empty).
    command: String,
    /// Named commands, name → shell command line, in file order.
    commands: Vec<(String, String)>,
    /// Environment for every test command.
    env: BTreeMap<String, String>,
}

#[pymethods]
impl TestConfig {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "TestConfig(command={}, commands={})",
            repr(py, &self.command),
            self.commands.len()
        )
    }
}

/// `core-devops-{os}-{arch}.qcow2`: the dev image's file name on this host.
#[pyfunction]
pub fn image_name() -> String {
    core::image_name()
}

/// The command `serve` would run for the project in `dir` (SPEC order:
/// artisan, package.json dev/start, composer.json, go.mod, manage.py,
/// else a static file server).
#[pyfunction]
pub fn detect_serve_command(py: Python<'_>, dir: PathBuf) -> String {
    py.detach(|| core::detect_serve_command(&dir))
}

/// The command `test` would detect for `dir` (`.core/test.yaml` command,
/// composer/npm test scripts, go.mod, pytest, Taskfile), or None.
#[pyfunction]
pub fn detect_test_command(py: Python<'_>, dir: PathBuf) -> Option<String> {
    py.detach(|| core::detect_test_command(&dir))
}

/// `dir/.core/test.yaml`, or None when there is none; an invalid file
/// raises `InvalidInputError` naming the file and line.
#[pyfunction]
pub fn load_test_config(py: Python<'_>, dir: PathBuf) -> PyResult<Option<TestConfig>> {
    let c = detached(py, || core::load_test_config(&dir))?;
    Ok(c.map(|c| TestConfig {
        version: c.version,
        command: c.command,
        commands: c.commands.into_iter().map(|c| (c.name, c.run)).collect(),
        env: c.env,
    }))
}
