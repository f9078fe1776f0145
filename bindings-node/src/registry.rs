//! OCI registries and the KubeVirt export on `Manager`: `push`, `pull`,
//! `pulledImages`, `exportKubevirt` (cargo feature `registry`).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use vmcontainer::registry::{self as core, StoredImage};

use crate::manager::Manager;
use crate::progress::{ProgressCallback, ProgressSink};
use crate::promise::{blocking, spawn};
use crate::types::{path, ImageFormat};

/// Options of `push`.
#[napi(object, object_to_js = false)]
pub struct PushOptions {
    /// Push a KubeVirt containerDisk (an OCI image with the disk under
    /// `/disk/`; a vmdk is converted to qcow2) instead of a vmcontainer VM
    /// image; `exportKubevirt` then finds it. Default false.
    pub containerdisk: Option<bool>,
    /// Allow plain HTTP to a registry that is not on loopback (loopback
    /// registries may always use it). Default false.
    pub plain_http: Option<bool>,
    /// Called on the JS thread as the upload advances, with the bytes sent
    /// so far and the total. Intermediate values may be skipped; the last
    /// one is always delivered, and none arrives after the Promise
    /// settles. A throw is reported as a process warning.
    #[napi(ts_type = "(sent: number, total: number | null) => void")]
    pub on_progress: Option<ProgressCallback>,
}

/// Options of `pull`.
#[napi(object, object_to_js = false)]
pub struct PullOptions {
    /// Allow plain HTTP to a registry that is not on loopback. Default
    /// false.
    pub plain_http: Option<bool>,
    /// Called on the JS thread as the download advances, as for `push`.
    #[napi(ts_type = "(downloaded: number, total: number | null) => void")]
    pub on_progress: Option<ProgressCallback>,
}

/// Options of `exportKubevirt`.
#[napi(object, object_to_js = false)]
pub struct ExportOptions {
    /// The containerDisk the VM boots (`REGISTRY/REPOSITORY:TAG`); default:
    /// the one last pushed with `containerdisk: true` from the same image
    /// file.
    pub image_ref: Option<String>,
}

/// What `push` wrote.
#[napi(object, object_from_js = false)]
pub struct PushReport {
    /// The reference pushed to, in canonical form.
    pub reference: String,
    /// `sha256:<hex>` of the manifest; `REPOSITORY@DIGEST` names exactly
    /// what was pushed.
    pub digest: String,
    /// The image's format.
    pub format: ImageFormat,
    /// `vmcontainer` (a VM image artifact) or `containerdisk`.
    #[napi(ts_type = "'vmcontainer' | 'containerdisk'")]
    pub kind: String,
    /// Bytes uploaded (all layers).
    pub size: f64,
}

impl From<core::PushReport> for PushReport {
    fn from(r: core::PushReport) -> Self {
        PushReport {
            reference: r.reference,
            digest: r.digest,
            format: r.format.into(),
            kind: r.kind.to_string(),
            size: r.size as f64,
        }
    }
}

/// An image in the home's store of pulled images.
#[napi(object, object_from_js = false)]
pub struct PulledImage {
    /// The reference it was pulled by, in canonical form.
    pub reference: String,
    /// `sha256:<hex>` of its manifest.
    pub digest: String,
    /// Its format.
    pub format: ImageFormat,
    /// What `run` boots: the disk or ISO, or `NAME-kernel`.
    pub path: String,
    /// Total size in bytes.
    pub size: f64,
    /// When it was last pulled.
    pub pulled_at: DateTime<Utc>,
    /// Bytes this pull transferred (0 when everything was present, and for
    /// the entries of `pulledImages`).
    pub downloaded: f64,
    /// Whether the content was in the store already (always for the
    /// entries of `pulledImages`).
    pub already_present: bool,
}

impl PulledImage {
    fn new(image: StoredImage, downloaded: u64, already_present: bool) -> Self {
        PulledImage {
            reference: image.reference,
            digest: image.digest,
            format: image.format.into(),
            path: path(image.path),
            size: image.size as f64,
            pulled_at: image.pulled,
            downloaded: downloaded as f64,
            already_present,
        }
    }
}

fn pulled(p: core::PulledImage) -> PulledImage {
    PulledImage::new(p.image, p.downloaded, p.already_present)
}

fn stored(all: Vec<StoredImage>) -> Vec<PulledImage> {
    all.into_iter()
        .map(|i| PulledImage::new(i, 0, true))
        .collect()
}

#[napi]
impl Manager {
    /// Pushes the image file `image` (`.iso`, `.qcow2`, `.vmdk`,
    /// `.raw`/`.img`, or a LinuxKit `NAME-kernel`) to `reference`
    /// (`REGISTRY/REPOSITORY[:TAG]`) as an OCI artifact, or as a KubeVirt
    /// containerDisk. Credentials come from `REGISTRY_AUTH` or Docker's
    /// config file. The manifest is written last: a failed push never
    /// leaves the tag pointing at missing blobs.
    #[napi]
    pub fn push<'env>(
        &self,
        env: &'env Env,
        image: String,
        reference: String,
        options: Option<PushOptions>,
    ) -> napi::Result<PromiseRaw<'env, PushReport>> {
        let (containerdisk, plain_http, on_progress) = options
            .map(|o| {
                (
                    o.containerdisk.unwrap_or(false),
                    o.plain_http.unwrap_or(false),
                    o.on_progress,
                )
            })
            .unwrap_or_default();
        let m = self.core().clone();
        let sink = ProgressSink::new(on_progress);
        let fut = async move {
            let mut report = sink.reporter();
            let opts = core::PushOptions {
                containerdisk,
                plain_http,
                progress: Some(&mut report),
            };
            let r = m.push(&PathBuf::from(image), &reference, opts).await;
            drop(report);
            sink.flush().await;
            r
        };
        spawn(env, fut, PushReport::from)
    }

    /// Pulls `reference` (`REGISTRY/REPOSITORY[:TAG]` or `...@sha256:...`)
    /// into the home's image store, verifying every digest: what is there
    /// already is not downloaded again, an interrupted pull resumes, and a
    /// digest mismatch installs nothing (`ERR_VMC_CHECKSUM`). `run` takes
    /// the reference (or the result's `path`).
    #[napi]
    pub fn pull<'env>(
        &self,
        env: &'env Env,
        reference: String,
        options: Option<PullOptions>,
    ) -> napi::Result<PromiseRaw<'env, PulledImage>> {
        let (plain_http, on_progress) = options
            .map(|o| (o.plain_http.unwrap_or(false), o.on_progress))
            .unwrap_or_default();
        let m = self.core().clone();
        let sink = ProgressSink::new(on_progress);
        let fut = async move {
            let mut report = sink.reporter();
            let opts = core::PullOptions {
                plain_http,
                progress: Some(&mut report),
            };
            let r = m.pull(&reference, opts).await;
            drop(report);
            sink.flush().await;
            r
        };
        spawn(env, fut, pulled)
    }

    /// Every image pulled into the home's store.
    #[napi]
    pub fn pulled_images<'env>(
        &self,
        env: &'env Env,
    ) -> napi::Result<PromiseRaw<'env, Vec<PulledImage>>> {
        let m = self.core().clone();
        spawn(env, blocking(move || m.pulled_images()), stored)
    }

    /// A KubeVirt `VirtualMachine` (and a `Service` for the port mappings)
    /// as multi-document YAML, for container `target` (ID, prefix or name)
    /// or, when no container has that name, the image `target` (a file or
    /// a pulled reference).
    #[napi]
    pub fn export_kubevirt<'env>(
        &self,
        env: &'env Env,
        target: String,
        options: Option<ExportOptions>,
    ) -> napi::Result<PromiseRaw<'env, String>> {
        let image_ref = options.and_then(|o| o.image_ref);
        let m = self.core().clone();
        spawn(
            env,
            blocking(move || m.export_kubevirt(&target, image_ref.as_deref())),
            |yaml| yaml,
        )
    }
}
