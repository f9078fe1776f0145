//! The accelerator probe's result, kept for the rest of the host's boot.
//!
//! A probe boots a tiny VM (and on hosts with vmx/svm, two of them), so
//! every `run` paying for it again would be waste: what it measures only
//! changes when the host reboots, QEMU is replaced or `/dev/kvm`'s access
//! changes. The result is stored per QEMU binary in the user's private
//! runtime directory (`vmc-<uid>`, 0700, files 0600) with exactly those
//! facts as its key; an entry whose key differs is probed again. Hosts
//! without a boot ID (non-Linux) keep only the per-process cache.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Accel, AccelChoice};

/// What a probe result depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeKey {
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// Its size and modification time (nanoseconds since the epoch).
    pub size: u64,
    /// See `size`.
    pub mtime_ns: i128,
    /// `/proc/sys/kernel/random/boot_id`: changes at every boot.
    pub boot_id: String,
    /// Whether `/dev/kvm` could be opened read-write.
    pub kvm_usable: bool,
}

impl ProbeKey {
    /// The key for `qemu` now, or `None` when it cannot be made (no boot ID,
    /// binary unreadable): then nothing is cached on disk.
    pub fn for_binary(qemu: &Path) -> Option<ProbeKey> {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let md = std::fs::metadata(qemu).ok()?;
        let mtime = md.modified().ok()?;
        let mtime_ns = match mtime.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        };
        Some(ProbeKey {
            qemu: qemu.to_path_buf(),
            size: md.len(),
            mtime_ns,
            boot_id: boot_id.trim().to_string(),
            kvm_usable: std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/kvm")
                .is_ok(),
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    key: ProbeKey,
    accel: String,
    reason: String,
}

/// The cache file for `key` in `dir`.
fn entry_path(dir: &Path, key: &ProbeKey) -> PathBuf {
    let h = key
        .qemu
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    dir.join(format!("accel-{h:016x}.json"))
}

/// The cached choice for `key` in `dir`, else `probe()`'s, which is then
/// stored. A cache that cannot be read or written is only a missed saving.
pub fn cached(dir: &Path, key: &ProbeKey, probe: impl FnOnce() -> AccelChoice) -> AccelChoice {
    let path = entry_path(dir, key);
    if let Some(hit) = read(&path, key) {
        return hit;
    }
    let choice = probe();
    let _ = write(dir, &path, key, &choice);
    choice
}

fn read(path: &Path, key: &ProbeKey) -> Option<AccelChoice> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(path).ok()?;
    // Only a private regular file of ours is trusted.
    if !md.is_file() || md.uid() != nix::unistd::getuid().as_raw() || md.mode() & 0o077 != 0 {
        return None;
    }
    let e: Entry = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    if &e.key != key {
        return None;
    }
    Some(AccelChoice {
        accel: Accel::parse(&e.accel)?,
        reason: format!("{} (probed earlier this boot)", e.reason),
    })
}

fn write(dir: &Path, path: &Path, key: &ProbeKey, choice: &AccelChoice) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let entry = Entry {
        key: key.clone(),
        accel: choice.accel.as_str().into(),
        reason: choice.reason.clone(),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".accel-")
        .tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    tmp.write_all(&serde_json::to_vec(&entry).map_err(std::io::Error::other)?)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn choice(a: Accel) -> AccelChoice {
        AccelChoice {
            accel: a,
            reason: "probe".into(),
        }
    }

    #[test]
    fn a_probe_runs_once_per_key_and_the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("qemu-system-test");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        let key = ProbeKey::for_binary(&bin).expect("Linux has a boot id");
        let probes = Cell::new(0);
        let probe = |a| {
            probes.set(probes.get() + 1);
            choice(a)
        };
        assert_eq!(
            cached(dir.path(), &key, || probe(Accel::Kvm)).accel,
            Accel::Kvm
        );
        let again = cached(dir.path(), &key, || probe(Accel::Tcg));
        assert_eq!((again.accel, probes.get()), (Accel::Kvm, 1));
        assert!(
            again.reason.contains("earlier this boot"),
            "{}",
            again.reason
        );
        let file = entry_path(dir.path(), &key);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // A replaced binary, another boot, or a readable-by-others file
        // means probing again.
        let mut newer = key.clone();
        newer.mtime_ns += 1;
        assert_eq!(
            cached(dir.path(), &newer, || probe(Accel::Tcg)).accel,
            Accel::Tcg
        );
        let mut reboot = newer.clone();
        reboot.boot_id = "another-boot".into();
        assert_eq!(
            cached(dir.path(), &reboot, || probe(Accel::Kvm)).accel,
            Accel::Kvm
        );
        assert_eq!(probes.get(), 3);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            cached(dir.path(), &reboot, || probe(Accel::Tcg)).accel,
            Accel::Tcg
        );
        assert_eq!(probes.get(), 4);
    }
}
