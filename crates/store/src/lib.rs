//! kiln's local store: content blobs, layer directories, cache records and metadata in
//! one state directory that several processes share and that survives `kill -9`.
//!
//! The main type is [`Store`]. Blobs are written through a [`BlobWriter`] (or
//! [`Store::write_blob`]) and committed under their sha256; a build step fills a
//! [`WorkDir`] through an overlay mount and commits its upper dir as a [`Layer`] under a
//! layer id the caller computes; a [`CacheRecord`] maps a cache key to a chain of
//! layers; an [`ImageRecord`] remembers what an image reference resolved to; a
//! [`FileHashCache`] remembers file digests of a build context; [`Store::cache_mount`]
//! gives the persistent directory of a `RUN --mount=type=cache`; [`Store::prune`]
//! collects garbage under a [`PrunePolicy`].
//!
//! ```
//! use std::io::Write;
//! use kiln_graph::Digest;
//! use kiln_store::{CacheRecord, KeyComponent, Store};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path()).unwrap();
//!
//! // A blob, streamed and verified.
//! let mut writer = store.blob_writer().unwrap();
//! writer.write_all(b"{\"schemaVersion\":2}").unwrap();
//! let manifest = writer.commit(None, Some(19)).unwrap();
//! assert!(store.has_blob(&manifest));
//!
//! // A layer: fill the upper dir, commit it under its id.
//! let work = store.work_dir().unwrap();
//! std::fs::write(work.upper().join("hello.txt"), "hi").unwrap();
//! let layer_id = Digest::of(b"the layer's content digest");
//! let layer = work.commit(&layer_id).unwrap();
//! assert!(layer.path.join("hello.txt").exists());
//!
//! // A cache record naming it.
//! let record = CacheRecord {
//!     key: Digest::of(b"cache key"),
//!     vertex: Digest::of(b"vertex"),
//!     name: "[build 2/3] COPY hello.txt /".into(),
//!     output: layer_id.clone(),
//!     layers: vec![layer_id],
//!     components: vec![KeyComponent::new("op", Digest::of(b"op"))],
//!     created_at_ns: 0,
//! };
//! assert!(store.put_cache_record(&record).unwrap());
//! assert_eq!(store.cache_record(&record.key).unwrap(), Some(record));
//! ```
//!
//! # Layout
//!
//! ```text
//! ROOT/
//!   lock                 flock: every Store holds it shared; recovery and prune take it exclusive
//!   meta.db              the metadata database (SQLite, WAL)
//!   blobs/sha256/<hex>   committed blobs (compressed layers, manifests, configs)
//!   ingest/              blob writes in progress
//!   layers/<hex>/        committed layer directories (overlayfs upper-dir format), by layer id
//!   tmp/                 work dirs of running steps; trees being removed
//!   cache-mounts/<hex>/  cache mount directories, named by the digest of their id
//! ```
//!
//! # Crash safety and concurrency
//!
//! Nothing half-written is ever visible under a committed name:
//!
//! - A blob is written to `ingest/`, synced, checked against the expected size and
//!   digest, then renamed to `blobs/sha256/<hex>` (never over an existing one: a blob
//!   that exists already counts as success) and the directory synced.
//! - A layer is built in `tmp/<unique>/upper/` and renamed to `layers/<hex>` in one
//!   step (again never over an existing one: the first copy wins, the second is
//!   discarded), then its row is written. A directory under `layers/` therefore always
//!   is a finished layer; one without a row (its committer died between the rename and
//!   the row) is adopted by the next commit of that id or removed by recovery.
//! - A cache record is written in one transaction with its layer list, and only if
//!   every layer it names has a row. Removal goes the other way: rows first, then the
//!   directory is moved into `tmp/` with one rename and deleted there.
//!
//! Several processes (and several `Store`s in one process, which behave the same) use
//! the directory at once: each holds `lock` shared while it is open. A process that
//! opens the store and can take the lock exclusive without waiting is alone, and runs
//! recovery (see below) before downgrading. [`Store::prune`] waits for the exclusive
//! lock, so it runs only when no other `Store` is open. Recovery removes `ingest/` and
//! `tmp/` leftovers, layer directories without a row, layer rows without a directory,
//! cache records that name a missing layer, layer-blob and image rows that name a
//! missing blob, and cache mounts that lost their row or directory.
//!
//! The database is SQLite (through `rusqlite`, with the SQLite sources bundled so no
//! system library is needed) in WAL mode with `synchronous=NORMAL` and a 60 s busy
//! timeout; every write is a short `BEGIN IMMEDIATE` transaction. SQLite rather than
//! redb or another embedded Rust store because several processes share the store: WAL
//! gives them concurrent readers, serialised writers and crash-safe transactions
//! across processes, while redb (and fjall, sled) open a database file from one
//! process at a time.
//!
//! What survives what: a process crash (`kill -9`) at any moment loses at most the
//! operation in progress. A power loss can additionally lose the last few committed
//! transactions (`synchronous=NORMAL`), never consistency. Blob contents are synced
//! before they are committed; layer contents are not synced file by file (that would
//! make a commit cost as much as writing the layer twice; containerd's overlay
//! snapshotter does the same), so after a power loss a recent layer may need to be
//! rebuilt: `kiln` can delete it and the records naming it.
//!
//! Removing a tree (a work dir, a pruned layer) never deletes through a mount point: a
//! mount left under a work dir by a crashed step, such as a bind-mounted build context,
//! is detached first, and if it cannot be the removal stops with an error.
//!
//! # Tables
//!
//! Digests are stored as `sha256:<hex>` text, except in `file_hashes` (32 raw bytes).
//! Times are nanoseconds since the Unix epoch. `schema_version(version)` holds the
//! schema version; migrations run in order at open.
//!
//! | table | columns | what |
//! |---|---|---|
//! | `layers` | `id`, `size_bytes`, `created_at_ns`, `last_used_ns` | one row exactly per directory in `layers/`; `size_bytes` is NULL until measured |
//! | `layer_blobs` | `layer_id`, `compression`, `blob_digest`, `diff_id`, `size`, `media_type` | tarballs of a layer in `blobs/`, one per compression label (`gzip-6`, `zstd-3`, `none`, `source`, ...) |
//! | `cache_records` | `key`, `vertex`, `name`, `output`, `components_json`, `created_at_ns`, `last_used_ns` | a cache record; `components_json` is the JSON array of its [`KeyComponent`]s |
//! | `cache_record_layers` | `record_key`, `position`, `layer_id` | a record's layer chain, bottom (position 0) first; a table rather than a JSON column so recovery and GC can join on it |
//! | `images` | `reference`, `platform`, `manifest_digest`, `media_type`, `config_digest`, `layers_json`, `resolved_at_ns` | what a reference resolved to ([`ImageRecord`]) |
//! | `file_hash_roots` | `id`, `root`, `last_used_ns` | build contexts with remembered file digests |
//! | `file_hashes` | `root_id`, `path`, `size`, `mtime_ns`, `ctime_ns`, `ino`, `mode`, `digest`, `recorded_ns` | the [`FileHashCache`] rows of one context |
//! | `cache_mounts` | `id`, `dir`, `last_used_ns` | cache mount ids and their directory names |
//! | `digest_memos` | `key`, `value`, `last_used_ns` | digests computed before, under a digest of their inputs ([`Store::memo`]) |
//!
//! # The JSON form of a cache record
//!
//! [`CacheRecord::to_json`] writes one JSON object with exactly these fields, in this
//! order, and [`CacheRecord::from_json`] reads it back (ignoring fields it does not
//! know, so a record from a newer kiln can still be read). Digests are
//! `sha256:<64 lower-case hex>` strings; `created_at_ns` is an integer.
//!
//! ```json
//! {"key":"sha256:…","vertex":"sha256:…","name":"[build 2/3] COPY . /app",
//!  "output":"sha256:…","layers":["sha256:…","sha256:…"],
//!  "components":[{"label":"op","digest":"sha256:…"},{"label":"file /app/main.go","digest":"sha256:…"}],
//!  "created_at_ns":1700000000000000000}
//! ```
//!
//! - `key`: the cache key; `vertex`: the vertex that produced the result; `name`: for
//!   people.
//! - `output`: the digest of the result's content.
//! - `layers`: the result's whole layer chain, bottom first, as layer ids. With each
//!   layer's tarballs ([`Store::layer_blobs`]) a record is self-contained: it can be
//!   exported and imported on another machine.
//! - `components`: what the key was computed from, as (label, digest) pairs in the
//!   order they were hashed, used to explain a later miss.
//!
//! # Written by hand
//!
//! The mount-aware tree removal (std's `remove_dir_all` follows no symlinks but does
//! descend into mount points) and the few lines of ingest and rename protocol; the
//! rest is `rusqlite`, `rustix` and `sha2`.

#![deny(missing_docs)]

mod blob;
mod cache_mount;
mod db;
mod error;
mod filehash;
mod fsutil;
mod gc;
mod image;
mod layer;
mod memo;
mod record;
mod recovery;
mod store;
#[cfg(test)]
mod testutil;

pub use blob::BlobWriter;
pub use error::StoreError;
pub use filehash::FileHashCache;
pub use gc::{PrunePolicy, PruneReport, Usage};
pub use image::ImageRecord;
pub use layer::{Layer, LayerBlob, WorkDir};
pub use record::{CacheRecord, KeyComponent};
pub use store::Store;
