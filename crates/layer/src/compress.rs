//! Compressed layers: [`compress_layer`] writes the tar, compresses it and
//! computes both digests (uncompressed `diff_id`, compressed `digest`) in one
//! pass, with output bytes that do not depend on the number of threads.
//!
//! - gzip: block-parallel deflate (see the `pgzip` module), default level 6,
//!   which is what BuildKit gets from Go's `gzip.DefaultCompression`; 1 MiB
//!   blocks of random or already-compressed data are stored, not deflated.
//! - zstd: libzstd, always in multithreaded mode with at least one worker
//!   (single-threaded mode produces different bytes), frame checksum on as
//!   Go's klauspost encoder and the `zstd` CLI write it, default level 3
//!   (BuildKit's `zstd.SpeedDefault` corresponds to level 3).
//!
//! Both digests are computed on threads of their own while the tar is being
//! written and compressed. The bytes of a compressed layer depend on the
//! compressor's implementation and version; changing either changes layer
//! digests.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::Path;

use kiln_graph::Digest;

use crate::error::{Error, Result};
use crate::hash::HashWriter;
use crate::pgzip::ParallelGzEncoder;
use crate::write::{LayerOptions, LayerStats, MEDIA_TYPE_TAR, write_layer, write_tar};

/// Media type of a gzip-compressed OCI layer.
pub const MEDIA_TYPE_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of a zstd-compressed OCI layer.
pub const MEDIA_TYPE_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    Uncompressed,
    /// gzip at a deflate level 0-9.
    Gzip {
        /// Deflate level, 0 (store) to 9 (best).
        level: u32,
    },
    /// zstd at a level in libzstd's range (negative levels are the fast modes).
    Zstd {
        /// zstd level, typically 1-19 (up to 22).
        level: i32,
    },
}

impl Compression {
    /// Default gzip level: 6, as Go's `gzip.DefaultCompression` used by BuildKit.
    pub const DEFAULT_GZIP_LEVEL: u32 = 6;
    /// Default zstd level: 3, libzstd's default and BuildKit's `SpeedDefault`.
    pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

    /// gzip at the default level.
    pub fn gzip() -> Compression {
        Compression::Gzip {
            level: Self::DEFAULT_GZIP_LEVEL,
        }
    }

    /// zstd at the default level.
    pub fn zstd() -> Compression {
        Compression::Zstd {
            level: Self::DEFAULT_ZSTD_LEVEL,
        }
    }

    /// The OCI layer media type for this compression.
    pub fn media_type(&self) -> &'static str {
        match self {
            Compression::Uncompressed => MEDIA_TYPE_TAR,
            Compression::Gzip { .. } => MEDIA_TYPE_GZIP,
            Compression::Zstd { .. } => MEDIA_TYPE_ZSTD,
        }
    }
}

impl Default for Compression {
    /// gzip at level 6, the format every registry and runtime accepts.
    fn default() -> Self {
        Compression::gzip()
    }
}

/// How to write and compress a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompressOptions {
    /// How the tar itself is written.
    pub layer: LayerOptions,
    /// The compression.
    pub compression: Compression,
    /// Compression threads; `None` uses every core. The output does not depend
    /// on it.
    pub threads: Option<NonZeroUsize>,
    /// The `diff_id` of this directory's tar written with the same
    /// [`LayerOptions`], when the caller knows it (from an earlier compression of
    /// the same layer): it is then returned as is instead of hashing the tar
    /// again.
    pub known_diff_id: Option<Digest>,
}

/// Writes the overlay upper dir `dir` as a compressed OCI layer to `out`,
/// returning its `diff_id` (sha256 of the tar), `digest` (sha256 of the bytes
/// written), size and media type, all computed in the same pass.
pub fn compress_layer<W: Write>(dir: &Path, out: W, opts: &CompressOptions) -> Result<LayerStats> {
    let threads = opts.threads.map_or_else(default_threads, NonZeroUsize::get);
    let encoder = match opts.compression {
        Compression::Uncompressed => return write_layer(dir, out, &opts.layer),
        Compression::Gzip { level } => {
            if level > 9 {
                return Err(Error::InvalidLevel {
                    codec: "gzip",
                    level: level.into(),
                });
            }
            let gzip = ParallelGzEncoder::new(HashWriter::new(out), level, threads)
                .map_err(Error::Write)?;
            Encoder::Gzip(gzip)
        }
        Compression::Zstd { level } => {
            if !zstd::compression_level_range().contains(&level) {
                return Err(Error::InvalidLevel {
                    codec: "zstd",
                    level: level.into(),
                });
            }
            let mut zstd = zstd::stream::write::Encoder::new(HashWriter::new(out), level)
                .map_err(Error::Write)?;
            // Multithreaded mode with n >= 1 workers gives the same bytes for
            // every n; n = 0 (single-threaded mode) would not.
            let workers = u32::try_from(threads).unwrap_or(u32::MAX).max(1);
            zstd.multithread(workers).map_err(Error::Write)?;
            zstd.include_checksum(true).map_err(Error::Write)?;
            Encoder::Zstd(zstd)
        }
    };
    let (encoder, diff_id, uncompressed_size, entries) = match &opts.known_diff_id {
        Some(diff_id) => {
            let mut tar = CountingWriter {
                inner: encoder,
                count: 0,
            };
            let entries = write_tar(dir, &mut tar, &opts.layer)?;
            (tar.inner, diff_id.clone(), tar.count, entries)
        }
        None => {
            let mut tar = HashWriter::new(encoder);
            let entries = write_tar(dir, &mut tar, &opts.layer)?;
            let (encoder, diff_id, size) = tar.finish().map_err(Error::Write)?;
            (encoder, diff_id, size, entries)
        }
    };
    let compressed = encoder.finish().map_err(Error::Write)?;
    let (_, digest, size) = compressed.finish().map_err(Error::Write)?;
    Ok(LayerStats {
        diff_id,
        digest,
        size,
        uncompressed_size,
        media_type: opts.compression.media_type(),
        entries,
    })
}

/// Counts what goes through it.
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The compressing stage, writing into the hasher of the compressed bytes.
enum Encoder<W: Write> {
    Gzip(ParallelGzEncoder<HashWriter<W>>),
    Zstd(zstd::stream::write::Encoder<'static, HashWriter<W>>),
}

impl<W: Write> Encoder<W> {
    fn finish(self) -> std::io::Result<HashWriter<W>> {
        match self {
            Encoder::Gzip(gzip) => gzip.finish(),
            Encoder::Zstd(zstd) => zstd.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Encoder::Gzip(gzip) => gzip.write(buf),
            Encoder::Zstd(zstd) => zstd.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::Gzip(gzip) => gzip.flush(),
            Encoder::Zstd(zstd) => zstd.flush(),
        }
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}
