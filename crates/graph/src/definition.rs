//! A whole build graph: vertices in dependency order and the targets to build.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::image::{ImageConfig, Platform};
use crate::op::{FileAction, MountKind, Op};

/// The version of the graph format this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// A build graph as the engine consumes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    /// Always [`FORMAT_VERSION`].
    pub version: u32,
    /// Every vertex appears after all of its inputs.
    pub vertices: Vec<Vertex>,
    /// What to build: usually one, one per platform for a multi-platform build.
    pub targets: Vec<Target>,
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vertex {
    /// [`vertex_digest`] of `op` and `inputs`: the vertex's identity.
    pub digest: Digest,
    pub op: Op,
    /// Digests of the vertices whose results this op reads, referred to by index in `op`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Digest>,
    /// Description for people; not part of the digest.
    #[serde(default)]
    pub meta: VertexMeta,
}

/// What progress output and errors say about a vertex. Two vertices that differ only
/// here are the same vertex.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VertexMeta {
    /// The progress label, e.g. `[build 2/3] COPY . /app`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Where the vertex comes from in the frontend's input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Run the op even when a cached result exists (`--no-cache`, `--no-cache-filter`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_cache: bool,
    /// Hidden from progress output (internal helper vertices).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
}

/// A range of lines in a named file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub file: String,
    pub start_line: usize,
    pub end_line: usize,
}

/// A result to build: a filesystem and the image config that describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub platform: Platform,
    /// The vertex whose result is the image's filesystem; `None` is an empty one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Digest>,
    /// The config, with `history` for every instruction; `rootfs` and the creation
    /// times of layer-producing entries are filled in when the image is exported.
    pub image: ImageConfig,
}

/// A graph that breaks the format's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("unsupported graph format version {0} (this kiln reads version {FORMAT_VERSION})")]
    Version(u32),
    #[error("vertex {index}: digest {stated} does not match its content ({computed})")]
    DigestMismatch {
        index: usize,
        stated: Digest,
        computed: Digest,
    },
    #[error("vertex {index} ({digest}): input {input} is not an earlier vertex")]
    UnknownInput {
        index: usize,
        digest: Digest,
        input: Digest,
    },
    #[error("vertex {index} ({digest}) appears twice")]
    Duplicate { index: usize, digest: Digest },
    #[error("vertex {index} ({digest}): {reason}")]
    InvalidOp {
        index: usize,
        digest: Digest,
        reason: String,
    },
    #[error("target {index}: root {root} is not a vertex of the graph")]
    UnknownTarget { index: usize, root: Digest },
    #[error("graph JSON: {0}")]
    Json(String),
}

/// The digest that identifies a vertex: sha256 of the canonical JSON of its op and
/// input digests.
///
/// The canonical form is serde_json's compact output of `{"op":...,"inputs":[...]}`
/// with struct fields in declaration order and every map sorted by key (all maps in
/// the model are `BTreeMap`s), so it is the same on every machine. Proxy variables are
/// left out, as in BuildKit: they change how a step reaches the network, not what it
/// builds.
pub fn vertex_digest(op: &Op, inputs: &[Digest]) -> Digest {
    #[derive(Serialize)]
    struct Canonical<'a> {
        op: &'a Op,
        inputs: &'a [Digest],
    }
    let stripped;
    let op = match op {
        Op::Exec(exec) if !exec.proxy_env.is_empty() => {
            let mut exec = exec.clone();
            exec.proxy_env = BTreeMap::new();
            stripped = Op::Exec(exec);
            &stripped
        }
        other => other,
    };
    // Serializing plain data with string keys cannot fail.
    let bytes = serde_json::to_vec(&Canonical { op, inputs })
        .unwrap_or_else(|e| unreachable!("graph op serialization failed: {e}"));
    Digest::of(&bytes)
}

impl Definition {
    /// Reads a graph from JSON and checks it (see [`Definition::validate`]).
    pub fn from_json(json: &[u8]) -> Result<Definition, GraphError> {
        let def: Definition =
            serde_json::from_slice(json).map_err(|e| GraphError::Json(e.to_string()))?;
        def.validate()?;
        Ok(def)
    }

    /// The graph as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| unreachable!("graph serialization failed: {e}"))
    }

    /// Looks a vertex up by digest.
    pub fn vertex(&self, digest: &Digest) -> Option<&Vertex> {
        self.vertices.iter().find(|v| &v.digest == digest)
    }

    /// Checks the rules of the format: the version, every digest, dependency order,
    /// input indices, and that targets name vertices of the graph.
    pub fn validate(&self) -> Result<(), GraphError> {
        if self.version != FORMAT_VERSION {
            return Err(GraphError::Version(self.version));
        }
        let mut seen: HashSet<&Digest> = HashSet::new();
        for (index, v) in self.vertices.iter().enumerate() {
            let computed = vertex_digest(&v.op, &v.inputs);
            if computed != v.digest {
                return Err(GraphError::DigestMismatch {
                    index,
                    stated: v.digest.clone(),
                    computed,
                });
            }
            for input in &v.inputs {
                if !seen.contains(input) {
                    return Err(GraphError::UnknownInput {
                        index,
                        digest: v.digest.clone(),
                        input: input.clone(),
                    });
                }
            }
            check_op(&v.op, v.inputs.len()).map_err(|reason| GraphError::InvalidOp {
                index,
                digest: v.digest.clone(),
                reason,
            })?;
            if !seen.insert(&v.digest) {
                return Err(GraphError::Duplicate {
                    index,
                    digest: v.digest.clone(),
                });
            }
        }
        for (index, t) in self.targets.iter().enumerate() {
            if let Some(root) = &t.root
                && !seen.contains(root)
            {
                return Err(GraphError::UnknownTarget {
                    index,
                    root: root.clone(),
                });
            }
        }
        Ok(())
    }
}

fn check_op(op: &Op, inputs: usize) -> Result<(), String> {
    let index_ok = |i: usize| -> Result<(), String> {
        if i < inputs {
            Ok(())
        } else {
            Err(format!("input index {i} out of range ({inputs} inputs)"))
        }
    };
    match op {
        Op::Source(_) => {
            if inputs != 0 {
                return Err("a source op takes no inputs".into());
            }
        }
        Op::Exec(exec) => {
            if exec.args.is_empty() {
                return Err("an exec op needs a command".into());
            }
            match exec.mounts.first() {
                Some(root) if root.target == "/" && matches!(root.kind, MountKind::Bind) => {}
                _ => return Err("mounts[0] must be a bind mount of /".into()),
            }
            for m in &exec.mounts {
                if !m.target.starts_with('/') {
                    return Err(format!("mount target {:?} is not absolute", m.target));
                }
                if let Some(i) = m.input {
                    index_ok(i)?;
                }
            }
            if !exec.cwd.starts_with('/') {
                return Err(format!("working directory {:?} is not absolute", exec.cwd));
            }
        }
        Op::File(file) => {
            if let Some(base) = file.base {
                index_ok(base)?;
            }
            for action in &file.actions {
                match action {
                    FileAction::Copy(c) => index_ok(c.source)?,
                    FileAction::Mkdir(_) | FileAction::Mkfile(_) | FileAction::Rm(_) => {}
                }
            }
        }
        Op::Merge(_) => {
            if inputs == 0 {
                return Err("a merge op needs inputs".into());
            }
        }
    }
    Ok(())
}

/// Builds a [`Definition`]: adds vertices inputs first, merges identical ones, and drops
/// what no target needs.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    vertices: Vec<Vertex>,
    index: HashMap<Digest, usize>,
}

impl GraphBuilder {
    pub fn new() -> GraphBuilder {
        GraphBuilder::default()
    }

    /// Adds a vertex and returns its digest. Every input must have been added before.
    /// Adding a vertex that exists already returns the existing one (its meta is kept).
    pub fn add(&mut self, op: Op, inputs: Vec<Digest>, meta: VertexMeta) -> Digest {
        debug_assert!(inputs.iter().all(|i| self.index.contains_key(i)));
        let digest = vertex_digest(&op, &inputs);
        if !self.index.contains_key(&digest) {
            self.index.insert(digest.clone(), self.vertices.len());
            self.vertices.push(Vertex {
                digest: digest.clone(),
                op,
                inputs,
                meta,
            });
        }
        digest
    }

    /// Marks an existing vertex to run even when cached.
    pub fn set_ignore_cache(&mut self, digest: &Digest) {
        if let Some(&i) = self.index.get(digest) {
            self.vertices[i].meta.ignore_cache = true;
        }
    }

    /// The finished graph with only the vertices the targets need.
    pub fn finish(self, targets: Vec<Target>) -> Definition {
        let mut needed: HashSet<Digest> = HashSet::new();
        let mut stack: Vec<Digest> = targets.iter().filter_map(|t| t.root.clone()).collect();
        while let Some(d) = stack.pop() {
            if needed.insert(d.clone())
                && let Some(&i) = self.index.get(&d)
            {
                stack.extend(self.vertices[i].inputs.iter().cloned());
            }
        }
        let vertices = self
            .vertices
            .into_iter()
            .filter(|v| needed.contains(&v.digest))
            .collect();
        Definition {
            version: FORMAT_VERSION,
            vertices,
            targets,
        }
    }
}
