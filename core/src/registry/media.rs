//! How a VM image is laid out as an OCI artifact.
//!
//! One image manifest (`application/vnd.oci.image.manifest.v1+json`) whose
//! `artifactType` and config `mediaType` are [`ARTIFACT_TYPE`]. The config
//! blob ([`ImageConfig`]) records the format. Each file is one layer,
//! stored as is (no tar, no compression), with a media type per format or
//! role and two annotations: [`ANNOTATION_TITLE`] (the file name, which
//! ORAS also uses) and [`ANNOTATION_ROLE`]:
//!
//! | format | layers (media type `application/vnd.vmcontainer.image.layer.v1.*`) | role |
//! |---|---|---|
//! | qcow2 | `.qcow2` | `disk` |
//! | raw | `.raw` | `disk` |
//! | vmdk | `.vmdk` | `disk` |
//! | iso | `.iso` | `cdrom` |
//! | kernel+initrd | `.kernel`, `.initrd`, `.cmdline` (optional) | `kernel`, `initrd`, `cmdline` |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::{Deserialize, Serialize};

use super::RegistryError;
use crate::image::{detect_image_format, resolve_kernel_image, ImageFormat};
use crate::sources::download::safe_file_name;

/// The artifact type of a vmcontainer VM image, and its config's media type.
pub const ARTIFACT_TYPE: &str = "application/vnd.vmcontainer.image.v1+json";
/// The OCI image manifest media type.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image index media type.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Docker's manifest list (an index by another name).
pub const DOCKER_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's image manifest.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// A qcow2 disk layer.
pub const LAYER_QCOW2: &str = "application/vnd.vmcontainer.image.layer.v1.qcow2";
/// A raw disk layer.
pub const LAYER_RAW: &str = "application/vnd.vmcontainer.image.layer.v1.raw";
/// A VMware disk layer.
pub const LAYER_VMDK: &str = "application/vnd.vmcontainer.image.layer.v1.vmdk";
/// An ISO 9660 layer.
pub const LAYER_ISO: &str = "application/vnd.vmcontainer.image.layer.v1.iso";
/// A LinuxKit kernel layer.
pub const LAYER_KERNEL: &str = "application/vnd.vmcontainer.image.layer.v1.kernel";
/// A LinuxKit initrd layer.
pub const LAYER_INITRD: &str = "application/vnd.vmcontainer.image.layer.v1.initrd";
/// A LinuxKit kernel command line layer (text).
pub const LAYER_CMDLINE: &str = "application/vnd.vmcontainer.image.layer.v1.cmdline";
/// The file name of a layer (the OCI annotation ORAS uses too).
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
/// The role of a layer: `disk`, `cdrom`, `kernel`, `initrd`, `cmdline`.
pub const ANNOTATION_ROLE: &str = "vnd.vmcontainer.image.role";
/// The image format, on the manifest.
pub const ANNOTATION_FORMAT: &str = "vnd.vmcontainer.image.format";
/// When the image was pushed (RFC 3339), on the manifest.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// The version of the image, when the publisher sets one.
pub const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";

/// Largest manifest accepted (the distribution spec's 4 MiB).
pub const MAX_MANIFEST: usize = 4 << 20;
/// Largest config blob accepted.
pub const MAX_CONFIG: u64 = 1 << 20;
/// Largest kernel command line layer accepted.
const MAX_CMDLINE: u64 = 64 << 10;
/// Largest layer accepted: 16 TiB, more than any disk image, far below an
/// overflow. Free space is checked against the real sizes before a pull.
pub const MAX_LAYER: u64 = 16 << 40;

/// What a layer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A disk image (qcow2, raw, vmdk).
    Disk,
    /// An ISO attached as a CD-ROM.
    Cdrom,
    /// A LinuxKit kernel.
    Kernel,
    /// A LinuxKit initrd.
    Initrd,
    /// A LinuxKit kernel command line.
    Cmdline,
}

impl Role {
    /// The annotation value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Disk => "disk",
            Role::Cdrom => "cdrom",
            Role::Kernel => "kernel",
            Role::Initrd => "initrd",
            Role::Cmdline => "cmdline",
        }
    }
}

/// The media type of a layer with `role` in an image of `format`.
pub fn layer_media_type(format: ImageFormat, role: Role) -> &'static str {
    match (format, role) {
        (ImageFormat::Qcow2, _) => LAYER_QCOW2,
        (ImageFormat::Raw, _) => LAYER_RAW,
        (ImageFormat::Vmdk, _) => LAYER_VMDK,
        (ImageFormat::Iso, _) => LAYER_ISO,
        (_, Role::Initrd) => LAYER_INITRD,
        (_, Role::Cmdline) => LAYER_CMDLINE,
        _ => LAYER_KERNEL,
    }
}

/// The format and role a layer media type stands for.
pub fn layer_kind(media_type: &str) -> Option<(ImageFormat, Role)> {
    Some(match media_type {
        LAYER_QCOW2 => (ImageFormat::Qcow2, Role::Disk),
        LAYER_RAW => (ImageFormat::Raw, Role::Disk),
        LAYER_VMDK => (ImageFormat::Vmdk, Role::Disk),
        LAYER_ISO => (ImageFormat::Iso, Role::Cdrom),
        LAYER_KERNEL => (ImageFormat::KernelInitrd, Role::Kernel),
        LAYER_INITRD => (ImageFormat::KernelInitrd, Role::Initrd),
        LAYER_CMDLINE => (ImageFormat::KernelInitrd, Role::Cmdline),
        _ => return None,
    })
}

/// The config blob ([`ARTIFACT_TYPE`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `qcow2`, `raw`, `vmdk`, `iso` or `kernel+initrd`.
    pub format: ImageFormat,
    /// The image's name (file stem, or LinuxKit's `NAME`).
    #[serde(default)]
    pub name: String,
    /// CPU architecture of the guest, in Go's names (`amd64`, `arm64`).
    #[serde(default)]
    pub architecture: String,
    /// Guest operating system (`linux`).
    #[serde(default)]
    pub os: String,
    /// When it was pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<DateTime<Utc>>,
    /// Fields written by newer versions, kept.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The host architecture in Go's names, as OCI platforms use.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        other => other,
    }
}

/// One local file to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalLayer {
    /// What it is.
    pub role: Role,
    /// The file.
    pub path: PathBuf,
    /// Its name in the artifact.
    pub title: String,
}

/// The format, name and files of the image at `path` (for a LinuxKit
/// build, any of `NAME`, `NAME-kernel`, `NAME-initrd.img`).
pub fn local_layers(path: &Path) -> Result<(ImageFormat, String, Vec<LocalLayer>), RegistryError> {
    let bad = |reason: &str| RegistryError::BadImage {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let format = detect_image_format(path);
    if format != ImageFormat::KernelInitrd && !path.exists() {
        return Err(bad("no such file"));
    }
    let title = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    match format {
        ImageFormat::KernelInitrd => {
            let k = resolve_kernel_image(path).ok_or_else(|| bad("the kernel+initrd pair is incomplete"))?;
            let kt = title(&k.kernel).unwrap_or_default();
            let name = kt.strip_suffix("-kernel").unwrap_or(&kt).to_string();
            let mut layers = vec![
                LocalLayer { role: Role::Kernel, title: kt.clone(), path: k.kernel },
                LocalLayer {
                    role: Role::Initrd,
                    title: title(&k.initrd).unwrap_or_default(),
                    path: k.initrd,
                },
            ];
            if let Some(c) = k.cmdline {
                layers.push(LocalLayer { role: Role::Cmdline, title: title(&c).unwrap_or_default(), path: c });
            }
            Ok((format, name, layers))
        }
        ImageFormat::Unknown => Err(bad(
            "unknown image format (expected .iso, .qcow2, .vmdk, .raw/.img, or a LinuxKit NAME-kernel/NAME-initrd.img pair)",
        )),
        _ if !path.is_file() => Err(bad("not a regular file")),
        _ => {
            let t = title(path).ok_or_else(|| bad("no file name"))?;
            let name = Path::new(&t)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| t.clone());
            let role = if format == ImageFormat::Iso { Role::Cdrom } else { Role::Disk };
            Ok((format, name, vec![LocalLayer { role, path: path.to_path_buf(), title: t }]))
        }
    }
}

/// A layer of a pulled manifest, checked, with the name its file gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLayer {
    /// What it is.
    pub role: Role,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// The local file name (a plain name; see [`check_manifest`]).
    pub file_name: String,
}

/// Whether `manifest` is a vmcontainer VM image, and if so the format its
/// config must state; otherwise what it is instead.
pub fn check_artifact_type(
    reference: &str,
    manifest: &OciImageManifest,
) -> Result<(), RegistryError> {
    let config_type = manifest.config.media_type.as_str();
    match manifest.artifact_type.as_deref() {
        Some(ARTIFACT_TYPE) => return Ok(()),
        None if config_type == ARTIFACT_TYPE => return Ok(()),
        _ => {}
    }
    let found = match (manifest.artifact_type.as_deref(), config_type) {
        (Some(a), _) => format!("its artifact type is {:?}", super::clip(a)),
        (None, "application/vnd.oci.image.config.v1+json" | "application/vnd.docker.container.image.v1+json") => {
            "it is a container image (a KubeVirt containerDisk is pushed with --containerdisk and used by KubeVirt, not pulled)".to_string()
        }
        (None, c) => format!("its config media type is {:?}", super::clip(c)),
    };
    Err(RegistryError::NotAVmImage {
        reference: reference.to_string(),
        found,
        expected: ARTIFACT_TYPE,
    })
}

fn descriptor_size(
    origin: &str,
    what: &str,
    d: &OciDescriptor,
    max: u64,
) -> Result<u64, RegistryError> {
    u64::try_from(d.size)
        .ok()
        .filter(|s| *s <= max)
        .ok_or_else(|| {
            RegistryError::bad(
                origin,
                format!("{what} size {} is out of range (0 to {max} bytes)", d.size),
            )
        })
}

/// Checks a pulled manifest against its config and returns its layers with
/// local file names: every layer a known media type, each role once, the
/// roles the format needs, sha256 digests, sane sizes, and names that are
/// plain file names (a title that tries to leave the directory is an
/// error).
pub fn check_manifest(
    origin: &str,
    manifest: &OciImageManifest,
    config: &ImageConfig,
) -> Result<Vec<RemoteLayer>, RegistryError> {
    let bad = |reason: String| RegistryError::bad(origin, reason);
    if manifest.layers.is_empty() || manifest.layers.len() > 3 {
        return Err(bad(format!(
            "{} layers; a VM image has 1 to 3",
            manifest.layers.len()
        )));
    }
    let default_name = safe_stem(&config.name).unwrap_or("image");
    let mut layers = Vec::new();
    for (i, l) in manifest.layers.iter().enumerate() {
        let (format, role) = layer_kind(&l.media_type).ok_or_else(|| {
            bad(format!(
                "layer {i} has unknown media type {:?}",
                super::clip(&l.media_type)
            ))
        })?;
        if format != config.format {
            return Err(bad(format!(
                "layer {i} is {} but the config says the image is {}",
                format, config.format
            )));
        }
        let ann = l.annotations.as_ref();
        if let Some(r) = ann.and_then(|a| a.get(ANNOTATION_ROLE)) {
            if r != role.as_str() {
                return Err(bad(format!(
                    "layer {i} is annotated role {:?} but its media type is a {} layer",
                    super::clip(r),
                    role.as_str()
                )));
            }
        }
        if layers.iter().any(|x: &RemoteLayer| x.role == role) {
            return Err(bad(format!("more than one {} layer", role.as_str())));
        }
        super::sha256_hex(origin, &l.digest)?;
        let max = if role == Role::Cmdline {
            MAX_CMDLINE
        } else {
            MAX_LAYER
        };
        let size = descriptor_size(origin, &format!("layer {i}"), l, max)?;
        let title = match ann.and_then(|a| a.get(ANNOTATION_TITLE)) {
            Some(t) => Some(
                safe_file_name(t, origin)
                    .map_err(|e| bad(format!("layer {i} title: {e}")))?
                    .to_string(),
            ),
            None => None,
        };
        layers.push(RemoteLayer {
            role,
            digest: l.digest.clone(),
            size,
            file_name: title.unwrap_or_default(),
        });
    }
    name_files(origin, config.format, default_name, &mut layers)?;
    Ok(layers)
}

/// Gives every layer the local name its format needs to be found again:
/// a disk keeps its title when the extension matches the format (else
/// gains the right one); a LinuxKit build becomes `NAME-kernel`,
/// `NAME-initrd.img`, `NAME-cmdline`.
fn name_files(
    origin: &str,
    format: ImageFormat,
    default_name: &str,
    layers: &mut [RemoteLayer],
) -> Result<(), RegistryError> {
    let bad = |reason: String| RegistryError::bad(origin, reason);
    if format == ImageFormat::KernelInitrd {
        for need in [Role::Kernel, Role::Initrd] {
            if !layers.iter().any(|l| l.role == need) {
                return Err(bad(format!(
                    "a kernel+initrd image without a {} layer",
                    need.as_str()
                )));
            }
        }
        let kernel_title = layers
            .iter()
            .find(|l| l.role == Role::Kernel)
            .map(|l| l.file_name.clone())
            .unwrap_or_default();
        let stem = kernel_title
            .strip_suffix("-kernel")
            .and_then(safe_stem)
            .unwrap_or(default_name)
            .to_string();
        for l in layers.iter_mut() {
            l.file_name = match l.role {
                Role::Kernel => format!("{stem}-kernel"),
                Role::Initrd => format!("{stem}-initrd.img"),
                _ => format!("{stem}-cmdline"),
            };
        }
        return Ok(());
    }
    let [l] = layers else {
        return Err(bad(format!(
            "a {format} image has one layer, not {}",
            layers.len()
        )));
    };
    let ext = match format {
        ImageFormat::Raw => "raw",
        other => other.as_str(),
    };
    if l.file_name.is_empty() {
        l.file_name = format!("{default_name}.{ext}");
    } else if crate::image::format_from_extension(Path::new(&l.file_name)) != format {
        l.file_name = format!("{}.{ext}", l.file_name);
    }
    safe_file_name(&l.file_name, origin).map_err(|e| bad(e.to_string()))?;
    Ok(())
}

/// `name` when it is a usable file stem: 1-100 of `[A-Za-z0-9._-]`, not
/// starting with a dot.
fn safe_stem(name: &str) -> Option<&str> {
    (!name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
    .then_some(name)
}

/// The manifest for `layers` (already uploaded) and the config blob.
pub fn build_manifest(
    format: ImageFormat,
    config: OciDescriptor,
    layers: Vec<(LocalLayer, String, u64)>,
    created: DateTime<Utc>,
) -> OciImageManifest {
    let layers = layers
        .into_iter()
        .map(|(l, digest, size)| OciDescriptor {
            media_type: layer_media_type(format, l.role).to_string(),
            digest,
            size: size as i64,
            urls: None,
            annotations: Some(BTreeMap::from([
                (ANNOTATION_TITLE.to_string(), l.title),
                (ANNOTATION_ROLE.to_string(), l.role.as_str().to_string()),
            ])),
            artifact_type: None,
        })
        .collect();
    OciImageManifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.to_string()),
        artifact_type: Some(ARTIFACT_TYPE.to_string()),
        config,
        layers,
        subject: None,
        annotations: Some(BTreeMap::from([
            (ANNOTATION_FORMAT.to_string(), format.as_str().to_string()),
            (
                ANNOTATION_CREATED.to_string(),
                created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        ])),
    }
}

/// Checks a config descriptor and parses the config blob it names.
pub fn parse_config(origin: &str, bytes: &[u8]) -> Result<ImageConfig, RegistryError> {
    let c: ImageConfig = serde_json::from_slice(bytes)
        .map_err(|e| RegistryError::bad(origin, format!("invalid image config: {e}")))?;
    if c.format == ImageFormat::Unknown {
        return Err(RegistryError::bad(
            origin,
            "the image config names no bootable format",
        ));
    }
    Ok(c)
}

/// Checks the config descriptor's size.
pub fn config_size(origin: &str, d: &OciDescriptor) -> Result<u64, RegistryError> {
    super::sha256_hex(origin, &d.digest)?;
    descriptor_size(origin, "config", d, MAX_CONFIG)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(media: &str, title: Option<&str>, size: i64) -> OciDescriptor {
        OciDescriptor {
            media_type: media.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            size,
            urls: None,
            annotations: title
                .map(|t| BTreeMap::from([(ANNOTATION_TITLE.to_string(), t.to_string())])),
            artifact_type: None,
        }
    }

    fn manifest(layers: Vec<OciDescriptor>) -> OciImageManifest {
        OciImageManifest {
            media_type: Some(MANIFEST_MEDIA_TYPE.into()),
            artifact_type: Some(ARTIFACT_TYPE.into()),
            config: OciDescriptor {
                media_type: ARTIFACT_TYPE.into(),
                ..layer(ARTIFACT_TYPE, None, 10)
            },
            layers,
            ..Default::default()
        }
    }

    fn config(format: ImageFormat) -> ImageConfig {
        ImageConfig {
            format,
            name: "guest".into(),
            architecture: "amd64".into(),
            os: "linux".into(),
            created: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn media_types_round_trip() {
        for f in [
            ImageFormat::Qcow2,
            ImageFormat::Raw,
            ImageFormat::Vmdk,
            ImageFormat::Iso,
        ] {
            let role = if f == ImageFormat::Iso {
                Role::Cdrom
            } else {
                Role::Disk
            };
            assert_eq!(layer_kind(layer_media_type(f, role)), Some((f, role)));
        }
        for r in [Role::Kernel, Role::Initrd, Role::Cmdline] {
            assert_eq!(
                layer_kind(layer_media_type(ImageFormat::KernelInitrd, r)),
                Some((ImageFormat::KernelInitrd, r))
            );
        }
        assert_eq!(layer_kind("application/vnd.oci.image.layer.v1.tar"), None);
    }

    #[test]
    fn pulled_files_get_names_the_format_needs() {
        let m = manifest(vec![layer(LAYER_QCOW2, Some("vmtest.qcow2"), 5)]);
        let l = check_manifest("r", &m, &config(ImageFormat::Qcow2)).unwrap();
        assert_eq!(l[0].file_name, "vmtest.qcow2");
        // A raw disk named without .raw/.img gains the extension.
        let m = manifest(vec![layer(LAYER_RAW, Some("disk"), 5)]);
        assert_eq!(
            check_manifest("r", &m, &config(ImageFormat::Raw)).unwrap()[0].file_name,
            "disk.raw"
        );
        let m = manifest(vec![layer(LAYER_ISO, None, 5)]);
        assert_eq!(
            check_manifest("r", &m, &config(ImageFormat::Iso)).unwrap()[0].file_name,
            "guest.iso"
        );
        let m = manifest(vec![
            layer(LAYER_INITRD, Some("whatever"), 5),
            layer(LAYER_KERNEL, Some("lk-kernel"), 5),
            layer(LAYER_CMDLINE, Some("c"), 5),
        ]);
        let l = check_manifest("r", &m, &config(ImageFormat::KernelInitrd)).unwrap();
        let names: Vec<_> = l.iter().map(|l| l.file_name.as_str()).collect();
        assert_eq!(names, ["lk-initrd.img", "lk-kernel", "lk-cmdline"]);
    }

    #[test]
    fn hostile_manifests_are_refused() {
        let c = config(ImageFormat::Qcow2);
        let cases: Vec<(Vec<OciDescriptor>, &str)> = vec![
            (
                vec![layer(LAYER_QCOW2, Some("../../etc/passwd"), 5)],
                "title",
            ),
            (vec![layer(LAYER_QCOW2, Some(".hidden.qcow2"), 5)], "title"),
            (vec![layer(LAYER_QCOW2, Some("a/b.qcow2"), 5)], "title"),
            (vec![layer(LAYER_QCOW2, None, -1)], "out of range"),
            (vec![layer(LAYER_QCOW2, None, i64::MAX)], "out of range"),
            (
                vec![layer("application/x-evil", None, 5)],
                "unknown media type",
            ),
            (vec![layer(LAYER_RAW, None, 5)], "config says"),
            (
                vec![layer(LAYER_QCOW2, None, 5), layer(LAYER_QCOW2, None, 5)],
                "more than one",
            ),
            (vec![], "0 layers"),
            (vec![layer(LAYER_QCOW2, None, 5); 4], "4 layers"),
        ];
        for (layers, says) in cases {
            let e = check_manifest("localhost:5000/x:y", &manifest(layers), &c)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(says) && e.contains("localhost:5000/x:y"),
                "{says}: {e}"
            );
        }
        let mut l = layer(LAYER_QCOW2, None, 5);
        l.digest = "sha512:abc".into();
        assert!(check_manifest("r", &manifest(vec![l]), &c)
            .unwrap_err()
            .to_string()
            .contains("sha256"));
        let mut ann = layer(LAYER_QCOW2, None, 5);
        ann.annotations = Some(BTreeMap::from([(
            ANNOTATION_ROLE.to_string(),
            "kernel".to_string(),
        )]));
        assert!(check_manifest("r", &manifest(vec![ann]), &c)
            .unwrap_err()
            .to_string()
            .contains("role"));
        // A triplet needs both kernel and initrd.
        let m = manifest(vec![layer(LAYER_KERNEL, None, 5)]);
        let e = check_manifest("r", &m, &config(ImageFormat::KernelInitrd)).unwrap_err();
        assert!(e.to_string().contains("initrd"), "{e}");
        let m = manifest(vec![layer(LAYER_CMDLINE, None, 1 << 20)]);
        assert!(check_manifest("r", &m, &config(ImageFormat::KernelInitrd)).is_err());
    }

    #[test]
    fn other_artifacts_are_named() {
        let mut m = manifest(vec![]);
        check_artifact_type("r", &m).unwrap();
        m.artifact_type = None;
        check_artifact_type("r", &m).unwrap();
        m.config.media_type = "application/vnd.oci.image.config.v1+json".into();
        let e = check_artifact_type("r", &m).unwrap_err();
        assert!(e.to_string().contains("container image"), "{e}");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
        m.artifact_type = Some("application/vnd.cncf.helm.config.v1+json".into());
        assert!(check_artifact_type("r", &m)
            .unwrap_err()
            .to_string()
            .contains("helm"));
    }

    #[test]
    fn local_layers_per_format() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("lk-kernel"), b"k").unwrap();
        std::fs::write(d.path().join("lk-initrd.img"), b"i").unwrap();
        std::fs::write(d.path().join("lk-cmdline"), b"c").unwrap();
        let (f, name, l) = local_layers(&d.path().join("lk")).unwrap();
        assert_eq!(
            (f, name.as_str(), l.len()),
            (ImageFormat::KernelInitrd, "lk", 3)
        );
        assert_eq!(l[2].title, "lk-cmdline");
        std::fs::write(d.path().join("x.qcow2"), b"QFI\xfb....").unwrap();
        let (f, name, l) = local_layers(&d.path().join("x.qcow2")).unwrap();
        assert_eq!(
            (f, name.as_str(), l[0].role),
            (ImageFormat::Qcow2, "x", Role::Disk)
        );
        let e = local_layers(&d.path().join("nope.qcow2")).unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
        std::fs::write(d.path().join("x.txt"), b"hello").unwrap();
        assert!(local_layers(&d.path().join("x.txt"))
            .unwrap_err()
            .to_string()
            .contains("unknown image format"));
    }
}
