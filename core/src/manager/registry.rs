//! Registry operations of the manager: push, pull, `run REF`, and the
//! KubeVirt export of a container or image. The work is in
//! [`crate::registry`] and [`crate::kubevirt`]; this gathers what they
//! need from the home and the state file.

use std::path::{Path, PathBuf};

use super::LinuxKitManager;
use crate::error::{Error, Result};
use crate::image::{detect_image_format, resolve_kernel_image, ImageFormat};
use crate::kubevirt::{self, ExportSpec, KernelBoot};
use crate::registry::containerdisk;
use crate::registry::reference::is_registry_reference;
use crate::registry::{
    self, ImageRef, ImageStore, PullOptions, PulledImage, PushOptions, PushReport,
};

/// Memory and vCPUs of an image exported without a container (`run`'s
/// defaults).
const DEFAULT_MEMORY_MB: u32 = 1024;
const DEFAULT_CPUS: u32 = 1;

impl LinuxKitManager {
    /// Pulls the VM image `reference` from its registry into the home's
    /// image store (`images/oci/`); see [`registry::pull()`].
    pub async fn pull(&self, reference: &str, opts: PullOptions<'_>) -> Result<PulledImage> {
        Ok(registry::pull(self.home(), reference, opts).await?)
    }

    /// Pushes the image at `image` to `reference`, as a vmcontainer
    /// artifact or (with `opts.containerdisk`) a KubeVirt containerDisk;
    /// see [`registry::push()`].
    pub async fn push(
        &self,
        image: &Path,
        reference: &str,
        opts: PushOptions<'_>,
    ) -> Result<PushReport> {
        Ok(registry::push(self.home(), image, reference, opts).await?)
    }

    /// Every image pulled into the home's store.
    pub fn pulled_images(&self) -> Result<Vec<registry::StoredImage>> {
        Ok(ImageStore::new(self.home()).list()?)
    }

    /// What `run IMAGE` boots: a path as is; a registry reference (see
    /// [`is_registry_reference`]) from the store, pulled first when it is
    /// not there. [`Self::run`] does this itself with default options;
    /// call it first for progress or `plain_http`.
    pub async fn resolve_image(&self, image: &Path, opts: PullOptions<'_>) -> Result<PathBuf> {
        Ok(registry::pull::resolve_image(self.home(), image, opts).await?)
    }

    /// A KubeVirt `VirtualMachine` (and a `Service` for the ports) for the
    /// container `target` (ID, prefix or name) or, when no container has
    /// that name, the image `target` (a path, or a pulled reference), as
    /// multi-document YAML; see [`crate::kubevirt`].
    ///
    /// `image_ref` is the containerDisk to boot; without it, the one last
    /// pushed with `push --containerdisk` from the same (unchanged) image
    /// file is used, and if there is none the error says how to make one.
    pub fn export_kubevirt(&self, target: &str, image_ref: Option<&str>) -> Result<String> {
        let (mut spec, image) = match self.get(target) {
            Ok(c) => {
                let image = self.image_file(Path::new(&c.image), target)?;
                let spec = ExportSpec {
                    name: kubevirt::dns_label(&c.name, &format!("vm-{}", c.id)),
                    source: format!("container {} ({})", c.id, c.image),
                    memory_mb: if c.memory == 0 {
                        DEFAULT_MEMORY_MB
                    } else {
                        c.memory
                    },
                    cpus: if c.cpus == 0 { DEFAULT_CPUS } else { c.cpus },
                    format: c.format.unwrap_or_else(|| detect_image_format(&image)),
                    image_ref: String::new(),
                    kernel: None,
                    ports: c.ports.clone(),
                    volumes: c.volumes.clone(),
                    ssh_key: c.ssh_key.clone(),
                };
                (spec, image)
            }
            Err(Error::NotFound(_)) => {
                let image = self.image_file(Path::new(target), target)?;
                (image_spec(&image), image)
            }
            Err(e) => return Err(e),
        };
        spec.image_ref = match image_ref {
            Some(r) => ImageRef::parse(r).map_err(Error::from)?.to_string(),
            None => match ImageStore::new(self.home()).containerdisk_for(&image)? {
                Some(d) => d.reference,
                None => {
                    return Err(Error::invalid(
                        "export target",
                        target,
                        format!(
                            "no containerDisk was pushed from {}: push one with `vmcontainer push --containerdisk {} REGISTRY/REPO:TAG` (the next export finds it) or name one with --image-ref",
                            image.display(),
                            image.display()
                        ),
                    ))
                }
            },
        };
        if spec.format == ImageFormat::Vmdk {
            // push --containerdisk converts a vmdk to qcow2.
            spec.format = ImageFormat::Qcow2;
        }
        if spec.format == ImageFormat::KernelInitrd {
            spec.kernel = Some(kernel_boot(&image)?);
        }
        if spec.format == ImageFormat::Unknown {
            return Err(Error::UnknownFormat(image));
        }
        kubevirt::render(&spec)
            .map_err(|e| Error::io("render YAML for", image, std::io::Error::other(e)))
    }

    /// The local file behind `image`: a path that exists, or a pulled
    /// reference's file.
    fn image_file(&self, image: &Path, target: &str) -> Result<PathBuf> {
        if image.exists() || resolve_kernel_image(image).is_some() {
            return Ok(crate::home::absolute(image));
        }
        if let Some(s) = image.to_str().filter(|s| is_registry_reference(s)) {
            let r = ImageRef::parse(s)?;
            if let Some(img) = ImageStore::new(self.home()).get(&r)? {
                return Ok(img.path);
            }
        }
        Err(Error::NotFound(format!(
            "{target} (no container, image file or pulled image has this name)"
        )))
    }
}

/// The export of an image that no container runs: `run`'s defaults.
fn image_spec(image: &Path) -> ExportSpec {
    let file = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = file
        .strip_suffix("-kernel")
        .or_else(|| file.rsplit_once('.').map(|(s, _)| s))
        .unwrap_or(&file);
    ExportSpec {
        name: kubevirt::dns_label(stem, "vm"),
        source: format!("image {}", image.display()),
        memory_mb: DEFAULT_MEMORY_MB,
        cpus: DEFAULT_CPUS,
        format: detect_image_format(image),
        image_ref: String::new(),
        kernel: None,
        ports: Default::default(),
        volumes: Default::default(),
        ssh_key: None,
    }
}

/// Where `push --containerdisk` put the kernel and initrd of `image`, and
/// its command line.
fn kernel_boot(image: &Path) -> Result<KernelBoot> {
    let k = resolve_kernel_image(image).ok_or_else(|| Error::ImageNotFound(image.to_path_buf()))?;
    let (_, _, layers) = registry::media::local_layers(&k.kernel)?;
    let (dir, files) = containerdisk::layout(ImageFormat::KernelInitrd, &layers);
    let path_of = |role| {
        layers
            .iter()
            .zip(&files)
            .find(|(l, _)| l.role == role)
            .map(|(_, (name, _))| format!("/{dir}/{name}"))
            .unwrap_or_default()
    };
    Ok(KernelBoot {
        kernel_path: path_of(registry::media::Role::Kernel),
        initrd_path: path_of(registry::media::Role::Initrd),
        cmdline: k
            .read_cmdline()
            .map_err(|e| Error::io("read", k.cmdline.clone().unwrap_or_default(), e))?,
    })
}
