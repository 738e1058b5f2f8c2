//! Digest memos: the result of a deterministic digest computation, remembered under a
//! digest of everything it was computed from, so a later build can skip reading what
//! it would read again (e.g. the content digest of what a COPY selects from a stack of
//! immutable layers).
//!
//! The store does not know what a key covers: a caller must only remember a value
//! under a key that changes whenever the value could.

use kiln_graph::Digest;
use rusqlite::{OptionalExtension, params};

use crate::db::{db_err, digest_column};
use crate::error::StoreError;
use crate::fsutil::now_ns;
use crate::store::Store;

impl Store {
    /// The digest remembered under `key`, if any.
    pub fn memo(&self, key: &Digest) -> Result<Option<Digest>, StoreError> {
        let conn = self.inner.conn();
        conn.prepare_cached("SELECT value FROM digest_memos WHERE key = ?1")
            .and_then(|mut stmt| {
                stmt.query_row([key.to_string()], |row| digest_column(row, 0))
                    .optional()
            })
            .map_err(db_err(&self.inner.db_path, format!("look up memo {key}")))
    }

    /// Remembers `value` under `key`, replacing what was there.
    pub fn put_memo(&self, key: &Digest, value: &Digest) -> Result<(), StoreError> {
        let context = format!("record memo {key}");
        self.inner.write_tx(&context, |tx| {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO digest_memos (key, value, last_used_ns)
                 VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![key.to_string(), value.to_string(), now_ns()])
            })
            .map_err(db_err(&self.inner.db_path, context.clone()))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memo_is_found_under_its_key_only_and_can_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = Digest::of(b"inputs");
        assert_eq!(store.memo(&key).unwrap(), None);
        store.put_memo(&key, &Digest::of(b"first")).unwrap();
        assert_eq!(store.memo(&key).unwrap(), Some(Digest::of(b"first")));
        assert_eq!(store.memo(&Digest::of(b"other inputs")).unwrap(), None);
        store.put_memo(&key, &Digest::of(b"second")).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.memo(&key).unwrap(), Some(Digest::of(b"second")));
    }
}
