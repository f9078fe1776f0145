//! Stopping, removing and waiting for containers.

use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::Signal;

use super::transport::Reached;
use super::{identity, may_run, reconcile, resolve_in, Found, LinuxKitManager};
use crate::container::{Container, Status};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::hypervisor::qmp_socket;
use crate::id::is_valid_id;
use crate::process::Identity;
use crate::qmp::Qmp;
use crate::state::StateIndex;
use crate::transport::Transport;

/// Grace period between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);
/// How long an ACPI power-down may take before the guest agent is asked to
/// shut the guest down (a guest with no ACPI handler ignores the button).
const ACPI_GRACE: Duration = Duration::from_secs(3);
/// Deadline of the agent's part in `stop`.
const AGENT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

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
    /// Brings down `c`'s hypervisor: ACPI power-down over QMP (and, when
    /// the guest has not gone after [`ACPI_GRACE`], `guest-shutdown`
    /// through its guest agent), up to `grace` for the guest to power off,
    /// then SIGTERM, then SIGKILL. Only ever signals the container's own
    /// hypervisor process.
    pub(super) async fn halt(&self, c: &Container, grace: Duration) -> Halt {
        let ident = identity(c);
        let deadline = Deadline::after(grace);
        let mut asked = false;
        // Only a runtime directory this home derives: a record naming
        // another container's must not power that one down.
        if let Some(rd) = &self.runtime_dir(c) {
            if let Ok(mut q) = Qmp::connect(&qmp_socket(rd)).await {
                asked = q.execute("system_powerdown", None).await.is_ok();
                if asked {
                    // A guest without an ACPI handler ignores the button;
                    // its agent is asked meanwhile, without ending the wait.
                    let fallback = async {
                        tokio::time::sleep(deadline.step(ACPI_GRACE).remaining()).await;
                        self.agent_shutdown(c).await;
                        std::future::pending::<()>().await
                    };
                    let waited = tokio::select! {
                        r = wait_shutdown(&mut q, &ident, deadline) => r,
                        _ = fallback => None,
                    };
                    if let Some(reason) = waited {
                        return Halt::PoweredOff(reason);
                    }
                }
            }
        }
        if !asked && self.agent_shutdown(c).await && wait_gone(&ident, deadline).await {
            return Halt::PoweredOff(Some("guest-shutdown".into()));
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
        // Running, or in a status this version does not know with its
        // hypervisor alive.
        if c.status == Status::Starting || !may_run(&c) {
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
                // The foreground run that owned the VM may have recorded its
                // exit first (it sees the exit code; this process cannot).
                if r.status.is_active() {
                    r.exit_code = None;
                    r.stopped_at = Some(Utc::now());
                }
                r.status = Status::Stopped;
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
    ///
    /// A damaged record (see [`crate::state::DamagedRecord`]) can always be
    /// removed by its key: only the record goes, plus the files this home
    /// derives from the key when the key is a valid ID. The returned record
    /// is then what could be read of it, with status `damaged`.
    pub async fn remove(&self, reference: &str, force: bool) -> Result<Container> {
        let index = self.index_async().await?;
        let key = match resolve_in(&index, reference)? {
            Found::Container(id) => id,
            Found::Damaged(key) => return self.remove_damaged(&index, &key, force).await,
        };
        let mut c = match index.container(&key) {
            Some(Ok(c)) => c,
            // Damage only a full parse sees: still removable.
            Some(Err(_)) => return self.remove_damaged(&index, &key, force).await,
            None => return Err(Error::NotFound(reference.to_string())),
        };
        drop(index);
        if reconcile::is_stale(&c) {
            c = self
                .update_container_async(&key, |r| {
                    self.reconcile(r);
                    Ok(())
                })
                .await?;
        }
        if may_run(&c) && !force {
            return Err(Error::Running(c.id));
        }
        match c.status {
            Status::Starting => {
                // Its starter may still be at work: whatever hypervisor it
                // started goes with the record (looked for only in a
                // runtime directory this home derives).
                let mut c = c.clone();
                c.runtime_dir = self.runtime_dir(&c);
                let _ = tokio::task::spawn_blocking(move || reconcile::kill_hypervisors(&c)).await;
            }
            _ if may_run(&c) => match self.stop(&c.id, super::DEFAULT_STOP_TIMEOUT).await {
                Ok(_) | Err(Error::NotRunning(_)) => {}
                Err(e) => return Err(e),
            },
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
        self.delete_files(&c.id, self.runtime_dir(&c).into_iter().collect())
            .await;
        Ok(removed)
    }

    /// Deletes the files of container `id`: its log, its instance directory
    /// and `runtime_dirs` — all paths this home derives from a valid ID.
    async fn delete_files(&self, id: &str, runtime_dirs: Vec<std::path::PathBuf>) {
        if !is_valid_id(id) {
            return;
        }
        let (log, instance) = (self.home.log_path(id), self.home.instance_dir(id));
        let _ = tokio::task::spawn_blocking(move || {
            let _ = std::fs::remove_file(log);
            let _ = std::fs::remove_dir_all(instance);
            for rd in runtime_dirs {
                let _ = std::fs::remove_dir_all(rd);
            }
        })
        .await;
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
            for signal in [Signal::SIGTERM, Signal::SIGKILL] {
                ident.signal(signal);
                if wait_gone(&ident, Deadline::after(TERM_GRACE)).await {
                    break;
                }
            }
        }
        self.state
            .update_async(|s| {
                s.damaged
                    .remove(key)
                    .map(|_| ())
                    .ok_or_else(|| Error::NotFound(key.to_string()))
            })
            .await?;
        self.delete_files(key, self.home.runtime_dir_candidates(key))
            .await;
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

    /// Waits until the guest answers on its agent or its SSH server (and
    /// pins SSH host keys when SSH answered). Fails early if the VM stops
    /// while waiting. Concurrent waiters (in any process) take turns at the
    /// SSH port, so one probes and learns the key while the others find it
    /// learned. A `timeout` too large to represent waits forever.
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
        let c = self.running(reference).await?;
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
        let deadline = std::time::Instant::now() + AGENT_SHUTDOWN_TIMEOUT;
        match agent.connect_synced(deadline).await {
            Ok(mut s) => s
                .shutdown("powerdown", AGENT_SHUTDOWN_TIMEOUT)
                .await
                .is_ok(),
            Err(_) => false,
        }
    }
}
