//! The small actions: `mkdir` (WORKDIR), `mkfile` (inline files and
//! heredocs) and `rm`, with BuildKit's rules.
//!
//! - `mkdir` with `make_parents` creates what is missing (mode, owner and
//!   time only on what it creates); without it, an existing path of any type
//!   is success and nothing is changed.
//! - `mkfile` writes the data to the path, following a symlink there (inside
//!   the root): a new file gets the mode, an existing one keeps its mode and
//!   owner unless an owner is given.
//! - `rm` removes a path (recursively, not following a final symlink); a
//!   missing path is an error unless `allow_not_found`. With
//!   `allow_wildcard`, every match is removed.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use kiln_graph::{MkdirAction, MkfileAction, RmAction};
use rustix::fs::{Mode, OFlags, Timespec};
use rustix::io::Errno;

use super::copy::mkdir_all;
use super::error::FileOpError;
use super::fsys::{self, Root};
use super::gopath;
use super::owner::{Owner, chown_ids};
use super::resolve::{DestNamespace, display_rel, resolve};
use super::source::Source;

/// Unix seconds as a timestamp.
pub(crate) fn timestamp(secs: Option<i64>) -> Option<Timespec> {
    secs.map(|tv_sec| Timespec { tv_sec, tv_nsec: 0 })
}

/// Runs a mkdir action.
pub(crate) fn mkdir(
    dest: &Root,
    action: &MkdirAction,
    owner: Option<Owner>,
) -> Result<(), FileOpError> {
    let rel = resolve(&DestNamespace(dest), action.path.as_bytes(), true)?;
    let utime = timestamp(action.timestamp);
    let mode = action.mode & 0o777;
    if action.make_parents {
        mkdir_all(dest, &rel, mode, owner, utime)?;
        return Ok(());
    }
    let (parent, name) = fsys::parent_and_name(&rel);
    let err = |e: Errno| FileOpError::io("mkdir", display_rel(&rel), e);
    let dir = dest.open_dir(parent).map_err(err)?;
    let fd = match fsys::mkdir_exact(dir.as_fd(), name, mode) {
        Ok(fd) => fd,
        Err(Errno::EXIST) => return Ok(()),
        Err(e) => return Err(err(e)),
    };
    if let Some(o) = owner {
        let (uid, gid) = chown_ids(o.uid, o.gid);
        rustix::fs::fchown(&fd, uid, gid)
            .map_err(|e| FileOpError::io("chown", display_rel(&rel), e))?;
    }
    if let Some(t) = utime {
        rustix::fs::futimens(&fd, &fsys::fixed_times(t))
            .map_err(|e| FileOpError::io("utimes", display_rel(&rel), e))?;
    }
    Ok(())
}

/// Runs a mkfile action.
pub(crate) fn mkfile(
    dest: &Root,
    action: &MkfileAction,
    owner: Option<Owner>,
) -> Result<(), FileOpError> {
    let path = gopath::join(&["/", &action.path]);
    let rel = resolve(&DestNamespace(dest), path.as_bytes(), true)?;
    let shown = display_rel(&rel);
    let err = |op, e: Errno| FileOpError::io(op, shown.clone(), e);
    let mode = action.mode & 0o777;
    let fd = match dest.open_beneath(
        &rel,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    ) {
        Ok(fd) => {
            // Exactly the mode asked for, whatever the umask.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| err("chmod", e))?;
            fd
        }
        Err(Errno::EXIST) => dest
            .open_beneath(
                &rel,
                OFlags::WRONLY | OFlags::TRUNC | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| err("open", e))?,
        Err(e) => return Err(err("open", e)),
    };
    let mut file = std::fs::File::from(fd);
    file.write_all(action.data.as_bytes())
        .map_err(|e| FileOpError::io("write", shown.clone(), e))?;
    if let Some(o) = owner {
        let (uid, gid) = chown_ids(o.uid, o.gid);
        rustix::fs::fchown(&file, uid, gid).map_err(|e| err("chown", e))?;
    }
    if let Some(t) = timestamp(action.timestamp) {
        rustix::fs::futimens(&file, &fsys::fixed_times(t)).map_err(|e| err("utimes", e))?;
    }
    Ok(())
}

/// Runs an rm action.
pub(crate) fn rm(dest: &Root, action: &RmAction) -> Result<(), FileOpError> {
    if !action.allow_wildcard {
        return rm_path(dest, action.path.as_bytes(), action.allow_not_found);
    }
    let plain = Source::plain(dest.path())?;
    let pattern = gopath::clean_action_path(&action.path);
    for found in plain.resolve_wildcards(&pattern, false)? {
        rm_path(dest, &found, action.allow_not_found)?;
    }
    Ok(())
}

/// BuildKit's `rmPath`: the parent is resolved inside the root, the last
/// element is removed as it is (a symlink, not its target).
fn rm_path(dest: &Root, path: &[u8], allow_not_found: bool) -> Result<(), FileOpError> {
    let cleaned = gopath::clean(&String::from_utf8_lossy(path));
    let (dir, base) = gopath::split(&cleaned);
    if base.is_empty() {
        return Err(FileOpError::EmptyPath);
    }
    let parent = resolve(&DestNamespace(dest), dir.as_bytes(), true)?;
    let rel: PathBuf = parent.join(base);
    if !allow_not_found {
        // os.Stat: the path, a final symlink followed (inside the root).
        let target = resolve(
            &DestNamespace(dest),
            rel.as_os_str().as_encoded_bytes(),
            true,
        )?;
        let exists = dest
            .lstat(&target)
            .map_err(|e| FileOpError::io("stat", display_rel(&rel), e))?
            .is_some();
        if !exists {
            return Err(FileOpError::io(
                "stat",
                display_rel(&rel),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
    }
    let dir_fd = match dest.open_dir(&parent) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(()),
        Err(e) => return Err(FileOpError::io("remove", display_rel(&rel), e)),
    };
    fsys::remove_all_at(dir_fd.as_fd(), Path::new(base).as_os_str())
        .map_err(|e| FileOpError::io("remove", display_rel(&rel), e))?;
    Ok(())
}
