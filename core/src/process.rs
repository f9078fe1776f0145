//! Hypervisor process identity and liveness.
//!
//! A PID alone is not an identity: after a VM exits its PID can be reused by
//! any process. We record the process start time and compare it before
//! trusting or signalling a PID, and we treat zombies as dead (a daemonized
//! QEMU lingers as a zombie for a while before init reaps it).

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// Start time of `pid` in clock ticks since boot (`/proc/<pid>/stat` field
/// 22), or `None` if the process does not exist.
#[cfg(target_os = "linux")]
pub fn start_time(pid: i32) -> Option<u64> {
    let (_, fields) = stat_fields(pid)?;
    // Fields after the command name start at field 3 (state).
    fields.get(19)?.parse().ok()
}

/// Process start time is not available without /proc; identity then rests
/// on the command line check.
#[cfg(not(target_os = "linux"))]
pub fn start_time(_pid: i32) -> Option<u64> {
    None
}

#[cfg(target_os = "linux")]
fn stat_fields(pid: i32) -> Option<(String, Vec<String>)> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or
    // parentheses, so split at the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let rest = stat[close + 1..]
        .split_whitespace()
        .map(str::to_string)
        .collect();
    Some((comm, rest))
}

/// Whether `pid` exists and has not exited (zombies count as exited).
pub fn is_alive(pid: i32) -> bool {
    #[cfg(target_os = "linux")]
    {
        match stat_fields(pid) {
            Some((_, f)) => !matches!(f.first().map(String::as_str), Some("Z" | "X" | "x")),
            None => false,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        pid > 0 && signal::kill(Pid::from_raw(pid), None).is_ok()
    }
}

/// The process's command line, NUL-separated arguments joined by spaces.
pub fn cmdline(pid: i32) -> Option<String> {
    Some(
        args(pid)?
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The process's arguments, program first, exactly as it was started
/// (`None` where /proc is not available).
pub fn args(pid: i32) -> Option<Vec<std::ffi::OsString>> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(&raw);
        Some(
            raw.split(|b| *b == 0)
                .map(|a| std::ffi::OsStr::from_bytes(a).to_os_string())
                .collect(),
        )
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// PIDs of live processes (zombies excluded) that have `arg` as one whole
/// argument. A container's private pid-file path is such an argument of
/// every hypervisor process started for it, so this finds a hypervisor
/// whose PID was never recorded. Empty where there is no `/proc`.
pub fn find_with_arg(arg: &std::ffi::OsStr) -> Vec<i32> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let me = std::process::id() as i32;
        dir.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != me)
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|raw| raw.split(|b| *b == 0).any(|a| a == arg.as_bytes()))
            })
            .filter(|pid| is_alive(*pid))
            .collect()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = arg;
        Vec::new()
    }
}

/// What we know about the process a container record points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity<'a> {
    /// Recorded PID.
    pub pid: i32,
    /// Recorded start time, when this runtime started the process.
    pub start_time: Option<u64>,
    /// A string the process's command line must contain when no start time
    /// was recorded (files written by go-container).
    pub marker: &'a str,
}

impl Identity<'_> {
    /// Whether the recorded process is alive and is still the same process.
    pub fn is_current(&self) -> bool {
        if !is_alive(self.pid) {
            return false;
        }
        match self.start_time {
            Some(t) => start_time(self.pid) == Some(t),
            None => match cmdline(self.pid) {
                Some(c) => c.contains(self.marker),
                // Without /proc we cannot tell; assume alive is ours.
                None => !cfg!(target_os = "linux"),
            },
        }
    }

    /// Sends `sig` only if the process is still the recorded one. Returns
    /// whether a signal was sent.
    pub fn signal(&self, sig: Signal) -> bool {
        self.is_current() && signal::kill(Pid::from_raw(self.pid), sig).is_ok()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reused_pid_is_not_our_process_and_is_never_signalled() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let real = start_time(pid).unwrap();
        let ours = Identity {
            pid,
            start_time: Some(real),
            marker: "sleep",
        };
        assert!(ours.is_current());
        // A record whose start time differs models the PID now belonging to
        // another process: it must be neither alive-as-ours nor signalled.
        let stale = Identity {
            pid,
            start_time: Some(real + 1),
            marker: "sleep",
        };
        assert!(!stale.is_current());
        assert!(!stale.signal(Signal::SIGKILL));
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(child.try_wait().unwrap(), None, "the process was signalled");
        // Legacy records without a start time are checked by command line.
        let legacy = Identity {
            pid,
            start_time: None,
            marker: "qemu-system",
        };
        assert!(!legacy.signal(Signal::SIGKILL));
        assert!(ours.signal(Signal::SIGKILL));
        child.wait().unwrap();
        assert!(!is_alive(pid));
    }

    #[test]
    fn zombie_counts_as_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        std::thread::sleep(std::time::Duration::from_millis(200));
        // Not yet reaped: a zombie, and kill(pid, 0) would still succeed.
        assert!(signal::kill(Pid::from_raw(pid), None).is_ok());
        assert!(!is_alive(pid));
        child.wait().unwrap();
    }
}
