//! Switching from go-container: a VM that go-container started (its own
//! QEMU command line, its 9-field record, no SSH port or key recorded) is
//! listed, exec'd into with the user's SSH defaults on port 2222, and
//! stopped by a name prefix. Boots one VM under QEMU; fails, never skips,
//! when QEMU or the guest is missing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// go-container's fixed SSH port: the test needs it, as go-container did.
const GO_SSH_PORT: u16 = 2222;

/// Kills a child process on drop, so a failed test leaves nothing running.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until nothing listens on port 2222 (another suite's VM may).
fn wait_port_free(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(BOOT_DEADLINE_SECS);
    while std::net::TcpListener::bind(("0.0.0.0", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "port {port} stayed in use; go-container's VMs need it"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// An ssh-agent holding the test guest's key: "the user's SSH defaults"
/// that go-container's exec relied on (ssh reads ~/.ssh from the password
/// database, so the agent is the way a test supplies a default key).
fn agent_with_guest_key(dir: &std::path::Path) -> (Reaped, std::path::PathBuf) {
    let sock = dir.join("agent.sock");
    let agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(Stdio::null())
        .spawn()
        .expect("ssh-agent (openssh-client) is needed");
    let agent = Reaped(agent);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "ssh-agent made no socket");
        std::thread::sleep(Duration::from_millis(20));
    }
    let private = dir.join("id_guest");
    std::fs::copy(key(), &private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    let added = Command::new("ssh-add")
        .arg(&private)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", stderr(&added));
    std::fs::remove_file(&private).unwrap();
    (agent, sock)
}

#[test]
fn a_vm_go_container_started_is_listed_execd_and_stopped_by_name_prefix() {
    let _slots = vm_slots(1);
    let home = TestHome::new();
    let scratch = tempfile::tempdir().unwrap();
    let (_agent, agent_sock) = agent_with_guest_key(scratch.path());
    // go-container booted the image file itself.
    let image = scratch.path().join("legacy.qcow2");
    std::fs::copy(guest().join("vmtest.qcow2"), &image).unwrap();

    // go-container's QEMU command line (QemuHypervisor.BuildCommand), less
    // -enable-kvm, which hangs guests on this kind of host: the serial
    // console on stdout into logs/<id>.log, SSH forwarded from 2222.
    let id = "1a2b3c4d";
    let logs = home.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log = std::fs::File::create(logs.join(format!("{id}.log"))).unwrap();
    wait_port_free(GO_SSH_PORT);
    let qemu = Command::new("qemu-system-x86_64")
        .args(["-m", "1024", "-smp", "1", "-drive"])
        .arg(format!("file={},format=qcow2", image.display()))
        .args(["-nographic", "-netdev"])
        .arg(format!("user,id=net0,hostfwd=tcp::{GO_SSH_PORT}-:22"))
        .args(["-device", "virtio-net-pci,netdev=net0"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("qemu-system-x86_64 is needed");
    let mut qemu = Reaped(qemu);
    let pid = qemu.0.id() as i32;

    // go-container's record: exactly its nine fields.
    let record = serde_json::json!({"containers": {id: {
        "id": id, "name": "gc-web", "image": image, "status": "running",
        "pid": pid, "started_at": chrono::Utc::now().to_rfc3339(),
        "ports": {}, "memory": 1024, "cpus": 1,
    }}});
    std::fs::write(
        home.path().join("containers.json"),
        serde_json::to_vec_pretty(&record).unwrap(),
    )
    .unwrap();

    // Listed as running.
    let ps = home.ps();
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert_eq!(
        (ps[0]["id"].as_str(), ps[0]["status"].as_str()),
        (Some(id), Some("running"))
    );

    // exec by a name prefix, over port 2222 with the key the user's agent
    // holds (nothing about SSH is recorded).
    let exec = |args: &[&str]| {
        let mut c = home.cmd(&["exec", "gc-w"]);
        c.args(args).env("SSH_AUTH_SOCK", &agent_sock);
        c.output().unwrap()
    };
    home.cmd(&["wait", "--timeout", &BOOT_DEADLINE_SECS.to_string(), "gc"])
        .env("SSH_AUTH_SOCK", &agent_sock)
        .status()
        .unwrap();
    // Without the user's key the guest refuses (before any connection is
    // shared): the key comes from the user's defaults, not from anything
    // vmcontainer holds.
    let refused = home
        .cmd(&["exec", "gc-w", "true"])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "exec worked without the user's key"
    );
    let out = exec(&["sh", "-c", "echo $((6*7)); echo err >&2; exit 5"]);
    assert_eq!(out.status.code(), Some(5), "stderr: {}", stderr(&out));
    assert_eq!(
        (stdout(&out).as_str(), stderr(&out).as_str()),
        ("42\n", "err\n")
    );

    // stop by a name prefix: the process ends and the record says stopped.
    home.ok(&["stop", "gc-"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while qemu.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "QEMU {pid} outlived stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(home.inspect("gc")["status"], "stopped");
    // The record keeps go-container's fields and gains nothing that would
    // make go-container misread it.
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.path().join("containers.json")).unwrap())
            .unwrap();
    assert_eq!(v["containers"][id]["name"], "gc-web");
    assert_eq!(v["containers"][id]["memory"], 1024);
}
