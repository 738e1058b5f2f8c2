//! Checks the walk against BuildKit's own results: the build-conformance cases
//! in the project's shared folder record the file tree BuildKit produced for
//! `.dockerignore` files, `COPY --exclude` and `COPY --parents`. For each case
//! the context is walked with the same patterns and the selected paths and
//! their types must be exactly those BuildKit copied.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_ignore::{WalkOptions, read_build_ignore, walk};

/// The shared folder: `$KILN_SHARED_DIR`, else `shared/` beside the project.
fn shared_dir() -> PathBuf {
    let candidates = [
        std::env::var_os("KILN_SHARED_DIR").map(PathBuf::from),
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")),
        Some(PathBuf::from("/work/shared")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("conformance/cases").is_dir())
        .unwrap_or_else(|| {
            panic!(
                "the conformance cases were not found: set KILN_SHARED_DIR to the shared folder \
                 (the one holding conformance/cases), or put it beside the project as ../shared"
            )
        })
}

/// A writable copy of a case, with its `make-context.sh` run.
fn prepare(case: &str) -> tempfile::TempDir {
    let src = shared_dir().join("conformance/cases").join(case);
    let tmp = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-R")
        .arg(format!("{}/.", src.display()))
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(status.success(), "copying {}", src.display());
    let status = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(tmp.path())
        .status()
        .unwrap();
    assert!(status.success());
    if tmp.path().join("make-context.sh").exists() {
        let status = Command::new("bash")
            .arg("make-context.sh")
            .current_dir(tmp.path())
            .status()
            .unwrap();
        assert!(status.success(), "make-context.sh of {case}");
    }
    tmp
}

/// The `(path, type)` pairs BuildKit put under `dest/` in the image, sorted.
fn expected(case: &str, dest: &str) -> Vec<(String, char)> {
    let path = shared_dir()
        .join("conformance/cases")
        .join(case)
        .join("expected.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let prefix = format!("{dest}/");
    let mut out: Vec<(String, char)> = json["fs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|line| {
            let line = line.as_str().unwrap();
            let (path, rest) = line.split_once(' ').unwrap();
            let rel = path.strip_prefix(&prefix)?;
            Some((rel.to_owned(), rest.chars().next().unwrap()))
        })
        .collect();
    out.sort();
    out
}

/// The `(path, type)` pairs the walk selects, sorted as the normalized tree is.
fn walked(root: &Path, options: &WalkOptions) -> Vec<(String, char)> {
    let mut out: Vec<(String, char)> = walk(root, options)
        .unwrap()
        .into_iter()
        .map(|e| {
            let t = e.metadata.file_type();
            let kind = if t.is_dir() {
                'd'
            } else if t.is_symlink() {
                'l'
            } else {
                'f'
            };
            (e.path.to_str().unwrap().to_owned(), kind)
        })
        .collect();
    out.sort();
    out
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn dockerignore_cases() {
    for case in [
        "ignore-basic",
        "ignore-exception",
        "ignore-leading-slash-and-dot",
        "ignore-order-matters",
        "ignore-dockerfile-specific",
    ] {
        let dir = prepare(case);
        let context = dir.path().join("context");
        let ignore = read_build_ignore(&context, &dir.path().join("Dockerfile")).unwrap();
        assert!(ignore.file.is_some(), "{case} has an ignore file");
        let options = WalkOptions {
            exclude_patterns: ignore.patterns,
            ..WalkOptions::default()
        };
        let got = walked(&context, &options);
        assert!(!got.is_empty(), "{case}");
        assert_eq!(got, expected(case, "ctx"), "{case}");
    }
}

#[test]
fn copy_exclude_cases() {
    for (case, patterns) in [
        ("copy-exclude", strings(&["*.conf"])),
        ("copy-exclude-multiple", strings(&["**/deep", "a.*"])),
    ] {
        let dir = prepare(case);
        let options = WalkOptions {
            exclude_patterns: patterns,
            ..WalkOptions::default()
        };
        assert_eq!(
            walked(&dir.path().join("context/src"), &options),
            expected(case, "out"),
            "{case}"
        );
    }
}

#[test]
fn copy_parents_case() {
    let dir = prepare("copy-parents");
    let options = WalkOptions {
        include_patterns: strings(&["src/**/x.conf"]),
        ..WalkOptions::default()
    };
    assert_eq!(
        walked(&dir.path().join("context"), &options),
        expected("copy-parents", "out")
    );
}

#[test]
fn symlinks_case() {
    let dir = prepare("copy-symlinks-in-dir");
    assert_eq!(
        walked(&dir.path().join("context"), &WalkOptions::default()),
        expected("copy-symlinks-in-dir", "c")
    );
}
