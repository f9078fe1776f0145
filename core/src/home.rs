//! The root directory (`$VMCONTAINER_HOME`, default `~/.core`) and every
//! path under it, plus the short per-container runtime directories that hold
//! Unix sockets.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Longest Unix socket path we create. Linux allows 107 bytes, macOS 104;
/// the smaller one keeps a home directory portable.
pub const MAX_SOCKET_PATH: usize = 103;
/// Longest socket file name placed in a runtime directory (`console.sock`).
const LONGEST_SOCKET_NAME: &str = "console.sock";

/// Paths of one vmcontainer root directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Uses `root` as the root directory (it is created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Home { root: root.into() }
    }

    /// `$VMCONTAINER_HOME`, else `$HOME/.core`.
    pub fn from_env() -> Result<Self> {
        if let Some(h) = std::env::var_os("VMCONTAINER_HOME").filter(|h| !h.is_empty()) {
            return Ok(Home::new(absolute(Path::new(&h))));
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(h) => Ok(Home::new(PathBuf::from(h).join(".core"))),
            None => Err(Error::invalid(
                "home directory",
                "",
                "neither VMCONTAINER_HOME nor HOME is set",
            )),
        }
    }

    /// `home` made absolute, or [`Home::from_env`] when it is `None`: what
    /// every front end does with an optional home argument.
    pub fn resolve(home: Option<&Path>) -> Result<Self> {
        match home {
            Some(h) => Ok(Home::new(absolute(h))),
            None => Self::from_env(),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `containers.json`.
    pub fn state_path(&self) -> PathBuf {
        self.root.join("containers.json")
    }
    /// `logs/`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    /// `logs/<id>.log`: the serial console of container `id`.
    pub fn log_path(&self, id: &str) -> PathBuf {
        self.logs_dir().join(format!("{id}.log"))
    }
    /// `linuxkit/`: user templates.
    pub fn templates_dir(&self) -> PathBuf {
        self.root.join("linuxkit")
    }
    /// `images/`, or `$CORE_IMAGES_DIR`.
    pub fn images_dir(&self) -> PathBuf {
        match std::env::var_os("CORE_IMAGES_DIR").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => self.root.join("images"),
        }
    }
    /// `config.yaml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.yaml")
    }
    /// `containers/<id>/`: the container's persistent files (disk overlay,
    /// pinned host keys, template builds).
    pub fn instance_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }

    /// `containers/<id>/disk.qcow2`: the container's copy-on-write overlay.
    pub fn disk_path(&self, id: &str) -> PathBuf {
        self.instance_dir(id).join("disk.qcow2")
    }

    /// Whether `path` is one of the overlays this home derives for `id`:
    /// `disk.qcow2`, or `disk.N.qcow2`, the overlay a container continues on
    /// after a snapshot froze the one below it. A record is input, so the
    /// disk it names is checked before QEMU is let to write to it.
    pub fn is_container_disk(&self, id: &str, path: &Path) -> bool {
        if !crate::id::is_valid_id(id) || path.parent() != Some(&self.instance_dir(id)) {
            return false;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        name == "disk.qcow2"
            || name
                .strip_prefix("disk.")
                .and_then(|n| n.strip_suffix(".qcow2"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }

    /// The runtime directories this home can derive for `id`: the instance
    /// directory, and the short fallbacks under `$XDG_RUNTIME_DIR` and
    /// `/tmp` (either may have been in use when the container started).
    pub fn runtime_dir_candidates(&self, id: &str) -> Vec<PathBuf> {
        let mut out = vec![self.instance_dir(id)];
        if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
            out.push(self.shared_runtime_dir(Path::new(&x), id));
        }
        out.push(self.shared_runtime_dir(Path::new("/tmp"), id));
        out
    }

    /// The record's runtime directory, if it is one this home derives for
    /// the container (see [`Home::runtime_dir_candidates`]). A record is
    /// input — a hand edit or a hostile file can hold any path — so any
    /// other value is never used: no socket there is connected to and
    /// nothing there is deleted.
    pub fn trusted_runtime_dir(&self, id: &str, recorded: Option<&Path>) -> Option<PathBuf> {
        let recorded = recorded?;
        if !crate::id::is_valid_id(id) {
            return None;
        }
        self.runtime_dir_candidates(id)
            .into_iter()
            .find(|c| c == recorded)
    }

    fn shared_runtime_dir(&self, base: &Path, id: &str) -> PathBuf {
        let uid = nix::unistd::getuid().as_raw();
        base.join(format!("vmc-{uid}"))
            .join(self.runtime_dir_name(id))
    }

    /// `<hash of the root>-<id>`: unique per home and container.
    fn runtime_dir_name(&self, id: &str) -> String {
        format!(
            "{:08x}-{id}",
            fnv32(self.root.as_os_str().as_encoded_bytes())
        )
    }

    /// `snapshots/`: one directory per snapshot (see [`crate::snapshot`]).
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// A runtime directory for `id` whose socket paths fit the OS limit:
    /// `containers/<id>` itself when short enough, otherwise
    /// `$XDG_RUNTIME_DIR` or `/tmp` + `vmc-<uid>/<hash>-<id>`.
    pub fn runtime_dir_for(&self, id: &str) -> Result<PathBuf> {
        self.runtime_dir_in(self.instance_dir(id), id)
    }

    /// A directory for sockets: `local` when its socket paths fit the OS
    /// limit, otherwise a short one keyed by this home and `key` (as for
    /// [`Self::runtime_dir_for`]).
    pub fn runtime_dir_in(&self, local: PathBuf, key: &str) -> Result<PathBuf> {
        if socket_len(&local) <= MAX_SOCKET_PATH {
            return Ok(local);
        }
        let dir = user_runtime_dir().join(self.runtime_dir_name(key));
        if socket_len(&dir) > MAX_SOCKET_PATH {
            return Err(Error::invalid(
                "runtime directory",
                dir.display().to_string(),
                format!("socket paths under it would exceed {MAX_SOCKET_PATH} bytes; set XDG_RUNTIME_DIR to a shorter directory"),
            ));
        }
        Ok(dir)
    }

    /// Creates a directory tree, each new level 0700.
    pub fn ensure_dir(path: &Path) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| Error::io("create directory", path, e))
    }

    /// Creates a runtime directory. A shared parent such as `/tmp/vmc-<uid>`
    /// must be ours, a real directory and private, or we refuse to put
    /// sockets in it.
    pub fn ensure_runtime_dir(&self, dir: &Path) -> Result<()> {
        if !dir.starts_with(&self.root) {
            if let Some(parent) = dir.parent() {
                ensure_private_dir(parent)?;
            }
        }
        Self::ensure_dir(dir)
    }
}

/// The current user's directory for runtime files shared by every home
/// (short socket directories, the accelerator cache):
/// `$XDG_RUNTIME_DIR/vmc-<uid>`, else `/tmp/vmc-<uid>`.
pub fn user_runtime_dir() -> PathBuf {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    let uid = nix::unistd::getuid().as_raw();
    base.join(format!("vmc-{uid}"))
}

/// Creates `dir` (0700) if needed and checks that it is a real directory,
/// ours, and private: in a shared place like `/tmp` anything else may be
/// another user's trap.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    Home::ensure_dir(dir)?;
    let md = fs::symlink_metadata(dir).map_err(|e| Error::io("inspect directory", dir, e))?;
    let uid = nix::unistd::getuid().as_raw();
    if !md.is_dir() || md.uid() != uid || md.permissions().mode() & 0o077 != 0 {
        return Err(Error::invalid(
            "runtime directory",
            dir.display().to_string(),
            "must be a directory owned by the current user with mode 0700",
        ));
    }
    Ok(())
}

fn socket_len(dir: &Path) -> usize {
    dir.as_os_str().len() + 1 + LONGEST_SOCKET_NAME.len()
}

fn fnv32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Makes `p` absolute against the current directory without resolving links.
pub fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_derived_overlays_are_container_disks() {
        let h = Home::new("/tmp/h");
        let dir = h.instance_dir("0a1b2c3d");
        for ok in ["disk.qcow2", "disk.1.qcow2", "disk.12.qcow2"] {
            assert!(h.is_container_disk("0a1b2c3d", &dir.join(ok)), "{ok}");
        }
        for bad in ["disk..qcow2", "disk.x.qcow2", "disk.1.raw", "other.qcow2"] {
            assert!(!h.is_container_disk("0a1b2c3d", &dir.join(bad)), "{bad}");
        }
        assert!(!h.is_container_disk("0a1b2c3d", Path::new("/etc/disk.qcow2")));
        assert!(!h.is_container_disk("0a1b2c3d", &dir.join("../x/disk.qcow2")));
        assert!(!h.is_container_disk("../x", &h.disk_path("../x")));
    }

    #[test]
    fn short_home_keeps_sockets_local_and_deep_home_moves_them() {
        let short = Home::new("/tmp/h");
        assert_eq!(
            short.runtime_dir_for("abcd1234").unwrap(),
            PathBuf::from("/tmp/h/containers/abcd1234")
        );
        let deep = Home::new(format!("/tmp/{}", "d/".repeat(60)));
        let dir = deep.runtime_dir_for("abcd1234").unwrap();
        assert!(!dir.starts_with(deep.root()));
        assert!(socket_len(&dir) <= MAX_SOCKET_PATH, "{}", dir.display());
        assert!(dir.to_string_lossy().ends_with("-abcd1234"));
        // Two deep homes never share a runtime directory.
        let other = Home::new(format!("/tmp/{}", "e/".repeat(60)));
        assert_ne!(other.runtime_dir_for("abcd1234").unwrap(), dir);
    }

    #[test]
    fn only_derived_runtime_dirs_are_trusted() {
        let h = Home::new("/tmp/h");
        let id = "abcd1234";
        for c in h.runtime_dir_candidates(id) {
            assert_eq!(h.trusted_runtime_dir(id, Some(&c)), Some(c.clone()));
        }
        let deep = Home::new(format!("/tmp/{}", "d/".repeat(60)));
        let dir = deep.runtime_dir_for(id).unwrap();
        assert_eq!(deep.trusted_runtime_dir(id, Some(&dir)), Some(dir));
        for bad in [
            "/",
            "/tmp",
            "/home/user",
            "/tmp/h/containers/abcd1234/..",
            "/tmp/h/containers/ffff0000",
            "/tmp/h/containers/abcd1234/x",
        ] {
            assert_eq!(
                h.trusted_runtime_dir(id, Some(Path::new(bad))),
                None,
                "{bad}"
            );
        }
        assert_eq!(h.trusted_runtime_dir(id, None), None);
        // An invalid ID never yields a directory, even a "derived" one.
        let evil = "../../x";
        assert_eq!(
            h.trusted_runtime_dir(evil, Some(&h.instance_dir(evil))),
            None
        );
    }

    #[test]
    fn paths_follow_go_container_layout() {
        let h = Home::new("/r");
        assert_eq!(h.state_path(), PathBuf::from("/r/containers.json"));
        assert_eq!(
            h.log_path("0a1b2c3d"),
            PathBuf::from("/r/logs/0a1b2c3d.log")
        );
        assert_eq!(h.templates_dir(), PathBuf::from("/r/linuxkit"));
    }
}
