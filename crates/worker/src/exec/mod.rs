//! RUN steps: each runs as an OCI container (spec from `spec`, runtime `runc`) on an
//! overlay of its input layers whose upper directory becomes the step's new layer.
//!
//! Mounts (`bind`, `cache`, `tmpfs`, `secret`, `ssh`) are prepared on the host side
//! under the step's work directory. Secret values live only on a tmpfs mounted in
//! kiln's private mount namespace and are masked in the step's output; mount points
//! the runtime had to create in the root filesystem are removed afterwards, as
//! BuildKit does, so they never reach the layer, and so are the directories overlayfs
//! copied up without the step changing them (`upper`).
//!
//! A failed step's error names the command, its exit code in BuildKit's words (or
//! why runc could not start it) and its last lines of output; with
//! `--on-error=shell` a shell opens in its filesystem first, on a terminal of its
//! own when kiln runs on one.
//!
//! Every container carries the pid of the kiln that runs it and its store, so that
//! [`reap_orphans`] can remove what a killed kiln could not.

mod runc;
mod spec;
mod ssh;
mod upper;
mod user;

pub use runc::{RUNC_ROOT, reap_orphans};
pub use user::{ExecUser, resolve_user};

use std::collections::HashMap;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kiln_graph::{ExecOp, MountKind, NetworkMode, SecurityMode, Vertex};
use kiln_solver::{Output, Progress, Stream};
use kiln_store::Store;

use crate::backend::Worker;
use crate::context::ContextIndex;
use crate::error::WorkerError;
use crate::fsutil::resolve_in_root;
use crate::mount::{MountGuard, Upper, mount_layers};
use spec::{BindMount, SpecInput, build_spec};

/// Where a secret's value comes from (`--secret id=ID,src=FILE` or `env=VAR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the client.
    File(PathBuf),
    /// An environment variable of the client.
    Env(String),
}

impl SecretSource {
    fn read(&self, id: &str) -> Result<Vec<u8>, WorkerError> {
        match self {
            SecretSource::File(p) => std::fs::read(p).map_err(|e| {
                WorkerError::io(format!("reading secret {id} from {}", p.display()), e)
            }),
            SecretSource::Env(v) => std::env::var_os(v)
                .map(|s| s.into_encoded_bytes())
                .ok_or_else(|| {
                    WorkerError::Failed(format!("secret {id}: environment variable {v} is not set"))
                }),
        }
    }
}

/// Settings of RUN steps for one build.
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    /// Secrets by id.
    pub secrets: HashMap<String, SecretSource>,
    /// SSH agent sockets by id (`--ssh default=$SSH_AUTH_SOCK`).
    pub ssh: HashMap<String, PathBuf>,
    /// `--allow security.insecure`.
    pub allow_insecure: bool,
    /// `--allow network.host`: honoured for `--network=host` (the default network is
    /// the host's anyway).
    pub allow_host_network: bool,
    /// `--on-error=shell`: open an interactive shell in a failed step.
    pub debug_shell: bool,
}

/// Sets a flag when dropped: tells a blocking step that its build was cancelled.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Only one debug shell at a time may own the terminal.
static SHELL: Mutex<()> = Mutex::new(());

/// Steps whose container may still be running or being cleaned up.
static ACTIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many RUN steps are still running or cleaning up; a cancelled build waits for
/// this to reach 0 before the process exits, so nothing is left behind.
pub fn active_steps() -> usize {
    ACTIVE.load(Ordering::SeqCst)
}

struct ActiveStep;

impl ActiveStep {
    fn enter() -> ActiveStep {
        ACTIVE.fetch_add(1, Ordering::SeqCst);
        ActiveStep
    }
}

impl Drop for ActiveStep {
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A non-root mount's host side, ready before the step runs.
enum Prepared {
    /// Layer directories (topmost first) of a filesystem input, and its digest.
    Layers {
        lowers: Vec<PathBuf>,
        digest: kiln_graph::Digest,
    },
    /// A local directory (the build context or a named context).
    Local(Arc<ContextIndex>),
    /// No input: an empty filesystem.
    Empty,
}

pub(crate) async fn run(
    w: &Worker,
    v: &Vertex,
    op: &ExecOp,
    inputs: &[Arc<Output>],
    progress: &Progress,
) -> Result<Output, WorkerError> {
    let exec = w.exec_config();
    if op.security == SecurityMode::Insecure && !exec.allow_insecure {
        return Err(WorkerError::Failed(
            "security.insecure is not allowed: pass --allow security.insecure to run this step"
                .into(),
        ));
    }
    if op.network == NetworkMode::Host && !exec.allow_host_network {
        return Err(WorkerError::Failed(
            "network.host is not allowed: pass --allow network.host to run this step".into(),
        ));
    }
    let root_layers: Vec<kiln_graph::Digest> = match op.mounts.first().and_then(|m| m.input) {
        Some(i) => inputs
            .get(i)
            .and_then(|o| o.layer_ids())
            .ok_or_else(|| {
                WorkerError::Invalid("the root of a RUN step must be a filesystem".into())
            })?
            .to_vec(),
        None => Vec::new(),
    };
    let root_lowers = w.lowers_for(&root_layers, progress).await?;
    let mut prepared = Vec::new();
    for m in op.mounts.iter().skip(1) {
        prepared.push(match m.input.and_then(|i| inputs.get(i)) {
            None => Prepared::Empty,
            Some(o) => match o.as_ref() {
                Output::Layers { layers, digest } => Prepared::Layers {
                    lowers: w.lowers_for(layers, progress).await?,
                    digest: digest.clone(),
                },
                Output::Local { handle, .. } => {
                    Prepared::Local(handle.clone().downcast::<ContextIndex>().map_err(|_| {
                        WorkerError::Failed("local input of an unknown kind".into())
                    })?)
                }
            },
        });
    }
    let mut secrets = Vec::new();
    for m in &op.mounts {
        if let MountKind::Secret { id, optional, .. } = &m.kind {
            secrets.push((id.clone(), read_secret(&exec, id, *optional)?));
        }
    }
    for s in &op.secret_env {
        secrets.push((s.id.clone(), read_secret(&exec, &s.id, s.optional)?));
    }
    let ssh_agents: Vec<Option<PathBuf>> = op
        .mounts
        .iter()
        .filter_map(|m| match &m.kind {
            MountKind::Ssh { id, optional, .. } => Some(match exec.ssh.get(id) {
                Some(p) => Ok(Some(p.clone())),
                None if *optional => Ok(None),
                None => Err(WorkerError::Failed(format!(
                    "no SSH agent given for id {id:?}: pass --ssh {id}[=SOCKET]"
                ))),
            }),
            _ => None,
        })
        .collect::<Result<_, _>>()?;
    // Forward each agent through a socket of the mount's ownership and mode.
    let agents = ssh::Forwarders::start(&ssh_agents).await?;

    let cancel = Arc::new(AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    let job = Job {
        store: w.store().clone(),
        op: op.clone(),
        name: v.meta.name.clone(),
        root_lowers,
        prepared,
        secrets,
        agents: agents.paths(),
        exec,
        progress: progress.clone(),
        cancel,
    };
    let active = ActiveStep::enter();
    let result = tokio::task::spawn_blocking(move || {
        let _active = active;
        job.run()
    })
    .await
    .map_err(|e| WorkerError::Failed(format!("running the step: {e}")))?;
    drop(agents);
    let id = result?;
    let mut layers = root_layers;
    layers.push(id);
    Ok(Output::layers(layers))
}

fn read_secret(
    exec: &ExecConfig,
    id: &str,
    optional: bool,
) -> Result<Option<Vec<u8>>, WorkerError> {
    match exec.secrets.get(id) {
        Some(src) => src.read(id).map(Some),
        None if optional => Ok(None),
        None => Err(WorkerError::Failed(format!(
            "secret {id} not found: pass --secret id={id},src=FILE"
        ))),
    }
}

/// Everything the blocking part of a step needs.
struct Job {
    store: Arc<Store>,
    op: ExecOp,
    name: String,
    root_lowers: Vec<PathBuf>,
    prepared: Vec<Prepared>,
    secrets: Vec<(String, Option<Vec<u8>>)>,
    agents: Vec<Option<PathBuf>>,
    exec: ExecConfig,
    progress: Progress,
    cancel: Arc<AtomicBool>,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> WorkerError {
    let what = what.into();
    move |e| WorkerError::io(what, e)
}

impl Job {
    fn run(self) -> Result<kiln_graph::Digest, WorkerError> {
        let work = self.store.work_dir()?;
        let base = work.path().to_path_buf();
        let rootfs = base.join("rootfs");
        let empty = base.join("empty");
        std::fs::create_dir_all(&rootfs).map_err(io("creating the rootfs mount point"))?;
        std::fs::create_dir_all(&empty).map_err(io("creating an empty layer"))?;
        let lowers: Vec<&Path> = if self.root_lowers.is_empty() {
            vec![empty.as_path()]
        } else {
            self.root_lowers.iter().map(|p| p.as_path()).collect()
        };
        let root_mount = mount_layers(
            &lowers,
            Some(Upper {
                upper: work.upper(),
                work: work.overlay_work(),
            }),
            &rootfs,
        )
        .map_err(io("mounting the step's root filesystem"))?;

        let mut guards: Vec<MountGuard> = Vec::new();
        let mut binds: Vec<BindMount> = Vec::new();
        let mut tmpfs: Vec<(String, Option<u64>)> = Vec::new();
        let mut cache_locks: Vec<std::fs::File> = Vec::new();
        let mut secret_values: Vec<Vec<u8>> = Vec::new();

        // Secrets go to a tmpfs that only this process's mount namespace sees.
        let secret_dir = base.join("secrets");
        let has_secrets = !self.secrets.is_empty();
        if has_secrets {
            std::fs::create_dir_all(&secret_dir).map_err(io("creating the secrets directory"))?;
            rustix::mount::mount(
                "tmpfs",
                &secret_dir,
                "tmpfs",
                rustix::mount::MountFlags::NOSUID
                    | rustix::mount::MountFlags::NODEV
                    | rustix::mount::MountFlags::NOEXEC,
                Some(c"mode=0700,size=16m"),
            )
            .map_err(|e| WorkerError::io("mounting a tmpfs for secrets", e.into()))?;
            guards.push(crate::mount::adopt(&secret_dir));
        }
        let secret_value = |id: &str| -> Option<Vec<u8>> {
            self.secrets
                .iter()
                .find(|(i, _)| i == id)
                .and_then(|(_, v)| v.clone())
        };
        let mut env = self.op.env.clone();
        // Proxy build args reach the process in both spellings, as in BuildKit, and
        // win over the step's own variables of the same name.
        for (k, v) in &self.op.proxy_env {
            set_env(&mut env, k, v);
            set_env(&mut env, &k.to_ascii_lowercase(), v);
        }
        for s in &self.op.secret_env {
            if let Some(v) = secret_value(&s.id) {
                set_env(&mut env, &s.name, &String::from_utf8_lossy(&v));
                secret_values.push(v);
            }
        }

        let mut targets: Vec<String> = vec!["/etc/resolv.conf".into(), "/etc/hosts".into()];
        let mut ssh_index = 0;
        for (i, m) in self.op.mounts.iter().enumerate().skip(1) {
            let target = m.target.clone();
            let prepared = &self.prepared[i - 1];
            match &m.kind {
                MountKind::Bind => {
                    let dir = base.join(format!("mount-{i}"));
                    let source =
                        self.bind_source(prepared, &dir, &m.source_path, m.readonly, &mut guards)?;
                    binds.push(BindMount {
                        source,
                        target: target.clone(),
                        readonly: m.readonly,
                    });
                }
                MountKind::Cache { id, sharing } => {
                    let (dir, lock) =
                        self.cache_dir(id, *sharing, prepared, &m.source_path, &base, i)?;
                    if let Some(l) = lock {
                        cache_locks.push(l);
                    }
                    binds.push(BindMount {
                        source: dir,
                        target: target.clone(),
                        readonly: m.readonly,
                    });
                }
                MountKind::Tmpfs { size } => tmpfs.push((target.clone(), *size)),
                MountKind::Secret {
                    id, uid, gid, mode, ..
                } => {
                    let Some(value) = secret_value(id) else {
                        continue;
                    };
                    let file = secret_dir.join(format!("secret-{i}"));
                    std::fs::write(&file, &value).map_err(io(format!("writing secret {id}")))?;
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(*mode))
                        .map_err(io("setting the secret's mode"))?;
                    rustix::fs::chown(
                        &file,
                        Some(rustix::fs::Uid::from_raw(*uid)),
                        Some(rustix::fs::Gid::from_raw(*gid)),
                    )
                    .map_err(|e| WorkerError::io("setting the secret's owner", e.into()))?;
                    secret_values.push(value);
                    binds.push(BindMount {
                        source: file,
                        target: target.clone(),
                        readonly: true,
                    });
                }
                MountKind::Ssh { uid, gid, mode, .. } => {
                    let agent = self.agents.get(ssh_index).cloned().flatten();
                    ssh_index += 1;
                    let Some(agent) = agent else {
                        continue;
                    };
                    ssh::set_socket_owner(&agent, *uid, *gid, *mode)?;
                    binds.push(BindMount {
                        source: agent,
                        target: target.clone(),
                        readonly: false,
                    });
                }
            }
            targets.push(target);
        }

        // /etc/hosts and /etc/resolv.conf, as BuildKit provides them.
        let etc = base.join("etc");
        std::fs::create_dir_all(&etc).map_err(io("creating hosts files"))?;
        let hosts = etc.join("hosts");
        let hostname = self.op.hostname.as_deref().unwrap_or(spec::HOSTNAME);
        let mut hosts_text =
            format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        for h in &self.op.extra_hosts {
            if let Some((name, ip)) = h.split_once(':').or_else(|| h.split_once('=')) {
                hosts_text.push_str(&format!("{ip}\t{name}\n"));
            }
        }
        std::fs::write(&hosts, hosts_text).map_err(io("writing /etc/hosts"))?;
        let resolv = etc.join("resolv.conf");
        std::fs::write(&resolv, resolv_conf(self.op.network))
            .map_err(io("writing /etc/resolv.conf"))?;
        binds.push(BindMount {
            source: hosts,
            target: "/etc/hosts".into(),
            readonly: true,
        });
        binds.push(BindMount {
            source: resolv,
            target: "/etc/resolv.conf".into(),
            readonly: true,
        });

        let stubs = find_stubs(&rootfs, &targets);
        let user = resolve_user(&rootfs, &self.op.user)?;
        let cwd_host = resolve_in_root(&rootfs, &self.op.cwd);
        if !cwd_host.exists() {
            std::fs::create_dir_all(&cwd_host).map_err(io(format!(
                "failed to create working directory {}",
                self.op.cwd
            )))?;
        }
        let annotations = runc::owner_annotations(self.store.root());
        let spec = build_spec(&SpecInput {
            rootfs: &rootfs,
            hostname,
            args: &self.op.args,
            env: &env,
            cwd: &self.op.cwd,
            user: &user,
            network: self.op.network,
            security: self.op.security,
            binds: &binds,
            tmpfs: &tmpfs,
            terminal: false,
            annotations: &annotations,
        })?;
        let bundle = base.join("bundle");
        std::fs::create_dir_all(&bundle).map_err(io("creating the bundle"))?;
        spec.save(bundle.join("config.json"))
            .map_err(|e| WorkerError::Failed(format!("writing the container spec: {e}")))?;
        let id = format!(
            "kiln-{}",
            &kiln_graph::Digest::of(base.to_string_lossy().as_bytes()).hex()[..20]
        );
        let finished = runc::run(
            &bundle,
            &id,
            runc::Stdio3::Captured {
                progress: &self.progress,
                secrets: &secret_values,
            },
            &self.cancel,
        );
        let failure = match finished {
            Ok(f) if f.exit_code == 0 => None,
            Ok(f) => {
                let cmd = self.op.args.join(" ");
                let mut msg = match &f.runtime_error {
                    Some(e) => format!("process \"{cmd}\" did not complete successfully: {e}"),
                    None => format!(
                        "process \"{cmd}\" did not complete successfully: exit code: {}",
                        f.exit_code
                    ),
                };
                // When the runtime could not start the process, its output is only
                // the runtime repeating the error.
                if f.runtime_error.is_none() && !f.tail.is_empty() {
                    msg.push_str("\n\nlast lines of output:\n");
                    for l in &f.tail {
                        msg.push_str("  ");
                        msg.push_str(l);
                        msg.push('\n');
                    }
                }
                Some(msg)
            }
            Err(e) => Some(e.to_string()),
        };
        if let Some(msg) = failure {
            if self.exec.debug_shell && !self.cancel.load(Ordering::SeqCst) {
                self.debug_shell(&bundle, &spec, &id);
            }
            return Err(WorkerError::Failed(msg));
        }
        remove_stubs(&rootfs, &stubs);
        drop(guards);
        drop(cache_locks);
        root_mount
            .unmount()
            .map_err(io("unmounting the step's root filesystem"))?;
        if !self.root_lowers.is_empty() {
            // Leave out of the layer what overlay copied up without a change: files
            // first, then the directories that are left unchanged (as BuildKit's differ).
            let view = base.join("base-view");
            std::fs::create_dir_all(&view).map_err(io("creating a mount point"))?;
            let guard =
                mount_layers(&lowers, None, &view).map_err(io("mounting the step's input"))?;
            crate::upper::drop_unchanged(work.upper(), &view)
                .map_err(io("comparing the step's changes"))?;
            upper::drop_unchanged_dirs(work.upper(), &view)
                .map_err(io("tidying the step's changes"))?;
            drop(guard);
        }
        let layer_id = kiln_layer::tree_digest(work.upper())?;
        work.commit(&layer_id)?;
        Ok(layer_id)
    }

    /// The host directory a bind mount shows: a read-only view of an input, or a
    /// writable overlay on it whose writes are discarded after the step.
    fn bind_source(
        &self,
        prepared: &Prepared,
        dir: &Path,
        source_path: &str,
        readonly: bool,
        guards: &mut Vec<MountGuard>,
    ) -> Result<PathBuf, WorkerError> {
        let view = dir.join("view");
        std::fs::create_dir_all(&view).map_err(io("creating a mount point"))?;
        let lowers: Vec<PathBuf> = match prepared {
            Prepared::Layers { lowers, .. } if !lowers.is_empty() => lowers.clone(),
            Prepared::Local(index) => vec![local_view(index, dir)?],
            _ => {
                let e = dir.join("empty");
                std::fs::create_dir_all(&e).map_err(io("creating an empty mount"))?;
                vec![e]
            }
        };
        let refs: Vec<&Path> = lowers.iter().map(|p| p.as_path()).collect();
        let upper = dir.join("upper");
        let work = dir.join("work");
        let guard = if readonly {
            mount_layers(&refs, None, &view)
        } else {
            std::fs::create_dir_all(&upper).map_err(io("creating a mount's upper dir"))?;
            std::fs::create_dir_all(&work).map_err(io("creating a mount's work dir"))?;
            mount_layers(
                &refs,
                Some(Upper {
                    upper: &upper,
                    work: &work,
                }),
                &view,
            )
        }
        .map_err(io("mounting a bind mount's source"))?;
        guards.push(guard);
        let src = resolve_in_root(&view, source_path);
        if !src.exists() {
            return Err(WorkerError::Failed(format!(
                "failed to mount: {source_path}: no such file or directory"
            )));
        }
        Ok(src)
    }

    /// The directory of a cache mount, seeded from its input when first created, and
    /// the lock that `sharing` asks for.
    fn cache_dir(
        &self,
        id: &str,
        sharing: kiln_graph::CacheSharing,
        prepared: &Prepared,
        source_path: &str,
        base: &Path,
        i: usize,
    ) -> Result<(PathBuf, Option<std::fs::File>), WorkerError> {
        // As BuildKit, a cache seeded from an input (`from=`, or the directory made
        // for its uid, gid and mode) is its own cache: other contents or another
        // owner get another one.
        let key = match prepared {
            Prepared::Layers { digest, .. } => format!("{id}@{digest}"),
            _ => id.to_string(),
        };
        let dir = self.store.cache_mount(&key)?;
        let lock_file = std::fs::File::open(&dir).map_err(io(format!("opening cache {id}")))?;
        let lock = match sharing {
            kiln_graph::CacheSharing::Shared => None,
            kiln_graph::CacheSharing::Locked => {
                // Waits for the lock, but not past a cancelled build.
                loop {
                    match rustix::fs::flock(
                        &lock_file,
                        rustix::fs::FlockOperation::NonBlockingLockExclusive,
                    ) {
                        Ok(()) => break,
                        Err(rustix::io::Errno::WOULDBLOCK) => {
                            if self.cancel.load(Ordering::SeqCst) {
                                return Err(WorkerError::Failed("canceled".into()));
                            }
                            std::thread::sleep(std::time::Duration::from_millis(50));
                        }
                        Err(e) => {
                            return Err(WorkerError::io(format!("locking cache {id}"), e.into()));
                        }
                    }
                }
                Some(lock_file)
            }
            kiln_graph::CacheSharing::Private => {
                match rustix::fs::flock(
                    &lock_file,
                    rustix::fs::FlockOperation::NonBlockingLockExclusive,
                ) {
                    Ok(()) => Some(lock_file),
                    Err(_) => {
                        // In use: this step gets a fresh directory of its own.
                        let own = base.join(format!("cache-{i}"));
                        std::fs::create_dir_all(&own).map_err(io("creating a private cache"))?;
                        return Ok((own, None));
                    }
                }
            }
        };
        let is_new = std::fs::read_dir(&dir)
            .map_err(io(format!("reading cache {id}")))?
            .next()
            .is_none();
        if is_new
            && let Prepared::Layers { lowers, .. } = prepared
            && !lowers.is_empty()
        {
            // Seed the new cache from its `from=`/`source=`, ownership and mode included.
            let seed = base.join(format!("seed-{i}"));
            std::fs::create_dir_all(&seed).map_err(io("creating a mount point"))?;
            let refs: Vec<&Path> = lowers.iter().map(|p| p.as_path()).collect();
            let guard = mount_layers(&refs, None, &seed).map_err(io("mounting a cache seed"))?;
            let src = resolve_in_root(&seed, source_path);
            if src.is_dir() {
                copy_tree(&src, &dir)?;
            }
            drop(guard);
        }
        Ok((dir, lock))
    }

    /// An interactive shell in the failed step's filesystem, with its env, user,
    /// working directory and mounts; the build fails afterwards with the step's error.
    fn debug_shell(&self, bundle: &Path, spec: &oci_spec::runtime::Spec, id: &str) {
        let _only_one = SHELL.lock().unwrap_or_else(|e| e.into_inner());
        // On a terminal the shell gets a terminal of its own, as with `docker run
        // -it`: runc puts kiln's terminal in raw mode and relays it, so line editing,
        // Ctrl-C and full-screen programs work inside and kiln is not interrupted.
        let terminal = std::io::stdin().is_terminal();
        let mut spec = spec.clone();
        if let Some(p) = spec.process_mut() {
            p.set_args(Some(vec!["/bin/sh".to_string()]));
            p.set_terminal(Some(terminal));
            if terminal {
                let mut env = p.env().clone().unwrap_or_default();
                if !env.iter().any(|e| e.starts_with("TERM=")) {
                    let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
                    env.push(format!("TERM={term}"));
                }
                p.set_env(Some(env));
            }
        }
        self.progress.log(
            Stream::Stderr,
            format!(
                "step {:?} failed; opening a shell in its filesystem (exit it to end the build)\n",
                self.name
            ),
        );
        let shell_bundle = bundle.with_file_name("debug-bundle");
        let opened = std::fs::create_dir_all(&shell_bundle)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                spec.save(shell_bundle.join("config.json"))
                    .map_err(|e| e.to_string())
            })
            .and_then(|()| {
                runc::run(
                    &shell_bundle,
                    &format!("{id}-debug"),
                    runc::Stdio3::Inherit,
                    &self.cancel,
                )
                .map_err(|e| e.to_string())
            });
        match opened {
            Ok(f) if f.runtime_error.is_some() => self.progress.log(
                Stream::Stderr,
                format!(
                    "could not open a shell: {}\n",
                    f.runtime_error.unwrap_or_default()
                ),
            ),
            Ok(_) => {}
            Err(e) => self
                .progress
                .log(Stream::Stderr, format!("could not open a shell: {e}\n")),
        }
    }
}

/// A read-only copy-free view of a local directory without its excluded files: the
/// directory itself when nothing is excluded, otherwise a tree of hardlinks (or
/// copies across file systems) of the visible files.
fn local_view(index: &ContextIndex, dir: &Path) -> Result<PathBuf, WorkerError> {
    if index.exclude_patterns.is_empty() {
        return Ok(index.root.clone());
    }
    let view = dir.join("context");
    std::fs::create_dir_all(&view).map_err(io("creating a context view"))?;
    let entries = kiln_ignore::walk(
        &index.root,
        &kiln_ignore::WalkOptions {
            exclude_patterns: index.exclude_patterns.clone(),
            ..kiln_ignore::WalkOptions::default()
        },
    )
    .map_err(|e| WorkerError::Failed(format!("reading the build context: {e}")))?;
    for e in entries {
        let src = index.root.join(&e.path);
        let dst = view.join(&e.path);
        let ft = e.metadata.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dst).map_err(io(format!("{}", dst.display())))?;
            let _ = std::fs::set_permissions(&dst, e.metadata.permissions());
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&src).map_err(io(format!("{}", src.display())))?;
            std::os::unix::fs::symlink(t, &dst).map_err(io(format!("{}", dst.display())))?;
        } else if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(io(format!("{}", src.display())))?;
        }
    }
    Ok(view)
}

/// Sets `key=value` in an environment list, replacing earlier entries of the key.
fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key));
    env.push(format!("{key}={value}"));
}

/// Copies a directory tree (contents, modes, ownership, times) with `cp -a`.
fn copy_tree(src: &Path, dst: &Path) -> Result<(), WorkerError> {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(dst)
        .status()
        .map_err(io("copying a cache seed"))?;
    if !status.success() {
        return Err(WorkerError::Failed(format!(
            "copying {} into a cache failed",
            src.display()
        )));
    }
    Ok(())
}

/// `resolv.conf` for a step: the host's, without loopback name servers when the step
/// has a network of its own (they would not answer there).
fn resolv_conf(network: NetworkMode) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if network != NetworkMode::None {
        return host;
    }
    host.lines()
        .filter(|l| {
            let t = l.trim();
            !(t.starts_with("nameserver") && (t.contains("127.") || t.contains("::1")))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Paths the runtime will have to create for mount points, deepest first.
fn find_stubs(root: &Path, targets: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for t in targets {
        let mut p = resolve_in_root(root, t);
        loop {
            if p == root || std::fs::symlink_metadata(&p).is_ok() {
                break;
            }
            out.push(p.clone());
            match p.parent() {
                Some(parent) if parent != root => p = parent.to_path_buf(),
                _ => break,
            }
        }
    }
    out
}

/// Removes mount points the runtime created, if they are still empty.
fn remove_stubs(_root: &Path, stubs: &[PathBuf]) {
    for p in stubs {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            continue;
        };
        if m.is_dir() {
            let _ = std::fs::remove_dir(p);
        } else if m.len() == 0 {
            let _ = std::fs::remove_file(p);
        }
    }
}
