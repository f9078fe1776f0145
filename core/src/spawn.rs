//! A process in a container, started with
//! [`LinuxKitManager::spawn`](crate::LinuxKitManager::spawn): standard
//! input to write and close, standard output and error read as the guest
//! produces them, an exit status, signals, an optional PTY and timeout.
//!
//! It runs over SSH (the guest agent's `guest-exec` buffers output until
//! the end, so it cannot stream). The guest needs a POSIX `sh` with
//! `printf`, `cd`, `exec`, `kill`; `env` for an environment, `su` for a
//! user, `tty` and `stty` for a PTY and its resizing (BusyBox has all).
//!
//! **Dropping a [`Process`] that was not waited for kills it** (SIGKILL to
//! its process group in the guest), as [`std::process::Child`] with
//! `kill_on_drop` does: nothing is left running in the guest. Output
//! streams taken from it end at that point.

mod attach;

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::process::ChildStdin;

use crate::error::{Error, Result};
use crate::ssh::{Launched, SshError, SshTarget};

/// How to start a process (everything but its argv).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpawnOptions {
    /// Variables added to its environment, in order (`NAME` must be a
    /// shell identifier).
    pub env: Vec<(String, String)>,
    /// Its working directory (default: the user's home as the SSH server
    /// sets it).
    pub cwd: Option<String>,
    /// The user it runs as (default root), through the guest's `su`.
    pub user: Option<String>,
    /// Run it on a pseudo-terminal (stdout and stderr then both arrive on
    /// stdout, as on a terminal).
    pub tty: bool,
    /// Kill it (SIGKILL) after this long; [`Process::wait`] then fails with
    /// [`Error::Timeout`].
    pub timeout: Option<Duration>,
    /// The PTY's size at the start, as (columns, rows), for a program that
    /// reads it once (a shell's line editor, an editor). Only with `tty`.
    pub pty_size: Option<(u16, u16)>,
    /// Forward the caller's SSH agent (`ssh -A`) to it, for `git` over SSH
    /// in the guest; it then runs on a connection of its own (a shared
    /// connection carries the agent of whichever process started it).
    pub forward_agent: bool,
}

impl SpawnOptions {
    /// Checks every value, naming the one that is wrong.
    pub fn validate(&self) -> Result<()> {
        for (k, _) in &self.env {
            let ok = k
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                return Err(Error::invalid(
                    "environment variable name",
                    k.clone(),
                    "must be letters, digits and underscores, not starting with a digit",
                ));
            }
        }
        if let Some(u) = &self.user {
            let ok = !u.is_empty()
                && !u.starts_with('-')
                && u.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return Err(Error::invalid(
                    "user",
                    u.clone(),
                    "must be a user name (letters, digits, `_`, `.`, `-`)",
                ));
            }
        }
        if self.cwd.as_deref() == Some("") {
            return Err(Error::invalid("working directory", "", "must not be empty"));
        }
        if let Some((c, r)) = self.pty_size {
            if c == 0 || r == 0 || !self.tty {
                return Err(Error::invalid(
                    "terminal size",
                    format!("{c}x{r}"),
                    "needs tty, and positive columns and rows",
                ));
            }
        }
        if self.timeout == Some(Duration::ZERO) {
            return Err(Error::invalid("timeout", "0s", "must be positive"));
        }
        Ok(())
    }
}

impl SpawnOptions {
    /// `cmd` as an argv with this environment, directory and user applied
    /// (through `sh -c`), for the buffered and interactive execs, which
    /// take an argv: `cmd` itself when there is nothing to apply.
    pub fn command(&self, cmd: &[String]) -> Result<Vec<String>> {
        self.validate()?;
        Ok(crate::ssh::setting_command(cmd, self.setting()))
    }

    pub(crate) fn setting(&self) -> crate::ssh::Setting<'_> {
        crate::ssh::Setting {
            env: &self.env,
            cwd: self.cwd.as_deref(),
            user: self.user.as_deref(),
            tty: self.tty,
            size: self.pty_size,
        }
    }
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// A signal (this number) ended it.
    Signal(i32),
}

impl ExitStatus {
    /// The exit code, if it exited.
    pub fn code(self) -> Option<i32> {
        match self {
            ExitStatus::Code(c) => Some(c),
            ExitStatus::Signal(_) => None,
        }
    }

    /// The signal that ended it, if one did.
    pub fn signal(self) -> Option<i32> {
        match self {
            ExitStatus::Signal(s) => Some(s),
            ExitStatus::Code(_) => None,
        }
    }

    /// As a shell reports it: the code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }

    /// Whether it exited with code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

/// Parses a signal as `9`, `KILL` or `SIGKILL` (any case).
pub fn parse_signal(s: &str) -> Result<i32> {
    let bad = || {
        Error::invalid(
            "signal",
            s,
            "expected a number 1-64 or a name like TERM or SIGKILL",
        )
    };
    if let Ok(n) = s.parse::<i32>() {
        return check_signal(n).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => return Err(bad()),
    };
    Ok(n)
}

fn check_signal(n: i32) -> Result<i32> {
    if (1..=64).contains(&n) {
        Ok(n)
    } else {
        Err(Error::invalid("signal", n.to_string(), "must be 1-64"))
    }
}

/// An output stream of a [`Process`]: bytes as the guest produces them,
/// ending when the process closes it (or ends).
pub struct OutputStream(Pin<Box<dyn AsyncRead + Send>>);

impl std::fmt::Debug for OutputStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputStream")
    }
}

impl AsyncRead for OutputStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.0.as_mut().poll_read(cx, buf)
    }
}

/// The standard input of a [`Process`]; dropping it (or
/// `AsyncWriteExt::shutdown`) closes it.
pub type InputStream = ChildStdin;

/// Signals and resizes a running [`Process`]; cheap to clone, usable while
/// another task waits for it.
#[derive(Debug, Clone)]
pub struct ProcessControl {
    target: SshTarget,
    pid: u32,
    tty: Option<String>,
    /// The last signal sent (0: none), to name the signal that ended it.
    sent: Arc<AtomicI32>,
    /// The timeout killed it.
    timed_out: Arc<AtomicBool>,
    /// The terminal size it was started with (see [`Process::attach`]).
    size: Option<(u16, u16)>,
    /// It has ended (signals are then not sent: the PID may be reused).
    ended: Arc<AtomicBool>,
}

impl ProcessControl {
    /// The process's PID in the guest (also its process group).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends signal `sig` to the process and everything it started (its
    /// process group in the guest). A process that already ended is not an
    /// error.
    pub async fn kill(&self, sig: i32) -> Result<()> {
        let sig = check_signal(sig)?;
        if self.ended.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.sent.store(sig, Ordering::SeqCst);
        let out = self
            .target
            .exec(&crate::ssh::kill_line(sig, self.pid))
            .await?;
        if out.exit_code != 0 && !self.ended.load(Ordering::SeqCst) {
            let why = String::from_utf8_lossy(&out.stderr);
            // Gone already: the group ended between the check and the kill.
            if !why.contains("No such process") {
                return Err(SshError::Failed {
                    port: self.target.port,
                    route: format!("sending signal {sig} to process group {}", self.pid),
                    detail: why.trim().to_string(),
                }
                .into());
            }
        }
        Ok(())
    }

    /// Sets the size of the process's terminal (it gets SIGWINCH). Only for
    /// a process started with a PTY.
    pub async fn resize(&self, cols: u16, rows: u16) -> Result<()> {
        let Some(tty) = &self.tty else {
            return Err(Error::invalid(
                "resize",
                format!("{cols}x{rows}"),
                "the process has no terminal (start it with tty)",
            ));
        };
        if cols == 0 || rows == 0 {
            return Err(Error::invalid(
                "terminal size",
                format!("{cols}x{rows}"),
                "columns and rows must be positive",
            ));
        }
        let cmd = [
            "stty",
            "-F",
            tty,
            "cols",
            &cols.to_string(),
            "rows",
            &rows.to_string(),
        ]
        .map(String::from);
        let out = self.target.exec(&cmd).await?;
        if out.exit_code != 0 {
            return Err(SshError::Failed {
                port: self.target.port,
                route: format!("resizing {tty} with stty"),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            }
            .into());
        }
        Ok(())
    }
}

/// What a process holds until it ends.
#[derive(Debug)]
struct Running {
    /// The local ssh process.
    child: tokio::process::Child,
    /// The connection it holds.
    route: crate::ssh::Route,
    /// ssh's own messages.
    log: tempfile::NamedTempFile,
}

/// A running process in a container. See the module documentation.
#[derive(Debug)]
pub struct Process {
    launched: Option<Running>,
    stdin: Option<ChildStdin>,
    stdout: Option<OutputStream>,
    stderr: Option<OutputStream>,
    control: ProcessControl,
    what: String,
    timeout: Option<Duration>,
    timer: Option<tokio::task::JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Process {
    pub(crate) fn new(l: Launched, target: SshTarget, cmd: &[String], opts: &SpawnOptions) -> Self {
        let timeout = opts.timeout;
        let Launched {
            child,
            stdin,
            stdout,
            stderr,
            pid,
            tty,
            route,
            log,
        } = l;
        let control = ProcessControl {
            target,
            pid,
            tty,
            sent: Arc::default(),
            timed_out: Arc::default(),
            size: opts.pty_size,
            ended: Arc::default(),
        };
        let timer = timeout.map(|t| {
            let c = control.clone();
            tokio::spawn(async move {
                tokio::time::sleep(t).await;
                c.timed_out.store(true, Ordering::SeqCst);
                let _ = c.kill(9).await;
            })
        });
        Process {
            stdin: Some(stdin),
            // The readers keep what they read past the marker.
            stdout: Some(OutputStream(Box::pin(stdout))),
            stderr: Some(OutputStream(Box::pin(stderr))),
            launched: Some(Running { child, route, log }),
            control,
            what: crate::ssh::quote_remote(cmd),
            timeout,
            timer,
            status: None,
        }
    }

    /// The process's PID in the guest.
    pub fn pid(&self) -> u32 {
        self.control.pid
    }

    /// A handle that signals and resizes it while it is waited for.
    pub fn control(&self) -> ProcessControl {
        self.control.clone()
    }

    /// Its standard input (once; later calls return `None`).
    pub fn take_stdin(&mut self) -> Option<InputStream> {
        self.stdin.take()
    }

    /// Its standard output (once).
    pub fn take_stdout(&mut self) -> Option<OutputStream> {
        self.stdout.take()
    }

    /// Its standard error (once). Empty with a PTY.
    pub fn take_stderr(&mut self) -> Option<OutputStream> {
        self.stderr.take()
    }

    /// Sends `sig` to it (see [`ProcessControl::kill`]).
    pub async fn kill(&self, sig: i32) -> Result<()> {
        self.control.kill(sig).await
    }

    /// Waits for it to end. Standard input not taken is closed first (so a
    /// command reading it sees the end); output not taken is discarded.
    /// Fails with [`Error::Timeout`] when the timeout killed it, and with
    /// an SSH error when the connection broke (the guest went away: ssh's
    /// silent exit 255 is then told from the command's own by one more
    /// connection to the guest).
    /// Later calls return the same status.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(s) = self.status {
            return self.finish(s);
        }
        self.stdin.take();
        // Untaken output must not fill its pipe and stall the process.
        for s in [self.stdout.take(), self.stderr.take()]
            .into_iter()
            .flatten()
        {
            tokio::spawn(async move {
                let mut s = s;
                let _ = tokio::io::copy(&mut s, &mut tokio::io::sink()).await;
            });
        }
        let l = self.launched.as_mut().expect("not yet waited");
        let st = l.child.wait().await.map_err(|e| {
            Error::from(SshError::Io {
                port: self.control.target.port,
                error: e,
            })
        })?;
        self.control.ended.store(true, Ordering::SeqCst);
        if let Some(t) = self.timer.take() {
            t.abort();
        }
        let l = self.launched.take().expect("not yet waited");
        let code = st.code().unwrap_or(255);
        let status = if code == 255 {
            let detail = std::fs::read_to_string(l.log.path()).unwrap_or_default();
            let detail = detail.trim();
            let sent = self.control.sent.load(Ordering::SeqCst);
            let route = format!(
                "{} while running {}",
                l.route.describe(&self.control.target),
                self.what
            );
            if !detail.is_empty() && sent == 0 {
                return Err(SshError::Failed {
                    port: self.control.target.port,
                    route,
                    detail: detail.to_string(),
                }
                .into());
            }
            // ssh exits 255 without a word when a signal ended the remote
            // command (it does not report which); the one we sent did.
            if sent != 0 {
                ExitStatus::Signal(sent)
            } else {
                self.control.target.check_silent_exit(route).await?;
                ExitStatus::Code(255)
            }
        } else {
            ExitStatus::Code(code)
        };
        drop(l);
        self.status = Some(status);
        self.finish(status)
    }

    fn finish(&self, s: ExitStatus) -> Result<ExitStatus> {
        if self.control.timed_out.load(Ordering::SeqCst) {
            return Err(Error::Timeout {
                what: format!("{} (killed)", self.what),
                secs: self.timeout.map_or(0.0, |t| t.as_secs_f64()),
            });
        }
        Ok(s)
    }

    /// Waits for it and collects whatever output was not taken: the
    /// buffered form of a process.
    pub async fn output(mut self) -> Result<(ExitStatus, Vec<u8>, Vec<u8>)> {
        use tokio::io::AsyncReadExt;
        self.stdin.take();
        let mut out = self.stdout.take();
        let mut err = self.stderr.take();
        let read_out = async {
            let mut b = Vec::new();
            if let Some(s) = out.as_mut() {
                s.read_to_end(&mut b).await?;
            }
            std::io::Result::Ok(b)
        };
        let read_err = async {
            let mut b = Vec::new();
            if let Some(s) = err.as_mut() {
                s.read_to_end(&mut b).await?;
            }
            std::io::Result::Ok(b)
        };
        let (o, e, st) = tokio::join!(read_out, read_err, self.wait());
        let io = |e: std::io::Error| -> Error {
            SshError::Io {
                port: self.control.target.port,
                error: e,
            }
            .into()
        };
        let st = st?;
        Ok((st, o.map_err(io)?, e.map_err(io)?))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
        let Some(mut l) = self.launched.take() else {
            return;
        };
        if matches!(l.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // Not waited for: kill it in the guest (the local ssh dies with its
        // handle, which does not stop a command without a terminal). On a
        // thread of its own: no runtime may be left to run a task.
        let cmd = self
            .control
            .target
            .streaming_command(&crate::ssh::kill_line(9, self.control.pid));
        let _ = l.child.start_kill();
        std::thread::spawn(move || {
            if let Ok(mut c) = cmd {
                let _ = c
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status();
            }
            drop(l);
        });
    }
}
