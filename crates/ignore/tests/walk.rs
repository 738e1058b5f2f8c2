//! Walks of real directory trees (with symlinks and empty directories) under
//! various `.dockerignore` contents and include patterns, checked entry by
//! entry against the output BuildKit's fsutil gives for the same tree.

#![cfg(unix)]

use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;

use kiln_ignore::{Filter, WalkError, WalkOptions, Walker, read_ignore_file, walk};

/// Builds a tree from lines `path dir`, `path file [content]`, `path symlink target`.
fn tree(spec: &[&str]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for line in spec {
        let mut parts = line.splitn(3, ' ');
        let path = tmp.path().join(parts.next().unwrap());
        match (parts.next().unwrap(), parts.next()) {
            ("dir", _) => std::fs::create_dir(&path).unwrap(),
            ("file", content) => std::fs::write(&path, content.unwrap_or("")).unwrap(),
            ("symlink", Some(target)) => symlink(target, &path).unwrap(),
            other => panic!("bad spec {other:?}"),
        }
    }
    tmp
}

/// One line per entry, like fsutil's test helper: `dir a`, `file a/b`,
/// `symlink:target a/l`.
fn listing(root: &Path, options: &WalkOptions) -> Vec<String> {
    walk(root, options)
        .unwrap()
        .into_iter()
        .map(|entry| {
            let path = entry.path.to_str().unwrap().to_owned();
            let kind = entry.metadata.file_type();
            if kind.is_dir() {
                format!("dir {path}")
            } else if kind.is_symlink() {
                let target = std::fs::read_link(root.join(&entry.path)).unwrap();
                format!("symlink:{} {path}", target.display())
            } else {
                format!("file {path}")
            }
        })
        .collect()
}

fn excluding(dockerignore: &str) -> WalkOptions {
    WalkOptions {
        exclude_patterns: read_ignore_file(dockerignore).unwrap(),
        ..WalkOptions::default()
    }
}

fn including(patterns: &[&str]) -> WalkOptions {
    WalkOptions {
        include_patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
        ..WalkOptions::default()
    }
}

/// A context with the usual suspects: nested and empty directories,
/// dot-files, symlinks to files, to directories, dangling and absolute.
fn sample_context() -> tempfile::TempDir {
    tree(&[
        ".dockerignore file",
        ".git dir",
        ".git/HEAD file ref",
        ".git/objects dir",
        "Dockerfile file FROM scratch",
        "README.md file readme",
        "build dir",
        "build/out.bin file",
        "build/keep dir",
        "build/keep/me.txt file",
        "docs dir",
        "docs/a.md file",
        "docs/img dir",
        "docs/img/logo.png file",
        "empty dir",
        "link-to-docs symlink docs",
        "link-to-readme symlink README.md",
        "dangling symlink does/not/exist",
        "absolute symlink /etc/passwd",
        "src dir",
        "src/main.rs file",
        "src/main.rs.bak file",
        "src/util dir",
        "src/util/mod.rs file",
        "src/util/tmp.bak file",
        "a-b file",
        "a dir",
        "a/b file",
    ])
}

#[test]
fn no_patterns_sends_everything_in_fsutil_order() {
    let ctx = sample_context();
    assert_eq!(
        listing(ctx.path(), &WalkOptions::default()),
        [
            "file .dockerignore",
            "dir .git",
            "file .git/HEAD",
            "dir .git/objects",
            "file Dockerfile",
            "file README.md",
            "dir a",
            "file a/b",
            // `a-b` sorts after `a` but its walk comes after a's contents.
            "file a-b",
            "symlink:/etc/passwd absolute",
            "dir build",
            "dir build/keep",
            "file build/keep/me.txt",
            "file build/out.bin",
            "symlink:does/not/exist dangling",
            "dir docs",
            "file docs/a.md",
            "dir docs/img",
            "file docs/img/logo.png",
            "dir empty",
            "symlink:docs link-to-docs",
            "symlink:README.md link-to-readme",
            "dir src",
            "file src/main.rs",
            "file src/main.rs.bak",
            "dir src/util",
            "file src/util/mod.rs",
            "file src/util/tmp.bak",
        ]
    );
}

#[test]
fn typical_dockerignore() {
    let ctx = sample_context();
    let ignore = "# VCS\n.git\n\n**/*.bak\nbuild\n!build/keep/me.txt\nempty/\n/dangling\n";
    assert_eq!(
        listing(ctx.path(), &excluding(ignore)),
        [
            "file .dockerignore",
            "file Dockerfile",
            "file README.md",
            "dir a",
            "file a/b",
            "file a-b",
            "symlink:/etc/passwd absolute",
            // Sent only because of the exception inside, with its own metadata.
            "dir build",
            "dir build/keep",
            "file build/keep/me.txt",
            "dir docs",
            "file docs/a.md",
            "dir docs/img",
            "file docs/img/logo.png",
            "symlink:docs link-to-docs",
            "symlink:README.md link-to-readme",
            "dir src",
            "file src/main.rs",
            "dir src/util",
            "file src/util/mod.rs",
        ]
    );
}

#[test]
fn symlinks_are_matched_by_their_own_name_and_never_followed() {
    let ctx = sample_context();
    // Excluding the directory does not exclude the symlink pointing at it,
    // and nothing is walked through the symlink.
    let out = listing(ctx.path(), &excluding("docs\nREADME.md\n"));
    assert!(out.contains(&"symlink:docs link-to-docs".to_owned()));
    assert!(out.contains(&"symlink:README.md link-to-readme".to_owned()));
    assert!(!out.iter().any(|l| l.contains("link-to-docs/")));
    assert!(
        !out.iter()
            .any(|l| l.ends_with(" docs") || l.contains(" docs/"))
    );
    // Excluding the symlink excludes only it.
    let out = listing(ctx.path(), &excluding("link-*\n"));
    assert!(out.contains(&"dir docs".to_owned()));
    assert!(!out.iter().any(|l| l.contains("link-")));
}

#[test]
fn excluding_everything_but_a_few_files() {
    let ctx = sample_context();
    let ignore = "*\n!src\n!Dockerfile\nsrc/util\n";
    assert_eq!(
        listing(ctx.path(), &excluding(ignore)),
        [
            "file Dockerfile",
            "dir src",
            "file src/main.rs",
            "file src/main.rs.bak"
        ]
    );
    // `**` excludes everything, a later exception brings back a nested file
    // and the directories leading to it.
    let ignore = "**\n!docs/img/logo.png\n";
    assert_eq!(
        listing(ctx.path(), &excluding(ignore)),
        ["dir docs", "dir docs/img", "file docs/img/logo.png"]
    );
}

#[test]
fn empty_directories_are_entries_unless_excluded() {
    let ctx = sample_context();
    assert!(listing(ctx.path(), &excluding("build\n")).contains(&"dir empty".to_owned()));
    assert!(!listing(ctx.path(), &excluding("empty\n")).contains(&"dir empty".to_owned()));
    // An excluded directory with an exception that matches nothing inside it
    // is not sent.
    let out = listing(ctx.path(), &excluding("empty\n!empty/nothing\n"));
    assert!(!out.iter().any(|l| l.contains("empty")), "{out:?}");
    // An excluded directory is not sent because of a wildcard exception that
    // matches nothing in it.
    let out = listing(ctx.path(), &excluding("build\n!build/*.txt\n"));
    assert!(!out.iter().any(|l| l.contains("build")), "{out:?}");
}

#[test]
fn leading_slash_dot_and_parent_patterns() {
    let ctx = tree(&[
        "build dir",
        "build/o file",
        "src dir",
        "src/build dir",
        "src/build/keep file",
        "tmp dir",
        "tmp/t file",
    ]);
    // The conformance case ignore-leading-slash-and-dot.
    assert_eq!(
        listing(ctx.path(), &excluding("/build\n./tmp\n# comment\n\n")),
        ["dir src", "dir src/build", "file src/build/keep"]
    );
    assert_eq!(
        listing(ctx.path(), &excluding("src/../tmp\nsrc/./build/\n")),
        ["dir build", "file build/o", "dir src"]
    );
    // `.` (the context itself) excludes nothing.
    assert_eq!(listing(ctx.path(), &excluding(".\n./\n")).len(), 7);
    // A pattern that climbs out of the context matches nothing.
    assert_eq!(listing(ctx.path(), &excluding("../build\n")).len(), 7);
    // In COPY --exclude (used as written), a leading slash matches nothing.
    let options = WalkOptions {
        exclude_patterns: vec!["/build".to_owned()],
        ..WalkOptions::default()
    };
    assert_eq!(listing(ctx.path(), &options).len(), 7);
}

#[test]
fn order_of_rules_decides() {
    let ctx = tree(&[
        "important.bak file",
        "keep-a file",
        "keep-not-b file",
        "x.bak file",
    ]);
    // The conformance case ignore-order-matters.
    assert_eq!(
        listing(
            ctx.path(),
            &excluding("!keep*\nkeep-not*\n*.bak\n!important.bak\n")
        ),
        ["file important.bak", "file keep-a"]
    );
    assert_eq!(
        listing(ctx.path(), &excluding("!important.bak\n*.bak\n")),
        ["file keep-a", "file keep-not-b"]
    );
}

#[test]
fn escaped_wildcards_and_backslashes() {
    let ctx = tree(&[
        "a*b file",
        "axb file",
        "q? file",
        "qq file",
        "back\\slash file",
        "br[x] file",
        "brx file",
    ]);
    assert_eq!(
        listing(ctx.path(), &excluding("a\\*b\nq\\?\nbr\\[x]\n")),
        ["file axb", "file back\\slash", "file brx", "file qq"]
    );
    // A backslash is not a path separator: `back\\slash` matches the file
    // whose name contains one.
    assert!(
        !listing(ctx.path(), &excluding("back\\\\slash\n"))
            .contains(&"file back\\slash".to_owned())
    );
}

#[test]
fn doublestar_positions() {
    let ctx = tree(&[
        "a dir",
        "a/b dir",
        "a/b/c.txt file",
        "a/b/d.log file",
        "a/e.txt file",
        "f.txt file",
        "logs dir",
        "logs/x dir",
        "logs/x/y.txt file",
    ]);
    let run = |ignore: &str| listing(ctx.path(), &excluding(ignore));
    // Leading: any depth, including the root.
    assert_eq!(
        run("**/*.txt\n"),
        [
            "dir a",
            "dir a/b",
            "file a/b/d.log",
            "dir logs",
            "dir logs/x"
        ]
    );
    // Middle: zero or more directories.
    assert_eq!(
        run("a/**/*.txt\n"),
        [
            "dir a",
            "dir a/b",
            "file a/b/d.log",
            "file f.txt",
            "dir logs",
            "dir logs/x",
            "file logs/x/y.txt"
        ]
    );
    // Trailing: everything below, not the directory itself.
    assert_eq!(
        run("logs/**\n"),
        [
            "dir a",
            "dir a/b",
            "file a/b/c.txt",
            "file a/b/d.log",
            "file a/e.txt",
            "file f.txt",
            "dir logs"
        ]
    );
}

#[test]
fn include_patterns_emit_parents_with_their_own_metadata() {
    let ctx = tree(&[
        "a dir",
        "a/b dir",
        "a/b/target file",
        "a/c dir",
        "a/c/other file",
        "z file",
    ]);
    let perms = |p: &str, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(ctx.path().join(p), std::fs::Permissions::from_mode(mode))
            .unwrap();
    };
    perms("a", 0o750);
    perms("a/b", 0o701);
    let entries = walk(ctx.path(), &including(&["a/*/target"])).unwrap();
    let got: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.path.to_str().unwrap().to_owned(),
                e.metadata.mode() & 0o7777,
            )
        })
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], ("a".to_owned(), 0o750));
    assert_eq!(got[1], ("a/b".to_owned(), 0o701));
    assert_eq!(got[2].0, "a/b/target");
    assert!(
        entries[0].metadata.is_dir()
            && entries[1].metadata.is_dir()
            && entries[2].metadata.is_file()
    );
}

#[test]
fn include_patterns_like_fsutil() {
    let ctx = tree(&["bar dir", "bar/foo file", "foo2 file"]);
    for pattern in ["bar", "bar/foo", "b*", "bar/f*", "b*/f*", "b*/foo", "b*/"] {
        assert_eq!(
            listing(ctx.path(), &including(&[pattern])),
            ["dir bar", "file bar/foo"],
            "{pattern}"
        );
    }
    assert!(listing(ctx.path(), &including(&["bar/g*"])).is_empty());
    assert_eq!(listing(ctx.path(), &including(&["f*"])), ["file foo2"]);
}

#[test]
fn include_and_exclude_together_like_copy_parents_with_exclude() {
    let ctx = sample_context();
    let options = WalkOptions {
        include_patterns: vec!["src/**/*.rs".to_owned(), "docs".to_owned()],
        exclude_patterns: vec!["**/img".to_owned(), "src/util".to_owned()],
        ..WalkOptions::default()
    };
    assert_eq!(
        listing(ctx.path(), &options),
        ["dir docs", "file docs/a.md", "dir src", "file src/main.rs"]
    );
}

#[test]
fn follow_paths_like_fsutil() {
    let ctx = tree(&[
        "bar file",
        "foo dir",
        "foo/l1 symlink /baz/one",
        "foo/l2 symlink /baz/two",
        "baz dir",
        "baz/one file",
        "baz/two symlink ../bax",
        "bax file",
        "bay file",
    ]);
    let options = WalkOptions {
        follow_paths: vec!["foo/l*".to_owned(), "bar".to_owned()],
        ..WalkOptions::default()
    };
    assert_eq!(
        listing(ctx.path(), &options),
        [
            "file bar",
            "file bax",
            "dir baz",
            "file baz/one",
            "symlink:../bax baz/two",
            "dir foo",
            "symlink:/baz/one foo/l1",
            "symlink:/baz/two foo/l2",
        ]
    );

    // A Dockerfile that is a symlink is loaded with its target.
    let ctx = tree(&[
        "Dockerfile symlink build/Dockerfile.real",
        "build dir",
        "build/Dockerfile.real file",
        "other file",
    ]);
    let options = WalkOptions {
        follow_paths: vec![
            "Dockerfile".to_owned(),
            "Dockerfile.dockerignore".to_owned(),
        ],
        ..WalkOptions::default()
    };
    assert_eq!(
        listing(ctx.path(), &options),
        [
            "symlink:build/Dockerfile.real Dockerfile",
            "dir build",
            "file build/Dockerfile.real"
        ]
    );
}

#[test]
fn follow_path_to_the_root_selects_everything() {
    let ctx = tree(&[
        "foo symlink .",
        "bar file",
        "bax file",
        "bay dir",
        "bay/baz file",
    ]);
    let options = WalkOptions {
        follow_paths: vec!["foo".to_owned()],
        ..WalkOptions::default()
    };
    assert_eq!(
        listing(ctx.path(), &options),
        [
            "file bar",
            "file bax",
            "dir bay",
            "file bay/baz",
            "symlink:. foo"
        ]
    );
}

#[test]
fn root_symlink_is_resolved() {
    let ctx = tree(&["real dir", "real/f file", "ctx symlink real"]);
    let out = listing(&ctx.path().join("ctx"), &WalkOptions::default());
    assert_eq!(out, ["file f"]);
}

#[test]
fn invalid_patterns_are_errors_naming_them() {
    let ctx = tree(&["a file", "b file"]);
    let err = walk(ctx.path(), &excluding("a[\n")).unwrap_err();
    assert!(matches!(err, WalkError::Filter(_)));
    assert_eq!(
        err.to_string(),
        "invalid exclude patterns: syntax error in pattern \"a[\""
    );
    let err = walk(ctx.path(), &excluding("!\n")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid exclude patterns: illegal exclusion pattern: \"!\""
    );
    // Rejected by Go's regexp only, so only when first evaluated.
    let err = walk(ctx.path(), &excluding("[z-a]\n")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to match exclude patterns: syntax error in pattern \"[z-a]\""),
        "{err}"
    );
    // ... which, for an exception nothing reaches, is never.
    assert_eq!(
        listing(ctx.path(), &excluding("!b[z-a]\n")),
        ["file a", "file b"]
    );
}

#[test]
fn visitor_errors_stop_the_walk() {
    #[derive(Debug)]
    enum MyError {
        Walk,
        Enough,
    }
    impl From<WalkError> for MyError {
        fn from(_: WalkError) -> Self {
            MyError::Walk
        }
    }
    let ctx = sample_context();
    let walker = Walker::new(ctx.path(), &WalkOptions::default()).unwrap();
    let mut seen = 0;
    let res = walker.for_each(|_| {
        seen += 1;
        if seen == 3 {
            Err(MyError::Enough)
        } else {
            Ok(())
        }
    });
    assert!(matches!(res, Err(MyError::Enough)));
    assert_eq!(seen, 3);
    assert!(walker.filter().is_empty());
}

#[test]
fn non_utf8_names_are_matched_like_go() {
    use std::os::unix::ffi::OsStrExt;
    let ctx = tempfile::tempdir().unwrap();
    let name = std::ffi::OsStr::from_bytes(b"bad\xFFname");
    std::fs::write(ctx.path().join(name), "").unwrap();
    std::fs::write(ctx.path().join("good"), "").unwrap();
    let entries = walk(ctx.path(), &excluding("bad?name\n")).unwrap();
    let names: Vec<_> = entries
        .iter()
        .map(|e| e.path.as_os_str().as_bytes().to_vec())
        .collect();
    assert_eq!(names, [b"good".to_vec()]);
    let entries = walk(ctx.path(), &excluding("good\n")).unwrap();
    assert_eq!(entries[0].path.as_os_str().as_bytes(), b"bad\xFFname");
}

#[test]
fn walk_matches_the_filter_applied_by_hand() {
    // The Walker and a hand-rolled walk over the same Filter agree.
    let ctx = sample_context();
    let include: Vec<String> = vec![];
    let exclude = read_ignore_file("**/*.bak\nbuild\n!build/keep\n").unwrap();
    let filter = Filter::new(&include, &exclude).unwrap();
    let options = WalkOptions {
        exclude_patterns: exclude.clone(),
        ..WalkOptions::default()
    };
    let walked: Vec<String> = walk(ctx.path(), &options)
        .unwrap()
        .into_iter()
        .map(|e| e.path.to_str().unwrap().to_owned())
        .collect();
    let mut by_hand = Vec::new();
    walk_by_hand(
        ctx.path(),
        "",
        &filter,
        &Default::default(),
        &mut Vec::new(),
        &mut by_hand,
    );
    assert_eq!(walked, by_hand);
}

fn walk_by_hand(
    root: &Path,
    rel: &str,
    filter: &Filter,
    state: &kiln_ignore::DirState,
    pending: &mut Vec<(String, bool)>,
    out: &mut Vec<String>,
) {
    let mut names: Vec<String> = std::fs::read_dir(root.join(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let is_dir = std::fs::symlink_metadata(root.join(&path))
            .unwrap()
            .is_dir();
        match filter.check(&path, is_dir, state).unwrap() {
            kiln_ignore::Verdict::Prune => {}
            kiln_ignore::Verdict::Exclude(child) => {
                if is_dir {
                    pending.push((path.clone(), false));
                    walk_by_hand(root, &path, filter, &child, pending, out);
                    pending.pop();
                }
            }
            kiln_ignore::Verdict::Include(child) => {
                for (dir, sent) in pending.iter_mut() {
                    if !*sent {
                        out.push(dir.clone());
                        *sent = true;
                    }
                }
                out.push(path.clone());
                if is_dir {
                    pending.push((path.clone(), true));
                    walk_by_hand(root, &path, filter, &child, pending, out);
                    pending.pop();
                }
            }
        }
    }
}

/// fsutil takes `a/*/**` for the plain prefix `a` (it trims `/**`, then `/*`), so it
/// prunes `a/x` and sends nothing, although `a/x/y` matches the pattern.
#[test]
fn a_wildcard_segment_before_a_trailing_glob_prunes_as_in_fsutil() {
    let root = tree(&[
        "a dir",
        "a/x dir",
        "a/x/y file",
        "b dir",
        "b/x dir",
        "b/x/y file",
    ]);
    assert!(listing(root.path(), &including(&["a/*/**"])).is_empty());
    assert_eq!(
        listing(root.path(), &including(&["b/*/**", "[b]"])),
        ["dir b", "dir b/x", "file b/x/y"]
    );
}
