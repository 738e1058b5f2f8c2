//! Command-line arguments, shaped like `docker buildx build` so users keep their habits.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "Build container images from Dockerfiles",
    long_about = "kiln builds OCI images from Dockerfiles with BuildKit's semantics, a content-keyed cache and reproducible results. The engine runs inside the kiln process; its state lives under --root."
)]
pub struct Cli {
    /// Where kiln keeps its state (blobs, layers, cache records).
    #[arg(long, global = true, env = "KILN_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a Dockerfile.
    Build(Box<BuildArgs>),
    /// Inspect Dockerfiles without building.
    Dockerfile {
        #[command(subcommand)]
        command: DockerfileCommand,
    },
    /// Show what the store holds.
    Du,
    /// Remove cached results and unused data from the store.
    Prune(PruneArgs),
}

#[derive(Debug, Subcommand)]
pub enum DockerfileCommand {
    /// Print the parsed syntax tree in BuildKit's dump format.
    Parse {
        /// The Dockerfile to parse.
        file: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// A live view on a terminal, plain lines otherwise.
    Auto,
    /// One line per event, as `docker buildx build --progress=plain`.
    Plain,
    /// A live view that redraws the running steps.
    Tty,
    /// One JSON object per event, for programs.
    Rawjson,
    /// Nothing (with `-q`, only the image ID).
    Quiet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    Always,
    Missing,
    Never,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The build context: a directory.
    #[arg(value_name = "PATH")]
    pub context: PathBuf,

    /// Name of the Dockerfile (default: PATH/Dockerfile). `-` reads it from stdin.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Build this stage (default: the last one).
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,

    /// Set a build argument (`KEY=VALUE`, or `KEY` to take it from the environment).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,

    /// Name (and optionally tag) the image: `name:tag`.
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,

    /// Output destination: `type=oci|docker|local|tar|image|registry,dest=...,name=...`.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,

    /// Push the image to the `-t` names: sets push=true on `-o type=image` outputs,
    /// or adds `-o type=registry` when there is none (as buildx's `--push`).
    #[arg(long)]
    pub push: bool,

    /// Extra named contexts: `NAME=DIR`, `NAME=docker-image://REF`,
    /// `NAME=oci-layout://PATH[:TAG]`.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,

    /// Target platform(s), comma separated (`linux/amd64,linux/arm64`).
    #[arg(long, value_name = "PLATFORMS")]
    pub platform: Vec<String>,

    /// Do not use the cache: every step runs again.
    #[arg(long)]
    pub no_cache: bool,

    /// Do not use the cache for these stages.
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    pub no_cache_filter: Vec<String>,

    /// Always check the registry for newer versions of base images.
    #[arg(long)]
    pub pull: bool,

    /// How to show progress.
    #[arg(long, value_enum, default_value = "auto", env = "BUILDKIT_PROGRESS")]
    pub progress: ProgressMode,

    /// Show no progress; print the image ID on success.
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Write the image ID (config digest) to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,

    /// Write build result metadata (JSON) to this file.
    #[arg(long = "metadata-file", value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,

    /// Add a label to the image: `KEY=VALUE`.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,

    /// A secret for `RUN --mount=type=secret`: `id=ID[,src=FILE|,env=VAR]`.
    #[arg(long = "secret", value_name = "SPEC")]
    pub secrets: Vec<String>,

    /// An SSH agent socket or keys for `RUN --mount=type=ssh`: `default|ID[=SOCKET|KEY,...]`.
    #[arg(long = "ssh", value_name = "SPEC")]
    pub ssh: Vec<String>,

    /// Allow extra privileges: `security.insecure`, `network.host`.
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,

    /// On a failed RUN step: `shell` opens an interactive shell in the step's filesystem.
    #[arg(long = "on-error", value_name = "ACTION")]
    pub on_error: Option<String>,

    /// Registries to reach over plain HTTP (besides localhost and 127.0.0.1).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,

    /// Print the build graph as JSON and build nothing.
    #[arg(long = "print-graph")]
    pub print_graph: bool,

    /// Build this graph (JSON, as `--print-graph` prints it and docs/graph.md
    /// describes) instead of a Dockerfile; PATH is the `context` local directory.
    #[arg(long = "graph", value_name = "FILE", conflicts_with = "file")]
    pub graph: Option<PathBuf>,

    /// Run at most this many steps at once (default: the number of CPUs).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove everything, not just what exceeds the size limit.
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Keep the store under this many bytes (suffixes k, m, g allowed).
    #[arg(long = "keep-storage", value_name = "SIZE")]
    pub keep_storage: Option<String>,
}
