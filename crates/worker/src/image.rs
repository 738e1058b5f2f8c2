//! Base images: what a reference resolves to (for the frontend and for image
//! sources), with manifests and configs kept in the store so that a pinned image needs
//! no network, a tag resolved before costs one HEAD request, and a tag can fall back
//! to its last resolution when the registry is out of reach. Within one build each
//! reference is resolved once, however many stages name it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use kiln_graph::{Digest, ImageConfig, Platform};
use kiln_registry::{Client, Descriptor, ErrorKind, Reference, Repository};
use kiln_store::{ImageRecord, Store};
use serde::Deserialize;

use crate::error::WorkerError;

/// A layer of a registry image: its uncompressed digest (the id kiln's store knows it
/// by) and the blob to fetch it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLayer {
    /// The digest of the uncompressed layer: its id in the store.
    pub diff_id: Digest,
    /// The blob in the registry.
    pub blob: Descriptor,
    /// The repository the blob is in.
    pub repository: Repository,
}

/// An image for one platform.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// Pinned: `registry/repo:tag@sha256:...` (the digest of what the tag named, an
    /// index for multi-platform images).
    pub reference: Reference,
    /// The image config.
    pub config: ImageConfig,
    /// The layers, bottom first.
    pub layers: Vec<RemoteLayer>,
}

/// Resolves references through the registry and the store.
#[derive(Clone)]
pub struct Images {
    store: Arc<Store>,
    registry: Client,
    /// Resolutions made by this cache, by (reference, platform): a build that names
    /// the same base image in many stages asks the registry once.
    resolved: Arc<Mutex<HashMap<(String, String), Resolution>>>,
}

/// One resolution of a (reference, platform), made by the first caller; the others
/// wait for it.
type Resolution = Arc<tokio::sync::OnceCell<ResolvedImage>>;

/// The parts of an image manifest kiln reads back from the store.
#[derive(Deserialize)]
struct StoredManifest {
    #[serde(default)]
    layers: Vec<Descriptor>,
}

impl Images {
    /// An image cache over a store and a registry client.
    pub fn new(store: Arc<Store>, registry: Client) -> Images {
        Images {
            store,
            registry,
            resolved: Arc::default(),
        }
    }

    /// The registry client.
    pub fn registry(&self) -> &Client {
        &self.registry
    }

    /// Resolves a reference as written. A tag is checked with the registry: one HEAD
    /// request when the digest it names was resolved before, a full resolution
    /// otherwise; when the registry cannot be reached and `allow_stale` is set, the
    /// last resolution kept in the store is used instead. A digest-pinned reference
    /// is served from the store when it is there. Each (reference, platform) is
    /// resolved once per `Images` (once per build); failures are not remembered.
    pub async fn resolve(
        &self,
        reference: &Reference,
        platform: &Platform,
        allow_stale: bool,
    ) -> Result<ResolvedImage, WorkerError> {
        let cell = self
            .resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((reference.to_string(), platform.to_string()))
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.resolve_now(reference, platform, allow_stale))
            .await
            .cloned()
    }

    async fn resolve_now(
        &self,
        reference: &Reference,
        platform: &Platform,
        allow_stale: bool,
    ) -> Result<ResolvedImage, WorkerError> {
        if reference.digest().is_some() {
            if let Some(img) = self.stored(reference, platform)? {
                return Ok(img);
            }
        } else if self
            .store
            .image(&reference.to_string(), &platform.to_string())?
            .is_some()
        {
            // Resolved before: a HEAD says whether the tag still names the same
            // thing, whose manifest and config the store keeps under the pinned name.
            match self.registry.resolve_digest(reference).await {
                Ok(top) => {
                    if let Some(img) = self.stored(&reference.pinned(top.digest), platform)? {
                        return Ok(img);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::Unreachable | ErrorKind::Timeout) => {
                    if allow_stale && let Some(img) = self.stored(reference, platform)? {
                        return Ok(img);
                    }
                    return Err(WorkerError::Registry(e));
                }
                // Anything else is reported by the full resolution below.
                Err(_) => {}
            }
        }
        match self.registry.resolve(reference, platform).await {
            Ok(r) => self.remember(reference, platform, r),
            Err(e) => {
                let offline = matches!(e.kind(), ErrorKind::Unreachable | ErrorKind::Timeout);
                if offline
                    && allow_stale
                    && let Some(img) = self.stored(reference, platform)?
                {
                    return Ok(img);
                }
                Err(WorkerError::Registry(e))
            }
        }
    }

    fn remember(
        &self,
        asked: &Reference,
        platform: &Platform,
        r: kiln_registry::ResolvedImage,
    ) -> Result<ResolvedImage, WorkerError> {
        let manifest_digest = self
            .store
            .write_blob(&r.manifest.bytes, Some(&r.manifest_digest))?;
        let config_digest = self
            .store
            .write_blob(&r.config.bytes, Some(&r.config.descriptor.digest))?;
        let record = ImageRecord {
            manifest_digest,
            media_type: r.manifest.media_type.clone(),
            config_digest,
            layers: Vec::new(),
            resolved_at_ns: now_ns(),
        };
        let platform_key = platform.to_string();
        self.store
            .put_image(&asked.to_string(), &platform_key, &record)?;
        self.store
            .put_image(&r.reference.to_string(), &platform_key, &record)?;
        let layers = pair_layers(&r.config.parsed, &r.layers, r.reference.repository())?;
        Ok(ResolvedImage {
            reference: r.reference,
            config: r.config.parsed,
            layers,
        })
    }

    fn stored(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<Option<ResolvedImage>, WorkerError> {
        let Some(rec) = self
            .store
            .image(&reference.to_string(), &platform.to_string())?
        else {
            return Ok(None);
        };
        if !self.store.has_blob(&rec.manifest_digest) || !self.store.has_blob(&rec.config_digest) {
            return Ok(None);
        }
        let manifest: StoredManifest =
            serde_json::from_slice(&self.store.read_blob(&rec.manifest_digest)?).map_err(|e| {
                WorkerError::Invalid(format!("stored manifest {}: {e}", rec.manifest_digest))
            })?;
        let config: ImageConfig =
            serde_json::from_slice(&self.store.read_blob(&rec.config_digest)?).map_err(|e| {
                WorkerError::Invalid(format!("stored config {}: {e}", rec.config_digest))
            })?;
        let blobs = manifest.layers;
        let pinned = match reference.digest() {
            Some(_) => reference.clone(),
            None => reference.pinned(rec.manifest_digest.clone()),
        };
        let layers = pair_layers(&config, &blobs, reference.repository())?;
        Ok(Some(ResolvedImage {
            reference: pinned,
            config,
            layers,
        }))
    }
}

/// Pairs manifest layers with the config's diff_ids (the same count, in order).
fn pair_layers(
    config: &ImageConfig,
    blobs: &[Descriptor],
    repository: &Repository,
) -> Result<Vec<RemoteLayer>, WorkerError> {
    if config.rootfs.diff_ids.len() != blobs.len() {
        return Err(WorkerError::Invalid(format!(
            "image in {repository} has {} layers but its config lists {} diff_ids",
            blobs.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    config
        .rootfs
        .diff_ids
        .iter()
        .zip(blobs)
        .map(|(d, b)| {
            let diff_id: Digest = d.parse().map_err(|e| {
                WorkerError::Invalid(format!("image config in {repository}: diff_id {e}"))
            })?;
            Ok(RemoteLayer {
                diff_id,
                blob: b.clone(),
                repository: repository.clone(),
            })
        })
        .collect()
}

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
