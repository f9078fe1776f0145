//! Typed agent commands, and running a guest process to completion.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use super::{Agent, QgaError, Session};

/// Longest pause between two `guest-exec-status` polls.
const POLL_MAX: Duration = Duration::from_millis(50);
/// How long one process's polling may keep the agent before it lets other
/// callers in between polls.
const HOLD: Duration = Duration::from_millis(50);

/// What `guest-info` says about the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestInfo {
    /// The agent's version.
    pub version: String,
    /// Every command it knows, enabled or not.
    pub commands: Vec<CommandInfo>,
}

/// One command in `guest-info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandInfo {
    /// Its name, e.g. `guest-exec`.
    pub name: String,
    /// Whether the agent's policy allows it.
    pub enabled: bool,
}

impl GuestInfo {
    /// Whether `command` exists and is enabled.
    pub fn is_enabled(&self, command: &str) -> bool {
        self.commands.iter().any(|c| c.name == command && c.enabled)
    }

    /// Names of the enabled commands, sorted.
    pub fn enabled(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .commands
            .iter()
            .filter(|c| c.enabled)
            .map(|c| c.name.clone())
            .collect();
        v.sort();
        v
    }
}

/// A process to start with `guest-exec`.
#[derive(Debug, Clone, Copy)]
pub struct ExecRequest<'a> {
    /// Program (looked up on the agent's `PATH`) and its arguments.
    pub argv: &'a [String],
    /// Bytes for its standard input (closed after them), if any.
    pub input: Option<&'a [u8]>,
}

/// What `guest-exec-status` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecStatus {
    /// Whether the process has ended.
    pub exited: bool,
    /// Its exit code, when it exited normally.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// Captured standard output.
    pub stdout: Vec<u8>,
    /// Captured standard error.
    pub stderr: Vec<u8>,
    /// The agent kept only the first part of stdout (its limit is 16 MiB).
    pub stdout_truncated: bool,
    /// The agent kept only the first part of stderr.
    pub stderr_truncated: bool,
}

fn decode(session: &Session, command: &str, v: Option<&Value>) -> Result<Vec<u8>, QgaError> {
    match v.and_then(Value::as_str) {
        None => Ok(Vec::new()),
        Some(s) => B64.decode(s).map_err(|e| QgaError::Protocol {
            path: session.path().to_path_buf(),
            message: format!("{command}: bad base64 from the agent: {e}"),
        }),
    }
}

impl Session {
    /// `guest-ping`: the agent is there and answering.
    pub async fn ping(&mut self, timeout: Duration) -> Result<(), QgaError> {
        self.call("guest-ping", None, timeout).await.map(drop)
    }

    /// `guest-info`: version and which commands the agent allows.
    pub async fn info(&mut self, timeout: Duration) -> Result<GuestInfo, QgaError> {
        let r = self.call("guest-info", None, timeout).await?;
        let commands = r
            .get("supported_commands")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| {
                        Some(CommandInfo {
                            name: c.get("name")?.as_str()?.to_string(),
                            enabled: c.get("enabled").and_then(Value::as_bool).unwrap_or(false),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(GuestInfo {
            version: r
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            commands,
        })
    }

    /// Runs a command, and when the agent's policy disables it, says which
    /// commands it does allow.
    async fn call_allowed(
        &mut self,
        command: &str,
        args: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, QgaError> {
        match self.call(command, args, timeout).await {
            Err(QgaError::Disabled { path, command, .. }) => {
                let enabled = self
                    .info(timeout)
                    .await
                    .map(|i| i.enabled())
                    .unwrap_or_default();
                Err(QgaError::Disabled {
                    path,
                    command,
                    enabled,
                })
            }
            r => r,
        }
    }

    /// `guest-exec` with captured output; returns the guest PID.
    pub async fn exec(&mut self, req: ExecRequest<'_>, timeout: Duration) -> Result<i64, QgaError> {
        let (path, args) = req.argv.split_first().ok_or_else(|| QgaError::Protocol {
            path: self.path().to_path_buf(),
            message: "guest-exec needs a command".into(),
        })?;
        let mut a = json!({ "path": path, "arg": args, "capture-output": true });
        if let Some(input) = req.input {
            a["input-data"] = Value::String(B64.encode(input));
        }
        let r = self.call_allowed("guest-exec", Some(a), timeout).await?;
        r.get("pid")
            .and_then(Value::as_i64)
            .ok_or_else(|| QgaError::Protocol {
                path: self.path().to_path_buf(),
                message: format!("guest-exec: no pid in {r}"),
            })
    }

    /// `guest-exec-status` of a process `exec` started.
    pub async fn exec_status(
        &mut self,
        pid: i64,
        timeout: Duration,
    ) -> Result<ExecStatus, QgaError> {
        let r = self
            .call_allowed("guest-exec-status", Some(json!({ "pid": pid })), timeout)
            .await?;
        let int = |k: &str| r.get(k).and_then(Value::as_i64).map(|v| v as i32);
        let flag = |k: &str| r.get(k).and_then(Value::as_bool).unwrap_or(false);
        Ok(ExecStatus {
            exited: flag("exited"),
            exit_code: int("exitcode"),
            signal: int("signal"),
            stdout: decode(self, "guest-exec-status", r.get("out-data"))?,
            stderr: decode(self, "guest-exec-status", r.get("err-data"))?,
            stdout_truncated: flag("out-truncated"),
            stderr_truncated: flag("err-truncated"),
        })
    }

    /// `guest-file-open` with an `fopen` mode (`r`, `w`, `a`, ...); returns
    /// the agent's handle.
    pub async fn file_open(
        &mut self,
        path: &str,
        mode: &str,
        timeout: Duration,
    ) -> Result<i64, QgaError> {
        let r = self
            .call_allowed(
                "guest-file-open",
                Some(json!({ "path": path, "mode": mode })),
                timeout,
            )
            .await?;
        r.as_i64().ok_or_else(|| QgaError::Protocol {
            path: self.path().to_path_buf(),
            message: format!("guest-file-open: no handle in {r}"),
        })
    }

    /// `guest-file-read` of up to `count` bytes; returns them and whether
    /// the end of the file was reached.
    pub async fn file_read(
        &mut self,
        handle: i64,
        count: usize,
        timeout: Duration,
    ) -> Result<(Vec<u8>, bool), QgaError> {
        let r = self
            .call_allowed(
                "guest-file-read",
                Some(json!({ "handle": handle, "count": count })),
                timeout,
            )
            .await?;
        let data = decode(self, "guest-file-read", r.get("buf-b64"))?;
        Ok((data, r.get("eof").and_then(Value::as_bool).unwrap_or(false)))
    }

    /// `guest-file-write` of all of `data`.
    pub async fn file_write(
        &mut self,
        handle: i64,
        data: &[u8],
        timeout: Duration,
    ) -> Result<(), QgaError> {
        let r = self
            .call_allowed(
                "guest-file-write",
                Some(json!({ "handle": handle, "buf-b64": B64.encode(data) })),
                timeout,
            )
            .await?;
        match r.get("count").and_then(Value::as_u64) {
            Some(n) if n as usize == data.len() => Ok(()),
            _ => Err(QgaError::Protocol {
                path: self.path().to_path_buf(),
                message: format!(
                    "guest-file-write: short write ({r} of {} bytes)",
                    data.len()
                ),
            }),
        }
    }

    /// `guest-file-close`.
    pub async fn file_close(&mut self, handle: i64, timeout: Duration) -> Result<(), QgaError> {
        self.call_allowed(
            "guest-file-close",
            Some(json!({ "handle": handle })),
            timeout,
        )
        .await
        .map(drop)
    }

    /// `guest-shutdown` (`powerdown`, `halt` or `reboot`). The agent sends
    /// no reply; the guest goes down if its shutdown command works.
    pub async fn shutdown(&mut self, mode: &str, timeout: Duration) -> Result<(), QgaError> {
        self.notify("guest-shutdown", Some(json!({ "mode": mode })), timeout)
            .await
    }
}

/// When [`Agent::wait`] looks at a process again, scaled by how long the
/// `guest-exec` that started it took (the guest's speed: about 6 ms under
/// TCG here, well under 1 ms with KVM). Looking costs the guest CPU time
/// the process itself needs (under TCG the agent and the process share a
/// vCPU), so looks back to back delay a short command's end rather than
/// see it sooner: here `true` ended 2-3 ms after its `guest-exec`
/// returned, and back-to-back looks saw it after 4 looks, 12.4 ms in all;
/// a first look after half the start-up time saw it at once, 10.2 ms in
/// all. After that first look the pause starts at a quarter of the
/// start-up time and grows by half each time, up to [`POLL_MAX`].
#[derive(Debug)]
struct Pacing {
    /// The `guest-exec` round trip; `None` until a look measures one.
    scale: Option<Duration>,
    /// The pause before the last look.
    pause: Duration,
    /// Looks so far.
    looks: u32,
}

impl Pacing {
    fn new(scale: Option<Duration>) -> Self {
        Pacing {
            scale,
            pause: Duration::ZERO,
            looks: 0,
        }
    }

    /// A caller that has no `guest-exec` to go by looks at once and takes
    /// the scale from that look.
    fn observe(&mut self, round_trip: Option<Duration>) {
        if self.scale.is_none() {
            self.scale = round_trip;
        }
    }

    fn next_pause(&mut self) -> Duration {
        let scale = self.scale.unwrap_or(Duration::ZERO);
        self.pause = match self.looks {
            0 => scale / 2,
            1 => scale / 4,
            _ => self.pause * 3 / 2,
        }
        .min(POLL_MAX);
        self.looks += 1;
        self.pause
    }
}

/// Sleeps `d`, to the tenth of a millisecond for short pauses: tokio's
/// timer rounds up to whole milliseconds and fires on the tick after, so a
/// 3.3 ms pause took 5.5 ms there, more than the pacing saves. A short
/// pause waits on a timerfd the runtime polls like any descriptor, so the
/// task wakes on time where it slept. (A sleep on a blocking-pool thread,
/// as before, overshot by 0.3 to 2 ms under TCG: the pool thread, then the
/// worker, each had to be scheduled on cores the guest keeps busy.)
async fn sleep_precisely(d: Duration) {
    const TIMER_IS_FINE: Duration = Duration::from_millis(20);
    if d.is_zero() {
        return;
    }
    if d < TIMER_IS_FINE && precise::sleep(d).await.is_ok() {
        return;
    }
    tokio::time::sleep(d).await;
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod precise {
    use std::os::fd::{AsFd, AsRawFd, RawFd};
    use std::time::Duration;

    use nix::sys::time::TimeSpec;
    use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    /// `AsyncFd` wants `AsRawFd`, which nix's `TimerFd` leaves out.
    struct Timer(TimerFd);

    impl AsRawFd for Timer {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_fd().as_raw_fd()
        }
    }

    /// Completes `d` from now; an error (no timerfd, no runtime to poll
    /// it) leaves the caller to sleep some other way.
    pub(super) async fn sleep(d: Duration) -> std::io::Result<()> {
        let flags = TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC;
        let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, flags)?;
        timer.set(
            Expiration::OneShot(TimeSpec::from_duration(d)),
            TimerSetTimeFlags::empty(),
        )?;
        // SAFETY: the AsyncFd owns the Timer, which owns the timerfd, so the
        // descriptor stays open and the same until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(Timer(timer), Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        let _ready = fd.readable().await?;
        Ok(())
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod precise {
    use std::time::Duration;

    /// On a blocking-pool thread (no timerfd here).
    pub(super) async fn sleep(d: Duration) -> std::io::Result<()> {
        tokio::task::spawn_blocking(move || std::thread::sleep(d))
            .await
            .map_err(std::io::Error::other)
    }
}

impl Agent {
    /// Starts a process (`guest-exec`) and returns its guest PID with the
    /// session, so the caller can tell a failure to start (nothing ran)
    /// from a failure while waiting (it is running).
    pub async fn spawn(
        &self,
        req: ExecRequest<'_>,
        call_timeout: Duration,
    ) -> Result<(i64, Session), QgaError> {
        let mut s = self.connect(Instant::now() + call_timeout).await?;
        let unconfirmed = s.unconfirmed();
        match s.exec(req, call_timeout).await {
            Ok(pid) => Ok((pid, s)),
            // Not "no answer": that would let the caller run the command
            // another way while this request may yet reach the agent.
            Err(e) if unconfirmed && e.is_no_answer() => Err(QgaError::Protocol {
                path: s.path().to_path_buf(),
                message: format!(
                    "guest-exec got no answer ({e}); the agent had answered the session before, \
                     so the command may still start in the guest"
                ),
            }),
            Err(e) => Err(e),
        }
    }

    /// Waits for a process `spawn` started: `guest-exec-status` polls paced
    /// by the guest's own speed, so a quick command costs one or two round
    /// trips and a slow one little agent time.
    /// Each agent call has `call_timeout`; the process itself may run as
    /// long as it needs, and a long run lets other callers use the agent
    /// between its polls. If the caller stops waiting, the process keeps
    /// running in the guest.
    pub async fn wait(
        &self,
        pid: i64,
        session: Option<Session>,
        call_timeout: Duration,
    ) -> Result<ExecStatus, QgaError> {
        let mut session = session;
        let mut pacing = Pacing::new(session.as_ref().and_then(Session::last_round_trip));
        loop {
            sleep_precisely(pacing.next_pause()).await;
            let s = match session.as_mut() {
                Some(s) => s,
                None => session.insert(self.connect(Instant::now() + call_timeout).await?),
            };
            let st = s.exec_status(pid, call_timeout).await?;
            if st.exited {
                return Ok(st);
            }
            pacing.observe(s.last_round_trip());
            if s.age() >= HOLD {
                session = None;
            }
        }
    }

    /// [`Self::spawn`] then [`Self::wait`].
    pub async fn run(
        &self,
        req: ExecRequest<'_>,
        call_timeout: Duration,
    ) -> Result<ExecStatus, QgaError> {
        let (pid, s) = self.spawn(req, call_timeout).await?;
        self.wait(pid, Some(s), call_timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_starts_at_half_the_start_up_time_and_grows_by_half() {
        let ms = Duration::from_millis;
        let mut p = Pacing::new(Some(ms(8)));
        let got: Vec<_> = (0..5).map(|_| p.next_pause()).collect();
        assert_eq!(
            got,
            [
                ms(4),
                ms(2),
                ms(3),
                Duration::from_micros(4500),
                Duration::from_micros(6750)
            ]
        );
        let mut slow = Pacing::new(Some(ms(400)));
        assert_eq!(
            slow.next_pause(),
            POLL_MAX,
            "never more than POLL_MAX apart"
        );
        // Without a guest-exec to go by: look at once, then pace by that look.
        let mut p = Pacing::new(None);
        assert_eq!(p.next_pause(), Duration::ZERO);
        p.observe(Some(ms(2)));
        assert_eq!(p.next_pause(), Duration::from_micros(500));
    }

    /// The timerfd pause really waits (never less than asked), on both
    /// kinds of runtime (the CLI's one thread, the libraries' pool), and a
    /// long pause still goes to tokio's timer.
    #[test]
    fn precise_sleeps_wait_at_least_as_long_as_asked() {
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let pool = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        for rt in [&current, &pool] {
            for d in [
                Duration::from_micros(300),
                Duration::from_millis(3),
                Duration::from_millis(25),
            ] {
                let t = Instant::now();
                rt.block_on(sleep_precisely(d));
                assert!(t.elapsed() >= d, "{d:?} took only {:?}", t.elapsed());
            }
            assert!(rt
                .block_on(precise::sleep(Duration::from_millis(1)))
                .is_ok());
        }
    }
}
