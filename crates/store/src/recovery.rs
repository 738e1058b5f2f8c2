//! Recovery: bringing the directory and the database back into agreement after a crash.
//!
//! It runs only under the exclusive lock (when a process opens a store nobody else
//! has open, and during prune), so nothing it removes can be in use by another
//! process. Every write protocol in the crate leaves at worst one of these behind,
//! which is what this module clears:
//!
//! | crash between                              | leftover                      | recovery          |
//! |--------------------------------------------|-------------------------------|-------------------|
//! | blob write and rename                      | a temp file in `ingest/`      | removed           |
//! | step start and layer commit                | a work dir in `tmp/`          | removed           |
//! | layer rename and its row                   | a dir in `layers/`, no row    | dir removed       |
//! | a layer's removal (prune)                  | a tree in `tmp/`              | removed           |
//! | a layer's row deleted by hand, dir lost    | a row, no dir                 | row removed       |
//! | (any of the above)                         | a record naming a lost layer  | record removed    |
//! | cache-mount dir creation and its row       | a dir, no row (or the reverse)| dir / row removed |

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::path::Path;

use kiln_graph::Digest;

use crate::db::db_err;
use crate::error::{IoContext, StoreError};
use crate::fsutil;
use crate::store::{BLOBS, CACHE_MOUNTS, INGEST, Inner, LAYERS, TMP};

/// What a recovery pass removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Recovered {
    pub(crate) leftovers: usize,
    pub(crate) layer_dirs: usize,
    pub(crate) layer_rows: usize,
    pub(crate) records: usize,
    pub(crate) other_rows: usize,
}

/// Runs recovery. The caller holds the exclusive lock and `Inner::gc_write`; names
/// this store itself has in progress (see `Inner::live_names`) are kept.
pub(crate) fn recover(inner: &Inner) -> Result<Recovered, StoreError> {
    let mut done = Recovered::default();
    let keep = inner.live_names();
    for dir in [INGEST, TMP] {
        done.leftovers += clear_dir(&inner.dir(dir), &keep)?;
    }

    // Layer directories and rows.
    let rows: HashSet<String> = {
        let conn = inner.conn();
        let mut stmt = conn
            .prepare("SELECT id FROM layers")
            .map_err(db_err(&inner.db_path, "list layers"))?;
        stmt.query_map([], |row| row.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<HashSet<_>, _>>())
            .map_err(db_err(&inner.db_path, "list layers"))?
    };
    let mut dirs = HashSet::new();
    let layers_dir = inner.dir(LAYERS);
    for name in list_names(&layers_dir)? {
        let id = name
            .to_str()
            .and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok());
        match id {
            Some(id) if rows.contains(&id.to_string()) => {
                dirs.insert(id.to_string());
            }
            _ => {
                inner.discard_dir(&layers_dir.join(&name))?;
                done.layer_dirs += 1;
            }
        }
    }
    let missing_rows: Vec<&String> = rows.iter().filter(|id| !dirs.contains(*id)).collect();

    let blobs: HashSet<String> = list_names(&inner.dir(BLOBS))?
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .map(|hex| format!("sha256:{hex}"))
        .collect();

    let mounts_dir = inner.dir(CACHE_MOUNTS);
    let mount_dirs: HashSet<String> = list_names(&mounts_dir)?
        .into_iter()
        .filter_map(|n| n.into_string().ok())
        .collect();

    let mount_rows = inner.write_tx("recover", |tx| {
        let err = |what: &str| db_err(&inner.db_path, format!("recover: {what}"));
        {
            let mut delete = tx
                .prepare("DELETE FROM layers WHERE id = ?1")
                .map_err(err("delete layer rows"))?;
            for id in &missing_rows {
                done.layer_rows += delete.execute([id]).map_err(err("delete layer rows"))?;
            }
        }
        done.records += tx
            .execute(
                "DELETE FROM cache_records WHERE key IN (
                     SELECT record_key FROM cache_record_layers AS l
                     WHERE NOT EXISTS (SELECT 1 FROM layers WHERE id = l.layer_id))",
                [],
            )
            .map_err(err("delete records naming missing layers"))?;

        let lost_blobs = |sql: &str| -> Result<Vec<String>, StoreError> {
            let mut stmt = tx.prepare(sql).map_err(err("list referenced blobs"))?;
            let all = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(err("list referenced blobs"))?;
            Ok(all.into_iter().filter(|d| !blobs.contains(d)).collect())
        };
        for digest in lost_blobs("SELECT DISTINCT blob_digest FROM layer_blobs")? {
            done.other_rows += tx
                .execute("DELETE FROM layer_blobs WHERE blob_digest = ?1", [&digest])
                .map_err(err("delete layer blobs naming missing blobs"))?;
        }
        for digest in
            lost_blobs("SELECT manifest_digest FROM images UNION SELECT config_digest FROM images")?
        {
            done.other_rows += tx
                .execute(
                    "DELETE FROM images WHERE manifest_digest = ?1 OR config_digest = ?1",
                    [&digest],
                )
                .map_err(err("delete images naming missing blobs"))?;
        }

        let mut stmt = tx
            .prepare("SELECT dir FROM cache_mounts")
            .map_err(err("list cache mounts"))?;
        let mount_rows = stmt
            .query_map([], |row| row.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<HashSet<_>, _>>())
            .map_err(err("list cache mounts"))?;
        for dir in mount_rows.iter().filter(|d| !mount_dirs.contains(*d)) {
            done.other_rows += tx
                .execute("DELETE FROM cache_mounts WHERE dir = ?1", [dir])
                .map_err(err("delete cache mount rows"))?;
        }
        Ok(mount_rows)
    })?;
    for dir in mount_dirs.iter().filter(|d| !mount_rows.contains(*d)) {
        inner.discard_dir(&mounts_dir.join(dir))?;
        done.leftovers += 1;
    }
    Ok(done)
}

/// Removes every entry of `dir` whose name is not in `keep`; returns how many.
fn clear_dir(dir: &Path, keep: &HashSet<OsString>) -> Result<usize, StoreError> {
    let mut removed = 0;
    for name in list_names(dir)? {
        if keep.contains(&name) {
            continue;
        }
        let path = dir.join(&name);
        fsutil::remove_tree(&path).io_context("remove leftover", &path)?;
        removed += 1;
    }
    Ok(removed)
}

pub(crate) fn list_names(dir: &Path) -> Result<Vec<OsString>, StoreError> {
    let entries = fs::read_dir(dir).io_context("list directory", dir)?;
    entries
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .io_context("list directory", dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{commit_layer, record_with};
    use crate::{ImageRecord, LayerBlob, Store};

    fn is_empty(dir: &Path) -> bool {
        fs::read_dir(dir).unwrap().next().is_none()
    }

    #[test]
    fn recovery_brings_directories_and_rows_back_into_agreement() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let store = Store::open(root).unwrap();
        let a = commit_layer(&store, "a", 3);
        let b = commit_layer(&store, "b", 3);
        let c = commit_layer(&store, "c", 3);
        let keeps = record_with("keeps", vec![a.clone()], 1);
        let loses = record_with("loses", vec![a.clone(), b.clone()], 2);
        store.put_cache_record(&keeps).unwrap();
        store.put_cache_record(&loses).unwrap();
        let tarball = store.write_blob(b"tarball of c", None).unwrap();
        store
            .put_layer_blob(
                &c,
                "none",
                &LayerBlob {
                    digest: tarball.clone(),
                    diff_id: tarball.clone(),
                    size: 12,
                    media_type: "application/vnd.oci.image.layer.v1.tar".into(),
                },
            )
            .unwrap();
        let manifest = store.write_blob(b"manifest", None).unwrap();
        let image = ImageRecord {
            manifest_digest: manifest.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            config_digest: manifest.clone(),
            layers: vec![],
            resolved_at_ns: 1,
        };
        store.put_image("alpine", "linux/amd64", &image).unwrap();
        let mount = store.cache_mount("kept").unwrap();
        drop(store);

        // What crashed processes leave behind.
        fs::write(root.join("ingest/12-3-abc"), "half a blob").unwrap();
        fs::create_dir_all(root.join("tmp/work-9-1-ff/upper/usr")).unwrap();
        fs::write(root.join("tmp/work-9-1-ff/upper/usr/f"), "half a layer").unwrap();
        let unrecorded = Digest::of(b"committed but not recorded");
        fs::create_dir_all(root.join("layers").join(unrecorded.hex()).join("etc")).unwrap();
        fs::create_dir(root.join("layers/not-a-digest")).unwrap();
        fs::remove_dir_all(root.join("layers").join(b.hex())).unwrap();
        fs::remove_file(root.join("blobs/sha256").join(tarball.hex())).unwrap();
        fs::create_dir(root.join("cache-mounts/0123")).unwrap();

        let store = Store::open(root).unwrap();
        assert!(is_empty(&root.join("ingest")));
        assert!(is_empty(&root.join("tmp")));
        assert!(!root.join("layers").join(unrecorded.hex()).exists());
        assert!(!root.join("layers/not-a-digest").exists());
        assert_eq!(store.layer(&b).unwrap(), None);
        assert!(store.layer(&a).unwrap().is_some());
        assert!(store.layer(&c).unwrap().is_some());
        assert_eq!(
            store.cache_record(&loses.key).unwrap(),
            None,
            "names lost layer b"
        );
        assert_eq!(store.cache_record(&keeps.key).unwrap(), Some(keeps));
        assert!(
            store.layer_blobs(&c).unwrap().is_empty(),
            "names a lost blob"
        );
        assert_eq!(store.image("alpine", "linux/amd64").unwrap(), Some(image));
        assert!(mount.exists());
        assert!(!root.join("cache-mounts/0123").exists());
        let mut names = list_names(&root.join("layers")).unwrap();
        names.sort();
        let mut expected = vec![OsString::from(a.hex()), OsString::from(c.hex())];
        expected.sort();
        assert_eq!(names, expected);
    }

    #[test]
    fn an_unrecorded_layer_dir_is_adopted_by_the_next_commit_of_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Digest::of(b"layer");
        // As if a process died between its rename and its row.
        let path = store.layer_path(&id);
        fs::create_dir(&path).unwrap();
        fs::write(path.join("f"), "first").unwrap();
        let work = store.work_dir().unwrap();
        fs::write(work.upper().join("f"), "second").unwrap();
        let layer = work.commit(&id).unwrap();
        assert_eq!(fs::read_to_string(layer.path.join("f")).unwrap(), "first");
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert!(store.layer(&id).unwrap().is_some());
        assert!(path.join("f").exists());
    }
}
