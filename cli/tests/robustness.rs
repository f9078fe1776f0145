//! The runtime under a careless or hostile caller, with real QEMU (TCG)
//! and the test guest: callers killed part-way, signals, crashes of the
//! hypervisor, many execs at once, huge arguments and timeouts. Every test
//! fails, never skips, when QEMU or the guest is missing.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Live (not zombie) QEMU processes started for `home`.
fn qemus(home: &TestHome) -> Vec<i32> {
    let needle = home.path().to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            cmd.contains("qemu-system") && cmd.contains(&needle)
        })
        .filter(|pid| alive(*pid))
        .collect()
}

fn signal(child: &Child, sig: Signal) {
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
}

/// Waits until no QEMU of `home` is left (a SIGKILLed one takes a moment
/// to be gone).
fn assert_no_qemu(home: &TestHome, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !qemus(home).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{what}: QEMU {:?} still runs; records: {:?}",
            qemus(home),
            home.ps()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `status` of a container once `ps` no longer says running.
fn final_record(home: &TestHome, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = home
            .ps()
            .into_iter()
            .find(|c| c["id"] == id)
            .expect("record kept");
        if c["status"] != "running" {
            return c;
        }
        assert!(Instant::now() < deadline, "{id} still running: {c}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `n` execs of `echo hi-<i>` at once; each must succeed.
fn parallel_execs(home: &TestHome, id: &str, n: usize) {
    let children: Vec<Child> = (0..n)
        .map(|i| {
            home.cmd(&["exec", id, "echo", &format!("hi-{i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let failures: Vec<String> = children
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let out = c.wait_with_output().unwrap();
            (!out.status.success() || stdout(&out) != format!("hi-{i}\n")).then(|| {
                format!(
                    "exec {i}: {} stdout {:?} stderr {:?}",
                    out.status,
                    stdout(&out),
                    stderr(&out)
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {n} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn concurrent_and_huge_execs_and_how_a_detached_vm_ended() {
    let _slots = vm_slots(1);
    let home = TestHome::new();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id");
    std::fs::copy(common::key(), &key).unwrap();
    let image = guest().join("vmtest-kernel");
    let id = home.ok(&[
        "run",
        "-d",
        "--memory",
        "256",
        "--ssh-key",
        key.to_str().unwrap(),
        image.to_str().unwrap(),
    ]);
    // Right after `run -d`: every exec waits for the guest, one learns its
    // host key, one starts the shared connection, and all succeed.
    parallel_execs(&home, &id, 10);
    // And once it is up.
    parallel_execs(&home, &id, 10);

    // Commands longer than an SSH server takes inline work, and leave the
    // shared connection up.
    let rd = home.inspect(&id)["runtime_dir"]
        .as_str()
        .unwrap()
        .to_string();
    for len in [9_100, 20_000, 100_000] {
        let arg = "x".repeat(len);
        let out = home.ok(&[
            "exec",
            &id,
            "sh",
            "-c",
            "printf %s \"$1\" | wc -c",
            "sh",
            &arg,
        ]);
        assert_eq!(out, len.to_string());
        assert!(
            std::os::unix::net::UnixStream::connect(format!("{rd}/ssh.sock")).is_ok(),
            "the shared SSH connection is gone after a {len}-byte command"
        );
    }
    // A failing connection says why (ssh's own words) and which one it
    // was: here the shared connection is gone and the key is refused.
    use std::os::unix::fs::PermissionsExt;
    let mode = |m| std::fs::set_permissions(&key, std::fs::Permissions::from_mode(m)).unwrap();
    mode(0o644);
    std::fs::remove_file(format!("{rd}/ssh.sock")).unwrap();
    let out = home.run(&["exec", &id, "true"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Permission denied") && err.contains("connection of its own"),
        "{err}"
    );
    mode(0o600);
    assert_eq!(home.ok(&["exec", &id, "echo", "back"]), "back");

    // A timeout too large for a deadline waits for the power-off instead
    // of panicking; the record says how it ended.
    home.ok(&["stop", "-t", &u64::MAX.to_string(), &id]);
    let c = home.inspect(&id);
    assert_eq!(c["status"], "stopped");
    assert_reason(&c, "powered off");

    // Killed by someone else with SIGTERM: QEMU says so, and so does the
    // record.
    home.ok(&["start", &id]);
    let pid = home.inspect(&id)["pid"].as_i64().unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    let c = final_record(&home, &id);
    assert_eq!(
        (&c["status"], &c["exit_signal"]),
        (&"killed".into(), &15.into()),
        "{c}"
    );

    // SIGKILL leaves no trace but the pid file QEMU could not remove.
    home.ok(&["start", &id]);
    let pid = home.inspect(&id)["pid"].as_i64().unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let c = final_record(&home, &id);
    assert_eq!(c["status"], "killed", "{c}");
    assert_reason(&c, "killed or crashed");
    assert_no_qemu(&home, "after the kills");
}

#[test]
fn a_foreground_vm_dies_with_its_caller_and_interruptions_are_recorded() {
    let _slots = vm_slots(1);
    let home = TestHome::new();
    let image = guest().join("vmtest-kernel");
    let run = || {
        home.cmd(&["run", "--memory", "256", image.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // SIGKILL a few milliseconds into `run`, and later: whatever it got to,
    // no QEMU is left behind and no record claims one.
    for delay in [5, 30, 100, 300, 1500] {
        let mut fg = run();
        std::thread::sleep(Duration::from_millis(delay));
        signal(&fg, Signal::SIGKILL);
        fg.wait().unwrap();
        for c in home.ps() {
            assert!(
                c["status"] != "running" && c["status"] != "starting",
                "after a kill at {delay} ms: {c}"
            );
        }
        assert_no_qemu(&home, &format!("kill at {delay} ms"));
    }

    // SIGTERM and SIGINT of a foreground run: the VM is powered off, the
    // exit code says which signal, and so does the record.
    for (sig, code, name) in [
        (Signal::SIGTERM, 143, "SIGTERM"),
        (Signal::SIGINT, 130, "SIGINT"),
    ] {
        let mut fg = run();
        let mut lines = until_ready(fg.stdout.take().unwrap());
        let id = home
            .ps()
            .into_iter()
            .find(|c| c["status"] == "running")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        signal(&fg, sig);
        for _ in lines.by_ref() {}
        let status = fg.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{name}");
        let c = home.inspect(&id);
        let reason = c["exit_reason"].as_str().unwrap();
        assert!(
            reason.contains(&format!("interrupted ({name})")),
            "{reason}"
        );
        assert_eq!(c["status"], "stopped", "{c}");
        assert_no_qemu(&home, name);
    }
}

/// A small xorshift generator: the crash test's choices, reproducible from
/// the printed seed (`VMC_CRASH_SEED`).
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let seed = std::env::var("VMC_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("crash consistency: VMC_CRASH_SEED={seed}");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// After each kill: the state file parses; every QEMU of the home is a
/// record `ps` shows as running; every record `ps` shows as running has
/// its QEMU; nothing is left `starting` (all starters are dead).
fn check_invariants(home: &TestHome, what: &str) {
    let state = home.path().join("containers.json");
    if let Ok(bytes) = std::fs::read(&state) {
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{what}: state file does not parse: {e}"));
        assert!(v["containers"].is_object(), "{what}: {v}");
    }
    let list = home.ps();
    let running: Vec<i32> = list
        .iter()
        .filter(|c| c["status"] == "running")
        .map(|c| c["pid"].as_i64().unwrap() as i32)
        .collect();
    for c in &list {
        assert_ne!(c["status"], "starting", "{what}: {c}");
    }
    for q in qemus(home) {
        assert!(
            running.contains(&q),
            "{what}: QEMU {q} runs but ps shows {list:?}"
        );
    }
    for (c, pid) in list
        .iter()
        .filter(|c| c["status"] == "running")
        .zip(&running)
    {
        if !alive(*pid) {
            // It may have ended after `ps` looked (a stop that was killed
            // after asking for the power-off): then the next look says so.
            let again = home.ps().into_iter().find(|x| x["id"] == c["id"]).unwrap();
            assert_ne!(
                again["status"], "running",
                "{what}: {c} says running without its QEMU"
            );
        }
    }
}

#[test]
fn sigkill_at_random_points_of_run_stop_rm_and_start_leaves_the_truth() {
    let _slots = vm_slots(1);
    let home = TestHome::new();
    let mut rng = Rng::new();
    let kernel = guest().join("vmtest-kernel");
    let qcow2 = guest().join("vmtest.qcow2");
    let budget = Duration::from_secs(60);
    let started = Instant::now();
    let mut counts = std::collections::BTreeMap::<&str, u32>::new();
    let mut iterations = 0;
    while iterations < 48 && (iterations < 24 || started.elapsed() < budget) {
        iterations += 1;
        let list = home.ps();
        let running: Vec<String> = list
            .iter()
            .filter(|c| c["status"] == "running")
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        let idle: Vec<String> = list
            .iter()
            .filter(|c| c["status"] != "running")
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        let image = if rng.below(3) == 0 { &qcow2 } else { &kernel };
        let image = image.to_str().unwrap().to_string();
        // At most one VM runs: with one up, stop or remove it.
        let (op, args, max_ms): (&str, Vec<String>, u64) = if let Some(id) = running.first() {
            if rng.below(2) == 0 {
                (
                    "stop",
                    vec!["stop".into(), "-t".into(), "1".into(), id.clone()],
                    300,
                )
            } else {
                ("rm -f", vec!["rm".into(), "-f".into(), id.clone()], 300)
            }
        } else {
            let pick = rng.below(20);
            match idle.first() {
                Some(id) if pick < 3 && idle.len() > 2 => {
                    ("rm", vec!["rm".into(), id.clone()], 100)
                }
                Some(id) if pick < 10 => ("start", vec!["start".into(), id.clone()], 500),
                _ if pick < 14 => (
                    "run",
                    vec!["run".into(), "--memory".into(), "256".into(), image],
                    1500,
                ),
                _ => (
                    "run -d",
                    vec![
                        "run".into(),
                        "-d".into(),
                        "--memory".into(),
                        "256".into(),
                        image,
                    ],
                    500,
                ),
            }
        };
        *counts.entry(op).or_default() += 1;
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = home
            .cmd(&argv)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Mostly killed part-way; sometimes allowed to finish (bounded). A
        // foreground run never finishes on its own.
        let delay = if op != "run" && rng.below(4) == 0 {
            Duration::from_secs(20)
        } else {
            Duration::from_millis(rng.below(max_ms))
        };
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        child.wait().unwrap();
        check_invariants(
            &home,
            &format!("iteration {iterations}: {op} killed after {delay:?}"),
        );
    }
    eprintln!(
        "crash consistency: {iterations} kills in {:.1}s: {counts:?}",
        started.elapsed().as_secs_f64()
    );
    for c in home.ps() {
        let id = c["id"].as_str().unwrap();
        if c["status"] == "running" {
            home.ok(&["stop", "-t", "1", id]);
        }
        home.ok(&["rm", id]);
    }
    assert_no_qemu(&home, "after removing everything");
    assert!(iterations >= 24);
}
