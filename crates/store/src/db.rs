//! The metadata database: connection settings, the schema and its migrations, and
//! helpers to move digests in and out of columns.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kiln_graph::Digest;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::StoreError;

/// How long a statement waits for another process's write transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The schema, one entry per version: `MIGRATIONS[i]` takes the database from version
/// `i` to `i + 1`. Append new entries; never edit an old one.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    r#"
    CREATE TABLE layers (
        id            TEXT PRIMARY KEY,       -- layer id, "sha256:<hex>"; the dir is layers/<hex>
        size_bytes    INTEGER,                -- disk usage of the dir; NULL until first measured
        created_at_ns INTEGER NOT NULL,
        last_used_ns  INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE layer_blobs (
        layer_id    TEXT NOT NULL,
        compression TEXT NOT NULL,            -- "gzip-6", "zstd-3", "none", "source", ...
        blob_digest TEXT NOT NULL,            -- the compressed tarball in blobs/sha256/
        diff_id     TEXT NOT NULL,            -- digest of the uncompressed tarball
        size        INTEGER NOT NULL,
        media_type  TEXT NOT NULL,
        PRIMARY KEY (layer_id, compression)
    ) WITHOUT ROWID;
    CREATE INDEX layer_blobs_by_blob ON layer_blobs (blob_digest);

    CREATE TABLE cache_records (
        key             TEXT PRIMARY KEY,
        vertex          TEXT NOT NULL,
        name            TEXT NOT NULL,
        output          TEXT NOT NULL,
        components_json TEXT NOT NULL,
        created_at_ns   INTEGER NOT NULL,
        last_used_ns    INTEGER NOT NULL
    );
    CREATE INDEX cache_records_by_name ON cache_records (name, created_at_ns);
    CREATE INDEX cache_records_by_last_used ON cache_records (last_used_ns);

    CREATE TABLE cache_record_layers (
        record_key TEXT NOT NULL REFERENCES cache_records (key) ON DELETE CASCADE,
        position   INTEGER NOT NULL,          -- 0 = bottom of the chain
        layer_id   TEXT NOT NULL,
        PRIMARY KEY (record_key, position)
    ) WITHOUT ROWID;
    CREATE INDEX cache_record_layers_by_layer ON cache_record_layers (layer_id);

    CREATE TABLE images (
        reference       TEXT NOT NULL,
        platform        TEXT NOT NULL,
        manifest_digest TEXT NOT NULL,
        media_type      TEXT NOT NULL,
        config_digest   TEXT NOT NULL,
        layers_json     TEXT NOT NULL,
        resolved_at_ns  INTEGER NOT NULL,
        PRIMARY KEY (reference, platform)
    ) WITHOUT ROWID;

    CREATE TABLE file_hash_roots (
        id           INTEGER PRIMARY KEY,
        root         BLOB NOT NULL UNIQUE,    -- absolute path, raw bytes
        last_used_ns INTEGER NOT NULL
    );

    CREATE TABLE file_hashes (
        root_id     INTEGER NOT NULL REFERENCES file_hash_roots (id) ON DELETE CASCADE,
        path        BLOB NOT NULL,            -- relative to the root, raw bytes
        size        INTEGER NOT NULL,
        mtime_ns    INTEGER NOT NULL,
        ctime_ns    INTEGER NOT NULL,
        ino         INTEGER NOT NULL,
        mode        INTEGER NOT NULL,
        digest      BLOB NOT NULL,            -- 32 raw sha256 bytes
        recorded_ns INTEGER NOT NULL,         -- when the digest was computed
        PRIMARY KEY (root_id, path)
    ) WITHOUT ROWID;

    CREATE TABLE cache_mounts (
        id           TEXT PRIMARY KEY,
        dir          TEXT NOT NULL UNIQUE,    -- name under cache-mounts/
        last_used_ns INTEGER NOT NULL
    );
    "#,
    // Version 2.
    r#"
    CREATE TABLE digest_memos (
        key          TEXT PRIMARY KEY,        -- "sha256:<hex>" of what the value was computed from
        value        TEXT NOT NULL,           -- the computed digest
        last_used_ns INTEGER NOT NULL         -- when it was recorded
    ) WITHOUT ROWID;
    CREATE INDEX digest_memos_by_last_used ON digest_memos (last_used_ns);
    "#,
];

/// The newest schema version this build knows.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Wraps `rusqlite` errors with the database path and what was being done.
pub(crate) fn db_err(
    path: &Path,
    context: impl Into<String>,
) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let path = path.to_path_buf();
    let context = context.into();
    move |source| StoreError::Database {
        path,
        context,
        source,
    }
}

/// Opens `path`, sets the connection up (WAL, busy timeout, foreign keys) and brings the
/// schema up to [`SCHEMA_VERSION`].
pub(crate) fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err(path, "open"))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(db_err(path, "set busy timeout"))?;
    // journal_mode answers with the mode in force; WAL is persistent in the file.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(db_err(path, "enable WAL"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database {
            path: path.to_path_buf(),
            context: format!("enable WAL: journal mode stayed {mode:?}"),
            source: rusqlite::Error::InvalidQuery,
        });
    }
    // A 32 MiB page cache (allocated only as used) holds a large build context's
    // file hashes while they are saved.
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768;",
    )
    .map_err(db_err(path, "set pragmas"))?;
    migrate(conn, path)
}

fn migrate(mut conn: Connection, path: &Path) -> Result<Connection, StoreError> {
    // IMMEDIATE: two processes opening a new store at once serialise here, and the
    // second sees the first's schema.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err(path, "begin schema migration"))?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
        [],
    )
    .map_err(db_err(path, "create schema_version"))?;
    let found: Option<i64> = tx
        .query_row("SELECT max(version) FROM schema_version", [], |row| {
            row.get(0)
        })
        .map_err(db_err(path, "read schema version"))?;
    let found = found.unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        tx.execute_batch(sql)
            .map_err(db_err(path, format!("migrate schema to version {version}")))?;
    }
    if found < SCHEMA_VERSION {
        tx.execute("DELETE FROM schema_version", [])
            .map_err(db_err(path, "record schema version"))?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [SCHEMA_VERSION],
        )
        .map_err(db_err(path, "record schema version"))?;
    }
    tx.commit()
        .map_err(db_err(path, "commit schema migration"))?;
    Ok(conn)
}

/// Reads a column holding `"sha256:<hex>"` as a [`Digest`], reporting a malformed value
/// as a conversion failure of that column.
pub(crate) fn digest_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Digest> {
    let text: String = row.get(index)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The database file under a store root.
pub(crate) fn path_in(root: &Path) -> PathBuf {
    root.join("meta.db")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_gets_the_current_schema_and_reopening_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        let conn = open(&path).unwrap();
        let version: i64 = conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(conn);
        let conn = open(&path).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[test]
    fn a_database_from_a_newer_kiln_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        let conn = open(&path).unwrap();
        conn.execute("UPDATE schema_version SET version = 99", [])
            .unwrap();
        drop(conn);
        match open(&path) {
            Err(StoreError::SchemaTooNew { found, .. }) => assert_eq!(found, 99),
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}
