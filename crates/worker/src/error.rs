//! The worker's errors.

/// What went wrong while running an op.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    /// A registry refused or failed.
    Registry(#[from] kiln_registry::Error),
    #[error(transparent)]
    /// The store failed.
    Store(#[from] kiln_store::StoreError),
    #[error(transparent)]
    /// A layer could not be written or read.
    Layer(#[from] kiln_layer::Error),
    #[error("{0}")]
    /// Content that is not what it should be.
    Invalid(String),
    #[error("{what}: {source}")]
    /// A file-system operation failed.
    Io {
        /// What was being done.
        what: String,
        #[source]
        /// The underlying error.
        source: std::io::Error,
    },
    #[error("{0}")]
    /// A step failed.
    Failed(String),
}

impl WorkerError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> WorkerError {
        WorkerError::Io {
            what: what.into(),
            source,
        }
    }
}
