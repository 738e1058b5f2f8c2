//! The errors of file operations. Paths are shown as the build sees them:
//! absolute inside the filesystem being built or read (never the host path of
//! a snapshot), and as the action wrote them where that is what failed. The
//! wording follows BuildKit's where it has one.

use std::io;
use std::path::PathBuf;

use kiln_ignore::FilterError;

use super::chmod::InvalidMode;

/// Why a file operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileOpError {
    /// A copy source does not exist (BuildKit: `"/missing.txt": not found`).
    #[error("{path:?}: not found")]
    NotFound {
        /// The source path as the action gives it.
        path: String,
    },
    /// A wildcard matched nothing and the action does not allow that.
    #[error("{pattern} not found")]
    NoMatch {
        /// The source pattern as the action gives it.
        pattern: String,
    },
    /// A copy names an input the caller gave no source directory for.
    #[error("copy source {index} is not an input of this file op")]
    NoSource {
        /// The `source` index of the copy action.
        index: usize,
    },
    /// A root directory (the destination or a source) cannot be opened.
    #[error("{}: {source}", path.display())]
    Root {
        /// The directory as given by the caller.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A system call on a path failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`mkdir`, `lstat`, `copy`, ...).
        op: &'static str,
        /// The path, absolute inside its tree.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A file would replace a directory.
    #[error("cannot replace to directory {path} with file")]
    ReplaceDirectory {
        /// The directory, absolute inside the destination.
        path: String,
    },
    /// A directory would be copied onto something that is not one.
    #[error("cannot copy to non-directory: {path}")]
    NotADirectory {
        /// The path, absolute inside the destination.
        path: String,
    },
    /// Resolving a path met a symlink loop.
    #[error("{path}: too many links")]
    TooManyLinks {
        /// The path being resolved.
        path: String,
    },
    /// `rm` of a path that names nothing (`/`).
    #[error("rmPath: invalid empty path")]
    EmptyPath,
    /// A `--chmod` expression is not valid.
    #[error(transparent)]
    InvalidMode(#[from] InvalidMode),
    /// The include/exclude patterns of a copy or a source are invalid.
    #[error(transparent)]
    Patterns(#[from] FilterError),
    /// `/etc/passwd` or `/etc/group` gives an id that is not a valid uid/gid.
    #[error("{file}: invalid id {value} for {name:?}")]
    InvalidIdentity {
        /// The file read.
        file: String,
        /// The user or group name looked up.
        name: String,
        /// The value found.
        value: i64,
    },
    /// A user or group name to look up where there is no filesystem to look it
    /// up in: the op starts from an empty one (`COPY --link`, `FROM scratch`).
    /// BuildKit fails the same way ("invalid user index: -1").
    #[error(
        "user or group {name:?} cannot be looked up: the step starts from an empty filesystem \
         (COPY --link or FROM scratch); give numeric ids"
    )]
    NameWithoutBase {
        /// The user or group name.
        name: String,
    },
    /// Extracting an archive (ADD) failed.
    #[error("extract {archive} to {dest}: {source}")]
    Extract {
        /// The archive, absolute inside its source.
        archive: String,
        /// The directory it was extracted to, absolute inside the destination.
        dest: String,
        /// What went wrong.
        source: kiln_layer::Error,
    },
}

impl FileOpError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<String>,
        source: impl Into<io::Error>,
    ) -> Self {
        FileOpError::Io {
            op,
            path: path.into(),
            source: source.into(),
        }
    }
}
