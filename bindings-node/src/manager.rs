//! `Manager`: the container lifecycle. Every method but `follow` returns a
//! Promise; see `promise.rs` for where the work runs.

use std::path::{Path, PathBuf};

use napi::bindgen_prelude::{Buffer, PromiseRaw, Unknown};
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi::Env;
use napi_derive::napi;
use vmcontainer::manager::{Origin, OutputSink, DEFAULT_READY_TIMEOUT};
use vmcontainer::{LinuxKitManager, DEFAULT_STOP_TIMEOUT};

use crate::callback::report_callback_error;
use crate::convert::{millis, run_options, template_dirs};
use crate::error::sync;
use crate::follow::LogStream;
use crate::process::{spawn_options, Process, SpawnOptions};
use crate::promise::{blocking, spawn};
use crate::types::{
    copy_options, snapshots, Container, ContainerDetails, CopyOptions, ExecOptions, ExecResult,
    HypervisorName, ManagerOptions, OutputCallback, PackedContainers, Packer, RemoveOptions,
    RunOptions, RunTemplateOptions, Snapshot, StopOptions, TemplateOptions, WaitOptions,
};

/// Manages LinuxKit VMs as containers under one root directory. Safe to use
/// from several processes at once (the state file is locked).
#[napi]
pub struct Manager {
    inner: LinuxKitManager,
}

/// Serial output of a foreground run, delivered to the user's callback on
/// the JS thread without waiting for it.
fn output_sink(cb: OutputCallback) -> impl FnMut(&[u8]) + Send {
    move |chunk: &[u8]| {
        cb.call_with_return_value(
            Buffer::from(chunk.to_vec()),
            ThreadsafeFunctionCallMode::NonBlocking,
            |r: napi::Result<Unknown>, env| {
                report_callback_error(&env, r);
                Ok(())
            },
        );
    }
}

/// `run`, `runTemplate` and `runSnapshot` once their options are read:
/// in the foreground, serial output goes to `on_output`.
async fn start_new(
    m: &LinuxKitManager,
    origin: Origin<'_>,
    opts: vmcontainer::RunOptions,
    on_output: Option<OutputCallback>,
) -> vmcontainer::Result<vmcontainer::Container> {
    let mut sink = on_output.map(output_sink);
    let out = sink.as_mut().map(|s| s as OutputSink<'_>);
    m.run_from(origin, opts, out, std::future::pending()).await
}

impl Manager {
    /// The core manager, for the methods defined in other modules.
    #[cfg_attr(not(feature = "registry"), allow(dead_code))]
    pub(crate) fn core(&self) -> &LinuxKitManager {
        &self.inner
    }
}

#[napi]
impl Manager {
    /// A manager for `options.home` (default `$VMCONTAINER_HOME`, else
    /// `~/.core`) using `options.hypervisor` (default: the best available).
    #[napi(constructor)]
    pub fn new(env: &Env, options: Option<ManagerOptions>) -> napi::Result<Self> {
        let (home, hypervisor) = options.map(|o| (o.home, o.hypervisor)).unwrap_or_default();
        let m = sync(
            env,
            vmcontainer::blocking::Manager::new(
                home.as_deref().map(Path::new),
                hypervisor.as_deref(),
            ),
        )?;
        Ok(Manager {
            inner: m.inner().clone(),
        })
    }

    /// The root directory.
    #[napi(getter)]
    pub fn home(&self) -> String {
        self.inner.home().root().to_string_lossy().into_owned()
    }

    /// The hypervisor this manager starts VMs with.
    #[napi(getter)]
    pub fn hypervisor(&self) -> HypervisorName {
        HypervisorName::of(self.inner.hypervisor())
    }

    /// Starts a new container from `image`. Detached (the default in every
    /// library face of vmcontainer): resolves once the VM is up, and it
    /// outlives this process. With `detach: false`: resolves when the VM
    /// exits, passing its serial output to `options.onOutput`.
    #[napi]
    pub fn run<'env>(
        &self,
        env: &'env Env,
        image: String,
        options: Option<RunOptions>,
    ) -> napi::Result<PromiseRaw<'env, Container>> {
        // Invalid options reject the Promise like every other failure.
        let input = run_options(options);
        let m = self.inner.clone();
        let image = PathBuf::from(image);
        let fut = async move {
            let (opts, on_output) = input?;
            start_new(&m, Origin::Image(&image), opts, on_output).await
        };
        spawn(env, fut, Container::from)
    }

    /// Boots a stopped container again, with its own disk.
    #[napi]
    pub fn start<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, Container>> {
        let m = self.inner.clone();
        spawn(env, async move { m.start(&id).await }, Container::from)
    }

    /// Stops a running container: ACPI power-down, then SIGTERM after
    /// `options.timeout` milliseconds (default 10000), then SIGKILL.
    #[napi]
    pub fn stop<'env>(
        &self,
        env: &'env Env,
        id: String,
        options: Option<StopOptions>,
    ) -> napi::Result<PromiseRaw<'env, Container>> {
        let timeout = millis(
            "timeout",
            options.and_then(|o| o.timeout),
            DEFAULT_STOP_TIMEOUT,
        );
        let m = self.inner.clone();
        spawn(
            env,
            async move { m.stop(&id, timeout?).await },
            Container::from,
        )
    }

    /// Every known container, oldest first; a "running" one whose process
    /// is gone is reported (and recorded) as stopped.
    ///
    /// The list crosses into JS packed (see `PackedContainers`), and
    /// index.js unpacks it into the same objects `get` returns.
    #[napi(ts_return_type = "Promise<Array<Container>>")]
    pub fn list<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, PackedContainers>> {
        let m = self.inner.clone();
        // Packed off the event loop, on the blocking pool.
        spawn(
            env,
            blocking(move || m.list().map(Packer::pack)),
            Packer::into_js,
        )
    }

    /// Runs a container from LinuxKit template `name` (built-in, then
    /// `options.cwd`'s `.core/linuxkit/`, then this manager's
    /// `home/linuxkit/`): the template with `vars` substituted is built
    /// into an ISO with `linuxkit build --format iso-bios` and run as `run`
    /// does with `options`. Memory and CPUs come from the template's
    /// `MEMORY` and `CPUS` unless given.
    #[napi]
    pub fn run_template<'env>(
        &self,
        env: &'env Env,
        name: String,
        vars: Option<std::collections::BTreeMap<String, String>>,
        options: Option<RunTemplateOptions>,
    ) -> napi::Result<PromiseRaw<'env, Container>> {
        let m = self.inner.clone();
        let (cwd, run) = options.map(RunTemplateOptions::split).unzip();
        let input = run_options(run);
        let cwd = cwd.flatten();
        let vars = vars.unwrap_or_default();
        let fut = async move {
            let (opts, on_output) = input?;
            let dirs = template_dirs(Some(TemplateOptions {
                home: Some(m.home().root().to_string_lossy().into_owned()),
                cwd,
            }))?;
            let built = m.build_template(&dirs, &name, &vars).await?;
            let opts = built.size(opts);
            start_new(&m, Origin::Image(&built.path), opts, on_output).await
        };
        spawn(env, fut, Container::from)
    }

    /// One container by ID, unique ID prefix, or name.
    #[napi]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, Container>> {
        let m = self.inner.clone();
        spawn(env, blocking(move || m.get(&id)), Container::from)
    }

    /// The record plus the paths of the container's files.
    #[napi]
    pub fn inspect<'env>(
        &self,
        env: &'env Env,
        id: String,
    ) -> napi::Result<PromiseRaw<'env, ContainerDetails>> {
        let m = self.inner.clone();
        spawn(
            env,
            blocking(move || m.inspect(&id)),
            ContainerDetails::from,
        )
    }

    /// Deletes a container's record, log, disk overlay and runtime files. A
    /// running container is refused unless `options.force` (which stops it).
    #[napi]
    pub fn remove<'env>(
        &self,
        env: &'env Env,
        id: String,
        options: Option<RemoveOptions>,
    ) -> napi::Result<PromiseRaw<'env, Container>> {
        let force = options.and_then(|o| o.force).unwrap_or(false);
        let m = self.inner.clone();
        spawn(
            env,
            async move { m.remove(&id, force).await },
            Container::from,
        )
    }

    /// The whole serial log (UTF-8, invalid bytes replaced).
    #[napi]
    pub fn logs<'env>(&self, env: &'env Env, id: String) -> napi::Result<PromiseRaw<'env, String>> {
        let m = self.inner.clone();
        spawn(env, blocking(move || m.logs(&id)), |b| {
            String::from_utf8_lossy(&b).into_owned()
        })
    }

    /// Follows the serial log: `for await (const line of m.follow(id))`.
    /// Yields existing lines, then new ones as the guest writes them, and
    /// ends when the container stops; `break` closes it.
    #[napi]
    pub fn follow(&self, id: String) -> LogStream {
        LogStream::new(self.inner.clone(), id)
    }

    /// Runs `cmd` (an argv) in the guest as root, with `options.input` on
    /// its stdin: over the QEMU guest agent when it answers, else SSH
    /// (`options.transport` forces one).
    #[napi]
    pub fn exec<'env>(
        &self,
        env: &'env Env,
        id: String,
        cmd: Vec<String>,
        options: Option<ExecOptions>,
    ) -> napi::Result<PromiseRaw<'env, ExecResult>> {
        let opts = vmcontainer::ExecOptions {
            input: options
                .as_ref()
                .and_then(|o| o.input.as_ref())
                .map(|b| b.to_vec()),
            transport: options
                .and_then(|o| o.transport)
                .map(Into::into)
                .unwrap_or_default(),
        };
        let m = self.inner.clone();
        spawn(
            env,
            async move { m.exec_with(&id, &cmd, &opts).await },
            ExecResult::from,
        )
    }

    /// Starts `cmd` (an argv) in the container and resolves once it runs,
    /// with `stdin` (a `stream.Writable`), `stdout` and `stderr`
    /// (`stream.Readable`, delivering output as the guest produces it),
    /// `wait()` and `kill(signal)`. Always over SSH. A process nobody
    /// waits for is killed when it is garbage-collected.
    #[napi(
        ts_return_type = "Promise<Process & { stdin: import('node:stream').Writable; stdout: import('node:stream').Readable; stderr: import('node:stream').Readable }>"
    )]
    pub fn spawn<'env>(
        &self,
        env: &'env Env,
        id: String,
        cmd: Vec<String>,
        options: Option<SpawnOptions>,
    ) -> napi::Result<PromiseRaw<'env, Process>> {
        let opts = spawn_options(options);
        let m = self.inner.clone();
        spawn(
            env,
            async move { m.spawn(&id, &cmd, &opts).await },
            Process::new,
        )
    }

    /// Snapshots running container `id` as `name`: its memory, devices and
    /// disk at one instant. The container keeps running (paused only while
    /// its state is written); a failure leaves no snapshot behind.
    #[napi]
    pub fn snapshot_create<'env>(
        &self,
        env: &'env Env,
        id: String,
        name: String,
    ) -> napi::Result<PromiseRaw<'env, Snapshot>> {
        let m = self.inner.clone();
        spawn(
            env,
            async move { m.snapshot_create(&id, &name).await },
            Snapshot::from,
        )
    }

    /// Every snapshot, oldest first.
    #[napi]
    pub fn snapshot_list<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Vec<Snapshot>>> {
        let m = self.inner.clone();
        spawn(env, blocking(move || m.snapshot_list()), snapshots)
    }

    /// One snapshot by name.
    #[napi]
    pub fn snapshot_get<'env>(
        &self,
        env: &'env Env,
        name: String,
    ) -> napi::Result<PromiseRaw<'env, Snapshot>> {
        let m = self.inner.clone();
        spawn(env, blocking(move || m.snapshot_get(&name)), Snapshot::from)
    }

    /// Deletes a snapshot; rejected (code `invalid_input`, naming them)
    /// while containers were created from it.
    #[napi]
    pub fn snapshot_remove<'env>(
        &self,
        env: &'env Env,
        name: String,
    ) -> napi::Result<PromiseRaw<'env, Snapshot>> {
        let m = self.inner.clone();
        spawn(
            env,
            blocking(move || m.snapshot_remove(&name)),
            Snapshot::from,
        )
    }

    /// Starts a new container that resumes snapshot `snapshot` where its
    /// source was. Options as for `run` (the SSH key defaults to the
    /// source's); memory, CPUs and volumes are the snapshot's, and other
    /// values reject. Detached (the default): resolves once the guest
    /// runs; with `detach: false`: when the VM exits.
    #[napi]
    pub fn run_snapshot<'env>(
        &self,
        env: &'env Env,
        snapshot: String,
        options: Option<RunOptions>,
    ) -> napi::Result<PromiseRaw<'env, Container>> {
        let input = run_options(options);
        let m = self.inner.clone();
        let fut = async move {
            let (opts, on_output) = input?;
            start_new(&m, Origin::Snapshot(&snapshot), opts, on_output).await
        };
        spawn(env, fut, Container::from)
    }

    /// Writes container `id`'s disk, flattened, to `path` (a new `.qcow2`
    /// file) as a standalone image that boots on its own; resolves to its
    /// absolute path. A running container is paused while its disk is
    /// copied.
    #[napi]
    pub fn commit<'env>(
        &self,
        env: &'env Env,
        id: String,
        path: String,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let m = self.inner.clone();
        spawn(
            env,
            async move { m.commit(&id, Path::new(&path)).await },
            crate::types::path,
        )
    }

    /// Waits until the guest answers on its agent or SSH server
    /// (`options.timeout` milliseconds, default 120000; `options.transport`
    /// narrows it to one); rejects early if the VM stops.
    #[napi]
    pub fn wait_ready<'env>(
        &self,
        env: &'env Env,
        id: String,
        options: Option<WaitOptions>,
    ) -> napi::Result<PromiseRaw<'env, Container>> {
        let transport = options
            .as_ref()
            .and_then(|o| o.transport)
            .map(Into::into)
            .unwrap_or_default();
        let timeout = millis(
            "timeout",
            options.and_then(|o| o.timeout),
            DEFAULT_READY_TIMEOUT,
        );
        let m = self.inner.clone();
        spawn(
            env,
            async move {
                m.wait_ready_via(&id, timeout?, transport)
                    .await
                    .map(|(c, _)| c)
            },
            Container::from,
        )
    }

    /// Copies host path `host` into the container at `guest`, like `docker
    /// cp` (directories too; `dir/.` copies a directory's contents).
    #[napi]
    pub fn copy_to<'env>(
        &self,
        env: &'env Env,
        id: String,
        host: String,
        guest: String,
        options: Option<CopyOptions>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let opts = copy_options(options);
        let m = self.inner.clone();
        spawn(
            env,
            async move { m.copy_to(&id, Path::new(&host), &guest, &opts).await },
            |()| (),
        )
    }

    /// Copies `guest` from the container to host path `host`, like `docker
    /// cp`.
    #[napi]
    pub fn copy_from<'env>(
        &self,
        env: &'env Env,
        id: String,
        guest: String,
        host: String,
        options: Option<CopyOptions>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let opts = copy_options(options);
        let m = self.inner.clone();
        spawn(
            env,
            async move { m.copy_from(&id, &guest, Path::new(&host), &opts).await },
            |()| (),
        )
    }
}
