//! Layer tarballs for kiln: write them deterministically, compress them fast,
//! hash trees for early cutoff, and extract them safely.
//!
//! kiln keeps every layer as a directory in **overlay upper-dir format**: a
//! deleted path is a character device 0/0, a directory hiding everything below
//! it has the xattr `trusted.overlay.opaque=y`. This crate converts between
//! that form and OCI layer tars:
//!
//! - [`write_layer`] writes an upper dir as an uncompressed OCI layer tar, the
//!   same bytes every time for the same tree (sorted entries, PAX headers as
//!   Go's `archive/tar` writes them, whiteouts in OCI form, hard links, xattrs,
//!   optional `SOURCE_DATE_EPOCH` clamp), returning [`LayerStats`].
//! - [`compress_layer`] does the same through [`Compression`] (block-parallel
//!   gzip or multithreaded zstd, output independent of the thread count) and
//!   computes the `diff_id` and the blob digest in the same pass.
//! - [`tree_digest`] hashes an upper dir's content (no timestamps), so two
//!   steps that produced the same layer are recognised without writing tars.
//! - [`extract_layer`] unpacks a gzip/zstd/bzip2/xz/plain tar, either as a layer
//!   in upper-dir format ([`ExtractMode::Layer`]) or onto an existing tree as
//!   `ADD` does ([`ExtractMode::Apply`]), without ever writing outside the
//!   destination, and reports the stream's `diff_id` in [`ExtractStats`].
//! - [`detect_compression`] and [`decompress`] recognise and undo a stream's
//!   compression from its magic bytes.
//!
//! ```no_run
//! use std::fs::File;
//! use std::path::Path;
//! use kiln_layer::{compress_layer, extract_layer, tree_digest, CompressOptions, Compression, ExtractOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let upper = Path::new("/var/lib/kiln/snapshots/42/fs");
//! let opts = CompressOptions { compression: Compression::zstd(), ..Default::default() };
//! let stats = compress_layer(upper, File::create("/tmp/layer.tar.zst")?, &opts)?;
//! println!("{} {} {} bytes", stats.diff_id, stats.digest, stats.size);
//!
//! let dest = Path::new("/var/lib/kiln/snapshots/43/fs");
//! let extracted = extract_layer(File::open("/tmp/layer.tar.zst")?, dest, &ExtractOptions::layer())?;
//! assert_eq!(extracted.diff_id, stats.diff_id);
//! assert_eq!(tree_digest(dest)?, tree_digest(upper)?);
//! # Ok(()) }
//! ```
//!
//! # Layer tar format
//!
//! - Order: depth-first, each directory immediately followed by its contents,
//!   siblings in byte order of their tar names (`a/`, `a/b`, `a-b`; a whiteout
//!   for `x` sorts as `.wh.x`), as Go's `filepath.Walk` in containerd's writer
//!   and GNU `tar --sort=name`. The root directory has no entry.
//! - Headers: USTAR (`ustar\0`, `00`), formatted byte for byte as Go's
//!   `archive/tar` in PAX mode: long ASCII names split into the prefix field
//!   when nothing else needs PAX, otherwise a PAX header (`path`, `linkpath`,
//!   `uid`, `gid`, `size`, `mtime`, `SCHILY.xattr.*`, sorted); never GNU
//!   extensions. Directory names end in `/`. Numeric uid/gid, empty
//!   user/group names, mode with setuid/setgid/sticky, mtime in whole seconds
//!   (clamped to `SOURCE_DATE_EPOCH` if given), no atime/ctime. The archive
//!   ends with two zero blocks and no further padding.
//! - Whiteouts: a char device 0/0 `x` becomes an empty regular file `.wh.x`;
//!   an opaque directory is its entry followed by `<dir>/.wh..wh..opq`; both
//!   with mode, owner and mtime 0, as containerd writes whiteouts.
//! - Hard links (same device and inode, more than one link): the first path in
//!   layer order holds the data, later ones are link entries naming it.
//! - Xattrs: all but `trusted.overlay.*` (overlay's bookkeeping) and
//!   `security.selinux` (a label of the host that ran the step).
//! - Sockets are skipped.
//!
//! # Written by hand, and why
//!
//! - Tar header encoding (`header`): the `tar` crate supplies the block
//!   layout, but its builder chooses GNU long names and its own number
//!   formats; byte-exact, Go-compatible PAX output needs control of every field.
//! - Tar reading (`tarread`): `tar::Archive` buffers PAX and long-name bodies
//!   of any declared size and splits PAX records at newlines (breaking binary
//!   xattr values); extraction needs bounded, length-driven parsing.
//! - Parallel gzip (`pgzip`): `gzp` implements the same block design but
//!   requires C zlib; this one sits on `flate2` (zlib-rs) and `crc32fast`, and
//!   stores blocks it recognises as incompressible instead of deflating them.
//! - Safe extraction (`fsops`, `extract`): no crate extracts with
//!   `openat2`-confined resolution and overlay whiteout conversion.

#![deny(missing_docs)]

mod compress;
mod detect;
mod error;
mod extract;
mod fsops;
mod hash;
mod header;
mod pgzip;
mod tarread;
mod tree;
mod walk;
mod write;
mod xattr;

pub use compress::{
    CompressOptions, Compression, MEDIA_TYPE_GZIP, MEDIA_TYPE_ZSTD, compress_layer,
};
pub use detect::{CompressionKind, Decompressor, MAGIC_LEN, decompress, detect_compression};
pub use error::{EntryError, Error, Result};
pub use extract::{ExtractMode, ExtractOptions, ExtractStats, Owner, extract_layer};
pub use tree::{KnownContent, tree_digest, tree_digest_with};
pub use write::{LayerOptions, LayerStats, MEDIA_TYPE_TAR, write_layer};
