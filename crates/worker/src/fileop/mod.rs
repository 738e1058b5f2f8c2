//! File operations: the `file` op of kiln's build graph (COPY, ADD, WORKDIR,
//! inline files), producing the same tree BuildKit's file op backend does:
//! names, types, modes with setuid/setgid/sticky, ownership, symlink targets,
//! hard links, xattrs and times.
//!
//! - [`apply`] runs a list of [`FileAction`]s on a destination directory,
//!   reading copies from [`SourceTree`]s; [`apply_traced`] also says which
//!   files it copied from where ([`CopiedFile`]).
//! - [`selection_digest`] hashes what a copy action selects from its source
//!   (the cache key of a COPY), with file contents hashed by a
//!   [`FileHasher`] such as [`PlainHasher`].
//!
//! Every path is resolved inside its root as if that root were `/`: symlinks
//! (absolute or relative, in the destination or a source) are followed inside
//! it and `..` stops at it, and files are then opened with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, so nothing is ever read or
//! written outside the roots.
//!
//! Written by hand, and why: the copy rules are fsutil's `copy` package
//! (trailing-slash rules, directory-contents semantics, lazily created
//! parents of included entries, hard-link tracking, the order metadata is
//! set in), the wildcard matcher is Go's `filepath.Match`, path resolution is
//! continuity's `RootPath` and `--chmod` is BSD `setmode(3)` as Go ports it.
//! A build's output depends on the details of each, which general-purpose
//! copy, glob and path crates do not reproduce. Pattern matching comes from
//! `kiln-ignore` and archive extraction from `kiln-layer`.

mod actions;
mod chmod;
mod copy;
mod digest;
mod error;
mod fsys;
mod gomatch;
mod gopath;
mod owner;
mod resolve;
mod source;

use std::path::Path;

use kiln_graph::{FileAction, Principal};

pub use chmod::InvalidMode;
pub use copy::CopiedFile;
pub use digest::{FileHasher, FileStat, PlainHasher, selection_digest};
pub use error::FileOpError;
pub use source::SourceTree;

use copy::{CopyParams, ModeRule};
use fsys::Root;
use owner::resolve_owner;
use source::Source;

/// How [`apply`] runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Threads copying file data and scanning sources; `None` uses rayon's
    /// global pool (one thread per core). The result does not depend on it.
    pub threads: Option<usize>,
    /// The op has no base: `dest_root` starts empty. As in BuildKit, the first
    /// action then has no `/etc/passwd` or `/etc/group` to resolve a name in,
    /// and a user or group given by name is an error rather than uid/gid 0.
    pub empty_base: bool,
}

/// Applies `actions` in order to `dest_root`, a writable directory holding
/// the step's root filesystem.
///
/// `sources[i]` is the directory of the op's input `i` (the `source` of a
/// copy action). `None` marks an input that has no directory of its own
/// (the base itself): a copy from it reads `dest_root` as it is when the
/// copy starts. User and group names (`--chown`, the owner of WORKDIR) are
/// resolved against `dest_root`'s own `/etc/passwd` and `/etc/group`; an
/// unknown name is uid/gid 0, as in BuildKit.
///
/// On error, what the actions wrote so far stays: the caller discards the
/// directory.
pub fn apply(
    dest_root: &Path,
    actions: &[FileAction],
    sources: &[Option<SourceTree<'_>>],
    opts: &ApplyOptions,
) -> Result<(), FileOpError> {
    apply_traced(dest_root, actions, sources, opts).map(drop)
}

/// [`apply`], returning every regular file the copy actions wrote with where it
/// came from, in the order the actions ran (a path can appear twice when a later
/// copy replaced it), so a caller that knows the originals' contents need not read
/// the copies.
pub fn apply_traced(
    dest_root: &Path,
    actions: &[FileAction],
    sources: &[Option<SourceTree<'_>>],
    opts: &ApplyOptions,
) -> Result<Vec<CopiedFile>, FileOpError> {
    if opts.empty_base
        && let Some(name) = actions.first().and_then(owner_name)
    {
        return Err(FileOpError::NameWithoutBase {
            name: name.to_string(),
        });
    }
    let run = || apply_all(dest_root, actions, sources);
    let pool = opts
        .threads
        .and_then(|n| rayon::ThreadPoolBuilder::new().num_threads(n).build().ok());
    match pool {
        Some(pool) => pool.install(run),
        None => run(),
    }
}

/// The first user or group name (not id) an action gives ownership by.
fn owner_name(action: &FileAction) -> Option<&str> {
    let chown = match action {
        FileAction::Copy(c) => c.owner.as_ref(),
        FileAction::Mkdir(m) => m.owner.as_ref(),
        FileAction::Mkfile(m) => m.owner.as_ref(),
        FileAction::Rm(_) => None,
    }?;
    [Some(&chown.user), chown.group.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|p| match p {
            Principal::Name(n) => Some(n.as_str()),
            Principal::Id(_) => None,
        })
}

fn apply_all(
    dest_root: &Path,
    actions: &[FileAction],
    sources: &[Option<SourceTree<'_>>],
) -> Result<Vec<CopiedFile>, FileOpError> {
    let mut copied = Vec::new();
    let dest = Root::open(dest_root).map_err(|source| FileOpError::Root {
        path: dest_root.to_path_buf(),
        source,
    })?;
    for action in actions {
        match action {
            FileAction::Copy(copy) => {
                let source = match sources.get(copy.source) {
                    Some(Some(tree)) => Source::open(tree)?,
                    Some(None) => Source::plain(dest_root)?,
                    None => return Err(FileOpError::NoSource { index: copy.source }),
                };
                let params = CopyParams {
                    owner: copy
                        .owner
                        .as_ref()
                        .map(|chown| resolve_owner(&dest, chown))
                        .transpose()?,
                    mode: ModeRule::new(copy.mode.as_ref())?,
                    utime: actions::timestamp(copy.timestamp),
                    replace_existing: copy.replace_existing,
                    contents_only: copy.contents_only,
                };
                copied.extend(copy::copy(&dest, &source, copy, &params)?);
            }
            FileAction::Mkdir(mkdir) => {
                let owner = mkdir
                    .owner
                    .as_ref()
                    .map(|chown| resolve_owner(&dest, chown))
                    .transpose()?;
                actions::mkdir(&dest, mkdir, owner)?;
            }
            FileAction::Mkfile(mkfile) => {
                let owner = mkfile
                    .owner
                    .as_ref()
                    .map(|chown| resolve_owner(&dest, chown))
                    .transpose()?;
                actions::mkfile(&dest, mkfile, owner)?;
            }
            FileAction::Rm(rm) => actions::rm(&dest, rm)?,
        }
    }
    Ok(copied)
}
