//! Choosing between the guest agent and SSH for a call, and waiting until
//! one of them answers.
//!
//! What a boot has shown is remembered in its runtime directory (and
//! forgotten when the container boots again): `agent.ok` once the agent has
//! answered, so later calls skip asking QEMU whether the guest opened the
//! port; `guest.silent` once a call found a booted guest answering neither,
//! so later calls say so after one quick look instead of waiting again.

use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{identity, LinuxKitManager};
use crate::container::Container;
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::hypervisor::qmp_socket;
use crate::qga::{Agent, CHARDEV_ID, PORT_NAME};
use crate::qmp::Qmp;
use crate::ssh::{probe_ssh, SshProbe, SshTarget};
use crate::transport::Transport;

/// Deadline of each guest agent call (the lock, the handshake and the
/// reply); a process the agent runs may take longer.
pub(crate) const AGENT_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a readiness check waits for the agent's first answer.
const AGENT_PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a question to QEMU's monitor may take before it counts as
/// unanswered (another client may hold the monitor).
const QMP_TIMEOUT: Duration = Duration::from_secs(1);
/// A guest that has run this long with neither transport answering is
/// taken to have booted without them.
const BOOTED_AFTER: Duration = Duration::from_secs(60);
/// Once the guest shows it is up (its network refuses SSH, or SSH answers
/// when only the agent was wanted), how long the wanted transport gets to
/// appear before the call gives up.
const SETTLE: Duration = Duration::from_secs(10);

/// Longest one look at the SSH port may stay open waiting for a banner.
const SSH_LOOK: Duration = Duration::from_secs(10);

const AGENT_OK: &str = "agent.ok";
const SILENT: &str = "guest.silent";

/// Forgets what the previous boot of a container showed.
pub(crate) fn forget_boot(runtime_dir: &Path) {
    for f in [AGENT_OK, SILENT] {
        let _ = std::fs::remove_file(runtime_dir.join(f));
    }
}

fn mark(runtime_dir: &Path, name: &str, on: bool) {
    let p = runtime_dir.join(name);
    if on {
        let _ = super::launch::create_private_file(&p);
    } else {
        let _ = std::fs::remove_file(p);
    }
}

/// The transport a call will use.
#[derive(Debug)]
pub(super) enum Reached {
    /// The guest agent answers.
    Agent(Agent),
    /// SSH answers and the host keys are pinned.
    Ssh(SshTarget),
}

/// One pending look at the SSH port.
type SshLook = Pin<Box<dyn std::future::Future<Output = SshProbe> + Send>>;

/// What a wait saw, for the message when nothing answered.
#[derive(Debug, Default)]
struct Seen {
    agent_port_open: bool,
    ssh: Option<SshProbe>,
}

impl LinuxKitManager {
    /// The guest agent channel of `c`, if its hypervisor provides one.
    pub(super) fn agent_of(&self, c: &Container) -> Option<Agent> {
        let qemu = c.hypervisor.as_deref().is_none_or(|h| h == "qemu");
        c.runtime_dir.as_deref().filter(|_| qemu).map(Agent::new)
    }

    /// Whether the guest has opened the agent's port, as QEMU sees it
    /// (`query-chardev` `frontend-open`); `None` when QEMU cannot say.
    async fn agent_port_open(&self, c: &Container) -> Option<bool> {
        let rd = c.runtime_dir.as_deref()?;
        let ask = async {
            let mut q = Qmp::connect(&qmp_socket(rd)).await.ok()?;
            let list = q.execute("query-chardev", None).await.ok()?;
            Some(chardev_open(&list))
        };
        tokio::time::timeout(QMP_TIMEOUT, ask).await.ok().flatten()
    }

    /// Whether to try the agent: it answered earlier in this boot, or QEMU
    /// says the guest has its port open now.
    pub(super) async fn agent_present(&self, c: &Container) -> Option<Agent> {
        let agent = self.agent_of(c)?;
        let rd = c.runtime_dir.as_deref()?;
        if rd.join(AGENT_OK).exists() || self.agent_port_open(c).await == Some(true) {
            return Some(agent);
        }
        None
    }

    /// Records whether the agent answered, so later calls skip or repeat
    /// the check with QEMU.
    pub(super) fn remember_agent(&self, c: &Container, answered: bool) {
        if let Some(rd) = c.runtime_dir.as_deref() {
            // Every exec through the agent comes here: a look is cheaper
            // than creating the file again.
            if rd.join(AGENT_OK).exists() != answered {
                mark(rd, AGENT_OK, answered);
            }
        }
    }

    /// The transports of `c` usable now, for `inspect`. Blocking and quick:
    /// the agent counts when it answered in this boot or QEMU says its port
    /// is open; SSH when its host keys were pinned in this boot or its
    /// banner arrives within 300 ms.
    pub(super) fn transports_now(&self, c: &Container) -> Vec<Transport> {
        let mut v = Vec::new();
        if let (Some(_), Some(rd)) = (self.agent_of(c), c.runtime_dir.as_deref()) {
            if rd.join(AGENT_OK).exists()
                || crate::qmp::query_blocking(&qmp_socket(rd), "query-chardev", QMP_TIMEOUT)
                    .is_ok_and(|list| chardev_open(&list))
            {
                v.push(Transport::Agent);
            }
        }
        if c.exec_ssh_port() != 0
            && (self.ssh_target(c).host_keys_known()
                || crate::ssh::banner_blocking(c.exec_ssh_port(), Duration::from_millis(300)))
        {
            v.push(Transport::Ssh);
        }
        v
    }

    /// The transport for a call that needs the guest now. When neither is
    /// known to answer yet, waits (saying so through the wait notices) up
    /// to `timeout`, and gives up early once the guest has evidently booted
    /// without the transport.
    pub(super) async fn reach(
        &self,
        c: &Container,
        want: Transport,
        timeout: Duration,
    ) -> Result<Reached> {
        if want != Transport::Ssh {
            if let Some(a) = self.agent_present(c).await {
                return Ok(Reached::Agent(a));
            }
        }
        if want != Transport::Agent && c.exec_ssh_port() != 0 {
            let t = self.ssh_target(c);
            if t.host_keys_known() {
                return Ok(Reached::Ssh(t));
            }
        }
        if want == Transport::Ssh && c.exec_ssh_port() == 0 {
            return Err(Error::Unreachable {
                id: c.id.clone(),
                reason: "SSH was asked for, but the container has no SSH port".into(),
            });
        }
        self.notice(&format!(
            "waiting up to {}s for {} of container {} (started {}s ago)",
            timeout.as_secs(),
            wanted(want),
            c.id,
            uptime(c).as_secs()
        ));
        self.await_transport(c, want, timeout, true).await
    }

    /// Waits until the wanted transport answers. `give_up_early` ends the
    /// wait with [`Error::Unreachable`] once the guest has booted without
    /// it (see [`BOOTED_AFTER`] and [`SETTLE`]); otherwise only `timeout`
    /// ends it (a timeout too large to represent waits forever).
    /// Concurrent waiters, in any process, take turns at the SSH port (the
    /// host-key lock), so one probes and learns the key while the others
    /// watch the agent and then find the key learned.
    pub(super) async fn await_transport(
        &self,
        c: &Container,
        want: Transport,
        timeout: Duration,
        give_up_early: bool,
    ) -> Result<Reached> {
        let ident = identity(c);
        let deadline = Deadline::after(timeout);
        let timed_out = || Error::Timeout {
            what: format!("{} of container {}", wanted(want), c.id),
            secs: timeout.as_secs_f64(),
        };
        let rd = c.runtime_dir.clone();
        let agent = self.agent_of(c).filter(|_| want != Transport::Ssh);
        let seen_agent_open = AtomicBool::new(false);
        let target = self.ssh_target(c);
        let reached_agent = |a: Agent| {
            self.remember_agent(c, true);
            if let Some(d) = rd.as_deref() {
                mark(d, SILENT, false);
            }
            Ok(Reached::Agent(a))
        };
        // One watch of the agent for the whole wait: a watch restarted every
        // round would be dropped mid-handshake whenever the SSH look of that
        // round ended first (a refused port answers in a few milliseconds,
        // faster than a `guest-sync` under TCG), and could so never finish.
        let watch = self.watch_agent(c, agent.as_ref(), &seen_agent_open);
        tokio::pin!(watch);
        let _turn = if c.exec_ssh_port() != 0 {
            tokio::select! {
                t = target.lock_host_keys() => Some(t?),
                a = &mut watch => return reached_agent(a),
                _ = deadline.sleep() => return Err(timed_out()),
            }
        } else {
            None
        };
        let silent_before = give_up_early && rd.as_deref().is_some_and(|d| d.join(SILENT).exists());
        let mut seen = Seen::default();
        let mut ssh_look: Option<SshLook> = None;
        let mut up_since: Option<Instant> = None;
        loop {
            let round = Instant::now();
            if !ident.is_current() {
                return Err(Error::NotRunning(c.id.clone()));
            }
            if want != Transport::Agent && c.exec_ssh_port() != 0 && target.host_keys_known() {
                return Ok(Reached::Ssh(target));
            }
            // One SSH look stays open across rounds until it has an answer
            // (a banner, a refusal) or SSH_LOOK passes: abandoning slow
            // connections every round would pile up half-open sessions in
            // a guest still making its host keys (Dropbear then refuses
            // more). The agent is watched meanwhile.
            let tick = deadline.step(Duration::from_secs(1));
            if ssh_look.is_none() && c.exec_ssh_port() != 0 {
                let limit = deadline.step(SSH_LOOK).remaining();
                ssh_look = Some(Box::pin(probe_ssh(c.exec_ssh_port(), limit)));
            }
            let look_ssh = async {
                match ssh_look.as_mut() {
                    Some(f) => f.await,
                    None => std::future::pending::<SshProbe>().await,
                }
            };
            let probe = tokio::select! {
                a = &mut watch => return reached_agent(a),
                p = look_ssh => Some(p),
                _ = tick.sleep() => None,
            };
            seen.agent_port_open = seen_agent_open.load(Ordering::Relaxed);
            if let Some(probe) = probe {
                ssh_look = None;
                seen.ssh = Some(probe);
                match probe {
                    SshProbe::Banner if want != Transport::Agent => {
                        if !target.host_keys_known() {
                            target.learn_host_key().await?;
                        }
                        if let Some(d) = rd.as_deref() {
                            mark(d, SILENT, false);
                        }
                        return Ok(Reached::Ssh(target));
                    }
                    SshProbe::Banner | SshProbe::Refused => {
                        up_since.get_or_insert(round);
                    }
                    SshProbe::Silent => up_since = None,
                }
            }
            if give_up_early
                && (silent_before
                    || uptime(c) >= BOOTED_AFTER
                    || up_since.is_some_and(|t| t.elapsed() >= SETTLE))
            {
                if let Some(d) = rd.as_deref() {
                    mark(d, SILENT, true);
                }
                return Err(Error::Unreachable {
                    id: c.id.clone(),
                    reason: format!(
                        "after {}s of uptime, {}",
                        uptime(c).as_secs(),
                        unreachable_reason(c, want, &seen)
                    ),
                });
            }
            if deadline.expired() {
                return Err(timed_out());
            }
            // A round that found nothing quickly (a refused port, a closed
            // agent port) must not spin.
            let pause = Duration::from_millis(250).saturating_sub(round.elapsed());
            let pause = deadline.step(pause);
            tokio::select! {
                a = &mut watch => return reached_agent(a),
                _ = pause.sleep() => {}
            }
        }
    }

    /// Resolves once the agent answers (never without one), noting in
    /// `seen_open` whether the guest opened its port meanwhile.
    async fn watch_agent(
        &self,
        c: &Container,
        agent: Option<&Agent>,
        seen_open: &AtomicBool,
    ) -> Agent {
        let Some(agent) = agent else {
            return std::future::pending().await;
        };
        loop {
            let open = self.agent_port_open(c).await == Some(true);
            seen_open.fetch_or(open, Ordering::Relaxed);
            if open && self.ping(agent).await {
                return agent.clone();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Whether the agent answers a `guest-ping`.
    async fn ping(&self, agent: &Agent) -> bool {
        let deadline = Instant::now() + AGENT_PING_TIMEOUT;
        match agent.connect(deadline).await {
            Ok(mut s) => s.ping(AGENT_PING_TIMEOUT).await.is_ok(),
            Err(_) => false,
        }
    }
}

/// `frontend-open` of the agent's chardev in a `query-chardev` reply: true
/// while a program in the guest (qemu-ga) has the port open.
fn chardev_open(list: &Value) -> bool {
    list.as_array().is_some_and(|a| {
        a.iter().any(|c| {
            c.get("label").and_then(Value::as_str) == Some(CHARDEV_ID)
                && c.get("frontend-open").and_then(Value::as_bool) == Some(true)
        })
    })
}

fn uptime(c: &Container) -> Duration {
    (chrono::Utc::now() - c.started_at)
        .to_std()
        .unwrap_or_default()
}

fn wanted(want: Transport) -> &'static str {
    match want {
        Transport::Auto => "the guest agent or SSH",
        Transport::Agent => "the guest agent",
        Transport::Ssh => "SSH",
    }
}

fn unreachable_reason(c: &Container, want: Transport, seen: &Seen) -> String {
    let agent = if seen.agent_port_open {
        format!("qemu-ga opened {PORT_NAME} but does not answer")
    } else {
        format!("no guest agent (the guest has not opened the port {PORT_NAME}; the image needs qemu-ga)")
    };
    let ssh = match (c.exec_ssh_port(), seen.ssh) {
        (0, _) => "no SSH (the container has no SSH port)".to_string(),
        (p, Some(SshProbe::Refused)) => {
            format!(
                "no SSH (the guest refuses connections to port 22, forwarded from 127.0.0.1:{p})"
            )
        }
        (p, Some(SshProbe::Banner)) => format!("SSH answers on 127.0.0.1:{p}"),
        (p, _) => format!("no SSH (nothing answers on 127.0.0.1:{p})"),
    };
    match want {
        Transport::Auto => format!("{agent} and {ssh}"),
        Transport::Agent => format!("{agent} ({ssh})"),
        Transport::Ssh => ssh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn agent_port_state_comes_from_query_chardev() {
        let list = json!([
            { "label": "console0", "filename": "unix:/x", "frontend-open": true },
            { "label": "qga0", "filename": "pipe", "frontend-open": false },
        ]);
        assert!(!chardev_open(&list));
        let list = json!([{ "label": "qga0", "frontend-open": true }]);
        assert!(chardev_open(&list));
        assert!(!chardev_open(&json!({})));
    }
}
