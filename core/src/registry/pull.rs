//! `pull REF`: a VM image from a registry into the store, every byte
//! verified before anything is installed.
//!
//! The manifest (at most 4 MiB, checked against its digest) must be a
//! vmcontainer image; its config names the format; its layers are
//! downloaded in parallel into a staging directory by the same verified,
//! resumable downloader as the dev image (partial files resume with HTTP
//! `Range`), and only when all are complete and verified is the directory
//! renamed into place and the index updated. An interrupted pull resumes;
//! a digest mismatch installs nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use chrono::Utc;
use oci_client::manifest::{OciImageIndex, OciImageManifest};
use oci_client::RegistryOperation;
use serde::Serialize;

use super::media::{self, ImageConfig, RemoteLayer, Role};
use super::reference::{is_registry_reference, ImageRef};
use super::session::{manifest_kind, ManifestKind, Session};
use super::store::{lock_file, sync_dir, ImageStore, StoredFile, StoredImage};
use super::upload::with_progress;
use super::{sha256_hex, RegistryError};
use crate::home::Home;
use crate::image::ImageFormat;
use crate::sources::download::{self, Progress};

/// Layers downloaded at once.
const PARALLEL: usize = 4;

/// How to pull.
#[derive(Default)]
pub struct PullOptions<'a> {
    /// Allow plain HTTP to a registry that is not on loopback.
    pub plain_http: bool,
    /// Receives `(downloaded, total)` bytes.
    pub progress: Option<Progress<'a>>,
}

impl std::fmt::Debug for PullOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullOptions")
            .field("plain_http", &self.plain_http)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// The result of a pull.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PulledImage {
    /// The image as stored.
    #[serde(flatten)]
    pub image: StoredImage,
    /// Bytes transferred by this pull (0 when everything was present).
    pub downloaded: u64,
    /// Whether the content was already in the store.
    pub already_present: bool,
}

/// Pulls `reference` into `home`'s store (see the module docs).
pub async fn pull(
    home: &Home,
    reference: &str,
    opts: PullOptions<'_>,
) -> Result<PulledImage, RegistryError> {
    let r = ImageRef::parse(reference)?;
    let session = Session::open(&r, opts.plain_http, RegistryOperation::Pull).await?;
    let (manifest, digest) = resolve_manifest(&session).await?;
    let origin = r.to_string();
    media::check_artifact_type(&origin, &manifest)?;
    let config = fetch_config(&session, &origin, &manifest).await?;
    let layers = media::check_manifest(&origin, &manifest, &config)?;
    install(
        &ImageStore::new(home),
        &session,
        &origin,
        &digest,
        config.format,
        &layers,
        opts.progress,
    )
    .await
}

/// What `run IMAGE` boots: `image` itself when it is a path (see
/// [`is_registry_reference`]); for a reference, the stored image, pulled
/// first when it is not present.
pub async fn resolve_image(
    home: &Home,
    image: &Path,
    opts: PullOptions<'_>,
) -> Result<PathBuf, RegistryError> {
    let Some(s) = image.to_str() else {
        return Ok(image.to_path_buf());
    };
    if !is_registry_reference(s) {
        return Ok(image.to_path_buf());
    }
    let r = ImageRef::parse(s)?;
    let store = ImageStore::new(home);
    let index = store.index_path();
    let found = {
        let r = r.clone();
        tokio::task::spawn_blocking(move || store.get(&r))
            .await
            .map_err(|e| RegistryError::io("read", index, std::io::Error::other(e)))??
    };
    if let Some(img) = found {
        return Ok(img.path);
    }
    Ok(pull(home, s, opts).await?.image.path)
}

/// The image manifest `session`'s reference names, and its digest; an
/// index is followed to its entry for this host's architecture.
pub(crate) async fn resolve_manifest(
    session: &Session,
) -> Result<(OciImageManifest, String), RegistryError> {
    let r = session.reference();
    let origin = format!("manifest of {r}");
    let m = session.get_manifest(r.manifest_ref()).await?;
    let m = match manifest_kind(&m) {
        ManifestKind::Image => m,
        ManifestKind::Index => {
            let idx: OciImageIndex = serde_json::from_slice(&m.bytes)
                .map_err(|e| RegistryError::bad(&origin, format!("invalid image index: {e}")))?;
            let arch = media::go_arch();
            let entry = idx
                .manifests
                .iter()
                .find(|e| {
                    e.platform
                        .as_ref()
                        .is_some_and(|p| p.architecture.to_string() == arch)
                })
                .or(match idx.manifests.as_slice() {
                    [only] if only.platform.is_none() => Some(only),
                    _ => None,
                })
                .ok_or_else(|| RegistryError::NotAVmImage {
                    reference: r.to_string(),
                    found: format!("an image index with no entry for {arch}"),
                    expected: media::ARTIFACT_TYPE,
                })?;
            sha256_hex(&origin, &entry.digest)?;
            let m = session.get_manifest(&entry.digest).await?;
            if manifest_kind(&m) != ManifestKind::Image {
                return Err(RegistryError::bad(&origin, "an index inside an index"));
            }
            m
        }
    };
    let manifest: OciImageManifest = serde_json::from_slice(&m.bytes)
        .map_err(|e| RegistryError::bad(&origin, format!("invalid image manifest: {e}")))?;
    if manifest.schema_version != 2 {
        return Err(RegistryError::bad(
            &origin,
            format!("schemaVersion {} (expected 2)", manifest.schema_version),
        ));
    }
    Ok((manifest, m.digest))
}

pub(crate) async fn fetch_config(
    session: &Session,
    origin: &str,
    manifest: &OciImageManifest,
) -> Result<ImageConfig, RegistryError> {
    let size = media::config_size(origin, &manifest.config)?;
    let bytes = session
        .get_small_blob(&manifest.config.digest, size, media::MAX_CONFIG)
        .await?;
    media::parse_config(origin, &bytes)
}

/// Puts the layers of manifest `digest` into the store (or finds them
/// there) and records `reference`.
async fn install(
    store: &ImageStore,
    session: &Session,
    reference: &str,
    digest: &str,
    format: ImageFormat,
    layers: &[RemoteLayer],
    progress: Option<Progress<'_>>,
) -> Result<PulledImage, RegistryError> {
    let hex = sha256_hex(reference, digest)?.to_string();
    let sha_dir = store.dir().join("sha256");
    Home::ensure_dir(&sha_dir).map_err(|e| {
        RegistryError::io(
            "create directory",
            &sha_dir,
            std::io::Error::other(e.to_string()),
        )
    })?;
    // One pull of a given image at a time, across processes.
    let lock_path = sha_dir.join(format!(".{hex}.lock"));
    let _lock = tokio::task::spawn_blocking(move || lock_file(&lock_path))
        .await
        .map_err(|e| RegistryError::io("lock", &sha_dir, std::io::Error::other(e)))??;

    let final_dir = store.content_dir(&hex);
    let main_file = layers
        .iter()
        .find(|l| matches!(l.role, Role::Disk | Role::Cdrom | Role::Kernel))
        .map(|l| l.file_name.clone())
        .unwrap_or_default();
    let files: Vec<StoredFile> = layers
        .iter()
        .map(|l| StoredFile {
            role: l.role,
            name: l.file_name.clone(),
            digest: l.digest.clone(),
            size: l.size,
        })
        .collect();
    let mut image = StoredImage {
        reference: reference.to_string(),
        digest: digest.to_string(),
        format,
        path: final_dir.join(&main_file),
        files,
        size: layers.iter().map(|l| l.size).sum(),
        pulled: Utc::now(),
    };
    let already_present = store.is_complete(&image);
    let mut downloaded = 0;
    if !already_present {
        if final_dir.exists() {
            // Damaged since it was installed (a file deleted or cut):
            // start that image over.
            std::fs::remove_dir_all(&final_dir)
                .map_err(|e| RegistryError::io("remove damaged image", &final_dir, e))?;
        }
        let stage = store.staging_dir(&hex);
        downloaded = fetch_layers(session, &stage, layers, progress).await?;
        std::fs::rename(&stage, &final_dir)
            .map_err(|e| RegistryError::io("rename into place", &final_dir, e))?;
        sync_dir(final_dir.parent().unwrap_or(store.dir()))?;
    }
    image.pulled = Utc::now();
    let (s, img) = (store.clone(), image.clone());
    tokio::task::spawn_blocking(move || s.record(&img))
        .await
        .map_err(|e| RegistryError::io("record", store.index_path(), std::io::Error::other(e)))??;
    Ok(PulledImage {
        image,
        downloaded,
        already_present,
    })
}

/// Downloads every layer into `stage` (kept across attempts), in parallel;
/// returns the bytes transferred.
async fn fetch_layers(
    session: &Session,
    stage: &Path,
    layers: &[RemoteLayer],
    progress: Option<Progress<'_>>,
) -> Result<u64, RegistryError> {
    Home::ensure_dir(stage).map_err(|e| {
        RegistryError::io(
            "create directory",
            stage,
            std::io::Error::other(e.to_string()),
        )
    })?;
    // Files completed by an earlier, interrupted pull count as done once
    // their digest checks out; partial files count toward free space.
    let mut todo = Vec::new();
    let mut have = 0u64;
    let mut needed = 0u64;
    for l in layers {
        let path = stage.join(&l.file_name);
        if verified(&path, l).await {
            have += l.size;
            continue;
        }
        let partial =
            download::partial_path(stage, &l.file_name, sha256_hex(&l.file_name, &l.digest)?);
        let part = std::fs::metadata(&partial)
            .map(|m| m.len())
            .unwrap_or(0)
            .min(l.size);
        needed += l.size - part;
        todo.push(l);
    }
    check_space(stage, needed)?;
    let total: u64 = layers.iter().map(|l| l.size).sum();
    let counters: Vec<Arc<AtomicU64>> = todo.iter().map(|_| Arc::default()).collect();
    let done = Arc::new(AtomicU64::new(have));
    let mut all = counters.clone();
    all.push(done);
    let client = session.http();
    let jobs = todo.iter().zip(counters.iter()).map(|(l, counter)| {
        let counter = counter.clone();
        let (url, headers) = session.blob_request(&l.digest);
        async move {
            let sha = sha256_hex(&url, &l.digest)?.to_string();
            let mut report = move |d: u64, _: Option<u64>| {
                counter.store(d, std::sync::atomic::Ordering::Relaxed)
            };
            let req = download::Request {
                url: &url,
                headers: &headers,
                bearer: None,
                file_name: &l.file_name,
                sha256: &sha,
                size: Some(l.size),
            };
            let got = download::fetch(client, &req, stage, &mut report).await?;
            Ok::<u64, RegistryError>(got.size - got.resumed_from)
        }
    });
    // Collected first: a `Map` with its closure inside the stream makes the
    // whole future fail rustc's higher-ranked `Send` check when a caller
    // spawns it (`run REF` from a blocking face).
    let jobs: Vec<_> = jobs.collect();
    use futures_util::StreamExt;
    let run = futures_util::stream::iter(jobs)
        .buffer_unordered(PARALLEL)
        .collect::<Vec<_>>();
    let results = with_progress(run, &all, total, progress).await;
    let mut transferred = 0;
    for r in results {
        transferred += r?;
    }
    // The downloader's per-file lock files are not part of the image (the
    // image's own lock, held by the caller, keeps other pulls out).
    if let Ok(entries) = std::fs::read_dir(stage) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().ends_with(".lock") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(transferred)
}

/// Whether `path` is a complete copy of layer `l`.
async fn verified(path: &Path, l: &RemoteLayer) -> bool {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == l.size) {
        return false;
    }
    let (p, want) = (path.to_path_buf(), l.digest.clone());
    tokio::task::spawn_blocking(move || {
        use sha2::Digest;
        use std::io::Read;
        let mut f = std::fs::File::open(&p)?;
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok::<_, std::io::Error>(format!("sha256:{}", super::hex(&h.finalize())) == want)
    })
    .await
    .is_ok_and(|r| r.unwrap_or(false))
}

/// Refuses a pull that cannot fit, before downloading anything.
fn check_space(dir: &Path, needed: u64) -> Result<(), RegistryError> {
    let st = nix::sys::statvfs::statvfs(dir)
        .map_err(|e| RegistryError::io("check free space in", dir, std::io::Error::from(e)))?;
    let available = (st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64);
    if needed > available {
        return Err(RegistryError::NoSpace {
            dir: dir.to_path_buf(),
            needed,
            available,
        });
    }
    Ok(())
}
