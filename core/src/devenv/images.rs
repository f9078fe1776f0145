//! The dev image in the images directory and `manifest.json` beside it:
//! `{"images": {"<image>": {"version", "sha256", "downloaded", "source"}}}`
//! (go-container's format; other fields survive a rewrite).
//!
//! An image only ever appears under its name after it was downloaded
//! completely and its checksum verified ([`crate::sources::download`]), so
//! the file's presence means "installed".

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::config::{Config, SourceSelection};
use super::DevenvError;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::sources::{
    self, download::Progress, CdnSource, GitHubSource, ImageSource, Release, SourceError,
};

/// `core-devops-{os}-{arch}.qcow2` with Go's names for the host OS and
/// architecture (`linux`/`darwin`, `amd64`/`arm64`), as go-container named
/// it.
pub fn image_name() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        other => other,
    };
    format!("core-devops-{os}-{arch}.qcow2")
}

/// Largest manifest read: one entry per image, a few hundred bytes each.
const MAX_MANIFEST: u64 = 16 << 20;

/// `manifest.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Installed images by file name.
    #[serde(default)]
    pub images: BTreeMap<String, ImageInfo>,
    /// Unknown top-level fields, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// One installed image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Release version (tag).
    #[serde(default)]
    pub version: String,
    /// sha256 of the file, hex (go-container left it empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    /// When it was downloaded.
    pub downloaded: DateTime<Utc>,
    /// `github` or `cdn`.
    #[serde(default)]
    pub source: String,
    /// Unknown fields, kept verbatim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Result of [`ImageManager::check_update`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpdateInfo {
    /// Installed version.
    pub current: String,
    /// Latest published version.
    pub latest: String,
    /// Whether the latest differs from the installed one.
    pub has_update: bool,
}

/// Result of [`ImageManager::install`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstallReport {
    /// The installed file.
    pub path: PathBuf,
    /// Installed version.
    pub version: String,
    /// Source it came from.
    pub source: String,
    /// Its sha256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes reused from an interrupted earlier download.
    pub resumed_from: u64,
    /// True when the same release was already installed and nothing was
    /// downloaded.
    pub already_installed: bool,
}

/// The dev image, its manifest and the sources to fetch it from.
#[derive(Debug, Clone)]
pub struct ImageManager {
    dir: PathBuf,
    name: String,
    sources: Vec<Arc<dyn ImageSource>>,
}

impl ImageManager {
    /// The image manager for `home`'s images directory with the sources
    /// that `config` selects (GitHub settings from `GITHUB_TOKEN` and
    /// `GITHUB_API_URL`).
    pub fn new(home: &Home, config: &Config) -> Result<Self> {
        let name = image_name();
        let client = sources::http_client()?;
        let github: Arc<dyn ImageSource> = Arc::new(GitHubSource::from_env(
            &config.images.github.repo,
            &name,
            client.clone(),
        ));
        let cdn: Arc<dyn ImageSource> =
            Arc::new(CdnSource::new(&config.images.cdn.url, &name, client));
        #[cfg(feature = "registry")]
        let registry = |image: &str| -> Arc<dyn ImageSource> {
            Arc::new(sources::RegistrySource::new(
                image,
                &name,
                config.images.registry.plain_http,
            ))
        };
        let sources = match config.images.source {
            SourceSelection::GitHub => vec![github],
            SourceSelection::Cdn => vec![cdn],
            #[cfg(feature = "registry")]
            SourceSelection::Registry => {
                vec![registry(config.images.registry.image_or_default())]
            }
            // `auto` tries the registry only when one is configured.
            #[cfg(feature = "registry")]
            SourceSelection::Auto => vec![github, registry(&config.images.registry.image), cdn],
            #[cfg(not(feature = "registry"))]
            SourceSelection::Auto | SourceSelection::Registry => vec![github, cdn],
        };
        Ok(Self::with_sources(home.images_dir(), name, sources))
    }

    /// An image manager with explicit sources, tried in order.
    pub fn with_sources(
        dir: impl Into<PathBuf>,
        name: impl Into<String>,
        sources: Vec<Arc<dyn ImageSource>>,
    ) -> Self {
        ImageManager {
            dir: dir.into(),
            name: name.into(),
            sources,
        }
    }

    /// The images directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The image's file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the image is (or would be).
    pub fn image_path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// `manifest.json`.
    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join("manifest.json")
    }

    /// Whether the image file is present.
    pub fn is_installed(&self) -> bool {
        self.image_path().is_file()
    }

    /// The manifest entry of the installed image, if any.
    pub fn installed(&self) -> Result<Option<ImageInfo>> {
        Ok(self.load_manifest()?.images.remove(&self.name))
    }

    /// Records the sha256 of an image go-container installed: its manifest
    /// entry has none (go-container never stored one), so the first use
    /// hashes the file and writes the hash into the entry. The file must
    /// not be empty and, when `expected_size` is known, must have that
    /// size; otherwise nothing is recorded and `None` comes back (the file
    /// is not the image the entry describes). Also `None` when there is
    /// no such entry or it already has a hash. Blocking: hashing reads the
    /// whole image.
    pub fn record_missing_hash(&self, expected_size: Option<u64>) -> Result<Option<ImageInfo>> {
        let Some(info) = self.installed()? else {
            return Ok(None);
        };
        if !info.sha256.is_empty() {
            return Ok(None);
        }
        let path = self.image_path();
        let size = match fs::metadata(&path) {
            Ok(m) if m.is_file() => m.len(),
            _ => return Ok(None),
        };
        if size == 0 || expected_size.is_some_and(|want| want != size) {
            return Ok(None);
        }
        let sha256 = file_sha256(&path)?;
        let mut recorded = None;
        self.update_manifest(|m| {
            // Another process may have replaced the entry meanwhile: only
            // the entry that was hashed gets the hash.
            if let Some(e) = m.images.get_mut(&self.name) {
                if e.sha256.is_empty() && e.version == info.version {
                    e.sha256 = sha256.clone();
                    recorded = Some(e.clone());
                }
            }
        })?;
        Ok(recorded)
    }

    /// [`Self::record_missing_hash`] off the async workers.
    pub(crate) async fn record_missing_hash_async(
        &self,
        expected_size: Option<u64>,
    ) -> Result<Option<ImageInfo>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.record_missing_hash(expected_size))
            .await
            .map_err(|e| Error::io("hash image", self.image_path(), std::io::Error::other(e)))?
    }

    /// Reads `manifest.json`; missing is empty, corrupt is an error naming
    /// the file.
    pub fn load_manifest(&self) -> Result<Manifest> {
        use crate::regular_file::{read, OpenError};
        let path = self.manifest_path();
        let corrupt = |reason: String| -> Error {
            DevenvError::CorruptManifest {
                path: path.clone(),
                reason,
            }
            .into()
        };
        let bytes = match read(&path, MAX_MANIFEST) {
            Ok(b) => b,
            Err(OpenError::Missing(_)) => return Ok(Manifest::default()),
            Err(OpenError::Io(e)) => return Err(Error::io("read", path, e)),
            Err(other) => return Err(corrupt(other.describe())),
        };
        // A repeated key would silently drop an entry.
        if let Some(dup) = crate::json_keys::find_duplicate_key(&bytes) {
            return Err(corrupt(dup.to_string()));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            DevenvError::CorruptManifest {
                path,
                reason: format!(
                    "invalid JSON at line {} column {}: {e}",
                    e.line(),
                    e.column()
                ),
            }
            .into()
        })
    }

    /// Applies `f` to the manifest under an exclusive lock and writes it
    /// back atomically (temp file, fsync, rename, fsync directory).
    fn update_manifest(&self, f: impl FnOnce(&mut Manifest)) -> Result<()> {
        Home::ensure_dir(&self.dir)?;
        let lock_path = self.dir.join("manifest.json.lock");
        let lock = crate::regular_file::open_with(
            &lock_path,
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600),
            false,
        )
        .map_err(|e| match e {
            crate::regular_file::OpenError::Missing(e) | crate::regular_file::OpenError::Io(e) => {
                Error::io("open lock file", &lock_path, e)
            }
            other => Error::invalid(
                "lock file",
                lock_path.display().to_string(),
                other.describe(),
            ),
        })?;
        lock.lock().map_err(|e| Error::io("lock", &lock_path, e))?;
        let mut m = self.load_manifest()?;
        f(&mut m);
        let path = self.manifest_path();
        let mut json = serde_json::to_vec_pretty(&m)
            .map_err(|e| Error::io("serialize", &path, std::io::Error::other(e)))?;
        json.push(b'\n');
        let mut tmp = tempfile::Builder::new()
            .prefix(".manifest.json.")
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io("create temporary file in", &self.dir, e))?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .and_then(|_| tmp.write_all(&json))
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| Error::io("write", tmp.path().to_path_buf(), e))?;
        tmp.persist(&path)
            .map_err(|e| Error::io("rename into place", &path, e.error))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync directory", &self.dir, e))?;
        Ok(())
    }

    /// Resolves the latest release from the first source that can provide
    /// it; failures of earlier sources are reported only if all fail.
    pub async fn resolve_latest(&self) -> Result<(Arc<dyn ImageSource>, Release)> {
        let mut failures = Vec::new();
        for s in &self.sources {
            if let Err(e) = s.check_available() {
                failures.push((s.name(), e));
                continue;
            }
            match s.latest().await {
                Ok(r) => return Ok((s.clone(), r)),
                Err(e) => failures.push((s.name(), e)),
            }
        }
        Err(SourceError::NoSource {
            image: self.name.clone(),
            failures,
        }
        .into())
    }

    /// Downloads and installs the latest image, reporting
    /// `(downloaded, total)`. Does nothing when the same release is already
    /// installed. The previous image stays in place until the new one is
    /// complete and verified.
    pub async fn install(&self, progress: Progress<'_>) -> Result<InstallReport> {
        let (source, release) = self.resolve_latest().await?;
        if self.is_installed() {
            if let Some(mut info) = self.installed()? {
                // go-container recorded no hash: the same release whose
                // size matches is hashed once and kept if the hash agrees.
                if info.sha256.is_empty() && info.version == release.version {
                    if let Some(hashed) = self.record_missing_hash_async(release.size).await? {
                        info = hashed;
                    }
                }
                if info.sha256 == release.sha256 {
                    let size = fs::metadata(self.image_path())
                        .map(|m| m.len())
                        .unwrap_or(0);
                    return Ok(InstallReport {
                        path: self.image_path(),
                        version: info.version,
                        source: info.source,
                        sha256: info.sha256,
                        size,
                        resumed_from: 0,
                        already_installed: true,
                    });
                }
            }
        }
        let got = source.download(&release, &self.dir, progress).await?;
        let info = ImageInfo {
            version: release.version.clone(),
            sha256: got.sha256.clone(),
            downloaded: Utc::now(),
            source: source.name().to_string(),
            extra: Default::default(),
        };
        // The manifest lock may be held by another process: wait for it on
        // a blocking thread, not on an async worker.
        let this = self.clone();
        let file_name = release.file_name.clone();
        tokio::task::spawn_blocking(move || {
            this.update_manifest(|m| {
                m.images.insert(file_name, info);
            })
        })
        .await
        .map_err(|e| {
            Error::io(
                "update manifest",
                self.manifest_path(),
                std::io::Error::other(e),
            )
        })??;
        Ok(InstallReport {
            path: got.path,
            version: release.version,
            source: source.name().to_string(),
            sha256: got.sha256,
            size: got.size,
            resumed_from: got.resumed_from,
            already_installed: false,
        })
    }

    /// Compares the installed version with the latest published one.
    pub async fn check_update(&self) -> Result<UpdateInfo> {
        if !self.is_installed() {
            return Err(DevenvError::NotInstalled {
                image: self.image_path(),
            }
            .into());
        }
        let current = self.installed()?.map(|i| i.version).unwrap_or_default();
        let (_, latest) = self.resolve_latest().await?;
        Ok(UpdateInfo {
            has_update: current != latest.version,
            current,
            latest: latest.version,
        })
    }
}

/// The sha256 of the file at `path`, lowercase hex.
fn file_sha256(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::test_server::{Reply, TestServer};

    const GO_MANIFEST: &str = r#"{"images":{"core-devops-linux-amd64.qcow2":{"version":"v1.2.0","downloaded":"2025-02-01T10:00:00.123456+01:00","source":"github"}},"note":"kept"}"#;

    #[test]
    fn image_name_uses_go_platform_names() {
        let n = image_name();
        assert!(
            n.starts_with("core-devops-") && n.ends_with(".qcow2"),
            "{n}"
        );
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        assert_eq!(n, "core-devops-linux-amd64.qcow2");
    }

    #[test]
    fn go_manifest_loads_and_round_trips() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("manifest.json"), GO_MANIFEST).unwrap();
        let m = ImageManager::with_sources(d.path(), "core-devops-linux-amd64.qcow2", vec![]);
        let info = m.installed().unwrap().unwrap();
        assert_eq!(info.version, "v1.2.0");
        assert_eq!(info.source, "github");
        assert_eq!(info.sha256, "");
        assert!(!m.is_installed(), "no image file yet");
        m.update_manifest(|man| {
            man.images.insert(
                "other.qcow2".into(),
                ImageInfo {
                    version: "2".into(),
                    sha256: "ab".into(),
                    downloaded: Utc::now(),
                    source: "cdn".into(),
                    extra: Default::default(),
                },
            );
        })
        .unwrap();
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(m.manifest_path()).unwrap()).unwrap();
        assert_eq!(raw["note"], "kept");
        assert_eq!(
            raw["images"]["core-devops-linux-amd64.qcow2"]["version"],
            "v1.2.0"
        );
        assert!(raw["images"]["core-devops-linux-amd64.qcow2"]
            .get("sha256")
            .is_none());
        assert_eq!(raw["images"]["other.qcow2"]["sha256"], "ab");
        let mode = std::fs::metadata(m.manifest_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn corrupt_manifest_is_named_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("manifest.json");
        std::fs::write(&p, "{\"images\": {").unwrap();
        let m = ImageManager::with_sources(d.path(), "x.qcow2", vec![]);
        let e = m.installed().unwrap_err();
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
        assert_eq!(e.kind(), crate::ErrorKind::StateCorrupt);
        assert!(m.update_manifest(|_| {}).is_err());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\"images\": {");
    }

    #[test]
    fn duplicate_keys_fifos_and_lock_links_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("manifest.json");
        let dup = r#"{"images": {"x.qcow2": {"version": "1", "downloaded": "2025-01-01T00:00:00Z"}, "x.qcow2": {"version": "2", "downloaded": "2025-01-01T00:00:00Z"}}}"#;
        std::fs::write(&p, dup).unwrap();
        let m = ImageManager::with_sources(d.path(), "x.qcow2", vec![]);
        let e = m.installed().unwrap_err().to_string();
        assert!(
            e.contains("duplicate key") && e.contains(&p.display().to_string()),
            "{e}"
        );
        std::fs::remove_file(&p).unwrap();
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let t = std::time::Instant::now();
        let e = m.installed().unwrap_err().to_string();
        assert!(e.contains("FIFO"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        std::fs::remove_file(&p).unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("made");
        std::os::unix::fs::symlink(&target, d.path().join("manifest.json.lock")).unwrap();
        let e = m.update_manifest(|_| {}).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(!target.exists());
    }

    #[tokio::test]
    async fn no_configured_source_says_why() {
        let d = tempfile::tempdir().unwrap();
        let home = Home::new(d.path());
        let cfg = Config::parse(Path::new("c.yaml"), "images: {source: cdn}\n").unwrap();
        let m = ImageManager::new(&home, &cfg).unwrap();
        let e = m.resolve_latest().await.unwrap_err();
        assert!(e.to_string().contains("images.cdn.url"), "{e}");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
    }

    /// An image manager for `x.qcow2` on a CDN at `server` + `path`.
    fn cdn_manager(dir: &Path, server: &TestServer, path: &str) -> ImageManager {
        let client = sources::http_client().unwrap();
        let cdn: Arc<dyn ImageSource> =
            Arc::new(CdnSource::new(&server.url(path), "x.qcow2", client));
        ImageManager::with_sources(dir, "x.qcow2", vec![cdn])
    }

    fn publish(server: &TestServer, path: &str, sha256: &str, image: Option<Reply>) {
        let manifest = serde_json::json!({
            "version": "1.0.0",
            "images": {"x.qcow2": {"sha256": sha256, "size": 4096}},
        });
        server.route(
            &format!("{path}/manifest.json"),
            Reply::ok(manifest.to_string()),
        );
        if let Some(r) = image {
            server.route(&format!("{path}/x.qcow2"), r);
        }
    }

    fn sha256_hex(data: &[u8]) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[tokio::test]
    async fn go_container_install_without_hash_is_kept_and_hashed_once() {
        let server = TestServer::start();
        let image = vec![9u8; 4096];
        let sha = sha256_hex(&image);
        let d = tempfile::tempdir().unwrap();
        let go_manifest = r#"{"images":{"x.qcow2":{"version":"1.0.0","sha256":"","downloaded":"2025-02-01T10:00:00Z","source":"cdn"}}}"#;
        std::fs::write(d.path().join("manifest.json"), go_manifest).unwrap();
        std::fs::write(d.path().join("x.qcow2"), &image).unwrap();
        // No image route: a download would fail with HTTP 404.
        publish(&server, "/go", &sha, None);
        let m = cdn_manager(d.path(), &server, "/go");
        let r = m.install(&mut |_, _| {}).await.unwrap();
        assert!(r.already_installed, "{r:?}");
        assert_eq!(r.sha256, sha);
        assert_eq!(m.installed().unwrap().unwrap().sha256, sha);
        // Recorded once: nothing left to record.
        assert_eq!(m.record_missing_hash(None).unwrap(), None);

        // A file of another size than published is not that image: it is
        // downloaded again.
        let d2 = tempfile::tempdir().unwrap();
        std::fs::write(d2.path().join("manifest.json"), go_manifest).unwrap();
        std::fs::write(d2.path().join("x.qcow2"), [1u8; 100]).unwrap();
        publish(&server, "/go2", &sha, Some(Reply::ok(image.clone())));
        let m2 = cdn_manager(d2.path(), &server, "/go2");
        assert_eq!(m2.record_missing_hash(Some(4096)).unwrap(), None);
        assert_eq!(m2.installed().unwrap().unwrap().sha256, "");
        let r = m2.install(&mut |_, _| {}).await.unwrap();
        assert!(!r.already_installed);
        assert_eq!(std::fs::read(d2.path().join("x.qcow2")).unwrap(), image);
        assert_eq!(m2.installed().unwrap().unwrap().sha256, sha);

        // First use without a published size: any non-empty file is hashed.
        let d3 = tempfile::tempdir().unwrap();
        std::fs::write(d3.path().join("manifest.json"), go_manifest).unwrap();
        std::fs::write(d3.path().join("x.qcow2"), b"").unwrap();
        let m3 = ImageManager::with_sources(d3.path(), "x.qcow2", vec![]);
        assert_eq!(m3.record_missing_hash(None).unwrap(), None, "empty file");
        std::fs::write(d3.path().join("x.qcow2"), b"abc").unwrap();
        let got = m3.record_missing_hash(None).unwrap().unwrap();
        assert_eq!(got.sha256, sha256_hex(b"abc"));
        assert_eq!(got.version, "1.0.0");
    }

    #[tokio::test]
    async fn failed_downloads_and_checksums_have_their_own_kinds() {
        use crate::ErrorKind as K;
        let server = TestServer::start();
        let image = vec![7u8; 4096];
        let sha = sha256_hex(&image);
        let d = tempfile::tempdir().unwrap();
        let install = |path: &str| {
            let m = cdn_manager(d.path(), &server, path);
            async move {
                let e = m.install(&mut |_, _| {}).await.unwrap_err();
                assert!(!m.is_installed(), "{e}");
                e
            }
        };

        // The manifest names the image, which answers 404.
        publish(&server, "/gone", &sha, None);
        let e = install("/gone").await;
        assert_eq!(e.kind(), K::Download, "{e}");
        assert!(e.to_string().contains("HTTP 404"), "{e}");

        // The manifest itself fails: no source could provide the image.
        server.route(
            "/broken/manifest.json",
            Reply {
                status: 500,
                body: b"oops".to_vec(),
                cut_after: None,
            },
        );
        let e = install("/broken").await;
        assert_eq!(e.kind(), K::Download, "{e}");
        assert!(
            e.to_string()
                .contains("no image source could provide x.qcow2"),
            "{e}"
        );

        // The body stops half-way on every attempt.
        publish(
            &server,
            "/cut",
            &sha,
            Some(Reply {
                cut_after: Some(1000),
                ..Reply::ok(image.clone())
            }),
        );
        let e = install("/cut").await;
        assert_eq!(e.kind(), K::Download, "{e}");
        assert!(e.to_string().contains("interrupted"), "{e}");

        // Bytes that do not match the published checksum.
        let wrong = sha256_hex(b"other bytes");
        publish(&server, "/tampered", &wrong, Some(Reply::ok(image.clone())));
        let e = install("/tampered").await;
        assert_eq!(e.kind(), K::Checksum, "{e}");
        assert!(e.to_string().contains("checksum mismatch"), "{e}");
        assert!(
            e.to_string().contains(&wrong) && e.to_string().contains(&sha),
            "{e}"
        );

        // A malformed published checksum, and none at all.
        publish(
            &server,
            "/badsum",
            "not-hex",
            Some(Reply::ok(image.clone())),
        );
        assert_eq!(install("/badsum").await.kind(), K::Checksum);
        server.route("/nosum/manifest.json", Reply::ok(r#"{"version": "1"}"#));
        server.route("/nosum/x.qcow2", Reply::ok(image.clone()));
        let e = install("/nosum").await;
        assert_eq!(e.kind(), K::Checksum, "{e}");
        assert!(e.to_string().contains("no sha256"), "{e}");

        // And the same server with everything right installs.
        publish(&server, "/good", &sha, Some(Reply::ok(image.clone())));
        let m = cdn_manager(d.path(), &server, "/good");
        let r = m.install(&mut |_, _| {}).await.unwrap();
        assert_eq!((r.sha256, r.size), (sha, 4096));
    }
}
