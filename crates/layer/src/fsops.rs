//! File system operations for extraction that cannot be steered outside the
//! destination: every path is resolved by the kernel relative to an open
//! directory with `openat2` resolve flags, and every final component is
//! operated on with `*at` calls that do not follow it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Mode of directories created because an entry needs them but the archive
/// did not list them (moby's `ImpliedDirectoryMode`).
pub(crate) const IMPLIED_DIR_MODE: u32 = 0o755;

/// The destination directory, with the rules for resolving paths inside it.
pub(crate) struct Root {
    fd: OwnedFd,
    resolve: ResolveFlags,
}

impl Root {
    /// Opens `path` as the root. `follow_symlinks_in_root`: resolve symlinks
    /// inside the root as if it were `/` (`RESOLVE_IN_ROOT`, what a chroot
    /// gives); otherwise refuse any symlink (`RESOLVE_NO_SYMLINKS`). Both stay
    /// beneath the root.
    pub(crate) fn open(path: &Path, follow_symlinks_in_root: bool) -> io::Result<Root> {
        let fd = rustix::fs::openat(
            rustix::fs::CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let resolve = if follow_symlinks_in_root {
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS
        } else {
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
        };
        Ok(Root { fd, resolve })
    }

    /// Whether the root directory has no entries.
    pub(crate) fn is_empty(&self) -> io::Result<bool> {
        let mut dir = Dir::read_from(&self.fd)?;
        while let Some(entry) = dir.read() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Opens the directory at `comps` below the root.
    pub(crate) fn open_dir(&self, comps: &[&[u8]]) -> io::Result<OwnedFd> {
        let path = if comps.is_empty() {
            b".".to_vec()
        } else {
            comps.join(&b'/')
        };
        openat2(
            self.fd.as_fd(),
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            self.resolve,
        )
    }

    /// Opens the directory at `comps`, creating missing ones (mode 0755,
    /// owned by the caller) on the way.
    pub(crate) fn open_or_create_dir(&self, comps: &[&[u8]]) -> io::Result<OwnedFd> {
        match self.open_dir(comps) {
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {}
            other => return other,
        }
        let mut fd = self.open_dir(&[])?;
        for i in 0..comps.len() {
            match self.open_dir(&comps[..=i]) {
                Ok(next) => fd = next,
                Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => {
                    match rustix::fs::mkdirat(&fd, comps[i], Mode::from_raw_mode(0o700)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    // Step into what was just made without following anything.
                    let next = openat2(
                        fd.as_fd(),
                        comps[i],
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
                    )?;
                    rustix::fs::fchmod(&next, Mode::from_raw_mode(IMPLIED_DIR_MODE))?;
                    fd = next;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(fd)
    }
}

/// `openat2`, retried when the kernel asks (a concurrent rename).
fn openat2(
    dir: BorrowedFd<'_>,
    path: &[u8],
    flags: OFlags,
    resolve: ResolveFlags,
) -> io::Result<OwnedFd> {
    let mut attempts = 0;
    loop {
        match rustix::fs::openat2(dir, path, flags, Mode::empty(), resolve) {
            Err(Errno::AGAIN | Errno::INTR) if attempts < 16 => attempts += 1,
            Err(Errno::NOSYS) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "openat2 is not available (Linux 5.6 or later is required)",
                ));
            }
            other => return other.map_err(Into::into),
        }
    }
}

/// The type of `name` in `dir`, without following it; `None` if absent.
pub(crate) fn file_type_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<FileType>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes `name` from `dir`, recursively if it is a directory, never
/// following symlinks.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) => {}
        Err(e) => return Err(e.into()),
    }
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    let mut entries = Dir::read_from(&fd)?;
    while let Some(entry) = entries.read() {
        let entry = entry?;
        let child = entry.file_name().to_bytes();
        if child != b"." && child != b".." {
            names.push(child.to_vec());
        }
    }
    for child in names {
        remove_all_at(fd.as_fd(), &child)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    Ok(())
}

/// A path that names `name` inside the open directory `dir` through procfs,
/// for the calls that have no `*at` form (`lsetxattr`, `chmod`).
pub(crate) fn proc_path(dir: BorrowedFd<'_>, name: &[u8]) -> Vec<u8> {
    let mut path = format!("/proc/self/fd/{}", dir.as_raw_fd()).into_bytes();
    if !name.is_empty() {
        path.push(b'/');
        path.extend_from_slice(name);
    }
    path
}

/// Sets the permission bits of a non-symlink `name` in `dir`: the node is
/// pinned with an `O_PATH` descriptor and changed through its procfs link, so
/// a swapped-in symlink is never followed.
pub(crate) fn chmod_at(dir: BorrowedFd<'_>, name: &[u8], mode: u32) -> io::Result<()> {
    let node = rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let st = rustix::fs::fstat(&node)?;
    if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
        return Ok(()); // Linux symlinks have no mode of their own
    }
    rustix::fs::chmod(proc_path(node.as_fd(), b""), Mode::from_raw_mode(mode))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn remove_all_at_deletes_trees_without_following_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), b"").unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("t/a/b")).unwrap();
        fs::write(root.join("t/a/b/f"), b"x").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("t/link")).unwrap();

        let fd = Root::open(&root, false).unwrap();
        remove_all_at(fd.fd.as_fd(), b"t").unwrap();
        assert!(!root.join("t").exists());
        assert!(outside.join("keep").exists());
    }

    #[test]
    fn open_dir_refuses_symlinks_unless_resolving_in_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink("/", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("real", root.join("rel")).unwrap();

        let strict = Root::open(root, false).unwrap();
        assert!(strict.open_dir(&[b"real"]).is_ok());
        let err = strict.open_dir(&[b"rel"]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(Errno::LOOP.raw_os_error()));

        // In-root resolution: "/" is the root itself, never the host's "/".
        let chroot = Root::open(root, true).unwrap();
        let fd = chroot.open_dir(&[b"abs"]).unwrap();
        let st = rustix::fs::fstat(&fd).unwrap();
        let root_st = rustix::fs::stat(root).unwrap();
        assert_eq!((st.st_dev, st.st_ino), (root_st.st_dev, root_st.st_ino));
    }

    #[test]
    fn implied_directories_are_created_with_mode_0755() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path(), false).unwrap();
        root.open_or_create_dir(&[b"a", b"b", b"c"]).unwrap();
        for p in ["a", "a/b", "a/b/c"] {
            let meta = fs::metadata(dir.path().join(p)).unwrap();
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(meta.permissions().mode() & 0o7777, 0o755, "{p}");
        }
    }
}
