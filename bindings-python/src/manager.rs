//! `Manager`: the container lifecycle, one Python method per core
//! operation.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::blocking::{detached, interruptible, uninterruptible};
use crate::container::{Container, ExecResult};
use crate::errors::invalid;
use crate::logs::LogStream;
use crate::options::{Pairs, RunArgs};
use crate::repr;
use crate::snapshot::Snapshot;

/// `stop`'s default below is a literal (PyO3 signatures need one); keep it
/// the core's.
const _: () = assert!(vmcontainer::DEFAULT_STOP_TIMEOUT.as_secs() == 10);

fn duration(what: &'static str, secs: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| invalid(what, secs, "must be a finite number of seconds >= 0"))
}

/// Waits for a `run`: a detached start is not interrupted (a cancelled
/// start could leave a VM no record names); a foreground run stops on
/// Ctrl-C.
fn started<F>(py: Python<'_>, detach: bool, fut: F) -> PyResult<Container>
where
    F: std::future::Future<Output = vmcontainer::Result<vmcontainer::Container>> + Send,
{
    let c = if detach {
        uninterruptible(py, fut)?
    } else {
        interruptible(py, fut)?
    };
    Ok(c.into())
}

/// Runs and manages LinuxKit VMs as containers under one root directory.
///
/// `home` defaults to `$VMCONTAINER_HOME`, else `~/.core`; `hypervisor` is
/// `"qemu"` or `"hyperkit"` (default: the best one installed). Every method
/// releases the GIL while it works; the long waits (`wait_ready`, `stop`,
/// `exec`, `remove(force=True)`, foreground `run`) can be interrupted with
/// Ctrl-C, which cancels them. Safe to share between threads and to
/// recreate after `os.fork()`.
#[pyclass(module = "vmcontainer", frozen)]
pub struct Manager {
    inner: vmcontainer::blocking::Manager,
}

impl Manager {
    fn core(&self) -> &vmcontainer::LinuxKitManager {
        self.inner.inner()
    }
}

#[pymethods]
impl Manager {
    #[new]
    #[pyo3(signature = (home = None, hypervisor = None))]
    fn new(py: Python<'_>, home: Option<PathBuf>, hypervisor: Option<String>) -> PyResult<Self> {
        let inner = detached(py, || {
            vmcontainer::blocking::Manager::new(home.as_deref(), hypervisor.as_deref())
        })?;
        Ok(Manager { inner })
    }

    /// The root directory (state file, logs, templates).
    #[getter]
    fn home(&self) -> PathBuf {
        self.core().home().root().to_path_buf()
    }

    /// Name of the hypervisor in use.
    #[getter]
    fn hypervisor(&self) -> &'static str {
        self.core().hypervisor().name()
    }

    /// Starts a new container from `image` (`.iso`, `.qcow2`, `.vmdk`,
    /// `.raw`/`.img`, or a LinuxKit `NAME-kernel` with its `NAME-initrd.img`).
    ///
    /// `detach=True` (the default, unlike `docker run`) returns as soon as
    /// the VM process is up and leaves it running after this program exits;
    /// that is what scripts want. `detach=False` blocks until the VM exits
    /// (serial output goes to the log) and returns the final record.
    /// Defaults: 1024 MB, 1 CPU, a free loopback SSH port. `ports` and
    /// `volumes` map host → guest; forwarded ports listen on 127.0.0.1
    /// unless `bind_address` says otherwise. `ssh_key` is the private key
    /// `exec` uses. Startup failures raise with the hypervisor's message.
    #[pyo3(signature = (image, *, name = None, detach = true, memory = None, cpus = None,
        ports = None, volumes = None, ssh_port = None, ssh_key = None, bind_address = None))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        image: PathBuf,
        name: Option<String>,
        detach: bool,
        memory: Option<i64>,
        cpus: Option<i64>,
        ports: Option<Pairs<i64, i64>>,
        volumes: Option<Pairs<PathBuf, String>>,
        ssh_port: Option<i64>,
        ssh_key: Option<PathBuf>,
        bind_address: Option<String>,
    ) -> PyResult<Container> {
        let opts = RunArgs {
            name,
            detach,
            memory,
            cpus,
            ports,
            volumes,
            ssh_port,
            ssh_key,
            bind_address,
        }
        .into_options()?;
        started(py, detach, self.core().run(&image, opts))
    }

    /// Boots a stopped container again, with the disk it wrote before.
    fn start(&self, py: Python<'_>, id: &str) -> PyResult<Container> {
        Ok(uninterruptible(py, self.core().start(id))?.into())
    }

    /// Stops a container: ACPI power-down so the guest can flush its disks,
    /// then SIGTERM after `timeout` seconds, then SIGKILL. Returns the
    /// updated record.
    #[pyo3(signature = (id, timeout = 10.0))]
    fn stop(&self, py: Python<'_>, id: &str, timeout: f64) -> PyResult<Container> {
        let timeout = duration("timeout", timeout)?;
        Ok(interruptible(py, self.core().stop(id, timeout))?.into())
    }

    /// Every known container, oldest first; a "running" one whose VM is
    /// gone is reported (and recorded) as stopped.
    fn list(&self, py: Python<'_>) -> PyResult<Vec<Container>> {
        let all = detached(py, || self.inner.list())?;
        Ok(all.into_iter().map(Container::from).collect())
    }

    /// One container by ID, unique ID prefix, or name.
    fn get(&self, py: Python<'_>, id: &str) -> PyResult<Container> {
        Ok(detached(py, || self.inner.get(id))?.into())
    }

    /// Everything known about a container, including the paths of its
    /// log, instance directory and sockets, as a JSON-like dict (times are
    /// RFC 3339 strings, as in the state file).
    fn inspect<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyAny>> {
        let json = detached(py, || {
            let i = self.inner.inspect(id)?;
            Ok(serde_json::to_string(&i).expect("an Inspect always serializes"))
        })?;
        py.import("json")?.call_method1("loads", (json,))
    }

    /// Deletes a container's record, log and disk overlay. A running one is
    /// refused (`ContainerRunningError`) unless `force`, which stops it
    /// first. Returns the removed record.
    #[pyo3(signature = (id, force = false))]
    fn remove(&self, py: Python<'_>, id: &str, force: bool) -> PyResult<Container> {
        Ok(interruptible(py, self.core().remove(id, force))?.into())
    }

    /// The serial log as text; with `follow=True`, a `LogStream` of lines
    /// that yields new output within milliseconds and ends when the
    /// container stops.
    #[pyo3(signature = (id, follow = false))]
    fn logs(&self, py: Python<'_>, id: &str, follow: bool) -> PyResult<Py<PyAny>> {
        if follow {
            let follower = detached(py, || {
                let id = self.inner.inner().resolve(id)?;
                Ok((id.clone(), self.inner.follow_logs(&id)?))
            })?;
            let stream = LogStream::new(follower.0, follower.1);
            return Ok(Bound::new(py, stream)?.into_any().unbind());
        }
        let bytes = detached(py, || self.inner.logs(id))?;
        Ok(PyString::new(py, &String::from_utf8_lossy(&bytes))
            .into_any()
            .unbind())
    }

    /// Runs `cmd` (an argv list; nothing is interpreted by a local shell)
    /// in the guest as root over SSH, and returns its exit code and output.
    /// A non-zero exit code is not an exception; SSH failing is.
    fn exec(&self, py: Python<'_>, id: &str, cmd: Vec<String>) -> PyResult<ExecResult> {
        Ok(interruptible(py, self.core().exec(id, &cmd))?.into())
    }

    /// Waits until the guest's SSH server answers (and pins its host key),
    /// at most `timeout` seconds; raises `WaitTimeoutError` after that, or
    /// `NotRunningError` if the VM stops meanwhile.
    #[pyo3(signature = (id, timeout = 120.0))]
    fn wait_ready(&self, py: Python<'_>, id: &str, timeout: f64) -> PyResult<Container> {
        let timeout = duration("timeout", timeout)?;
        Ok(interruptible(py, self.core().wait_ready(id, timeout))?.into())
    }

    /// Snapshots running container `id` as `name`: its memory, devices and
    /// disk at one instant. The container keeps running (it is paused
    /// while its state is written). A failure (e.g. a full disk) leaves no
    /// snapshot behind and the container running.
    fn snapshot_create(&self, py: Python<'_>, id: &str, name: &str) -> PyResult<Snapshot> {
        Ok(uninterruptible(py, self.core().snapshot_create(id, name))?.into())
    }

    /// Every snapshot, oldest first.
    fn snapshot_list(&self, py: Python<'_>) -> PyResult<Vec<Snapshot>> {
        let all = detached(py, || self.inner.snapshot_list())?;
        Ok(all.into_iter().map(Snapshot::from).collect())
    }

    /// One snapshot by name.
    fn snapshot_get(&self, py: Python<'_>, name: &str) -> PyResult<Snapshot> {
        Ok(detached(py, || self.inner.snapshot_get(name))?.into())
    }

    /// Deletes a snapshot; refused (`InvalidInputError`, naming them) while
    /// containers were created from it. Returns what was removed.
    fn snapshot_remove(&self, py: Python<'_>, name: &str) -> PyResult<Snapshot> {
        Ok(detached(py, || self.inner.snapshot_remove(name))?.into())
    }

    /// Starts a new container that resumes snapshot `snapshot`: the guest
    /// goes on where the snapshot's source was, with its memory, processes
    /// and disk. Name, ports, SSH port and key as for `run` (the key
    /// defaults to the source's); memory and CPUs are the snapshot's
    /// (other values raise `InvalidInputError`), as are its volumes.
    #[pyo3(signature = (snapshot, *, name = None, detach = true, memory = None, cpus = None,
        ports = None, ssh_port = None, ssh_key = None, bind_address = None))]
    #[allow(clippy::too_many_arguments)]
    fn run_snapshot(
        &self,
        py: Python<'_>,
        snapshot: &str,
        name: Option<String>,
        detach: bool,
        memory: Option<i64>,
        cpus: Option<i64>,
        ports: Option<Pairs<i64, i64>>,
        ssh_port: Option<i64>,
        ssh_key: Option<PathBuf>,
        bind_address: Option<String>,
    ) -> PyResult<Container> {
        let opts = RunArgs {
            name,
            detach,
            memory,
            cpus,
            ports,
            volumes: None,
            ssh_port,
            ssh_key,
            bind_address,
        }
        .into_options()?;
        started(py, detach, self.core().run_snapshot(snapshot, opts))
    }

    /// Writes container `id`'s disk, flattened, to `path` (a new `.qcow2`
    /// file) as a standalone image that boots on its own; returns its
    /// absolute path. A running container is paused while its disk is
    /// copied.
    fn commit(&self, py: Python<'_>, id: &str, path: PathBuf) -> PyResult<PathBuf> {
        uninterruptible(py, self.core().commit(id, &path))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Manager(home={}, hypervisor={})",
            repr(py, &self.core().home().root().display().to_string()),
            repr(py, self.core().hypervisor().name())
        )
    }
}
