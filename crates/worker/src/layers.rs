//! Layers on demand: a layer id names content; this module makes the content present
//! as a directory (extracting it from a blob, fetching the blob first if needed) or
//! as a blob of a given compression (reusing the blob a base layer came in, or
//! compressing the directory).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use kiln_graph::Digest;
use kiln_layer::{CompressOptions, Compression, ExtractOptions, LayerOptions};
use kiln_registry::{Client, Repository};
use kiln_solver::Progress;
use kiln_store::{BlobWriter, LayerBlob, Store};

use crate::error::WorkerError;
use crate::image::RemoteLayer;

/// The compression label a pulled layer's original blob is recorded under.
pub const SOURCE_LABEL: &str = "source";

/// The store label of a compression: `gzip-6`, `zstd-3`, `none`.
pub fn compression_label(c: &Compression) -> String {
    match c {
        Compression::Uncompressed => "none".into(),
        Compression::Gzip { level } => format!("gzip-{level}"),
        Compression::Zstd { level } => format!("zstd-{level}"),
    }
}

/// A blob ready to be exported, and where it came from.
#[derive(Debug, Clone)]
pub struct ExportBlob {
    /// The blob and its digests.
    pub blob: LayerBlob,
    /// Where the blob is on disk.
    pub path: PathBuf,
    /// The repository a pulled layer came from (for cross-repository mounts).
    pub source_repository: Option<Repository>,
    /// Compressed by this call, its digest computed from the bytes as they were
    /// written (or found in the store under that digest, committed the same way):
    /// an exporter need not hash it again.
    pub fresh: bool,
}

/// Makes layers present, once each even under concurrent requests.
pub struct Layers {
    store: Arc<Store>,
    registry: Client,
    remotes: Mutex<HashMap<Digest, RemoteLayer>>,
    locks: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

impl Layers {
    /// Layers of a store, fetched with a registry client when missing.
    pub fn new(store: Arc<Store>, registry: Client) -> Layers {
        Layers {
            store,
            registry,
            remotes: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers where a layer of a base image can be fetched from.
    pub fn add_remote(&self, layer: RemoteLayer) {
        self.remotes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(layer.diff_id.clone(), layer);
    }

    fn remote(&self, id: &Digest) -> Option<RemoteLayer> {
        self.remotes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    fn lock_for(&self, id: &Digest) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.clone())
            .or_default()
            .clone()
    }

    /// The directory of a layer, extracting (and fetching) it if needed.
    pub async fn materialize(
        &self,
        id: &Digest,
        progress: &Progress,
    ) -> Result<PathBuf, WorkerError> {
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        if let Some(l) = self.store.layer(id)? {
            return Ok(l.path);
        }
        let blob = self.source_blob(id, progress).await?;
        let store = self.store.clone();
        let id2 = id.clone();
        let short = id.short().to_string();
        let progress2 = progress.clone();
        tokio::task::spawn_blocking(move || -> Result<PathBuf, WorkerError> {
            let file = store.open_blob(&blob.digest)?;
            let work = store.work_dir()?;
            let stats = kiln_layer::extract_layer(file, work.upper(), &ExtractOptions::layer())?;
            if stats.diff_id != id2 {
                return Err(WorkerError::Invalid(format!(
                    "layer blob {} unpacks to {} but the image config says {}",
                    blob.digest, stats.diff_id, id2
                )));
            }
            let layer = work.commit(&id2)?;
            progress2.status(
                format!("extracting sha256:{short}"),
                stats.size,
                Some(stats.size),
                true,
            );
            Ok(layer.path)
        })
        .await
        .map_err(|e| WorkerError::Failed(format!("extracting layer {id}: {e}")))?
    }

    /// The blob a pulled layer came in, fetching it from its registry when the store
    /// does not have it.
    async fn source_blob(
        &self,
        id: &Digest,
        progress: &Progress,
    ) -> Result<LayerBlob, WorkerError> {
        if let Some(b) = self.store.layer_blob(id, SOURCE_LABEL)?
            && self.store.has_blob(&b.digest)
        {
            return Ok(b);
        }
        let Some(remote) = self.remote(id) else {
            return Err(WorkerError::Invalid(format!(
                "layer {id} is neither in the store nor in a known image (was the store pruned during the build?)"
            )));
        };
        let blob = LayerBlob {
            digest: remote.blob.digest.clone(),
            diff_id: id.clone(),
            size: remote.blob.size,
            media_type: remote.blob.media_type.clone(),
        };
        if !self.store.has_blob(&remote.blob.digest) {
            let writer = self.store.blob_writer()?;
            let mut sink = AsyncBlobWriter {
                inner: Some(writer),
            };
            let status_id = format!("{}", remote.blob.digest);
            let p = progress.clone();
            let total = remote.blob.size;
            self.registry
                .fetch_blob(&remote.repository, &remote.blob, &mut sink, |s| {
                    p.status(status_id.clone(), s.done, Some(total), false)
                })
                .await?;
            let writer = sink
                .inner
                .take()
                .ok_or_else(|| WorkerError::Failed("blob writer lost during download".into()))?;
            let store = self.store.clone();
            let (digest, size) = (remote.blob.digest.clone(), remote.blob.size);
            tokio::task::spawn_blocking(move || writer.commit(Some(&digest), Some(size)))
                .await
                .map_err(|e| WorkerError::Failed(format!("committing blob: {e}")))??;
            drop(store);
            progress.status(format!("{}", remote.blob.digest), total, Some(total), true);
        }
        self.store.put_layer_blob(id, SOURCE_LABEL, &blob)?;
        Ok(blob)
    }

    /// A blob of the layer for export: the original blob of a pulled layer (as
    /// BuildKit reuses base layers unless told to recompress), or the layer directory
    /// compressed as asked (kept in the store for the next export).
    pub async fn export_blob(
        &self,
        id: &Digest,
        compression: Compression,
        force: bool,
        epoch: Option<i64>,
        progress: &Progress,
    ) -> Result<ExportBlob, WorkerError> {
        if !force
            && (self.store.layer_blob(id, SOURCE_LABEL)?.is_some() || self.remote(id).is_some())
        {
            let blob = self.source_blob(id, progress).await?;
            return Ok(ExportBlob {
                path: self.store.blob_path(&blob.digest),
                blob,
                source_repository: self.remote(id).map(|r| r.repository),
                fresh: false,
            });
        }
        // An epoch rewrites times, which makes a different blob of the same layer.
        let label = match epoch {
            Some(e) => format!("{}-epoch{e}", compression_label(&compression)),
            None => compression_label(&compression),
        };
        if let Some(b) = self.store.layer_blob(id, &label)?
            && self.store.has_blob(&b.digest)
        {
            return Ok(ExportBlob {
                path: self.store.blob_path(&b.digest),
                blob: b,
                source_repository: None,
                fresh: false,
            });
        }
        let dir = self.materialize(id, progress).await?;
        let known_diff_id = self.known_diff_id(id, epoch)?;
        let store = self.store.clone();
        let id2 = id.clone();
        let blob = tokio::task::spawn_blocking(move || -> Result<LayerBlob, WorkerError> {
            // compress_layer hashes what it writes: the writer need not again.
            let mut writer = store.prehashed_blob_writer()?;
            let opts = CompressOptions {
                layer: LayerOptions {
                    source_date_epoch: epoch,
                },
                compression,
                threads: None,
                known_diff_id,
            };
            let stats = kiln_layer::compress_layer(&dir, &mut writer, &opts)?;
            writer
                .flush()
                .map_err(|e| WorkerError::io("writing layer blob", e))?;
            let digest = writer.commit(Some(&stats.digest), Some(stats.size))?;
            let blob = LayerBlob {
                digest,
                diff_id: stats.diff_id,
                size: stats.size,
                media_type: stats.media_type.to_string(),
            };
            store.put_layer_blob(&id2, &label, &blob)?;
            Ok(blob)
        })
        .await
        .map_err(|e| WorkerError::Failed(format!("compressing layer {id}: {e}")))??;
        Ok(ExportBlob {
            path: self.store.blob_path(&blob.digest),
            blob,
            source_repository: None,
            fresh: true,
        })
    }
}

impl Layers {
    /// The `diff_id` of the layer's tar written with `epoch`, if an earlier export
    /// compressed it another way: every blob kiln wrote of a layer with the same
    /// epoch holds the same tar.
    fn known_diff_id(
        &self,
        id: &Digest,
        epoch: Option<i64>,
    ) -> Result<Option<Digest>, WorkerError> {
        let suffix = epoch.map(|e| format!("-epoch{e}"));
        let own = |label: &str| {
            ["none", "gzip-", "zstd-"]
                .iter()
                .any(|p| label.starts_with(p))
        };
        Ok(self
            .store
            .layer_blobs(id)?
            .into_iter()
            .find(|(label, _)| {
                own(label)
                    && match &suffix {
                        Some(s) => label.ends_with(s.as_str()),
                        None => !label.contains("-epoch"),
                    }
            })
            .map(|(_, blob)| blob.diff_id))
    }
}

/// Lets the registry client stream into a store blob writer. Local file writes are
/// quick enough to do inline.
struct AsyncBlobWriter {
    inner: Option<BlobWriter>,
}

impl tokio::io::AsyncWrite for AsyncBlobWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.inner.as_mut() {
            Some(w) => Poll::Ready(w.write(buf)),
            None => Poll::Ready(Err(std::io::Error::other("writer closed"))),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.inner.as_mut() {
            Some(w) => Poll::Ready(w.flush()),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}
