//! `containers.json`: go-container's registry of containers, shared by every
//! process that uses the same root directory.
//!
//! Readers see a consistent file because writers replace it atomically
//! (temp file, fsync, rename, fsync directory). Every read-modify-write holds
//! an exclusive lock on `containers.json.lock`; the lock lives in its own file
//! because the data file's inode changes on every rename.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::container::Container;

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
    /// Reading, writing or locking failed.
    #[error("state file {}: {op}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// The whole file: `{"containers": {"<id>": Container}}` plus any other
/// top-level fields, kept verbatim.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    /// Containers by ID.
    #[serde(default)]
    pub containers: BTreeMap<String, Container>,
    /// Unknown top-level fields.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
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
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(StateFile::default()),
            Err(e) => return Err(self.io("read", e)),
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(StateError::Corrupt {
                path: self.path.clone(),
                reason: "the file is empty".into(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            path: self.path.clone(),
            reason: format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        })
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
        let mut state = self.load()?;
        let before = state.clone();
        let out = f(&mut state)?;
        if state != before {
            self.write(&state)?;
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
                crate::error::Error::Io { source, .. } => self.io("create directory", source),
                other => self.io("create directory", std::io::Error::other(other.to_string())),
            })?;
        }
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock_path)
            .map_err(|e| self.io("open lock file", e))
    }

    fn write(&self, state: &StateFile) -> Result<(), StateError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut json = serde_json::to_vec_pretty(state)
            .map_err(|e| self.io("serialize", std::io::Error::other(e)))?;
        json.push(b'\n');
        let mut tmp = tempfile::Builder::new()
            .prefix(".containers.json.")
            .tempfile_in(dir)
            .map_err(|e| self.io("create temporary file", e))?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| self.io("chmod temporary file", e))?;
        tmp.write_all(&json)
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| self.io("write temporary file", e))?;
        tmp.persist(&self.path)
            .map_err(|e| self.io("rename temporary file", e.error))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io("sync directory", e))?;
        Ok(())
    }

    fn io(&self, op: &'static str, source: std::io::Error) -> StateError {
        StateError::Io {
            path: self.path.clone(),
            op,
            source,
        }
    }
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
    }

    #[test]
    fn missing_file_is_empty_state() {
        let d = tempfile::tempdir().unwrap();
        let st = StateStore::new(d.path().join("nope.json")).load().unwrap();
        assert!(st.containers.is_empty());
    }
}
