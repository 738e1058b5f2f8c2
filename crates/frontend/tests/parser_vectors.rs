//! BuildKit's parser vectors (`dockerfile-parser/`).

mod common;

use std::fs;
use std::path::Path;

use kiln_frontend::parser::parse;

fn case_dirs(dir: &Path) -> Vec<std::path::PathBuf> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => panic!("cannot list {}: {err}", dir.display()),
    };
    let mut dirs: Vec<_> = entries
        .map(|entry| match entry {
            Ok(entry) => entry.path(),
            Err(err) => panic!("cannot list {}: {err}", dir.display()),
        })
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn read(path: &Path) -> Vec<u8> {
    match fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => panic!("cannot read vector file {}: {err}", path.display()),
    }
}

/// Every `testfiles/<case>`: the dump plus a newline is `result`.
#[test]
fn testfiles_dump_as_buildkit() {
    let Some(vectors) = common::vectors_dir() else {
        return;
    };
    let dirs = case_dirs(&vectors.join("dockerfile-parser/testfiles"));
    assert_eq!(dirs.len(), 33, "expected BuildKit's 33 parser cases");
    let mut failures = Vec::new();
    for dir in &dirs {
        let dockerfile = read(&dir.join("Dockerfile"));
        let expected = common::read_text(&dir.join("result"));
        match parse(&dockerfile) {
            Ok(result) => {
                let got = result.dump() + "\n";
                if got != expected {
                    failures.push(format!(
                        "{}:\n--- expected\n{expected}--- got\n{got}",
                        dir.display()
                    ));
                }
            }
            Err(err) => failures.push(format!("{}: {err}", dir.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every `testfiles-negative/<case>` fails to parse.
#[test]
fn negative_testfiles_fail() {
    let Some(vectors) = common::vectors_dir() else {
        return;
    };
    let dirs = case_dirs(&vectors.join("dockerfile-parser/testfiles-negative"));
    assert_eq!(dirs.len(), 4, "expected BuildKit's 4 negative cases");
    for dir in &dirs {
        let dockerfile = read(&dir.join("Dockerfile"));
        assert!(parse(&dockerfile).is_err(), "{} parsed", dir.display());
    }
}

/// BuildKit's TestParseIncludesLineNumbers.
#[test]
fn testfile_line_numbers() {
    let Some(vectors) = common::vectors_dir() else {
        return;
    };
    let dockerfile = read(&vectors.join("dockerfile-parser/testfile-line/Dockerfile"));
    let result = parse(&dockerfile).unwrap();
    let lines: Vec<(usize, usize)> = result
        .nodes
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(lines, [(5, 5), (11, 12), (17, 31)]);
}
