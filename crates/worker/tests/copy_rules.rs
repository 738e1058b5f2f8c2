//! The copy rules one by one, each as BuildKit applies them.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use common::*;
use kiln_graph::{Chown, CopyAction, FileAction};
use kiln_worker::fileop::{ApplyOptions, FileOpError, SourceTree, apply};
use tempfile::TempDir;

struct T {
    ctx: TempDir,
    root: TempDir,
}

impl T {
    fn new() -> T {
        let t = T {
            ctx: tempfile::tempdir().unwrap(),
            root: tempfile::tempdir().unwrap(),
        };
        busybox_base(t.root.path());
        t
    }

    fn c(&self, rel: &str) -> std::path::PathBuf {
        self.ctx.path().join(rel)
    }

    fn r(&self, rel: &str) -> std::path::PathBuf {
        self.root.path().join(rel)
    }

    fn file(&self, rel: &str, content: &str) {
        write(&self.c(rel), content, 0o644);
    }

    fn run(&self, copies: Vec<CopyAction>) -> Result<(), FileOpError> {
        run_copies(self.root.path(), self.ctx.path(), copies)
    }

    fn ok(&self, copies: Vec<CopyAction>) {
        self.run(copies).unwrap();
    }

    fn line(&self, rel: &str) -> Option<String> {
        line(self.root.path(), rel)
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.r(rel)).unwrap()
    }

    /// The tree below `rel` in the rootfs, paths relative to it.
    fn subtree(&self, rel: &str) -> Vec<String> {
        tree(&self.r(rel))
            .into_iter()
            .map(|(p, l)| format!("{p} {l}"))
            .collect()
    }
}

fn sample_dir(t: &T) {
    t.file("src/a.txt", "a\n");
    t.file("src/sub/b.txt", "b\n");
    mkdir(&t.c("src/empty"), 0o755);
}

#[test]
fn destination_trailing_slash_means_into() {
    let t = T::new();
    t.file("a.txt", "A");
    t.ok(vec![copy("/a.txt", "/x")]);
    t.ok(vec![copy("/a.txt", "/y/")]);
    t.ok(vec![copy("/a.txt", "/z/.")]);
    assert!(t.line("x").unwrap().starts_with("f 0644 0 0 1 "));
    assert!(t.line("y").unwrap().starts_with("d 0755 0 0 0"));
    assert_eq!(t.read("y/a.txt"), "A");
    assert!(t.line("z").unwrap().starts_with("d 0755"));
    assert_eq!(t.read("z/a.txt"), "A");
    // An existing directory is copied into, slash or not.
    t.ok(vec![copy("/a.txt", "/tmp")]);
    assert_eq!(t.read("tmp/a.txt"), "A");
    assert!(t.line("tmp").unwrap().starts_with("d 1777"));
}

#[test]
fn a_directory_source_copies_its_contents_with_or_without_slash_or_dot() {
    let mut trees = Vec::new();
    for src in ["/src", "/src/", "/src/."] {
        let t = T::new();
        sample_dir(&t);
        t.ok(vec![copy(src, "/app")]);
        trees.push(t.subtree("app"));
    }
    assert_eq!(trees[0], trees[1]);
    assert_eq!(trees[0], trees[2]);
    let paths: Vec<&str> = trees[0]
        .iter()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(paths, ["a.txt", "empty", "sub", "sub/b.txt"]);
}

#[test]
fn a_directory_without_contents_only_goes_into_an_existing_destination() {
    let t = T::new();
    sample_dir(&t);
    let mut action = copy("/src", "/etc");
    action.contents_only = false;
    t.ok(vec![action.clone()]);
    assert_eq!(t.read("etc/src/sub/b.txt"), "b\n");
    // Onto a missing path, the directory itself becomes the destination.
    action.dest = "/fresh".into();
    t.ok(vec![action]);
    assert_eq!(t.read("fresh/a.txt"), "a\n");
}

#[test]
fn wildcards_star_question_and_class() {
    let t = T::new();
    for name in [
        "file1.log",
        "file2.log",
        "file3.log",
        "file10.log",
        "a.txt",
        "b.txt",
    ] {
        t.file(name, name);
    }
    t.file("d/x.txt", "nested, not matched by *.txt");
    t.ok(vec![copy("/*.txt", "/star/")]);
    t.ok(vec![copy("/file?.log", "/question/")]);
    t.ok(vec![copy("/file[12].log", "/class/")]);
    t.ok(vec![copy("/file[^1].log", "/negated/")]);
    let names = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(t.r(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("star"), ["a.txt", "b.txt"]);
    assert_eq!(names("question"), ["file1.log", "file2.log", "file3.log"]);
    assert_eq!(names("class"), ["file1.log", "file2.log"]);
    assert_eq!(names("negated"), ["file2.log", "file3.log"]);
}

#[test]
fn wildcards_in_directories_and_matching_directories() {
    let t = T::new();
    t.file("src/one/x.conf", "1");
    t.file("src/two/x.conf", "2");
    t.file("src/two/deeper/x.conf", "3");
    t.file("lib-a/a.txt", "a");
    t.file("lib-b/b.txt", "b");
    // A matched directory copies its contents.
    t.ok(vec![copy("/lib-*", "/libs/")]);
    assert_eq!(t.read("libs/a.txt"), "a");
    assert_eq!(t.read("libs/b.txt"), "b");
    // A file matched by a pattern below a directory: named by its own name.
    t.ok(vec![copy("/src/*/x.conf", "/confs/")]);
    assert_eq!(t.read("confs/x.conf"), "2", "the later match overwrites");
    assert!(!t.r("confs/deeper").exists());
}

#[test]
fn a_wildcard_matching_nothing() {
    let t = T::new();
    t.file("a.txt", "A");
    // Allowed (what the Dockerfile frontend asks for): nothing happens.
    t.ok(vec![copy("/*.nope", "/none/")]);
    assert!(!t.r("none").exists());
    // Not allowed: an error naming the pattern.
    let mut action = copy("/*.nope", "/none/");
    action.allow_empty_wildcard = false;
    let err = t.run(vec![action]).unwrap_err();
    assert_eq!(err.to_string(), "/*.nope not found");
    // Below a missing directory: BuildKit's walk fails.
    let err = t.run(vec![copy("/missing/*.txt", "/x/")]).unwrap_err();
    assert!(err.to_string().starts_with("lstat /missing:"), "{err}");
}

#[test]
fn a_missing_source_is_named_as_buildkit_does() {
    let t = T::new();
    let err = t.run(vec![copy("/missing.txt", "/x")]).unwrap_err();
    assert!(matches!(err, FileOpError::NotFound { .. }));
    assert_eq!(err.to_string(), "\"/missing.txt\": not found");
    let err = t.run(vec![copy("/missing/", "/x")]).unwrap_err();
    assert_eq!(err.to_string(), "\"/missing\": not found");
    assert!(!t.r("x").exists());
}

#[test]
fn multiple_sources_into_one_directory() {
    let t = T::new();
    t.file("a.txt", "A");
    t.file("b.txt", "B");
    sample_dir(&t);
    t.ok(vec![
        copy("/a.txt", "/dest/"),
        copy("/b.txt", "/dest/"),
        copy("/src", "/dest/"),
    ]);
    let names: Vec<String> = t
        .subtree("dest")
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a.txt", "b.txt", "empty", "sub", "sub/b.txt"]);
    // The directory's a.txt came last and replaced the first one.
    assert_eq!(t.read("dest/a.txt"), "a\n");
}

#[test]
fn a_relative_destination_is_taken_from_the_root() {
    let t = T::new();
    t.file("a.txt", "A");
    t.ok(vec![copy("/a.txt", "rel/")]);
    assert_eq!(t.read("rel/a.txt"), "A");
}

#[test]
fn existing_files_are_overwritten_content_mode_and_owner() {
    let t = T::new();
    write(&t.c("f"), "new", 0o600);
    write(&t.r("f"), "old and longer", 0o755);
    std::os::unix::fs::chown(t.r("f"), Some(12), Some(34)).unwrap();
    t.ok(vec![copy("/f", "/f")]);
    assert_eq!(t.read("f"), "new");
    assert!(t.line("f").unwrap().starts_with("f 0600 0 0 3 "));
    // An existing symlink at the destination is followed (inside the root).
    symlink("/etc/passwd", t.r("link-to-passwd")).unwrap();
    t.ok(vec![copy("/f", "/link-to-passwd")]);
    assert_eq!(t.read("etc/passwd"), "new");
    assert_eq!(
        fs::read_link(t.r("link-to-passwd")).unwrap(),
        Path::new("/etc/passwd")
    );
}

#[test]
fn types_are_not_replaced_unless_asked() {
    let t = T::new();
    t.file("a.txt", "A");
    sample_dir(&t);
    mkdir(&t.r("dir/a.txt"), 0o755);
    let err = t.run(vec![copy("/a.txt", "/dir/")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot replace to directory /dir/a.txt with file"
    );
    write(&t.r("file"), "x", 0o644);
    let err = t.run(vec![copy("/src", "/file")]).unwrap_err();
    assert_eq!(err.to_string(), "cannot copy to non-directory: /file");
    let mut replace = copy("/src", "/file");
    replace.replace_existing = true;
    t.ok(vec![replace]);
    assert_eq!(t.read("file/a.txt"), "a\n");
    let mut replace = copy("/a.txt", "/dir/");
    replace.replace_existing = true;
    t.ok(vec![replace]);
    assert_eq!(t.read("dir/a.txt"), "A");
}

#[test]
fn copying_into_an_existing_directory_merges() {
    let t = T::new();
    sample_dir(&t);
    mkdir(&t.r("app/sub"), 0o700);
    fs::set_permissions(t.r("app"), fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::chown(t.r("app"), Some(5), Some(6)).unwrap();
    std::os::unix::fs::chown(t.r("app/sub"), Some(7), Some(8)).unwrap();
    write(&t.r("app/keep"), "kept", 0o644);
    t.ok(vec![copy("/src", "/app")]);
    // The top-level directory keeps its mode and owner.
    assert!(t.line("app").unwrap().starts_with("d 0750 5 6 "));
    // Directories inside take the source's.
    assert!(t.line("app/sub").unwrap().starts_with("d 0755 0 0 "));
    assert_eq!(t.read("app/keep"), "kept");
    assert_eq!(t.read("app/sub/b.txt"), "b\n");
}

#[test]
fn symlinks_inside_copied_directories_are_copied_as_symlinks() {
    let t = T::new();
    t.file("d/a.txt", "A");
    symlink("a.txt", t.c("d/rel")).unwrap();
    symlink("/etc/passwd", t.c("d/abs")).unwrap();
    symlink("missing", t.c("d/dangling")).unwrap();
    symlink("../../../../outside", t.c("d/up")).unwrap();
    t.ok(vec![copy("/d", "/c/")]);
    assert_eq!(t.line("c/rel").unwrap(), "l 0777 0 0 0 a.txt");
    assert_eq!(t.line("c/abs").unwrap(), "l 0777 0 0 0 /etc/passwd");
    assert_eq!(t.line("c/dangling").unwrap(), "l 0777 0 0 0 missing");
    assert_eq!(t.line("c/up").unwrap(), "l 0777 0 0 0 ../../../../outside");
}

#[test]
fn a_symlink_named_as_source_is_followed() {
    let t = T::new();
    t.file("real.txt", "R");
    sample_dir(&t);
    symlink("real.txt", t.c("link")).unwrap();
    symlink("/src", t.c("dirlink")).unwrap();
    symlink("nowhere", t.c("dangling")).unwrap();
    t.ok(vec![copy("/link", "/x/")]);
    assert!(
        t.line("x/link").unwrap().starts_with("f 0644"),
        "named by the link"
    );
    assert_eq!(t.read("x/link"), "R");
    t.ok(vec![copy("/dirlink", "/y")]);
    assert_eq!(t.read("y/sub/b.txt"), "b\n");
    let err = t.run(vec![copy("/dangling", "/z")]).unwrap_err();
    assert_eq!(err.to_string(), "\"/dangling\": not found");
    // Without following (a heredoc or COPY --from with no follow): the link.
    let mut action = copy("/link", "/w");
    action.follow_symlinks = false;
    t.ok(vec![action]);
    assert_eq!(t.line("w").unwrap(), "l 0777 0 0 0 real.txt");
}

#[test]
fn hardlinks_are_preserved_within_one_copy() {
    let t = T::new();
    t.file("h/a", "same inode");
    fs::hard_link(t.c("h/a"), t.c("h/b")).unwrap();
    fs::hard_link(t.c("h/a"), t.c("h/sub-link")).unwrap();
    t.ok(vec![copy("/h", "/one/")]);
    let a = meta(&t.r("one/a"));
    assert_eq!(a.nlink(), 3);
    assert_eq!(a.ino(), meta(&t.r("one/b")).ino());
    assert_eq!(a.ino(), meta(&t.r("one/sub-link")).ino());
    // Separate copy actions make separate files.
    t.ok(vec![copy("/h/a", "/two/"), copy("/h/b", "/two/")]);
    assert_ne!(meta(&t.r("two/a")).ino(), meta(&t.r("two/b")).ino());
}

#[test]
fn special_modes_and_empty_directories() {
    let t = T::new();
    write(&t.c("m/suid"), "s", 0o4755);
    write(&t.c("m/sgid"), "g", 0o2755);
    mkdir(&t.c("m/sticky"), 0o1777);
    mkdir(&t.c("m/sgid-dir"), 0o2775);
    mkdir(&t.c("m/private"), 0o700);
    mkdir(&t.c("m/empty/nested"), 0o755);
    t.ok(vec![copy("/m", "/m/")]);
    assert!(t.line("m/suid").unwrap().starts_with("f 4755 "));
    assert!(t.line("m/sgid").unwrap().starts_with("f 2755 "));
    assert!(t.line("m/sticky").unwrap().starts_with("d 1777 "));
    assert!(t.line("m/sgid-dir").unwrap().starts_with("d 2775 "));
    assert!(t.line("m/private").unwrap().starts_with("d 0700 "));
    assert!(t.line("m/empty/nested").unwrap().starts_with("d 0755 "));
}

#[test]
fn unicode_and_long_names() {
    let t = T::new();
    let long = "n".repeat(255);
    t.file(&format!("u/日本語 ünïcödé/{long}"), "long");
    let deep: String = (0..40)
        .map(|i| format!("level-{i:02}-{}/", "d".repeat(40)))
        .collect();
    t.file(&format!("u/{deep}leaf.txt"), "deep");
    t.ok(vec![copy("/u", "/u/")]);
    assert_eq!(t.read(&format!("u/日本語 ünïcödé/{long}")), "long");
    assert_eq!(t.read(&format!("u/{deep}leaf.txt")), "deep");
    assert_eq!(tree(&t.c("u")).len(), tree(&t.r("u")).len());
}

#[test]
fn chown_by_id_name_group_and_unknown_names() {
    let t = T::new();
    write(
        &t.r("etc/passwd"),
        &format!("{PASSWD}app:x:1000:1001::/home/app:/bin/sh\n"),
        0o644,
    );
    write(
        &t.r("etc/group"),
        &format!("{GROUP}staff:x:50:app\n"),
        0o644,
    );
    sample_dir(&t);
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("1234", None, "1234 1234"),
        ("1234", Some("5678"), "1234 5678"),
        ("app", None, "1000 1001"),
        ("app", Some("staff"), "1000 50"),
        ("app", Some("77"), "1000 77"),
        ("1234", Some("staff"), "1234 50"),
        ("ghost", None, "0 0"),
        ("ghost", Some("staff"), "0 50"),
        ("app", Some("ghosts"), "1000 1001"),
        ("nobody", Some("nogroup"), "65534 65534"),
    ];
    for (i, (user, group, want)) in cases.iter().enumerate() {
        let dest = format!("/o{i}/");
        t.ok(vec![CopyAction {
            owner: Some(chown(user, *group)),
            ..copy("/src", &dest)
        }]);
        for path in ["", "/a.txt", "/sub", "/sub/b.txt"] {
            let line = t.line(&format!("o{i}{path}")).unwrap();
            let owner: Vec<&str> = line.split(' ').skip(2).take(2).collect();
            assert_eq!(
                owner.join(" "),
                *want,
                "--chown={user}:{group:?} on o{i}{path}"
            );
        }
    }
}

#[test]
fn names_resolve_to_zero_without_passwd() {
    let t = T::new();
    fs::remove_file(t.r("etc/passwd")).unwrap();
    fs::remove_file(t.r("etc/group")).unwrap();
    t.file("a.txt", "A");
    t.ok(vec![CopyAction {
        owner: Some(chown("app", Some("staff"))),
        ..copy("/a.txt", "/a")
    }]);
    assert!(t.line("a").unwrap().starts_with("f 0644 0 0 "));
}

#[test]
fn names_are_an_error_on_an_empty_base_but_ids_are_not() {
    let ctx = tempfile::tempdir().unwrap();
    write(&ctx.path().join("a.txt"), "A", 0o644);
    let empty_base = ApplyOptions {
        empty_base: true,
        ..ApplyOptions::default()
    };
    let run = |owner: Chown| {
        let root = tempfile::tempdir().unwrap();
        let action = CopyAction {
            owner: Some(owner),
            ..copy("/a.txt", "/a")
        };
        apply(
            root.path(),
            &[FileAction::Copy(action)],
            &[None, Some(context(ctx.path()))],
            &empty_base,
        )
        .map(|()| line(root.path(), "a"))
    };
    for (user, group) in [("bin", None), ("1", Some("daemon"))] {
        let err = run(chown(user, group)).unwrap_err();
        assert!(matches!(err, FileOpError::NameWithoutBase { .. }), "{err}");
    }
    // Ids need no lookup.
    let line = run(chown("0", Some("0"))).unwrap().unwrap();
    assert!(line.starts_with("f 0644 0 0 "), "{line}");
}

#[test]
fn the_all_ones_id_leaves_the_owner_unchanged() {
    // `--chown=-1:9` (BuildKit reads -1 as the id 4294967295, which chown skips).
    let t = T::new();
    t.file("a.txt", "A");
    sample_dir(&t);
    let owner = Chown {
        user: kiln_graph::Principal::Id(u32::MAX),
        group: Some(kiln_graph::Principal::Id(9)),
    };
    t.ok(vec![
        CopyAction {
            owner: Some(owner.clone()),
            ..copy("/a.txt", "/a")
        },
        CopyAction {
            owner: Some(owner),
            ..copy("/src", "/new/dir/")
        },
    ]);
    for path in ["a", "new", "new/dir", "new/dir/a.txt", "new/dir/sub/b.txt"] {
        let line = t.line(path).unwrap();
        let owner: Vec<&str> = line.split(' ').skip(2).take(2).collect();
        assert_eq!(owner.join(" "), "0 9", "{path}");
    }
}

#[test]
fn chmod_octal_and_symbolic() {
    let t = T::new();
    write(&t.c("s/run.sh"), "#!/bin/sh", 0o755);
    write(&t.c("s/data"), "d", 0o640);
    mkdir(&t.c("s/dir"), 0o750);
    t.ok(vec![CopyAction {
        mode: octal(0o4710),
        ..copy("/s", "/oct/new/")
    }]);
    // Created parents get the octal mode's permission bits.
    assert!(t.line("oct").unwrap().starts_with("d 0710 "));
    assert!(t.line("oct/new").unwrap().starts_with("d 0710 "));
    assert!(t.line("oct/new/run.sh").unwrap().starts_with("f 4710 "));
    assert!(t.line("oct/new/dir").unwrap().starts_with("d 4710 "));
    t.ok(vec![CopyAction {
        mode: symbolic("go-rwx,u+X"),
        ..copy("/s", "/sym/")
    }]);
    assert!(
        t.line("sym").unwrap().starts_with("d 0755 "),
        "parents: 0755"
    );
    assert!(t.line("sym/run.sh").unwrap().starts_with("f 0700 "));
    assert!(t.line("sym/data").unwrap().starts_with("f 0600 "));
    assert!(t.line("sym/dir").unwrap().starts_with("d 0700 "));
    let err = t
        .run(vec![CopyAction {
            mode: symbolic("u+q"),
            ..copy("/s", "/bad/")
        }])
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid chmod parameter: 'u+q'");
}

#[test]
fn parents_keep_the_path_of_what_matches() {
    let t = T::new();
    t.file("src/x.conf", "1");
    t.file("src/other/x.conf", "2");
    t.file("src/sub/b.txt", "3");
    t.file("src/sub/deep/c.conf", "4");
    t.file("top.conf", "5");
    // COPY --parents src/**/x.conf /out/
    t.ok(vec![CopyAction {
        include_patterns: vec!["src/**/x.conf".into()],
        ..copy("/", "/out/")
    }]);
    let paths: Vec<String> = t
        .subtree("out")
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        ["src", "src/other", "src/other/x.conf", "src/x.conf"]
    );
    // COPY --parents ./src/./sub /out2/ : the pivot keeps paths below it.
    t.ok(vec![CopyAction {
        include_patterns: vec!["sub".into()],
        ..copy("/src", "/out2/")
    }]);
    let paths: Vec<String> = t
        .subtree("out2")
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(paths, ["sub", "sub/b.txt", "sub/deep", "sub/deep/c.conf"]);
}

#[test]
fn excludes_with_exceptions() {
    let t = T::new();
    t.file("src/a.log", "1");
    t.file("src/keep.log", "2");
    t.file("src/logs/x.log", "3");
    t.file("src/logs/readme", "4");
    t.file("src/main.rs", "5");
    t.ok(vec![CopyAction {
        exclude_patterns: vec![
            "**/*.log".into(),
            "!keep.log".into(),
            "logs".into(),
            "!logs/readme".into(),
        ],
        ..copy("/src", "/out/")
    }]);
    let paths: Vec<String> = t
        .subtree("out")
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(paths, ["keep.log", "logs", "logs/readme", "main.rs"]);
}

#[test]
fn times_are_copied_or_set_by_the_timestamp() {
    let t = T::new();
    t.file("d/f", "x");
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    fs::File::options()
        .write(true)
        .open(t.c("d/f"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    fs::File::open(t.c("d")).unwrap().set_modified(old).unwrap();
    t.ok(vec![copy("/d", "/copied/")]);
    assert_eq!(meta(&t.r("copied/f")).mtime(), 1_000_000_000);
    // The top-level destination gets the source directory's times.
    assert_eq!(meta(&t.r("copied")).mtime(), 1_000_000_000);
    t.ok(vec![CopyAction {
        timestamp: Some(1_700_000_000),
        ..copy("/d", "/stamped/a/b/")
    }]);
    for path in ["stamped", "stamped/a", "stamped/a/b", "stamped/a/b/f"] {
        assert_eq!(meta(&t.r(path)).mtime(), 1_700_000_000, "{path}");
    }
}

#[test]
fn xattrs_are_copied() {
    let t = T::new();
    t.file("x/f", "x");
    mkdir(&t.c("x/d"), 0o755);
    let set = |p: &Path, k: &str, v: &[u8]| {
        rustix::fs::setxattr(p, k, v, rustix::fs::XattrFlags::empty())
    };
    if set(&t.c("x/f"), "user.kiln", b"file\0value").is_err() {
        eprintln!("skipped: the file system has no user xattrs");
        return;
    }
    set(&t.c("x/d"), "user.kiln", b"dir").unwrap();
    t.ok(vec![copy("/x", "/x/")]);
    let get = |p: &Path| {
        let mut buf = vec![0u8; 64];
        let n = rustix::fs::getxattr(p, "user.kiln", &mut buf[..]).unwrap();
        buf.truncate(n);
        buf
    };
    assert_eq!(get(&t.r("x/f")), b"file\0value");
    assert_eq!(get(&t.r("x/d")), b"dir");
}

#[test]
fn devices_fifos_and_sockets() {
    let t = T::new();
    mkdir(&t.c("dev"), 0o755);
    let mk = |name: &str, ft, mode, dev| {
        let path = t.c(name);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path.as_path(),
            ft,
            rustix::fs::Mode::empty(),
            dev,
        )?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|_| rustix::io::Errno::PERM)
    };
    mk(
        "dev/null",
        rustix::fs::FileType::CharacterDevice,
        0o666,
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    mk(
        "dev/loop",
        rustix::fs::FileType::BlockDevice,
        0o660,
        rustix::fs::makedev(7, 0),
    )
    .unwrap();
    mk("dev/fifo", rustix::fs::FileType::Fifo, 0o644, 0).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(t.c("dev/sock")).unwrap();
    t.ok(vec![copy("/dev", "/devs/")]);
    assert_eq!(t.line("devs/null").unwrap(), "c 0666 0 0 0 1,3");
    assert_eq!(t.line("devs/loop").unwrap(), "b 0660 0 0 0 7,0");
    assert_eq!(t.line("devs/fifo").unwrap(), "p 0644 0 0 0 -");
    // A socket cannot be copied: an empty file takes its place, as in BuildKit.
    assert!(t.line("devs/sock").unwrap().starts_with("f "));
}

#[test]
fn ignored_paths_are_invisible_even_to_wildcards() {
    let t = T::new();
    t.file("a.txt", "A");
    t.file("secret.txt", "S");
    t.file("node_modules/dep/index.js", "dep");
    t.file("node_modules/keep/index.js", "keep");
    t.file("logs/x.log", "log");
    let exclude = vec![
        "secret.txt".to_string(),
        "node_modules".to_string(),
        "!node_modules/keep".to_string(),
        "logs".to_string(),
    ];
    let tree = SourceTree {
        root: t.ctx.path(),
        exclude: &exclude,
        owner: Some((0, 0)),
    };
    let go = |action: CopyAction| {
        apply(
            t.root.path(),
            &[FileAction::Copy(action)],
            &[None, Some(tree)],
            &ApplyOptions::default(),
        )
    };
    go(copy("/*.txt", "/w/")).unwrap();
    assert!(t.r("w/a.txt").exists());
    assert!(!t.r("w/secret.txt").exists());
    go(copy("/", "/all/")).unwrap();
    let paths: Vec<String> = t
        .subtree("all")
        .iter()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "a.txt",
            "node_modules",
            "node_modules/keep",
            "node_modules/keep/index.js"
        ]
    );
    let err = go(copy("/secret.txt", "/s")).unwrap_err();
    assert_eq!(err.to_string(), "\"/secret.txt\": not found");
    let err = go(copy("/logs", "/l")).unwrap_err();
    assert_eq!(err.to_string(), "\"/logs\": not found");
    go(copy("/node_modules", "/nm/")).unwrap();
    assert!(t.r("nm/keep/index.js").exists());
    assert!(!t.r("nm/dep").exists());
}

#[test]
fn other_stages_keep_their_ownership_and_the_context_reads_as_root() {
    let t = T::new();
    t.file("owned", "o");
    std::os::unix::fs::chown(t.c("owned"), Some(4321), Some(8765)).unwrap();
    t.ok(vec![copy("/owned", "/from-context")]);
    assert!(t.line("from-context").unwrap().starts_with("f 0644 0 0 "));
    let stage = SourceTree {
        root: t.ctx.path(),
        exclude: &[],
        owner: None,
    };
    apply(
        t.root.path(),
        &[FileAction::Copy(copy("/owned", "/from-stage"))],
        &[None, Some(stage)],
        &ApplyOptions::default(),
    )
    .unwrap();
    assert!(
        t.line("from-stage")
            .unwrap()
            .starts_with("f 0644 4321 8765 ")
    );
}

#[test]
fn a_copy_from_the_base_itself_reads_the_destination() {
    let t = T::new();
    let mut action = copy("/etc/passwd", "/copy-of-passwd");
    action.source = 0;
    apply(
        t.root.path(),
        &[FileAction::Copy(action)],
        &[None],
        &ApplyOptions::default(),
    )
    .unwrap();
    assert_eq!(t.read("copy-of-passwd"), PASSWD);
    let mut action = copy("/etc/passwd", "/x");
    action.source = 3;
    let err = apply(
        t.root.path(),
        &[FileAction::Copy(action)],
        &[None],
        &ApplyOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, FileOpError::NoSource { index: 3 }));
}

#[test]
fn the_result_does_not_depend_on_the_number_of_threads() {
    let ctx = tempfile::tempdir().unwrap();
    for d in 0..20 {
        for f in 0..30 {
            write(
                &ctx.path().join(format!("d{d}/f{f}")),
                &format!("{d}-{f}"),
                0o600 + (f % 2) * 0o44,
            );
        }
        fs::hard_link(
            ctx.path().join(format!("d{d}/f0")),
            ctx.path().join(format!("d{d}/link")),
        )
        .unwrap();
    }
    let mut trees = Vec::new();
    for threads in [Some(1), Some(4), None] {
        let root = tempfile::tempdir().unwrap();
        apply(
            root.path(),
            &[FileAction::Copy(copy("/", "/app/"))],
            &[None, Some(context(ctx.path()))],
            &ApplyOptions {
                threads,
                ..ApplyOptions::default()
            },
        )
        .unwrap();
        let t: Vec<String> = tree(root.path())
            .into_iter()
            .map(|(p, l)| format!("{p} {l}"))
            .collect();
        trees.push(t);
    }
    // app, and per directory: itself, 30 files and a link.
    assert_eq!(trees[0].len(), 1 + 20 * 32);
    assert_eq!(trees[0], trees[1]);
    assert_eq!(trees[0], trees[2]);
}

#[test]
fn create_dest_path_off_needs_the_parent() {
    let t = T::new();
    t.file("a.txt", "A");
    let mut action = copy("/a.txt", "/no/such/dir/a");
    action.create_dest_path = false;
    let err = t.run(vec![action]).unwrap_err();
    assert!(err.to_string().contains("/no/such/dir/a"), "{err}");
    let mut action = copy("/a.txt", "/etc/a");
    action.create_dest_path = false;
    t.ok(vec![action]);
    assert_eq!(t.read("etc/a"), "A");
}
