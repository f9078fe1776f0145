//! The `snapshots/` directory: listing, reading, publishing and removing
//! snapshot directories, each change atomic.
//!
//! A snapshot under construction lives in `.tmp-<name>-<random>/`, and its
//! builder holds an exclusive lock on `.tmp-<name>-<random>.lock` (made
//! before the directory) for as long as it works. A `.tmp-` directory
//! whose lock nobody holds was left by a builder that died, and is
//! removed by the next `begin`.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{validate_name, Snapshot, SnapshotError, FORMAT_VERSION, META_FILE};
use crate::error::{Error, Result};
use crate::home::Home;

const TMP_PREFIX: &str = ".tmp-";
const REMOVING_PREFIX: &str = ".rm-";

/// Access to one home's `snapshots/` directory.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    dir: PathBuf,
}

/// A snapshot being built: its temporary directory, removed (with the
/// lock) when dropped unless published.
#[derive(Debug)]
pub struct PendingSnapshot {
    name: String,
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
    root: PathBuf,
    published: bool,
}

impl SnapshotStore {
    /// The store in `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SnapshotStore { dir: dir.into() }
    }

    /// The `snapshots/` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where snapshot `name` lives (whether or not it exists).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Every complete snapshot, sorted by creation time. Temporary and
    /// half-removed directories are never listed.
    pub fn list(&self) -> Result<Vec<Snapshot>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("read directory", &self.dir, e)),
        };
        let mut all = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read directory", &self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Only complete snapshots have metadata (it is written last).
            if name.starts_with('.') || !entry.path().join(META_FILE).is_file() {
                continue;
            }
            all.push(self.read(&name)?);
        }
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.name.cmp(&b.name)));
        Ok(all)
    }

    /// Snapshot `name`.
    pub fn get(&self, name: &str) -> Result<Snapshot> {
        validate_name(name)?;
        if !self.path(name).join(META_FILE).exists() {
            return Err(SnapshotError::NotFound(name.to_string()).into());
        }
        self.read(name)
    }

    fn read(&self, name: &str) -> Result<Snapshot> {
        let dir = self.path(name);
        let meta = dir.join(META_FILE);
        let corrupt = |reason: String| SnapshotError::Corrupt {
            path: meta.clone(),
            reason,
        };
        let bytes = fs::read(&meta).map_err(|e| corrupt(e.to_string()))?;
        let mut s: Snapshot = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if s.format_version > FORMAT_VERSION {
            return Err(SnapshotError::Incompatible {
                name: name.into(),
                reason: format!(
                    "it was written by a newer vmcontainer (layout {}, this one reads up to {FORMAT_VERSION})",
                    s.format_version
                ),
            }
            .into());
        }
        if s.name != name {
            return Err(corrupt(format!("it names snapshot {:?}", s.name)).into());
        }
        s.size = disk_usage(&dir);
        s.path = Some(dir);
        Ok(s)
    }

    /// Starts building snapshot `name` in a private temporary directory.
    /// Fails if the name is taken. Removes what dead builders left.
    pub fn begin(&self, name: &str) -> Result<PendingSnapshot> {
        validate_name(name)?;
        Home::ensure_dir(&self.dir)?;
        self.remove_stale();
        if self.path(name).exists() {
            return Err(SnapshotError::Exists(name.to_string()).into());
        }
        let base = format!("{TMP_PREFIX}{name}-{}", crate::id::generate_id());
        let lock_path = self.dir.join(format!("{base}.lock"));
        let lock = fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| Error::io("create", &lock_path, e))?;
        lock.try_lock()
            .map_err(|e| Error::io("lock", &lock_path, std::io::Error::other(e)))?;
        // A cleaner may have taken our lock file for a dead builder's in
        // the instant before we locked it; then it is no longer ours.
        if !same_file(&lock, &lock_path) {
            return Err(Error::io(
                "lock",
                &lock_path,
                std::io::Error::other("removed by a concurrent cleanup; try again"),
            ));
        }
        let dir = self.dir.join(&base);
        if let Err(e) = Home::ensure_dir(&dir) {
            let _ = fs::remove_file(&lock_path);
            return Err(e);
        }
        Ok(PendingSnapshot {
            name: name.to_string(),
            dir,
            lock_path,
            _lock: lock,
            root: self.dir.clone(),
            published: false,
        })
    }

    /// Deletes snapshot `name`'s files. It first disappears from listings
    /// (an atomic rename), then its files are removed.
    pub fn remove(&self, name: &str) -> Result<()> {
        let from = self.path(name);
        let to = self.dir.join(format!(
            "{REMOVING_PREFIX}{name}-{}",
            crate::id::generate_id()
        ));
        fs::rename(&from, &to).map_err(|e| Error::io("rename", &from, e))?;
        sync_dir(&self.dir);
        fs::remove_dir_all(&to).map_err(|e| Error::io("remove", &to, e))
    }

    /// Removes `.tmp-` directories nobody is building and half-removed
    /// `.rm-` directories.
    fn remove_stale(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(REMOVING_PREFIX) {
                let _ = fs::remove_dir_all(&path);
            } else if let Some(base) = name
                .strip_prefix(TMP_PREFIX)
                .map(|b| b.strip_suffix(".lock").unwrap_or(b))
            {
                let lock_path = self.dir.join(format!("{TMP_PREFIX}{base}.lock"));
                let abandoned = match File::open(&lock_path) {
                    Ok(f) => f.try_lock().is_ok(),
                    Err(_) => true,
                };
                if abandoned {
                    let _ = fs::remove_dir_all(self.dir.join(format!("{TMP_PREFIX}{base}")));
                    let _ = fs::remove_file(&lock_path);
                }
            }
        }
    }
}

impl PendingSnapshot {
    /// The temporary directory to write the snapshot's files into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The snapshot's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes `meta`, flushes every file to disk and renames the directory
    /// to `snapshots/<name>`. Fails, leaving nothing listed, if the name
    /// was taken meanwhile.
    pub fn publish(mut self, meta: &Snapshot) -> Result<PathBuf> {
        let json = serde_json::to_vec_pretty(meta).expect("snapshot metadata serializes");
        let meta_path = self.dir.join(META_FILE);
        let mut f = fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&meta_path)
            .map_err(|e| Error::io("create", &meta_path, e))?;
        f.write_all(&json)
            .map_err(|e| Error::io("write", &meta_path, e))?;
        drop(f);
        for entry in
            fs::read_dir(&self.dir).map_err(|e| Error::io("read directory", &self.dir, e))?
        {
            let p = entry
                .map_err(|e| Error::io("read directory", &self.dir, e))?
                .path();
            File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io("flush", &p, e))?;
        }
        sync_dir(&self.dir);
        let target = self.root.join(&self.name);
        // rename(2) onto an existing non-empty directory fails, so two
        // builders of one name cannot overwrite each other.
        if let Err(e) = fs::rename(&self.dir, &target) {
            return Err(if target.exists() {
                SnapshotError::Exists(self.name.clone()).into()
            } else {
                Error::io("rename", &self.dir, e)
            });
        }
        self.published = true;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("chmod", &target, e))?;
        sync_dir(&self.root);
        let _ = fs::remove_file(&self.lock_path);
        Ok(target)
    }
}

impl Drop for PendingSnapshot {
    fn drop(&mut self) {
        if !self.published {
            let _ = fs::remove_dir_all(&self.dir);
            let _ = fs::remove_file(&self.lock_path);
        }
    }
}

/// Whether the open file `f` is the file at `path`.
fn same_file(f: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Flushes a directory's entries (a rename is durable only then).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Bytes allocated to the files in `dir` (sparse files count what they
/// use, not their length).
fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.blocks() * 512)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(name: &str) -> Snapshot {
        serde_json::from_value(serde_json::json!({
            "format_version": 1, "name": name, "created_at": "2025-01-01T00:00:00Z",
            "source_id": "abcd0123", "source_name": "web", "image": "/i/a.qcow2",
            "format": "qcow2", "image_fingerprint": "1:2", "memory": 256, "cpus": 1,
            "qemu_version": "7.2.22", "machine": "pc-i440fx-7.2", "ram_id": "pc.ram",
            "accel": "tcg", "devices": ["-m 256"], "disk": true
        }))
        .unwrap()
    }

    #[test]
    fn publish_is_atomic_and_unfinished_work_is_never_listed() {
        let home = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(home.path().join("snapshots"));
        assert!(store.list().unwrap().is_empty());

        // Abandoned: dropped before publishing leaves nothing behind.
        let p = store.begin("a").unwrap();
        fs::write(p.dir().join("memory.raw"), b"x").unwrap();
        assert!(store.list().unwrap().is_empty());
        drop(p);
        assert_eq!(fs::read_dir(store.dir()).unwrap().count(), 0);

        // Published: listed with its size; the name is then taken.
        let p = store.begin("a").unwrap();
        fs::write(p.dir().join("state.bin"), vec![1u8; 10_000]).unwrap();
        let dir = p.publish(&meta("a")).unwrap();
        assert_eq!(dir, store.path("a"));
        let list = store.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].path.as_deref(), Some(dir.as_path()));
        assert!(list[0].size >= 10_000, "{}", list[0].size);
        assert!(matches!(
            store.begin("a").unwrap_err(),
            Error::Snapshot(SnapshotError::Exists(_))
        ));
        // What was stored does not carry the computed fields.
        let raw = fs::read_to_string(dir.join(META_FILE)).unwrap();
        assert!(
            !raw.contains("\"path\"") && !raw.contains("\"size\""),
            "{raw}"
        );

        // Two builders of one name: the second publish fails cleanly.
        let p1 = store.begin("b").unwrap();
        let p2 = store.begin("b").unwrap();
        p1.publish(&meta("b")).unwrap();
        assert!(matches!(
            p2.publish(&meta("b")).unwrap_err(),
            Error::Snapshot(SnapshotError::Exists(_))
        ));
        assert_eq!(store.list().unwrap().len(), 2);

        store.remove("a").unwrap();
        assert!(matches!(
            store.get("a").unwrap_err(),
            Error::Snapshot(SnapshotError::NotFound(_))
        ));
    }

    #[test]
    fn a_dead_builder_is_cleaned_up_and_a_live_one_is_not() {
        let home = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(home.path().join("snapshots"));
        let live = store.begin("x").unwrap();
        // A builder that died: directory and an unlocked lock file.
        let dead = store.dir().join(".tmp-y-00000000");
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("memory.raw"), b"partial").unwrap();
        fs::write(store.dir().join(".tmp-y-00000000.lock"), b"").unwrap();
        let half_removed = store.dir().join(".rm-z-11111111");
        fs::create_dir(&half_removed).unwrap();
        let _other = store.begin("w").unwrap();
        assert!(!dead.exists() && !half_removed.exists());
        assert!(
            live.dir().exists(),
            "a live builder's directory was removed"
        );
    }

    #[test]
    fn corrupt_or_foreign_metadata_is_reported_by_path() {
        let home = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(home.path().join("snapshots"));
        fs::create_dir_all(store.path("bad")).unwrap();
        fs::write(store.path("bad").join(META_FILE), b"{\"name\":").unwrap();
        let e = store.get("bad").unwrap_err().to_string();
        assert!(e.contains("snapshot.json") && e.contains("corrupt"), "{e}");
        let mut newer = meta("new");
        newer.format_version = FORMAT_VERSION + 1;
        fs::create_dir_all(store.path("new")).unwrap();
        fs::write(
            store.path("new").join(META_FILE),
            serde_json::to_vec(&newer).unwrap(),
        )
        .unwrap();
        let e = store.get("new").unwrap_err().to_string();
        assert!(e.contains("newer vmcontainer"), "{e}");
        assert!(store.get("../etc").is_err());
    }
}
