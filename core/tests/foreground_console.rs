//! The library's foreground `run` copies the serial console to the
//! caller's stdout when asked (`RunOptions::console_to_stdout`), as
//! go-container's foreground `Run` did. Boots the test guest once under
//! QEMU; fails, never skips, when QEMU or the guest is missing.

mod common;

use common::guest;

use std::io::Read;
use std::time::{Duration, Instant};

use vmcontainer::home::Home;
use vmcontainer::{LinuxKitManager, RunOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_run_copies_the_serial_console_to_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let m = LinuxKitManager::new(Home::new(tmp.path().join("home"))).unwrap();
    // This process's stdout becomes a pipe for the run, drained by a thread
    // (a full pipe would stall the console copy).
    let (mut reader, writer) = std::io::pipe().unwrap();
    let saved = nix::unistd::dup(std::io::stdout()).unwrap();
    nix::unistd::dup2_stdout(&writer).unwrap();
    drop(writer);
    let drained = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = reader.read_to_end(&mut all);
        all
    });
    // Stop the VM once its log shows it is up.
    let stopper = {
        let m = m.clone();
        let log = tmp.path().join("home/logs");
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(240);
            loop {
                let up = std::fs::read_dir(&log)
                    .ok()
                    .and_then(|mut d| d.next())
                    .and_then(|e| std::fs::read_to_string(e.ok()?.path()).ok());
                if up.is_some_and(|l| l.contains("VMTEST READY")) {
                    break;
                }
                assert!(Instant::now() < deadline, "the guest never became ready");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            m.stop("fg", Duration::from_secs(10)).await.unwrap();
        })
    };
    let run = m
        .run(
            &guest().join("vmtest-kernel"),
            RunOptions {
                name: Some("fg".into()),
                detach: false,
                memory: Some(256),
                console_to_stdout: true,
                ..Default::default()
            },
        )
        .await;
    nix::unistd::dup2_stdout(&saved).unwrap();
    let copied = String::from_utf8_lossy(&drained.join().unwrap()).into_owned();
    stopper.await.unwrap();
    let c = run.unwrap();
    assert_eq!(c.status.as_str(), "stopped", "{c:?}");
    // What the guest wrote to its console reached stdout, as in the log.
    assert!(copied.contains("VMTEST READY"), "stdout got:\n{copied}");
    let log = m.logs("fg").unwrap();
    assert!(
        String::from_utf8_lossy(&log).contains("VMTEST READY"),
        "the log still gets it"
    );
}
