//! Registries against real parts: Debian's `docker-registry` (the CNCF
//! distribution registry) started per test on a free loopback port with
//! filesystem storage in a temporary directory, the real `vmcontainer`
//! binary pushing and pulling through it, blobs and manifests read back
//! through the registry's HTTP API, the registry's storage corrupted on
//! disk, KubeVirt exports validated against KubeVirt's OpenAPI schema
//! (tests/data/kubevirt), and one boot of a pulled image. Nothing skips:
//! a missing `docker-registry`, `htpasswd` or QEMU fails the test.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------
// A real registry.

struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// An anonymous registry.
    fn start() -> Registry {
        Registry::start_with(|_| String::new())
    }

    /// A registry that asks for HTTP basic credentials `user`:`password`
    /// (bcrypt entry made by `htpasswd -B`).
    fn with_basic_auth(user: &str, password: &str) -> Registry {
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("run htpasswd (apache2-utils)");
        assert!(out.status.success(), "htpasswd: {}", stderr(&out));
        // The registry re-reads the file on every request: it lives as
        // long as the registry, in the registry's directory.
        Registry::start_with(|dir| {
            let file = dir.join("htpasswd");
            std::fs::write(&file, &out.stdout).unwrap();
            format!(
                "auth:\n  htpasswd:\n    realm: vmcontainer-test\n    path: {}\n",
                file.display()
            )
        })
    }

    /// A registry whose config ends with what `extra` returns (given the
    /// registry's directory).
    fn start_with(extra: impl FnOnce(&Path) -> String) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("vmcreg")
            .tempdir_in("/tmp")
            .unwrap();
        let extra = extra(dir.path());
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
                dir.path().join("storage").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry (Debian package docker-registry)");
        let mut r = Registry { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(st) = r.child.try_wait().unwrap() {
                panic!("docker-registry exited ({st}):\n{}", r.log());
            }
            assert!(Instant::now() < deadline, "registry never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    /// `127.0.0.1:PORT`.
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/REPO`.
    fn at(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// How many times the blob `digest` was downloaded (GET, not HEAD).
    fn blob_gets(&self, digest: &str) -> usize {
        let needle = format!("/blobs/{digest} ");
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET ") && l.contains(&needle))
            .count()
    }

    /// How many times the layers of `repo:tag` were downloaded (configs,
    /// a few hundred bytes read on every pull, are not counted).
    fn layer_gets(&self, repo: &str, tag: &str) -> usize {
        let (m, _) = self.manifest(repo, tag);
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| self.blob_gets(l["digest"].as_str().unwrap()))
            .sum()
    }

    /// A GET on the registry API: (status, body).
    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {}\r\nAccept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json\r\n\r\n",
            self.host()
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("HTTP answer");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, raw[split + 4..].to_vec())
    }

    /// The manifest `reference` (tag or digest) of `repo`, and the sha256
    /// of its bytes.
    fn manifest(&self, repo: &str, reference: &str) -> (Value, String) {
        let (status, body) = self.get(&format!("/v2/{repo}/manifests/{reference}"));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        (serde_json::from_slice(&body).unwrap(), sha256_of(&body))
    }

    fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        let (status, body) = self.get(&format!("/v2/{repo}/blobs/{digest}"));
        assert_eq!(status, 200, "blob {digest}");
        body
    }

    /// Where the registry keeps the blob `digest` on disk.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// Running the CLI with no credentials but the test's.

/// A home with no registry credentials from the caller's environment:
/// the Docker config is an empty directory of the test's.
struct Client {
    home: TestHome,
    docker_config: tempfile::TempDir,
}

impl Client {
    fn new() -> Client {
        Client {
            home: TestHome::new(),
            docker_config: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.home.cmd(args);
        for v in [
            "VMCONTAINER_REGISTRY_TOKEN",
            "VMCONTAINER_REGISTRY_USER",
            "VMCONTAINER_REGISTRY_PASSWORD",
            "REGISTRY_AUTH",
        ] {
            c.env_remove(v);
        }
        c.env("DOCKER_CONFIG", self.docker_config.path())
            .stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vmcontainer {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Runs, asserts failure, returns stderr.
    fn fail(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "vmcontainer {args:?} should have failed:\n{}",
            stdout(&out)
        );
        stderr(&out)
    }

    fn push(&self, image: &Path, reference: &str) -> Value {
        self.json(&["push", "--json", image.to_str().unwrap(), reference])
    }

    fn pull(&self, reference: &str) -> Value {
        self.json(&["pull", "--json", reference])
    }

    /// Every file of an installed image under `images/oci/sha256/`: lock
    /// files and the hidden `.DIGEST.partial` directories an interrupted
    /// pull resumes from are not installed images.
    fn installed(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let root = self.home.path().join("images/oci/sha256");
        let mut stack = vec![root];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if e.file_name().to_string_lossy().starts_with('.') {
                    continue;
                }
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
        out
    }
}

fn sha256_of(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The digest of a file, computed once per path (the test guest's files
/// are hashed by several tests; a debug build hashes slowly).
fn file_digest(p: &Path) -> String {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(d) = seen.lock().unwrap().get(p) {
        return d.clone();
    }
    let d = sha256_of(&std::fs::read(p).unwrap());
    seen.lock().unwrap().insert(p.to_path_buf(), d.clone());
    d
}

/// Whether two files hold the same bytes.
fn same_file_bytes(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

fn digest_hex(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap()
}

/// The repository part of `host:port/repo:tag`.
fn repo_of(reference: &str) -> &str {
    let path = reference.split_once('/').unwrap().1;
    path.split([':', '@']).next().unwrap()
}

// ---------------------------------------------------------------------------
// Push and pull.

/// Checks the artifact `reference` in the registry against the files that
/// were pushed: one layer per file, each a blob with the file's digest, the
/// media types and roles of the README's table, the format in the config.
fn check_artifact(reg: &Registry, reference: &str, pushed: &Value, files: &[(&Path, &str, &str)]) {
    let repo = repo_of(reference);
    let tag = reference.rsplit(':').next().unwrap();
    let (m, digest) = reg.manifest(repo, tag);
    assert_eq!(pushed["digest"], digest.as_str(), "push reports {pushed}");
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["artifactType"],
        "application/vnd.vmcontainer.image.v1+json"
    );
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.vmcontainer.image.v1+json"
    );
    let config: Value =
        serde_json::from_slice(&reg.blob(repo, m["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(config["format"], pushed["format"], "config {config}");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), files.len(), "{m}");
    for (layer, (file, media, role)) in layers.iter().zip(files) {
        let want = file_digest(file);
        assert_eq!(layer["digest"], want.as_str(), "{layer}");
        assert_eq!(
            layer["mediaType"],
            format!("application/vnd.vmcontainer.image.layer.v1.{media}")
        );
        let a = &layer["annotations"];
        assert_eq!(a["vnd.vmcontainer.image.role"], *role);
        assert_eq!(
            a["org.opencontainers.image.title"],
            file.file_name().unwrap().to_str().unwrap()
        );
        assert!(
            reg.blob(repo, &want) == std::fs::read(file).unwrap(),
            "blob {want} is not {file:?}"
        );
    }
}

#[test]
fn push_then_pull_each_format_with_digests_verified() {
    let g = guest();
    let reg = Registry::start();
    let up = Client::new();
    let kernel = g.join("vmtest-kernel");
    let initrd = g.join("vmtest-initrd.img");
    let cmdline = g.join("vmtest-cmdline");
    let singles: [(&str, &str, &str, &str); 3] = [
        ("vmtest.qcow2", "qcow2", "disk", "qcow2"),
        ("vmtest.iso", "iso", "cdrom", "iso"),
        ("vmtest.vmdk", "vmdk", "disk", "vmdk"),
    ];
    let down = Client::new();
    for (file, media, role, format) in singles {
        let path = g.join(file);
        let r = reg.at(&format!("vm/{media}:1"));
        let pushed = up.push(&path, &r);
        assert_eq!(pushed["format"], format);
        assert_eq!(pushed["kind"], "vmcontainer");
        check_artifact(&reg, &r, &pushed, &[(&path, media, role)]);
        let pulled = down.pull(&r);
        assert_eq!(pulled["digest"], pushed["digest"]);
        let local = PathBuf::from(pulled["path"].as_str().unwrap());
        assert!(
            local.starts_with(down.home.path().join("images")),
            "{local:?}"
        );
        assert!(same_file_bytes(&local, &path), "{file}");
    }

    // The LinuxKit triplet: one artifact, three layers.
    let r = reg.at("vm/linuxkit:1");
    let pushed = up.push(&kernel, &r);
    assert_eq!(pushed["format"], "kernel+initrd");
    check_artifact(
        &reg,
        &r,
        &pushed,
        &[
            (&kernel, "kernel", "kernel"),
            (&initrd, "initrd", "initrd"),
            (&cmdline, "cmdline", "cmdline"),
        ],
    );
    let pulled = down.pull(&r);
    let files = pulled["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "{pulled}");
    let local = PathBuf::from(pulled["path"].as_str().unwrap());
    let dir = local.parent().unwrap();
    for (src, f) in [&kernel, &initrd, &cmdline].iter().zip(files) {
        let name = f["name"].as_str().unwrap();
        assert_eq!(name, src.file_name().unwrap().to_str().unwrap());
        assert!(same_file_bytes(&dir.join(name), src), "{name}");
        assert_eq!(f["digest"], file_digest(src).as_str());
    }

    // Pulling again downloads nothing; by digest finds the same image.
    // (check_artifact read each layer once through the API too.)
    let before = reg.layer_gets("vm/linuxkit", "1");
    let again = down.pull(&r);
    assert_eq!(again["already_present"], true, "{again}");
    assert_eq!(again["downloaded"], 0);
    let by_digest = down.pull(&format!(
        "{}@{}",
        reg.at("vm/linuxkit"),
        pushed["digest"].as_str().unwrap()
    ));
    assert_eq!(by_digest["path"], pulled["path"]);
    assert_eq!(
        reg.layer_gets("vm/linuxkit", "1"),
        before,
        "a present image was downloaded again"
    );
}

#[test]
fn basic_auth_from_env_and_docker_config_never_leaks_the_secret() {
    let reg = Registry::with_basic_auth("alice", "s3cret-pw");
    let c = Client::new();
    let iso = guest().join("vmtest.iso");
    let r = reg.at("vm/private:1");

    let err = c.fail(&["push", iso.to_str().unwrap(), &r]);
    assert!(
        err.contains(&reg.host()) && err.contains("401") && err.contains("REGISTRY_AUTH"),
        "{err}"
    );
    let out = c
        .cmd(&["push", iso.to_str().unwrap(), &r])
        .env("REGISTRY_AUTH", "alice:wrong-pw")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("REGISTRY_AUTH") && err.contains("not accepted"),
        "{err}"
    );
    assert!(!err.contains("wrong-pw"), "the secret was printed: {err}");

    let out = c
        .cmd(&["push", "--json", iso.to_str().unwrap(), &r])
        .env("VMCONTAINER_REGISTRY_USER", "alice")
        .env("VMCONTAINER_REGISTRY_PASSWORD", "s3cret-pw")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let pushed: Value = serde_json::from_slice(&out.stdout).unwrap();

    // Docker's config.json `auths` entry (base64 user:password).
    std::fs::write(
        c.docker_config.path().join("config.json"),
        serde_json::json!({ "auths": { reg.host(): { "auth": base64_of("alice:s3cret-pw") } } })
            .to_string(),
    )
    .unwrap();
    let pulled = c.pull(&r);
    assert_eq!(pulled["digest"], pushed["digest"]);
    assert!(same_file_bytes(
        Path::new(pulled["path"].as_str().unwrap()),
        &iso
    ));
}

fn base64_of(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.len();
        let v = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= n {
                out.push(T[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// run REF: pulled on demand, then reused; the container exported.

#[test]
fn run_ref_pulls_once_boots_reuses_and_exports_the_container() {
    let g = guest();
    let reg = Registry::start();
    let c = Client::new();
    let kernel = g.join("vmtest-kernel");
    c.push(&kernel, &reg.at("vm/boot:1"));
    let cd = c.push_containerdisk(&kernel, &reg.at("vm/boot-disk:1"));
    let r = reg.at("vm/boot:1");
    let home = c.home.path().to_path_buf();
    assert!(c.installed().is_empty());

    let _slot = vm_slots(1);
    let key = key();
    let web = free_port();
    let id = c.ok(&[
        "run",
        "-d",
        "--name",
        "Reg_VM.1",
        "-m",
        "300",
        "--cpus",
        "1",
        "-p",
        &format!("{web}:80"),
        "--ssh-key",
        key.to_str().unwrap(),
        &r,
    ]);
    let id = id.trim().to_string();
    // The three layers were downloaded once, into the store.
    let (m, _) = reg.manifest("vm/boot", "1");
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(reg.blob_gets(l["digest"].as_str().unwrap()), 1, "{l}");
    }
    let rec = c.home.inspect(&id);
    let image = rec["image"].as_str().unwrap();
    assert!(
        Path::new(image).starts_with(home.join("images/oci")),
        "runs the pulled copy: {rec}"
    );
    c.ok(&["wait", "--timeout", &BOOT_DEADLINE_SECS.to_string(), &id]);

    // The export of the running container: its memory, CPUs, ports, and
    // the containerDisk pushed from the same image found by itself.
    let yaml = c.ok(&["export", "--kubevirt", "--image-ref", cd.as_str(), &id]);
    let docs = check_export(&yaml);
    let vm = &docs[0];
    let dom = &vm["spec"]["template"]["spec"]["domain"];
    assert_eq!(dom["memory"]["guest"], "300Mi", "{vm}");
    assert_eq!(dom["cpu"]["cores"], 1);
    let kb = &dom["firmware"]["kernelBoot"];
    assert_eq!(kb["container"]["image"], cd.as_str());
    assert_eq!(
        kb["kernelArgs"],
        std::fs::read_to_string(g.join("vmtest-cmdline"))
            .unwrap()
            .trim()
    );
    let name = vm["metadata"]["name"].as_str().unwrap();
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "{name} is not a DNS label"
    );
    let svc = docs.get(1).expect("a Service for the published port");
    assert_eq!(svc["apiVersion"], "v1");
    assert_eq!(svc["kind"], "Service");
    let ports = svc["spec"]["ports"].as_array().unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p["port"] == web && p["targetPort"] == 80),
        "{svc}"
    );
    assert_eq!(
        svc["spec"]["selector"]["kubevirt.io/domain"],
        vm["spec"]["template"]["metadata"]["labels"]["kubevirt.io/domain"]
    );
    c.ok(&["rm", "-f", &id]);

    // With the registry gone, `run REF` still resolves: the pulled copy is
    // reused without asking the registry. The second VM is removed at once.
    drop(reg);
    let id2 = c.ok(&["run", "-d", "-m", "256", &r]).trim().to_string();
    let rec2 = c.home.inspect(&id2);
    c.ok(&["rm", "-f", &id2]);
    assert_eq!(rec2["image"], rec["image"]);
}

impl Client {
    /// `push --containerdisk`; returns the reference.
    fn push_containerdisk(&self, image: &Path, reference: &str) -> String {
        let v = self.json(&[
            "push",
            "--containerdisk",
            "--json",
            image.to_str().unwrap(),
            reference,
        ]);
        assert_eq!(v["kind"], "containerdisk", "{v}");
        reference.to_string()
    }
}

// ---------------------------------------------------------------------------
// KubeVirt: containerDisk layout and schema-valid exports.

/// KubeVirt's OpenAPI schema for `v1.VirtualMachine`, strict: an object
/// schema with `properties` gets `additionalProperties: false` (what
/// `kubectl apply --validate=strict` does), so a misspelt field fails.
fn vm_validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kubevirt/swagger.json");
    let swagger: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut defs = swagger["definitions"].clone();
    for def in defs.as_object_mut().unwrap().values_mut() {
        strict(def);
    }
    let schema = serde_json::json!({
        "$ref": "#/definitions/v1.VirtualMachine",
        "definitions": defs,
    });
    jsonschema::draft4::options()
        .should_validate_formats(false)
        .build(&schema)
        .expect("KubeVirt's schema compiles")
}

fn strict(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.contains_key("properties") && !o.contains_key("additionalProperties") {
                o.insert("additionalProperties".into(), Value::Bool(false));
            }
            for x in o.values_mut() {
                strict(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strict),
        _ => {}
    }
}

/// Parses the export's YAML documents, validates the VirtualMachine
/// against the schema and returns [VirtualMachine, Service?].
fn check_export(yaml: &str) -> Vec<Value> {
    use serde::Deserialize;
    let docs: Vec<Value> = serde_norway::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|d| !d.is_null())
        .collect();
    assert!(!docs.is_empty(), "no document in:\n{yaml}");
    let vm = &docs[0];
    assert_eq!(vm["apiVersion"], "kubevirt.io/v1");
    assert_eq!(vm["kind"], "VirtualMachine");
    let v = vm_validator();
    let errors: Vec<String> = v
        .iter_errors(vm)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{yaml}");
    docs
}

/// Entries of an uncompressed tar: (path, uid, gid, mode, data).
fn tar_entries(tar: &[u8]) -> Vec<(String, u64, u64, u64, Vec<u8>)> {
    let octal = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        u64::from_str_radix(s.trim_matches(|c: char| c == '\0' || c == ' '), 8).unwrap_or(0)
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at..at + 512].iter().any(|&b| b != 0) {
        let h = &tar[at..at + 512];
        let mut name = String::from_utf8_lossy(&h[..100])
            .trim_end_matches('\0')
            .to_string();
        let prefix = String::from_utf8_lossy(&h[345..500])
            .trim_end_matches('\0')
            .to_string();
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
        let size = octal(&h[124..136]) as usize;
        let data = tar[at + 512..at + 512 + size].to_vec();
        out.push((
            name,
            octal(&h[108..116]),
            octal(&h[116..124]),
            octal(&h[100..108]),
            data,
        ));
        at += 512 + size.div_ceil(512) * 512;
    }
    out
}

#[test]
fn containerdisk_layout_through_the_registry_api_and_schema_valid_exports() {
    let g = guest();
    let reg = Registry::start();
    let c = Client::new();
    let qcow = g.join("vmtest.qcow2");
    let r = c.push_containerdisk(&qcow, &reg.at("kv/disk:1"));

    let (m, _) = reg.manifest("kv/disk", "1");
    assert!(m.get("artifactType").is_none(), "a plain image: {m}");
    let config: Value =
        serde_json::from_slice(&reg.blob("kv/disk", m["config"]["digest"].as_str().unwrap()))
            .unwrap();
    assert_eq!(config["os"], "linux", "{config}");
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{m}");
    let blob = reg.blob("kv/disk", layers[0]["digest"].as_str().unwrap());
    let entries = tar_entries(&blob);
    let disk: Vec<_> = entries
        .iter()
        .filter(|e| e.0.trim_start_matches("./").starts_with("disk/") && !e.4.is_empty())
        .collect();
    assert_eq!(
        disk.len(),
        1,
        "one disk under /disk/: {:?}",
        names(&entries)
    );
    let (name, uid, gid, mode, data) = disk[0];
    assert!(name.ends_with(".qcow2"), "{name}");
    // KubeVirt reads the disk as the qemu user (107).
    assert_eq!((*uid, *gid), (107, 107), "{name}");
    assert!(
        mode & 0o400 != 0,
        "{name} mode {mode:o}: unreadable by its owner"
    );
    assert!(
        *data == std::fs::read(&qcow).unwrap(),
        "the layer holds the disk"
    );

    // A containerDisk is not a vmcontainer VM image: pull refuses it.
    let err = c.fail(&["pull", &r]);
    assert!(
        err.contains(&r) && err.contains("not a vmcontainer VM image"),
        "{err}"
    );
    assert!(c.installed().is_empty());

    // Export of the image finds the containerDisk pushed from it.
    let yaml = c.ok(&["export", "--kubevirt", qcow.to_str().unwrap()]);
    let docs = check_export(&yaml);
    let spec = &docs[0]["spec"]["template"]["spec"];
    let vols = spec["volumes"].as_array().unwrap();
    assert!(
        vols.iter()
            .any(|v| v["containerDisk"]["image"] == r.as_str()),
        "{yaml}"
    );
    assert_eq!(spec["domain"]["memory"]["guest"], "1024Mi");
    assert_eq!(docs.len(), 1, "no ports, no Service:\n{yaml}");
    // The validator is not vacuous: a misspelt field and a wrong type fail.
    let v = vm_validator();
    let mut typo = docs[0].clone();
    typo["spec"]["template"]["spec"]["domain"]["memroy"] = serde_json::json!({});
    assert!(!v.is_valid(&typo), "a misspelt field passed");
    let mut wrong = docs[0].clone();
    wrong["spec"]["template"]["spec"]["domain"]["cpu"]["cores"] = "one".into();
    assert!(!v.is_valid(&wrong), "a string for cpu.cores passed");

    // The kernel triplet: kernel and initrd under /boot/, named by the
    // export's kernelBoot.
    let kernel = g.join("vmtest-kernel");
    let rk = c.push_containerdisk(&kernel, &reg.at("kv/kernel:1"));
    let (m, _) = reg.manifest("kv/kernel", "1");
    let mut files = Vec::new();
    for l in m["layers"].as_array().unwrap() {
        files.extend(tar_entries(
            &reg.blob("kv/kernel", l["digest"].as_str().unwrap()),
        ));
    }
    let yaml = c.ok(&["export", "--kubevirt", kernel.to_str().unwrap()]);
    let docs = check_export(&yaml);
    let kb = &docs[0]["spec"]["template"]["spec"]["domain"]["firmware"]["kernelBoot"];
    assert_eq!(kb["container"]["image"], rk.as_str());
    for (field, src) in [
        ("kernelPath", "vmtest-kernel"),
        ("initrdPath", "vmtest-initrd.img"),
    ] {
        let path = kb["container"][field].as_str().unwrap();
        let entry = files
            .iter()
            .find(|e| format!("/{}", e.0.trim_start_matches("./")) == path)
            .unwrap_or_else(|| panic!("{path} not in the layers: {:?}", names(&files)));
        assert!(entry.4 == std::fs::read(g.join(src)).unwrap(), "{path}");
    }

    // An image without a containerDisk: the error says how to make one.
    let err = c.fail(&[
        "export",
        "--kubevirt",
        g.join("vmtest.iso").to_str().unwrap(),
    ]);
    assert!(
        err.contains("push --containerdisk") && err.contains("--image-ref"),
        "{err}"
    );
    // A malformed --image-ref is refused by name.
    let err = c.fail(&[
        "export",
        "--kubevirt",
        "--image-ref",
        "Bad Ref",
        qcow.to_str().unwrap(),
    ]);
    assert!(err.contains("Bad Ref"), "{err}");
}

fn names(e: &[(String, u64, u64, u64, Vec<u8>)]) -> Vec<&str> {
    e.iter().map(|e| e.0.as_str()).collect()
}

// ---------------------------------------------------------------------------
// Bad input: a clear error naming the input, nothing installed.

#[test]
fn bad_references_missing_tags_and_a_registry_that_is_down() {
    let reg = Registry::start();
    let c = Client::new();
    let qcow = guest().join("vmtest.qcow2");
    c.push(&qcow, &reg.at("vm/ok:1"));

    let err = c.fail(&["pull", &reg.at("vm/ok:nope")]);
    assert!(
        err.contains("vm/ok:nope") && err.contains("no tag"),
        "{err}"
    );
    let err = c.fail(&["pull", &reg.at("vm/missing:1")]);
    assert!(err.contains("vm/missing") && err.contains("404"), "{err}");

    for bad in [
        format!("{}/../etc:1", reg.host()),
        format!("{}/vm/./x:1", reg.host()),
    ] {
        let err = c.fail(&["pull", &bad]);
        assert!(
            err.contains(&bad) && err.contains("path-traversing"),
            "{err}"
        );
        let err = c.fail(&["push", qcow.to_str().unwrap(), &bad]);
        assert!(err.contains("path-traversing"), "{err}");
    }
    let err = c.fail(&["pull", &format!("{}/Vm/Upper:1", reg.host())]);
    assert!(err.contains("lowercase"), "{err}");

    // A registry that is down: named, and nothing installed.
    let down = format!("127.0.0.1:{}", free_port());
    let err = c.fail(&["pull", &format!("{down}/vm/ok:1")]);
    assert!(
        err.contains(&down) && err.contains("cannot reach registry"),
        "{err}"
    );
    let err = c.fail(&["run", "-d", &format!("{down}/vm/ok:1")]);
    assert!(err.contains(&down), "{err}");
    assert!(c.installed().is_empty(), "{:?}", c.installed());
    assert!(c.home.ps().is_empty(), "a container was recorded");
}

#[test]
fn a_corrupted_blob_installs_nothing_and_the_repaired_pull_resumes() {
    let reg = Registry::start();
    let c = Client::new();
    let kernel = guest().join("vmtest-kernel");
    let pushed = c.push(&kernel, &reg.at("vm/corrupt:1"));
    let (m, _) = reg.manifest("vm/corrupt", "1");
    // Corrupt the initrd (second layer) on the registry's disk, same size.
    let initrd = m["layers"][1]["digest"].as_str().unwrap().to_string();
    let blob = reg.blob_file(&initrd);
    let mut bytes = std::fs::read(&blob).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();

    let fresh = Client::new();
    let err = fresh.fail(&["pull", &reg.at("vm/corrupt:1")]);
    assert!(
        err.contains("mismatch") && err.contains(digest_hex(&initrd)),
        "{err}"
    );
    assert!(fresh.installed().is_empty(), "{:?}", fresh.installed());
    // What failed verification is not kept to resume from.
    let partial = fresh.home.path().join(format!(
        "images/oci/sha256/.{}.partial",
        digest_hex(pushed["digest"].as_str().unwrap())
    ));
    assert!(!partial.join("vmtest-initrd.img").exists());
    let index = fresh.home.path().join("images/oci/index.json");
    if let Ok(s) = std::fs::read_to_string(&index) {
        assert!(
            !s.contains(digest_hex(pushed["digest"].as_str().unwrap())),
            "{s}"
        );
    }
    // `run` of the reference fails the same way and records no container.
    let err = fresh.fail(&["run", "-d", &reg.at("vm/corrupt:1")]);
    assert!(err.contains("mismatch"), "{err}");
    assert!(fresh.home.ps().is_empty());

    // Repaired, the next pull resumes: the verified kernel is not fetched
    // again, the initrd is, and the image is installed whole.
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let kernel_layer = m["layers"][0]["digest"].as_str().unwrap();
    let kernel_gets = reg.blob_gets(kernel_layer);
    let initrd_gets = reg.blob_gets(&initrd);
    let pulled = fresh.pull(&reg.at("vm/corrupt:1"));
    assert_eq!(pulled["digest"], pushed["digest"]);
    assert_eq!(
        reg.blob_gets(kernel_layer),
        kernel_gets,
        "kernel fetched again"
    );
    assert_eq!(reg.blob_gets(&initrd), initrd_gets + 1);
    let dir = Path::new(pulled["path"].as_str().unwrap())
        .parent()
        .unwrap();
    assert!(same_file_bytes(
        &dir.join("vmtest-initrd.img"),
        &guest().join("vmtest-initrd.img")
    ));
    assert!(same_file_bytes(&dir.join("vmtest-kernel"), &kernel));
    assert!(!partial.exists(), "the staging directory was left behind");
}

/// An address of this machine that is not loopback (the one its default
/// route leaves from); no packet is sent.
fn non_loopback_ip() -> std::net::IpAddr {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    s.connect("192.0.2.1:9").expect("a default route");
    let ip = s.local_addr().unwrap().ip();
    assert!(!ip.is_loopback(), "{ip}");
    ip
}

#[test]
fn plain_http_only_for_loopback_unless_asked() {
    let ip = non_loopback_ip();
    let l = TcpListener::bind((ip, 0)).unwrap();
    let host = format!("{ip}:{}", l.local_addr().unwrap().port());
    let c = Client::new();
    let r = format!("{host}/vm/x:1");
    let first_bytes = |args: Vec<String>| {
        let child = c
            .cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 8];
        s.read_exact(&mut buf).unwrap();
        drop(s);
        let out = child.wait_with_output().unwrap();
        (buf, stderr(&out), out.status.success())
    };
    // Without --plain-http: a TLS handshake, and the failure says how to
    // allow HTTP.
    let (buf, err, ok) = first_bytes(vec!["pull".into(), r.clone()]);
    assert_eq!(buf[0], 0x16, "not a TLS record: {buf:?}");
    assert!(!ok);
    assert!(err.contains(&host), "{err}");
    // With it: plain HTTP.
    let (buf, err, ok) = first_bytes(vec!["pull".into(), "--plain-http".into(), r.clone()]);
    assert_eq!(&buf[..4], b"GET ", "{err}");
    assert!(!ok);
    assert!(c.installed().is_empty());
}

// ---------------------------------------------------------------------------
// The dev image from the registry source.

#[test]
fn dev_install_from_the_registry_source() {
    let reg = Registry::start();
    let c = Client::new();
    let qcow = guest().join("vmtest.qcow2");
    let r = reg.at("dev/core-devops:1");
    let pushed = c.push(&qcow, &r);
    std::fs::write(
        c.home.path().join("config.yaml"),
        format!("version: 1\nimages:\n  source: registry\n  registry:\n    image: {r}\n"),
    )
    .unwrap();
    let dev = |args: &[&str]| {
        let mut a = vec!["dev"];
        a.extend_from_slice(args);
        let mut cmd = c.cmd(&a);
        for v in ["CORE_IMAGES_DIR", "GITHUB_TOKEN", "GITHUB_API_URL"] {
            cmd.env_remove(v);
        }
        cmd.output().unwrap()
    };
    let out = dev(&["install", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let images = c.home.path().join("images");
    let name = "core-devops-linux-amd64.qcow2";
    assert!(same_file_bytes(&images.join(name), &qcow));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(images.join("manifest.json")).unwrap()).unwrap();
    let entry = &manifest["images"][name];
    assert_eq!(entry["source"], "registry", "{manifest}");
    assert_eq!(entry["version"], pushed["digest"], "{manifest} / {info}");
    assert_eq!(
        format!("sha256:{}", entry["sha256"].as_str().unwrap()),
        file_digest(&qcow)
    );

    // Installed already: nothing is downloaded again.
    assert_eq!(reg.layer_gets("dev/core-devops", "1"), 1);
    let out = dev(&["install", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        reg.layer_gets("dev/core-devops", "1"),
        1,
        "{}",
        stdout(&out)
    );

    // A tag that names a kernel triplet is refused for the dev image.
    let k = reg.at("dev/core-devops:kernel");
    c.push(&guest().join("vmtest-kernel"), &k);
    std::fs::write(
        c.home.path().join("config.yaml"),
        format!("version: 1\nimages:\n  source: registry\n  registry:\n    image: {k}\n"),
    )
    .unwrap();
    std::fs::remove_file(images.join(name)).unwrap();
    let out = dev(&["install"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("qcow2") && err.contains("dev/core-devops"),
        "{err}"
    );
    assert!(!images.join(name).exists());
}
