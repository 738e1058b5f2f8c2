//! The [`Client`]: resolving references to images, fetching manifests and configs.
//! Blob transfers are in [`crate::blob`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kiln_graph::{Digest, ImageConfig, Platform};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, Response, StatusCode, Url};

use crate::auth::{AuthState, pull_scope};
use crate::config::{ClientConfig, Endpoint};
use crate::error::{Error, Problem};
use crate::manifest::{self, Descriptor, DocumentError, Kind, Manifest, media_type};
use crate::platform::{self, PlatformMatcher};
use crate::reference::{Reference, Repository};
use crate::transport::{Call, Inner, root_cause};

/// The image chosen from an index: its manifest, the manifest's parts and its config.
type Selected = (Manifest, manifest::ImageParts, ConfigBlob);

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How deep indexes may nest (an index pointing at an index ...).
const MAX_INDEX_DEPTH: usize = 4;

/// A registry client. Cheap to clone; clones share connections, credentials and tokens.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field(
                "insecure_registries",
                &self.inner.config.insecure_registries,
            )
            .finish_non_exhaustive()
    }
}

/// An image resolved for one platform: everything needed to pull it.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The reference, pinned to the digest of what it pointed at (the index for a
    /// multi-platform image): `docker.io/library/busybox:latest@sha256:…`.
    pub reference: Reference,
    /// The digest of the platform's image manifest.
    pub manifest_digest: Digest,
    /// The platform's image manifest.
    pub manifest: Manifest,
    pub config: ConfigBlob,
    /// The layers, bottom first.
    pub layers: Vec<Descriptor>,
}

/// An image config: its descriptor, exact bytes and parsed form.
#[derive(Debug, Clone)]
pub struct ConfigBlob {
    pub descriptor: Descriptor,
    pub bytes: Vec<u8>,
    pub parsed: ImageConfig,
}

/// What is expected of a manifest fetched through a descriptor.
struct Expected<'a> {
    digest: Option<&'a Digest>,
    descriptor: Option<&'a Descriptor>,
}

impl Client {
    /// A client with the given settings. Fails only if the TLS setup fails.
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        let http = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .map_err(|e| {
                Error::new("create the registry client", Problem::Other(root_cause(&e)))
            })?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                config,
                auth: AuthState::default(),
            }),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// Resolves `reference` to the image for `platform`: the manifest (chosen from an
    /// index as containerd's default matcher would), its config and layers. A pinned
    /// reference must resolve to exactly its digest.
    pub async fn resolve(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedImage, Error> {
        self.resolve_inner(reference, platform)
            .await
            .map_err(|problem| Error::new(format!("resolve {reference}"), problem))
    }

    /// The descriptor of what `reference` points at now (an index or a manifest),
    /// from a HEAD request where the registry supports it, else from the manifest.
    pub async fn resolve_digest(&self, reference: &Reference) -> Result<Descriptor, Error> {
        self.resolve_digest_inner(reference)
            .await
            .map_err(|problem| Error::new(format!("resolve the digest of {reference}"), problem))
    }

    /// The manifest or index `reference` points at, as stored (digest verified).
    pub async fn fetch_manifest(&self, reference: &Reference) -> Result<Manifest, Error> {
        let endpoint = self.endpoint(reference.registry());
        let expected = Expected {
            digest: reference.digest(),
            descriptor: None,
        };
        self.get_manifest(
            &endpoint,
            reference.repository(),
            &reference.object(),
            expected,
        )
        .await
        .map(|(manifest, _)| manifest)
        .map_err(|problem| Error::new(format!("fetch the manifest of {reference}"), problem))
    }

    pub(crate) fn endpoint(&self, registry: &str) -> Endpoint {
        Endpoint::new(&self.inner.config, registry)
    }

    pub(crate) fn url(
        &self,
        endpoint: &Endpoint,
        repository: &Repository,
        tail: &str,
    ) -> Result<Url, Problem> {
        let text = format!("{}{}/{tail}", endpoint.base(), repository.path());
        Url::parse(&text).map_err(|e| Problem::Other(format!("cannot form the URL {text:?}: {e}")))
    }

    async fn resolve_inner(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<ResolvedImage, Problem> {
        let endpoint = self.endpoint(reference.registry());
        let repository = reference.repository();
        let expected = Expected {
            digest: reference.digest(),
            descriptor: None,
        };
        let (top, kind) = self
            .get_manifest(&endpoint, repository, &reference.object(), expected)
            .await?;
        let pinned = reference.pinned(top.digest.clone());
        let (manifest, parts, config) = match kind {
            Kind::Image => {
                let parts = self.parse_image(repository, &top)?;
                let config = self
                    .fetch_config(&endpoint, repository, &parts.config)
                    .await?;
                (top, parts, config)
            }
            Kind::Index => {
                let matcher = PlatformMatcher::new(platform);
                let location = reference.to_string();
                self.select_from_index(
                    &endpoint, repository, &top, &matcher, platform, &location, 0,
                )
                .await?
            }
        };
        Ok(ResolvedImage {
            reference: pinned,
            manifest_digest: manifest.digest.clone(),
            manifest,
            config,
            layers: parts.layers,
        })
    }

    /// Picks the image for the matcher's platform from an index, following nested
    /// indexes. Entries without a platform are checked against their config's.
    #[allow(clippy::too_many_arguments)]
    fn select_from_index<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        repository: &'a Repository,
        index: &'a Manifest,
        matcher: &'a PlatformMatcher,
        wanted: &'a Platform,
        location: &'a str,
        depth: usize,
    ) -> BoxFuture<'a, Result<Selected, Problem>> {
        Box::pin(async move {
            let entries = manifest::parse_index(&index.bytes).map_err(|e| {
                document_problem(
                    e,
                    &format!("index {}", index.digest),
                    &repository.to_string(),
                )
            })?;
            for entry in platform::candidates(&entries, matcher) {
                let expected = Expected {
                    digest: Some(&entry.digest),
                    descriptor: Some(entry),
                };
                let (child, kind) = self
                    .get_manifest(endpoint, repository, &entry.digest.to_string(), expected)
                    .await?;
                match kind {
                    Kind::Index if depth + 1 < MAX_INDEX_DEPTH => {
                        match self
                            .select_from_index(
                                endpoint,
                                repository,
                                &child,
                                matcher,
                                wanted,
                                location,
                                depth + 1,
                            )
                            .await
                        {
                            Err(Problem::NoMatchingPlatform { .. }) => continue,
                            other => return other,
                        }
                    }
                    Kind::Index => {
                        return Err(Problem::InvalidContent {
                            what: format!("index {}", child.digest),
                            location: repository.to_string(),
                            reason: format!("indexes nest more than {MAX_INDEX_DEPTH} deep"),
                        });
                    }
                    Kind::Image => {
                        let parts = self.parse_image(repository, &child)?;
                        let config = self
                            .fetch_config(endpoint, repository, &parts.config)
                            .await?;
                        if entry.platform.is_none() && !matcher.matches(&config.parsed.platform()) {
                            continue;
                        }
                        return Ok((child, parts, config));
                    }
                }
            }
            Err(Problem::NoMatchingPlatform {
                wanted: wanted.to_string(),
                location: location.to_string(),
                available: platform::available(&entries),
            })
        })
    }

    fn parse_image(
        &self,
        repository: &Repository,
        manifest: &Manifest,
    ) -> Result<manifest::ImageParts, Problem> {
        manifest::parse_image(&manifest.bytes).map_err(|e| {
            document_problem(
                e,
                &format!("manifest {}", manifest.digest),
                &repository.to_string(),
            )
        })
    }

    /// GETs `manifests/<object>`, bounded by the size limit, and checks it against
    /// what is expected: the pinned digest, the descriptor's size and media type, and
    /// the registry's own `Docker-Content-Digest`.
    async fn get_manifest(
        &self,
        endpoint: &Endpoint,
        repository: &Repository,
        object: &str,
        expected: Expected<'_>,
    ) -> Result<(Manifest, Kind), Problem> {
        let what = format!("manifest {object}");
        let location = repository.to_string();
        let url = self.url(endpoint, repository, &format!("manifests/{object}"))?;
        let mut call = Call::new(
            endpoint,
            Method::GET,
            url,
            format!("GET {what} of {}", repository.path()),
        );
        call.scopes = vec![pull_scope(repository.path())];
        call.headers
            .insert(ACCEPT, header_value(&media_type::manifest_accept()));
        let response = self.inner.send(&call).await?;
        if response.status() != StatusCode::OK {
            return Err(self
                .inner
                .status_problem(&call, response, Some((&what, &location)))
                .await);
        }
        let limit = self.inner.config.max_manifest_size;
        if let Some(descriptor) = expected.descriptor
            && descriptor.size > limit
        {
            return Err(Problem::TooLarge {
                what,
                location,
                limit,
            });
        }
        let content_type = header_text(&response, CONTENT_TYPE.as_str());
        let header_digest = header_text(&response, "docker-content-digest");
        let bytes = self
            .read_bounded(&call, response, limit, &what, &location)
            .await?;
        let digest = Digest::of(&bytes);
        let mismatch = |expected: String| Problem::DigestMismatch {
            what: what.clone(),
            location: location.clone(),
            actual: digest.to_string(),
            expected,
        };
        match (
            expected.digest,
            header_digest.as_deref().map(str::parse::<Digest>),
        ) {
            (Some(pinned), _) if *pinned != digest => return Err(mismatch(pinned.to_string())),
            (None, Some(Ok(claimed))) if claimed != digest => {
                return Err(mismatch(claimed.to_string()));
            }
            _ => {}
        }
        if let Some(descriptor) = expected.descriptor
            && descriptor.size != bytes.len() as u64
        {
            return Err(Problem::SizeMismatch {
                what,
                location,
                actual: bytes.len() as u64,
                expected: descriptor.size,
            });
        }
        let (media_type, kind) = manifest::classify(content_type.as_deref(), &bytes)
            .map_err(|e| document_problem(e, &what, &location))?;
        if let Some(descriptor) = expected.descriptor
            && (manifest::is_index_type(&descriptor.media_type)
                || manifest::is_image_type(&descriptor.media_type))
            && descriptor.media_type != media_type
        {
            return Err(Problem::InvalidContent {
                what,
                location,
                reason: format!(
                    "the index lists it as {} but it is {media_type}",
                    descriptor.media_type
                ),
            });
        }
        Ok((
            Manifest {
                media_type,
                digest,
                bytes,
            },
            kind,
        ))
    }

    /// Fetches and checks an image config: size limit, size, digest, JSON.
    async fn fetch_config(
        &self,
        endpoint: &Endpoint,
        repository: &Repository,
        descriptor: &Descriptor,
    ) -> Result<ConfigBlob, Problem> {
        let what = format!("config {}", descriptor.digest);
        let limit = self.inner.config.max_config_size;
        if descriptor.size > limit {
            return Err(Problem::TooLarge {
                what,
                location: repository.to_string(),
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(descriptor.size as usize);
        self.fetch_blob_inner(
            endpoint,
            repository,
            descriptor,
            &mut bytes,
            &mut |_| {},
            "config",
        )
        .await?;
        let parsed: ImageConfig =
            serde_json::from_slice(&bytes).map_err(|e| Problem::InvalidContent {
                what,
                location: repository.to_string(),
                reason: format!("not an image config: {e}"),
            })?;
        Ok(ConfigBlob {
            descriptor: descriptor.clone(),
            bytes,
            parsed,
        })
    }

    async fn resolve_digest_inner(&self, reference: &Reference) -> Result<Descriptor, Problem> {
        let endpoint = self.endpoint(reference.registry());
        let repository = reference.repository();
        let object = reference.object();
        let what = format!("manifest {object}");
        let location = repository.to_string();
        let url = self.url(&endpoint, repository, &format!("manifests/{object}"))?;
        let mut call = Call::new(
            &endpoint,
            Method::HEAD,
            url,
            format!("HEAD {what} of {}", repository.path()),
        );
        call.scopes = vec![pull_scope(repository.path())];
        call.headers
            .insert(ACCEPT, header_value(&media_type::manifest_accept()));
        let response = self.inner.send(&call).await?;
        let status = response.status();
        let from_headers = if status == StatusCode::OK {
            let digest = header_text(&response, "docker-content-digest")
                .and_then(|d| d.parse::<Digest>().ok());
            let size =
                header_text(&response, CONTENT_LENGTH.as_str()).and_then(|s| s.parse::<u64>().ok());
            let media = header_text(&response, CONTENT_TYPE.as_str())
                .map(|c| c.split(';').next().unwrap_or_default().trim().to_string())
                .filter(|c| manifest::is_index_type(c) || manifest::is_image_type(c));
            match (digest, size, media) {
                (Some(digest), Some(size), Some(media_type)) => Some(Descriptor {
                    media_type,
                    digest,
                    size,
                    platform: None,
                    annotations: Default::default(),
                    urls: Vec::new(),
                }),
                _ => None,
            }
        } else if status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::NOT_IMPLEMENTED
        {
            None
        } else {
            return Err(self
                .inner
                .status_problem(&call, response, Some((&what, &location)))
                .await);
        };
        let descriptor = match from_headers {
            Some(descriptor) => descriptor,
            // No usable headers: fetch the manifest and describe what came.
            None => {
                let expected = Expected {
                    digest: reference.digest(),
                    descriptor: None,
                };
                let (manifest, _) = self
                    .get_manifest(&endpoint, repository, &object, expected)
                    .await?;
                manifest.descriptor()
            }
        };
        if descriptor.size > self.inner.config.max_manifest_size {
            return Err(Problem::TooLarge {
                what,
                location,
                limit: self.inner.config.max_manifest_size,
            });
        }
        if let Some(pinned) = reference.digest()
            && *pinned != descriptor.digest
        {
            return Err(Problem::DigestMismatch {
                what,
                location,
                actual: descriptor.digest.to_string(),
                expected: pinned.to_string(),
            });
        }
        Ok(descriptor)
    }

    /// Reads a whole body of at most `limit` bytes.
    async fn read_bounded(
        &self,
        call: &Call<'_>,
        mut response: Response,
        limit: u64,
        what: &str,
        location: &str,
    ) -> Result<Vec<u8>, Problem> {
        let too_large = || Problem::TooLarge {
            what: what.to_string(),
            location: location.to_string(),
            limit,
        };
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if (bytes.len() + chunk.len()) as u64 > limit {
                        return Err(too_large());
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(bytes),
                Err(e) if e.is_timeout() => return Err(self.inner.transport_problem(call, &e)),
                Err(e) => {
                    return Err(Problem::Interrupted {
                        what: what.to_string(),
                        location: location.to_string(),
                        received: bytes.len() as u64,
                        reason: root_cause(&e),
                    });
                }
            }
        }
    }
}

pub(crate) fn header_text(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(crate) fn header_value(text: &str) -> HeaderValue {
    // Callers pass media types and digests, which are valid header text; an invalid
    // one degrades to an empty value rather than a panic.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A [`Problem`] for a document that cannot be used.
pub(crate) fn document_problem(error: DocumentError, what: &str, location: &str) -> Problem {
    match error {
        DocumentError::Schema1(media_type) => Problem::Unsupported {
            what: what.to_string(),
            location: location.to_string(),
            media_type,
            hint: "Docker schema 1 images are no longer supported; push the image again with a current client (schema 2 or OCI)".to_string(),
        },
        DocumentError::UnknownType(media_type) => Problem::Unsupported {
            what: what.to_string(),
            location: location.to_string(),
            media_type,
            hint: String::new(),
        },
        DocumentError::Invalid(reason) => Problem::InvalidContent {
            what: what.to_string(),
            location: location.to_string(),
            reason,
        },
    }
}
