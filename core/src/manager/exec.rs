//! Running commands in a container: over the guest agent when it answers,
//! else over SSH.

use std::time::Duration;

use super::transport::{Reached, AGENT_CALL_TIMEOUT};
use super::LinuxKitManager;
use crate::container::{Container, Status};
use crate::error::{Error, Result};
use crate::qga::{Agent, ExecRequest, QgaError};
use crate::session::{CaughtSignals, SessionIo};
use crate::spawn::{Process, SpawnOptions};
use crate::ssh::{ExecOutput, SshTarget};
use crate::transport::Transport;

/// How long `exec` waits for a just-started guest's agent or SSH server.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Largest standard input the agent carries (it travels base64-encoded in
/// one message); `Transport::Auto` sends larger input over SSH.
const AGENT_MAX_INPUT: usize = 32 << 20;

/// Options of a buffered [`LinuxKitManager::exec_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// Bytes for the command's standard input, closed after them. `None`
    /// gives it an empty input.
    pub input: Option<Vec<u8>>,
    /// The guest agent, SSH, or (default) the agent when it answers.
    pub transport: Transport,
}

impl LinuxKitManager {
    /// The SSH endpoint of `c`: its recorded port and key, host keys pinned
    /// in its own directory, a master socket in its runtime directory. A
    /// record go-container wrote has neither port nor key: port 2222 and
    /// the user's SSH defaults, as go-container's `exec` used.
    pub(super) fn ssh_target(&self, c: &Container) -> SshTarget {
        let instance = self.home.instance_dir(&c.id);
        let rd = self.runtime_dir(c).unwrap_or_else(|| instance.clone());
        SshTarget {
            port: c.exec_ssh_port(),
            key: c.ssh_key.as_ref().map(Into::into),
            user_defaults: c.uses_user_ssh_defaults(),
            known_hosts: instance.join("known_hosts"),
            alias: format!("vmcontainer-{}", c.id),
            control_path: rd.join("ssh.sock"),
            lock_path: rd.join("ssh.lock"),
        }
    }

    /// The record of a running container (read off the async workers).
    pub(super) async fn running(&self, reference: &str) -> Result<Container> {
        let c = self.get_async(reference).await?;
        if c.status != Status::Running {
            return Err(Error::NotRunning(c.id));
        }
        Ok(c)
    }

    /// SSH, ready: the guest answered and its host keys are pinned (the
    /// shared master connection is started by the first command).
    pub(super) async fn ssh_ready(&self, c: &Container) -> Result<SshTarget> {
        match self.reach(c, Transport::Ssh, DEFAULT_READY_TIMEOUT).await? {
            Reached::Ssh(t) => Ok(t),
            Reached::Agent(_) => unreachable!("only SSH was asked for"),
        }
    }

    /// Runs `cmd` (an argv, each element arriving intact) in the guest as
    /// root and returns its exit code, stdout and stderr: over the guest
    /// agent when it answers, else over SSH (one reused connection).
    pub async fn exec(&self, reference: &str, cmd: &[String]) -> Result<ExecOutput> {
        self.exec_with(reference, cmd, &ExecOptions::default())
            .await
    }

    /// Runs `cmd` with `input` on its standard input and returns its exit
    /// code and output. Secrets go this way, never on a command line.
    pub async fn exec_with_input(
        &self,
        reference: &str,
        cmd: &[String],
        input: &[u8],
    ) -> Result<ExecOutput> {
        let opts = ExecOptions {
            input: Some(input.to_vec()),
            ..Default::default()
        };
        self.exec_with(reference, cmd, &opts).await
    }

    /// [`Self::exec`] with options: standard input bytes and the transport.
    /// A command killed by a signal reports exit code 128 + the signal, as
    /// a shell does; one the agent cannot start (not found, not executable)
    /// reports 127 or 126 with the reason on stderr. With
    /// [`Transport::Auto`], a guest agent that does not answer or does not
    /// allow `guest-exec` means SSH is used instead; nothing runs twice.
    pub async fn exec_with(
        &self,
        reference: &str,
        cmd: &[String],
        opts: &ExecOptions,
    ) -> Result<ExecOutput> {
        if cmd.is_empty() {
            return Err(Error::invalid("command", "", "must not be empty"));
        }
        let c = self.running(reference).await?;
        if let Some(out) = self.exec_via_agent(&c, cmd, opts, false).await? {
            return Ok(out);
        }
        let p = self.spawn_in(&c, cmd, &SpawnOptions::default()).await?;
        collect(p, opts.input.as_deref()).await
    }

    /// Runs `cmd` through the agent when `opts` allow it and the agent
    /// answers; `None` means SSH should run it (nothing ran yet). With
    /// `forward_signals`, signals this process gets meanwhile are passed on
    /// (see [`SessionIo::forward_signals`]).
    async fn exec_via_agent(
        &self,
        c: &Container,
        cmd: &[String],
        opts: &ExecOptions,
        forward_signals: bool,
    ) -> Result<Option<ExecOutput>> {
        let input = opts.input.as_deref();
        let want = match (opts.transport, input.map_or(0, <[u8]>::len)) {
            (Transport::Ssh, _) => return Ok(None),
            (Transport::Agent, n) if n > AGENT_MAX_INPUT => {
                return Err(Error::invalid(
                    "standard input",
                    format!("{n} bytes"),
                    "the guest agent carries at most 32 MiB; use the SSH transport",
                ))
            }
            (Transport::Auto, n) if n > AGENT_MAX_INPUT => return Ok(None),
            (t, _) => t,
        };
        let Reached::Agent(agent) = self.reach(c, want, DEFAULT_READY_TIMEOUT).await? else {
            return Ok(None);
        };
        match self
            .agent_exec(c, &agent, cmd, input, forward_signals)
            .await?
        {
            AgentRun::Done(out) => Ok(Some(out)),
            AgentRun::NotStarted(e) if want == Transport::Auto && falls_back(&e) => Ok(None),
            AgentRun::NotStarted(e) => Err(e.into()),
        }
    }

    /// Runs `cmd` through the agent to its end, passing on the signals
    /// this process gets when `forward_signals` (the agent has no call to
    /// signal a process, so a `kill` of its PID runs beside it).
    async fn agent_exec(
        &self,
        c: &Container,
        agent: &Agent,
        cmd: &[String],
        input: Option<&[u8]>,
        forward_signals: bool,
    ) -> Result<AgentRun> {
        let mut caught = CaughtSignals::catch(forward_signals);
        let req = ExecRequest { argv: cmd, input };
        let (pid, session) = match agent.spawn(req, AGENT_CALL_TIMEOUT).await {
            Ok(started) => started,
            Err(QgaError::Command { desc, .. })
                if desc.contains("Failed to execute child process") =>
            {
                // As a shell reports it: 127 not found, 126 not runnable.
                let code = if desc.contains("No such file") {
                    127
                } else {
                    126
                };
                self.remember_agent(c, true);
                return Ok(AgentRun::Done(ExecOutput {
                    exit_code: code,
                    stdout: Vec::new(),
                    stderr: format!("vmcontainer: {}: {desc}\n", cmd[0]).into_bytes(),
                }));
            }
            Err(e) => {
                if e.is_no_answer() {
                    self.remember_agent(c, false);
                }
                return Ok(AgentRun::NotStarted(e));
            }
        };
        self.remember_agent(c, true);
        let wait = agent.wait(pid, Some(session), AGENT_CALL_TIMEOUT);
        tokio::pin!(wait);
        let st = loop {
            tokio::select! {
                st = &mut wait => break st?,
                sig = caught.next() => {
                    // On a task of its own: the wait above lets it have
                    // the agent between two of its looks.
                    let agent = agent.clone();
                    tokio::spawn(async move {
                        let kill = ["kill".to_string(), format!("-{sig}"), pid.to_string()];
                        let req = ExecRequest { argv: &kill, input: None };
                        let _ = agent.run(req, AGENT_CALL_TIMEOUT).await;
                    });
                }
            }
        };
        if st.stdout_truncated || st.stderr_truncated {
            return Err(Error::invalid(
                "command output",
                cmd.join(" "),
                format!(
                    "the command ran (exit code {}), but the guest agent keeps at most 16 MiB of its output; run it with the SSH transport",
                    st.exit_code.unwrap_or(-1)
                ),
            ));
        }
        Ok(AgentRun::Done(ExecOutput {
            exit_code: st.exit_code.or(st.signal.map(|s| 128 + s)).unwrap_or(255),
            stdout: st.stdout,
            stderr: st.stderr,
        }))
    }

    /// Runs `cmd` attached to this process's terminal (`tty` asks for a
    /// pseudo-terminal) and returns its exit code. Always SSH: a
    /// [`Process`] attached to this process's streams
    /// ([`Process::attach`]).
    pub async fn exec_interactive(
        &self,
        reference: &str,
        cmd: &[String],
        tty: bool,
    ) -> Result<i32> {
        self.exec_interactive_agent(reference, cmd, tty, false, &SessionIo::inherit())
            .await
    }

    /// Runs `cmd` with its output on `io`'s stdout and stderr and returns
    /// its exit code (the CLI's `exec`). Over the guest agent the output is
    /// written when the command ends and only `opts.input` reaches its
    /// stdin; over SSH it is a [`Process`] attached to `io`
    /// ([`Process::attach`]): output streamed as produced and, without
    /// `opts.input`, `io`'s stdin forwarded.
    pub async fn exec_attached(
        &self,
        reference: &str,
        cmd: &[String],
        opts: &ExecOptions,
        io: &SessionIo,
    ) -> Result<i32> {
        use std::io::Write;
        if cmd.is_empty() {
            return Err(Error::invalid("command", "", "must not be empty"));
        }
        let c = self.running(reference).await?;
        let out = match self
            .exec_via_agent(&c, cmd, opts, io.forward_signals)
            .await?
        {
            Some(out) => out,
            None => {
                let mut p = self.spawn_in(&c, cmd, &SpawnOptions::default()).await?;
                match opts.input.as_deref() {
                    Some(i) => collect(p, Some(i)).await?,
                    None => return Ok(p.attach(io).await?.shell_code()),
                }
            }
        };
        let (_, mut stdout, mut stderr) = io
            .files()
            .map_err(|e| Error::io("duplicate a session descriptor", "stdout/stderr", e))?;
        let _ = stdout.write_all(&out.stdout);
        let _ = stderr.write_all(&out.stderr);
        Ok(out.exit_code)
    }

    /// [`Self::exec_interactive`] with the session's streams in `io` and
    /// the caller's SSH agent forwarded when `forward_agent`; an empty
    /// `cmd` opens the user's login shell.
    pub async fn exec_interactive_agent(
        &self,
        reference: &str,
        cmd: &[String],
        tty: bool,
        forward_agent: bool,
        io: &SessionIo,
    ) -> Result<i32> {
        let login;
        let cmd = if cmd.is_empty() {
            login = ["sh", "-c", r#"exec "${SHELL:-/bin/sh}" -l"#].map(String::from);
            &login[..]
        } else {
            cmd
        };
        let opts = SpawnOptions {
            tty,
            pty_size: tty.then(|| io.terminal_size()).flatten(),
            forward_agent,
            ..Default::default()
        };
        let mut p = self.spawn(reference, cmd, &opts).await?;
        Ok(p.attach(io).await?.shell_code())
    }
}

/// The buffered form of a process: `input` (none: an empty stdin) written
/// while its output is read; the exit code as a shell reports it.
async fn collect(mut p: Process, input: Option<&[u8]>) -> Result<ExecOutput> {
    use tokio::io::AsyncWriteExt;
    let stdin = p.take_stdin();
    let write = async move {
        if let (Some(mut w), Some(i)) = (stdin, input) {
            // A command that does not read it all is not an error.
            let _ = w.write_all(i).await;
            let _ = w.shutdown().await;
        }
    };
    let (_, out) = tokio::join!(write, p.output());
    let (status, stdout, stderr) = out?;
    Ok(ExecOutput {
        exit_code: status.shell_code(),
        stdout,
        stderr,
    })
}

/// How an agent run ended.
enum AgentRun {
    /// The process ran (or could not be started, reported as a shell does).
    Done(ExecOutput),
    /// The agent failed before the process started: nothing ran.
    NotStarted(QgaError),
}

/// Whether `Transport::Auto` may use SSH after this agent error.
pub(super) fn falls_back(e: &QgaError) -> bool {
    e.is_no_answer() || e.is_unavailable_command()
}
