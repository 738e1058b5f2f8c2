//! Mounting layer stacks: overlayfs for several layers (through the new mount API, so
//! the number of layers is not limited by the length of one option string), a
//! read-only bind for one, and guards that unmount on drop.
//!
//! kiln makes its mounts inside a private mount namespace of its own
//! ([`isolate_mounts`]), so none is visible on the host and all of them vanish with
//! the process, whatever way it ends.

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MountPropagationFlags, MoveMountFlags,
    UnmountFlags, fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen,
    mount_bind, mount_change, mount_remount, move_mount, unmount,
};

/// Moves the calling process into a private mount namespace in which nothing
/// propagates back to the host. Call it first thing in `main`, while the process has
/// one thread: mount namespaces are per thread.
pub fn isolate_mounts() -> io::Result<()> {
    // SAFETY: called while the process has a single thread, so no other thread can
    // be left in the old namespace or observe the change half made.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS)? };
    mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?;
    Ok(())
}

/// A mount that is undone (lazily, `MNT_DETACH`) when the guard is dropped.
#[derive(Debug)]
pub struct MountGuard {
    target: PathBuf,
    active: bool,
}

impl MountGuard {
    /// Where the mount is.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Unmounts now, reporting failure (dropping unmounts too, silently).
    pub fn unmount(mut self) -> io::Result<()> {
        self.active = false;
        unmount(&self.target, UnmountFlags::DETACH).map_err(io::Error::from)
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if self.active {
            let _ = unmount(&self.target, UnmountFlags::DETACH);
        }
    }
}

/// A guard for a mount made by other means (e.g. a tmpfs mounted directly).
pub fn adopt(target: &Path) -> MountGuard {
    MountGuard {
        target: target.to_path_buf(),
        active: true,
    }
}

/// The writable top of an overlay: both directories on the same filesystem.
#[derive(Debug, Clone, Copy)]
pub struct Upper<'a> {
    /// The writable directory.
    pub upper: &'a Path,
    /// Overlay's scratch directory, on the same file system.
    pub work: &'a Path,
}

/// Mounts `lowers` (topmost first) at `target`, with `upper` on top when given.
///
/// Without an upper, one layer is bind-mounted read-only and several are stacked
/// read-only by overlayfs. Overlay runs with `index=off`, `redirect_dir=off` and
/// `metacopy=off`, so that the upper directory holds a plain diff that a layer tarball
/// can express.
pub fn mount_layers(
    lowers: &[&Path],
    upper: Option<Upper<'_>>,
    target: &Path,
) -> io::Result<MountGuard> {
    if lowers.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an overlay needs at least one lower directory",
        ));
    }
    // Identical layers (two steps that changed nothing share one empty layer) are
    // one directory, which overlayfs refuses to stack twice (ELOOP). The lower copy
    // is shadowed entirely by the upper one, so dropping it changes nothing.
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<&Path> = lowers.iter().copied().filter(|l| seen.insert(*l)).collect();
    let lowers = unique.as_slice();
    if upper.is_none() && lowers.len() == 1 {
        mount_bind(lowers[0], target)?;
        let guard = MountGuard {
            target: target.to_path_buf(),
            active: true,
        };
        mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "")?;
        return Ok(guard);
    }
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for lower in lowers {
        fsconfig_set_string(fs.as_fd(), "lowerdir+", *lower)?;
    }
    if let Some(u) = upper {
        fsconfig_set_string(fs.as_fd(), "upperdir", u.upper)?;
        fsconfig_set_string(fs.as_fd(), "workdir", u.work)?;
        // No syncs through the overlay: the store does not sync layer contents
        // (a step interrupted by a crash is run again), and without it the
        // unmount syncs the whole upper file system and every fsync in a RUN
        // step (dpkg makes thousands) waits for the disk. Kernels before 5.10
        // do not know the option and keep syncing.
        let _ = fsconfig_set_flag(fs.as_fd(), "volatile");
    }
    for (k, v) in [
        ("index", "off"),
        ("redirect_dir", "off"),
        ("metacopy", "off"),
    ] {
        // Older kernels may not know an option; its default is then the safe one.
        let _ = fsconfig_set_string(fs.as_fd(), k, v);
    }
    fsconfig_create(fs.as_fd())?;
    let attrs = if upper.is_none() {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        MountAttrFlags::empty()
    };
    let mnt = fsmount(fs.as_fd(), FsMountFlags::FSMOUNT_CLOEXEC, attrs)?;
    move_mount(
        mnt.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    Ok(MountGuard {
        target: target.to_path_buf(),
        active: true,
    })
}

/// Bind-mounts `source` at `target`, read-only when asked.
pub fn bind(source: &Path, target: &Path, readonly: bool) -> io::Result<MountGuard> {
    mount_bind(source, target)?;
    let guard = MountGuard {
        target: target.to_path_buf(),
        active: true,
    };
    if readonly {
        mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "")?;
    }
    Ok(guard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    #[test]
    fn overlay_of_many_layers_writes_a_diff_to_upper() {
        if !is_root() {
            eprintln!("not root; skipping the mount test");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        // Enough layers that their paths would not fit one mount option string.
        let mut lowers = Vec::new();
        for i in 0..80 {
            let d = t
                .path()
                .join(format!("layer-with-a-rather-long-name-{i:03}"));
            fs::create_dir(&d).unwrap();
            fs::write(d.join(format!("f{i}")), format!("{i}")).unwrap();
            lowers.push(d);
        }
        fs::write(lowers[0].join("shadowed"), "bottom").unwrap();
        fs::write(lowers[79].join("shadowed"), "top").unwrap();
        let upper = t.path().join("upper");
        let work = t.path().join("work");
        let merged = t.path().join("merged");
        for d in [&upper, &work, &merged] {
            fs::create_dir(d).unwrap();
        }
        let refs: Vec<&Path> = lowers.iter().rev().map(|p| p.as_path()).collect();
        let g = mount_layers(
            &refs,
            Some(Upper {
                upper: &upper,
                work: &work,
            }),
            &merged,
        )
        .unwrap();
        assert_eq!(fs::read_to_string(merged.join("shadowed")).unwrap(), "top");
        assert_eq!(fs::read_to_string(merged.join("f0")).unwrap(), "0");
        fs::write(merged.join("new"), "x").unwrap();
        fs::remove_file(merged.join("f3")).unwrap();
        g.unmount().unwrap();
        assert_eq!(fs::read_to_string(upper.join("new")).unwrap(), "x");
        let wh = fs::symlink_metadata(upper.join("f3")).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(wh.file_type().is_char_device());
        assert!(!merged.join("new").exists());
    }

    #[test]
    fn the_same_layer_twice_is_stacked_once() {
        if !is_root() {
            eprintln!("not root; skipping the mount test");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (empty, mid, base, merged) = (
            t.path().join("empty"),
            t.path().join("mid"),
            t.path().join("base"),
            t.path().join("merged"),
        );
        for d in [&empty, &mid, &base, &merged] {
            fs::create_dir(d).unwrap();
        }
        fs::write(base.join("a"), "base").unwrap();
        fs::write(mid.join("a"), "mid").unwrap();
        let g = mount_layers(&[&empty, &mid, &empty, &base], None, &merged).unwrap();
        assert_eq!(fs::read_to_string(merged.join("a")).unwrap(), "mid");
        drop(g);
    }

    #[test]
    fn single_layer_is_bound_read_only() {
        if !is_root() {
            eprintln!("not root; skipping the mount test");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let l = t.path().join("l");
        let m = t.path().join("m");
        fs::create_dir(&l).unwrap();
        fs::create_dir(&m).unwrap();
        fs::write(l.join("a"), "1").unwrap();
        let g = mount_layers(&[&l], None, &m).unwrap();
        assert_eq!(fs::read_to_string(m.join("a")).unwrap(), "1");
        assert!(fs::write(m.join("b"), "2").is_err());
        drop(g);
        assert!(!m.join("a").exists());
    }
}
