//! Executing a copy action: fsutil's `Copy` as BuildKit's file backend calls
//! it, once per match of the source path.
//!
//! # The rules, in BuildKit's order
//!
//! 1. The destination's parent directories are created (`MkdirAll`, mode
//!    0755 or the octal `--chmod`, owned by `--chown`): for a destination
//!    ending in `/` or `/.`, the destination itself.
//! 2. The destination is resolved inside the root, following symlinks. A
//!    directory copied without `contents_only` onto an existing path, or a
//!    non-directory copied onto an existing directory, goes *into* it, under
//!    the last element of the source path. A directory copied with
//!    `contents_only` onto a missing path creates it (`MkdirAll`).
//! 3. The tree is copied: directories are merged into existing ones, any
//!    other existing entry is replaced (a directory is never replaced by a
//!    file, nor a file by a directory, unless `replace_existing`). Copies get
//!    the source's mode, ownership (as read), atime/mtime and xattrs, or the
//!    `--chmod`/`--chown`/timestamp of the action; symlinks are copied as
//!    symlinks; files hard-linked together are linked together again. The
//!    top-level directory keeps the destination's mode and owner when it
//!    existed (only its times come from the source). Directories that only
//!    lead to selected entries (include/exclude patterns) are created when
//!    the first selected entry inside them is.
//!
//! # Execution
//!
//! One sequential pass makes the directories, symlinks and special files and
//! decides every replacement; the data of regular files is then copied by a
//! thread pool (`copy_file_range`), hard links are made, and finally the
//! metadata of directories is set deepest first, so that the result is the
//! same whatever order the threads ran in.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use kiln_graph::{Chmod, CopyAction};
use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;

use super::chmod::ModeSet;
use super::digest::FileStat;
use super::error::FileOpError;
use super::fsys::{self, Kind, Meta, Root};
use super::gopath;
use super::owner::{Owner, chown_ids};
use super::resolve::{DestNamespace, display_rel, resolve};
use super::source::{Content, Match, Node, Source, select};

/// How copies get their permission bits.
pub(crate) enum ModeRule {
    Keep,
    Octal(u32),
    Symbolic(ModeSet),
}

impl ModeRule {
    pub(crate) fn new(chmod: Option<&Chmod>) -> Result<ModeRule, FileOpError> {
        Ok(match chmod {
            None => ModeRule::Keep,
            Some(Chmod::Octal(mode)) => ModeRule::Octal(*mode),
            Some(Chmod::Symbolic(expr)) => ModeRule::Symbolic(ModeSet::parse(expr)?),
        })
    }

    fn apply(&self, meta: &Meta) -> u32 {
        match self {
            ModeRule::Keep => meta.mode,
            ModeRule::Octal(mode) => mode & 0o7777,
            ModeRule::Symbolic(set) => set.apply(meta.mode, meta.is_dir()),
        }
    }

    /// The mode of directories created on the way to the destination: the
    /// octal `--chmod`'s permission bits, or 0755.
    fn parent_dir_mode(&self) -> u32 {
        match self {
            ModeRule::Octal(mode) => mode & 0o777,
            _ => 0o755,
        }
    }
}

/// The options of one copy action, resolved.
pub(crate) struct CopyParams {
    pub(crate) owner: Option<Owner>,
    pub(crate) mode: ModeRule,
    pub(crate) utime: Option<Timespec>,
    pub(crate) replace_existing: bool,
    pub(crate) contents_only: bool,
}

/// A regular file a copy wrote, where its bytes came from, and what `stat` said
/// of both once the copy was complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedFile {
    /// The copy, relative to the destination root.
    pub dest: PathBuf,
    /// The op input the file was copied from.
    pub input: usize,
    /// The original, relative to that input's root.
    pub source: PathBuf,
    /// The original after its data was copied.
    pub source_stat: FileStat,
    /// The copy after its data and metadata were written.
    pub dest_stat: FileStat,
}

impl FileStat {
    fn of(st: &rustix::fs::Stat) -> FileStat {
        let meta = Meta::from_stat(st);
        FileStat {
            dev: meta.dev,
            ino: meta.ino,
            size: meta.size,
            mtime: (meta.mtime.tv_sec, meta.mtime.tv_nsec),
            ctime: (meta.ctime.tv_sec, meta.ctime.tv_nsec),
        }
    }
}

/// Runs the copy action `action` from `source` into `dest`; returns the regular
/// files it copied (not those of an unpacked archive).
pub(crate) fn copy(
    dest: &Root,
    source: &Source,
    action: &CopyAction,
    params: &CopyParams,
) -> Result<Vec<CopiedFile>, FileOpError> {
    if !action.create_dest_path {
        let rel = resolve(&DestNamespace(dest), action.dest.as_bytes(), true)?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        match dest.lstat(parent) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(FileOpError::io(
                    "stat",
                    action.dest.clone(),
                    std::io::Error::from(std::io::ErrorKind::NotFound),
                ));
            }
            Err(e) => return Err(FileOpError::io("stat", action.dest.clone(), e)),
        }
    }
    let selection = select(source, action)?;
    let dest_path = gopath::clean_action_path(&action.dest);
    let mut copied = Vec::new();
    for m in &selection.matches {
        match &m.content {
            Content::Archive(_) => unpack(dest, source, m, &dest_path, params)?,
            Content::Tree(node) => {
                copied.extend(copy_match(dest, source, m, node, &dest_path, params)?);
            }
        }
    }
    for c in &mut copied {
        c.input = action.source;
    }
    Ok(copied)
}

/// fsutil's `Copy` for one source path.
fn copy_match(
    dest: &Root,
    source: &Source,
    m: &Match,
    node: &Node,
    dest_path: &str,
    params: &CopyParams,
) -> Result<Vec<CopiedFile>, FileOpError> {
    let perm = params.mode.parent_dir_mode();
    let (dir_part, file_part) = gopath::split(dest_path);
    let ensure = if !file_part.is_empty() && file_part != "." {
        dir_part
    } else {
        dest_path
    };
    let ensure_rel = resolve(&DestNamespace(dest), ensure.as_bytes(), true)?;
    let mut created = mkdir_all(dest, &ensure_rel, perm, params.owner, params.utime)?;

    // prepareTargetDir
    let mut target = resolve(
        &DestNamespace(dest),
        gopath::clean(dest_path).as_bytes(),
        true,
    )?;
    let existing = dest
        .lstat(&target)
        .map_err(|e| FileOpError::io("stat", display_rel(&target), e))?;
    let src_is_dir = node.meta.is_dir();
    let into = match &existing {
        Some(meta) => (!params.contents_only && src_is_dir) || (!src_is_dir && meta.is_dir()),
        None => false,
    };
    if into {
        let base = gopath::base(&m.src);
        if base != b"/" {
            target.push(OsStr::from_bytes(base));
        }
    }
    let parent_dir = if params.contents_only && src_is_dir && existing.is_none() {
        target.clone()
    } else {
        target.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    created.extend(mkdir_all(
        dest,
        &parent_dir,
        perm,
        params.owner,
        params.utime,
    )?);

    let mut copier = Copier {
        dest,
        source,
        params,
        cached_dir: None,
        inodes: HashMap::new(),
        pending: Vec::new(),
        files: Vec::new(),
        links: Vec::new(),
        dirs: Vec::new(),
    };
    copier.copy_node(node, m.rel.clone(), target, false, false)?;
    let copied = copier.finish()?;

    if let Some(t) = params.utime {
        for dir in created.iter().rev() {
            set_times(dest, dir, &fsys::fixed_times(t))?;
        }
    }
    Ok(copied)
}

/// fsutil's `MkdirAll` on a resolved path: creates the missing directories
/// of `rel` with mode `perm` (`--chown` owner, `timestamp` times) and returns
/// them, outermost first. An existing component that is not a directory is
/// an error.
pub(crate) fn mkdir_all(
    dest: &Root,
    rel: &Path,
    perm: u32,
    owner: Option<Owner>,
    utime: Option<Timespec>,
) -> Result<Vec<PathBuf>, FileOpError> {
    let mut created = Vec::new();
    let mut dir: Option<OwnedFd> = None;
    let mut cur = PathBuf::new();
    for comp in rel.iter() {
        cur.push(comp);
        let parent = match &dir {
            Some(fd) => fd.as_fd(),
            None => dest.fd(),
        };
        let mkdir_err = |e: Errno| FileOpError::io("mkdir", display_rel(&cur), e);
        let next = match rustix::fs::statat(parent, comp, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if Meta::from_stat(&st).is_dir() => fsys::openat2_retry(
                parent,
                Path::new(comp),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(mkdir_err)?,
            Ok(_) => return Err(mkdir_err(Errno::NOTDIR)),
            Err(Errno::NOENT) => {
                let fd = fsys::mkdir_exact(parent, comp, perm & 0o777).map_err(mkdir_err)?;
                if let Some(o) = owner {
                    fchown(&fd, o.uid, o.gid)
                        .map_err(|e| FileOpError::io("chown", display_rel(&cur), e))?;
                }
                if let Some(t) = utime {
                    rustix::fs::futimens(&fd, &fsys::fixed_times(t))
                        .map_err(|e| FileOpError::io("utimes", display_rel(&cur), e))?;
                }
                created.push(cur.clone());
                fd
            }
            Err(e) => return Err(mkdir_err(e)),
        };
        dir = Some(next);
    }
    Ok(created)
}

fn fchown(fd: &OwnedFd, uid: u32, gid: u32) -> Result<(), Errno> {
    let (uid, gid) = chown_ids(uid, gid);
    rustix::fs::fchown(fd, uid, gid)
}

fn set_times(dest: &Root, rel: &Path, times: &Timestamps) -> Result<(), FileOpError> {
    let (parent, name) = fsys::parent_and_name(rel);
    let dir = dest
        .open_dir(parent)
        .map_err(|e| FileOpError::io("utimes", display_rel(rel), e))?;
    rustix::fs::utimensat(&dir, name, times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| FileOpError::io("utimes", display_rel(rel), e))
}

/// A directory being walked, whose creation may wait for a selected entry.
struct Pending<'a> {
    node: &'a Node,
    dst: PathBuf,
    copied: bool,
}

/// A regular file whose data is copied by the pool.
struct FileJob<'a> {
    node: &'a Node,
    src: PathBuf,
    dst: PathBuf,
}

/// A directory whose metadata is set once everything inside it is written.
struct DirJob<'a> {
    node: &'a Node,
    dst: PathBuf,
    /// All metadata; otherwise only the times (an existing top-level
    /// destination).
    full: bool,
}

struct Copier<'a> {
    dest: &'a Root,
    source: &'a Source,
    params: &'a CopyParams,
    /// The destination directory last written into, kept open.
    cached_dir: Option<(PathBuf, OwnedFd)>,
    /// Source inode → the first copy of it, for hard links.
    inodes: HashMap<(u64, u64), PathBuf>,
    pending: Vec<Pending<'a>>,
    files: Vec<FileJob<'a>>,
    /// (existing copy, new link)
    links: Vec<(PathBuf, PathBuf)>,
    dirs: Vec<DirJob<'a>>,
}

impl<'a> Copier<'a> {
    /// The open destination directory `rel`.
    fn dir(&mut self, rel: &Path) -> Result<&OwnedFd, FileOpError> {
        let hit = matches!(&self.cached_dir, Some((cached, _)) if cached == rel);
        if !hit {
            self.cached_dir = None;
            let fd = self
                .dest
                .open_dir(rel)
                .map_err(|e| FileOpError::io("open", display_rel(rel), e))?;
            self.cached_dir = Some((rel.to_path_buf(), fd));
        }
        self.cached_dir
            .as_ref()
            .map(|(_, fd)| fd)
            .ok_or_else(|| FileOpError::io("open", display_rel(rel), Errno::BADF))
    }

    fn owner_of(&self, meta: &Meta) -> (u32, u32) {
        match self.params.owner {
            Some(o) => (o.uid, o.gid),
            None => (meta.uid, meta.gid),
        }
    }

    fn times_of(&self, meta: &Meta) -> Timestamps {
        match self.params.utime {
            Some(t) => fsys::fixed_times(t),
            None => meta.times(),
        }
    }

    /// fsutil's `copier.copy` for one entry.
    fn copy_node(
        &mut self,
        node: &'a Node,
        src: PathBuf,
        dst: PathBuf,
        overwrite_meta: bool,
        parent_is_new: bool,
    ) -> Result<(), FileOpError> {
        let mut existing = if parent_is_new {
            None
        } else {
            self.dest
                .lstat(&dst)
                .map_err(|e| FileOpError::io("stat", display_rel(&dst), e))?
        };
        let include = node.included;
        if include {
            if self.params.replace_existing
                && let Some(t) = &existing
                && !(node.meta.is_dir() && t.is_dir())
            {
                self.remove_all(&dst)?;
                existing = None;
            }
            self.create_parent_dirs(overwrite_meta)?;
        }
        if !node.meta.is_dir() {
            if !include {
                return Ok(());
            }
            if let Some(t) = &existing {
                if t.is_dir() {
                    return Err(FileOpError::ReplaceDirectory {
                        path: display_rel(&dst),
                    });
                }
                let (parent, name) = fsys::parent_and_name(&dst);
                let dir = self.dir(parent)?;
                rustix::fs::unlinkat(dir, name, AtFlags::empty())
                    .map_err(|e| FileOpError::io("remove", display_rel(&dst), e))?;
            }
        }
        match node.meta.kind {
            Kind::Dir => {
                let created = if include {
                    self.copy_directory_only(node, &dst, false, Some(existing))?
                } else {
                    false
                };
                self.pending.push(Pending {
                    node,
                    dst: dst.clone(),
                    copied: include,
                });
                for child in &node.children {
                    self.copy_node(
                        child,
                        src.join(&child.name),
                        dst.join(&child.name),
                        true,
                        created,
                    )?;
                }
                self.pending.pop();
                let (full, times_only) = if overwrite_meta {
                    (include, false)
                } else {
                    (created, !created)
                };
                if full || (times_only && existing.is_some()) {
                    self.dirs.push(DirJob { node, dst, full });
                }
            }
            Kind::File => {
                if node.meta.nlink > 1 {
                    let key = (node.meta.dev, node.meta.ino);
                    if let Some(first) = self.inodes.get(&key) {
                        self.links.push((first.clone(), dst));
                        return Ok(());
                    }
                    self.inodes.insert(key, dst.clone());
                }
                self.files.push(FileJob { node, src, dst });
            }
            Kind::Symlink => self.make_special(node, &dst, true)?,
            _ => self.make_special(node, &dst, false)?,
        }
        Ok(())
    }

    /// fsutil's `copyDirectoryOnly`: makes the directory unless it exists;
    /// whether it was made. `known`: the destination's `lstat`, if already
    /// taken. `chmod_existing`: give an existing directory the source's mode
    /// now (when no full metadata update follows).
    fn copy_directory_only(
        &mut self,
        node: &Node,
        dst: &Path,
        chmod_existing: bool,
        known: Option<Option<Meta>>,
    ) -> Result<bool, FileOpError> {
        let existing = match known {
            Some(k) => k,
            None => self
                .dest
                .lstat(dst)
                .map_err(|e| FileOpError::io("stat", display_rel(dst), e))?,
        };
        match existing {
            None => {
                let (parent, name) = fsys::parent_and_name(dst);
                let dir = self.dir(parent)?;
                // Writable by its owner until its own mode is set, last.
                fsys::mkdir_exact(dir.as_fd(), name, 0o700)
                    .map_err(|e| FileOpError::io("mkdir", display_rel(dst), e))?;
                Ok(true)
            }
            Some(meta) if !meta.is_dir() => Err(FileOpError::NotADirectory {
                path: display_rel(dst),
            }),
            Some(_) => {
                if chmod_existing {
                    let (parent, name) = fsys::parent_and_name(dst);
                    let dir = self.dir(parent)?;
                    rustix::fs::chmodat(
                        dir,
                        name,
                        Mode::from_raw_mode(node.meta.mode),
                        AtFlags::empty(),
                    )
                    .map_err(|e| FileOpError::io("chmod", display_rel(dst), e))?;
                }
                Ok(false)
            }
        }
    }

    /// fsutil's `createParentDirs`: makes the directories on the way to a
    /// selected entry that were walked without being selected themselves.
    fn create_parent_dirs(&mut self, overwrite_meta: bool) -> Result<(), FileOpError> {
        for i in 0..self.pending.len() {
            if self.pending[i].copied {
                continue;
            }
            let node = self.pending[i].node;
            let dst = self.pending[i].dst.clone();
            if self.copy_directory_only(node, &dst, overwrite_meta, None)? {
                let fd = self
                    .dest
                    .open_dir(&dst)
                    .map_err(|e| FileOpError::io("open", display_rel(&dst), e))?;
                self.set_fd_meta(&fd, node, &dst)?;
            }
            self.pending[i].copied = true;
        }
        Ok(())
    }

    fn remove_all(&mut self, dst: &Path) -> Result<(), FileOpError> {
        let (parent, name) = fsys::parent_and_name(dst);
        let dir = self.dir(parent)?;
        fsys::remove_all_at(dir.as_fd(), name)
            .map_err(|e| FileOpError::io("remove", display_rel(dst), e))?;
        self.cached_dir = None;
        Ok(())
    }

    /// Creates a symlink, device, fifo or socket stub and sets its metadata.
    fn make_special(&mut self, node: &Node, dst: &Path, symlink: bool) -> Result<(), FileOpError> {
        let (uid, gid) = self.owner_of(&node.meta);
        let mode = self.params.mode.apply(&node.meta);
        let times = self.times_of(&node.meta);
        let (parent, name) = fsys::parent_and_name(dst);
        let err = |op, e: Errno| FileOpError::io(op, display_rel(dst), e);
        let dir = self.dir(parent)?;
        if symlink {
            rustix::fs::symlinkat(node.link.as_slice(), dir, name)
                .map_err(|e| err("symlink", e))?;
        } else {
            // A socket cannot be recreated: BuildKit leaves an empty file.
            let (file_type, dev) = match node.meta.kind {
                Kind::CharDevice => (FileType::CharacterDevice, node.meta.rdev),
                Kind::BlockDevice => (FileType::BlockDevice, node.meta.rdev),
                Kind::Fifo => (FileType::Fifo, 0),
                _ => (FileType::RegularFile, 0),
            };
            rustix::fs::mknodat(dir, name, file_type, Mode::from_raw_mode(0o600), dev)
                .map_err(|e| err("mknod", e))?;
        }
        let (uid, gid) = chown_ids(uid, gid);
        rustix::fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| err("chown", e))?;
        if !symlink {
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(mode), AtFlags::empty())
                .map_err(|e| err("chmod", e))?;
        }
        fsys::set_xattrs_at(dir.as_fd(), name, &node.xattrs);
        rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| err("utimes", e))?;
        Ok(())
    }

    /// Owner, mode, xattrs and times of a copy, on its open descriptor (chown
    /// first: it clears setuid bits).
    fn set_fd_meta(&self, fd: &OwnedFd, node: &Node, dst: &Path) -> Result<(), FileOpError> {
        let (uid, gid) = self.owner_of(&node.meta);
        let err = |op, e: Errno| FileOpError::io(op, display_rel(dst), e);
        fchown(fd, uid, gid).map_err(|e| err("chown", e))?;
        rustix::fs::fchmod(fd, Mode::from_raw_mode(self.params.mode.apply(&node.meta)))
            .map_err(|e| err("chmod", e))?;
        fsys::set_xattrs_fd(fd.as_fd(), &node.xattrs);
        rustix::fs::futimens(fd, &self.times_of(&node.meta)).map_err(|e| err("utimes", e))
    }

    /// Copies one regular file: data, then metadata.
    fn copy_file(&self, job: &FileJob<'_>) -> Result<CopiedFile, FileOpError> {
        let src = self
            .source
            .root()
            .open_beneath(&job.src, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| FileOpError::io("open", display_rel(&job.src), e))?;
        let dst = self
            .dest
            .open_beneath(
                &job.dst,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| FileOpError::io("create", display_rel(&job.dst), e))?;
        fsys::copy_data(&src, &dst)
            .map_err(|e| FileOpError::io("copy", display_rel(&job.dst), e))?;
        self.set_fd_meta(&dst, job.node, &job.dst)?;
        let stat = |fd: &OwnedFd, path: &Path| {
            rustix::fs::fstat(fd)
                .map(|st| FileStat::of(&st))
                .map_err(|e| FileOpError::io("stat", display_rel(path), e))
        };
        Ok(CopiedFile {
            dest: job.dst.clone(),
            input: 0,
            source: job.src.clone(),
            source_stat: stat(&src, &job.src)?,
            dest_stat: stat(&dst, &job.dst)?,
        })
    }

    /// Copies file data in parallel, makes hard links, then sets directory
    /// metadata deepest first.
    fn finish(self) -> Result<Vec<CopiedFile>, FileOpError> {
        let results: Vec<Result<CopiedFile, FileOpError>> = self
            .files
            .par_iter()
            .map(|job| self.copy_file(job))
            .collect();
        let copied = results.into_iter().collect::<Result<Vec<_>, _>>()?;

        for (existing, link) in &self.links {
            let (old_parent, old_name) = fsys::parent_and_name(existing);
            let (new_parent, new_name) = fsys::parent_and_name(link);
            let err = |e: Errno| FileOpError::io("link", display_rel(link), e);
            let old_dir = self.dest.open_dir(old_parent).map_err(err)?;
            let new_dir = self.dest.open_dir(new_parent).map_err(err)?;
            rustix::fs::linkat(&old_dir, old_name, &new_dir, new_name, AtFlags::empty())
                .map_err(err)?;
        }

        for job in &self.dirs {
            let fd = self
                .dest
                .open_dir(&job.dst)
                .map_err(|e| FileOpError::io("open", display_rel(&job.dst), e))?;
            if job.full {
                self.set_fd_meta(&fd, job.node, &job.dst)?;
            } else {
                rustix::fs::futimens(&fd, &self.times_of(&job.node.meta))
                    .map_err(|e| FileOpError::io("utimes", display_rel(&job.dst), e))?;
            }
        }
        Ok(copied)
    }
}

/// ADD's archive extraction (BuildKit's `unpack`): the destination directory
/// is created (mode 0755, `--chown` owner) and the archive applied onto it
/// as moby's `chrootarchive.Untar` does, `--chown` giving every entry its
/// owner.
fn unpack(
    dest: &Root,
    source: &Source,
    m: &Match,
    dest_path: &str,
    params: &CopyParams,
) -> Result<(), FileOpError> {
    let target = resolve(&DestNamespace(dest), dest_path.as_bytes(), true)?;
    mkdir_all(dest, &target, 0o755, params.owner, params.utime)?;
    let archive = display_rel(&m.rel);
    let fd = source
        .root()
        .open_beneath(&m.rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| FileOpError::io("open", archive.clone(), e))?;
    let mut options = kiln_layer::ExtractOptions::apply();
    options.owner = params.owner.map(|o| kiln_layer::Owner {
        uid: o.uid,
        gid: o.gid,
    });
    kiln_layer::extract_layer(
        std::fs::File::from(fd),
        &dest.path().join(&target),
        &options,
    )
    .map_err(|source| FileOpError::Extract {
        archive,
        dest: display_rel(&target),
        source,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_directories_get_the_octal_mode_without_special_bits() {
        assert_eq!(ModeRule::Octal(0o4750).parent_dir_mode(), 0o750);
        assert_eq!(ModeRule::Keep.parent_dir_mode(), 0o755);
        let symbolic = ModeRule::new(Some(&Chmod::Symbolic("u+x".into()))).unwrap();
        assert_eq!(symbolic.parent_dir_mode(), 0o755);
    }
}
