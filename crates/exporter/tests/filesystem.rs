//! `type=local` and `type=tar`: the final filesystem as a directory or one tar.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::*;
use kiln_exporter::{ExportError, write_local, write_tar};

fn rootfs(dir: &Path) {
    base_tree(dir);
    fs::create_dir_all(dir.join("app")).unwrap();
    fs::write(dir.join("app/hello.txt"), "hi\n").unwrap();
    fs::set_permissions(
        dir.join("app/hello.txt"),
        fs::Permissions::from_mode(0o4750),
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.join("app/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    set_mtimes(dir, 1_650_000_000);
}

#[test]
fn local_copies_modes_links_and_times() {
    let src = tempfile::tempdir().unwrap();
    rootfs(src.path());
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("export");
    write_local(src.path(), &dest, None).unwrap();

    assert_eq!(list(&dest), list(src.path()));
    let meta = |p: &str| fs::symlink_metadata(dest.join(p)).unwrap();
    assert_eq!(meta("tmp").mode() & 0o7777, 0o1777);
    assert_eq!(meta("app/hello.txt").mode() & 0o7777, 0o4750);
    assert_eq!(
        fs::read(dest.join("bin/busybox")).unwrap(),
        fs::read(src.path().join("bin/busybox")).unwrap()
    );
    assert_eq!(
        fs::read_link(dest.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        meta("bin/ls").ino(),
        meta("bin/busybox").ino(),
        "hard link kept"
    );
    assert!(meta("app/fifo").file_type().is_fifo());
    for p in ["tmp", "app", "app/hello.txt", "bin/sh", "bin/busybox"] {
        assert_eq!(meta(p).mtime(), 1_650_000_000, "{p}");
    }
    // No temporaries are left beside or inside the export.
    assert_eq!(
        list(out.path())
            .iter()
            .filter(|p| p.contains("kiln-tmp"))
            .count(),
        0
    );

    // With SOURCE_DATE_EPOCH every time is the epoch; an existing directory is
    // merged into, a file in the way of a directory replaced.
    fs::remove_dir_all(dest.join("app")).unwrap();
    fs::write(dest.join("app"), "in the way").unwrap();
    fs::write(dest.join("extra.txt"), "kept").unwrap();
    write_local(src.path(), &dest, Some(1_700_000_000)).unwrap();
    assert_eq!(
        fs::read_to_string(dest.join("app/hello.txt")).unwrap(),
        "hi\n"
    );
    assert_eq!(fs::read_to_string(dest.join("extra.txt")).unwrap(), "kept");
    for p in ["tmp", "app", "app/hello.txt", "bin/sh", "bin/busybox"] {
        assert_eq!(meta(p).mtime(), 1_700_000_000, "{p}");
    }
}

#[test]
fn tar_is_deterministic_and_readable() {
    let src = tempfile::tempdir().unwrap();
    rootfs(src.path());
    let out = tempfile::tempdir().unwrap();
    let a = out.path().join("a.tar");
    let b = out.path().join("b.tar");
    write_tar(src.path(), &a, None).unwrap();
    write_tar(src.path(), &b, None).unwrap();
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());

    let listing = run(Command::new("tar").arg("-tvf").arg(&a).env("TZ", "UTC"));
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(listing.contains("bin/ls link to bin/busybox"), "{listing}");
    assert!(listing.contains("bin/sh -> busybox"), "{listing}");
    assert!(
        listing.contains("2022-04-15 05:20 app/hello.txt"),
        "{listing}"
    );
    assert!(listing.contains("-rwsr-x--- 0/0"), "{listing}");

    let epoch = out.path().join("epoch.tar");
    write_tar(src.path(), &epoch, Some(1_600_000_000)).unwrap();
    let listing = run(Command::new("tar").arg("-tvf").arg(&epoch).env("TZ", "UTC"));
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(
        listing.contains("2020-09-13 12:26 app/hello.txt"),
        "{listing}"
    );
}

#[test]
fn bad_destinations_are_errors_that_leave_nothing() {
    let src = tempfile::tempdir().unwrap();
    rootfs(src.path());
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("file");
    fs::write(&file, "x").unwrap();

    let err = write_local(src.path(), &file, None).unwrap_err();
    assert!(matches!(err, ExportError::DestinationIsFile(_)), "{err}");
    let err = write_tar(src.path(), out.path(), None).unwrap_err();
    assert!(
        matches!(err, ExportError::DestinationIsDirectory(_)),
        "{err}"
    );
    let missing = out.path().join("missing/fs.tar");
    let err = write_tar(src.path(), &missing, None).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    let err = write_local(src.path(), &out.path().join("missing/dir"), None).unwrap_err();
    assert!(matches!(err, ExportError::MissingParent { .. }), "{err}");
    let err = write_tar(&out.path().join("nope"), &out.path().join("fs.tar"), None).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    assert_eq!(list(out.path()), ["file"]);
}
