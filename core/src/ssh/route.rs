//! Which connection a command takes to the guest: the shared master
//! connection, or one of its own.
//!
//! The master makes an exec cost a few milliseconds instead of a handshake,
//! but SSH servers limit what one connection carries: OpenSSH allows ten
//! sessions (`MaxSessions`), and Dropbear before 2025 drops or even dies on
//! sessions opened while another one on the same connection ends (its
//! "`!channel->sent_close`" assertion, which takes every session down with
//! it). So the master carries one session at a time, across all processes
//! (an exclusive lock on `ssh.session.lock`). A command that finds it busy
//! for longer than a short wait opens its own connection instead; the
//! server's limit on connections still being authenticated (Dropbear: five
//! per address) is met by retrying those that are turned away before
//! anything ran (see [`super::is_refused_before_auth`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::SshTarget;

/// How long a command waits for the shared connection before opening its
/// own. Short commands through the master take milliseconds; a long one
/// (an interactive shell) must not hold the others up.
const SHARED_WAIT: Duration = Duration::from_millis(500);

/// The connection a command uses.
#[derive(Debug)]
pub(crate) enum Route {
    /// Through the master; the lock is held until the command ends.
    Shared {
        /// The session lock.
        _turn: File,
    },
    /// A connection of its own.
    Direct,
}

impl Route {
    /// In words, for error messages.
    pub(crate) fn describe(&self, t: &SshTarget) -> String {
        match self {
            Route::Shared { .. } => {
                format!("through the shared connection {}", t.control_path.display())
            }
            Route::Direct => "on a connection of its own".into(),
        }
    }
}

fn open_lock(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .ok()
}

impl SshTarget {
    fn session_lock_path(&self) -> PathBuf {
        self.control_path.with_file_name("ssh.session.lock")
    }

    /// Picks the route for one command (see the module documentation).
    pub(super) async fn route(&self) -> Route {
        let Some(f) = open_lock(&self.session_lock_path()) else {
            return Route::Direct;
        };
        let deadline = crate::deadline::Deadline::after(SHARED_WAIT);
        loop {
            if f.try_lock().is_ok() {
                break;
            }
            if deadline.expired() {
                return Route::Direct;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if self.master_alive().await {
            return Route::Shared { _turn: f };
        }
        self.ensure_master().await;
        if self.master_alive().await {
            Route::Shared { _turn: f }
        } else {
            Route::Direct
        }
    }

    /// Whether a master listens on the control socket (a socket file can
    /// outlive its master).
    pub(super) async fn master_alive(&self) -> bool {
        tokio::net::UnixStream::connect(&self.control_path)
            .await
            .is_ok()
    }

    /// Starts a persistent master connection unless one is alive. Failure
    /// is not an error: commands then connect on their own and report the
    /// problem. Concurrent callers, in any process, take turns (a lock on
    /// `lock_path`), so exactly one master is started.
    pub async fn ensure_master(&self) {
        if self.master_alive().await {
            return;
        }
        let Some(lock) = open_lock(&self.lock_path) else {
            return;
        };
        let lock = tokio::task::spawn_blocking(move || lock.lock().map(|_| lock)).await;
        let Ok(Ok(_lock)) = lock else { return };
        if self.master_alive().await {
            return;
        }
        // A socket without a master (it was killed) would refuse every
        // client and keep a new master from binding.
        let _ = std::fs::remove_file(&self.control_path);
        let Ok(mut args) = self.base_args("yes", &self.known_hosts, true) else {
            return;
        };
        args.extend([
            "-o".into(),
            "ControlMaster=yes".into(),
            "-o".into(),
            "ControlPersist=600".into(),
            "-N".into(),
            "-f".into(),
            "127.0.0.1".into(),
        ]);
        // With -f the foreground ssh exits once the master is authenticated
        // and listening; all stdio is null so the master holds none of ours.
        quietly(&args, Duration::from_secs(30)).await;
    }

    /// Closes the master connection, if any.
    pub async fn close_master(&self) {
        if !self.control_path.exists() {
            return;
        }
        if let Ok(mut args) = self.base_args("yes", &self.known_hosts, true) {
            args.extend(["-O".into(), "exit".into(), "127.0.0.1".into()]);
            quietly(&args, Duration::from_secs(5)).await;
        }
        let _ = std::fs::remove_file(&self.control_path);
    }
}

/// Runs ssh with `args` and no stdio, for at most `limit`.
async fn quietly(args: &[String], limit: Duration) {
    let run = tokio::process::Command::new("ssh")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status();
    let _ = tokio::time::timeout(limit, run).await;
}
