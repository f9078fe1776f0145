//! Turning a saved migration stream into a snapshot's `memory.raw` +
//! `state.bin`.
//!
//! The source VM saves a plain stream (its RAM is ordinary anonymous
//! memory, so that is all QEMU can do). A helper QEMU with the same
//! devices, whose RAM is the file `memory.raw` mapped shared, loads that
//! stream — writing guest RAM into the file — and saves again with
//! `x-ignore-shared`, which leaves the RAM out: what remains is the device
//! state. The helper never runs the guest. This happens after the source
//! has resumed, so it costs the source nothing.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use super::migrate;
use crate::hypervisor::CommandLine;
use crate::qmp::Qmp;

/// Longest the helper may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest loading or saving may take (a large guest on a slow disk).
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(600);

/// Runs the helper: `cmd` must start QEMU paused with `-incoming defer`,
/// its RAM a shared file, its QMP socket at `qmp_socket` and its log at
/// `log`. Loads `stream`, writes the device state to `state_out`.
/// Returns QEMU's reason on failure.
pub async fn stream_to_memory_file(
    cmd: &CommandLine,
    qmp_socket: &Path,
    log: &Path,
    stream: &Path,
    state_out: &Path,
) -> Result<(), String> {
    let mut child = tokio::process::Command::new(&cmd.program)
        .args(&cmd.args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", cmd.program.display()))?;
    let result = drive(&mut child, qmp_socket, stream, state_out).await;
    if result.is_ok() {
        // The helper quits on its own after `quit`; give it a moment.
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_ok()
        {
            return Ok(());
        }
    }
    let _ = child.start_kill();
    let status = child.wait().await.ok();
    let mut stderr = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut stderr).await;
    }
    let logged = std::fs::read_to_string(log).unwrap_or_default();
    let mut why = result
        .err()
        .unwrap_or_else(|| "the helper did not exit".into());
    for detail in [stderr.trim(), logged.trim()] {
        if !detail.is_empty() {
            why.push_str(&format!("; QEMU: {}", detail.replace('\n', " ")));
        }
    }
    if let Some(s) = status.filter(|s| !s.success()) {
        use std::os::unix::process::ExitStatusExt;
        if s.signal() == Some(libc::SIGBUS) {
            why.push_str(" (killed by SIGBUS writing guest RAM: is the disk full?)");
        }
    }
    Err(why)
}

async fn drive(
    child: &mut tokio::process::Child,
    qmp_socket: &Path,
    stream: &Path,
    state_out: &Path,
) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut qmp = loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the helper QEMU exited at start ({status})"));
        }
        match Qmp::connect(qmp_socket).await {
            Ok(q) => break q,
            Err(e) if Instant::now() > deadline => return Err(e.to_string()),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let input = std::fs::File::open(stream).map_err(|e| format!("{}: {e}", stream.display()))?;
    migrate::load(&mut qmp, &input, TRANSFER_TIMEOUT).await?;
    drop(input);
    migrate::ignore_shared_ram(&mut qmp, true).await?;
    let output = create_private(state_out)?;
    migrate::save(&mut qmp, &output, TRANSFER_TIMEOUT).await?;
    output
        .sync_all()
        .map_err(|e| format!("{}: {e}", state_out.display()))?;
    // The reply may not arrive before QEMU closes the socket.
    let _ = qmp.execute("quit", None).await;
    Ok(())
}

/// Creates (truncating) a file only we can read.
pub(crate) fn create_private(path: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}
