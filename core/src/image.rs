//! Image formats: by extension, by content (magic bytes win when the
//! extension is missing or lies), and LinuxKit's kernel+initrd output.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::regular_file::{is_regular, OpenError};

/// A bootable image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImageFormat {
    /// ISO 9660 (attached read-only as a CD-ROM).
    #[serde(rename = "iso")]
    Iso,
    /// QEMU copy-on-write v2.
    #[serde(rename = "qcow2")]
    Qcow2,
    /// VMware disk.
    #[serde(rename = "vmdk")]
    Vmdk,
    /// Raw disk (`.raw`, `.img`).
    #[serde(rename = "raw")]
    Raw,
    /// LinuxKit's `NAME-kernel` + `NAME-initrd.img` (+ `NAME-cmdline`).
    #[serde(rename = "kernel+initrd")]
    KernelInitrd,
    /// Anything else.
    #[serde(rename = "unknown")]
    Unknown,
}

impl ImageFormat {
    /// The lower-case name used in JSON and by the bindings.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Iso => "iso",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Vmdk => "vmdk",
            ImageFormat::Raw => "raw",
            ImageFormat::KernelInitrd => "kernel+initrd",
            ImageFormat::Unknown => "unknown",
        }
    }

    /// Whether this is a disk image that gets a copy-on-write overlay.
    pub fn is_disk(self) -> bool {
        matches!(
            self,
            ImageFormat::Qcow2 | ImageFormat::Vmdk | ImageFormat::Raw
        )
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The three files of a LinuxKit kernel+initrd build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelImage {
    /// `NAME-kernel`.
    pub kernel: PathBuf,
    /// `NAME-initrd.img`.
    pub initrd: PathBuf,
    /// `NAME-cmdline`, when present.
    pub cmdline: Option<PathBuf>,
}

impl KernelImage {
    /// The kernel command line from the cmdline file (trimmed), or empty.
    pub fn read_cmdline(&self) -> std::io::Result<String> {
        match &self.cmdline {
            Some(p) => Ok(crate::regular_file::read_to_string(p, MAX_CMDLINE)
                .map_err(crate::regular_file::OpenError::into_io)?
                .trim()
                .to_string()),
            None => Ok(String::new()),
        }
    }
}

/// A kernel command line longer than this is not one (Linux allows a few
/// kB); the limit keeps a wrong file from being read whole.
const MAX_CMDLINE: u64 = 64 * 1024;

const KERNEL_SUFFIX: &str = "-kernel";
const INITRD_SUFFIX: &str = "-initrd.img";
const CMDLINE_SUFFIX: &str = "-cmdline";

/// Finds the kernel+initrd triplet `path` names: `NAME-kernel`,
/// `NAME-initrd.img`, or the bare prefix `NAME`. Both the kernel and the
/// initrd must exist.
pub fn resolve_kernel_image(path: &Path) -> Option<KernelImage> {
    let s = path.to_str()?;
    let prefix = s
        .strip_suffix(KERNEL_SUFFIX)
        .or_else(|| s.strip_suffix(INITRD_SUFFIX))
        .unwrap_or(s);
    let kernel = PathBuf::from(format!("{prefix}{KERNEL_SUFFIX}"));
    let initrd = PathBuf::from(format!("{prefix}{INITRD_SUFFIX}"));
    if !is_regular(&kernel) || !is_regular(&initrd) {
        return None;
    }
    let cmdline = PathBuf::from(format!("{prefix}{CMDLINE_SUFFIX}"));
    Some(KernelImage {
        kernel,
        initrd,
        cmdline: is_regular(&cmdline).then_some(cmdline),
    })
}

/// Format implied by the file name alone (case-insensitive extension).
pub fn format_from_extension(path: &Path) -> ImageFormat {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("iso") => ImageFormat::Iso,
        Some("qcow2") => ImageFormat::Qcow2,
        Some("vmdk") => ImageFormat::Vmdk,
        Some("raw") | Some("img") => ImageFormat::Raw,
        _ => ImageFormat::Unknown,
    }
}

/// Format implied by the file's content, if it carries a known signature.
/// Only regular files are read (a FIFO would block the read forever).
pub fn format_from_content(path: &Path) -> Option<ImageFormat> {
    let mut f = crate::regular_file::open(path).ok()?;
    let mut head = [0u8; 32];
    let n = read_up_to(&mut f, &mut head);
    if n >= 4 && &head[..4] == b"QFI\xfb" {
        return Some(ImageFormat::Qcow2);
    }
    if n >= 4 && &head[..4] == b"KDMV" {
        return Some(ImageFormat::Vmdk);
    }
    if n >= 21 && &head[..21] == b"# Disk DescriptorFile" {
        return Some(ImageFormat::Vmdk);
    }
    let mut cd = [0u8; 5];
    if f.seek(SeekFrom::Start(0x8001)).is_ok()
        && read_up_to(&mut f, &mut cd) == 5
        && &cd == b"CD001"
    {
        return Some(ImageFormat::Iso);
    }
    None
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    n
}

/// Detects the format of `path`: a kernel+initrd triplet first, then magic
/// bytes, then the extension. Missing files fall back to the extension.
pub fn detect_image_format(path: &Path) -> ImageFormat {
    if resolve_kernel_image(path).is_some() {
        return ImageFormat::KernelInitrd;
    }
    if let Some(f) = format_from_content(path) {
        return f;
    }
    format_from_extension(path)
}

/// Checks that `path` names an image `run` can boot and returns its
/// format. What is refused, each with a message naming the path: nothing
/// there; a directory, device or FIFO (which would block the format
/// sniffing forever); an empty file; a `.iso` without an ISO 9660 volume
/// descriptor (QEMU would boot it to nothing, forever); an unknown format.
pub fn check_image(path: &Path) -> Result<ImageFormat> {
    if resolve_kernel_image(path).is_some() {
        return Ok(ImageFormat::KernelInitrd);
    }
    let shown = || path.display().to_string();
    let md = crate::regular_file::check(path).map_err(|e| match e {
        OpenError::Missing(_) => Error::ImageNotFound(path.to_path_buf()),
        other => Error::invalid("image", shown(), other.describe()),
    })?;
    if md.len() == 0 {
        return Err(Error::invalid("image", shown(), "the file is empty"));
    }
    let sniffed = format_from_content(path);
    let format = sniffed.unwrap_or_else(|| format_from_extension(path));
    if format == ImageFormat::Iso && sniffed.is_none() {
        return Err(Error::invalid(
            "image",
            shown(),
            "it is named .iso but has no ISO 9660 volume descriptor (\"CD001\" at offset 0x8001): it is not a bootable ISO",
        ));
    }
    if format == ImageFormat::Unknown {
        return Err(Error::UnknownFormat(path.to_path_buf()));
    }
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn extensions_are_case_insensitive() {
        for (name, fmt) in [
            ("a.iso", ImageFormat::Iso),
            ("a.ISO", ImageFormat::Iso),
            ("a.qcow2", ImageFormat::Qcow2),
            ("a.QCoW2", ImageFormat::Qcow2),
            ("a.vmdk", ImageFormat::Vmdk),
            ("a.raw", ImageFormat::Raw),
            ("a.IMG", ImageFormat::Raw),
            ("a.tar", ImageFormat::Unknown),
            ("noext", ImageFormat::Unknown),
        ] {
            assert_eq!(detect_image_format(Path::new(name)), fmt, "{name}");
        }
    }

    #[test]
    fn magic_wins_over_missing_or_lying_extension() {
        let d = tempfile::tempdir().unwrap();
        let q = write(d.path(), "disk", b"QFI\xfb\0\0\0\x03rest");
        assert_eq!(detect_image_format(&q), ImageFormat::Qcow2);
        let v = write(d.path(), "disk.iso", b"KDMV\x01\0\0\0");
        assert_eq!(detect_image_format(&v), ImageFormat::Vmdk);
        let mut iso = vec![0u8; 0x8006];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        let i = write(d.path(), "cd.qcow2", &iso);
        assert_eq!(detect_image_format(&i), ImageFormat::Iso);
        let r = write(d.path(), "plain.img", &[0u8; 64]);
        assert_eq!(detect_image_format(&r), ImageFormat::Raw);
        let u = write(d.path(), "plain", &[0u8; 64]);
        assert_eq!(detect_image_format(&u), ImageFormat::Unknown);
    }

    #[test]
    fn kernel_initrd_triplet_by_any_of_its_names() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "lk-kernel", b"k");
        write(d.path(), "lk-initrd.img", b"i");
        write(d.path(), "lk-cmdline", b"console=ttyS0\n");
        for name in ["lk-kernel", "lk-initrd.img", "lk"] {
            let p = d.path().join(name);
            assert_eq!(detect_image_format(&p), ImageFormat::KernelInitrd, "{name}");
            let k = resolve_kernel_image(&p).unwrap();
            assert_eq!(k.read_cmdline().unwrap(), "console=ttyS0");
        }
        // Without the initrd it is not a triplet.
        write(d.path(), "solo-kernel", b"k");
        assert_eq!(
            detect_image_format(&d.path().join("solo-kernel")),
            ImageFormat::Unknown
        );
    }

    #[test]
    fn unbootable_paths_are_refused_by_what_they_are() {
        let d = tempfile::tempdir().unwrap();
        let msg = |p: &Path| check_image(p).unwrap_err().to_string();
        assert!(msg(&d.path().join("none.iso")).contains("image not found"));
        assert!(
            msg(d.path()).contains("is a directory"),
            "{}",
            msg(d.path())
        );
        let zero = msg(Path::new("/dev/zero"));
        assert!(zero.contains("character device"), "{zero}");
        let fifo = d.path().join("pipe.iso");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let t = std::time::Instant::now();
        assert!(msg(&fifo).contains("is a FIFO"), "{}", msg(&fifo));
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(detect_image_format(&fifo), ImageFormat::Iso);
        let empty = write(d.path(), "empty.qcow2", b"");
        assert!(msg(&empty).contains("empty"), "{}", msg(&empty));
        let garbage = write(d.path(), "garbage.iso", &[7u8; 40000]);
        assert!(
            msg(&garbage).contains("volume descriptor"),
            "{}",
            msg(&garbage)
        );
        let short = write(d.path(), "short.iso", b"x");
        assert!(msg(&short).contains("volume descriptor"));
        let text = write(d.path(), "notes.txt", b"hello");
        assert!(msg(&text).contains("unknown image format"));
        let mut iso = vec![0u8; 0x8006];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        let good = write(d.path(), "good.iso", &iso);
        assert_eq!(check_image(&good).unwrap(), ImageFormat::Iso);
        let raw = write(d.path(), "disk.img", &[0u8; 512]);
        assert_eq!(check_image(&raw).unwrap(), ImageFormat::Raw);
    }

    #[test]
    fn format_strings_match_json() {
        assert_eq!(
            serde_json::to_string(&ImageFormat::KernelInitrd).unwrap(),
            "\"kernel+initrd\""
        );
        assert_eq!(ImageFormat::Qcow2.to_string(), "qcow2");
    }
}
