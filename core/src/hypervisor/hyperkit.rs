//! Hyperkit's command line (macOS only; built and unit-tested everywhere).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{find_in_path, Accel, AccelChoice, BootImage, CommandLine, Hypervisor, VmSpec};
use crate::error::{Error, Result};
use crate::image::ImageFormat;

/// The Hyperkit hypervisor.
#[derive(Debug, Clone)]
pub struct HyperkitHypervisor {
    binary: Option<PathBuf>,
}

impl HyperkitHypervisor {
    /// Looks up `hyperkit` on `PATH`.
    pub fn new() -> Self {
        HyperkitHypervisor {
            binary: find_in_path("hyperkit"),
        }
    }

    /// A Hyperkit at an explicit path (tests, unusual installs).
    pub fn with_binary(binary: impl Into<PathBuf>) -> Self {
        HyperkitHypervisor {
            binary: Some(binary.into()),
        }
    }
}

impl Default for HyperkitHypervisor {
    fn default() -> Self {
        Self::new()
    }
}

/// Hyperkit's `-s`/`-l` arguments are comma-separated with no escape
/// syntax, so a comma in a path cannot be made safe: refuse it.
fn plain(what: &'static str, p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .ok_or_else(|| Error::invalid(what, p.to_string_lossy(), "path is not valid UTF-8"))?;
    if s.contains(',') || s.contains('"') {
        return Err(Error::invalid(
            what,
            s,
            "hyperkit cannot take a path containing ',' or '\"'",
        ));
    }
    Ok(s.to_string())
}

impl Hypervisor for HyperkitHypervisor {
    fn name(&self) -> &'static str {
        "hyperkit"
    }

    fn available(&self) -> bool {
        cfg!(target_os = "macos") && self.binary.as_ref().is_some_and(|b| b.is_file())
    }

    fn build_command(&self, spec: &VmSpec) -> Result<CommandLine> {
        let program = self
            .binary
            .clone()
            .ok_or_else(|| Error::HypervisorUnavailable("hyperkit not found on PATH".into()))?;
        let log = plain("log path", &spec.log_path)?;
        let tty = plain("console socket", &spec.console_socket())?;
        let mut a: Vec<String> = vec![
            "-A".into(),
            "-u".into(),
            "-m".into(),
            format!("{}M", spec.memory_mb),
            "-c".into(),
            spec.cpus.to_string(),
            "-s".into(),
            "0:0,hostbridge".into(),
            "-s".into(),
            "31,lpc".into(),
            "-l".into(),
            format!("com1,autopty={tty},log={log}"),
            "-F".into(),
            plain("pid file", &spec.pid_file())?,
        ];
        match &spec.image {
            BootImage::Iso(p) => {
                a.extend([
                    "-s".into(),
                    format!("2:0,ahci-cd,{}", plain("image path", p)?),
                ]);
            }
            BootImage::Disk { path, .. } => {
                a.extend([
                    "-s".into(),
                    format!("2:0,virtio-blk,{}", plain("disk path", path)?),
                ]);
            }
            BootImage::Kernel(_) => {}
        }
        // vpnkit-style forwarding is configured outside hyperkit; the NIC
        // itself is plain virtio-net.
        a.extend(["-s".into(), "3:0,virtio-net".into()]);
        for (i, s) in spec.shares.iter().enumerate() {
            let host = plain("volume host path", &s.host)?;
            a.extend([
                "-s".into(),
                format!("{}:0,virtio-9p,{}={host}", 4 + i, s.tag),
            ]);
        }
        if let BootImage::Kernel(k) = &spec.image {
            let cmdline = k.read_cmdline().map_err(|e| {
                Error::io(
                    "read kernel command line",
                    k.cmdline.clone().unwrap_or_default(),
                    e,
                )
            })?;
            a.extend([
                "-f".into(),
                format!(
                    "kexec,{},{},{cmdline}",
                    plain("kernel path", &k.kernel)?,
                    plain("initrd path", &k.initrd)?
                ),
            ]);
        }
        Ok(CommandLine {
            program,
            args: a.into_iter().map(OsString::from).collect(),
        })
    }

    /// Hyperkit has no backing-file overlays for raw disks: the image is
    /// used directly (documented limitation of this backend).
    fn prepare_disk(&self, image: &Path, _format: ImageFormat, _overlay: &Path) -> Result<PathBuf> {
        Ok(image.to_path_buf())
    }

    fn accel(&self) -> Result<AccelChoice> {
        Ok(AccelChoice {
            accel: Accel::Hvf,
            reason: "hyperkit always uses Hypervisor.framework".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypervisor::{Accel, PortForward, Share};
    use crate::image::KernelImage;

    fn spec(image: BootImage) -> VmSpec {
        VmSpec {
            id: "0a1b2c3d".into(),
            image,
            memory_mb: 1024,
            cpus: 2,
            ports: vec![PortForward {
                bind: "127.0.0.1".parse().unwrap(),
                host: 2222,
                guest: 22,
            }],
            shares: vec![Share {
                host: "/src".into(),
                tag: "app".into(),
            }],
            log_path: "/h/logs/0a1b2c3d.log".into(),
            runtime_dir: "/h/containers/0a1b2c3d".into(),
            accel: Accel::Hvf,
            daemonize: true,
        }
    }

    #[test]
    fn iso_and_disk_commands() {
        let hk = HyperkitHypervisor::with_binary("/usr/local/bin/hyperkit");
        let iso = hk
            .build_command(&spec(BootImage::Iso("/i/a.iso".into())))
            .unwrap();
        let a = iso.args_lossy();
        assert_eq!(iso.program, PathBuf::from("/usr/local/bin/hyperkit"));
        assert_eq!(&a[..6], ["-A", "-u", "-m", "1024M", "-c", "2"]);
        assert!(a.contains(&"2:0,ahci-cd,/i/a.iso".to_string()));
        assert!(a.contains(&"3:0,virtio-net".to_string()));
        assert!(a.contains(&"4:0,virtio-9p,app=/src".to_string()));
        assert!(a.contains(
            &"com1,autopty=/h/containers/0a1b2c3d/console.sock,log=/h/logs/0a1b2c3d.log"
                .to_string()
        ));
        let disk = hk
            .build_command(&spec(BootImage::Disk {
                path: "/d/x.raw".into(),
                format: "raw",
            }))
            .unwrap()
            .args_lossy();
        assert!(disk.contains(&"2:0,virtio-blk,/d/x.raw".to_string()));
    }

    #[test]
    fn kernel_boot_uses_kexec_and_commas_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let cmd = d.path().join("x-cmdline");
        std::fs::write(&cmd, "console=ttyS0\n").unwrap();
        let hk = HyperkitHypervisor::with_binary("/usr/local/bin/hyperkit");
        let a = hk
            .build_command(&spec(BootImage::Kernel(KernelImage {
                kernel: "/k/x-kernel".into(),
                initrd: "/k/x-initrd.img".into(),
                cmdline: Some(cmd),
            })))
            .unwrap()
            .args_lossy();
        assert_eq!(
            a.last().unwrap(),
            "kexec,/k/x-kernel,/k/x-initrd.img,console=ttyS0"
        );
        let err = hk
            .build_command(&spec(BootImage::Iso("/i/a,b.iso".into())))
            .unwrap_err();
        assert!(err.to_string().contains("/i/a,b.iso"));
    }

    #[test]
    fn unavailable_off_macos() {
        if !cfg!(target_os = "macos") {
            assert!(!HyperkitHypervisor::with_binary("/bin/sh").available());
        }
    }
}
