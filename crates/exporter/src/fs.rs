//! The final filesystem as a directory (`type=local`) or one tar (`type=tar`), as
//! BuildKit's local and tar exporters deliver them.
//!
//! `type=local` copies every file, directory, symlink, hard link (kept as a link
//! when both paths are exported), fifo and device node with its mode and its
//! modification time (every time set to `SOURCE_DATE_EPOCH` when given, as
//! BuildKit's exporter sets them); files are owned by the user running kiln, as
//! BuildKit's client writes them. Sockets are skipped. A destination that exists is
//! merged into: existing files not in the image stay, as with BuildKit.
//!
//! `type=tar` writes the tree with `kiln_layer::write_layer`: sorted entries, PAX
//! headers, numeric owners, hard links, xattrs; with `SOURCE_DATE_EPOCH`, later
//! times are clamped to it (BuildKit sets every time to the epoch instead).

use std::collections::HashMap;
use std::fs::{self, File, Permissions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps};

use crate::atomic::{DirTarget, TarSink};
use crate::error::ExportError;

/// Copies the filesystem at `fs_root` into the directory `dest` (see the module
/// docs). A missing `dest` appears only once complete.
pub fn write_local(
    fs_root: &Path,
    dest: &Path,
    source_date_epoch: Option<i64>,
) -> Result<(), ExportError> {
    let root_meta =
        fs::metadata(fs_root).map_err(|e| ExportError::io("read the filesystem", fs_root, e))?;
    if !root_meta.is_dir() {
        return Err(ExportError::InvalidImage(format!(
            "the filesystem root {} is not a directory",
            fs_root.display()
        )));
    }
    let target = DirTarget::open(dest)?;
    let mut copier = Copier {
        epoch: source_date_epoch,
        links: HashMap::new(),
        dirs: Vec::new(),
    };
    let copied = copier.copy_dir(fs_root, target.root()).and_then(|()| {
        // Directory times last, deepest first, once nothing more is written into them.
        for (path, mode, time) in copier.dirs.iter().rev() {
            fs::set_permissions(path, Permissions::from_mode(*mode))
                .map_err(|e| ExportError::io("set the mode of", path, e))?;
            set_times(path, *time)?;
        }
        Ok(())
    });
    copied.map_err(|e| target.relocate(e))?;
    target.commit(0o755)
}

/// Writes the filesystem at `fs_root` as one tar to `dest` (`-` is stdout).
pub fn write_tar(
    fs_root: &Path,
    dest: &Path,
    source_date_epoch: Option<i64>,
) -> Result<(), ExportError> {
    let root_meta =
        fs::metadata(fs_root).map_err(|e| ExportError::io("read the filesystem", fs_root, e))?;
    if !root_meta.is_dir() {
        return Err(ExportError::InvalidImage(format!(
            "the filesystem root {} is not a directory",
            fs_root.display()
        )));
    }
    let mut sink = TarSink::open(dest, "filesystem")?;
    let opts = kiln_layer::LayerOptions { source_date_epoch };
    let written = kiln_layer::write_layer(fs_root, sink.writer(), &opts);
    match written {
        Ok(_) => sink.commit(),
        // The tar could not be written (a full disk, a closed pipe): that is about
        // the destination, not the filesystem being read.
        Err(kiln_layer::Error::Write(e)) => Err(ExportError::io("write", sink.name(), e)),
        Err(source) => Err(ExportError::FsTar {
            root: fs_root.to_path_buf(),
            source,
        }),
    }
}

/// A modification time: seconds and nanoseconds.
type Time = (i64, i64);

struct Copier {
    epoch: Option<i64>,
    /// Files with several links already copied: (device, inode) to the copy.
    links: HashMap<(u64, u64), PathBuf>,
    /// Directories written, in creation order, with the mode and time to give them.
    dirs: Vec<(PathBuf, u32, Time)>,
}

impl Copier {
    fn time(&self, meta: &fs::Metadata) -> Time {
        match self.epoch {
            Some(e) => (e, 0),
            None => (meta.mtime(), meta.mtime_nsec()),
        }
    }

    fn copy_dir(&mut self, src: &Path, dst: &Path) -> Result<(), ExportError> {
        let mut entries: Vec<_> = fs::read_dir(src)
            .map_err(|e| ExportError::io("read directory", src, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| ExportError::io("read directory", src, e))?;
        entries.sort();
        for name in entries {
            let from = src.join(&name);
            let to = dst.join(&name);
            let meta =
                fs::symlink_metadata(&from).map_err(|e| ExportError::io("inspect", &from, e))?;
            let ft = meta.file_type();
            let mode = meta.mode() & 0o7777;
            let time = self.time(&meta);
            if ft.is_dir() {
                match fs::symlink_metadata(&to) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove(&to)?;
                        make_dir(&to)?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => make_dir(&to)?,
                    Err(e) => return Err(ExportError::io("inspect", &to, e)),
                }
                self.dirs.push((to.clone(), mode, time));
                self.copy_dir(&from, &to)?;
                continue;
            }
            if ft.is_socket() {
                continue;
            }
            let key = (meta.dev(), meta.ino());
            if ft.is_file() && meta.nlink() > 1 {
                if let Some(first) = self.links.get(&key) {
                    let first = first.clone();
                    place(&to, |tmp| fs::hard_link(&first, tmp))?;
                    continue;
                }
                self.links.insert(key, to.clone());
            }
            if ft.is_file() {
                place(&to, |tmp| {
                    let mut input = File::open(&from)?;
                    let mut output = fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(tmp)?;
                    io::copy(&mut input, &mut output)?;
                    output.set_permissions(Permissions::from_mode(mode))?;
                    Ok(())
                })
                .map_err(|e| with_source(e, &from))?;
            } else if ft.is_symlink() {
                let target =
                    fs::read_link(&from).map_err(|e| ExportError::io("read symlink", &from, e))?;
                place(&to, |tmp| std::os::unix::fs::symlink(&target, tmp))?;
            } else {
                let kind = if ft.is_fifo() {
                    FileType::Fifo
                } else if ft.is_char_device() {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                let rdev = meta.rdev();
                place(&to, |tmp| {
                    rustix::fs::mknodat(CWD, tmp, kind, Mode::from_raw_mode(mode), rdev)
                        .map_err(io::Error::from)?;
                    fs::set_permissions(tmp, Permissions::from_mode(mode))
                })?;
            }
            set_times(&to, time)?;
        }
        Ok(())
    }
}

fn with_source(e: ExportError, src: &Path) -> ExportError {
    match e {
        ExportError::Io {
            action,
            path,
            source,
        } => ExportError::Io {
            action,
            path,
            source: io::Error::new(
                source.kind(),
                format!("copying {}: {source}", src.display()),
            ),
        },
        other => other,
    }
}

fn make_dir(path: &Path) -> Result<(), ExportError> {
    fs::create_dir(path).map_err(|e| ExportError::io("create directory", path, e))?;
    // Writable by us until the final modes are set.
    fs::set_permissions(path, Permissions::from_mode(0o755))
        .map_err(|e| ExportError::io("set the mode of", path, e))
}

fn remove(path: &Path) -> Result<(), ExportError> {
    let meta = fs::symlink_metadata(path).map_err(|e| ExportError::io("inspect", path, e))?;
    if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
    .map_err(|e| ExportError::io("replace", path, e))
}

/// Creates `dest` through `make` under a temporary name in its directory, then
/// renames it over whatever `dest` was (a directory there is removed first).
/// `make` must fail with `AlreadyExists` if the name is taken; another is tried.
fn place(dest: &Path, mut make: impl FnMut(&Path) -> io::Result<()>) -> Result<(), ExportError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}.kiln-tmp-"))
        .make_in(dir, |tmp| make(tmp))
        .map_err(|e| ExportError::io("write", dest, e))?;
    if fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
        remove(dest)?;
    }
    temp.persist(dest)
        .map_err(|e| ExportError::io("rename into place", dest, e.error))?;
    Ok(())
}

fn set_times(path: &Path, (sec, nsec): Time) -> Result<(), ExportError> {
    let t = Timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| ExportError::io("set the times of", path, e.into()))
}
