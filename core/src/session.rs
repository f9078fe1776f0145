//! The standard streams of an interactive session in a guest (a dev
//! shell, tests, Claude, the serial console): this process's own by
//! default, or file descriptors a caller hands over (a C program's pipe, a
//! Go program's `io.Reader` turned into a pipe).

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a session's stdin, stdout and stderr go. `None` means this
/// process's own stream. The descriptors are owned (shared by clones) and
/// closed when the last clone is dropped; each session gets duplicates.
#[derive(Debug, Clone, Default)]
pub struct SessionIo {
    /// Standard input.
    pub stdin: Option<Arc<OwnedFd>>,
    /// Standard output.
    pub stdout: Option<Arc<OwnedFd>>,
    /// Standard error.
    pub stderr: Option<Arc<OwnedFd>>,
    /// Pass SIGINT, SIGTERM, SIGHUP and SIGQUIT that this process receives
    /// on to the command in the guest while the session runs (the CLI,
    /// whose Ctrl-C must reach the command, not end the host side and leave
    /// it running). Off by default: a library must not take over its host
    /// program's signals.
    pub forward_signals: bool,
}

impl PartialEq for SessionIo {
    fn eq(&self, other: &Self) -> bool {
        let raw = |f: &Option<Arc<OwnedFd>>| f.as_ref().map(|f| f.as_raw_fd());
        raw(&self.stdin) == raw(&other.stdin)
            && raw(&self.stdout) == raw(&other.stdout)
            && raw(&self.stderr) == raw(&other.stderr)
            && self.forward_signals == other.forward_signals
    }
}

impl Eq for SessionIo {}

impl SessionIo {
    /// This process's own streams.
    pub fn inherit() -> Self {
        Self::default()
    }

    /// The given descriptors (each `None` inherits).
    pub fn new(stdin: Option<OwnedFd>, stdout: Option<OwnedFd>, stderr: Option<OwnedFd>) -> Self {
        SessionIo {
            stdin: stdin.map(Arc::new),
            stdout: stdout.map(Arc::new),
            stderr: stderr.map(Arc::new),
            forward_signals: false,
        }
    }

    /// This session with [`Self::forward_signals`] on.
    pub fn forwarding_signals(mut self) -> Self {
        self.forward_signals = true;
        self
    }

    /// Whether the session has a terminal on both stdin and stdout, so a
    /// pseudo-terminal is worth asking for.
    pub fn is_terminal(&self) -> bool {
        let term = |f: &Option<Arc<OwnedFd>>, own: bool| match f {
            Some(fd) => fd.as_fd().is_terminal(),
            None => own,
        };
        term(&self.stdin, std::io::stdin().is_terminal())
            && term(&self.stdout, std::io::stdout().is_terminal())
    }
}

/// Duplicates `fd`, or this process's own descriptor `own` (0, 1, 2).
fn dup_or_own(fd: &Option<Arc<OwnedFd>>, own: RawFd) -> std::io::Result<File> {
    let owned = match fd {
        Some(fd) => fd.try_clone()?,
        None => {
            // SAFETY: 0, 1 and 2 stay open for the life of the process;
            // the borrow only lasts for the duplication.
            let b = unsafe { std::os::fd::BorrowedFd::borrow_raw(own) };
            b.try_clone_to_owned()?
        }
    };
    Ok(File::from(owned))
}

impl SessionIo {
    /// The size (columns, rows) of the terminal the session shows on (its
    /// stdout, else its stdin), if it has one.
    pub fn terminal_size(&self) -> Option<(u16, u16)> {
        let (i, o, _) = self.files().ok()?;
        terminal_size(o.as_raw_fd()).or_else(|| terminal_size(i.as_raw_fd()))
    }

    /// Duplicates of the session's stdin, stdout and stderr (this
    /// process's own where none was given), for a session that copies
    /// between them and a guest process.
    pub(crate) fn files(&self) -> std::io::Result<(File, File, File)> {
        Ok((
            dup_or_own(&self.stdin, 0)?,
            dup_or_own(&self.stdout, 1)?,
            dup_or_own(&self.stderr, 2)?,
        ))
    }
}

/// Puts a terminal in raw mode (keystrokes such as Ctrl-C pass through as
/// bytes) and restores it on drop.
pub(crate) struct RawMode {
    fd: OwnedFd,
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    /// `None` when `fd` is not a terminal or refuses the change.
    pub(crate) fn enable(fd: std::os::fd::BorrowedFd<'_>) -> Option<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let fd = fd.try_clone_to_owned().ok()?;
        let saved = tcgetattr(&fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ =
            nix::sys::termios::tcsetattr(&self.fd, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

/// The size of the terminal `fd` as (columns, rows); `None` when it is not
/// a terminal or reports no size.
pub(crate) fn terminal_size(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: TIOCGWINSZ writes one winsize into the zeroed struct.
    let ws = unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) != 0 {
            return None;
        }
        ws
    };
    (ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

/// SIGINT, SIGTERM, SIGHUP and SIGQUIT caught for a session that passes
/// them on to its command ([`SessionIo::forward_signals`]).
pub(crate) struct CaughtSignals(Vec<(i32, tokio::signal::unix::Signal)>);

impl CaughtSignals {
    /// Catches them from now on when `on` (before anything of the session
    /// runs, so none can end this process meanwhile); catches none
    /// otherwise.
    pub(crate) fn catch(on: bool) -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        let kinds = [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
            SignalKind::quit(),
        ];
        CaughtSignals(
            kinds
                .iter()
                .filter(|_| on)
                .filter_map(|k| signal(*k).ok().map(|s| (k.as_raw_value(), s)))
                .collect(),
        )
    }

    /// The number of the next signal caught; never ready when none are
    /// caught.
    pub(crate) async fn next(&mut self) -> i32 {
        std::future::poll_fn(|cx| {
            for (n, s) in self.0.iter_mut() {
                if let std::task::Poll::Ready(Some(())) = s.poll_recv(cx) {
                    return std::task::Poll::Ready(*n);
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}

/// How often the input thread looks whether the session ended.
const INPUT_STOP_CHECK: Duration = Duration::from_millis(100);

/// Reads `input` on a thread of its own (a blocking read of a terminal
/// cannot be cancelled) and sends what it reads, until the end of input,
/// an error, the receiver going away, or `stop`. It waits for input with
/// `poll` in short rounds, so once `stop` is set it ends within
/// [`INPUT_STOP_CHECK`] and never eats input meant for whatever reads the
/// descriptor after the session.
pub(crate) fn pump_input(
    mut input: File,
    stop: Arc<AtomicBool>,
) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let round = PollTimeout::try_from(INPUT_STOP_CHECK).unwrap_or(PollTimeout::NONE);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        while !stop.load(Ordering::SeqCst) {
            let mut fds = [PollFd::new(input.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, round) {
                Ok(0) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
                Ok(_) => {}
            }
            match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn pipes_are_used_and_not_terminals() {
        let (r, w) = std::io::pipe().unwrap();
        let io = SessionIo::new(None, Some(OwnedFd::from(w)), None);
        assert!(!io.is_terminal());
        assert_eq!(io, io.clone());
        assert_ne!(io, SessionIo::inherit());
        let (_, mut out, _) = io.files().unwrap();
        out.write_all(b"hi").unwrap();
        drop(out);
        drop(io);
        let mut got = String::new();
        let mut r = r;
        r.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hi");
    }

    #[tokio::test]
    async fn the_input_pump_stops_when_told_and_leaves_later_input_unread() {
        let (r, mut w) = std::io::pipe().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut rx = pump_input(
            File::from(OwnedFd::from(r.try_clone().unwrap())),
            stop.clone(),
        );
        w.write_all(b"one").unwrap();
        assert_eq!(rx.recv().await.unwrap(), b"one");
        stop.store(true, Ordering::SeqCst);
        tokio::time::sleep(INPUT_STOP_CHECK * 3).await;
        w.write_all(b"two").unwrap();
        assert_eq!(rx.recv().await, None, "the thread ended");
        let mut r = r;
        let mut got = [0u8; 3];
        r.read_exact(&mut got).unwrap();
        assert_eq!(
            &got, b"two",
            "input after the session is left for its reader"
        );
    }
}
