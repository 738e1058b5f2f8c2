//! Content blobs: `blobs/sha256/<hex>`, written through `ingest/` and renamed into
//! place only once complete and verified.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use kiln_graph::Digest;
use sha2::{Digest as _, Sha256};

use crate::error::{IoContext, StoreError};
use crate::fsutil;
use crate::store::{BLOBS, INGEST, Inner, Store};

const WRITE_BUFFER: usize = 256 * 1024;
/// A blob this large or larger is synced to disk in the background while it is
/// written, one such step at a time, so the sync at commit has little left to do.
const SYNC_STEP: u64 = 32 << 20;

impl Store {
    /// Whether a blob with this digest is committed.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        fs::symlink_metadata(self.inner.blob_path(digest)).is_ok_and(|m| m.is_file())
    }

    /// Where the blob with this digest is (or would be).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.inner.blob_path(digest)
    }

    /// Reads a whole blob and checks that its content has the digest it is named by.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.inner.blob_path(digest);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::BlobNotFound {
                    digest: digest.clone(),
                    path,
                });
            }
            Err(e) => return Err(e).io_context("read blob", path),
        };
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(StoreError::BlobCorrupt {
                expected: digest.clone(),
                actual,
                path,
            });
        }
        Ok(bytes)
    }

    /// Opens a blob for streaming. The content is not verified (it was verified when
    /// committed); hash it while reading if it matters.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.inner.blob_path(digest);
        match File::open(&path) {
            Ok(file) => Ok(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::BlobNotFound {
                digest: digest.clone(),
                path,
            }),
            Err(e) => Err(e).io_context("open blob", path),
        }
    }

    /// Stores `bytes` as a blob and returns its digest. With `expected`, a mismatch
    /// fails before anything is written. A blob that exists already is not rewritten.
    pub fn write_blob(
        &self,
        bytes: &[u8],
        expected: Option<&Digest>,
    ) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if let Some(expected) = expected
            && expected != &digest
        {
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
        if self.has_blob(&digest) {
            return Ok(digest);
        }
        let mut writer = self.blob_writer()?;
        let path = writer.path.clone();
        writer.write_all(bytes).io_context("write blob", path)?;
        writer.commit(Some(&digest), Some(bytes.len() as u64))
    }

    /// Starts writing a blob of not yet known digest; see [`BlobWriter`].
    pub fn blob_writer(&self) -> Result<BlobWriter, StoreError> {
        self.new_blob_writer(Some(Sha256::new()))
    }

    /// Starts writing a blob whose digest the caller computes itself while producing
    /// the bytes (a compressor hashing its output, say): the writer does not hash
    /// them again, and [`commit`](BlobWriter::commit) takes the caller's digest as
    /// the blob's, so it must be given and must be the digest of exactly the bytes
    /// written.
    pub fn prehashed_blob_writer(&self) -> Result<BlobWriter, StoreError> {
        self.new_blob_writer(None)
    }

    fn new_blob_writer(&self, hasher: Option<Sha256>) -> Result<BlobWriter, StoreError> {
        let ingest = self.inner.dir(INGEST);
        let (name, path, file) = create_unique(&ingest)?;
        self.inner.add_live(name.clone());
        Ok(BlobWriter {
            inner: Arc::clone(&self.inner),
            file: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            name,
            path,
            hasher,
            size: 0,
            synced_to: 0,
            syncer: None,
        })
    }
}

fn create_unique(dir: &std::path::Path) -> Result<(OsString, PathBuf, File), StoreError> {
    let mut attempts = 0;
    loop {
        let name = OsString::from(fsutil::unique_name(""));
        let path = dir.join(&name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((name, path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => attempts += 1,
            Err(e) => return Err(e).io_context("create ingest file", path),
        }
    }
}

/// A blob being written: bytes go to a temp file in `ingest/` and through a sha256
/// hasher (unless the caller hashes them, see [`Store::prehashed_blob_writer`]).
/// [`commit`](BlobWriter::commit) makes it visible; dropping the writer without
/// committing removes the temp file.
pub struct BlobWriter {
    inner: Arc<Inner>,
    file: Option<BufWriter<File>>,
    name: OsString,
    path: PathBuf,
    /// `None` for a prehashed writer.
    hasher: Option<Sha256>,
    size: u64,
    /// How far the background sync has been asked to go.
    synced_to: u64,
    syncer: Option<Syncer>,
}

/// A thread that syncs a large blob's data while the rest is being written, so
/// that the disk works alongside whatever produces the blob (a compressor, a
/// download) instead of after it.
struct Syncer {
    kick: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Syncer {
    fn start(file: &File) -> Option<Syncer> {
        let file = file.try_clone().ok()?;
        // One pending request is enough: a sync covers everything written so far.
        let (kick, requests) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("kiln-blob-sync".into())
            .spawn(move || {
                while requests.recv().is_ok() {
                    // Errors show again in the sync at commit, which reports them.
                    let _ = file.sync_data();
                }
            })
            .ok()?;
        Some(Syncer { kick, thread })
    }

    fn finish(self) {
        drop(self.kick);
        let _ = self.thread.join();
    }
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("path", &self.path)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Finishes the blob: syncs it, checks the size and digest the caller expects (if
    /// given; a prehashed writer needs the digest and takes it as the blob's), and
    /// renames it to `blobs/sha256/<hex>`. On a mismatch the temp file is
    /// removed and nothing becomes visible. A blob that exists already counts as
    /// success.
    pub fn commit(
        mut self,
        expected_digest: Option<&Digest>,
        expected_size: Option<u64>,
    ) -> Result<Digest, StoreError> {
        let writer = self.file.take().ok_or_else(|| StoreError::Io {
            op: "commit blob",
            path: self.path.clone(),
            source: io::Error::other("writer already finished"),
        })?;
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .io_context("write blob", &self.path)?;
        if let Some(syncer) = self.syncer.take() {
            syncer.finish();
        }
        let digest = match self.hasher.take() {
            Some(hasher) => Digest::from_sha256(hasher.finalize().into()),
            None => expected_digest.cloned().ok_or_else(|| StoreError::Io {
                op: "commit blob",
                path: self.path.clone(),
                source: io::Error::other("a prehashed blob needs the digest its writer computed"),
            })?,
        };
        if let Some(expected) = expected_size
            && expected != self.size
        {
            return Err(StoreError::SizeMismatch {
                expected,
                actual: self.size,
                actual_digest: digest,
            });
        }
        if let Some(expected) = expected_digest
            && expected != &digest
        {
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
        let target = self.inner.blob_path(&digest);
        let _no_gc = self.inner.gc_read();
        if fs::symlink_metadata(&target).is_ok() {
            return Ok(digest);
        }
        file.sync_all().io_context("sync blob", &self.path)?;
        drop(file);
        if fsutil::rename_no_replace(&self.path, &target).io_context("commit blob", &target)? {
            let dir = self.inner.dir(BLOBS);
            fsutil::fsync_dir(&dir).io_context("sync directory", dir)?;
        }
        Ok(digest)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob writer already finished"))?;
        let n = file.write(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        self.size += n as u64;
        if self.size >= self.synced_to + SYNC_STEP {
            self.synced_to = self.size;
            if self.syncer.is_none() {
                self.syncer = Syncer::start(file.get_ref());
            }
            if let Some(syncer) = &self.syncer {
                // Full: a sync is pending and will cover this data too.
                let _ = syncer.kick.try_send(());
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(syncer) = self.syncer.take() {
            syncer.finish();
        }
        // After a successful rename the temp name is gone and this is a no-op.
        self.file = None;
        let _ = fs::remove_file(&self.path);
        self.inner.remove_live(&self.name);
    }
}

/// Hashes a reader to the end (used to verify streamed content).
#[cfg(test)]
fn digest_of_reader(mut reader: impl io::Read) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Digest::from_sha256(hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &std::path::Path) -> Vec<OsString> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    }

    #[test]
    fn a_prehashed_blob_is_committed_under_the_callers_digest_which_it_needs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.prehashed_blob_writer().unwrap();
        w.write_all(b"compressed").unwrap();
        let d = w
            .commit(Some(&Digest::of(b"compressed")), Some(10))
            .unwrap();
        assert_eq!(d, Digest::of(b"compressed"));
        assert_eq!(store.read_blob(&d).unwrap(), b"compressed");

        let mut w = store.prehashed_blob_writer().unwrap();
        w.write_all(b"no digest").unwrap();
        assert!(matches!(
            w.commit(None, Some(9)),
            Err(StoreError::Io { .. })
        ));
        assert!(names(&dir.path().join("ingest")).is_empty());
        let mut w = store.prehashed_blob_writer().unwrap();
        w.write_all(b"short").unwrap();
        assert!(matches!(
            w.commit(Some(&Digest::of(b"short")), Some(6)),
            Err(StoreError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn a_blob_large_enough_to_be_synced_while_written_commits_whole() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let mut expected = Sha256::new();
        let mut w = store.blob_writer().unwrap();
        for i in 0..(SYNC_STEP >> 20) * 2 + 3 {
            let mut c = chunk.clone();
            c[0] = i as u8;
            w.write_all(&c).unwrap();
            expected.update(&c);
        }
        assert!(w.syncer.is_some(), "no background sync for a large blob");
        let size = w.size();
        let d = w.commit(None, Some(size)).unwrap();
        assert_eq!(d, Digest::from_sha256(expected.finalize().into()));
        assert_eq!(fs::metadata(store.blob_path(&d)).unwrap().len(), size);
        // Dropped uncommitted, a writer that started syncing leaves nothing.
        let mut w = store.blob_writer().unwrap();
        for _ in 0..(SYNC_STEP >> 20) + 1 {
            w.write_all(&chunk).unwrap();
        }
        drop(w);
        assert!(names(&dir.path().join("ingest")).is_empty());
    }

    #[test]
    fn write_then_read_a_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.write_blob(b"hello", None).unwrap();
        assert_eq!(d, Digest::of(b"hello"));
        assert!(store.has_blob(&d));
        assert_eq!(
            store.blob_path(&d),
            dir.path().join("blobs/sha256").join(d.hex())
        );
        assert_eq!(store.read_blob(&d).unwrap(), b"hello");
        assert_eq!(digest_of_reader(store.open_blob(&d).unwrap()).unwrap(), d);
        // Writing it again is a success and changes nothing.
        assert_eq!(store.write_blob(b"hello", Some(&d)).unwrap(), d);
        assert!(names(&dir.path().join("ingest")).is_empty());
    }

    #[test]
    fn streamed_blob_is_hashed_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        let content: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        for chunk in content.chunks(7919) {
            w.write_all(chunk).unwrap();
        }
        assert_eq!(w.size(), content.len() as u64);
        let d = w.commit(None, Some(content.len() as u64)).unwrap();
        assert_eq!(d, Digest::of(&content));
        assert_eq!(store.read_blob(&d).unwrap(), content);
    }

    #[test]
    fn digest_mismatch_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let wrong = Digest::of(b"something else");
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"content").unwrap();
        let err = w.commit(Some(&wrong), None).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&wrong.to_string()), "{msg}");
        assert!(msg.contains(&Digest::of(b"content").to_string()), "{msg}");
        assert!(matches!(err, StoreError::DigestMismatch { .. }));
        assert!(names(&dir.path().join("blobs/sha256")).is_empty());
        assert!(names(&dir.path().join("ingest")).is_empty());

        // The one-shot form fails before writing.
        assert!(store.write_blob(b"content", Some(&wrong)).is_err());
        assert!(names(&dir.path().join("blobs/sha256")).is_empty());
        assert!(names(&dir.path().join("ingest")).is_empty());
    }

    #[test]
    fn size_mismatch_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"content").unwrap();
        let err = w
            .commit(Some(&Digest::of(b"content")), Some(8))
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::SizeMismatch {
                    expected: 8,
                    actual: 7,
                    ..
                }
            ),
            "{err}"
        );
        assert!(names(&dir.path().join("blobs/sha256")).is_empty());
        assert!(names(&dir.path().join("ingest")).is_empty());
    }

    #[test]
    fn dropping_a_writer_removes_its_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write_all(b"partial").unwrap();
        w.flush().unwrap();
        assert_eq!(names(&dir.path().join("ingest")).len(), 1);
        drop(w);
        assert!(names(&dir.path().join("ingest")).is_empty());
        assert!(names(&dir.path().join("blobs/sha256")).is_empty());
    }

    #[test]
    fn reading_a_corrupt_or_missing_blob_fails_with_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.write_blob(b"good", None).unwrap();
        fs::write(store.blob_path(&d), b"evil").unwrap();
        match store.read_blob(&d) {
            Err(StoreError::BlobCorrupt {
                expected, actual, ..
            }) => {
                assert_eq!(expected, d);
                assert_eq!(actual, Digest::of(b"evil"));
            }
            other => panic!("expected BlobCorrupt, got {other:?}"),
        }
        let absent = Digest::of(b"absent");
        assert!(!store.has_blob(&absent));
        assert!(matches!(
            store.read_blob(&absent),
            Err(StoreError::BlobNotFound { .. })
        ));
        assert!(matches!(
            store.open_blob(&absent),
            Err(StoreError::BlobNotFound { .. })
        ));
    }
}
