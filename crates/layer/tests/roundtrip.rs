//! Write a rich upper dir as a layer, extract it again, and compare the trees;
//! tree digests of both sides; determinism of the writer. Run as root.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::*;
use kiln_layer::{
    CompressOptions, Compression, CompressionKind, ExtractOptions, LayerOptions, compress_layer,
    extract_layer, tree_digest, write_layer,
};

/// A snapshot minus what a layer does not carry: overlay bookkeeping other
/// than opacity, and whiteout timestamps (whiteouts are written with mtime 0
/// and recreated at extraction time).
fn layer_view(mut snap: BTreeMap<String, Meta>) -> BTreeMap<String, Meta> {
    for meta in snap.values_mut() {
        if meta.kind == "char" && meta.rdev == (0, 0) {
            meta.mtime = None;
        }
        meta.xattrs.retain(|name, _| {
            !name.starts_with("trusted.overlay.") || name == "trusted.overlay.opaque"
        });
    }
    snap
}

#[test]
fn write_then_extract_gives_back_the_same_upper_dir_for_every_compression() {
    let src = tempfile::tempdir().unwrap();
    rich_tree(src.path());
    let expected = layer_view(snapshot(src.path(), true));
    let source_digest = tree_digest(src.path()).unwrap();

    for (compression, kind) in [
        (Compression::Uncompressed, CompressionKind::Uncompressed),
        (Compression::gzip(), CompressionKind::Gzip),
        (Compression::zstd(), CompressionKind::Zstd),
    ] {
        let mut blob = Vec::new();
        let opts = CompressOptions {
            compression,
            ..Default::default()
        };
        let written = compress_layer(src.path(), &mut blob, &opts).unwrap();

        let dest = tempfile::tempdir().unwrap();
        let extracted = extract_layer(&blob[..], dest.path(), &ExtractOptions::layer()).unwrap();
        assert_eq!(extracted.compression, kind);
        assert_eq!(extracted.diff_id, written.diff_id, "{compression:?}");
        assert_eq!(extracted.digest, written.digest, "{compression:?}");
        assert_eq!(extracted.size, written.size);
        assert_eq!(extracted.uncompressed_size, written.uncompressed_size);
        assert_eq!(extracted.entries, written.entries);

        assert_same_tree(&expected, &layer_view(snapshot(dest.path(), true)));
        assert_eq!(tree_digest(dest.path()).unwrap(), source_digest);
    }
}

#[test]
fn whiteouts_and_opaque_directories_come_back_in_overlay_form() {
    let src = tempfile::tempdir().unwrap();
    rich_tree(src.path());
    let mut tar = Vec::new();
    write_layer(src.path(), &mut tar, &LayerOptions::default()).unwrap();
    let dest = tempfile::tempdir().unwrap();
    extract_layer(&tar[..], dest.path(), &ExtractOptions::layer()).unwrap();

    let snap = snapshot(dest.path(), true);
    let motd = &snap["etc/motd"];
    assert_eq!((motd.kind, motd.rdev), ("char", (0, 0)));
    assert!(!snap.contains_key("etc/.wh.motd"));
    assert_eq!(
        snap["var/cache/apt"].xattrs.get("trusted.overlay.opaque"),
        Some(&b"y".to_vec())
    );
    assert!(!snap.contains_key("var/cache/apt/.wh..wh..opq"));
    // Hard links share one inode again.
    assert_eq!(
        snap["usr/bin/python3"].link_group.as_deref(),
        Some("usr/bin/a-python")
    );
    assert_eq!(
        snap["usr/bin/python3.12"].link_group.as_deref(),
        Some("usr/bin/a-python")
    );
    assert_eq!(snap["usr/bin/sudo"].mode, 0o4755);
    assert_eq!(snap["tmp"].mode, 0o1777);
}

#[test]
fn the_writer_is_deterministic_across_copies_and_mtimes_are_clamped() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    rich_tree(a.path());
    rich_tree(b.path()); // same content, different inodes and creation order
    let write = |dir: &std::path::Path, epoch: Option<i64>| {
        let mut out = Vec::new();
        let stats = write_layer(
            dir,
            &mut out,
            &LayerOptions {
                source_date_epoch: epoch,
            },
        )
        .unwrap();
        assert_eq!(stats.diff_id.to_string(), sha256_hex(&out));
        assert_eq!(stats.size, out.len() as u64);
        out
    };
    let first = write(a.path(), None);
    assert_eq!(first, write(a.path(), None));
    assert_eq!(first, write(b.path(), None));

    // Clamp between the two mtimes in the tree: only the later one moves.
    let clamped = write(a.path(), Some(1_650_000_000));
    assert_ne!(clamped, first);
    let dest = tempfile::tempdir().unwrap();
    extract_layer(&clamped[..], dest.path(), &ExtractOptions::layer()).unwrap();
    let snap = snapshot(dest.path(), true);
    assert_eq!(snap["etc/hosts"].mtime, Some(1_650_000_000));
    assert_eq!(snap["etc/shadow"].mtime, Some(1_600_000_000));
    assert_eq!(snap["etc"].mtime, Some(1_600_000_000));
}

#[test]
fn tree_digest_ignores_times_and_inodes_but_sees_every_content_change() {
    let base = tempfile::tempdir().unwrap();
    rich_tree(base.path());
    let digest = tree_digest(base.path()).unwrap();

    // Another copy with other mtimes and inode numbers: same digest.
    let copy = tempfile::tempdir().unwrap();
    rich_tree(copy.path());
    set_all_mtimes(copy.path(), 1_234_567_890);
    assert_eq!(tree_digest(copy.path()).unwrap(), digest);
    // Overlay bookkeeping other than opacity does not count either.
    set_xattr(copy.path(), "etc", "trusted.overlay.impure", b"y");
    assert_eq!(tree_digest(copy.path()).unwrap(), digest);

    type Change = fn(&std::path::Path);
    let changes: [(&str, Change); 13] = [
        ("content", |r| write(r, "etc/hosts", b"changed\n", 0o644)),
        ("mode", |r| {
            fs::set_permissions(
                r.join("etc/hosts"),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap()
        }),
        ("setuid", |r| {
            fs::set_permissions(
                r.join("usr/bin/ping"),
                std::os::unix::fs::PermissionsExt::from_mode(0o4755),
            )
            .unwrap()
        }),
        ("uid", |r| chown(r, "etc/hosts", 1000, 0)),
        ("gid", |r| chown(r, "etc/hosts", 0, 1000)),
        ("xattr", |r| {
            set_xattr(r, "etc/hosts", "user.note", b"other")
        }),
        ("opaque", |r| opaque(r, "etc")),
        ("whiteout", |r| whiteout(r, "etc/issue")),
        ("symlink target", |r| {
            fs::remove_file(r.join("usr/bin/python")).unwrap();
            symlink(r, "usr/bin/python", "python3.12");
        }),
        ("hardlink broken", |r| {
            fs::remove_file(r.join("usr/bin/python3")).unwrap();
            write(r, "usr/bin/python3", b"#!python", 0o755);
        }),
        ("device number", |r| {
            fs::remove_file(r.join("dev/null")).unwrap();
            mknod(
                r,
                "dev/null",
                rustix::fs::FileType::CharacterDevice,
                0o666,
                1,
                5,
            );
        }),
        ("new empty file", |r| write(r, "etc/new", b"", 0o644)),
        ("renamed", |r| {
            fs::rename(r.join("empty"), r.join("empty2")).unwrap()
        }),
    ];
    for (what, change) in changes {
        let dir = tempfile::tempdir().unwrap();
        rich_tree(dir.path());
        change(dir.path());
        assert_ne!(tree_digest(dir.path()).unwrap(), digest, "{what} not seen");
    }
}

#[test]
fn an_opaque_root_is_written_and_restored() {
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "only", b"x", 0o644);
    opaque(src.path(), "");
    let mut tar = Vec::new();
    write_layer(src.path(), &mut tar, &LayerOptions::default()).unwrap();
    let listing = String::from_utf8(run("tar", &["-tf", "-"], &tar)).unwrap();
    assert_eq!(listing, ".wh..wh..opq\nonly\n");
    let dest = tempfile::tempdir().unwrap();
    extract_layer(&tar[..], dest.path(), &ExtractOptions::layer()).unwrap();
    assert_eq!(
        tree_digest(dest.path()).unwrap(),
        tree_digest(src.path()).unwrap()
    );
}

#[test]
fn an_empty_upper_dir_is_an_empty_tar() {
    let src = tempfile::tempdir().unwrap();
    let mut tar = Vec::new();
    let stats = write_layer(src.path(), &mut tar, &LayerOptions::default()).unwrap();
    assert_eq!(tar, vec![0u8; 1024]);
    assert_eq!(stats.entries, 0);
}
