//! Image resolutions: what a reference resolved to for a platform, so a rebuild can
//! reuse it without asking the registry. The manifest and config bytes are blobs.

use kiln_graph::Digest;
use rusqlite::{OptionalExtension, params};

use crate::db::{db_err, digest_column};
use crate::error::StoreError;
use crate::store::Store;

/// What an image reference resolved to for one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    /// The platform-specific manifest (a blob in the store).
    pub manifest_digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// The image config (a blob in the store).
    pub config_digest: Digest,
    /// The layer ids of the unpacked image, bottom first; empty until unpacked. A
    /// convenience, not a reference that keeps the layers from prune: the cache
    /// record of the step that pulled the image does that.
    pub layers: Vec<Digest>,
    /// When the reference was resolved, in nanoseconds since the Unix epoch.
    pub resolved_at_ns: i64,
}

impl Store {
    /// Records what `reference` resolved to for `platform` (e.g. `linux/amd64`),
    /// replacing an earlier resolution. The manifest and config must be stored blobs.
    pub fn put_image(
        &self,
        reference: &str,
        platform: &str,
        img: &ImageRecord,
    ) -> Result<(), StoreError> {
        let what = format!("image {reference} ({platform})");
        for digest in [&img.manifest_digest, &img.config_digest] {
            if !self.has_blob(digest) {
                return Err(StoreError::MissingBlob {
                    what,
                    digest: digest.clone(),
                });
            }
        }
        let layers = serde_json::to_string(&img.layers).map_err(StoreError::RecordJson)?;
        let inner = &self.inner;
        let _no_gc = inner.gc_read();
        inner.write_tx(&format!("record {what}"), |tx| {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO images
                     (reference, platform, manifest_digest, media_type, config_digest,
                      layers_json, resolved_at_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    reference,
                    platform,
                    img.manifest_digest.to_string(),
                    img.media_type,
                    img.config_digest.to_string(),
                    layers,
                    img.resolved_at_ns,
                ])
            })
            .map_err(db_err(&inner.db_path, format!("record {what}")))?;
            Ok(())
        })
    }

    /// The last recorded resolution of `reference` for `platform`, if any.
    pub fn image(
        &self,
        reference: &str,
        platform: &str,
    ) -> Result<Option<ImageRecord>, StoreError> {
        let inner = &self.inner;
        let conn = inner.conn();
        let row = conn
            .prepare_cached(
                "SELECT manifest_digest, media_type, config_digest, layers_json, resolved_at_ns
                 FROM images WHERE reference = ?1 AND platform = ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![reference, platform], |row| {
                    Ok((
                        digest_column(row, 0)?,
                        row.get::<_, String>(1)?,
                        digest_column(row, 2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                })
                .optional()
            })
            .map_err(db_err(
                &inner.db_path,
                format!("look up image {reference} ({platform})"),
            ))?;
        let Some((manifest_digest, media_type, config_digest, layers_json, resolved_at_ns)) = row
        else {
            return Ok(None);
        };
        let layers = serde_json::from_str(&layers_json).map_err(|_| StoreError::CorruptRow {
            what: "images.layers_json",
            value: layers_json.clone(),
        })?;
        Ok(Some(ImageRecord {
            manifest_digest,
            media_type,
            config_digest,
            layers,
            resolved_at_ns,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_and_get_an_image_and_a_later_resolution_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let manifest = store.write_blob(b"{\"manifest\":1}", None).unwrap();
        let config = store.write_blob(b"{\"config\":1}", None).unwrap();
        let mut img = ImageRecord {
            manifest_digest: manifest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            config_digest: config,
            layers: vec![Digest::of(b"l1"), Digest::of(b"l2")],
            resolved_at_ns: 42,
        };
        let reference = "docker.io/library/alpine:3.20";
        store.put_image(reference, "linux/amd64", &img).unwrap();
        assert_eq!(
            store.image(reference, "linux/amd64").unwrap(),
            Some(img.clone())
        );
        assert_eq!(store.image(reference, "linux/arm64").unwrap(), None);
        img.resolved_at_ns = 43;
        img.layers.clear();
        store.put_image(reference, "linux/amd64", &img).unwrap();
        assert_eq!(store.image(reference, "linux/amd64").unwrap(), Some(img));
    }

    #[test]
    fn an_image_needs_its_manifest_and_config_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let manifest = store.write_blob(b"m", None).unwrap();
        let img = ImageRecord {
            manifest_digest: manifest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            config_digest: Digest::of(b"absent config"),
            layers: vec![],
            resolved_at_ns: 1,
        };
        let err = store.put_image("r", "linux/amd64", &img).unwrap_err();
        assert!(matches!(err, StoreError::MissingBlob { .. }), "{err}");
        assert!(err.to_string().contains("image r (linux/amd64)"));
        assert_eq!(store.image("r", "linux/amd64").unwrap(), None);
    }
}
