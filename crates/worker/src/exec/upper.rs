//! Tidying a step's upper directory into the diff BuildKit records.
//!
//! overlayfs copies a directory up as soon as anything inside it is created, even a
//! mount point that is removed again after the step (`/etc/hosts` on an image
//! without one), and even when the step deletes what it created. BuildKit's
//! overlay differ does not record a directory whose mode, owner and device equal
//! the base's (its time stamps may differ) unless something beneath it changed, so
//! such directories must not reach the layer: they would add an entry with the
//! build's time to every layer.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Removes, deepest first, the directories of `upper` that are empty, not opaque
/// and, in `base` (a read-only view of the step's input), a directory of the same
/// mode, owner and group. Returns how many were removed.
pub fn drop_unchanged_dirs(upper: &Path, base: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(upper)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            removed += visit(&entry.path(), &base.join(entry.file_name()))?;
        }
    }
    Ok(removed)
}

/// Tidies `dir` (in the upper directory) whose counterpart in the base is `base`.
fn visit(dir: &Path, base: &Path) -> io::Result<usize> {
    let mut removed = 0;
    let mut empty = true;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            removed += visit(&entry.path(), &base.join(entry.file_name()))?;
            if entry.path().exists() {
                empty = false;
            }
        } else {
            empty = false;
        }
    }
    if empty && !is_opaque(dir) && same_dir(dir, base) {
        std::fs::remove_dir(dir)?;
        removed += 1;
    }
    Ok(removed)
}

/// Whether overlayfs marked the directory opaque (it hides the lower one).
fn is_opaque(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| {
            let mut buf = [0u8; 8];
            rustix::fs::lgetxattr(dir, *name, &mut buf).is_ok()
        })
}

/// Whether `base` is a directory with the mode, owner and group of `dir`.
fn same_dir(dir: &Path, base: &Path) -> bool {
    match (
        std::fs::symlink_metadata(dir),
        std::fs::symlink_metadata(base),
    ) {
        (Ok(a), Ok(b)) => {
            b.is_dir() && a.mode() == b.mode() && a.uid() == b.uid() && a.gid() == b.gid()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copied_up_directories_that_changed_nothing_are_dropped() {
        let t = tempfile::tempdir().unwrap();
        let (upper, base) = (t.path().join("upper"), t.path().join("base"));
        for d in ["etc", "run", "usr/share", "opt", "var/log"] {
            fs::create_dir_all(base.join(d)).unwrap();
        }
        // Copied up for a mount point that is gone again: dropped.
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::create_dir_all(upper.join("usr/share")).unwrap();
        // Holds a change: kept, with its parents.
        fs::create_dir_all(upper.join("var/log")).unwrap();
        fs::write(upper.join("var/log/new"), "x").unwrap();
        // New in this step: kept although empty.
        fs::create_dir_all(upper.join("brand-new")).unwrap();
        // Its mode changed: kept.
        fs::create_dir_all(upper.join("opt")).unwrap();
        fs::set_permissions(upper.join("opt"), fs::Permissions::from_mode(0o700)).unwrap();
        // A whiteout-like file entry is content: its parent stays.
        fs::create_dir_all(upper.join("run")).unwrap();
        fs::write(upper.join("run/gone"), "").unwrap();

        let n = drop_unchanged_dirs(&upper, &base).unwrap();
        assert_eq!(n, 3, "etc, usr/share and usr");
        assert!(!upper.join("etc").exists());
        assert!(!upper.join("usr").exists());
        assert!(upper.join("var/log/new").exists());
        assert!(upper.join("brand-new").is_dir());
        assert!(upper.join("opt").is_dir());
        assert!(upper.join("run/gone").exists());
    }
}
