//! Reading what a copy selects from its source directory.
//!
//! A source is a directory seen through its `.dockerignore` rules: an
//! excluded path does not exist, for wildcards and symlink resolution too
//! (BuildKit's local source never transfers it). A directory that is
//! excluded but holds a re-included path (`!` exception) exists, with only
//! that path in it. Ownership can be overridden as read (the build context is
//! read as 0:0).
//!
//! [`select`] turns a copy action into a [`Selection`]: the wildcard matches of
//! its source path (fsutil's `ResolveWildcards`: a walk below the literal
//! prefix, in name order, matching relative paths with `filepath.Match`, not
//! descending into a matched directory), each resolved (symlinks followed
//! when the action says so) and scanned into a tree of [`Node`]s carrying the
//! metadata, link targets, xattrs and the include/exclude verdicts of the
//! action's patterns. The same selection drives the copy and the cache digest.

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use kiln_graph::CopyAction;
use kiln_ignore::{DirState, Filter, Verdict};
use rayon::prelude::*;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::error::FileOpError;
use super::fsys::{self, Kind, Meta, Root, Xattrs};
use super::gomatch;
use super::gopath;
use super::resolve::{Lookup, Namespace, display_rel, resolve};

/// A directory that copies read from.
#[derive(Debug, Clone, Copy)]
pub struct SourceTree<'a> {
    /// The directory.
    pub root: &'a Path,
    /// `.dockerignore` rules of a build context: excluded paths are invisible
    /// (to wildcards too).
    pub exclude: &'a [String],
    /// Ownership every entry is read as (the build context is read as 0:0, as
    /// BuildKit's local source does); `None` keeps the files' own ownership
    /// (other stages).
    pub owner: Option<(u32, u32)>,
}

/// An opened source: its root, its visibility rules, its ownership override.
pub(crate) struct Source {
    root: Root,
    visibility: Option<Filter>,
    owner: Option<(u32, u32)>,
}

/// Whether an existing entry is part of the source.
enum Visibility {
    Visible(DirState),
    Hidden,
    /// An excluded directory: part of the source only if something inside is.
    IfNotEmpty(DirState),
}

/// One entry of a selection. Directories hold their selected entries in name
/// order.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) name: OsString,
    /// `lstat` metadata, ownership as read.
    pub(crate) meta: Meta,
    /// Whether the action's include/exclude patterns select the entry itself;
    /// a directory that is not selected is here because something inside is.
    pub(crate) included: bool,
    /// The target, for a symlink.
    pub(crate) link: Vec<u8>,
    pub(crate) xattrs: Xattrs,
    pub(crate) children: Vec<Node>,
}

/// What one match of a copy's source path turned into.
#[derive(Debug)]
pub(crate) enum Content {
    /// Entries to copy, rooted at the matched path.
    Tree(Node),
    /// A tar archive to extract (ADD): the archive file.
    Archive(Node),
}

/// One match of a copy's source path.
#[derive(Debug)]
pub(crate) struct Match {
    /// The path as matched (absolute, or relative to the root for a
    /// wildcard match); its last element names the copy at the destination.
    pub(crate) src: Vec<u8>,
    /// Where the match is, relative to the source root, symlinks resolved.
    pub(crate) rel: PathBuf,
    pub(crate) content: Content,
}

/// Everything a copy action reads.
#[derive(Debug)]
pub(crate) struct Selection {
    pub(crate) matches: Vec<Match>,
}

impl Source {
    /// Opens a source directory.
    pub(crate) fn open(tree: &SourceTree<'_>) -> Result<Source, FileOpError> {
        let root = Root::open(tree.root).map_err(|source| FileOpError::Root {
            path: tree.root.to_path_buf(),
            source,
        })?;
        let visibility = if tree.exclude.is_empty() {
            None
        } else {
            Some(Filter::new::<String>(&[], tree.exclude)?)
        };
        Ok(Source {
            root,
            visibility,
            owner: tree.owner,
        })
    }

    /// A directory as it is: no rules, own ownership (the destination, read
    /// as a source).
    pub(crate) fn plain(root: &Path) -> Result<Source, FileOpError> {
        Source::open(&SourceTree {
            root,
            exclude: &[],
            owner: None,
        })
    }

    pub(crate) fn root(&self) -> &Root {
        &self.root
    }

    /// Where the entry at `rel` is on the host.
    pub(crate) fn host_path(&self, rel: &Path) -> PathBuf {
        self.root.path().join(rel)
    }

    fn read_as(&self, mut meta: Meta) -> Meta {
        if let Some((uid, gid)) = self.owner {
            meta.uid = uid;
            meta.gid = gid;
        }
        meta
    }

    /// Whether the existing entry `rel` (with metadata `meta`) is part of the
    /// source, judging it and its parents from the root.
    fn visibility(&self, rel: &Path, meta: &Meta) -> Result<Visibility, FileOpError> {
        let Some(filter) = &self.visibility else {
            return Ok(Visibility::Visible(DirState::default()));
        };
        let comps: Vec<&OsStr> = rel.iter().collect();
        let mut state = DirState::default();
        let mut prefix = String::new();
        for (i, comp) in comps.iter().enumerate() {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(&comp.to_string_lossy());
            let last = i + 1 == comps.len();
            let is_dir = !last || meta.is_dir();
            match filter.check(&prefix, is_dir, &state)? {
                Verdict::Prune => return Ok(Visibility::Hidden),
                Verdict::Include(next) => {
                    state = next;
                    if last {
                        return Ok(Visibility::Visible(state));
                    }
                }
                Verdict::Exclude(next) => {
                    state = next;
                    if last {
                        return Ok(if is_dir {
                            Visibility::IfNotEmpty(state)
                        } else {
                            Visibility::Hidden
                        });
                    }
                }
            }
        }
        Ok(Visibility::Visible(DirState::default()))
    }

    /// The metadata of `rel` as the source shows it and the pattern state for
    /// its entries; `None` if it does not exist or is excluded.
    pub(crate) fn stat(&self, rel: &Path) -> Result<Option<(Meta, DirState)>, FileOpError> {
        let meta = self
            .root
            .lstat(rel)
            .map_err(|e| FileOpError::io("lstat", display_rel(rel), e))?;
        let Some(meta) = meta else {
            return Ok(None);
        };
        Ok(match self.visibility(rel, &meta)? {
            Visibility::Visible(state) => Some((self.read_as(meta), state)),
            Visibility::Hidden => None,
            Visibility::IfNotEmpty(state) => self
                .has_visible_entry(rel, &state)?
                .then(|| (self.read_as(meta), state)),
        })
    }

    /// Whether the excluded directory `rel` holds a re-included entry.
    fn has_visible_entry(&self, rel: &Path, state: &DirState) -> Result<bool, FileOpError> {
        let Some(filter) = &self.visibility else {
            return Ok(true);
        };
        let dir = self.open_dir(rel)?;
        for name in fsys::list_dir(dir.as_fd()).map_err(|e| read_dir_err(rel, e))? {
            let child = rel.join(&name);
            let Some(meta) = stat_at(dir.as_fd(), &name, &child)? else {
                continue;
            };
            match filter.check(&pattern_path(&child), meta.is_dir(), state)? {
                Verdict::Include(_) => return Ok(true),
                Verdict::Exclude(next)
                    if meta.is_dir() && self.has_visible_entry(&child, &next)? =>
                {
                    return Ok(true);
                }
                _ => {}
            }
        }
        Ok(false)
    }

    fn open_dir(&self, rel: &Path) -> Result<OwnedFd, FileOpError> {
        self.root
            .open_dir(rel)
            .map_err(|e| FileOpError::io("open", display_rel(rel), e))
    }

    /// The entries of the directory `rel` that are part of the source, in
    /// name order, with the state for looking into them.
    fn children(
        &self,
        rel: &Path,
        state: &DirState,
    ) -> Result<Vec<(OsString, Meta, DirState)>, FileOpError> {
        let dir = self.open_dir(rel)?;
        let mut out = Vec::new();
        for name in fsys::list_dir(dir.as_fd()).map_err(|e| read_dir_err(rel, e))? {
            let child = rel.join(&name);
            let Some(meta) = stat_at(dir.as_fd(), &name, &child)? else {
                continue;
            };
            let next = match &self.visibility {
                None => DirState::default(),
                Some(filter) => match filter.check(&pattern_path(&child), meta.is_dir(), state)? {
                    Verdict::Include(next) => next,
                    Verdict::Exclude(next) if meta.is_dir() => {
                        if !self.has_visible_entry(&child, &next)? {
                            continue;
                        }
                        next
                    }
                    _ => continue,
                },
            };
            out.push((name, self.read_as(meta), next));
        }
        Ok(out)
    }

    /// fsutil's `ResolveWildcards`: the paths `src` stands for. Without a
    /// wildcard, `src` itself (cleaned); otherwise the matches, relative to
    /// the root, in walk order.
    pub(crate) fn resolve_wildcards(
        &self,
        src: &str,
        follow: bool,
    ) -> Result<Vec<Vec<u8>>, FileOpError> {
        let (literal, pattern) = gopath::split_wildcards(src);
        if pattern.is_empty() {
            return Ok(vec![literal.into_bytes()]);
        }
        let base = resolve(self, literal.as_bytes(), follow)?;
        let Some((meta, state)) = self.stat(&base)? else {
            return Err(FileOpError::io(
                "lstat",
                display_rel(&base),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        };
        let mut out = Vec::new();
        if meta.is_dir() {
            let max_depth = gomatch::max_separators(pattern.as_bytes()) + 1;
            self.walk_matches(&base, Path::new(""), &state, &pattern, max_depth, &mut out)?;
        }
        Ok(out)
    }

    fn walk_matches(
        &self,
        base: &Path,
        sub: &Path,
        state: &DirState,
        pattern: &str,
        max_depth: usize,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), FileOpError> {
        let depth = sub.iter().count() + 1;
        for (name, meta, next) in self.children(&base.join(sub), state)? {
            let child = sub.join(&name);
            if gomatch::matches(pattern.as_bytes(), child.as_os_str().as_bytes()) {
                out.push(base.join(&child).into_os_string().into_vec());
                continue;
            }
            if meta.is_dir() && depth < max_depth {
                self.walk_matches(base, &child, &next, pattern, max_depth, out)?;
            }
        }
        Ok(())
    }

    /// BuildKit's `isArchivePath` for ADD: the path `src` (symlinks always
    /// followed) is a regular file whose content, once decompressed (gzip,
    /// bzip2, xz, zstd or none), starts with a valid tar header.
    fn archive(&self, src: &[u8]) -> Result<Option<(PathBuf, Meta)>, FileOpError> {
        let rel = resolve(self, src, true)?;
        let Some((meta, _)) = self.stat(&rel)? else {
            return Ok(None);
        };
        if meta.kind != Kind::File {
            return Ok(None);
        }
        let Ok(fd) = self
            .root
            .open_beneath(&rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        else {
            return Ok(None);
        };
        let Ok(mut reader) = kiln_layer::decompress(std::fs::File::from(fd)) else {
            return Ok(None);
        };
        let mut block = [0u8; 512];
        let mut filled = 0;
        while filled < block.len() {
            match reader.read(&mut block[filled..]) {
                Ok(0) | Err(_) => return Ok(None),
                Ok(n) => filled += n,
            }
        }
        Ok(looks_like_tar_header(&block).then_some((rel, meta)))
    }

    /// Scans the entry at `rel` (which must exist) and, for a directory,
    /// everything in it the action's `patterns` select.
    fn scan(
        &self,
        rel: &Path,
        meta: Meta,
        state: &DirState,
        patterns: &Filter,
    ) -> Result<Node, FileOpError> {
        let (parent, name) = fsys::parent_and_name(rel);
        let name = if rel.as_os_str().is_empty() {
            OsStr::new("")
        } else {
            name
        };
        let parent_fd = self.open_dir(parent)?;
        let (link, xattrs) = self.link_and_xattrs(parent_fd.as_fd(), name, rel, &meta)?;
        let mut node = Node {
            name: name.to_os_string(),
            meta,
            included: true,
            link,
            xattrs,
            children: Vec::new(),
        };
        if meta.is_dir() {
            let dir = self.open_dir(rel)?;
            let vis = self.visibility.as_ref().map(|_| state);
            let scope = Scope {
                patterns,
                vis,
                sel: &DirState::default(),
                sel_prefix: "",
            };
            node.children = self.scan_dir(dir.as_fd(), rel, &scope)?.0;
        }
        Ok(node)
    }

    fn link_and_xattrs(
        &self,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        rel: &Path,
        meta: &Meta,
    ) -> Result<(Vec<u8>, Xattrs), FileOpError> {
        let link = if meta.kind == Kind::Symlink {
            rustix::fs::readlinkat(dir, name, Vec::new())
                .map_err(|e| FileOpError::io("readlink", display_rel(rel), e))?
                .into_bytes()
        } else {
            Vec::new()
        };
        let xattrs = if name.is_empty() {
            fsys::read_xattrs_fd(dir)
        } else {
            fsys::read_xattrs(dir, name)
        }
        .map_err(|e| FileOpError::io("read xattrs of", display_rel(rel), e))?;
        Ok((link, xattrs))
    }

    /// The selected entries of the open directory `dir` (at `rel`), and
    /// whether it holds anything that is part of the source at all.
    fn scan_dir(
        &self,
        dir: BorrowedFd<'_>,
        rel: &Path,
        scope: &Scope<'_>,
    ) -> Result<(Vec<Node>, bool), FileOpError> {
        let names = fsys::list_dir(dir).map_err(|e| read_dir_err(rel, e))?;
        let scanned: Vec<Result<Option<Scanned>, FileOpError>> = names
            .into_par_iter()
            .map(|name| self.scan_entry(dir, rel, name, scope))
            .collect();
        let mut nodes = Vec::new();
        let mut any_visible = false;
        for entry in scanned {
            let Some(entry) = entry? else { continue };
            any_visible |= entry.visible;
            if let Some(node) = entry.node {
                nodes.push(node);
            }
        }
        Ok((nodes, any_visible))
    }

    fn scan_entry(
        &self,
        dir: BorrowedFd<'_>,
        rel: &Path,
        name: OsString,
        scope: &Scope<'_>,
    ) -> Result<Option<Scanned>, FileOpError> {
        let child_rel = rel.join(&name);
        let Some(meta) = stat_at(dir, &name, &child_rel)? else {
            return Ok(None);
        };
        let is_dir = meta.is_dir();

        // Part of the source at all?
        let mut child_vis = None;
        let mut surely_visible = true;
        if let (Some(filter), Some(state)) = (&self.visibility, scope.vis) {
            match filter.check(&pattern_path(&child_rel), is_dir, state)? {
                Verdict::Prune => return Ok(None),
                Verdict::Include(next) => child_vis = Some(next),
                Verdict::Exclude(next) if is_dir => {
                    child_vis = Some(next);
                    surely_visible = false;
                }
                Verdict::Exclude(_) => return Ok(None),
            }
        }

        // Selected by the action's patterns?
        let sel_path = if scope.patterns.is_empty() {
            String::new()
        } else if scope.sel_prefix.is_empty() {
            name.to_string_lossy().into_owned()
        } else {
            format!("{}/{}", scope.sel_prefix, name.to_string_lossy())
        };
        let (included, sel_state) = if scope.patterns.is_empty() {
            (true, DirState::default())
        } else {
            match scope.patterns.check(&sel_path, is_dir, scope.sel)? {
                Verdict::Prune => {
                    let visible = surely_visible
                        || match &child_vis {
                            Some(state) => self.has_visible_entry(&child_rel, state)?,
                            None => true,
                        };
                    return Ok(Some(Scanned {
                        node: None,
                        visible,
                    }));
                }
                Verdict::Include(next) => (true, next),
                Verdict::Exclude(next) => (false, next),
            }
        };

        let meta = self.read_as(meta);
        let mut children = Vec::new();
        if is_dir {
            let sub = match fsys::openat2_retry(
                dir,
                Path::new(&name),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(FileOpError::io("open", display_rel(&child_rel), e)),
            };
            let sub_scope = Scope {
                patterns: scope.patterns,
                vis: child_vis.as_ref(),
                sel: &sel_state,
                sel_prefix: &sel_path,
            };
            let (nodes, any_visible) = self.scan_dir(sub.as_fd(), &child_rel, &sub_scope)?;
            if !surely_visible && !any_visible {
                return Ok(Some(Scanned {
                    node: None,
                    visible: false,
                }));
            }
            children = nodes;
        }
        if !included && children.is_empty() {
            return Ok(Some(Scanned {
                node: None,
                visible: true,
            }));
        }
        let (link, xattrs) = self.link_and_xattrs(dir, &name, &child_rel, &meta)?;
        Ok(Some(Scanned {
            node: Some(Node {
                name,
                meta,
                included,
                link,
                xattrs,
                children,
            }),
            visible: true,
        }))
    }
}

/// The pattern context of a directory being scanned.
struct Scope<'a> {
    /// The action's include/exclude patterns.
    patterns: &'a Filter,
    /// The `.dockerignore` state of the directory, if the source has rules.
    vis: Option<&'a DirState>,
    /// The action's pattern state of the directory.
    sel: &'a DirState,
    /// The directory's path relative to the copied path, for the action's
    /// patterns.
    sel_prefix: &'a str,
}

struct Scanned {
    node: Option<Node>,
    /// Whether the entry is part of the source (selected or not).
    visible: bool,
}

impl Namespace for Source {
    fn lookup(&self, rel: &Path) -> Result<Lookup, FileOpError> {
        match self.stat(rel)? {
            None => Ok(Lookup::Missing),
            Some((meta, _)) if meta.kind == Kind::Symlink => {
                Ok(Lookup::Symlink(self.root.readlink(rel).map_err(|e| {
                    FileOpError::io("readlink", display_rel(rel), e)
                })?))
            }
            Some(_) => Ok(Lookup::Other),
        }
    }
}

fn stat_at(dir: BorrowedFd<'_>, name: &OsStr, rel: &Path) -> Result<Option<Meta>, FileOpError> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(Meta::from_stat(&st))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(FileOpError::io("lstat", display_rel(rel), e)),
    }
}

fn read_dir_err(rel: &Path, e: Errno) -> FileOpError {
    FileOpError::io("read directory", display_rel(rel), e)
}

/// A relative path as patterns see it: `/`-separated text, invalid UTF-8
/// replaced.
fn pattern_path(rel: &Path) -> String {
    rel.to_string_lossy().into_owned()
}

/// What the copy action `action` reads from `source`.
pub(crate) fn select(source: &Source, action: &CopyAction) -> Result<Selection, FileOpError> {
    let src = gopath::clean_action_path(&action.src);
    let paths = if action.allow_wildcard {
        let found = source.resolve_wildcards(&src, action.follow_symlinks)?;
        if found.is_empty() && !action.allow_empty_wildcard {
            return Err(FileOpError::NoMatch {
                pattern: src.clone(),
            });
        }
        found
    } else {
        vec![src.clone().into_bytes()]
    };
    let patterns = Filter::new(&action.include_patterns, &action.exclude_patterns)?;
    let mut matches = Vec::with_capacity(paths.len());
    for path in paths {
        if action.unpack_archives
            && let Some((rel, meta)) = source.archive(&path)?
        {
            let node = source.scan(&rel, meta, &DirState::default(), &patterns)?;
            matches.push(Match {
                src: path,
                rel,
                content: Content::Archive(node),
            });
            continue;
        }
        let rel = resolve(source, &path, action.follow_symlinks)?;
        let Some((meta, state)) = source.stat(&rel)? else {
            let shown = gopath::join(&["/", &String::from_utf8_lossy(&path)]);
            return Err(FileOpError::NotFound { path: shown });
        };
        let node = source.scan(&rel, meta, &state, &patterns)?;
        matches.push(Match {
            src: path,
            rel,
            content: Content::Tree(node),
        });
    }
    Ok(Selection { matches })
}

/// Whether a 512-byte block is a tar header Go's `archive/tar` accepts: a
/// valid checksum (unsigned or signed sum) and numeric fields that parse.
fn looks_like_tar_header(block: &[u8; 512]) -> bool {
    if block.iter().all(|&b| b == 0) {
        return false;
    }
    let Some(stored) = parse_numeric(&block[148..156]) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    if stored != unsigned && stored != signed {
        return false;
    }
    // mode, uid, gid, size, mtime
    [(100, 108), (108, 116), (116, 124), (124, 136), (136, 148)]
        .iter()
        .all(|&(start, end)| parse_numeric(&block[start..end]).is_some())
}

/// A tar numeric field: base-256 when the high bit of the first byte is set,
/// otherwise octal text padded with spaces or NULs.
fn parse_numeric(field: &[u8]) -> Option<i64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        return Some(0);
    }
    let trimmed = {
        let start = field.iter().position(|&b| b != b' ' && b != 0);
        let end = field.iter().rposition(|&b| b != b' ' && b != 0);
        match (start, end) {
            (Some(s), Some(e)) => &field[s..=e],
            _ => return Some(0),
        }
    };
    let text = match trimmed.iter().position(|&b| b == 0) {
        Some(nul) => &trimmed[..nul],
        None => trimmed,
    };
    let text = std::str::from_utf8(text).ok()?;
    u64::from_str_radix(text, 8).ok().map(|v| v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str) -> [u8; 512] {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        let mut block = [0u8; 512];
        block.copy_from_slice(h.as_bytes());
        block
    }

    #[test]
    fn tar_headers_are_recognised_by_checksum() {
        let mut block = header("a.txt");
        assert!(looks_like_tar_header(&block));
        block[0] ^= 1;
        assert!(!looks_like_tar_header(&block));
        assert!(!looks_like_tar_header(&[0u8; 512]));
        let mut text = [b'x'; 512];
        text[..5].copy_from_slice(b"hello");
        assert!(!looks_like_tar_header(&text));
    }

    #[test]
    fn numeric_fields_parse_like_go() {
        assert_eq!(parse_numeric(b"0000644\0"), Some(0o644));
        assert_eq!(parse_numeric(b"  12 \0\0\0"), Some(0o12));
        assert_eq!(parse_numeric(b"\0\0\0\0"), Some(0));
        assert_eq!(parse_numeric(b"0009\0"), None);
    }
}
