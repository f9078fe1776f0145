//! An OCI registry as a source of the dev image: `images.registry.image`
//! names a vmcontainer VM image (pushed with `vmcontainer push`) whose
//! disk layer is the qcow2. A tag may also be an image index with one
//! entry per architecture; the host's is used.
//!
//! The release's version is the manifest's `org.opencontainers.image.version`
//! annotation when the publisher set one, else the manifest digest, so a
//! moved tag is an update. The download is the layer blob, through the
//! same verified, resumable, atomic downloader as the other sources;
//! credentials come from the environment or Docker's config (see
//! [`crate::registry::auth`]).

use std::path::Path;

use futures_util::future::BoxFuture;
use oci_client::RegistryOperation;

use super::download::{fetch, safe_file_name, Downloaded, Progress};
use super::{ImageSource, Release, SourceError};
use crate::image::ImageFormat;
use crate::registry::media::{self, ANNOTATION_VERSION};
use crate::registry::session::Session;
use crate::registry::{ImageRef, RegistryError};

/// Downloads the dev image from an OCI registry.
#[derive(Debug, Clone)]
pub struct RegistrySource {
    reference: String,
    image: String,
    plain_http: bool,
}

impl RegistrySource {
    /// A source for the file `image` (the dev image's name) from the VM
    /// image `reference`; `plain_http` allows HTTP to a registry that is
    /// not on loopback.
    pub fn new(reference: &str, image: &str, plain_http: bool) -> Self {
        RegistrySource {
            reference: reference.trim().to_string(),
            image: image.to_string(),
            plain_http,
        }
    }

    fn parsed(&self) -> Result<ImageRef, SourceError> {
        ImageRef::parse(&self.reference).map_err(|e| SourceError::Unavailable {
            source_name: "registry",
            reason: format!("images.registry.image: {e}"),
        })
    }
}

impl From<RegistryError> for SourceError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Download(inner) => inner,
            other => SourceError::Registry(Box::new(other)),
        }
    }
}

impl ImageSource for RegistrySource {
    fn name(&self) -> &'static str {
        "registry"
    }

    fn check_available(&self) -> Result<(), SourceError> {
        if self.reference.is_empty() {
            return Err(SourceError::Unavailable {
                source_name: "registry",
                reason: "images.registry.image is not set in config.yaml".into(),
            });
        }
        self.parsed().map(|_| ())
    }

    fn latest(&self) -> BoxFuture<'_, Result<Release, SourceError>> {
        Box::pin(async move {
            let r = self.parsed()?;
            let origin = r.to_string();
            let session = Session::open(&r, self.plain_http, RegistryOperation::Pull).await?;
            let (manifest, digest) = crate::registry::pull::resolve_manifest(&session).await?;
            media::check_artifact_type(&origin, &manifest)?;
            let config = crate::registry::pull::fetch_config(&session, &origin, &manifest).await?;
            if config.format != ImageFormat::Qcow2 {
                return Err(RegistryError::NotAVmImage {
                    reference: origin,
                    found: format!("a {} image; the dev image is a qcow2 disk", config.format),
                    expected: media::ARTIFACT_TYPE,
                }
                .into());
            }
            let layers = media::check_manifest(&origin, &manifest, &config)?;
            let layer = &layers[0];
            let version = manifest
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_VERSION))
                .filter(|v| !v.trim().is_empty())
                .cloned()
                .unwrap_or(digest);
            let (url, _) = session.blob_request(&layer.digest);
            Ok(Release {
                source: "registry",
                version,
                file_name: safe_file_name(&self.image, &origin)?.to_string(),
                url,
                headers: Vec::new(),
                sha256: crate::registry::sha256_hex(&origin, &layer.digest)?.to_string(),
                size: Some(layer.size),
            })
        })
    }

    fn download<'a>(
        &'a self,
        release: &'a Release,
        dir: &'a Path,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<Downloaded, SourceError>> {
        Box::pin(async move {
            // A fresh authorization: the token is never kept in a release.
            let r = self.parsed()?;
            let session = Session::open(&r, self.plain_http, RegistryOperation::Pull).await?;
            let (_, headers) = session.blob_request(&format!("sha256:{}", release.sha256));
            let mut req = release.request(None);
            req.headers = &headers;
            fetch(session.http(), &req, dir, progress).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_needs_a_valid_reference() {
        assert!(!RegistrySource::new("", "x.qcow2", false).available());
        let e = RegistrySource::new("localhost:5000/../x", "x.qcow2", false)
            .check_available()
            .unwrap_err();
        assert!(e.to_string().contains("path-traversing"), "{e}");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        assert!(RegistrySource::new("host-uk/core-devops:latest", "x.qcow2", false).available());
    }

    #[tokio::test]
    async fn a_registry_that_is_down_fails_fast_and_says_so() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let s = RegistrySource::new(&format!("127.0.0.1:{port}/dev/image:1"), "x.qcow2", false);
        let t = std::time::Instant::now();
        let e = s.latest().await.unwrap_err();
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("127.0.0.1:{port}")) && msg.contains("refused"),
            "{msg}"
        );
        assert_eq!(e.kind(), crate::ErrorKind::Download);
    }
}
