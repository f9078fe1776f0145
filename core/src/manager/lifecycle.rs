//! Stopping, removing and waiting for containers.

use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::signal::Signal;

use super::{identity, LinuxKitManager};
use crate::container::{Container, Status};
use crate::error::{Error, Result};
use crate::hypervisor::qmp_socket;
use crate::process::Identity;
use crate::qmp::Qmp;

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
        if c.status != Status::Running {
            return Err(Error::NotRunning(c.id));
        }
        let ident = identity(&c);
        let mut powered_down = false;
        if let Some(rd) = &c.runtime_dir {
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
    pub async fn remove(&self, reference: &str, force: bool) -> Result<Container> {
        let c = self.get(reference)?;
        if c.status == Status::Running {
            if !force {
                return Err(Error::Running(c.id));
            }
            match self.stop(&c.id, super::DEFAULT_STOP_TIMEOUT).await {
                Ok(_) | Err(Error::NotRunning(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let removed = self.state.update(|s| {
            s.containers
                .remove(&c.id)
                .ok_or_else(|| Error::NotFound(c.id.clone()))
        })?;
        let _ = std::fs::remove_file(self.home.log_path(&c.id));
        let _ = std::fs::remove_dir_all(self.home.instance_dir(&c.id));
        if let Some(rd) = &c.runtime_dir {
            let _ = std::fs::remove_dir_all(rd);
        }
        Ok(removed)
    }

    /// Waits until the guest's SSH server answers, then pins its host key.
    /// Fails early if the VM stops while waiting.
    pub async fn wait_ready(&self, reference: &str, timeout: Duration) -> Result<Container> {
        let c = self.get(reference)?;
        if c.status != Status::Running {
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
