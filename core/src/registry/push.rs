//! `push IMAGE REF`: a local VM image to a registry as an OCI artifact
//! (see [`super::media`]), or with `containerdisk` as a KubeVirt
//! containerDisk (see [`super::containerdisk`]).
//!
//! Each file is uploaded in one streaming request, read once from disk
//! and hashed on the way; the files of a LinuxKit build go in parallel.
//! The manifest is written last, so a failed push never leaves a tag
//! pointing at missing blobs.

use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use chrono::Utc;
use oci_client::manifest::OciDescriptor;
use oci_client::RegistryOperation;
use serde::Serialize;

use super::media::{self, ImageConfig, LocalLayer};
use super::reference::ImageRef;
use super::session::Session;
use super::store::ImageStore;
use super::upload::{with_progress, Body};
use super::RegistryError;
use crate::home::Home;
use crate::image::ImageFormat;
use crate::sources::download::Progress;

/// How to push.
#[derive(Default)]
pub struct PushOptions<'a> {
    /// Push a KubeVirt containerDisk (an OCI image with the disk under
    /// `/disk/`) instead of a vmcontainer artifact.
    pub containerdisk: bool,
    /// Allow plain HTTP to a registry that is not on loopback.
    pub plain_http: bool,
    /// Receives `(uploaded, total)` bytes.
    pub progress: Option<Progress<'a>>,
}

impl std::fmt::Debug for PushOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushOptions")
            .field("containerdisk", &self.containerdisk)
            .field("plain_http", &self.plain_http)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What a push wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PushReport {
    /// The reference pushed to (canonical form).
    pub reference: String,
    /// `sha256:<hex>` of the manifest; `REPO@DIGEST` names exactly this.
    pub digest: String,
    /// The image's format.
    pub format: ImageFormat,
    /// `vmcontainer` (an artifact) or `containerdisk`.
    pub kind: &'static str,
    /// Bytes uploaded (all layers).
    pub size: u64,
}

/// Pushes the image at `image` to `reference` (see the module docs).
pub async fn push(
    home: &Home,
    image: &Path,
    reference: &str,
    opts: PushOptions<'_>,
) -> Result<PushReport, RegistryError> {
    let r = ImageRef::parse(reference)?;
    if r.digest().is_some() {
        return Err(RegistryError::InvalidReference {
            reference: reference.to_string(),
            reason: "push to a tag, not a digest (the digest is what the push produces)".into(),
        });
    }
    let (format, name, layers) = media::local_layers(image)?;
    if opts.containerdisk {
        let report = super::containerdisk::push(&r, image, format, &layers, opts).await?;
        let store = ImageStore::new(home);
        let (img, rf, d) = (
            image.to_path_buf(),
            report.reference.clone(),
            report.digest.clone(),
        );
        tokio::task::spawn_blocking(move || store.record_containerdisk(&img, &rf, &d, format))
            .await
            .map_err(|e| RegistryError::io("record", image, std::io::Error::other(e)))??;
        return Ok(report);
    }
    let session = Session::open(&r, opts.plain_http, RegistryOperation::Push).await?;
    let created = Utc::now();
    let uploaded = upload_all(&session, &layers, opts.progress).await?;
    let config = ImageConfig {
        format,
        name,
        architecture: media::go_arch().to_string(),
        os: "linux".to_string(),
        created: Some(created),
        extra: Default::default(),
    };
    let config_bytes = serde_json::to_vec(&config)
        .map_err(|e| RegistryError::io("serialize", image, std::io::Error::other(e)))?;
    let config_desc = OciDescriptor {
        media_type: media::ARTIFACT_TYPE.to_string(),
        size: config_bytes.len() as i64,
        digest: session.put_small_blob(config_bytes).await?,
        urls: None,
        annotations: None,
        artifact_type: None,
    };
    let size = uploaded.iter().map(|(_, _, s)| s).sum();
    let manifest = media::build_manifest(format, config_desc, uploaded, created);
    let bytes = serde_json::to_vec(&manifest)
        .map_err(|e| RegistryError::io("serialize", image, std::io::Error::other(e)))?;
    let digest = session
        .put_manifest(r.manifest_ref(), bytes, media::MANIFEST_MEDIA_TYPE)
        .await?;
    Ok(PushReport {
        reference: r.to_string(),
        digest,
        format,
        kind: "vmcontainer",
        size,
    })
}

/// Uploads every layer in parallel; returns each with its digest and size.
async fn upload_all(
    session: &Session,
    layers: &[LocalLayer],
    progress: Option<Progress<'_>>,
) -> Result<Vec<(LocalLayer, String, u64)>, RegistryError> {
    let mut bodies = Vec::new();
    for l in layers {
        bodies.push(Body::file(&l.path).map_err(|e| RegistryError::io("open", &l.path, e))?);
    }
    let total = bodies.iter().map(Body::len).sum();
    let counters: Vec<Arc<AtomicU64>> = bodies.iter().map(|_| Arc::default()).collect();
    let jobs = bodies
        .into_iter()
        .zip(counters.iter().cloned())
        .map(|(b, c)| session.upload(b, c));
    let results = with_progress(
        futures_util::future::join_all(jobs),
        &counters,
        total,
        progress,
    )
    .await;
    layers
        .iter()
        .zip(results)
        .map(|(l, r)| r.map(|(digest, size)| (l.clone(), digest, size)))
        .collect()
}
