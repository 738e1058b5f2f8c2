//! Several writers on one store at once: child processes (this test binary re-run with
//! a role), and several `Store`s in one process, which must behave the same.

mod common;

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::*;
use kiln_store::{PrunePolicy, Store};

const WORKERS: usize = 4;
const ITERATIONS: usize = 25;

/// What every writer does: blobs, layers and records that every writer shares, and
/// some of its own. Returns how many of the shared records this writer stored first.
fn work(store: &Store, worker: usize) -> usize {
    let mut rng = Rng::new(worker as u64 + 1);
    let mut won = 0;
    for i in 0..ITERATIONS {
        let shared_blob = format!("shared blob {i}\n").repeat(1000).into_bytes();
        let shared_digest = store.write_blob(&shared_blob, None).expect("shared blob");
        let own_blob = format!("worker {worker} blob {i}\n")
            .repeat(3000)
            .into_bytes();
        let own_digest = stream_blob(store, &own_blob, &mut rng);

        let shared_layer = write_layer(store, &layer_files(&format!("shared {i}"), 60));
        let own_layer = write_layer(store, &layer_files(&format!("worker {worker} {i}"), 60));
        put_tarball(
            store,
            &shared_layer.id,
            &shared_digest,
            shared_blob.len() as u64,
        );
        put_tarball(store, &own_layer.id, &own_digest, own_blob.len() as u64);

        let shared = record(
            &format!("shared record {i}"),
            "[build 1/2] RUN make",
            vec![shared_layer.id.clone()],
        );
        if store.put_cache_record(&shared).expect("put shared record") {
            won += 1;
        }
        let own = record(
            &format!("worker {worker} record {i}"),
            "[build 2/2] RUN make install",
            vec![shared_layer.id.clone(), own_layer.id.clone()],
        );
        assert!(store.put_cache_record(&own).expect("put own record"));
        let found = store.cache_record(&shared.key).expect("lookup");
        assert_eq!(found.map(|r| r.layers), Some(shared.layers.clone()));

        let mount = store.cache_mount("/root/.cache").expect("cache mount");
        fs::write(mount.join(format!("worker-{worker}")), i.to_string()).expect("write in mount");
    }
    won
}

/// Everything every writer stored is there, once, and the store is consistent.
fn verify(root: &Path) {
    let store = Store::open(root).expect("open after writers");
    let problems = check_consistency(root);
    assert!(problems.is_empty(), "{problems:#?}");
    for i in 0..ITERATIONS {
        let shared_layer = content_id(&layer_files(&format!("shared {i}"), 60));
        let shared = store
            .cache_record(&record(&format!("shared record {i}"), "", vec![]).key)
            .expect("lookup")
            .expect("shared record stored");
        assert_eq!(shared.layers, vec![shared_layer.clone()]);
        for worker in 0..WORKERS {
            let own_layer = content_id(&layer_files(&format!("worker {worker} {i}"), 60));
            let own = store
                .cache_record(&record(&format!("worker {worker} record {i}"), "", vec![]).key)
                .expect("lookup")
                .expect("own record stored");
            assert_eq!(own.layers, vec![shared_layer.clone(), own_layer.clone()]);
            assert_eq!(store.layer_blobs(&own_layer).expect("blobs").len(), 1);
        }
    }
    let usage = store.usage().expect("usage");
    assert_eq!(usage.layers as usize, ITERATIONS * (WORKERS + 1));
    assert_eq!(usage.cache_records as usize, ITERATIONS * (WORKERS + 1));
    assert_eq!(usage.blobs as usize, ITERATIONS * (WORKERS + 1));
    let mount = store.cache_mount("/root/.cache").expect("cache mount");
    assert_eq!(fs::read_dir(mount).expect("list mount").count(), WORKERS);
}

#[test]
fn concurrent_processes_share_one_store() {
    const NAME: &str = "concurrent_processes_share_one_store";
    if let Some((role, root)) = child_role() {
        let worker: usize = role.parse().expect("worker number");
        let store = Store::open(&root).expect("child opens store");
        println!("WON {}", work(&store, worker));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("state");
    let children: Vec<_> = (0..WORKERS)
        .map(|w| {
            child_command(NAME, &w.to_string(), &root)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn child")
        })
        .collect();
    let mut won = 0;
    for child in children {
        let out = child.wait_with_output().expect("wait for child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        // libtest may print "test NAME ... " on the same line first.
        won += stdout
            .lines()
            .find_map(|l| l.split_once("WON ").map(|(_, n)| n))
            .and_then(|n| n.split_whitespace().next()?.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("child did not report its wins:\n{stdout}"));
    }
    assert_eq!(
        won, ITERATIONS,
        "each shared record is stored by exactly one writer"
    );
    verify(&root);
}

#[test]
fn several_stores_in_one_process_behave_like_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Arc::new(dir.path().join("state"));
    let threads: Vec<_> = (0..WORKERS)
        .map(|w| {
            let root = Arc::clone(&root);
            thread::spawn(move || {
                let store = Store::open(&root).expect("open");
                work(&store, w)
            })
        })
        .collect();
    let won: usize = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    assert_eq!(won, ITERATIONS);
    verify(&root);
}

#[test]
fn prune_waits_until_every_other_store_is_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    let builder = Store::open(&root).expect("open");
    let work = builder.work_dir().expect("work dir");
    fs::write(work.upper().join("f"), "in progress").expect("write");
    let pruned = Arc::new(AtomicBool::new(false));
    let pruner = {
        let pruned = Arc::clone(&pruned);
        let root = root.clone();
        thread::spawn(move || {
            let store = Store::open(&root).expect("open");
            let report = store.prune(&PrunePolicy::default()).expect("prune");
            pruned.store(true, Ordering::SeqCst);
            report
        })
    };
    thread::sleep(Duration::from_millis(300));
    assert!(
        !pruned.load(Ordering::SeqCst),
        "prune ran while a build was using the store"
    );
    assert!(work.upper().join("f").exists());
    let layer = work
        .commit(&kiln_graph::Digest::of(b"unreferenced"))
        .expect("commit");
    drop(builder);
    let report = pruner.join().expect("pruner");
    assert!(pruned.load(Ordering::SeqCst));
    // The layer no record names is collected once the build is gone.
    assert_eq!(report.layers, 1);
    assert!(!layer.path.exists());
}
