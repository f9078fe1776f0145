//! KubeVirt containerDisks: an OCI *image* (not an artifact) that a
//! cluster's container runtime pulls like any other, whose one layer is an
//! uncompressed tar holding the disk under `/disk/`, owned by 107:107 (the
//! `qemu` user of KubeVirt's launcher) and readable only by it, as
//! KubeVirt documents (`ADD --chown=107:107 disk.qcow2 /disk/`). The
//! image config is a regular one for the host platform (`linux/amd64`
//! here) with the layer's diff ID.
//!
//! - qcow2, raw, iso: the file as is (`/disk/NAME.qcow2`, ...).
//! - vmdk: converted to qcow2 with `qemu-img` first (KubeVirt reads qcow2
//!   and raw).
//! - a LinuxKit kernel+initrd: `/boot/NAME-kernel`, `/boot/NAME-initrd.img`
//!   (and `/boot/NAME-cmdline`), for KubeVirt's `kernelBoot` (see
//!   [`crate::kubevirt`]).
//!
//! The tar is never written to disk: headers, the file and padding stream
//! straight into the upload, and the entries have fixed times so the same
//! disk always gives the same layer digest.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use chrono::Utc;
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::RegistryOperation;
use serde_json::json;

use super::media::{self, LocalLayer, Role};
use super::push::{PushOptions, PushReport};
use super::reference::ImageRef;
use super::session::Session;
use super::upload::{with_progress, Body};
use super::RegistryError;
use crate::image::ImageFormat;

/// Owner of the files, KubeVirt's `qemu` user and group.
pub const DISK_OWNER: u64 = 107;
/// Directory of the disk in the image.
pub const DISK_DIR: &str = "disk";
/// Directory of a kernel and initrd in the image.
pub const BOOT_DIR: &str = "boot";
/// The image config media type.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The layer media type (an uncompressed tar).
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

const BLOCK: u64 = 512;

/// Where files land in a containerDisk of `format`: `(directory, [(name,
/// local file)])`. A vmdk must have been converted first.
pub fn layout(
    format: ImageFormat,
    layers: &[LocalLayer],
) -> (&'static str, Vec<(String, PathBuf)>) {
    let dir = if format == ImageFormat::KernelInitrd {
        BOOT_DIR
    } else {
        DISK_DIR
    };
    let files = layers
        .iter()
        .map(|l| (tar_name(&l.title, format), l.path.clone()))
        .collect();
    (dir, files)
}

/// A name that fits a tar header (at most 100 bytes) and keeps the
/// extension KubeVirt looks at.
fn tar_name(title: &str, format: ImageFormat) -> String {
    if title.len() <= 90 {
        return title.to_string();
    }
    match format {
        ImageFormat::KernelInitrd => title[title.len() - 60..]
            .trim_start_matches('.')
            .to_string(),
        other => format!("disk.{}", other.as_str()),
    }
}

/// The tar stream: a directory entry, then each file with its header and
/// padding, then the end-of-archive blocks.
pub(crate) fn tar_body(dir: &str, files: &[(String, PathBuf)]) -> Result<Body, RegistryError> {
    let mut body = Body::default();
    body.push_bytes(header(
        &format!("{dir}/"),
        0,
        tar::EntryType::Directory,
        0o555,
    )?);
    for (name, path) in files {
        let len = std::fs::metadata(path)
            .map_err(|e| RegistryError::io("read", path, e))?
            .len();
        body.push_bytes(header(
            &format!("{dir}/{name}"),
            len,
            tar::EntryType::Regular,
            0o440,
        )?);
        body.push_file(path)
            .map_err(|e| RegistryError::io("read", path, e))?;
        let pad = (BLOCK - len % BLOCK) % BLOCK;
        if pad > 0 {
            body.push_bytes(vec![0; pad as usize]);
        }
    }
    body.push_bytes(vec![0; 2 * BLOCK as usize]);
    Ok(body)
}

fn header(
    path: &str,
    size: u64,
    kind: tar::EntryType,
    mode: u32,
) -> Result<Vec<u8>, RegistryError> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path)
        .map_err(|e| RegistryError::io("tar header for", path, e))?;
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(DISK_OWNER);
    h.set_gid(DISK_OWNER);
    h.set_mtime(0);
    h.set_cksum();
    Ok(h.as_bytes().to_vec())
}

/// Pushes `image` (already split into `layers`) as a containerDisk.
pub(crate) async fn push(
    r: &ImageRef,
    image: &Path,
    format: ImageFormat,
    layers: &[LocalLayer],
    opts: PushOptions<'_>,
) -> Result<PushReport, RegistryError> {
    // A vmdk becomes a qcow2 in a private temporary directory first.
    let converted = if format == ImageFormat::Vmdk {
        Some(to_qcow2(image).await?)
    } else {
        None
    };
    let (format_in_image, layers) = match &converted {
        Some((_, qcow2)) => (
            ImageFormat::Qcow2,
            vec![LocalLayer {
                role: Role::Disk,
                title: with_extension(&layers[0].title, "qcow2"),
                path: qcow2.clone(),
            }],
        ),
        None => (format, layers.to_vec()),
    };
    let (dir, files) = layout(format_in_image, &layers);
    let body = tar_body(dir, &files)?;
    let session = Session::open(r, opts.plain_http, RegistryOperation::Push).await?;
    let total = body.len();
    let sent = Arc::new(AtomicU64::new(0));
    let (layer_digest, size) = with_progress(
        session.upload(body, sent.clone()),
        std::slice::from_ref(&sent),
        total,
        opts.progress,
    )
    .await?;
    let created = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let config = json!({
        "architecture": media::go_arch(),
        "os": "linux",
        "created": created,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": created, "created_by": "vmcontainer push --containerdisk"}],
    });
    let config_bytes = serde_json::to_vec(&config)
        .map_err(|e| RegistryError::io("serialize", image, std::io::Error::other(e)))?;
    let config_desc = OciDescriptor {
        media_type: CONFIG_MEDIA_TYPE.to_string(),
        size: config_bytes.len() as i64,
        digest: session.put_small_blob(config_bytes).await?,
        urls: None,
        annotations: None,
        artifact_type: None,
    };
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(media::MANIFEST_MEDIA_TYPE.to_string()),
        config: config_desc,
        layers: vec![OciDescriptor {
            media_type: LAYER_MEDIA_TYPE.to_string(),
            digest: layer_digest,
            size: size as i64,
            urls: None,
            annotations: None,
            artifact_type: None,
        }],
        subject: None,
        artifact_type: None,
        annotations: Some(
            [
                (
                    media::ANNOTATION_FORMAT.to_string(),
                    format_in_image.as_str().to_string(),
                ),
                (media::ANNOTATION_CREATED.to_string(), created),
            ]
            .into(),
        ),
    };
    let bytes = serde_json::to_vec(&manifest)
        .map_err(|e| RegistryError::io("serialize", image, std::io::Error::other(e)))?;
    let digest = session
        .put_manifest(r.manifest_ref(), bytes, media::MANIFEST_MEDIA_TYPE)
        .await?;
    drop(converted);
    Ok(PushReport {
        reference: r.to_string(),
        digest,
        format: format_in_image,
        kind: "containerdisk",
        size,
    })
}

fn with_extension(title: &str, ext: &str) -> String {
    let stem = Path::new(title)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "disk".into());
    format!("{stem}.{ext}")
}

/// Converts a vmdk to qcow2 in a private temporary directory, which lives
/// as long as the returned guard.
async fn to_qcow2(vmdk: &Path) -> Result<(tempfile::TempDir, PathBuf), RegistryError> {
    let tmp = tempfile::Builder::new()
        .prefix("vmc-containerdisk")
        .tempdir()
        .map_err(|e| RegistryError::io("create temporary directory for", vmdk, e))?;
    let out = tmp.path().join("disk.qcow2");
    let qemu_img = std::env::var_os("VMCONTAINER_QEMU_IMG").unwrap_or_else(|| "qemu-img".into());
    let res = tokio::process::Command::new(qemu_img)
        .args(["convert", "-q", "-f", "vmdk", "-O", "qcow2"])
        .arg(vmdk)
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| RegistryError::Tool {
            tool: "qemu-img",
            path: vmdk.to_path_buf(),
            message: format!("cannot run it: {e} (install qemu-utils)"),
        })?;
    if !res.status.success() {
        return Err(RegistryError::Tool {
            tool: "qemu-img",
            path: vmdk.to_path_buf(),
            message: String::from_utf8_lossy(&res.stderr).trim().to_string(),
        });
    }
    Ok((tmp, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tar_layer_lists_the_disk_owned_by_qemu() {
        let d = tempfile::tempdir().unwrap();
        let disk = d.path().join("g.qcow2");
        std::fs::write(&disk, vec![7u8; 1000]).unwrap();
        let body = tar_body(DISK_DIR, &[("g.qcow2".into(), disk.clone())]).unwrap();
        // Stream the parts into a buffer the way an upload reads them.
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let reader = {
            let body = body.clone();
            tokio::task::spawn_blocking(move || {
                super::super::upload::read_parts_for_test(&body, &tx)
            })
        };
        let mut tar_bytes = Vec::new();
        while let Some(c) = rx.recv().await {
            tar_bytes.extend_from_slice(&c.unwrap());
        }
        reader.await.unwrap().unwrap();
        assert_eq!(tar_bytes.len() as u64, body.len());
        assert_eq!(tar_bytes.len() % 512, 0);
        let mut a = tar::Archive::new(&tar_bytes[..]);
        let entries: Vec<(String, u64, u64, u32, u64)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mode().unwrap(),
                    h.size().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("disk/".into(), 107, 107, 0o555, 0),
                ("disk/g.qcow2".into(), 107, 107, 0o440, 1000)
            ]
        );
    }

    #[test]
    fn long_names_fit_a_tar_header() {
        let long = format!("{}.qcow2", "x".repeat(200));
        assert_eq!(tar_name(&long, ImageFormat::Qcow2), "disk.qcow2");
        assert_eq!(tar_name("g.iso", ImageFormat::Iso), "g.iso");
        let k = format!("{}-kernel", "y".repeat(200));
        assert!(tar_name(&k, ImageFormat::KernelInitrd).ends_with("-kernel"));
        assert!(tar_name(&k, ImageFormat::KernelInitrd).len() <= 100);
    }
}
