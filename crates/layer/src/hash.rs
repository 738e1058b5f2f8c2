//! Readers and writers that compute the sha256 digest and byte count of what
//! passes through them, so a stream is hashed in the same pass that moves it.

use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use kiln_graph::Digest;
use sha2::{Digest as _, Sha256};

/// Size of the chunks handed to the hashing thread.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the writer and its hashing thread.
const IN_FLIGHT: usize = 4;

/// A writer that hashes and counts everything written to the inner writer.
/// The sha256 runs on a thread of its own (fed with copies of the data in
/// 1 MiB chunks), so hashing overlaps with whatever produces and consumes the
/// stream instead of adding to it.
pub(crate) struct HashWriter<W> {
    inner: W,
    count: u64,
    hasher: Hasher,
}

enum Hasher {
    Threaded {
        chunk: Vec<u8>,
        to_thread: SyncSender<Vec<u8>>,
        /// Chunks the thread is done with, for reuse (fresh 1 MiB buffers
        /// would cost a page fault per 4 KiB).
        recycled: Receiver<Vec<u8>>,
        thread: JoinHandle<Sha256>,
    },
    /// When no thread could be started.
    Inline(Sha256),
}

impl<W: Write> HashWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        let (to_thread, chunks) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (recycle, recycled) = mpsc::channel::<Vec<u8>>();
        let spawned = thread::Builder::new()
            .name("kiln-sha256".into())
            .spawn(move || {
                let mut sha = Sha256::new();
                for mut chunk in chunks {
                    sha.update(&chunk);
                    chunk.clear();
                    let _ = recycle.send(chunk);
                }
                sha
            });
        let hasher = match spawned {
            Ok(thread) => Hasher::Threaded {
                chunk: Vec::with_capacity(CHUNK),
                to_thread,
                recycled,
                thread,
            },
            Err(_) => Hasher::Inline(Sha256::new()),
        };
        HashWriter {
            inner,
            count: 0,
            hasher,
        }
    }

    /// The inner writer, the digest of the bytes written and their count.
    pub(crate) fn finish(self) -> io::Result<(W, Digest, u64)> {
        let sha = match self.hasher {
            Hasher::Inline(sha) => sha,
            Hasher::Threaded {
                chunk,
                to_thread,
                thread,
                ..
            } => {
                let sent = to_thread.send(chunk).is_ok();
                drop(to_thread);
                match thread.join() {
                    Ok(sha) if sent => sha,
                    _ => return Err(hasher_gone()),
                }
            }
        };
        let digest = Digest::from_sha256(sha.finalize().into());
        Ok((self.inner, digest, self.count))
    }
}

fn hasher_gone() -> io::Error {
    io::Error::other("the sha256 thread stopped")
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        match &mut self.hasher {
            Hasher::Inline(sha) => sha.update(&buf[..n]),
            Hasher::Threaded {
                chunk,
                to_thread,
                recycled,
                ..
            } => {
                let mut data = &buf[..n];
                while !data.is_empty() {
                    let take = data.len().min(CHUNK - chunk.len());
                    chunk.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if chunk.len() == CHUNK {
                        let fresh = recycled
                            .try_recv()
                            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
                        let full = std::mem::replace(chunk, fresh);
                        to_thread.send(full).map_err(|_| hasher_gone())?;
                    }
                }
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes and counts everything read from the inner reader.
pub(crate) struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The inner reader, the digest of the bytes read and their count.
    pub(crate) fn finish(self) -> (R, Digest, u64) {
        let digest = Digest::from_sha256(self.hasher.finalize().into());
        (self.inner, digest, self.count)
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threaded_hashing_covers_many_chunks_and_odd_writes() {
        let data: Vec<u8> = (0..3 * CHUNK + 12345).map(|i| (i % 251) as u8).collect();
        let mut w = HashWriter::new(std::io::sink());
        for piece in data.chunks(100_003) {
            w.write_all(piece).unwrap();
        }
        let (_, digest, n) = w.finish().unwrap();
        assert_eq!((digest, n), (Digest::of(&data), data.len() as u64));
    }

    #[test]
    fn writer_and_reader_hash_what_passes_through() {
        let mut w = HashWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (bytes, digest, n) = w.finish().unwrap();
        assert_eq!(bytes, b"hello world");
        assert_eq!(n, 11);
        assert_eq!(digest, Digest::of(b"hello world"));

        let mut r = HashReader::new(&b"hello world"[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        let (_, digest, n) = r.finish();
        assert_eq!((digest, n), (Digest::of(b"hello world"), 11));
    }
}
