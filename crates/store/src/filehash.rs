//! [`FileHashCache`]: remembered content digests of the files under one root (a build
//! context), keyed by what `stat` says, so an unchanged context is not re-hashed.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_graph::Digest;
use rusqlite::{OptionalExtension, params};

use crate::db::db_err;
use crate::error::{IoContext, StoreError};
use crate::fsutil::now_ns;
use crate::store::{Inner, Store};

/// A file whose mtime is this close to (or after) the moment its digest was recorded
/// may have been changed again within the file system's timestamp granularity without
/// its stat changing: such an entry is "racy" and is never trusted (git's rule).
const RACY_WINDOW_NS: i64 = 2_000_000_000;

/// The fields of `stat` that must all be unchanged for a remembered digest to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStat {
    size: i64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: i64,
    mode: i64,
}

impl FileStat {
    fn of(meta: &Metadata) -> FileStat {
        FileStat {
            size: meta.size() as i64,
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
            ctime_ns: meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec(),
            ino: meta.ino() as i64,
            mode: i64::from(meta.mode()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Loaded from the database and not looked up since: gone at the next save.
    Unvisited,
    /// Loaded and looked up: kept as it is.
    Visited,
    /// New or changed: written at the next save.
    Dirty,
}

#[derive(Debug, Clone)]
struct Entry {
    stat: FileStat,
    digest: [u8; 32],
    recorded_ns: i64,
    state: State,
}

/// Remembered file digests under one root, loaded into memory by
/// [`Store::file_hash_cache`].
///
/// A walk of the root calls [`get`](FileHashCache::get) for each file and, on a miss,
/// hashes the file and calls [`put`](FileHashCache::put); [`save`](FileHashCache::save)
/// then writes what changed and forgets every path the walk did not look up, so the
/// walk is expected to cover the whole root.
pub struct FileHashCache {
    inner: Arc<Inner>,
    root: PathBuf,
    entries: HashMap<Vec<u8>, Entry>,
}

impl std::fmt::Debug for FileHashCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileHashCache")
            .field("root", &self.root)
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Loads the remembered digests of the files under `root` (made absolute and
    /// free of symlinks first, so the same directory always has the same entries).
    pub fn file_hash_cache(&self, root: &Path) -> Result<FileHashCache, StoreError> {
        let root = std::fs::canonicalize(root).io_context("resolve build context", root)?;
        let inner = &self.inner;
        let context = || format!("load file hashes of {}", root.display());
        let conn = inner.conn();
        let root_id: Option<i64> = conn
            .prepare_cached("SELECT id FROM file_hash_roots WHERE root = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([root.as_os_str().as_bytes()], |row| row.get(0))
                    .optional()
            })
            .map_err(db_err(&inner.db_path, context()))?;
        let mut entries = HashMap::new();
        if let Some(root_id) = root_id {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT path, size, mtime_ns, ctime_ns, ino, mode, digest, recorded_ns
                     FROM file_hashes WHERE root_id = ?1",
                )
                .map_err(db_err(&inner.db_path, context()))?;
            let mut rows = stmt
                .query([root_id])
                .map_err(db_err(&inner.db_path, context()))?;
            while let Some(row) = rows.next().map_err(db_err(&inner.db_path, context()))? {
                let read = || -> rusqlite::Result<(Vec<u8>, Entry)> {
                    let digest: [u8; 32] = row.get_ref(6)?.as_blob()?.try_into().map_err(|_| {
                        rusqlite::Error::InvalidColumnType(
                            6,
                            "digest".into(),
                            rusqlite::types::Type::Blob,
                        )
                    })?;
                    Ok((
                        row.get_ref(0)?.as_blob()?.to_vec(),
                        Entry {
                            stat: FileStat {
                                size: row.get(1)?,
                                mtime_ns: row.get(2)?,
                                ctime_ns: row.get(3)?,
                                ino: row.get(4)?,
                                mode: row.get(5)?,
                            },
                            digest,
                            recorded_ns: row.get(7)?,
                            state: State::Unvisited,
                        },
                    ))
                };
                let (path, entry) = read().map_err(db_err(&inner.db_path, context()))?;
                entries.insert(path, entry);
            }
        }
        drop(conn);
        Ok(FileHashCache {
            inner: Arc::clone(inner),
            root,
            entries,
        })
    }
}

impl FileHashCache {
    /// The root the entries are relative to.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many paths are remembered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no path is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The remembered digest of `rel_path`, if its size, mtime, ctime, inode and mode
    /// all still match `meta` (from `symlink_metadata`) and the entry is not racy.
    /// Looking a path up keeps its entry at the next save, hit or miss.
    pub fn get(&mut self, rel_path: &Path, meta: &Metadata) -> Option<Digest> {
        let entry = self.entries.get_mut(rel_path.as_os_str().as_bytes())?;
        if entry.state == State::Unvisited {
            entry.state = State::Visited;
        }
        if entry.stat != FileStat::of(meta) {
            return None;
        }
        if entry.stat.mtime_ns > entry.recorded_ns - RACY_WINDOW_NS {
            return None;
        }
        Some(Digest::from_sha256(entry.digest))
    }

    /// Remembers the digest of `rel_path`, just computed from the file `meta`
    /// describes.
    pub fn put(&mut self, rel_path: &Path, meta: &Metadata, digest: &Digest) {
        let mut raw = [0u8; 32];
        // A Digest always holds 64 hex digits.
        if hex::decode_to_slice(digest.hex(), &mut raw).is_err() {
            return;
        }
        self.entries.insert(
            rel_path.as_os_str().as_bytes().to_vec(),
            Entry {
                stat: FileStat::of(meta),
                digest: raw,
                recorded_ns: now_ns(),
                state: State::Dirty,
            },
        );
    }

    /// Writes new and changed entries and deletes the rows of paths not looked up
    /// since loading, in one transaction.
    pub fn save(self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let context = format!("save file hashes of {}", self.root.display());
        let root = self.root.as_os_str().as_bytes();
        let entries = &self.entries;
        let any_change = entries.values().any(|e| e.state != State::Visited);
        inner.write_tx(&context, |tx| {
            let err = || db_err(&inner.db_path, context.clone());
            let root_id: i64 = tx
                .prepare_cached(
                    "INSERT INTO file_hash_roots (root, last_used_ns) VALUES (?1, ?2)
                     ON CONFLICT (root) DO UPDATE SET last_used_ns = excluded.last_used_ns
                     RETURNING id",
                )
                .and_then(|mut stmt| stmt.query_row(params![root, now_ns()], |row| row.get(0)))
                .map_err(err())?;
            if !any_change {
                return Ok(());
            }
            // Rows go in path order: the table is a B-tree on (root_id, path), and
            // sorted writes touch each page once instead of at random. (Measured: an
            // upsert in order beats deleting the root's rows and inserting them anew.)
            let mut dirty: Vec<(&Vec<u8>, &Entry)> = Vec::new();
            let mut gone: Vec<&Vec<u8>> = Vec::new();
            for (path, entry) in entries {
                match entry.state {
                    State::Visited => {}
                    State::Unvisited => gone.push(path),
                    State::Dirty => dirty.push((path, entry)),
                }
            }
            dirty.sort_unstable_by(|a, b| a.0.cmp(b.0));
            gone.sort_unstable();
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO file_hashes
                         (root_id, path, size, mtime_ns, ctime_ns, ino, mode, digest, recorded_ns)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (root_id, path) DO UPDATE SET
                         size = excluded.size, mtime_ns = excluded.mtime_ns,
                         ctime_ns = excluded.ctime_ns, ino = excluded.ino, mode = excluded.mode,
                         digest = excluded.digest, recorded_ns = excluded.recorded_ns",
                )
                .map_err(err())?;
            for (path, entry) in dirty {
                let s = &entry.stat;
                upsert
                    .execute(params![
                        root_id,
                        path,
                        s.size,
                        s.mtime_ns,
                        s.ctime_ns,
                        s.ino,
                        s.mode,
                        &entry.digest[..],
                        entry.recorded_ns,
                    ])
                    .map_err(err())?;
            }
            let mut delete = tx
                .prepare_cached("DELETE FROM file_hashes WHERE root_id = ?1 AND path = ?2")
                .map_err(err())?;
            for path in gone {
                delete.execute(params![root_id, path]).map_err(err())?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::{Duration, SystemTime};

    /// Sets a file's mtime to `secs_ago` seconds in the past (so it is not racy).
    fn age(path: &Path, secs_ago: u64) {
        let when = SystemTime::now() - Duration::from_secs(secs_ago);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    fn setup() -> (tempfile::TempDir, Store, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir(&ctx).unwrap();
        (dir, store, ctx)
    }

    fn remember(store: &Store, ctx: &Path, rel: &str) -> Digest {
        let mut cache = store.file_hash_cache(ctx).unwrap();
        let meta = fs::symlink_metadata(ctx.join(rel)).unwrap();
        let digest = Digest::of(&fs::read(ctx.join(rel)).unwrap());
        cache.put(Path::new(rel), &meta, &digest);
        cache.save().unwrap();
        digest
    }

    fn lookup(store: &Store, ctx: &Path, rel: &str) -> Option<Digest> {
        let mut cache = store.file_hash_cache(ctx).unwrap();
        let meta = fs::symlink_metadata(ctx.join(rel)).unwrap();
        cache.get(Path::new(rel), &meta)
    }

    #[test]
    fn an_unchanged_file_hits() {
        let (_dir, store, ctx) = setup();
        fs::write(ctx.join("a"), "hello").unwrap();
        age(&ctx.join("a"), 60);
        let digest = remember(&store, &ctx, "a");
        assert_eq!(lookup(&store, &ctx, "a"), Some(digest));
    }

    #[test]
    fn a_racy_entry_misses() {
        let (_dir, store, ctx) = setup();
        fs::write(ctx.join("a"), "hello").unwrap();
        remember(&store, &ctx, "a");
        assert_eq!(
            lookup(&store, &ctx, "a"),
            None,
            "fresh mtime must be re-hashed"
        );
        // Once re-hashed after the window, it is trusted.
        age(&ctx.join("a"), 5);
        remember(&store, &ctx, "a");
        assert!(lookup(&store, &ctx, "a").is_some());
    }

    #[test]
    fn a_size_change_misses() {
        let (_dir, store, ctx) = setup();
        fs::write(ctx.join("a"), "hello").unwrap();
        age(&ctx.join("a"), 60);
        remember(&store, &ctx, "a");
        fs::write(ctx.join("a"), "hello!").unwrap();
        age(&ctx.join("a"), 60);
        assert_eq!(lookup(&store, &ctx, "a"), None);
    }

    #[test]
    fn an_mtime_change_misses_even_with_the_same_size() {
        let (_dir, store, ctx) = setup();
        fs::write(ctx.join("a"), "hello").unwrap();
        age(&ctx.join("a"), 60);
        remember(&store, &ctx, "a");
        age(&ctx.join("a"), 30);
        assert_eq!(lookup(&store, &ctx, "a"), None);
    }

    #[test]
    fn an_inode_change_misses() {
        let (_dir, store, ctx) = setup();
        fs::write(ctx.join("a"), "hello").unwrap();
        age(&ctx.join("a"), 60);
        let meta = fs::symlink_metadata(ctx.join("a")).unwrap();
        remember(&store, &ctx, "a");
        // Replace the file by another with the same size, mtime and mode.
        fs::write(ctx.join("b"), "HELLO").unwrap();
        fs::File::options()
            .write(true)
            .open(ctx.join("b"))
            .unwrap()
            .set_modified(meta.modified().unwrap())
            .unwrap();
        fs::rename(ctx.join("b"), ctx.join("a")).unwrap();
        let new = fs::symlink_metadata(ctx.join("a")).unwrap();
        assert_ne!(new.ino(), meta.ino());
        assert_eq!(new.mtime_nsec(), meta.mtime_nsec());
        assert_eq!(lookup(&store, &ctx, "a"), None);
    }

    /// Each stat field on its own: a difference in any one of them is a miss.
    #[test]
    fn every_stat_field_must_match() {
        let (_dir, store, ctx) = setup();
        fs::write(ctx.join("a"), "hello").unwrap();
        age(&ctx.join("a"), 60);
        remember(&store, &ctx, "a");
        let meta = fs::symlink_metadata(ctx.join("a")).unwrap();
        let actual = FileStat::of(&meta);
        let perturbed: [fn(&mut FileStat); 5] = [
            |s| s.size += 1,
            |s| s.mtime_ns -= 1,
            |s| s.ctime_ns += 1,
            |s| s.ino += 1,
            |s| s.mode ^= 0o100,
        ];
        for (i, change) in perturbed.iter().enumerate() {
            let mut cache = store.file_hash_cache(&ctx).unwrap();
            assert!(cache.get(Path::new("a"), &meta).is_some(), "baseline");
            let entry = cache.entries.get_mut(&b"a"[..]).unwrap();
            entry.stat = actual;
            change(&mut entry.stat);
            assert_eq!(cache.get(Path::new("a"), &meta), None, "field {i}");
        }
    }

    #[test]
    fn a_mode_change_misses() {
        let (_dir, store, ctx) = setup();
        fs::write(ctx.join("a"), "hello").unwrap();
        age(&ctx.join("a"), 60);
        remember(&store, &ctx, "a");
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(ctx.join("a"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(lookup(&store, &ctx, "a"), None);
    }

    #[test]
    fn save_forgets_paths_not_looked_up_and_keeps_the_rest() {
        let (_dir, store, ctx) = setup();
        for name in ["keep", "gone"] {
            fs::write(ctx.join(name), name).unwrap();
            age(&ctx.join(name), 60);
        }
        let mut cache = store.file_hash_cache(&ctx).unwrap();
        for name in ["keep", "gone"] {
            let meta = fs::symlink_metadata(ctx.join(name)).unwrap();
            cache.put(Path::new(name), &meta, &Digest::of(name.as_bytes()));
        }
        cache.save().unwrap();

        let mut cache = store.file_hash_cache(&ctx).unwrap();
        assert_eq!(cache.len(), 2);
        let meta = fs::symlink_metadata(ctx.join("keep")).unwrap();
        assert_eq!(
            cache.get(Path::new("keep"), &meta),
            Some(Digest::of(b"keep"))
        );
        cache.save().unwrap();

        let cache = store.file_hash_cache(&ctx).unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.root(), fs::canonicalize(&ctx).unwrap());
    }

    #[test]
    fn save_updates_changed_entries_in_place() {
        let (_dir, store, ctx) = setup();
        let names: Vec<String> = (0..50).map(|i| format!("f{i:02}")).collect();
        for name in &names {
            fs::write(ctx.join(name), name).unwrap();
            age(&ctx.join(name), 60);
        }
        let meta = |name: &str| fs::symlink_metadata(ctx.join(name)).unwrap();
        let mut cache = store.file_hash_cache(&ctx).unwrap();
        for name in &names {
            cache.put(Path::new(name), &meta(name), &Digest::of(b"old"));
        }
        cache.save().unwrap();
        // Change every other entry, keep the rest.
        let mut cache = store.file_hash_cache(&ctx).unwrap();
        for (i, name) in names.iter().enumerate() {
            if i % 2 == 0 {
                cache.put(Path::new(name), &meta(name), &Digest::of(name.as_bytes()));
            } else {
                assert!(cache.get(Path::new(name), &meta(name)).is_some());
            }
        }
        cache.save().unwrap();
        let mut cache = store.file_hash_cache(&ctx).unwrap();
        assert_eq!(cache.len(), names.len());
        for (i, name) in names.iter().enumerate() {
            let expected = if i % 2 == 0 {
                Digest::of(name.as_bytes())
            } else {
                Digest::of(b"old")
            };
            assert_eq!(
                cache.get(Path::new(name), &meta(name)),
                Some(expected),
                "{name}"
            );
        }
    }

    #[test]
    fn roots_are_separate_and_resolved() {
        let (dir, store, ctx) = setup();
        fs::write(ctx.join("a"), "x").unwrap();
        age(&ctx.join("a"), 60);
        let digest = remember(&store, &ctx, "a");
        // The same directory through a symlink shares the entries.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&ctx, &link).unwrap();
        assert_eq!(lookup(&store, &link, "a"), Some(digest));
        let other = dir.path().join("other");
        fs::create_dir(&other).unwrap();
        assert!(store.file_hash_cache(&other).unwrap().is_empty());
    }
}
