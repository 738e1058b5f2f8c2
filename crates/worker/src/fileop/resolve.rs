//! Resolving an absolute path inside a root as if the root were `/`: the
//! semantics of containerd/continuity's `fs.RootPath`, which BuildKit applies
//! to every path of a file action.
//!
//! Symlinks met on the way are followed, with their target read relative to
//! the root (an absolute target starts again at the root; `..` stops at the
//! root), and the target is cleaned *lexically* together with the directory it
//! was found in, as `filepath.Join` does. A component that does not exist ends
//! the walk: it and everything after it are taken literally. At most 255
//! symlinks are followed. The result is a path relative to the root whose
//! existing components are all real directories (and, when the last one is
//! followed, not a symlink either), so it can be opened with
//! `RESOLVE_NO_SYMLINKS`.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::AtFlags;
use rustix::io::Errno;

use super::error::FileOpError;
use super::fsys::{Kind, Meta, Root};

/// How many symlinks a resolution follows before giving up (continuity's).
const MAX_LINKS: usize = 255;

/// What a path is, as far as resolution cares.
pub(crate) enum Lookup {
    Missing,
    Symlink(Vec<u8>),
    Other,
}

/// A tree paths are resolved in.
pub(crate) trait Namespace {
    /// What `rel` (relative to the root, never empty) is.
    fn lookup(&self, rel: &Path) -> Result<Lookup, FileOpError>;
}

/// A destination tree: everything in it exists.
pub(crate) struct DestNamespace<'a>(pub(crate) &'a Root);

impl Namespace for DestNamespace<'_> {
    fn lookup(&self, rel: &Path) -> Result<Lookup, FileOpError> {
        let lstat_err = |e: io::Error| FileOpError::io("lstat", display_rel(rel), e);
        match rustix::fs::statat(self.0.fd(), rel, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if Meta::from_stat(&st).kind == Kind::Symlink => {
                Ok(Lookup::Symlink(self.0.readlink(rel).map_err(lstat_err)?))
            }
            Ok(_) => Ok(Lookup::Other),
            Err(Errno::NOENT) => Ok(Lookup::Missing),
            Err(e) => Err(lstat_err(e.into())),
        }
    }
}

/// A root-relative path as users see it: absolute.
pub(crate) fn display_rel(rel: &Path) -> String {
    format!("/{}", rel.to_string_lossy())
}

/// Resolves `path` (absolute or not; taken from the root) inside `ns`.
/// `follow_last`: whether a symlink in the last component is followed too
/// (fsutil's `rootPath` with `followLinks`); otherwise only the parent is
/// resolved and the last component kept as it is.
pub(crate) fn resolve(
    ns: &dyn Namespace,
    path: &[u8],
    follow_last: bool,
) -> Result<PathBuf, FileOpError> {
    let mut pending: VecDeque<Vec<u8>> = clean_components(path).into();
    let mut resolved: Vec<Vec<u8>> = Vec::new();
    let mut links = 0;
    while let Some(comp) = pending.pop_front() {
        let is_last = pending.is_empty();
        resolved.push(comp);
        if is_last && !follow_last {
            break;
        }
        match ns.lookup(&to_path(&resolved))? {
            Lookup::Missing => {
                resolved.extend(pending.drain(..));
                break;
            }
            Lookup::Other => {}
            Lookup::Symlink(target) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(FileOpError::TooManyLinks {
                        path: String::from_utf8_lossy(path).into_owned(),
                    });
                }
                resolved.pop();
                let mut joined = Vec::new();
                if !target.starts_with(b"/") {
                    for c in &resolved {
                        joined.push(b'/');
                        joined.extend_from_slice(c);
                    }
                }
                joined.push(b'/');
                joined.extend_from_slice(&target);
                let rest: Vec<Vec<u8>> = pending.drain(..).collect();
                pending.extend(clean_components(&joined));
                pending.extend(rest);
                resolved.clear();
            }
        }
    }
    Ok(to_path(&resolved))
}

fn components(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
}

/// The components of an absolute byte path after lexical cleaning (`..`
/// stops at the root).
fn clean_components(path: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for c in components(path) {
        if c == b".." {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out
}

fn to_path(comps: &[Vec<u8>]) -> PathBuf {
    let mut path = PathBuf::new();
    for c in comps {
        path.push(OsStr::from_bytes(c));
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A tree described by its symlinks and directories.
    struct Fake {
        links: HashMap<&'static str, &'static str>,
        dirs: Vec<&'static str>,
    }

    impl Namespace for Fake {
        fn lookup(&self, rel: &Path) -> Result<Lookup, FileOpError> {
            let key = rel.to_str().unwrap();
            if let Some(t) = self.links.get(key) {
                return Ok(Lookup::Symlink(t.as_bytes().to_vec()));
            }
            if self.dirs.contains(&key) {
                return Ok(Lookup::Other);
            }
            Ok(Lookup::Missing)
        }
    }

    fn fake() -> Fake {
        Fake {
            links: HashMap::from([
                ("usr/lib64", "lib"),
                ("abs", "/usr/lib"),
                ("up", "../../../../etc"),
                ("loop", "loop"),
                ("dot", "x/../usr"),
                ("chain", "abs"),
            ]),
            dirs: vec!["usr", "usr/lib", "etc"],
        }
    }

    fn r(path: &str, follow: bool) -> String {
        resolve(&fake(), path.as_bytes(), follow)
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        assert_eq!(r("/usr/lib64/x", true), "usr/lib/x");
        assert_eq!(r("/abs/x", true), "usr/lib/x");
        assert_eq!(r("/up/passwd", true), "etc/passwd");
        assert_eq!(r("/chain", true), "usr/lib");
        assert_eq!(r("/dot/lib", true), "usr/lib");
        assert_eq!(r("/../../etc", true), "etc");
        assert_eq!(r("/", true), "");
    }

    #[test]
    fn the_last_component_is_kept_unless_followed() {
        assert_eq!(r("/usr/lib64", false), "usr/lib64");
        assert_eq!(r("/abs", false), "abs");
        assert_eq!(r("/abs/lib64", false), "usr/lib/lib64");
        assert_eq!(r("/usr/lib64", true), "usr/lib");
    }

    #[test]
    fn missing_components_are_taken_literally() {
        assert_eq!(r("/nope/abs/x", true), "nope/abs/x");
    }

    #[test]
    fn loops_end_in_an_error() {
        assert!(matches!(
            resolve(&fake(), b"/loop/x", true),
            Err(FileOpError::TooManyLinks { .. })
        ));
    }
}
