//! The crate's error types: one [`Error`] for every operation, and [`EntryError`]
//! for the reason an archive entry was refused or failed.

use std::io;
use std::path::PathBuf;

/// What went wrong while writing, hashing or extracting a layer.
///
/// Every variant names what the user can act on: the file in the layer
/// directory, the offset in the archive, or the archive entry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the layer directory failed (stat, read_dir, open, read, xattrs).
    #[error("reading {path}: {source}")]
    ReadTree {
        /// The file or directory that could not be read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file shrank while it was being archived or hashed.
    #[error("{path} changed while it was being read (expected {expected} bytes)")]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// Its size when it was first stat'ed.
        expected: u64,
    },
    /// A file in the layer directory cannot be represented in a tar archive.
    #[error("{path} cannot be archived: {reason}")]
    Unrepresentable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing the output stream (or compressing it) failed.
    #[error("writing the layer: {0}")]
    Write(#[source] io::Error),
    /// A compression level outside the codec's range.
    #[error("invalid {codec} compression level {level}")]
    InvalidLevel {
        /// "gzip" or "zstd".
        codec: &'static str,
        /// The level asked for.
        level: i64,
    },
    /// Reading or decompressing the archive stream failed.
    #[error("reading the archive at offset {offset}: {source}")]
    ReadArchive {
        /// Offset in the uncompressed tar stream.
        offset: u64,
        /// The underlying error (I/O or decompression).
        #[source]
        source: io::Error,
    },
    /// The archive is not a well-formed tar stream.
    #[error("malformed archive at offset {offset}: {reason}")]
    Malformed {
        /// Offset of the offending header in the uncompressed tar stream.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An archive entry was refused or could not be extracted.
    #[error("archive entry {entry:?}: {reason}")]
    Entry {
        /// The entry's name as written in the archive.
        entry: String,
        /// Why it was refused or failed.
        #[source]
        reason: EntryError,
    },
    /// The extraction destination is unusable.
    #[error("destination {path}: {reason}")]
    Destination {
        /// The destination directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why one archive entry was refused or could not be extracted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The path climbs above the destination with `..` (in a layer).
    #[error("path climbs out of the destination")]
    EscapesDestination,
    /// The path contains a NUL byte or names nothing usable.
    #[error("invalid path")]
    InvalidPath,
    /// A hard link names a target above the destination (in a layer).
    #[error("hard link target {target:?} is outside the destination")]
    LinkOutside {
        /// The link target as written in the archive.
        target: String,
    },
    /// A hard link names a target that does not exist (yet) in the destination.
    #[error("hard link target {target:?} does not exist")]
    LinkTargetMissing {
        /// The link target as written in the archive.
        target: String,
    },
    /// A parent of the path is a symlink (not followed when extracting a layer)
    /// or not a directory.
    #[error("a parent directory is a symlink or not a directory")]
    UnsafeParent,
    /// A device node, while not privileged.
    #[error("device nodes are only created with privileges (as root)")]
    DeviceNotPermitted,
    /// An entry type this extractor does not handle (sparse files, volume labels, ...).
    #[error("unsupported entry type {0:?}")]
    UnsupportedType(char),
    /// The archive ended inside the entry's body.
    #[error("archive ends after {read} of the entry's {declared} bytes")]
    Truncated {
        /// Size declared in the header.
        declared: u64,
        /// Bytes actually present.
        read: u64,
    },
    /// A numeric field does not fit what the OS accepts.
    #[error("{field} {value} is out of range")]
    OutOfRange {
        /// "uid", "gid", "device major", ...
        field: &'static str,
        /// The value in the archive.
        value: u64,
    },
    /// A system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done ("create file", "set xattr user.x", ...).
        op: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl EntryError {
    pub(crate) fn io(op: impl Into<String>, source: impl Into<io::Error>) -> EntryError {
        EntryError::Io {
            op: op.into(),
            source: source.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
