//! `selection_digest`: the cache key of a COPY follows what the copy would
//! write, and nothing else.

mod common;

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;
use kiln_graph::{CopyAction, Digest};
use kiln_worker::fileop::{FileHasher, FileStat, PlainHasher, SourceTree, selection_digest};

fn digest_of(ctx: &Path, action: &CopyAction) -> Digest {
    selection_digest(action, &context(ctx), &mut PlainHasher).unwrap()
}

fn sample(ctx: &Path) {
    write(&ctx.join("src/a.txt"), "a", 0o644);
    write(&ctx.join("src/sub/b.txt"), "b", 0o644);
    write(&ctx.join("src/run.sh"), "#!/bin/sh", 0o755);
    mkdir(&ctx.join("src/empty"), 0o755);
    symlink("a.txt", ctx.join("src/link")).unwrap();
    write(&ctx.join("other.txt"), "not selected", 0o644);
}

/// Applies `change` to a fresh sample and reports whether the digest of
/// `COPY src /app` changed.
fn changes(change: impl FnOnce(&Path)) -> bool {
    let ctx = tempfile::tempdir().unwrap();
    sample(ctx.path());
    let action = copy("/src", "/app");
    let before = digest_of(ctx.path(), &action);
    change(ctx.path());
    before != digest_of(ctx.path(), &action)
}

#[test]
fn touching_files_keeps_the_digest() {
    assert!(!changes(|ctx| {
        let later = SystemTime::now() + Duration::from_secs(3600);
        for f in ["src/a.txt", "src/sub/b.txt", "src"] {
            fs::File::open(ctx.join(f))
                .unwrap()
                .set_modified(later)
                .unwrap();
        }
        // Rewriting the same bytes (new ctime, same content) too.
        fs::write(ctx.join("src/run.sh"), "#!/bin/sh").unwrap();
    }));
}

#[test]
fn what_the_copy_writes_changes_the_digest() {
    assert!(
        changes(|ctx| fs::write(ctx.join("src/a.txt"), "A").unwrap()),
        "content"
    );
    assert!(
        changes(|ctx| fs::rename(ctx.join("src/a.txt"), ctx.join("src/c.txt")).unwrap()),
        "rename"
    );
    assert!(
        changes(|ctx| fs::set_permissions(
            ctx.join("src/a.txt"),
            fs::Permissions::from_mode(0o600)
        )
        .unwrap()),
        "mode"
    );
    assert!(
        changes(|ctx| write(&ctx.join("src/new"), "", 0o644)),
        "added file"
    );
    assert!(
        changes(|ctx| mkdir(&ctx.join("src/newdir"), 0o755)),
        "added directory"
    );
    assert!(
        changes(|ctx| fs::remove_file(ctx.join("src/sub/b.txt")).unwrap()),
        "removed"
    );
    assert!(
        changes(|ctx| {
            fs::remove_file(ctx.join("src/link")).unwrap();
            symlink("sub/b.txt", ctx.join("src/link")).unwrap();
        }),
        "symlink target"
    );
    assert!(
        changes(|ctx| {
            fs::remove_file(ctx.join("src/sub/b.txt")).unwrap();
            fs::hard_link(ctx.join("src/a.txt"), ctx.join("src/sub/b.txt")).unwrap();
            fs::write(ctx.join("src/a.txt"), "b").unwrap();
        }),
        "hard link structure, same contents"
    );
    assert!(
        !changes(|ctx| fs::write(ctx.join("other.txt"), "x").unwrap()),
        "not selected"
    );
}

#[test]
fn ownership_counts_only_as_read() {
    // The context is read as 0:0: its files' owners do not matter.
    assert!(!changes(|ctx| std::os::unix::fs::chown(
        ctx.join("src/a.txt"),
        Some(5),
        Some(5)
    )
    .unwrap()));
    // Another stage's files keep their owners, which the copy writes.
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let stage = SourceTree {
        root: dir.path(),
        exclude: &[],
        owner: None,
    };
    let action = copy("/src", "/app");
    let before = selection_digest(&action, &stage, &mut PlainHasher).unwrap();
    std::os::unix::fs::chown(dir.path().join("src/a.txt"), Some(5), Some(5)).unwrap();
    assert_ne!(
        before,
        selection_digest(&action, &stage, &mut PlainHasher).unwrap()
    );
}

#[test]
fn excluded_files_do_not_count() {
    let ctx = tempfile::tempdir().unwrap();
    sample(ctx.path());
    write(&ctx.path().join("src/debug.log"), "1", 0o644);
    let ignore = vec!["**/*.log".to_string()];
    let tree = SourceTree {
        root: ctx.path(),
        exclude: &ignore,
        owner: Some((0, 0)),
    };
    let action = copy("/src", "/app");
    let before = selection_digest(&action, &tree, &mut PlainHasher).unwrap();
    fs::write(ctx.path().join("src/debug.log"), "2").unwrap();
    write(&ctx.path().join("src/more.log"), "3", 0o644);
    assert_eq!(
        before,
        selection_digest(&action, &tree, &mut PlainHasher).unwrap()
    );
    // The same with the action's own --exclude.
    let excluding = CopyAction {
        exclude_patterns: vec!["sub".into()],
        ..copy("/src", "/app")
    };
    let before = digest_of(ctx.path(), &excluding);
    fs::write(ctx.path().join("src/sub/b.txt"), "changed").unwrap();
    assert_eq!(before, digest_of(ctx.path(), &excluding));
    assert_ne!(before, digest_of(ctx.path(), &copy("/src", "/app")));
}

#[test]
fn equal_sources_give_equal_digests() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    sample(one.path());
    sample(two.path());
    write(&two.path().join("unrelated"), "x", 0o644);
    let action = copy("/src", "/app");
    assert_eq!(
        digest_of(one.path(), &action),
        digest_of(two.path(), &action)
    );
    // What the action selects is part of it: another source path differs.
    assert_ne!(
        digest_of(one.path(), &action),
        digest_of(one.path(), &copy("/src/sub", "/app"))
    );
}

#[test]
fn wildcards_and_missing_sources() {
    let ctx = tempfile::tempdir().unwrap();
    sample(ctx.path());
    let star = copy("/src/*.txt", "/d/");
    let before = digest_of(ctx.path(), &star);
    write(&ctx.path().join("src/z.txt"), "z", 0o644);
    assert_ne!(before, digest_of(ctx.path(), &star), "a new match");
    let none = copy("/src/*.none", "/d/");
    assert_eq!(digest_of(ctx.path(), &none), digest_of(ctx.path(), &none));
    let err = selection_digest(
        &copy("/missing.txt", "/x"),
        &context(ctx.path()),
        &mut PlainHasher,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "\"/missing.txt\": not found");
}

/// A stat cache: counts how many files it had to read.
#[derive(Default)]
struct Counting {
    known: std::collections::HashMap<FileStat, Digest>,
    reads: usize,
}

impl FileHasher for Counting {
    fn file_digest(&mut self, rel: &Path, abs: &Path, stat: &FileStat) -> io::Result<Digest> {
        assert!(
            abs.ends_with(rel),
            "{} is not below the source root",
            rel.display()
        );
        if let Some(d) = self.known.get(stat) {
            return Ok(d.clone());
        }
        self.reads += 1;
        let d = PlainHasher.file_digest(rel, abs, stat)?;
        self.known.insert(*stat, d.clone());
        Ok(d)
    }
}

#[test]
fn a_stat_cache_avoids_reading_unchanged_files() {
    let ctx = tempfile::tempdir().unwrap();
    sample(ctx.path());
    let action = copy("/src", "/app");
    let mut cache = Counting::default();
    let cold = selection_digest(&action, &context(ctx.path()), &mut cache).unwrap();
    assert_eq!(cache.reads, 3);
    let warm = selection_digest(&action, &context(ctx.path()), &mut cache).unwrap();
    assert_eq!(cache.reads, 3, "nothing read again");
    assert_eq!(cold, warm);
    assert_eq!(cold, digest_of(ctx.path(), &action));
    fs::write(ctx.path().join("src/a.txt"), "changed").unwrap();
    let changed = selection_digest(&action, &context(ctx.path()), &mut cache).unwrap();
    assert_eq!(cache.reads, 4, "only the changed file is read");
    assert_ne!(changed, cold);
}

#[test]
fn an_archive_is_keyed_by_its_content() {
    let ctx = tempfile::tempdir().unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    builder.append_data(&mut h, "x", &b"x"[..]).unwrap();
    fs::write(ctx.path().join("a.tar"), builder.into_inner().unwrap()).unwrap();
    symlink("a.tar", ctx.path().join("link.tar")).unwrap();
    let mut action = add("/link.tar", "/d/");
    action.follow_symlinks = false;
    let before = digest_of(ctx.path(), &action);
    let mut other = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    other.append_data(&mut h, "y", &b"y"[..]).unwrap();
    fs::write(ctx.path().join("a.tar"), other.into_inner().unwrap()).unwrap();
    assert_ne!(
        before,
        digest_of(ctx.path(), &action),
        "extracted through the link"
    );
}
