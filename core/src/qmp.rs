//! A minimal QMP (QEMU Machine Protocol) client over the container's Unix
//! socket: enough for power-down, reading back forwarded ports, waiting
//! for QEMU to shut down (its `SHUTDOWN` event, then the socket closing as
//! the process exits), and saving or loading a VM's state (snapshots).

use std::collections::VecDeque;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// QMP failures, naming the socket.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// Connecting or talking to the socket failed.
    #[error("QMP socket {}: {error}", path.display())]
    Io {
        /// The socket.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// QEMU answered with an error or something unexpected.
    #[error("QMP socket {}: {message}", path.display())]
    Protocol {
        /// The socket.
        path: PathBuf,
        /// What QEMU said.
        message: String,
    },
}

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A negotiated QMP session.
#[derive(Debug)]
pub struct Qmp {
    path: PathBuf,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// Events that arrived while waiting for a command's reply.
    events: VecDeque<Value>,
}

impl Qmp {
    /// Connects and leaves capabilities-negotiation mode.
    pub async fn connect(path: &Path) -> Result<Self, QmpError> {
        let io = |source| QmpError::Io {
            path: path.to_path_buf(),
            error: source,
        };
        let stream = UnixStream::connect(path).await.map_err(io)?;
        let (r, w) = stream.into_split();
        let mut q = Qmp {
            path: path.to_path_buf(),
            reader: BufReader::new(r),
            writer: w,
            events: VecDeque::new(),
        };
        let greeting = q.read_message().await?;
        if greeting.get("QMP").is_none() {
            return Err(q.protocol(format!("unexpected greeting {greeting}")));
        }
        q.execute("qmp_capabilities", None).await?;
        Ok(q)
    }

    /// Runs `command` and returns its `return` value.
    pub async fn execute(&mut self, command: &str, args: Option<Value>) -> Result<Value, QmpError> {
        let line = request(command, args);
        let path = self.path.clone();
        tokio::time::timeout(IO_TIMEOUT, self.writer.write_all(line.as_bytes()))
            .await
            .map_err(|_| self.protocol(format!("timed out sending {command}")))?
            .map_err(|error| QmpError::Io { path, error })?;
        self.read_return(command).await
    }

    /// Hands QEMU an open file under `name` (QMP `getfd`, the descriptor
    /// travelling as `SCM_RIGHTS` ancillary data), for commands that take
    /// `fd:NAME`. The file is opened here, so QEMU never parses a path and
    /// no shell is involved.
    pub async fn send_fd(
        &mut self,
        name: &str,
        fd: std::os::fd::BorrowedFd<'_>,
    ) -> Result<(), QmpError> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        use std::os::fd::AsRawFd;
        let line = request("getfd", Some(json!({ "fdname": name })));
        let sock: &UnixStream = self.writer.as_ref();
        let fds = [fd.as_raw_fd()];
        let send = async {
            loop {
                sock.writable().await?;
                let sent = sock.try_io(tokio::io::Interest::WRITABLE, || {
                    let iov = [std::io::IoSlice::new(line.as_bytes())];
                    let cmsg = [ControlMessage::ScmRights(&fds)];
                    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
                        .map_err(std::io::Error::from)
                });
                match sent {
                    Ok(n) if n == line.len() => return Ok(()),
                    Ok(n) => {
                        return Err(std::io::Error::other(format!(
                            "short write ({n} of {} bytes)",
                            line.len()
                        )))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        };
        tokio::time::timeout(IO_TIMEOUT, send)
            .await
            .map_err(|_| self.protocol("timed out sending getfd".into()))?
            .map_err(|error| QmpError::Io {
                path: self.path.clone(),
                error,
            })?;
        self.read_return("getfd").await.map(|_| ())
    }

    async fn read_return(&mut self, command: &str) -> Result<Value, QmpError> {
        loop {
            let reply = self.read_message().await?;
            if reply.get("event").is_some() {
                self.events.push_back(reply);
                continue;
            }
            if let Some(r) = reply.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = reply.get("error") {
                let desc = e
                    .get("desc")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                return Err(self.protocol(format!("{command}: {desc}")));
            }
        }
    }

    /// Runs a human monitor command (e.g. `info usernet`) and returns its text.
    pub async fn human(&mut self, command_line: &str) -> Result<String, QmpError> {
        let r = self
            .execute(
                "human-monitor-command",
                Some(json!({ "command-line": command_line })),
            )
            .await?;
        Ok(r.as_str().unwrap_or_default().to_string())
    }

    /// The next asynchronous event (`{"event": "SHUTDOWN", "data": …}`),
    /// or `None` once QEMU closes the connection, which it does as it
    /// exits. Waits as long as it takes: the caller sets the deadline.
    pub async fn next_event(&mut self) -> Result<Option<Value>, QmpError> {
        loop {
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            match self.read_raw().await? {
                None => return Ok(None),
                Some(m) if m.get("event").is_some() => return Ok(Some(m)),
                Some(_) => {}
            }
        }
    }

    async fn read_message(&mut self) -> Result<Value, QmpError> {
        tokio::time::timeout(IO_TIMEOUT, self.read_raw())
            .await
            .map_err(|_| self.protocol("timed out waiting for a reply".into()))??
            .ok_or_else(|| self.protocol("connection closed by QEMU".into()))
    }

    /// One message, or `None` at end of stream.
    async fn read_raw(&mut self) -> Result<Option<Value>, QmpError> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .await
            .map_err(|source| QmpError::Io {
                path: self.path.clone(),
                error: source,
            })?;
        if n == 0 {
            return Ok(None);
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| self.protocol(format!("bad JSON {line:?}: {e}")))
    }

    fn protocol(&self, message: String) -> QmpError {
        QmpError::Protocol {
            path: self.path.clone(),
            message,
        }
    }
}

/// Runs one QMP `command` without an async runtime (for quick, blocking
/// looks such as `inspect`), every step within `timeout`.
pub fn query_blocking(path: &Path, command: &str, timeout: Duration) -> Result<Value, QmpError> {
    use std::io::{BufRead, Write};
    let io = |error| QmpError::Io {
        path: path.to_path_buf(),
        error,
    };
    let stream = std::os::unix::net::UnixStream::connect(path).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut reader = std::io::BufReader::new(stream.try_clone().map_err(io)?);
    let mut writer = stream;
    let mut next = || -> Result<Value, QmpError> {
        let mut line = String::new();
        if reader.read_line(&mut line).map_err(io)? == 0 {
            return Err(QmpError::Protocol {
                path: path.to_path_buf(),
                message: "connection closed by QEMU".into(),
            });
        }
        serde_json::from_str(&line).map_err(|e| QmpError::Protocol {
            path: path.to_path_buf(),
            message: format!("bad JSON {line:?}: {e}"),
        })
    };
    next()?; // greeting
    let mut result = Value::Null;
    for cmd in ["qmp_capabilities", command] {
        writer
            .write_all(format!("{}\n", json!({ "execute": cmd })).as_bytes())
            .map_err(io)?;
        result = loop {
            let reply = next()?;
            if let Some(r) = reply.get("return") {
                break r.clone();
            }
            if let Some(e) = reply.get("error") {
                return Err(QmpError::Protocol {
                    path: path.to_path_buf(),
                    message: format!("{cmd}: {e}"),
                });
            }
        };
    }
    Ok(result)
}

/// One QMP request line.
fn request(command: &str, args: Option<Value>) -> String {
    let mut msg = json!({ "execute": command });
    if let Some(a) = args {
        msg["arguments"] = a;
    }
    let mut line = msg.to_string();
    line.push('\n');
    line
}

/// Host ports of `hostfwd` rules forwarding to `guest_port`, parsed from
/// `info usernet` output such as
/// `TCP[HOST_FORWARD]  13   127.0.0.1 37867   10.0.2.15    22   0   0`.
pub fn parse_usernet_forwards(text: &str, guest_port: u16) -> Vec<u16> {
    text.lines()
        .filter(|l| l.trim_start().starts_with("TCP[HOST_FORWARD]"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Protocol, FD, src addr, src port, dst addr, dst port, ...
            let (src, dst) = (
                f.get(3)?.parse::<u16>().ok()?,
                f.get(5)?.parse::<u16>().ok()?,
            );
            (dst == guest_port).then_some(src)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernet_parsing() {
        let text = "Hub -1 (net0):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n  TCP[HOST_FORWARD]  13       127.0.0.1 37867       10.0.2.15    22     0     0\r\n  TCP[HOST_FORWARD]  12       127.0.0.1  8080       10.0.2.15    80     0     0\r\n";
        assert_eq!(parse_usernet_forwards(text, 22), [37867]);
        assert_eq!(parse_usernet_forwards(text, 80), [8080]);
        assert!(parse_usernet_forwards(text, 443).is_empty());
    }
}
