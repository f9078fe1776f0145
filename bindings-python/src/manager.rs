//! `Manager`: the container lifecycle, one Python method per core
//! operation.

use std::path::PathBuf;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use vmcontainer::manager::Origin;
use vmcontainer::templates::TemplateDirs;
use vmcontainer::{CancelToken, RunOptions};

use crate::blocking::{detached, interruptible, uninterruptible, until_interrupted};
use crate::container::{Container, ExecResult};
use crate::errors::to_py;
use crate::logs::LogStream;
use crate::options::{Pairs, PortKey, RunArgs};
use crate::process::Process;
use crate::repr;
use crate::snapshot::Snapshot;

/// `stop`'s default below is a literal (PyO3 signatures need one); keep it
/// the core's.
const _: () = assert!(vmcontainer::DEFAULT_STOP_TIMEOUT.as_secs() == 10);

fn copy_options(archive: bool, transport: &str) -> PyResult<vmcontainer::CopyOptions> {
    Ok(vmcontainer::CopyOptions {
        archive,
        transport: transport.parse().map_err(to_py)?,
    })
}

fn duration(what: &'static str, secs: f64) -> PyResult<Duration> {
    vmcontainer::options::seconds(what, secs).map_err(to_py)
}

/// A Python `on_output(chunk: bytes)` callback as the core's output sink,
/// called with the GIL on the calling thread. An exception in it is
/// reported as unraisable (like an exception in `__del__`) and does not
/// stop the VM: its log keeps everything.
fn output_sink(callback: Option<Py<PyAny>>) -> impl FnMut(&[u8]) + Send {
    move |chunk: &[u8]| {
        if let Some(cb) = &callback {
            Python::attach(|py| {
                if let Err(e) = cb.call1(py, (PyBytes::new(py, chunk),)) {
                    e.write_unraisable(py, Some(cb.bind(py)));
                }
            });
        }
    }
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

    /// `run`, `run_template` and `run_snapshot` once their options are
    /// read: detached, the start cannot be interrupted (a cancelled start
    /// could leave a hypervisor no record names); in the foreground the
    /// serial output goes to `on_output` and Ctrl-C stops the VM before
    /// `KeyboardInterrupt` is raised.
    fn start_new(
        &self,
        py: Python<'_>,
        origin: Origin<'_>,
        opts: RunOptions,
        on_output: Option<Py<PyAny>>,
    ) -> PyResult<Container> {
        check_output(opts.detach, &on_output)?;
        let core = self.core();
        if opts.detach {
            let fut = core.run_from(origin, opts, None, std::future::pending());
            return Ok(uninterruptible(py, fut)?.into());
        }
        let token = CancelToken::new();
        let mut sink = output_sink(on_output);
        let fut = core.run_from(origin, opts, Some(&mut sink), interrupted(&token));
        Ok(until_interrupted(py, &token, fut)?.into())
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
    /// `detach=True` (the default in every library face of vmcontainer,
    /// unlike `docker run`) returns as soon as the VM process is up and
    /// leaves it running after this program exits; that is what scripts
    /// want. `detach=False` runs in the foreground until the VM exits,
    /// passing its serial output to `on_output(chunk: bytes)` as it
    /// arrives, and returns the final record; Ctrl-C then stops the VM
    /// (ACPI power-down first) before `KeyboardInterrupt` is raised.
    /// Defaults: 1024 MB, 1 CPU, a free loopback SSH port. `ports` and
    /// `volumes` map host → guest; forwarded ports listen on 127.0.0.1
    /// unless `bind_address` says otherwise. `ssh_key` is the private key
    /// `exec` uses. Startup failures raise with the hypervisor's message.
    #[pyo3(signature = (image, *, name = None, detach = true, memory = None, cpus = None,
        ports = None, volumes = None, ssh_port = None, ssh_key = None, bind_address = None,
        on_output = None))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        image: PathBuf,
        name: Option<String>,
        detach: bool,
        memory: Option<i64>,
        cpus: Option<i64>,
        ports: Option<Pairs<PortKey, i64>>,
        volumes: Option<Pairs<PathBuf, String>>,
        ssh_port: Option<i64>,
        ssh_key: Option<PathBuf>,
        bind_address: Option<String>,
        on_output: Option<Py<PyAny>>,
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
        self.start_new(py, Origin::Image(&image), opts, on_output)
    }

    /// Runs a container from LinuxKit template `template` (built-in, then
    /// `cwd/.core/linuxkit/`, then this manager's `home/linuxkit/`): the
    /// template with `vars` substituted is built into an ISO with
    /// `linuxkit build --format iso-bios` and run as `run` does, with the
    /// same keyword arguments. Memory and CPUs come from the template's
    /// `MEMORY` and `CPUS` unless given. `cwd` defaults to the current
    /// directory. Ctrl-C during the build stops it.
    #[pyo3(signature = (template, vars = None, *, cwd = None, name = None, detach = true,
        memory = None, cpus = None, ports = None, volumes = None, ssh_port = None,
        ssh_key = None, bind_address = None, on_output = None))]
    #[allow(clippy::too_many_arguments)]
    fn run_template(
        &self,
        py: Python<'_>,
        template: String,
        vars: Option<Pairs<String, String>>,
        cwd: Option<PathBuf>,
        name: Option<String>,
        detach: bool,
        memory: Option<i64>,
        cpus: Option<i64>,
        ports: Option<Pairs<PortKey, i64>>,
        volumes: Option<Pairs<PathBuf, String>>,
        ssh_port: Option<i64>,
        ssh_key: Option<PathBuf>,
        bind_address: Option<String>,
        on_output: Option<Py<PyAny>>,
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
        check_output(detach, &on_output)?;
        let vars = vars.map(Pairs::into_map).unwrap_or_default();
        let core = self.core();
        let dirs = detached(py, || {
            TemplateDirs::resolve(Some(core.home().root()), cwd.as_deref())
        })?;
        let image = interruptible(py, core.build_template(&dirs, &template, &vars))?;
        let opts = image.size(opts);
        self.start_new(py, Origin::Image(&image.path), opts, on_output)
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
    /// in the guest as root, with `input` bytes on its stdin, and returns
    /// its exit code and output. `transport` is `"auto"` (the guest agent
    /// when it answers, else SSH), `"agent"` or `"ssh"`. A non-zero exit
    /// code is not an exception; the transport failing is.
    #[pyo3(signature = (id, cmd, *, input = None, transport = "auto"))]
    fn exec(
        &self,
        py: Python<'_>,
        id: &str,
        cmd: Vec<String>,
        input: Option<Vec<u8>>,
        transport: &str,
    ) -> PyResult<ExecResult> {
        let opts = vmcontainer::ExecOptions {
            input,
            transport: transport.parse().map_err(to_py)?,
        };
        Ok(interruptible(py, self.core().exec_with(id, &cmd, &opts))?.into())
    }

    /// Starts `cmd` (an argv list) in container `id` and returns a
    /// `Process` at once: write `.stdin`, iterate `.stdout`/`.stderr` as
    /// output arrives, `.wait()`, `.kill(sig)`. `env` adds variables, `cwd`
    /// sets the directory, `user` runs it through the guest's `su`, `tty`
    /// gives it a terminal; after `timeout` seconds it is killed and
    /// `wait()` raises `WaitTimeoutError`. Always over SSH. A process left
    /// without `wait()` is killed when the object goes away; use it as a
    /// context manager to make that explicit.
    #[pyo3(signature = (id, cmd, env = None, cwd = None, user = None, tty = false, *, timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        &self,
        py: Python<'_>,
        id: &str,
        cmd: Vec<String>,
        env: Option<Pairs<String, String>>,
        cwd: Option<String>,
        user: Option<String>,
        tty: bool,
        timeout: Option<f64>,
    ) -> PyResult<Process> {
        let opts = vmcontainer::SpawnOptions {
            env: env.map(|e| e.0).unwrap_or_default(),
            cwd,
            user,
            tty,
            timeout: timeout.map(|t| duration("timeout", t)).transpose()?,
            ..Default::default()
        };
        let p = interruptible(py, self.core().spawn(id, &cmd, &opts))?;
        Process::new(py, p)
    }

    /// Waits until the guest answers on its agent or SSH server (pinning
    /// SSH host keys), at most `timeout` seconds; `transport` narrows it to
    /// one. Raises `WaitTimeoutError` after that, or `NotRunningError` if
    /// the VM stops meanwhile.
    #[pyo3(signature = (id, timeout = 120.0, *, transport = "auto"))]
    fn wait_ready(
        &self,
        py: Python<'_>,
        id: &str,
        timeout: f64,
        transport: &str,
    ) -> PyResult<Container> {
        let timeout = duration("timeout", timeout)?;
        let transport = transport.parse().map_err(to_py)?;
        let (c, _) = interruptible(py, self.core().wait_ready_via(id, timeout, transport))?;
        Ok(c.into())
    }

    /// Copies host path `host` into container `id` at `guest`, like
    /// `docker cp` (directories too; `"dir/."` copies a directory's
    /// contents). `archive=True` also keeps owners.
    #[pyo3(signature = (id, host, guest, *, archive = false, transport = "auto"))]
    fn copy_to(
        &self,
        py: Python<'_>,
        id: &str,
        host: PathBuf,
        guest: &str,
        archive: bool,
        transport: &str,
    ) -> PyResult<()> {
        let opts = copy_options(archive, transport)?;
        interruptible(py, self.core().copy_to(id, &host, guest, &opts))
    }

    /// Copies `guest` from container `id` to host path `host`, like
    /// `docker cp`.
    #[pyo3(signature = (id, guest, host, *, archive = false, transport = "auto"))]
    fn copy_from(
        &self,
        py: Python<'_>,
        id: &str,
        guest: &str,
        host: PathBuf,
        archive: bool,
        transport: &str,
    ) -> PyResult<()> {
        let opts = copy_options(archive, transport)?;
        interruptible(py, self.core().copy_from(id, guest, &host, &opts))
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
    /// `detach=False` runs in the foreground as `run` does, passing the
    /// serial output to `on_output(chunk: bytes)`; Ctrl-C stops the VM.
    #[pyo3(signature = (snapshot, *, name = None, detach = true, memory = None, cpus = None,
        ports = None, ssh_port = None, ssh_key = None, bind_address = None, on_output = None))]
    #[allow(clippy::too_many_arguments)]
    fn run_snapshot(
        &self,
        py: Python<'_>,
        snapshot: &str,
        name: Option<String>,
        detach: bool,
        memory: Option<i64>,
        cpus: Option<i64>,
        ports: Option<Pairs<PortKey, i64>>,
        ssh_port: Option<i64>,
        ssh_key: Option<PathBuf>,
        bind_address: Option<String>,
        on_output: Option<Py<PyAny>>,
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
        self.start_new(py, Origin::Snapshot(snapshot), opts, on_output)
    }

    /// Writes container `id`'s disk, flattened, to `path` (a new `.qcow2`
    /// file) as a standalone image that boots on its own; returns its
    /// absolute path. A running container is paused while its disk is
    /// copied.
    fn commit(&self, py: Python<'_>, id: &str, path: PathBuf) -> PyResult<PathBuf> {
        uninterruptible(py, self.core().commit(id, &path))
    }

    /// Pushes the image file `image` (`.iso`, `.qcow2`, `.vmdk`,
    /// `.raw`/`.img`, or a LinuxKit `NAME-kernel`) to `reference`
    /// (`REGISTRY/REPOSITORY[:TAG]`) as an OCI artifact, or with
    /// `containerdisk=True` as a KubeVirt containerDisk. Plain HTTP is used
    /// only for loopback registries unless `plain_http=True`. Credentials
    /// come from `REGISTRY_AUTH` or Docker's config file.
    /// `progress(sent, total)` is called on this thread; Ctrl-C interrupts.
    #[cfg(feature = "registry")]
    #[pyo3(signature = (image, reference, *, containerdisk = false, plain_http = false,
        progress = None))]
    fn push(
        &self,
        py: Python<'_>,
        image: PathBuf,
        reference: &str,
        containerdisk: bool,
        plain_http: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<crate::registry::PushReport> {
        crate::registry::push(
            py,
            self.core(),
            &image,
            reference,
            containerdisk,
            plain_http,
            progress,
        )
    }

    /// Pulls `reference` (`REGISTRY/REPOSITORY[:TAG]` or `...@sha256:...`)
    /// into the home's image store, verifying every digest; what is there
    /// already is not downloaded again, and an interrupted pull resumes.
    /// `progress(downloaded, total)` is called on this thread; Ctrl-C
    /// interrupts (nothing is installed). `run` takes the reference (or
    /// the result's `path`).
    #[cfg(feature = "registry")]
    #[pyo3(signature = (reference, *, plain_http = false, progress = None))]
    fn pull(
        &self,
        py: Python<'_>,
        reference: &str,
        plain_http: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<crate::registry::PulledImage> {
        crate::registry::pull(py, self.core(), reference, plain_http, progress)
    }

    /// Every image pulled into the home's store.
    #[cfg(feature = "registry")]
    fn pulled_images(&self, py: Python<'_>) -> PyResult<Vec<crate::registry::PulledImage>> {
        let all = detached(py, || self.inner.pulled_images())?;
        Ok(all.into_iter().map(Into::into).collect())
    }

    /// A KubeVirt `VirtualMachine` (and a `Service` for the port mappings)
    /// as multi-document YAML, for container `target` (ID, prefix or name)
    /// or, when no container has that name, the image `target` (a file or
    /// a pulled reference). `image_ref` is the containerDisk the VM boots
    /// (default: the one last pushed with `containerdisk=True` from the
    /// same image file).
    #[cfg(feature = "registry")]
    #[pyo3(signature = (target, *, image_ref = None))]
    fn export_kubevirt(
        &self,
        py: Python<'_>,
        target: &str,
        image_ref: Option<&str>,
    ) -> PyResult<String> {
        detached(py, || self.inner.export_kubevirt(target, image_ref))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Manager(home={}, hypervisor={})",
            repr(py, &self.core().home().root().display().to_string()),
            repr(py, self.core().hypervisor().name())
        )
    }
}

/// Completes when `until_interrupted` cancels `token` on a Ctrl-C; the
/// reason recorded in the container's `exit_reason`.
async fn interrupted(token: &CancelToken) -> String {
    token.cancelled().await;
    "KeyboardInterrupt".to_string()
}

/// `on_output` is for foreground runs only.
fn check_output(detach: bool, on_output: &Option<Py<PyAny>>) -> PyResult<()> {
    if detach && on_output.is_some() {
        return Err(to_py(vmcontainer::Error::invalid(
            "on_output",
            "a callable",
            "serial output is only streamed in the foreground: pass detach=False",
        )));
    }
    Ok(())
}
