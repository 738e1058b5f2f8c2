//! ADD of local archives: tar files (plain, gzip, bzip2, xz, zstd) are
//! recognised by content and extracted onto the destination, `--chown`
//! applying to their entries; anything else is copied as it is; a hostile
//! archive fails or stays inside the destination directory.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::PathBuf;

use common::*;
use kiln_graph::CopyAction;
use tempfile::TempDir;

/// One archive entry: name, type flag, body, link target, mode, uid/gid.
struct E<'a> {
    name: &'a [u8],
    kind: tar::EntryType,
    data: &'a [u8],
    link: &'a [u8],
    mode: u32,
    owner: u64,
}

fn e<'a>(name: &'a str, kind: tar::EntryType, data: &'a str, link: &'a str, mode: u32) -> E<'a> {
    E {
        name: name.as_bytes(),
        kind,
        data: data.as_bytes(),
        link: link.as_bytes(),
        mode,
        owner: 1000,
    }
}

/// A tar written header by header, names and link targets copied as given
/// (hostile ones included).
fn tar_of(entries: &[E<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(entry.kind);
        h.set_mode(entry.mode);
        h.set_uid(entry.owner);
        h.set_gid(entry.owner);
        h.set_mtime(1_000_000_000);
        h.set_size(entry.data.len() as u64);
        let old = h.as_old_mut();
        old.name[..entry.name.len()].copy_from_slice(entry.name);
        old.linkname[..entry.link.len()].copy_from_slice(entry.link);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(entry.data);
        let pad = (512 - entry.data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

fn package() -> Vec<u8> {
    use tar::EntryType::*;
    tar_of(&[
        e("pkg/", Directory, "", "", 0o755),
        e("pkg/bin/", Directory, "", "", 0o755),
        e("pkg/bin/tool", Regular, "#!/bin/sh\necho tool\n", "", 0o755),
        e("pkg/bin/tool-link", Symlink, "", "tool", 0o777),
        e("pkg/README", Regular, "readme\n", "", 0o644),
        e("pkg/etc/conf", Regular, "k=v\n", "", 0o600),
        e("pkg/sbin/suid", Regular, "s", "", 0o4755),
        e("pkg/README-link", Link, "", "pkg/README", 0o644),
    ])
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn bzip2(data: &[u8]) -> Vec<u8> {
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

struct T {
    _tmp: TempDir,
    ctx: PathBuf,
    root: PathBuf,
    outside: PathBuf,
}

impl T {
    fn new() -> T {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("context");
        let root = tmp.path().join("rootfs");
        let outside = tmp.path().join("outside");
        for d in [&ctx, &root, &outside] {
            fs::create_dir(d).unwrap();
        }
        busybox_base(&root);
        T {
            _tmp: tmp,
            ctx,
            root,
            outside,
        }
    }

    fn put(&self, name: &str, data: &[u8]) {
        fs::write(self.ctx.join(name), data).unwrap();
    }

    fn add(&self, action: CopyAction) -> Result<(), kiln_worker::fileop::FileOpError> {
        run_copies(&self.root, &self.ctx, vec![action])
    }

    fn subtree(&self, rel: &str) -> Vec<String> {
        tree(&self.root.join(rel))
            .into_iter()
            .map(|(p, l)| format!("{p} {l}"))
            .collect()
    }
}

fn expected_package(owner: &str, implied: &str) -> Vec<String> {
    let h = |s: &str| sha256(s.as_bytes());
    vec![
        format!("pkg d 0755 {owner} 0 -"),
        format!("pkg/README f 0644 {owner} 7 {}", h("readme\n")),
        format!("pkg/README-link h 0644 {owner} 0 pkg/README"),
        format!("pkg/bin d 0755 {owner} 0 -"),
        format!(
            "pkg/bin/tool f 0755 {owner} 20 {}",
            h("#!/bin/sh\necho tool\n")
        ),
        format!("pkg/bin/tool-link l 0777 {owner} 0 tool"),
        format!("pkg/etc d 0755 {implied} 0 -"),
        format!("pkg/etc/conf f 0600 {owner} 4 {}", h("k=v\n")),
        format!("pkg/sbin d 0755 {implied} 0 -"),
        format!("pkg/sbin/suid f 4755 {owner} 1 {}", h("s")),
    ]
}

#[test]
fn every_compression_is_recognised_and_extracted() {
    let raw = package();
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("pkg.tar", raw.clone()),
        ("pkg.tar.gz", gzip(&raw)),
        ("pkg.tar.bz2", bzip2(&raw)),
        ("pkg.tar.xz", xz(&raw)),
        ("pkg.tar.zst", zstd(&raw)),
        // The name does not matter, the content does.
        ("pkg.bin", gzip(&raw)),
    ];
    for (name, data) in variants {
        let t = T::new();
        t.put(name, &data);
        t.add(add(&format!("/{name}"), "/opt/")).unwrap();
        assert_eq!(
            t.subtree("opt"),
            expected_package("1000 1000", "0 0"),
            "{name}"
        );
        assert!(line(&t.root, "opt").unwrap().starts_with("d 0755 0 0 "));
        assert_eq!(
            meta(&t.root.join("opt/pkg/bin/tool")).mtime(),
            1_000_000_000
        );
    }
}

#[test]
fn chown_applies_to_the_entries_and_the_created_destination() {
    let t = T::new();
    t.put("pkg.tar.gz", &gzip(&package()));
    t.add(CopyAction {
        owner: Some(chown("7", Some("7"))),
        ..add("/pkg.tar.gz", "/owned/")
    })
    .unwrap();
    assert!(line(&t.root, "owned").unwrap().starts_with("d 0755 7 7 "));
    // Directories the archive only implies stay root's, as in BuildKit.
    assert_eq!(t.subtree("owned"), expected_package("7 7", "0 0"));
}

#[test]
fn a_destination_without_slash_is_the_directory_extracted_into() {
    let t = T::new();
    t.put("p.tar", &package());
    t.add(add("/p.tar", "/x")).unwrap();
    assert!(t.root.join("x/pkg/README").is_file());
    // Onto an existing directory, merged.
    t.add(add("/p.tar", "/etc")).unwrap();
    assert!(t.root.join("etc/pkg/README").is_file());
    assert!(t.root.join("etc/passwd").is_file());
}

#[test]
fn what_is_not_a_tar_is_copied_as_it_is() {
    let t = T::new();
    let text_gz = gzip(b"just text\n");
    t.put("notatar.gz", &text_gz);
    t.put("fake.tar", b"this is not a tar archive at all, just text that is long enough to fill some of a header block");
    t.put("empty.tar", b"");
    t.put("zeros.tar", &[0u8; 2048]);
    t.put("short.tar", &package()[..300]);
    for name in [
        "notatar.gz",
        "fake.tar",
        "empty.tar",
        "zeros.tar",
        "short.tar",
    ] {
        t.add(add(&format!("/{name}"), "/files/")).unwrap();
        assert_eq!(
            fs::read(t.root.join("files").join(name)).unwrap(),
            fs::read(t.ctx.join(name)).unwrap(),
            "{name}"
        );
    }
    // COPY never extracts.
    t.put("p.tar", &package());
    run_copies(&t.root, &t.ctx, vec![copy("/p.tar", "/copied/")]).unwrap();
    assert_eq!(fs::read(t.root.join("copied/p.tar")).unwrap(), package());
}

#[test]
fn archives_found_by_wildcard_or_through_a_symlink() {
    let t = T::new();
    t.put(
        "a.tar.gz",
        &gzip(&tar_of(&[e(
            "a.txt",
            tar::EntryType::Regular,
            "a",
            "",
            0o644,
        )])),
    );
    t.put(
        "b.tar.gz",
        &gzip(&tar_of(&[e(
            "b.txt",
            tar::EntryType::Regular,
            "b",
            "",
            0o644,
        )])),
    );
    symlink("a.tar.gz", t.ctx.join("link.tgz")).unwrap();
    t.add(add("/*.tar.gz", "/w/")).unwrap();
    assert_eq!(fs::read_to_string(t.root.join("w/a.txt")).unwrap(), "a");
    assert_eq!(fs::read_to_string(t.root.join("w/b.txt")).unwrap(), "b");
    t.add(add("/link.tgz", "/l/")).unwrap();
    assert_eq!(fs::read_to_string(t.root.join("l/a.txt")).unwrap(), "a");
}

#[test]
fn an_archive_replaces_files_and_merges_directories() {
    let t = T::new();
    write(&t.root.join("opt/pkg/README"), "old", 0o600);
    write(&t.root.join("opt/pkg/keep"), "kept", 0o644);
    t.put("p.tar", &package());
    t.add(add("/p.tar", "/opt/")).unwrap();
    assert_eq!(
        fs::read_to_string(t.root.join("opt/pkg/README")).unwrap(),
        "readme\n"
    );
    assert_eq!(
        fs::read_to_string(t.root.join("opt/pkg/keep")).unwrap(),
        "kept"
    );
}

/// Checks the hostile archive `data` either fails or leaves the rootfs's own
/// files and everything outside the extraction directory alone.
fn hostile(name: &str, data: Vec<u8>) -> (T, Result<(), kiln_worker::fileop::FileOpError>) {
    let t = T::new();
    let outside = t.outside.to_str().unwrap().to_string();
    symlink(&outside, t.root.join("host-link")).unwrap();
    t.put(name, &data);
    let before_passwd = fs::read_to_string(t.root.join("etc/passwd")).unwrap();
    let result = t.add(add(&format!("/{name}"), "/dest/"));
    assert_eq!(
        fs::read_to_string(t.root.join("etc/passwd")).unwrap(),
        before_passwd,
        "{name}"
    );
    let escaped: Vec<_> = fs::read_dir(&t.outside).unwrap().collect();
    assert!(escaped.is_empty(), "{name} wrote outside: {escaped:?}");
    // Everything created is below /dest (or the base's own paths).
    for path in tree(&t.root).keys() {
        let base = [
            "bin",
            "dev",
            "etc",
            "proc",
            "root",
            "sbin",
            "sys",
            "tmp",
            "usr",
            "host-link",
        ];
        assert!(
            path.starts_with("dest")
                || base
                    .iter()
                    .any(|b| path == b || path.starts_with(&format!("{b}/"))),
            "{name} created {path}"
        );
    }
    (t, result)
}

#[test]
fn hostile_archives_fail_or_stay_inside() {
    use tar::EntryType::*;
    // BuildKit extracts chrooted into the destination: `..` stops there.
    let (t, r) = hostile(
        "dotdot.tar",
        tar_of(&[e("../../escape", Regular, "x", "", 0o644)]),
    );
    r.unwrap();
    assert_eq!(fs::read_to_string(t.root.join("dest/escape")).unwrap(), "x");

    let (t, r) = hostile(
        "absolute.tar",
        tar_of(&[e("/etc/passwd", Regular, "pwned", "", 0o644)]),
    );
    r.unwrap();
    assert_eq!(
        fs::read_to_string(t.root.join("dest/etc/passwd")).unwrap(),
        "pwned"
    );

    let (t, r) = hostile(
        "symlink-root.tar",
        tar_of(&[
            e("root", Symlink, "", "/", 0o777),
            e("root/etc/passwd", Regular, "pwned", "", 0o644),
        ]),
    );
    // Through the link, `/` is the extraction directory.
    if r.is_ok() {
        assert_eq!(
            fs::read_to_string(t.root.join("dest/etc/passwd")).unwrap(),
            "pwned"
        );
    }

    // Links climbing out or pointing at a link to the host: whether they are
    // refused or resolved inside, `hostile` checks nothing escaped.
    let _ = hostile(
        "symlink-up.tar",
        tar_of(&[
            e("up", Symlink, "", "../../../../../../../..", 0o777),
            e("up/escape", Regular, "x", "", 0o644),
        ]),
    );
    let _ = hostile(
        "symlink-host.tar",
        tar_of(&[
            e("host", Symlink, "", "/host-link", 0o777),
            e("host/escape", Regular, "x", "", 0o644),
        ]),
    );

    let (_, r) = hostile(
        "hardlink-out.tar",
        tar_of(&[e("passwd", Link, "", "../etc/passwd", 0o644)]),
    );
    // The target is looked up as /etc/passwd inside the destination, where
    // there is none.
    assert!(
        r.is_err(),
        "a hard link to a missing target in the destination is refused"
    );
}

#[test]
fn a_truncated_compressed_archive_is_an_error() {
    let t = T::new();
    let gz = gzip(&package());
    t.put("cut.tar.gz", &gz[..gz.len() / 2]);
    let err = t.add(add("/cut.tar.gz", "/opt/")).unwrap_err();
    assert!(
        err.to_string().starts_with("extract /cut.tar.gz to /opt: "),
        "{err}"
    );
}

#[test]
fn the_archive_path_is_named_in_errors() {
    let t = T::new();
    t.put("p.tar", &package());
    write(&t.root.join("file"), "x", 0o644);
    let err = t.add(add("/p.tar", "/file/")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mkdir /file: Not a directory (os error 20)"
    );
}
