//! Stopping, removing and waiting for containers.

use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::signal::Signal;

use super::transport::Reached;
use super::{identity, LinuxKitManager};
use crate::container::{Container, Status};
use crate::error::{Error, Result};
use crate::hypervisor::qmp_socket;
use crate::process::Identity;
use crate::qmp::Qmp;
use crate::transport::Transport;

/// Grace period between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);
/// How long an ACPI power-down may take before the guest agent is asked to
/// shut the guest down (a guest with no ACPI handler ignores the button).
const ACPI_GRACE: Duration = Duration::from_secs(3);
/// Deadline of the agent's part in `stop`.
const AGENT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

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
        // A guest that ignores the power button (no ACPI handler) gets
        // `guest-shutdown` from its agent, when it has one.
        let deadline = Instant::now() + timeout;
        let mut graceful = powered_down && wait_gone(&ident, timeout.min(ACPI_GRACE)).await;
        if !graceful && (self.agent_shutdown(&c).await || powered_down) {
            graceful = wait_gone(&ident, deadline.saturating_duration_since(Instant::now())).await;
        }
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

    /// Waits until the guest answers on its agent or its SSH server (and
    /// pins SSH host keys when SSH answered). Fails early if the VM stops
    /// while waiting.
    pub async fn wait_ready(&self, reference: &str, timeout: Duration) -> Result<Container> {
        self.wait_ready_via(reference, timeout, Transport::Auto)
            .await
            .map(|(c, _)| c)
    }

    /// [`Self::wait_ready`] for one transport (`Auto`: whichever answers
    /// first); returns the container and the transport that answered.
    pub async fn wait_ready_via(
        &self,
        reference: &str,
        timeout: Duration,
        transport: Transport,
    ) -> Result<(Container, Transport)> {
        let c = self.running(reference)?;
        let reached = match self.await_transport(&c, transport, timeout, false).await? {
            Reached::Agent(_) => Transport::Agent,
            Reached::Ssh(_) => Transport::Ssh,
        };
        Ok((c, reached))
    }

    /// Asks the guest agent to power the guest off, when the agent answers.
    /// Returns whether the request was delivered.
    async fn agent_shutdown(&self, c: &Container) -> bool {
        let Some(agent) = self.agent_present(c).await else {
            return false;
        };
        let deadline = Instant::now() + AGENT_SHUTDOWN_TIMEOUT;
        match agent.connect(deadline).await {
            Ok(mut s) => s
                .shutdown("powerdown", AGENT_SHUTDOWN_TIMEOUT)
                .await
                .is_ok(),
            Err(_) => false,
        }
    }
}
