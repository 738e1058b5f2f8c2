//! kiln's worker: the only part of kiln that touches the operating system.
//!
//! It implements the solver's [`kiln_solver::Backend`] with a [`Worker`]: image
//! sources pulled from registries through the store ([`Images`], [`Layers`]), build
//! contexts read in place with a stat cache ([`ContextIndex`]), RUN steps as OCI
//! containers run by `runc` ([`exec`]), the overlay mounts they all stand on
//! ([`mount`]), and file operations. It knows nothing of Dockerfiles: it runs graph
//! ops.
//!
//! [`fileop`] runs the `file` ops of the build graph (COPY, ADD, WORKDIR and
//! inline files) on plain directories prepared by the engine, exactly as
//! BuildKit's file op backend does: [`fileop::apply`] applies a list of
//! actions, [`fileop::selection_digest`] computes the content-based cache key
//! of a copy.
//!
//! ```
//! use kiln_graph::{CopyAction, FileAction};
//! use kiln_worker::fileop::{apply, ApplyOptions, SourceTree};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let context = tempfile::tempdir()?;
//! std::fs::write(context.path().join("a.txt"), "hello")?;
//! let rootfs = tempfile::tempdir()?;
//!
//! // COPY a.txt /x/
//! let copy = CopyAction {
//!     source: 1,
//!     src: "/a.txt".into(),
//!     dest: "/x/".into(),
//!     owner: None,
//!     mode: None,
//!     follow_symlinks: true,
//!     contents_only: true,
//!     unpack_archives: false,
//!     create_dest_path: true,
//!     allow_wildcard: true,
//!     allow_empty_wildcard: true,
//!     include_patterns: vec![],
//!     exclude_patterns: vec![],
//!     replace_existing: false,
//!     timestamp: None,
//! };
//! let context_tree = SourceTree { root: context.path(), exclude: &[], owner: Some((0, 0)) };
//! apply(rootfs.path(), &[FileAction::Copy(copy)], &[None, Some(context_tree)], &ApplyOptions::default())?;
//! assert_eq!(std::fs::read_to_string(rootfs.path().join("x/a.txt"))?, "hello");
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod backend;
mod context;
mod error;
pub mod exec;
pub mod fileop;
mod fsutil;
mod image;
mod layers;
pub mod mount;
mod remote;
mod upper;

pub use backend::{Worker, WorkerConfig};
pub use context::{ContextIndex, LocalDir};
pub use error::WorkerError;
pub use exec::{ExecConfig, SecretSource, active_steps};
pub use image::{Images, RemoteLayer, ResolvedImage};
pub use layers::{ExportBlob, Layers, compression_label};
pub use mount::isolate_mounts;
