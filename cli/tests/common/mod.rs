//! Shared helpers for tests that drive the real `vmcontainer` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Generous: a loaded CI machine under TCG is much slower than an idle one.
pub const BOOT_DEADLINE_SECS: u64 = 240;

/// The test guest, built (or taken from cache) by tests/guest/build.sh.
pub fn guest() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("VMCONTAINER_TEST_GUEST") {
            return PathBuf::from(d);
        }
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let out = Command::new("bash")
            .arg(repo.join("tests/guest/build.sh"))
            .output()
            .expect("run tests/guest/build.sh");
        assert!(
            out.status.success(),
            "building the test guest failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(
            dir.lines()
                .last()
                .expect("build.sh prints its output dir")
                .trim(),
        )
    })
}

pub fn key() -> PathBuf {
    guest().join("id_ed25519")
}

/// At most two VMs run at once across all tests of a binary: under TCG each
/// vCPU takes a whole core.
pub struct VmSlots(usize);
static SLOTS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());
const MAX_VMS: usize = 2;

pub fn vm_slots(n: usize) -> VmSlots {
    let (m, cv) = &SLOTS;
    let mut used = m.lock().unwrap();
    while *used + n > MAX_VMS {
        used = cv.wait(used).unwrap();
    }
    *used += n;
    VmSlots(n)
}

impl Drop for VmSlots {
    fn drop(&mut self) {
        let (m, cv) = &SLOTS;
        *m.lock().unwrap() -= self.0;
        cv.notify_all();
    }
}

/// A private VMCONTAINER_HOME; removes every container on drop so a failed
/// test leaves no VM behind.
pub struct TestHome {
    pub dir: tempfile::TempDir,
    sub: Option<PathBuf>,
}

impl TestHome {
    pub fn new() -> Self {
        TestHome {
            dir: Self::tempdir(),
            sub: None,
        }
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("vmc")
            .tempdir_in("/tmp")
            .unwrap()
    }

    /// A home so deep that socket paths under it would exceed the OS
    /// limit, forcing the short runtime-directory fallback.
    pub fn deep() -> Self {
        let dir = Self::tempdir();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        TestHome {
            dir,
            sub: Some(deep),
        }
    }

    /// A home at `<tempdir>/<sub>` (`sub` may hold several levels and any
    /// character a path can).
    pub fn nested(sub: &str) -> Self {
        let dir = Self::tempdir();
        let path = dir.path().join(sub);
        std::fs::create_dir_all(&path).unwrap();
        TestHome {
            dir,
            sub: Some(path),
        }
    }

    /// A home at `path` (created), e.g. on a file system the test mounted.
    pub fn at(path: PathBuf) -> Self {
        std::fs::create_dir_all(&path).unwrap();
        TestHome {
            dir: Self::tempdir(),
            sub: Some(path),
        }
    }

    pub fn path(&self) -> &Path {
        self.sub.as_deref().unwrap_or(self.dir.path())
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vmcontainer"));
        c.args(args).env("VMCONTAINER_HOME", self.path());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("spawn vmcontainer")
    }

    /// Runs and asserts success; returns trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vmcontainer {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn ps(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["ps", "-a", "--json"])).unwrap()
    }

    pub fn inspect(&self, id: &str) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(&self.ok(&["inspect", id])).unwrap();
        v[0].clone()
    }

    /// Starts a detached container and waits until SSH answers.
    pub fn run_ready(&self, extra: &[&str], image: &Path) -> String {
        self.run_ready_with_key(extra, image, &key())
    }

    /// [`Self::run_ready`] with another private key.
    pub fn run_ready_with_key(&self, extra: &[&str], image: &Path, key: &Path) -> String {
        let mut args = vec!["run", "-d", "--ssh-key", key.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(image.to_str().unwrap());
        let id = self.ok(&args);
        self.ok(&["wait", "--timeout", &BOOT_DEADLINE_SECS.to_string(), &id]);
        id
    }

    pub fn log(&self, id: &str) -> String {
        self.ok(&["logs", id])
    }

    /// Waits until the serial log contains `needle`.
    pub fn wait_log(&self, id: &str, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(BOOT_DEADLINE_SECS);
        while !self.log(id).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "log of {id} never showed {needle:?}:\n{}",
                self.log(id)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for TestHome {
    fn drop(&mut self) {
        if let Ok(out) = self.cmd(&["ps", "-a", "--json"]).output() {
            if let Ok(list) = serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout) {
                for c in list {
                    let id = c["id"].as_str().unwrap_or_default().to_string();
                    let _ = self.cmd(&["rm", "-f", &id]).output();
                }
            }
        }
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Listening TCP sockets on `port` as (address hex, port) from /proc/net/tcp.
pub fn listeners(port: u16) -> Vec<String> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    tcp.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (addr, p) = f.get(1)?.split_once(':')?;
            (f.get(3) == Some(&"0A") && u16::from_str_radix(p, 16).ok()? == port)
                .then(|| addr.to_string())
        })
        .collect()
}

/// A plain HTTP GET on loopback; returns the body.
pub fn http_get(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    r.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
}

/// Reads a foreground `run`'s output until the guest says it is ready;
/// returns the rest of the lines.
pub fn until_ready(
    out: std::process::ChildStdout,
) -> std::io::Lines<std::io::BufReader<std::process::ChildStdout>> {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(out).lines();
    let deadline = Instant::now() + Duration::from_secs(BOOT_DEADLINE_SECS);
    loop {
        let line = lines.next().expect("foreground output ended").unwrap();
        if line.contains("VMTEST READY") {
            return lines;
        }
        assert!(Instant::now() < deadline, "the guest never became ready");
    }
}

/// Whether `pid` is a live process (a zombie counts as dead).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s[s.rfind(')').unwrap() + 2..].starts_with('Z'))
}

/// Asserts that a record's `exit_reason` mentions `needle`.
pub fn assert_reason(c: &serde_json::Value, needle: &str) {
    let reason = c["exit_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(needle),
        "{needle:?} not in the reason of {c}"
    );
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
