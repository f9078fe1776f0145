//! A foreground hypervisor: a child of the calling process that lives no
//! longer than its caller.
//!
//! On Linux the child asks the kernel for SIGKILL when its parent dies
//! (`PR_SET_PDEATHSIG`). That signal fires when the *thread* that forked
//! the child exits, not the process, and async runtimes fork from pooled
//! worker threads that come and go. So the child is forked by a dedicated
//! thread that then waits for it: the thread outlives the child unless the
//! whole process dies, which is exactly when the VM must die too.
//!
//! The same thread records the outcome when nobody is left to do it (the
//! `run` future was dropped): the record then still tells how the VM ended.

use std::io::Read;
use std::process::{ExitStatus, Stdio};

use chrono::Utc;
use nix::sys::signal::Signal;
use tokio::sync::oneshot;

use crate::container::{Container, Status};
use crate::hypervisor::CommandLine;
use crate::process::Identity;
use crate::state::StateStore;

/// How much of the hypervisor's stderr is kept (the end matters most).
const STDERR_KEEP: usize = 16 * 1024;

/// How a foreground hypervisor exited.
#[derive(Debug)]
pub(super) struct Exit {
    /// Its wait status.
    pub status: ExitStatus,
    /// The end of what it wrote to stderr.
    pub stderr: String,
}

/// A running foreground hypervisor.
#[derive(Debug)]
pub(super) struct Foreground {
    /// Its PID.
    pub pid: i32,
    /// Resolves once it has exited.
    pub exit: oneshot::Receiver<std::io::Result<Exit>>,
    guard: CancelGuard,
}

impl Foreground {
    /// The exit is being handled by the caller: dropping `self` no longer
    /// terminates the hypervisor.
    pub fn disarm(&mut self) {
        self.guard.armed = false;
    }
}

/// Terminates the hypervisor when the future driving it is dropped.
#[derive(Debug)]
struct CancelGuard {
    ident: Identity<'static>,
    armed: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if self.armed {
            // QEMU exits cleanly on SIGTERM (flushing its disks); the
            // waiting thread records how it ended.
            self.ident.signal(Signal::SIGTERM);
        }
    }
}

/// Starts `cmd` as a foreground hypervisor for container `id`.
pub(super) async fn spawn(
    cmd: &CommandLine,
    state: StateStore,
    id: String,
) -> std::io::Result<Foreground> {
    let mut command = std::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // Its own process group: a terminal's Ctrl-C reaches the caller, which
    // decides how to stop the VM, instead of killing QEMU under it.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    die_with_parent(&mut command);
    let (spawned_tx, spawned_rx) = oneshot::channel();
    let (exit_tx, exit_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("vmc-{id}"))
        .spawn(move || {
            let mut child = match command.spawn() {
                Ok(c) => c,
                Err(e) => {
                    let _ = spawned_tx.send(Err(e));
                    return;
                }
            };
            let pid = child.id() as i32;
            let _ = spawned_tx.send(Ok(pid));
            let mut stderr = Vec::new();
            if let Some(mut err) = child.stderr.take() {
                let mut buf = [0u8; 4096];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    stderr.extend_from_slice(&buf[..n]);
                    if stderr.len() > 2 * STDERR_KEEP {
                        stderr.drain(..stderr.len() - STDERR_KEEP);
                    }
                }
            }
            let exit = child.wait().map(|status| Exit {
                status,
                stderr: String::from_utf8_lossy(
                    &stderr[stderr.len().saturating_sub(STDERR_KEEP)..],
                )
                .into_owned(),
            });
            if let Err(Ok(exit)) = exit_tx.send(exit) {
                // The run was cancelled: nobody else will record this.
                let _ = state.update(|s| {
                    if let Some(c) = s.containers.get_mut(&id) {
                        if c.pid == pid && c.status.is_active() {
                            record_exit(c, &exit, Some("the foreground run was cancelled"));
                        }
                    }
                    Ok::<_, crate::state::StateError>(())
                });
            }
        })?;
    let pid = spawned_rx
        .await
        .map_err(|_| std::io::Error::other("the hypervisor thread ended early"))??;
    Ok(Foreground {
        pid,
        exit: exit_rx,
        guard: CancelGuard {
            ident: Identity {
                pid,
                start_time: crate::process::start_time(pid),
                marker: "",
            },
            armed: true,
        },
    })
}

/// Asks the kernel to SIGKILL the child when the thread that forked it
/// exits, and closes the race where that already happened before the
/// request.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as i32;
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (prctl, getppid); it allocates
    // nothing, and its error is built from a raw OS code.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
            if nix::unistd::getppid().as_raw() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Elsewhere the next command's reconciliation kills a foreground VM whose
/// caller is gone.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut std::process::Command) {}

/// Records how a hypervisor ended from its wait status and stderr; `cause`
/// says why it was stopped when the caller knows.
pub(super) fn record_exit(c: &mut Container, exit: &Exit, cause: Option<&str>) {
    use std::os::unix::process::ExitStatusExt;
    let last_line = exit
        .stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(str::trim)
        .unwrap_or("");
    let (status, code, signal, what) = match (exit.status.code(), exit.status.signal()) {
        (Some(0), _) => match super::reconcile::signal_line_in(&exit.stderr) {
            Some((n, line)) => (Status::Killed, None, Some(n), line),
            None => (
                Status::Stopped,
                Some(0),
                None,
                "the hypervisor exited cleanly (the guest powered off or QEMU was told to quit)"
                    .to_string(),
            ),
        },
        (Some(n), _) => (
            Status::Error,
            Some(n),
            None,
            if last_line.is_empty() {
                format!("the hypervisor exited with code {n}")
            } else {
                format!("the hypervisor exited with code {n}: {last_line}")
            },
        ),
        (None, Some(sig)) => (
            Status::Killed,
            None,
            Some(sig),
            format!(
                "the hypervisor was killed by signal {sig}{}",
                signal_name(sig)
            ),
        ),
        (None, None) => (Status::Error, None, None, exit.status.to_string()),
    };
    c.status = status;
    c.exit_code = code;
    c.exit_signal = signal;
    c.exit_reason = Some(match cause {
        Some(cause) => format!("{cause}: {what}"),
        None => what,
    });
    c.owner = None;
    c.stopped_at = Some(Utc::now());
}

/// " (SIGKILL)" and the like, or nothing for an unknown number.
pub(super) fn signal_name(sig: i32) -> String {
    Signal::try_from(sig)
        .map(|s| format!(" ({})", s.as_str()))
        .unwrap_or_default()
}
