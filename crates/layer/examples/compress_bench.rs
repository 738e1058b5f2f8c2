//! Times `compress_layer` on the big-layer workload: one 1 GiB file, 512 MiB of
//! random bytes then 512 MiB of repeated text (the shape of
//! `/work/shared/workloads/big-layer/make-context`).
//!
//! ```text
//! cargo run --release -p kiln-layer --example compress_bench [--sink] [UPPER_DIR]
//! ```
//!
//! With `UPPER_DIR` (for example a directory made by `make-context`), that
//! directory is the layer; otherwise the file is generated in a temporary
//! directory (random half from a fixed-seed generator, so its bytes differ
//! from the Python script's but compress the same way). Each run writes the
//! blob to a file next to the layer, as a content store would, or discards it
//! with `--sink`. Wall time and process CPU time are printed: on a shared
//! machine the CPU time is the steadier figure.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Instant;

use kiln_layer::{CompressOptions, Compression, LayerStats, compress_layer, tree_digest};

const MIB: usize = 1 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scratch = tempfile::tempdir()?;
    let mut args: Vec<_> = std::env::args_os().skip(1).collect();
    let sink = args.iter().any(|a| a == "--sink");
    args.retain(|a| a != "--sink");
    let upper = match args.into_iter().next() {
        Some(dir) => PathBuf::from(dir),
        None => {
            let upper = scratch.path().join("upper");
            fs::create_dir(&upper)?;
            let started = Instant::now();
            generate(&upper.join("big.bin"))?;
            println!(
                "generated 1 GiB in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            upper
        }
    };
    let blob = scratch.path().join("blob");
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    println!(
        "layer {}, {cores} cores, output {}",
        upper.display(),
        if sink {
            "discarded"
        } else {
            "written to a file"
        }
    );

    // Warm the page cache so the first timed run is not a disk benchmark.
    let started = Instant::now();
    let digest = tree_digest(&upper)?;
    println!(
        "tree_digest {:>6.2} s  {digest}",
        started.elapsed().as_secs_f64()
    );

    let mut results: Vec<(String, LayerStats)> = Vec::new();
    for (name, compression) in [
        ("tar", Compression::Uncompressed),
        ("gzip", Compression::gzip()),
        ("zstd", Compression::zstd()),
    ] {
        let thread_counts: &[usize] = match compression {
            Compression::Uncompressed => &[1],
            _ if cores > 1 => &[1, cores],
            _ => &[1],
        };
        for &threads in thread_counts {
            let opts = CompressOptions {
                compression,
                threads: NonZeroUsize::new(threads),
                ..Default::default()
            };
            // Truncating the previous run's blob would be timed otherwise.
            let _ = fs::remove_file(&blob);
            let out: Box<dyn Write> = if sink {
                Box::new(std::io::sink())
            } else {
                Box::new(BufWriter::with_capacity(MIB, File::create(&blob)?))
            };
            let started = Instant::now();
            let cpu_before = cpu_seconds();
            let stats = compress_layer(&upper, out, &opts)?;
            let secs = started.elapsed().as_secs_f64();
            let cpu = cpu_seconds() - cpu_before;
            println!(
                "{name:<4} threads {threads}  {secs:>6.2} s (cpu {cpu:>5.2} s)  {:>7.1} MiB/s  {:>10} -> {:>10} bytes ({:.3})\n      diff_id {}\n      digest  {}",
                stats.uncompressed_size as f64 / MIB as f64 / secs,
                stats.uncompressed_size,
                stats.size,
                stats.size as f64 / stats.uncompressed_size as f64,
                stats.diff_id,
                stats.digest,
            );
            if let Some((_, previous)) = results.iter().find(|(n, _)| n == name) {
                let same = previous.digest == stats.digest;
                println!(
                    "      same bytes as 1 thread: {}",
                    if same { "yes" } else { "NO" }
                );
            }
            results.push((name.to_string(), stats));
        }
    }
    let diff_ids: Vec<_> = results.iter().map(|(_, s)| &s.diff_id).collect();
    if diff_ids.windows(2).any(|w| w[0] != w[1]) {
        return Err("diff_ids differ between runs".into());
    }
    Ok(())
}

/// User + system CPU time of this process so far, from /proc/self/stat
/// (in USER_HZ = 100 ticks per second, fixed by the Linux ABI).
fn cpu_seconds() -> f64 {
    let Ok(stat) = fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some((_, fields)) = stat.rsplit_once(") ") else {
        return 0.0;
    };
    // After the command name: field 3 is the state, utime and stime are 14 and 15.
    let fields: Vec<&str> = fields.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i - 3)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

/// 512 MiB of xorshift noise, then 512 MiB of the make-context text block.
fn generate(path: &Path) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(4 * MIB, File::create(path)?);
    let mut state = 1024u64.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut chunk = vec![0u8; MIB];
    for _ in 0..512 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.write_all(&chunk)?;
    }
    let mut text: Vec<u8> = (0..18724)
        .flat_map(|i| format!("{i:08} the quick brown fox jumps over the lazy dog\n").into_bytes())
        .collect();
    text.truncate(MIB);
    text.resize(MIB, b'\n');
    for _ in 0..512 {
        out.write_all(&text)?;
    }
    out.into_inner()?.sync_all()
}
