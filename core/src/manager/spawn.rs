//! Starting a process in a container (see [`crate::spawn`]).

use super::LinuxKitManager;
use crate::container::Container;
use crate::error::{Error, Result};
use crate::spawn::{Process, SpawnOptions};
use crate::ssh::wrapper;

impl LinuxKitManager {
    /// Starts `cmd` (an argv, each element arriving intact) in the running
    /// container `reference` and returns once it runs: its stdin, stdout
    /// and stderr stay open while it does. Always over SSH (the guest agent
    /// cannot stream); processes take turns on the container's shared
    /// connection and open their own when it is busy, so many may run at
    /// once. Dropping the [`Process`] without waiting kills it.
    pub async fn spawn(
        &self,
        reference: &str,
        cmd: &[String],
        opts: &SpawnOptions,
    ) -> Result<Process> {
        if cmd.is_empty() {
            return Err(Error::invalid("command", "", "must not be empty"));
        }
        opts.validate()?;
        let c = self.running(reference).await?;
        self.spawn_in(&c, cmd, opts).await
    }

    /// [`Self::spawn`] in the running container `c`.
    pub(super) async fn spawn_in(
        &self,
        c: &Container,
        cmd: &[String],
        opts: &SpawnOptions,
    ) -> Result<Process> {
        let target = self.ssh_ready(c).await?;
        let line = wrapper(cmd, opts.setting());
        let launched = target.launch(&line, opts.tty, opts.forward_agent).await?;
        Ok(Process::new(launched, target, cmd, opts))
    }
}
