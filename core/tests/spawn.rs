//! Processes in a container (`LinuxKitManager::spawn`) against the real
//! test guest under QEMU: one VM for the whole binary, every case in turn.
//! Fails, never skips, when QEMU or the guest is missing.
//!
//! `VMCONTAINER_SPAWN_TEST_HOME` + `VMCONTAINER_SPAWN_TEST_ID` reuse a
//! running container instead of booting one (for iterating by hand).

mod common;

use common::guest;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vmcontainer::home::Home;
use vmcontainer::{Error, ExitStatus, LinuxKitManager, RunOptions, SpawnOptions};

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn sh(script: &str) -> Vec<String> {
    argv(&["sh", "-c", script])
}

/// Removes the container when the test ends, however it ends.
struct Cleanup(Option<(LinuxKitManager, String)>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some((m, id)) = self.0.take() {
            // On a thread of its own: this runs inside the test's runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Runtime::new().unwrap();
                let _ = rt.block_on(m.remove(&id, true));
            })
            .join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_processes_stream_signal_and_run_side_by_side() {
    let tmp = tempfile::tempdir().unwrap();
    let reuse = std::env::var("VMCONTAINER_SPAWN_TEST_HOME").ok();
    let reused = reuse.is_some();
    let (m, id, _cleanup) = match reuse {
        Some(h) => {
            let m = LinuxKitManager::new(Home::new(PathBuf::from(h))).unwrap();
            let id = std::env::var("VMCONTAINER_SPAWN_TEST_ID").unwrap();
            (m, id, Cleanup(None))
        }
        None => {
            let m = LinuxKitManager::new(Home::new(tmp.path().join("home"))).unwrap();
            let g = guest();
            let c = m
                .run(
                    &g.join("vmtest-kernel"),
                    RunOptions {
                        ssh_key: Some(g.join("id_ed25519")),
                        memory: Some(256),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let cleanup = Cleanup(Some((m.clone(), c.id.clone())));
            m.wait_ready(&c.id, Duration::from_secs(240)).await.unwrap();
            (m, c.id, cleanup)
        }
    };
    let none = SpawnOptions::default();

    // Streaming: the line printed before the sleep arrives before it ends.
    let t = Instant::now();
    let mut p = m
        .spawn(&id, &sh("echo first; sleep 4; echo second"), &none)
        .await
        .unwrap();
    let mut out = p.take_stdout().unwrap();
    let mut buf = [0u8; 64];
    let n = out.read(&mut buf).await.unwrap();
    let first_at = t.elapsed();
    assert_eq!(&buf[..n], b"first\n");
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).await.unwrap();
    let all_at = t.elapsed();
    assert_eq!(rest, b"second\n");
    assert!(
        all_at - first_at >= Duration::from_secs(3),
        "first line at {first_at:?}, end at {all_at:?}: not streamed"
    );
    assert_eq!(p.wait().await.unwrap(), ExitStatus::Code(0));

    // 1 MiB of stdin arrives intact; stderr is separate; exit code kept.
    let data: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    let mut p = m
        .spawn(
            &id,
            &sh("tee /tmp/spawn-in | md5sum; wc -c < /tmp/spawn-in >&2; rm /tmp/spawn-in; exit 3"),
            &none,
        )
        .await
        .unwrap();
    let mut stdin = p.take_stdin().unwrap();
    let d = data.clone();
    let writer = tokio::spawn(async move {
        stdin.write_all(&d).await.unwrap();
        stdin.shutdown().await.unwrap();
    });
    let (st, out, err) = p.output().await.unwrap();
    writer.await.unwrap();
    let want = md5_of(&data);
    assert_eq!(
        String::from_utf8_lossy(&out).split_whitespace().next(),
        Some(&want[..])
    );
    assert_eq!(String::from_utf8_lossy(&err).trim(), "1048576");
    assert_eq!(st, ExitStatus::Code(3));

    // Environment, working directory and user.
    let opts = SpawnOptions {
        env: vec![("GREETING".into(), "it's $HOME `x`".into())],
        cwd: Some("/tmp".into()),
        user: Some("root".into()),
        ..Default::default()
    };
    let p = m
        .spawn(
            &id,
            &sh(r#"printf '%s|%s|%s' "$GREETING" "$(pwd)" "$(id -u)""#),
            &opts,
        )
        .await
        .unwrap();
    let (st, out, _) = p.output().await.unwrap();
    assert!(st.success());
    assert_eq!(String::from_utf8_lossy(&out), "it's $HOME `x`|/tmp|0");
    let bad_dir = SpawnOptions {
        cwd: Some("/no/such dir".into()),
        ..Default::default()
    };
    let (st, _, err) = m
        .spawn(&id, &argv(&["true"]), &bad_dir)
        .await
        .unwrap()
        .output()
        .await
        .unwrap();
    assert!(!st.success());
    assert!(String::from_utf8_lossy(&err).contains("/no/such dir"));
    let bad_env = SpawnOptions {
        env: vec![("A B".into(), "x".into())],
        ..Default::default()
    };
    let e = m.spawn(&id, &argv(&["true"]), &bad_env).await.unwrap_err();
    assert!(e.to_string().contains("A B"), "{e}");

    // A signal ends it (and everything it started) and is reported.
    let mut p = m
        .spawn(&id, &sh("sleep 300 & sleep 300; echo never"), &none)
        .await
        .unwrap();
    let pid = p.pid();
    p.kill(15).await.unwrap();
    assert_eq!(p.wait().await.unwrap(), ExitStatus::Signal(15));
    let left = m
        .exec(&id, &sh(&format!("ps -o pgid,comm | awk '$1 == {pid}'")))
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&left.stdout).trim(),
        "",
        "group left behind"
    );

    // A PTY: `tty` sees a terminal, and a resize reaches `stty size`.
    let tty = SpawnOptions {
        tty: true,
        ..Default::default()
    };
    let mut p = m
        .spawn(&id, &sh("tty; read x; stty size"), &tty)
        .await
        .unwrap();
    let control = p.control();
    control.resize(100, 31).await.unwrap();
    let mut stdin = p.take_stdin().unwrap();
    stdin.write_all(b"go\n").await.unwrap();
    let (st, out, _) = p.output().await.unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(st.success(), "{out}");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("31 100"), "{out}");
    drop(stdin);
    let (_, out, _) = m
        .spawn(&id, &argv(&["tty"]), &none)
        .await
        .unwrap()
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out).contains("not a tty"));

    // A timeout kills it and says so.
    let t = Instant::now();
    let timed = SpawnOptions {
        timeout: Some(Duration::from_secs(2)),
        ..Default::default()
    };
    let mut p = m
        .spawn(&id, &argv(&["sleep", "300"]), &timed)
        .await
        .unwrap();
    match p.wait().await {
        Err(Error::Timeout { what, .. }) => assert!(what.contains("sleep"), "{what}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(60));

    // Dropped without waiting: killed in the guest.
    let p = m.spawn(&id, &argv(&["sleep", "301"]), &none).await.unwrap();
    drop(p);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ps = m.exec(&id, &argv(&["ps", "-o", "args"])).await.unwrap();
        if !String::from_utf8_lossy(&ps.stdout).contains("sleep 301") {
            break;
        }
        assert!(Instant::now() < deadline, "a dropped process kept running");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 20 at once in one container, each with its own output.
    let runs = (0..20).map(|i| {
        let m = m.clone();
        let id = id.clone();
        async move {
            let p = m
                .spawn(
                    &id,
                    &sh(&format!("sleep 2; echo proc-{i}")),
                    &SpawnOptions::default(),
                )
                .await
                .unwrap();
            let (st, out, _) = p.output().await.unwrap();
            assert!(st.success());
            assert_eq!(String::from_utf8_lossy(&out), format!("proc-{i}\n"));
        }
    });
    futures_join_all(runs).await;

    attached_sessions(&m, &id).await;

    // A stopped container is refused with its name.
    let e = m
        .spawn("no-such-container", &argv(&["true"]), &none)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no-such-container"), "{e}");

    // Writing to a process that has ended (its stdin closed in the guest)
    // is an error, not a hang.
    let mut p = m.spawn(&id, &argv(&["true"]), &none).await.unwrap();
    let mut stdin = p.take_stdin().unwrap();
    assert_eq!(p.wait().await.unwrap(), ExitStatus::Code(0));
    let chunk = vec![b'x'; 64 * 1024];
    let write = async {
        for _ in 0..64 {
            stdin.write_all(&chunk).await?;
            stdin.flush().await?;
        }
        std::io::Result::Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(60), write).await {
        Ok(Err(_)) => {}
        Ok(Ok(())) => panic!("4 MiB written to a process that had ended"),
        Err(_) => panic!("a write to an ended process hung"),
    }

    if !reused {
        guest_gone_mid_stream(&m, &id).await;
    }
}

/// The last case, as it kills the VM: a guest that goes away while a
/// process streams ends the stream and makes `wait` an error naming the
/// command, within seconds, never a hang.
async fn guest_gone_mid_stream(m: &LinuxKitManager, id: &str) {
    let mut p = m
        .spawn(
            id,
            &sh("while :; do echo tick; sleep 0.2; done"),
            &SpawnOptions::default(),
        )
        .await
        .unwrap();
    let mut out = p.take_stdout().unwrap();
    let mut buf = [0u8; 64];
    let n = out.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("tick"));
    let pid = m.get(id).unwrap().pid;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let gone = Instant::now();
    let drain = async {
        let mut rest = Vec::new();
        let _ = out.read_to_end(&mut rest).await;
        p.wait().await
    };
    match tokio::time::timeout(Duration::from_secs(60), drain).await {
        Ok(Err(e)) => assert!(e.to_string().contains("while :"), "{e}"),
        Ok(Ok(st)) => panic!("the guest went away and wait said {st:?}"),
        Err(_) => panic!("the guest went away and the process handle hung"),
    }
    eprintln!("guest gone: handle ended after {:?}", gone.elapsed());
}

/// Reads `r` to its end on a thread (a pty master ends with EIO once the
/// slave side is closed: that is its end).
fn read_all_later(mut r: std::fs::File) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        use std::io::Read;
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    })
}

/// A new pty of `size`, and a session with its terminal side on stdin,
/// stdout and stderr.
fn pty_session(
    size: &nix::pty::Winsize,
) -> (nix::pty::OpenptyResult, vmcontainer::session::SessionIo) {
    let pty = nix::pty::openpty(Some(size), None).unwrap();
    let side = || Some(pty.slave.try_clone().unwrap());
    let io = vmcontainer::session::SessionIo::new(side(), side(), side());
    (pty, io)
}

/// `Process::attach`: a session's descriptors wired to a process, as the
/// CLI's `exec`, `dev shell`, `dev test` and `dev claude` use it.
async fn attached_sessions(m: &LinuxKitManager, id: &str) {
    use std::io::Write;
    use std::os::fd::OwnedFd;
    use vmcontainer::session::SessionIo;

    // Pipes: stdin reaches it (and its end closes its stdin), stdout and
    // stderr arrive apart, the exit code is kept.
    let (in_r, mut in_w) = std::io::pipe().unwrap();
    let (out_r, out_w) = std::io::pipe().unwrap();
    let (err_r, err_w) = std::io::pipe().unwrap();
    let io = SessionIo::new(
        Some(OwnedFd::from(in_r)),
        Some(OwnedFd::from(out_w)),
        Some(OwnedFd::from(err_w)),
    );
    let out = read_all_later(std::fs::File::from(OwnedFd::from(out_r)));
    let err = read_all_later(std::fs::File::from(OwnedFd::from(err_r)));
    in_w.write_all(b"through the pipe\n").unwrap();
    drop(in_w);
    let mut p = m
        .spawn(
            id,
            &sh("cat; echo to-stderr >&2; exit 5"),
            &SpawnOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(p.attach(&io).await.unwrap(), ExitStatus::Code(5));
    drop(io);
    assert_eq!(out.join().unwrap(), "through the pipe\n");
    assert_eq!(err.join().unwrap(), "to-stderr\n");

    // A terminal: the process gets a PTY of the terminal's size from the
    // start, the terminal is raw during the session and restored after.
    let size = nix::pty::Winsize {
        ws_row: 37,
        ws_col: 111,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let (pty, io) = pty_session(&size);
    let before = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
    let shown = read_all_later(std::fs::File::from(pty.master));
    let opts = SpawnOptions {
        tty: true,
        pty_size: io.terminal_size(),
        ..Default::default()
    };
    assert_eq!(opts.pty_size, Some((111, 37)));
    let mut p = m
        .spawn(id, &sh("stty size; tty; exit 4"), &opts)
        .await
        .unwrap();
    assert_eq!(p.attach(&io).await.unwrap(), ExitStatus::Code(4));
    let after = nix::sys::termios::tcgetattr(&pty.slave).unwrap();
    assert_eq!(
        before.local_flags, after.local_flags,
        "the terminal's mode is restored"
    );
    drop(io);
    drop(pty.slave);
    let shown = shown.join().unwrap();
    assert!(shown.contains("37 111"), "{shown:?}");
    assert!(shown.contains("/dev/pts/"), "{shown:?}");

    // Ctrl-C typed at that terminal is a key the guest's terminal turns
    // into SIGINT for the command (the guest terminal has the usual modes,
    // not the raw ones ssh leaves without a local terminal).
    let (pty, io) = pty_session(&size);
    let mut keys = std::fs::File::from(pty.master.try_clone().unwrap());
    let typed = std::thread::spawn(move || {
        use std::io::Read;
        let mut master = std::fs::File::from(pty.master);
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        let mut sent = false;
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if !sent && String::from_utf8_lossy(&all).contains("READY") {
                // While it sleeps, not before.
                std::thread::sleep(Duration::from_millis(300));
                keys.write_all(b"\x03").unwrap();
                sent = true;
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let opts = SpawnOptions {
        tty: true,
        pty_size: io.terminal_size(),
        ..Default::default()
    };
    let mut p = m
        .spawn(
            id,
            &sh("trap 'echo TRAPPED; exit 3' INT; echo READY; while :; do sleep 1; done"),
            &opts,
        )
        .await
        .unwrap();
    let st = tokio::time::timeout(Duration::from_secs(60), p.attach(&io))
        .await
        .expect("Ctrl-C never reached the command")
        .unwrap();
    assert_eq!(st, ExitStatus::Code(3));
    drop(io);
    drop(pty.slave);
    let typed = typed.join().unwrap();
    assert!(typed.contains("TRAPPED"), "{typed:?}");

    // Signals this process gets reach the command when asked for: SIGINT
    // runs the command's trap, not the end of this side.
    let (out_r, out_w) = std::io::pipe().unwrap();
    let io = SessionIo::new(None, Some(OwnedFd::from(out_w)), None).forwarding_signals();
    let mut p = m
        .spawn(
            id,
            &sh("trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 1; done"),
            &SpawnOptions::default(),
        )
        .await
        .unwrap();
    let ready = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(out_r).lines();
        let first = lines.next().and_then(|l| l.ok());
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT).unwrap();
        let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
        (first, rest)
    });
    let st = tokio::time::timeout(Duration::from_secs(120), p.attach(&io))
        .await
        .expect("SIGINT never reached the command")
        .unwrap();
    assert_eq!(st, ExitStatus::Code(7));
    drop(io);
    let (first, rest) = ready.join().unwrap();
    assert_eq!(first.as_deref(), Some("ready"));
    assert_eq!(rest, ["got-int"]);
}

/// MD5, computed here (the guest's `md5sum` checks the bytes it got).
fn md5_of(data: &[u8]) -> String {
    let out = std::process::Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    let hex = String::from_utf8_lossy(&out.stdout);
    hex.split_whitespace().next().unwrap().to_string()
}

async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    fs: impl Iterator<Item = F>,
) {
    let handles: Vec<_> = fs.map(tokio::spawn).collect();
    for h in handles {
        h.await.unwrap();
    }
}
