//! The conformance cases of `/work/shared/conformance/cases` that only copy,
//! add or make directories, replayed as the file actions the Dockerfile
//! frontend turns them into, on a busybox-like base tree. The resulting tree
//! must match BuildKit's recorded `fs` lines for every path the steps created
//! or the base tree holds (the busybox binary and its links are not part of
//! the base used here).
//!
//! Each case's context is prepared as `check.sh` does: modes made canonical
//! (`u+rwX,go+rX,go-w`), then its `make-context.sh` run.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use kiln_graph::{CopyAction, FileAction};
use kiln_worker::fileop::{ApplyOptions, SourceTree, apply};

const CASES: &str = "/work/shared/conformance/cases";

struct Env {
    /// The prepared copy of the case folder.
    case: PathBuf,
    context: PathBuf,
    rootfs: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Env {
    /// Runs one file op on the rootfs: input 0 the base, 1 the context, then
    /// `extra` sources.
    fn op(&self, actions: Vec<FileAction>, extra: &[SourceTree<'_>]) {
        let mut sources = vec![None, Some(context(&self.context))];
        sources.extend(extra.iter().copied().map(Some));
        apply(&self.rootfs, &actions, &sources, &ApplyOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", self.case.display()));
    }

    fn copies(&self, copies: Vec<CopyAction>) {
        self.op(copies.into_iter().map(FileAction::Copy).collect(), &[]);
    }

    /// The op a COPY of heredocs makes: each document is a file made in an
    /// empty filesystem (inputs 2, 3, ...), then copied.
    fn heredocs(&self, docs: &[(&str, &str)], dest: &str) {
        let scratch: Vec<tempfile::TempDir> = docs
            .iter()
            .map(|(name, data)| {
                let dir = tempfile::tempdir().unwrap();
                apply(
                    dir.path(),
                    &[mkfile(name, 0o644, data)],
                    &[],
                    &ApplyOptions::default(),
                )
                .unwrap();
                dir
            })
            .collect();
        let trees: Vec<SourceTree<'_>> = scratch
            .iter()
            .map(|d| SourceTree {
                root: d.path(),
                exclude: &[],
                owner: None,
            })
            .collect();
        let actions = docs
            .iter()
            .enumerate()
            .map(|(i, (name, _))| FileAction::Copy(copy_inline(2 + i, name, dest)))
            .collect();
        self.op(actions, &trees);
    }
}

fn prepare(name: &str) -> Env {
    assert!(
        Path::new(CASES).is_dir(),
        "the conformance cases are not at {CASES}: these tests need /work/shared"
    );
    let tmp = tempfile::tempdir().unwrap();
    let case = tmp.path().join(name);
    let status = Command::new("cp")
        .arg("-a")
        .arg(Path::new(CASES).join(name))
        .arg(&case)
        .status()
        .unwrap();
    assert!(status.success());
    let context = case.join("context");
    fs::create_dir_all(&context).unwrap();
    canonical_modes(&context);
    if case.join("make-context.sh").exists() {
        let status = Command::new("bash")
            .arg("make-context.sh")
            .current_dir(&case)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{name}: make-context.sh failed (it needs bash and python3)"
        );
    }
    let rootfs = tmp.path().join("rootfs");
    fs::create_dir(&rootfs).unwrap();
    busybox_base(&rootfs);
    Env {
        case,
        context,
        rootfs,
        _tmp: tmp,
    }
}

/// `chmod -R u+rwX,go+rX,go-w`.
fn canonical_modes(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        let mut new = (mode | 0o644) & !0o022;
        if meta.is_dir() || mode & 0o111 != 0 {
            new |= 0o111;
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(new)).unwrap();
        if meta.is_dir() {
            canonical_modes(&path);
        }
    }
}

fn expected_fs(name: &str) -> BTreeMap<String, String> {
    let text = fs::read_to_string(Path::new(CASES).join(name).join("expected.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["fs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let l = l.as_str().unwrap();
            let (path, rest) = l.split_once(' ').unwrap();
            (path.to_string(), rest.to_string())
        })
        .collect()
}

/// Compares the built tree with BuildKit's: every path of the expected tree
/// that the base image did not have, and every path of the built tree.
fn compare(name: &str, env: &Env) {
    let expected = expected_fs(name);
    let base: BTreeSet<String> = expected_fs("workdir-existing").into_keys().collect();
    let actual = tree(&env.rootfs);
    let paths: BTreeSet<&String> = expected
        .keys()
        .filter(|p| !base.contains(*p))
        .chain(actual.keys())
        .collect();
    let mut diffs = Vec::new();
    for path in paths {
        let want = expected.get(path);
        let got = actual.get(path);
        if want != got {
            diffs.push(format!(
                "{path}:\n  buildkit: {}\n  kiln:     {}",
                want.map_or("(absent)", String::as_str),
                got.map_or("(absent)", String::as_str)
            ));
        }
    }
    assert!(diffs.is_empty(), "{name} differs:\n{}", diffs.join("\n"));
}

fn case(name: &str, build: impl FnOnce(&Env)) {
    let env = prepare(name);
    build(&env);
    compare(name, &env);
}

#[test]
fn copy_arg_source() {
    // --build-arg SRC=a.txt
    case("copy-arg-source", |e| {
        e.copies(vec![copy("/a.txt", "/chosen")])
    });
}

#[test]
fn copy_chmod_octal() {
    case("copy-chmod-octal", |e| {
        e.copies(vec![CopyAction {
            mode: octal(0o640),
            ..copy("/a.txt", "/a")
        }]);
        e.copies(vec![CopyAction {
            mode: octal(0o755),
            ..copy("/src", "/s")
        }]);
    });
}

#[test]
fn copy_chown_expansion() {
    case("copy-chown-expansion", |e| {
        e.copies(vec![CopyAction {
            owner: Some(chown("1001", Some("2002"))),
            ..copy("/a.txt", "/a")
        }]);
    });
}

#[test]
fn copy_chown_ids_dir() {
    case("copy-chown-ids-dir", |e| {
        e.copies(vec![CopyAction {
            owner: Some(chown("1234", Some("5678"))),
            ..copy("/src", "/o/")
        }]);
    });
}

#[test]
fn copy_chown_names() {
    case("copy-chown-names", |e| {
        e.copies(vec![CopyAction {
            owner: Some(chown("nobody", Some("nogroup"))),
            ..copy("/a.txt", "/a")
        }]);
    });
}

#[test]
fn copy_dir_contents() {
    case("copy-dir-contents", |e| {
        e.copies(vec![copy("/src", "/app/")])
    });
}

#[test]
fn copy_dir_no_slash() {
    case("copy-dir-no-slash", |e| {
        e.copies(vec![copy("/src", "/app")])
    });
}

#[test]
fn copy_dot_workdir() {
    case("copy-dot-workdir", |e| {
        e.op(vec![workdir("/app", None)], &[]);
        e.copies(vec![copy("/", "/app")]);
    });
}

#[test]
fn copy_env_dest() {
    case("copy-env-dest", |e| {
        e.copies(vec![copy("/a.txt", "/opt/app/")])
    });
}

#[test]
fn copy_exclude() {
    case("copy-exclude", |e| {
        e.copies(vec![CopyAction {
            exclude_patterns: vec!["*.conf".into()],
            ..copy("/src", "/out/")
        }]);
    });
}

#[test]
fn copy_exclude_multiple() {
    case("copy-exclude-multiple", |e| {
        e.copies(vec![CopyAction {
            exclude_patterns: vec!["**/deep".into(), "a.*".into()],
            ..copy("/src", "/out/")
        }]);
    });
}

#[test]
fn copy_file() {
    case("copy-file", |e| e.copies(vec![copy("/a.txt", "/a.txt")]));
}

#[test]
fn copy_file_into_dir() {
    case("copy-file-into-dir", |e| {
        e.copies(vec![copy("/a.txt", "/dir/")])
    });
}

#[test]
fn copy_hardlinks() {
    case("copy-hardlinks", |e| e.copies(vec![copy("/", "/h/")]));
}

#[test]
fn copy_heredoc_expand() {
    case("copy-heredoc-expand", |e| {
        e.heredocs(&[("EOF", "hello world\n")], "/greeting");
        e.heredocs(&[("EOF", "$GREET ${NAME}\n")], "/literal");
    });
}

#[test]
fn copy_heredoc_two_files() {
    case("copy-heredoc-two-files", |e| {
        e.heredocs(&[("one.txt", "1\n"), ("two.txt", "2\n")], "/d/");
    });
}

#[test]
fn copy_into_existing_dir() {
    case("copy-into-existing-dir", |e| {
        e.copies(vec![copy("/a.txt", "/etc")])
    });
}

/// `COPY --link` copies onto an empty filesystem that is then merged onto
/// the stage; for paths the base does not have, the tree is the same as a
/// copy onto the base.
#[test]
fn copy_link() {
    case("copy-link", |e| {
        e.copies(vec![copy("/a.txt", "/linked/a")]);
        e.copies(vec![copy("/src", "/linked/src/")]);
    });
}

#[test]
fn copy_link_chown() {
    // With --chmod, --link is not used.
    case("copy-link-chown", |e| {
        e.copies(vec![CopyAction {
            owner: Some(chown("1", Some("1"))),
            mode: octal(0o600),
            ..copy("/a.txt", "/linked-owned")
        }]);
    });
}

#[test]
fn copy_link_into_existing_dir() {
    case("copy-link-into-existing-dir", |e| {
        e.copies(vec![copy("/a.txt", "/etc/")]);
    });
}

#[test]
fn copy_long_path() {
    case("copy-long-path", |e| e.copies(vec![copy("/", "/long/")]));
}

#[test]
fn copy_modes_preserved() {
    case("copy-modes-preserved", |e| e.copies(vec![copy("/", "/m/")]));
}

#[test]
fn copy_multiple_sources() {
    case("copy-multiple-sources", |e| {
        e.copies(vec![copy("/a.txt", "/dest/"), copy("/b.txt", "/dest/")]);
    });
}

#[test]
fn copy_overwrite() {
    case("copy-overwrite", |e| {
        e.copies(vec![copy("/one.txt", "/f")]);
        e.copies(vec![copy("/two.txt", "/f")]);
    });
}

#[test]
fn copy_parents() {
    case("copy-parents", |e| {
        e.copies(vec![CopyAction {
            include_patterns: vec!["src/**/x.conf".into()],
            ..copy("/", "/out/")
        }]);
    });
}

#[test]
fn copy_relative_dest() {
    case("copy-relative-dest", |e| {
        e.op(vec![workdir("/srv", None)], &[]);
        e.copies(vec![copy("/a.txt", "/srv/rel/")]);
        e.copies(vec![copy("/a.txt", "/srv/rel2")]);
    });
}

#[test]
fn copy_symlinks_in_dir() {
    case("copy-symlinks-in-dir", |e| e.copies(vec![copy("/", "/c/")]));
}

#[test]
fn copy_wildcard_class() {
    case("copy-wildcard-class", |e| {
        e.copies(vec![copy("/file[12].log", "/logs/")])
    });
}

#[test]
fn copy_wildcard_question() {
    case("copy-wildcard-question", |e| {
        e.copies(vec![copy("/file?.log", "/logs/")])
    });
}

#[test]
fn copy_wildcard_star() {
    case("copy-wildcard-star", |e| {
        e.copies(vec![copy("/*.txt", "/dest/")])
    });
}

#[test]
fn expand_in_copy() {
    // ARG DIR=sub; COPY ${DIR:-x}/f.txt ${DEST:-/default-dest}/
    case("expand-in-copy", |e| {
        e.copies(vec![copy("/sub/f.txt", "/default-dest/")]);
    });
}

#[test]
fn add_local_dir() {
    case("add-local-dir", |e| e.copies(vec![add("/src", "/added")]));
}

#[test]
fn add_tar_gz() {
    case("add-tar-gz", |e| {
        e.copies(vec![add("/pkg.tar.gz", "/opt/")])
    });
}

#[test]
fn add_tar_plain() {
    case("add-tar-plain", |e| {
        e.copies(vec![add("/plain.tar", "/opt/")])
    });
}

#[test]
fn add_tar_with_chown() {
    case("add-tar-with-chown", |e| {
        e.copies(vec![CopyAction {
            owner: Some(chown("7", Some("7"))),
            ..add("/pkg.tar.gz", "/owned/")
        }]);
    });
}

#[test]
fn add_tar_xz() {
    case("add-tar-xz", |e| {
        e.copies(vec![add("/pkg.tar.xz", "/opt/")])
    });
}

#[test]
fn workdir_after_user() {
    case("workdir-after-user", |e| {
        e.op(vec![workdir("/made-by-nobody", Some("nobody"))], &[]);
    });
}

#[test]
fn workdir_creates() {
    case("workdir-creates", |e| {
        e.op(vec![workdir("/a/b/c", None)], &[])
    });
}

#[test]
fn workdir_existing() {
    case("workdir-existing", |e| {
        e.op(vec![workdir("/etc", None)], &[]);
        e.op(vec![workdir("/tmp", None)], &[]);
    });
}

#[test]
fn workdir_relative_chain() {
    case("workdir-relative-chain", |e| {
        e.op(vec![workdir("/a", None)], &[]);
        e.op(vec![workdir("/a/b", None)], &[]);
        e.op(vec![workdir("/a/b/c", None)], &[]);
    });
}

/// `COPY --from=b --chown=33:33 /a /owned`, stage b being `COPY a.txt /a` on
/// the same base: the source is another stage, read with its own ownership.
#[test]
fn stage_copy_from_chown() {
    case("stage-copy-from-chown", |e| {
        let stage = tempfile::tempdir().unwrap();
        busybox_base(stage.path());
        run_copies(stage.path(), &e.context, vec![copy("/a.txt", "/a")]).unwrap();
        let from = SourceTree {
            root: stage.path(),
            exclude: &[],
            owner: None,
        };
        let mut action = copy("/a", "/owned");
        action.source = 2;
        action.owner = Some(chown("33", Some("33")));
        e.op(vec![FileAction::Copy(action)], &[from]);
    });
}

/// The `.dockerignore` cases: the context is read with the build's ignore
/// rules, `COPY . /ctx/`.
fn ignore_case(name: &str) {
    case(name, |e| {
        let rules = kiln_ignore::read_build_ignore(&e.context, &e.case.join("Dockerfile")).unwrap();
        let tree = SourceTree {
            root: &e.context,
            exclude: &rules.patterns,
            owner: Some((0, 0)),
        };
        apply(
            &e.rootfs,
            &[FileAction::Copy(copy("/", "/ctx/"))],
            &[None, Some(tree)],
            &ApplyOptions::default(),
        )
        .unwrap();
    });
}

#[test]
fn ignore_basic() {
    ignore_case("ignore-basic");
}

#[test]
fn ignore_dockerfile_specific() {
    ignore_case("ignore-dockerfile-specific");
}

#[test]
fn ignore_exception() {
    ignore_case("ignore-exception");
}

#[test]
fn ignore_leading_slash_and_dot() {
    ignore_case("ignore-leading-slash-and-dot");
}

#[test]
fn ignore_order_matters() {
    ignore_case("ignore-order-matters");
}

/// Every copy-*, add-* and workdir-* case of the suite is replayed above.
#[test]
fn every_copy_add_and_workdir_case_is_covered() {
    let source = include_str!("conformance.rs");
    let mut missing = Vec::new();
    for entry in fs::read_dir(CASES).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let family = ["copy-", "add-", "workdir-", "ignore-"];
        if family.iter().any(|f| name.starts_with(f)) && !source.contains(&format!("\"{name}\"")) {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "cases not replayed: {missing:?}");
}
