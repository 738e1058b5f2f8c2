//! Turning a step's overlay upper directory into the diff BuildKit records.
//!
//! overlayfs copies a file up into the upper directory whenever a step touches it,
//! even when nothing about it ends up changed: `ln /bin/busybox /bb` copies
//! `/bin/busybox` up to link it, `chown root /etc/passwd` copies it up to change
//! nothing. BuildKit's overlay differ leaves such entries out of the layer (it
//! compares each upper entry with the lower view: type and permission bits, owner,
//! device number, `security.capability`, size and mtime, and the content or symlink
//! target when the mtimes carry no nanoseconds). [`drop_unchanged`] removes them from
//! the upper directory before it becomes a layer, so the layer holds what BuildKit's
//! does: which shows in the image where hard links are concerned (the copied-up file
//! and its new link would otherwise stay linked in the image, and a copied-up file
//! would lose its links to the lower layer's other names).
//!
//! Directories stay (they hold the changes below them), and nothing inside an opaque
//! directory is removed: there the lower directory is hidden and the upper entries
//! are all that is left.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use crate::error::WorkerError;
use crate::mount::mount_layers;

const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];
const CAPABILITY_XATTR: &str = "security.capability";

/// Removes from `upper` the non-directory entries that are the same as in the stack
/// of `lowers` (topmost first), mounting that stack read-only at `mount_point` for
/// the comparison. Returns how many entries were removed.
pub(crate) fn drop_unchanged_against(
    upper: &Path,
    lowers: &[&Path],
    mount_point: &Path,
) -> Result<usize, WorkerError> {
    if lowers.is_empty() {
        return Ok(0);
    }
    let io = |what: &'static str| move |e: io::Error| WorkerError::io(what, e);
    std::fs::create_dir_all(mount_point).map_err(io("creating the lower view's mount point"))?;
    let view = mount_layers(lowers, None, mount_point).map_err(io("mounting the lower view"))?;
    let removed = drop_unchanged(upper, mount_point).map_err(io("comparing the step's changes"));
    view.unmount().map_err(io("unmounting the lower view"))?;
    removed
}

/// Removes from `upper` the non-directory entries whose counterpart in `lower` (the
/// merged lower view) BuildKit's differ would call the same. Returns how many.
pub(crate) fn drop_unchanged(upper: &Path, lower: &Path) -> io::Result<usize> {
    let upper_fd = open_dir(upper)?;
    let lower_fd = open_dir(lower)?;
    let mut removed = 0;
    walk(&upper_fd, &lower_fd, Path::new(""), &mut removed)?;
    Ok(removed)
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Walks the upper directory `dir` (at `rel` below the upper root).
fn walk(dir: &OwnedFd, lower_root: &OwnedFd, rel: &Path, removed: &mut usize) -> io::Result<()> {
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(std::ffi::OsStr::from_bytes(name).to_os_string());
        }
    }
    for name in names {
        let path = rel.join(&name);
        let st = rustix::fs::statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW)?;
        let file_type = FileType::from_raw_mode(st.st_mode);
        if file_type == FileType::Directory {
            let sub = rustix::fs::openat(
                dir,
                &name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            if !is_opaque(&sub)? {
                walk(&sub, lower_root, &path, removed)?;
            }
            continue;
        }
        if is_whiteout(file_type, &st) {
            continue;
        }
        let Some(lower) = lower_entry(lower_root, &path)? else {
            continue; // added by the step
        };
        if same_entry(&st, &lower, dir, &name, lower_root, &path)? {
            rustix::fs::unlinkat(dir, &name, AtFlags::empty())?;
            *removed += 1;
        }
    }
    Ok(())
}

fn is_whiteout(file_type: FileType, st: &Stat) -> bool {
    file_type == FileType::CharacterDevice && st.st_rdev == 0
}

fn is_opaque(dir: &OwnedFd) -> io::Result<bool> {
    for key in OPAQUE_XATTRS {
        if fd_xattr(dir.as_fd(), key)?.as_deref() == Some(b"y".as_slice()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The lower view's entry at `path`, without following any symlink on the way (a
/// path that crosses one cannot be the same entry as the upper one anyway).
fn lower_entry(lower_root: &OwnedFd, path: &Path) -> io::Result<Option<Stat>> {
    match rustix::fs::openat2(
        lower_root,
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => Ok(Some(rustix::fs::fstat(&fd)?)),
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::XDEV) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// BuildKit's `sameDirent` for a non-directory upper entry.
fn same_entry(
    upper: &Stat,
    lower: &Stat,
    upper_dir: &OwnedFd,
    name: &std::ffi::OsStr,
    lower_root: &OwnedFd,
    path: &Path,
) -> io::Result<bool> {
    if upper.st_mode != lower.st_mode
        || upper.st_uid != lower.st_uid
        || upper.st_gid != lower.st_gid
        || upper.st_rdev != lower.st_rdev
        || upper.st_size != lower.st_size
        || upper.st_mtime != lower.st_mtime
    {
        return Ok(false);
    }
    let file_type = FileType::from_raw_mode(upper.st_mode);
    let upper_fd = open_entry(upper_dir, name)?;
    let lower_fd = rustix::fs::openat2(
        lower_root,
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?;
    if file_type != FileType::Symlink
        && path_xattr(&upper_fd, CAPABILITY_XATTR)? != path_xattr(&lower_fd, CAPABILITY_XATTR)?
    {
        return Ok(false);
    }
    // Mtimes that look truncated to the second say nothing: look at the content.
    if upper.st_mtime_nsec == 0 && lower.st_mtime_nsec == 0 {
        return match file_type {
            FileType::Symlink => Ok(rustix::fs::readlinkat(upper_dir, name, Vec::new())?
                == rustix::fs::readlinkat(&lower_fd, "", Vec::new())?),
            FileType::RegularFile if upper.st_size > 0 => {
                same_content(reopen(&upper_fd)?, reopen(&lower_fd)?)
            }
            _ => Ok(true),
        };
    }
    Ok(upper.st_mtime_nsec == lower.st_mtime_nsec)
}

fn open_entry(dir: &OwnedFd, name: &std::ffi::OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// A readable descriptor for a regular file held by an `O_PATH` one.
fn reopen(fd: &OwnedFd) -> io::Result<File> {
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
    File::open(path)
}

fn same_content(mut a: File, mut b: File) -> io::Result<bool> {
    let mut buf_a = vec![0u8; 64 * 1024];
    let mut buf_b = vec![0u8; 64 * 1024];
    loop {
        let n = read_full(&mut a, &mut buf_a)?;
        let m = read_full(&mut b, &mut buf_b)?;
        if n != m || buf_a[..n] != buf_b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match f.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// An extended attribute of an open directory, or `None` when it has none.
fn fd_xattr(fd: std::os::fd::BorrowedFd<'_>, key: &str) -> io::Result<Option<Vec<u8>>> {
    read_xattr(|buf| rustix::fs::fgetxattr(fd, key, buf))
}

/// An extended attribute of the file an `O_PATH` descriptor holds (read through its
/// `/proc/self/fd` link, which `getxattr` follows to the file), or `None`.
fn path_xattr(fd: &OwnedFd, key: &str) -> io::Result<Option<Vec<u8>>> {
    let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
    read_xattr(|buf| rustix::fs::getxattr(path.as_str(), key, buf))
}

fn read_xattr(
    mut get: impl FnMut(&mut [u8]) -> Result<usize, Errno>,
) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        match get(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::NODATA | Errno::NOTSUP) => return Ok(None),
            Err(Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn write(path: &Path, data: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }

    /// Gives `path` the mtime of `like`, as overlay's copy-up does.
    fn same_mtime(path: &Path, like: &Path) {
        let m = std::fs::symlink_metadata(like).unwrap();
        let t = rustix::fs::Timespec {
            tv_sec: m.mtime(),
            tv_nsec: m.mtime_nsec(),
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            path,
            &rustix::fs::Timestamps {
                last_access: t,
                last_modification: t,
            },
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }

    #[test]
    fn copied_up_but_unchanged_entries_go_and_changes_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let (upper, lower) = (tmp.path().join("upper"), tmp.path().join("lower"));
        for (name, data) in [
            ("same", b"data".as_slice()),
            ("dir/same", b"data"),
            ("changed", b"old!"),
            ("touched", b"data"),
        ] {
            write(&lower.join(name), data);
        }
        std::os::unix::fs::symlink("target", lower.join("link")).unwrap();
        // The upper: copies of lower entries, some changed, and new ones.
        for (name, data) in [
            ("same", b"data".as_slice()),
            ("dir/same", b"data"),
            ("changed", b"new!"),
            ("touched", b"data"),
            ("added", b"new"),
        ] {
            write(&upper.join(name), data);
        }
        std::os::unix::fs::symlink("target", upper.join("link")).unwrap();
        for name in ["same", "dir/same", "link"] {
            same_mtime(&upper.join(name), &lower.join(name));
        }
        // A hard link to a copied-up file: the copy goes, the new name stays.
        std::fs::hard_link(upper.join("same"), upper.join("new-link")).unwrap();

        assert_eq!(drop_unchanged(&upper, &lower).unwrap(), 3);
        for gone in ["same", "dir/same", "link"] {
            assert!(
                std::fs::symlink_metadata(upper.join(gone)).is_err(),
                "{gone}"
            );
        }
        for kept in ["changed", "touched", "added", "new-link", "dir"] {
            assert!(
                std::fs::symlink_metadata(upper.join(kept)).is_ok(),
                "{kept}"
            );
        }
        assert_eq!(
            std::fs::metadata(upper.join("new-link")).unwrap().nlink(),
            1
        );
    }

    #[test]
    fn same_size_and_second_but_other_content_stays_when_nanoseconds_are_zero() {
        let tmp = tempfile::tempdir().unwrap();
        let (upper, lower) = (tmp.path().join("upper"), tmp.path().join("lower"));
        write(&lower.join("f"), b"aaaa");
        write(&upper.join("f"), b"bbbb");
        for p in [&lower, &upper] {
            let t = rustix::fs::Timespec {
                tv_sec: 1_600_000_000,
                tv_nsec: 0,
            };
            rustix::fs::utimensat(
                rustix::fs::CWD,
                p.join("f"),
                &rustix::fs::Timestamps {
                    last_access: t,
                    last_modification: t,
                },
                AtFlags::empty(),
            )
            .unwrap();
        }
        assert_eq!(drop_unchanged(&upper, &lower).unwrap(), 0);
        std::fs::write(upper.join("f"), b"aaaa").unwrap();
        same_mtime(&upper.join("f"), &lower.join("f"));
        assert_eq!(drop_unchanged(&upper, &lower).unwrap(), 1);
    }

    #[test]
    fn entries_of_opaque_directories_and_whiteouts_stay() {
        let tmp = tempfile::tempdir().unwrap();
        let (upper, lower) = (tmp.path().join("upper"), tmp.path().join("lower"));
        write(&lower.join("d/f"), b"x");
        write(&upper.join("d/f"), b"x");
        same_mtime(&upper.join("d/f"), &lower.join("d/f"));
        if rustix::fs::setxattr(
            upper.join("d").as_path(),
            "user.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .is_err()
        {
            eprintln!("skipped: this file system has no user xattrs");
            return;
        }
        assert_eq!(drop_unchanged(&upper, &lower).unwrap(), 0);
        assert!(upper.join("d/f").exists());
    }
}
