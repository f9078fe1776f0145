//! `devenv`: the dev environment (`DevOps`) and the project detection
//! functions, exported as the `devenv` namespace of the module.
//!
//! As in the rest of the module every call that does I/O returns a Promise
//! whose work runs on the tokio runtime (synchronous core calls on its
//! blocking pool), never on the event loop or libuv's threadpool.

use std::path::{Path, PathBuf};

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use vmcontainer::devenv as core;
use vmcontainer::Error;

use crate::convert::{millis, whole};
use crate::error::sync;
use crate::error::to_napi;
use crate::progress::{Aborted, Listener, ProgressSink, StopSignal};
use crate::promise::{blocking, spawn};
use crate::types::{path, Container};

/// `core-devops-{os}-{arch}.qcow2`: the dev image's file name on this host
/// (Go's names for the OS and architecture, as go-container named it).
#[napi(namespace = "devenv")]
pub fn image_name() -> String {
    core::image_name()
}

/// The command `serve` runs for the project in `dir` when none is given:
/// `artisan` → Octane; `package.json` with a `dev` script → `npm run dev --
/// --host 0.0.0.0`, with `start` → `npm start`; `composer.json` →
/// FrankenPHP; `go.mod` and `main.go` → `go run .`; `manage.py` → Django;
/// otherwise `python3 -m http.server 8000`.
#[napi(namespace = "devenv")]
pub fn detect_serve_command<'env>(
    env: &'env Env,
    dir: String,
) -> napi::Result<PromiseRaw<'env, String>> {
    spawn(
        env,
        blocking(move || Ok(core::detect_serve_command(Path::new(&dir)))),
        |s| s,
    )
}

/// The command `test` runs for the project in `dir` when none is given, or
/// `null`: `.core/test.yaml` `command`; `composer.json` with a `test`
/// script → `composer test`; `package.json` with a `test` script → `npm
/// test`; `go.mod` → `go test ./...`; `pytest.ini` or `pyproject.toml` →
/// `pytest`; `Taskfile.yaml`/`.yml` → `task test`. An invalid
/// `.core/test.yaml` counts as absent here (`loadTestConfig` reports it).
#[napi(namespace = "devenv", ts_return_type = "Promise<string | null>")]
pub fn detect_test_command<'env>(
    env: &'env Env,
    dir: String,
) -> napi::Result<PromiseRaw<'env, Option<String>>> {
    spawn(
        env,
        blocking(move || Ok(core::detect_test_command(Path::new(&dir)))),
        |s| s,
    )
}

/// `<dir>/.core/test.yaml`, or `null` when there is none; an invalid file
/// rejects with `ERR_VMC_INVALID_INPUT` naming the file and line.
#[napi(
    namespace = "devenv",
    ts_return_type = "Promise<devenv.TestConfig | null>"
)]
pub fn load_test_config<'env>(
    env: &'env Env,
    dir: String,
) -> napi::Result<PromiseRaw<'env, Option<TestConfig>>> {
    spawn(
        env,
        blocking(move || core::load_test_config(Path::new(&dir))),
        |c| c.map(TestConfig::from),
    )
}

/// A project's `.core/test.yaml`.
#[napi(object, object_from_js = false, namespace = "devenv")]
pub struct TestConfig {
    /// Schema version (0 when the file does not say).
    pub version: u32,
    /// Default test command (a shell command line), when set.
    pub command: Option<String>,
    /// Named commands (`test({ name })`).
    pub commands: Vec<TestCommand>,
    /// Environment for every test command.
    pub env: std::collections::BTreeMap<String, String>,
}

/// A named command in `.core/test.yaml`.
#[napi(object, object_from_js = false, namespace = "devenv")]
pub struct TestCommand {
    /// Its name.
    pub name: String,
    /// The shell command line.
    pub run: String,
}

impl From<core::TestConfig> for TestConfig {
    fn from(c: core::TestConfig) -> Self {
        TestConfig {
            version: c.version,
            command: Some(c.command).filter(|c| !c.is_empty()),
            commands: c
                .commands
                .into_iter()
                .map(|c| TestCommand {
                    name: c.name,
                    run: c.run,
                })
                .collect(),
            env: c.env,
        }
    }
}

/// Options of the `DevOps` constructor.
#[napi(object, object_to_js = false, namespace = "devenv")]
pub struct DevOpsOptions {
    /// Root directory (default `$VMCONTAINER_HOME`, else `~/.core`); its
    /// `config.yaml` configures the image sources and the VM.
    pub home: Option<String>,
    /// `'qemu'` or `'hyperkit'` (any case); default: the best one available.
    pub hypervisor: Option<String>,
}

/// Options of `install` and `update`.
#[napi(object, object_to_js = false, namespace = "devenv")]
pub struct InstallOptions {
    /// Called on the JS thread as the download advances, with the bytes so
    /// far and the total (`null` when neither the source nor the server
    /// says). When JS is slower than the network intermediate values are
    /// skipped; the last one is always delivered, and none ever arrives
    /// after the Promise settles. A throw is reported as a process warning
    /// and does not stop the download.
    #[napi(ts_type = "(downloaded: number, total: number | null) => void")]
    pub on_progress: Option<crate::progress::ProgressCallback>,
}

/// What `install` (and `update`) did.
#[napi(object, object_from_js = false, namespace = "devenv")]
pub struct InstallReport {
    /// The installed image file.
    pub path: String,
    /// Installed version.
    pub version: String,
    /// Source it came from (`github` or `cdn`).
    pub source: String,
    /// Its sha256, hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: f64,
    /// Bytes reused from an interrupted earlier download.
    pub resumed_from: f64,
    /// True when this release was already installed and nothing was
    /// downloaded.
    pub already_installed: bool,
}

impl From<core::InstallReport> for InstallReport {
    fn from(r: core::InstallReport) -> Self {
        InstallReport {
            path: path(r.path),
            version: r.version,
            source: r.source,
            sha256: r.sha256,
            size: r.size as f64,
            resumed_from: r.resumed_from as f64,
            already_installed: r.already_installed,
        }
    }
}

/// What `checkUpdate` found.
#[napi(object, object_from_js = false, namespace = "devenv")]
pub struct UpdateInfo {
    /// Installed version.
    pub current: String,
    /// Latest published version.
    pub latest: String,
    /// Whether the latest differs from the installed one.
    pub has_update: bool,
}

impl From<core::UpdateInfo> for UpdateInfo {
    fn from(u: core::UpdateInfo) -> Self {
        UpdateInfo {
            current: u.current,
            latest: u.latest,
            has_update: u.has_update,
        }
    }
}

/// Options of `boot`. Unset values come from `config.yaml` (`dev:`), then
/// the defaults.
#[napi(object, object_to_js = false, namespace = "devenv")]
pub struct BootOptions {
    /// Memory in MB (default 4096).
    pub memory: Option<f64>,
    /// Virtual CPUs (default 2).
    pub cpus: Option<f64>,
    /// Replace a running (or stopped) dev VM with a new one.
    pub fresh: Option<bool>,
    /// Project directory shared at `/app` (default: the working directory).
    pub project: Option<String>,
    /// Private key for SSH (default: `dev.ssh_key`, else ssh's own).
    pub ssh_key: Option<String>,
    /// Milliseconds to wait for the guest's SSH host key (default 60000).
    pub timeout: Option<f64>,
}

fn boot_options(o: Option<BootOptions>) -> vmcontainer::Result<core::BootOptions> {
    let Some(o) = o else {
        return Ok(core::BootOptions::default());
    };
    let count = |what, v: Option<f64>| -> vmcontainer::Result<Option<u32>> {
        Ok(v.map(|v| whole(what, v, u32::MAX.into()))
            .transpose()?
            .map(|v| v as u32))
    };
    Ok(core::BootOptions {
        memory: count("memory", o.memory)?,
        cpus: count("cpus", o.cpus)?,
        fresh: o.fresh.unwrap_or(false),
        project: o.project.map(PathBuf::from),
        ssh_key: o.ssh_key.map(PathBuf::from),
        ready_timeout: millis(
            "timeout",
            o.timeout,
            core::BootOptions::default().ready_timeout,
        )?,
    })
}

/// What `status` reports.
#[napi(object, object_from_js = false, namespace = "devenv")]
pub struct DevStatus {
    /// Whether the image is downloaded.
    pub installed: bool,
    /// Whether the dev VM is running.
    pub running: bool,
    /// Installed image version.
    pub image_version: Option<String>,
    /// The image file (present or not).
    pub image_path: String,
    /// The dev VM's container ID (it may be stopped).
    pub container_id: Option<String>,
    /// Its memory in MB.
    pub memory: Option<u32>,
    /// Its virtual CPUs.
    pub cpus: Option<u32>,
    /// Host port of its SSH server (running only).
    pub ssh_port: Option<u32>,
    /// Milliseconds since it started (running only; whole seconds).
    pub uptime: Option<f64>,
    /// Project directory shared at `/app`.
    pub project: Option<String>,
}

impl From<core::DevStatus> for DevStatus {
    fn from(s: core::DevStatus) -> Self {
        DevStatus {
            installed: s.installed,
            running: s.running,
            image_version: s.image_version,
            image_path: path(s.image_path),
            container_id: s.container_id,
            memory: s.memory,
            cpus: s.cpus,
            ssh_port: s.ssh_port.map(u32::from),
            uptime: s.uptime_secs.map(|u| u as f64 * 1000.0),
            project: s.project.map(path),
        }
    }
}

/// Options of `test` and `testCommand`.
#[napi(object, object_to_js = false, namespace = "devenv")]
pub struct TestOptions {
    /// Project directory (default: the working directory).
    pub project: Option<String>,
    /// A command named in `.core/test.yaml` `commands`.
    pub name: Option<String>,
    /// An explicit command (an argv); wins over `name` and detection.
    pub command: Option<Vec<String>>,
}

fn test_options(o: Option<TestOptions>) -> core::TestOptions {
    o.map(|o| core::TestOptions {
        project: o.project.map(PathBuf::from),
        name: o.name,
        command: o.command.unwrap_or_default(),
        ..Default::default()
    })
    .unwrap_or_default()
}

/// Options of `serve` and `serveCommand`.
#[napi(object, object_to_js = false, namespace = "devenv")]
pub struct ServeOptions {
    /// Project directory (default: the working directory).
    pub project: Option<String>,
    /// Subdirectory of the project to serve from.
    pub path: Option<String>,
    /// Host port on 127.0.0.1 (default 8000).
    pub port: Option<f64>,
    /// Port the server listens on in the guest (default 8000).
    pub guest_port: Option<f64>,
    /// Command instead of the detected one (an argv).
    pub command: Option<Vec<String>>,
    /// Stops serving when aborted: the server is killed, the port forward
    /// removed, and the Promise resolves with 130.
    #[napi(ts_type = "AbortSignal")]
    pub signal: Option<StopSignal>,
}

/// Core serve options; `o.signal` must have been taken out (see `serve`).
fn serve_options(o: Option<ServeOptions>) -> vmcontainer::Result<core::ServeOptions> {
    let d = core::ServeOptions::default();
    let Some(o) = o else {
        return Ok(d);
    };
    let port = |what, v: Option<f64>, default: u16| -> vmcontainer::Result<u16> {
        Ok(v.map(|p| whole(what, p, u16::MAX.into()))
            .transpose()?
            .map_or(default, |p| p as u16))
    };
    Ok(core::ServeOptions {
        project: o.project.map(PathBuf::from),
        path: o.path.map(PathBuf::from),
        port: port("serve port", o.port, d.port)?,
        guest_port: port("guest port", o.guest_port, d.guest_port)?,
        command: o.command.unwrap_or_default(),
        ..Default::default()
    })
}

/// Takes the abort signal out of serve options, as its flag and listener.
fn take_signal(o: &mut Option<ServeOptions>) -> (Aborted, Option<Listener>) {
    StopSignal::split(o.as_mut().and_then(|o| o.signal.take()))
}

/// Options of `shell`.
#[napi(object, object_to_js = false, namespace = "devenv")]
pub struct ShellOptions {
    /// Do not forward the SSH agent even when `SSH_AUTH_SOCK` is set.
    pub no_agent: Option<bool>,
    /// Attach to the VM's serial console instead of SSH (a terminal
    /// detaches with Ctrl-]; the session also ends with stdin).
    pub console: Option<bool>,
}

/// Options of `claude`.
#[napi(object, object_to_js = false, namespace = "devenv")]
pub struct ClaudeOptions {
    /// Project directory (default: the working directory).
    pub project: Option<String>,
    /// `--model` for claude.
    pub model: Option<String>,
    /// Credentials to forward, among `'anthropic'`, `'gh'`, `'ssh'`,
    /// `'git'`; default: every available one (`[]` forwards none).
    pub auth: Option<Vec<String>>,
    /// Extra environment for the session (staged like the credentials,
    /// never on a command line).
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// Further arguments for claude.
    pub args: Option<Vec<String>>,
    /// How to boot the dev VM when it is not running.
    pub boot: Option<BootOptions>,
}

fn claude_options(o: Option<ClaudeOptions>) -> vmcontainer::Result<core::ClaudeOptions> {
    let Some(o) = o else {
        return Ok(core::ClaudeOptions::default());
    };
    Ok(core::ClaudeOptions {
        project: o.project.map(PathBuf::from),
        model: o.model,
        auth: o
            .auth
            .map(|names| {
                names
                    .iter()
                    .map(|n| n.parse::<core::Auth>())
                    .collect::<vmcontainer::Result<Vec<_>>>()
            })
            .transpose()?,
        env: o.env.unwrap_or_default().into_iter().collect(),
        args: o.args.unwrap_or_default(),
        boot: boot_options(o.boot)?,
        ..Default::default()
    })
}

/// The portable development environment of one root directory: the
/// `core-devops` image (download, updates) and the VM named `core-dev` that
/// boots it with a project at `/app`.
#[napi(namespace = "devenv")]
pub struct DevOps {
    inner: core::DevOps,
}

#[napi(namespace = "devenv")]
impl DevOps {
    /// The dev environment of `options.home` (default `$VMCONTAINER_HOME`,
    /// else `~/.core`), configured by its `config.yaml`; an invalid file
    /// throws `ERR_VMC_INVALID_INPUT` naming the file and line.
    #[napi(constructor)]
    pub fn new(env: &Env, options: Option<DevOpsOptions>) -> napi::Result<Self> {
        let (home, hypervisor) = options.map(|o| (o.home, o.hypervisor)).unwrap_or_default();
        let inner = sync(
            env,
            vmcontainer::blocking::Manager::new(
                home.as_deref().map(Path::new),
                hypervisor.as_deref(),
            )
            .and_then(|m| core::DevOps::with_manager(m.inner().clone())),
        )?;
        Ok(DevOps { inner })
    }

    /// The root directory.
    #[napi(getter)]
    pub fn home(&self) -> String {
        path(self.inner.manager().home().root().to_path_buf())
    }

    /// Where the dev image is (or will be) installed.
    #[napi(getter)]
    pub fn image_path(&self) -> String {
        path(self.inner.images().image_path())
    }

    /// Whether the dev image is downloaded.
    #[napi]
    pub fn is_installed<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, bool>> {
        let d = self.inner.clone();
        spawn(env, blocking(move || Ok(d.is_installed())), |b| b)
    }

    /// Downloads, verifies (sha256) and installs the latest image from the
    /// configured source, reporting progress to `options.onProgress`.
    /// Resolves without downloading when that release is already installed.
    /// Only a complete, verified file is ever installed; a failed download
    /// leaves any previous image in place.
    #[napi]
    pub fn install<'env>(
        &self,
        env: &'env Env,
        options: Option<InstallOptions>,
    ) -> napi::Result<PromiseRaw<'env, InstallReport>> {
        let d = self.inner.clone();
        let sink = ProgressSink::new(options.and_then(|o| o.on_progress));
        let fut = async move {
            let r = d.install(&mut sink.reporter()).await;
            sink.flush().await;
            r
        };
        spawn(env, fut, InstallReport::from)
    }

    /// Installs the latest image if it differs from the installed one;
    /// resolves with `null` when there is nothing newer. Refused
    /// (`ERR_VMC_RUNNING`) while the dev VM runs; a stopped dev VM is
    /// removed, since its disk belongs to the old image.
    #[napi(ts_return_type = "Promise<devenv.InstallReport | null>")]
    pub fn update<'env>(
        &self,
        env: &'env Env,
        options: Option<InstallOptions>,
    ) -> napi::Result<PromiseRaw<'env, Option<InstallReport>>> {
        let d = self.inner.clone();
        let sink = ProgressSink::new(options.and_then(|o| o.on_progress));
        let fut = async move {
            let r = d.update(&mut sink.reporter()).await;
            sink.flush().await;
            r
        };
        spawn(env, fut, |r| r.map(InstallReport::from))
    }

    /// Compares the installed version with the latest published one
    /// (`ERR_VMC_NOT_FOUND` when nothing is installed).
    #[napi]
    pub fn check_update<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, UpdateInfo>> {
        let d = self.inner.clone();
        spawn(env, async move { d.check_update().await }, UpdateInfo::from)
    }

    /// Boots the dev VM (detached, named `core-dev`) with the project at
    /// `/app` and waits for its SSH host key. A running dev VM is refused
    /// (`ERR_VMC_RUNNING`) unless `fresh`; a stopped one with the same
    /// settings is started again with its disk.
    #[napi]
    pub fn boot<'env>(
        &self,
        env: &'env Env,
        options: Option<BootOptions>,
    ) -> napi::Result<PromiseRaw<'env, Container>> {
        let opts = boot_options(options);
        let d = self.inner.clone();
        spawn(env, async move { d.boot(opts?).await }, Container::from)
    }

    /// Stops the dev VM (ACPI power-down first); its container and disk are
    /// kept for the next `boot`.
    #[napi]
    pub fn stop<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, Container>> {
        let d = self.inner.clone();
        spawn(env, async move { d.stop().await }, Container::from)
    }

    /// Whether the dev VM is running.
    #[napi]
    pub fn is_running<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, bool>> {
        let d = self.inner.clone();
        spawn(env, blocking(move || d.is_running()), |b| b)
    }

    /// Installed, running, image version and path, container, memory, CPUs,
    /// SSH port, uptime and project.
    #[napi]
    pub fn status<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, DevStatus>> {
        let d = self.inner.clone();
        spawn(env, blocking(move || d.status()), DevStatus::from)
    }

    /// The shell command line `test` would run: `options.command`, else
    /// the one named `options.name` in `.core/test.yaml`, else the detected
    /// one (`ERR_VMC_INVALID_INPUT` when there is none). Needs no VM.
    #[napi]
    pub fn test_command<'env>(
        &self,
        env: &'env Env,
        options: Option<TestOptions>,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let d = self.inner.clone();
        let opts = test_options(options);
        spawn(env, blocking(move || d.test_command(&opts)), |s| s)
    }

    /// Runs the project's tests in the running dev VM (see `testCommand`),
    /// with `env` from `.core/test.yaml`; resolves with their exit code.
    /// The tests use this process's standard input and output, like
    /// `spawn(..., { stdio: 'inherit' })`.
    #[napi]
    pub fn test<'env>(
        &self,
        env: &'env Env,
        options: Option<TestOptions>,
    ) -> napi::Result<PromiseRaw<'env, i32>> {
        let d = self.inner.clone();
        let opts = test_options(options);
        spawn(env, async move { d.test(opts).await }, |c| c)
    }

    /// The command `serve` would run (given or detected). Needs no VM.
    #[napi]
    pub fn serve_command<'env>(
        &self,
        env: &'env Env,
        mut options: Option<ServeOptions>,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        if let (_, Some(listener)) = take_signal(&mut options) {
            listener.remove(env);
        }
        let d = self.inner.clone();
        let opts = serve_options(options);
        spawn(env, blocking(move || d.serve_command(&opts?)), |s| s)
    }

    /// Serves the project from the running dev VM on
    /// `127.0.0.1:options.port` (forwarded while it runs) until the server
    /// exits or `options.signal` aborts; resolves with the server's exit
    /// code (130 when aborted). The server uses this process's standard
    /// output, like `spawn(..., { stdio: 'inherit' })`.
    #[napi]
    pub fn serve<'env>(
        &self,
        env: &'env Env,
        mut options: Option<ServeOptions>,
    ) -> napi::Result<PromiseRaw<'env, i32>> {
        let (aborted, listener) = take_signal(&mut options);
        let d = self.inner.clone();
        let input = serve_options(options);
        let fut = async move {
            let r = match input {
                Ok(opts) => d.serve(opts, aborted.wait()).await,
                Err(e) => Err(e),
            };
            Ok(r)
        };
        // Like `promise::spawn`, but the signal's listener is removed on the
        // JS thread before the Promise settles.
        env.spawn_future_with_callback(fut, move |env, out| {
            if let Some(l) = listener {
                l.remove(env);
            }
            out.map_err(|e| to_napi(env, &e))
        })
    }

    /// Opens a shell in the running dev VM over SSH with the caller's SSH
    /// agent forwarded — a login shell, or `command` (an argv; each element
    /// arrives as one argument) — or, with `options.console`, attaches to
    /// its serial console; resolves with the exit code (0 for the
    /// console). It uses this process's standard input and output, like
    /// `spawn(..., { stdio: 'inherit' })`, with a pseudo-terminal when
    /// both are terminals.
    #[napi]
    pub fn shell<'env>(
        &self,
        env: &'env Env,
        command: Option<Vec<String>>,
        options: Option<ShellOptions>,
    ) -> napi::Result<PromiseRaw<'env, i32>> {
        let d = self.inner.clone();
        let (no_agent, console) = options
            .map(|o| (o.no_agent.unwrap_or(false), o.console.unwrap_or(false)))
            .unwrap_or_default();
        let command = command.unwrap_or_default();
        let fut = async move {
            if console && !command.is_empty() {
                return Err(Error::invalid(
                    "shell command",
                    format!("{command:?}"),
                    "the serial console takes no command",
                ));
            }
            d.shell(core::ShellOptions {
                console,
                command,
                no_agent,
                ..Default::default()
            })
            .await
        };
        spawn(env, fut, |c| c)
    }

    /// Runs Claude Code in the dev VM (booting it with `options.boot` if it
    /// is not running) on the project at `/app`, forwarding the selected
    /// credentials without putting any secret on a command line; resolves
    /// with its exit code. It uses this process's standard input and
    /// output, like `spawn(..., { stdio: 'inherit' })`.
    #[napi]
    pub fn claude<'env>(
        &self,
        env: &'env Env,
        options: Option<ClaudeOptions>,
    ) -> napi::Result<PromiseRaw<'env, i32>> {
        let d = self.inner.clone();
        let opts = claude_options(options);
        spawn(env, async move { d.claude(opts?).await }, |c| c)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn boot() -> BootOptions {
        BootOptions {
            memory: None,
            cpus: None,
            fresh: None,
            project: None,
            ssh_key: None,
            timeout: None,
        }
    }

    fn serve() -> ServeOptions {
        ServeOptions {
            project: None,
            path: None,
            port: None,
            guest_port: None,
            command: None,
            signal: None,
        }
    }

    #[test]
    fn boot_numbers_are_checked_and_defaults_are_the_core_ones() {
        assert_eq!(boot_options(None).unwrap(), core::BootOptions::default());
        assert_eq!(
            boot_options(Some(boot())).unwrap(),
            core::BootOptions::default()
        );
        let o = boot_options(Some(BootOptions {
            memory: Some(2048.0),
            cpus: Some(4.0),
            fresh: Some(true),
            timeout: Some(1500.0),
            ..boot()
        }))
        .unwrap();
        assert_eq!((o.memory, o.cpus, o.fresh), (Some(2048), Some(4), true));
        assert_eq!(o.ready_timeout, Duration::from_millis(1500));
        for bad in [
            BootOptions {
                memory: Some(-1.0),
                ..boot()
            },
            BootOptions {
                cpus: Some(0.5),
                ..boot()
            },
            BootOptions {
                timeout: Some(-3.0),
                ..boot()
            },
        ] {
            assert!(boot_options(Some(bad)).is_err());
        }
    }

    #[test]
    fn serve_ports_default_to_the_core_ones() {
        let o = serve_options(Some(serve())).unwrap();
        assert_eq!(o, core::ServeOptions::default());
        assert_eq!(serve_options(None).unwrap(), o);
        let o = serve_options(Some(ServeOptions {
            port: Some(8080.0),
            command: Some(vec!["node".into(), "s.js".into()]),
            ..serve()
        }))
        .unwrap();
        assert_eq!((o.port, o.guest_port), (8080, 8000));
        assert_eq!(o.command, ["node", "s.js"]);
        let e = serve_options(Some(ServeOptions {
            guest_port: Some(70000.0),
            ..serve()
        }))
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("guest port") && e.contains("70000"), "{e}");
    }
}
