//! Crash safety: a child process writes blobs, layers of many files, records, cache
//! mounts and file hashes in a loop, and prunes now and then; it is killed with
//! SIGKILL at a random moment, and the next open must find a consistent store that
//! keeps working. Several rounds on the same store.

mod common;

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use kiln_graph::Digest;
use kiln_store::{PrunePolicy, Store};

const NAME: &str = "killed_writers_leave_a_consistent_store";
const ROUNDS: usize = 8;

/// The child: write until killed.
fn write_forever(root: &Path) -> ! {
    let store = Store::open(root).expect("child opens store");
    let mut rng = Rng::from_clock();
    let context = root.with_extension("context");
    let mut previous: Option<Digest> = None;
    for i in 0u64.. {
        let tag = format!("{} {i}", rng.next());
        // A blob of up to 2 MiB, streamed.
        let size = rng.range(0, 2 << 20) as usize;
        let content: Vec<u8> = tag.bytes().cycle().take(size).collect();
        let blob = stream_blob(&store, &content, &mut rng);

        // A layer of many files; now and then one that exists already.
        let files = if i % 5 == 4 {
            layer_files("recurring layer", 300)
        } else {
            layer_files(&tag, rng.range(100, 400) as usize)
        };
        let layer = write_layer(&store, &files);
        put_tarball(&store, &layer.id, &blob, content.len() as u64);

        let mut chain = previous.iter().cloned().collect::<Vec<_>>();
        chain.push(layer.id.clone());
        store
            .put_cache_record(&record(&tag, "[crash] RUN step", chain))
            .expect("put record");
        previous = Some(layer.id);

        if i % 3 == 0 {
            let mount = store
                .cache_mount(&format!("mount {}", i % 4))
                .expect("cache mount");
            fs::write(mount.join("data"), &tag).expect("write in mount");
        }
        if i % 4 == 1 {
            let mut hashes = store.file_hash_cache(&context).expect("file hash cache");
            for n in 0..200 {
                let rel = format!("f{n}");
                let path = context.join(&rel);
                let meta = fs::symlink_metadata(&path).expect("stat context file");
                if hashes.get(Path::new(&rel), &meta).is_none() {
                    let digest = Digest::of(&fs::read(&path).expect("read context file"));
                    hashes.put(Path::new(&rel), &meta, &digest);
                }
            }
            hashes.save().expect("save file hashes");
        }
        if i % 6 == 5 {
            // Keep the store small, so prune has layers and blobs to delete.
            let usage = store.usage().expect("usage");
            store
                .prune(&PrunePolicy {
                    max_bytes: Some((usage.blob_bytes + usage.layer_bytes) / 2),
                    cache_mounts_unused_for: Some(Duration::from_millis(rng.range(0, 500))),
                    ..PrunePolicy::default()
                })
                .expect("prune");
        }
    }
    unreachable!("the loop only ends when the process is killed")
}

/// After a crash: the store opens, is consistent, and works.
fn check_and_use(root: &Path, round: usize) {
    let store = Store::open(root).expect("open after crash");
    let problems = check_consistency(root);
    assert!(problems.is_empty(), "round {round}: {problems:#?}");

    // Every record's chain is usable.
    let records = store
        .cache_records_for_vertex_name("[crash] RUN step", 100_000)
        .expect("list records");
    for rec in &records {
        for layer in &rec.layers {
            assert!(store.layer(layer).expect("layer").is_some());
            assert!(store.layer_path(layer).is_dir());
        }
    }

    // And the store keeps working.
    let mut rng = Rng::new(round as u64 + 7);
    let content = format!("after round {round}").repeat(10_000).into_bytes();
    let blob = stream_blob(&store, &content, &mut rng);
    assert_eq!(store.read_blob(&blob).expect("read back"), content);
    let layer = write_layer(&store, &layer_files(&format!("after round {round}"), 50));
    put_tarball(&store, &layer.id, &blob, content.len() as u64);
    let rec = record(
        &format!("after round {round}"),
        "[check] RUN",
        vec![layer.id],
    );
    assert!(store.put_cache_record(&rec).expect("put"));
    assert_eq!(store.cache_record(&rec.key).expect("get"), Some(rec));
    assert!(check_consistency(root).is_empty());
}

#[test]
fn killed_writers_leave_a_consistent_store() {
    if let Some((_, root)) = child_role() {
        write_forever(&root);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("state");
    let context = root.with_extension("context");
    fs::create_dir_all(&context).expect("context dir");
    for n in 0..200 {
        fs::write(context.join(format!("f{n}")), format!("context file {n}")).expect("write");
    }
    let mut rng = Rng::from_clock();
    let mut records_seen = 0;
    let mut rounds_with_leftovers = 0;
    for round in 0..ROUNDS {
        let mut child = child_command(NAME, "writer", &root)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn writer");
        // Let it get going (store open, first writes), then kill it at a random moment.
        let delay = Duration::from_millis(rng.range(150, 900));
        let started = Instant::now();
        while started.elapsed() < delay {
            if let Some(status) = child.try_wait().expect("poll child") {
                let mut stderr = String::new();
                if let Some(mut e) = child.stderr.take() {
                    std::io::Read::read_to_string(&mut e, &mut stderr).ok();
                }
                panic!("writer exited by itself ({status}): {stderr}");
            }
            thread::sleep(Duration::from_millis(5));
        }
        child.kill().expect("SIGKILL the writer");
        child.wait().expect("reap the writer");
        let leftovers = ["ingest", "tmp"]
            .iter()
            .map(|d| fs::read_dir(root.join(d)).map_or(0, |e| e.count()))
            .sum::<usize>();
        if leftovers > 0 {
            rounds_with_leftovers += 1;
        }
        check_and_use(&root, round);
        let store = Store::open(&root).expect("open");
        records_seen += store.usage().expect("usage").cache_records;
    }
    assert!(records_seen > 0, "the writer never got as far as a record");
    // The kills landed mid-write (the writer spends nearly all its time with a blob
    // or a work dir open), so recovery had something to do.
    assert!(rounds_with_leftovers > 0, "no kill interrupted a write");
    println!(
        "{ROUNDS} rounds, {rounds_with_leftovers} interrupted a write, {records_seen} records seen"
    );
}
