//! `kiln build`: reads the Dockerfile and contexts, converts, solves and exports —
//! the engine embedded in this process — and `kiln du` / `kiln prune`.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::ValueEnum;
use kiln_frontend::convert::{
    ConvertError, ConvertOptions, LintWarning, NamedContext, convert_checked,
};
use kiln_graph::{Definition, Platform};
use kiln_registry::{Client, ClientConfig, DockerConfig};
use kiln_solver::{EventSink, SolveError, SolveOptions, Solver};
use kiln_store::{PrunePolicy, Store};
use kiln_worker::{ExecConfig, Images, LocalDir, SecretSource, Worker, WorkerConfig};

use crate::args::{BuildArgs, ProgressMode, PruneArgs};
use crate::export;
use crate::progress;
use crate::resolver::Resolver;

/// A user-facing failure, already worded.
pub type CliResult = Result<(), String>;

fn err(msg: impl std::fmt::Display) -> String {
    format!("ERROR: {msg}")
}

/// Everything about the Dockerfile a build reads.
struct DockerfileInput {
    name: String,
    path: Option<PathBuf>,
    bytes: Vec<u8>,
}

fn read_dockerfile(args: &BuildArgs) -> Result<DockerfileInput, String> {
    match &args.file {
        Some(f) if f.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| err(format!("reading the Dockerfile from stdin: {e}")))?;
            Ok(DockerfileInput {
                name: "Dockerfile".into(),
                path: None,
                bytes,
            })
        }
        other => {
            let path = other
                .clone()
                .unwrap_or_else(|| args.context.join("Dockerfile"));
            let bytes = std::fs::read(&path)
                .map_err(|e| err(format!("failed to read dockerfile {}: {e}", path.display())))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "Dockerfile".into());
            Ok(DockerfileInput {
                name,
                path: Some(path),
                bytes,
            })
        }
    }
}

/// `KEY=VALUE`, or `KEY` taking the value from the environment (skipped when unset),
/// as docker does for `--build-arg`.
fn parse_key_values(
    items: &[String],
    flag: &str,
    from_env: bool,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for item in items {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            Some(_) => return Err(err(format!("invalid {flag} {item:?}: empty key"))),
            None if from_env => {
                if let Ok(v) = std::env::var(item) {
                    out.insert(item.clone(), v);
                }
            }
            None => return Err(err(format!("invalid {flag} {item:?}: expected KEY=VALUE"))),
        }
    }
    Ok(out)
}

/// A named context from `--build-context NAME=VALUE`.
struct NamedInput {
    context: NamedContext,
    local: Option<LocalDir>,
    oci_layout: Option<PathBuf>,
}

fn parse_named_context(value: &str, base: &Path) -> Result<NamedInput, String> {
    if let Some(r) = value.strip_prefix("docker-image://") {
        return Ok(NamedInput {
            context: NamedContext::Image {
                reference: r.to_string(),
            },
            local: None,
            oci_layout: None,
        });
    }
    if let Some(rest) = value.strip_prefix("oci-layout://") {
        let (path, reference) = if let Some((p, d)) = rest.rsplit_once('@') {
            (p.to_string(), format!("@{d}"))
        } else {
            match rest.rsplit_once(':') {
                Some((p, t)) if !t.contains('/') => (p.to_string(), t.to_string()),
                _ => (rest.to_string(), "latest".to_string()),
            }
        };
        let path = base.join(path);
        return Ok(NamedInput {
            context: NamedContext::OciLayout { reference },
            local: Some(LocalDir {
                root: path.clone(),
                exclude_patterns: vec![],
            }),
            oci_layout: Some(path),
        });
    }
    for scheme in ["git://", "http://", "https://", "git@", "target:"] {
        if value.starts_with(scheme) {
            return Err(err(format!(
                "--build-context value {value:?}: this kind of context is not supported; use a directory, docker-image:// or oci-layout://"
            )));
        }
    }
    let dir = base.join(value.strip_prefix("local://").unwrap_or(value));
    if !dir.is_dir() {
        return Err(err(format!(
            "--build-context: {} is not a directory",
            dir.display()
        )));
    }
    let excludes = read_ignore(&dir.join(".dockerignore"))?;
    Ok(NamedInput {
        context: NamedContext::Local {
            exclude_patterns: excludes.clone(),
        },
        local: Some(LocalDir {
            root: dir,
            exclude_patterns: excludes,
        }),
        oci_layout: None,
    })
}

fn read_ignore(path: &Path) -> Result<Vec<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(s) => {
            kiln_ignore::read_ignore_file(&s).map_err(|e| err(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(err(format!("{}: {e}", path.display()))),
    }
}

/// `--secret id=ID[,src=FILE|,env=VAR][,type=file|env]`, as buildx reads it.
fn parse_secrets(items: &[String], base: &Path) -> Result<HashMap<String, SecretSource>, String> {
    let mut out = HashMap::new();
    for item in items {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        let mut kind = None;
        for field in item.split(',') {
            let (k, v) = field.split_once('=').ok_or_else(|| {
                err(format!(
                    "invalid --secret {item:?}: {field:?} is not KEY=VALUE"
                ))
            })?;
            match k.to_ascii_lowercase().as_str() {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" => kind = Some(v.to_string()),
                other => {
                    return Err(err(format!(
                        "invalid --secret {item:?}: unexpected key {other:?}"
                    )));
                }
            }
        }
        let id = id.ok_or_else(|| err(format!("invalid --secret {item:?}: missing id=")))?;
        let source = match (kind.as_deref(), src, env) {
            (Some("env"), src, env) => SecretSource::Env(env.or(src).unwrap_or_else(|| id.clone())),
            (Some("file") | None, Some(s), None) => SecretSource::File(base.join(s)),
            (None, None, Some(e)) => SecretSource::Env(e),
            (None, None, None) => {
                if std::env::var_os(&id).is_some() {
                    SecretSource::Env(id.clone())
                } else {
                    SecretSource::File(base.join(&id))
                }
            }
            (Some("file"), None, _) => SecretSource::File(base.join(&id)),
            _ => {
                return Err(err(format!(
                    "invalid --secret {item:?}: give either src= or env="
                )));
            }
        };
        out.insert(id, source);
    }
    Ok(out)
}

/// `--ssh default`, `--ssh default=SOCKET`, `--ssh ID=SOCKET`.
fn parse_ssh(items: &[String], base: &Path) -> Result<HashMap<String, PathBuf>, String> {
    let mut out = HashMap::new();
    for item in items {
        let (id, paths) = match item.split_once('=') {
            Some((id, p)) => (id.to_string(), Some(p.to_string())),
            None => (item.clone(), None),
        };
        let path = match paths {
            Some(p) => {
                if p.contains(',') {
                    return Err(err(format!("--ssh {item}: give one agent socket, not a list of keys")));
                }
                base.join(p)
            }
            None => std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from).ok_or_else(|| {
                err(format!("--ssh {item}: SSH_AUTH_SOCK is not set; start an ssh-agent or give a socket path"))
            })?,
        };
        let meta = std::fs::metadata(&path)
            .map_err(|e| err(format!("--ssh {item}: {}: {e}", path.display())))?;
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(err(format!(
                "--ssh {item}: {} is not an agent socket (key files are not supported: load them into ssh-agent)",
                path.display()
            )));
        }
        out.insert(id, path);
    }
    Ok(out)
}

fn parse_platforms(items: &[String]) -> Result<Vec<Platform>, String> {
    let mut out = Vec::new();
    for item in items {
        for p in item.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            out.push(
                p.parse::<Platform>()
                    .map_err(|e| err(format!("--platform: {e}")))?,
            );
        }
    }
    Ok(out)
}

/// Shows where in the Dockerfile an error is, as buildx does.
fn located(df: &DockerfileInput, message: &str, loc: Option<(usize, usize)>) -> String {
    let mut out = String::new();
    if let Some((start, end)) = loc.filter(|(s, _)| *s > 0) {
        let text = String::from_utf8_lossy(&df.bytes);
        let lines: Vec<&str> = text.lines().collect();
        out.push_str(&format!("{}:{start}\n", df.name));
        out.push_str("--------------------\n");
        let from = start.saturating_sub(3).max(1);
        let to = (end + 2).min(lines.len());
        for n in from..=to {
            let marker = if n >= start && n <= end { ">>>" } else { "   " };
            if let Some(l) = lines.get(n - 1) {
                out.push_str(&format!("{marker} {n:>3} | {l}\n"));
            }
        }
        out.push_str("--------------------\n");
    }
    out.push_str(&err(format!("failed to solve: {message}")));
    out
}

/// Removes the containers that a killed kiln left running on this store, before
/// the store's recovery removes their directories.
fn reap_orphans(root: &Path) {
    if !rustix::process::geteuid().is_root() {
        return;
    }
    let n = kiln_worker::exec::reap_orphans(root);
    if n > 0 {
        eprintln!("removed {n} containers left running by a kiln process that was killed");
    }
}

fn open_store(root: &Path) -> Result<Arc<Store>, String> {
    Store::open(root).map(Arc::new).map_err(|e| {
        err(format!(
            "cannot open the state directory {}: {e}",
            root.display()
        ))
    })
}

/// The Dockerfile checks' warnings after the build, as buildx prints them; in rawjson
/// mode one `{"event":"warning",...}` object each; none in quiet mode.
fn print_lint_warnings(warnings: &[LintWarning], mode: ProgressMode) {
    if warnings.is_empty() || mode == ProgressMode::Quiet {
        return;
    }
    if mode == ProgressMode::Rawjson {
        for w in warnings {
            let event = serde_json::json!({
                "event": "warning",
                "rule": w.rule,
                "message": w.message,
                "line": w.line,
            });
            eprintln!("{event}");
        }
        return;
    }
    let n = warnings.len();
    eprintln!();
    eprintln!(" {n} warning{} found:", if n == 1 { "" } else { "s" });
    for w in warnings {
        eprintln!(" - {}", w.short());
    }
}

pub async fn run(root: PathBuf, args: BuildArgs) -> CliResult {
    // A progress mode from BUILDKIT_PROGRESS yields to -q; one given with --progress
    // contradicts it.
    let progress_from_env = std::env::var("BUILDKIT_PROGRESS")
        .ok()
        .and_then(|v| ProgressMode::from_str(&v, true).ok())
        == Some(args.progress);
    if args.quiet
        && !progress_from_env
        && !matches!(args.progress, ProgressMode::Auto | ProgressMode::Quiet)
    {
        return Err(err(format!(
            "progress={} and quiet cannot be used together",
            args.progress
                .to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        )));
    }
    let df = match &args.graph {
        Some(_) => DockerfileInput {
            name: "graph".into(),
            path: None,
            bytes: Vec::new(),
        },
        None => read_dockerfile(&args)?,
    };
    if !args.context.is_dir() {
        return Err(err(format!(
            "unable to prepare context: path {:?} not found",
            args.context.display().to_string()
        )));
    }
    let cwd = std::env::current_dir().map_err(|e| err(format!("current directory: {e}")))?;
    let build_args = parse_key_values(&args.build_args, "--build-arg", true)?;
    let labels = parse_key_values(&args.labels, "--label", false)?;
    let platforms = parse_platforms(&args.platform)?;
    let secrets = parse_secrets(&args.secrets, &cwd)?;
    let ssh = parse_ssh(&args.ssh, &cwd)?;
    let mut allow_insecure = false;
    let mut allow_host_network = false;
    for a in &args.allow {
        match a.as_str() {
            "security.insecure" => allow_insecure = true,
            "network.host" => allow_host_network = true,
            other => {
                return Err(err(format!(
                    "invalid --allow {other:?}: expected security.insecure or network.host"
                )));
            }
        }
    }
    let debug_shell = match args.on_error.as_deref() {
        None => false,
        Some("shell") => true,
        Some(other) => {
            return Err(err(format!(
                "invalid --on-error {other:?}: the only action is shell"
            )));
        }
    };
    let outputs = export::parse_outputs(&args.outputs, &args.tags, args.push)?;

    let context_excludes = match &df.path {
        Some(p) => {
            kiln_ignore::read_build_ignore(&args.context, p)
                .map_err(|e| err(e.to_string()))?
                .patterns
        }
        None => read_ignore(&args.context.join(".dockerignore"))?,
    };
    let mut locals = HashMap::new();
    locals.insert(
        "context".to_string(),
        LocalDir {
            root: args.context.clone(),
            exclude_patterns: context_excludes.clone(),
        },
    );
    let mut named = BTreeMap::new();
    let mut oci_layouts = HashMap::new();
    for item in &args.build_contexts {
        let (name, value) = item
            .split_once('=')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| {
                err(format!(
                    "invalid --build-context {item:?}: expected NAME=VALUE"
                ))
            })?;
        let input = parse_named_context(value, &cwd)?;
        if let Some(l) = input.local {
            locals.insert(name.to_string(), l);
        }
        if let Some(p) = input.oci_layout {
            oci_layouts.insert(name.to_string(), p);
        }
        named.insert(name.to_string(), input.context);
    }

    reap_orphans(&root);
    let store = open_store(&root)?;
    let credentials =
        DockerConfig::load_default().map_err(|e| err(format!("docker credentials: {e}")))?;
    let registry = Client::new(ClientConfig {
        insecure_registries: args.insecure_registries.clone(),
        credentials,
        ..ClientConfig::default()
    })
    .map_err(err)?;
    let images = Images::new(store.clone(), registry.clone());

    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                err(format!(
                    "invalid SOURCE_DATE_EPOCH {v:?}: expected Unix seconds"
                ))
            })
        })
        .transpose()?;
    let base_opts = ConvertOptions {
        dockerfile_name: df.name.clone(),
        target: args.target.clone(),
        build_args: build_args.clone(),
        labels,
        target_platform: None,
        build_platform: Platform::host(),
        named_contexts: named,
        context_exclude_patterns: context_excludes,
        no_cache: args.no_cache,
        no_cache_filter: args.no_cache_filter.clone(),
        source_date_epoch: epoch,
        multi_platform: platforms.len() > 1,
    };
    let targets: Vec<Option<Platform>> = if platforms.is_empty() {
        vec![None]
    } else {
        platforms.into_iter().map(Some).collect()
    };

    // Convert each platform (base images are resolved as the frontend asks), or take
    // the graph given.
    let mut defs = Vec::new();
    let mut warnings: Vec<LintWarning> = Vec::new();
    if let Some(g) = &args.graph {
        let bytes = std::fs::read(g).map_err(|e| err(format!("reading {}: {e}", g.display())))?;
        defs.push(
            kiln_graph::Definition::from_json(&bytes)
                .map_err(|e| err(format!("{}: {e}", g.display())))?,
        );
    }
    for platform in targets.into_iter().filter(|_| args.graph.is_none()) {
        let mut opts = base_opts.clone();
        opts.target_platform = platform;
        let resolver = Resolver {
            images: images.clone(),
            handle: tokio::runtime::Handle::current(),
            allow_stale: !args.pull,
            oci_layouts: oci_layouts.clone(),
        };
        let bytes = df.bytes.clone();
        let (def, found) =
            tokio::task::spawn_blocking(move || convert_checked(&bytes, &opts, &resolver))
                .await
                .map_err(|e| err(format!("converting the Dockerfile: {e}")))?
                .map_err(|e: ConvertError| {
                    located(
                        &df,
                        &e.message,
                        e.location.map(|l| (l.start_line, l.end_line)),
                    )
                })?;
        // Each platform runs the same checks: report each warning once.
        for w in found {
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        defs.push(def);
    }
    let def = merge_definitions(defs);
    if args.print_graph {
        println!("{}", def.to_json());
        return Ok(());
    }
    if !rustix::process::geteuid().is_root() {
        return Err(err(
            "building needs root: kiln mounts overlay filesystems and runs steps with runc (rootless builds are not supported yet; --print-graph works without root)",
        ));
    }
    check_entitlements(&df, &def, allow_insecure, allow_host_network)?;

    let worker = Arc::new(Worker::new(
        store.clone(),
        images,
        WorkerConfig {
            locals,
            allow_stale_images: !args.pull,
            exec: ExecConfig {
                secrets,
                ssh,
                allow_insecure,
                allow_host_network,
                debug_shell,
            },
        },
    ));
    let jobs = args.jobs.unwrap_or_else(|| SolveOptions::default().jobs);
    let solver = Solver::new(worker.clone(), store.clone(), SolveOptions { jobs });
    let (sink, rx) = EventSink::channel();
    // A debug shell needs the terminal: keep progress to plain lines then.
    let mode = if debug_shell {
        ProgressMode::Plain
    } else if args.quiet {
        ProgressMode::Quiet
    } else {
        args.progress
    };
    let renderer = tokio::spawn(progress::render(mode, rx));
    let work = async {
        match solver.solve(&def, sink.clone()).await {
            Ok(roots) => {
                export::export_all(
                    &worker, &registry, &def, &roots, &outputs, &args, epoch, &sink,
                )
                .await
            }
            Err(e) => Err(solve_error(&df, &e)),
        }
    };
    let result = tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => {
            // Dropping the build cancels its steps; wait until their containers are
            // gone and their mounts undone before exiting.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while kiln_worker::active_steps() > 0 && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(err("build canceled"))
        }
    };
    drop(sink);
    drop(solver);
    let _ = renderer.await;
    print_lint_warnings(&warnings, mode);
    if result.is_ok() && outputs.is_empty() && mode != ProgressMode::Quiet {
        eprintln!(
            "WARNING: No output specified with -o; the result is only kept in the build cache"
        );
    }
    result
}

/// Refuses a build whose steps need an entitlement that was not granted, before any
/// step runs, as BuildKit checks them when it loads the graph.
fn check_entitlements(
    df: &DockerfileInput,
    def: &Definition,
    allow_insecure: bool,
    allow_host_network: bool,
) -> CliResult {
    for v in &def.vertices {
        let kiln_graph::Op::Exec(op) = &v.op else {
            continue;
        };
        let missing = if op.network == kiln_graph::NetworkMode::Host && !allow_host_network {
            "network.host"
        } else if op.security == kiln_graph::SecurityMode::Insecure && !allow_insecure {
            "security.insecure"
        } else {
            continue;
        };
        let loc = v
            .meta
            .location
            .as_ref()
            .filter(|l| l.file == df.name)
            .map(|l| (l.start_line, l.end_line));
        return Err(located(
            df,
            &format!(
                "{missing} is not allowed: {} needs --allow {missing}",
                v.meta.name
            ),
            loc,
        ));
    }
    Ok(())
}

fn solve_error(df: &DockerfileInput, e: &SolveError) -> String {
    let loc = e
        .location
        .as_ref()
        .filter(|l| l.file == df.name)
        .map(|l| (l.start_line, l.end_line));
    let msg = if e.vertex.is_empty() {
        e.message.clone()
    } else {
        format!("{}: {}", e.vertex, e.message)
    };
    located(df, &msg, loc)
}

/// One graph for several platforms: the vertices of each (shared ones once) and one
/// target per platform.
fn merge_definitions(defs: Vec<Definition>) -> Definition {
    let mut it = defs.into_iter();
    let Some(mut first) = it.next() else {
        return Definition {
            version: kiln_graph::FORMAT_VERSION,
            vertices: Vec::new(),
            targets: Vec::new(),
        };
    };
    for d in it {
        for v in d.vertices {
            if !first.vertices.iter().any(|x| x.digest == v.digest) {
                first.vertices.push(v);
            }
        }
        first.targets.extend(d.targets);
    }
    first
}

pub async fn du(root: PathBuf) -> CliResult {
    let store = open_store(&root)?;
    let u = store.usage().map_err(err)?;
    println!("TYPE            COUNT  SIZE");
    println!(
        "layers         {:>6}  {}",
        u.layers,
        crate::progress::human_bytes(u.layer_bytes)
    );
    println!(
        "blobs          {:>6}  {}",
        u.blobs,
        crate::progress::human_bytes(u.blob_bytes)
    );
    println!(
        "cache mounts   {:>6}  {}",
        u.cache_mounts,
        crate::progress::human_bytes(u.cache_mount_bytes)
    );
    println!("cache records  {:>6}", u.cache_records);
    println!("images         {:>6}", u.images);
    println!("Total: {}", crate::progress::human_bytes(u.total_bytes()));
    Ok(())
}

pub async fn prune(root: PathBuf, args: PruneArgs) -> CliResult {
    reap_orphans(&root);
    let store = open_store(&root)?;
    let max_bytes = match &args.keep_storage {
        Some(s) => Some(parse_size(s).ok_or_else(|| err(format!("invalid --keep-storage {s:?}")))?),
        None => None,
    };
    let policy = PrunePolicy {
        all: args.all,
        max_bytes,
        ..PrunePolicy::default()
    };
    let r = store.prune(&policy).map_err(err)?;
    println!(
        "Removed {} cache records, {} layers, {} blobs, {} cache mounts, {} leftovers",
        r.records, r.layers, r.blobs, r.cache_mounts, r.leftovers
    );
    println!(
        "Total: {} reclaimed",
        crate::progress::human_bytes(r.bytes_freed)
    );
    Ok(())
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mul) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s.as_str(), 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}
