//! Extraction: [`extract_layer`] unpacks a (possibly compressed) tar into a
//! directory, either as a layer in overlay upper-dir format or applied onto an
//! existing tree the way `ADD archive.tar.gz /dest/` does.
//!
//! # Modes
//!
//! - [`ExtractMode::Layer`] (an image layer into an empty directory): OCI
//!   whiteouts become overlay ones (`.wh.<name>` → character device 0/0 named
//!   `<name>`, `.wh..wh..opq` → xattr `trusted.overlay.opaque=y` on its
//!   directory; other `.wh..wh.*` AUFS metadata is dropped). A whiteout for a
//!   path the same layer also contains is dropped: OCI says a whiteout only
//!   hides lower layers. Symlinks are never followed: an entry whose parent is
//!   a symlink is refused. Symlink targets are not checked (they are read
//!   inside the container's root later).
//! - [`ExtractMode::Apply`] (BuildKit's `ADD` auto-extraction, which calls
//!   moby's `chrootarchive.Untar` with the default AUFS whiteout format, i.e.
//!   no whiteout conversion): `.wh.*` entries are written as ordinary files;
//!   moby runs it chrooted into `dest`, so every path is read as inside that
//!   root: symlinks already in the tree or created by the archive are followed
//!   with `RESOLVE_IN_ROOT` (`/` and `..` stop at `dest`), `..` at the top of
//!   an entry name or a hard-link target stays at `dest` instead of being
//!   refused, and symlinks are created with whatever target they name;
//!   ownership can be overridden (`ADD --chown`).
//!
//! In both modes an existing path is replaced unless both it and the entry are
//! directories (then the entry's metadata is applied to the existing one).
//!
//! # Safety
//!
//! - Names are cleaned as moby does: a leading `/` is dropped (absolute paths
//!   land inside `dest`), `.` and empty components vanish, `..` is resolved
//!   lexically; in a layer an entry that climbs above `dest` is **rejected**,
//!   when applying it stays at `dest` (the chroot's root). An entry that
//!   resolves to `dest` itself is skipped.
//! - Parents are opened with `openat2` and `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`
//!   (layer) or `RESOLVE_IN_ROOT` (apply), then the last component is created
//!   with `*at` calls that do not follow it, so no symlink, whether from the
//!   archive or raced in, can redirect a write outside `dest`.
//! - Hard-link targets are resolved the same way and must exist inside `dest`
//!   (in a layer, one that climbs above `dest` is refused).
//! - Character and block devices are created only when privileged (root).
//! - Header sizes are bounded (PAX and GNU long names: 1 MiB), a body shorter
//!   than declared is an error, and `trusted.*` xattrs from the archive are
//!   ignored (they would let an archive forge overlay metadata).
//!
//! Mode (with setuid/setgid/sticky), ownership (when privileged), mtime and
//! xattrs are preserved; directory mtimes are set after all entries. Hard-link
//! entries get no metadata of their own: they share the target's inode. A
//! failed extraction leaves what it wrote so far in `dest`; the caller
//! discards it.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use kiln_graph::Digest;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timestamps, XattrFlags};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};

use crate::detect::{CompressionKind, decompress};
use crate::error::{EntryError, Error, Result};
use crate::fsops::{self, Root};
use crate::hash::HashReader;
use crate::tarread::{BodyError, Entry, TarReader};
use crate::walk::{OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX};

/// Where an archive is extracted to and how whiteouts are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExtractMode {
    /// An image layer into an empty directory, in overlay upper-dir format.
    #[default]
    Layer,
    /// An archive onto an existing tree, as `ADD` extracts archives.
    Apply,
}

/// A uid/gid pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// How to extract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractOptions {
    /// Layer or apply; see the module docs.
    pub mode: ExtractMode,
    /// Give every entry this owner instead of the archive's (`ADD --chown`).
    pub owner: Option<Owner>,
    /// Keep the archive's ownership and create device nodes. Defaults to
    /// whether the process runs as root; without it entries belong to the
    /// caller and device entries are refused.
    pub privileged: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            mode: ExtractMode::Layer,
            owner: None,
            privileged: rustix::process::geteuid().is_root(),
        }
    }
}

impl ExtractOptions {
    /// Options for [`ExtractMode::Layer`].
    pub fn layer() -> Self {
        ExtractOptions::default()
    }

    /// Options for [`ExtractMode::Apply`].
    pub fn apply() -> Self {
        ExtractOptions {
            mode: ExtractMode::Apply,
            ..ExtractOptions::default()
        }
    }
}

/// What was extracted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractStats {
    /// sha256 of the uncompressed tar stream, to check against the image
    /// config's `diff_ids`.
    pub diff_id: Digest,
    /// sha256 of the bytes read (the blob as stored in a registry).
    pub digest: Digest,
    /// The compression that was detected.
    pub compression: CompressionKind,
    /// Bytes read.
    pub size: u64,
    /// Bytes of uncompressed tar.
    pub uncompressed_size: u64,
    /// Archive entries processed (PAX and long-name headers not counted).
    pub entries: u64,
    /// Xattrs not set: `trusted.*` ones, and ones the file system refused as
    /// unsupported.
    pub skipped_xattrs: u64,
}

/// Extracts the tar in `reader` (compression detected from its first bytes:
/// gzip, zstd, bzip2, xz or none) into the directory `dest`, which must exist
/// and, in [`ExtractMode::Layer`], be empty. The whole stream is read, so the
/// digests cover all of it.
pub fn extract_layer<R: Read>(
    reader: R,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractStats> {
    let destination = |reason: String| Error::Destination {
        path: dest.to_path_buf(),
        reason,
    };
    let root = Root::open(dest, opts.mode == ExtractMode::Apply)
        .map_err(|e| destination(format!("cannot open as a directory: {e}")))?;
    if opts.mode == ExtractMode::Layer
        && !root
            .is_empty()
            .map_err(|e| destination(format!("cannot list: {e}")))?
    {
        return Err(destination(
            "a layer is extracted into an empty directory".into(),
        ));
    }

    let raw = HashReader::new(reader);
    let decompressed =
        decompress(raw).map_err(|source| Error::ReadArchive { offset: 0, source })?;
    let compression = decompressed.kind();
    let mut tar = TarReader::new(HashReader::new(decompressed));
    let mut extractor = Extractor {
        root,
        opts,
        dir_times: Vec::new(),
        buf: vec![0u8; 1 << 20],
        entries: 0,
        skipped_xattrs: 0,
    };
    while let Some(entry) = tar.next_entry()? {
        extractor.entries += 1;
        extractor.entry(&entry, &mut tar)?;
    }
    extractor.set_dir_times()?;

    // Hash the rest of the stream: padding after the end-of-archive blocks is
    // part of the blob and of its diff_id.
    let offset = tar.offset();
    let mut uncompressed = tar.into_inner();
    io::copy(&mut uncompressed, &mut io::sink())
        .map_err(|source| Error::ReadArchive { offset, source })?;
    let (mut decompressed, diff_id, uncompressed_size) = uncompressed.finish();
    decompressed
        .drain_source()
        .map_err(|source| Error::ReadArchive {
            offset: uncompressed_size,
            source,
        })?;
    let (_, digest, size) = decompressed.into_inner().finish();
    Ok(ExtractStats {
        diff_id,
        digest,
        compression,
        size,
        uncompressed_size,
        entries: extractor.entries,
        skipped_xattrs: extractor.skipped_xattrs,
    })
}

/// What an entry asks to create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    HardLink,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
}

struct Extractor<'a> {
    root: Root,
    opts: &'a ExtractOptions,
    /// Directories and their mtimes, set once everything inside is written.
    dir_times: Vec<(Vec<Vec<u8>>, Timestamps)>,
    buf: Vec<u8>,
    entries: u64,
    skipped_xattrs: u64,
}

impl Extractor<'_> {
    fn entry<R: Read>(&mut self, e: &Entry, tar: &mut TarReader<R>) -> Result<()> {
        let fail = |reason: EntryError| Error::Entry {
            entry: e.display_name(),
            reason,
        };
        if e.sparse {
            return Err(fail(EntryError::UnsupportedType('S')));
        }
        let kind = match e.typeflag {
            // '7' (contiguous) is a regular file to every reader but Go's.
            b'0' | b'7' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            other => return Err(fail(EntryError::UnsupportedType(char::from(other)))),
        };
        let climb = match self.opts.mode {
            ExtractMode::Layer => Climb::ClampAbsolute,
            ExtractMode::Apply => Climb::Clamp,
        };
        let comps = clean_path(&e.name, climb).map_err(fail)?;
        let Some((base, parent)) = comps.split_last() else {
            return Ok(()); // the destination itself
        };
        if self.opts.mode == ExtractMode::Layer && base.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(e, parent, base).map_err(fail);
        }
        let parent_fd = self
            .root
            .open_or_create_dir(parent)
            .map_err(|err| fail(parent_error(err)))?;

        match fsops::file_type_at(parent_fd.as_fd(), base)
            .map_err(|err| fail(EntryError::io("inspect existing path", err)))?
        {
            Some(FileType::Directory) if kind == Kind::Dir => {}
            Some(FileType::Directory) => fsops::remove_all_at(parent_fd.as_fd(), base)
                .map_err(|err| fail(EntryError::io("replace existing directory", err)))?,
            Some(_) => rustix::fs::unlinkat(&parent_fd, *base, AtFlags::empty())
                .map_err(|err| fail(EntryError::io("replace existing file", err)))?,
            None => {}
        }

        let owner = self.owner(e).map_err(fail)?;
        let times = timestamps(e.mtime);
        let mode = e.mode & 0o7777;
        match kind {
            Kind::File => {
                let fd = rustix::fs::openat(
                    &parent_fd,
                    *base,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|err| fail(EntryError::io("create file", err)))?;
                let mut file = File::from(fd);
                tar.copy_body(&mut file, &mut self.buf)
                    .map_err(|err| match err {
                        BodyError::Entry(reason) => fail(reason),
                        BodyError::Read(source) => Error::ReadArchive {
                            offset: tar.offset(),
                            source,
                        },
                    })?;
                self.fd_metadata(file.as_fd(), e, owner, mode, Some(&times), true)
                    .map_err(fail)?;
            }
            Kind::Dir => {
                if !matches!(
                    fsops::file_type_at(parent_fd.as_fd(), base),
                    Ok(Some(FileType::Directory))
                ) {
                    rustix::fs::mkdirat(&parent_fd, *base, Mode::from_raw_mode(0o700))
                        .map_err(|err| fail(EntryError::io("create directory", err)))?;
                }
                let fd = rustix::fs::openat(
                    &parent_fd,
                    *base,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|err| fail(EntryError::io("open directory", err)))?;
                self.fd_metadata(fd.as_fd(), e, owner, mode, None, true)
                    .map_err(fail)?;
                let comps = comps.iter().map(|c| c.to_vec()).collect();
                self.dir_times.push((comps, times));
            }
            Kind::HardLink => self.hard_link(e, &parent_fd, base).map_err(fail)?,
            Kind::Symlink => {
                rustix::fs::symlinkat(e.link.as_slice(), &parent_fd, *base)
                    .map_err(|err| fail(EntryError::io("create symlink", err)))?;
                self.node_metadata(&parent_fd, base, e, owner, None, &times)
                    .map_err(fail)?;
            }
            Kind::CharDevice | Kind::BlockDevice | Kind::Fifo => {
                let file_type = match kind {
                    Kind::CharDevice => FileType::CharacterDevice,
                    Kind::BlockDevice => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                if file_type != FileType::Fifo && !self.opts.privileged {
                    return Err(fail(EntryError::DeviceNotPermitted));
                }
                let dev = rustix::fs::makedev(e.dev_major, e.dev_minor);
                rustix::fs::mknodat(
                    &parent_fd,
                    *base,
                    file_type,
                    Mode::from_raw_mode(0o600),
                    dev,
                )
                .map_err(|err| fail(EntryError::io("create special file", err)))?;
                self.node_metadata(&parent_fd, base, e, owner, Some(mode), &times)
                    .map_err(fail)?;
            }
        }
        Ok(())
    }

    /// Converts an OCI whiteout entry to its overlay form (layer mode).
    fn whiteout(&mut self, e: &Entry, parent: &[&[u8]], base: &[u8]) -> Result<(), EntryError> {
        let parent_fd = self.root.open_or_create_dir(parent).map_err(parent_error)?;
        if base == OPAQUE_MARKER {
            return rustix::fs::fsetxattr(&parent_fd, OPAQUE_XATTR, b"y", XattrFlags::empty())
                .map_err(|err| EntryError::io("mark directory opaque", err));
        }
        if base.starts_with(b".wh..wh.") {
            return Ok(()); // AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content
        }
        let name = &base[WHITEOUT_PREFIX.len()..];
        if name.is_empty() || name == b"." || name == b".." {
            return Err(EntryError::InvalidPath);
        }
        if fsops::file_type_at(parent_fd.as_fd(), name)
            .map_err(|err| EntryError::io("inspect existing path", err))?
            .is_some()
        {
            return Ok(()); // the same layer also has the path: it stays
        }
        rustix::fs::mknodat(
            &parent_fd,
            name,
            FileType::CharacterDevice,
            Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .map_err(|err| EntryError::io("create whiteout", err))?;
        if let Some((uid, gid)) = self.owner(e)? {
            let (uid, gid) = chown_ids(uid, gid);
            rustix::fs::chownat(&parent_fd, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|err| EntryError::io("chown whiteout", err))?;
        }
        Ok(())
    }

    fn hard_link(&mut self, e: &Entry, parent_fd: &OwnedFd, base: &[u8]) -> Result<(), EntryError> {
        let target = || String::from_utf8_lossy(&e.link).into_owned();
        // moby joins the target to the destination uncleaned: above it in a layer,
        // at the chroot's root when applying.
        let climb = match self.opts.mode {
            ExtractMode::Layer => Climb::Refuse,
            ExtractMode::Apply => Climb::Clamp,
        };
        let comps = clean_path(&e.link, climb).map_err(|err| match err {
            EntryError::EscapesDestination => EntryError::LinkOutside { target: target() },
            other => other,
        })?;
        let Some((target_base, target_parent)) = comps.split_last() else {
            return Err(EntryError::InvalidPath);
        };
        let target_dir = self.root.open_dir(target_parent).map_err(|err| {
            if err.raw_os_error() == Some(Errno::NOENT.raw_os_error()) {
                EntryError::LinkTargetMissing { target: target() }
            } else {
                parent_error(err)
            }
        })?;
        // Flags 0: link the target itself even if it is a symlink.
        rustix::fs::linkat(&target_dir, *target_base, parent_fd, base, AtFlags::empty()).map_err(
            |err| match err {
                Errno::NOENT => EntryError::LinkTargetMissing { target: target() },
                err => EntryError::io("create hard link", err),
            },
        )
    }

    /// The owner to give the entry, if any chown is to be done.
    fn owner(&self, e: &Entry) -> Result<Option<(u32, u32)>, EntryError> {
        if let Some(owner) = self.opts.owner {
            return Ok(Some((owner.uid, owner.gid)));
        }
        if !self.opts.privileged {
            return Ok(None);
        }
        let uid = u32::try_from(e.uid).map_err(|_| EntryError::OutOfRange {
            field: "uid",
            value: e.uid,
        })?;
        let gid = u32::try_from(e.gid).map_err(|_| EntryError::OutOfRange {
            field: "gid",
            value: e.gid,
        })?;
        Ok(Some((uid, gid)))
    }

    /// Owner, xattrs, mode, then times, on an open file or directory. (chown
    /// clears setuid bits and capabilities, so it goes first.)
    fn fd_metadata(
        &mut self,
        fd: BorrowedFd<'_>,
        e: &Entry,
        owner: Option<(u32, u32)>,
        mode: u32,
        times: Option<&Timestamps>,
        regular_or_dir: bool,
    ) -> Result<(), EntryError> {
        if let Some((uid, gid)) = owner {
            let (u, g) = chown_ids(uid, gid);
            rustix::fs::fchown(fd, u, g)
                .map_err(|err| EntryError::io(format!("chown to {uid}:{gid}"), err))?;
        }
        self.set_xattrs(e, regular_or_dir, |name, value| {
            rustix::fs::fsetxattr(fd, name, value, XattrFlags::empty())
        })?;
        rustix::fs::fchmod(fd, Mode::from_raw_mode(mode))
            .map_err(|err| EntryError::io(format!("chmod to {mode:o}"), err))?;
        if let Some(times) = times {
            rustix::fs::futimens(fd, times).map_err(|err| EntryError::io("set mtime", err))?;
        }
        Ok(())
    }

    /// The same for symlinks and special files, addressed by name in `dir`.
    fn node_metadata(
        &mut self,
        dir: &OwnedFd,
        name: &[u8],
        e: &Entry,
        owner: Option<(u32, u32)>,
        mode: Option<u32>,
        times: &Timestamps,
    ) -> Result<(), EntryError> {
        if let Some((uid, gid)) = owner {
            let (u, g) = chown_ids(uid, gid);
            rustix::fs::chownat(dir, name, u, g, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|err| EntryError::io(format!("chown to {uid}:{gid}"), err))?;
        }
        let path = fsops::proc_path(dir.as_fd(), name);
        self.set_xattrs(e, false, |key, value| {
            rustix::fs::lsetxattr(path.as_slice(), key, value, XattrFlags::empty())
        })?;
        if let Some(mode) = mode {
            fsops::chmod_at(dir.as_fd(), name, mode)
                .map_err(|err| EntryError::io(format!("chmod to {mode:o}"), err))?;
        }
        rustix::fs::utimensat(dir, name, times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|err| EntryError::io("set mtime", err))
    }

    /// Sets the entry's xattrs with `set`, skipping `trusted.*` and what the
    /// file system does not support (as containerd and moby do).
    fn set_xattrs(
        &mut self,
        e: &Entry,
        regular_or_dir: bool,
        set: impl Fn(&[u8], &[u8]) -> rustix::io::Result<()>,
    ) -> Result<(), EntryError> {
        for (name, value) in &e.xattrs {
            if name.starts_with(b"trusted.") || name.is_empty() || name.contains(&0) {
                self.skipped_xattrs += 1;
                continue;
            }
            match set(name, value) {
                Ok(()) => {}
                Err(Errno::NOTSUP) => self.skipped_xattrs += 1,
                // user.* xattrs exist only on regular files and directories.
                Err(Errno::PERM) if name.starts_with(b"user.") && !regular_or_dir => {
                    self.skipped_xattrs += 1;
                }
                Err(err) => {
                    return Err(EntryError::io(
                        format!("set xattr {}", String::from_utf8_lossy(name)),
                        err,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Sets directory mtimes now that nothing more is written into them.
    fn set_dir_times(&mut self) -> Result<()> {
        for (comps, times) in &self.dir_times {
            let comps: Vec<&[u8]> = comps.iter().map(Vec::as_slice).collect();
            let fd = match self.root.open_dir(&comps) {
                Ok(fd) => fd,
                // Replaced by a later entry: that entry's metadata counts.
                Err(err)
                    if [Errno::NOENT, Errno::NOTDIR, Errno::LOOP]
                        .iter()
                        .any(|e| err.raw_os_error() == Some(e.raw_os_error())) =>
                {
                    continue;
                }
                Err(err) => {
                    return Err(Error::Entry {
                        entry: String::from_utf8_lossy(&comps.join(&b'/')).into_owned(),
                        reason: parent_error(err),
                    });
                }
            };
            rustix::fs::futimens(&fd, times).map_err(|err| Error::Entry {
                entry: String::from_utf8_lossy(&comps.join(&b'/')).into_owned(),
                reason: EntryError::io("set directory mtime", err),
            })?;
        }
        Ok(())
    }
}

/// The reason for a failure to open an entry's parent directory.
fn parent_error(err: io::Error) -> EntryError {
    let unsafe_parent = [Errno::LOOP, Errno::NOTDIR, Errno::XDEV]
        .iter()
        .any(|e| err.raw_os_error() == Some(e.raw_os_error()));
    if unsafe_parent {
        EntryError::UnsafeParent
    } else {
        EntryError::io("open parent directory", err)
    }
}

/// What a `..` above the destination means while a path is cleaned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Climb {
    /// It climbs out: the path is refused.
    Refuse,
    /// At the top of an absolute path it stays at the top (Go's `filepath.Clean`
    /// turns `/../x` into `/x`); in a relative path it climbs out.
    ClampAbsolute,
    /// It stays at the top, as inside a chroot whose root is the destination.
    Clamp,
}

/// The components of an archive path, cleaned as moby does before joining it
/// to the destination; `climb` says what a `..` above the destination does.
fn clean_path(raw: &[u8], climb: Climb) -> Result<Vec<&[u8]>, EntryError> {
    if raw.contains(&0) {
        return Err(EntryError::InvalidPath);
    }
    let clamps = match climb {
        Climb::Refuse => false,
        Climb::ClampAbsolute => raw.starts_with(b"/"),
        Climb::Clamp => true,
    };
    let mut comps: Vec<&[u8]> = Vec::new();
    for comp in raw.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if comps.pop().is_none() && !clamps {
                    return Err(EntryError::EscapesDestination);
                }
            }
            comp => comps.push(comp),
        }
    }
    Ok(comps)
}

/// The ids to hand to `chown`. The all-ones id means "leave unchanged" to the
/// kernel (Go's `Lchown` passes it through; rustix says it with `None`): an
/// archive entry or `ADD --chown=-1` giving it leaves the creator's id.
fn chown_ids(uid: u32, gid: u32) -> (Option<Uid>, Option<Gid>) {
    (
        (uid != u32::MAX).then(|| Uid::from_raw(uid)),
        (gid != u32::MAX).then(|| Gid::from_raw(gid)),
    )
}

fn timestamps((secs, nanos): (i64, u32)) -> Timestamps {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nanos.into(),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comps(path: &str, climb: Climb) -> Result<Vec<String>, EntryError> {
        clean_path(path.as_bytes(), climb).map(|c| {
            c.iter()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect()
        })
    }

    #[test]
    fn paths_are_cleaned_like_moby() {
        let layer = Climb::ClampAbsolute;
        assert_eq!(comps("./a//b/./c/", layer).unwrap(), ["a", "b", "c"]);
        assert_eq!(comps("/abs/path", layer).unwrap(), ["abs", "path"]);
        assert_eq!(comps("a/../b", layer).unwrap(), ["b"]);
        assert_eq!(comps("/../../etc/x", layer).unwrap(), ["etc", "x"]);
        assert!(comps("./", layer).unwrap().is_empty());
        assert!(matches!(
            comps("../x", layer),
            Err(EntryError::EscapesDestination)
        ));
        assert!(matches!(
            comps("a/../../x", layer),
            Err(EntryError::EscapesDestination)
        ));
        assert!(matches!(
            comps("/../x", Climb::Refuse),
            Err(EntryError::EscapesDestination)
        ));
        assert!(matches!(
            clean_path(b"a\0b", layer),
            Err(EntryError::InvalidPath)
        ));
    }

    #[test]
    fn in_a_chroot_dot_dot_stops_at_the_root() {
        assert_eq!(comps("../../up.txt", Climb::Clamp).unwrap(), ["up.txt"]);
        assert_eq!(comps("a/../../b/c", Climb::Clamp).unwrap(), ["b", "c"]);
        assert_eq!(comps("/../x", Climb::Clamp).unwrap(), ["x"]);
        assert!(comps("../..", Climb::Clamp).unwrap().is_empty());
        assert!(matches!(
            clean_path(b"../a\0", Climb::Clamp),
            Err(EntryError::InvalidPath)
        ));
    }
}
