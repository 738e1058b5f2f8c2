//! Recognising and undoing a layer's or archive's compression from its first
//! bytes, as moby's `compression.DecompressStream` does for `ADD` and layer
//! pulls: gzip, zstd (including skippable frames), bzip2, xz, or a plain tar.

use std::fmt;
use std::io::{self, BufRead, BufReader, Chain, Cursor, Read};

/// The compression of a stream, as recognised from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompressionKind {
    /// No known compression magic: read as a plain tar.
    Uncompressed,
    /// `1f 8b 08`.
    Gzip,
    /// `28 b5 2f fd`, or a skippable frame `5? 2a 4d 18`.
    Zstd,
    /// `BZh`.
    Bzip2,
    /// `fd 37 7a 58 5a 00`.
    Xz,
}

impl fmt::Display for CompressionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompressionKind::Uncompressed => "uncompressed",
            CompressionKind::Gzip => "gzip",
            CompressionKind::Zstd => "zstd",
            CompressionKind::Bzip2 => "bzip2",
            CompressionKind::Xz => "xz",
        })
    }
}

/// How many leading bytes [`detect_compression`] looks at.
pub const MAGIC_LEN: usize = 10;

/// The compression whose magic number starts `prefix` (give it at least
/// [`MAGIC_LEN`] bytes when the stream has them).
pub fn detect_compression(prefix: &[u8]) -> CompressionKind {
    if prefix.starts_with(b"BZh") {
        CompressionKind::Bzip2
    } else if prefix.starts_with(&[0x1f, 0x8b, 0x08]) {
        CompressionKind::Gzip
    } else if prefix.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        CompressionKind::Xz
    } else if prefix.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || is_zstd_skippable(prefix) {
        CompressionKind::Zstd
    } else {
        CompressionKind::Uncompressed
    }
}

fn is_zstd_skippable(prefix: &[u8]) -> bool {
    // Skippable frames: magic 0x184D2A50..=0x184D2A5F, little-endian, then a
    // 4-byte length (moby requires those 8 bytes to be present).
    prefix.len() >= 8
        && u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) & 0xFFFF_FFF0
            == 0x184D_2A50
}

/// The source seen again from its first byte after the magic was peeked.
type Rewound<R> = BufReader<Chain<Cursor<Vec<u8>>, R>>;

/// Memory limit for the xz decoder (xz -9 needs 65 MiB).
const XZ_MEMLIMIT: u64 = 1 << 30;

/// A decompressing reader over any of the [`CompressionKind`]s; see
/// [`decompress`].
pub struct Decompressor<R: Read> {
    kind: CompressionKind,
    inner: Inner<R>,
}

enum Inner<R: Read> {
    Plain(Rewound<R>),
    Gzip(flate2::bufread::MultiGzDecoder<Rewound<R>>),
    Zstd(zstd::stream::read::Decoder<'static, Rewound<R>>),
    Bzip2(bzip2::bufread::MultiBzDecoder<Rewound<R>>),
    Xz(liblzma::bufread::XzDecoder<Rewound<R>>),
}

/// Wraps `reader` in a decoder for the compression its first bytes announce
/// (a plain stream is passed through). Concatenated gzip members, zstd frames,
/// bzip2 and xz streams are all read.
pub fn decompress<R: Read>(mut reader: R) -> io::Result<Decompressor<R>> {
    let mut prefix = Vec::with_capacity(MAGIC_LEN);
    while prefix.len() < MAGIC_LEN {
        let mut byte = [0u8; MAGIC_LEN];
        let want = MAGIC_LEN - prefix.len();
        match reader.read(&mut byte[..want]) {
            Ok(0) => break,
            Ok(n) => prefix.extend_from_slice(&byte[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    let kind = detect_compression(&prefix);
    let source = BufReader::with_capacity(256 * 1024, Cursor::new(prefix).chain(reader));
    let inner = match kind {
        CompressionKind::Uncompressed => Inner::Plain(source),
        CompressionKind::Gzip => Inner::Gzip(flate2::bufread::MultiGzDecoder::new(source)),
        CompressionKind::Zstd => Inner::Zstd(zstd::stream::read::Decoder::with_buffer(source)?),
        CompressionKind::Bzip2 => Inner::Bzip2(bzip2::bufread::MultiBzDecoder::new(source)),
        CompressionKind::Xz => {
            let stream = liblzma::stream::Stream::new_stream_decoder(
                XZ_MEMLIMIT,
                liblzma::stream::CONCATENATED,
            )
            .map_err(io::Error::other)?;
            Inner::Xz(liblzma::bufread::XzDecoder::new_stream(source, stream))
        }
    };
    Ok(Decompressor { kind, inner })
}

impl<R: Read> Decompressor<R> {
    /// The compression that was detected.
    pub fn kind(&self) -> CompressionKind {
        self.kind
    }

    /// Reads whatever the decoder left of the source (trailing bytes after the
    /// compressed stream) to its end, discarding it.
    pub(crate) fn drain_source(&mut self) -> io::Result<u64> {
        let source = match &mut self.inner {
            Inner::Plain(r) => r,
            Inner::Gzip(d) => d.get_mut(),
            Inner::Zstd(d) => d.get_mut(),
            Inner::Bzip2(d) => d.get_mut(),
            Inner::Xz(d) => d.get_mut(),
        };
        let mut drained = 0u64;
        loop {
            let n = match source.fill_buf() {
                Ok([]) => return Ok(drained),
                Ok(buf) => buf.len(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            source.consume(n);
            drained += n as u64;
        }
    }

    /// The original reader (whatever was buffered from it is lost).
    pub fn into_inner(self) -> R {
        let source = match self.inner {
            Inner::Plain(r) => r,
            Inner::Gzip(d) => d.into_inner(),
            Inner::Zstd(d) => d.finish(),
            Inner::Bzip2(d) => d.into_inner(),
            Inner::Xz(d) => d.into_inner(),
        };
        source.into_inner().into_inner().1
    }
}

impl<R: Read> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(r) => r.read(buf),
            Inner::Gzip(d) => d.read(buf),
            Inner::Zstd(d) => d.read(buf),
            Inner::Bzip2(d) => d.read(buf),
            Inner::Xz(d) => d.read(buf),
        }
    }
}

impl<R: Read> fmt::Debug for Decompressor<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decompressor")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    #[test]
    fn magic_numbers_are_recognised_as_moby_does() {
        assert_eq!(
            detect_compression(&[0x1f, 0x8b, 8, 0]),
            CompressionKind::Gzip
        );
        assert_eq!(
            detect_compression(&[0x1f, 0x8b]),
            CompressionKind::Uncompressed
        );
        assert_eq!(detect_compression(b"BZh91AY"), CompressionKind::Bzip2);
        assert_eq!(
            detect_compression(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]),
            CompressionKind::Xz
        );
        assert_eq!(
            detect_compression(&[0x28, 0xb5, 0x2f, 0xfd]),
            CompressionKind::Zstd
        );
        assert_eq!(
            detect_compression(&[0x5e, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]),
            CompressionKind::Zstd
        );
        assert_eq!(
            detect_compression(&[0x5e, 0x2a, 0x4d, 0x18]),
            CompressionKind::Uncompressed
        );
        assert_eq!(
            detect_compression(b"etc/\0\0\0"),
            CompressionKind::Uncompressed
        );
        assert_eq!(detect_compression(b""), CompressionKind::Uncompressed);
    }

    fn compress_with(tool: &str, data: &[u8]) -> Vec<u8> {
        let mut child = Command::new(tool)
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} is needed for this test: {e}"));
        let mut stdin = child.stdin.take().unwrap();
        let data = data.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&data));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success());
        out.stdout
    }

    #[test]
    fn every_format_decompresses_to_the_original_including_concatenated_streams() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for (tool, kind) in [
            ("gzip", CompressionKind::Gzip),
            ("zstd", CompressionKind::Zstd),
            ("bzip2", CompressionKind::Bzip2),
            ("xz", CompressionKind::Xz),
        ] {
            let mut blob = compress_with(tool, &data[..300_000]);
            blob.extend(compress_with(tool, &data[300_000..]));
            let mut d = decompress(&blob[..]).unwrap();
            assert_eq!(d.kind(), kind);
            let mut out = Vec::new();
            d.read_to_end(&mut out).unwrap();
            assert!(out == data, "{tool} round trip");
        }
        let mut d = decompress(&b"plain"[..]).unwrap();
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        assert_eq!(
            (d.kind(), &out[..]),
            (CompressionKind::Uncompressed, &b"plain"[..])
        );
    }
}
