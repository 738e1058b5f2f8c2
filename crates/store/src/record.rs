//! Cache records: what a cache key resolved to (a chain of committed layers) and what
//! the key was computed from, plus their stable JSON form for export and import.

use kiln_graph::Digest;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::db::{db_err, digest_column};
use crate::error::StoreError;
use crate::fsutil::now_ns;
use crate::store::Store;

/// A lookup refreshes a record's `last_used` only when it is older than this, so a
/// build that hits the same record many times writes once.
const TOUCH_INTERVAL_NS: i64 = 10_000_000_000;

/// One input of a cache key: a label a person can read and the digest it contributed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyComponent {
    /// What this input is, e.g. `op`, `input 0`, `file /app/main.go`, `arg VERSION`.
    pub label: String,
    /// Its digest.
    pub digest: Digest,
}

impl KeyComponent {
    /// A component from a label and a digest.
    pub fn new(label: impl Into<String>, digest: Digest) -> KeyComponent {
        KeyComponent {
            label: label.into(),
            digest,
        }
    }
}

/// The result of a build step, found by its cache key.
///
/// Its JSON form ([`to_json`](CacheRecord::to_json)) is stable; see the crate docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The cache key (computed by the solver).
    pub key: Digest,
    /// The vertex that produced the result.
    pub vertex: Digest,
    /// A name for people, e.g. `[build 2/3] COPY . /app`.
    pub name: String,
    /// The digest of the result's content (for early cutoff).
    pub output: Digest,
    /// The result's full layer chain, bottom first, as layer ids. Self-contained: with
    /// the layers' blobs the record can be exported and imported elsewhere.
    pub layers: Vec<Digest>,
    /// What the key was computed from, in the order the solver hashed them; compared
    /// with an earlier record's components to explain a miss.
    pub components: Vec<KeyComponent>,
    /// When the record was made, in nanoseconds since the Unix epoch.
    pub created_at_ns: i64,
}

impl CacheRecord {
    /// The record's JSON form, on one line (see the crate docs for the format).
    pub fn to_json(&self) -> String {
        // Serialising plain strings, integers and digests cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a record's JSON form. Fields this version does not know are ignored, so a
    /// newer kiln's records can still be read.
    pub fn from_json(bytes: &[u8]) -> Result<CacheRecord, StoreError> {
        serde_json::from_slice(bytes).map_err(StoreError::RecordJson)
    }
}

impl Store {
    /// Stores a cache record in one transaction, unless one with the same key exists:
    /// the first writer wins, and the return value says whether this call stored it.
    /// Every layer the record names must be committed.
    pub fn put_cache_record(&self, rec: &CacheRecord) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let context = format!("store cache record {}", rec.key);
        let components = serde_json::to_string(&rec.components).map_err(StoreError::RecordJson)?;
        let _no_gc = inner.gc_read();
        inner.write_tx(&context, |tx| {
            let err = || db_err(&inner.db_path, context.clone());
            {
                let mut exists = tx
                    .prepare_cached("SELECT 1 FROM layers WHERE id = ?1")
                    .map_err(err())?;
                for layer in &rec.layers {
                    if !exists.exists([layer.to_string()]).map_err(err())? {
                        return Err(StoreError::MissingLayer {
                            key: rec.key.clone(),
                            layer: layer.clone(),
                        });
                    }
                }
            }
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO cache_records
                         (key, vertex, name, output, components_json, created_at_ns, last_used_ns)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (key) DO NOTHING",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        rec.key.to_string(),
                        rec.vertex.to_string(),
                        rec.name,
                        rec.output.to_string(),
                        components,
                        rec.created_at_ns,
                        now_ns(),
                    ])
                })
                .map_err(err())?;
            if inserted == 0 {
                return Ok(false);
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO cache_record_layers (record_key, position, layer_id)
                     VALUES (?1, ?2, ?3)",
                )
                .map_err(err())?;
            for (position, layer) in rec.layers.iter().enumerate() {
                insert
                    .execute(params![
                        rec.key.to_string(),
                        position as i64,
                        layer.to_string()
                    ])
                    .map_err(err())?;
            }
            Ok(true)
        })
    }

    /// The record stored under `key`, if any; marks it as used (for prune's
    /// least-recently-used order).
    pub fn cache_record(&self, key: &Digest) -> Result<Option<CacheRecord>, StoreError> {
        let inner = &self.inner;
        let context = format!("look up cache record {key}");
        let found = {
            let conn = inner.conn();
            let found = conn
                .prepare_cached(
                    "SELECT key, vertex, name, output, components_json, created_at_ns, last_used_ns
                     FROM cache_records WHERE key = ?1",
                )
                .and_then(|mut stmt| stmt.query_row([key.to_string()], record_row).optional())
                .map_err(db_err(&inner.db_path, context.clone()))?;
            match found {
                None => return Ok(None),
                Some((partial, last_used)) => {
                    (finish_record(&conn, partial, &inner.db_path)?, last_used)
                }
            }
        };
        let (record, last_used) = found;
        let now = now_ns();
        if now - last_used > TOUCH_INTERVAL_NS {
            inner.write_tx(&context, |tx| {
                tx.prepare_cached("UPDATE cache_records SET last_used_ns = ?1 WHERE key = ?2")
                    .and_then(|mut stmt| stmt.execute(params![now, key.to_string()]))
                    .map_err(db_err(&inner.db_path, format!("{context}: mark used")))?;
                Ok(())
            })?;
        }
        Ok(Some(record))
    }

    /// Up to `limit` records made by steps of this name, newest first: the
    /// candidates to compare with when explaining a miss.
    pub fn cache_records_for_vertex_name(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<CacheRecord>, StoreError> {
        let inner = &self.inner;
        let context = format!("list cache records named {name:?}");
        let conn = inner.conn();
        let partials = conn
            .prepare_cached(
                "SELECT key, vertex, name, output, components_json, created_at_ns, last_used_ns
                 FROM cache_records WHERE name = ?1
                 ORDER BY created_at_ns DESC, key LIMIT ?2",
            )
            .and_then(|mut stmt| {
                stmt.query_map(
                    params![name, limit.min(i64::MAX as usize) as i64],
                    record_row,
                )?
                .collect::<Result<Vec<_>, _>>()
            })
            .map_err(db_err(&inner.db_path, context))?;
        partials
            .into_iter()
            .map(|(partial, _)| finish_record(&conn, partial, &inner.db_path))
            .collect()
    }
}

/// A record row before its layers and components are read.
struct PartialRecord {
    key: Digest,
    vertex: Digest,
    name: String,
    output: Digest,
    components_json: String,
    created_at_ns: i64,
}

fn record_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(PartialRecord, i64)> {
    Ok((
        PartialRecord {
            key: digest_column(row, 0)?,
            vertex: digest_column(row, 1)?,
            name: row.get(2)?,
            output: digest_column(row, 3)?,
            components_json: row.get(4)?,
            created_at_ns: row.get(5)?,
        },
        row.get(6)?,
    ))
}

fn finish_record(
    conn: &Connection,
    partial: PartialRecord,
    db_path: &std::path::Path,
) -> Result<CacheRecord, StoreError> {
    let layers = conn
        .prepare_cached(
            "SELECT layer_id FROM cache_record_layers WHERE record_key = ?1 ORDER BY position",
        )
        .and_then(|mut stmt| {
            stmt.query_map([partial.key.to_string()], |row| digest_column(row, 0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(db_err(
            db_path,
            format!("read layers of cache record {}", partial.key),
        ))?;
    let components =
        serde_json::from_str(&partial.components_json).map_err(|_| StoreError::CorruptRow {
            what: "cache_records.components_json",
            value: partial.components_json.clone(),
        })?;
    Ok(CacheRecord {
        key: partial.key,
        vertex: partial.vertex,
        name: partial.name,
        output: partial.output,
        layers,
        components,
        created_at_ns: partial.created_at_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::record;

    #[test]
    fn put_and_get_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = record(&store, "a", &["base", "mid", "top"], 5);
        assert!(store.put_cache_record(&rec).unwrap());
        assert_eq!(store.cache_record(&rec.key).unwrap(), Some(rec.clone()));
        assert_eq!(store.cache_record(&Digest::of(b"nope")).unwrap(), None);
    }

    #[test]
    fn the_first_writer_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let first = record(&store, "a", &["one"], 1);
        let mut second = record(&store, "a", &["two", "three"], 2);
        second.output = Digest::of(b"different output");
        assert!(store.put_cache_record(&first).unwrap());
        assert!(!store.put_cache_record(&second).unwrap());
        assert_eq!(store.cache_record(&first.key).unwrap(), Some(first));
    }

    #[test]
    fn a_record_naming_an_uncommitted_layer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut rec = record(&store, "a", &["present"], 1);
        let missing = Digest::of(b"missing layer");
        rec.layers.push(missing.clone());
        match store.put_cache_record(&rec) {
            Err(StoreError::MissingLayer { key, layer }) => {
                assert_eq!(key, rec.key);
                assert_eq!(layer, missing);
            }
            other => panic!("expected MissingLayer, got {other:?}"),
        }
        assert_eq!(store.cache_record(&rec.key).unwrap(), None);
    }

    #[test]
    fn records_by_name_come_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut recs = Vec::new();
        for (i, created) in [30, 10, 20].into_iter().enumerate() {
            let mut rec = record(&store, &format!("r{i}"), &["l"], created);
            rec.name = "[build 2/3] COPY . /app".into();
            store.put_cache_record(&rec).unwrap();
            recs.push(rec);
        }
        store
            .put_cache_record(&record(&store, "other", &["l"], 99))
            .unwrap();
        let found = store
            .cache_records_for_vertex_name("[build 2/3] COPY . /app", 2)
            .unwrap();
        assert_eq!(found, vec![recs[0].clone(), recs[2].clone()]);
    }

    #[test]
    fn a_lookup_marks_a_stale_record_used() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rec = record(&store, "a", &["l"], 1);
        store.put_cache_record(&rec).unwrap();
        let last_used = |store: &Store| -> i64 {
            store
                .inner
                .conn()
                .query_row(
                    "SELECT last_used_ns FROM cache_records WHERE key = ?1",
                    [rec.key.to_string()],
                    |r| r.get(0),
                )
                .unwrap()
        };
        store
            .inner
            .conn()
            .execute("UPDATE cache_records SET last_used_ns = 7", [])
            .unwrap();
        store.cache_record(&rec.key).unwrap();
        assert!(last_used(&store) > now_ns() - 60_000_000_000);
    }

    /// The JSON form is an exchange format: this pins it byte for byte.
    #[test]
    fn json_form_is_stable() {
        let json = concat!(
            r#"{"key":"sha256:0000000000000000000000000000000000000000000000000000000000000001","#,
            r#""vertex":"sha256:0000000000000000000000000000000000000000000000000000000000000002","#,
            r#""name":"[build 2/3] COPY . /app","#,
            r#""output":"sha256:0000000000000000000000000000000000000000000000000000000000000003","#,
            r#""layers":["sha256:000000000000000000000000000000000000000000000000000000000000000a","#,
            r#""sha256:000000000000000000000000000000000000000000000000000000000000000b"],"#,
            r#""components":[{"label":"op","digest":"sha256:00000000000000000000000000000000000000000000000000000000000000c0"},"#,
            r#"{"label":"file /app/main.go","digest":"sha256:00000000000000000000000000000000000000000000000000000000000000c1"}],"#,
            r#""created_at_ns":1700000000000000000}"#
        );
        let rec = CacheRecord::from_json(json.as_bytes()).unwrap();
        assert_eq!(rec.name, "[build 2/3] COPY . /app");
        assert_eq!(rec.layers.len(), 2);
        assert_eq!(rec.components[1].label, "file /app/main.go");
        assert_eq!(rec.created_at_ns, 1_700_000_000_000_000_000);
        assert_eq!(rec.to_json(), json);
    }

    #[test]
    fn json_from_a_newer_kiln_is_read_and_bad_json_is_an_error() {
        let rec = CacheRecord {
            key: Digest::of(b"k"),
            vertex: Digest::of(b"v"),
            name: "n".into(),
            output: Digest::of(b"o"),
            layers: vec![],
            components: vec![],
            created_at_ns: 0,
        };
        let mut value: serde_json::Value = serde_json::from_str(&rec.to_json()).unwrap();
        value["future_field"] = serde_json::json!({"x": 1});
        assert_eq!(
            CacheRecord::from_json(value.to_string().as_bytes()).unwrap(),
            rec
        );
        assert!(CacheRecord::from_json(br#"{"key":"sha256:00"}"#).is_err());
        assert!(CacheRecord::from_json(b"not json").is_err());
    }
}
