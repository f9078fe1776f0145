//! Serial console logs: reading them whole, and following them as they
//! grow. Following is driven by file-change notifications (inotify on
//! Linux), so new output arrives within milliseconds rather than at the next
//! poll; a slow timer remains only to notice that the VM has stopped.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// Reads the whole log. A container that never wrote output has an empty
/// log, not an error.
pub fn read_log(path: &Path) -> Result<Vec<u8>> {
    use crate::regular_file::{open_with, OpenError};
    // Not through a link, and never blocking on a FIFO in its place.
    let mut f = match open_with(path, std::fs::OpenOptions::new().read(true), false) {
        Ok(f) => f,
        Err(OpenError::Missing(_)) => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read log", path, e.into_io())),
    };
    let mut out = Vec::new();
    f.read_to_end(&mut out)
        .map_err(|e| Error::io("read log", path, e))?;
    Ok(out)
}

/// Checks whether the producer of the log is still running.
pub type Liveness = Box<dyn Fn() -> bool + Send + Sync>;

const LIVENESS_INTERVAL: Duration = Duration::from_millis(250);

/// A stream of a log file's content: what is there, then new output as it
/// is written, until the container stops (or the follower is dropped).
pub struct LogFollower {
    path: PathBuf,
    file: File,
    wake: mpsc::Receiver<()>,
    _watcher: Option<notify::RecommendedWatcher>,
    alive: Liveness,
    partial: Vec<u8>,
    ending: bool,
}

impl std::fmt::Debug for LogFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFollower")
            .field("path", &self.path)
            .finish()
    }
}

impl LogFollower {
    /// Follows `path` from its start; ends once `alive` returns false and
    /// the remaining output is drained. Creates the file (0600, like every
    /// file the runtime makes) if missing; refuses a link or a FIFO there.
    pub fn open(path: &Path, alive: Liveness) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = crate::regular_file::open_with(
            path,
            std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .mode(0o600),
            false,
        )
        .map_err(|e| Error::io("open log", path, e.into_io()))?;
        let (tx, wake) = mpsc::channel(1);
        // If notifications are unavailable we still work, by the timer.
        let watcher = notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
            let _ = tx.try_send(());
        })
        .ok()
        .and_then(|mut w| w.watch(path, RecursiveMode::NonRecursive).ok().map(|_| w));
        Ok(LogFollower {
            path: path.to_path_buf(),
            file,
            wake,
            _watcher: watcher,
            alive,
            partial: Vec::new(),
            ending: false,
        })
    }

    fn read_available(&mut self) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.file
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("read log", &self.path, e))?;
        Ok(buf)
    }

    /// The next piece of output, or `None` once the container has stopped
    /// and everything was delivered.
    pub async fn next_chunk(&mut self) -> Option<Result<Vec<u8>>> {
        loop {
            match self.read_available() {
                Ok(b) if !b.is_empty() => return Some(Ok(b)),
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
            if self.ending {
                return None;
            }
            if !(self.alive)() {
                // One more read picks up output written just before exit.
                self.ending = true;
                continue;
            }
            tokio::select! {
                _ = self.wake.recv() => {}
                _ = tokio::time::sleep(LIVENESS_INTERVAL) => {}
            }
        }
    }

    /// The next complete line (without `\n` or a trailing `\r`); at the end
    /// a final unterminated line is returned too.
    pub async fn next_line(&mut self) -> Option<Result<String>> {
        loop {
            if let Some(pos) = self.partial.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.partial.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Some(Ok(String::from_utf8_lossy(&line).into_owned()));
            }
            match self.next_chunk().await {
                Some(Ok(b)) => self.partial.extend_from_slice(&b),
                Some(Err(e)) => return Some(Err(e)),
                None if self.partial.is_empty() => return None,
                None => {
                    let rest = std::mem::take(&mut self.partial);
                    return Some(Ok(String::from_utf8_lossy(&rest).into_owned()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_followed_log_is_created_private_and_links_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("new.log");
        let f = LogFollower::open(&p, Box::new(|| false)).unwrap();
        drop(f);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let target = d.path().join("elsewhere");
        let link = d.path().join("link.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(LogFollower::open(&link, Box::new(|| false)).is_err());
        assert!(read_log(&link).is_err());
        assert!(!target.exists());
    }

    #[tokio::test]
    async fn follow_delivers_existing_then_new_lines_then_ends() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.log");
        std::fs::write(&p, "one\r\ntwo\n").unwrap();
        let alive = Arc::new(AtomicBool::new(true));
        let a = alive.clone();
        let mut f = LogFollower::open(&p, Box::new(move || a.load(Ordering::SeqCst))).unwrap();
        assert_eq!(f.next_line().await.unwrap().unwrap(), "one");
        assert_eq!(f.next_line().await.unwrap().unwrap(), "two");
        let p2 = p.clone();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut w = std::fs::OpenOptions::new().append(true).open(&p2).unwrap();
            w.write_all(b"three\nfour").unwrap();
        });
        let started = std::time::Instant::now();
        assert_eq!(f.next_line().await.unwrap().unwrap(), "three");
        assert!(started.elapsed() < Duration::from_secs(5));
        writer.await.unwrap();
        alive.store(false, Ordering::SeqCst);
        assert_eq!(f.next_line().await.unwrap().unwrap(), "four");
        assert!(f.next_line().await.is_none());
    }
}
