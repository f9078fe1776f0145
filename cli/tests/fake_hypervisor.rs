//! The lifecycle against stand-in hypervisors: real processes (`sleep`, a
//! shell whose arguments look like QEMU's) and a real QMP socket served by
//! the test, so records, reconciliation and timeouts are checked without
//! booting a VM. The same behaviour with a real QEMU is in `robustness.rs`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// `/proc/<pid>/stat` field 22: what the runtime records as the process's
/// identity.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// Writes one record into the home's state file.
fn write_record(home: &TestHome, record: serde_json::Value) {
    std::fs::create_dir_all(home.path()).unwrap();
    let id = record["id"].as_str().unwrap().to_string();
    let state = serde_json::json!({ "containers": { id: record } });
    std::fs::write(
        home.path().join("containers.json"),
        serde_json::to_vec_pretty(&state).unwrap(),
    )
    .unwrap();
}

fn record(id: &str, status: &str, pid: u32, runtime_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "id": id, "name": id, "image": "/x.iso", "status": status,
        "pid": pid, "pid_start_time": if pid > 0 { start_time(pid) } else { 0 },
        "started_at": "2025-01-01T00:00:00Z", "hypervisor": "qemu",
        "ssh_port": free_port(), "runtime_dir": runtime_dir,
    })
}

/// The runtime directory the runtime derives for container `id` of `home`
/// (its instance directory): a record naming any other is not trusted.
struct RuntimeDir(PathBuf);

impl RuntimeDir {
    fn of(home: &TestHome, id: &str) -> Self {
        use std::os::unix::fs::DirBuilderExt;
        let dir = home.path().join("containers").join(id);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .unwrap();
        RuntimeDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

/// A process standing in for a running QEMU.
fn sleeper() -> Child {
    Command::new("sleep").arg("600").spawn().unwrap()
}

/// A QMP server on `socket`: greets, acknowledges every command, and on
/// `system_powerdown` runs `on_powerdown` with the connection (to send
/// events or close it).
fn fake_qmp(
    socket: PathBuf,
    on_powerdown: impl FnOnce(&mut std::os::unix::net::UnixStream) + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        let mut on_powerdown = Some(on_powerdown);
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            conn.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\n")
                .unwrap();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                let _ = conn.write_all(b"{\"return\": {}}\n");
                if line.contains("system_powerdown") {
                    if let Some(f) = on_powerdown.take() {
                        f(&mut conn);
                        return;
                    }
                }
                line.clear();
            }
        }
    })
}

#[test]
fn huge_wait_and_stop_timeouts_wait_instead_of_panicking() {
    let home = TestHome::new();
    let rd = RuntimeDir::of(&home, "0a1b2c3d");
    let mut vm = sleeper();
    write_record(&home, record("0a1b2c3d", "running", vm.id(), rd.path()));
    // The guest never answers on SSH: `wait` waits (forever) until the VM
    // goes away, then says it is not running.
    let max = u64::MAX.to_string();
    let waiter = home
        .cmd(&["wait", "--timeout", &max, "0a1b2c3d"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The monitor accepts the power-down but nothing happens: `stop` waits
    // (forever) until the process goes.
    let qmp = fake_qmp(rd.path().join("qmp.sock"), |_| {
        std::thread::sleep(Duration::from_secs(600))
    });
    let stopper = home
        .cmd(&["stop", "-t", &max, "0a1b2c3d"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    vm.kill().unwrap();
    vm.wait().unwrap();
    let waited = waiter.wait_with_output().unwrap();
    let err = stderr(&waited);
    assert_eq!(waited.status.code(), Some(1), "wait: {err}");
    assert!(
        err.contains("not running") && !err.contains("panicked"),
        "{err}"
    );
    let stopped = stopper.wait_with_output().unwrap();
    let err = stderr(&stopped);
    assert!(stopped.status.success(), "stop: {err}");
    assert!(!err.contains("panicked"), "{err}");
    drop(qmp);
}

#[test]
fn stop_follows_the_monitors_shutdown_event_and_records_why() {
    let home = TestHome::new();
    let rd = RuntimeDir::of(&home, "0a1b2c3d");
    let vm = sleeper();
    let pid = vm.id();
    write_record(&home, record("0a1b2c3d", "running", pid, rd.path()));
    // Like QEMU after an ACPI power-down: the SHUTDOWN event, then the
    // process exits and the socket closes.
    let vm = std::sync::Mutex::new(vm);
    fake_qmp(rd.path().join("qmp.sock"), move |conn| {
        conn.write_all(
            b"{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": \"guest-shutdown\"}}\n",
        )
        .unwrap();
        let mut vm = vm.lock().unwrap();
        vm.kill().unwrap();
        vm.wait().unwrap();
    });
    let t = Instant::now();
    home.ok(&["stop", "0a1b2c3d"]);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let c = home.inspect("0a1b2c3d");
    assert_eq!(c["status"], "stopped");
    assert_eq!(
        c["exit_reason"],
        "stopped: the guest powered off (guest-shutdown)"
    );
    assert!(!alive(pid as i32));
}

#[test]
fn a_hypervisor_killed_outright_shows_as_killed_and_a_clean_exit_as_stopped() {
    let home = TestHome::new();
    let rd = RuntimeDir::of(&home, "0a1b2c3d");
    // QEMU removes its pid file when it exits cleanly; one left behind
    // means it was killed (or crashed).
    let mut vm = sleeper();
    std::fs::write(rd.path().join("hypervisor.pid"), format!("{}\n", vm.id())).unwrap();
    write_record(&home, record("0a1b2c3d", "running", vm.id(), rd.path()));
    vm.kill().unwrap();
    vm.wait().unwrap();
    let c = home.inspect("0a1b2c3d");
    assert_eq!(c["status"], "killed", "{c}");
    assert_reason(&c, "killed or crashed");

    // Terminated by a signal: QEMU logs it and removes the pid file.
    let mut vm = sleeper();
    std::fs::remove_file(rd.path().join("hypervisor.pid")).unwrap();
    std::fs::write(
        rd.path().join("hypervisor.log"),
        "qemu-system-x86_64: terminating on signal 15 from pid 1 (init)\n",
    )
    .unwrap();
    write_record(&home, record("0a1b2c3d", "running", vm.id(), rd.path()));
    vm.kill().unwrap();
    vm.wait().unwrap();
    let c = home.inspect("0a1b2c3d");
    assert_eq!(
        (&c["status"], &c["exit_signal"]),
        (&"killed".into(), &15.into())
    );

    // Neither trace: a clean exit.
    let mut vm = sleeper();
    std::fs::write(rd.path().join("hypervisor.log"), "").unwrap();
    write_record(&home, record("0a1b2c3d", "running", vm.id(), rd.path()));
    vm.kill().unwrap();
    vm.wait().unwrap();
    assert_eq!(home.inspect("0a1b2c3d")["status"], "stopped");
}

#[test]
fn an_interrupted_start_is_reconciled_and_its_hypervisor_killed() {
    let home = TestHome::new();
    let rd = RuntimeDir::of(&home, "0a1b2c3d");
    let pid_file = rd.path().join("hypervisor.pid");
    // A hypervisor whose PID was never recorded: only its arguments (the
    // private pid file) tie it to the container, as for a QEMU that was
    // still daemonizing when the `run` that started it was killed.
    let mut stray = Command::new("sh")
        .arg("-c")
        .arg("while :; do sleep 0.1; done")
        .arg("qemu-system-x86_64")
        .arg("-pidfile")
        .arg(&pid_file)
        .spawn()
        .unwrap();
    // An unrelated process naming another pid file is left alone.
    let other = rd.path().join("other.pid");
    let mut bystander = Command::new("sh")
        .arg("-c")
        .arg("while :; do sleep 0.1; done")
        .arg("qemu-system-x86_64")
        .arg("-pidfile")
        .arg(&other)
        .spawn()
        .unwrap();
    // The process that was starting it is gone.
    let mut starter = Command::new("true").spawn().unwrap();
    let starter_pid = starter.id();
    starter.wait().unwrap();
    let mut r = record("0a1b2c3d", "starting", 0, rd.path());
    r["owner"] = serde_json::json!({ "pid": starter_pid, "start_time": 1 });
    write_record(&home, r);

    let list = home.ps();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "error");
    let reason = list[0]["exit_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("start interrupted") && reason.contains(&stray.id().to_string()),
        "{reason}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while stray.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the stray hypervisor still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        bystander.try_wait().unwrap(),
        None,
        "a bystander was killed"
    );
    bystander.kill().unwrap();
    bystander.wait().unwrap();
    // The record can be removed like any stopped one.
    home.ok(&["rm", "0a1b2c3d"]);
}

#[test]
fn a_start_whose_owner_lives_stays_starting_and_shows_in_ps() {
    let home = TestHome::new();
    let rd = RuntimeDir::of(&home, "0a1b2c3d");
    let mut owner = sleeper();
    let mut r = record("0a1b2c3d", "starting", 0, rd.path());
    r["owner"] = serde_json::json!({ "pid": owner.id(), "start_time": start_time(owner.id()) });
    write_record(&home, r);
    let out = home.ok(&["ps"]);
    assert!(
        out.contains("0a1b2c3d") && out.contains("starting"),
        "{out}"
    );
    // Removing it needs force, like a running one.
    let refused = home.run(&["rm", "0a1b2c3d"]);
    assert!(!refused.status.success());
    home.ok(&["rm", "-f", "0a1b2c3d"]);
    owner.kill().unwrap();
    owner.wait().unwrap();
}
