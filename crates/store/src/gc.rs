//! Disk usage and garbage collection: [`Store::usage`] and [`Store::prune`].
//!
//! Roots are the cache records and the image resolutions. A layer lives while a
//! record names it; a blob lives while a live layer's tarball or an image's manifest
//! or config is that blob. Everything else goes.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use rusqlite::params;

use crate::db::db_err;
use crate::error::{IoContext, StoreError};
use crate::fsutil::{self, now_ns};
use crate::recovery::{self, list_names};
use crate::store::{BLOBS, CACHE_MOUNTS, Inner, LAYERS, Store};

/// What [`Store::prune`] removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Drop least-recently-used cache records until blobs and layers together take at
    /// most this many bytes. `None`: drop no record for size.
    pub max_bytes: Option<u64>,
    /// Drop every cache record and image resolution.
    pub all: bool,
    /// Remove cache mounts not used for this long (`Duration::ZERO`: all of them).
    /// `None`: keep every cache mount.
    pub cache_mounts_unused_for: Option<Duration>,
    /// Forget the file hashes of build contexts not used for this long, or no longer
    /// there.
    pub file_hashes_unused_for: Duration,
}

impl Default for PrunePolicy {
    /// Remove only what nothing references; forget contexts unused for 30 days.
    fn default() -> PrunePolicy {
        PrunePolicy {
            max_bytes: None,
            all: false,
            cache_mounts_unused_for: None,
            file_hashes_unused_for: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Cache records dropped.
    pub records: usize,
    /// Image resolutions dropped.
    pub images: usize,
    /// Layer directories removed.
    pub layers: usize,
    /// Blobs removed.
    pub blobs: usize,
    /// Cache mounts removed.
    pub cache_mounts: usize,
    /// Build contexts whose file hashes were forgotten.
    pub file_hash_roots: usize,
    /// Unfinished work of crashed processes removed.
    pub leftovers: usize,
    /// Disk space given back by removed layers, blobs and cache mounts.
    pub bytes_freed: u64,
}

/// How much the store holds (disk usage, like `du`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Number of blobs.
    pub blobs: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Number of committed layers.
    pub layers: u64,
    /// Their bytes.
    pub layer_bytes: u64,
    /// Number of cache mounts.
    pub cache_mounts: u64,
    /// Their bytes.
    pub cache_mount_bytes: u64,
    /// Number of cache records.
    pub cache_records: u64,
    /// Number of image resolutions.
    pub images: u64,
}

impl Usage {
    /// Blobs, layers and cache mounts together.
    pub fn total_bytes(&self) -> u64 {
        self.blob_bytes + self.layer_bytes + self.cache_mount_bytes
    }
}

impl Store {
    /// Counts what the store holds and the disk space it takes. Layers are measured
    /// once (they are immutable) and the figure kept; cache mounts are walked each
    /// time.
    pub fn usage(&self) -> Result<Usage, StoreError> {
        let inner = &self.inner;
        let layer_sizes = measure_layers(inner)?;
        let blobs = blob_sizes(inner)?;
        let mut usage = Usage {
            blobs: blobs.len() as u64,
            blob_bytes: blobs.values().sum(),
            layers: layer_sizes.len() as u64,
            layer_bytes: layer_sizes.values().sum(),
            ..Usage::default()
        };
        let mounts = inner.dir(CACHE_MOUNTS);
        for name in list_names(&mounts)? {
            let path = mounts.join(name);
            usage.cache_mounts += 1;
            usage.cache_mount_bytes += fsutil::disk_usage(&path).io_context("measure", &path)?;
        }
        let conn = inner.conn();
        let count = |table: &str| -> Result<u64, StoreError> {
            conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(db_err(&inner.db_path, format!("count {table}")))
        };
        usage.cache_records = count("cache_records")?;
        usage.images = count("images")?;
        Ok(usage)
    }

    /// Garbage-collects the store.
    ///
    /// Waits for the exclusive lock, that is until every other `Store` on this
    /// directory, in this process or another, is closed, so no build is using
    /// anything. Within this process, call it when no build is running on this
    /// `Store` either: a layer or blob a running build has made but not yet recorded
    /// is unreferenced, and goes.
    ///
    /// In order: recovery (leftovers of crashed processes); drop every record and
    /// image resolution if `all`, else least-recently-used records while blobs and
    /// layers take more than `max_bytes`; then remove the layers no remaining record
    /// names, the blobs nothing references, stale file hashes and, if asked, unused
    /// cache mounts.
    pub fn prune(&self, policy: &PrunePolicy) -> Result<PruneReport, StoreError> {
        let inner = &self.inner;
        let _exclusive = inner.lock_exclusive()?;
        let _no_commits = inner.gc_write();
        let recovered = recovery::recover(inner)?;
        let mut report = PruneReport {
            leftovers: recovered.leftovers + recovered.layer_dirs,
            records: recovered.records,
            ..PruneReport::default()
        };

        let layer_sizes = measure_layers(inner)?;
        let blob_sizes = blob_sizes(inner)?;
        let graph = load_graph(inner)?;
        let plan = plan(&graph, &layer_sizes, &blob_sizes, policy);

        let now = now_ns();
        let stale_mounts = match policy.cache_mounts_unused_for {
            None => Vec::new(),
            Some(age) => {
                let cutoff = now.saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX));
                select_strings(
                    inner,
                    "SELECT dir FROM cache_mounts WHERE last_used_ns <= ?1",
                    cutoff,
                )?
            }
        };
        let hash_cutoff = now.saturating_sub(
            i64::try_from(policy.file_hashes_unused_for.as_nanos()).unwrap_or(i64::MAX),
        );
        let stale_roots = stale_file_hash_roots(inner, hash_cutoff, policy.all)?;

        inner.write_tx("prune", |tx| {
            let err = |what: &str| db_err(&inner.db_path, format!("prune: {what}"));
            let run = |sql: &str, values: &[String], what: &str| -> Result<usize, StoreError> {
                let mut stmt = tx.prepare(sql).map_err(err(what))?;
                let mut n = 0;
                for value in values {
                    n += stmt.execute([value]).map_err(err(what))?;
                }
                Ok(n)
            };
            report.records += run(
                "DELETE FROM cache_records WHERE key = ?1",
                &plan.records,
                "delete records",
            )?;
            run(
                "DELETE FROM layers WHERE id = ?1",
                &plan.layers,
                "delete layers",
            )?;
            run(
                "DELETE FROM layer_blobs WHERE layer_id = ?1",
                &plan.layers_without_blobs,
                "delete layer blobs",
            )?;
            run(
                "DELETE FROM cache_mounts WHERE dir = ?1",
                &stale_mounts,
                "delete cache mounts",
            )?;
            if policy.all {
                report.images = tx
                    .execute("DELETE FROM images", [])
                    .map_err(err("delete images"))?;
            }
            // Memos are small and cheap to recompute: they go with `all`, and
            // otherwise when as old as forgotten file hashes.
            let memo_cutoff = if policy.all { i64::MAX } else { hash_cutoff };
            tx.execute(
                "DELETE FROM digest_memos WHERE last_used_ns <= ?1",
                [memo_cutoff],
            )
            .map_err(err("delete memos"))?;
            let mut forget = tx
                .prepare("DELETE FROM file_hash_roots WHERE id = ?1")
                .map_err(err("delete file hashes"))?;
            for id in &stale_roots {
                report.file_hash_roots +=
                    forget.execute([id]).map_err(err("delete file hashes"))?;
            }
            Ok(())
        })?;

        let layers_dir = inner.dir(LAYERS);
        for id in &plan.layers {
            let hex = id.strip_prefix("sha256:").unwrap_or(id);
            inner.discard_dir(&layers_dir.join(hex))?;
            report.layers += 1;
            report.bytes_freed += layer_sizes.get(id).copied().unwrap_or(0);
        }
        let blobs_dir = inner.dir(BLOBS);
        for digest in &plan.blobs {
            let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
            let path = blobs_dir.join(hex);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).io_context("remove blob", path),
            }
            report.blobs += 1;
            report.bytes_freed += blob_sizes.get(digest).copied().unwrap_or(0);
        }
        let mounts_dir = inner.dir(CACHE_MOUNTS);
        for dir in &stale_mounts {
            let path = mounts_dir.join(dir);
            report.bytes_freed += fsutil::disk_usage(&path).unwrap_or(0);
            inner.discard_dir(&path)?;
            report.cache_mounts += 1;
        }
        Ok(report)
    }
}

/// Layer ids (as stored) and their sizes; measures and records the ones never
/// measured.
fn measure_layers(inner: &Inner) -> Result<HashMap<String, u64>, StoreError> {
    let rows: Vec<(String, Option<i64>)> = {
        let conn = inner.conn();
        let mut stmt = conn
            .prepare_cached("SELECT id, size_bytes FROM layers")
            .map_err(db_err(&inner.db_path, "list layers"))?;
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(db_err(&inner.db_path, "list layers"))?
    };
    let mut sizes = HashMap::with_capacity(rows.len());
    let mut measured = Vec::new();
    let layers_dir = inner.dir(LAYERS);
    for (id, size) in rows {
        let size = match size {
            Some(size) => size as u64,
            None => {
                let hex = id.strip_prefix("sha256:").unwrap_or(&id);
                let path = layers_dir.join(hex);
                let size = match fsutil::disk_usage(&path) {
                    Ok(size) => size,
                    // Removed by a concurrent prune elsewhere cannot happen (it needs
                    // the exclusive lock); a missing dir is recovery's business.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                    Err(e) => return Err(e).io_context("measure layer", path),
                };
                measured.push((id.clone(), size));
                size
            }
        };
        sizes.insert(id, size);
    }
    if !measured.is_empty() {
        inner.write_tx("record layer sizes", |tx| {
            let mut stmt = tx
                .prepare_cached("UPDATE layers SET size_bytes = ?1 WHERE id = ?2")
                .map_err(db_err(&inner.db_path, "record layer sizes"))?;
            for (id, size) in &measured {
                stmt.execute(params![*size as i64, id])
                    .map_err(db_err(&inner.db_path, "record layer sizes"))?;
            }
            Ok(())
        })?;
    }
    Ok(sizes)
}

/// Every blob on disk ("sha256:<hex>") and its disk usage.
fn blob_sizes(inner: &Inner) -> Result<HashMap<String, u64>, StoreError> {
    let dir = inner.dir(BLOBS);
    let mut sizes = HashMap::new();
    for entry in fs::read_dir(&dir).io_context("list directory", &dir)? {
        let entry = entry.io_context("list directory", &dir)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let size = match entry.metadata() {
            Ok(meta) => std::os::unix::fs::MetadataExt::blocks(&meta) * 512,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).io_context("stat blob", entry.path()),
        };
        sizes.insert(format!("sha256:{name}"), size);
    }
    Ok(sizes)
}

/// What references what, as stored.
struct Graph {
    /// Records, least recently used first, with the distinct layers each names.
    records: Vec<(String, Vec<String>)>,
    /// (layer id, blob digest) for every layer tarball.
    layer_blobs: Vec<(String, String)>,
    /// Manifest and config blobs of image resolutions.
    image_blobs: Vec<String>,
}

fn load_graph(inner: &Inner) -> Result<Graph, StoreError> {
    let conn = inner.conn();
    let err = |what: &str| db_err(&inner.db_path, format!("prune: {what}"));
    let pairs = |sql: &str, what: &str| -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = conn.prepare(sql).map_err(err(what))?;
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(err(what))
    };
    let order = pairs(
        "SELECT key, '' FROM cache_records ORDER BY last_used_ns, created_at_ns, key",
        "list records",
    )?;
    let mut layers_of: HashMap<String, Vec<String>> = HashMap::new();
    for (key, layer) in pairs(
        "SELECT record_key, layer_id FROM cache_record_layers",
        "list record layers",
    )? {
        let layers = layers_of.entry(key).or_default();
        if !layers.contains(&layer) {
            layers.push(layer);
        }
    }
    let records = order
        .into_iter()
        .map(|(key, _)| {
            let layers = layers_of.remove(&key).unwrap_or_default();
            (key, layers)
        })
        .collect();
    let layer_blobs = pairs(
        "SELECT layer_id, blob_digest FROM layer_blobs",
        "list layer blobs",
    )?;
    let image_blobs = pairs(
        "SELECT manifest_digest, config_digest FROM images",
        "list images",
    )?
    .into_iter()
    .flat_map(|(m, c)| [m, c])
    .collect();
    Ok(Graph {
        records,
        layer_blobs,
        image_blobs,
    })
}

/// What to delete.
#[derive(Debug, Default)]
struct Plan {
    records: Vec<String>,
    /// Layer rows (and dirs) to remove.
    layers: Vec<String>,
    /// Layer ids whose tarball rows go (every layer id no remaining record names).
    layers_without_blobs: Vec<String>,
    blobs: Vec<String>,
}

fn plan(
    graph: &Graph,
    layer_sizes: &HashMap<String, u64>,
    blob_sizes: &HashMap<String, u64>,
    policy: &PrunePolicy,
) -> Plan {
    let mut layer_refs: HashMap<&str, usize> = HashMap::new();
    for (_, layers) in &graph.records {
        for layer in layers {
            *layer_refs.entry(layer).or_default() += 1;
        }
    }
    let mut blobs_of: HashMap<&str, Vec<&str>> = HashMap::new();
    for (layer, blob) in &graph.layer_blobs {
        blobs_of.entry(layer).or_default().push(blob);
    }
    let mut blob_refs: HashMap<&str, usize> = HashMap::new();
    let images: &[String] = if policy.all { &[] } else { &graph.image_blobs };
    for blob in images {
        *blob_refs.entry(blob).or_default() += 1;
    }
    for (layer, blobs) in &blobs_of {
        if layer_refs.contains_key(layer) {
            for blob in blobs {
                *blob_refs.entry(blob).or_default() += 1;
            }
        }
    }
    let live_bytes = |layer_refs: &HashMap<&str, usize>, blob_refs: &HashMap<&str, usize>| {
        let layers: u64 = layer_refs
            .keys()
            .map(|l| layer_sizes.get(*l).copied().unwrap_or(0))
            .sum();
        let blobs: u64 = blob_refs
            .keys()
            .map(|b| blob_sizes.get(*b).copied().unwrap_or(0))
            .sum();
        layers + blobs
    };

    let mut dropped = Vec::new();
    let mut total = live_bytes(&layer_refs, &blob_refs);
    for (key, layers) in &graph.records {
        let over = policy.all || policy.max_bytes.is_some_and(|max| total > max);
        if !over {
            break;
        }
        dropped.push(key.clone());
        for layer in layers {
            let Some(count) = layer_refs.get_mut(layer.as_str()) else {
                continue;
            };
            *count -= 1;
            if *count > 0 {
                continue;
            }
            layer_refs.remove(layer.as_str());
            total = total.saturating_sub(layer_sizes.get(layer).copied().unwrap_or(0));
            for blob in blobs_of.get(layer.as_str()).into_iter().flatten() {
                if let Some(count) = blob_refs.get_mut(blob) {
                    *count -= 1;
                    if *count == 0 {
                        blob_refs.remove(blob);
                        total = total.saturating_sub(blob_sizes.get(*blob).copied().unwrap_or(0));
                    }
                }
            }
        }
    }

    let mut layers: Vec<String> = layer_sizes
        .keys()
        .filter(|l| !layer_refs.contains_key(l.as_str()))
        .cloned()
        .collect();
    layers.sort();
    let mut layers_without_blobs: Vec<String> = blobs_of
        .keys()
        .filter(|l| !layer_refs.contains_key(*l))
        .map(|l| l.to_string())
        .collect();
    layers_without_blobs.sort();
    let mut blobs: Vec<String> = blob_sizes
        .keys()
        .filter(|b| !blob_refs.contains_key(b.as_str()))
        .cloned()
        .collect();
    blobs.sort();
    Plan {
        records: dropped,
        layers,
        layers_without_blobs,
        blobs,
    }
}

fn select_strings(inner: &Inner, sql: &str, arg: i64) -> Result<Vec<String>, StoreError> {
    let conn = inner.conn();
    let mut stmt = conn
        .prepare(sql)
        .map_err(db_err(&inner.db_path, "prune: select"))?;
    stmt.query_map([arg], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(db_err(&inner.db_path, "prune: select"))
}

/// File-hash roots last used before `cutoff`, whose directory is gone, or (with
/// `all`) every root.
fn stale_file_hash_roots(inner: &Inner, cutoff: i64, all: bool) -> Result<Vec<i64>, StoreError> {
    use std::os::unix::ffi::OsStrExt;
    let conn = inner.conn();
    let mut stmt = conn
        .prepare("SELECT id, root, last_used_ns FROM file_hash_roots")
        .map_err(db_err(&inner.db_path, "prune: list file hash roots"))?;
    let rows: Vec<(i64, Vec<u8>, i64)> = stmt
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .and_then(|rows| rows.collect())
        .map_err(db_err(&inner.db_path, "prune: list file hash roots"))?;
    Ok(rows
        .into_iter()
        .filter(|(_, root, last_used)| {
            all || *last_used <= cutoff || !Path::new(std::ffi::OsStr::from_bytes(root)).is_dir()
        })
        .map(|(id, _, _)| id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{commit_layer, record_with};
    use crate::{ImageRecord, LayerBlob};
    use kiln_graph::Digest;

    fn policy() -> PrunePolicy {
        PrunePolicy::default()
    }

    #[test]
    fn prune_keeps_what_records_reference_and_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let shared = commit_layer(&store, "shared", 3);
        let kept_top = commit_layer(&store, "kept top", 3);
        let orphan = commit_layer(&store, "orphan", 3);
        let gz = store.write_blob(b"kept tarball", None).unwrap();
        store
            .put_layer_blob(
                &kept_top,
                "gzip-6",
                &LayerBlob {
                    digest: gz.clone(),
                    diff_id: Digest::of(b"t"),
                    size: 12,
                    media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                },
            )
            .unwrap();
        let orphan_gz = store.write_blob(b"orphan tarball", None).unwrap();
        store
            .put_layer_blob(
                &orphan,
                "gzip-6",
                &LayerBlob {
                    digest: orphan_gz.clone(),
                    diff_id: Digest::of(b"o"),
                    size: 14,
                    media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                },
            )
            .unwrap();
        let stray = store.write_blob(b"stray", None).unwrap();
        let manifest = store.write_blob(b"manifest", None).unwrap();
        let config = store.write_blob(b"config", None).unwrap();
        store
            .put_image(
                "alpine",
                "linux/amd64",
                &ImageRecord {
                    manifest_digest: manifest.clone(),
                    media_type: "m".into(),
                    config_digest: config.clone(),
                    layers: vec![],
                    resolved_at_ns: 1,
                },
            )
            .unwrap();
        let rec = record_with("r", vec![shared.clone(), kept_top.clone()], 1);
        store.put_cache_record(&rec).unwrap();

        let report = store.prune(&policy()).unwrap();
        assert_eq!(report.records, 0);
        assert_eq!(report.layers, 1);
        assert_eq!(report.blobs, 2);
        assert!(report.bytes_freed > 0);
        assert!(store.layer(&shared).unwrap().is_some());
        assert!(store.layer(&kept_top).unwrap().is_some());
        assert!(store.layer(&orphan).unwrap().is_none());
        assert!(!store.layer_path(&orphan).exists());
        assert!(store.has_blob(&gz) && store.has_blob(&manifest) && store.has_blob(&config));
        assert!(!store.has_blob(&orphan_gz) && !store.has_blob(&stray));
        assert!(store.layer_blobs(&orphan).unwrap().is_empty());
        assert_eq!(store.cache_record(&rec.key).unwrap(), Some(rec));
        assert!(
            fs::read_dir(dir.path().join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );

        // Pruning again finds nothing more.
        let again = store.prune(&policy()).unwrap();
        assert_eq!((again.layers, again.blobs, again.records), (0, 0, 0));
    }

    #[test]
    fn prune_all_drops_every_record_and_image() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = commit_layer(&store, "l", 2);
        let rec = record_with("r", vec![layer.clone()], 1);
        store.put_cache_record(&rec).unwrap();
        let manifest = store.write_blob(b"manifest", None).unwrap();
        store
            .put_image(
                "alpine",
                "linux/amd64",
                &ImageRecord {
                    manifest_digest: manifest.clone(),
                    media_type: "m".into(),
                    config_digest: manifest.clone(),
                    layers: vec![],
                    resolved_at_ns: 1,
                },
            )
            .unwrap();
        let memo = Digest::of(b"memo key");
        store.put_memo(&memo, &Digest::of(b"value")).unwrap();
        // A default prune keeps a fresh memo.
        store.prune(&policy()).unwrap();
        assert!(store.memo(&memo).unwrap().is_some());
        let report = store
            .prune(&PrunePolicy {
                all: true,
                ..policy()
            })
            .unwrap();
        assert_eq!(
            (report.records, report.images, report.layers, report.blobs),
            (1, 1, 1, 1)
        );
        assert_eq!(store.memo(&memo).unwrap(), None);
        let usage = store.usage().unwrap();
        assert_eq!(
            usage.blobs + usage.layers + usage.cache_records + usage.images,
            0
        );
    }

    #[test]
    fn prune_to_a_size_drops_least_recently_used_records_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let base = commit_layer(&store, "base", 4);
        let mut recs = Vec::new();
        for i in 0..3 {
            let top = commit_layer(&store, &format!("top {i}"), 40);
            let rec = record_with(&format!("r{i}"), vec![base.clone(), top], i);
            store.put_cache_record(&rec).unwrap();
            recs.push(rec);
        }
        // r0 is the most recently used, then r2, then r1.
        let conn = store.inner.conn();
        for (rec, used) in [(&recs[0], 300), (&recs[1], 100), (&recs[2], 200)] {
            conn.execute(
                "UPDATE cache_records SET last_used_ns = ?1 WHERE key = ?2",
                params![used, rec.key.to_string()],
            )
            .unwrap();
        }
        drop(conn);
        let usage = store.usage().unwrap();
        let top_bytes = store
            .layer(&recs[1].layers[1])
            .unwrap()
            .unwrap()
            .size
            .unwrap();
        // Room for everything but one top layer.
        let max = usage.blob_bytes + usage.layer_bytes - top_bytes;
        let report = store
            .prune(&PrunePolicy {
                max_bytes: Some(max),
                ..policy()
            })
            .unwrap();
        assert_eq!(report.records, 1);
        assert_eq!(report.layers, 1);
        assert_eq!(store.cache_record(&recs[1].key).unwrap(), None);
        assert!(store.cache_record(&recs[0].key).unwrap().is_some());
        assert!(store.cache_record(&recs[2].key).unwrap().is_some());
        assert!(store.layer(&base).unwrap().is_some());
        let after = store.usage().unwrap();
        assert!(after.blob_bytes + after.layer_bytes <= max);
    }

    #[test]
    fn prune_removes_unused_cache_mounts_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let old = store.cache_mount("old").unwrap();
        fs::write(old.join("f"), vec![1u8; 10_000]).unwrap();
        store
            .inner
            .conn()
            .execute(
                "UPDATE cache_mounts SET last_used_ns = 1 WHERE id = 'old'",
                [],
            )
            .unwrap();
        let fresh = store.cache_mount("fresh").unwrap();
        assert_eq!(store.prune(&policy()).unwrap().cache_mounts, 0);
        assert!(old.exists());
        let report = store
            .prune(&PrunePolicy {
                cache_mounts_unused_for: Some(Duration::from_secs(24 * 3600)),
                ..policy()
            })
            .unwrap();
        assert_eq!(report.cache_mounts, 1);
        assert!(report.bytes_freed >= 10_000);
        assert!(!old.exists());
        assert!(fresh.exists());
        assert_eq!(store.usage().unwrap().cache_mounts, 1);
    }

    #[test]
    fn prune_forgets_file_hashes_of_stale_or_vanished_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let mut roots = Vec::new();
        for name in ["live", "vanished"] {
            let ctx = dir.path().join(name);
            fs::create_dir(&ctx).unwrap();
            fs::write(ctx.join("f"), "x").unwrap();
            let mut cache = store.file_hash_cache(&ctx).unwrap();
            let meta = fs::symlink_metadata(ctx.join("f")).unwrap();
            cache.put(Path::new("f"), &meta, &Digest::of(b"x"));
            cache.save().unwrap();
            roots.push(ctx);
        }
        fs::remove_dir_all(&roots[1]).unwrap();
        let report = store.prune(&policy()).unwrap();
        assert_eq!(report.file_hash_roots, 1);
        assert_eq!(store.file_hash_cache(&roots[0]).unwrap().len(), 1);
        let report = store
            .prune(&PrunePolicy {
                file_hashes_unused_for: Duration::ZERO,
                ..policy()
            })
            .unwrap();
        assert_eq!(report.file_hash_roots, 1);
        assert!(store.file_hash_cache(&roots[0]).unwrap().is_empty());
    }

    #[test]
    fn usage_counts_everything() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = commit_layer(&store, "l", 10);
        store.write_blob(&vec![9u8; 100_000], None).unwrap();
        let mount = store.cache_mount("m").unwrap();
        fs::write(mount.join("f"), vec![1u8; 50_000]).unwrap();
        store
            .put_cache_record(&record_with("r", vec![layer.clone()], 1))
            .unwrap();
        let usage = store.usage().unwrap();
        assert_eq!(
            (
                usage.blobs,
                usage.layers,
                usage.cache_mounts,
                usage.cache_records
            ),
            (1, 1, 1, 1)
        );
        assert!(usage.blob_bytes >= 100_000);
        assert!(usage.cache_mount_bytes >= 50_000);
        assert!(usage.layer_bytes > 0);
        assert_eq!(
            store.layer(&layer).unwrap().unwrap().size,
            Some(usage.layer_bytes)
        );
        assert_eq!(
            usage.total_bytes(),
            usage.blob_bytes + usage.layer_bytes + usage.cache_mount_bytes
        );
    }
}
