//! A client for the QEMU Guest Agent (qemu-ga): readiness, commands and
//! files in a guest without SSH.
//!
//! Every VM gets a virtio-serial port named [`PORT_NAME`]. Its host side is
//! a pair of FIFOs in the container's runtime directory, `qga.in` (host to
//! guest) and `qga.out` (guest to host), that QEMU holds open for the life
//! of the VM (`-chardev pipe`). Why not a Unix socket: with a socket the
//! guest sees the port close whenever no client is connected, and qemu-ga
//! then polls for the host in 100 ms sleeps, so every new connection (every
//! CLI call) waited 0–100 ms before its first answer (measured: 13–95 ms).
//! With FIFOs the port stays open and a new client gets its first answer in
//! about a millisecond.
//!
//! The protocol is not multiplexed, so one client at a time talks to the
//! agent: a [`Session`] holds an exclusive `flock` on `qga.lock` beside the
//! FIFOs, which serialises callers across processes. A session starts with
//! `0xFF` (resets the agent's JSON parser after a half-written request) and
//! `guest-sync-delimited` with a fresh id; every request carries an `id`
//! that the agent echoes, so stale replies left by a client that timed out
//! or died are recognised and skipped. Every call has a deadline; a call
//! that times out marks the session, and the next call resynchronises
//! before it sends anything.

mod commands;
pub mod data_port;
mod session;

use std::path::{Path, PathBuf};

pub use commands::{CommandInfo, ExecRequest, ExecStatus, GuestInfo};
pub use session::Session;

/// Name of the virtio-serial port qemu-ga opens by default.
pub const PORT_NAME: &str = "org.qemu.guest_agent.0";
/// QEMU chardev id of the port's host side (as `query-chardev` lists it).
pub const CHARDEV_ID: &str = "qga0";

/// Agent failures. Each names the channel (the `qga.in` FIFO) so a message
/// read out of context says which container it was about.
#[derive(Debug, thiserror::Error)]
pub enum QgaError {
    /// Opening, locking or using the channel failed.
    #[error("guest agent channel {}: {source}", path.display())]
    Io {
        /// The channel.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The agent did not answer in time (not running, busy or hung).
    #[error("guest agent channel {}: no answer to {command} within {secs:.1}s (is qemu-ga running in the guest?)", path.display())]
    Timeout {
        /// The channel.
        path: PathBuf,
        /// The request that got no answer.
        command: String,
        /// The deadline in seconds.
        secs: f64,
    },
    /// Another process kept the agent longer than this call could wait.
    #[error("guest agent channel {}: another caller held the agent for {secs:.1}s", path.display())]
    Busy {
        /// The channel.
        path: PathBuf,
        /// How long this call waited.
        secs: f64,
    },
    /// The agent answered with an error.
    #[error("guest agent channel {}: {command}: {desc}", path.display())]
    Command {
        /// The channel.
        path: PathBuf,
        /// The request.
        command: String,
        /// The QMP error class (`GenericError`, `CommandNotFound`, ...).
        class: String,
        /// The agent's description.
        desc: String,
    },
    /// The agent's policy disables a command this call needs.
    #[error("guest agent channel {}: {command} is disabled by the guest agent's policy (enabled: {})", path.display(), enabled.join(", "))]
    Disabled {
        /// The channel.
        path: PathBuf,
        /// The disabled command.
        command: String,
        /// The commands the agent does allow (from `guest-info`).
        enabled: Vec<String>,
    },
    /// The VM stopped (QEMU closed its end) or sent something unreadable.
    #[error("guest agent channel {}: {message}", path.display())]
    Protocol {
        /// The channel.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl QgaError {
    /// Whether the agent refused the command because it is disabled or
    /// unknown to this agent (so another transport may do the job).
    pub fn is_unavailable_command(&self) -> bool {
        matches!(self, QgaError::Disabled { .. })
            || matches!(self, QgaError::Command { class, .. } if class == "CommandNotFound")
    }

    /// Whether the agent never answered (absent, hung or busy).
    pub fn is_no_answer(&self) -> bool {
        matches!(self, QgaError::Timeout { .. } | QgaError::Busy { .. })
    }
}

/// The host side of one VM's agent port: paths in its runtime directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    dir: PathBuf,
}

impl Agent {
    /// The agent channel of the VM whose runtime directory is `runtime_dir`.
    pub fn new(runtime_dir: &Path) -> Self {
        Agent {
            dir: runtime_dir.to_path_buf(),
        }
    }

    /// FIFO QEMU reads requests from (host to guest).
    pub fn input_path(&self) -> PathBuf {
        channel_in(&self.dir)
    }
    /// FIFO QEMU writes replies to (guest to host).
    pub fn output_path(&self) -> PathBuf {
        channel_out(&self.dir)
    }
    /// Lock file serialising clients.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("qga.lock")
    }
}

/// Common prefix of the channel FIFOs, as QEMU's `-chardev pipe,path=`
/// takes it (QEMU appends `.in` and `.out`).
pub fn channel_prefix(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("qga")
}
/// FIFO of requests (host to guest) in a runtime directory.
pub fn channel_in(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("qga.in")
}
/// FIFO of replies (guest to host) in a runtime directory.
pub fn channel_out(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("qga.out")
}

/// Creates the channel FIFOs (mode 0600) of the agent and of the
/// [`data_port`], replacing stale ones, before QEMU starts.
pub fn create_channel(runtime_dir: &Path) -> std::io::Result<()> {
    let [data_in, data_out] = data_port::fifos(runtime_dir);
    for p in [
        channel_in(runtime_dir),
        channel_out(runtime_dir),
        data_in,
        data_out,
    ] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(std::io::Error::from)?;
    }
    Ok(())
}
