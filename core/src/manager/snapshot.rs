//! Taking, listing and removing snapshots of running containers.
//!
//! `snapshot_create` pauses the VM, freezes its disk, saves its state and
//! resumes it; the pause lasts as long as writing the state to a file
//! (about 0.15 s for 100 MB of used guest RAM here). Turning that state
//! into the snapshot's shareable memory file happens after the source has
//! resumed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Value};

use super::LinuxKitManager;
use crate::container::{Container, Status};
use crate::error::{Error, Result};
use crate::hypervisor::migration::{guest_abi, incoming_args, MemoryImage};
use crate::hypervisor::{qmp_socket, Accel};
use crate::process;
use crate::qmp::Qmp;
use crate::snapshot::convert::{create_private, stream_to_memory_file};
use crate::snapshot::{
    fingerprint, migrate, validate_name, PendingSnapshot, Snapshot, SnapshotError, SnapshotStore,
    DISK_FILE, FORMAT_VERSION, MEMORY_FILE, STATE_FILE,
};

/// The source's state stream, inside the temporary directory only.
const STREAM_FILE: &str = "vm.stream";
/// Longest a paused source may take to write its state.
const SAVE_TIMEOUT: Duration = Duration::from_secs(600);

/// What QEMU says about the running source.
struct Facts {
    qemu_version: String,
    machine: String,
    ram_id: String,
    accel: Accel,
    devices: Vec<String>,
}

impl LinuxKitManager {
    /// The home's `snapshots/` directory.
    pub fn snapshots(&self) -> SnapshotStore {
        SnapshotStore::new(self.home.snapshots_dir())
    }

    /// Every snapshot, oldest first.
    pub fn snapshot_list(&self) -> Result<Vec<Snapshot>> {
        self.snapshots().list()
    }

    /// One snapshot by name.
    pub fn snapshot_get(&self, name: &str) -> Result<Snapshot> {
        self.snapshots().get(name)
    }

    /// Deletes a snapshot. Refused while any container (running or not)
    /// was created from it, or another snapshot's disk is layered on it,
    /// naming them.
    pub fn snapshot_remove(&self, name: &str) -> Result<Snapshot> {
        let store = self.snapshots();
        let snap = store.get(name)?;
        let children: Vec<String> = store
            .list()?
            .into_iter()
            .filter(|s| s.parent.as_deref() == Some(name))
            .map(|s| format!("snapshot {}", s.name))
            .collect();
        // Under the state lock, so a container being created from it
        // either is seen here or sees the snapshot gone (see run_inner).
        self.state.update(|s| {
            let mut users: Vec<String> = s
                .containers
                .values()
                .filter(|c| c.snapshot.as_deref() == Some(name))
                .map(|c| format!("container {} ({})", c.id, c.name))
                .collect();
            users.extend(children.iter().cloned());
            if !users.is_empty() {
                return Err(Error::from(SnapshotError::InUse {
                    name: name.to_string(),
                    users,
                }));
            }
            store.remove(name)
        })?;
        Ok(snap)
    }

    /// Snapshots running container `reference` as `name`: its memory,
    /// devices and disk at one instant. The container keeps running (it
    /// is paused for the time it takes to write its state) and continues
    /// on a new disk overlay above the frozen one, which the snapshot
    /// shares. Nothing is listed unless the whole snapshot was written; a
    /// failure removes what was written and resumes the container.
    pub async fn snapshot_create(&self, reference: &str, name: &str) -> Result<Snapshot> {
        validate_name(name)?;
        let store = self.snapshots();
        if store.path(name).exists() {
            return Err(SnapshotError::Exists(name.to_string()).into());
        }
        let c = self.get(reference)?;
        if c.status != Status::Running {
            return Err(Error::NotRunning(c.id));
        }
        let unsupported = |reason: &str| SnapshotError::Unsupported {
            id: c.id.clone(),
            reason: reason.to_string(),
        };
        if c.hypervisor.as_deref().unwrap_or("qemu") != "qemu" || self.hypervisor.name() != "qemu" {
            return Err(unsupported("snapshots need QEMU").into());
        }
        let Some(runtime_dir) = c.runtime_dir.clone() else {
            return Err(
                unsupported("it has no QMP socket (it was started by another tool)").into(),
            );
        };
        let pending = store.begin(name)?;
        let failed = |message: String| {
            Error::from(SnapshotError::Failed {
                name: name.to_string(),
                message,
            })
        };
        let mut qmp = Qmp::connect(&qmp_socket(&runtime_dir)).await?;
        let facts = self.facts(&mut qmp, &c, &runtime_dir).await?;

        let created_at = Utc::now();
        let status = qmp.execute("query-status", None).await?;
        let was_running = status.get("running").and_then(Value::as_bool) == Some(true);
        let paused = std::time::Instant::now();
        qmp.execute("stop", None).await?;
        let saved = self.freeze_and_save(&mut qmp, &c, &pending).await;
        // The source runs again whatever happened to the snapshot.
        let resumed = if was_running {
            qmp.execute("cont", None).await.map(|_| ())
        } else {
            Ok(())
        };
        let source_pause_ms = paused.elapsed().as_millis() as u64;
        let copy_disk = saved.map_err(failed)?;
        resumed?;
        drop(qmp);

        if let Some(frozen) = copy_disk {
            // The frozen disk never changes again, so copying it (when it
            // cannot be linked) can wait until the source runs.
            let to = pending.dir().join(DISK_FILE);
            std::fs::copy(&frozen, &to).map_err(|e| Error::io("copy", &frozen, e))?;
        }
        self.convert(&c, &facts, &pending).await.map_err(failed)?;
        let meta = Snapshot {
            format_version: FORMAT_VERSION,
            name: name.to_string(),
            created_at,
            source_id: c.id.clone(),
            source_name: c.name.clone(),
            image: c.image.clone(),
            format: c
                .format
                .unwrap_or_else(|| crate::detect_image_format(Path::new(&c.image))),
            image_fingerprint: fingerprint(Path::new(&c.image)),
            memory: c.memory,
            cpus: c.cpus,
            qemu_version: facts.qemu_version,
            machine: facts.machine,
            ram_id: facts.ram_id,
            accel: facts.accel.as_str().to_string(),
            devices: facts.devices,
            volumes: c.volumes.clone(),
            disk: pending.dir().join(DISK_FILE).exists(),
            parent: c
                .snapshot
                .clone()
                .filter(|_| pending.dir().join(DISK_FILE).exists()),
            source_pause_ms,
            ssh_key: c.ssh_key.clone(),
            host_keys: self.pinned_host_keys(&c),
            path: None,
            size: 0,
            extra: Default::default(),
        };
        pending.publish(&meta)?;
        store.get(name)
    }

    /// Version, machine and device set of the running source, checked
    /// against what this build would give a resumed VM.
    async fn facts(&self, qmp: &mut Qmp, c: &Container, runtime_dir: &Path) -> Result<Facts> {
        let v = qmp.execute("query-version", None).await?;
        let q = &v["qemu"];
        let qemu_version = format!("{}.{}.{}", q["major"], q["minor"], q["micro"]);
        let qom = qmp
            .execute(
                "qom-get",
                Some(json!({ "path": "/machine", "property": "type" })),
            )
            .await?;
        let qom = qom.as_str().unwrap_or_default();
        let machine = qom.strip_suffix("-machine").unwrap_or(qom).to_string();
        let machines = qmp.execute("query-machines", None).await?;
        let ram_id = machines
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["name"] == machine.as_str())
            .and_then(|m| m["default-ram-id"].as_str())
            .ok_or_else(|| SnapshotError::Unsupported {
                id: c.id.clone(),
                reason: format!("QEMU names no RAM block for machine type {machine:?}"),
            })?
            .to_string();
        let accel = match c.accel.as_deref().and_then(Accel::parse) {
            Some(a) => a,
            None => self.hypervisor.accel()?.accel,
        };
        let spec = self.vm_spec(c, runtime_dir, accel, true)?;
        let expected = guest_abi(&self.hypervisor.build_command(&spec)?.args);
        let devices = match process::args(c.pid).filter(|_| super::identity(c).is_current()) {
            Some(actual) => guest_abi(&actual),
            None => expected.clone(),
        };
        if devices != expected {
            return Err(SnapshotError::Unsupported {
                id: c.id.clone(),
                reason: format!(
                    "it runs with a different device set than this vmcontainer gives VMs (started by another version?); stop and start it, then snapshot again. {}",
                    device_difference(&devices, &expected)
                ),
            }
            .into());
        }
        Ok(Facts {
            qemu_version,
            machine,
            ram_id,
            accel,
            devices,
        })
    }

    /// With the source paused: moves it onto a new overlay so its current
    /// one is frozen, shares that with the snapshot, and writes the VM
    /// state stream. Returns the frozen disk when it has to be copied
    /// (another file system) rather than linked.
    async fn freeze_and_save(
        &self,
        qmp: &mut Qmp,
        c: &Container,
        pending: &PendingSnapshot,
    ) -> std::result::Result<Option<PathBuf>, String> {
        let mut copy = None;
        if let (Some(disk), true) = (&c.disk, c.format.is_some_and(|f| f.is_disk())) {
            let blocks = qmp
                .execute("query-block", None)
                .await
                .map_err(|e| e.to_string())?;
            let device = blocks
                .as_array()
                .into_iter()
                .flatten()
                .find(|b| b["inserted"]["file"].as_str() == disk.to_str())
                .and_then(|b| b["device"].as_str())
                .ok_or_else(|| format!("QEMU has no drive for disk {}", disk.display()))?
                .to_string();
            let next = next_overlay(disk);
            qmp.execute(
                "blockdev-snapshot-sync",
                Some(json!({ "device": device, "snapshot-file": next, "format": "qcow2" })),
            )
            .await
            .map_err(|e| format!("freezing the disk: {e}"))?;
            set_mode(&next, 0o600)?;
            // From here on QEMU writes to `next`: the record must say so
            // before anything else can fail.
            self.update_container(&c.id, |r| {
                r.disk = Some(next.clone());
                Ok(())
            })
            .map_err(|e| e.to_string())?;
            set_mode(disk, 0o400)?;
            let link = pending.dir().join(DISK_FILE);
            match std::fs::hard_link(disk, &link) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EXDEV) => copy = Some(disk.clone()),
                Err(e) => return Err(format!("linking {}: {e}", disk.display())),
            }
        }
        // A source that was itself resumed from a snapshot has RAM from a
        // private mapping, which is saved like any; the capability it was
        // resumed with must not mark this stream.
        migrate::ignore_shared_ram(qmp, false).await?;
        let stream = create_private(&pending.dir().join(STREAM_FILE))?;
        migrate::save(qmp, &stream, SAVE_TIMEOUT).await?;
        Ok(copy)
    }

    /// Produces `memory.raw` and `state.bin` from the saved stream with a
    /// helper QEMU built like the source (see `snapshot::convert`).
    async fn convert(
        &self,
        c: &Container,
        facts: &Facts,
        pending: &PendingSnapshot,
    ) -> std::result::Result<(), String> {
        let dir = pending.dir();
        let key = format!("snap-{}", crate::id::generate_id());
        let rd = self
            .home
            .runtime_dir_in(dir.join("run"), &key)
            .map_err(|e| e.to_string())?;
        self.home
            .ensure_runtime_dir(&rd)
            .map_err(|e| e.to_string())?;
        let result = self.convert_in(c, facts, dir, &rd, &key).await;
        let _ = std::fs::remove_dir_all(&rd);
        let _ = std::fs::remove_file(dir.join(STREAM_FILE));
        result
    }

    async fn convert_in(
        &self,
        c: &Container,
        facts: &Facts,
        dir: &Path,
        rd: &Path,
        key: &str,
    ) -> std::result::Result<(), String> {
        let mut helper = c.clone();
        helper.id = key.to_string();
        helper.ports.clear();
        helper.ssh_port = 0;
        let frozen = dir.join(DISK_FILE);
        if frozen.exists() {
            // QEMU takes a loaded VM's disks over for writing; the helper
            // never runs the guest, but it gets a throwaway overlay anyway.
            helper.disk = Some(
                self.hypervisor
                    .prepare_disk(&frozen, crate::ImageFormat::Qcow2, &rd.join("disk.qcow2"))
                    .map_err(|e| e.to_string())?,
            );
        }
        let mut spec = self
            .vm_spec(&helper, rd, facts.accel, false)
            .map_err(|e| e.to_string())?;
        spec.log_path = rd.join("console.log");
        let mut cmd = self
            .hypervisor
            .build_command(&spec)
            .map_err(|e| e.to_string())?;
        let memory = dir.join(MEMORY_FILE);
        create_private(&memory)?
            .set_len(u64::from(c.memory) << 20)
            .map_err(|e| format!("{}: {e}", memory.display()))?;
        let log = spec.hypervisor_log();
        cmd.args.extend(
            incoming_args(&MemoryImage {
                path: &memory,
                memory_mb: c.memory,
                ram_id: &facts.ram_id,
                machine: &facts.machine,
                shared: true,
            })
            .map_err(|e| e.to_string())?,
        );
        stream_to_memory_file(
            &cmd,
            &spec.qmp_socket(),
            &log,
            &dir.join(STREAM_FILE),
            &dir.join(STATE_FILE),
        )
        .await
    }

    /// The guest's host keys pinned for `c` (`TYPE BASE64` lines).
    fn pinned_host_keys(&self, c: &Container) -> Vec<String> {
        let alias = format!("vmcontainer-{}", c.id);
        let path = self.home.instance_dir(&c.id).join("known_hosts");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                (f.next()? == alias).then(|| f.take(2).collect::<Vec<_>>().join(" "))
            })
            .filter(|k| k.contains(' '))
            .collect()
    }
}

/// The first free `disk.N.qcow2` beside `disk`.
fn next_overlay(disk: &Path) -> PathBuf {
    let dir = disk.parent().unwrap_or(Path::new("."));
    (1..)
        .map(|n| dir.join(format!("disk.{n}.qcow2")))
        .find(|p| !p.exists())
        .expect("an unused overlay name")
}

fn set_mode(path: &Path, mode: u32) -> std::result::Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// A readable account of how two device lists differ.
pub(super) fn device_difference(saved: &[String], now: &[String]) -> String {
    let missing: Vec<&str> = saved
        .iter()
        .filter(|d| !now.contains(d))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = now
        .iter()
        .filter(|d| !saved.contains(d))
        .map(String::as_str)
        .collect();
    match (missing.is_empty(), extra.is_empty()) {
        (true, true) => "The same devices in a different order.".into(),
        (false, true) => format!("Only the saved VM has: {}.", missing.join("; ")),
        (true, false) => format!("Only a VM started now has: {}.", extra.join("; ")),
        (false, false) => format!(
            "Only the saved VM has: {}. Only a VM started now has: {}.",
            missing.join("; "),
            extra.join("; ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlays_are_numbered_and_differences_named() {
        let d = tempfile::tempdir().unwrap();
        let disk = d.path().join("disk.qcow2");
        assert_eq!(next_overlay(&disk), d.path().join("disk.1.qcow2"));
        std::fs::write(d.path().join("disk.1.qcow2"), b"").unwrap();
        assert_eq!(next_overlay(&disk), d.path().join("disk.2.qcow2"));

        let saved = vec!["-m 256".to_string(), "-device virtio-net-pci".to_string()];
        let now = vec![
            "-m 256".to_string(),
            "-device virtio-net-pci".to_string(),
            "-device virtio-serial-pci".to_string(),
        ];
        assert_eq!(
            device_difference(&saved, &now),
            "Only a VM started now has: -device virtio-serial-pci."
        );
        assert!(device_difference(&now, &saved).contains("Only the saved VM has"));
    }
}
