//! Choosing a CPU accelerator that really runs guests.
//!
//! go-container enabled KVM whenever `/dev/kvm` existed. On nested hosts
//! without vmx/svm the device exists but guests hang forever at 100% system
//! time. We check the CPU flags and then boot a 64 KiB firmware that does
//! nothing but write to QEMU's debug-exit port: if it does not exit within a
//! deadline, the accelerator is broken and we use TCG.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A QEMU accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Accel {
    /// Linux KVM.
    Kvm,
    /// macOS Hypervisor.framework.
    Hvf,
    /// Software emulation.
    Tcg,
}

impl Accel {
    /// Lower-case name as QEMU spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Hvf => "hvf",
            Accel::Tcg => "tcg",
        }
    }

    /// Parses `kvm`, `hvf` or `tcg` (any case).
    pub fn parse(s: &str) -> Option<Accel> {
        match s.to_ascii_lowercase().as_str() {
            "kvm" => Some(Accel::Kvm),
            "hvf" => Some(Accel::Hvf),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }
}

/// The chosen accelerator and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelChoice {
    /// The accelerator.
    pub accel: Accel,
    /// Human-readable reason, for `inspect` and logs.
    pub reason: String,
}

const PROBE_DEADLINE: Duration = Duration::from_secs(3);

/// Picks the accelerator for `qemu`: `$VMCONTAINER_ACCEL` if set, else the
/// best one that passes a real boot probe. The probe result is cached for
/// the life of the process.
pub fn detect_accel(qemu: &Path) -> Result<AccelChoice> {
    if let Some(v) = std::env::var_os("VMCONTAINER_ACCEL").filter(|v| !v.is_empty()) {
        let s = v.to_string_lossy();
        let accel = Accel::parse(&s).ok_or_else(|| {
            Error::invalid(
                "VMCONTAINER_ACCEL",
                s.to_string(),
                "expected kvm, hvf or tcg",
            )
        })?;
        return Ok(AccelChoice {
            accel,
            reason: "forced by VMCONTAINER_ACCEL".into(),
        });
    }
    static CACHE: OnceLock<AccelChoice> = OnceLock::new();
    Ok(CACHE.get_or_init(|| auto_detect(qemu)).clone())
}

fn auto_detect(qemu: &Path) -> AccelChoice {
    let tcg = |reason: String| AccelChoice {
        accel: Accel::Tcg,
        reason,
    };
    if cfg!(target_os = "macos") {
        return match probe_accel(qemu, Accel::Hvf, PROBE_DEADLINE) {
            Ok(()) => AccelChoice {
                accel: Accel::Hvf,
                reason: "hvf probe booted".into(),
            },
            Err(e) => tcg(format!("hvf unusable ({e}); using tcg")),
        };
    }
    if cfg!(target_os = "linux") {
        let dev = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm");
        if let Err(e) = dev {
            return tcg(format!("/dev/kvm unusable ({e}); using tcg"));
        }
        let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let has_virt = flags
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
        if !has_virt {
            return tcg(
                "/dev/kvm exists but the CPU has no vmx/svm flag (nested host); using tcg".into(),
            );
        }
        return match probe_accel(qemu, Accel::Kvm, PROBE_DEADLINE) {
            Ok(()) => AccelChoice {
                accel: Accel::Kvm,
                reason: "kvm probe booted".into(),
            },
            Err(e) => tcg(format!("kvm probe failed ({e}); using tcg")),
        };
    }
    tcg("no hardware accelerator on this OS".into())
}

/// The probe firmware: 64 KiB (QEMU requires a multiple of 64 KiB) of `hlt`
/// with, at the reset vector, `mov al, 1; out 0xf4, al; hlt`. QEMU's
/// `isa-debug-exit` device then exits with status (1 << 1) | 1 = 3.
fn probe_firmware() -> Vec<u8> {
    let mut fw = vec![0xf4u8; 64 * 1024];
    let reset = fw.len() - 16;
    fw[reset..reset + 5].copy_from_slice(&[0xb0, 0x01, 0xe6, 0xf4, 0xf4]);
    fw
}

/// Boots the probe firmware under `accel` and succeeds only if guest code
/// ran and QEMU exited within `deadline`. Never hangs: a stuck QEMU is
/// killed at the deadline.
pub fn probe_accel(qemu: &Path, accel: Accel, deadline: Duration) -> Result<()> {
    let dir = tempfile::tempdir()
        .map_err(|e| Error::io("create probe directory", std::env::temp_dir(), e))?;
    let fw = dir.path().join("probe.bin");
    std::fs::write(&fw, probe_firmware()).map_err(|e| Error::io("write probe firmware", &fw, e))?;
    let mut child = std::process::Command::new(qemu)
        .args([
            "-accel",
            accel.as_str(),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ])
        .args([
            "-machine",
            "pc",
            "-m",
            "16",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x01",
        ])
        .arg("-bios")
        .arg(&fw)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Error::io("start accelerator probe", qemu, e))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.code() == Some(3) => return Ok(()),
            Ok(Some(status)) => {
                return Err(Error::invalid(
                    "accelerator",
                    accel.as_str(),
                    format!("probe VM exited with {status}"),
                ))
            }
            Ok(None) if start.elapsed() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Timeout {
                    what: format!("{} probe VM", accel.as_str()),
                    secs: deadline.as_secs_f64(),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(Error::io("wait for accelerator probe", qemu, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_has_reset_vector_code() {
        let fw = probe_firmware();
        assert_eq!(fw.len(), 65536);
        assert_eq!(&fw[0xfff0..0xfff5], &[0xb0, 0x01, 0xe6, 0xf4, 0xf4]);
    }

    #[test]
    fn parse_names() {
        assert_eq!(Accel::parse("KVM"), Some(Accel::Kvm));
        assert_eq!(Accel::parse("tcg"), Some(Accel::Tcg));
        assert_eq!(Accel::parse("xen"), None);
    }
}
