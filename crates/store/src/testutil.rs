//! Fixtures shared by the unit tests.

use std::fs;

use kiln_graph::Digest;

use crate::{CacheRecord, KeyComponent, Store};

/// Commits a layer of `files` small files under the id `Digest::of(tag)`.
pub(crate) fn commit_layer(store: &Store, tag: &str, files: usize) -> Digest {
    let work = store.work_dir().unwrap();
    for i in 0..files {
        fs::write(work.upper().join(format!("f{i}")), format!("{tag} {i}")).unwrap();
    }
    let id = Digest::of(tag.as_bytes());
    work.commit(&id).unwrap();
    id
}

/// A record for `tag` over the given layers.
pub(crate) fn record_with(tag: &str, layers: Vec<Digest>, created: i64) -> CacheRecord {
    CacheRecord {
        key: Digest::of(format!("key {tag}").as_bytes()),
        vertex: Digest::of(format!("vertex {tag}").as_bytes()),
        name: format!("[stage 1/2] RUN {tag}"),
        output: Digest::of(format!("output {tag}").as_bytes()),
        layers,
        components: vec![
            KeyComponent::new("op", Digest::of(b"op")),
            KeyComponent::new("file /app/main.go", Digest::of(tag.as_bytes())),
        ],
        created_at_ns: created,
    }
}

/// A record for `tag` over layers named by tags, committing (empty) layers that are
/// not in the store yet.
pub(crate) fn record(store: &Store, tag: &str, layer_tags: &[&str], created: i64) -> CacheRecord {
    let layers = layer_tags
        .iter()
        .map(|l| {
            let id = Digest::of(l.as_bytes());
            if store.layer(&id).unwrap().is_none() {
                store.work_dir().unwrap().commit(&id).unwrap();
            }
            id
        })
        .collect();
    record_with(tag, layers, created)
}
