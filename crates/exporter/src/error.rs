//! The crate's error type: every failure names what the user wrote or can act on —
//! the `-o` key, the destination path, the layer blob, the image reference.

use std::io;
use std::path::PathBuf;

/// A failed export, or an `-o` value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The `-o` value is not valid CSV or has a field without `=`.
    #[error("invalid output {spec:?}: {reason}")]
    InvalidSpec { spec: String, reason: String },
    /// `type=` names an exporter kiln does not have.
    #[error(
        "invalid output {spec:?}: unknown output type {kind:?} (expected local, tar, oci, docker, image or registry)"
    )]
    UnknownType { spec: String, kind: String },
    /// A key the exporter does not know.
    #[error("invalid output {spec:?}: unknown key {key:?} for type={kind}")]
    UnknownKey {
        spec: String,
        kind: String,
        key: String,
    },
    /// A key BuildKit knows that kiln does not implement.
    #[error("invalid output {spec:?}: key {key:?} is not supported by kiln's {kind} exporter")]
    UnsupportedKey {
        spec: String,
        kind: String,
        key: String,
    },
    /// A value that does not parse (a boolean, an integer, a compression, a name).
    #[error("invalid output {spec:?}: invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        spec: String,
        key: String,
        value: String,
        reason: String,
    },
    /// The image cannot be exported as given (config without os, layers that
    /// disagree with their descriptors, a malformed time).
    #[error("invalid image for export: {0}")]
    InvalidImage(String),
    /// An image name that is not a valid reference.
    #[error("invalid image name: {0}")]
    InvalidName(#[from] kiln_registry::ReferenceError),
    /// A layer blob whose bytes are not what its descriptor says.
    #[error("layer blob {path} does not match its descriptor: {reason}")]
    BlobMismatch { path: PathBuf, reason: String },
    /// The destination exists and is a directory where a file must go.
    #[error("destination file {0} is a directory")]
    DestinationIsDirectory(PathBuf),
    /// The destination exists and is not a directory where one must go.
    #[error("destination directory {0} is a file")]
    DestinationIsFile(PathBuf),
    /// The directory the destination would go in does not exist.
    #[error("cannot write {path}: its directory {parent} does not exist")]
    MissingParent { path: PathBuf, parent: PathBuf },
    /// A tarball was asked for on stdout, and stdout is a terminal.
    #[error(
        "refusing to write the {what} tarball to the terminal: give dest=FILE or redirect stdout"
    )]
    StdoutIsTerminal { what: &'static str },
    /// A file system operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Writing the final filesystem as a tar failed.
    #[error("cannot write the filesystem tar of {root}: {source}")]
    FsTar {
        root: PathBuf,
        #[source]
        source: kiln_layer::Error,
    },
    /// A registry operation failed while pushing `reference`.
    #[error("failed to push {reference}: {source}")]
    Push {
        reference: String,
        #[source]
        source: kiln_registry::Error,
    },
}

impl ExportError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ExportError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
