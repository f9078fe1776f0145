//! Pulled images in the home: `images/oci/` beside go-container's
//! `images/manifest.json`, which stays untouched (go-container keeps
//! reading and writing it as before).
//!
//! ```text
//! images/oci/index.json                 references → digest, format, files (0600)
//! images/oci/sha256/<manifest hex>/     one directory per image manifest:
//!     vmtest.qcow2                      the files, named as their format needs
//!     lk-kernel lk-initrd.img lk-cmdline
//! images/oci/sha256/.<hex>.partial/     a pull in progress (resumed by the next pull)
//! ```
//!
//! A content directory only ever appears by renaming a complete staging
//! directory whose every file was verified, so its presence means
//! "installed"; the index is updated after that, under a lock, atomically.
//! `index.json` also remembers which containerDisk was pushed from which
//! image file, so `export --kubevirt` can name it without `--image-ref`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::media::Role;
use super::RegistryError;
use crate::home::Home;
use crate::image::ImageFormat;

/// Largest index read.
const MAX_INDEX: u64 = 64 << 20;

/// One file of a stored image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    /// What it is.
    pub role: Role,
    /// Its file name in the image's directory.
    pub name: String,
    /// `sha256:<hex>` (the layer digest).
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

/// A pulled image as the index records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredImage {
    /// The reference it was pulled by (canonical form).
    pub reference: String,
    /// `sha256:<hex>` of its image manifest.
    pub digest: String,
    /// Its format.
    pub format: ImageFormat,
    /// What `run` boots: the disk or ISO, or `NAME-kernel`.
    pub path: PathBuf,
    /// Its files.
    pub files: Vec<StoredFile>,
    /// Total size in bytes.
    pub size: u64,
    /// When it was last pulled.
    pub pulled: DateTime<Utc>,
}

/// A containerDisk pushed from a local image file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedDisk {
    /// The reference it was pushed to.
    pub reference: String,
    /// `sha256:<hex>` of its manifest.
    pub digest: String,
    /// The image file's size and modification time (seconds) when pushed,
    /// so a changed file is not matched.
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub modified: i64,
    /// The format of the image file.
    pub format: ImageFormat,
}

/// `index.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Index {
    /// By reference.
    #[serde(default)]
    images: BTreeMap<String, Entry>,
    /// By absolute image path.
    #[serde(default)]
    containerdisks: BTreeMap<String, PushedDisk>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

/// One index entry; `path` is relative to the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    digest: String,
    format: ImageFormat,
    path: String,
    files: Vec<StoredFile>,
    size: u64,
    pulled: DateTime<Utc>,
    #[serde(flatten)]
    extra: serde_json::Map<String, serde_json::Value>,
}

/// The store under `images/oci/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageStore {
    dir: PathBuf,
}

impl ImageStore {
    /// The store of `home` (under its images directory, which
    /// `$CORE_IMAGES_DIR` may move).
    pub fn new(home: &Home) -> Self {
        ImageStore {
            dir: home.images_dir().join("oci"),
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `index.json`.
    pub fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    /// The directory of the image manifest `hex`.
    pub(crate) fn content_dir(&self, hex: &str) -> PathBuf {
        self.dir.join("sha256").join(hex)
    }

    /// Where a pull of `hex` collects its files.
    pub(crate) fn staging_dir(&self, hex: &str) -> PathBuf {
        self.dir.join("sha256").join(format!(".{hex}.partial"))
    }

    /// Every pulled image, by reference.
    pub fn list(&self) -> Result<Vec<StoredImage>, RegistryError> {
        let idx = self.load()?;
        Ok(idx
            .images
            .into_iter()
            .map(|(r, e)| self.stored(r, e))
            .collect())
    }

    /// The image pulled as `reference` (canonical form) whose files are
    /// all present; for a digest reference, any image with that digest.
    pub fn get(&self, reference: &super::ImageRef) -> Result<Option<StoredImage>, RegistryError> {
        let idx = self.load()?;
        let key = reference.to_string();
        let hit = idx
            .images
            .get(&key)
            .cloned()
            .map(|e| (key.clone(), e))
            .or_else(|| {
                let d = reference.digest()?;
                idx.images
                    .iter()
                    .find(|(_, e)| e.digest == d)
                    .map(|(r, e)| (r.clone(), e.clone()))
            });
        Ok(hit
            .map(|(r, e)| self.stored(r, e))
            .filter(|s| self.is_complete(s)))
    }

    /// The pulled image whose files include `path`.
    pub fn find_by_path(&self, path: &Path) -> Result<Option<StoredImage>, RegistryError> {
        Ok(self.list()?.into_iter().find(|s| {
            let dir = s.path.parent().unwrap_or(Path::new(""));
            s.path == path || s.files.iter().any(|f| dir.join(&f.name) == path)
        }))
    }

    /// The containerDisk last pushed from `image` (unchanged since).
    pub fn containerdisk_for(&self, image: &Path) -> Result<Option<PushedDisk>, RegistryError> {
        let idx = self.load()?;
        let key = crate::home::absolute(image).to_string_lossy().into_owned();
        let Some(d) = idx.containerdisks.get(&key) else {
            return Ok(None);
        };
        Ok(file_stamp(image)
            .filter(|(size, modified)| *size == d.size && *modified == d.modified)
            .map(|_| d.clone()))
    }

    fn stored(&self, reference: String, e: Entry) -> StoredImage {
        StoredImage {
            reference,
            digest: e.digest,
            format: e.format,
            path: self.dir.join(&e.path),
            files: e.files,
            size: e.size,
            pulled: e.pulled,
        }
    }

    /// Whether every file of `s` is present with its size.
    pub(crate) fn is_complete(&self, s: &StoredImage) -> bool {
        let Some(dir) = s.path.parent() else {
            return false;
        };
        // Only paths inside the store count, whatever the index says.
        dir.starts_with(self.dir.join("sha256"))
            && s.files.iter().all(|f| {
                fs::symlink_metadata(dir.join(&f.name))
                    .is_ok_and(|m| m.is_file() && m.len() == f.size)
            })
    }

    /// Records that `reference` is the content in `dir` (a content
    /// directory of this store).
    pub(crate) fn record(&self, image: &StoredImage) -> Result<(), RegistryError> {
        let rel = image
            .path
            .strip_prefix(&self.dir)
            .map_err(|_| {
                RegistryError::io(
                    "record",
                    &image.path,
                    std::io::Error::other("outside the image store"),
                )
            })?
            .to_string_lossy()
            .into_owned();
        let entry = Entry {
            digest: image.digest.clone(),
            format: image.format,
            path: rel,
            files: image.files.clone(),
            size: image.size,
            pulled: image.pulled,
            extra: Default::default(),
        };
        self.update(|idx| {
            idx.images.insert(image.reference.clone(), entry);
        })
    }

    /// Records a containerDisk pushed from `image`.
    pub(crate) fn record_containerdisk(
        &self,
        image: &Path,
        reference: &str,
        digest: &str,
        format: ImageFormat,
    ) -> Result<(), RegistryError> {
        let Some((size, modified)) = file_stamp(image) else {
            return Ok(());
        };
        let key = crate::home::absolute(image).to_string_lossy().into_owned();
        let d = PushedDisk {
            reference: reference.to_string(),
            digest: digest.to_string(),
            size,
            modified,
            format,
        };
        self.update(|idx| {
            idx.containerdisks.insert(key, d);
        })
    }

    /// Reads the index; missing is empty, corrupt is an error naming it.
    fn load(&self) -> Result<Index, RegistryError> {
        let path = self.index_path();
        let corrupt = |reason: String| {
            RegistryError::bad(
                path.display().to_string(),
                format!("image index is corrupt ({reason}); it was left untouched — repair or move it away"),
            )
        };
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Index::default()),
            Err(e) => return Err(RegistryError::io("open", &path, e)),
        };
        let md = f
            .metadata()
            .map_err(|e| RegistryError::io("stat", &path, e))?;
        if !md.is_file() {
            return Err(corrupt("not a regular file".into()));
        }
        let mut bytes = Vec::new();
        f.take(MAX_INDEX + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| RegistryError::io("read", &path, e))?;
        if bytes.len() as u64 > MAX_INDEX {
            return Err(corrupt(format!("larger than {MAX_INDEX} bytes")));
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            corrupt(format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ))
        })
    }

    /// Applies `f` under the index lock and writes the result atomically
    /// (temporary file, fsync, rename, fsync directory).
    fn update(&self, f: impl FnOnce(&mut Index)) -> Result<(), RegistryError> {
        Home::ensure_dir(&self.dir).map_err(|e| {
            RegistryError::io(
                "create directory",
                &self.dir,
                std::io::Error::other(e.to_string()),
            )
        })?;
        let _lock = lock_file(&self.dir.join("index.json.lock"))?;
        let mut idx = self.load()?;
        f(&mut idx);
        let path = self.index_path();
        let mut json = serde_json::to_vec_pretty(&idx)
            .map_err(|e| RegistryError::io("serialize", &path, std::io::Error::other(e)))?;
        json.push(b'\n');
        let mut tmp = tempfile::Builder::new()
            .prefix(".index.json.")
            .tempfile_in(&self.dir)
            .map_err(|e| RegistryError::io("create temporary file in", &self.dir, e))?;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .and_then(|_| tmp.write_all(&json))
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| RegistryError::io("write", tmp.path().to_path_buf(), e))?;
        tmp.persist(&path)
            .map_err(|e| RegistryError::io("rename into place", &path, e.error))?;
        sync_dir(&self.dir)
    }
}

/// Opens and locks (exclusively, blocking) a lock file.
pub(crate) fn lock_file(path: &Path) -> Result<File, RegistryError> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| RegistryError::io("open lock file", path, e))?;
    f.lock().map_err(|e| RegistryError::io("lock", path, e))?;
    Ok(f)
}

/// fsyncs a directory, so a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), RegistryError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RegistryError::io("sync directory", dir, e))
}

/// (size, mtime seconds) of a file; for a LinuxKit `NAME`, of its kernel.
fn file_stamp(image: &Path) -> Option<(u64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let p = match crate::image::resolve_kernel_image(image) {
        Some(k) => k.kernel,
        None => image.to_path_buf(),
    };
    fs::metadata(p).ok().map(|m| (m.len(), m.mtime()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(store: &ImageStore, reference: &str, hex: &str) -> StoredImage {
        let dir = store.content_dir(hex);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("g.qcow2"), b"12345").unwrap();
        StoredImage {
            reference: reference.into(),
            digest: format!("sha256:{hex}"),
            format: ImageFormat::Qcow2,
            path: dir.join("g.qcow2"),
            files: vec![StoredFile {
                role: Role::Disk,
                name: "g.qcow2".into(),
                digest: format!("sha256:{}", "b".repeat(64)),
                size: 5,
            }],
            size: 5,
            pulled: Utc::now(),
        }
    }

    #[test]
    fn index_round_trips_and_checks_files() {
        let d = tempfile::tempdir().unwrap();
        let store = ImageStore::new(&Home::new(d.path()));
        let hex = "a".repeat(64);
        let img = image(&store, "localhost:5000/vm/g:1", &hex);
        store.record(&img).unwrap();
        let r = super::super::ImageRef::parse("localhost:5000/vm/g:1").unwrap();
        assert_eq!(store.get(&r).unwrap().unwrap(), img);
        // The same content by digest.
        let by_digest =
            super::super::ImageRef::parse(&format!("localhost:5000/vm/g@sha256:{hex}")).unwrap();
        assert_eq!(store.get(&by_digest).unwrap().unwrap().path, img.path);
        assert_eq!(
            store.find_by_path(&img.path).unwrap().unwrap().reference,
            img.reference
        );
        let mode = fs::metadata(store.index_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let raw: serde_json::Value =
            serde_json::from_slice(&fs::read(store.index_path()).unwrap()).unwrap();
        assert_eq!(
            raw["images"]["localhost:5000/vm/g:1"]["path"],
            format!("sha256/{hex}/g.qcow2")
        );
        // A missing or truncated file means "not present".
        fs::write(&img.path, b"12").unwrap();
        assert!(store.get(&r).unwrap().is_none());
    }

    #[test]
    fn corrupt_index_is_named_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let store = ImageStore::new(&Home::new(d.path()));
        fs::create_dir_all(store.dir()).unwrap();
        fs::write(store.index_path(), b"{\"images\": ").unwrap();
        let img = image(&store, "localhost:5000/a:b", &"c".repeat(64));
        let e = store.record(&img).unwrap_err().to_string();
        assert!(e.contains("index.json") && e.contains("corrupt"), "{e}");
        assert_eq!(fs::read(store.index_path()).unwrap(), b"{\"images\": ");
    }

    #[test]
    fn index_paths_outside_the_store_never_count() {
        let d = tempfile::tempdir().unwrap();
        let store = ImageStore::new(&Home::new(d.path()));
        let mut img = image(&store, "localhost:5000/a:b", &"d".repeat(64));
        img.path = d.path().join("elsewhere.qcow2");
        assert!(!store.is_complete(&img));
    }

    #[test]
    fn containerdisks_are_matched_by_unchanged_file() {
        let d = tempfile::tempdir().unwrap();
        let store = ImageStore::new(&Home::new(d.path()));
        let f = d.path().join("disk.qcow2");
        fs::write(&f, b"QFI\xfbxxxx").unwrap();
        store
            .record_containerdisk(&f, "localhost:5000/cd:1", "sha256:x", ImageFormat::Qcow2)
            .unwrap();
        assert_eq!(
            store.containerdisk_for(&f).unwrap().unwrap().reference,
            "localhost:5000/cd:1"
        );
        fs::write(&f, b"QFI\xfbxxxxyyyy").unwrap();
        assert!(store.containerdisk_for(&f).unwrap().is_none());
    }
}
