//! Hostile archives, built header by header: none may write outside the
//! destination, whatever the mode. Each test checks that the sandbox around
//! `dest` is untouched.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;
use kiln_layer::{
    EntryError, Error, ExtractMode, ExtractOptions, ExtractStats, Owner, extract_layer,
};

/// A raw USTAR header with any bytes as name and link name.
fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name);
        old.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(size);
    h.set_entry_type(tar::EntryType::new(typeflag));
    h.set_cksum();
    h.as_bytes().to_vec()
}

fn pad(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(data.len().div_ceil(512) * 512, 0);
    v
}

fn file(name: &str, data: &[u8]) -> Vec<u8> {
    [
        header(name.as_bytes(), b'0', data.len() as u64, b""),
        pad(data),
    ]
    .concat()
}

fn dir(name: &str) -> Vec<u8> {
    header(name.as_bytes(), b'5', 0, b"")
}

fn symlink_entry(name: &str, target: &str) -> Vec<u8> {
    header(name.as_bytes(), b'2', 0, target.as_bytes())
}

fn hardlink_entry(name: &str, target: &str) -> Vec<u8> {
    header(name.as_bytes(), b'1', 0, target.as_bytes())
}

/// A PAX extended header carrying `body` verbatim.
fn pax_raw(body: &[u8]) -> Vec<u8> {
    [
        header(b"PaxHeaders.0/x", b'x', body.len() as u64, b""),
        pad(body),
    ]
    .concat()
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let len = body + body.to_string().len();
    [format!("{len} {key}=").as_bytes(), value, b"\n"].concat()
}

fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = entries.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn opts(mode: ExtractMode) -> ExtractOptions {
    ExtractOptions {
        mode,
        ..ExtractOptions::default()
    }
}

/// Extracts `tar` into a fresh sandbox and checks nothing outside `dest`
/// changed; returns the sandbox and the result.
fn extract(tar: &[u8], opts: &ExtractOptions) -> (Sandbox, Result<ExtractStats, Error>) {
    let sandbox = Sandbox::new();
    let before = sandbox.outside_snapshot();
    let result = extract_layer(tar, &sandbox.dest(), opts);
    assert_same_tree(&before, &sandbox.outside_snapshot());
    (sandbox, result)
}

fn entry_error(result: Result<ExtractStats, Error>) -> (String, EntryError) {
    match result {
        Err(Error::Entry { entry, reason }) => (entry, reason),
        other => panic!("expected an entry error, got {other:?}"),
    }
}

const MODES: [ExtractMode; 2] = [ExtractMode::Layer, ExtractMode::Apply];

#[test]
fn dot_dot_that_climbs_out_of_a_layer_is_rejected_and_names_the_entry() {
    for name in [
        "../../etc/x",
        "../outside/evil",
        "a/../../outside/evil",
        "./../x",
    ] {
        let tar = archive(&[file(name, b"pwned")]);
        let (_sandbox, result) = extract(&tar, &opts(ExtractMode::Layer));
        let (entry, reason) = entry_error(result);
        assert_eq!(entry, name);
        assert!(matches!(reason, EntryError::EscapesDestination), "{reason}");
    }
    // `..` that stays inside is resolved, as moby does.
    for mode in MODES {
        let tar = archive(&[file("a/../b", b"fine")]);
        let (sandbox, result) = extract(&tar, &opts(mode));
        result.unwrap();
        assert_eq!(fs::read(sandbox.dest().join("b")).unwrap(), b"fine");
    }
}

#[test]
fn dot_dot_that_climbs_out_when_applying_stops_at_the_destination() {
    // moby extracts ADD's archives chrooted into the destination, where `..` at
    // the top is the top.
    let tar = archive(&[
        file("../../etc/x", b"1"),
        file("../outside/evil", b"2"),
        file("a/../../up", b"3"),
    ]);
    let (sandbox, result) = extract(&tar, &opts(ExtractMode::Apply));
    result.unwrap();
    let dest = sandbox.dest();
    assert_eq!(fs::read(dest.join("etc/x")).unwrap(), b"1");
    assert_eq!(fs::read(dest.join("outside/evil")).unwrap(), b"2");
    assert_eq!(fs::read(dest.join("up")).unwrap(), b"3");
    assert!(!sandbox.outside().join("evil").exists());
}

#[test]
fn absolute_paths_land_inside_the_destination() {
    for mode in MODES {
        let sandbox_probe = Sandbox::new();
        // An absolute name that, if honoured, would hit the sandbox itself.
        let outside = sandbox_probe.outside().join("abs");
        let outside_name = outside.to_str().unwrap().to_string();
        let tar = archive(&[
            file("/abs/path", b"a"),
            file(&outside_name, b"b"),
            file("/../../up", b"c"),
        ]);
        let (sandbox, result) = extract(&tar, &opts(mode));
        result.unwrap();
        let dest = sandbox.dest();
        assert_eq!(fs::read(dest.join("abs/path")).unwrap(), b"a");
        assert_eq!(
            fs::read(dest.join(outside_name.trim_start_matches('/'))).unwrap(),
            b"b"
        );
        assert_eq!(fs::read(dest.join("up")).unwrap(), b"c");
        assert!(!outside.exists());
    }
}

#[test]
fn a_symlink_to_root_is_never_a_way_out() {
    let sandbox_probe = Sandbox::new();
    let target = sandbox_probe.outside().join("pwned");
    let through = format!("evil{}", target.to_str().unwrap());

    // Layer: the symlink is not followed; the entry is refused.
    let tar = archive(&[symlink_entry("evil", "/"), file(&through, b"x")]);
    let (_sandbox, result) = extract(&tar, &opts(ExtractMode::Layer));
    let (entry, reason) = entry_error(result);
    assert_eq!(entry, through);
    assert!(matches!(reason, EntryError::UnsafeParent), "{reason}");

    // Apply: followed as inside a chroot at dest, so "/" is dest itself.
    let (sandbox, result) = extract(&tar, &opts(ExtractMode::Apply));
    result.unwrap();
    let inside = sandbox
        .dest()
        .join(target.to_str().unwrap().trim_start_matches('/'));
    assert_eq!(fs::read(inside).unwrap(), b"x");
    assert!(!target.exists());
}

#[test]
fn symlink_chains_to_dot_dot_stay_inside() {
    let chain = archive(&[
        dir("d/"),
        symlink_entry("d/up", ".."),
        // Created through d/up: in a chroot at dest this is dest/up -> "..".
        symlink_entry("d/up/up", ".."),
        file("d/up/up/outside/pwned", b"x"),
        file("d/up/up/up/up/outside/pwned2", b"y"),
    ]);
    let (_sandbox, result) = extract(&chain, &opts(ExtractMode::Layer));
    let (entry, reason) = entry_error(result);
    assert_eq!(entry, "d/up/up");
    assert!(matches!(reason, EntryError::UnsafeParent), "{reason}");

    let (sandbox, result) = extract(&chain, &opts(ExtractMode::Apply));
    result.unwrap();
    // `..` at the root of the chroot is the root: the files land in dest.
    assert_eq!(
        fs::read(sandbox.dest().join("outside/pwned")).unwrap(),
        b"x"
    );
    assert_eq!(
        fs::read(sandbox.dest().join("outside/pwned2")).unwrap(),
        b"y"
    );

    // A symlink whose own target climbs out is kept as written when applying
    // and followed inside the destination; in a layer it is never followed.
    let escaping = archive(&[
        dir("outside/"),
        symlink_entry("l1", "l2"),
        symlink_entry("l2", "../outside"),
        file("l1/pwned", b"x"),
    ]);
    let (sandbox, result) = extract(&escaping, &opts(ExtractMode::Apply));
    result.unwrap();
    assert_eq!(
        fs::read_link(sandbox.dest().join("l2")).unwrap(),
        Path::new("../outside")
    );
    assert_eq!(
        fs::read(sandbox.dest().join("outside/pwned")).unwrap(),
        b"x"
    );
    assert!(!sandbox.outside().join("pwned").exists());
    let (_sandbox, result) = extract(&escaping, &opts(ExtractMode::Layer));
    let (entry, reason) = entry_error(result);
    assert_eq!(entry, "l1/pwned");
    assert!(matches!(reason, EntryError::UnsafeParent), "{reason}");
}

#[test]
fn hard_links_must_point_inside() {
    let passwd_ino = fs::metadata("/etc/passwd").unwrap().ino();
    for mode in MODES {
        // Absolute target: looked up inside dest, where it does not exist.
        let tar = archive(&[hardlink_entry("x", "/etc/passwd")]);
        let (sandbox, result) = extract(&tar, &opts(mode));
        let (entry, reason) = entry_error(result);
        assert_eq!(entry, "x");
        assert!(
            matches!(reason, EntryError::LinkTargetMissing { .. }),
            "{reason}"
        );
        assert!(fs::symlink_metadata(sandbox.dest().join("x")).is_err());

        // Relative target above dest: refused in a layer, looked up at the top of
        // dest when applying (a chroot's root), where it does not exist.
        let tar = archive(&[hardlink_entry("y", "../outside/sentinel")]);
        let (sandbox, result) = extract(&tar, &opts(mode));
        let (_, reason) = entry_error(result);
        match mode {
            ExtractMode::Layer => {
                assert!(matches!(reason, EntryError::LinkOutside { .. }), "{reason}")
            }
            ExtractMode::Apply => assert!(
                matches!(reason, EntryError::LinkTargetMissing { .. }),
                "{reason}"
            ),
        }
        assert_eq!(
            fs::metadata(sandbox.outside().join("sentinel"))
                .unwrap()
                .nlink(),
            1
        );

        // Through a symlink the archive made.
        let probe = Sandbox::new();
        let sentinel = probe.outside().join("sentinel");
        let tar = archive(&[
            symlink_entry("evil", "/"),
            hardlink_entry("z", &format!("evil{}", sentinel.to_str().unwrap())),
        ]);
        let (sandbox, result) = extract(&tar, &opts(mode));
        let (entry, reason) = entry_error(result);
        assert_eq!(entry, "z");
        match mode {
            ExtractMode::Layer => assert!(matches!(reason, EntryError::UnsafeParent), "{reason}"),
            ExtractMode::Apply => {
                assert!(
                    matches!(reason, EntryError::LinkTargetMissing { .. }),
                    "{reason}"
                )
            }
        }
        assert_eq!(fs::metadata(&sentinel).unwrap().nlink(), 1);
        for entry in fs::read_dir(sandbox.dest()).unwrap() {
            let meta = fs::symlink_metadata(entry.unwrap().path()).unwrap();
            assert_ne!(meta.ino(), passwd_ino);
        }

        // A link to an earlier entry works.
        let tar = archive(&[file("a", b"data"), hardlink_entry("b", "a")]);
        let (sandbox, result) = extract(&tar, &opts(mode));
        result.unwrap();
        let (a, b) = (
            fs::metadata(sandbox.dest().join("a")).unwrap(),
            fs::metadata(sandbox.dest().join("b")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino());
    }
}

#[test]
fn a_body_shorter_than_declared_is_an_error_not_a_hang_or_a_huge_file() {
    let mut tar = header(b"big", b'0', 10_000_000_000, b"");
    tar.extend_from_slice(&[b'x'; 1000]);
    for mode in MODES {
        let (_sandbox, result) = extract(&tar, &opts(mode));
        let (entry, reason) = entry_error(result);
        assert_eq!(entry, "big");
        assert!(
            matches!(
                reason,
                EntryError::Truncated {
                    declared: 10_000_000_000,
                    read: 1000
                }
            ),
            "{reason}"
        );
    }
}

#[test]
fn oversized_or_lying_extended_headers_are_refused_without_allocating() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "record length past the data",
            pax_raw(b"99999999999 path=x\n"),
        ),
        (
            "record length beyond usize",
            pax_raw(b"999999999999999999999999 path=x\n"),
        ),
        (
            "pax header of 10 GB",
            header(b"PaxHeaders.0/x", b'x', 10_000_000_000, b""),
        ),
        (
            "gnu long name of 2 MiB",
            header(b"././@LongLink", b'L', 2 << 20, b""),
        ),
        (
            "global header of 1 GiB",
            header(b"pax_global_header", b'g', 1 << 30, b""),
        ),
    ];
    for (what, mut tar) in cases {
        tar.extend(file("after", b"x"));
        tar.extend_from_slice(&[0u8; 1024]);
        for mode in MODES {
            let (sandbox, result) = extract(&tar, &opts(mode));
            assert!(
                matches!(result, Err(Error::Malformed { .. })),
                "{what}: {result:?}"
            );
            assert!(!sandbox.dest().join("after").exists());
        }
    }
}

#[test]
fn pax_records_apply_to_the_next_entry_only() {
    let tar = archive(&[
        pax_raw(
            &[
                pax_record("path", "real/name".as_bytes()),
                pax_record("mtime", b"1234.5"),
            ]
            .concat(),
        ),
        file("ignored", b"1"),
        file("plain", b"2"),
    ]);
    let (sandbox, result) = extract(&tar, &opts(ExtractMode::Layer));
    result.unwrap();
    let dest = sandbox.dest();
    assert_eq!(fs::read(dest.join("real/name")).unwrap(), b"1");
    assert_eq!(fs::metadata(dest.join("real/name")).unwrap().mtime(), 1234);
    assert_eq!(
        fs::metadata(dest.join("real/name")).unwrap().mtime_nsec(),
        500_000_000
    );
    assert_eq!(fs::read(dest.join("plain")).unwrap(), b"2");
    assert!(!dest.join("ignored").exists());
}

#[test]
fn devices_need_privileges_fifos_do_not() {
    let mut dev = tar::Header::new_ustar();
    dev.as_old_mut().name[..4].copy_from_slice(b"null");
    dev.set_entry_type(tar::EntryType::Char);
    dev.set_device_major(1).unwrap();
    dev.set_device_minor(3).unwrap();
    dev.set_mode(0o666);
    dev.set_size(0);
    dev.set_cksum();
    let tar = archive(&[dev.as_bytes().to_vec()]);
    let unprivileged = ExtractOptions {
        privileged: false,
        ..ExtractOptions::layer()
    };
    let (sandbox, result) = extract(&tar, &unprivileged);
    let (entry, reason) = entry_error(result);
    assert_eq!(entry, "null");
    assert!(matches!(reason, EntryError::DeviceNotPermitted), "{reason}");
    assert!(!sandbox.dest().join("null").exists());

    let (sandbox, result) = extract(&tar, &ExtractOptions::layer());
    result.unwrap();
    assert_eq!(
        fs::metadata(sandbox.dest().join("null")).unwrap().rdev(),
        rustix::fs::makedev(1, 3)
    );

    let fifo = archive(&[header(b"fifo", b'6', 0, b"")]);
    let (sandbox, result) = extract(&fifo, &unprivileged);
    result.unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(
        fs::symlink_metadata(sandbox.dest().join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
}

#[test]
fn whiteout_names_cannot_reach_out_and_overlay_xattrs_cannot_be_forged() {
    for name in ["a/.wh..", "a/.wh...", ".wh."] {
        let tar = archive(&[file(name, b"")]);
        let (_sandbox, result) = extract(&tar, &opts(ExtractMode::Layer));
        let (entry, reason) = entry_error(result);
        assert_eq!(entry, name);
        assert!(matches!(reason, EntryError::InvalidPath), "{reason}");
    }
    let forged = archive(&[
        pax_raw(&pax_record("SCHILY.xattr.trusted.overlay.opaque", b"y")),
        dir("d/"),
        pax_raw(&pax_record("SCHILY.xattr.user.ok", b"1")),
        dir("e/"),
    ]);
    let (sandbox, result) = extract(&forged, &opts(ExtractMode::Layer));
    let stats = result.unwrap();
    assert_eq!(stats.skipped_xattrs, 1);
    let d = sandbox.dest().join("d");
    assert!(rustix::fs::lgetxattr(&d, "trusted.overlay.opaque", &mut [0u8; 8][..]).is_err());
    let mut value = [0u8; 8];
    let n = rustix::fs::lgetxattr(sandbox.dest().join("e"), "user.ok", &mut value[..]).unwrap();
    assert_eq!(&value[..n], b"1");
}

#[test]
fn a_path_in_the_same_layer_wins_over_its_whiteout_in_either_order() {
    let tar = archive(&[
        file("a", b"kept"),
        file(".wh.a", b""),
        file(".wh.b", b""),
        file("b", b"kept too"),
    ]);
    let (sandbox, result) = extract(&tar, &opts(ExtractMode::Layer));
    result.unwrap();
    assert_eq!(fs::read(sandbox.dest().join("a")).unwrap(), b"kept");
    assert_eq!(fs::read(sandbox.dest().join("b")).unwrap(), b"kept too");
}

#[test]
fn malformed_headers_are_reported_with_their_offset() {
    let mut corrupt = file("a", b"x");
    corrupt[0] = b'b'; // checksum no longer matches
    let (_sandbox, result) = extract(&archive(&[corrupt]), &opts(ExtractMode::Layer));
    assert!(
        matches!(result, Err(Error::Malformed { offset: 0, .. })),
        "{result:?}"
    );

    let mut zero_then_header = vec![0u8; 512];
    zero_then_header.extend(file("late", b"x"));
    let (_sandbox, result) = extract(&zero_then_header, &opts(ExtractMode::Layer));
    assert!(matches!(result, Err(Error::Malformed { .. })), "{result:?}");

    let truncated_header = file("a", b"x")[..300].to_vec();
    let (_sandbox, result) = extract(&truncated_header, &opts(ExtractMode::Layer));
    assert!(matches!(result, Err(Error::Malformed { .. })), "{result:?}");

    let unknown = archive(&[header(b"vol", b'V', 0, b"")]);
    let (_sandbox, result) = extract(&unknown, &opts(ExtractMode::Layer));
    let (_, reason) = entry_error(result);
    assert!(
        matches!(reason, EntryError::UnsupportedType('V')),
        "{reason}"
    );
}

#[test]
fn a_layer_goes_into_an_empty_directory() {
    let sandbox = Sandbox::new();
    fs::write(sandbox.dest().join("stale"), b"").unwrap();
    let result = extract_layer(
        &archive(&[file("a", b"")])[..],
        &sandbox.dest(),
        &ExtractOptions::layer(),
    );
    assert!(
        matches!(result, Err(Error::Destination { .. })),
        "{result:?}"
    );
}

#[test]
fn apply_overwrites_merges_keeps_whiteout_files_and_chowns() {
    let sandbox = Sandbox::new();
    let dest = sandbox.dest();
    write(&dest, "keep", b"old", 0o644);
    write(&dest, "replace", b"old", 0o644);
    write(&dest, "dir/inner", b"old", 0o644);
    // A tree about to be replaced by a file holds a symlink to the outside:
    // removing it must not follow the link.
    write(&dest, "tree/x", b"old", 0o644);
    std::os::unix::fs::symlink(sandbox.outside(), dest.join("tree/out")).unwrap();
    let before = sandbox.outside_snapshot();

    let tar = archive(&[
        file("replace", b"new"),
        dir("dir/"),
        file("dir/added", b"new"),
        file("tree", b"now a file"),
        file(".wh.keep", b""),
    ]);
    let opts = ExtractOptions {
        owner: Some(Owner {
            uid: 1234,
            gid: 5678,
        }),
        ..ExtractOptions::apply()
    };
    extract_layer(&tar[..], &dest, &opts).unwrap();
    assert_same_tree(&before, &sandbox.outside_snapshot());

    assert_eq!(fs::read(dest.join("keep")).unwrap(), b"old");
    assert_eq!(fs::read(dest.join("replace")).unwrap(), b"new");
    assert_eq!(fs::read(dest.join("dir/inner")).unwrap(), b"old");
    assert_eq!(fs::read(dest.join("dir/added")).unwrap(), b"new");
    assert_eq!(fs::read(dest.join("tree")).unwrap(), b"now a file");
    assert_eq!(fs::read(dest.join(".wh.keep")).unwrap(), b"");
    for path in ["replace", "dir", "dir/added", ".wh.keep"] {
        let meta = fs::metadata(dest.join(path)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1234, 5678), "{path}");
    }
    assert_eq!(fs::metadata(dest.join("keep")).unwrap().uid(), 0);
}

#[test]
fn apply_follows_existing_symlinks_inside_the_tree_like_a_chroot() {
    let sandbox = Sandbox::new();
    let dest = sandbox.dest();
    mkdir(&dest, "usr/lib", 0o755);
    // Merged-/usr style: /lib -> usr/lib, and an absolute one.
    std::os::unix::fs::symlink("usr/lib", dest.join("lib")).unwrap();
    std::os::unix::fs::symlink("/usr/lib", dest.join("lib64")).unwrap();
    let before = sandbox.outside_snapshot();
    let tar = archive(&[
        file("lib/libfoo.so", b"foo"),
        file("lib64/libbar.so", b"bar"),
    ]);
    extract_layer(&tar[..], &dest, &ExtractOptions::apply()).unwrap();
    assert_same_tree(&before, &sandbox.outside_snapshot());
    assert_eq!(fs::read(dest.join("usr/lib/libfoo.so")).unwrap(), b"foo");
    assert_eq!(fs::read(dest.join("usr/lib/libbar.so")).unwrap(), b"bar");
}

#[test]
fn the_all_ones_id_leaves_the_owner_unchanged_instead_of_panicking() {
    // Go's Lchown passes uid/gid 4294967295 to the kernel as -1: "do not change".
    let pax = [
        pax_record("uid", b"4294967295"),
        pax_record("gid", b"4294967295"),
    ]
    .concat();
    let tar = archive(&[pax_raw(&pax), file("f", b"x")]);
    for mode in MODES {
        let (sandbox, result) = extract(&tar, &opts(mode));
        result.unwrap();
        let meta = fs::metadata(sandbox.dest().join("f")).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw()
            )
        );
    }
    // The same through an override (`ADD --chown=-1:9`).
    let opts = ExtractOptions {
        owner: Some(Owner {
            uid: u32::MAX,
            gid: 9,
        }),
        ..ExtractOptions::apply()
    };
    let (sandbox, result) = extract(&archive(&[file("g", b"y")]), &opts);
    result.unwrap();
    let meta = fs::metadata(sandbox.dest().join("g")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (rustix::process::geteuid().as_raw(), 9)
    );
}
