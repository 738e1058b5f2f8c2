//! Times walking and filtering a generated build context of 20,000 files
//! (200 folders of 100 files, the shape of the `ctx-copy` workload) with
//! several pattern sets.
//!
//! Run with `cargo run --release -p kiln-ignore --example walk_bench [DIR]`;
//! without DIR the tree is generated in a temporary directory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_ignore::{WalkOptions, read_ignore_file, walk};

fn generate(root: &Path) -> std::io::Result<()> {
    for d in 0..200 {
        let dir = root.join(format!("pkg{d:03}")).join("src");
        std::fs::create_dir_all(&dir)?;
        for f in 0..100 {
            std::fs::write(dir.join(format!("file{f:03}.dat")), b"")?;
        }
    }
    std::fs::write(root.join(".dockerignore"), b"")?;
    Ok(())
}

fn time(label: &str, root: &Path, options: &WalkOptions) -> Result<(), Box<dyn std::error::Error>> {
    // One warm-up run so that every run sees a warm dentry cache.
    let count = walk(root, options)?.len();
    let mut runs: Vec<Duration> = (0..15)
        .map(|_| {
            let start = Instant::now();
            let entries = walk(root, options).map(|e| e.len());
            (start.elapsed(), entries)
        })
        .map(|(elapsed, entries)| {
            assert_eq!(entries.ok(), Some(count));
            elapsed
        })
        .collect();
    runs.sort();
    println!(
        "{label:<48} {count:>6} entries  min {:>6.1} ms  median {:>6.1} ms  max {:>6.1} ms",
        runs[0].as_secs_f64() * 1e3,
        runs[runs.len() / 2].as_secs_f64() * 1e3,
        runs[runs.len() - 1].as_secs_f64() * 1e3,
    );
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp;
    let root: PathBuf = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => {
            tmp = tempfile::tempdir()?;
            generate(tmp.path())?;
            tmp.path().to_path_buf()
        }
    };
    let exclude = |text: &str| -> Result<WalkOptions, Box<dyn std::error::Error>> {
        Ok(WalkOptions {
            exclude_patterns: read_ignore_file(text)?,
            ..WalkOptions::default()
        })
    };
    time("no patterns", &root, &WalkOptions::default())?;
    time(
        "typical .dockerignore (7 patterns, 1 exception)",
        &root,
        &exclude(
            ".git\n**/*.tmp\n*.log\nnode_modules\npkg1*/\n!pkg150/src/file000.dat\ntarget/\n",
        )?,
    )?;
    time(
        "wildcard exception: every excluded dir walked",
        &root,
        &exclude("pkg*\n!pkg*/src/file00?.dat\n")?,
    )?;
    time(
        "include **/file0*.dat, exclude **/*7.dat",
        &root,
        &WalkOptions {
            include_patterns: vec!["**/file0*.dat".to_owned()],
            exclude_patterns: vec!["**/*7.dat".to_owned()],
            ..WalkOptions::default()
        },
    )?;
    Ok(())
}
