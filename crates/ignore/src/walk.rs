//! Walking a build context directory with include/exclude patterns, yielding
//! the entries BuildKit's fsutil would send, in the same order.
//!
//! The order is depth-first with each directory's entries sorted by the bytes
//! of their names, a directory before its contents; paths are relative to the
//! root; the root is not an entry. Metadata is `lstat`'s: symlinks are entries
//! and are never followed. The selection is [`Filter`]'s: a directory that is
//! not selected itself but holds a selected entry is sent (with its own
//! metadata) just before that entry.
//!
//! Errors: the root must be a directory (a symlink to one is resolved). A
//! directory that cannot be read is an error if it was selected, and is
//! skipped silently if it was only walked to look for exceptions and the
//! reason is a permission error, as in fsutil. Entries that vanish while the
//! walk runs are skipped.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};

use crate::filter::{DirState, Filter, FilterError, Verdict};
use crate::follow::{FollowError, dedupe_paths, follow_links};

/// What to select from a build context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalkOptions {
    /// When not empty, only paths matching these patterns (and the
    /// directories leading to them) are selected.
    pub include_patterns: Vec<String>,
    /// Paths matching these patterns are not selected (`.dockerignore`).
    pub exclude_patterns: Vec<String>,
    /// Paths whose symlinks are resolved, each symlink and its target being
    /// added to the include patterns (see [`follow_links`]). Empty means none.
    pub follow_paths: Vec<String>,
}

/// One selected file system entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The path relative to the walk root (never empty, no leading `/`).
    pub path: PathBuf,
    /// The entry's own metadata (`lstat`): a symlink is described, not followed.
    pub metadata: Metadata,
}

/// Why a walk failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalkError {
    /// The root could not be resolved or examined.
    #[error("build context {path}: {source}")]
    Root {
        /// The root as given.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The root is not a directory.
    #[error("build context {path} is not a directory")]
    NotADirectory {
        /// The root as given.
        path: PathBuf,
    },
    /// A pattern is invalid.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The follow-paths could not be resolved.
    #[error(transparent)]
    Follow(#[from] FollowError),
    /// Reading a directory or an entry's metadata failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path relative to the walk root.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// Walks the directory `root` and returns the selected entries, in order.
///
/// ```no_run
/// use kiln_ignore::{read_ignore_file, walk, WalkOptions};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let context = std::path::Path::new("./context");
/// let ignore = std::fs::read_to_string(context.join(".dockerignore")).unwrap_or_default();
/// let options = WalkOptions { exclude_patterns: read_ignore_file(&ignore)?, ..Default::default() };
/// for entry in walk(context, &options)? {
///     println!("{} {}", entry.path.display(), entry.metadata.len());
/// }
/// # Ok(())
/// # }
/// ```
pub fn walk(root: &Path, options: &WalkOptions) -> Result<Vec<Entry>, WalkError> {
    Walker::new(root, options)?.collect()
}

/// A walk prepared for one root: the root resolved and the patterns compiled.
#[derive(Debug, Clone)]
pub struct Walker {
    root: PathBuf,
    filter: Filter,
}

/// One directory being read.
struct Frame {
    /// Path relative to the root (empty for the root).
    rel: PathBuf,
    /// The same path as matched against patterns.
    rel_str: String,
    /// While the directory has not been sent: its metadata, to send it just
    /// before the first selected entry inside it.
    unsent: Option<io::Result<Metadata>>,
    entries: std::vec::IntoIter<DirItem>,
    state: DirState,
}

struct DirItem {
    name: std::ffi::OsString,
    is_dir: bool,
    /// Read while the directory is open (cheaper than by path later); an
    /// error matters only if the entry is selected.
    metadata: io::Result<Metadata>,
}

impl Walker {
    /// Resolves `root` (following symlinks) and compiles the options,
    /// resolving follow-paths against the tree.
    pub fn new(root: &Path, options: &WalkOptions) -> Result<Walker, WalkError> {
        let resolved = std::fs::canonicalize(root).map_err(|source| WalkError::Root {
            path: root.to_path_buf(),
            source,
        })?;
        let meta = std::fs::metadata(&resolved).map_err(|source| WalkError::Root {
            path: root.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(WalkError::NotADirectory {
                path: root.to_path_buf(),
            });
        }
        let mut include = options.include_patterns.clone();
        if !options.follow_paths.is_empty()
            && let Some(targets) = follow_links(&resolved, &options.follow_paths)?
        {
            include.extend(targets);
            include = dedupe_paths(&include).unwrap_or_default();
        }
        let filter = Filter::new(&include, &options.exclude_patterns)?;
        Ok(Walker {
            root: resolved,
            filter,
        })
    }

    /// The resolved root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The compiled filter.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Collects the selected entries, in order.
    pub fn collect(&self) -> Result<Vec<Entry>, WalkError> {
        let mut entries = Vec::new();
        self.for_each(|entry| {
            entries.push(entry);
            Ok::<(), WalkError>(())
        })?;
        Ok(entries)
    }

    /// Calls `visit` with each selected entry, in order; an error from
    /// `visit` stops the walk and is returned.
    pub fn for_each<E, F>(&self, mut visit: F) -> Result<(), E>
    where
        E: From<WalkError>,
        F: FnMut(Entry) -> Result<(), E>,
    {
        let Some(entries) = self.read_dir(Path::new(""), true)? else {
            return Ok(());
        };
        let mut stack = vec![Frame {
            rel: PathBuf::new(),
            rel_str: String::new(),
            unsent: None,
            entries,
            state: DirState::default(),
        }];
        while let Some(top) = stack.last_mut() {
            let Some(item) = top.entries.next() else {
                stack.pop();
                continue;
            };
            let rel = top.rel.join(&item.name);
            let name = go_string(&item.name);
            let rel_str = if top.rel_str.is_empty() {
                name.into_owned()
            } else {
                let mut s = String::with_capacity(top.rel_str.len() + 1 + name.len());
                s.push_str(&top.rel_str);
                s.push('/');
                s.push_str(&name);
                s
            };
            let is_dir = item.is_dir;
            let (state, selected) = match self
                .filter
                .check(&rel_str, is_dir, &top.state)
                .map_err(WalkError::from)?
            {
                Verdict::Prune => continue,
                Verdict::Exclude(state) => (state, false),
                Verdict::Include(state) => (state, true),
            };
            let unsent = if selected {
                let own = match item.metadata {
                    Ok(own) => own,
                    Err(e) if is_absent(&e) => continue,
                    Err(source) => return Err(WalkError::Io { path: rel, source }.into()),
                };
                // Send the directories leading here that were not sent yet.
                for frame in stack.iter_mut() {
                    match frame.unsent.take() {
                        None => {}
                        Some(Ok(dir_metadata)) => visit(Entry {
                            path: frame.rel.clone(),
                            metadata: dir_metadata,
                        })?,
                        Some(Err(e)) if is_absent(&e) => {}
                        Some(Err(source)) => {
                            let path = frame.rel.clone();
                            return Err(WalkError::Io { path, source }.into());
                        }
                    }
                }
                visit(Entry {
                    path: rel.clone(),
                    metadata: own,
                })?;
                None
            } else {
                Some(item.metadata)
            };
            if is_dir && let Some(entries) = self.read_dir(&rel, selected)? {
                stack.push(Frame {
                    rel,
                    rel_str,
                    unsent,
                    entries,
                    state,
                });
            }
        }
        Ok(())
    }

    /// The entries of directory `rel`, sorted by name; `None` when it vanished,
    /// or when it was not selected and may not be read.
    fn read_dir(
        &self,
        rel: &Path,
        selected: bool,
    ) -> Result<Option<std::vec::IntoIter<DirItem>>, WalkError> {
        let io_error = |source| WalkError::Io {
            path: rel.to_path_buf(),
            source,
        };
        let entries = match std::fs::read_dir(self.root.join(rel)) {
            Ok(entries) => entries,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) if !selected && e.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
            Err(e) => return Err(io_error(e)),
        };
        let mut items = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_error)?;
            let is_dir = match entry.file_type() {
                Ok(t) => t.is_dir(),
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(io_error(e)),
            };
            items.push(DirItem {
                name: entry.file_name(),
                is_dir,
                // `DirEntry::metadata` does not follow symlinks.
                metadata: entry.metadata(),
            });
        }
        items.sort_unstable_by(|a, b| a.name.as_encoded_bytes().cmp(b.name.as_encoded_bytes()));
        Ok(Some(items.into_iter()))
    }
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// A file name as the text Go would match patterns against: the name itself
/// when it is UTF-8, otherwise with each invalid byte read as `U+FFFD`, as
/// Go's regexp decodes it.
pub(crate) fn go_string(name: &OsStr) -> Cow<'_, str> {
    if let Some(s) = name.to_str() {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    for chunk in name.as_encoded_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push('\u{FFFD}');
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn invalid_utf8_bytes_each_read_as_replacement() {
        use std::os::unix::ffi::OsStrExt;
        let name = OsStr::from_bytes(b"a\xE2\x98b\xFF");
        assert_eq!(go_string(name), "a\u{FFFD}\u{FFFD}b\u{FFFD}");
        assert!(matches!(
            go_string(OsStr::new("plain")),
            Cow::Borrowed("plain")
        ));
    }

    #[test]
    fn root_must_be_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, "").unwrap();
        assert!(matches!(
            walk(&file, &WalkOptions::default()),
            Err(WalkError::NotADirectory { .. })
        ));
        let missing = tmp.path().join("missing");
        let err = walk(&missing, &WalkOptions::default()).unwrap_err();
        assert!(matches!(&err, WalkError::Root { .. }), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
