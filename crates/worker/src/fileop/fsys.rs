//! The system calls file operations are made of, confined to a root.
//!
//! A [`Root`] is an open directory. Every path below it is relative and opened
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so once the copy
//! rules have resolved a path (following symlinks inside the root as if it were
//! `/`, see `resolve`), the kernel guarantees that no symlink, whether in the
//! tree or raced in, takes a read or a write outside the root. Final
//! components are created and changed with `*at` calls that do not follow
//! them.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{
    AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps, XattrFlags,
};
use rustix::io::Errno;

/// What kind of file system object an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

impl Kind {
    /// One letter, as `ls -l` shows the type.
    pub(crate) fn letter(self) -> u8 {
        match self {
            Kind::File => b'-',
            Kind::Dir => b'd',
            Kind::Symlink => b'l',
            Kind::CharDevice => b'c',
            Kind::BlockDevice => b'b',
            Kind::Fifo => b'p',
            Kind::Socket => b's',
        }
    }
}

/// The metadata of one entry (`lstat`), as the copy rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    pub(crate) kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`st_mode & 07777`).
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: u64,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) nlink: u64,
    pub(crate) rdev: u64,
    pub(crate) atime: Timespec,
    pub(crate) mtime: Timespec,
    pub(crate) ctime: Timespec,
}

impl Meta {
    pub(crate) fn from_stat(st: &Stat) -> Meta {
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::CharacterDevice => Kind::CharDevice,
            FileType::BlockDevice => Kind::BlockDevice,
            FileType::Fifo => Kind::Fifo,
            FileType::Socket => Kind::Socket,
            _ => Kind::File,
        };
        #[allow(clippy::unnecessary_cast)] // the field types differ between architectures
        Meta {
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: st.st_size.max(0) as u64,
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            nlink: st.st_nlink as u64,
            rdev: st.st_rdev as u64,
            atime: timespec(st.st_atime as i64, st.st_atime_nsec as i64),
            mtime: timespec(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: timespec(st.st_ctime as i64, st.st_ctime_nsec as i64),
        }
    }

    pub(crate) fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }

    /// The access and modification times, to give a copy.
    pub(crate) fn times(&self) -> Timestamps {
        Timestamps {
            last_access: self.atime,
            last_modification: self.mtime,
        }
    }
}

fn timespec(tv_sec: i64, tv_nsec: i64) -> Timespec {
    Timespec { tv_sec, tv_nsec }
}

/// Both times set to `t` (`SOURCE_DATE_EPOCH`).
pub(crate) fn fixed_times(t: Timespec) -> Timestamps {
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// An open directory that paths are confined to.
#[derive(Debug)]
pub(crate) struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens the directory `path` (symlinks in `path` itself are followed: it
    /// is the caller's to choose).
    pub(crate) fn open(path: &Path) -> io::Result<Root> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `lstat` of `rel` (the root itself when empty); `None` if it does not
    /// exist.
    pub(crate) fn lstat(&self, rel: &Path) -> io::Result<Option<Meta>> {
        match rustix::fs::statat(&self.fd, dot(rel), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(Meta::from_stat(&st))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The target of the symlink `rel`.
    pub(crate) fn readlink(&self, rel: &Path) -> io::Result<Vec<u8>> {
        Ok(rustix::fs::readlinkat(&self.fd, dot(rel), Vec::new())?.into_bytes())
    }

    /// Opens `rel` without following any symlink on the way or at the end and
    /// without leaving the root.
    pub(crate) fn open_beneath(
        &self,
        rel: &Path,
        flags: OFlags,
        mode: Mode,
    ) -> Result<OwnedFd, Errno> {
        openat2_retry(self.fd.as_fd(), dot(rel), flags | OFlags::NOFOLLOW, mode)
    }

    /// Opens the directory `rel` (the root itself when empty).
    pub(crate) fn open_dir(&self, rel: &Path) -> Result<OwnedFd, Errno> {
        self.open_beneath(
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }
}

fn dot(rel: &Path) -> &Path {
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}

/// `openat2` confined beneath `dir` with no symlinks, retried when the kernel
/// asks (a concurrent rename elsewhere).
pub(crate) fn openat2_retry(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let mut attempts = 0;
    loop {
        match rustix::fs::openat2(dir, path, flags, mode, resolve) {
            Err(Errno::AGAIN | Errno::INTR) if attempts < 16 => attempts += 1,
            other => return other,
        }
    }
}

/// Splits a relative path into its parent and its last component.
pub(crate) fn parent_and_name(rel: &Path) -> (&Path, &OsStr) {
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel.file_name().unwrap_or(OsStr::new("."));
    (parent, name)
}

/// A path naming `name` in the open directory `dir` through procfs, for the
/// calls that have no `*at` form (the `l*xattr` family).
pub(crate) fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    let mut path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    if !name.is_empty() {
        path.push(name);
    }
    path
}

/// The extended attributes of `name` in `dir` (not following it), sorted by
/// name. A file system without xattr support has none.
pub(crate) fn read_xattrs(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Xattrs> {
    let path = proc_path(dir, name);
    let names = loop {
        let size = match rustix::fs::llistxattr_query(&path) {
            Ok(0) | Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Ok(size) => size,
            Err(e) => return Err(e.into()),
        };
        let mut buf = vec![0u8; size];
        match rustix::fs::llistxattr(&path, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                break buf;
            }
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut xattrs = Vec::new();
    for key in names.split(|&b| b == 0).filter(|k| !k.is_empty()) {
        if let Some(value) = get_xattr(&path, key)? {
            xattrs.push((key.to_vec(), value));
        }
    }
    xattrs.sort();
    Ok(xattrs)
}

/// The extended attributes of an open file or directory, sorted by name.
pub(crate) fn read_xattrs_fd(fd: BorrowedFd<'_>) -> io::Result<Xattrs> {
    let names = loop {
        let size = match rustix::fs::flistxattr_query(fd) {
            Ok(0) | Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Ok(size) => size,
            Err(e) => return Err(e.into()),
        };
        let mut buf = vec![0u8; size];
        match rustix::fs::flistxattr(fd, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                break buf;
            }
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut xattrs = Vec::new();
    for key in names.split(|&b| b == 0).filter(|k| !k.is_empty()) {
        let key_os = OsStr::from_bytes(key);
        let value = loop {
            let size = match rustix::fs::fgetxattr_query(fd, key_os) {
                Ok(size) => size,
                Err(Errno::NODATA | Errno::NOTSUP) => break None,
                Err(e) => return Err(e.into()),
            };
            let mut buf = vec![0u8; size];
            match rustix::fs::fgetxattr(fd, key_os, &mut buf[..]) {
                Ok(n) => {
                    buf.truncate(n);
                    break Some(buf);
                }
                Err(Errno::RANGE) => continue,
                Err(Errno::NODATA) => break None,
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(value) = value {
            xattrs.push((key.to_vec(), value));
        }
    }
    xattrs.sort();
    Ok(xattrs)
}

/// Extended attributes: (name, value) pairs.
pub(crate) type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

fn get_xattr(path: &Path, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
    loop {
        let size = match rustix::fs::lgetxattr_query(path, OsStr::from_bytes(key)) {
            Ok(size) => size,
            Err(Errno::NODATA | Errno::NOTSUP) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut buf = vec![0u8; size];
        match rustix::fs::lgetxattr(path, OsStr::from_bytes(key), &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::RANGE) => continue,
            Err(Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Sets xattrs on an open file or directory. Failures are ignored, as
/// BuildKit's file backend ignores them (logging only): a destination file
/// system may not support a namespace the source has.
pub(crate) fn set_xattrs_fd(fd: BorrowedFd<'_>, xattrs: &Xattrs) {
    for (key, value) in xattrs {
        let _ = rustix::fs::fsetxattr(fd, OsStr::from_bytes(key), value, XattrFlags::empty());
    }
}

/// Sets xattrs on `name` in `dir` without following it (symlinks, devices).
pub(crate) fn set_xattrs_at(dir: BorrowedFd<'_>, name: &OsStr, xattrs: &Xattrs) {
    if xattrs.is_empty() {
        return;
    }
    let path = proc_path(dir, name);
    for (key, value) in xattrs {
        let _ = rustix::fs::lsetxattr(&path, OsStr::from_bytes(key), value, XattrFlags::empty());
    }
}

/// `mkdirat` with exactly `mode` (permission bits and sticky; setgid
/// inherited from the parent is kept, as the kernel gives it), whatever the
/// process umask is. Returns the new directory, opened.
pub(crate) fn mkdir_exact(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> Result<OwnedFd, Errno> {
    rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode & 0o1777))?;
    let fd = openat2_retry(
        dir,
        Path::new(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&fd)?;
    let want = (mode & 0o1777) | (st.st_mode & 0o2000);
    if st.st_mode & 0o7777 != want {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(want))?;
    }
    Ok(fd)
}

/// Removes `name` from `dir`, recursively for a directory, never following a
/// symlink.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(e),
    }
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for child in list_dir(fd.as_fd())? {
        remove_all_at(fd.as_fd(), &child)?;
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The names in an open directory (without `.` and `..`), sorted by bytes.
pub(crate) fn list_dir(dir: BorrowedFd<'_>) -> Result<Vec<std::ffi::OsString>, Errno> {
    let mut names = Vec::new();
    let mut entries = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = entries.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Copies all of `src` into `dst` with `copy_file_range` (data stays in the
/// kernel), falling back to reading and writing where the kernel cannot.
pub(crate) fn copy_data(src: &OwnedFd, dst: &OwnedFd) -> io::Result<()> {
    let mut first = true;
    loop {
        match rustix::fs::copy_file_range(src, None, dst, None, 1 << 30) {
            Ok(0) => return Ok(()),
            Ok(_) => first = false,
            Err(Errno::INTR) => {}
            Err(
                Errno::NOSYS
                | Errno::XDEV
                | Errno::PERM
                | Errno::IO
                | Errno::OPNOTSUPP
                | Errno::INVAL,
            ) if first => {
                let mut reader = std::fs::File::from(src.try_clone()?);
                let mut writer = std::fs::File::from(dst.try_clone()?);
                std::io::copy(&mut reader, &mut writer)?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
}
