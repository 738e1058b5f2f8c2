//! Build contexts: directories on the client, read in place. Indexing one walks it
//! with the `.dockerignore` rules and gives every regular file a content digest,
//! reusing the store's stat cache so an unchanged (or merely touched) context is not
//! read again.
//!
//! The index also fingerprints what `stat` says of every entry: while the fingerprint
//! is unchanged, so is everything a copy could read (contents, modes, owners, xattrs
//! and links all change a ctime), which lets digests computed from the context before
//! be reused without walking it again.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use kiln_graph::Digest;
use kiln_ignore::{Entry, WalkOptions, walk};
use kiln_store::Store;
use sha2::{Digest as _, Sha256};

use crate::error::WorkerError;
use crate::fileop::FileHasher;

/// A directory the build reads from, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDir {
    /// The directory.
    pub root: PathBuf,
    /// `.dockerignore` patterns.
    pub exclude_patterns: Vec<String>,
}

/// What a build can see of a local directory, with file digests.
pub struct ContextIndex {
    /// The name the build knows it by.
    pub name: String,
    /// The directory, canonicalized.
    pub root: PathBuf,
    /// `.dockerignore` patterns.
    pub exclude_patterns: Vec<String>,
    /// Identifies everything visible: paths, types, modes, link targets, contents.
    pub digest: Digest,
    /// Identifies the `stat` of the root and of every visible entry (inode, times,
    /// size, mode, owner, links), with the exclude patterns; `None` when an entry
    /// changed so recently that a further change might not show in its times.
    pub stat_fingerprint: Option<Digest>,
    /// What the walk found, in walk order.
    entries: Vec<Entry>,
    /// When the walk started (ns since the epoch).
    walk_started: i64,
    store: Store,
    /// File digests, computed when first needed: a context whose fingerprint is
    /// unchanged since an earlier build has its digest without them.
    files: OnceLock<Result<Files, String>>,
}

impl std::fmt::Debug for ContextIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContextIndex")
            .field("name", &self.name)
            .field("root", &self.root)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// The regular files of a context by relative path: their digest and, for those
/// whose times are older than the racy window, what identifies them as unchanged.
type Files = HashMap<PathBuf, (Digest, Option<FileId>)>;

/// A change this close to (or after) the walk might leave an entry's times unchanged
/// within the file system's timestamp granularity (git's "racy" rule).
const RACY_WINDOW_NS: i64 = 2_000_000_000;

/// What identifies a file as unchanged: device, inode, size, mtime and ctime (ns).
type FileId = (u64, u64, u64, i64, i64);

fn ns(secs: i64, nsecs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsecs)
}

impl ContextIndex {
    /// Walks `dir` and computes its digest. When everything the walk sees is as it
    /// was when an earlier build computed the digest (same stat fingerprint), the
    /// digest is taken from the store and file digests are left for when a step
    /// asks for them; otherwise files are hashed now, those whose size, times, inode
    /// and mode are unchanged since the last build taking their digest from the
    /// store's stat cache.
    pub fn build(store: &Store, name: &str, dir: &LocalDir) -> Result<ContextIndex, WorkerError> {
        let root = dir
            .root
            .canonicalize()
            .map_err(|e| WorkerError::io(format!("build context {}", dir.root.display()), e))?;
        let walk_started = now_ns();
        let root_meta = std::fs::symlink_metadata(&root)
            .map_err(|e| WorkerError::io(format!("build context {}", root.display()), e))?;
        let entries = walk(
            &root,
            &WalkOptions {
                exclude_patterns: dir.exclude_patterns.clone(),
                ..WalkOptions::default()
            },
        )
        .map_err(|e| {
            WorkerError::Invalid(format!("reading build context {}: {e}", root.display()))
        })?;
        let stat_fingerprint = stat_fingerprint(
            &root,
            &root_meta,
            &dir.exclude_patterns,
            entries.iter().map(|e| (e.path.as_path(), &e.metadata)),
            walk_started,
        );
        let memo_key = stat_fingerprint.as_ref().map(|fp| {
            let mut h = Sha256::new();
            h.update(b"kiln.context-digest.v1\0");
            h.update(fp.to_string().as_bytes());
            Digest::from_sha256(h.finalize().into())
        });
        let mut index = ContextIndex {
            name: name.to_string(),
            root,
            exclude_patterns: dir.exclude_patterns.clone(),
            digest: Digest::of(b""),
            stat_fingerprint,
            entries,
            walk_started,
            store: store.clone(),
            files: OnceLock::new(),
        };
        if let Some(key) = &memo_key
            && let Ok(Some(digest)) = store.memo(key)
        {
            index.digest = digest;
            return Ok(index);
        }
        let files = index.hash_files()?;
        index.digest = index.digest_of(&files);
        if let Some(key) = &memo_key {
            // A memo that cannot be written only costs the hashing next time.
            let _ = store.put_memo(key, &index.digest);
        }
        let _ = index.files.set(Ok(files));
        Ok(index)
    }

    /// Digests of every regular file the walk found, from the stat cache where it
    /// knows them, else by reading them (on all cores); the cache is updated.
    fn hash_files(&self) -> Result<Files, WorkerError> {
        let root = &self.root;
        let mut cache = self.store.file_hash_cache(root)?;
        let mut files = HashMap::new();
        let mut to_hash = Vec::new();
        for e in &self.entries {
            if e.metadata.is_file() {
                match cache.get(&e.path, &e.metadata) {
                    Some(d) => {
                        files.insert(e.path.clone(), (d, self.file_id(&e.metadata)));
                    }
                    None => to_hash.push(e),
                }
            }
        }
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let chunk = to_hash.len().div_ceil(threads).max(1);
        let hashed: Vec<Result<Vec<(&Entry, Digest)>, WorkerError>> = std::thread::scope(|s| {
            let handles: Vec<_> = to_hash
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        part.iter()
                            .map(|e| {
                                let d = hash_file(&root.join(&e.path), e.metadata.len()).map_err(
                                    |err| {
                                        WorkerError::io(
                                            format!("reading {}", e.path.display()),
                                            err,
                                        )
                                    },
                                )?;
                                Ok((*e, d))
                            })
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(WorkerError::Failed("hashing thread panicked".into()))
                    })
                })
                .collect()
        });
        for part in hashed {
            for (e, d) in part? {
                cache.put(&e.path, &e.metadata, &d);
                files.insert(e.path.clone(), (d, self.file_id(&e.metadata)));
            }
        }
        // Entries found unchanged were looked up; the cache keeps exactly those.
        cache.save()?;
        Ok(files)
    }

    /// What identifies the file as the one hashed, if its times are settled.
    fn file_id(&self, m: &std::fs::Metadata) -> Option<FileId> {
        let id = (
            m.dev(),
            m.ino(),
            m.size(),
            ns(m.mtime(), m.mtime_nsec()),
            ns(m.ctime(), m.ctime_nsec()),
        );
        (id.3.max(id.4) <= self.walk_started - RACY_WINDOW_NS).then_some(id)
    }

    /// The digest of the whole context, over the walk and the file digests.
    fn digest_of(&self, files: &Files) -> Digest {
        let mut h = Sha256::new();
        h.update(b"kiln-context-v1\n");
        for e in &self.entries {
            let m = &e.metadata;
            let kind = if m.is_dir() {
                "d"
            } else if m.file_type().is_symlink() {
                "l"
            } else if m.is_file() {
                "f"
            } else {
                "o"
            };
            h.update(e.path.as_os_str().as_encoded_bytes());
            h.update(format!("\0{kind}\0{:o}\0", m.permissions().mode()).as_bytes());
            if let Some((d, _)) = files.get(&e.path) {
                h.update(d.hex().as_bytes());
            } else if m.file_type().is_symlink()
                && let Ok(t) = std::fs::read_link(self.root.join(&e.path))
            {
                h.update(t.as_os_str().as_encoded_bytes());
            } else if !m.is_dir() {
                h.update(format!("{}", m.rdev()).as_bytes());
            }
            h.update(b"\n");
        }
        Digest::from_sha256(h.finalize().into())
    }

    /// The file digests, hashing (and caching) them on first use.
    fn files(&self) -> Result<&Files, String> {
        self.files
            .get_or_init(|| self.hash_files().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The digest of the file `rel` (relative to the root) when `stat`, taken after a
    /// copy read it, shows the very file the index hashed, unchanged since.
    pub(crate) fn known_content(
        &self,
        rel: &Path,
        stat: &crate::fileop::FileStat,
    ) -> Option<Digest> {
        let rel = rel.strip_prefix("/").unwrap_or(rel);
        let id: FileId = (
            stat.dev,
            stat.ino,
            stat.size,
            ns(stat.mtime.0, stat.mtime.1),
            ns(stat.ctime.0, stat.ctime.1),
        );
        match self.files().ok()?.get(rel)? {
            (digest, Some(known)) if *known == id => Some(digest.clone()),
            _ => None,
        }
    }

    /// A hasher that answers from the index and hashes only what it does not know.
    pub fn hasher(self: &Arc<Self>) -> IndexHasher {
        IndexHasher {
            index: self.clone(),
            unindexed: 0,
        }
    }
}

/// The fingerprint of a walk (see [`ContextIndex::stat_fingerprint`]).
fn stat_fingerprint<'a>(
    root: &Path,
    root_meta: &std::fs::Metadata,
    exclude_patterns: &[String],
    entries: impl Iterator<Item = (&'a Path, &'a std::fs::Metadata)>,
    walk_started: i64,
) -> Option<Digest> {
    let mut h = Sha256::new();
    h.update(b"kiln-context-stat-v1\0");
    h.update(root.as_os_str().as_encoded_bytes());
    h.update([0]);
    for p in exclude_patterns {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let mut add = |path: &[u8], m: &std::fs::Metadata| -> bool {
        let mtime = m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec();
        let ctime = m.ctime().saturating_mul(1_000_000_000) + m.ctime_nsec();
        h.update((path.len() as u64).to_le_bytes());
        h.update(path);
        for n in [
            m.dev(),
            m.ino(),
            u64::from(m.mode()),
            u64::from(m.uid()),
            u64::from(m.gid()),
            m.nlink(),
            m.size(),
            m.rdev(),
            mtime as u64,
            ctime as u64,
        ] {
            h.update(n.to_le_bytes());
        }
        mtime.max(ctime) <= walk_started - RACY_WINDOW_NS
    };
    let mut settled = add(b"", root_meta);
    for (path, meta) in entries {
        settled &= add(path.as_os_str().as_encoded_bytes(), meta);
    }
    settled.then(|| Digest::from_sha256(h.finalize().into()))
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Answers file digests from a [`ContextIndex`].
pub struct IndexHasher {
    index: Arc<ContextIndex>,
    /// Files asked for that the index did not know (hashed from disk instead).
    pub(crate) unindexed: usize,
}

impl FileHasher for IndexHasher {
    fn file_digest(
        &mut self,
        rel_path: &Path,
        abs_path: &Path,
        stat: &crate::fileop::FileStat,
    ) -> std::io::Result<Digest> {
        let rel = rel_path.strip_prefix("/").unwrap_or(rel_path);
        let files = self.index.files().map_err(std::io::Error::other)?;
        if let Some((d, _)) = files.get(rel) {
            return Ok(d.clone());
        }
        self.unindexed += 1;
        hash_file(abs_path, stat.size)
    }
}

/// sha256 of a file's contents; `size_hint` (its size as last seen) sizes the read
/// buffer, so a small file does not cost a large zeroed buffer.
pub fn hash_file(path: &Path, size_hint: u64) -> std::io::Result<Digest> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let len = usize::try_from(size_hint.saturating_add(1))
        .unwrap_or(usize::MAX)
        .clamp(4096, 256 * 1024);
    let mut buf = vec![0u8; len];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Digest::from_sha256(h.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fileop::FileHasher;
    use std::time::Duration;

    /// The fingerprint of `root` as a walk at `walk_started` would take it.
    fn fingerprint(root: &Path, excludes: &[String], walk_started: i64) -> Option<Digest> {
        let entries = walk(
            root,
            &WalkOptions {
                exclude_patterns: excludes.to_vec(),
                ..WalkOptions::default()
            },
        )
        .unwrap();
        let meta = std::fs::symlink_metadata(root).unwrap();
        stat_fingerprint(
            root,
            &meta,
            excludes,
            entries.iter().map(|e| (e.path.as_path(), &e.metadata)),
            walk_started,
        )
    }

    /// Long after every change: nothing is racy.
    fn later() -> i64 {
        now_ns() + 60_000_000_000
    }

    /// Lets the file system clock move on, so a change shows in ctime/mtime.
    fn tick() {
        std::thread::sleep(Duration::from_millis(30));
    }

    #[test]
    fn the_stat_fingerprint_changes_with_anything_a_copy_could_read() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/f"), "one").unwrap();
        std::fs::write(root.join("g"), "two").unwrap();
        let first = fingerprint(root, &[], later()).unwrap();
        assert_eq!(fingerprint(root, &[], later()), Some(first.clone()));

        let mut seen = vec![first];
        let mut expect_new = |what: &str| {
            let fp = fingerprint(root, &[], later()).unwrap();
            assert!(!seen.contains(&fp), "{what} kept the fingerprint");
            seen.push(fp);
        };
        tick();
        std::fs::write(root.join("d/f"), "uno").unwrap();
        expect_new("same-size content change");
        tick();
        std::fs::set_permissions(root.join("g"), std::fs::Permissions::from_mode(0o600)).unwrap();
        expect_new("chmod");
        tick();
        rustix::fs::setxattr(
            root.join("g").as_path(),
            "user.kiln-test",
            b"x",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        expect_new("setxattr");
        tick();
        std::fs::hard_link(root.join("g"), root.join("d/h")).unwrap();
        expect_new("a new hard link");
        tick();
        std::fs::remove_file(root.join("d/h")).unwrap();
        expect_new("removing it");
        tick();
        let exclude = vec!["nothing-matches".to_string()];
        assert!(!seen.contains(&fingerprint(root, &exclude, later()).unwrap()));
    }

    #[test]
    fn an_unchanged_context_gets_its_digest_without_hashing_and_files_on_demand() {
        let state = tempfile::tempdir().unwrap();
        let store = Store::open(state.path()).unwrap();
        let ctx = tempfile::tempdir().unwrap();
        std::fs::create_dir(ctx.path().join("d")).unwrap();
        std::fs::write(ctx.path().join("d/f"), "content").unwrap();
        std::os::unix::fs::symlink("d/f", ctx.path().join("link")).unwrap();
        std::thread::sleep(Duration::from_millis(2100));
        let dir = LocalDir {
            root: ctx.path().to_path_buf(),
            exclude_patterns: vec![],
        };
        let first = ContextIndex::build(&store, "context", &dir).unwrap();
        assert!(first.files.get().is_some());
        let second = Arc::new(ContextIndex::build(&store, "context", &dir).unwrap());
        assert_eq!(second.digest, first.digest);
        assert!(second.files.get().is_none(), "hashed although unchanged");
        let stat = crate::fileop::FileStat {
            dev: 0,
            ino: 0,
            size: 7,
            mtime: (0, 0),
            ctime: (0, 0),
        };
        let d = second
            .hasher()
            .file_digest(Path::new("/d/f"), &ctx.path().join("d/f"), &stat)
            .unwrap();
        assert_eq!(d, Digest::of(b"content"));

        // A change is seen: a new digest, computed from the files.
        std::fs::write(ctx.path().join("d/f"), "changed").unwrap();
        let third = ContextIndex::build(&store, "context", &dir).unwrap();
        assert_ne!(third.digest, first.digest);
        assert!(third.files.get().is_some());
    }

    #[test]
    fn a_context_changed_just_now_has_no_stat_fingerprint() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), "fresh").unwrap();
        assert_eq!(fingerprint(t.path(), &[], now_ns()), None);
        assert!(fingerprint(t.path(), &[], later()).is_some());
    }
}
