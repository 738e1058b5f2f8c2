//! [`Store`]: the state directory's layout, its lock, the database connection, and the
//! recovery that runs when a process finds itself alone with the store.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kiln_graph::Digest;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use rustix::fs::FlockOperation;

use crate::db::{self, db_err};
use crate::error::{IoContext, StoreError};
use crate::fsutil;

/// kiln's state directory: blobs, layer directories, cache records, image
/// resolutions, file hashes and cache mounts. Cheap to clone (an `Arc` inside); every
/// clone, and every [`WorkDir`](crate::WorkDir), [`BlobWriter`](crate::BlobWriter) and
/// [`FileHashCache`](crate::FileHashCache) made from it, keeps the store's shared lock.
///
/// All methods block (file system and database); call them from a blocking context.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) root: PathBuf,
    pub(crate) db_path: PathBuf,
    lock: File,
    db: Mutex<Connection>,
    /// Names under `tmp/` and `ingest/` that this store's live work dirs and blob
    /// writers own: prune must not remove them.
    live: Mutex<HashSet<OsString>>,
    /// Within this process: commits (which make a name visible, then record it) hold
    /// it shared, recovery and prune exclusive, so they never see a commit half done.
    gc: RwLock<()>,
}

pub(crate) const BLOBS: &str = "blobs/sha256";
pub(crate) const INGEST: &str = "ingest";
pub(crate) const LAYERS: &str = "layers";
pub(crate) const TMP: &str = "tmp";
pub(crate) const CACHE_MOUNTS: &str = "cache-mounts";

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `root` and takes its lock shared.
    ///
    /// If no other process (or other `Store` in this process) has the store open,
    /// recovery runs first under the exclusive lock: it removes unfinished writes in
    /// `ingest/` and `tmp/`, layer directories without a row and rows without a
    /// directory, cache records that name a missing layer, and rows that name a missing
    /// blob. Opening waits while another process prunes.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(root).io_context("create store directory", root)?;
        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .io_context("open lock file", &lock_path)?;
        let alone = match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => true,
            Err(rustix::io::Errno::WOULDBLOCK) => {
                flock_retrying(&lock, FlockOperation::LockShared)
                    .io_context("take shared lock", &lock_path)?;
                false
            }
            Err(e) => return Err(e).io_context("take exclusive lock", &lock_path),
        };
        for dir in [BLOBS, INGEST, LAYERS, TMP, CACHE_MOUNTS] {
            let path = root.join(dir);
            fs::create_dir_all(&path).io_context("create directory", &path)?;
        }
        let db_path = db::path_in(root);
        let conn = db::open(&db_path)?;
        let store = Store {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                db_path,
                lock,
                db: Mutex::new(conn),
                live: Mutex::new(HashSet::new()),
                gc: RwLock::new(()),
            }),
        };
        if alone {
            let _no_commits = store.inner.gc_write();
            crate::recovery::recover(&store.inner)?;
            // flock converts in place; nobody can slip in an exclusive lock that
            // matters here, since this store has nothing in progress yet.
            flock_retrying(&store.inner.lock, FlockOperation::LockShared)
                .io_context("downgrade lock", &lock_path)?;
        }
        Ok(store)
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }
}

/// `flock` that retries when a signal interrupts the wait.
fn flock_retrying(file: &File, op: FlockOperation) -> rustix::io::Result<()> {
    loop {
        match rustix::fs::flock(file, op) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other,
        }
    }
}

impl Inner {
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the connection leaves it usable: an open transaction
        // was rolled back when its guard dropped.
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` in an IMMEDIATE transaction (the write lock is taken up front, so a
    /// concurrent writer makes this wait instead of failing) and commits it.
    pub(crate) fn write_tx<T>(
        &self,
        context: &str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err(&self.db_path, format!("{context}: begin")))?;
        let value = f(&tx)?;
        tx.commit()
            .map_err(db_err(&self.db_path, format!("{context}: commit")))?;
        Ok(value)
    }

    /// Held while committing something (see `gc`).
    pub(crate) fn gc_read(&self) -> RwLockReadGuard<'_, ()> {
        self.gc.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Held by recovery and prune (see `gc`).
    pub(crate) fn gc_write(&self) -> RwLockWriteGuard<'_, ()> {
        self.gc.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(BLOBS).join(digest.hex())
    }

    pub(crate) fn layer_path(&self, id: &Digest) -> PathBuf {
        self.root.join(LAYERS).join(id.hex())
    }

    pub(crate) fn add_live(&self, name: OsString) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name);
    }

    pub(crate) fn remove_live(&self, name: &OsString) {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    pub(crate) fn live_names(&self) -> HashSet<OsString> {
        self.live.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Converts the shared lock to exclusive, waiting for every other `Store` (in any
    /// process) to close; the guard converts it back.
    pub(crate) fn lock_exclusive(&self) -> Result<ExclusiveGuard<'_>, StoreError> {
        flock_retrying(&self.lock, FlockOperation::LockExclusive)
            .io_context("take exclusive lock", self.root.join("lock"))?;
        Ok(ExclusiveGuard { inner: self })
    }

    /// Moves `path` (under `layers/` or `cache-mounts/`) into `tmp/` with one rename,
    /// then removes it. A crash midway leaves a partial tree only under `tmp/`, which
    /// recovery clears, never a partial tree under a committed name.
    pub(crate) fn discard_dir(&self, path: &Path) -> Result<(), StoreError> {
        let trash = self.dir(TMP).join(fsutil::unique_name("trash-"));
        match fs::rename(path, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).io_context("move to tmp/ for removal", path),
        }
        fsutil::remove_tree(&trash).io_context("remove", &trash)
    }
}

pub(crate) struct ExclusiveGuard<'a> {
    inner: &'a Inner,
}

impl Drop for ExclusiveGuard<'_> {
    fn drop(&mut self) {
        // Back to shared; this can only wait, not fail, on a valid descriptor.
        let _ = flock_retrying(&self.inner.lock, FlockOperation::LockShared);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_its_handles_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Store>();
        send::<crate::WorkDir>();
        send::<crate::BlobWriter>();
        send::<crate::FileHashCache>();
    }

    #[test]
    fn open_creates_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        let store = Store::open(&root).unwrap();
        for sub in [
            "lock",
            "meta.db",
            "blobs/sha256",
            "ingest",
            "layers",
            "tmp",
            "cache-mounts",
        ] {
            assert!(root.join(sub).exists(), "{sub} missing");
        }
        assert_eq!(store.root(), root);
    }

    #[test]
    fn an_open_store_holds_the_lock_shared() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let other = File::open(dir.path().join("lock")).unwrap();
        assert_eq!(
            rustix::fs::flock(&other, FlockOperation::NonBlockingLockExclusive),
            Err(rustix::io::Errno::WOULDBLOCK)
        );
        rustix::fs::flock(&other, FlockOperation::NonBlockingLockShared).unwrap();
        rustix::fs::flock(&other, FlockOperation::Unlock).unwrap();
        drop(store);
        rustix::fs::flock(&other, FlockOperation::NonBlockingLockExclusive).unwrap();
    }

    #[test]
    fn a_second_store_does_not_run_recovery_under_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        let work = first.work_dir().unwrap();
        fs::write(work.upper().join("f"), "x").unwrap();
        let second = Store::open(dir.path()).unwrap();
        assert!(
            work.upper().join("f").exists(),
            "recovery ran while the store was in use"
        );
        let layer = work.commit(&Digest::of(b"layer")).unwrap();
        assert!(second.layer(&layer.id).unwrap().is_some());
    }
}
