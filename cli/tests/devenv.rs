//! The dev environment against real parts: loopback servers that speak a
//! CDN's and GitHub's release API, real downloads (interrupted, resumed,
//! corrupted), and the test guest booted as the dev VM. They fail, never
//! skip, when QEMU or the guest is missing.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const IMAGE: &str = "core-devops-linux-amd64.qcow2";

// ---------------------------------------------------------------------------
// A tiny HTTP/1.1 server: keep-alive, Range, and faults on demand.

/// One request as the server saw it (header names lower-cased).
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HashMap<String, String>,
}

/// What a path answers.
#[derive(Clone)]
struct Route {
    body: Arc<Vec<u8>>,
    content_type: &'static str,
    /// Answer 404 unless `Authorization` is exactly this.
    require_auth: Option<String>,
    /// Answer 200 with the whole body even when asked for a range.
    ignore_range: bool,
    /// This many upcoming GETs send headers for the whole body, then only
    /// `drop_after` bytes, then close the connection.
    drop_next: Arc<AtomicUsize>,
    drop_after: usize,
}

impl Route {
    fn new(body: Vec<u8>, content_type: &'static str) -> Self {
        Route {
            body: Arc::new(body),
            content_type,
            require_auth: None,
            ignore_range: false,
            drop_next: Arc::new(AtomicUsize::new(0)),
            drop_after: 0,
        }
    }
    fn json(v: &Value) -> Self {
        Route::new(serde_json::to_vec(v).unwrap(), "application/json")
    }
    fn text(s: &str) -> Self {
        Route::new(s.as_bytes().to_vec(), "text/plain")
    }
}

#[derive(Clone)]
struct Server {
    port: u16,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = Server {
            port: listener.local_addr().unwrap().port(),
            routes: Default::default(),
            log: Default::default(),
        };
        let s = server.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || s.serve(conn));
            }
        });
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn route(&self, path: &str, r: Route) {
        self.routes.lock().unwrap().insert(path.to_string(), r);
    }

    fn requests(&self, path: &str) -> Vec<Seen> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    fn serve(&self, conn: TcpStream) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut out = conn;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            let mut headers = HashMap::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 {
                    return;
                }
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            self.log.lock().unwrap().push(Seen {
                path: path.clone(),
                headers: headers.clone(),
            });
            let route = self.routes.lock().unwrap().get(&path).cloned();
            let Some(r) = route else {
                let _ =
                    out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
                continue;
            };
            if r.require_auth.is_some() && headers.get("authorization") != r.require_auth.as_ref() {
                let _ =
                    out.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
                continue;
            }
            let len = r.body.len();
            let start = headers
                .get("range")
                .filter(|_| !r.ignore_range)
                .and_then(|v| v.strip_prefix("bytes="))
                .and_then(|v| v.strip_suffix('-'))
                .and_then(|v| v.parse::<usize>().ok());
            let (head, body) = match start {
                Some(s) if s >= len => (
                    format!(
                        "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\nContent-Length: 0\r\n\r\n"
                    ),
                    &r.body[0..0],
                ),
                Some(s) => (
                    format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Type: {}\r\nContent-Range: bytes {s}-{}/{len}\r\nContent-Length: {}\r\n\r\n",
                        r.content_type,
                        len - 1,
                        len - s
                    ),
                    &r.body[s..],
                ),
                None => (
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nAccept-Ranges: bytes\r\nContent-Length: {len}\r\n\r\n",
                        r.content_type
                    ),
                    &r.body[..],
                ),
            };
            let drop = r
                .drop_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if out.write_all(head.as_bytes()).is_err() {
                return;
            }
            if drop {
                let _ = out.write_all(&body[..r.drop_after.min(body.len())]);
                let _ = out.flush();
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            if out.write_all(body).is_err() {
                return;
            }
        }
    }
}

fn sha256_hex(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    w.join().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn guest_image() -> Vec<u8> {
    std::fs::read(guest().join("vmtest.qcow2")).unwrap()
}

/// Serves `image` as a CDN release `version` under `/images`; the manifest
/// carries `sha256` (or none, so the `.sha256` file is used).
fn cdn(server: &Server, image: &[u8], version: &str, sha256: Option<&str>) -> Route {
    let mut entry = serde_json::json!({ "size": image.len() });
    if let Some(h) = sha256 {
        entry["sha256"] = h.into();
    }
    server.route(
        "/images/manifest.json",
        Route::json(&serde_json::json!({ "version": version, "images": { IMAGE: entry } })),
    );
    let r = Route::new(image.to_vec(), "application/octet-stream");
    server.route(&format!("/images/{IMAGE}"), r.clone());
    r
}

// ---------------------------------------------------------------------------
// Running `vmcontainer dev ...` with a controlled environment.

struct Dev {
    home: TestHome,
    images: PathBuf,
    /// Where `dev` commands run (default: the test's directory).
    cwd: Option<PathBuf>,
}

impl Dev {
    /// A home whose config.yaml is `config` (plus the VM settings the test
    /// guest needs).
    fn new(config: &str) -> Dev {
        let home = TestHome::new();
        let key = key();
        std::fs::write(
            home.path().join("config.yaml"),
            format!(
                "{config}\ndev:\n  memory: 512\n  cpus: 1\n  ssh_key: {}\n",
                key.display()
            ),
        )
        .unwrap();
        let images = home.path().join("images");
        Dev {
            home,
            images,
            cwd: None,
        }
    }

    fn cdn_config(server: &Server) -> Dev {
        Dev::new(&format!(
            "version: 1\nimages:\n  source: cdn\n  cdn:\n    url: {}\n",
            server.url("/images")
        ))
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.home.cmd(&["dev"]);
        c.args(args);
        // `dev` calls work on the project they are called from.
        if let Some(d) = &self.cwd {
            c.current_dir(d);
        }
        for v in [
            "CORE_IMAGES_DIR",
            "GITHUB_TOKEN",
            "GITHUB_API_URL",
            "ANTHROPIC_API_KEY",
            "SSH_AUTH_SOCK",
            "GH_CONFIG_DIR",
            "XDG_CONFIG_HOME",
        ] {
            c.env_remove(v);
        }
        c.stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vmcontainer dev {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn fail(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "vmcontainer dev {args:?} should have failed:\n{}",
            stdout(&out)
        );
        stderr(&out)
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    fn manifest(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.images.join("manifest.json")).unwrap()).unwrap()
    }

    fn installed_bytes(&self) -> Vec<u8> {
        std::fs::read(self.images.join(IMAGE)).unwrap()
    }

    fn partial_files(&self) -> Vec<String> {
        std::fs::read_dir(&self.images)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".part"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------
// Installing.

#[test]
fn install_from_cdn_records_manifest_and_status() {
    let server = Server::start();
    let image = guest_image();
    let sha = sha256_hex(&image);
    cdn(&server, &image, "1.0.0", Some(&sha));
    let dev = Dev::cdn_config(&server);

    let status = dev.json(&["status", "--json"]);
    assert_eq!(status["installed"], false);
    let err = dev.fail(&["boot"]);
    assert!(
        err.contains("dev environment not installed") && err.contains("vmcontainer dev install"),
        "{err}"
    );

    let r = dev.json(&["install", "--json"]);
    assert_eq!(r["version"], "1.0.0");
    assert_eq!(r["source"], "cdn");
    assert_eq!(r["sha256"], sha);
    assert_eq!(dev.installed_bytes(), image);
    let m = dev.manifest();
    let entry = &m["images"][IMAGE];
    assert_eq!(entry["version"], "1.0.0");
    assert_eq!(entry["sha256"], sha);
    assert_eq!(entry["source"], "cdn");
    assert!(entry["downloaded"].as_str().unwrap().contains('T'));
    assert!(dev.partial_files().is_empty());

    let status = dev.json(&["status", "--json"]);
    assert_eq!(status["installed"], true);
    assert_eq!(status["running"], false);
    assert_eq!(status["image_version"], "1.0.0");

    // The same release again downloads nothing.
    let before = server.requests(&format!("/images/{IMAGE}")).len();
    let r = dev.json(&["install", "--json"]);
    assert_eq!(r["already_installed"], true);
    assert_eq!(server.requests(&format!("/images/{IMAGE}")).len(), before);

    // A new version is reported, then installed.
    let v2: Vec<u8> = image.iter().chain(b"v2 tail").copied().collect();
    let sha2 = sha256_hex(&v2);
    cdn(&server, &v2, "2.0.0", Some(&sha2));
    let info = dev.json(&["update", "--check", "--json"]);
    assert_eq!(info["current"], "1.0.0");
    assert_eq!(info["latest"], "2.0.0");
    assert_eq!(info["has_update"], true);
    let out = dev.ok(&["update"]);
    assert!(out.contains("2.0.0"), "{out}");
    assert_eq!(dev.installed_bytes(), v2);
    assert_eq!(dev.manifest()["images"][IMAGE]["version"], "2.0.0");
    assert!(dev.ok(&["update"]).contains("up to date"));
}

#[test]
fn an_image_go_container_installed_is_kept_and_hashed_not_downloaded() {
    let server = Server::start();
    let image = guest_image();
    let sha = sha256_hex(&image);
    cdn(&server, &image, "1.0.0", Some(&sha));
    let dev = Dev::cdn_config(&server);
    // As go-container left it: the image, and a manifest entry with an
    // empty sha256.
    std::fs::create_dir_all(&dev.images).unwrap();
    std::fs::write(dev.images.join(IMAGE), &image).unwrap();
    let go_manifest = serde_json::json!({"images": {IMAGE: {
        "version": "1.0.0", "sha256": "", "downloaded": "2025-02-01T10:00:00Z",
        "source": "cdn",
    }}});
    std::fs::write(
        dev.images.join("manifest.json"),
        serde_json::to_vec(&go_manifest).unwrap(),
    )
    .unwrap();
    assert_eq!(dev.json(&["status", "--json"])["installed"], true);
    let r = dev.json(&["install", "--json"]);
    assert_eq!(r["already_installed"], true, "{r}");
    assert_eq!(r["sha256"], sha.as_str());
    assert!(server.requests(&format!("/images/{IMAGE}")).is_empty());
    assert_eq!(dev.manifest()["images"][IMAGE]["sha256"], sha.as_str());
    assert_eq!(dev.manifest()["images"][IMAGE]["version"], "1.0.0");
    assert!(dev.ok(&["update"]).contains("up to date"));
}

#[test]
fn cdn_checksum_from_sha256_file_and_images_dir_override() {
    let server = Server::start();
    let image = guest_image();
    let sha = sha256_hex(&image);
    cdn(&server, &image, "1.1.0", None);
    server.route(
        &format!("/images/{IMAGE}.sha256"),
        Route::text(&format!("{sha}  build/out/{IMAGE}\n")),
    );
    let dev = Dev::cdn_config(&server);
    let elsewhere = tempfile::tempdir().unwrap();
    let out = dev
        .cmd(&["install", "--json"])
        .env("CORE_IMAGES_DIR", elsewhere.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(elsewhere.path().join(IMAGE)).unwrap(), image);
    assert!(elsewhere.path().join("manifest.json").is_file());
    assert!(!dev.images.join(IMAGE).exists());

    // No checksum anywhere: refused, nothing installed.
    let server2 = Server::start();
    cdn(&server2, &image, "1.1.0", None);
    let dev2 = Dev::cdn_config(&server2);
    let err = dev2.fail(&["install"]);
    assert!(
        err.contains("no sha256") && err.contains(".sha256"),
        "{err}"
    );
    assert!(!dev2.images.join(IMAGE).exists());
}

#[test]
fn wrong_checksum_is_rejected_and_the_previous_image_kept() {
    let server = Server::start();
    let image = guest_image();
    cdn(&server, &image, "1.0.0", Some(&sha256_hex(&image)));
    let dev = Dev::cdn_config(&server);
    dev.ok(&["install"]);

    // Version 2 is published with a checksum that does not match its bytes.
    let v2: Vec<u8> = image.iter().chain(b"tampered").copied().collect();
    cdn(&server, &v2, "2.0.0", Some(&sha256_hex(b"something else")));
    let err = dev.fail(&["update"]);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains(&sha256_hex(&v2)), "names what arrived: {err}");
    assert_eq!(dev.installed_bytes(), image, "previous image must stay");
    assert_eq!(dev.manifest()["images"][IMAGE]["version"], "1.0.0");
    assert!(dev.partial_files().is_empty(), "{:?}", dev.partial_files());
    // A first install with a bad checksum leaves nothing that counts as
    // installed.
    let server2 = Server::start();
    cdn(&server2, &image, "1.0.0", Some(&"0".repeat(64)));
    let dev2 = Dev::cdn_config(&server2);
    assert!(dev2.fail(&["install"]).contains("checksum mismatch"));
    assert_eq!(dev2.json(&["status", "--json"])["installed"], false);
}

#[test]
fn interrupted_download_resumes_with_range() {
    let server = Server::start();
    let image = guest_image();
    let sha = sha256_hex(&image);
    let route = cdn(&server, &image, "1.0.0", Some(&sha));
    let path = format!("/images/{IMAGE}");
    let half = image.len() / 2;
    server.route(
        &path,
        Route {
            drop_after: half,
            ..route.clone()
        },
    );
    let dev = Dev::cdn_config(&server);

    // Within one install: the connection drops mid-body once, the retry
    // asks for the rest.
    route.drop_next.store(1, Ordering::SeqCst);
    let r = dev.json(&["install", "--json"]);
    assert_eq!(dev.installed_bytes(), image);
    let reqs = server.requests(&path);
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert!(!reqs[0].headers.contains_key("range"));
    let range = reqs[1].headers["range"].clone();
    let offset: usize = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .unwrap()
        .parse()
        .unwrap();
    assert!(offset > 0 && offset <= half, "{range}");
    assert_eq!(r["resumed_from"].as_u64().unwrap() as usize, offset);

    // Across runs: every attempt drops after 1 MiB (four attempts cannot
    // finish 12 MB), so the install fails, keeps its partial file, and the
    // next run resumes it.
    server.route(
        &path,
        Route {
            drop_after: 1 << 20,
            ..route.clone()
        },
    );
    let dev2 = Dev::cdn_config(&server);
    route.drop_next.store(100, Ordering::SeqCst);
    let err = dev2.fail(&["install"]);
    assert!(
        err.contains("interrupted") && err.contains("resume"),
        "{err}"
    );
    assert!(!dev2.images.join(IMAGE).exists());
    assert_eq!(dev2.partial_files().len(), 1);
    assert_eq!(dev2.json(&["status", "--json"])["installed"], false);
    route.drop_next.store(0, Ordering::SeqCst);
    let r = dev2.json(&["install", "--json"]);
    assert!(r["resumed_from"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(dev2.installed_bytes(), image);
    assert!(dev2.partial_files().is_empty());
}

#[test]
fn server_ignoring_range_restarts_cleanly() {
    let server = Server::start();
    let image = guest_image();
    let route = cdn(&server, &image, "1.0.0", Some(&sha256_hex(&image)));
    let path = format!("/images/{IMAGE}");
    let r = Route {
        drop_after: image.len() / 3,
        ignore_range: true,
        ..route
    };
    r.drop_next.store(1, Ordering::SeqCst);
    server.route(&path, r);
    let dev = Dev::cdn_config(&server);
    let out = dev.json(&["install", "--json"]);
    let reqs = server.requests(&path);
    assert_eq!(reqs.len(), 2);
    assert!(
        reqs[1].headers.contains_key("range"),
        "the retry asked to resume"
    );
    assert_eq!(out["resumed_from"], 0, "a 200 answer restarts from zero");
    assert_eq!(dev.installed_bytes(), image);
}

/// A GitHub-like API: the latest release of `test/images` with the image
/// asset, by digest or with a `.sha256` asset.
fn github(server: &Server, image: &[u8], tag: &str, digest: bool, token: Option<&str>) {
    let sha = sha256_hex(image);
    let mut asset = serde_json::json!({
        "name": IMAGE,
        "size": image.len(),
        "url": server.url("/api/assets/1"),
        "browser_download_url": server.url(&format!("/download/{tag}/{IMAGE}")),
    });
    let mut assets = vec![];
    if digest {
        asset["digest"] = format!("sha256:{sha}").into();
    } else {
        asset["digest"] = Value::Null;
        assets.push(serde_json::json!({
            "name": format!("{IMAGE}.sha256"),
            "size": 100,
            "url": server.url("/api/assets/2"),
            "browser_download_url": server.url(&format!("/download/{tag}/{IMAGE}.sha256")),
        }));
        let sum = format!("{sha} *{IMAGE}\n");
        server.route(
            &format!("/download/{tag}/{IMAGE}.sha256"),
            Route::text(&sum),
        );
        let mut api = Route::text(&sum);
        api.require_auth = token.map(|t| format!("Bearer {t}"));
        server.route("/api/assets/2", api);
    }
    assets.insert(0, asset);
    server.route(
        "/repos/test/images/releases/latest",
        Route::json(&serde_json::json!({ "tag_name": tag, "assets": assets })),
    );
    server.route(
        &format!("/download/{tag}/{IMAGE}"),
        Route::new(image.to_vec(), "application/octet-stream"),
    );
    let mut api = Route::new(image.to_vec(), "application/octet-stream");
    api.require_auth = token.map(|t| format!("Bearer {t}"));
    server.route("/api/assets/1", api);
}

fn github_dev(server: &Server, source: &str) -> Dev {
    Dev::new(&format!(
        "images:\n  source: {source}\n  github:\n    repo: test/images\n"
    ))
    .with_api(server)
}

impl Dev {
    fn with_api(self, server: &Server) -> Dev {
        let url = server.url("");
        std::fs::write(self.home.path().join("api_url"), url).unwrap();
        self
    }

    fn gh(&self, args: &[&str], token: Option<&str>) -> Output {
        let api = std::fs::read_to_string(self.home.path().join("api_url")).unwrap();
        let mut c = self.cmd(args);
        c.env("GITHUB_API_URL", api);
        if let Some(t) = token {
            c.env("GITHUB_TOKEN", t);
        }
        c.output().unwrap()
    }
}

#[test]
fn install_from_github_by_digest_with_token() {
    let server = Server::start();
    let image = guest_image();
    let token = "ghp_test_token_b7c1d0";
    github(&server, &image, "v3.1.4", true, Some(token));
    let dev = github_dev(&server, "github");
    let out = dev.gh(&["install", "--json"], Some(token));
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["version"], "v3.1.4");
    assert_eq!(r["source"], "github");
    assert_eq!(dev.installed_bytes(), image);
    assert_eq!(dev.manifest()["images"][IMAGE]["source"], "github");
    // The token went in a header, to the API and the asset endpoint only.
    let api = server.requests("/repos/test/images/releases/latest");
    assert_eq!(api[0].headers["authorization"], format!("Bearer {token}"));
    assert!(api[0].headers["accept"].contains("github"));
    let asset = server.requests("/api/assets/1");
    assert_eq!(asset.len(), 1);
    assert_eq!(asset[0].headers["accept"], "application/octet-stream");
    assert!(!stdout(&out).contains(token) && !stderr(&out).contains(token));
}

#[test]
fn install_from_github_with_sha256_asset_without_token() {
    let server = Server::start();
    let image = guest_image();
    github(&server, &image, "v0.9.0", false, None);
    let dev = github_dev(&server, "github");
    let out = dev.gh(&["install", "--json"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(dev.installed_bytes(), image);
    let dl = server.requests(&format!("/download/v0.9.0/{IMAGE}"));
    assert_eq!(dl.len(), 1);
    assert!(!dl[0].headers.contains_key("authorization"));
    assert_eq!(
        server
            .requests(&format!("/download/v0.9.0/{IMAGE}.sha256"))
            .len(),
        1
    );

    // A published checksum that does not match is refused.
    server.route(
        &format!("/download/v0.9.0/{IMAGE}.sha256"),
        Route::text(&format!("{}  {IMAGE}\n", "ab".repeat(32))),
    );
    let dev2 = github_dev(&server, "github");
    let out = dev2.gh(&["install"], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("checksum mismatch"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn auto_falls_back_from_github_to_cdn_and_names_unsafe_manifests() {
    let server = Server::start();
    let image = guest_image();
    cdn(&server, &image, "5.0.0", Some(&sha256_hex(&image)));
    // GitHub answers 404 for the release: auto moves on to the CDN.
    let dev = Dev::new(&format!(
        "images:\n  source: auto\n  github:\n    repo: test/images\n  cdn:\n    url: {}\n",
        server.url("/images")
    ))
    .with_api(&server);
    let out = dev.gh(&["install", "--json"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["source"], "cdn");
    assert_eq!(
        server.requests("/repos/test/images/releases/latest").len(),
        1
    );

    // A manifest naming a file outside the images directory is refused.
    server.route(
        "/images/manifest.json",
        Route::json(&serde_json::json!({
            "version": "6", "images": { IMAGE: {"sha256": "a".repeat(64)}, "../../evil": {} }
        })),
    );
    let dev2 = Dev::cdn_config(&server);
    let err = dev2.fail(&["install"]);
    assert!(
        err.contains("../../evil") && err.contains("refusing"),
        "{err}"
    );
    assert!(!dev2.home.path().join("evil").exists());
}

#[test]
fn config_errors_name_the_file_and_line() {
    let dev = Dev::new("version: 1\nimages:\n  source: ftp\n");
    let err = dev.fail(&["status"]);
    let cfg = dev.home.path().join("config.yaml");
    assert!(err.contains(&format!("{} line 3", cfg.display())), "{err}");
    assert!(
        err.contains("ftp") && err.contains("auto, github or cdn"),
        "{err}"
    );
    let dev = Dev::new("images: [unclosed\n");
    let err = dev.fail(&["install"]);
    assert!(err.contains("config.yaml line"), "{err}");
}

// ---------------------------------------------------------------------------
// The test guest as the dev VM.

const STAND_IN_CLAUDE: &str = r#"#!/bin/sh
# Stand-in for Claude Code: records what it was given, then lingers so the
# host can look at every process's command line while it runs.
out=/app/.claude-record
mkdir -p "$out"
for a in "$@"; do echo "$a"; done > "$out/args"
env > "$out/env"
pwd > "$out/pwd"
cat /root/.config/gh/hosts.yml > "$out/gh" 2>/dev/null || echo none > "$out/gh"
for f in /proc/[0-9]*/cmdline; do tr '\0' ' ' < "$f"; echo; done > "$out/cmdlines"
touch "$out/started"
sleep 4
exit 7
"#;

fn project() -> tempfile::TempDir {
    let p = tempfile::tempdir().unwrap();
    let w = |name: &str, content: &str| {
        let f = p.path().join(name);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, content).unwrap();
    };
    w("marker", "marker-content-42\n");
    w("index.html", "served-from-app\n");
    // go.mod would detect `go test ./...`; test.yaml's command wins.
    w("go.mod", "module example.test/app\n");
    w(
        ".core/test.yaml",
        "version: 1\ncommand: cat /app/marker && echo \"env=$GREETING\"\ncommands:\n  - name: where\n    run: pwd && echo \"named $GREETING\"\nenv:\n  GREETING: hello-from-test-yaml\n",
    );
    w("bin/claude", STAND_IN_CLAUDE);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        p.path().join("bin/claude"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    p
}

/// A second project: its own marker and test command.
fn other_project(marker: &str, test_command: &str) -> tempfile::TempDir {
    let p = tempfile::tempdir().unwrap();
    std::fs::write(p.path().join("marker"), format!("{marker}\n")).unwrap();
    std::fs::create_dir_all(p.path().join(".core")).unwrap();
    std::fs::write(
        p.path().join(".core/test.yaml"),
        format!("version: 1\ncommand: {test_command}\n"),
    )
    .unwrap();
    p
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A GET on loopback that reports failure instead of panicking.
fn try_http_get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    r.split("\r\n\r\n").nth(1).map(str::to_string)
}

/// Every host process's command line, NUL bytes as spaces.
fn host_cmdlines() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .collect()
}

/// Runs `dev claude` with the given host credentials and returns what the
/// stand-in recorded, after checking no secret was on any command line
/// while it ran.
struct Creds {
    home: PathBuf,
    agent: PathBuf,
    api_key: String,
    gh_token: String,
}

fn run_claude(dev: &Dev, proj: &Path, creds: &Creds, args: &[&str]) -> HashMap<String, String> {
    let record = proj.join(".claude-record");
    let _ = std::fs::remove_dir_all(&record);
    let mut c = dev.cmd(&["claude"]);
    c.args(args)
        .current_dir(proj)
        .env("ANTHROPIC_API_KEY", &creds.api_key)
        .env("HOME", &creds.home)
        .env("GIT_CONFIG_GLOBAL", creds.home.join("gitconfig"))
        .env("SSH_AUTH_SOCK", &creds.agent)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    wait_until("the stand-in claude to start", 120, || {
        record.join("started").exists()
    });
    for line in host_cmdlines() {
        assert!(
            !line.contains(&creds.api_key) && !line.contains(&creds.gh_token),
            "a secret is on a host command line: {line}"
        );
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "claude's exit code: {}",
        stderr(&out)
    );
    for text in [stdout(&out), stderr(&out)] {
        assert!(!text.contains(&creds.api_key) && !text.contains(&creds.gh_token));
    }
    let mut rec = HashMap::new();
    for f in ["args", "env", "pwd", "gh", "cmdlines"] {
        rec.insert(
            f.to_string(),
            std::fs::read_to_string(record.join(f)).unwrap_or_default(),
        );
    }
    let guest_cmdlines = &rec["cmdlines"];
    assert!(
        !guest_cmdlines.contains(&creds.api_key) && !guest_cmdlines.contains(&creds.gh_token),
        "a secret is on a guest command line: {guest_cmdlines}"
    );
    rec
}

fn env_has(env: &str, key: &str) -> Option<String> {
    env.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
}

#[test]
fn dev_vm_boot_shell_test_serve_console_claude_stop() {
    let server = Server::start();
    let image = guest_image();
    cdn(&server, &image, "1.0.0", Some(&sha256_hex(&image)));
    let mut dev = Dev::cdn_config(&server);
    dev.ok(&["install"]);
    let proj = project();
    let proj_path = std::fs::canonicalize(proj.path()).unwrap();
    dev.cwd = Some(proj_path.clone());
    let p = proj_path.to_str().unwrap();
    let timeout = BOOT_DEADLINE_SECS.to_string();

    let _slots = vm_slots(1);
    let id = dev
        .ok(&["boot", "--project", p, "--timeout", &timeout])
        .trim()
        .to_string();
    assert_eq!(id.len(), 8, "{id}");
    let err = dev.fail(&["boot", "--project", p]);
    assert!(
        err.contains("already running") && err.contains(&id),
        "{err}"
    );

    let s = dev.json(&["status", "--json"]);
    assert_eq!(s["installed"], true);
    assert_eq!(s["running"], true);
    assert_eq!(s["image_version"], "1.0.0");
    assert_eq!(s["container_id"], id.as_str());
    assert_eq!(s["memory"], 512);
    assert_eq!(s["cpus"], 1);
    assert!(s["ssh_port"].as_u64().unwrap() > 0);
    assert!(s["uptime_secs"].as_u64().is_some());
    assert_eq!(s["project"], p);
    let text = dev.ok(&["status"]);
    assert!(
        text.contains("running:    yes") && text.contains(&id),
        "{text}"
    );

    // shell -- CMD: the project is at /app, arguments arrive intact.
    assert_eq!(
        dev.ok(&["shell", "--", "cat", "/app/marker"]),
        "marker-content-42\n"
    );
    assert_eq!(
        dev.ok(&["shell", "--", "printf", "%s|", "a b", "c'd"]),
        "a b|c'd|"
    );
    let out = dev.run(&["shell", "--", "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));

    // test: test.yaml's command (over go.mod's detection) with its env.
    let t = |args: &[&str]| {
        let out = dev
            .cmd(&["test"])
            .args(args)
            .current_dir(&proj_path)
            .output()
            .unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let (code, out, err) = t(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "marker-content-42\nenv=hello-from-test-yaml\n");
    let (code, out, _) = t(&["--name", "where"]);
    assert_eq!(code, Some(0));
    assert_eq!(out, "/app\nnamed hello-from-test-yaml\n");
    let (code, out, _) = t(&["--", "sh", "-c", "echo explicit $GREETING; exit 3"]);
    assert_eq!(code, Some(3));
    assert_eq!(out, "explicit hello-from-test-yaml\n");
    let (code, _, err) = t(&["--name", "nope"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("nope") && err.contains("where"), "{err}");
    // The staged env file is gone once sourced.
    assert_eq!(
        dev.ok(&[
            "shell",
            "--",
            "sh",
            "-c",
            "ls /tmp/.vmcontainer-env-* 2>/dev/null | wc -l"
        ])
        .trim(),
        "0"
    );
    // Another project, without a reboot: `dev test` from B sees B's files
    // and B's .core/test.yaml; the boot project keeps its own /app.
    let b = other_project("project-B", "sleep 1; cat /app/marker; pwd");
    let c2 = other_project("project-C", "sleep 2; cat /app/marker; pwd");
    let in_dir = |dir: &Path, args: &[&str]| {
        let out = dev.cmd(args).current_dir(dir).output().unwrap();
        (out.status.code(), stdout(&out), stderr(&out))
    };
    let first = std::time::Instant::now();
    let (code, out, err) = in_dir(b.path(), &["test"]);
    eprintln!("first dev test from a new project: {:?}", first.elapsed());
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "project-B\n/app\n");
    assert_eq!(
        in_dir(&proj_path, &["shell", "--", "cat", "/app/marker"]).1,
        "marker-content-42\n"
    );
    assert_eq!(
        in_dir(b.path(), &["shell", "--", "cat", "/app/marker"]).1,
        "project-B\n"
    );
    // Two calls from two projects at once each see their own.
    let spawn = |dir: &Path| {
        dev.cmd(&["test"])
            .current_dir(dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (tb, tc) = (spawn(b.path()), spawn(c2.path()));
    let (ob, oc) = (
        tb.wait_with_output().unwrap(),
        tc.wait_with_output().unwrap(),
    );
    for (o, want) in [(&ob, "project-B\n/app\n"), (&oc, "project-C\n/app\n")] {
        assert_eq!(
            (o.status.code(), stdout(o).as_str()),
            (Some(0), want),
            "stderr: {}",
            stderr(o)
        );
    }
    // Only the projects asked for reach the guest, and the host's own mount
    // table never changes.
    assert_eq!(
        dev.ok(&["shell", "--", "sh", "-c", "ls /mnt/dev-projects | wc -l"])
            .trim(),
        "2"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains("dev-projects"), "{mounts}");

    // serve: a forwarded port for as long as the server runs.
    let port = free_port();
    let mut serve = dev
        .cmd(&[
            "serve",
            "--port",
            &port.to_string(),
            "--",
            "httpd",
            "-f",
            "-p",
            "8000",
            "-h",
            "/app",
        ])
        .current_dir(&proj_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut body = String::new();
    wait_until("the served page", 120, || {
        body = try_http_get(port).unwrap_or_default();
        body.contains("served-from-app")
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(serve.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = serve.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    wait_until("the forward to go away", 30, || listeners(port).is_empty());
    assert_eq!(
        dev.ok(&[
            "shell",
            "--",
            "sh",
            "-c",
            "ps | grep -c '[h]ttpd -f' || true"
        ])
        .trim(),
        "0",
        "the server must be killed in the guest"
    );

    // The serial console: guest output arrives, stdin EOF detaches.
    let mut console = dev
        .cmd(&["shell", "--console"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut console_out = console.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = console_out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&seen).contains("CONSOLE-MARK-77") {
                let _ = tx.send(());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        dev.ok(&[
            "shell",
            "--",
            "sh",
            "-c",
            "echo CONSOLE-MARK-77 > /dev/console",
        ]);
        if rx.recv_timeout(Duration::from_secs(2)).is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "console never showed the mark");
    }
    drop(console.stdin.take());
    let st = console.wait().unwrap();
    assert!(st.success());

    // claude: only the selected credentials arrive, never on a command line.
    let creds_dir = tempfile::tempdir().unwrap();
    let gh_token = format!("gho_secret_{}", std::process::id());
    std::fs::create_dir_all(creds_dir.path().join(".config/gh")).unwrap();
    std::fs::write(
        creds_dir.path().join(".config/gh/hosts.yml"),
        format!("github.com:\n  oauth_token: {gh_token}\n"),
    )
    .unwrap();
    std::fs::write(
        creds_dir.path().join("gitconfig"),
        "[user]\n\tname = Test Dev\n\temail = dev@example.test\n",
    )
    .unwrap();
    let agent_sock = creds_dir.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&agent_sock)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("ssh-agent", 10, || agent_sock.exists());
    let creds = Creds {
        home: creds_dir.path().to_path_buf(),
        agent: agent_sock.clone(),
        api_key: format!("sk-ant-test-{}", std::process::id()),
        gh_token: gh_token.clone(),
    };
    let path_env = "PATH=/app/bin:/bin:/sbin:/usr/bin:/usr/sbin";
    let rec = run_claude(
        &dev,
        &proj_path,
        &creds,
        &[
            "--auth",
            "anthropic,git",
            "--model",
            "opus-test",
            "--env",
            path_env,
        ],
    );
    assert_eq!(rec["args"], "--model\nopus-test\n");
    assert_eq!(rec["pwd"], "/app\n");
    let env = &rec["env"];
    assert_eq!(
        env_has(env, "ANTHROPIC_API_KEY").as_deref(),
        Some(creds.api_key.as_str())
    );
    assert_eq!(env_has(env, "GIT_AUTHOR_NAME").as_deref(), Some("Test Dev"));
    assert_eq!(
        env_has(env, "GIT_COMMITTER_EMAIL").as_deref(),
        Some("dev@example.test")
    );
    assert_eq!(env_has(env, "SSH_AUTH_SOCK"), None, "ssh was not selected");
    assert_eq!(rec["gh"], "none\n", "gh was not selected");

    let rec = run_claude(
        &dev,
        &proj_path,
        &creds,
        &["--auth", "gh,ssh", "--env", path_env],
    );
    assert_eq!(
        rec["args"], "",
        "no model flag unless asked: {}",
        rec["args"]
    );
    let env = &rec["env"];
    assert_eq!(env_has(env, "ANTHROPIC_API_KEY"), None);
    assert_eq!(env_has(env, "GIT_AUTHOR_NAME"), None);
    assert!(
        env_has(env, "SSH_AUTH_SOCK").is_some(),
        "agent forwarded:\n{env}"
    );
    assert!(
        rec["gh"].contains(&gh_token),
        "gh config copied: {}",
        rec["gh"]
    );
    let _ = agent.kill();
    let _ = agent.wait();
    // Nothing secret in the serial log either.
    let log = dev.home.ok(&["logs", &id]);
    assert!(!log.contains(&creds.api_key) && !log.contains(&gh_token));

    // boot --fresh replaces the running VM.
    let id2 = dev
        .ok(&["boot", "--fresh", "--project", p, "--timeout", &timeout])
        .trim()
        .to_string();
    assert_ne!(id2, id);
    let all = dev.home.ps();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["id"], id2.as_str());
    assert_eq!(
        dev.ok(&["shell", "--", "cat", "/app/marker"]),
        "marker-content-42\n"
    );

    // stop keeps the container; a second stop says it is not running.
    assert_eq!(dev.ok(&["stop"]).trim(), id2);
    let s = dev.json(&["status", "--json"]);
    assert_eq!(s["running"], false);
    assert_eq!(s["container_id"], id2.as_str());
    assert!(s["ssh_port"].is_null() && s["uptime_secs"].is_null());
    assert!(dev.fail(&["stop"]).contains("not running"));
    assert!(dev
        .fail(&["shell", "--", "true"])
        .contains("vmcontainer dev boot"));

    // Booting again with the same settings starts the same container.
    let id3 = dev
        .ok(&["boot", "--project", p, "--timeout", &timeout])
        .trim()
        .to_string();
    assert_eq!(id3, id2);
    assert_eq!(
        dev.ok(&["shell", "--", "cat", "/app/marker"]),
        "marker-content-42\n"
    );
    dev.ok(&["stop"]);
}
