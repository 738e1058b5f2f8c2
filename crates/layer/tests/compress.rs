//! Compressed layers: identical bytes for any thread count, readable by the
//! system's `gzip` and `zstd`, digests that match the bytes.

mod common;

use std::num::NonZeroUsize;

use common::*;
use kiln_layer::{
    CompressOptions, Compression, Error, LayerOptions, MEDIA_TYPE_GZIP, MEDIA_TYPE_TAR,
    MEDIA_TYPE_ZSTD, compress_layer, write_layer,
};

/// A tree a few MiB large, so that several gzip blocks and zstd jobs occur.
fn big_tree(root: &std::path::Path) {
    rich_tree(root);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..(3 << 20) / 2)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    write(root, "data/noise.bin", &noise, 0o644);
    let text: Vec<u8> = (0..40_000)
        .flat_map(|i| format!("{i:08} the quick brown fox jumps over the lazy dog\n").into_bytes())
        .collect();
    write(root, "data/text.txt", &text, 0o644);
}

fn compress(
    dir: &std::path::Path,
    compression: Compression,
    threads: usize,
) -> (Vec<u8>, kiln_layer::LayerStats) {
    let mut out = Vec::new();
    let stats = compress_layer(
        dir,
        &mut out,
        &CompressOptions {
            layer: LayerOptions::default(),
            compression,
            threads: NonZeroUsize::new(threads),
            known_diff_id: None,
        },
    )
    .unwrap();
    (out, stats)
}

#[test]
fn gzip_and_zstd_bytes_do_not_depend_on_the_thread_count_and_decompress_with_system_tools() {
    let src = tempfile::tempdir().unwrap();
    big_tree(src.path());
    let mut tar = Vec::new();
    let plain = write_layer(src.path(), &mut tar, &LayerOptions::default()).unwrap();
    assert_eq!(plain.media_type, MEDIA_TYPE_TAR);
    assert_eq!(plain.digest, plain.diff_id);

    for (compression, tool, media_type) in [
        (Compression::gzip(), "gzip", MEDIA_TYPE_GZIP),
        (Compression::zstd(), "zstd", MEDIA_TYPE_ZSTD),
        (Compression::Gzip { level: 1 }, "gzip", MEDIA_TYPE_GZIP),
        (Compression::Zstd { level: 9 }, "zstd", MEDIA_TYPE_ZSTD),
    ] {
        let (one, stats) = compress(src.path(), compression, 1);
        for threads in [2, 4] {
            let (other, other_stats) = compress(src.path(), compression, threads);
            assert!(
                one == other,
                "{compression:?}: {threads} threads differ from 1"
            );
            assert_eq!(other_stats, stats);
        }
        assert_eq!(stats.diff_id, plain.diff_id, "{compression:?}");
        assert_eq!(stats.digest.to_string(), sha256_hex(&one));
        assert_eq!(stats.size, one.len() as u64);
        assert_eq!(stats.uncompressed_size, tar.len() as u64);
        assert_eq!(stats.media_type, media_type);
        assert!(
            stats.size < stats.uncompressed_size / 2,
            "{compression:?} did not compress"
        );

        let decompressed = run(tool, &["-d", "-c"], &one);
        assert!(decompressed == tar, "{tool} -d gives a different tar");
    }
}

#[test]
fn uncompressed_through_compress_layer_is_the_plain_tar() {
    let src = tempfile::tempdir().unwrap();
    rich_tree(src.path());
    let mut tar = Vec::new();
    let plain = write_layer(src.path(), &mut tar, &LayerOptions::default()).unwrap();
    let (out, stats) = compress(src.path(), Compression::Uncompressed, 2);
    assert_eq!(out, tar);
    assert_eq!(stats, plain);
}

#[test]
fn out_of_range_levels_are_refused() {
    let src = tempfile::tempdir().unwrap();
    for compression in [
        Compression::Gzip { level: 10 },
        Compression::Zstd { level: 1000 },
    ] {
        let err = compress_layer(
            src.path(),
            Vec::new(),
            &CompressOptions {
                compression,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidLevel { .. }), "{err}");
    }
}

#[test]
fn defaults_match_buildkit() {
    assert_eq!(Compression::default(), Compression::Gzip { level: 6 });
    assert_eq!(Compression::zstd(), Compression::Zstd { level: 3 });
}

#[test]
fn a_known_diff_id_is_taken_as_given_and_changes_nothing_else() {
    let src = tempfile::tempdir().unwrap();
    big_tree(src.path());
    for compression in [Compression::gzip(), Compression::zstd()] {
        let (bytes, stats) = compress(src.path(), compression, 2);
        let given = kiln_graph::Digest::of(b"what the caller says");
        let mut out = Vec::new();
        let again = compress_layer(
            src.path(),
            &mut out,
            &CompressOptions {
                compression,
                threads: NonZeroUsize::new(2),
                known_diff_id: Some(given.clone()),
                ..CompressOptions::default()
            },
        )
        .unwrap();
        assert_eq!(out, bytes, "{compression:?}");
        assert_eq!(again.diff_id, given);
        assert_eq!(
            (
                again.digest,
                again.size,
                again.uncompressed_size,
                again.entries
            ),
            (
                stats.digest,
                stats.size,
                stats.uncompressed_size,
                stats.entries
            )
        );
    }
}
