//! Follow-paths: resolving symlinks along given paths into extra include
//! patterns, as fsutil's `FollowLinks` does (BuildKit uses it to load a
//! Dockerfile or `.dockerignore` that is a symlink, with its target).
//!
//! Each path is resolved element by element from the walk root. A symlink met
//! on the way is recorded itself and its target (relative to the root; an
//! absolute target is taken relative to the root too) is resolved in turn,
//! with the rest of the path appended. A wildcard element (`*`, `?`, `[`) is
//! matched against the directory's entries, and the symlinks among the
//! matches are followed; the wildcard path itself is then kept as a pattern.
//! The result is sorted and paths inside an earlier one are dropped; if the
//! root itself is reached (`.`), there is no restriction at all (`None`).

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use crate::gomatch::{contains_wildcards, go_match};
use crate::gopath::{base, clean, dir, join};

/// How deep symlinks may lead to symlinks before resolution gives up. fsutil
/// has no limit (each symlink is resolved once, so it terminates); this only
/// bounds the recursion.
const MAX_DEPTH: usize = 255;

/// Why the follow-paths could not be resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FollowError {
    /// Reading an entry or a directory failed for a reason other than its absence.
    #[error("resolving follow-path {path}: {source}")]
    Io {
        /// The path relative to the root.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Symlinks led to symlinks more than 255 times.
    #[error("resolving follow-path {path}: too many levels of symbolic links")]
    TooDeep {
        /// The follow-path being resolved.
        path: String,
    },
}

/// Resolves `paths` under `root` into include patterns; `None` means the
/// whole root is included.
pub fn follow_links(root: &Path, paths: &[String]) -> Result<Option<Vec<String>>, FollowError> {
    let mut resolver = Resolver {
        root,
        resolved: BTreeSet::new(),
    };
    for path in paths {
        resolver.append(path, 0)?;
    }
    let sorted: Vec<String> = resolver.resolved.into_iter().collect();
    Ok(dedupe_paths(&sorted))
}

/// Drops every path that lies inside the last path kept before it (the input
/// is expected to be sorted); `None` when one of them is `.`.
pub(crate) fn dedupe_paths(paths: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(paths.len());
    // fsutil starts with an empty "last", so a leading "/..." path is dropped.
    let mut last = String::new();
    for p in paths {
        if p == "." {
            return None;
        }
        if p.starts_with(&format!("{last}/")) {
            continue;
        }
        out.push(p.clone());
        last.clone_from(p);
    }
    Some(out)
}

struct Resolver<'a> {
    root: &'a Path,
    resolved: BTreeSet<String>,
}

impl Resolver<'_> {
    fn append(&mut self, path: &str, depth: usize) -> Result<(), FollowError> {
        if depth > MAX_DEPTH {
            return Err(FollowError::TooDeep {
                path: path.to_owned(),
            });
        }
        let mut rest = join(&[".", path]);
        let mut current = ".".to_owned();
        loop {
            let (first, remainder) = match rest.split_once('/') {
                Some((first, remainder)) => (first.to_owned(), remainder.to_owned()),
                None => (rest.clone(), String::new()),
            };
            current = join(&[&current, &first]);
            let targets = self.read_symlink(&current, true)?;
            rest = remainder;
            if (rest.is_empty() || !targets.is_empty()) && self.resolved.contains(&current) {
                return Ok(());
            }
            if !targets.is_empty() {
                self.resolved.insert(current);
                for target in targets {
                    self.append(&join(&[&target, &rest]), depth + 1)?;
                }
                return Ok(());
            }
            if rest.is_empty() {
                self.resolved.insert(current);
                return Ok(());
            }
        }
    }

    /// The targets of `path` if it is a symlink (or, for a wildcard last
    /// element, of the matching entries that are symlinks), as paths from the
    /// root starting with `/`.
    fn read_symlink(&self, path: &str, allow_wildcard: bool) -> Result<Vec<String>, FollowError> {
        let name = base(path);
        if allow_wildcard && contains_wildcards(name) {
            let parent = dir(path);
            let mut targets = Vec::new();
            for entry in self.read_dir(&parent)? {
                if go_match(name, &entry) == Ok(true) {
                    targets.extend(self.read_symlink(&join(&[&parent, &entry]), false)?);
                }
            }
            return Ok(targets);
        }
        let Some(target) = self.read_link(path)? else {
            return Ok(Vec::new());
        };
        let link = clean(&target);
        if link.starts_with('/') {
            Ok(vec![link])
        } else {
            Ok(vec![join(&["/", &join(&[&dir(path), &link])])])
        }
    }

    /// The absolute path of `rel`, or `None` for the root itself and for paths
    /// that climb out of it (which are never looked at).
    fn locate(&self, rel: &str) -> Option<PathBuf> {
        let rel = clean(rel);
        if rel == "." || rel == "/" || rel == ".." || rel.starts_with("../") {
            return None;
        }
        Some(self.root.join(rel.trim_start_matches('/')))
    }

    /// The target of `rel` when it is a symlink; `None` when it is anything
    /// else or does not exist.
    fn read_link(&self, rel: &str) -> Result<Option<String>, FollowError> {
        let Some(abs) = self.locate(rel) else {
            return Ok(None);
        };
        let io_error = |source| FollowError::Io {
            path: rel.to_owned(),
            source,
        };
        match std::fs::symlink_metadata(&abs) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = std::fs::read_link(&abs).map_err(io_error)?;
                Ok(Some(
                    crate::walk::go_string(target.as_os_str()).into_owned(),
                ))
            }
            Ok(_) => Ok(None),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }

    /// The names in directory `rel`, sorted; empty when it is not a
    /// directory (a symlink to one included) or does not exist.
    fn read_dir(&self, rel: &str) -> Result<Vec<String>, FollowError> {
        let abs = match self.locate(rel) {
            Some(abs) => abs,
            None if clean(rel) == "." || clean(rel) == "/" => self.root.to_path_buf(),
            None => return Ok(Vec::new()),
        };
        let io_error = |source| FollowError::Io {
            path: rel.to_owned(),
            source,
        };
        match std::fs::symlink_metadata(&abs) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Ok(Vec::new()),
            Err(e) if is_absent(&e) => return Ok(Vec::new()),
            Err(e) => return Err(io_error(e)),
        }
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&abs).map_err(io_error)? {
            let entry = entry.map_err(io_error)?;
            names.push(crate::walk::go_string(&entry.file_name()).into_owned());
        }
        names.sort_unstable();
        Ok(names)
    }
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn dedupe_keeps_outermost_paths() {
        assert_eq!(
            dedupe_paths(&strings(&["a", "a/b", "ab", "b/c"])),
            Some(strings(&["a", "ab", "b/c"]))
        );
        assert_eq!(dedupe_paths(&strings(&["a", "."])), None);
        assert_eq!(dedupe_paths(&strings(&["/x", "y"])), Some(strings(&["y"])));
        assert_eq!(dedupe_paths(&[]), Some(Vec::new()));
    }

    #[cfg(unix)]
    #[test]
    fn follows_symlinks_into_patterns() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("bar"), "").unwrap();
        std::fs::create_dir(root.join("foo")).unwrap();
        symlink("/baz/one", root.join("foo/l1")).unwrap();
        symlink("/baz/two", root.join("foo/l2")).unwrap();
        std::fs::create_dir(root.join("baz")).unwrap();
        std::fs::write(root.join("baz/one"), "").unwrap();
        symlink("../bax", root.join("baz/two")).unwrap();
        std::fs::write(root.join("bax"), "").unwrap();
        std::fs::write(root.join("bay"), "").unwrap();
        let got = follow_links(root, &strings(&["foo/l*", "bar"])).unwrap();
        assert_eq!(
            got,
            Some(strings(&["bar", "bax", "baz/one", "baz/two", "foo/l*"]))
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlink_to_root_lifts_the_restriction() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        symlink(".", tmp.path().join("foo")).unwrap();
        assert_eq!(follow_links(tmp.path(), &strings(&["foo"])).unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn cycles_and_missing_paths_terminate() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        symlink("b", tmp.path().join("a")).unwrap();
        symlink("a", tmp.path().join("b")).unwrap();
        symlink("c/x", tmp.path().join("c")).unwrap();
        let got = follow_links(
            tmp.path(),
            &strings(&["a", "c", "missing/file", "../outside"]),
        )
        .unwrap();
        assert_eq!(
            got,
            Some(strings(&["../outside", "a", "b", "c", "missing/file"]))
        );
    }

    #[cfg(unix)]
    #[test]
    fn intermediate_symlinked_directory() {
        use std::os::unix::fs::symlink;
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        std::fs::write(tmp.path().join("real/Dockerfile"), "").unwrap();
        symlink("real", tmp.path().join("link")).unwrap();
        let got = follow_links(tmp.path(), &strings(&["link/Dockerfile"])).unwrap();
        assert_eq!(got, Some(strings(&["link", "real/Dockerfile"])));
    }
}
