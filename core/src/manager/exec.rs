//! Running commands in a container over SSH.

use std::time::Duration;

use super::LinuxKitManager;
use crate::container::{Container, Status};
use crate::error::{Error, Result};
use crate::ssh::{ExecOutput, SshTarget};

/// How long `exec` waits for a just-started guest's SSH server.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(120);

impl LinuxKitManager {
    /// The SSH endpoint of `c`: its recorded port and key, host keys pinned
    /// in its own directory, a master socket in its runtime directory.
    pub(super) fn ssh_target(&self, c: &Container) -> SshTarget {
        let instance = self.home.instance_dir(&c.id);
        let rd = c.runtime_dir.clone().unwrap_or_else(|| instance.clone());
        SshTarget {
            port: c.ssh_port,
            key: c.ssh_key.as_ref().map(Into::into),
            known_hosts: instance.join("known_hosts"),
            alias: format!("vmcontainer-{}", c.id),
            control_path: rd.join("ssh.sock"),
            lock_path: rd.join("ssh.lock"),
        }
    }

    async fn exec_target(&self, reference: &str) -> Result<SshTarget> {
        let c = self.get_async(reference).await?;
        if c.status != Status::Running {
            return Err(Error::NotRunning(c.id));
        }
        if c.ssh_port == 0 {
            return Err(Error::invalid("container", c.id, "it has no SSH port"));
        }
        let target = self.ssh_target(&c);
        if !target.host_keys_known() {
            self.wait_ready(&c.id, DEFAULT_READY_TIMEOUT).await?;
        }
        Ok(target)
    }

    /// Runs `cmd` (an argv, each element arriving intact, whatever its
    /// length) in the guest as root and returns its exit code, stdout and
    /// stderr. Repeated calls reuse one SSH connection, and concurrent ones
    /// never break it (see [`crate::ssh`]). When ssh itself fails the error
    /// carries its message and the connection used.
    pub async fn exec(&self, reference: &str, cmd: &[String]) -> Result<ExecOutput> {
        if cmd.is_empty() {
            return Err(Error::invalid("command", "", "must not be empty"));
        }
        let target = self.exec_target(reference).await?;
        Ok(target.exec(cmd).await?)
    }

    /// Runs `cmd` attached to the caller's terminal (`tty` asks for a
    /// pseudo-terminal) and returns its exit code.
    pub async fn exec_interactive(
        &self,
        reference: &str,
        cmd: &[String],
        tty: bool,
    ) -> Result<i32> {
        let target = self.exec_target(reference).await?;
        Ok(target.exec_interactive(cmd, tty).await?)
    }

    /// Runs `cmd` with `input` on its standard input and returns its exit
    /// code and output. Secrets go this way, never on a command line.
    pub async fn exec_with_input(
        &self,
        reference: &str,
        cmd: &[String],
        input: &[u8],
    ) -> Result<ExecOutput> {
        if cmd.is_empty() {
            return Err(Error::invalid("command", "", "must not be empty"));
        }
        let target = self.exec_target(reference).await?;
        Ok(target.exec_with_input(cmd, input).await?)
    }

    /// [`Self::exec_interactive`] that can forward the caller's SSH agent;
    /// an empty `cmd` opens a login shell.
    pub async fn exec_interactive_agent(
        &self,
        reference: &str,
        cmd: &[String],
        tty: bool,
        forward_agent: bool,
    ) -> Result<i32> {
        let target = self.exec_target(reference).await?;
        Ok(target
            .exec_interactive_agent(cmd, tty, forward_agent)
            .await?)
    }
}
