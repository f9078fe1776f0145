//! Attaching the caller's terminal to a VM's serial console socket.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::{Error, Result};
use crate::session::{pump_input, RawMode, SessionIo};

/// Ctrl-]: ends the session, as in telnet and `virsh console`.
pub const DETACH_BYTE: u8 = 0x1d;

/// Copies stdin to the console and the console to stdout (this process's,
/// or those in `io`) until the console closes (the VM stopped), stdin ends,
/// or the user types Ctrl-].
pub async fn attach(socket: &Path, io: &SessionIo) -> Result<()> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|e| Error::io("connect to console", socket, e))?;
    let dup_err = |e| Error::io("duplicate a session descriptor", socket, e);
    let (input, mut out, _) = io.files().map_err(dup_err)?;
    let _raw = input
        .is_terminal()
        .then(|| RawMode::enable(input.as_fd()))
        .flatten();
    if _raw.is_some() {
        eprint!("[attached to the serial console; Ctrl-] detaches]\r\n");
    }
    let (mut rd, mut wr) = stream.into_split();
    let stop = Arc::new(AtomicBool::new(false));
    let mut rx = pump_input(input, stop.clone());
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
    stop.store(true, Ordering::SeqCst);
    Ok(())
}
