//! Tests that boot the test guest under QEMU for real (TCG here). They fail,
//! never skip, when QEMU or the guest is missing.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn kernel_initrd_guest_exec_ports_volume_follow_and_acpi_stop() {
    let _slots = vm_slots(1);
    let home = TestHome::new();
    let share = tempfile::tempdir().unwrap();
    std::fs::write(share.path().join("hello.txt"), "from the host\n").unwrap();
    let http = free_port();
    let open = free_port();
    let image = guest().join("vmtest-kernel");
    // The key as a checkout leaves it (0644), which ssh would ignore: the
    // container gets a private copy, and exec works.
    let keys = tempfile::tempdir().unwrap();
    let open_key = keys.path().join("id_open");
    std::fs::copy(key(), &open_key).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&open_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let id = home.run_ready_with_key(
        &[
            "--name",
            "lifecycle",
            "-p",
            &format!("{http}:80"),
            // Asking one mapping to listen everywhere widens no other.
            "-p",
            &format!("0.0.0.0:{open}:81"),
            "-v",
            &format!("{}:/mnt/data", share.path().display()),
        ],
        &image,
        &open_key,
    );
    home.wait_log(&id, "VMTEST READY");
    let copy = std::path::PathBuf::from(home.inspect(&id)["ssh_key"].as_str().unwrap());
    assert!(copy.starts_with(home.path()), "{}", copy.display());
    assert_eq!(
        std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // exec: exit code, stdout and stderr come back separately.
    let out = home.run(&[
        "exec",
        "lifecycle",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(stderr(&out), "err\n");
    // Arguments arrive intact, with spaces and quotes.
    let out = home.run(&["exec", &id, "printf", "%s|", "a b", "it's", "$HOME"]);
    assert_eq!(stdout(&out), "a b|it's|$HOME|");
    // -e, -w and -u apply, values intact.
    let out = home.run(&[
        "exec",
        "-e",
        "A=it's $HOME",
        "-e",
        "B=2",
        "-w",
        "/tmp",
        "-u",
        "root",
        &id,
        "sh",
        "-c",
        r#"printf '%s|%s|%s|%s' "$A" "$B" "$(pwd)" "$(id -u)""#,
    ]);
    assert_eq!(
        stdout(&out),
        "it's $HOME|2|/tmp|0",
        "stderr: {}",
        stderr(&out)
    );
    let out = home.run(&["exec", "-e", "A B=1", &id, "true"]);
    assert!(stderr(&out).contains("\"A B\""), "{}", stderr(&out));
    // Output is streamed over SSH: the first line arrives before the sleep ends.
    let (mut child, mut lines) = ssh_exec_lines(&home, &id, "echo first; sleep 3; echo second");
    assert_eq!(lines.next().unwrap().unwrap(), "first");
    let first_at = std::time::Instant::now();
    assert_eq!(lines.next().unwrap().unwrap(), "second");
    assert!(
        first_at.elapsed() >= std::time::Duration::from_secs(2),
        "not streamed"
    );
    assert!(child.wait().unwrap().success());
    // Ctrl-C of the CLI reaches the command (its trap runs), instead of
    // ending the CLI and leaving the command running in the guest.
    let (mut child, mut lines) = ssh_exec_lines(
        &home,
        &id,
        "trap 'echo got-int; exit 7' INT; echo ready; while :; do sleep 1; done",
    );
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "got-int");
    assert_eq!(child.wait().unwrap().code(), Some(7));

    // The forwarded port reaches the guest's HTTP server, on loopback only.
    assert_eq!(http_get(http).trim(), "vmtest-http-ok");
    let l = listeners(http);
    assert!(!l.is_empty(), "nothing listens on {http}");
    assert!(
        l.iter().all(|a| a == "0100007F"),
        "port {http} listens on {l:?}"
    );
    let ssh_port = home.inspect(&id)["ssh_port"].as_u64().unwrap() as u16;
    assert!(listeners(ssh_port).iter().all(|a| a == "0100007F"));
    assert_eq!(listeners(open), ["00000000"], "port {open}");
    // Both show where they listen; the record keeps only the wide one.
    let i = home.inspect(&id);
    assert_eq!(
        i["bind_addresses"],
        serde_json::json!({ open.to_string(): "0.0.0.0" })
    );
    let forwards = i["forwards"].as_array().unwrap();
    assert!(forwards.contains(&serde_json::json!({"bind": "127.0.0.1", "host": http, "guest": 80})));
    assert!(forwards.contains(&serde_json::json!({"bind": "0.0.0.0", "host": open, "guest": 81})));
    let table = home.ok(&["ps"]);
    assert!(table.contains(&format!("0.0.0.0:{open}->81")), "{table}");
    assert!(
        table.contains(&format!("{http}->80")) && !table.contains(&format!("0.0.0.0:{http}")),
        "{table}"
    );

    // The 9p volume is readable in the guest.
    assert_eq!(
        home.ok(&["exec", &id, "cat", "/mnt/data/hello.txt"]),
        "from the host"
    );

    // logs --follow delivers a line the guest writes, and ends on stop.
    let mut follow = home
        .cmd(&["logs", "-f", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    home.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo guest-says-hello-$((6*7)) > /dev/console",
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = lines.next().expect("follow ended early").unwrap();
        if line.contains("guest-says-hello-42") {
            break;
        }
        assert!(Instant::now() < deadline, "marker never arrived");
    }

    // stop powers the guest off through ACPI: the kernel logs the power-down.
    let started = Instant::now();
    home.ok(&["stop", &id]);
    assert!(
        home.log(&id).contains("reboot: Power down"),
        "no ACPI power-down in log:\n{}",
        home.log(&id)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stop waited for the timeout: {:?}",
        started.elapsed()
    );
    let status = follow.wait().unwrap();
    assert!(status.success());
    let c = home.inspect(&id);
    assert_eq!(c["status"], "stopped");
    // No vmx/svm on this kind of host: the probe must have chosen TCG.
    assert_eq!(c["accel"], "tcg");
    let pid = c["pid"].as_i64().unwrap() as i32;
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || !is_qemu(pid));
}

/// `vmcontainer exec --transport ssh ID sh -c SCRIPT`, running, with its
/// stdout read line by line.
fn ssh_exec_lines(
    home: &TestHome,
    id: &str,
    script: &str,
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    let mut child = home
        .cmd(&["exec", "--transport", "ssh", id, "sh", "-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    (child, std::io::BufRead::lines(out))
}

fn is_qemu(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.contains("qemu") && !s.contains(") Z"))
        .unwrap_or(false)
}

#[test]
fn guest_ignoring_acpi_is_killed_after_the_timeout() {
    let _slots = vm_slots(1);
    let home = TestHome::new();
    let dir = tempfile::tempdir().unwrap();
    let g = guest();
    std::fs::copy(g.join("vmtest-kernel"), dir.path().join("deaf-kernel")).unwrap();
    std::fs::copy(
        g.join("vmtest-initrd.img"),
        dir.path().join("deaf-initrd.img"),
    )
    .unwrap();
    let cmdline = std::fs::read_to_string(g.join("vmtest-cmdline")).unwrap();
    std::fs::write(
        dir.path().join("deaf-cmdline"),
        format!("{} vmtest.acpi=0\n", cmdline.trim()),
    )
    .unwrap();
    let id = home.run_ready(&[], &dir.path().join("deaf"));
    home.wait_log(&id, "VMTEST READY");
    let pid = home.inspect(&id)["pid"].as_i64().unwrap() as i32;
    let started = Instant::now();
    home.ok(&["stop", "--time", "2", &id]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "stopped before the timeout: {took:?}"
    );
    assert!(!is_qemu(pid), "QEMU {pid} still running");
    assert!(!home.log(&id).contains("reboot: Power down"));
    assert_eq!(home.inspect(&id)["status"], "stopped");
}

#[test]
fn iso_and_raw_run_side_by_side_without_explicit_ports() {
    let _slots = vm_slots(2);
    let home = TestHome::new();
    // A comma in the image path must be escaped, not parsed as an option.
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("a,media=disk");
    std::fs::create_dir(&odd).unwrap();
    let iso = odd.join("vm test.iso");
    std::fs::copy(guest().join("vmtest.iso"), &iso).unwrap();
    let a = home.run_ready(&[], &iso);
    let b = home.run_ready(&[], &guest().join("vmtest.raw"));
    let (pa, pb) = (
        home.inspect(&a)["ssh_port"].clone(),
        home.inspect(&b)["ssh_port"].clone(),
    );
    assert_ne!(pa, pb);
    for id in [&a, &b] {
        home.wait_log(id, "VMTEST READY");
        assert_eq!(home.ok(&["exec", id, "hostname"]), "vmtest");
    }
    assert_eq!(home.inspect(&a)["format"], "iso");
    assert_eq!(home.inspect(&b)["format"], "raw");
    let running = home
        .ps()
        .iter()
        .filter(|c| c["status"] == "running")
        .count();
    assert_eq!(running, 2);
}

fn fingerprint(p: &std::path::Path) -> (u64, Vec<u8>) {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(p).unwrap();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    (h.finish(), bytes[..512].to_vec())
}

#[test]
fn one_qcow2_serves_two_containers_stays_unchanged_and_disks_persist() {
    let _slots = vm_slots(2);
    let home = TestHome::new();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("shared.qcow2");
    std::fs::copy(guest().join("vmtest.qcow2"), &image).unwrap();
    let before = fingerprint(&image);
    let a = home.run_ready(&[], &image);
    // The second as go-container recorded containers: no format, no
    // overlay. `start` gives it one, so the image is not written either.
    let b = "0b0b0b0b".to_string();
    let state = home.path().join("containers.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    v["containers"][&b] = serde_json::json!({
        "id": b, "name": "legacy", "image": image, "status": "stopped", "pid": 0,
        "started_at": "2025-01-01T00:00:00Z", "memory": 1024, "cpus": 1,
        "ssh_key": key(), "ssh_port_auto": true,
    });
    std::fs::write(&state, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    home.ok(&["start", &b]);
    home.ok(&["wait", "--timeout", &BOOT_DEADLINE_SECS.to_string(), &b]);
    let overlay = home.inspect(&b)["disk"].as_str().unwrap().to_string();
    assert!(
        overlay.starts_with(home.path().to_str().unwrap()),
        "{overlay}"
    );
    let last = "$(( $(cat /sys/block/sda/size) - 1 ))";
    let write = format!("printf PERSIST-{a} | dd of=/dev/sda bs=512 seek={last} conv=notrunc,fsync 2>/dev/null; sync");
    home.ok(&["exec", &a, "sh", "-c", &write]);
    let read = format!("dd if=/dev/sda bs=512 skip={last} count=1 2>/dev/null | head -c 16");
    assert_eq!(
        home.ok(&["exec", &a, "sh", "-c", &read]),
        format!("PERSIST-{a}")
    );
    // The other container has its own disk.
    assert_ne!(
        home.ok(&["exec", &b, "sh", "-c", &read]),
        format!("PERSIST-{a}")
    );
    home.ok(&["stop", &a]);
    home.ok(&["start", &a]);
    home.ok(&["wait", "--timeout", "240", &a]);
    assert_eq!(
        home.ok(&["exec", &a, "sh", "-c", &read]),
        format!("PERSIST-{a}")
    );
    let disk = home.inspect(&a)["disk"].as_str().unwrap().to_string();
    assert!(std::path::Path::new(&disk).exists());
    home.ok(&["rm", "-f", &a, &b]);
    assert!(
        !std::path::Path::new(&disk).exists(),
        "overlay {disk} survived rm"
    );
    assert_eq!(fingerprint(&image), before, "the image was written to");
    assert!(home.ps().is_empty());
}

#[test]
fn vmdk_boots_in_the_foreground_and_stops_from_another_process() {
    let _slots = vm_slots(1);
    let home = TestHome::new();
    let key = key();
    let mut fg = home
        .cmd(&[
            "run",
            "--name",
            "fg",
            "--ssh-key",
            key.to_str().unwrap(),
            guest().join("vmtest.vmdk").to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = until_ready(fg.stdout.take().unwrap());
    assert_eq!(home.inspect("fg")["format"], "vmdk");
    assert_eq!(home.ok(&["exec", "fg", "uname", "-s"]), "Linux");
    home.ok(&["stop", "fg"]);
    for _ in lines.by_ref() {}
    let status = fg.wait().unwrap();
    assert!(status.success(), "foreground run exited with {status}");
    let c = home.inspect("fg");
    assert_eq!(c["status"], "stopped");
    assert_eq!(c["exit_code"], 0);
}

#[test]
fn kill_9_of_qemu_shows_as_killed_and_detached_vm_outlives_its_starter() {
    let _slots = vm_slots(1);
    // A deep home: QMP and console sockets must move to a short directory.
    let home = TestHome::deep();
    // `run -d` is a process that exits; the VM must outlive it.
    let id = home.ok(&["run", "-d", guest().join("vmtest.iso").to_str().unwrap()]);
    std::thread::sleep(Duration::from_millis(500));
    let c = home
        .ps()
        .into_iter()
        .find(|c| c["id"] == id.as_str())
        .unwrap();
    assert_eq!(c["status"], "running");
    let pid = c["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = home
            .ps()
            .into_iter()
            .find(|c| c["id"] == id.as_str())
            .unwrap()["status"]
            .clone();
        if st != "running" {
            // Not a clean power-off: the record says it was killed.
            assert_eq!(st, "killed");
            break;
        }
        assert!(Instant::now() < deadline, "still {st} after kill -9");
        std::thread::sleep(Duration::from_millis(100));
    }
    let reason = home.inspect(&id)["exit_reason"].clone();
    assert!(
        reason.as_str().unwrap_or_default().contains("killed"),
        "{reason}"
    );
    let out = home.run(&["stop", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not running"), "{}", stderr(&out));
}

#[test]
fn run_from_a_template_builds_with_linuxkit_and_takes_its_size() {
    let _slots = vm_slots(1);
    let home = TestHome::new();
    // A stand-in `linuxkit` (the real one cannot be installed here) that
    // records its arguments and "builds" the test guest's ISO.
    let bin = tempfile::tempdir().unwrap();
    let fake = bin.path().join("linuxkit");
    let iso = guest().join("vmtest.iso");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$@\" > \"{args}\"\nwhile [ $# -gt 1 ]; do case $1 in --name) n=$2;; --dir) d=$2;; esac; shift; done\ncp \"$1\" \"{yml}\"\ncp \"{iso}\" \"$d/$n.iso\"\n",
            args = bin.path().join("args").display(),
            yml = bin.path().join("built.yml").display(),
            iso = iso.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = home
        .cmd(&[
            "run",
            "-d",
            "--template",
            "server-php",
            "--var",
            "SSH_KEY=ssh-ed25519 AAAATEST me",
            "--var",
            "APP_NAME=shop",
        ])
        .env("VMCONTAINER_LINUXKIT", &fake)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let args = std::fs::read_to_string(bin.path().join("args")).unwrap();
    assert!(
        args.starts_with("build --format iso-bios --name server-php"),
        "{args}"
    );
    let yml = std::fs::read_to_string(bin.path().join("built.yml")).unwrap();
    assert!(yml.contains("ssh-ed25519 AAAATEST me") && yml.contains("shop") && !yml.contains("${"));
    let c = home.inspect(&id);
    assert_eq!(
        (c["memory"].as_u64(), c["cpus"].as_u64()),
        (Some(512), Some(1))
    );
    assert_eq!(c["format"], "iso");
    home.wait_log(&id, "VMTEST READY");
}
