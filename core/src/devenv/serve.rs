//! `dev serve`: run the project's server in the dev VM, reachable on a host
//! port that is forwarded for as long as it runs.
//!
//! The forward is added to the running VM through QEMU's monitor
//! (`hostfwd_add`) rather than at boot, so booting never claims a port a
//! project may not need, and any port can be served later.

use std::path::PathBuf;

use super::detect::detect_serve_command;
use super::devops::DevOps;
use super::guest::session_command;
use crate::error::{Error, Result};
use crate::qmp::Qmp;
use crate::spawn::{ExitStatus, SpawnOptions};
use crate::ssh::quote_remote;

/// How long a stopped server has to exit after SIGTERM before SIGKILL.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Port detected servers listen on in the guest.
pub const DEFAULT_SERVE_PORT: u16 = 8000;

/// How to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// Project directory (default: the current directory).
    pub project: Option<PathBuf>,
    /// Subdirectory of the project to serve from.
    pub path: Option<PathBuf>,
    /// Host port (on 127.0.0.1).
    pub port: u16,
    /// Guest port the server listens on.
    pub guest_port: u16,
    /// Command instead of the detected one (each element one argument).
    pub command: Vec<String>,
    /// The server's streams (default: this process's).
    pub io: crate::session::SessionIo,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            project: None,
            path: None,
            port: DEFAULT_SERVE_PORT,
            guest_port: DEFAULT_SERVE_PORT,
            command: Vec::new(),
            io: Default::default(),
        }
    }
}

/// Runs one human monitor command. Each call connects anew: QEMU serves
/// one QMP client at a time, and `stop` needs the socket while we serve.
async fn monitor(qmp: &std::path::Path, command: &str) -> Result<String> {
    Ok(Qmp::connect(qmp).await?.human(command).await?)
}

/// `tcp:127.0.0.1:PORT`, the rule name `hostfwd_remove` takes.
fn rule(port: u16) -> String {
    format!("tcp:127.0.0.1:{port}")
}

impl DevOps {
    /// The command `serve` would run for `opts` (detected or given).
    pub fn serve_command(&self, opts: &ServeOptions) -> Result<String> {
        if !opts.command.is_empty() {
            return Ok(quote_remote(&opts.command));
        }
        let mut dir = super::devops::project_dir(opts.project.as_deref())?;
        if let Some(p) = &opts.path {
            dir = dir.join(p);
        }
        Ok(detect_serve_command(&dir))
    }

    /// Forwards `127.0.0.1:port` to the guest's `guest_port` and runs the
    /// server until it exits or `stop` completes (e.g. on Ctrl-C); returns
    /// its exit code (130 when stopped). The forward is removed and the
    /// server's process group killed afterwards.
    ///
    /// It is a [`crate::Process`] attached to `opts.io`: on a terminal it
    /// runs on a pseudo-terminal, so Ctrl-C reaches it as a key; with
    /// `io.forward_signals` this process's signals are passed on; when
    /// `stop` completes its process group gets SIGTERM, then SIGKILL.
    pub async fn serve(
        &self,
        opts: ServeOptions,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<i32> {
        let c = self.running().await?;
        let mut project = super::devops::project_dir(opts.project.as_deref())?;
        if let Some(p) = &opts.path {
            project = project.join(p);
        }
        let dir = self.guest_project(&c, Some(&project)).await?;
        let command = self.serve_command(&opts)?;
        self.ensure_mounted(&c).await?;
        let qmp_path = self.manager().inspect(&c.id)?.qmp_socket.ok_or_else(|| {
            Error::invalid(
                "container",
                &c.id,
                "it has no QMP socket to add a port forward",
            )
        })?;
        // A forward left by a serve that was killed would block the port.
        let _ = monitor(
            &qmp_path,
            &format!("hostfwd_remove net0 {}", rule(opts.port)),
        )
        .await;
        let answer = monitor(
            &qmp_path,
            &format!("hostfwd_add net0 {}-:{}", rule(opts.port), opts.guest_port),
        )
        .await?;
        if !answer.trim().is_empty() {
            return Err(Error::invalid(
                "serve port",
                opts.port.to_string(),
                format!("QEMU could not forward it: {}", answer.trim()),
            ));
        }
        let spawn = SpawnOptions {
            tty: opts.io.is_terminal(),
            ..Default::default()
        };
        let argv = session_command(None, &dir, &command);
        let result = match self.manager().spawn(&c.id, &argv, &spawn).await {
            Ok(mut p) => {
                let control = p.control();
                let ended = tokio::select! {
                    r = p.attach(&opts.io) => Some(r),
                    _ = stop => None,
                };
                match ended {
                    Some(r) => r.map(ExitStatus::shell_code),
                    None => {
                        // The server and everything it started (its process
                        // group): SIGTERM, then SIGKILL when `p` is dropped.
                        let _ = control.kill(15).await;
                        let _ = tokio::time::timeout(STOP_GRACE, p.wait()).await;
                        Ok(130)
                    }
                }
            }
            Err(e) => Err(e),
        };
        let _ = monitor(
            &qmp_path,
            &format!("hostfwd_remove net0 {}", rule(opts.port)),
        )
        .await;
        result
    }
}
