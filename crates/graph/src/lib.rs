//! kiln's build graph: the contract between frontends and the engine.
//!
//! A [`Definition`] is a list of [`Vertex`]es in dependency order plus the
//! [`Target`]s to build. Each vertex holds one [`Op`] — a source (image, local
//! directory, git, http), an exec (a process in a container), file actions (copy,
//! mkdir, mkfile, rm) or a merge — and the digests of the vertices it reads. A
//! vertex's [`Digest`] is the sha256 of a canonical serialization of its op and
//! inputs ([`vertex_digest`]), so the same graph has the same digests on every machine
//! and the digest can key the cache.
//!
//! The graph knows nothing of Dockerfiles: the Dockerfile frontend is one producer,
//! and any program that writes the JSON form (documented in `docs/graph.md`) can drive
//! the engine with `kiln build --graph FILE`.
//!
//! ```
//! use kiln_graph::{GraphBuilder, Op, SourceOp, Target, VertexMeta, ImageConfig, Platform};
//!
//! let platform: Platform = "linux/amd64".parse().unwrap();
//! let mut graph = GraphBuilder::new();
//! let base = graph.add(
//!     Op::Source(SourceOp::Image {
//!         reference: "docker.io/library/busybox:latest".into(),
//!         platform: platform.clone(),
//!     }),
//!     vec![],
//!     VertexMeta::default(),
//! );
//! let def = graph.finish(vec![Target {
//!     platform: platform.clone(),
//!     root: Some(base),
//!     image: ImageConfig::empty(&platform),
//! }]);
//! let json = def.to_json();
//! assert_eq!(kiln_graph::Definition::from_json(json.as_bytes()).unwrap(), def);
//! ```

mod definition;
mod digest;
mod image;
mod op;

pub use definition::{
    Definition, FORMAT_VERSION, GraphBuilder, GraphError, Location, Target, Vertex, VertexMeta,
    vertex_digest,
};
pub use digest::{Digest, InvalidDigest};
pub use image::{
    ContainerConfig, Empty, Healthcheck, History, ImageConfig, InvalidPlatform, Platform, RootFs,
    default_path_env,
};
pub use op::{
    CacheSharing, Chmod, Chown, CopyAction, ExecOp, FileAction, FileOp, MergeOp, MkdirAction,
    MkfileAction, Mount, MountKind, NetworkMode, Op, Principal, RmAction, SecretEnv, SecurityMode,
    SourceOp,
};
