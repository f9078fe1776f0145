//! Running commands in a guest with the OpenSSH client.
//!
//! Host keys are pinned per container (a `known_hosts` file in the
//! container's directory, entries under a `vmcontainer-<id>` alias) so two
//! guests that reuse one port never clash and a different guest on a
//! recorded port is refused. A ControlMaster connection per container makes
//! repeated execs cheap, across processes; `ssh/route.rs` says how concurrent
//! execs share it. ssh's own messages are kept apart from the command's
//! output (`-E`), so an exit status of 255 with a message is ssh's, and
//! becomes an error carrying that. A silent 255 is not proof of the
//! command's: a client on a shared connection whose master died with the
//! guest exits 255 without a word too, so one more connection tells the two
//! apart (`SshTarget::check_silent_exit`, used by [`SshTarget::exec`] and by
//! [`crate::spawn::Process::wait`]).

mod route;
mod spawn;

pub(crate) use route::Route;
pub(crate) use spawn::{kill_line, setting_command, wrapper, Launched, Setting};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::deadline::Deadline;

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
    #[error("ssh to 127.0.0.1:{port}: {error}")]
    Io {
        /// The guest's SSH port.
        port: u16,
        /// The OS error.
        error: std::io::Error,
    },
    /// ssh itself failed (not the remote command): what it said, and over
    /// which connection.
    #[error("ssh to the guest on 127.0.0.1:{port} ({route}) failed: {detail}")]
    Failed {
        /// The guest's SSH port.
        port: u16,
        /// The connection used.
        route: String,
        /// ssh's own message.
        detail: String,
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
    /// Read the user's `~/.ssh/config` (and so its default keys and
    /// agent settings) instead of ignoring it: only for containers
    /// go-container started, whose `exec` relied on those defaults.
    pub user_defaults: bool,
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

/// Longest remote command line sent as is. Dropbear drops the whole
/// connection (the shared master with it) for one over 9000 bytes, and a
/// single argument over 128 KiB cannot even be passed to `ssh`; a longer
/// command is uploaded first and run from the guest's copy.
const MAX_INLINE_COMMAND: usize = 8000;

/// Attempts for a connection turned away before authentication.
const CONNECT_ATTEMPTS: u32 = 10;

/// What a command's standard streams are connected to.
enum Io<'a> {
    /// Nothing in; output collected.
    Collect,
    /// `input` in; output collected.
    Input(&'a [u8]),
}

/// How a command ended: its exit code, and its output when collected.
struct Ended {
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Whether ssh's own message says the server turned the connection away
/// before authentication (too many connections being set up at once, or a
/// server still starting). Nothing ran, so trying again is safe.
pub(crate) fn is_refused_before_auth(msg: &str) -> bool {
    msg.lines().any(|l| {
        l.starts_with("kex_exchange_identification:")
            || l.starts_with("ssh_exchange_identification:")
            || l.starts_with("banner exchange:")
            || l.starts_with("Connection closed by ")
            || l.starts_with("Connection reset by ")
            || l.contains("session request failed: Session open refused by peer")
    })
}

impl SshTarget {
    /// Options shared by every ssh invocation for this target, pinning host
    /// keys in `known_hosts`; `shared` says whether the master's control
    /// socket may be used. (ssh takes the *first* value given for an
    /// option, so these cannot be overridden by appending.)
    fn base_args(
        &self,
        strict: &str,
        known_hosts: &Path,
        shared: bool,
    ) -> Result<Vec<String>, SshError> {
        let mut a: Vec<String> = if self.user_defaults {
            Vec::new()
        } else {
            vec!["-F".into(), "none".into()]
        };
        a.extend([
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            format!("StrictHostKeyChecking={strict}"),
            "-o".into(),
            format!(
                "UserKnownHostsFile={}",
                config_path("known_hosts path", known_hosts)?
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
            if shared {
                format!(
                    "ControlPath={}",
                    config_path("control socket", &self.control_path)?
                )
            } else {
                "ControlPath=none".into()
            },
        ]);
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
                error: source,
            }
        }
    }

    /// Checks that every path ssh will be given (known_hosts, control
    /// socket, key) can be passed to it, so a bad one is refused when the
    /// container is created rather than at its first exec.
    pub fn check(&self) -> Result<(), SshError> {
        self.base_args("yes", &self.known_hosts, true).map(|_| ())
    }

    /// Whether host keys for this container have been pinned.
    pub fn host_keys_known(&self) -> bool {
        std::fs::metadata(&self.known_hosts).is_ok_and(|m| m.len() > 0)
    }

    /// Takes this container's host-key turn: an exclusive lock, across
    /// processes, held while the guest is probed and its key learned, so
    /// concurrent callers neither crowd a booting server nor write the
    /// `known_hosts` file at once. Waits as long as it takes.
    pub async fn lock_host_keys(&self) -> Result<std::fs::File, SshError> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut path = self.known_hosts.clone().into_os_string();
        path.push(".lock");
        if let Some(dir) = self.known_hosts.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| self.io(e))?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| self.io(e))?;
        tokio::task::spawn_blocking(move || f.lock().map(|_| f))
            .await
            .map_err(|e| self.io(std::io::Error::other(e)))?
            .map_err(|e| self.io(e))
    }

    /// Pins the guest's host key: the first connection accepts and records
    /// it (authentication may fail; the key is recorded before that). The
    /// key is written to a private temporary file and renamed into place,
    /// so a reader never sees half of it. Call with [`Self::lock_host_keys`]
    /// held.
    pub async fn learn_host_key(&self) -> Result<(), SshError> {
        let dir = self.known_hosts.parent().unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".known_hosts.")
            .tempfile_in(dir)
            .map_err(|e| self.io(e))?;
        let mut args = self.base_args("accept-new", tmp.path(), false)?;
        args.extend(["127.0.0.1".into(), "exit".into()]);
        let mut detail = String::new();
        for attempt in 0..CONNECT_ATTEMPTS {
            let log = self.log_file()?;
            let out = Command::new("ssh")
                .args(["-E".as_ref(), log.path().as_os_str()])
                .args(&args)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output()
                .await
                .map_err(|e| self.io(e))?;
            if std::fs::metadata(tmp.path()).is_ok_and(|m| m.len() > 0) {
                restrict_permissions(tmp.path());
                tmp.persist(&self.known_hosts)
                    .map_err(|e| self.io(e.error))?;
                return Ok(());
            }
            detail = read_log(&log, &out.stderr);
            if !is_refused_before_auth(&detail) {
                break;
            }
            backoff(attempt).await;
        }
        Err(SshError::HostKey {
            port: self.port,
            detail,
        })
    }

    /// A private file for ssh's own messages (`-E`), beside the control
    /// socket: they are told apart from the remote command's output that
    /// way, and an exit status of 255 is known to be ssh's, not the
    /// command's, exactly when there is a message.
    fn log_file(&self) -> Result<tempfile::NamedTempFile, SshError> {
        let mut b = tempfile::Builder::new();
        b.prefix("ssh-").suffix(".log");
        // A record from another tool may name no directory of ours.
        match self.control_path.parent() {
            Some(dir) if dir.is_dir() => b.tempfile_in(dir),
            _ => b.tempfile(),
        }
        .map_err(|e| self.io(e))
    }

    /// The remote command line for `cmd`: quoted for the remote shell, or,
    /// when too long to send as is, uploaded over stdin (through the same
    /// routes) and run from the guest's private copy, which it deletes.
    async fn remote_command(&self, cmd: &[String]) -> Result<String, SshError> {
        self.remote_line(quote_remote(cmd)).await
    }

    /// [`Self::remote_command`] for a command line already quoted.
    async fn remote_line(&self, quoted: String) -> Result<String, SshError> {
        if quoted.len() <= MAX_INLINE_COMMAND {
            return Ok(quoted);
        }
        let upload = r#"umask 077; f=$(mktemp) && cat > "$f" && printf %s "$f""#;
        let out = self.run(upload, Io::Input(quoted.as_bytes())).await?;
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let plain = path.starts_with('/')
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
        if out.code != 0 || !plain {
            return Err(SshError::Failed {
                port: self.port,
                route: "uploading a command too long to pass inline".into(),
                detail: format!(
                    "the command is {} bytes (the limit inline is {MAX_INLINE_COMMAND}) and the guest could not store it with mktemp and cat (exit {}): {}",
                    quoted.len(),
                    out.code,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(format!(r#"c=$(cat {path}) && rm -f {path} && eval "$c""#))
    }

    /// Runs `remote` (a command line for the remote shell) on the route
    /// [`Self::route`] picks. A connection turned away before
    /// authentication is tried again; any other failure of ssh itself is
    /// an error carrying ssh's message and the route. (Processes that
    /// stream or take a terminal are [`crate::spawn::Process`]es.)
    /// A silent exit 255 is the command's only while the guest still
    /// answers (see [`Self::check_silent_exit`]).
    async fn run(&self, remote: &str, io: Io<'_>) -> Result<Ended, SshError> {
        let (ended, via) = self.run_once(remote, io).await?;
        if ended.code == 255 {
            self.check_silent_exit(via).await?;
        }
        Ok(ended)
    }

    /// After ssh exited 255 without a message on `route`: `Ok` when that
    /// was the command's own status, an error naming `route` when the guest
    /// no longer answers. ssh exits 255 without a word both when the
    /// command did and when the shared connection's master died with the
    /// guest (a VM killed or powered off mid-command): one more connection
    /// tells them apart, bounded so that a frozen guest does not hold the
    /// caller.
    pub(crate) async fn check_silent_exit(&self, route: String) -> Result<(), SshError> {
        const LOOK: Duration = Duration::from_secs(15);
        let why = match tokio::time::timeout(LOOK, self.run_once("true", Io::Collect)).await {
            Ok(Ok((ended, _))) if ended.code == 0 => return Ok(()),
            Ok(Ok((ended, _))) => format!(
                "ssh ended without a message (exit {}) even for `true`",
                ended.code
            ),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("it did not answer within {} s", LOOK.as_secs()),
        };
        Err(SshError::Failed {
            port: self.port,
            route,
            detail: format!("the connection to the guest was lost: {why}"),
        })
    }

    /// [`Self::run`] that takes a silent exit 255 as the command's, with
    /// the route it went by (for messages).
    async fn run_once(&self, remote: &str, io: Io<'_>) -> Result<(Ended, String), SshError> {
        let mut attempt = 0;
        loop {
            let route = self.route().await;
            let log = self.log_file()?;
            let mut args = vec!["-E".to_string(), log.path().to_string_lossy().into_owned()];
            let shared = matches!(route, route::Route::Shared { .. });
            args.extend(self.base_args("yes", &self.known_hosts, shared)?);
            args.extend(["-o", "ControlMaster=no", "-T", "127.0.0.1", "--"].map(String::from));
            args.push(remote.to_string());
            let ended = self.spawn(&args, &io).await?;
            let mut via = route.describe(self);
            drop(route);
            if ended.code == 255 {
                let detail = read_log(&log, b"");
                if !detail.is_empty() {
                    attempt += 1;
                    if is_refused_before_auth(&detail) && attempt < CONNECT_ATTEMPTS {
                        backoff(attempt).await;
                        continue;
                    }
                    if attempt > 1 {
                        via.push_str(&format!(", after {attempt} attempts"));
                    }
                    return Err(SshError::Failed {
                        port: self.port,
                        route: via,
                        detail,
                    });
                }
            }
            return Ok((ended, via));
        }
    }

    async fn spawn(&self, args: &[String], io: &Io<'_>) -> Result<Ended, SshError> {
        let mut command = Command::new("ssh");
        command.args(args).kill_on_drop(true);
        match io {
            Io::Collect => {
                let out = command
                    .stdin(Stdio::null())
                    .output()
                    .await
                    .map_err(|e| self.io(e))?;
                Ok(Ended {
                    code: out.status.code().unwrap_or(255),
                    stdout: out.stdout,
                    stderr: out.stderr,
                })
            }
            Io::Input(input) => {
                use tokio::io::AsyncWriteExt;
                let mut child = command
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| self.io(e))?;
                let mut stdin = child.stdin.take().expect("stdin is piped");
                let input = input.to_vec();
                // Written concurrently with reading the output, so neither
                // side can fill a pipe and wait for the other; dropping
                // stdin sends EOF.
                let writer = tokio::spawn(async move {
                    let _ = stdin.write_all(&input).await;
                });
                let out = child.wait_with_output().await.map_err(|e| self.io(e))?;
                let _ = writer.await;
                Ok(Ended {
                    code: out.status.code().unwrap_or(255),
                    stdout: out.stdout,
                    stderr: out.stderr,
                })
            }
        }
    }

    /// A non-interactive `ssh` process running `cmd` (a short argv) in the
    /// guest, for a caller that streams through its stdin and stdout (a tar
    /// archive). It takes a connection of its own: a long stream must not
    /// hold the shared one (see [`route`]). Blocking (`std::process`), for
    /// use off the async workers.
    pub fn streaming_command(&self, cmd: &[String]) -> Result<std::process::Command, SshError> {
        let mut args = self.base_args("yes", &self.known_hosts, false)?;
        args.extend(["-o".into(), "ControlMaster=no".into(), "-T".into()]);
        args.extend(["127.0.0.1".into(), "--".into(), quote_remote(cmd)]);
        let mut c = std::process::Command::new("ssh");
        c.args(args);
        Ok(c)
    }

    /// Runs `cmd` and collects its exit code and output.
    pub async fn exec(&self, cmd: &[String]) -> Result<ExecOutput, SshError> {
        let remote = self.remote_command(cmd).await?;
        let e = self.run(&remote, Io::Collect).await?;
        Ok(ExecOutput {
            exit_code: e.code,
            stdout: e.stdout,
            stderr: e.stderr,
        })
    }
}

/// ssh's own messages from its `-E` file (falling back to `stderr`),
/// trimmed; the result is empty when ssh had nothing to say.
fn read_log(log: &tempfile::NamedTempFile, stderr: &[u8]) -> String {
    let text = std::fs::read(log.path()).unwrap_or_default();
    let text = if text.is_empty() { stderr } else { &text[..] };
    String::from_utf8_lossy(text).trim().to_string()
}

/// Sleeps before attempt `n + 1`: growing, with jitter so that processes
/// turned away together do not come back together.
async fn backoff(n: u32) {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let base = 100u64 << n.min(4);
    let jitter = u64::from(u16::from_le_bytes(b)) % base;
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

fn restrict_permissions(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600));
}

/// Waits until something on `127.0.0.1:port` sends an SSH banner. A bare
/// TCP connect is not enough: QEMU's user network accepts connections on a
/// forwarded port before the guest listens.
pub async fn wait_for_banner(port: u16, deadline: Deadline) -> bool {
    loop {
        // One attempt never runs past the caller's deadline (a guest that
        // accepts but stays silent would otherwise hold us for seconds).
        let left = deadline.remaining().max(Duration::from_millis(100));
        if let Ok(true) =
            tokio::time::timeout(left.min(Duration::from_secs(5)), banner_once(port)).await
        {
            return true;
        }
        if deadline.expired() {
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
        let t = std::time::Instant::now();
        assert!(!wait_for_banner(sp, Deadline::after(Duration::from_millis(800))).await);
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        keep.abort();
        let ssh = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = ssh.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = ssh.accept().await {
                let _ = c.write_all(b"SSH-2.0-test\r\n").await;
            }
        });
        assert!(wait_for_banner(p, Deadline::after(Duration::from_secs(10))).await);
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
