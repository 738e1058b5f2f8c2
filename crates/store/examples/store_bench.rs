//! Times the store's hot paths:
//!
//! ```text
//! cargo run --release -p kiln-store --example store_bench [DIR]
//! ```
//!
//! DIR (default: a temp dir) should be on the file system the store will live on.

use std::error::Error;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kiln_graph::Digest;
use kiln_store::{CacheRecord, KeyComponent, Store};

const FILES: usize = 20_000;
const RECORDS: usize = 1_000;

fn main() -> Result<(), Box<dyn Error>> {
    let base = match std::env::args_os().nth(1) {
        Some(dir) => tempfile::tempdir_in(PathBuf::from(dir))?,
        None => tempfile::tempdir()?,
    };
    let root = base.path().join("state");
    let store = Store::open(&root)?;

    // STORE_BENCH_ONLY=layers|hashes|records|blobs runs one section.
    let only = std::env::var("STORE_BENCH_ONLY").ok();
    let run = |section: &str| only.as_deref().is_none_or(|o| o == section);
    if run("layers") {
        layer_commit(&store)?;
    }
    if run("hashes") {
        file_hashes(&store, base.path())?;
    }
    if run("records") {
        record_lookups(&store)?;
    }
    if run("blobs") {
        blob_writes(&store)?;
    }
    Ok(())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn layer_commit(store: &Store) -> Result<(), Box<dyn Error>> {
    let mut commits = Vec::new();
    let mut duplicates = Vec::new();
    let mut fills = Vec::new();
    for round in 0..5 {
        let work = store.work_dir()?;
        let started = Instant::now();
        fill(work.upper(), round)?;
        fills.push(started.elapsed());
        let id = Digest::of(format!("layer {round}").as_bytes());
        let started = Instant::now();
        work.commit(&id)?;
        commits.push(started.elapsed());

        // The same id again: the copy is discarded (its 20,000 files removed).
        let work = store.work_dir()?;
        fill(work.upper(), round)?;
        let started = Instant::now();
        work.commit(&id)?;
        duplicates.push(started.elapsed());
    }
    println!("layer of {FILES} files:");
    println!(
        "  fill the upper dir (not the store)   {}",
        ms(median(fills))
    );
    println!(
        "  commit (rename + row)                {}",
        ms(median(commits))
    );
    println!(
        "  commit of an existing id (discard)   {}",
        ms(median(duplicates))
    );
    let started = Instant::now();
    let usage = store.usage()?;
    println!(
        "  first usage(): measure 5 layers      {} ({} bytes)",
        ms(started.elapsed()),
        usage.layer_bytes
    );
    Ok(())
}

fn fill(upper: &Path, round: usize) -> std::io::Result<()> {
    for d in 0..100 {
        fs::create_dir(upper.join(format!("d{d}")))?;
    }
    for i in 0..FILES {
        fs::write(
            upper.join(format!("d{}/f{i}", i % 100)),
            format!("{round} {i}"),
        )?;
    }
    Ok(())
}

fn file_hashes(store: &Store, base: &Path) -> Result<(), Box<dyn Error>> {
    let ctx = base.join("context");
    for d in 0..100 {
        fs::create_dir_all(ctx.join(format!("d{d}")))?;
    }
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    let mut rels = Vec::with_capacity(FILES);
    for i in 0..FILES {
        let rel = PathBuf::from(format!("d{}/file-{i}.go", i % 100));
        let path = ctx.join(&rel);
        fs::write(&path, format!("package main // {i}"))?;
        fs::File::options()
            .write(true)
            .open(&path)?
            .set_modified(old)?;
        rels.push(rel);
    }
    let metas: Vec<fs::Metadata> = rels
        .iter()
        .map(|r| fs::symlink_metadata(ctx.join(r)))
        .collect::<Result<_, _>>()?;

    let mut cache = store.file_hash_cache(&ctx)?;
    for (rel, meta) in rels.iter().zip(&metas) {
        cache.put(rel, meta, &Digest::of(rel.as_os_str().as_encoded_bytes()));
    }
    let started = Instant::now();
    cache.save()?;
    let first_save = started.elapsed();

    let (mut loads, mut lookups, mut saves) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        let started = Instant::now();
        let mut cache = store.file_hash_cache(&ctx)?;
        loads.push(started.elapsed());
        let started = Instant::now();
        let hits = rels
            .iter()
            .zip(&metas)
            .filter(|(rel, meta)| cache.get(rel, meta).is_some())
            .count();
        lookups.push(started.elapsed());
        assert_eq!(hits, FILES);
        let started = Instant::now();
        cache.save()?;
        saves.push(started.elapsed());
    }

    // Every entry changed: the worst case for save.
    let mut cache = store.file_hash_cache(&ctx)?;
    for (rel, meta) in rels.iter().zip(&metas) {
        cache.put(rel, meta, &Digest::of(b"changed"));
    }
    let started = Instant::now();
    cache.save()?;
    let rewrite = started.elapsed();

    println!("file hash cache, {FILES} entries:");
    println!(
        "  load                                 {}",
        ms(median(loads))
    );
    println!(
        "  {FILES} lookups (all hits)          {}",
        ms(median(lookups))
    );
    println!(
        "  save, nothing changed                {}",
        ms(median(saves))
    );
    println!("  save, all new (first build)          {}", ms(first_save));
    println!("  save, all changed                    {}", ms(rewrite));
    Ok(())
}

fn record_lookups(store: &Store) -> Result<(), Box<dyn Error>> {
    let layers: Vec<Digest> = (0..10)
        .map(|i| -> Result<Digest, Box<dyn Error>> {
            let id = Digest::of(format!("record layer {i}").as_bytes());
            store.work_dir()?.commit(&id)?;
            Ok(id)
        })
        .collect::<Result<_, _>>()?;
    let keys: Vec<Digest> = (0..RECORDS)
        .map(|i| Digest::of(format!("key {i}").as_bytes()))
        .collect();
    let started = Instant::now();
    for (i, key) in keys.iter().enumerate() {
        store.put_cache_record(&CacheRecord {
            key: key.clone(),
            vertex: Digest::of(format!("vertex {i}").as_bytes()),
            name: format!("[build {}/9] RUN step", i % 9),
            output: Digest::of(format!("output {i}").as_bytes()),
            layers: layers[..1 + i % 10].to_vec(),
            components: vec![
                KeyComponent::new("op", Digest::of(b"op")),
                KeyComponent::new("input 0", Digest::of(format!("in {i}").as_bytes())),
                KeyComponent::new("file /src/main.rs", Digest::of(b"src")),
            ],
            created_at_ns: i as i64,
        })?;
    }
    let puts = started.elapsed();

    // Fresh records: lookups only read.
    let started = Instant::now();
    for key in &keys {
        assert!(store.cache_record(key)?.is_some());
    }
    let fresh = started.elapsed();

    // Records last used long ago: every lookup also writes last_used.
    let hours_ago = 3_600_000_000_000i64;
    let stale_conn = rusqlite::Connection::open(store.root().join("meta.db"))?;
    stale_conn.busy_timeout(Duration::from_secs(30))?;
    stale_conn.execute("UPDATE cache_records SET last_used_ns = ?1", [hours_ago])?;
    drop(stale_conn);
    let started = Instant::now();
    for key in &keys {
        assert!(store.cache_record(key)?.is_some());
    }
    let stale = started.elapsed();

    let started = Instant::now();
    let misses = (0..RECORDS)
        .filter(|i| {
            store
                .cache_record(&Digest::of(format!("absent {i}").as_bytes()))
                .is_ok_and(|r| r.is_none())
        })
        .count();
    let miss = started.elapsed();
    assert_eq!(misses, RECORDS);

    println!("cache records ({RECORDS}, 1-10 layers each):");
    println!("  {RECORDS} puts (one transaction each)   {}", ms(puts));
    println!("  {RECORDS} lookups, hits                 {}", ms(fresh));
    println!("  {RECORDS} lookups, hits + mark used     {}", ms(stale));
    println!("  {RECORDS} lookups, misses               {}", ms(miss));
    Ok(())
}

fn blob_writes(store: &Store) -> Result<(), Box<dyn Error>> {
    let content: Vec<u8> = (0..64u32 << 20).map(|i| (i * 2654435761) as u8).collect();
    let started = Instant::now();
    let digest = store.write_blob(&content, None)?;
    let write = started.elapsed();
    let started = Instant::now();
    store.read_blob(&digest)?;
    let read = started.elapsed();
    let mb = content.len() as f64 / (1 << 20) as f64;
    println!("blob of 64 MiB:");
    println!(
        "  write (hash, fsync, rename)          {} ({:.0} MiB/s)",
        ms(write),
        mb / write.as_secs_f64()
    );
    println!(
        "  read + verify                        {} ({:.0} MiB/s)",
        ms(read),
        mb / read.as_secs_f64()
    );
    Ok(())
}
