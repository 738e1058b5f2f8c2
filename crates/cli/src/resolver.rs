//! The frontend's window on images: normalizes references and resolves base image
//! configs through the worker's image cache and the registry.

use std::collections::HashMap;
use std::path::PathBuf;

use kiln_frontend::convert::{ImageResolver, ImageSource, NormalizedRef, ResolvedImage};
use kiln_graph::{Digest, ImageConfig, Platform};
use kiln_registry::Reference;
use kiln_worker::Images;
use tokio::runtime::Handle;

/// Resolves images for the frontend; called from a blocking thread, it waits on the
/// async image cache.
pub struct Resolver {
    pub images: Images,
    pub handle: Handle,
    pub allow_stale: bool,
    /// OCI layouts given as named contexts, by name.
    pub oci_layouts: HashMap<String, PathBuf>,
}

impl ImageResolver for Resolver {
    fn normalize(&self, reference: &str) -> Result<NormalizedRef, String> {
        let r = Reference::parse(reference).map_err(|e| e.to_string())?;
        Ok(NormalizedRef {
            full: r.to_string(),
            familiar: r.familiar(),
        })
    }

    fn resolve(
        &self,
        image: ImageSource<'_>,
        platform: &Platform,
    ) -> Result<kiln_frontend::convert::ResolvedImage, String> {
        match image {
            ImageSource::Registry(reference) => {
                let r = Reference::parse(reference).map_err(|e| e.to_string())?;
                let img = self
                    .handle
                    .block_on(self.images.resolve(&r, platform, self.allow_stale))
                    .map_err(|e| e.to_string())?;
                Ok(ResolvedImage {
                    reference: img.reference.to_string(),
                    config: img.config,
                })
            }
            ImageSource::OciLayout { context, reference } => {
                let dir = self
                    .oci_layouts
                    .get(context)
                    .ok_or_else(|| format!("no OCI layout named {context}"))?;
                resolve_oci_layout(dir, reference, platform)
            }
        }
    }
}

/// Finds the manifest for `platform` in an OCI layout, by tag (`ref.name`
/// annotation) or digest, and reads its config.
fn resolve_oci_layout(
    dir: &std::path::Path,
    reference: &str,
    platform: &Platform,
) -> Result<ResolvedImage, String> {
    let read = |d: &str| -> Result<Vec<u8>, String> {
        let digest: Digest = d.parse().map_err(|e| format!("{e}"))?;
        let p = dir.join("blobs/sha256").join(digest.hex());
        let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if Digest::of(&bytes) != digest {
            return Err(format!("{} does not match its digest", p.display()));
        }
        Ok(bytes)
    };
    let index_path = dir.join("index.json");
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&index_path).map_err(|e| format!("{}: {e}", index_path.display()))?,
    )
    .map_err(|e| format!("{}: {e}", index_path.display()))?;
    let wanted = reference.trim_start_matches('@');
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let entry = entries
        .iter()
        .find(|m| {
            m["digest"].as_str() == Some(wanted)
                || m["annotations"]["org.opencontainers.image.ref.name"].as_str() == Some(wanted)
        })
        .or_else(|| {
            if wanted.is_empty() || wanted == "latest" {
                entries.first()
            } else {
                None
            }
        })
        .ok_or_else(|| format!("{reference:?} not found in {}", index_path.display()))?;
    let mut digest = entry["digest"].as_str().unwrap_or_default().to_string();
    let mut doc: serde_json::Value =
        serde_json::from_slice(&read(&digest)?).map_err(|e| format!("manifest {digest}: {e}"))?;
    // Nested indexes: pick the platform.
    while doc["manifests"].is_array() {
        let m = doc["manifests"]
            .as_array()
            .and_then(|ms| {
                ms.iter().find(|m| {
                    m["platform"]["os"].as_str() == Some(platform.os.as_str())
                        && m["platform"]["architecture"].as_str()
                            == Some(platform.architecture.as_str())
                })
            })
            .ok_or_else(|| format!("no manifest for {platform} in {}", dir.display()))?;
        digest = m["digest"].as_str().unwrap_or_default().to_string();
        doc = serde_json::from_slice(&read(&digest)?)
            .map_err(|e| format!("manifest {digest}: {e}"))?;
    }
    let config_digest = doc["config"]["digest"].as_str().unwrap_or_default();
    let config: ImageConfig = serde_json::from_slice(&read(config_digest)?)
        .map_err(|e| format!("config {config_digest}: {e}"))?;
    Ok(ResolvedImage {
        reference: digest,
        config,
    })
}
