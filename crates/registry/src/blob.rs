//! Blob and manifest transfers: streaming a blob into the caller's sink with its size
//! and digest checked, checking for and mounting blobs, uploading blobs (one PUT, or
//! PATCH chunks and a closing PUT) and pushing manifests.

use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LOCATION};
use reqwest::{Method, Response, StatusCode, Url};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use kiln_graph::Digest;

use crate::auth::{pull_scope, push_scope};
use crate::client::{Client, header_text, header_value};
use crate::config::Endpoint;
use crate::error::{Error, Problem};
use crate::manifest::Descriptor;
use crate::reference::{Reference, Repository};
use crate::transport::{Call, root_cause};

/// How far a blob transfer has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes moved so far.
    pub done: u64,
    /// The blob's size.
    pub total: u64,
}

/// Where a local source that does not match its descriptor is said to come from.
const LOCAL_SOURCE: &str = "the local source";

impl Client {
    /// Streams the blob `descriptor` of `repository` into `sink`, calling `progress`
    /// as bytes arrive. The size and sha256 digest are checked as the bytes pass; on
    /// any error the sink has received a partial or wrong blob and the caller must
    /// discard it. On success the sink has been flushed, not shut down. Redirects
    /// (to blob storage) are followed.
    pub async fn fetch_blob<W>(
        &self,
        repository: &Repository,
        descriptor: &Descriptor,
        sink: &mut W,
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<(), Error>
    where
        W: AsyncWrite + Unpin + Send + ?Sized,
    {
        let endpoint = self.endpoint(repository.registry());
        self.fetch_blob_inner(
            &endpoint,
            repository,
            descriptor,
            sink,
            &mut progress,
            "blob",
        )
        .await
        .map_err(|problem| {
            Error::new(
                format!("fetch blob {} from {repository}", descriptor.digest),
                problem,
            )
        })
    }

    pub(crate) async fn fetch_blob_inner<W>(
        &self,
        endpoint: &Endpoint,
        repository: &Repository,
        descriptor: &Descriptor,
        sink: &mut W,
        progress: &mut (dyn FnMut(Progress) + Send),
        noun: &str,
    ) -> Result<(), Problem>
    where
        W: AsyncWrite + Unpin + Send + ?Sized,
    {
        let what = format!("{noun} {}", descriptor.digest);
        let location = repository.to_string();
        let url = self.url(
            endpoint,
            repository,
            &format!("blobs/{}", descriptor.digest),
        )?;
        let mut call = Call::new(
            endpoint,
            Method::GET,
            url,
            format!("GET {what} of {}", repository.path()),
        );
        call.scopes = vec![pull_scope(repository.path())];
        let mut response = self.inner.send(&call).await?;
        if response.status() != StatusCode::OK {
            return Err(self
                .inner
                .status_problem(&call, response, Some((&what, &location)))
                .await);
        }
        let expected = descriptor.size;
        let size_mismatch = |actual: u64| Problem::SizeMismatch {
            what: what.clone(),
            location: location.clone(),
            actual,
            expected,
        };
        if let Some(announced) = response.content_length()
            && announced != expected
        {
            return Err(size_mismatch(announced));
        }
        let mut hasher = Sha256::new();
        let mut done = 0u64;
        progress(Progress {
            done,
            total: expected,
        });
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(self.inner.transport_problem(&call, &e)),
                Err(e) => {
                    return Err(Problem::Interrupted {
                        what,
                        location,
                        received: done,
                        reason: root_cause(&e),
                    });
                }
            };
            let len = chunk.len() as u64;
            if done + len > expected {
                return Err(size_mismatch(done + len));
            }
            hasher.update(&chunk);
            sink.write_all(&chunk).await.map_err(|source| Problem::Io {
                operation: "write",
                what: what.clone(),
                source,
            })?;
            done += len;
            progress(Progress {
                done,
                total: expected,
            });
        }
        if done != expected {
            return Err(size_mismatch(done));
        }
        let actual = Digest::from_sha256(hasher.finalize().into());
        if actual != descriptor.digest {
            return Err(Problem::DigestMismatch {
                what,
                location,
                actual: actual.to_string(),
                expected: descriptor.digest.to_string(),
            });
        }
        sink.flush().await.map_err(|source| Problem::Io {
            operation: "write",
            what,
            source,
        })
    }

    /// Whether `repository` has the blob `digest` (a HEAD request).
    pub async fn blob_exists(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<bool, Error> {
        self.blob_exists_inner(repository, digest)
            .await
            .map_err(|problem| {
                Error::new(format!("check for blob {digest} in {repository}"), problem)
            })
    }

    async fn blob_exists_inner(
        &self,
        repository: &Repository,
        digest: &Digest,
    ) -> Result<bool, Problem> {
        let endpoint = self.endpoint(repository.registry());
        let url = self.url(&endpoint, repository, &format!("blobs/{digest}"))?;
        let mut call = Call::new(
            &endpoint,
            Method::HEAD,
            url,
            format!("HEAD blob {digest} of {}", repository.path()),
        );
        call.scopes = vec![pull_scope(repository.path())];
        let response = self.inner.send(&call).await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.inner.status_problem(&call, response, None).await),
        }
    }

    /// Asks the registry to link blob `digest` from `from` into `repository` without
    /// uploading it. `true` if it did; `false` if it cannot (another registry, blob
    /// unknown there, no read access to `from`), in which case the caller uploads the
    /// blob with [`Client::push_blob`].
    pub async fn mount_blob(
        &self,
        repository: &Repository,
        from: &Repository,
        digest: &Digest,
    ) -> Result<bool, Error> {
        self.mount_blob_inner(repository, from, digest)
            .await
            .map_err(|problem| {
                Error::new(
                    format!("mount blob {digest} from {from} into {repository}"),
                    problem,
                )
            })
    }

    async fn mount_blob_inner(
        &self,
        repository: &Repository,
        from: &Repository,
        digest: &Digest,
    ) -> Result<bool, Problem> {
        if from.registry() != repository.registry() {
            return Ok(false);
        }
        let endpoint = self.endpoint(repository.registry());
        let mut url = self.url(&endpoint, repository, "blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from.path());
        let mut call = Call::new(
            &endpoint,
            Method::POST,
            url,
            format!("mount of blob {digest} into {}", repository.path()),
        );
        call.scopes = vec![push_scope(repository.path()), pull_scope(from.path())];
        let response = self.inner.send(&call).await?;
        match response.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                // The registry opened an upload session instead; close it.
                if let Ok(session) = upload_location(&call, &response) {
                    self.cancel_upload(&endpoint, session, repository).await;
                }
                Ok(false)
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Ok(false),
            _ => Err(self.inner.status_problem(&call, response, None).await),
        }
    }

    /// Uploads the blob `descriptor` to `repository`, reading it from `source`. A blob
    /// up to [`crate::ClientConfig::upload_chunk_size`] goes in one PUT; a larger one in
    /// PATCH chunks of that size and a closing PUT. The source's size and digest are
    /// checked against the descriptor before the upload is committed. Whether to skip
    /// a blob the registry has ([`Client::blob_exists`]) is the caller's choice.
    pub async fn push_blob<R>(
        &self,
        repository: &Repository,
        descriptor: &Descriptor,
        source: &mut R,
        mut progress: impl FnMut(Progress) + Send,
    ) -> Result<(), Error>
    where
        R: AsyncRead + Unpin + Send + ?Sized,
    {
        self.push_blob_inner(repository, descriptor, source, &mut progress)
            .await
            .map_err(|problem| {
                Error::new(
                    format!("push blob {} to {repository}", descriptor.digest),
                    problem,
                )
            })
    }

    async fn push_blob_inner<R>(
        &self,
        repository: &Repository,
        descriptor: &Descriptor,
        source: &mut R,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<(), Problem>
    where
        R: AsyncRead + Unpin + Send + ?Sized,
    {
        let endpoint = self.endpoint(repository.registry());
        let what = format!("blob {}", descriptor.digest);
        let path = repository.path();
        let scopes = vec![push_scope(path)];

        let url = self.url(&endpoint, repository, "blobs/uploads/")?;
        let mut call = Call::new(
            &endpoint,
            Method::POST,
            url,
            format!("upload of {what} to {path}"),
        );
        call.scopes = scopes.clone();
        let response = self.inner.send(&call).await?;
        if response.status() != StatusCode::ACCEPTED {
            return Err(self.inner.status_problem(&call, response, None).await);
        }
        let mut session = upload_location(&call, &response)?;

        let total = descriptor.size;
        let chunk_size = self.inner.config.upload_chunk_size.max(1);
        let mut hasher = Sha256::new();
        let mut done = 0u64;
        progress(Progress { done, total });
        let final_body = if total <= chunk_size as u64 {
            let data = read_chunk(source, total as usize + 1, &what).await?;
            hasher.update(&data);
            done = data.len() as u64;
            if let Err(problem) = check_source(descriptor, done, &hasher, &what) {
                self.cancel_upload(&endpoint, session, repository).await;
                return Err(problem);
            }
            Some(data)
        } else {
            loop {
                let data = read_chunk(source, chunk_size, &what).await?;
                if data.is_empty() {
                    break;
                }
                let len = data.len() as u64;
                if done + len > total {
                    self.cancel_upload(&endpoint, session, repository).await;
                    return Err(Problem::SizeMismatch {
                        what,
                        location: LOCAL_SOURCE.to_string(),
                        actual: done + len,
                        expected: total,
                    });
                }
                hasher.update(&data);
                let mut patch = Call::new(
                    &endpoint,
                    Method::PATCH,
                    session.clone(),
                    format!("PATCH of {what} to {path}"),
                );
                patch.scopes = scopes.clone();
                patch.retry = false;
                patch.headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                patch.headers.insert(
                    "content-range",
                    header_value(&format!("{}-{}", done, done + len - 1)),
                );
                patch.body = Some(data.into());
                let response = self.inner.send(&patch).await?;
                if response.status() != StatusCode::ACCEPTED
                    && response.status() != StatusCode::NO_CONTENT
                {
                    return Err(self.inner.status_problem(&patch, response, None).await);
                }
                session = upload_location(&patch, &response)?;
                done += len;
                progress(Progress { done, total });
            }
            if let Err(problem) = check_source(descriptor, done, &hasher, &what) {
                self.cancel_upload(&endpoint, session, repository).await;
                return Err(problem);
            }
            None
        };

        session
            .query_pairs_mut()
            .append_pair("digest", &descriptor.digest.to_string());
        let mut put = Call::new(
            &endpoint,
            Method::PUT,
            session,
            format!("PUT of {what} to {path}"),
        );
        put.scopes = scopes;
        put.retry = false;
        put.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let body = final_body.unwrap_or_default();
        put.headers
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        put.body = Some(body.into());
        let response = self.inner.send(&put).await?;
        if response.status() != StatusCode::CREATED && response.status() != StatusCode::NO_CONTENT {
            return Err(self.inner.status_problem(&put, response, None).await);
        }
        check_registry_digest(&response, &descriptor.digest, &what, repository)?;
        progress(Progress { done: total, total });
        Ok(())
    }

    /// Pushes a manifest or index under `reference`'s tag, or under its digest when it
    /// has no tag, and returns its digest. A pinned reference must match the bytes.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, Error> {
        self.push_manifest_inner(reference, media_type, bytes)
            .await
            .map_err(|problem| Error::new(format!("push manifest {reference}"), problem))
    }

    async fn push_manifest_inner(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, Problem> {
        let digest = Digest::of(bytes);
        let what = format!("manifest {digest}");
        let limit = self.inner.config.max_manifest_size;
        if bytes.len() as u64 > limit {
            return Err(Problem::TooLarge {
                what,
                location: LOCAL_SOURCE.to_string(),
                limit,
            });
        }
        if let Some(pinned) = reference.digest()
            && *pinned != digest
        {
            return Err(Problem::DigestMismatch {
                what,
                location: LOCAL_SOURCE.to_string(),
                actual: digest.to_string(),
                expected: pinned.to_string(),
            });
        }
        let repository = reference.repository();
        let object = match reference.tag() {
            Some(tag) => tag.to_string(),
            None => digest.to_string(),
        };
        let endpoint = self.endpoint(repository.registry());
        let url = self.url(&endpoint, repository, &format!("manifests/{object}"))?;
        let mut call = Call::new(
            &endpoint,
            Method::PUT,
            url,
            format!("PUT manifest {object} of {}", repository.path()),
        );
        call.scopes = vec![push_scope(repository.path())];
        call.headers.insert(CONTENT_TYPE, header_value(media_type));
        call.body = Some(bytes.to_vec().into());
        let response = self.inner.send(&call).await?;
        if !matches!(
            response.status(),
            StatusCode::OK | StatusCode::CREATED | StatusCode::NO_CONTENT
        ) {
            return Err(self.inner.status_problem(&call, response, None).await);
        }
        check_registry_digest(&response, &digest, &what, repository)?;
        Ok(digest)
    }

    /// Ends an upload session that will not be completed; failures are ignored, as
    /// the registry expires sessions anyway.
    async fn cancel_upload(&self, endpoint: &Endpoint, session: Url, repository: &Repository) {
        let mut call = Call::new(
            endpoint,
            Method::DELETE,
            session,
            "DELETE of an upload session".to_string(),
        );
        call.scopes = vec![push_scope(repository.path())];
        call.retry = false;
        if let Err(problem) = self.inner.send(&call).await {
            tracing::debug!(%problem, "cancelling an upload session failed");
        }
    }
}

/// The upload session URL of a response's `Location`, which may be absolute or
/// relative to the request.
fn upload_location(call: &Call<'_>, response: &Response) -> Result<Url, Problem> {
    let malformed = |reason: String| Problem::Protocol {
        registry: call.endpoint.registry.clone(),
        request: call.request.clone(),
        reason,
    };
    let location = response
        .headers()
        .get(LOCATION)
        .ok_or_else(|| malformed("no Location header".to_string()))?
        .to_str()
        .map_err(|_| malformed("the Location header is not text".to_string()))?;
    response
        .url()
        .join(location)
        .map_err(|e| malformed(format!("Location {location:?} is not a URL: {e}")))
}

/// Reads up to `limit` bytes (fewer only at the end of the source).
async fn read_chunk<R>(source: &mut R, limit: usize, what: &str) -> Result<Vec<u8>, Problem>
where
    R: AsyncRead + Unpin + Send + ?Sized,
{
    let mut data = Vec::with_capacity(limit.min(16 << 20));
    let mut limited = (&mut *source).take(limit as u64);
    limited
        .read_to_end(&mut data)
        .await
        .map_err(|source| Problem::Io {
            operation: "read",
            what: format!("the source of {what}"),
            source,
        })?;
    Ok(data)
}

/// Checks that what was read from the source is the blob the descriptor names.
fn check_source(
    descriptor: &Descriptor,
    size: u64,
    hasher: &Sha256,
    what: &str,
) -> Result<(), Problem> {
    if size != descriptor.size {
        return Err(Problem::SizeMismatch {
            what: what.to_string(),
            location: LOCAL_SOURCE.to_string(),
            actual: size,
            expected: descriptor.size,
        });
    }
    let actual = Digest::from_sha256(hasher.clone().finalize().into());
    if actual != descriptor.digest {
        return Err(Problem::DigestMismatch {
            what: what.to_string(),
            location: LOCAL_SOURCE.to_string(),
            actual: actual.to_string(),
            expected: descriptor.digest.to_string(),
        });
    }
    Ok(())
}

/// The registry's `Docker-Content-Digest`, when it sends one, must be what was pushed.
fn check_registry_digest(
    response: &Response,
    digest: &Digest,
    what: &str,
    repository: &Repository,
) -> Result<(), Problem> {
    match header_text(response, "docker-content-digest") {
        Some(claimed) if claimed != digest.to_string() => Err(Problem::DigestMismatch {
            what: what.to_string(),
            location: repository.to_string(),
            actual: claimed,
            expected: digest.to_string(),
        }),
        _ => Ok(()),
    }
}
