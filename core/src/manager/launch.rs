//! Starting VMs: `run` (a new container) and `start` (an existing, stopped
//! one). Both end in `launch`, which turns a record into a running
//! hypervisor process and fills in what only the process can tell (PID,
//! start time, the SSH port QEMU picked).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;

use super::foreground::{self, Foreground};
use super::resolve::Records;
use super::resume::ResumePlan;
use super::{identity, may_run, reconcile, LinuxKitManager};
use crate::container::{Container, Owner, RunOptions, Status};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::home::{absolute, Home};
use crate::hypervisor::{Accel, BootImage, PortForward, Share, VmSpec};
use crate::image::{check_image, detect_image_format, resolve_kernel_image, ImageFormat};
use crate::options::{mount_tag, validate};
use crate::process;
use crate::qmp::{parse_usernet_forwards, Qmp};
use crate::snapshot::SnapshotError;
use crate::state::StateStore;

/// How long a hypervisor may take to come up before `run` gives up.
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// How long an interrupted foreground run gives the guest to power off
/// before the hypervisor is terminated.
const INTERRUPT_GRACE: Duration = Duration::from_secs(5);

/// Receives serial output of a foreground VM.
pub type OutputSink<'a> = &'a mut (dyn FnMut(&[u8]) + Send);

/// A started hypervisor process.
struct Launched {
    pid: i32,
    /// The foreground child, when not daemonized.
    child: Option<Foreground>,
}

/// Undoes a start that never finished because its future was dropped: the
/// hypervisor started for the record is killed and the record says why.
/// A drop cannot wait, so the work happens on a thread of its own; if the
/// whole process is going away, the next command's reconciliation does it.
struct StartGuard {
    state: StateStore,
    record: Option<Container>,
}

impl StartGuard {
    fn new(state: &StateStore, record: &Container) -> Self {
        StartGuard {
            state: state.clone(),
            record: Some(record.clone()),
        }
    }

    /// The start finished (or failed and was cleaned up) normally.
    fn disarm(mut self) {
        self.record = None;
    }
}

impl Drop for StartGuard {
    fn drop(&mut self) {
        let Some(c) = self.record.take() else { return };
        let state = self.state.clone();
        let _ = std::thread::Builder::new()
            .name("vmc-cancel".into())
            .spawn(move || {
                let killed = reconcile::kill_hypervisors(&c);
                let _ = state.update(|s| {
                    if let Some(r) = s.containers.get_mut(&c.id) {
                        if r.status == Status::Starting && r.owner == c.owner {
                            r.status = Status::Error;
                            r.owner = None;
                            r.stopped_at = Some(Utc::now());
                            r.exit_reason = Some(format!(
                                "start cancelled by its caller{}",
                                if killed.is_empty() {
                                    ""
                                } else {
                                    "; its hypervisor was killed"
                                }
                            ));
                        }
                    }
                    Ok::<_, crate::state::StateError>(())
                });
            });
    }
}

/// Serial output copied to this process's stdout, flushed per chunk so it
/// shows as it arrives; a closed stdout does not stop the VM.
pub(super) fn stdout_sink() -> impl FnMut(&[u8]) + Send {
    use std::io::Write;
    |bytes: &[u8]| {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(bytes).and_then(|()| out.flush());
    }
}

/// What a new container starts from (see [`LinuxKitManager::run_from`]).
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// Boot an image file, or a registry reference (pulled when missing).
    Image(&'a Path),
    /// Resume the snapshot of this name.
    Snapshot(&'a str),
}

impl LinuxKitManager {
    /// The one start path of a new container, whatever it starts from:
    /// detached (`opts.detach`) it returns once the VM is up, ignoring
    /// `on_output` and `interrupt`; in the foreground it passes the serial
    /// output to `on_output` (or, without one, to this process's stdout
    /// when `opts.console_to_stdout`, else nowhere) until the VM exits,
    /// and stops the VM when `interrupt` resolves (see
    /// [`Self::run_attached_until`]). `run`, `run_snapshot` and their
    /// attached variants, and the faces' run calls, are this.
    pub async fn run_from(
        &self,
        origin: Origin<'_>,
        opts: RunOptions,
        on_output: Option<OutputSink<'_>>,
        interrupt: impl Future<Output = String> + Send,
    ) -> Result<Container> {
        let mut discard = |_: &[u8]| {};
        let mut to_stdout = stdout_sink();
        let sink: Option<OutputSink<'_>> = match (opts.detach, on_output) {
            (true, _) => None,
            (false, Some(out)) => Some(out),
            (false, None) if opts.console_to_stdout => Some(&mut to_stdout),
            (false, None) => Some(&mut discard),
        };
        match origin {
            Origin::Image(image) => self.run_inner(image, opts, sink, interrupt, None).await,
            Origin::Snapshot(name) => self.run_snapshot_inner(name, opts, sink, interrupt).await,
        }
    }

    /// Starts a new container from `image`.
    ///
    /// With `opts.detach` it returns once the VM process is up and the VM
    /// outlives the caller; otherwise it waits for the VM to exit (serial
    /// output goes to the log, and with `opts.console_to_stdout` to this
    /// process's stdout too; see [`Self::run_attached`] for a callback).
    ///
    /// The record is written first, with status `starting`, so a VM can
    /// never run without one: if the caller dies part-way, the next command
    /// finds the record, kills whatever was started for it and marks it
    /// `error`. A foreground VM dies with its caller (see
    /// [`Self::run_attached`]).
    pub async fn run(&self, image: &Path, opts: RunOptions) -> Result<Container> {
        self.run_from(Origin::Image(image), opts, None, std::future::pending())
            .await
    }

    /// Runs a container in the foreground, passing serial output to
    /// `on_output` as it arrives, until the VM exits. The final status is
    /// `stopped` when the hypervisor exited 0, `error` for another exit
    /// code, `killed` when a signal ended it; `exit_reason` says which.
    ///
    /// The VM belongs to the calling process: it is killed if the process
    /// dies, and terminated (SIGTERM, QEMU flushes its disks) if this
    /// future is dropped, the record then saying so.
    pub async fn run_attached(
        &self,
        image: &Path,
        opts: RunOptions,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<Container> {
        self.run_attached_until(image, opts, on_output, std::future::pending())
            .await
    }

    /// [`Self::run_attached`] that stops the VM when `interrupt` resolves
    /// (for example on SIGINT or SIGTERM of the caller; its output names
    /// the cause in `exit_reason`): ACPI power-down, a few seconds' grace,
    /// then SIGTERM and SIGKILL. Returns once the VM is down, with the
    /// record saying how it ended.
    pub async fn run_attached_until(
        &self,
        image: &Path,
        opts: RunOptions,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
        interrupt: impl Future<Output = String> + Send,
    ) -> Result<Container> {
        let opts = RunOptions {
            detach: false,
            ..opts
        };
        self.run_from(Origin::Image(image), opts, Some(on_output), interrupt)
            .await
    }

    /// `run`, or with `resume`, a new container that resumes a snapshot
    /// instead of booting `image` (see `resume.rs`).
    pub(super) async fn run_inner(
        &self,
        image: &Path,
        opts: RunOptions,
        on_output: Option<OutputSink<'_>>,
        interrupt: impl Future<Output = String> + Send,
        resume: Option<&ResumePlan>,
    ) -> Result<Container> {
        let cfg = validate(&opts)?;
        // A registry reference becomes the pulled image's file (pulled on
        // demand, reused when present); a path stays a path.
        #[cfg(feature = "registry")]
        let image = &self
            .resolve_image(image, crate::registry::PullOptions::default())
            .await?;
        let image = absolute(image);
        let format = check_image(&image)?;
        if !self.hypervisor.available() {
            return Err(match crate::hypervisor::detect_hypervisor() {
                Err(e) => e,
                Ok(_) => Error::HypervisorUnavailable(format!(
                    "{} is not installed",
                    self.hypervisor.name()
                )),
            });
        }
        let index = self.index_async().await?;
        if let Some(n) = &cfg.name {
            check_name_free(&index, n)?;
        }
        // A new ID never equals an existing name either: IDs win when a
        // reference is resolved, so that name would become unreachable.
        let id = loop {
            let id = crate::id::generate_id();
            if index.get(&id).is_none() && index.named(&id).is_empty() {
                break id;
            }
        };
        drop(index);
        let runtime_dir = self.home.runtime_dir_for(&id)?;
        let mut record = Container {
            id: id.clone(),
            name: cfg.name.clone().unwrap_or_else(|| id.clone()),
            image: image.to_string_lossy().into_owned(),
            status: Status::Starting,
            pid: 0,
            started_at: Utc::now(),
            ports: cfg.ports.clone(),
            memory: cfg.memory,
            cpus: cfg.cpus,
            ssh_port: cfg.ssh_port.unwrap_or(0),
            ssh_key: cfg
                .ssh_key
                .as_ref()
                .map(|k| k.to_string_lossy().into_owned()),
            volumes: cfg.volumes.clone(),
            hypervisor: Some(self.hypervisor.name().to_string()),
            accel: None,
            format: Some(format),
            bind_address: None,
            bind_addresses: cfg.binds.clone(),
            ssh_port_auto: cfg.ssh_port.is_none(),
            runtime_dir: Some(runtime_dir),
            disk: None,
            pid_start_time: None,
            exit_code: None,
            exit_signal: None,
            exit_reason: None,
            owner: Some(Owner::current()),
            stopped_at: None,
            snapshot: resume.map(|r| r.snapshot.name.clone()),
            mount_namespace: opts.mount_namespace && crate::mount_namespace::supported(),
            extra: Default::default(),
        };
        // `exec` passes these paths to ssh, which cannot take some of them
        // (a `"` in the home, say): refuse now, not at the first exec.
        if let Err(e) = self.ssh_target(&record).check() {
            return Err(match e {
                crate::ssh::SshError::Unsafe {
                    what,
                    value,
                    reason,
                } => Error::invalid(what, value, reason),
                other => other.into(),
            });
        }
        // Recorded before anything is started (see `run`).
        self.state
            .update_async(|s| {
                // Under the lock snapshot_remove takes: either it sees this
                // record and keeps the snapshot, or this sees it gone.
                if let Some(plan) = resume {
                    if !plan.dir.join(crate::snapshot::META_FILE).exists() {
                        return Err(SnapshotError::NotFound(plan.snapshot.name.clone()).into());
                    }
                }
                // Another process may have taken the name (or the ID) since.
                check_name_free(s, &record.name)?;
                if s.containers.contains_key(&id) || s.damaged.contains_key(&id) {
                    return Err(Error::invalid("container ID", &id, "already in use"));
                }
                s.containers.insert(id.clone(), record.clone());
                Ok(())
            })
            .await?;
        let guard = StartGuard::new(&self.state, &record);
        let launched = match self
            .launch_new(&mut record, on_output.is_some(), resume)
            .await
        {
            Ok(l) => l,
            Err(e) => {
                guard.disarm();
                self.abandon(&record, None).await;
                return Err(e);
            }
        };
        if let Some(plan) = resume {
            if let Err(e) = self.finish_resume(plan, &record).await {
                guard.disarm();
                self.abandon(&record, None).await;
                return Err(e);
            }
        }
        if on_output.is_none() {
            // Detached: the VM no longer depends on this process.
            record.owner = None;
        }
        let saved = self
            .update_container_async(&id, |c| {
                *c = record.clone();
                Ok(())
            })
            .await;
        guard.disarm();
        if let Err(e) = saved {
            // Removed meanwhile (`rm -f`): the VM must not outlive its record.
            self.abandon(&record, None).await;
            return Err(e);
        }
        match on_output {
            None => Ok(record),
            Some(out) => self.attach(record, launched, out, interrupt).await,
        }
    }

    /// Boots a stopped container again, with the disk it wrote before.
    /// Like `run`, the record says `starting` before anything starts.
    pub async fn start(&self, reference: &str) -> Result<Container> {
        let before = self.get_async(reference).await?;
        // Also a status this version does not know whose process lives: a
        // second hypervisor on the same disk must never start.
        if may_run(&before) {
            return Err(Error::Running(before.id));
        }
        let mut record = before.clone();
        record.status = Status::Starting;
        record.owner = Some(Owner::current());
        record.runtime_dir = Some(self.home.runtime_dir_for(&record.id)?);
        if record.ssh_port_auto {
            record.ssh_port = 0;
        }
        let id = record.id.clone();
        self.update_container_async(&id, |c| {
            // Another process may have started it since we looked.
            if c.status.is_active() {
                return Err(Error::Running(c.id.clone()));
            }
            *c = record.clone();
            Ok(())
        })
        .await?;
        let guard = StartGuard::new(&self.state, &record);
        let format = record
            .format
            .unwrap_or_else(|| detect_image_format(Path::new(&record.image)));
        let mut overlay = Ok(());
        if format.is_disk() && record.disk.is_none() {
            // A record without an overlay (go-container's): give it one, so
            // the image it names is never written.
            record.format = Some(format);
            overlay = self.prepare_overlay(&mut record, None).await;
        }
        if let Err(e) = match overlay {
            Ok(()) => self.launch(&mut record, false, None).await.map(|_| ()),
            Err(e) => Err(e),
        } {
            guard.disarm();
            self.abandon(&record, Some(before)).await;
            return Err(e);
        }
        record.owner = None;
        let saved = self
            .update_container_async(&id, |c| {
                *c = record.clone();
                Ok(())
            })
            .await;
        guard.disarm();
        if saved.is_err() {
            self.abandon(&record, None).await;
        }
        saved
    }

    /// First launch: prepares the directories and the overlay disk (on the
    /// image, or on the snapshot's disk when resuming).
    async fn launch_new(
        &self,
        record: &mut Container,
        foreground: bool,
        resume: Option<&ResumePlan>,
    ) -> Result<Launched> {
        let instance = self.home.instance_dir(&record.id);
        Home::ensure_dir(&instance)?;
        // A key ssh would ignore for its permissions (0644, as a checkout
        // leaves it) works through a private copy kept with the container.
        if let Some(key) = record.ssh_key.clone() {
            if let Some(copy) = crate::options::private_key_copy(Path::new(&key), &instance)? {
                record.ssh_key = Some(copy.to_string_lossy().into_owned());
            }
        }
        if record.format.unwrap_or(ImageFormat::Unknown).is_disk() {
            self.prepare_overlay(record, resume.and_then(|r| r.disk.clone()))
                .await?;
        }
        self.launch(record, foreground, resume).await
    }

    /// Creates the container's copy-on-write overlay over its image (or
    /// over `snapshot_disk`, a snapshot's frozen qcow2, when resuming), at
    /// the path this home derives for it.
    async fn prepare_overlay(
        &self,
        record: &mut Container,
        snapshot_disk: Option<PathBuf>,
    ) -> Result<()> {
        let instance = self.home.instance_dir(&record.id);
        Home::ensure_dir(&instance)?;
        let (image, format) = match snapshot_disk {
            Some(d) => (d, ImageFormat::Qcow2),
            None => (
                PathBuf::from(&record.image),
                record.format.unwrap_or(ImageFormat::Unknown),
            ),
        };
        // qemu-img is a child process to wait for: a blocking thread's job.
        let (hv, overlay) = (self.hypervisor.clone(), self.home.disk_path(&record.id));
        let disk = tokio::task::spawn_blocking(move || hv.prepare_disk(&image, format, &overlay))
            .await
            .map_err(|e| Error::io("prepare disk", &instance, std::io::Error::other(e)))??;
        restrict(&disk)?;
        record.disk = Some(disk);
        Ok(())
    }

    /// Cleans up after a start that failed: kills anything started for the
    /// record, then either restores the record as it was (`start`) or
    /// removes it and the files made for it (`run`).
    async fn abandon(&self, record: &Container, restore: Option<Container>) {
        let (c, this) = (record.clone(), self.clone());
        let _ = tokio::task::spawn_blocking(move || {
            reconcile::kill_hypervisors(&c);
            let ours = |r: &Container| r.status.is_active() && r.owner == Some(Owner::current());
            let restoring = restore.is_some();
            let _ = this.state.update(|s| {
                match restore {
                    Some(before) => {
                        if let Some(r) = s.containers.get_mut(&c.id).filter(|r| ours(r)) {
                            *r = before;
                        }
                    }
                    None => {
                        if s.containers.get(&c.id).is_some_and(ours) {
                            s.containers.remove(&c.id);
                        }
                    }
                }
                Ok::<_, Error>(())
            });
            let gone = this
                .state
                .load()
                .is_ok_and(|s| !s.containers.contains_key(&c.id));
            if !restoring && gone {
                this.discard(&c);
            }
        })
        .await;
    }

    /// What QEMU boots for `record`. `made_here` is a disk this process
    /// created for an internal VM (the snapshot helper), trusted as is;
    /// otherwise the record's disk must be one of its derived overlays.
    fn boot_image(&self, record: &Container, made_here: Option<&Path>) -> Result<BootImage> {
        let image = PathBuf::from(&record.image);
        Ok(
            match record.format.unwrap_or_else(|| detect_image_format(&image)) {
                ImageFormat::Iso => BootImage::Iso(image),
                ImageFormat::KernelInitrd => BootImage::Kernel(
                    resolve_kernel_image(&image)
                        .ok_or_else(|| Error::ImageNotFound(image.clone()))?,
                ),
                ImageFormat::Qcow2 | ImageFormat::Vmdk | ImageFormat::Raw => {
                    // The record's `disk` is input: QEMU writes to it, so it
                    // must be the overlay this home derives, nothing else.
                    let own = self.home.disk_path(&record.id);
                    match &record.disk {
                        Some(d)
                            if self.home.is_container_disk(&record.id, d)
                                || made_here == Some(d.as_path()) =>
                        {
                            BootImage::Disk {
                                path: d.clone(),
                                format: "qcow2",
                            }
                        }
                        Some(d) => {
                            return Err(Error::invalid(
                                "disk",
                                d.display().to_string(),
                                format!(
                                    "container {}'s record names a disk other than its overlay {}; refusing to let the VM write there",
                                    record.id,
                                    own.display()
                                ),
                            ))
                        }
                        None => {
                            return Err(Error::invalid(
                                "disk",
                                "",
                                format!("container {} has no overlay disk", record.id),
                            ))
                        }
                    }
                }
                ImageFormat::Unknown => return Err(Error::UnknownFormat(image)),
            },
        )
    }

    /// What the hypervisor needs to start `record` with its sockets in
    /// `runtime_dir`.
    pub(super) fn vm_spec(
        &self,
        record: &Container,
        runtime_dir: &Path,
        accel: Accel,
        daemonize: bool,
    ) -> Result<VmSpec> {
        self.vm_spec_with(record, runtime_dir, accel, daemonize, None)
    }

    /// [`Self::vm_spec`] for an internal VM whose disk `made_here` this
    /// process just created (see [`Self::boot_image`]).
    pub(super) fn vm_spec_with(
        &self,
        record: &Container,
        runtime_dir: &Path,
        accel: Accel,
        daemonize: bool,
        made_here: Option<&Path>,
    ) -> Result<VmSpec> {
        let mut ports = vec![PortForward {
            bind: std::net::Ipv4Addr::LOCALHOST.into(),
            host: record.ssh_port,
            guest: 22,
        }];
        // Each mapping keeps its own listen address (one hostfwd rule each).
        ports.extend(
            record
                .port_forwards()
                .into_iter()
                .map(|(bind, host, guest)| PortForward { bind, host, guest }),
        );
        let shares = record
            .volumes
            .iter()
            .map(|(h, g)| Share {
                host: PathBuf::from(h),
                tag: mount_tag(g).unwrap_or_default(),
            })
            .collect();
        Ok(VmSpec {
            id: record.id.clone(),
            image: self.boot_image(record, made_here)?,
            memory_mb: record.memory,
            cpus: record.cpus,
            ports,
            shares,
            log_path: self.home.log_path(&record.id),
            runtime_dir: runtime_dir.to_path_buf(),
            accel,
            daemonize,
        })
    }

    /// Starts the hypervisor for `record` and fills in its runtime fields.
    /// With `resume`, the VM starts paused, waiting for a snapshot's state.
    async fn launch(
        &self,
        record: &mut Container,
        foreground: bool,
        resume: Option<&ResumePlan>,
    ) -> Result<Launched> {
        let runtime_dir = self.home.runtime_dir_for(&record.id)?;
        self.home.ensure_runtime_dir(&runtime_dir)?;
        record.runtime_dir = Some(runtime_dir.clone());
        for stale in ["qmp.sock", "console.sock", "hypervisor.pid", "ssh.sock"] {
            let _ = std::fs::remove_file(runtime_dir.join(stale));
        }
        // What the last boot learned about its guest's transports.
        crate::manager::transport::forget_boot(&runtime_dir);
        crate::qga::create_channel(&runtime_dir)
            .map_err(|e| Error::io("create guest agent channel", &runtime_dir, e))?;
        // The hypervisor's messages are per boot: how the last one ended
        // must not be read as this one's.
        let hv_log = crate::hypervisor::hypervisor_log(&runtime_dir);
        let _ = std::fs::remove_file(&hv_log);
        create_private_file(&hv_log)?;
        // Host keys are pinned per boot: a guest that keeps them on its disk
        // presents the same ones again, one that makes them at boot (most
        // LinuxKit images) presents new ones, learned on first contact.
        let _ = std::fs::remove_file(self.home.instance_dir(&record.id).join("known_hosts"));
        Home::ensure_dir(&self.home.logs_dir())?;
        create_private_file(&self.home.log_path(&record.id))?;
        // The accelerator probe may boot a VM and wait for it.
        let hv = self.hypervisor.clone();
        let accel = tokio::task::spawn_blocking(move || hv.accel())
            .await
            .map_err(|e| {
                Error::io("probe accelerator", &runtime_dir, std::io::Error::other(e))
            })??;
        let spec = self.vm_spec(record, &runtime_dir, accel.accel, !foreground)?;
        let mut cmd = self.hypervisor.build_command(&spec)?;
        if record.mount_namespace {
            cmd = crate::mount_namespace::wrap(cmd);
        }
        if let Some(plan) = resume {
            self.prepare_resume(plan, record, &mut cmd)?;
        }
        let start_failed = |message: String| Error::StartFailed {
            hypervisor: self.hypervisor.name().to_string(),
            id: record.id.clone(),
            message,
        };
        let launched = if foreground {
            let mut child = foreground::spawn(&cmd, self.state.clone(), record.id.clone())
                .await
                .map_err(|e| Error::io("start hypervisor", &cmd.program, e))?;
            let deadline = Deadline::after(STARTUP_DEADLINE);
            loop {
                if let Ok(exit) = child.exit.try_recv() {
                    child.disarm();
                    let msg = match exit {
                        Ok(e) => format!("{} ({})", e.stderr.trim(), e.status),
                        Err(e) => e.to_string(),
                    };
                    return Err(start_failed(msg));
                }
                if Qmp::connect(&spec.qmp_socket()).await.is_ok() {
                    break;
                }
                if deadline.expired() {
                    // Dropping `child` terminates it.
                    return Err(start_failed(format!(
                        "its monitor socket did not answer within {}s",
                        STARTUP_DEADLINE.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Launched {
                pid: child.pid,
                child: Some(child),
            }
        } else {
            let mut command = tokio::process::Command::new(&cmd.program);
            command
                .args(&cmd.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let out = tokio::time::timeout(STARTUP_DEADLINE, command.output())
                .await
                .map_err(|_| {
                    start_failed("timed out waiting for the hypervisor to daemonize".into())
                })?
                .map_err(|e| Error::io("start hypervisor", &cmd.program, e))?;
            if !out.status.success() {
                // Once it has a log file (-D), QEMU reports start-up errors
                // there rather than on the stderr we read.
                let logged = std::fs::read(spec.hypervisor_log()).unwrap_or_default();
                let msg = [out.stderr.as_slice(), logged.as_slice()]
                    .iter()
                    .map(|b| String::from_utf8_lossy(b).trim().to_string())
                    .filter(|m| !m.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(start_failed(msg));
            }
            let pid_file = spec.pid_file();
            let pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
                .ok_or_else(|| start_failed(format!("no PID in {}", pid_file.display())))?;
            Launched { pid, child: None }
        };
        record.pid = launched.pid;
        record.pid_start_time = process::start_time(launched.pid);
        record.status = Status::Running;
        record.started_at = Utc::now();
        record.stopped_at = None;
        record.exit_code = None;
        record.exit_signal = None;
        record.exit_reason = None;
        record.accel = Some(accel.accel.as_str().to_string());
        if record.ssh_port == 0 {
            match self.read_ssh_port(&spec).await {
                Ok(p) => record.ssh_port = p,
                Err(e) => {
                    identity(record).signal(nix::sys::signal::Signal::SIGKILL);
                    return Err(e);
                }
            }
        }
        Ok(launched)
    }

    /// Asks QEMU which free port it bound for the guest's SSH forward.
    async fn read_ssh_port(&self, spec: &VmSpec) -> Result<u16> {
        let mut qmp = Qmp::connect(&spec.qmp_socket()).await?;
        let text = qmp.human("info usernet").await?;
        parse_usernet_forwards(&text, 22)
            .into_iter()
            .find(|p| *p != 0 && !spec.ports.iter().any(|f| f.host == *p && f.guest != 22))
            .ok_or_else(|| Error::StartFailed {
                hypervisor: "qemu".into(),
                id: spec.id.clone(),
                message: format!("no SSH forward in `info usernet`: {text}"),
            })
    }

    /// Streams the log of a foreground VM until it exits, then records the
    /// final status. When `interrupt` resolves first, the VM is stopped
    /// (see [`Self::run_attached_until`]).
    async fn attach(
        &self,
        record: Container,
        launched: Launched,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
        interrupt: impl Future<Output = String> + Send,
    ) -> Result<Container> {
        let mut child = launched.child.expect("foreground launch has a child");
        let pid = launched.pid;
        let mut follower = crate::logs::LogFollower::open(
            &self.home.log_path(&record.id),
            Box::new(move || process::is_alive(pid)),
        )?;
        let mut interrupt = std::pin::pin!(interrupt);
        let mut halted = None;
        loop {
            tokio::select! {
                chunk = follower.next_chunk() => match chunk {
                    Some(chunk) => on_output(&chunk?),
                    None => break,
                },
                why = &mut interrupt, if halted.is_none() => {
                    let halt = self.halt(&record, INTERRUPT_GRACE).await;
                    halted = Some((why, halt));
                }
            }
        }
        let exit = (&mut child.exit)
            .await
            .map_err(|_| std::io::Error::other("the hypervisor thread ended early"))
            .and_then(|r| r)
            .map_err(|e| Error::io("wait for hypervisor", PathBuf::from(&record.image), e))?;
        child.disarm();
        self.update_container_async(&record.id, |c| {
            if c.pid != pid {
                return Ok(());
            }
            match &halted {
                None => foreground::record_exit(c, &exit, None),
                Some((why, halt)) => {
                    foreground::record_exit(c, &exit, None);
                    // Not a crash: the caller asked for it to end.
                    c.status = match halt {
                        super::lifecycle::Halt::PoweredOff(_) => Status::Stopped,
                        _ => Status::Killed,
                    };
                    c.exit_signal = halt.signal().or(c.exit_signal);
                    c.exit_reason = Some(format!(
                        "the foreground run was interrupted ({why}): {}",
                        halt.describe(INTERRUPT_GRACE)
                    ));
                }
            }
            Ok(())
        })
        .await
    }

    /// Removes what a failed `run` left behind.
    fn discard(&self, record: &Container) {
        let _ = std::fs::remove_dir_all(self.home.instance_dir(&record.id));
        if let Some(rd) = &record.runtime_dir {
            let _ = std::fs::remove_dir_all(rd);
        }
        let _ = std::fs::remove_file(self.home.log_path(&record.id));
    }
}

/// Refuses `name` if a container already has it as its name, or has it
/// as its ID (a name equal to an ID would be shadowed by that ID).
fn check_name_free(st: &impl Records, name: &str) -> Result<()> {
    if st.is_container(name) || st.is_damaged(name) {
        return Err(Error::invalid(
            "name",
            name,
            "it is the ID of another container; a name must not equal an ID",
        ));
    }
    if !st.named(name).is_empty() {
        return Err(Error::invalid(
            "name",
            name,
            "a container with this name already exists",
        ));
    }
    Ok(())
}

/// Makes an existing file readable only by us.
fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("chmod", path, e))
}

/// Creates (or keeps) a file readable only by us.
///
/// The path is derived from the container's ID, but whatever is there is
/// not trusted: a symbolic link is not followed (a chmod would land on its
/// target) and a FIFO is refused rather than blocking.
pub(crate) fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = crate::regular_file::open_with(
        path,
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600),
        false,
    )
    .map_err(|e| Error::io("create", path, e.into_io()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("chmod", path, e))
}
