//! Starting VMs: `run` (a new container) and `start` (an existing, stopped
//! one). Both end in `launch`, which turns a record into a running
//! hypervisor process and fills in what only the process can tell (PID,
//! start time, the SSH port QEMU picked).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::io::AsyncReadExt;

use super::resume::ResumePlan;
use super::{identity, LinuxKitManager};
use crate::container::{Container, RunOptions, Status};
use crate::error::{Error, Result};
use crate::home::{absolute, Home};
use crate::hypervisor::{Accel, BootImage, PortForward, Share, VmSpec};
use crate::image::{detect_image_format, resolve_kernel_image, ImageFormat};
use crate::options::{mount_tag, validate};
use crate::process;
use crate::qmp::{parse_usernet_forwards, Qmp};
use crate::snapshot::SnapshotError;

/// How long a hypervisor may take to come up before `run` gives up.
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// Receives serial output of a foreground VM.
pub type OutputSink<'a> = &'a mut (dyn FnMut(&[u8]) + Send);

/// A started hypervisor process.
struct Launched {
    pid: i32,
    /// The foreground child, when not daemonized.
    child: Option<tokio::process::Child>,
}

impl LinuxKitManager {
    /// Starts a new container from `image`.
    ///
    /// With `opts.detach` it returns once the VM process is up and the VM
    /// outlives the caller; otherwise it waits for the VM to exit (serial
    /// output goes to the log only; see [`Self::run_attached`]).
    pub async fn run(&self, image: &Path, opts: RunOptions) -> Result<Container> {
        if opts.detach {
            self.run_inner(image, opts, None, None).await
        } else {
            self.run_inner(image, opts, Some(&mut |_: &[u8]| {}), None)
                .await
        }
    }

    /// Runs a container in the foreground, passing serial output to
    /// `on_output` as it arrives, until the VM exits. The final status is
    /// `stopped` when the hypervisor exited 0, else `error`.
    pub async fn run_attached(
        &self,
        image: &Path,
        opts: RunOptions,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<Container> {
        self.run_inner(
            image,
            RunOptions {
                detach: false,
                ..opts
            },
            Some(on_output),
            None,
        )
        .await
    }

    /// `run`, or with `resume`, a new container that resumes a snapshot
    /// instead of booting `image` (see `resume.rs`).
    pub(super) async fn run_inner(
        &self,
        image: &Path,
        opts: RunOptions,
        on_output: Option<OutputSink<'_>>,
        resume: Option<&ResumePlan>,
    ) -> Result<Container> {
        let cfg = validate(&opts)?;
        let image = absolute(image);
        let format = detect_image_format(&image);
        if format != ImageFormat::KernelInitrd && !image.is_file() {
            return Err(Error::ImageNotFound(image));
        }
        if format == ImageFormat::Unknown {
            return Err(Error::UnknownFormat(image));
        }
        if !self.hypervisor.available() {
            return Err(match crate::hypervisor::detect_hypervisor() {
                Err(e) => e,
                Ok(_) => Error::HypervisorUnavailable(format!(
                    "{} is not installed",
                    self.hypervisor.name()
                )),
            });
        }
        let st = self.state.load()?;
        if let Some(n) = &cfg.name {
            if st.containers.values().any(|c| &c.name == n) {
                return Err(Error::invalid(
                    "name",
                    n,
                    "a container with this name already exists",
                ));
            }
        }
        let id = loop {
            let id = crate::id::generate_id();
            if !st.containers.contains_key(&id) {
                break id;
            }
        };
        let mut record = Container {
            id: id.clone(),
            name: cfg.name.clone().unwrap_or_else(|| id.clone()),
            image: image.to_string_lossy().into_owned(),
            status: Status::Running,
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
            bind_address: Some(cfg.bind),
            ssh_port_auto: cfg.ssh_port.is_none(),
            runtime_dir: None,
            disk: None,
            pid_start_time: None,
            exit_code: None,
            stopped_at: None,
            snapshot: resume.map(|r| r.snapshot.name.clone()),
            extra: Default::default(),
        };
        let result = self
            .launch_new(&mut record, on_output.is_some(), resume)
            .await;
        let launched = match result {
            Ok(l) => l,
            Err(e) => {
                self.discard(&record);
                return Err(e);
            }
        };
        if let Some(plan) = resume {
            if let Err(e) = self.finish_resume(plan, &record).await {
                identity(&record).signal(nix::sys::signal::Signal::SIGKILL);
                self.discard(&record);
                return Err(e);
            }
        }
        let saved = self.state.update(|s| {
            // Under the lock snapshot_remove takes: a snapshot removed
            // while this container started from it fails the start.
            if let Some(plan) = resume {
                if !plan.dir.join(crate::snapshot::META_FILE).exists() {
                    return Err(SnapshotError::NotFound(plan.snapshot.name.clone()).into());
                }
            }
            if s.containers.values().any(|c| c.name == record.name) {
                return Err(Error::invalid(
                    "name",
                    &record.name,
                    "a container with this name already exists",
                ));
            }
            s.containers.insert(id.clone(), record.clone());
            Ok(())
        });
        if let Err(e) = saved {
            identity(&record).signal(nix::sys::signal::Signal::SIGKILL);
            self.discard(&record);
            return Err(e);
        }
        match on_output {
            None => Ok(record),
            Some(out) => self.attach(record, launched, out).await,
        }
    }

    /// Boots a stopped container again, with the disk it wrote before.
    pub async fn start(&self, reference: &str) -> Result<Container> {
        let mut record = self.get(reference)?;
        if record.status == Status::Running {
            return Err(Error::Running(record.id));
        }
        if record.ssh_port_auto {
            record.ssh_port = 0;
        }
        self.launch(&mut record, false, None).await?;
        let id = record.id.clone();
        self.update_container(&id, |c| {
            *c = record.clone();
            Ok(())
        })
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
        let format = record.format.unwrap_or(ImageFormat::Unknown);
        if format.is_disk() {
            let (base, base_format) = match resume.and_then(|r| r.disk.as_deref()) {
                Some(d) => (d, ImageFormat::Qcow2),
                None => (Path::new(&record.image), format),
            };
            let disk =
                self.hypervisor
                    .prepare_disk(base, base_format, &instance.join("disk.qcow2"))?;
            restrict(&disk)?;
            record.disk = Some(disk);
        }
        self.launch(record, foreground, resume).await
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
        let bind = record
            .bind_address
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
        let mut ports = vec![PortForward {
            bind: std::net::Ipv4Addr::LOCALHOST.into(),
            host: record.ssh_port,
            guest: 22,
        }];
        ports.extend(record.ports.iter().map(|(h, g)| PortForward {
            bind,
            host: *h,
            guest: *g,
        }));
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
            image: self.boot_image(record)?,
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

    fn boot_image(&self, record: &Container) -> Result<BootImage> {
        let image = PathBuf::from(&record.image);
        Ok(
            match record.format.unwrap_or_else(|| detect_image_format(&image)) {
                ImageFormat::Iso => BootImage::Iso(image),
                ImageFormat::KernelInitrd => BootImage::Kernel(
                    resolve_kernel_image(&image)
                        .ok_or_else(|| Error::ImageNotFound(image.clone()))?,
                ),
                f @ (ImageFormat::Qcow2 | ImageFormat::Vmdk | ImageFormat::Raw) => {
                    match &record.disk {
                        Some(d) if d != &image => BootImage::Disk {
                            path: d.clone(),
                            format: "qcow2",
                        },
                        _ => BootImage::Disk {
                            path: image,
                            format: f.as_str(),
                        },
                    }
                }
                ImageFormat::Unknown => return Err(Error::UnknownFormat(image)),
            },
        )
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
        // Host keys are pinned per boot: a guest that keeps them on its disk
        // presents the same ones again, one that makes them at boot (most
        // LinuxKit images) presents new ones, learned on first contact.
        let _ = std::fs::remove_file(self.home.instance_dir(&record.id).join("known_hosts"));
        Home::ensure_dir(&self.home.logs_dir())?;
        create_private_file(&self.home.log_path(&record.id))?;
        let accel = self.hypervisor.accel()?;
        let spec = self.vm_spec(record, &runtime_dir, accel.accel, !foreground)?;
        let mut cmd = self.hypervisor.build_command(&spec)?;
        if let Some(plan) = resume {
            self.prepare_resume(plan, record, &mut cmd)?;
        }
        let start_failed = |message: String| Error::StartFailed {
            hypervisor: self.hypervisor.name().to_string(),
            id: record.id.clone(),
            message,
        };
        let mut command = tokio::process::Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let launched = if foreground {
            // Keep the child in our process group so Ctrl-C reaches it.
            let mut child = command
                .spawn()
                .map_err(|e| Error::io("start hypervisor", &cmd.program, e))?;
            let mut stderr = child.stderr.take();
            let deadline = Instant::now() + STARTUP_DEADLINE;
            loop {
                if let Some(status) = child
                    .try_wait()
                    .map_err(|e| Error::io("wait for hypervisor", &cmd.program, e))?
                {
                    let mut msg = String::new();
                    if let Some(s) = stderr.as_mut() {
                        let _ = s.read_to_string(&mut msg).await;
                    }
                    return Err(start_failed(format!("{} ({status})", msg.trim())));
                }
                if Qmp::connect(&spec.qmp_socket()).await.is_ok() || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let pid = child.id().map(|p| p as i32).unwrap_or(0);
            Launched {
                pid,
                child: Some(child),
            }
        } else {
            let out = tokio::time::timeout(STARTUP_DEADLINE, command.output())
                .await
                .map_err(|_| {
                    start_failed("timed out waiting for the hypervisor to daemonize".into())
                })?
                .map_err(|e| Error::io("start hypervisor", &cmd.program, e))?;
            if !out.status.success() {
                return Err(start_failed(
                    String::from_utf8_lossy(&out.stderr).trim().to_string(),
                ));
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
    /// final status.
    async fn attach(
        &self,
        record: Container,
        launched: Launched,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<Container> {
        let mut child = launched.child.expect("foreground launch has a child");
        let mut follower = crate::logs::LogFollower::open(
            &self.home.log_path(&record.id),
            Box::new(move || process::is_alive(launched.pid)),
        )?;
        while let Some(chunk) = follower.next_chunk().await {
            on_output(&chunk?);
        }
        let status = child
            .wait()
            .await
            .map_err(|e| Error::io("wait for hypervisor", PathBuf::from(&record.image), e))?;
        self.update_container(&record.id, |c| {
            c.status = if status.success() {
                Status::Stopped
            } else {
                Status::Error
            };
            c.exit_code = status.code();
            c.stopped_at = Some(Utc::now());
            Ok(())
        })
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

/// Makes an existing file readable only by us.
fn restrict(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("chmod", path, e))
}

/// Creates (or keeps) a file readable only by us.
pub(crate) fn create_private_file(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("chmod", path, e))
}
