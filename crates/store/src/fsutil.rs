//! File-system helpers the store's crash-safety rests on: unique temp names, renames
//! that never replace, directory fsync, disk usage, and a recursive removal that never
//! deletes through a mount point.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, CWD, RenameFlags, StatxAttributes, StatxFlags};

/// Nanoseconds since the Unix epoch.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A name no other process or thread is using right now: the process id, a counter
/// and the clock. The caller still creates it exclusively and retries on a clash (a
/// leftover from a crashed process whose pid was reused).
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}{}-{n}-{:x}",
        std::process::id(),
        now_ns() as u64 & 0xffff_ffff
    )
}

/// Renames `from` to `to` unless `to` exists. Returns `Ok(false)` when `to` exists
/// (for a file or a non-empty directory; an existing empty directory counts too).
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<bool> {
    match rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => Ok(false),
        // A file system without RENAME_NOREPLACE: check, then rename. A race can then
        // replace an identical file or an empty directory, which is harmless here
        // because names are content addresses.
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {
            if fs::symlink_metadata(to).is_ok() {
                return Ok(false);
            }
            match fs::rename(from, to) {
                Ok(()) => Ok(true),
                Err(e) if is_exists(&e) => Ok(false),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn is_exists(e: &io::Error) -> bool {
    let raw = e.raw_os_error();
    raw == Some(rustix::io::Errno::EXIST.raw_os_error())
        || raw == Some(rustix::io::Errno::NOTEMPTY.raw_os_error())
}

/// Makes a directory's entries (new names, renames) durable.
pub(crate) fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Whether `path` is the root of a mount (something is mounted on it).
fn is_mount_point(path: &Path, parent_dev: u64) -> io::Result<bool> {
    let stx = rustix::fs::statx(
        CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    )
    .map_err(io::Error::from)?;
    if stx
        .stx_attributes_mask
        .contains(StatxAttributes::MOUNT_ROOT)
    {
        return Ok(stx.stx_attributes.contains(StatxAttributes::MOUNT_ROOT));
    }
    // Kernels before 5.8 do not report MOUNT_ROOT: a change of device is the best sign.
    let dev = rustix::fs::makedev(stx.stx_dev_major, stx.stx_dev_minor);
    Ok(dev != parent_dev)
}

/// Removes `path` and everything under it, like `rm -rf`, but never deletes through a
/// mount point: a mount found under `path` (a bind-mounted build context or cache left
/// by a crashed step) is detached first, and if that fails the removal stops with an
/// error instead of deleting the mounted files. A missing `path` is not an error.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return remove_file_ok_if_missing(path);
    }
    let parent_dev = path
        .parent()
        .and_then(|p| fs::symlink_metadata(p).ok())
        .map_or(meta.dev(), |m| m.dev());
    remove_dir_tree(path, parent_dev)
}

fn remove_dir_tree(dir: &Path, parent_dev: u64) -> io::Result<()> {
    // Mounts can be stacked on one point: detach until none is left.
    let mut detached = 0;
    while is_mount_point(dir, parent_dev)? {
        if detached == 64 {
            return Err(io::Error::other(format!(
                "{} stays a mount point after {detached} detaches; not removing it",
                dir.display()
            )));
        }
        detached += 1;
        rustix::mount::unmount(dir, rustix::mount::UnmountFlags::DETACH).map_err(|e| {
            io::Error::other(format!(
                "{} is a mount point and could not be detached ({e}); \
                 not removing what is mounted there",
                dir.display()
            ))
        })?;
    }
    let dev = fs::symlink_metadata(dir)?.dev();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            // An overlay work dir or a step's own `chmod 000` directory.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
            fs::read_dir(dir)?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let child = entry.path();
        if entry.file_type()?.is_dir() {
            remove_dir_tree(&child, dev)?;
        } else {
            remove_file_ok_if_missing(&child)?;
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_file_ok_if_missing(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Disk usage of everything under `path` in bytes (allocated blocks, each inode
/// counted once), like `du -s`. Entries that vanish while walking are skipped.
pub(crate) fn disk_usage(path: &Path) -> io::Result<u64> {
    let mut seen = HashSet::new();
    let meta = fs::symlink_metadata(path)?;
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        total += dir_usage(path, &mut seen)?;
    }
    Ok(total)
}

fn dir_usage(dir: &Path, seen: &mut HashSet<(u64, u64)>) -> io::Result<u64> {
    let mut total = 0;
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        total += meta.blocks() * 512;
        if meta.is_dir() {
            total += dir_usage(&entry.path(), seen)?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_no_replace_keeps_the_existing_target() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        fs::write(&a, "new").unwrap();
        fs::write(&b, "old").unwrap();
        assert!(!rename_no_replace(&a, &b).unwrap());
        assert_eq!(fs::read_to_string(&b).unwrap(), "old");
        assert!(a.exists());
        assert!(rename_no_replace(&a, &c).unwrap());
        assert_eq!(fs::read_to_string(&c).unwrap(), "new");
    }

    #[test]
    fn rename_no_replace_does_not_replace_an_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::write(a.join("f"), "x").unwrap();
        fs::create_dir(&b).unwrap();
        assert!(!rename_no_replace(&a, &b).unwrap());
        assert!(a.join("f").exists());
        assert!(!b.join("f").exists());
    }

    #[test]
    fn remove_tree_removes_unreadable_directories_and_missing_paths_are_fine() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("t");
        fs::create_dir_all(top.join("a/b")).unwrap();
        fs::write(top.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", top.join("a/link")).unwrap();
        fs::set_permissions(top.join("a/b"), fs::Permissions::from_mode(0o000)).unwrap();
        remove_tree(&top).unwrap();
        assert!(!top.exists());
        assert!(Path::new("/etc").exists());
        remove_tree(&top).unwrap();
    }

    #[test]
    fn remove_tree_never_deletes_through_a_mount() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("precious");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("keep"), "x").unwrap();
        let top = dir.path().join("work");
        let mount_point = top.join("rootfs/ctx");
        fs::create_dir_all(&mount_point).unwrap();
        let bind = rustix::mount::mount_bind(&outside, &mount_point);
        if let Err(e) = bind {
            // Needs CAP_SYS_ADMIN; say so rather than pass silently.
            eprintln!(
                "remove_tree_never_deletes_through_a_mount: cannot bind-mount here ({e}); checked nothing"
            );
            return;
        }
        remove_tree(&top).unwrap();
        assert!(!top.exists());
        assert_eq!(fs::read_to_string(outside.join("keep")).unwrap(), "x");
    }

    #[test]
    fn disk_usage_counts_hard_links_once() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("t");
        fs::create_dir(&top).unwrap();
        fs::write(top.join("a"), vec![7u8; 64 * 1024]).unwrap();
        let one = disk_usage(&top).unwrap();
        fs::hard_link(top.join("a"), top.join("b")).unwrap();
        assert_eq!(disk_usage(&top).unwrap(), one);
        assert!(one >= 64 * 1024);
    }
}
