//! Times `COPY . /app` and the cache digest of the ctx-copy workload: a
//! context of 200 directories × 100 files × 10 KB (200 MB).
//!
//! ```text
//! cargo run --release -p kiln-worker --example copy_bench [-- WORK_DIR]
//! ```
//!
//! Prints the time of `apply` (default pool and one thread), of `cp -a` on
//! the same tree for reference, and of `selection_digest` cold (every file
//! read) and warm (through an in-memory stat cache, as an engine keeps one).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kiln_graph::{CopyAction, Digest, FileAction};
use kiln_worker::fileop::{
    ApplyOptions, FileHasher, FileStat, PlainHasher, SourceTree, apply, selection_digest,
};

const DIRS: usize = 200;
const FILES: usize = 100;
const SIZE: usize = 10_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let work = match std::env::args().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::temp_dir().join("kiln-copy-bench"),
    };
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let context = work.join("context");
    let t = Instant::now();
    make_context(&context)?;
    println!(
        "context: {DIRS} dirs x {FILES} files x {SIZE} B written in {:.2?}",
        t.elapsed()
    );

    let action = copy_dot_to_app();
    let tree = SourceTree {
        root: &context,
        exclude: &[],
        owner: Some((0, 0)),
    };

    for (label, threads) in [("default pool", None), ("1 thread", Some(1))] {
        let mut times = Vec::new();
        for run in 0..3 {
            let rootfs = work.join(format!("rootfs-{}-{run}", threads.unwrap_or(0)));
            fs::create_dir_all(rootfs.join("etc"))?;
            sync();
            let t = Instant::now();
            apply(
                &rootfs,
                &[FileAction::Copy(action.clone())],
                &[None, Some(tree)],
                &ApplyOptions {
                    threads,
                    ..ApplyOptions::default()
                },
            )?;
            times.push(t.elapsed());
            fs::remove_dir_all(&rootfs)?;
        }
        println!("apply COPY . /app ({label}): {}", summary(&times));
    }

    let mut times = Vec::new();
    for run in 0..3 {
        let dest = work.join(format!("cp-{run}"));
        sync();
        let t = Instant::now();
        let status = Command::new("cp")
            .arg("-a")
            .arg(&context)
            .arg(&dest)
            .status()?;
        times.push(t.elapsed());
        if !status.success() {
            return Err("cp -a failed".into());
        }
        fs::remove_dir_all(&dest)?;
    }
    println!("cp -a (reference):             {}", summary(&times));

    let mut times = Vec::new();
    let mut digest = None;
    for _ in 0..3 {
        let t = Instant::now();
        digest = Some(selection_digest(&action, &tree, &mut PlainHasher)?);
        times.push(t.elapsed());
    }
    println!("selection_digest, cold:        {}", summary(&times));

    let mut cache = StatCache::default();
    selection_digest(&action, &tree, &mut cache)?;
    let reads = cache.misses;
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let warm = selection_digest(&action, &tree, &mut cache)?;
        times.push(t.elapsed());
        assert_eq!(
            Some(&warm),
            digest.as_ref(),
            "the stat cache changed the digest"
        );
    }
    assert_eq!(cache.misses, reads, "a warm digest re-read files");
    println!("selection_digest, warm cache:  {}", summary(&times));
    if let Some(d) = digest {
        println!("digest: {d}");
    }
    fs::remove_dir_all(&work)?;
    Ok(())
}

/// `COPY . /app` as the Dockerfile frontend emits it.
fn copy_dot_to_app() -> CopyAction {
    CopyAction {
        source: 1,
        src: "/".into(),
        dest: "/app".into(),
        owner: None,
        mode: None,
        follow_symlinks: true,
        contents_only: true,
        unpack_archives: false,
        create_dest_path: true,
        allow_wildcard: true,
        allow_empty_wildcard: true,
        include_patterns: Vec::new(),
        exclude_patterns: Vec::new(),
        replace_existing: false,
        timestamp: None,
    }
}

/// The workload's shape, with pseudo-random content (same bytes every run).
fn make_context(root: &Path) -> io::Result<()> {
    let mut state: u64 = 20_000;
    let mut data = vec![0u8; SIZE];
    for d in 0..DIRS {
        let dir = root.join(format!("pkg{d:03}")).join("src");
        fs::create_dir_all(&dir)?;
        for f in 0..FILES {
            for chunk in data.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let bytes = state.to_le_bytes();
                chunk.copy_from_slice(&bytes[..chunk.len()]);
            }
            fs::write(dir.join(format!("file{f:03}.dat")), &data)?;
        }
    }
    Ok(())
}

/// Writes dirty pages out so that each run starts from the same state.
fn sync() {
    let _ = Command::new("sync").status();
}

fn summary(times: &[Duration]) -> String {
    let best = times.iter().min().copied().unwrap_or_default();
    let list: Vec<String> = times
        .iter()
        .map(|t| format!("{:.3}s", t.as_secs_f64()))
        .collect();
    format!(
        "best {:.3}s  (runs: {})",
        best.as_secs_f64(),
        list.join(", ")
    )
}

/// A stat cache as an engine keeps one: a file whose inode, size and times
/// are unchanged is not read again.
#[derive(Default)]
struct StatCache {
    known: HashMap<FileStat, Digest>,
    misses: u64,
}

impl FileHasher for StatCache {
    fn file_digest(&mut self, rel: &Path, abs: &Path, stat: &FileStat) -> io::Result<Digest> {
        if let Some(d) = self.known.get(stat) {
            return Ok(d.clone());
        }
        self.misses += 1;
        let d = PlainHasher.file_digest(rel, abs, stat)?;
        self.known.insert(*stat, d.clone());
        Ok(d)
    }
}
