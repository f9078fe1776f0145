//! Stopping, removing and waiting for containers.

use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::Signal;

use super::{identity, reconcile, LinuxKitManager};
use crate::container::{Container, Status};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::hypervisor::qmp_socket;
use crate::process::Identity;
use crate::qmp::Qmp;

/// Grace period between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// While waiting for QEMU's shutdown event, how often the process itself
/// is checked too (a QMP connection that stays open must not hang `stop`).
const FALLBACK_POLL: Duration = Duration::from_millis(250);

/// Polls until the recorded process is gone; short steps, as this only
/// runs once the process is expected to exit within milliseconds.
async fn wait_gone(ident: &Identity<'_>, deadline: Deadline) -> bool {
    while ident.is_current() {
        if deadline.expired() {
            return false;
        }
        tokio::time::sleep(deadline.step(Duration::from_millis(10)).remaining()).await;
    }
    true
}

/// Waits for QEMU to go after a power-down request: its `SHUTDOWN` event
/// (which says why), then the QMP socket closing as the process exits.
/// Returns `Some(reason)` once it is gone, `None` at the deadline.
async fn wait_shutdown(
    q: &mut Qmp,
    ident: &Identity<'_>,
    deadline: Deadline,
) -> Option<Option<String>> {
    // One future for the whole wait: a line read half-way is never dropped.
    let events = async {
        let mut reason = None;
        while let Ok(Some(e)) = q.next_event().await {
            if e.get("event").and_then(|v| v.as_str()) == Some("SHUTDOWN") {
                reason = e["data"]["reason"].as_str().map(String::from);
            }
        }
        reason
    };
    tokio::pin!(events);
    loop {
        tokio::select! {
            reason = &mut events => {
                // The socket closed: QEMU is in its last milliseconds.
                return wait_gone(ident, deadline.step(TERM_GRACE)).await.then_some(reason);
            }
            _ = tokio::time::sleep(FALLBACK_POLL) => {
                if !ident.is_current() {
                    return Some(None);
                }
            }
            _ = deadline.sleep() => return None,
        }
    }
}

/// How a hypervisor was brought down.
#[derive(Debug)]
pub(super) enum Halt {
    /// The guest powered off; QEMU's shutdown reason when it gave one.
    PoweredOff(Option<String>),
    /// The guest did not power off in time (or could not be asked:
    /// `asked` is false) and the hypervisor was ended with this signal.
    Signalled { signal: Signal, asked: bool },
    /// The process survived SIGKILL (stuck in the kernel).
    Stuck,
}

impl Halt {
    /// The signal that ended the hypervisor, if one did.
    pub(super) fn signal(&self) -> Option<i32> {
        match self {
            Halt::Signalled { signal, .. } => Some(*signal as i32),
            _ => None,
        }
    }

    /// In words, for `exit_reason`.
    pub(super) fn describe(&self, grace: Duration) -> String {
        match self {
            Halt::PoweredOff(Some(r)) => format!("the guest powered off ({r})"),
            Halt::PoweredOff(None) => "the guest powered off".into(),
            Halt::Signalled { signal, asked: true } => format!(
                "the guest did not power off within {:.1}s; the hypervisor was ended with {}",
                grace.as_secs_f64(),
                signal.as_str()
            ),
            Halt::Signalled {
                signal,
                asked: false,
            } => format!(
                "the guest could not be asked to power off (no QMP); the hypervisor was ended with {}",
                signal.as_str()
            ),
            Halt::Stuck => "the hypervisor survived SIGKILL".into(),
        }
    }
}

impl LinuxKitManager {
    /// Brings down `c`'s hypervisor: ACPI power-down over QMP, up to
    /// `grace` for the guest to power off, then SIGTERM, then SIGKILL. Only
    /// ever signals the container's own hypervisor process.
    pub(super) async fn halt(&self, c: &Container, grace: Duration) -> Halt {
        let ident = identity(c);
        let deadline = Deadline::after(grace);
        let mut asked = false;
        if let Some(rd) = &c.runtime_dir {
            if let Ok(mut q) = Qmp::connect(&qmp_socket(rd)).await {
                asked = q.execute("system_powerdown", None).await.is_ok();
                if asked {
                    if let Some(reason) = wait_shutdown(&mut q, &ident, deadline).await {
                        return Halt::PoweredOff(reason);
                    }
                }
            }
        }
        if !ident.is_current() {
            return Halt::PoweredOff(None);
        }
        for signal in [Signal::SIGTERM, Signal::SIGKILL] {
            ident.signal(signal);
            if wait_gone(&ident, Deadline::after(TERM_GRACE)).await {
                return Halt::Signalled { signal, asked };
            }
        }
        Halt::Stuck
    }

    /// Stops a running container: ACPI power-down over QMP so the guest can
    /// flush its disks, then SIGTERM once `timeout` has passed, then SIGKILL.
    /// Only ever signals the container's own hypervisor process. The record
    /// says how it went (`exit_reason`, `exit_signal`). A `timeout` too
    /// large to represent waits forever.
    ///
    /// Cancellation: dropping the future stops waiting; the container keeps
    /// whatever state it reached, and the next `list` reconciles it.
    pub async fn stop(&self, reference: &str, timeout: Duration) -> Result<Container> {
        let c = self.get_async(reference).await?;
        if c.status != Status::Running {
            return Err(Error::NotRunning(c.id));
        }
        let halt = self.halt(&c, timeout).await;
        self.ssh_target(&c).close_master().await;
        if let Halt::Stuck = halt {
            return Err(Error::Timeout {
                what: format!("hypervisor pid {} of container {} to exit", c.pid, c.id),
                secs: (TERM_GRACE * 2).as_secs_f64(),
            });
        }
        let reason = format!("stopped: {}", halt.describe(timeout));
        self.update_container_async(&c.id, |r| {
            // Only the boot we stopped: a `start` may have begun another.
            if r.pid == c.pid && r.pid_start_time == c.pid_start_time {
                r.status = Status::Stopped;
                r.stopped_at = Some(Utc::now());
                r.exit_code = None;
                r.exit_signal = halt.signal();
                r.exit_reason = Some(reason);
                r.owner = None;
            }
            Ok(())
        })
        .await
    }

    /// Deletes a container's record, log, disk overlay and runtime
    /// directory. A running (or starting) container is refused unless
    /// `force`, which stops it first.
    pub async fn remove(&self, reference: &str, force: bool) -> Result<Container> {
        let c = self.get_async(reference).await?;
        if c.status.is_active() && !force {
            return Err(Error::Running(c.id));
        }
        match c.status {
            Status::Running => match self.stop(&c.id, super::DEFAULT_STOP_TIMEOUT).await {
                Ok(_) | Err(Error::NotRunning(_)) => {}
                Err(e) => return Err(e),
            },
            Status::Starting => {
                // Its starter may still be at work: whatever hypervisor it
                // started goes with the record.
                let c = c.clone();
                let _ = tokio::task::spawn_blocking(move || reconcile::kill_hypervisors(&c)).await;
            }
            _ => {}
        }
        let removed = self
            .state
            .update_async(|s| {
                s.containers
                    .remove(&c.id)
                    .ok_or_else(|| Error::NotFound(c.id.clone()))
            })
            .await?;
        let (log, instance, rd) = (
            self.home.log_path(&c.id),
            self.home.instance_dir(&c.id),
            c.runtime_dir.clone(),
        );
        let _ = tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_file(log);
            let _ = std::fs::remove_dir_all(instance);
            if let Some(rd) = rd {
                let _ = std::fs::remove_dir_all(rd);
            }
        })
        .await;
        Ok(removed)
    }

    /// Waits until the guest's SSH server answers, then pins its host key.
    /// Fails early if the VM stops while waiting. Concurrent waiters (in
    /// any process) take turns, so one probes and learns the key while the
    /// others find it learned. A `timeout` too large to represent waits
    /// forever.
    pub async fn wait_ready(&self, reference: &str, timeout: Duration) -> Result<Container> {
        let c = self.get_async(reference).await?;
        if c.status != Status::Running {
            return Err(Error::NotRunning(c.id));
        }
        let ident = identity(&c);
        let deadline = Deadline::after(timeout);
        let timed_out = || Error::Timeout {
            what: format!("SSH on 127.0.0.1:{} of container {}", c.ssh_port, c.id),
            secs: timeout.as_secs_f64(),
        };
        let target = self.ssh_target(&c);
        let _turn = tokio::time::timeout(deadline.remaining(), target.lock_host_keys())
            .await
            .map_err(|_| timed_out())??;
        loop {
            if !ident.is_current() {
                return Err(Error::NotRunning(c.id));
            }
            let step = deadline.step(Duration::from_secs(2));
            if crate::ssh::wait_for_banner(c.ssh_port, step).await {
                break;
            }
            if deadline.expired() {
                return Err(timed_out());
            }
        }
        if !target.host_keys_known() {
            target.learn_host_key().await?;
        }
        Ok(c)
    }
}
