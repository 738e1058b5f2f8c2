//! The operations a vertex can perform.
//!
//! Every op produces exactly one filesystem. Inputs are referred to by their position in
//! the vertex's `inputs` list (see [`crate::Vertex`]); an op never names a file on the
//! client's machine other than through a `local` source.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::image::Platform;

/// What a vertex does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// Produces a filesystem from outside the graph (no inputs).
    Source(SourceOp),
    /// Runs a process in a container whose root is input `mounts[0]`; the result is
    /// the root filesystem after the process exits with status 0.
    Exec(ExecOp),
    /// Applies file actions to a base filesystem.
    File(FileOp),
    /// Stacks its inputs, first at the bottom: the result has the layers of every
    /// input in order (what `COPY --link` builds on).
    Merge(MergeOp),
}

impl Op {
    /// A short word for the kind of op, for progress and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Source(_) => "source",
            Op::Exec(_) => "exec",
            Op::File(_) => "file",
            Op::Merge(_) => "merge",
        }
    }
}

/// Where a source's filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceOp {
    /// A registry image. `reference` is fully qualified
    /// (`docker.io/library/busybox:latest`), with `@sha256:...` once resolved.
    Image {
        reference: String,
        platform: Platform,
    },
    /// A directory on the client (the build context or a named context).
    Local {
        /// The name the client knows the directory by (`context`, or a named context).
        name: String,
        /// `.dockerignore` patterns; matching paths are not part of the source.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exclude_patterns: Vec<String>,
    },
    /// A git repository at a ref (branch, tag or commit), optionally a subdirectory.
    Git {
        remote: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subdir: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        keep_git_dir: bool,
        /// The commit the ref must resolve to (`ADD --checksum` on a git URL).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checksum: Option<String>,
    },
    /// A file downloaded over http(s), placed at `/<filename>` in the result.
    Http {
        url: String,
        /// The expected digest of the body (`ADD --checksum`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checksum: Option<Digest>,
        filename: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<Chown>,
    },
    /// An image from an OCI layout directory on the client
    /// (`--build-context name=oci-layout://PATH[:TAG|@DIGEST]`).
    OciLayout {
        /// The client-side name of the layout (the named context).
        name: String,
        /// The manifest (or index) digest within the layout, once resolved.
        reference: String,
        platform: Platform,
    },
}

/// How an exec op reaches the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// The engine's default, which for kiln (as for BuildKit) is the host's network.
    #[default]
    Default,
    /// No network: only a loopback interface.
    None,
    /// The host's network namespace.
    Host,
}

/// The privileges an exec op runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityMode {
    /// Docker's default capabilities, seccomp-free masked paths, `no_new_privs`.
    #[default]
    Sandbox,
    /// All capabilities, no masked paths (`RUN --security=insecure`).
    Insecure,
}

/// A process run in a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOp {
    /// The command line; `args[0]` is looked up in the container's `PATH`.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries in the order the process sees them.
    pub env: Vec<String>,
    /// Absolute working directory, created if missing.
    pub cwd: String,
    /// `name`, `uid`, `name:group` or `uid:gid`, resolved against the root's
    /// `/etc/passwd` and `/etc/group` when the op runs. Empty means root.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default)]
    pub network: NetworkMode,
    #[serde(default)]
    pub security: SecurityMode,
    /// Mounts in order; `mounts[0]` is the root (`/`) and is the op's result.
    pub mounts: Vec<Mount>,
    /// Secrets exposed as environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_env: Vec<SecretEnv>,
    /// Proxy variables (`HTTP_PROXY`, ...) given as build args. They reach the process
    /// but, as in BuildKit, are not part of the op's digest: a proxy does not change
    /// what a step builds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_env: BTreeMap<String, String>,
    /// Extra `/etc/hosts` lines (`host:ip`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
}

/// One mount of an exec op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute path in the container.
    pub target: String,
    /// Index into the vertex's inputs, or `None` for an empty filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<usize>,
    /// Absolute path within the input that is mounted (`/` for all of it).
    #[serde(default = "root_path", skip_serializing_if = "is_root_path")]
    pub source_path: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub readonly: bool,
    #[serde(flatten)]
    pub kind: MountKind,
}

fn root_path() -> String {
    "/".to_string()
}

fn is_root_path(s: &String) -> bool {
    s == "/"
}

/// What backs a mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mount", rename_all = "snake_case")]
pub enum MountKind {
    /// The input's filesystem. For the root mount, the result; for any other, writes
    /// are discarded when the op ends.
    Bind,
    /// A persistent directory shared across builds, keyed by `id`; its initial
    /// contents come from the input when the cache is first created.
    Cache { id: String, sharing: CacheSharing },
    /// An empty tmpfs.
    Tmpfs {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<u64>,
    },
    /// A secret's value as a file, never stored.
    Secret {
        id: String,
        #[serde(default)]
        uid: u32,
        #[serde(default)]
        gid: u32,
        mode: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        optional: bool,
    },
    /// A forwarded SSH agent socket.
    Ssh {
        id: String,
        #[serde(default)]
        uid: u32,
        #[serde(default)]
        gid: u32,
        mode: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        optional: bool,
    },
}

/// How concurrent builds share one cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSharing {
    /// Everyone uses the same directory at once.
    #[default]
    Shared,
    /// A user that finds it in use gets a fresh directory of its own.
    Private,
    /// Users wait for each other.
    Locked,
}

/// A secret exposed to an exec op as an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretEnv {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

/// File actions applied in order to a base filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOp {
    /// Index of the input the actions apply to, or `None` to start from an empty
    /// filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<usize>,
    pub actions: Vec<FileAction>,
}

/// One change to a filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum FileAction {
    Copy(CopyAction),
    Mkdir(MkdirAction),
    Mkfile(MkfileAction),
    Rm(RmAction),
}

/// A user or group, by number or by name (resolved against the base filesystem's
/// `/etc/passwd` or `/etc/group` when the op runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    Id(u32),
    Name(String),
}

/// Ownership to give created files. Without a group, the user's primary group (for a
/// name) or the same number (for an id) is used, as Docker does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chown {
    pub user: Principal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Principal>,
}

/// Permissions to give copied files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chmod {
    /// Absolute permission bits (`--chmod=0755`).
    Octal(u32),
    /// A `chmod(1)` symbolic expression applied to each file's mode (`--chmod=u+x`).
    Symbolic(String),
}

/// Copies paths from an input into the base filesystem, with Dockerfile COPY/ADD rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyAction {
    /// Index of the input to copy from.
    pub source: usize,
    /// Absolute path in the source; may hold wildcards when `allow_wildcard`.
    pub src: String,
    /// Absolute destination. A trailing `/` means "into this directory".
    pub dest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Chown>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Chmod>,
    /// Follow a symlink named by `src` itself (links inside directories are copied
    /// as links).
    #[serde(default)]
    pub follow_symlinks: bool,
    /// A directory source copies its contents, not itself.
    #[serde(default)]
    pub contents_only: bool,
    /// Local tar archives (plain, gzip, bzip2, xz, zstd) are extracted (ADD).
    #[serde(default)]
    pub unpack_archives: bool,
    /// Missing parent directories of `dest` are created.
    #[serde(default)]
    pub create_dest_path: bool,
    #[serde(default)]
    pub allow_wildcard: bool,
    /// A wildcard matching nothing is not an error.
    #[serde(default)]
    pub allow_empty_wildcard: bool,
    /// Only paths (relative to `src`) matching one of these are copied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_patterns: Vec<String>,
    /// Paths (relative to `src`) matching these are not copied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_patterns: Vec<String>,
    /// A destination of another type (file vs directory) is replaced instead of
    /// being an error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replace_existing: bool,
    /// Modification time (Unix seconds) to give created files instead of keeping the
    /// source's (`SOURCE_DATE_EPOCH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

/// Creates a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MkdirAction {
    pub path: String,
    pub mode: u32,
    #[serde(default)]
    pub make_parents: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Chown>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

/// Creates a file with the given contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MkfileAction {
    pub path: String,
    pub mode: u32,
    pub data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Chown>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

/// Removes a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RmAction {
    pub path: String,
    #[serde(default)]
    pub allow_not_found: bool,
    #[serde(default)]
    pub allow_wildcard: bool,
}

/// Stacks inputs (no options yet; the inputs are the vertex's inputs in order).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MergeOp {}
