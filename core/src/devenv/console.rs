//! Attaching the caller's terminal to a VM's serial console socket.

use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::{Error, Result};
use crate::session::SessionIo;

/// Ctrl-]: ends the session, as in telnet and `virsh console`.
pub const DETACH_BYTE: u8 = 0x1d;

/// Puts a terminal in raw mode and restores it on drop.
struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    fn enable(fd: i32) -> Option<RawMode> {
        // SAFETY: tcgetattr/tcsetattr on a valid fd with a zeroed termios
        // that tcgetattr fills before it is used.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return None;
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some(RawMode { fd, saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `enable` on the same fd.
        unsafe {
            libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved);
        }
    }
}

/// Copies stdin to the console and the console to stdout (this process's,
/// or those in `io`) until the console closes (the VM stopped), stdin ends,
/// or the user types Ctrl-].
pub async fn attach(socket: &Path, io: &SessionIo) -> Result<()> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| Error::io("connect to console", socket, e))?;
    let dup_err = |e| Error::io("duplicate a session descriptor", socket, e);
    let input = io.input().map_err(dup_err)?;
    let output = io.output().map_err(dup_err)?;
    let stdin = std::io::stdin();
    let in_fd = match &input {
        Some(f) => f.as_fd().as_raw_fd(),
        None => stdin.as_raw_fd(),
    };
    let in_term = match &input {
        Some(f) => f.is_terminal(),
        None => stdin.is_terminal(),
    };
    let _raw = in_term.then(|| RawMode::enable(in_fd)).flatten();
    if _raw.is_some() {
        eprint!("[attached to the serial console; Ctrl-] detaches]\r\n");
    }
    let (mut rd, mut wr) = stream.into_split();
    // A plain thread for stdin: a blocking read cannot be cancelled, and a
    // thread of our own never holds up the runtime's shutdown.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut input: Box<dyn Read> = match input {
            Some(f) => Box::new(f),
            None => Box::new(std::io::stdin().lock()),
        };
        loop {
            match input.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let to_console = async {
        while let Some(chunk) = rx.recv().await {
            let (data, detach) = match chunk.iter().position(|b| *b == DETACH_BYTE) {
                Some(i) => (&chunk[..i], true),
                None => (&chunk[..], false),
            };
            if wr.write_all(data).await.is_err() || detach {
                break;
            }
        }
    };
    let from_console = async {
        let mut buf = [0u8; 4096];
        let mut out: Box<dyn Write + Send> = match output {
            Some(f) => Box::new(f),
            None => Box::new(std::io::stdout()),
        };
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = to_console => {},
        _ = from_console => {},
    }
    Ok(())
}
