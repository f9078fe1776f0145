//! Snapshots, warm starts and commit with the real test guest under QEMU:
//! one source VM is snapshotted while it works, clones resume side by
//! side, and every bad input is refused without leaving anything behind.
//! At most two VMs run at once; boots are shared within each test.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// Mounts the guest's FAT boot disk at /mnt/disk (idempotent).
const MOUNT_DISK: &str =
    "mkdir -p /mnt/disk && (grep -q ' /mnt/disk ' /proc/mounts || mount -t vfat /dev/sda /mnt/disk)";

fn sh(home: &TestHome, id: &str, script: &str) -> String {
    home.ok(&["exec", id, "sh", "-c", script])
}

fn counter(home: &TestHome, id: &str) -> u64 {
    sh(home, id, "cat /mnt/tmp/counter")
        .parse()
        .unwrap_or_else(|e| panic!("counter of {id} unreadable: {e}"))
}

/// Waits until the guest's counter passes `above`.
fn counter_passes(home: &TestHome, id: &str, above: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = counter(home, id);
        if n > above {
            return n;
        }
        assert!(Instant::now() < deadline, "counter of {id} stuck at {n}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn qemu_pids_of(home: &Path) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-f", &home.display().to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.contains("qemu-system"))
        })
        .collect()
}

/// Asserts `args` fails with a message containing every one of `needles`,
/// and that it left no container, snapshot or VM behind.
fn refused(home: &TestHome, args: &[&str], needles: &[&str]) {
    let containers = home.ps().len();
    let snapshots = home.ok(&["snapshot", "ls", "--json"]);
    let vms = qemu_pids_of(home.path()).len();
    let out = home.run(args);
    let err = stderr(&out);
    assert!(
        !out.status.success(),
        "{args:?} succeeded: {}",
        stdout(&out)
    );
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} does not mention {n:?}");
    }
    assert_eq!(err.lines().count(), 1, "not a one-line error: {err}");
    assert_eq!(home.ps().len(), containers, "{args:?} left a container");
    assert_eq!(home.ok(&["snapshot", "ls", "--json"]), snapshots);
    assert_eq!(qemu_pids_of(home.path()).len(), vms, "{args:?} left a VM");
    let tmp: Vec<_> = std::fs::read_dir(home.path().join("snapshots"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        tmp.iter().all(|n| !n.to_string_lossy().starts_with('.')),
        "{args:?} left {tmp:?}"
    );
}

/// A copy of snapshot `from` named `to` (files hard-linked) whose
/// metadata is changed by `edit`.
fn doctored(home: &TestHome, from: &str, to: &str, edit: impl Fn(&mut serde_json::Value)) {
    let src = home.path().join("snapshots").join(from);
    let dst = home.path().join("snapshots").join(to);
    std::fs::create_dir(&dst).unwrap();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        if e.file_name() != "snapshot.json" {
            std::fs::hard_link(e.path(), dst.join(e.file_name())).unwrap();
        }
    }
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("snapshot.json")).unwrap()).unwrap();
    meta["name"] = to.into();
    edit(&mut meta);
    std::fs::write(dst.join("snapshot.json"), meta.to_string()).unwrap();
}

#[test]
fn snapshot_of_a_working_guest_resumes_twice_side_by_side_and_commits() {
    let _slots = vm_slots(2);
    let home = TestHome::new();
    let image = guest().join("vmtest.qcow2");
    let src = home.run_ready(&["--name", "src", "--memory", "256"], &image);
    // A file in tmpfs, a file on the disk, a counting process, and a
    // writer appending numbered lines to the disk (with periodic syncs)
    // while the snapshot is taken.
    sh(
        &home,
        &src,
        &format!(
            "{MOUNT_DISK} && mkdir -p /mnt/tmp && mount -t tmpfs tmpfs /mnt/tmp \
             && echo in-tmpfs > /mnt/tmp/t.txt && echo on-disk > /mnt/disk/ondisk.txt && sync"
        ),
    );
    sh(
        &home,
        &src,
        "(n=0; while :; do n=$((n+1)); echo $n > /mnt/tmp/counter.new; mv /mnt/tmp/counter.new /mnt/tmp/counter; sleep 0.2; done) </dev/null >/dev/null 2>&1 &
         (i=0; while :; do i=$((i+1)); echo $i >> /mnt/disk/seq.txt; [ $((i % 50)) = 0 ] && sync; done) </dev/null >/dev/null 2>&1 &
         echo $! > /mnt/tmp/writer.pid",
    );
    let before = counter_passes(&home, &src, 3);

    let started = Instant::now();
    assert_eq!(home.ok(&["snapshot", "create", "src", "warm"]), "warm");
    eprintln!("snapshot create took {:?}", started.elapsed());
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&home.ok(&["snapshot", "ls", "--json"])).unwrap();
    assert_eq!(list.len(), 1);
    let s = &list[0];
    assert_eq!(s["name"], "warm");
    assert_eq!(s["source_id"], src.as_str());
    assert_eq!(s["memory"], 256);
    assert_eq!(s["cpus"], 1);
    assert_eq!(s["disk"], true);
    assert!(s["size"].as_u64().unwrap() > 1 << 20, "{s}");
    assert!(s["qemu_version"].as_str().unwrap().contains('.'));
    assert!(s["machine"].as_str().unwrap().starts_with("pc-"));
    let dir = home.path().join("snapshots/warm");
    for f in ["snapshot.json", "memory.raw", "state.bin", "disk.qcow2"] {
        assert!(dir.join(f).is_file(), "no {f} in {}", dir.display());
    }
    assert!(home.ok(&["snapshot", "ls"]).contains("warm"));
    let shown: serde_json::Value =
        serde_json::from_str(&home.ok(&["snapshot", "inspect", "warm"])).unwrap();
    assert_eq!(shown, serde_json::Value::Array(list.clone()));

    // The source keeps running, on a new overlay above the frozen disk.
    let after = counter_passes(&home, &src, before);
    assert!(after > before);
    let disk = home.inspect(&src)["disk"].as_str().unwrap().to_string();
    assert!(disk.ends_with("/disk.1.qcow2"), "source disk {disk}");
    sh(&home, &src, "echo src-only > /mnt/tmp/src.txt");

    // Bad input, while a source is running: each is refused cleanly.
    refused(
        &home,
        &["snapshot", "create", "src", "warm"],
        &["warm", "already exists"],
    );
    refused(
        &home,
        &["snapshot", "create", "src", "a/b"],
        &["snapshot name", "a/b"],
    );
    refused(
        &home,
        &["snapshot", "create", "src", "../up"],
        &["snapshot name"],
    );
    refused(
        &home,
        &["snapshot", "create", "nosuch", "x"],
        &["container not found", "nosuch"],
    );
    refused(
        &home,
        &["run", "-d", "--snapshot", "nosuch"],
        &["snapshot not found", "nosuch"],
    );
    refused(
        &home,
        &["run", "-d", "--snapshot", "a/b"],
        &["snapshot name", "a/b"],
    );
    refused(
        &home,
        &["snapshot", "rm", "nosuch"],
        &["snapshot not found", "nosuch"],
    );
    refused(
        &home,
        &["snapshot", "inspect", "warm", "nosuch"],
        &["snapshot not found", "nosuch"],
    );
    refused(
        &home,
        &["run", "-d", "--snapshot", "warm", "--memory", "512"],
        &["warm", "256 MB", "512"],
    );
    refused(
        &home,
        &["run", "-d", "--snapshot", "warm", "--name", "src"],
        &["src", "already exists"],
    );
    // A snapshot taken with another device set (e.g. before the VMs got a
    // guest-agent port) or by another QEMU is refused before anything runs.
    doctored(&home, "warm", "other-devices", |m| {
        m["devices"]
            .as_array_mut()
            .unwrap()
            .push("-device virtio-serial-pci".into())
    });
    refused(
        &home,
        &["run", "-d", "--snapshot", "other-devices"],
        &["other-devices", "other devices", "virtio-serial-pci"],
    );
    doctored(&home, "warm", "other-qemu", |m| {
        m["qemu_version"] = "1.0.0".into()
    });
    refused(
        &home,
        &["run", "-d", "--snapshot", "other-qemu"],
        &["other-qemu", "QEMU 1.0.0"],
    );
    // A damaged state file makes QEMU give up while loading: a clear
    // error with QEMU's reason, and the half-started VM is gone.
    doctored(&home, "warm", "damaged", |_| {});
    let state = home.path().join("snapshots/damaged/state.bin");
    let bytes = std::fs::read(&state).unwrap();
    std::fs::remove_file(&state).unwrap();
    std::fs::write(&state, &bytes[..bytes.len() / 3]).unwrap();
    refused(
        &home,
        &["run", "-d", "--snapshot", "damaged"],
        &["damaged", "resuming it failed"],
    );
    for s in ["other-devices", "other-qemu", "damaged"] {
        home.ok(&["snapshot", "rm", s]);
    }

    // A clone resumes where the source was: both files, the counter goes on.
    let t = Instant::now();
    let c1 = home.ok(&["run", "-d", "--snapshot", "warm", "--name", "c1"]);
    sh(&home, &c1, "true");
    eprintln!("run --snapshot to exec-ready took {:?}", t.elapsed());
    assert_eq!(home.inspect(&c1)["snapshot"], "warm");
    // The guest saw its VM generation ID change and reseeded its RNG, so
    // clones do not share random numbers.
    home.wait_log(&c1, "crng reseeded due to virtual machine fork");
    assert_ne!(
        home.inspect(&c1)["ssh_port"],
        home.inspect(&src)["ssh_port"]
    );
    assert_eq!(
        sh(&home, &c1, "cat /mnt/tmp/t.txt /mnt/disk/ondisk.txt"),
        "in-tmpfs\non-disk"
    );
    // Counting on from the snapshot's instant, not from zero, and not
    // the source's live count.
    let resumed = counter(&home, &c1);
    let live = counter(&home, &src);
    assert!(
        resumed >= before && resumed < live,
        "{before} {resumed} {live}"
    );
    counter_passes(&home, &c1, resumed);
    // Independent of the source, both ways.
    assert_eq!(
        sh(&home, &c1, "ls /mnt/tmp/src.txt 2>/dev/null || true"),
        ""
    );
    sh(
        &home,
        &c1,
        "echo c1-only > /mnt/tmp/c1.txt && echo c1-disk > /mnt/disk/c1.txt && sync",
    );
    assert_eq!(
        sh(
            &home,
            &src,
            "ls /mnt/tmp/c1.txt /mnt/disk/c1.txt 2>/dev/null || true"
        ),
        ""
    );

    // The snapshot does not need its source.
    home.ok(&["rm", "-f", "src"]);
    let c2 = home.ok(&["run", "-d", "--snapshot", "warm", "--name", "c2"]);
    assert_eq!(
        sh(&home, &c2, "cat /mnt/tmp/t.txt /mnt/disk/ondisk.txt"),
        "in-tmpfs\non-disk"
    );
    counter_passes(&home, &c2, counter(&home, &c2));
    assert_eq!(
        sh(
            &home,
            &c2,
            "ls /mnt/tmp/c1.txt /mnt/disk/c1.txt 2>/dev/null || true"
        ),
        ""
    );
    sh(&home, &c2, "echo c2-only > /mnt/tmp/c2.txt");
    let random = "head -c 16 /dev/urandom | od -An -tx1";
    assert_ne!(sh(&home, &c1, random), sh(&home, &c2, random));
    assert_eq!(sh(&home, &c1, "ls /mnt/tmp/c2.txt 2>/dev/null || true"), "");
    // Disk and memory were saved at one instant: after the writer stops,
    // the file read back from the disk (not the page cache) is the
    // unbroken sequence the guest's memory had.
    let seq = sh(
        &home,
        &c2,
        "kill $(cat /mnt/tmp/writer.pid); sleep 0.5; sync; umount /mnt/disk && mount -t vfat /dev/sda /mnt/disk && cat /mnt/disk/seq.txt",
    );
    let numbers: Vec<u64> = seq.lines().map(|l| l.parse().unwrap()).collect();
    assert!(
        numbers.len() > 50,
        "the writer barely ran: {}",
        numbers.len()
    );
    assert!(
        numbers.iter().enumerate().all(|(i, n)| *n == i as u64 + 1),
        "seq.txt is not 1..N after resume: {:?}",
        &numbers[..numbers.len().min(20)]
    );

    refused(
        &home,
        &["snapshot", "rm", "warm"],
        &["warm", "in use", &c1, &c2],
    );

    // commit: c1's disk as a standalone image that boots on its own.
    let out = tempfile::tempdir().unwrap();
    let committed = out.path().join("c1.qcow2");
    let committed = committed.to_str().unwrap();
    refused(
        &home,
        &["commit", "c1", "/nonexistent-dir/x.qcow2"],
        &["directory does not exist"],
    );
    refused(
        &home,
        &["commit", "c1", out.path().join("x.img").to_str().unwrap()],
        &["must end in .qcow2"],
    );
    assert_eq!(home.ok(&["commit", "c1", committed]), committed);
    refused(&home, &["commit", "c1", committed], &["already exists"]);
    let info = std::process::Command::new("qemu-img")
        .args(["info", "--output=json", committed])
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert!(
        info.get("backing-filename").is_none(),
        "not standalone: {info}"
    );
    // c1 went on running through the commit.
    counter_passes(&home, &c1, counter(&home, &c1));
    home.ok(&["rm", "-f", "c1"]);

    // A snapshot of a clone (whose RAM is the first snapshot's file)
    // resumes too, and keeps the first one alive.
    home.ok(&["snapshot", "create", "c2", "second"]);
    let c3 = home.ok(&["run", "-d", "--snapshot", "second", "--name", "c3"]);
    assert_eq!(
        sh(&home, &c3, "cat /mnt/tmp/c2.txt /mnt/disk/ondisk.txt"),
        "c2-only\non-disk"
    );
    counter_passes(&home, &c3, counter(&home, &c3));
    refused(
        &home,
        &["snapshot", "rm", "warm"],
        &["warm", &c2, "snapshot second"],
    );
    refused(&home, &["snapshot", "rm", "second"], &["second", &c3]);
    home.ok(&["rm", "-f", "c2", "c3"]);
    home.ok(&["snapshot", "rm", "second", "warm"]);
    assert_eq!(home.ok(&["snapshot", "ls", "--json"]), "[]");

    let booted = home.run_ready(&[], Path::new(committed));
    assert_eq!(
        sh(
            &home,
            &booted,
            &format!("{MOUNT_DISK} && cat /mnt/disk/ondisk.txt /mnt/disk/c1.txt")
        ),
        "on-disk\nc1-disk"
    );
}

#[test]
fn a_full_disk_fails_the_snapshot_cleanly_and_a_stopped_container_is_refused() {
    let _slots = vm_slots(1);
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test mounts a small tmpfs as the home to fill it; run it as root"
    );
    let mnt = tempfile::Builder::new()
        .prefix("vmcfull")
        .tempdir_in("/tmp")
        .unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=400m,mode=0700", "tmpfs"])
        .arg(mnt.path())
        .status()
        .unwrap();
    assert!(ok.success(), "mount tmpfs on {}", mnt.path().display());
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.0)
                .status();
        }
    }
    let _unmount = Unmount(mnt.path());
    let home = TestHome::at(mnt.path().join("home"));
    let id = home.run_ready(&["--memory", "256"], &guest().join("vmtest.qcow2"));

    // Leave 30 MB: less than the state of a booted guest.
    let filler = mnt.path().join("filler");
    let free = nix::sys::statvfs::statvfs(mnt.path()).unwrap();
    let avail = free.blocks_available() * free.fragment_size();
    std::fs::write(&filler, vec![1u8; (avail - (30 << 20)) as usize]).unwrap();
    let out = home.run(&["snapshot", "create", &id, "full"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("full") && err.contains("No space left on device"),
        "{err}"
    );
    assert_eq!(home.ok(&["snapshot", "ls", "--json"]), "[]");
    let left: Vec<_> = std::fs::read_dir(home.path().join("snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // The source was resumed and still writes to its disk.
    assert_eq!(
        sh(
            &home,
            &id,
            &format!("{MOUNT_DISK} && echo still > /mnt/disk/s.txt && sync && cat /mnt/disk/s.txt")
        ),
        "still"
    );

    // With room again the same snapshot succeeds.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(home.ok(&["snapshot", "create", &id, "full"]), "full");

    home.ok(&["stop", &id]);
    refused(
        &home,
        &["snapshot", "create", &id, "later"],
        &[&id, "not running"],
    );
    home.ok(&["snapshot", "rm", "full"]);
}
