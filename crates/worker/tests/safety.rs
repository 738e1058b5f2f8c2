//! Nothing is read or written outside the roots, whatever symlinks the
//! destination or the sources hold: paths resolve inside their root as if it
//! were `/`.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::*;
use kiln_graph::{CopyAction, FileAction, MkdirAction};
use kiln_worker::fileop::{ApplyOptions, SourceTree, apply};

/// A rootfs and a context side by side with a directory outside both that
/// must stay empty.
struct Sandbox {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    ctx: PathBuf,
    outside: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("rootfs");
        let ctx = tmp.path().join("context");
        let outside = tmp.path().join("outside");
        for d in [&root, &ctx, &outside] {
            fs::create_dir(d).unwrap();
        }
        busybox_base(&root);
        write(&ctx.join("a.txt"), "A", 0o644);
        Sandbox {
            _tmp: tmp,
            root,
            ctx,
            outside,
        }
    }

    fn run(&self, actions: &[FileAction]) -> Result<(), kiln_worker::fileop::FileOpError> {
        run(&self.root, &self.ctx, actions)
    }

    fn assert_outside_untouched(&self) {
        let left: Vec<_> = fs::read_dir(&self.outside).unwrap().collect();
        assert!(left.is_empty(), "something was written outside: {left:?}");
    }
}

fn c(action: CopyAction) -> FileAction {
    FileAction::Copy(action)
}

#[test]
fn destination_symlinks_resolve_inside_the_root() {
    let s = Sandbox::new();
    let outside = s.outside.to_str().unwrap().to_string();
    symlink(&outside, s.root.join("abs-host")).unwrap();
    symlink("../../../../../../..", s.root.join("up")).unwrap();
    symlink("/", s.root.join("slash")).unwrap();
    fs::create_dir(s.root.join("usr/lib")).unwrap();
    symlink("lib", s.root.join("usr/lib64")).unwrap();

    s.run(&[c(copy("/a.txt", "/abs-host/"))]).unwrap();
    assert_eq!(
        fs::read_to_string(s.root.join(&outside[1..]).join("a.txt")).unwrap(),
        "A"
    );
    s.run(&[c(copy("/a.txt", "/up/escaped.txt"))]).unwrap();
    assert!(s.root.join("escaped.txt").exists());
    s.run(&[c(copy("/a.txt", "/slash/via-slash"))]).unwrap();
    assert!(s.root.join("via-slash").exists());
    s.run(&[c(copy("/a.txt", "/usr/lib64/x/"))]).unwrap();
    assert!(s.root.join("usr/lib/x/a.txt").exists());
    s.assert_outside_untouched();
}

#[test]
fn existing_symlinks_inside_the_target_are_replaced_or_refused_never_followed() {
    let s = Sandbox::new();
    write(&s.ctx.join("d/inner"), "I", 0o644);
    fs::create_dir(s.root.join("app")).unwrap();
    // An existing symlink where a file goes is replaced...
    symlink(s.outside.join("inner"), s.root.join("app/inner")).unwrap();
    s.run(&[c(copy("/d", "/app/"))]).unwrap();
    assert_eq!(fs::read_to_string(s.root.join("app/inner")).unwrap(), "I");
    assert!(
        !fs::symlink_metadata(s.root.join("app/inner"))
            .unwrap()
            .is_symlink()
    );
    // ...and where a directory goes, it is an error.
    symlink(&s.outside, s.root.join("app/sub")).unwrap();
    write(&s.ctx.join("d/sub/f"), "F", 0o644);
    let err = s.run(&[c(copy("/d", "/app/"))]).unwrap_err();
    assert_eq!(err.to_string(), "cannot copy to non-directory: /app/sub");
    s.assert_outside_untouched();
}

#[test]
fn source_symlinks_resolve_inside_the_source() {
    let s = Sandbox::new();
    write(&s.outside.join("secret"), "host secret", 0o644);
    symlink(s.outside.join("secret"), s.ctx.join("abs")).unwrap();
    symlink("../outside/secret", s.ctx.join("rel")).unwrap();
    symlink("/etc/hostname", s.ctx.join("host-file")).unwrap();
    for src in ["/abs", "/rel", "/host-file"] {
        let err = s.run(&[c(copy(src, "/x"))]).unwrap_err();
        assert!(err.to_string().ends_with("not found"), "{src}: {err}");
    }
    // Read from the context's root, `../outside/secret` is `/outside/secret`.
    write(&s.ctx.join("outside/secret"), "context file", 0o644);
    s.run(&[c(copy("/rel", "/y"))]).unwrap();
    assert_eq!(
        fs::read_to_string(s.root.join("y")).unwrap(),
        "context file"
    );
    fs::remove_file(s.outside.join("secret")).unwrap();
    s.assert_outside_untouched();
}

#[test]
fn wildcards_do_not_walk_out_through_symlinks() {
    let s = Sandbox::new();
    write(&s.outside.join("leak.txt"), "no", 0o644);
    symlink(&s.outside, s.ctx.join("dir")).unwrap();
    // The link resolves to a directory the context does not have: BuildKit's
    // walk fails on it.
    let err = s.run(&[c(copy("/dir/*.txt", "/w/"))]).unwrap_err();
    assert!(err.to_string().starts_with("lstat /tmp/"), "{err}");
    assert!(!s.root.join("w").exists());
    fs::remove_file(s.outside.join("leak.txt")).unwrap();
    s.assert_outside_untouched();
}

#[test]
fn names_are_resolved_from_the_rootfs_not_the_host() {
    let s = Sandbox::new();
    // The rootfs's /etc is a symlink; /etc/passwd is read through it, inside.
    fs::rename(s.root.join("etc"), s.root.join("real-etc")).unwrap();
    symlink("/real-etc", s.root.join("etc")).unwrap();
    write(
        &s.root.join("real-etc/passwd"),
        "kiln-only-user:x:4242:4343::/:/bin/sh\nroot:x:7:7::/:/bin/sh\n",
        0o644,
    );
    let mut action = copy("/a.txt", "/owned");
    action.owner = Some(chown("kiln-only-user", None));
    s.run(&[c(action)]).unwrap();
    assert!(
        line(&s.root, "owned")
            .unwrap()
            .starts_with("f 0644 4242 4343 ")
    );
    // "root" is what this passwd says, not the host's 0.
    let mut action = copy("/a.txt", "/owned-root");
    action.owner = Some(chown("root", None));
    s.run(&[c(action)]).unwrap();
    assert!(
        line(&s.root, "owned-root")
            .unwrap()
            .starts_with("f 0644 7 7 ")
    );
}

#[test]
fn mkdir_mkfile_and_rm_stay_inside() {
    let s = Sandbox::new();
    symlink(&s.outside, s.root.join("out")).unwrap();
    write(&s.outside.join("keep"), "keep", 0o644);
    s.run(&[
        FileAction::Mkdir(MkdirAction {
            path: "/out/made".into(),
            mode: 0o755,
            make_parents: true,
            owner: None,
            timestamp: None,
        }),
        mkfile("/out/file", 0o600, "data"),
        rm("/out", false, false),
    ])
    .unwrap();
    let inside = s.root.join(s.outside.strip_prefix("/").unwrap());
    assert!(inside.join("made").is_dir());
    assert_eq!(fs::read_to_string(inside.join("file")).unwrap(), "data");
    // rm removed the link, not what it points to.
    assert!(!s.root.join("out").exists());
    assert_eq!(fs::read_to_string(s.outside.join("keep")).unwrap(), "keep");
    fs::remove_file(s.outside.join("keep")).unwrap();
    s.assert_outside_untouched();
}

#[test]
fn a_symlink_loop_is_an_error_not_a_hang() {
    let s = Sandbox::new();
    symlink("loop", s.root.join("loop")).unwrap();
    let err = s.run(&[c(copy("/a.txt", "/loop/x"))]).unwrap_err();
    assert_eq!(err.to_string(), "/loop/: too many links");
}

#[test]
fn an_unreadable_source_root_is_an_error() {
    let s = Sandbox::new();
    let missing = Path::new("/nonexistent/kiln/context");
    let tree = SourceTree {
        root: missing,
        exclude: &[],
        owner: None,
    };
    let err = apply(
        &s.root,
        &[c(copy("/a", "/a"))],
        &[None, Some(tree)],
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("/nonexistent/kiln/context: "),
        "{err}"
    );
}
