//! Running commands in a guest with the OpenSSH client.
//!
//! Host keys are pinned per container (a `known_hosts` file in the
//! container's directory, entries under a `vmcontainer-<id>` alias) so two
//! guests that reuse one port never clash and a different guest on a
//! recorded port is refused. A ControlMaster connection per container makes
//! repeated execs cheap, across processes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::process::Command;

/// SSH failures.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The `ssh` client is not installed.
    #[error("the OpenSSH client `{0}` was not found on PATH; install openssh-client")]
    NotInstalled(&'static str),
    /// A value cannot be passed to ssh safely.
    #[error("cannot pass {what} {value:?} to ssh: {reason}")]
    Unsafe {
        /// Which value.
        what: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// Starting or talking to ssh failed.
    #[error("ssh to 127.0.0.1:{port}: {source}")]
    Io {
        /// The guest's SSH port.
        port: u16,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The guest's host key could not be learned.
    #[error("could not learn the SSH host key of the guest on 127.0.0.1:{port}: {detail}")]
    HostKey {
        /// The guest's SSH port.
        port: u16,
        /// What ssh said.
        detail: String,
    },
}

/// How to reach one guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    /// Host port forwarded to the guest's port 22.
    pub port: u16,
    /// Private key, if not the user's default.
    pub key: Option<PathBuf>,
    /// Per-container pinned host keys.
    pub known_hosts: PathBuf,
    /// Host key alias, unique per container.
    pub alias: String,
    /// ControlMaster socket.
    pub control_path: PathBuf,
    /// Lock file serialising master creation.
    pub lock_path: PathBuf,
}

/// Output of a finished command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The remote command's exit status (255 when ssh itself failed, as
    /// with the `ssh` command).
    pub exit_code: i32,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
}

/// Quotes a value for an ssh `-o` option: `%` tokens are expanded by ssh in
/// paths, and whitespace would split the value.
fn config_path(what: &'static str, p: &Path) -> Result<String, SshError> {
    let s = p.to_str().ok_or_else(|| SshError::Unsafe {
        what,
        value: p.to_string_lossy().into(),
        reason: "not valid UTF-8",
    })?;
    if s.contains('"') || s.contains('\n') {
        return Err(SshError::Unsafe {
            what,
            value: s.into(),
            reason: "contains a double quote or newline",
        });
    }
    Ok(format!("\"{}\"", s.replace('%', "%%")))
}

/// Quotes `args` for the remote POSIX shell so each arrives as one argv
/// element, exactly as given.
pub fn quote_remote(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl SshTarget {
    /// Options shared by every ssh invocation for this target.
    fn base_args(&self, strict: &str) -> Result<Vec<String>, SshError> {
        let mut a = vec![
            "-F".into(),
            "none".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            format!("StrictHostKeyChecking={strict}"),
            "-o".into(),
            format!(
                "UserKnownHostsFile={}",
                config_path("known_hosts path", &self.known_hosts)?
            ),
            "-o".into(),
            "GlobalKnownHostsFile=/dev/null".into(),
            "-o".into(),
            format!("HostKeyAlias={}", self.alias),
            "-o".into(),
            "LogLevel=ERROR".into(),
            "-o".into(),
            "ConnectTimeout=15".into(),
            "-o".into(),
            "ServerAliveInterval=15".into(),
            "-o".into(),
            format!(
                "ControlPath={}",
                config_path("control socket", &self.control_path)?
            ),
        ];
        if let Some(k) = &self.key {
            a.extend([
                "-o".into(),
                "IdentitiesOnly=yes".into(),
                "-o".into(),
                format!("IdentityFile={}", config_path("ssh key", k)?),
            ]);
        }
        a.extend([
            "-p".into(),
            self.port.to_string(),
            "-l".into(),
            "root".into(),
        ]);
        Ok(a)
    }

    fn io(&self, source: std::io::Error) -> SshError {
        if source.kind() == std::io::ErrorKind::NotFound {
            SshError::NotInstalled("ssh")
        } else {
            SshError::Io {
                port: self.port,
                source,
            }
        }
    }

    /// Whether host keys for this container have been pinned.
    pub fn host_keys_known(&self) -> bool {
        std::fs::metadata(&self.known_hosts).is_ok_and(|m| m.len() > 0)
    }

    /// Pins the guest's host key: the first connection accepts and records
    /// it (authentication may fail; the key is recorded before that).
    pub async fn learn_host_key(&self) -> Result<(), SshError> {
        let mut args = self.base_args("accept-new")?;
        args.extend(["-o".into(), "ControlMaster=no".into()]);
        args.extend(["127.0.0.1".into(), "exit".into()]);
        let out = Command::new("ssh")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| self.io(e))?;
        if !self.host_keys_known() {
            return Err(SshError::HostKey {
                port: self.port,
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        restrict_permissions(&self.known_hosts);
        Ok(())
    }

    /// Starts a persistent master connection if none is running. Failure is
    /// not an error: execs then connect directly and report the problem.
    pub async fn ensure_master(&self) {
        if self.control_path.exists() {
            return;
        }
        use std::os::unix::fs::OpenOptionsExt;
        let Ok(lock) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock_path)
        else {
            return;
        };
        let lock = tokio::task::spawn_blocking(move || lock.lock().map(|_| lock)).await;
        let Ok(Ok(_lock)) = lock else { return };
        if self.control_path.exists() {
            return;
        }
        let Ok(mut args) = self.base_args("yes") else {
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
        // and backgrounded; all stdio is null so the master holds none of
        // ours.
        let child = Command::new("ssh")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(30), child).await;
    }

    /// Closes the master connection, if any.
    pub async fn close_master(&self) {
        if !self.control_path.exists() {
            return;
        }
        if let Ok(mut args) = self.base_args("yes") {
            args.extend(["-O".into(), "exit".into(), "127.0.0.1".into()]);
            let run = Command::new("ssh")
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = tokio::time::timeout(Duration::from_secs(5), run).await;
        }
        let _ = std::fs::remove_file(&self.control_path);
    }

    fn command_args(&self, cmd: &[String], tty: bool) -> Result<Vec<String>, SshError> {
        let mut args = self.base_args("yes")?;
        args.extend(["-o".into(), "ControlMaster=no".into()]);
        if tty {
            args.push("-t".into());
        } else {
            args.push("-T".into());
        }
        args.push("127.0.0.1".into());
        args.push("--".into());
        args.push(quote_remote(cmd));
        Ok(args)
    }

    /// A non-interactive `ssh` process running `cmd` in the guest, for a
    /// caller that streams through its stdin and stdout (e.g. a tar
    /// archive). Blocking (`std::process`), for use off the async workers.
    pub fn streaming_command(&self, cmd: &[String]) -> Result<std::process::Command, SshError> {
        let mut c = std::process::Command::new("ssh");
        c.args(self.command_args(cmd, false)?);
        Ok(c)
    }

    /// Runs `cmd` and collects its exit code and output.
    pub async fn exec(&self, cmd: &[String]) -> Result<ExecOutput, SshError> {
        let out = Command::new("ssh")
            .args(self.command_args(cmd, false)?)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| self.io(e))?;
        Ok(ExecOutput {
            exit_code: out.status.code().unwrap_or(255),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// Runs `cmd` attached to the caller's terminal and returns its exit
    /// code.
    pub async fn exec_interactive(&self, cmd: &[String], tty: bool) -> Result<i32, SshError> {
        let status = Command::new("ssh")
            .args(self.command_args(cmd, tty)?)
            .status()
            .await
            .map_err(|e| self.io(e))?;
        Ok(status.code().unwrap_or(255))
    }

    /// Runs `cmd` with `input` as its standard input and collects its exit
    /// code and output. This is how secrets reach a guest: inside the
    /// encrypted channel, never on a command line.
    pub async fn exec_with_input(
        &self,
        cmd: &[String],
        input: &[u8],
    ) -> Result<ExecOutput, SshError> {
        use tokio::io::AsyncWriteExt;
        let mut child = Command::new("ssh")
            .args(self.command_args(cmd, false)?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.io(e))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        // Written concurrently with reading the output, so neither side can
        // fill a pipe and wait for the other; dropping stdin sends EOF.
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
        });
        let out = child.wait_with_output().await.map_err(|e| self.io(e))?;
        let _ = writer.await;
        Ok(ExecOutput {
            exit_code: out.status.code().unwrap_or(255),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    /// [`Self::exec_interactive`] that can forward the caller's SSH agent
    /// (`-A`); an empty `cmd` opens a login shell. Forwarding bypasses the
    /// shared master connection, whose agent would be that of whichever
    /// process started the master.
    pub async fn exec_interactive_agent(
        &self,
        cmd: &[String],
        tty: bool,
        forward_agent: bool,
    ) -> Result<i32, SshError> {
        let mut args = self.command_args(cmd, tty)?;
        if cmd.is_empty() {
            // command_args ends with "--" and the (empty) command.
            args.truncate(args.len() - 2);
        }
        if forward_agent {
            for a in args.iter_mut().filter(|a| a.starts_with("ControlPath=")) {
                *a = "ControlPath=none".into();
            }
            args.insert(0, "-A".into());
        }
        let status = Command::new("ssh")
            .args(&args)
            .kill_on_drop(true)
            .status()
            .await
            .map_err(|e| self.io(e))?;
        Ok(status.code().unwrap_or(255))
    }
}

fn restrict_permissions(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600));
}

/// Waits until something on `127.0.0.1:port` sends an SSH banner. A bare
/// TCP connect is not enough: QEMU's user network accepts connections on a
/// forwarded port before the guest listens.
pub async fn wait_for_banner(port: u16, deadline: Instant) -> bool {
    loop {
        // One attempt never runs past the caller's deadline (a guest that
        // accepts but stays silent would otherwise hold us for seconds).
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(100));
        if let Ok(true) =
            tokio::time::timeout(left.min(Duration::from_secs(5)), banner_once(port)).await
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What one look at a guest's forwarded SSH port found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshProbe {
    /// An SSH server sent its banner.
    Banner,
    /// The connection was closed or reset at once, or something other than
    /// SSH answered: the guest's network is up and no SSH server listens.
    /// (QEMU's user network accepts the host side first and passes the
    /// guest's reset on as a close.)
    Refused,
    /// Nothing answered in time: the guest is still booting, or has no
    /// network.
    Silent,
}

/// Looks once at `127.0.0.1:port` for at most `timeout`.
pub async fn probe_ssh(port: u16, timeout: Duration) -> SshProbe {
    let look = async {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
            return SshProbe::Refused;
        };
        let mut buf = [0u8; 64];
        match s.read(&mut buf).await {
            Ok(n) if buf[..n].starts_with(b"SSH-") => SshProbe::Banner,
            _ => SshProbe::Refused,
        }
    };
    tokio::time::timeout(timeout, look)
        .await
        .unwrap_or(SshProbe::Silent)
}

/// Whether an SSH banner arrives on `127.0.0.1:port` within `timeout`,
/// without an async runtime.
pub fn banner_blocking(port: u16, timeout: Duration) -> bool {
    use std::io::Read;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"SSH-"))
}

async fn banner_once(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf).await, Ok(n) if buf[..n].starts_with(b"SSH-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_quoting_keeps_each_argument_whole() {
        let q = quote_remote(&[
            "sh".into(),
            "-c".into(),
            "echo 'hi' $HOME; rm -rf /".into(),
            "".into(),
        ]);
        assert_eq!(q, r#"sh -c 'echo '\''hi'\'' $HOME; rm -rf /' ''"#);
        // Round trip through a real POSIX shell.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s|' {q}"))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "sh|-c|echo 'hi' $HOME; rm -rf /||"
        );
    }

    #[tokio::test]
    async fn banner_wait_honours_its_deadline_and_sees_ssh() {
        use tokio::io::AsyncWriteExt;
        // Accepts and stays silent, like a forwarded port before sshd runs.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sp = silent.local_addr().unwrap().port();
        let keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((c, _)) = silent.accept().await {
                held.push(c);
            }
        });
        let t = Instant::now();
        assert!(!wait_for_banner(sp, Instant::now() + Duration::from_millis(800)).await);
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        keep.abort();
        let ssh = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = ssh.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = ssh.accept().await {
                let _ = c.write_all(b"SSH-2.0-test\r\n").await;
            }
        });
        assert!(wait_for_banner(p, Instant::now() + Duration::from_secs(10)).await);
    }

    #[test]
    fn paths_with_percent_and_spaces_are_quoted() {
        assert_eq!(
            config_path("p", Path::new("/a b/%h")).unwrap(),
            "\"/a b/%%h\""
        );
        assert!(config_path("p", Path::new("/a\"b")).is_err());
    }
}
