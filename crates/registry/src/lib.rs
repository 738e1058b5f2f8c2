//! kiln's registry client: the only part of kiln that speaks the OCI distribution API.
//!
//! - [`Reference`] parses and normalizes image references exactly as Docker does
//!   (`busybox` is `docker.io/library/busybox:latest`), with [`Repository`] for the
//!   registry-and-path part.
//! - [`Client`] (configured by [`ClientConfig`], credentials from [`DockerConfig`])
//!   resolves a reference to a [`ResolvedImage`] for a platform, streams blobs into a
//!   caller's sink with their size and digest checked, and pushes blobs and manifests
//!   (existence checks, cross-repository mounts, monolithic or chunked uploads).
//! - Every failure is an [`Error`]: `failed to <action>: <problem>`, naming the
//!   registry and the content, with an [`ErrorKind`] to branch on.
//!
//! Loopback registries (`localhost`, `127.0.0.0/8`, `[::1]`) and those listed in
//! [`ClientConfig::insecure_registries`] are reached over plain HTTP, all others over
//! HTTPS (rustls, trusting the system's CA store under `/etc/ssl/certs`).
//!
//! ```no_run
//! use kiln_registry::{Client, ClientConfig, DockerConfig, Reference};
//! use kiln_graph::Platform;
//!
//! # async fn pull() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(ClientConfig {
//!     credentials: DockerConfig::load_default()?,
//!     ..ClientConfig::default()
//! })?;
//! let reference = Reference::parse("busybox")?;
//! let image = client.resolve(&reference, &"linux/amd64".parse()?).await?;
//! println!("{} has {} layers", image.reference, image.layers.len());
//! let mut layer = Vec::new();
//! client
//!     .fetch_blob(reference.repository(), &image.layers[0], &mut layer, |p| {
//!         eprintln!("{}/{}", p.done, p.total)
//!     })
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Why not `oci-client`
//!
//! `oci-client` 0.18 was evaluated and not used: it reads manifest bodies without a
//! size limit, has no retries, returns from `mount_blob` neither "mounted" nor
//! "not mounted" (a 202 is an error), checks no blob size and reports no progress,
//! reads no Docker credentials, names no registry in its errors, and its `rustls`
//! feature pulls `jsonwebtoken` with a second crypto stack. The client here is a thin
//! layer over `reqwest` with `oci-spec`'s manifest and index types; the WWW-Authenticate
//! scanner and the Docker config reader are small enough to keep in this crate (see
//! their modules).

mod auth;
mod blob;
mod challenge;
mod client;
mod config;
mod credentials;
mod error;
mod manifest;
mod platform;
mod reference;
mod transport;

pub use blob::Progress;
pub use client::{Client, ConfigBlob, ResolvedImage};
pub use config::{ClientConfig, DEFAULT_MAX_MANIFEST_SIZE, DOCKER_HUB_API_HOST, uses_plain_http};
pub use credentials::{Credential, CredentialError, DOCKER_HUB_SERVER, DockerConfig, config_dir};
pub use error::{Error, ErrorKind, Problem};
pub use manifest::{Descriptor, Manifest, media_type};
pub use reference::{
    DEFAULT_TAG, DOCKER_HUB, Reference, ReferenceError, ReferenceProblem, Repository,
};
