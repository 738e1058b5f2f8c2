//! Layer directories: [`WorkDir`]s under `tmp/` that a step fills, committed by one
//! rename to `layers/<hex>`, and the compressed tarballs ([`LayerBlob`]) kept for them.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_graph::Digest;
use rusqlite::{OptionalExtension, params};

use crate::db::{db_err, digest_column};
use crate::error::{IoContext, StoreError};
use crate::fsutil::{self, now_ns};
use crate::store::{Inner, LAYERS, Store, TMP};

/// A committed layer directory (overlayfs upper-dir format). Immutable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The layer id it was committed under.
    pub id: Digest,
    /// `ROOT/layers/<hex>`.
    pub path: PathBuf,
    /// Disk usage in bytes, once measured ([`Store::usage`] and prune measure it);
    /// committing does not walk the directory.
    pub size: Option<u64>,
    /// When it was first committed, in nanoseconds since the Unix epoch.
    pub created_at_ns: i64,
}

/// A compressed (or plain) tarball of a layer, stored as a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// The blob's digest (what a manifest's layer descriptor names).
    pub digest: Digest,
    /// The digest of the uncompressed tarball (what an image config's `rootfs.diff_ids`
    /// names).
    pub diff_id: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// Its OCI media type, e.g. `application/vnd.oci.image.layer.v1.tar+gzip`.
    pub media_type: String,
}

impl Store {
    /// A fresh work directory `tmp/<unique>/` holding empty `upper/` and `work/`
    /// directories (an overlay mount needs both on one file system); the caller may
    /// create mount points beside them. Removed on drop unless committed.
    pub fn work_dir(&self) -> Result<WorkDir, StoreError> {
        let tmp = self.inner.dir(TMP);
        let mut attempts = 0;
        let (name, path) = loop {
            let name = OsString::from(fsutil::unique_name("work-"));
            let path = tmp.join(&name);
            match fs::create_dir(&path) {
                Ok(()) => break (name, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                    attempts += 1
                }
                Err(e) => return Err(e).io_context("create work directory", path),
            }
        };
        self.inner.add_live(name.clone());
        let work = WorkDir {
            inner: Arc::clone(&self.inner),
            name,
            upper: path.join("upper"),
            overlay_work: path.join("work"),
            path,
        };
        for dir in [&work.upper, &work.overlay_work] {
            fs::create_dir(dir).io_context("create directory", dir)?;
        }
        Ok(work)
    }

    /// The committed layer with this id, if any.
    pub fn layer(&self, id: &Digest) -> Result<Option<Layer>, StoreError> {
        let conn = self.inner.conn();
        conn.prepare_cached("SELECT size_bytes, created_at_ns FROM layers WHERE id = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([id.to_string()], |row| {
                    Ok(Layer {
                        id: id.clone(),
                        path: self.inner.layer_path(id),
                        size: row.get::<_, Option<i64>>(0)?.map(|s| s as u64),
                        created_at_ns: row.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(db_err(&self.inner.db_path, format!("look up layer {id}")))
    }

    /// Where the layer with this id is (or would be): `ROOT/layers/<hex>`.
    pub fn layer_path(&self, id: &Digest) -> PathBuf {
        self.inner.layer_path(id)
    }

    /// Records a tarball of a layer under a compression label of the caller's
    /// choosing (`gzip-6`, `zstd-3`, `none`, `source` for the blob a pulled layer came
    /// from), replacing an earlier one with the same label. The blob must be in the
    /// store already, with the size given.
    pub fn put_layer_blob(
        &self,
        layer_id: &Digest,
        compression: &str,
        blob: &LayerBlob,
    ) -> Result<(), StoreError> {
        let what = || format!("layer {layer_id} ({compression})");
        let path = self.inner.blob_path(&blob.digest);
        let on_disk = match fs::metadata(&path) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::MissingBlob {
                    what: what(),
                    digest: blob.digest.clone(),
                });
            }
            Err(e) => return Err(e).io_context("stat blob", path),
        };
        if on_disk != blob.size {
            return Err(StoreError::SizeMismatch {
                expected: blob.size,
                actual: on_disk,
                actual_digest: blob.digest.clone(),
            });
        }
        let _no_gc = self.inner.gc_read();
        self.inner
            .write_tx(&format!("record blob of {}", what()), |tx| {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO layer_blobs
                     (layer_id, compression, blob_digest, diff_id, size, media_type)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        layer_id.to_string(),
                        compression,
                        blob.digest.to_string(),
                        blob.diff_id.to_string(),
                        blob.size as i64,
                        blob.media_type,
                    ])
                })
                .map_err(db_err(
                    &self.inner.db_path,
                    format!("record blob of {}", what()),
                ))?;
                Ok(())
            })
    }

    /// The tarball of a layer recorded under `compression`, if any.
    pub fn layer_blob(
        &self,
        layer_id: &Digest,
        compression: &str,
    ) -> Result<Option<LayerBlob>, StoreError> {
        let conn = self.inner.conn();
        conn.prepare_cached(
            "SELECT blob_digest, diff_id, size, media_type FROM layer_blobs
             WHERE layer_id = ?1 AND compression = ?2",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![layer_id.to_string(), compression], layer_blob_row)
                .optional()
        })
        .map_err(db_err(
            &self.inner.db_path,
            format!("look up blob of layer {layer_id} ({compression})"),
        ))
    }

    /// Every tarball recorded for a layer, as (compression label, blob), by label.
    pub fn layer_blobs(&self, layer_id: &Digest) -> Result<Vec<(String, LayerBlob)>, StoreError> {
        let conn = self.inner.conn();
        conn.prepare_cached(
            "SELECT blob_digest, diff_id, size, media_type, compression FROM layer_blobs
             WHERE layer_id = ?1 ORDER BY compression",
        )
        .and_then(|mut stmt| {
            stmt.query_map([layer_id.to_string()], |row| {
                Ok((row.get::<_, String>(4)?, layer_blob_row(row)?))
            })?
            .collect()
        })
        .map_err(db_err(
            &self.inner.db_path,
            format!("list blobs of layer {layer_id}"),
        ))
    }

    /// The layers a blob is recorded for, as (layer id, compression label): how a
    /// pull finds out that a manifest's layer is unpacked already.
    pub fn layers_for_blob(&self, blob: &Digest) -> Result<Vec<(Digest, String)>, StoreError> {
        let conn = self.inner.conn();
        conn.prepare_cached(
            "SELECT layer_id, compression FROM layer_blobs WHERE blob_digest = ?1
             ORDER BY layer_id, compression",
        )
        .and_then(|mut stmt| {
            stmt.query_map([blob.to_string()], |row| {
                Ok((digest_column(row, 0)?, row.get::<_, String>(1)?))
            })?
            .collect()
        })
        .map_err(db_err(
            &self.inner.db_path,
            format!("look up layers of blob {blob}"),
        ))
    }
}

fn layer_blob_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<LayerBlob> {
    Ok(LayerBlob {
        digest: digest_column(row, 0)?,
        diff_id: digest_column(row, 1)?,
        size: row.get::<_, i64>(2)? as u64,
        media_type: row.get(3)?,
    })
}

/// A directory under `tmp/` that a running step fills: `upper()` is the overlay
/// upperdir that becomes the layer, `overlay_work()` the overlay workdir. Unmount
/// everything mounted under it before committing or dropping it; a mount left behind
/// is detached, never deleted through.
pub struct WorkDir {
    inner: Arc<Inner>,
    name: OsString,
    path: PathBuf,
    upper: PathBuf,
    overlay_work: PathBuf,
}

impl std::fmt::Debug for WorkDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkDir")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl WorkDir {
    /// `tmp/<unique>/`: room for mount points beside `upper/` and `work/`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `tmp/<unique>/upper/`: the overlay upperdir, the future layer.
    pub fn upper(&self) -> &Path {
        &self.upper
    }

    /// `tmp/<unique>/work/`: the overlay workdir.
    pub fn overlay_work(&self) -> &Path {
        &self.overlay_work
    }

    /// Commits `upper/` as the layer `layer_id` with one rename; the rest of the work
    /// dir is removed. If that layer exists already, it is kept and this copy is
    /// discarded (the id is a content digest, so they are the same).
    pub fn commit(self, layer_id: &Digest) -> Result<Layer, StoreError> {
        let inner = Arc::clone(&self.inner);
        let target = inner.layer_path(layer_id);
        let _no_gc = inner.gc_read();
        let renamed =
            fsutil::rename_no_replace(&self.upper, &target).io_context("commit layer", &target)?;
        if renamed {
            let layers = inner.dir(LAYERS);
            fsutil::fsync_dir(&layers).io_context("sync directory", layers)?;
        }
        // Anything under layers/<hex> arrived by one rename of a finished dir, so an
        // existing dir without a row (its committer crashed before recording it) is
        // complete and is adopted here.
        let now = now_ns();
        let layer = inner.write_tx(&format!("commit layer {layer_id}"), |tx| {
            let err = || db_err(&inner.db_path, format!("commit layer {layer_id}"));
            tx.prepare_cached(
                "INSERT INTO layers (id, size_bytes, created_at_ns, last_used_ns)
                 VALUES (?1, NULL, ?2, ?2)
                 ON CONFLICT (id) DO UPDATE SET last_used_ns = excluded.last_used_ns",
            )
            .and_then(|mut stmt| stmt.execute(params![layer_id.to_string(), now]))
            .map_err(err())?;
            tx.prepare_cached("SELECT size_bytes, created_at_ns FROM layers WHERE id = ?1")
                .and_then(|mut stmt| {
                    stmt.query_row([layer_id.to_string()], |row| {
                        Ok(Layer {
                            id: layer_id.clone(),
                            path: target.clone(),
                            size: row.get::<_, Option<i64>>(0)?.map(|s| s as u64),
                            created_at_ns: row.get(1)?,
                        })
                    })
                })
                .map_err(err())
        })?;
        drop(_no_gc);
        drop(self);
        Ok(layer)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // Errors here leave a leftover under tmp/, which recovery removes.
        let _ = fsutil::remove_tree(&self.path);
        self.inner.remove_live(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(work: &WorkDir, files: usize) {
        for i in 0..files {
            let dir = work.upper().join(format!("d{}", i % 10));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(format!("f{i}")), format!("content {i}")).unwrap();
        }
    }

    #[test]
    fn commit_moves_upper_into_layers_and_removes_the_work_dir() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let work = store.work_dir().unwrap();
        assert!(work.upper().is_dir() && work.overlay_work().is_dir());
        assert_eq!(work.upper().parent(), Some(work.path()));
        fill(&work, 25);
        let work_path = work.path().to_path_buf();
        let id = Digest::of(b"layer one");
        let layer = work.commit(&id).unwrap();
        assert_eq!(layer.path, dir.path().join("layers").join(id.hex()));
        assert_eq!(layer.path, store.layer_path(&id));
        assert_eq!(
            fs::read_to_string(layer.path.join("d3/f13")).unwrap(),
            "content 13"
        );
        assert!(!work_path.exists());
        assert_eq!(store.layer(&id).unwrap(), Some(layer));
        assert_eq!(store.layer(&Digest::of(b"other")).unwrap(), None);
    }

    #[test]
    fn committing_an_existing_layer_id_keeps_the_first_and_discards_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Digest::of(b"same");
        let first = store.work_dir().unwrap();
        fs::write(first.upper().join("f"), "first").unwrap();
        let a = first.commit(&id).unwrap();
        let second = store.work_dir().unwrap();
        fs::write(second.upper().join("f"), "second").unwrap();
        let second_path = second.path().to_path_buf();
        let b = second.commit(&id).unwrap();
        assert_eq!(a.path, b.path);
        assert_eq!(a.created_at_ns, b.created_at_ns);
        assert_eq!(fs::read_to_string(b.path.join("f")).unwrap(), "first");
        assert!(!second_path.exists());
        assert!(
            fs::read_dir(dir.path().join("tmp"))
                .unwrap()
                .next()
                .is_none()
        );
    }

    #[test]
    fn an_empty_layer_is_not_replaced_by_a_second_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Digest::of(b"empty");
        let a = store.work_dir().unwrap().commit(&id).unwrap();
        let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&a.path).unwrap());
        store.work_dir().unwrap().commit(&id).unwrap();
        let ino2 = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&a.path).unwrap());
        assert_eq!(ino, ino2);
    }

    #[test]
    fn dropping_a_work_dir_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let work = store.work_dir().unwrap();
        fill(&work, 5);
        fs::create_dir(work.path().join("merged")).unwrap();
        let path = work.path().to_path_buf();
        drop(work);
        assert!(!path.exists());
    }

    #[test]
    fn layer_blobs_are_kept_per_compression() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Digest::of(b"layer");
        store.work_dir().unwrap().commit(&id).unwrap();
        let gz = store.write_blob(b"gzip bytes", None).unwrap();
        let zst = store.write_blob(b"zstd bytes", None).unwrap();
        let diff_id = Digest::of(b"tar");
        let gz_blob = LayerBlob {
            digest: gz.clone(),
            diff_id: diff_id.clone(),
            size: 10,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        };
        let zst_blob = LayerBlob {
            digest: zst.clone(),
            diff_id: diff_id.clone(),
            size: 10,
            media_type: "application/vnd.oci.image.layer.v1.tar+zstd".into(),
        };
        store.put_layer_blob(&id, "zstd-3", &zst_blob).unwrap();
        store.put_layer_blob(&id, "gzip-6", &gz_blob).unwrap();
        assert_eq!(
            store.layer_blob(&id, "gzip-6").unwrap(),
            Some(gz_blob.clone())
        );
        assert_eq!(store.layer_blob(&id, "none").unwrap(), None);
        assert_eq!(
            store.layer_blobs(&id).unwrap(),
            vec![
                ("gzip-6".to_string(), gz_blob),
                ("zstd-3".to_string(), zst_blob)
            ]
        );
        assert_eq!(
            store.layers_for_blob(&zst).unwrap(),
            vec![(id.clone(), "zstd-3".to_string())]
        );
    }

    #[test]
    fn a_layer_blob_must_be_stored_with_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = Digest::of(b"layer");
        let absent = LayerBlob {
            digest: Digest::of(b"not stored"),
            diff_id: Digest::of(b"tar"),
            size: 10,
            media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        };
        assert!(matches!(
            store.put_layer_blob(&id, "none", &absent),
            Err(StoreError::MissingBlob { .. })
        ));
        let stored = store.write_blob(b"12345", None).unwrap();
        let wrong_size = LayerBlob {
            digest: stored,
            size: 6,
            ..absent
        };
        assert!(matches!(
            store.put_layer_blob(&id, "none", &wrong_size),
            Err(StoreError::SizeMismatch { .. })
        ));
        assert!(store.layer_blobs(&id).unwrap().is_empty());
    }
}
