//! The blocking facade's registry twins against a real registry: Debian's
//! docker-registry (the CNCF distribution registry) on a loopback port.
//! Push with progress on the calling thread, pull into another home, the
//! store's listing, the export's missing-containerDisk error, and a
//! cancelled pull from a registry that never answers. Fails (never skips)
//! when docker-registry is missing; scripts/deps.sh installs it.
#![cfg(feature = "registry")]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vmcontainer::blocking::Manager;
use vmcontainer::registry::{PullOptions, PushOptions};
use vmcontainer::{CancelToken, Error, ErrorKind};

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vmc-regblk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The registry process, killed on drop.
struct Registry(Child);

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts docker-registry with its storage under `dir`; its address.
fn start_registry(dir: &Path) -> (Registry, String) {
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:0\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("docker-registry is not installed (apt-get install docker-registry)");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let registry = Registry(child);
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split("listening on ")
                .nth(1)
                .map(|a| a.split(['"', ' ']).next().unwrap_or_default().to_string())
        })
        .expect("docker-registry did not say where it listens");
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (registry, addr)
}

#[test]
fn push_pull_list_and_cancel_through_the_blocking_facade() {
    let scratch = Scratch::new("main");
    let (_registry, addr) = start_registry(&scratch.0);
    let disk = scratch.0.join("tiny.raw");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7919) as u8).collect();
    std::fs::write(&disk, &bytes).unwrap();

    let m = Manager::new(Some(&scratch.0.join("a")), Some("qemu")).unwrap();
    let reference = format!("{addr}/faces/rust-disk:v1");
    let caller = std::thread::current().id();
    let (mut calls, mut last, mut elsewhere) = (0, (0, None), false);
    let mut progress = |done: u64, total: Option<u64>| {
        calls += 1;
        last = (done, total);
        elsewhere |= std::thread::current().id() != caller;
    };
    let opts = PushOptions {
        progress: Some(&mut progress),
        ..Default::default()
    };
    let pushed = m.push(&disk, &reference, opts).unwrap();
    assert_eq!(
        (pushed.kind, pushed.size),
        ("vmcontainer", bytes.len() as u64)
    );
    let n = bytes.len() as u64;
    assert!(
        calls > 0 && last == (n, Some(n)) && !elsewhere,
        "{calls} {last:?} {elsewhere}"
    );

    let other = Manager::new(Some(&scratch.0.join("b")), Some("qemu")).unwrap();
    let pulled = other.pull(&reference, PullOptions::default()).unwrap();
    assert_eq!(pulled.image.digest, pushed.digest);
    assert!(!pulled.already_present);
    assert_eq!(std::fs::read(&pulled.image.path).unwrap(), bytes);
    let listed = other.pulled_images().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].reference, reference);

    let e = m.export_kubevirt(disk.to_str().unwrap(), None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let yaml = m
        .export_kubevirt(disk.to_str().unwrap(), Some(&reference))
        .unwrap();
    assert!(
        yaml.contains("kind: VirtualMachine") && yaml.contains(&reference),
        "{yaml}"
    );

    // A registry that accepts connections and never answers: the pull
    // waits until the token is cancelled from another thread.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang = format!("{}/faces/hang:v1", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut c in silent.incoming().map_while(Result::ok) {
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            held.push(c);
        }
    });
    let token = CancelToken::new();
    let t2 = token.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        t2.cancel();
    });
    let started = Instant::now();
    let e = other
        .with_cancel(token)
        .pull(&hang, PullOptions::default())
        .unwrap_err();
    assert!(matches!(e, Error::Cancelled(_)), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
