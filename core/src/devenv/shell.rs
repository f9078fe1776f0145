//! `dev shell`: SSH into the dev VM (with the caller's SSH agent
//! forwarded), or attach to its serial console.

use std::io::IsTerminal;

use super::devops::DevOps;
use crate::error::{Error, Result};

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
}

/// Whether an SSH agent is there to forward.
pub(crate) fn agent_available() -> bool {
    std::env::var_os("SSH_AUTH_SOCK").is_some_and(|s| !s.is_empty())
}

impl DevOps {
    /// Opens a shell (or runs `opts.command`) in the dev VM attached to the
    /// caller's terminal; returns the remote exit code (0 for the console).
    pub async fn shell(&self, opts: ShellOptions) -> Result<i32> {
        let c = self.running().await?;
        if opts.console {
            let socket = self
                .manager()
                .inspect(&c.id)?
                .console_socket
                .ok_or_else(|| Error::invalid("container", &c.id, "it has no console socket"))?;
            super::console::attach(&socket).await?;
            return Ok(0);
        }
        let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
        self.manager()
            .exec_interactive_agent(
                &c.id,
                &opts.command,
                tty,
                !opts.no_agent && agent_available(),
            )
            .await
    }
}
