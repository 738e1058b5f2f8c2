//! Shared by the integration tests: content that can be checked from what is on disk,
//! an independent consistency checker that reads the directory and the database
//! itself, and re-running the test binary as a child process.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_graph::Digest;
use kiln_store::{CacheRecord, KeyComponent, Layer, LayerBlob, Store};
use sha2::{Digest as _, Sha256};

const ROLE_ENV: &str = "KILN_STORE_TEST_ROLE";
const ROOT_ENV: &str = "KILN_STORE_TEST_ROOT";

/// When this process is a child started by [`child_command`]: its role and store root.
pub fn child_role() -> Option<(String, PathBuf)> {
    let role = std::env::var(ROLE_ENV).ok()?;
    let root = std::env::var_os(ROOT_ENV)?;
    Some((role, PathBuf::from(root)))
}

/// A command that re-runs this test binary's test `test_name` as a child with `role`.
pub fn child_command(test_name: &str, role: &str, root: &Path) -> Command {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(ROOT_ENV, root);
    cmd
}

/// A small deterministic random generator (xorshift64*), so the tests need no crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn from_clock() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng::new(nanos ^ (u64::from(std::process::id()) << 32))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// The files of a test layer: `count` files in a few subdirectories, content from `tag`.
pub fn layer_files(tag: &str, count: usize) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|i| {
            (
                format!("d{}/f{i}", i % 7),
                format!("{tag} file {i}\n").repeat(1 + i % 5).into_bytes(),
            )
        })
        .collect()
}

/// The id of a test layer: a digest of its (path, content) pairs in path order. The
/// checker recomputes it from the directory, so a layer committed incompletely shows.
pub fn content_id(files: &[(String, Vec<u8>)]) -> Digest {
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hasher = Sha256::new();
    for (path, content) in sorted {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update((content.len() as u64).to_le_bytes());
        hasher.update(content);
    }
    Digest::from_sha256(hasher.finalize().into())
}

/// Writes `files` into a fresh work dir and commits it under their content id.
pub fn write_layer(store: &Store, files: &[(String, Vec<u8>)]) -> Layer {
    let work = store.work_dir().expect("work dir");
    for (path, content) in files {
        let path = work.upper().join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir in upper");
        }
        fs::write(&path, content).expect("write file in upper");
    }
    let id = content_id(files);
    let layer = work.commit(&id).expect("commit layer");
    assert_eq!(layer.id, id);
    layer
}

/// The regular files under `dir` as (relative path, content).
pub fn dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in fs::read_dir(dir).expect("read layer dir") {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            if entry.file_type().expect("file type").is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path.strip_prefix(base).expect("under base");
                out.push((
                    rel.to_string_lossy().into_owned(),
                    fs::read(&path).expect("read file"),
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

/// The output digest the tests give a record: a digest of its layer chain.
pub fn chain_output(layers: &[Digest]) -> Digest {
    let joined: Vec<String> = layers.iter().map(|d| d.to_string()).collect();
    Digest::of(joined.join(",").as_bytes())
}

/// A test record over `layers`.
pub fn record(key_tag: &str, name: &str, layers: Vec<Digest>) -> CacheRecord {
    CacheRecord {
        key: Digest::of(key_tag.as_bytes()),
        vertex: Digest::of(format!("vertex of {key_tag}").as_bytes()),
        name: name.to_string(),
        output: chain_output(&layers),
        components: vec![
            KeyComponent::new("op", Digest::of(name.as_bytes())),
            KeyComponent::new("input 0", Digest::of(key_tag.as_bytes())),
        ],
        layers,
        created_at_ns: 1,
    }
}

/// Streams `content` into the store in uneven chunks and commits it.
pub fn stream_blob(store: &Store, content: &[u8], rng: &mut Rng) -> Digest {
    let mut writer = store.blob_writer().expect("blob writer");
    let mut rest = content;
    while !rest.is_empty() {
        let n = (rng.range(1, 70_000) as usize).min(rest.len());
        writer.write_all(&rest[..n]).expect("write blob");
        rest = &rest[n..];
    }
    writer
        .commit(Some(&Digest::of(content)), Some(content.len() as u64))
        .expect("commit blob")
}

/// Records `blob` as the uncompressed tarball of `layer`.
pub fn put_tarball(store: &Store, layer: &Digest, blob: &Digest, size: u64) {
    store
        .put_layer_blob(
            layer,
            "none",
            &LayerBlob {
                digest: blob.clone(),
                diff_id: blob.clone(),
                size,
                media_type: "application/vnd.oci.image.layer.v1.tar".into(),
            },
        )
        .expect("put layer blob");
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("list {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

fn strings(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).expect("prepare");
    stmt.query_map([], |row| row.get::<_, String>(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Checks the store at `root` against its promises, reading the files and the
/// database directly (not through the crate), and returns every problem found. Call
/// it while no process is writing (e.g. with one `Store` open that did recovery).
pub fn check_consistency(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let conn = rusqlite::Connection::open_with_flags(
        root.join("meta.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open meta.db");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    if integrity != "ok" {
        problems.push(format!("integrity_check: {integrity}"));
    }

    for dir in ["ingest", "tmp"] {
        let left = names(&root.join(dir));
        if !left.is_empty() {
            problems.push(format!("leftovers in {dir}/: {left:?}"));
        }
    }

    // Layers: one row exactly per directory, each directory complete.
    let rows: BTreeSet<String> = strings(&conn, "SELECT id FROM layers")
        .into_iter()
        .map(|id| id.trim_start_matches("sha256:").to_string())
        .collect();
    let dirs = names(&root.join("layers"));
    for missing in rows.difference(&dirs) {
        problems.push(format!("layer row without a directory: {missing}"));
    }
    for extra in dirs.difference(&rows) {
        problems.push(format!("layer directory without a row: {extra}"));
    }
    for hex in &dirs {
        let actual = content_id(&dir_files(&root.join("layers").join(hex)));
        if actual.hex() != hex {
            problems.push(format!(
                "layer {hex} is incomplete: its content is {actual}"
            ));
        }
    }

    // Records: every layer committed, the chain complete.
    for (key, layer) in query_pairs(
        &conn,
        "SELECT record_key, layer_id FROM cache_record_layers
         WHERE layer_id NOT IN (SELECT id FROM layers)",
    ) {
        problems.push(format!("record {key} names missing layer {layer}"));
    }
    for (key, output) in query_pairs(&conn, "SELECT key, output FROM cache_records") {
        let layers: Vec<Digest> = {
            let mut stmt = conn
                .prepare("SELECT layer_id FROM cache_record_layers WHERE record_key = ?1 ORDER BY position")
                .expect("prepare");
            stmt.query_map([&key], |row| row.get::<_, String>(0))
                .expect("query")
                .map(|r| r.expect("row").parse().expect("digest"))
                .collect()
        };
        if layers.is_empty() || chain_output(&layers).to_string() != output {
            problems.push(format!(
                "record {key} has an incomplete layer chain ({} layers)",
                layers.len()
            ));
        }
    }

    // Blobs: each named by its content; every referenced blob present with its size.
    for hex in names(&root.join("blobs/sha256")) {
        let content = fs::read(root.join("blobs/sha256").join(&hex)).expect("read blob");
        let actual = Digest::of(&content);
        if actual.hex() != hex {
            problems.push(format!("blob {hex} holds content {actual}"));
        }
    }
    let mut stmt = conn
        .prepare("SELECT blob_digest, size FROM layer_blobs")
        .expect("prepare");
    let blobs: Vec<(String, i64)> = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    for (digest, size) in blobs {
        let path = root
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        match fs::metadata(&path) {
            Ok(meta) if meta.len() as i64 == size => {}
            Ok(meta) => problems.push(format!(
                "layer blob {digest}: size {} != {size}",
                meta.len()
            )),
            Err(_) => problems.push(format!("layer blob {digest} missing")),
        }
    }

    // Cache mounts: rows and directories agree.
    let mount_rows: BTreeSet<String> = strings(&conn, "SELECT dir FROM cache_mounts")
        .into_iter()
        .collect();
    let mount_dirs = names(&root.join("cache-mounts"));
    if mount_rows != mount_dirs {
        problems.push(format!(
            "cache mounts: rows {mount_rows:?} vs dirs {mount_dirs:?}"
        ));
    }
    problems
}

fn query_pairs(conn: &rusqlite::Connection, sql: &str) -> Vec<(String, String)> {
    let mut stmt = conn.prepare(sql).expect("prepare");
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}
