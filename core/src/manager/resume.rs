//! New containers that resume a snapshot instead of booting.
//!
//! A resumed container is an ordinary container (own ID, name, overlay
//! disk, runtime directory, ports and SSH forward) whose QEMU starts with
//! its RAM mapped copy-on-write from the snapshot's `memory.raw` and
//! `-incoming defer`, then loads the device state and continues where the
//! snapshot's source was. Nothing in the saved state names a socket or a
//! port: sockets, user networking and forwards come from the new command
//! line, so clones never collide with each other or with the source.
//!
//! The guest's clock stands still while it is saved: after resuming it is
//! behind by the snapshot's age until something sets it (NTP in the guest,
//! or the guest agent where available).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::launch::{Origin, OutputSink};
use super::snapshot::device_difference;
use super::LinuxKitManager;
use crate::container::{Container, RunOptions};
use crate::error::{Error, Result};
use crate::hypervisor::migration::{guest_abi, incoming_args, qemu_version, MemoryImage};
use crate::hypervisor::{hypervisor_log, qmp_socket, CommandLine, QemuHypervisor};
use crate::qmp::Qmp;
use crate::snapshot::{
    fingerprint, migrate, Snapshot, SnapshotError, DISK_FILE, MEMORY_FILE, STATE_FILE,
};

/// Longest loading the device state may take (it is a few hundred KB).
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// A snapshot checked for resuming here.
#[derive(Debug)]
pub(super) struct ResumePlan {
    /// The snapshot.
    pub(super) snapshot: Snapshot,
    /// Its directory.
    pub(super) dir: PathBuf,
    /// Its frozen disk, the base of the new container's overlay.
    pub(super) disk: Option<PathBuf>,
}

impl LinuxKitManager {
    /// Starts a new container that resumes snapshot `name`: the guest goes
    /// on from the instant the snapshot was taken, with its memory, running
    /// processes and disk as they were. `opts` gives the name, ports, SSH
    /// port and key (default: the source's); memory, CPUs and volumes are
    /// the snapshot's (different values are refused). With `opts.detach`
    /// it returns once the guest runs; otherwise it waits until the VM
    /// exits, like [`Self::run`].
    pub async fn run_snapshot(&self, name: &str, opts: RunOptions) -> Result<Container> {
        self.run_from(Origin::Snapshot(name), opts, None, std::future::pending())
            .await
    }

    /// [`Self::run_snapshot`] in the foreground, passing serial output to
    /// `on_output` until the VM exits (as [`Self::run_attached`]).
    pub async fn run_snapshot_attached(
        &self,
        name: &str,
        opts: RunOptions,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<Container> {
        self.run_snapshot_attached_until(name, opts, on_output, std::future::pending())
            .await
    }

    /// [`Self::run_snapshot_attached`] that stops the VM when `interrupt`
    /// resolves (as [`Self::run_attached_until`]).
    pub async fn run_snapshot_attached_until(
        &self,
        name: &str,
        opts: RunOptions,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
        interrupt: impl Future<Output = String> + Send,
    ) -> Result<Container> {
        let opts = RunOptions {
            detach: false,
            ..opts
        };
        self.run_from(Origin::Snapshot(name), opts, Some(on_output), interrupt)
            .await
    }

    pub(super) async fn run_snapshot_inner(
        &self,
        name: &str,
        opts: RunOptions,
        on_output: Option<OutputSink<'_>>,
        interrupt: impl Future<Output = String> + Send,
    ) -> Result<Container> {
        let snapshot = self.snapshots().get(name)?;
        let opts = self.resume_options(&snapshot, opts)?;
        let dir = snapshot
            .path
            .clone()
            .unwrap_or_else(|| self.snapshots().path(name));
        for f in [MEMORY_FILE, STATE_FILE]
            .into_iter()
            .chain(snapshot.disk.then_some(DISK_FILE))
        {
            if !dir.join(f).is_file() {
                return Err(SnapshotError::Incompatible {
                    name: name.into(),
                    reason: format!("its file {} is missing", dir.join(f).display()),
                }
                .into());
            }
        }
        let plan = ResumePlan {
            disk: snapshot.disk.then(|| dir.join(DISK_FILE)),
            dir,
            snapshot,
        };
        let image = PathBuf::from(&plan.snapshot.image);
        self.run_inner(&image, opts, on_output, interrupt, Some(&plan))
            .await
    }

    /// `opts` with the snapshot's fixed settings, after checking that
    /// this host and these options can resume it.
    fn resume_options(&self, snap: &Snapshot, mut opts: RunOptions) -> Result<RunOptions> {
        let refuse = |reason: String| {
            Error::from(SnapshotError::Incompatible {
                name: snap.name.clone(),
                reason,
            })
        };
        if let Some(m) = opts.memory.filter(|m| *m != snap.memory) {
            return Err(refuse(format!(
                "it was saved with {} MB of memory; a resumed VM cannot have {m} MB",
                snap.memory
            )));
        }
        if let Some(n) = opts.cpus.filter(|n| *n != snap.cpus) {
            return Err(refuse(format!(
                "it was saved with {} CPU(s); a resumed VM cannot have {n}",
                snap.cpus
            )));
        }
        if !opts.volumes.is_empty() {
            return Err(refuse(
                "volumes are part of the saved VM's devices; a resumed VM keeps the snapshot's"
                    .into(),
            ));
        }
        if self.hypervisor.name() != "qemu" {
            return Err(refuse(format!(
                "snapshots need QEMU; this manager uses {}",
                self.hypervisor.name()
            )));
        }
        let qemu = QemuHypervisor::new();
        let binary = qemu.binary().ok_or_else(|| {
            Error::HypervisorUnavailable(format!(
                "{} not found on PATH",
                QemuHypervisor::binary_name()
            ))
        })?;
        let version = qemu_version(binary)?;
        if version != snap.qemu_version {
            return Err(refuse(format!(
                "it was saved by QEMU {} and this host has QEMU {version} (set VMCONTAINER_QEMU to a QEMU {} binary)",
                snap.qemu_version, snap.qemu_version
            )));
        }
        let accel = self.hypervisor.accel()?.accel;
        if accel.as_str() != snap.accel {
            return Err(refuse(format!(
                "it was saved under {} and VMs here run under {} (VMCONTAINER_ACCEL selects one)",
                snap.accel,
                accel.as_str()
            )));
        }
        if fingerprint(Path::new(&snap.image)) != snap.image_fingerprint {
            return Err(refuse(format!(
                "its image {} is missing or has changed since the snapshot was taken",
                snap.image
            )));
        }
        opts.memory = Some(snap.memory);
        opts.cpus = Some(snap.cpus);
        opts.volumes = snap
            .volumes
            .iter()
            .map(|(h, g)| (PathBuf::from(h), g.clone()))
            .collect();
        opts.ssh_key = opts
            .ssh_key
            .or_else(|| snap.ssh_key.as_ref().map(Into::into));
        Ok(opts)
    }

    /// Checks that the command line built for `record` has the saved VM's
    /// devices, and makes it wait for the saved state with RAM from the
    /// snapshot.
    pub(super) fn prepare_resume(
        &self,
        plan: &ResumePlan,
        record: &Container,
        cmd: &mut CommandLine,
    ) -> Result<()> {
        let snap = &plan.snapshot;
        let now = guest_abi(&cmd.args);
        if now != snap.devices {
            return Err(SnapshotError::Incompatible {
                name: snap.name.clone(),
                reason: format!(
                    "it was saved from a VM with other devices than this vmcontainer starts. {}",
                    device_difference(&snap.devices, &now)
                ),
            }
            .into());
        }
        cmd.args.extend(incoming_args(&MemoryImage {
            path: &plan.dir.join(MEMORY_FILE),
            memory_mb: record.memory,
            ram_id: &snap.ram_id,
            machine: &snap.machine,
            shared: false,
        })?);
        Ok(())
    }

    /// Loads the saved state into the paused VM, starts it, and pins the
    /// guest's host keys (the clone has the source's memory, so its keys).
    pub(super) async fn finish_resume(&self, plan: &ResumePlan, record: &Container) -> Result<()> {
        let name = &plan.snapshot.name;
        let failed = |message: String| {
            // A QEMU that cannot load the state says why in its -D log.
            let log = record
                .runtime_dir
                .as_deref()
                .and_then(|rd| std::fs::read_to_string(hypervisor_log(rd)).ok())
                .unwrap_or_default();
            let mut message = format!("resuming it failed: {message}");
            if !log.trim().is_empty() {
                message.push_str(&format!("; QEMU: {}", log.trim().replace('\n', "; ")));
            }
            Error::from(SnapshotError::Failed {
                name: name.clone(),
                message,
            })
        };
        let rd = record
            .runtime_dir
            .as_deref()
            .ok_or_else(|| failed("no runtime directory".into()))?;
        let mut qmp = Qmp::connect(&qmp_socket(rd))
            .await
            .map_err(|e| failed(e.to_string()))?;
        migrate::ignore_shared_ram(&mut qmp, true)
            .await
            .map_err(failed)?;
        let state = plan.dir.join(STATE_FILE);
        let file = std::fs::File::open(&state).map_err(|e| Error::io("open", &state, e))?;
        migrate::load(&mut qmp, &file, LOAD_TIMEOUT)
            .await
            .map_err(failed)?;
        qmp.execute("cont", None)
            .await
            .map_err(|e| failed(e.to_string()))?;
        self.pin_host_keys(record, &plan.snapshot.host_keys)
    }

    /// Writes `keys` as the pinned host keys of `record`.
    fn pin_host_keys(&self, record: &Container, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let alias = format!("vmcontainer-{}", record.id);
        let text: String = keys.iter().map(|k| format!("{alias} {k}\n")).collect();
        let path = self.home.instance_dir(&record.id).join("known_hosts");
        super::launch::create_private_file(&path)?;
        std::fs::write(&path, text).map_err(|e| Error::io("write", &path, e))
    }
}
