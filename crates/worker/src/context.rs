//! Build contexts: directories on the client, read in place. Indexing one walks it
//! with the `.dockerignore` rules and gives every regular file a content digest,
//! reusing the store's stat cache so an unchanged (or merely touched) context is not
//! read again.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_graph::Digest;
use kiln_ignore::{WalkOptions, walk};
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
#[derive(Debug)]
pub struct ContextIndex {
    /// The name the build knows it by.
    pub name: String,
    /// The directory, canonicalized.
    pub root: PathBuf,
    /// `.dockerignore` patterns.
    pub exclude_patterns: Vec<String>,
    /// Digests of regular files by relative path.
    files: HashMap<PathBuf, Digest>,
    /// Identifies everything visible: paths, types, modes, link targets, contents.
    pub digest: Digest,
}

impl ContextIndex {
    /// Walks and hashes `dir`; files whose size, times, inode and mode are unchanged
    /// since the last build take their digest from the store's stat cache.
    pub fn build(store: &Store, name: &str, dir: &LocalDir) -> Result<ContextIndex, WorkerError> {
        let root = dir
            .root
            .canonicalize()
            .map_err(|e| WorkerError::io(format!("build context {}", dir.root.display()), e))?;
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
        let mut cache = store.file_hash_cache(&root)?;
        let mut files = HashMap::new();
        let mut to_hash = Vec::new();
        for e in &entries {
            if e.metadata.is_file() {
                match cache.get(&e.path, &e.metadata) {
                    Some(d) => {
                        files.insert(e.path.clone(), d);
                    }
                    None => to_hash.push(e),
                }
            }
        }
        // Hash what the cache did not know on all cores.
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let chunk = to_hash.len().div_ceil(threads).max(1);
        let hashed: Vec<Result<Vec<(PathBuf, Digest)>, WorkerError>> = std::thread::scope(|s| {
            let handles: Vec<_> = to_hash
                .chunks(chunk)
                .map(|part| {
                    let root = &root;
                    s.spawn(move || {
                        part.iter()
                            .map(|e| {
                                let d = hash_file(&root.join(&e.path)).map_err(|err| {
                                    WorkerError::io(format!("reading {}", e.path.display()), err)
                                })?;
                                Ok((e.path.clone(), d))
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
        let by_path: HashMap<&Path, &std::fs::Metadata> = entries
            .iter()
            .map(|e| (e.path.as_path(), &e.metadata))
            .collect();
        for part in hashed {
            for (p, d) in part? {
                if let Some(meta) = by_path.get(p.as_path()) {
                    cache.put(&p, meta, &d);
                }
                files.insert(p, d);
            }
        }
        // Entries found unchanged were looked up; the cache keeps exactly those.
        cache.save()?;

        let mut h = Sha256::new();
        h.update(b"kiln-context-v1\n");
        for e in &entries {
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
            if let Some(d) = files.get(&e.path) {
                h.update(d.hex().as_bytes());
            } else if m.file_type().is_symlink()
                && let Ok(t) = std::fs::read_link(root.join(&e.path))
            {
                h.update(t.as_os_str().as_encoded_bytes());
            } else if !m.is_dir() {
                h.update(format!("{}", m.rdev()).as_bytes());
            }
            h.update(b"\n");
        }
        Ok(ContextIndex {
            name: name.to_string(),
            root,
            exclude_patterns: dir.exclude_patterns.clone(),
            files,
            digest: Digest::from_sha256(h.finalize().into()),
        })
    }

    /// A hasher that answers from the index and hashes only what it does not know.
    pub fn hasher(self: &Arc<Self>) -> IndexHasher {
        IndexHasher {
            index: self.clone(),
        }
    }
}

/// Answers file digests from a [`ContextIndex`].
pub struct IndexHasher {
    index: Arc<ContextIndex>,
}

impl FileHasher for IndexHasher {
    fn file_digest(
        &mut self,
        rel_path: &Path,
        abs_path: &Path,
        _stat: &crate::fileop::FileStat,
    ) -> std::io::Result<Digest> {
        let rel = rel_path.strip_prefix("/").unwrap_or(rel_path);
        if let Some(d) = self.index.files.get(rel) {
            return Ok(d.clone());
        }
        hash_file(abs_path)
    }
}

/// sha256 of a file's contents.
pub fn hash_file(path: &Path) -> std::io::Result<Digest> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Digest::from_sha256(h.finalize().into()))
}
