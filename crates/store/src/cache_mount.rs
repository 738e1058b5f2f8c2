//! Cache mounts: one persistent directory per `RUN --mount=type=cache` id, kept across
//! builds under `cache-mounts/`.

use std::fs;
use std::io;
use std::path::PathBuf;

use kiln_graph::Digest;
use rusqlite::params;

use crate::db::db_err;
use crate::error::{IoContext, StoreError};
use crate::fsutil::now_ns;
use crate::store::{CACHE_MOUNTS, Store};

impl Store {
    /// The persistent directory for cache mount `id`, created empty on first use and
    /// marked used on every call. Any string is a valid id: the directory is named by
    /// its digest. Sharing it between concurrent steps is the caller's business.
    pub fn cache_mount(&self, id: &str) -> Result<PathBuf, StoreError> {
        let name = Digest::of(id.as_bytes()).hex().to_string();
        let path = self.inner.dir(CACHE_MOUNTS).join(&name);
        let inner = &self.inner;
        let _no_gc = inner.gc_read();
        // Row first: a crash before the mkdir leaves a row without a dir, which the
        // next call (or recovery) repairs.
        let context = format!("record cache mount {id:?}");
        inner.write_tx(&context, |tx| {
            tx.prepare_cached(
                "INSERT INTO cache_mounts (id, dir, last_used_ns) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET last_used_ns = excluded.last_used_ns",
            )
            .and_then(|mut stmt| stmt.execute(params![id, name, now_ns()]))
            .map_err(db_err(&inner.db_path, context.clone()))?;
            Ok(())
        })?;
        match fs::create_dir(&path) {
            Ok(()) => Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(path),
            Err(e) => Err(e).io_context("create cache mount directory", path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_mount_persists_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let path = store.cache_mount("/root/.cache/go-build").unwrap();
        assert!(path.starts_with(dir.path().join("cache-mounts")));
        fs::write(path.join("obj"), "cached").unwrap();
        let other = store.cache_mount("gomod").unwrap();
        assert_ne!(other, path);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let again = store.cache_mount("/root/.cache/go-build").unwrap();
        assert_eq!(again, path);
        assert_eq!(fs::read_to_string(again.join("obj")).unwrap(), "cached");
    }
}
