//! Upload bodies: files (and small byte strings around them, for tar
//! headers) streamed once from disk while a blocking thread reads and
//! hashes them, so a push reads each image once and the digest is ready
//! when the last byte is sent. And the progress ticker that transfers
//! report through.

use std::future::Future;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::sources::download::Progress;

/// Bytes read from disk per chunk.
const CHUNK: usize = 1 << 20;
/// Chunks read ahead of the network.
const DEPTH: usize = 8;

/// One piece of a body.
#[derive(Debug, Clone)]
pub(crate) enum Part {
    /// Bytes in memory (a tar header, padding).
    Bytes(Vec<u8>),
    /// The first `len` bytes of a file.
    File {
        /// The file.
        path: PathBuf,
        /// How many bytes it must provide.
        len: u64,
    },
}

/// A body made of parts, with its total length known up front.
#[derive(Debug, Clone, Default)]
pub(crate) struct Body {
    parts: Vec<Part>,
    len: u64,
}

/// A body being sent: the stream for reqwest, and the reader that yields
/// its digest once everything was read.
pub(crate) struct Started {
    /// The request body.
    pub body: reqwest::Body,
    /// `sha256:<hex>` of what was read, or the read error.
    pub digest: tokio::task::JoinHandle<std::io::Result<String>>,
}

impl Body {
    /// A body of one whole file.
    pub fn file(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let mut b = Body::default();
        b.push_file(path)?;
        Ok(b)
    }

    /// Appends bytes.
    pub fn push_bytes(&mut self, bytes: Vec<u8>) {
        self.len += bytes.len() as u64;
        self.parts.push(Part::Bytes(bytes));
    }

    /// Appends a whole file (its current size).
    pub fn push_file(&mut self, path: impl Into<PathBuf>) -> std::io::Result<u64> {
        let path = path.into();
        let len = std::fs::metadata(&path)?.len();
        self.len += len;
        self.parts.push(Part::File { path, len });
        Ok(len)
    }

    /// The first file of the body (for messages).
    pub fn first_file(&self) -> Option<PathBuf> {
        self.parts.iter().find_map(|p| match p {
            Part::File { path, .. } => Some(path.clone()),
            Part::Bytes(_) => None,
        })
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Starts the reader thread; `sent` counts bytes handed to the network.
    pub fn start(self, sent: Arc<AtomicU64>) -> Started {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(DEPTH);
        let digest = tokio::task::spawn_blocking(move || {
            let r = read_parts(&self.parts, &tx);
            if let Err(e) = &r {
                // The request sees the failure too and stops.
                let _ = tx.blocking_send(Err(std::io::Error::new(e.kind(), e.to_string())));
            }
            r
        });
        let stream = futures_util::stream::unfold((rx, sent), |(mut rx, sent)| async move {
            let item = rx.recv().await?;
            if let Ok(chunk) = &item {
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            Some((item, (rx, sent)))
        });
        Started {
            body: reqwest::Body::wrap_stream(stream),
            digest,
        }
    }
}

/// Reads every part in order into `tx`, hashing as it goes.
fn read_parts(
    parts: &[Part],
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let gone = || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped");
    for part in parts {
        match part {
            Part::Bytes(b) => {
                hasher.update(b);
                tx.blocking_send(Ok(b.clone())).map_err(|_| gone())?;
            }
            Part::File { path, len } => {
                let named = |e: std::io::Error| {
                    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                };
                let mut f = std::fs::File::open(path).map_err(named)?.take(*len);
                let mut left = *len;
                while left > 0 {
                    let mut buf = vec![0u8; CHUNK.min(left as usize)];
                    let n = f.read(&mut buf).map_err(named)?;
                    if n == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("{} shrank while it was being pushed", path.display()),
                        ));
                    }
                    buf.truncate(n);
                    left -= n as u64;
                    hasher.update(&buf);
                    tx.blocking_send(Ok(buf)).map_err(|_| gone())?;
                }
            }
        }
    }
    Ok(format!("sha256:{}", super::hex(&hasher.finalize())))
}

#[cfg(test)]
pub(crate) fn read_parts_for_test(
    body: &Body,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
) -> std::io::Result<String> {
    read_parts(&body.parts, tx)
}

/// Runs `fut`, reporting the sum of `counters` against `total` through
/// `progress` every 100 ms and once at the end.
pub(crate) async fn with_progress<F: Future>(
    fut: F,
    counters: &[Arc<AtomicU64>],
    total: u64,
    mut progress: Option<Progress<'_>>,
) -> F::Output {
    let sum = || {
        counters
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum::<u64>()
    };
    let report = |p: &mut Option<Progress<'_>>| {
        if let Some(p) = p {
            p(sum().min(total), Some(total));
        }
    };
    tokio::pin!(fut);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            out = &mut fut => {
                report(&mut progress);
                return out;
            }
            _ = tick.tick() => report(&mut progress),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a body's parts the way [`Body::start`] does, collecting them.
    async fn read_all(b: Body) -> (Vec<u8>, bool, std::io::Result<String>) {
        let (tx, mut rx) = tokio::sync::mpsc::channel(DEPTH);
        let parts = b.parts.clone();
        let reader = tokio::task::spawn_blocking(move || read_parts(&parts, &tx));
        let (mut got, mut failed) = (Vec::new(), false);
        while let Some(c) = rx.recv().await {
            match c {
                Ok(c) => got.extend_from_slice(&c),
                Err(_) => failed = true,
            }
        }
        (got, failed, reader.await.unwrap())
    }

    #[tokio::test]
    async fn parts_stream_in_order_with_their_digest() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let mut b = Body::default();
        b.push_bytes(b"head".to_vec());
        b.push_file(&p).unwrap();
        b.push_bytes(b"tail".to_vec());
        assert_eq!(b.len(), data.len() as u64 + 8);
        let (got, failed, digest) = read_all(b).await;
        let mut want = b"head".to_vec();
        want.extend_from_slice(&data);
        want.extend_from_slice(b"tail");
        assert!(!failed);
        assert_eq!(got, want);
        assert_eq!(digest.unwrap(), super::super::digest_of(&want));
    }

    #[tokio::test]
    async fn a_file_that_shrinks_fails_the_body() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, vec![1u8; 100]).unwrap();
        let b = Body::file(&p).unwrap();
        std::fs::write(&p, vec![1u8; 10]).unwrap();
        let (_, _, digest) = read_all(b).await;
        let e = digest.unwrap_err();
        assert!(e.to_string().contains("shrank"), "{e}");
    }
}
