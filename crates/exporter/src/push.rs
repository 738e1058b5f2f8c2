//! Pushing an assembled image to registries, as BuildKit's image exporter does
//! (`util/push`): for each name, every blob the manifest references is checked
//! with a HEAD request and skipped when the repository has it, mounted from another
//! repository of the same registry when kiln knows one that has it (the repository
//! a base layer was pulled from, or one this push already filled), and uploaded
//! otherwise; the manifest goes last, under the name's tag. Non-distributable
//! (foreign) layers are not pushed, as BuildKit skips them.

use kiln_graph::Digest;
use kiln_registry::{Client, Descriptor, Reference, Repository};

use crate::assemble::{Assembled, Image};
use crate::error::ExportError;

/// What a push is doing, reported as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushProgress {
    /// The repository already has the blob; nothing was sent.
    BlobExists { target: Reference, digest: Digest },
    /// The registry linked the blob from another repository; nothing was sent.
    BlobMounted {
        target: Reference,
        digest: Digest,
        from: Repository,
    },
    /// Bytes of a blob upload sent so far.
    BlobUploading {
        target: Reference,
        digest: Digest,
        done: u64,
        total: u64,
    },
    /// A blob was uploaded.
    BlobUploaded {
        target: Reference,
        digest: Digest,
        size: u64,
    },
    /// The manifest was stored under the name's tag (or digest).
    ManifestPushed { target: Reference, digest: Digest },
}

fn is_non_distributable(media_type: &str) -> bool {
    media_type.contains("nondistributable") || media_type.contains(".foreign.")
}

/// Pushes `a` (with `image`'s layer blobs) to every name in `names`. A name pinned to
/// a digest (`repo@sha256:…`, as for `push-by-digest`) must be the manifest's digest.
pub async fn push(
    client: &Client,
    names: &[Reference],
    a: &Assembled,
    image: &Image,
    progress: impl Fn(PushProgress) + Send + Sync,
) -> Result<(), ExportError> {
    if image.layers.len() != a.layers.len() {
        return Err(ExportError::InvalidImage(format!(
            "the image has {} layers but was assembled with {}",
            image.layers.len(),
            a.layers.len()
        )));
    }
    // Repositories this push has filled: later names on the same registry mount from them.
    let mut pushed: Vec<Repository> = Vec::new();
    for name in names {
        let repo = name.repository();
        let fail = |source| ExportError::Push {
            reference: name.to_string(),
            source,
        };
        for (layer, desc) in image.layers.iter().zip(&a.layers) {
            if is_non_distributable(&desc.media_type) {
                continue;
            }
            let mut sources: Vec<&Repository> = layer.source_repo.iter().collect();
            sources.extend(pushed.iter());
            if skip_or_mount(client, name, desc, &sources, &progress)
                .await
                .map_err(fail)?
            {
                continue;
            }
            let mut file = tokio::fs::File::open(&layer.blob)
                .await
                .map_err(|e| ExportError::io("open layer blob", &layer.blob, e))?;
            client
                .push_blob(repo, desc, &mut file, |p| {
                    progress(PushProgress::BlobUploading {
                        target: name.clone(),
                        digest: desc.digest.clone(),
                        done: p.done,
                        total: p.total,
                    })
                })
                .await
                .map_err(fail)?;
            progress(PushProgress::BlobUploaded {
                target: name.clone(),
                digest: desc.digest.clone(),
                size: desc.size,
            });
        }

        let config = Descriptor::of(a.media_types.config(), &a.config);
        let sources: Vec<&Repository> = pushed.iter().collect();
        if !skip_or_mount(client, name, &config, &sources, &progress)
            .await
            .map_err(fail)?
        {
            client
                .push_blob(repo, &config, &mut a.config.as_slice(), |_| {})
                .await
                .map_err(fail)?;
            progress(PushProgress::BlobUploaded {
                target: name.clone(),
                digest: config.digest.clone(),
                size: config.size,
            });
        }

        let digest = client
            .push_manifest(name, a.media_types.manifest(), &a.manifest)
            .await
            .map_err(fail)?;
        progress(PushProgress::ManifestPushed {
            target: name.clone(),
            digest,
        });
        if !pushed.contains(repo) {
            pushed.push(repo.clone());
        }
    }
    Ok(())
}

/// `true` when the blob need not be uploaded: the repository has it, or a mount
/// from one of `sources` (same registry, other repository) succeeded.
async fn skip_or_mount(
    client: &Client,
    name: &Reference,
    desc: &Descriptor,
    sources: &[&Repository],
    progress: &(impl Fn(PushProgress) + Send + Sync),
) -> Result<bool, kiln_registry::Error> {
    let repo = name.repository();
    if client.blob_exists(repo, &desc.digest).await? {
        progress(PushProgress::BlobExists {
            target: name.clone(),
            digest: desc.digest.clone(),
        });
        return Ok(true);
    }
    for from in sources {
        if from.registry() != repo.registry() || *from == repo {
            continue;
        }
        if client.mount_blob(repo, from, &desc.digest).await? {
            progress(PushProgress::BlobMounted {
                target: name.clone(),
                digest: desc.digest.clone(),
                from: (*from).clone(),
            });
            return Ok(true);
        }
    }
    Ok(false)
}

/// Pushes a multi-platform image: every platform's manifest (with its blobs) by
/// digest, then the index to every name.
pub async fn push_multi(
    client: &Client,
    names: &[Reference],
    parts: &[(&Assembled, &Image)],
    progress: impl Fn(PushProgress) + Send + Sync,
) -> Result<(), ExportError> {
    for name in names {
        for (a, image) in parts {
            let by_digest = name.pinned(a.manifest_digest.clone());
            push(
                client,
                std::slice::from_ref(&by_digest),
                a,
                image,
                &progress,
            )
            .await?;
        }
    }
    let assembled: Vec<&Assembled> = parts.iter().map(|(a, _)| *a).collect();
    let (bytes, media_type) = crate::layout::platform_index(&assembled);
    for name in names {
        let digest = client
            .push_manifest(name, media_type, &bytes)
            .await
            .map_err(|source| ExportError::Push {
                reference: name.to_string(),
                source,
            })?;
        progress(PushProgress::ManifestPushed {
            target: name.clone(),
            digest,
        });
    }
    Ok(())
}
