//! Stopping, removing and waiting for containers.

use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::signal::Signal;

use super::{identity, may_run, reconcile, resolve_in, Found, LinuxKitManager};
use crate::container::{Container, Status};
use crate::error::{Error, Result};
use crate::hypervisor::qmp_socket;
use crate::id::is_valid_id;
use crate::process::Identity;
use crate::qmp::Qmp;
use crate::state::StateIndex;

/// Grace period between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

async fn wait_gone(ident: &Identity<'_>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while ident.is_current() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

impl LinuxKitManager {
    /// Stops a running container: ACPI power-down over QMP so the guest can
    /// flush its disks, then SIGTERM once `timeout` has passed, then SIGKILL.
    /// Only ever signals the container's own hypervisor process.
    ///
    /// Cancellation: dropping the future stops waiting; the container keeps
    /// whatever state it reached, and the next `list` reconciles it.
    pub async fn stop(&self, reference: &str, timeout: Duration) -> Result<Container> {
        let c = self.get(reference)?;
        if !may_run(&c) {
            return Err(Error::NotRunning(c.id));
        }
        let ident = identity(&c);
        let mut powered_down = false;
        if let Some(rd) = &self.runtime_dir(&c) {
            if let Ok(mut q) = Qmp::connect(&qmp_socket(rd)).await {
                powered_down = q.execute("system_powerdown", None).await.is_ok();
            }
        }
        let graceful = powered_down && wait_gone(&ident, timeout).await;
        if !graceful {
            ident.signal(Signal::SIGTERM);
            if !wait_gone(&ident, TERM_GRACE).await {
                ident.signal(Signal::SIGKILL);
                wait_gone(&ident, TERM_GRACE).await;
            }
        }
        self.ssh_target(&c).close_master().await;
        self.update_container(&c.id, |r| {
            r.status = Status::Stopped;
            r.stopped_at = Some(Utc::now());
            Ok(())
        })
    }

    /// Deletes a container's record, log, disk overlay and runtime
    /// directory. A running container is refused unless `force`, which
    /// stops it first.
    ///
    /// A damaged record (see [`crate::state::DamagedRecord`]) can always be
    /// removed by its key: only the record goes, plus the files this home
    /// derives from the key when the key is a valid ID. The returned record
    /// is then what could be read of it, with status `damaged`.
    pub async fn remove(&self, reference: &str, force: bool) -> Result<Container> {
        let index = self.state.index()?;
        let key = match resolve_in(&index, reference)? {
            Found::Container(id) => id,
            Found::Damaged(key) => return self.remove_damaged(&index, &key, force).await,
        };
        let c = match index.container(&key) {
            Some(Ok(c)) => c,
            // Damage only a full parse sees: still removable.
            Some(Err(_)) => return self.remove_damaged(&index, &key, force).await,
            None => return Err(Error::NotFound(reference.to_string())),
        };
        drop(index);
        if may_run(&c) && identity(&c).is_current() {
            if !force {
                return Err(Error::Running(c.id));
            }
            match self.stop(&c.id, super::DEFAULT_STOP_TIMEOUT).await {
                Ok(_) | Err(Error::NotRunning(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut removed = self.state.update(|s| {
            s.containers
                .remove(&c.id)
                .ok_or_else(|| Error::NotFound(c.id.clone()))
        })?;
        if removed.status == Status::Running && !identity(&removed).is_current() {
            reconcile(&mut removed);
        }
        self.delete_files(
            &removed.id,
            self.runtime_dir(&removed).into_iter().collect(),
        );
        Ok(removed)
    }

    /// Deletes the files of container `id`: its log, its instance directory
    /// and `runtime_dirs` — all paths this home derives from a valid ID.
    fn delete_files(&self, id: &str, runtime_dirs: Vec<std::path::PathBuf>) {
        if !is_valid_id(id) {
            return;
        }
        let _ = std::fs::remove_file(self.home.log_path(id));
        let _ = std::fs::remove_dir_all(self.home.instance_dir(id));
        for rd in runtime_dirs {
            let _ = std::fs::remove_dir_all(rd);
        }
    }

    async fn remove_damaged(
        &self,
        index: &StateIndex,
        key: &str,
        force: bool,
    ) -> Result<Container> {
        let raw = index
            .raw(key)
            .ok_or_else(|| Error::NotFound(key.to_string()))?;
        // A record whose key is an ID may still have a live hypervisor:
        // find it by the recorded PID, and recognise it by its start time
        // or by the `-name vmcontainer-<id>` QEMU was given.
        let marker = format!("vmcontainer-{key}");
        let ident = Identity {
            pid: raw
                .get("pid")
                .and_then(|p| p.as_i64())
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(0),
            start_time: raw.get("pid_start_time").and_then(|t| t.as_u64()),
            marker: &marker,
        };
        if is_valid_id(key) && ident.is_current() {
            if !force {
                return Err(Error::Running(key.to_string()));
            }
            ident.signal(Signal::SIGTERM);
            if !wait_gone(&ident, TERM_GRACE).await {
                ident.signal(Signal::SIGKILL);
                wait_gone(&ident, TERM_GRACE).await;
            }
        }
        self.state.update(|s| {
            s.damaged
                .remove(key)
                .map(|_| ())
                .ok_or_else(|| Error::NotFound(key.to_string()))
        })?;
        self.delete_files(key, self.home.runtime_dir_candidates(key));
        let mut shown: Container = serde_json::from_value(raw.clone()).unwrap_or_else(|_| {
            serde_json::from_value(serde_json::json!({
                "id": key, "image": "", "status": "damaged",
                "started_at": "1970-01-01T00:00:00Z",
            }))
            .expect("a minimal record parses")
        });
        shown.id = key.to_string();
        shown.status = Status::Unknown("damaged".into());
        Ok(shown)
    }

    /// Waits until the guest's SSH server answers, then pins its host key.
    /// Fails early if the VM stops while waiting.
    pub async fn wait_ready(&self, reference: &str, timeout: Duration) -> Result<Container> {
        let c = self.get(reference)?;
        if !may_run(&c) {
            return Err(Error::NotRunning(c.id));
        }
        let ident = identity(&c);
        let deadline = Instant::now() + timeout;
        loop {
            if !ident.is_current() {
                return Err(Error::NotRunning(c.id));
            }
            let step =
                (deadline.saturating_duration_since(Instant::now())).min(Duration::from_secs(2));
            if crate::ssh::wait_for_banner(c.ssh_port, Instant::now() + step).await {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("SSH on 127.0.0.1:{} of container {}", c.ssh_port, c.id),
                    secs: timeout.as_secs_f64(),
                });
            }
        }
        let target = self.ssh_target(&c);
        if !target.host_keys_known() {
            target.learn_host_key().await?;
        }
        Ok(c)
    }
}
