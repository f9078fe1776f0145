//! `containers.json`: go-container's registry of containers, shared by every
//! process that uses the same root directory.
//!
//! Readers see a consistent file because writers replace it atomically
//! (temp file, fsync, rename, fsync directory). Every read-modify-write holds
//! an exclusive lock on `containers.json.lock`; the lock lives in its own file
//! because the data file's inode changes on every rename.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

mod file;
mod index;

pub use file::{DamagedRecord, StateFile};
pub use index::{IndexEntry, StateIndex};

use std::collections::BTreeMap;

use crate::container::Container;
use crate::error::shown;

/// Errors of the state store. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file exists but is not a valid state file; it is left untouched.
    #[error("state file {} is corrupt ({reason}); it was left untouched — repair or move it away", path.display())]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The path is not something the store may read or replace: a
    /// symbolic link, a directory, a FIFO, a device.
    #[error("state file {} {reason}", path.display())]
    Unusable {
        /// The state file or its lock file.
        path: PathBuf,
        /// What it is and why that is refused.
        reason: String,
    },
    /// One record cannot be used (its ID is not 8 lowercase hex
    /// characters, differs from its key, or the record does not parse).
    /// The rest of the file works; `remove` can always delete the record.
    #[error("state file {}: record {:?} is damaged ({reason}); it was left untouched — remove it (vmcontainer rm {}) or repair the file", path.display(), shown(key), shown(key))]
    Damaged {
        /// The state file.
        path: PathBuf,
        /// The record's key in `containers`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading, writing or locking failed.
    #[error("state file {}: {op}: {error}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error (shown in the message, so not also a `source`).
        error: std::io::Error,
    },
}

/// Access to one `containers.json`.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
    lock_path: PathBuf,
}

impl StateStore {
    /// A store for the file at `path` (need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let mut lock = path.clone().into_os_string();
        lock.push(".lock");
        StateStore {
            path,
            lock_path: PathBuf::from(lock),
        }
    }

    /// The data file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the current state without locking (writes are atomic). A
    /// missing file is an empty state.
    pub fn load(&self) -> Result<StateFile, StateError> {
        Ok(self.load_bytes()?.0)
    }

    /// An index of the current state for finding one container without
    /// parsing every record (see [`StateIndex`]). Checked like
    /// [`Self::load`]: a corrupt file is an error naming it.
    pub fn index(&self) -> Result<StateIndex, StateError> {
        let bytes = self.read_checked()?.unwrap_or_default();
        StateIndex::build(bytes).map_err(|reason| self.corrupt(reason))
    }

    /// The usable records in file order and the damaged ones by key,
    /// without the map [`StateFile`] keeps: what a listing needs, at half
    /// the memory for a large file. Checked like [`Self::load`].
    pub fn load_records(
        &self,
    ) -> Result<(Vec<Container>, BTreeMap<String, DamagedRecord>), StateError> {
        let Some(bytes) = self.read_checked()? else {
            return Ok(Default::default());
        };
        let split = file::Split::checked(&bytes).map_err(|reason| self.corrupt(reason))?;
        let (containers, damaged, _) = split.into_records();
        Ok((containers, damaged))
    }

    /// The state and the exact bytes it was parsed from.
    fn load_bytes(&self) -> Result<(StateFile, Vec<u8>), StateError> {
        let Some(bytes) = self.read_checked()? else {
            return Ok((StateFile::default(), Vec::new()));
        };
        let state = StateFile::from_json(&bytes).map_err(|reason| self.corrupt(reason))?;
        Ok((state, bytes))
    }

    /// [`Self::read`], refusing a file with nothing in it.
    fn read_checked(&self) -> Result<Option<Vec<u8>>, StateError> {
        let bytes = self.read()?;
        if bytes
            .as_ref()
            .is_some_and(|b| b.iter().all(u8::is_ascii_whitespace))
        {
            return Err(self.corrupt("the file is empty".into()));
        }
        Ok(bytes)
    }

    fn corrupt(&self, reason: String) -> StateError {
        StateError::Corrupt {
            path: self.path.clone(),
            reason,
        }
    }

    /// Reads the file, refusing anything but a regular file: a symbolic
    /// link would be replaced by the next write (so the two would silently
    /// diverge), and a FIFO would block the read forever.
    fn read(&self) -> Result<Option<Vec<u8>>, StateError> {
        let mut f = match open_regular(&self.path, OpenOptions::new().read(true)) {
            Ok(f) => f,
            Err(StateError::Io { error, .. }) if error.kind() == ErrorKind::NotFound => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        // Sized up front: growing by doubling would copy a 45 MB file
        // several times over.
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
        f.read_to_end(&mut bytes).map_err(|e| self.io("read", e))?;
        Ok(Some(bytes))
    }

    /// Runs `f` on the state under the exclusive cross-process lock and
    /// writes the result back atomically when `f` changed it. If `f` fails
    /// nothing is written.
    pub fn update<T, E>(&self, f: impl FnOnce(&mut StateFile) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StateError>,
    {
        let _lock = self.lock()?;
        self.apply(f)
    }

    /// [`Self::update`] for async callers: waiting for the lock (another
    /// process may hold it for a while) happens on a blocking thread, never
    /// on an async worker.
    pub async fn update_async<T, E>(
        &self,
        f: impl FnOnce(&mut StateFile) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StateError>,
    {
        let _lock = self.lock_async().await?;
        self.apply(f)
    }

    /// The read-modify-write step; the caller holds the lock.
    fn apply<T, E>(&self, f: impl FnOnce(&mut StateFile) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StateError>,
    {
        let (mut state, before) = self.load_bytes()?;
        let out = f(&mut state)?;
        // Comparing the text we would write with the text we read costs a
        // memcmp; cloning and comparing 100,000 records cost far more.
        let json = state.to_json();
        if json != before {
            self.write(&json)?;
        }
        Ok(out)
    }

    async fn lock_async(&self) -> Result<File, StateError> {
        let f = self.open_lock()?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(std::fs::TryLockError::WouldBlock) => {
                tokio::task::spawn_blocking(move || f.lock().map(|_| f))
                    .await
                    .map_err(|e| self.io("lock", std::io::Error::other(e)))?
                    .map_err(|e| self.io("lock", e))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(self.io("lock", e)),
        }
    }

    fn lock(&self) -> Result<File, StateError> {
        let f = self.open_lock()?;
        // std's lock() is flock(2): released on close, including when the
        // process dies, so a crashed writer never wedges the others.
        f.lock().map_err(|e| self.io("lock", e))?;
        Ok(f)
    }

    fn open_lock(&self) -> Result<File, StateError> {
        if let Some(dir) = self.path.parent() {
            crate::home::Home::ensure_dir(dir).map_err(|e| match e {
                crate::error::Error::Io { error, .. } => self.io("create directory", error),
                other => self.io("create directory", std::io::Error::other(other.to_string())),
            })?;
        }
        // Not through a link (its target would be created outside the
        // home), never blocking on a FIFO.
        open_regular(
            &self.lock_path,
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600),
        )
    }

    fn write(&self, json: &[u8]) -> Result<(), StateError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        // The rename below would replace a link with a file; refuse instead
        // (a link created since we read the file).
        if fs::symlink_metadata(&self.path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(unusable(&self.path, &symlink_reason()));
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".containers.json.")
            .tempfile_in(dir)
            .map_err(|e| self.io("create temporary file", e))?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| self.io("chmod temporary file", e))?;
        tmp.write_all(json)
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| self.io("write temporary file", e))?;
        tmp.persist(&self.path)
            .map_err(|e| self.io("rename temporary file", e.error))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io("sync directory", e))?;
        Ok(())
    }

    fn io(&self, op: &'static str, error: std::io::Error) -> StateError {
        StateError::Io {
            path: self.path.clone(),
            op,
            error,
        }
    }
}

fn unusable(path: &Path, reason: &str) -> StateError {
    StateError::Unusable {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn symlink_reason() -> String {
    "is a symbolic link; vmcontainer does not follow links for its state (every write replaces the file, which would cut the link) — move the real file into place".into()
}

/// Opens `path` without following a final symbolic link and without
/// blocking on a FIFO, and checks that it is a regular file.
fn open_regular(path: &Path, opts: &mut OpenOptions) -> Result<File, StateError> {
    use crate::regular_file::{open_with, OpenError};
    open_with(path, opts, false).map_err(|e| match e {
        OpenError::Symlink => unusable(path, &symlink_reason()),
        OpenError::NotRegular(_) => unusable(path, &e.describe()),
        OpenError::Missing(error) | OpenError::Io(error) => StateError::Io {
            path: path.to_path_buf(),
            op: "open",
            error,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::Status;

    const GO_FILE: &str = r#"{
  "containers": {
    "0a1b2c3d": {
      "id": "0a1b2c3d",
      "name": "web",
      "image": "/images/web.iso",
      "status": "running",
      "pid": 4242,
      "started_at": "2025-03-04T10:11:12.123456789+01:00",
      "ports": {"8080": 80},
      "memory": 2048,
      "cpus": 2,
      "ssh_port": 2222,
      "future_field": {"nested": [1, 2, 3]}
    },
    "deadbeef": {
      "id": "deadbeef",
      "image": "/images/x.qcow2",
      "status": "killed",
      "pid": 1,
      "started_at": "0001-01-01T00:00:00Z"
    }
  },
  "schema": "go-container"
}"#;

    #[test]
    fn go_container_file_loads_and_unknown_fields_survive_a_write() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("containers.json");
        fs::write(&p, GO_FILE).unwrap();
        let store = StateStore::new(&p);
        let st = store.load().unwrap();
        let c = &st.containers["0a1b2c3d"];
        assert_eq!(c.name, "web");
        assert_eq!(c.status, Status::Running);
        assert_eq!(c.ports.get(&8080), Some(&80));
        assert_eq!(c.memory, 2048);
        assert_eq!(c.ssh_port, 2222);
        assert_eq!(st.containers["deadbeef"].status, Status::Killed);
        store
            .update(|s| {
                s.containers.get_mut("0a1b2c3d").unwrap().status = Status::Stopped;
                Ok::<_, StateError>(())
            })
            .unwrap();
        let raw: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(raw["schema"], "go-container");
        let c = &raw["containers"]["0a1b2c3d"];
        assert_eq!(c["future_field"]["nested"][2], 3);
        assert_eq!(c["status"], "stopped");
        assert_eq!(c["ports"]["8080"], 80);
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn corrupt_file_is_named_and_left_untouched() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("containers.json");
        let garbage = b"{\"containers\": {\"x\": tru";
        fs::write(&p, garbage).unwrap();
        let store = StateStore::new(&p);
        let err = store.load().unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }));
        assert!(err.to_string().contains(&p.display().to_string()), "{err}");
        let err = store
            .update(|s| {
                s.containers.clear();
                Ok::<_, StateError>(())
            })
            .unwrap_err();
        assert!(err.to_string().contains("corrupt"), "{err}");
        assert_eq!(fs::read(&p).unwrap(), garbage);
        fs::write(&p, b"").unwrap();
        assert!(store.load().unwrap_err().to_string().contains("empty"));
        assert!(store.index().unwrap_err().to_string().contains("empty"));
        fs::write(&p, garbage).unwrap();
        assert!(store.index().unwrap_err().to_string().contains("corrupt"));
    }

    fn rec(id: &str) -> serde_json::Value {
        serde_json::json!({"id": id, "image": "/i.iso", "status": "stopped", "pid": 0,
            "started_at": "2025-01-01T00:00:00Z"})
    }

    #[test]
    fn bad_ids_and_unparseable_records_are_quarantined_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("containers.json");
        let mut other = rec("0a0a0a0a");
        other["id"] = "ffffffff".into();
        let file = serde_json::json!({"containers": {
            "../../x": rec("../../x"),
            "0a0a0a0a": other,
            "0b0b0b0b": {"id": "0b0b0b0b", "status": "running"},
            "0c0c0c0c": rec("0c0c0c0c"),
        }, "top": 1});
        fs::write(&p, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
        let store = StateStore::new(&p);
        let st = store.load().unwrap();
        assert_eq!(st.containers.keys().collect::<Vec<_>>(), ["0c0c0c0c"]);
        assert_eq!(st.damaged.len(), 3);
        assert!(st.damaged["../../x"].reason.contains("8 lowercase hex"));
        assert!(st.damaged["0a0a0a0a"]
            .reason
            .contains("differs from its key"));
        assert!(
            st.damaged["0b0b0b0b"].reason.contains("missing field"),
            "{:?}",
            st.damaged["0b0b0b0b"]
        );
        // A write keeps every damaged record verbatim.
        store
            .update(|s| {
                s.containers.get_mut("0c0c0c0c").unwrap().memory = 7;
                Ok::<_, StateError>(())
            })
            .unwrap();
        let raw: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert_eq!(
            raw["containers"]["0b0b0b0b"],
            file["containers"]["0b0b0b0b"]
        );
        assert_eq!(raw["containers"]["0a0a0a0a"]["id"], "ffffffff");
        assert_eq!(raw["containers"]["../../x"]["id"], "../../x");
        assert_eq!(raw["containers"]["0c0c0c0c"]["memory"], 7);
        assert_eq!(raw["top"], 1);
    }

    #[test]
    fn unknown_status_and_null_fields_load_and_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("containers.json");
        let mut r = rec("0a0a0a0a");
        r["status"] = "paused".into();
        r["name"] = serde_json::Value::Null;
        r["ports"] = serde_json::Value::Null;
        r["memory"] = serde_json::Value::Null;
        fs::write(
            &p,
            serde_json::json!({"containers": {"0a0a0a0a": r}}).to_string(),
        )
        .unwrap();
        let store = StateStore::new(&p);
        let st = store.load().unwrap();
        let c = &st.containers["0a0a0a0a"];
        assert_eq!(c.status, Status::Unknown("paused".into()));
        assert_eq!(c.status.to_string(), "paused");
        assert_eq!(c.name, "");
        assert!(st.damaged.is_empty());
        store.update(|_| Ok::<_, StateError>(())).unwrap();
        let raw: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert_eq!(raw["containers"]["0a0a0a0a"]["status"], "paused");
    }

    #[test]
    fn duplicate_keys_are_an_error_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("containers.json");
        let one = rec("0a0a0a0a").to_string();
        let two = rec("0b0b0b0b").to_string();
        for text in [
            format!(r#"{{"containers": {{"0a0a0a0a": {one}, "0a0a0a0a": {one}}}}}"#),
            format!(
                r#"{{"containers": {{"0a0a0a0a": {one}}}, "containers": {{"0b0b0b0b": {two}}}}}"#
            ),
            format!(
                r#"{{"containers": {{"0a0a0a0a": {}}}}}"#,
                one.replacen("\"pid\"", "\"name\": \"a\", \"name\": \"b\", \"pid\"", 1)
            ),
        ] {
            fs::write(&p, &text).unwrap();
            let e = StateStore::new(&p).load().unwrap_err().to_string();
            assert!(
                e.contains("duplicate key") && e.contains(&p.display().to_string()),
                "{e}"
            );
            assert!(StateStore::new(&p)
                .update(|_| Ok::<_, StateError>(()))
                .is_err());
            assert_eq!(fs::read_to_string(&p).unwrap(), text);
        }
    }

    #[test]
    fn links_fifos_and_directories_are_refused_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let p = d.path().join("containers.json");
        // A symlinked state file: neither read through nor replaced.
        let real = outside.path().join("real.json");
        fs::write(&real, r#"{"containers": {}}"#).unwrap();
        std::os::unix::fs::symlink(&real, &p).unwrap();
        let store = StateStore::new(&p);
        let e = store.load().unwrap_err().to_string();
        assert!(
            e.contains("symbolic link") && e.contains(&p.display().to_string()),
            "{e}"
        );
        assert!(store.update(|_| Ok::<_, StateError>(())).is_err());
        assert!(fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
        fs::remove_file(&p).unwrap();
        let _ = fs::remove_file(d.path().join("containers.json.lock"));
        // A symlinked lock file: its target is never created.
        let target = outside.path().join("created-by-lock");
        std::os::unix::fs::symlink(&target, d.path().join("containers.json.lock")).unwrap();
        let e = store
            .update(|_| Ok::<_, StateError>(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(!target.exists());
        fs::remove_file(d.path().join("containers.json.lock")).unwrap();
        // A FIFO fails at once instead of blocking the read.
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let t = std::time::Instant::now();
        let e = store.load().unwrap_err().to_string();
        assert!(e.contains("FIFO"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        fs::remove_file(&p).unwrap();
        fs::create_dir(&p).unwrap();
        assert!(store.load().unwrap_err().to_string().contains("directory"));
    }

    #[test]
    fn missing_file_is_empty_state() {
        let d = tempfile::tempdir().unwrap();
        let st = StateStore::new(d.path().join("nope.json")).load().unwrap();
        assert!(st.containers.is_empty());
    }
}
