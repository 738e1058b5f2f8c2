//! Writing outputs so that nothing half-written is ever visible: a file output is
//! written to a temporary file next to its destination and renamed into place; a
//! directory output that does not exist yet is built in a temporary directory next
//! to it and renamed into place; files added to an existing directory are each
//! written under a temporary name and renamed. On any error the temporaries are
//! removed (when dropped) and the destination is as it was.
//!
//! A process killed mid-write cannot remove its temporary. Each writer therefore
//! holds an exclusive `flock` on its temporary while it lives, and the next writer
//! of the same destination removes the temporaries nobody holds (and that have not
//! been touched for a moment, which covers the instant between a temporary's
//! creation and its lock).

use std::fs::{self, File, Permissions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{FlockOperation, Mode, OFlags, flock};
use tempfile::{NamedTempFile, TempDir};

use crate::error::ExportError;

/// The directory `dest` goes in (`.` for a bare file name).
fn parent_of(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A temporary-file prefix that says what it is for.
fn temp_prefix(dest: &Path) -> String {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    format!(".{name}.kiln-tmp-")
}

/// How long a temporary must have gone untouched before another writer may take it
/// for a dead one's (besides nobody holding its lock).
const STALE_AFTER: Duration = Duration::from_secs(2);

/// Takes the lock that marks a temporary as being written by a live process.
fn hold(file: &File, path: &Path) -> Result<(), ExportError> {
    flock(file, FlockOperation::NonBlockingLockExclusive)
        .map_err(|e| ExportError::io("lock", path, e.into()))
}

/// Removes the temporaries of `dest` in `parent` (other than `ours`) that killed
/// writers left: unlocked and untouched for [`STALE_AFTER`]. Best effort: what
/// cannot be inspected or removed stays.
fn remove_stale(parent: &Path, dest: &Path, ours: &Path) {
    let prefix = temp_prefix(dest);
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if path == ours || meta.file_type().is_symlink() || !old {
            continue;
        }
        let Ok(fd) = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            continue;
        };
        if flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err() {
            continue; // a live writer holds it
        }
        let _ = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
}

fn check_parent(dest: &Path) -> Result<PathBuf, ExportError> {
    let parent = parent_of(dest);
    match fs::metadata(&parent) {
        Ok(m) if m.is_dir() => Ok(parent),
        Ok(_) => Err(ExportError::MissingParent {
            path: dest.to_path_buf(),
            parent,
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ExportError::MissingParent {
            path: dest.to_path_buf(),
            parent,
        }),
        Err(e) => Err(ExportError::io("inspect", parent, e)),
    }
}

/// A file being written next to its destination.
pub(crate) struct AtomicFile {
    temp: NamedTempFile,
    dest: PathBuf,
    mode: u32,
}

impl AtomicFile {
    /// Starts writing `dest`, which must not be a directory and whose directory must
    /// exist. `mode` is applied before the rename.
    pub(crate) fn create(dest: &Path, mode: u32) -> Result<AtomicFile, ExportError> {
        if fs::metadata(dest).is_ok_and(|m| m.is_dir()) {
            return Err(ExportError::DestinationIsDirectory(dest.to_path_buf()));
        }
        let parent = check_parent(dest)?;
        let temp = tempfile::Builder::new()
            .prefix(&temp_prefix(dest))
            .tempfile_in(&parent)
            .map_err(|e| ExportError::io("create a file in", &parent, e))?;
        hold(temp.as_file(), temp.path())?;
        remove_stale(&parent, dest, temp.path());
        Ok(AtomicFile {
            temp,
            dest: dest.to_path_buf(),
            mode,
        })
    }

    pub(crate) fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Flushes the file to disk and renames it into place.
    pub(crate) fn commit(self) -> Result<(), ExportError> {
        let AtomicFile { temp, dest, mode } = self;
        let file = temp.as_file();
        file.set_permissions(Permissions::from_mode(mode))
            .and_then(|()| file.sync_all())
            .map_err(|e| ExportError::io("write", temp.path(), e))?;
        temp.persist(&dest)
            .map_err(|e| ExportError::io("rename into place", &dest, e.error))?;
        Ok(())
    }
}

/// Writes `bytes` to `dest` atomically.
pub(crate) fn write_file(dest: &Path, bytes: &[u8], mode: u32) -> Result<(), ExportError> {
    let mut f = AtomicFile::create(dest, mode)?;
    f.file()
        .write_all(bytes)
        .map_err(|e| ExportError::io("write", dest, e))?;
    f.commit()
}

/// Where a tarball goes: a file (written atomically) or stdout.
pub(crate) enum TarSink {
    File(AtomicFile),
    Stdout(io::Stdout),
}

impl TarSink {
    /// `-` is stdout, which must not be a terminal; anything else is a file.
    pub(crate) fn open(dest: &Path, what: &'static str) -> Result<TarSink, ExportError> {
        if dest == Path::new("-") {
            let stdout = io::stdout();
            if stdout.is_terminal() {
                return Err(ExportError::StdoutIsTerminal { what });
            }
            return Ok(TarSink::Stdout(stdout));
        }
        AtomicFile::create(dest, 0o644).map(TarSink::File)
    }

    pub(crate) fn writer(&mut self) -> &mut dyn Write {
        match self {
            TarSink::File(f) => f.file(),
            TarSink::Stdout(s) => s,
        }
    }

    /// A second handle on the file being written (sharing its offset), so large
    /// blobs can be copied into it by the kernel; `None` for stdout.
    pub(crate) fn file_handle(&self) -> io::Result<Option<File>> {
        match self {
            TarSink::File(f) => f.temp.as_file().try_clone().map(Some),
            TarSink::Stdout(_) => Ok(None),
        }
    }

    /// The path errors are reported against.
    pub(crate) fn name(&self) -> PathBuf {
        match self {
            TarSink::File(f) => f.dest.clone(),
            TarSink::Stdout(_) => PathBuf::from("<stdout>"),
        }
    }

    pub(crate) fn commit(self) -> Result<(), ExportError> {
        match self {
            TarSink::File(f) => f.commit(),
            TarSink::Stdout(mut s) => s
                .flush()
                .map_err(|e| ExportError::io("write", "<stdout>", e)),
        }
    }
}

/// A directory output: built aside and renamed into place when `dest` does not
/// exist, or filled in place (file by file) when it is an existing directory.
pub(crate) enum DirTarget {
    Fresh {
        temp: TempDir,
        dest: PathBuf,
        /// The temporary directory, open and locked while it is being filled.
        _lock: File,
    },
    Existing(PathBuf),
}

impl DirTarget {
    pub(crate) fn open(dest: &Path) -> Result<DirTarget, ExportError> {
        match fs::metadata(dest) {
            Ok(m) if m.is_dir() => return Ok(DirTarget::Existing(dest.to_path_buf())),
            Ok(_) => return Err(ExportError::DestinationIsFile(dest.to_path_buf())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ExportError::io("inspect", dest, e)),
        }
        let parent = check_parent(dest)?;
        let temp = tempfile::Builder::new()
            .prefix(&temp_prefix(dest))
            .tempdir_in(&parent)
            .map_err(|e| ExportError::io("create a directory in", &parent, e))?;
        let lock = File::open(temp.path()).map_err(|e| ExportError::io("open", temp.path(), e))?;
        hold(&lock, temp.path())?;
        remove_stale(&parent, dest, temp.path());
        Ok(DirTarget::Fresh {
            temp,
            dest: dest.to_path_buf(),
            _lock: lock,
        })
    }

    /// The directory to write into.
    pub(crate) fn root(&self) -> &Path {
        match self {
            DirTarget::Fresh { temp, .. } => temp.path(),
            DirTarget::Existing(dest) => dest,
        }
    }

    pub(crate) fn is_fresh(&self) -> bool {
        matches!(self, DirTarget::Fresh { .. })
    }

    /// `e` as the user should read it: a fresh directory is built under a temporary
    /// name they never see, so a path under it is said as the same path under the
    /// destination.
    pub(crate) fn relocate(&self, e: ExportError) -> ExportError {
        let DirTarget::Fresh { temp, dest, .. } = self else {
            return e;
        };
        match e {
            ExportError::Io {
                action,
                path,
                source,
            } => ExportError::Io {
                action,
                path: match path.strip_prefix(temp.path()) {
                    Ok(rest) => dest.join(rest),
                    Err(_) => path,
                },
                source,
            },
            other => other,
        }
    }

    /// Renames a fresh directory into place (with `mode`); nothing for an existing one.
    pub(crate) fn commit(self, mode: u32) -> Result<(), ExportError> {
        match self {
            DirTarget::Existing(_) => Ok(()),
            DirTarget::Fresh { temp, dest, .. } => {
                fs::set_permissions(temp.path(), Permissions::from_mode(mode))
                    .map_err(|e| ExportError::io("set the mode of", temp.path(), e))?;
                // rename(2) onto a path that appeared meanwhile fails unless it is an
                // empty directory; either way nothing of ours is left half-written.
                fs::rename(temp.path(), &dest)
                    .map_err(|e| ExportError::io("rename into place", &dest, e))?;
                // The directory now lives at `dest`; there is nothing left to delete.
                let _ = temp.keep();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_appear_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.tar");
        let mut f = AtomicFile::create(&dest, 0o644).unwrap();
        f.file().write_all(b"data").unwrap();
        assert!(!dest.exists());
        f.commit().unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"data");
        assert_eq!(
            fs::metadata(&dest).unwrap().permissions().mode() & 0o777,
            0o644
        );

        // Dropped without commit: nothing is left.
        let other = dir.path().join("other.tar");
        drop(AtomicFile::create(&other, 0o644).unwrap());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temporaries_of_killed_writers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        let file = |name: &str, age_old: bool| {
            let f = File::create(d.join(name)).unwrap();
            if age_old {
                f.set_modified(old).unwrap();
            }
            f
        };
        drop(file(".out.tar.kiln-tmp-dead", true));
        drop(file(".out.tar.kiln-tmp-young", false));
        let live = file(".out.tar.kiln-tmp-live", true);
        flock(&live, FlockOperation::NonBlockingLockExclusive).unwrap();
        drop(file(".other.kiln-tmp-dead", true));
        fs::create_dir_all(d.join(".out.tar.kiln-tmp-deaddir/blobs")).unwrap();
        fs::write(d.join(".out.tar.kiln-tmp-deaddir/blobs/x"), "x").unwrap();
        File::open(d.join(".out.tar.kiln-tmp-deaddir"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::os::unix::fs::symlink("/", d.join(".out.tar.kiln-tmp-link")).unwrap();

        let f = AtomicFile::create(&d.join("out.tar"), 0o644).unwrap();
        let mut left: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".out.tar.kiln-tmp-") || !f.temp.path().ends_with(n))
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".other.kiln-tmp-dead",
                ".out.tar.kiln-tmp-link",
                ".out.tar.kiln-tmp-live",
                ".out.tar.kiln-tmp-young",
            ]
        );
        // Our own temporary is locked: the next writer leaves it alone.
        f.temp.as_file().set_modified(old).unwrap();
        let g = AtomicFile::create(&d.join("out.tar"), 0o644).unwrap();
        assert!(f.temp.path().exists());
        drop((f, g, live));

        // A directory output cleans up after dead directory writers too.
        fs::create_dir(d.join(".layout.kiln-tmp-dead")).unwrap();
        File::open(d.join(".layout.kiln-tmp-dead"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let t = DirTarget::open(&d.join("layout")).unwrap();
        assert!(!d.join(".layout.kiln-tmp-dead").exists());
        t.commit(0o755).unwrap();
        assert!(d.join("layout").is_dir());
    }

    #[test]
    fn errors_in_a_fresh_directory_name_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("layout");
        let target = DirTarget::open(&dest).unwrap();
        let inside = target.root().join("blobs/sha256/abc");
        let e = ExportError::io("write", &inside, io::Error::other("disk full"));
        let msg = target.relocate(e).to_string();
        assert_eq!(
            msg,
            format!(
                "cannot write {}: disk full",
                dest.join("blobs/sha256/abc").display()
            )
        );
        // An existing directory is written in place: nothing to say differently.
        fs::create_dir(dir.path().join("existing")).unwrap();
        let existing = DirTarget::open(&dir.path().join("existing")).unwrap();
        let path = dir.path().join("existing/x");
        let e = ExportError::io("write", &path, io::Error::other("disk full"));
        assert!(
            existing
                .relocate(e)
                .to_string()
                .contains(&*path.to_string_lossy())
        );
    }

    #[test]
    fn bad_destinations_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/out.tar");
        let e = AtomicFile::create(&missing, 0o644)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no/such") && e.contains("does not exist"), "{e}");
        let e = AtomicFile::create(dir.path(), 0o644)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("is a directory"), "{e}");
        let file = dir.path().join("f");
        fs::write(&file, b"").unwrap();
        let e = DirTarget::open(&file).err().unwrap().to_string();
        assert!(e.contains("is a file"), "{e}");
    }

    #[test]
    fn fresh_directories_are_renamed_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("layout");
        let target = DirTarget::open(&dest).unwrap();
        assert!(target.is_fresh());
        fs::write(target.root().join("x"), b"1").unwrap();
        assert!(!dest.exists());
        target.commit(0o755).unwrap();
        assert_eq!(fs::read(dest.join("x")).unwrap(), b"1");
        assert!(!DirTarget::open(&dest).unwrap().is_fresh());
    }
}
