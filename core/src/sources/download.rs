//! The verified, resumable download every source uses.
//!
//! Bytes go to `.<name>.<hash prefix>.part` in the images directory while a
//! hasher thread computes their sha256 (as they stream, overlapping the
//! network), and the file is renamed to `<name>` only when it is complete
//! and its checksum matches. An interrupted download keeps its partial file
//! and resumes it with an HTTP `Range` request; a server that ignores
//! `Range` (answers 200) restarts it cleanly from byte 0. The partial's name
//! carries the expected checksum, so a partial of another release is never
//! resumed into this one.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::SourceError;

/// Receives `(downloaded, total)` in bytes as a download advances; `total`
/// is `None` when neither the source nor the server says.
pub type Progress<'a> = &'a mut (dyn FnMut(u64, Option<u64>) + Send);

/// Attempts per download: transient failures resume where they stopped.
const MAX_ATTEMPTS: u32 = 4;
/// Chunks in flight between the network and the writer/hasher threads.
const PIPE_DEPTH: usize = 64;

/// What to download and how to check it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Where to GET it.
    pub url: &'a str,
    /// Extra headers.
    pub headers: &'a [(String, String)],
    /// Bearer token, sent as `Authorization` (reqwest drops it on redirects
    /// to another host).
    pub bearer: Option<&'a str>,
    /// File name in the target directory; must be a plain name.
    pub file_name: &'a str,
    /// Expected sha256, lowercase hex.
    pub sha256: &'a str,
    /// Expected size, when known (used for progress before the server
    /// answers, and to recognise a partial file that is already complete).
    pub size: Option<u64>,
}

/// A completed, verified download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// The installed file.
    pub path: PathBuf,
    /// Its sha256 (equal to the expected one).
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes that were already on disk from an earlier attempt.
    pub resumed_from: u64,
}

/// Checks that `name` (from a server or a remote manifest) is a plain file
/// name that stays inside the directory it is joined to.
pub fn safe_file_name<'a>(name: &'a str, origin: &str) -> Result<&'a str, SourceError> {
    let refuse = |reason| SourceError::UnsafeName {
        name: name.to_string(),
        origin: origin.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(refuse("it is empty"));
    }
    if name.len() > 255 {
        return Err(refuse("it is longer than 255 bytes"));
    }
    if name.contains(['/', '\\']) {
        return Err(refuse("it contains a path separator"));
    }
    if name.chars().any(char::is_control) {
        return Err(refuse("it contains a control character"));
    }
    if name.starts_with('.') {
        // Covers "." and "..", and keeps clear of our hidden partial files.
        return Err(refuse("it starts with a dot"));
    }
    let mut parts = Path::new(name).components();
    match (parts.next(), parts.next()) {
        (Some(Component::Normal(_)), None) => Ok(name),
        _ => Err(refuse("it is not a single path component")),
    }
}

/// The partial file for `name` with expected checksum `sha256`.
pub fn partial_path(dir: &Path, name: &str, sha256: &str) -> PathBuf {
    dir.join(format!(".{name}.{}.part", &sha256[..sha256.len().min(16)]))
}

/// Downloads `req` into `dir` (see the module docs). Transient failures are
/// retried, each retry resuming the partial file.
pub async fn fetch(
    client: &reqwest::Client,
    req: &Request<'_>,
    dir: &Path,
    progress: Progress<'_>,
) -> Result<Downloaded, SourceError> {
    let name = safe_file_name(req.file_name, req.url)?;
    let sha256 = super::checksum::parse_hex(req.url, req.sha256)?;
    crate::home::Home::ensure_dir(dir).map_err(|e| match e {
        crate::Error::Io { op, path, error } => SourceError::io(op, path, error),
        other => SourceError::io(
            "create directory",
            dir,
            std::io::Error::other(other.to_string()),
        ),
    })?;
    let _lock = lock(&dir.join(format!(".{name}.lock"))).await?;
    let partial = partial_path(dir, name, &sha256);
    remove_stale_partials(dir, name, &partial);
    let target = dir.join(name);
    let mut attempt = 1;
    loop {
        match fetch_once(client, req, &partial, &target, &sha256, &mut *progress).await {
            Err(e) if e.is_transient() && attempt < MAX_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Holds an exclusive lock so two installs never write one partial file.
async fn lock(path: &Path) -> Result<File, SourceError> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| SourceError::io("open lock file", path, e))?;
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || f.lock().map(|_| f))
        .await
        .map_err(|e| SourceError::io("lock", &p, std::io::Error::other(e)))?
        .map_err(|e| SourceError::io("lock", &p, e))
}

/// Deletes partial files of other releases of `name`.
fn remove_stale_partials(dir: &Path, name: &str, keep: &Path) {
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let n = e.file_name();
        let n = n.to_string_lossy();
        if n.starts_with(&prefix) && n.ends_with(".part") && e.path() != keep {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Hashes the first `len` bytes of a partial file.
async fn hash_prefix(path: &Path, len: u64) -> Result<Sha256, SourceError> {
    let p = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut h = Sha256::new();
        let mut f = File::open(&p)?.take(len);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(h);
            }
            h.update(&buf[..n]);
        }
    })
    .await
    .map_err(|e| SourceError::io("hash", path, std::io::Error::other(e)))?
    .map_err(|e| SourceError::io("hash", path, e))
}

/// Parses `Content-Range: bytes START-END/TOTAL` into (START, TOTAL).
fn content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

fn status_error(url: &str, status: u16) -> SourceError {
    let hint = match status {
        401 | 403 => "; check access (for GitHub set GITHUB_TOKEN; a 403 may be its rate limit)",
        404 => "; is the URL or repository right?",
        _ => "",
    };
    SourceError::Status {
        url: url.to_string(),
        status,
        hint: hint.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn fetch_once(
    client: &reqwest::Client,
    req: &Request<'_>,
    partial: &Path,
    target: &Path,
    sha256: &str,
    progress: Progress<'_>,
) -> Result<Downloaded, SourceError> {
    let mut offset = fs::symlink_metadata(partial).map(|m| m.len()).unwrap_or(0);
    if req.size.is_some_and(|s| offset > s) {
        offset = 0;
    }
    let mut http = client.get(req.url);
    for (k, v) in req.headers {
        http = http.header(k.as_str(), v.as_str());
    }
    if let Some(t) = req.bearer {
        http = http.bearer_auth(t);
    }
    if offset > 0 {
        http = http.header(reqwest::header::RANGE, format!("bytes={offset}-"));
    }
    let resp = http
        .send()
        .await
        .map_err(|e| SourceError::http(req.url, e))?;
    let status = resp.status().as_u16();
    let (start, total) = match status {
        206 if offset > 0 => {
            let cr = resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(content_range);
            match cr {
                Some((s, total)) if s == offset => (offset, total.or(req.size)),
                _ => {
                    // A range we did not ask for: start over rather than
                    // splice bytes from the wrong place.
                    let _ = fs::remove_file(partial);
                    return Err(SourceError::Interrupted {
                        url: req.url.to_string(),
                        received: 0,
                        reason: "server answered a different byte range; restarting".into(),
                    });
                }
            }
        }
        200 => (0, resp.content_length().or(req.size)),
        416 if offset > 0 => {
            if req.size == Some(offset) {
                // Everything is already here: only verification is left.
                return finish(
                    partial,
                    target,
                    sha256,
                    offset,
                    hash_prefix(partial, offset).await?,
                    offset,
                );
            }
            let _ = fs::remove_file(partial);
            return Err(SourceError::Interrupted {
                url: req.url.to_string(),
                received: 0,
                reason: "server refused to resume; restarting".into(),
            });
        }
        s => return Err(status_error(req.url, s)),
    };
    let hasher = if start > 0 {
        hash_prefix(partial, start).await?
    } else {
        Sha256::new()
    };
    let mut opts = OpenOptions::new();
    opts.create(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW);
    if start == 0 {
        opts.truncate(true);
    } else {
        opts.append(true);
    }
    let file = opts
        .open(partial)
        .map_err(|e| SourceError::io("create", partial, e))?;
    if start > 0 {
        // Drop any torn tail beyond what was hashed.
        file.set_len(start)
            .map_err(|e| SourceError::io("truncate", partial, e))?;
    }

    let pipe = Pipe::start(file, hasher);
    let mut received = start;
    progress(received, total);
    let mut stream = resp.bytes_stream();
    let mut broke = None;
    let mut oversized = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                received += chunk.len() as u64;
                // A server sending more than the published size is not
                // allowed to fill the disk before the checksum says no.
                if req.size.is_some_and(|s| received > s) {
                    oversized = true;
                    break;
                }
                if !pipe.send(chunk).await {
                    break; // the writer failed; its error is reported below
                }
                progress(received, total);
            }
            Err(e) => {
                broke = Some(SourceError::http(req.url, e).to_string());
                break;
            }
        }
    }
    let hasher = pipe
        .finish()
        .await
        .map_err(|e| SourceError::io("write", partial, e))?;
    if oversized {
        let _ = fs::remove_file(partial);
        return Err(SourceError::BadResponse {
            url: req.url.to_string(),
            reason: format!(
                "the body is longer than the {} bytes published; discarded",
                req.size.unwrap_or(0)
            ),
        });
    }
    if broke.is_none() && total.is_some_and(|t| received < t) {
        broke = Some(format!(
            "body ended at {received} of {} bytes",
            total.unwrap_or(0)
        ));
    }
    if let Some(reason) = broke {
        return Err(SourceError::Interrupted {
            url: req.url.to_string(),
            received,
            reason,
        });
    }
    finish(partial, target, sha256, received, hasher, start)
}

/// Where received chunks go: a writer thread that owns the file and a
/// hasher thread, so writing, hashing and receiving all overlap. Generic
/// over the chunk type so reqwest's `Bytes` is shared, not copied.
struct Pipe<C> {
    to_file: tokio::sync::mpsc::Sender<C>,
    to_hash: tokio::sync::mpsc::Sender<C>,
    writer: tokio::task::JoinHandle<std::io::Result<()>>,
    hasher: tokio::task::JoinHandle<Sha256>,
}

impl<C: AsRef<[u8]> + Clone + Send + 'static> Pipe<C> {
    fn start(file: File, hasher: Sha256) -> Self {
        let (to_file, mut file_rx) = tokio::sync::mpsc::channel::<C>(PIPE_DEPTH);
        let (to_hash, mut hash_rx) = tokio::sync::mpsc::channel::<C>(PIPE_DEPTH);
        let writer = tokio::task::spawn_blocking(move || {
            let mut file = file;
            let mut writeback = Writeback::new(&file);
            while let Some(chunk) = file_rx.blocking_recv() {
                file.write_all(chunk.as_ref())?;
                writeback.advance(chunk.as_ref().len());
            }
            // Durable before it can be renamed into place.
            file.sync_all()
        });
        let hasher = tokio::task::spawn_blocking(move || {
            let mut hasher = hasher;
            while let Some(chunk) = hash_rx.blocking_recv() {
                hasher.update(chunk.as_ref());
            }
            hasher
        });
        Pipe {
            to_file,
            to_hash,
            writer,
            hasher,
        }
    }

    /// Hands a chunk on; `false` when the writer has failed.
    async fn send(&self, chunk: C) -> bool {
        self.to_hash.send(chunk.clone()).await.is_ok() && self.to_file.send(chunk).await.is_ok()
    }

    /// Waits for both threads: the file synced, the hash of everything.
    async fn finish(self) -> std::io::Result<Sha256> {
        drop(self.to_file);
        drop(self.to_hash);
        self.writer.await.map_err(std::io::Error::other)??;
        self.hasher.await.map_err(std::io::Error::other)
    }
}

/// Start writeback every this many bytes, so the final fsync has little
/// left to flush.
const WRITEBACK_STEP: u64 = 32 << 20;

/// Asks the kernel to start writing out what we wrote (Linux
/// `sync_file_range`, non-blocking), so the fsync before the rename does not
/// have to flush a whole image at once. Elsewhere it does nothing.
struct Writeback {
    #[cfg(target_os = "linux")]
    fd: i32,
    #[cfg(target_os = "linux")]
    written: u64,
    #[cfg(target_os = "linux")]
    started: u64,
}

impl Writeback {
    fn new(file: &File) -> Self {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let start = file.metadata().map(|m| m.len()).unwrap_or(0);
            Writeback {
                fd: file.as_raw_fd(),
                written: start,
                started: start,
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = file;
            Writeback {}
        }
    }

    fn advance(&mut self, n: usize) {
        #[cfg(target_os = "linux")]
        {
            self.written += n as u64;
            let flushed = self.written;
            if flushed >= self.started + WRITEBACK_STEP {
                // SAFETY: a plain syscall on a file descriptor that the
                // writer thread keeps open for as long as it uses us.
                unsafe {
                    libc::sync_file_range(
                        self.fd,
                        self.started as i64,
                        (flushed - self.started) as i64,
                        libc::SYNC_FILE_RANGE_WRITE,
                    );
                }
                self.started = flushed;
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = n;
    }
}

/// Verifies a complete partial file and moves it into place.
fn finish(
    partial: &Path,
    target: &Path,
    sha256: &str,
    size: u64,
    hasher: Sha256,
    resumed_from: u64,
) -> Result<Downloaded, SourceError> {
    let actual = hex(&hasher.finalize());
    if actual != sha256 {
        let _ = fs::remove_file(partial);
        return Err(SourceError::ChecksumMismatch {
            path: target.to_path_buf(),
            expected: sha256.to_string(),
            actual,
        });
    }
    fs::rename(partial, target).map_err(|e| SourceError::io("rename into place", target, e))?;
    if let Some(dir) = target.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| SourceError::io("sync directory", dir, e))?;
    }
    Ok(Downloaded {
        path: target.to_path_buf(),
        sha256: actual,
        size,
        resumed_from,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_are_refused() {
        for bad in [
            "",
            ".",
            "..",
            "../x.qcow2",
            "a/b",
            "/etc/passwd",
            "..\\x",
            "a\\b",
            "x\0y",
            ".hidden",
            "a\nb",
        ] {
            let e = safe_file_name(bad, "http://h/m.json").unwrap_err();
            assert!(matches!(e, SourceError::UnsafeName { .. }), "{bad:?}: {e}");
            assert!(e.to_string().contains("http://h/m.json"), "{e}");
        }
        let long = "a".repeat(256);
        assert!(safe_file_name(&long, "o").is_err());
        for ok in ["core-devops-linux-amd64.qcow2", "a..b", "x y.img"] {
            assert_eq!(safe_file_name(ok, "o").unwrap(), ok);
        }
    }

    #[tokio::test]
    async fn a_body_longer_than_published_is_discarded() {
        use crate::sources::test_server::{Reply, TestServer};
        let srv = TestServer::start();
        srv.route("/x", Reply::ok(vec![1u8; 100_000]));
        let d = tempfile::tempdir().unwrap();
        let url = srv.url("/x");
        let sha = "a".repeat(64);
        let req = Request {
            url: &url,
            headers: &[],
            bearer: None,
            file_name: "x.qcow2",
            sha256: &sha,
            size: Some(10),
        };
        let e = fetch(&reqwest::Client::new(), &req, d.path(), &mut |_, _| {})
            .await
            .unwrap_err();
        assert!(matches!(e, SourceError::BadResponse { .. }), "{e}");
        assert!(e.to_string().contains("longer than the 10 bytes"), "{e}");
        let left: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".lock"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn content_range_header() {
        assert_eq!(content_range("bytes 100-199/200"), Some((100, Some(200))));
        assert_eq!(content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(content_range("bytes */200"), None);
        assert_eq!(content_range("items 1-2/3"), None);
    }

    #[test]
    fn partial_names_carry_the_checksum() {
        let d = Path::new("/i");
        let a = partial_path(d, "x.qcow2", &"a".repeat(64));
        let b = partial_path(d, "x.qcow2", &"b".repeat(64));
        assert_ne!(a, b);
        assert!(
            a.starts_with(d)
                && a.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".x.qcow2.")
        );
    }
}
