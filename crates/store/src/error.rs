//! The store's error type: every variant names the path, digest or key involved.

use std::io;
use std::path::PathBuf;

use kiln_graph::Digest;

/// What went wrong in a store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done, e.g. "create directory".
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The metadata database failed.
    #[error("metadata database {path}: {context}: {source}")]
    Database {
        /// `ROOT/meta.db`.
        path: PathBuf,
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: rusqlite::Error,
    },

    /// The database was written by a newer kiln with a schema this one does not know.
    #[error(
        "metadata database {path} has schema version {found}; this kiln supports up to {supported}"
    )]
    SchemaTooNew {
        /// `ROOT/meta.db`.
        path: PathBuf,
        /// The version found in the database.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },

    /// A row in the database holds a value that is not what the schema promises.
    #[error("metadata database: corrupt {what}: {value:?}")]
    CorruptRow {
        /// Which column, e.g. "cache_records.output".
        what: &'static str,
        /// The value found.
        value: String,
    },

    /// Written content does not have the digest the caller expected.
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The digest the caller asked for.
        expected: Digest,
        /// The digest of what was written.
        actual: Digest,
    },

    /// Written content does not have the size the caller expected.
    #[error("content size mismatch for {actual_digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The size the caller asked for.
        expected: u64,
        /// The size written.
        actual: u64,
        /// The digest of what was written.
        actual_digest: Digest,
    },

    /// No blob with this digest is in the store.
    #[error("blob {digest} not found in the store ({path})")]
    BlobNotFound {
        /// The digest asked for.
        digest: Digest,
        /// Where it would be.
        path: PathBuf,
    },

    /// A stored blob's content does not match its name.
    #[error("blob {path} is corrupt: its content has digest {actual}, not {expected}")]
    BlobCorrupt {
        /// The blob's name.
        expected: Digest,
        /// The digest of its content.
        actual: Digest,
        /// The file.
        path: PathBuf,
    },

    /// A cache record names a layer that is not committed.
    #[error("cache record {key} names layer {layer}, which is not in the store")]
    MissingLayer {
        /// The record's key.
        key: Digest,
        /// The missing layer id.
        layer: Digest,
    },

    /// A row was to reference a blob that is not in the store.
    #[error("{what} refers to blob {digest}, which is not in the store")]
    MissingBlob {
        /// What would have referenced it, e.g. "image docker.io/library/alpine:3 (linux/amd64)".
        what: String,
        /// The missing blob.
        digest: Digest,
    },

    /// A cache record's JSON form could not be read.
    #[error("cache record JSON: {0}")]
    RecordJson(#[source] serde_json::Error),
}

/// Attaches an operation and a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn io_context(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for Result<T, io::Error> {
    fn io_context(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Io {
            op,
            path: path.into(),
            source,
        })
    }
}

impl<T> IoContext<T> for Result<T, rustix::io::Errno> {
    fn io_context(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T, StoreError> {
        self.map_err(io::Error::from).io_context(op, path)
    }
}
