//! Waiting on another process never stalls the async runtime: while a
//! second process holds the state file's lock, manager calls wait for it on
//! a blocking thread, and other tasks on the same (single-threaded) runtime
//! keep running.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use vmcontainer::{Home, LinuxKitManager};

/// Holds the lock in another process (flock is per open file, so another
/// process is what the runtime really contends with).
fn hold_lock(path: &std::path::Path, secs: f64) -> std::process::Child {
    let child = Command::new("flock")
        .arg(path)
        .args(["sleep", &secs.to_string()])
        .spawn()
        .expect("flock(1) from util-linux");
    // Until the lock is taken, nothing is being tested.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while Command::new("flock")
        .args(["-n", "-E", "99"])
        .arg(path)
        .arg("true")
        .status()
        .unwrap()
        .code()
        != Some(99)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "flock never took the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

#[test]
fn a_held_state_lock_does_not_block_other_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::new(dir.path());
    std::fs::write(
        home.state_path(),
        r#"{"containers": {"0a1b2c3d": {"id": "0a1b2c3d", "image": "/x.iso",
            "status": "stopped", "pid": 0, "started_at": "2025-01-01T00:00:00Z"}}}"#,
    )
    .unwrap();
    let m = LinuxKitManager::new(home.clone()).unwrap();
    let mut holder = hold_lock(&dir.path().join("containers.json.lock"), 1.5);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let t = ticks.clone();
    let removed = rt.block_on(async move {
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                t.fetch_add(1, Ordering::SeqCst);
            }
        });
        let r = m.remove("0a1b2c3d", false).await;
        ticker.abort();
        r
    });
    holder.wait().unwrap();
    assert_eq!(removed.unwrap().id, "0a1b2c3d");
    // ~30 ticks fit in the 1.5 s the lock was held; a runtime blocked in
    // flock(2) would have run none until it was released.
    let n = ticks.load(Ordering::SeqCst);
    assert!(
        n >= 10,
        "only {n} ticks while another process held the lock"
    );
}
