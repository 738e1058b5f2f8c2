//! mkdir (WORKDIR), mkfile (inline files) and rm, with BuildKit's rules.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

use common::*;
use kiln_graph::{FileAction, MkdirAction, MkfileAction};
use kiln_worker::fileop::{ApplyOptions, FileOpError, apply};

fn rootfs() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    busybox_base(root.path());
    root
}

fn go(root: &std::path::Path, actions: &[FileAction]) -> Result<(), FileOpError> {
    apply(root, actions, &[], &ApplyOptions::default())
}

fn mkdir_action(path: &str, mode: u32, parents: bool) -> MkdirAction {
    MkdirAction {
        path: path.to_string(),
        mode,
        make_parents: parents,
        owner: None,
        timestamp: None,
    }
}

#[test]
fn mkdir_with_parents_creates_what_is_missing_only() {
    let root = rootfs();
    let r = root.path();
    fs::set_permissions(r.join("usr"), fs::Permissions::from_mode(0o700)).unwrap();
    go(
        r,
        &[FileAction::Mkdir(MkdirAction {
            owner: Some(chown("nobody", None)),
            timestamp: Some(1_234_567_890),
            ..mkdir_action("/usr/local/share/x", 0o751, true)
        })],
    )
    .unwrap();
    for p in ["usr/local", "usr/local/share", "usr/local/share/x"] {
        assert!(
            line(r, p).unwrap().starts_with("d 0751 65534 65534 0 "),
            "{p}"
        );
    }
    // Each directory gets the time when it is made; making the next one
    // inside then updates it, as in BuildKit, so only the last keeps it.
    assert_eq!(meta(&r.join("usr/local/share/x")).mtime(), 1_234_567_890);
    assert_ne!(meta(&r.join("usr/local")).mtime(), 1_234_567_890);
    assert!(
        line(r, "usr").unwrap().starts_with("d 0700 0 0 "),
        "existing: untouched"
    );
    // An existing file on the way is an error naming it.
    let err = go(r, &[workdir("/etc/passwd", None)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mkdir /etc/passwd: Not a directory (os error 20)"
    );
    // Below it, resolving the path fails first, as continuity's RootPath does.
    let err = go(r, &[workdir("/etc/passwd/x", None)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "lstat /etc/passwd/x: Not a directory (os error 20)"
    );
}

#[test]
fn mkdir_without_parents() {
    let root = rootfs();
    let r = root.path();
    go(
        r,
        &[FileAction::Mkdir(mkdir_action("/single", 0o700, false))],
    )
    .unwrap();
    assert!(line(r, "single").unwrap().starts_with("d 0700 0 0 "));
    // Anything already there is success and left alone, even a file.
    go(
        r,
        &[FileAction::Mkdir(mkdir_action("/etc/passwd", 0o700, false))],
    )
    .unwrap();
    assert!(line(r, "etc/passwd").unwrap().starts_with("f 0644 "));
    let err = go(
        r,
        &[FileAction::Mkdir(mkdir_action("/no/parent", 0o755, false))],
    )
    .unwrap_err();
    assert!(err.to_string().starts_with("mkdir /no/parent: "), "{err}");
}

#[test]
fn workdir_owner_by_name_id_and_group() {
    let root = rootfs();
    let r = root.path();
    go(
        r,
        &[
            workdir("/by-name", Some("nobody")),
            workdir("/by-id", Some("1000")),
            workdir("/by-pair", Some("1000:nogroup")),
            workdir("/unknown", Some("ghost")),
        ],
    )
    .unwrap();
    assert!(
        line(r, "by-name")
            .unwrap()
            .starts_with("d 0755 65534 65534 ")
    );
    assert!(line(r, "by-id").unwrap().starts_with("d 0755 1000 1000 "));
    assert!(
        line(r, "by-pair")
            .unwrap()
            .starts_with("d 0755 1000 65534 ")
    );
    assert!(line(r, "unknown").unwrap().starts_with("d 0755 0 0 "));
}

#[test]
fn mkfile_creates_and_overwrites() {
    let root = rootfs();
    let r = root.path();
    go(
        r,
        &[
            mkfile("/new", 0o640, "hello\n"),
            mkfile("relative.txt", 0o644, "r"),
        ],
    )
    .unwrap();
    assert_eq!(
        line(r, "new").unwrap(),
        format!("f 0640 0 0 6 {}", sha256(b"hello\n"))
    );
    assert_eq!(fs::read_to_string(r.join("relative.txt")).unwrap(), "r");
    // An existing file keeps its mode and owner; its content is replaced.
    write(&r.join("old"), "a much longer old content", 0o600);
    std::os::unix::fs::chown(r.join("old"), Some(3), Some(4)).unwrap();
    go(r, &[mkfile("/old", 0o777, "short")]).unwrap();
    assert_eq!(
        line(r, "old").unwrap(),
        format!("f 0600 3 4 5 {}", sha256(b"short"))
    );
    // With an owner and a timestamp.
    go(
        r,
        &[FileAction::Mkfile(MkfileAction {
            path: "/owned".into(),
            mode: 0o4755,
            data: String::new(),
            owner: Some(chown("nobody", Some("0"))),
            timestamp: Some(42),
        })],
    )
    .unwrap();
    assert!(
        line(r, "owned").unwrap().starts_with("f 0755 65534 0 0 "),
        "setuid is dropped"
    );
    assert_eq!(meta(&r.join("owned")).mtime(), 42);
    // Through a dangling symlink: the file is made where it points.
    symlink("/tmp/target", r.join("dangling")).unwrap();
    go(r, &[mkfile("/dangling", 0o644, "t")]).unwrap();
    assert_eq!(fs::read_to_string(r.join("tmp/target")).unwrap(), "t");
    let err = go(r, &[mkfile("/missing/dir/f", 0o644, "")]).unwrap_err();
    assert!(
        err.to_string().starts_with("open /missing/dir/f: "),
        "{err}"
    );
}

#[test]
fn rm_paths_and_wildcards() {
    let root = rootfs();
    let r = root.path();
    write(&r.join("tmp/a.log"), "", 0o644);
    write(&r.join("tmp/b.log"), "", 0o644);
    write(&r.join("tmp/keep.txt"), "", 0o644);
    write(&r.join("tree/x/y/z"), "", 0o644);
    symlink("/etc", r.join("etc-link")).unwrap();
    go(
        r,
        &[
            rm("/tree", false, false),
            rm("/tmp/*.log", false, true),
            rm("/etc-link", false, false),
        ],
    )
    .unwrap();
    assert!(!r.join("tree").exists());
    assert!(!r.join("tmp/a.log").exists() && !r.join("tmp/b.log").exists());
    assert!(r.join("tmp/keep.txt").exists());
    assert!(fs::symlink_metadata(r.join("etc-link")).is_err());
    assert!(r.join("etc/passwd").exists(), "the link's target stays");
    let err = go(r, &[rm("/nope", false, false)]).unwrap_err();
    assert!(err.to_string().starts_with("stat /nope: "), "{err}");
    go(
        r,
        &[rm("/nope", true, false), rm("/nope/deeper", true, false)],
    )
    .unwrap();
    let err = go(r, &[rm("/", false, false)]).unwrap_err();
    assert_eq!(err.to_string(), "rmPath: invalid empty path");
}
