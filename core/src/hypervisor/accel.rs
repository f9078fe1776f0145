//! Choosing a CPU accelerator that really runs guests.
//!
//! go-container enabled KVM whenever `/dev/kvm` existed. On nested hosts
//! without vmx/svm the device exists but guests crawl or hang at 100% system
//! time. We check the CPU flags, then boot a probe under the accelerator:
//! the real firmware (SeaBIOS) loading a one-sector boot disk whose code only
//! writes to QEMU's debug-exit port. Measured on such a host, that takes
//! 3.4 s under its KVM and 0.08 s under TCG; a healthy KVM takes a fraction
//! of a second. An accelerator that cannot finish the probe well inside a
//! deadline scaled from TCG's own time is not worth using.
//!
//! The flags decide on their own when vmx/svm is missing: on a kvm-pvm host
//! (seen 2026-12) the boot sector does run under KVM, in 0.1 s, while a
//! Debian kernel prints nothing there for a minute. The probe only guards
//! hosts that have the flags.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
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

/// Upper bound for the TCG reference probe.
const TCG_PROBE_DEADLINE: Duration = Duration::from_secs(10);

/// Deadline for a hardware accelerator's probe, given TCG's time: generous
/// enough for a loaded host, far below what a crawling nested KVM needs.
fn hw_deadline(tcg: Duration) -> Duration {
    Duration::from_secs(2) + tcg * 2
}

/// Picks the accelerator for `qemu`: `$VMCONTAINER_ACCEL` if set, else the
/// best one that passes a real boot probe. The probe result is cached for
/// the life of the process and, on disk, for the rest of the host's boot
/// (see [`super::accel_cache`]). This may take seconds the first time: call
/// it from a blocking thread in async code.
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
    static CACHE: Mutex<BTreeMap<PathBuf, AccelChoice>> = Mutex::new(BTreeMap::new());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = cache.get(qemu) {
        return Ok(c.clone());
    }
    let choice = match (
        super::accel_cache::ProbeKey::for_binary(qemu),
        crate::home::ensure_private_dir(&crate::home::user_runtime_dir()),
    ) {
        (Some(key), Ok(())) => {
            super::accel_cache::cached(&crate::home::user_runtime_dir(), &key, || auto_detect(qemu))
        }
        _ => auto_detect(qemu),
    };
    cache.insert(qemu.to_path_buf(), choice.clone());
    Ok(choice)
}

fn auto_detect(qemu: &Path) -> AccelChoice {
    let tcg = |reason: String| AccelChoice {
        accel: Accel::Tcg,
        reason,
    };
    let deadline = || {
        hw_deadline(probe_accel(qemu, Accel::Tcg, TCG_PROBE_DEADLINE).unwrap_or(TCG_PROBE_DEADLINE))
    };
    if cfg!(target_os = "macos") {
        return match probe_accel(qemu, Accel::Hvf, deadline()) {
            Ok(_) => AccelChoice {
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
        return match probe_accel(qemu, Accel::Kvm, deadline()) {
            Ok(_) => AccelChoice {
                accel: Accel::Kvm,
                reason: "kvm probe booted".into(),
            },
            Err(e) => tcg(format!("kvm probe failed ({e}); using tcg")),
        };
    }
    tcg("no hardware accelerator on this OS".into())
}

/// The probe disk: one boot sector whose code is `mov al, 1; out 0xf4, al;
/// hlt; jmp $-1`. QEMU's `isa-debug-exit` device then exits with status
/// (1 << 1) | 1 = 3.
fn probe_disk() -> Vec<u8> {
    let mut mbr = vec![0u8; 512];
    mbr[..7].copy_from_slice(&[0xb0, 0x01, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    mbr
}

/// Boots the probe disk under `accel` and returns how long it took. Fails if
/// QEMU did not exit through the debug port within `deadline`. Never hangs:
/// a stuck QEMU is killed at the deadline.
pub fn probe_accel(qemu: &Path, accel: Accel, deadline: Duration) -> Result<Duration> {
    let dir = tempfile::tempdir()
        .map_err(|e| Error::io("create probe directory", std::env::temp_dir(), e))?;
    let disk = dir.path().join("probe.img");
    std::fs::write(&disk, probe_disk()).map_err(|e| Error::io("write probe disk", &disk, e))?;
    let drive = format!(
        "file={},format=raw,if=ide",
        super::escape_option_value(&disk.to_string_lossy())
    );
    let start = Instant::now();
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
            "-m",
            "16",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x01",
        ])
        .args(["-drive", &drive])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| Error::io("start accelerator probe", qemu, e))?;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.code() == Some(3) => return Ok(start.elapsed()),
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
    fn probe_disk_is_a_boot_sector() {
        let d = probe_disk();
        assert_eq!(d.len(), 512);
        assert_eq!(&d[510..], &[0x55, 0xaa]);
    }

    #[test]
    fn parse_names() {
        assert_eq!(Accel::parse("KVM"), Some(Accel::Kvm));
        assert_eq!(Accel::parse("tcg"), Some(Accel::Tcg));
        assert_eq!(Accel::parse("xen"), None);
    }
}
