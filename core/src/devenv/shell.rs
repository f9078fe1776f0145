//! `dev shell`: SSH into the dev VM (with the caller's SSH agent
//! forwarded), or attach to its serial console.

use super::devops::DevOps;
use crate::error::{Error, Result};
use crate::session::SessionIo;

/// How to open the shell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellOptions {
    /// Attach to the serial console instead of SSH (detach with Ctrl-]).
    pub console: bool,
    /// Command to run instead of a login shell (each element arrives as
    /// one argument).
    pub command: Vec<String>,
    /// Do not forward the SSH agent even when `SSH_AUTH_SOCK` is set.
    pub no_agent: bool,
    /// Project shown at `/app`. `None` (the library default) leaves `/app`
    /// as booted; the CLI passes its current directory. The boot project
    /// keeps the plain session; another one is shared now and bound on
    /// `/app` for this session.
    pub project: Option<std::path::PathBuf>,
    /// The session's streams (default: this process's).
    pub io: SessionIo,
}

/// Whether an SSH agent is there to forward.
pub(crate) fn agent_available() -> bool {
    std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty())
}

impl DevOps {
    /// Opens a shell (or runs `opts.command`) in the dev VM attached to the
    /// caller's terminal (or `opts.io`); returns the remote exit code (0
    /// for the console).
    pub async fn shell(&self, opts: ShellOptions) -> Result<i32> {
        let c = self.running().await?;
        if opts.console {
            let socket = self
                .manager()
                .inspect(&c.id)?
                .console_socket
                .ok_or_else(|| Error::invalid("container", &c.id, "it has no console socket"))?;
            super::console::attach(&socket, &opts.io).await?;
            return Ok(0);
        }
        let project = match opts.project.as_deref() {
            // A VM booted where nothing more can be shared keeps /app as
            // booted: a shell needs no project, so it still opens.
            Some(p) => match self.guest_project(&c, Some(p)).await {
                Err(Error::Devenv(super::DevenvError::ProjectMismatch { .. })) => None,
                other => Some(other?),
            },
            None => None,
        };
        let command = match project {
            Some(p) if p.bind.is_some() => {
                self.ensure_mounted(&c).await?;
                let line = if opts.command.is_empty() {
                    "exec \"${SHELL:-/bin/sh}\" -l".to_string()
                } else {
                    format!("exec {}", crate::ssh::quote_remote(&opts.command))
                };
                super::guest::session_command(None, &p, &line)
            }
            // The boot project, or none asked for: the session as it
            // always was.
            _ => opts.command.clone(),
        };
        self.manager()
            .exec_interactive_agent(
                &c.id,
                &command,
                opts.io.is_terminal(),
                !opts.no_agent && agent_available(),
                &opts.io,
            )
            .await
    }
}
