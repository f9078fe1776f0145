//! The guest agent transport with real guests: the agent-only test guest
//! (qemu-ga, no SSH server, no key), the SSH guest (no agent), and a guest
//! with neither. Each test boots one VM and runs its whole story on it.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use sha2::{Digest, Sha256};

/// A copy of the agent guest's kernel triplet with `extra` on its command
/// line (`vmtest.acpi=0`, `vmtest.agent=0`).
fn agent_variant(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let g = guest();
    std::fs::copy(
        g.join("vmtest-agent-kernel"),
        dir.join(format!("{name}-kernel")),
    )
    .unwrap();
    std::fs::copy(
        g.join("vmtest-agent-initrd.img"),
        dir.join(format!("{name}-initrd.img")),
    )
    .unwrap();
    let cmdline = std::fs::read_to_string(g.join("vmtest-agent-cmdline")).unwrap();
    std::fs::write(
        dir.join(format!("{name}-cmdline")),
        format!("{} {extra}\n", cmdline.trim()),
    )
    .unwrap();
    dir.join(format!("{name}-kernel"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ n as u64;
    for b in v.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    v
}

fn transports(home: &TestHome, id: &str) -> Vec<String> {
    home.inspect(id)["transports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

fn failed_with(home: &TestHome, args: &[&str], needle: &str) -> Duration {
    let t = Instant::now();
    let out = home.run(args);
    let took = t.elapsed();
    assert!(
        !out.status.success(),
        "{args:?} succeeded: {}",
        stdout(&out)
    );
    assert!(
        stderr(&out).contains(needle),
        "{args:?}: expected {needle:?} in: {}",
        stderr(&out)
    );
    took
}

/// `cp` both ways: a file larger than one agent chunk (1 MiB), a directory
/// with a subdirectory, a symlink and a non-default mode, a directory's
/// contents, and the error cases, each checked in the guest and on the
/// host.
fn copies_both_ways(home: &TestHome, id: &str, transport: &str) {
    let host = tempfile::tempdir().unwrap();
    let h = host.path();
    let cp = |src: &str, dst: &str| home.ok(&["cp", "--transport", transport, src, dst]);
    let data = random_bytes(3 << 20 | 12345);
    std::fs::write(h.join("big.bin"), &data).unwrap();
    cp(h.join("big.bin").to_str().unwrap(), &format!("{id}:/tmp/"));
    let sum = home.ok(&["exec", id, "sha256sum", "/tmp/big.bin"]);
    assert!(sum.starts_with(&sha256_hex(&data)), "{sum}");
    // Onto a new name, then back to the host under another.
    cp(
        h.join("big.bin").to_str().unwrap(),
        &format!("{id}:/tmp/renamed.bin"),
    );
    cp(
        &format!("{id}:/tmp/renamed.bin"),
        h.join("back.bin").to_str().unwrap(),
    );
    assert!(
        std::fs::read(h.join("back.bin")).unwrap() == data,
        "round trip changed the file"
    );

    // A directory tree, as a new directory in the guest.
    let tree = h.join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), b"alpha\n").unwrap();
    std::fs::write(tree.join("sub/run.sh"), random_bytes(70_000)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        tree.join("sub/run.sh"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    std::os::unix::fs::symlink("a.txt", tree.join("link")).unwrap();
    cp(tree.to_str().unwrap(), &format!("{id}:/tmp/t1"));
    let listing = home.ok(&[
        "exec",
        id,
        "sh",
        "-c",
        "cat /tmp/t1/a.txt; stat -c %a /tmp/t1/sub/run.sh; readlink /tmp/t1/link; sha256sum /tmp/t1/sub/run.sh",
    ]);
    let want = format!("alpha\n751\na.txt\n{}", sha256_hex(&random_bytes(70_000)));
    assert!(listing.starts_with(&want), "{listing}");
    // Into an existing directory it keeps its name; "/." merges contents.
    cp(tree.to_str().unwrap(), &format!("{id}:/tmp/t1"));
    cp(
        &format!("{}/.", tree.display()),
        &format!("{id}:/tmp/t1/sub"),
    );
    let names = home.ok(&[
        "exec",
        id,
        "sh",
        "-c",
        "ls /tmp/t1/tree /tmp/t1/sub | sort -u | tr '\\n' ' '",
    ]);
    assert!(
        names.contains("a.txt") && names.contains("link") && names.contains("run.sh"),
        "{names}"
    );

    // And back: the tree, and its contents into an existing directory.
    cp(&format!("{id}:/tmp/t1"), h.join("t1back").to_str().unwrap());
    let back = h.join("t1back");
    assert_eq!(std::fs::read(back.join("a.txt")).unwrap(), b"alpha\n");
    assert_eq!(
        std::fs::read(back.join("sub/run.sh")).unwrap(),
        random_bytes(70_000)
    );
    let mode = std::fs::metadata(back.join("sub/run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o751);
    assert_eq!(
        std::fs::read_link(back.join("link")).unwrap(),
        Path::new("a.txt")
    );
    std::fs::create_dir(h.join("merge")).unwrap();
    cp(
        &format!("{id}:/tmp/t1/."),
        h.join("merge").to_str().unwrap(),
    );
    assert!(h.join("merge/tree/sub/run.sh").is_file() && h.join("merge/a.txt").is_file());

    // Errors name the path.
    let bad = |src: &str, dst: &str, needle: &str| {
        failed_with(home, &["cp", "--transport", transport, src, dst], needle);
    };
    bad(
        &format!("{id}:/no/such"),
        h.to_str().unwrap(),
        &format!("{id}:/no/such"),
    );
    bad(
        h.join("missing").to_str().unwrap(),
        &format!("{id}:/tmp/"),
        "missing: no such file",
    );
    bad(
        tree.to_str().unwrap(),
        &format!("{id}:/tmp/big.bin"),
        "onto file",
    );
    bad(
        h.join("big.bin").to_str().unwrap(),
        &format!("{id}:/tmp/nodir/"),
        "/tmp/nodir does not exist",
    );
    bad(
        &format!("{id}:/tmp/t1"),
        h.join("back.bin").to_str().unwrap(),
        "onto file",
    );
}

/// Copies into the agent guest go through the data port: the port's own
/// call reports it, a receiver a dead copy left holding the port is
/// replaced, a receiver's error is reported, a busy port is not waited
/// for, and a VM without the port
/// (its FIFO gone, as in a VM an older version started) still gets the
/// file through agent calls.
fn data_port_takes_bulk_data(home: &TestHome, id: &str) {
    use vmcontainer::qga::data_port::Put;
    let rd = PathBuf::from(home.inspect(id)["runtime_dir"].as_str().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let data = random_bytes(1 << 20 | 777);
    let agent = vmcontainer::qga::Agent::new(&rd);
    let put = |dest: &str| {
        let mut src: &[u8] = &data;
        rt.block_on(agent.put_file(&mut src, data.len() as u64, dest, Duration::from_secs(60)))
            .unwrap()
    };
    assert_eq!(put("/tmp/direct.bin"), Put::Done);
    let sum = home.ok(&["exec", id, "sha256sum", "/tmp/direct.bin"]);
    assert!(sum.starts_with(&sha256_hex(&data)), "{sum}");
    match put("/no/such/dir/x") {
        Put::Failed { stderr, .. } => assert!(stderr.contains("/no/such/dir/x"), "{stderr}"),
        other => panic!("{other:?}"),
    }

    // A reader left holding the port (as by a copy whose host died).
    home.ok(&[
        "exec",
        id,
        "sh",
        "-c",
        "for p in /sys/class/virtio-ports/*; do [ \"$(cat $p/name)\" = org.vmcontainer.data.0 ] && d=/dev/${p##*/}; done; \
         (head -c 100 <$d >/dev/null) </dev/null >/dev/null 2>&1 & sleep 0.5; kill -0 $!",
    ]);
    let host = tempfile::tempdir().unwrap();
    let file = host.path().join("after-stale.bin");
    std::fs::write(&file, &data).unwrap();
    home.ok(&["cp", file.to_str().unwrap(), &format!("{id}:/tmp/")]);
    let sum = home.ok(&["exec", id, "sha256sum", "/tmp/after-stale.bin"]);
    assert!(sum.starts_with(&sha256_hex(&data)), "{sum}");
    let left = home.run(&["exec", id, "pidof", "head"]);
    assert_eq!(left.status.code(), Some(1), "{}", stdout(&left));

    // Another copy holds the port: this one does not wait for it.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(rd.join("data.lock"))
        .unwrap();
    lock.lock().unwrap();
    let t = Instant::now();
    assert_eq!(put("/tmp/unused"), Put::Unavailable);
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    drop(lock);

    let fifo = rd.join("data.in");
    std::fs::rename(&fifo, rd.join("data.in.away")).unwrap();
    assert_eq!(put("/tmp/unused"), Put::Unavailable);
    home.ok(&[
        "cp",
        file.to_str().unwrap(),
        &format!("{id}:/tmp/old-vm.bin"),
    ]);
    std::fs::rename(rd.join("data.in.away"), &fifo).unwrap();
    let sum = home.ok(&["exec", id, "sha256sum", "/tmp/old-vm.bin"]);
    assert!(sum.starts_with(&sha256_hex(&data)), "{sum}");
}

#[test]
fn agent_only_guest_waits_execs_copies_and_stops_without_a_key() {
    let _slots = vm_slots(1);
    let home = TestHome::new();
    let dir = tempfile::tempdir().unwrap();
    // acpid off: only the agent's guest-shutdown can stop it gracefully.
    let image = agent_variant(dir.path(), "agentonly", "vmtest.acpi=0");
    let id = home.ok(&["run", "-d", image.to_str().unwrap()]);
    home.ok(&["wait", "--timeout", &BOOT_DEADLINE_SECS.to_string(), &id]);
    assert_eq!(transports(&home, &id), ["agent"]);
    assert!(home.inspect(&id)["ssh_key"].is_null());

    // exec: exit code, stdout and stderr apart, arguments intact.
    let out = home.run(&["exec", &id, "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    assert_eq!(
        home.ok(&["exec", &id, "printf", "%s|", "a b", "it's", "$HOME", ""]),
        "a b|it's|$HOME||"
    );
    // stdin (-i from a pipe) arrives intact.
    let input = random_bytes(300_000);
    let mut child = home
        .cmd(&["exec", "-i", &id, "sha256sum"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        stdout(&out).starts_with(&sha256_hex(&input)),
        "{}",
        stdout(&out)
    );
    // Without -i, stdin that is a file is passed too (as over SSH).
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), b"from a file\n").unwrap();
    let out = home
        .cmd(&["exec", &id, "cat"])
        .stdin(std::fs::File::open(f.path()).unwrap())
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "from a file\n");
    // A signal and a missing program read as a shell reports them.
    assert_eq!(
        home.run(&["exec", &id, "sh", "-c", "kill -9 $$"])
            .status
            .code(),
        Some(137)
    );
    let out = home.run(&["exec", &id, "no-such-program"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(stderr(&out).contains("no-such-program"), "{}", stderr(&out));
    // Ctrl-C of the CLI reaches the command through the agent too (its
    // trap runs; the output arrives when it ends).
    let child = home
        .cmd(&[
            "exec",
            &id,
            "sh",
            "-c",
            "trap 'echo got-int; exit 7' INT; touch /tmp/trapped; while :; do sleep 1; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while home
        .run(&["exec", &id, "test", "-e", "/tmp/trapped"])
        .status
        .code()
        != Some(0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out), "got-int\n");
    assert_eq!(out.status.code(), Some(7));
    // SSH was never there: forcing it fails, saying so, in bounded time.
    let took = failed_with(&home, &["exec", "--transport", "ssh", &id, "true"], "SSH");
    assert!(took < Duration::from_secs(90), "took {took:?}");

    copies_both_ways(&home, &id, "auto");
    data_port_takes_bulk_data(&home, &id);

    // A hung agent call times out, and the next call resynchronises: the
    // agent is stopped (SIGSTOP) for 5 s, from 1 s after this exec.
    home.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "p=$(pidof qemu-ga) && (sleep 1; kill -STOP $p; sleep 5; kill -CONT $p) </dev/null >/dev/null 2>&1 &",
    ]);
    let rd = PathBuf::from(home.inspect(&id)["runtime_dir"].as_str().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let agent = vmcontainer::qga::Agent::new(&rd);
        let mut s = agent
            .connect(Instant::now() + Duration::from_secs(30))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let t = Instant::now();
        let e = s.ping(Duration::from_secs(1)).await.unwrap_err();
        assert!(e.is_no_answer(), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        // Once the agent runs again, the late replies are skipped.
        s.ping(Duration::from_secs(60)).await.unwrap();
        let info = s.info(Duration::from_secs(10)).await.unwrap();
        assert!(info.is_enabled("guest-exec"), "{info:?}");
    });
    assert_eq!(home.ok(&["exec", &id, "echo", "still-fine"]), "still-fine");

    // The agent's policy: qemu-ga restarted with guest-exec blocked. Forced
    // to the agent, exec and cp fail saying so, with what is allowed.
    home.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "(sleep 1; kill $(pidof qemu-ga); sleep 1; qemu-ga -d -b guest-exec -m virtio-serial \
         -p /dev/virtio-ports/org.qemu.guest_agent.0) </dev/null >/dev/null 2>&1 &",
    ]);
    std::thread::sleep(Duration::from_secs(5));
    let out = home.run(&["exec", "--transport", "agent", &id, "true"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("guest-exec is disabled") && err.contains("guest-file-read"),
        "{err}"
    );
    failed_with(
        &home,
        &[
            "cp",
            "--transport",
            "agent",
            "/etc/hostname",
            &format!("{id}:/tmp/"),
        ],
        "disabled",
    );

    // stop: the guest ignores ACPI, so the agent's guest-shutdown powers it
    // off, long before the 60 s timeout would end in SIGTERM.
    let t = Instant::now();
    home.ok(&["stop", "--time", "60", &id]);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "stop took {:?}",
        t.elapsed()
    );
    assert!(
        home.log(&id).contains("reboot: Power down"),
        "{}",
        home.log(&id)
    );
    assert_eq!(home.inspect(&id)["status"], "stopped");
    assert!(transports(&home, &id).is_empty());
}

#[test]
fn ssh_guest_without_an_agent_uses_ssh_at_once() {
    let _slots = vm_slots(1);
    let home = TestHome::new();
    let id = home.run_ready(&[], &guest().join("vmtest-kernel"));
    assert_eq!(transports(&home, &id), ["ssh"]);
    // The agent's absence costs nothing: QEMU says the port is closed.
    let t = Instant::now();
    assert_eq!(home.ok(&["exec", &id, "hostname"]), "vmtest");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    // Asking for the agent fails in bounded time and names the port.
    let took = failed_with(
        &home,
        &["exec", "--transport", "agent", &id, "true"],
        "org.qemu.guest_agent.0",
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
    copies_both_ways(&home, &id, "auto");
    home.ok(&["stop", &id]);
}

#[test]
fn a_guest_answering_neither_is_reported_within_seconds() {
    let _slots = vm_slots(1);
    let home = TestHome::new();
    let dir = tempfile::tempdir().unwrap();
    let image = agent_variant(dir.path(), "mute", "vmtest.agent=0");
    let id = home.ok(&["run", "-d", image.to_str().unwrap()]);
    // Only this test's own clock: the product never reads this line.
    home.wait_log(&id, "VMTEST READY");
    let t = Instant::now();
    let out = home.run(&["exec", &id, "true"]);
    let took = t.elapsed();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("waiting up to"), "no notice: {err}");
    assert!(
        err.contains("unreachable") && err.contains("org.qemu.guest_agent.0"),
        "{err}"
    );
    assert!(took < Duration::from_secs(45), "took {took:?}");
    // Remembered for this boot: the next call says so at once.
    let took = failed_with(&home, &["exec", &id, "true"], "unreachable");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let took = failed_with(
        &home,
        &["cp", "/etc/hostname", &format!("{id}:/tmp/")],
        "unreachable",
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
    // An explicit wait keeps waiting for its whole timeout.
    failed_with(&home, &["wait", "--timeout", "3", &id], "timed out");
    assert!(transports(&home, &id).is_empty());
}
