//! kiln's worker: the part of the engine that touches the operating system.
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

pub mod fileop;
