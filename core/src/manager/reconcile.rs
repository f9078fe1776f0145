//! Bringing a record in line with the processes it names.
//!
//! A record can be left behind by a process that died part-way (a killed
//! `run`, a crashed program) or describe a VM that ended on its own. The
//! next command that reads it sets it right:
//!
//! - `starting` whose owner (the process starting it) is gone: the start
//!   was interrupted. Any hypervisor started for it is found (recorded PID,
//!   pid file, or a process whose arguments name its private pid file) and
//!   killed, so no VM runs without a record saying so; the record becomes
//!   `error` with the reason.
//! - `running` whose hypervisor is gone: how it ended is read from what the
//!   hypervisor left. QEMU removes its pid file when it exits cleanly
//!   (guest power-off, `quit`, SIGTERM/SIGINT/SIGHUP) and says in its log
//!   (`-D`) when a signal made it quit; a pid file still there means it was
//!   killed outright (SIGKILL, the OOM killer) or crashed. Clean →
//!   `stopped`; signal or kill → `killed`, with the signal when known.
//! - `running` whose owner (the foreground `run` it belongs to) is gone but
//!   whose hypervisor is not: it was meant to die with its caller, so it is
//!   killed and recorded as `killed`.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use nix::sys::signal::Signal;

use super::identity;
use crate::container::{Container, Status};
use crate::hypervisor::{hypervisor_log, pid_file};
use crate::process;

/// Whether `c` describes something that is no longer true.
pub(super) fn is_stale(c: &Container) -> bool {
    let owner_gone = c.owner.is_some_and(|o| !o.is_alive());
    match c.status {
        // Nobody is starting one without an owner either.
        Status::Starting => c.owner.is_none_or(|o| !o.is_alive()),
        Status::Running => owner_gone || !identity(c).is_current(),
        _ => false,
    }
}

/// Sets `c` right (see the module documentation). Call under the state
/// lock, after [`is_stale`] said so.
pub(super) fn reconcile(c: &mut Container) {
    if !is_stale(c) {
        return;
    }
    let owner = c.owner.take();
    let now = Some(Utc::now());
    match c.status {
        Status::Starting => {
            let killed = kill_hypervisors(c);
            c.status = Status::Error;
            c.exit_code = None;
            c.exit_signal = None;
            c.exit_reason = Some(format!(
                "start interrupted: the process starting it (pid {}) exited before the VM was up{}",
                owner.map(|o| o.pid).unwrap_or_default(),
                killed_note(&killed)
            ));
        }
        _ if identity(c).is_current() => {
            // Alive, but the foreground run it belongs to is gone.
            let killed = kill_hypervisors(c);
            c.status = Status::Killed;
            c.exit_code = None;
            c.exit_signal = Some(Signal::SIGKILL as i32);
            c.exit_reason = Some(format!(
                "its foreground run (pid {}) exited, so the VM was killed with it{}",
                owner.map(|o| o.pid).unwrap_or_default(),
                killed_note(&killed)
            ));
        }
        _ => {
            let (status, mut signal, mut reason) = how_it_ended(c);
            if let (Some(o), Status::Killed, None) = (owner, status, signal) {
                // Killed outright, with its owner gone: the kernel's
                // parent-death SIGKILL (or our own, elsewhere).
                reason = format!(
                    "its foreground run (pid {}) ended, so the hypervisor (pid {}) was killed with it",
                    o.pid, c.pid
                );
                signal = Some(Signal::SIGKILL as i32);
            }
            c.status = status;
            c.exit_code = None;
            c.exit_signal = signal;
            c.exit_reason = Some(reason);
        }
    }
    if c.stopped_at.is_none() || c.stopped_at < Some(c.started_at) {
        c.stopped_at = now;
    }
}

fn killed_note(pids: &BTreeSet<i32>) -> String {
    if pids.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
        format!("; its hypervisor (pid {}) was killed", list.join(", "))
    }
}

/// Kills every hypervisor process started for `c`: the recorded one and
/// any process whose arguments name its private pid file (a daemonizing
/// QEMU forks, so until it writes that file its PID is known nowhere).
/// Scans again until none is left: a parent killed mid-fork may leave a
/// child that the first scan missed.
pub(super) fn kill_hypervisors(c: &Container) -> BTreeSet<i32> {
    let mut killed = BTreeSet::new();
    let ident = identity(c);
    if ident.signal(Signal::SIGKILL) {
        killed.insert(c.pid);
    }
    let Some(rd) = &c.runtime_dir else {
        return killed;
    };
    let pid_path = pid_file(rd);
    for _ in 0..50 {
        let found: Vec<i32> = process::find_with_arg(pid_path.as_os_str())
            .into_iter()
            .filter(|p| process::cmdline(*p).is_some_and(|l| l.contains(ident.marker)))
            .collect();
        if found.is_empty() {
            break;
        }
        for pid in found {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            killed.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    killed
}

/// How a hypervisor that is no longer running ended, from the traces it
/// left: (status, signal, reason).
fn how_it_ended(c: &Container) -> (Status, Option<i32>, String) {
    let Some(rd) = &c.runtime_dir else {
        return (Status::Stopped, None, "the hypervisor exited".into());
    };
    let pid_in_file = std::fs::read_to_string(pid_file(rd))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok());
    if c.pid > 0 && pid_in_file == Some(c.pid) {
        return (
            Status::Killed,
            None,
            format!(
                "the hypervisor (pid {}) was killed or crashed: it ended without exiting cleanly",
                c.pid
            ),
        );
    }
    if let Some((signal, line)) = signal_line(&hypervisor_log(rd)) {
        return (Status::Killed, Some(signal), line);
    }
    (
        Status::Stopped,
        None,
        "the hypervisor exited cleanly (the guest powered off or QEMU was told to quit)".into(),
    )
}

/// The last "terminating on signal N" line QEMU wrote to `log`, with N.
fn signal_line(log: &std::path::Path) -> Option<(i32, String)> {
    let text = std::fs::read(log).ok()?;
    // Only the tail matters, and the file is the hypervisor's own.
    let tail = &text[text.len().saturating_sub(64 * 1024)..];
    signal_line_in(&String::from_utf8_lossy(tail))
}

/// The last "terminating on signal N" line in QEMU's output, with N.
pub(super) fn signal_line_in(text: &str) -> Option<(i32, String)> {
    text.lines().rev().find_map(|l| {
        let at = l.find("terminating on signal ")?;
        let n = l[at + "terminating on signal ".len()..]
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()?;
        Some((n, l.trim().to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_signal_lines_are_found() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("hypervisor.log");
        assert!(signal_line(&log).is_none());
        std::fs::write(
            &log,
            "warning: x\nqemu-system-x86_64: terminating on signal 15 from pid 77 (kill)\n",
        )
        .unwrap();
        let (n, line) = signal_line(&log).unwrap();
        assert_eq!(n, 15);
        assert!(line.contains("from pid 77 (kill)"), "{line}");
    }

    fn record(rd: &std::path::Path, pid: i32) -> Container {
        let mut c: Container = serde_json::from_value(serde_json::json!({
            "id": "0a1b2c3d", "image": "/x.iso", "status": "running",
            "pid": pid, "started_at": "2025-01-01T00:00:00Z"
        }))
        .unwrap();
        c.runtime_dir = Some(rd.to_path_buf());
        c.pid_start_time = Some(1);
        c
    }

    #[test]
    fn the_traces_a_hypervisor_leaves_tell_how_it_ended() {
        let d = tempfile::tempdir().unwrap();
        // Pid file left behind: killed outright.
        std::fs::write(pid_file(d.path()), "4242\n").unwrap();
        let mut c = record(d.path(), 4242);
        reconcile(&mut c);
        assert_eq!(c.status, Status::Killed);
        assert!(c
            .exit_reason
            .as_deref()
            .unwrap()
            .contains("killed or crashed"));
        // Pid file removed, a signal line in the log: killed by that signal.
        std::fs::remove_file(pid_file(d.path())).unwrap();
        std::fs::write(
            hypervisor_log(d.path()),
            "qemu-system-x86_64: terminating on signal 2 from pid 9 (sh)\n",
        )
        .unwrap();
        let mut c = record(d.path(), 4242);
        reconcile(&mut c);
        assert_eq!((c.status, c.exit_signal), (Status::Killed, Some(2)));
        // Neither: a clean exit.
        std::fs::write(hypervisor_log(d.path()), "").unwrap();
        let mut c = record(d.path(), 4242);
        reconcile(&mut c);
        assert_eq!((c.status, c.exit_signal), (Status::Stopped, None));
        assert!(c.stopped_at.is_some());
    }
}
