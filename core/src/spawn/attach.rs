//! A [`Process`] attached to a session's streams: what `exec -it`, the dev
//! environment's shell, tests, server and Claude run on.

use std::io::IsTerminal;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};

use super::{ExitStatus, Process, ProcessControl};
use crate::error::{Error, Result};
use crate::session::{pump_input, terminal_size, CaughtSignals, RawMode, SessionIo};

impl Process {
    /// Connects the process to `io` until it ends and returns how it
    /// ended: `io`'s stdin is copied to the process's (closed at the end
    /// of input), its stdout and stderr to `io`'s as they arrive.
    ///
    /// With a PTY, a terminal on `io`'s stdin is put in raw mode for the
    /// session (Ctrl-C, Ctrl-Z and Ctrl-D reach the process as keys, as
    /// over `ssh -t`) and restored after; the terminal's size is passed on
    /// at the start (unless the process was started with it,
    /// [`SpawnOptions::pty_size`](super::SpawnOptions::pty_size)) and on
    /// each SIGWINCH. With [`SessionIo::forward_signals`],
    /// SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to this process are sent on
    /// to the process in the guest (and no longer end this one).
    ///
    /// Streams already taken from the process are left alone. Dropping the
    /// returned future stops the copying; the process keeps running until
    /// it is waited for, killed, or dropped.
    pub async fn attach(&mut self, io: &SessionIo) -> Result<ExitStatus> {
        let (input, out, err) = io
            .files()
            .map_err(|e| Error::io("duplicate a session descriptor", "stdin/stdout/stderr", e))?;
        let caught = CaughtSignals::catch(io.forward_signals);
        let control = self.control();
        let tty = control.tty.is_some();
        let _raw = (tty && input.is_terminal())
            .then(|| RawMode::enable(input.as_fd()))
            .flatten();
        // Where the size comes from: the terminal the session shows on.
        let size_fd = [out.as_raw_fd(), input.as_raw_fd()]
            .into_iter()
            .find(|fd| terminal_size(*fd).is_some());
        let stop = Arc::new(AtomicBool::new(false));
        // Set however the session ends, also when this future is dropped.
        let _stop = StopOnDrop(stop.clone());
        let stdin = self.take_stdin();
        let rx = stdin.is_some().then(|| pump_input(input, stop.clone()));
        let feed = async move {
            let (Some(mut w), Some(mut rx)) = (stdin, rx) else {
                return;
            };
            while let Some(chunk) = rx.recv().await {
                if w.write_all(&chunk).await.is_err() || w.flush().await.is_err() {
                    return;
                }
            }
            // The end of input closes the process's stdin.
            let _ = w.shutdown().await;
        };
        let stdout = self.take_stdout();
        let stderr = self.take_stderr();
        let background = async {
            tokio::join!(
                feed,
                forward_signals(control.clone(), caught),
                follow_size(control.clone(), if tty { size_fd } else { None }),
            );
            std::future::pending::<()>().await
        };
        let ended = async {
            let (_, _, status) = tokio::join!(
                copy_as_it_comes(stdout, out),
                copy_as_it_comes(stderr, err),
                self.wait()
            );
            status
        };
        tokio::select! {
            s = ended => s,
            _ = background => unreachable!("pending"),
        }
    }
}

/// Tells the input thread to stop when the session ends.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to`, flushing each chunk (a prompt without a newline
/// must show), until the end of `from` or a write error (the reader went
/// away: the rest is discarded so the process is never held up).
async fn copy_as_it_comes(from: Option<impl AsyncRead + Unpin>, to: std::fs::File) {
    let Some(mut from) = from else { return };
    let mut to = tokio::fs::File::from_std(to);
    let mut buf = vec![0u8; 32 * 1024];
    let mut writing = true;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if writing {
            writing = write_flushed(&mut to, &buf[..n]).await;
        }
    }
}

async fn write_flushed(to: &mut (impl AsyncWrite + Unpin), data: &[u8]) -> bool {
    to.write_all(data).await.is_ok() && to.flush().await.is_ok()
}

/// Sends the signals `caught` on to the guest process, until the caller
/// drops this future.
async fn forward_signals(control: ProcessControl, mut caught: CaughtSignals) {
    loop {
        let sig = caught.next().await;
        let _ = control.kill(sig).await;
    }
}

/// Gives the guest terminal the size of the session's terminal `fd`, now
/// and after each SIGWINCH.
async fn follow_size(control: ProcessControl, fd: Option<i32>) {
    let Some(fd) = fd else { return };
    let mut winch = signal(SignalKind::window_change()).ok();
    let mut last = control.size;
    loop {
        let size = terminal_size(fd);
        if size != last {
            if let Some((cols, rows)) = size {
                let _ = control.resize(cols, rows).await;
            }
            last = size;
        }
        let Some(w) = winch.as_mut() else { return };
        if w.recv().await.is_none() {
            return;
        }
    }
}
