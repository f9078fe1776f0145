//! Fixed-size chunks between blocking tar code and the async transports,
//! through a small bounded channel, so a copy holds a few chunks in memory
//! whatever the file sizes.

use std::io::{self, Read, Write};

use tokio::sync::mpsc;

/// Chunks in flight between the two sides.
const DEPTH: usize = 2;

/// A `Write` for blocking code that hands `size`-byte chunks (the last one
/// shorter) to async code. Call `flush` at the end.
#[derive(Debug)]
pub(crate) struct ChunkWriter {
    tx: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    size: usize,
}

/// Creates a writer and the receiver its chunks arrive at.
pub(crate) fn chunk_writer(size: usize) -> (ChunkWriter, mpsc::Receiver<Vec<u8>>) {
    let (tx, rx) = mpsc::channel(DEPTH);
    (
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(size),
            size,
        },
        rx,
    )
}

impl ChunkWriter {
    fn send(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the copy stopped"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let take = data.len().min(self.size - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        if self.buf.len() == self.size {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.size));
            self.send(full)?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            self.send(rest)?;
        }
        Ok(())
    }
}

/// A `Read` for blocking code, fed chunks by async code; the end of the
/// stream is the sender being dropped.
#[derive(Debug)]
pub(crate) struct ChunkReader {
    rx: mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

/// Creates a reader and the sender that feeds it.
pub(crate) fn chunk_reader() -> (mpsc::Sender<Vec<u8>>, ChunkReader) {
    let (tx, rx) = mpsc::channel(DEPTH);
    (
        tx,
        ChunkReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        },
    )
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.blocking_recv() {
                Some(c) => {
                    self.cur = c;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_arrive_whole_and_in_order() {
        let (mut w, mut rx) = chunk_writer(4);
        let producer = tokio::task::spawn_blocking(move || {
            w.write_all(b"0123456789").unwrap();
            w.flush().unwrap();
        });
        let mut got = Vec::new();
        while let Some(c) = rx.recv().await {
            assert!(c.len() <= 4);
            got.push(c);
        }
        producer.await.unwrap();
        assert_eq!(got, [b"0123".to_vec(), b"4567".to_vec(), b"89".to_vec()]);

        let (tx, mut r) = chunk_reader();
        let consumer = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            all
        });
        for c in got {
            tx.send(c).await.unwrap();
        }
        drop(tx);
        assert_eq!(consumer.await.unwrap(), b"0123456789");
    }
}
