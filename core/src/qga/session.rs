//! One client's turn at the agent: the lock, the FIFOs, the sync handshake
//! and request/reply matching.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;

use super::{Agent, QgaError};

/// Resets the agent's JSON parser: never valid in UTF-8, so the agent drops
/// whatever half-read request it holds. The agent also puts it before the
/// reply to `guest-sync-delimited`, which is how that reply is found in a
/// stream that may begin with stale output.
const DELIMITER: u8 = 0xFF;

/// Longest wait between two attempts at the lock.
const LOCK_POLL_MAX: Duration = Duration::from_millis(20);

/// The lock file's first byte after a session that ended in step with the
/// agent: every reply read, no call cut off, the parser between requests.
/// The next session may then skip the sync handshake, a guest round trip
/// (2 ms under TCG, an eighth of an `exec`). Anything else there (a
/// session in progress, or one whose process died) means resynchronise.
const CLEAN: u8 = b'c';

/// Written when a session starts, so one that ends without saying it is
/// clean (a killed process) leaves the next session resynchronising.
const DIRTY: u8 = b'd';

/// An exclusive conversation with the agent. Dropping it releases the lock.
#[derive(Debug)]
pub struct Session {
    path: PathBuf,
    lock: File,
    tx: pipe::Sender,
    rx: pipe::Receiver,
    /// Bytes read from the agent and not consumed yet.
    buf: Vec<u8>,
    /// A call failed mid-way, so replies may be out of step: the next call
    /// resynchronises first.
    poisoned: bool,
    /// A request is out whose reply has not been read (a call in progress,
    /// or one whose future was dropped), or one that gets no reply was
    /// sent: the session does not end clean.
    in_flight: bool,
    /// The handshake was skipped and the agent has not answered yet: a
    /// request that times out now may still be read by the agent later.
    unconfirmed: bool,
    nonce: u64,
    seq: u64,
    opened: Instant,
    /// When the current call started (for timeout messages).
    started: Instant,
    /// How long the last call that got its reply took.
    last_round_trip: Option<Duration>,
}

impl Agent {
    /// Takes the agent for this caller: waits for the lock (until
    /// `deadline`), opens the channel and completes the sync handshake,
    /// unless the session before ended in step with the agent (see
    /// [`CLEAN`]); then the first call's reply is the proof of life.
    pub async fn connect(&self, deadline: Instant) -> Result<Session, QgaError> {
        self.open(deadline, true).await
    }

    /// [`Self::connect`] that always completes the handshake, for a request
    /// that gets no reply (`guest-shutdown`): it is sent only to an agent
    /// that just answered.
    pub async fn connect_synced(&self, deadline: Instant) -> Result<Session, QgaError> {
        self.open(deadline, false).await
    }

    async fn open(&self, deadline: Instant, may_skip_sync: bool) -> Result<Session, QgaError> {
        let path = self.input_path();
        let lock = lock_until(&self.lock_path(), &path, deadline).await?;
        let clean = may_skip_sync && handoff(&lock) == Some(CLEAN);
        set_handoff(&lock, DIRTY);
        // Requests a client wrote before it died, never read by an agent
        // that was not running then, must not run when one starts.
        drain(&path);
        let gone = |source: std::io::Error| {
            if source.raw_os_error() == Some(libc::ENXIO) {
                QgaError::Protocol {
                    path: path.clone(),
                    message: "the VM is not running (nothing holds the channel open)".into(),
                }
            } else {
                QgaError::Io {
                    path: path.clone(),
                    source,
                }
            }
        };
        let tx = pipe::OpenOptions::new().open_sender(&path).map_err(gone)?;
        let rx = pipe::OpenOptions::new()
            .open_receiver(self.output_path())
            .map_err(gone)?;
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| QgaError::Io {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut s = Session {
            path,
            lock,
            tx,
            rx,
            buf: Vec::with_capacity(64 * 1024),
            poisoned: false,
            in_flight: false,
            unconfirmed: clean,
            // Sync ids are JSON integers: keep them exact in any parser.
            nonce: u64::from_le_bytes(nonce) & 0x000f_ffff_ffff_0000,
            seq: 0,
            opened: Instant::now(),
            started: Instant::now(),
            last_round_trip: None,
        };
        if !clean {
            s.resync("guest-sync-delimited", deadline).await?;
        }
        Ok(s)
    }
}

/// The lock file's hand-off byte (see [`CLEAN`]); `None` when it has none.
fn handoff(lock: &File) -> Option<u8> {
    use std::os::unix::fs::FileExt;
    let mut b = [0u8; 1];
    matches!(lock.read_at(&mut b, 0), Ok(1)).then_some(b[0])
}

/// Writes the hand-off byte. A failed write leaves the file as it was: at
/// worst the next session resynchronises when it did not need to (or, for
/// CLEAN → DIRTY, the first call of a session whose process dies finds
/// the agent in step anyway, since a reply left unread is skipped by id).
fn set_handoff(lock: &File, b: u8) {
    use std::os::unix::fs::FileExt;
    let _ = lock.write_at(&[b], 0);
}

/// Polls for an exclusive `flock` on `lock_path` until `deadline`.
pub(super) async fn lock_until(
    lock_path: &Path,
    channel: &Path,
    deadline: Instant,
) -> Result<File, QgaError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| QgaError::Io {
        path: lock_path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(lock_path)
        .map_err(io)?;
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        if Instant::now() >= deadline {
            return Err(QgaError::Busy {
                path: channel.to_path_buf(),
                secs: started.elapsed().as_secs_f64(),
            });
        }
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        pause = (pause * 2).min(LOCK_POLL_MAX);
    }
}

/// Discards requests waiting in the `qga.in` FIFO. Only the lock holder
/// writes there, so nothing of another live client is lost.
pub(super) fn drain(input: &Path) {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(input)
    else {
        return;
    };
    let mut sink = [0u8; 16 * 1024];
    while matches!(f.read(&mut sink), Ok(n) if n > 0) {}
}

impl Session {
    /// Whether nothing has shown yet that the agent reads this session's
    /// requests (the handshake was skipped, no reply came yet). A caller
    /// that would redo a timed-out request some other way must not when
    /// this was true before it: the agent may still run it.
    pub fn unconfirmed(&self) -> bool {
        self.unconfirmed
    }

    /// How long the last call that got its reply took (the guest's speed,
    /// as [`Agent::wait`] paces its polling by it).
    pub fn last_round_trip(&self) -> Option<Duration> {
        self.last_round_trip
    }

    /// How long this session has held the agent.
    pub fn age(&self) -> Duration {
        self.opened.elapsed()
    }

    /// The channel this session talks on (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `command` and returns its `return` value. The agent's own
    /// errors come back as [`QgaError::Command`] and leave the session
    /// usable; a timeout or broken channel marks it for resynchronisation.
    pub async fn call(
        &mut self,
        command: &str,
        args: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, QgaError> {
        self.started = Instant::now();
        let deadline = later(self.started, timeout);
        self.in_flight = true;
        let r = self.call_inner(command, args, deadline).await;
        self.in_flight = false;
        if r.is_ok() || matches!(r, Err(QgaError::Command { .. })) {
            self.last_round_trip = Some(self.started.elapsed());
        }
        if matches!(
            r,
            Err(QgaError::Timeout { .. } | QgaError::Io { .. } | QgaError::Protocol { .. })
        ) {
            self.poisoned = true;
        }
        r
    }

    /// Sends `command` without waiting for a reply, for commands that send
    /// none (`guest-shutdown`). The request stays queued for the agent even
    /// when the session ends at once.
    pub async fn notify(
        &mut self,
        command: &str,
        args: Option<Value>,
        timeout: Duration,
    ) -> Result<(), QgaError> {
        self.started = Instant::now();
        let deadline = later(self.started, timeout);
        if self.poisoned {
            self.resync(command, deadline).await?;
        }
        let mut msg = json!({ "execute": command });
        if let Some(a) = args {
            msg["arguments"] = a;
        }
        // Without a reply to read, the agent may still be parsing it when
        // the next session starts.
        self.in_flight = true;
        self.send(&line(&msg), command, deadline).await
    }

    async fn call_inner(
        &mut self,
        command: &str,
        args: Option<Value>,
        deadline: Instant,
    ) -> Result<Value, QgaError> {
        if self.poisoned {
            self.resync(command, deadline).await?;
        }
        self.seq += 1;
        let id = Value::String(format!("vmc-{:x}-{}", self.nonce, self.seq));
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(a) = args {
            msg["arguments"] = a;
        }
        self.send(&line(&msg), command, deadline).await?;
        loop {
            let raw = self.read_line(command, deadline).await?;
            let Ok(reply) = serde_json::from_slice::<Value>(trim_delimiter(&raw)) else {
                continue; // half a reply a dead client left behind
            };
            if reply.get("id") != Some(&id) {
                continue; // a stale reply to someone else's request
            }
            self.unconfirmed = false;
            if let Some(r) = reply.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = reply.get("error") {
                let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let desc = field("desc");
                if desc.contains("has been disabled") {
                    return Err(QgaError::Disabled {
                        path: self.path.clone(),
                        command: command.to_string(),
                        enabled: Vec::new(),
                    });
                }
                return Err(QgaError::Command {
                    path: self.path.clone(),
                    command: command.to_string(),
                    class: field("class"),
                    desc,
                });
            }
            return Err(self.protocol(format!("{command}: unexpected reply {reply}")));
        }
    }

    /// Writes the parser reset and a `guest-sync-delimited` with a new id,
    /// and skips everything the agent sends up to that sync's reply.
    ///
    /// Nothing may follow a request before its reply has arrived: qemu-ga
    /// (7.2, glib channel on virtio-serial) fails to write a reply while
    /// more input sits in its read buffer ("error writing to channel:
    /// Illegal seek"), so a pipelined request silently loses the reply of
    /// the one before it. The reset byte's own error reply may be lost that
    /// way; nothing waits for it.
    async fn resync(&mut self, command: &str, deadline: Instant) -> Result<(), QgaError> {
        self.poisoned = true;
        self.seq += 1;
        let id = self.nonce + self.seq;
        let mut bytes = vec![DELIMITER];
        bytes.extend(line(
            &json!({ "execute": "guest-sync-delimited", "arguments": { "id": id } }),
        ));
        self.send(&bytes, command, deadline).await?;
        self.await_sync(id, command, deadline).await?;
        self.poisoned = false;
        self.unconfirmed = false;
        Ok(())
    }

    /// Skips everything up to the sync reply with `id`.
    async fn await_sync(
        &mut self,
        id: u64,
        command: &str,
        deadline: Instant,
    ) -> Result<(), QgaError> {
        loop {
            match self.buf.iter().position(|b| *b == DELIMITER) {
                Some(at) => {
                    self.buf.drain(..=at);
                }
                None => {
                    self.buf.clear();
                    self.fill(command, deadline).await?;
                    continue;
                }
            }
            let raw = self.read_line(command, deadline).await?;
            let reply: Option<Value> = serde_json::from_slice(trim_delimiter(&raw)).ok();
            if reply
                .as_ref()
                .and_then(|r| r.get("return"))
                .and_then(Value::as_u64)
                == Some(id)
            {
                return Ok(());
            }
        }
    }

    async fn send(
        &mut self,
        bytes: &[u8],
        command: &str,
        deadline: Instant,
    ) -> Result<(), QgaError> {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.tx.write_all(bytes)).await {
            Err(_) => Err(self.timeout(command)),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                Err(self.protocol("the VM stopped (QEMU closed the channel)".into()))
            }
            Ok(Err(source)) => Err(QgaError::Io {
                path: self.path.clone(),
                source,
            }),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// The next newline-terminated reply (without the newline).
    async fn read_line(&mut self, command: &str, deadline: Instant) -> Result<Vec<u8>, QgaError> {
        let mut scanned = 0;
        loop {
            if let Some(at) = self.buf[scanned..].iter().position(|b| *b == b'\n') {
                let end = scanned + at;
                let raw = self.buf[..end].to_vec();
                self.buf.drain(..=end);
                return Ok(raw);
            }
            scanned = self.buf.len();
            self.fill(command, deadline).await?;
        }
    }

    /// Reads whatever the agent has sent next into the buffer.
    async fn fill(&mut self, command: &str, deadline: Instant) -> Result<(), QgaError> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.buf.reserve(64 * 1024);
        match tokio::time::timeout(left, self.rx.read_buf(&mut self.buf)).await {
            Err(_) => Err(self.timeout(command)),
            Ok(Ok(0)) => Err(self.protocol("the VM stopped (QEMU closed the channel)".into())),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(QgaError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    fn timeout(&self, command: &str) -> QgaError {
        QgaError::Timeout {
            path: self.path.clone(),
            command: command.to_string(),
            secs: self.started.elapsed().as_secs_f64(),
        }
    }

    fn protocol(&self, message: String) -> QgaError {
        QgaError::Protocol {
            path: self.path.clone(),
            message,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Requests an absent or hung agent has not read yet must not run
        // later, when nobody waits for them.
        if self.poisoned {
            drain(&self.path);
        } else if !self.in_flight {
            set_handoff(&self.lock, CLEAN);
        }
    }
}

/// `start + timeout`, saturating (a caller may pass "forever").
fn later(start: Instant, timeout: Duration) -> Instant {
    start
        .checked_add(timeout)
        .unwrap_or_else(|| start + Duration::from_secs(100 * 365 * 86_400))
}

fn line(msg: &Value) -> Vec<u8> {
    let mut v = msg.to_string().into_bytes();
    v.push(b'\n');
    v
}

fn trim_delimiter(raw: &[u8]) -> &[u8] {
    let start = raw
        .iter()
        .rposition(|b| *b == DELIMITER)
        .map_or(0, |p| p + 1);
    &raw[start..]
}

#[cfg(test)]
mod tests {
    //! The wire logic against a stand-in agent on real FIFOs: a thread
    //! that holds both ends open the way QEMU does and answers like
    //! qemu-ga, including late and stale replies.

    use super::*;
    use std::io::{Read, Write};
    use std::sync::{mpsc, Arc, Mutex};

    struct FakeAgent {
        dir: tempfile::TempDir,
        seen: Arc<Mutex<Vec<String>>>,
        start: Option<mpsc::Sender<()>>,
    }

    /// A "QEMU" holding the FIFOs open; its agent answers once `answer`
    /// is called (or at once with `answering = true`).
    fn fake(answering: bool) -> FakeAgent {
        let dir = tempfile::tempdir().unwrap();
        crate::qga::create_channel(dir.path()).unwrap();
        let open = |p: PathBuf| {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(p)
                .unwrap()
        };
        let mut input = open(crate::qga::channel_in(dir.path()));
        let mut output = open(crate::qga::channel_out(dir.path()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let (start, started) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if started.recv().is_err() {
                return;
            }
            let mut line = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = input.read(&mut buf) {
                for &b in &buf[..n] {
                    if b == DELIMITER {
                        line.clear();
                        let _ = output.write_all(b"{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\\uFFFD'\"}}\n");
                    } else if b == b'\n' {
                        let req: Value = serde_json::from_slice(&line).unwrap();
                        line.clear();
                        let cmd = req["execute"].as_str().unwrap().to_string();
                        log.lock().unwrap().push(cmd.clone());
                        let id = req.get("id").cloned().unwrap_or(Value::Null);
                        let reply = match cmd.as_str() {
                            "guest-sync-delimited" => {
                                let mut r = vec![DELIMITER];
                                r.extend(line_of(&json!({ "return": req["arguments"]["id"] })));
                                r
                            }
                            "test-slow" => {
                                std::thread::sleep(Duration::from_millis(1500));
                                line_of(&json!({ "return": "slow", "id": id }))
                            }
                            "test-stale" => {
                                let mut r =
                                    line_of(&json!({ "return": "stale", "id": "someone-else" }));
                                r.extend(line_of(&json!({ "return": "fresh", "id": id })));
                                r
                            }
                            "test-disabled" => line_of(
                                &json!({ "error": { "class": "CommandNotFound", "desc": "The command test-disabled has been disabled for this instance" }, "id": id }),
                            ),
                            _ => line_of(&json!({ "return": {}, "id": id })),
                        };
                        output.write_all(&reply).unwrap();
                    } else {
                        line.push(b);
                    }
                }
            }
        });
        let mut f = FakeAgent {
            dir,
            seen,
            start: Some(start),
        };
        if answering {
            f.answer();
        }
        f
    }

    fn line_of(v: &Value) -> Vec<u8> {
        line(v)
    }

    impl FakeAgent {
        fn answer(&mut self) {
            if let Some(s) = self.start.take() {
                s.send(()).unwrap();
            }
        }
        fn agent(&self) -> Agent {
            Agent::new(self.dir.path())
        }
        fn seen(&self) -> Vec<String> {
            self.seen.lock().unwrap().clone()
        }
    }

    fn soon(secs: u64) -> Instant {
        Instant::now() + Duration::from_secs(secs)
    }

    #[tokio::test]
    async fn a_timed_out_call_does_not_poison_the_next() {
        let f = fake(true);
        let mut s = f.agent().connect(soon(5)).await.unwrap();
        s.ping(Duration::from_secs(5)).await.unwrap();
        // The agent is busy past the deadline: a timeout, not a hang.
        let t = Instant::now();
        let e = s
            .call("test-slow", None, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(e, QgaError::Timeout { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(e.to_string().contains("test-slow"), "{e}");
        // The late reply to test-slow arrives first; the resync skips it.
        let r = s
            .call("test-stale", None, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(r, "fresh");
        // Disabled commands are recognised, and leave the session usable.
        let e = s
            .call("test-disabled", None, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.is_unavailable_command(), "{e}");
        s.ping(Duration::from_secs(5)).await.unwrap();
        drop(s);
        // A later session (another caller) starts clean.
        let mut s = f.agent().connect(soon(5)).await.unwrap();
        s.ping(Duration::from_secs(5)).await.unwrap();
    }

    #[tokio::test]
    async fn a_session_that_ended_in_step_lets_the_next_skip_the_handshake() {
        let f = fake(true);
        let mut s = f.agent().connect(soon(5)).await.unwrap();
        assert!(!s.unconfirmed());
        s.ping(Duration::from_secs(5)).await.unwrap();
        drop(s);
        // Ended in step: no handshake; the first reply confirms the agent.
        let mut s = f.agent().connect(soon(5)).await.unwrap();
        assert!(s.unconfirmed());
        s.ping(Duration::from_secs(5)).await.unwrap();
        assert!(!s.unconfirmed());
        // A call whose future is dropped before its reply: the reply is
        // still coming, so the next session resynchronises.
        let cut = tokio::time::timeout(
            Duration::from_millis(100),
            s.call("test-slow", None, Duration::from_secs(5)),
        )
        .await;
        assert!(cut.is_err());
        drop(s);
        let mut s = f.agent().connect(soon(5)).await.unwrap();
        assert!(!s.unconfirmed());
        s.ping(Duration::from_secs(5)).await.unwrap();
        drop(s);
        // A request that gets no reply is always preceded by a handshake.
        let s = f.agent().connect_synced(soon(5)).await.unwrap();
        drop(s);
        assert_eq!(
            f.seen(),
            [
                "guest-sync-delimited",
                "guest-ping",
                "guest-ping",
                "test-slow",
                "guest-sync-delimited",
                "guest-ping",
                "guest-sync-delimited",
            ]
        );
    }

    #[tokio::test]
    async fn callers_take_turns() {
        let f = fake(true);
        let first = f.agent().connect(soon(5)).await.unwrap();
        let e = f
            .agent()
            .connect(Instant::now() + Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(e, QgaError::Busy { .. }), "{e}");
        drop(first);
        f.agent()
            .connect(soon(5))
            .await
            .unwrap()
            .ping(Duration::from_secs(5))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn requests_to_an_absent_agent_never_run_later() {
        let mut f = fake(false);
        let e = f
            .agent()
            .connect(Instant::now() + Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(e.is_no_answer(), "{e}");
        // The agent starts now: it must not see the request nobody waits for.
        f.answer();
        let mut s = f.agent().connect(soon(5)).await.unwrap();
        s.ping(Duration::from_secs(5)).await.unwrap();
        // Only the second caller's handshake and ping reached it.
        assert_eq!(f.seen(), ["guest-sync-delimited", "guest-ping"]);
    }

    #[tokio::test]
    async fn a_stopped_vm_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        crate::qga::create_channel(dir.path()).unwrap();
        let e = Agent::new(dir.path()).connect(soon(1)).await.unwrap_err();
        assert!(e.to_string().contains("not running"), "{e}");
    }
}
