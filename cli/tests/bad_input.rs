//! Bad input is refused with a clear one-line error that names it, and
//! nothing is started or half-written. No VM is booted here.

mod common;

use std::path::Path;

use common::*;

/// Asserts `args` fails with a one-line error containing every `needle`
/// and that the home holds no container, log or disk afterwards.
fn refused(home: &TestHome, args: &[&str], needles: &[&str]) {
    let out = home.run(args);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} exit {:?}, stderr {err}",
        out.status
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "error is not one line: {err}"
    );
    assert!(err.starts_with("vmcontainer: error: "), "{err}");
    for n in needles {
        assert!(
            err.contains(n),
            "{args:?}: error {err:?} does not mention {n:?}"
        );
    }
    let state = home.path().join("containers.json");
    if state.exists() {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        assert!(
            v["containers"].as_object().is_none_or(|m| m.is_empty()),
            "{args:?} recorded a container"
        );
    }
    for sub in ["logs", "containers"] {
        let d = home.path().join(sub);
        if d.exists() {
            assert_eq!(
                std::fs::read_dir(&d).unwrap().count(),
                0,
                "{args:?} left files in {sub}/"
            );
        }
    }
    assert!(!qemu_running_for(home.path()), "{args:?} started QEMU");
}

fn qemu_running_for(home: &Path) -> bool {
    let needle = home.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| {
                    let c = String::from_utf8_lossy(&c);
                    c.contains("qemu-system") && c.contains(&needle)
                })
                .unwrap_or(false)
        })
}

#[test]
fn every_bad_run_input_is_named_and_starts_nothing() {
    let home = TestHome::new();
    let dir = tempfile::tempdir().unwrap();
    let iso = guest().join("vmtest.iso");
    let iso = iso.to_str().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not an image").unwrap();
    refused(
        &home,
        &["run", "-d", "/no/such/image.iso"],
        &["image not found", "/no/such/image.iso"],
    );
    refused(
        &home,
        &["run", "-d", text.to_str().unwrap()],
        &["unknown image format", "notes.txt"],
    );
    refused(
        &home,
        &["run", "-d", "-p", "0:80", iso],
        &["0:80", "out of range"],
    );
    refused(
        &home,
        &["run", "-d", "-p", "70000:80", iso],
        &["70000", "out of range"],
    );
    refused(
        &home,
        &["run", "-d", "-p", "8080:80", "-p", "8080:81", iso],
        &["8080", "twice"],
    );
    refused(&home, &["run", "-d", "--memory", "0", iso], &["memory"]);
    refused(&home, &["run", "-d", "--cpus", "0", iso], &["cpus"]);
    refused(
        &home,
        &["run", "-d", "-v", "/no/such/dir:/mnt/x", iso],
        &["/no/such/dir"],
    );
    refused(
        &home,
        &["run", "-d", "--ssh-key", "/no/such/key", iso],
        &["/no/such/key"],
    );
    refused(
        &home,
        &["run", "-d", "--name", "bad name!", iso],
        &["bad name!"],
    );
    refused(
        &home,
        &["run", "-d", "--template", "no-such-template"],
        &["no-such-template"],
    );
    refused(
        &home,
        &["run", "-d", "--template", "core-dev"],
        &["missing required variables", "SSH_KEY"],
    );
    // A host port already in use fails `run` itself, with QEMU's message.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    refused(
        &home,
        &["run", "-d", "-p", &format!("{port}:80"), iso],
        &["failed to start", "host forwarding", &port],
    );
    refused(&home, &["stop", "deadbeef"], &["not found", "deadbeef"]);
    refused(
        &home,
        &["exec", "deadbeef", "true"],
        &["not found", "deadbeef"],
    );
}

#[test]
fn corrupt_state_file_is_named_and_left_untouched() {
    let home = TestHome::new();
    let state = home.path().join("containers.json");
    std::fs::create_dir_all(home.path()).unwrap();
    let garbage = b"{\"containers\": {\"0a1b2c3d\": {\"id\": ";
    std::fs::write(&state, garbage).unwrap();
    for args in [
        &["ps"][..],
        &["run", "-d", guest().join("vmtest.iso").to_str().unwrap()],
        &["rm", "0a1b2c3d"],
    ] {
        let out = home.run(args);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("corrupt") && err.contains(&state.display().to_string()),
            "{err}"
        );
    }
    assert_eq!(std::fs::read(&state).unwrap(), garbage);
    assert!(!qemu_running_for(home.path()));
    // Drop would try to clean up through the CLI; make the file valid again.
    std::fs::remove_file(&state).unwrap();
}

fn go_container_state(pid: i32) -> String {
    format!(
        r#"{{"containers": {{
  "0a1b2c3d": {{"id": "0a1b2c3d", "name": "legacy", "image": "/images/web.iso", "status": "running",
    "pid": {pid}, "started_at": "2025-03-04T10:11:12.5+01:00", "ports": {{"8080": 80}},
    "memory": 2048, "cpus": 2, "ssh_port": 2222, "labels": {{"team": "infra"}}}},
  "11112222": {{"id": "11112222", "image": "/images/x.qcow2", "status": "stopped", "pid": 0,
    "started_at": "2025-03-04T10:11:12Z"}}
}}, "written_by": "go-container"}}"#
    )
}

#[test]
fn go_container_file_loads_and_a_reused_pid_is_never_signalled() {
    let home = TestHome::new();
    // A live process that is not a hypervisor holds the recorded PID.
    let mut stranger = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pid = stranger.id() as i32;
    std::fs::create_dir_all(home.path()).unwrap();
    let state = home.path().join("containers.json");
    std::fs::write(&state, go_container_state(pid)).unwrap();

    let list = home.ps();
    assert_eq!(list.len(), 2);
    let legacy = list.iter().find(|c| c["id"] == "0a1b2c3d").unwrap();
    // Reconciled: the PID is alive but is not this container's QEMU.
    assert_eq!(legacy["status"], "stopped");
    assert_eq!(legacy["ports"]["8080"], 80);
    assert_eq!(legacy["memory"], 2048);
    let out = home.run(&["stop", "legacy"]);
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
    assert_eq!(
        stranger.try_wait().unwrap(),
        None,
        "the stranger process was signalled"
    );

    // Unknown fields survived the reconciling write; a removal keeps them too.
    home.ok(&["rm", "11112222"]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(v["written_by"], "go-container");
    assert_eq!(v["containers"]["0a1b2c3d"]["labels"]["team"], "infra");
    assert!(v["containers"].get("11112222").is_none());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o600
    );
    stranger.kill().unwrap();
    stranger.wait().unwrap();
}

#[test]
fn resolution_errors_are_clear() {
    let home = TestHome::new();
    std::fs::create_dir_all(home.path()).unwrap();
    std::fs::write(
        home.path().join("containers.json"),
        r#"{"containers": {
          "abc11111": {"id": "abc11111", "name": "one", "image": "/a.iso", "status": "stopped", "pid": 0, "started_at": "2025-01-01T00:00:00Z"},
          "abc22222": {"id": "abc22222", "name": "two", "image": "/a.iso", "status": "stopped", "pid": 0, "started_at": "2025-01-01T00:00:00Z"}}}"#,
    )
    .unwrap();
    let out = home.run(&["inspect", "abc"]);
    let err = stderr(&out);
    assert!(
        err.contains("ambiguous") && err.contains("abc11111") && err.contains("abc22222"),
        "{err}"
    );
    assert_eq!(home.inspect("two")["id"], "abc22222");
    assert_eq!(home.inspect("abc1")["name"], "one");
}
