//! The [`Worker`]: runs the ops of a build graph on this machine for the solver.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kiln_graph::{CopyAction, Digest, FileAction, FileOp, Op, SourceOp, Vertex, vertex_digest};
use kiln_registry::Reference;
use kiln_solver::{Backend, OpError, Output, Progress};
use kiln_store::{KeyComponent, Store};

use crate::context::{ContextIndex, LocalDir};
use crate::error::WorkerError;
use crate::fileop::{
    self, ApplyOptions, CopiedFile, FileHasher, FileStat, PlainHasher, SourceTree,
};
use crate::image::Images;
use crate::layers::Layers;
use crate::mount::{MountGuard, Upper, mount_layers};
use kiln_layer::KnownContent;
use sha2::{Digest as _, Sha256};

/// What the worker needs to know about the build it serves.
#[derive(Debug, Clone, Default)]
pub struct WorkerConfig {
    /// Local directories by name: `context` and named contexts.
    pub locals: HashMap<String, LocalDir>,
    /// Fall back to the last resolution of a tag when its registry is unreachable.
    pub allow_stale_images: bool,
    /// Secrets, SSH agents and privileges of RUN steps.
    pub exec: crate::exec::ExecConfig,
}

/// Runs ops against the store, the registry and the local machine.
pub struct Worker {
    store: Arc<Store>,
    images: Images,
    layers: Arc<Layers>,
    config: WorkerConfig,
    contexts: Mutex<HashMap<String, Arc<ContextIndex>>>,
    /// Digests of layer files hashed while computing cache keys, by what `stat`
    /// says of them: a COPY that copies them need not read the copies again, nor
    /// another COPY reading them hash them again.
    layer_contents: Arc<Mutex<HashMap<ContentKey, Digest>>>,
}

/// Inode, size, mtime and ctime (ns) of a file in a layer directory (immutable).
type ContentKey = (u64, u64, i64, i64);

fn content_key(stat: &FileStat) -> ContentKey {
    let ns = |(s, n): (i64, i64)| s.saturating_mul(1_000_000_000).saturating_add(n);
    (stat.ino, stat.size, ns(stat.mtime), ns(stat.ctime))
}

/// Hashes layer files, answering from the worker's table for files hashed before
/// (layer directories never change) and adding the others to it.
struct LayerFileHasher<'a> {
    known: &'a Mutex<HashMap<ContentKey, Digest>>,
}

impl FileHasher for LayerFileHasher<'_> {
    fn file_digest(
        &mut self,
        rel_path: &Path,
        abs_path: &Path,
        stat: &FileStat,
    ) -> std::io::Result<Digest> {
        let key = content_key(stat);
        let lock = || self.known.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = lock().get(&key) {
            return Ok(d.clone());
        }
        let d = PlainHasher.file_digest(rel_path, abs_path, stat)?;
        lock().insert(key, d.clone());
        Ok(d)
    }
}

/// What the step knows of the contents of the files its copies wrote: the digest
/// of a copy's original, from the context's index or from the layer files hashed
/// for the cache key, when that original is provably the file whose digest is
/// known. A path written twice keeps what its last copy says.
fn known_contents(
    copied: &[CopiedFile],
    dirs: &[InputDirs],
    layer_contents: &Mutex<HashMap<ContentKey, Digest>>,
) -> HashMap<Vec<u8>, KnownContent> {
    let layers = layer_contents.lock().unwrap_or_else(|e| e.into_inner());
    let mut known = HashMap::new();
    for c in copied {
        let path = c.dest.as_os_str().as_encoded_bytes().to_vec();
        let digest = if c.source_stat.size != c.dest_stat.size {
            None
        } else {
            match dirs.get(c.input) {
                Some(InputDirs::Local(index)) => index.known_content(&c.source, &c.source_stat),
                Some(InputDirs::Layers(_)) => layers.get(&content_key(&c.source_stat)).cloned(),
                None => None,
            }
        };
        match digest {
            Some(digest) => {
                let (ino, size, mtime_ns, ctime_ns) = content_key(&c.dest_stat);
                known.insert(
                    path,
                    KnownContent {
                        ino,
                        size,
                        mtime_ns,
                        ctime_ns,
                        digest,
                    },
                );
            }
            None => {
                known.remove(&path);
            }
        }
    }
    known
}

impl Worker {
    /// A worker over a store, an image cache and the build's settings.
    pub fn new(store: Arc<Store>, images: Images, config: WorkerConfig) -> Worker {
        let layers = Arc::new(Layers::new(store.clone(), images.registry().clone()));
        Worker {
            store,
            images,
            layers,
            config,
            contexts: Mutex::new(HashMap::new()),
            layer_contents: Arc::default(),
        }
    }

    /// The store the worker writes to.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Layers on demand (pull, extract, compress).
    pub fn layers(&self) -> &Arc<Layers> {
        &self.layers
    }

    /// The image cache.
    pub fn images(&self) -> &Images {
        &self.images
    }

    pub(crate) fn exec_config(&self) -> crate::exec::ExecConfig {
        self.config.exec.clone()
    }

    /// Makes every layer present; their directories topmost first.
    pub(crate) async fn lowers_for(
        &self,
        layers: &[Digest],
        progress: &Progress,
    ) -> Result<Vec<PathBuf>, WorkerError> {
        self.lowers(layers, progress).await
    }

    /// The local directories of the build, by name.
    pub fn locals(&self) -> &HashMap<String, LocalDir> {
        &self.config.locals
    }

    /// The index of local directory `name` as the graph's source op selects it: the
    /// op's exclude patterns decide what is visible (the graph is the contract).
    async fn context(
        &self,
        name: &str,
        exclude_patterns: &[String],
    ) -> Result<Arc<ContextIndex>, WorkerError> {
        let key = format!("{name}\0{}", exclude_patterns.join("\0"));
        if let Some(c) = self
            .contexts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        let mut dir = self.config.locals.get(name).cloned().ok_or_else(|| {
            WorkerError::Invalid(format!(
                "no local directory named {name:?} was given to the build"
            ))
        })?;
        dir.exclude_patterns = exclude_patterns.to_vec();
        let store = self.store.clone();
        let n = name.to_string();
        let index = tokio::task::spawn_blocking(move || ContextIndex::build(&store, &n, &dir))
            .await
            .map_err(|e| WorkerError::Failed(format!("indexing {name}: {e}")))??;
        let index = Arc::new(index);
        self.contexts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, index.clone());
        Ok(index)
    }

    /// Makes every layer of `layers` present and returns their directories, topmost
    /// first (the order overlayfs wants).
    async fn lowers(
        &self,
        layers: &[Digest],
        progress: &Progress,
    ) -> Result<Vec<PathBuf>, WorkerError> {
        let mut dirs = Vec::with_capacity(layers.len());
        let futs = layers.iter().map(|l| self.layers.materialize(l, progress));
        for d in futures::future::try_join_all(futs).await? {
            dirs.push(d);
        }
        dirs.reverse();
        Ok(topmost_unique(dirs))
    }

    /// What each input looks like to a file op: a local directory, or the layer
    /// directories of a filesystem (made present).
    async fn file_sources(
        &self,
        inputs: &[Arc<Output>],
        progress: &Progress,
    ) -> Result<Vec<InputDirs>, WorkerError> {
        let mut out = Vec::with_capacity(inputs.len());
        for input in inputs {
            out.push(match input.as_ref() {
                Output::Local { handle, .. } => {
                    let index = handle.clone().downcast::<ContextIndex>().map_err(|_| {
                        WorkerError::Failed("local input of an unknown kind".into())
                    })?;
                    InputDirs::Local(index)
                }
                Output::Layers { layers, .. } => {
                    InputDirs::Layers(self.lowers(layers, progress).await?)
                }
            });
        }
        Ok(out)
    }
}

/// An input of a file op, ready to be mounted or read.
enum InputDirs {
    Local(Arc<ContextIndex>),
    /// Layer directories, topmost first.
    Layers(Vec<PathBuf>),
}

/// Mounts of a step's inputs under a work directory; dropped, they are unmounted.
struct Mounted {
    _guards: Vec<MountGuard>,
    dirs: Vec<Option<PathBuf>>,
}

/// Mounts read-only every layer input that `used` says a copy reads.
fn mount_sources(base: &Path, inputs: &[InputDirs], used: &[bool]) -> Result<Mounted, WorkerError> {
    let mut guards = Vec::new();
    let mut dirs = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        match input {
            InputDirs::Layers(lowers) if used.get(i).copied().unwrap_or(false) => {
                let dir = base.join(format!("src-{i}"));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| WorkerError::io(format!("creating {}", dir.display()), e))?;
                if !lowers.is_empty() {
                    let refs: Vec<&Path> = lowers.iter().map(|p| p.as_path()).collect();
                    guards.push(
                        mount_layers(&refs, None, &dir)
                            .map_err(|e| WorkerError::io(format!("mounting input {i}"), e))?,
                    );
                }
                dirs.push(Some(dir));
            }
            _ => dirs.push(None),
        }
    }
    Ok(Mounted {
        _guards: guards,
        dirs,
    })
}

fn source_trees<'a>(inputs: &'a [InputDirs], mounted: &'a Mounted) -> Vec<Option<SourceTree<'a>>> {
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| match input {
            InputDirs::Local(index) => Some(SourceTree {
                root: &index.root,
                exclude: &index.exclude_patterns,
                owner: Some((0, 0)),
            }),
            InputDirs::Layers(_) => mounted.dirs[i].as_deref().map(|root| SourceTree {
                root,
                exclude: &[],
                owner: None,
            }),
        })
        .collect()
}

fn copy_sources_used(op: &FileOp, n: usize) -> Vec<bool> {
    let mut used = vec![false; n];
    for a in &op.actions {
        if let FileAction::Copy(c) = a
            && c.source < n
        {
            used[c.source] = true;
        }
    }
    used
}

/// The memo key of the selection digest of copy action `index` of the op `op_digest`
/// reading `input`: the op and action, and what identifies the input's content (the
/// layer ids of a filesystem, the stat fingerprint of a context). `None` when the
/// input cannot be identified so (a context changed too recently).
fn selection_memo_key(
    op_digest: &Digest,
    index: usize,
    input: Option<&Arc<Output>>,
) -> Option<Digest> {
    let mut h = Sha256::new();
    h.update(b"kiln.selection-memo.v1\0");
    h.update(op_digest.to_string().as_bytes());
    h.update((index as u64).to_le_bytes());
    match input?.as_ref() {
        Output::Layers { layers, .. } => {
            h.update(b"layers\0");
            for l in layers {
                h.update(l.to_string().as_bytes());
                h.update([0]);
            }
        }
        Output::Local { handle, .. } => {
            let index = handle.clone().downcast::<ContextIndex>().ok()?;
            h.update(b"local\0");
            h.update(index.stat_fingerprint.as_ref()?.to_string().as_bytes());
        }
    }
    Some(Digest::from_sha256(h.finalize().into()))
}

fn op_err(e: WorkerError) -> OpError {
    OpError::new(e.to_string())
}

impl Backend for Worker {
    async fn source(&self, v: &Vertex, progress: Progress) -> Result<Output, OpError> {
        let Op::Source(src) = &v.op else {
            return Err(OpError::new("not a source op"));
        };
        match src {
            SourceOp::Image {
                reference,
                platform,
            } => {
                let r = Reference::parse(reference).map_err(|e| OpError::new(e.to_string()))?;
                let img = self
                    .images
                    .resolve(&r, platform, self.config.allow_stale_images)
                    .await
                    .map_err(op_err)?;
                progress.status(format!("resolve {}", img.reference), 0, None, true);
                let ids: Vec<Digest> = img.layers.iter().map(|l| l.diff_id.clone()).collect();
                for l in img.layers {
                    self.layers.add_remote(l);
                }
                Ok(Output::layers(ids))
            }
            SourceOp::Local {
                name,
                exclude_patterns,
            } => {
                let index = self.context(name, exclude_patterns).await.map_err(op_err)?;
                Ok(Output::Local {
                    name: name.clone(),
                    digest: index.digest.clone(),
                    handle: index,
                })
            }
            SourceOp::Http { .. } | SourceOp::Git { .. } | SourceOp::OciLayout { .. } => {
                crate::remote::source(self, src, &progress)
                    .await
                    .map_err(op_err)
            }
        }
    }

    async fn key_components(
        &self,
        v: &Vertex,
        inputs: &[Arc<Output>],
    ) -> Result<Vec<KeyComponent>, OpError> {
        match &v.op {
            Op::File(op) => {
                let mut out = Vec::new();
                if let Some(b) = op.base
                    && let Some(input) = inputs.get(b)
                {
                    out.push(KeyComponent::new("base filesystem", input.digest().clone()));
                }
                let copies: Vec<(usize, CopyAction)> = op
                    .actions
                    .iter()
                    .enumerate()
                    .filter_map(|(i, a)| match a {
                        FileAction::Copy(c) => Some((i, c.clone())),
                        _ => None,
                    })
                    .collect();
                if copies.is_empty() {
                    return Ok(out);
                }
                // Selections computed by an earlier build from the same inputs need
                // no walk, and no mount of a layer input.
                let op_digest = vertex_digest(&v.op, &[]);
                let memo_keys: Vec<Option<Digest>> = copies
                    .iter()
                    .map(|(i, c)| selection_memo_key(&op_digest, *i, inputs.get(c.source)))
                    .collect();
                let mut known: Vec<Option<Digest>> = memo_keys
                    .iter()
                    .map(|k| k.as_ref().and_then(|k| self.store.memo(k).ok().flatten()))
                    .collect();
                if known.iter().any(Option::is_none) {
                    let missing: Vec<(usize, CopyAction)> = copies
                        .iter()
                        .zip(&known)
                        .filter(|(_, k)| k.is_none())
                        .map(|(c, _)| c.clone())
                        .collect();
                    let computed = self.selection_digests(v, inputs, missing).await?;
                    let mut computed = computed.into_iter();
                    for (slot, key) in known.iter_mut().zip(&memo_keys) {
                        if slot.is_some() {
                            continue;
                        }
                        let Some((digest, complete)) = computed.next() else {
                            return Err(OpError::new(
                                "computing cache key: a selection is missing",
                            ));
                        };
                        if complete && let Some(key) = key {
                            // A memo that cannot be written only costs a walk next time.
                            let _ = self.store.put_memo(key, &digest);
                        }
                        *slot = Some(digest);
                    }
                }
                for ((i, c), digest) in copies.iter().zip(known) {
                    let digest = digest.unwrap_or_else(|| Digest::of(b"empty"));
                    out.push(KeyComponent::new(format!("copy {i} {}", c.src), digest));
                }
                Ok(out)
            }
            Op::Exec(exec) => Ok(inputs
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let label = match exec.mounts.iter().find(|m| m.input == Some(i)) {
                        Some(m) if m.target == "/" => "root filesystem".to_string(),
                        Some(m) => format!("mount {}", m.target),
                        None => format!("input {i}"),
                    };
                    KeyComponent::new(label, o.digest().clone())
                })
                .collect()),
            _ => Ok(inputs
                .iter()
                .enumerate()
                .map(|(i, o)| KeyComponent::new(format!("input {i}"), o.digest().clone()))
                .collect()),
        }
    }

    async fn run(
        &self,
        v: &Vertex,
        inputs: &[Arc<Output>],
        progress: Progress,
    ) -> Result<Output, OpError> {
        match &v.op {
            Op::File(op) => self.run_file(op, inputs, &progress).await.map_err(op_err),
            Op::Exec(op) => crate::exec::run(self, v, op, inputs, &progress)
                .await
                .map_err(op_err),
            _ => Err(OpError::new(format!(
                "{} ops are not run by the worker",
                v.op.kind()
            ))),
        }
    }
}

impl Worker {
    /// The content digests of what `copies` select from the op's inputs, each with
    /// whether it covers only what the inputs' memo keys cover (a digest that had to
    /// read a context file the index did not know is not remembered).
    async fn selection_digests(
        &self,
        v: &Vertex,
        inputs: &[Arc<Output>],
        copies: Vec<(usize, CopyAction)>,
    ) -> Result<Vec<(Digest, bool)>, OpError> {
        let progress = Progress::detached(&v.digest);
        let dirs = self.file_sources(inputs, &progress).await.map_err(op_err)?;
        let store = self.store.clone();
        let mut used = vec![false; inputs.len()];
        for (_, c) in &copies {
            if let Some(u) = used.get_mut(c.source) {
                *u = true;
            }
        }
        let layer_contents = self.layer_contents.clone();
        tokio::task::spawn_blocking(move || -> Result<Vec<(Digest, bool)>, WorkerError> {
            let work = store.work_dir()?;
            let mounted = mount_sources(work.path(), &dirs, &used)?;
            let trees = source_trees(&dirs, &mounted);
            let mut out = Vec::new();
            for (_, c) in copies {
                let tree = trees.get(c.source).and_then(|t| t.as_ref());
                let fail = |e: fileop::FileOpError| WorkerError::Failed(e.to_string());
                out.push(match (tree, &dirs[c.source]) {
                    (Some(t), InputDirs::Local(index)) => {
                        let mut hasher = index.hasher();
                        let d = fileop::selection_digest(&c, t, &mut hasher).map_err(fail)?;
                        (d, hasher.unindexed == 0)
                    }
                    (Some(t), InputDirs::Layers(_)) => {
                        let mut hasher = LayerFileHasher {
                            known: &layer_contents,
                        };
                        (
                            fileop::selection_digest(&c, t, &mut hasher).map_err(fail)?,
                            true,
                        )
                    }
                    (None, _) => (Digest::of(b"empty"), false),
                });
            }
            Ok(out)
        })
        .await
        .map_err(|e| OpError::new(format!("computing cache key: {e}")))?
        .map_err(op_err)
    }

    async fn run_file(
        &self,
        op: &FileOp,
        inputs: &[Arc<Output>],
        progress: &Progress,
    ) -> Result<Output, WorkerError> {
        let base_layers: Vec<Digest> = match op.base {
            Some(b) => inputs
                .get(b)
                .and_then(|o| o.layer_ids())
                .ok_or_else(|| WorkerError::Invalid("file op base is not a filesystem".into()))?
                .to_vec(),
            None => Vec::new(),
        };
        let base_dirs = self.lowers(&base_layers, progress).await?;
        let dirs = self.file_sources(inputs, progress).await?;
        let store = self.store.clone();
        let used = copy_sources_used(op, inputs.len());
        let actions = op.actions.clone();
        let empty_base = op.base.is_none();
        let layer_contents = self.layer_contents.clone();
        let id = tokio::task::spawn_blocking(move || -> Result<Digest, WorkerError> {
            let work = store.work_dir()?;
            let merged = work.path().join("merged");
            std::fs::create_dir_all(&merged)
                .map_err(|e| WorkerError::io("creating mount point", e))?;
            // Over an empty base the upper dir is the whole filesystem: no mount needed.
            let base_mount = if base_dirs.is_empty() {
                None
            } else {
                let refs: Vec<&Path> = base_dirs.iter().map(|p| p.as_path()).collect();
                Some(
                    mount_layers(
                        &refs,
                        Some(Upper {
                            upper: work.upper(),
                            work: work.overlay_work(),
                        }),
                        &merged,
                    )
                    .map_err(|e| WorkerError::io("mounting the step's filesystem", e))?,
                )
            };
            let root = if base_mount.is_some() {
                merged.clone()
            } else {
                work.upper().to_path_buf()
            };
            let mut known = HashMap::new();
            {
                let mounted = mount_sources(work.path(), &dirs, &used)?;
                let trees = source_trees(&dirs, &mounted);
                let opts = ApplyOptions {
                    empty_base,
                    ..ApplyOptions::default()
                };
                let copied = fileop::apply_traced(&root, &actions, &trees, &opts)
                    .map_err(|e| WorkerError::Failed(e.to_string()))?;
                // An inline file may rewrite a copy in place within the times'
                // granularity: then nothing is taken as known.
                if !actions.iter().any(|a| matches!(a, FileAction::Mkfile(_))) {
                    known = known_contents(&copied, &dirs, &layer_contents);
                }
            }
            if let Some(m) = base_mount {
                m.unmount()
                    .map_err(|e| WorkerError::io("unmounting the step's filesystem", e))?;
                let refs: Vec<&Path> = base_dirs.iter().map(|p| p.as_path()).collect();
                crate::upper::drop_unchanged_against(work.upper(), &refs, &merged)?;
            }
            let id = kiln_layer::tree_digest_with(work.upper(), &known)?;
            work.commit(&id)?;
            Ok(id)
        })
        .await
        .map_err(|e| WorkerError::Failed(format!("file operation: {e}")))??;
        let mut layers = base_layers;
        layers.push(id);
        Ok(Output::layers(layers))
    }
}

/// Keeps the topmost occurrence of each layer directory in a stack given topmost first.
///
/// Layers are keyed by content, so one stack can hold the same layer twice (the same
/// COPY made again after other steps). overlayfs refuses a lower directory listed twice
/// (`ELOOP`), and the lower copy cannot change what the stack shows: the upper copy
/// sets again every path the layer names, and the layer touches no other path.
fn topmost_unique(dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut seen = std::collections::HashSet::new();
    dirs.into_iter()
        .filter(|d| seen.insert(d.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_graph::FileAction;

    fn copy_all(dest: &str) -> FileAction {
        FileAction::Copy(CopyAction {
            source: 1,
            src: "/".into(),
            dest: dest.into(),
            owner: None,
            mode: None,
            follow_symlinks: true,
            contents_only: true,
            unpack_archives: false,
            create_dest_path: true,
            allow_wildcard: true,
            allow_empty_wildcard: true,
            include_patterns: vec![],
            exclude_patterns: vec![],
            replace_existing: false,
            timestamp: None,
        })
    }

    #[test]
    fn copies_of_indexed_files_are_digested_without_reading_them_and_alike() {
        let state = tempfile::tempdir().unwrap();
        let store = Store::open(state.path()).unwrap();
        let ctx = tempfile::tempdir().unwrap();
        std::fs::create_dir(ctx.path().join("sub")).unwrap();
        for (name, body) in [
            ("a.txt", "alpha"),
            ("sub/b.txt", "bravo"),
            ("sub/c.txt", "c"),
        ] {
            std::fs::write(ctx.path().join(name), body).unwrap();
        }
        // Older than the racy window, so the index vouches for them.
        std::thread::sleep(std::time::Duration::from_millis(2100));
        let dir = LocalDir {
            root: ctx.path().to_path_buf(),
            exclude_patterns: vec![],
        };
        let index = Arc::new(ContextIndex::build(&store, "context", &dir).unwrap());
        // Changed after indexing: its copy must be read.
        std::fs::write(ctx.path().join("sub/c.txt"), "C").unwrap();

        let dest = tempfile::tempdir().unwrap();
        let tree = SourceTree {
            root: &index.root,
            exclude: &[],
            owner: Some((0, 0)),
        };
        let copied = fileop::apply_traced(
            dest.path(),
            &[copy_all("/app/")],
            &[None, Some(tree)],
            &ApplyOptions::default(),
        )
        .unwrap();
        assert_eq!(copied.len(), 3);
        let dirs = [InputDirs::Layers(vec![]), InputDirs::Local(index.clone())];
        let known = known_contents(&copied, &dirs, &Mutex::default());
        let mut paths: Vec<_> = known.keys().cloned().collect();
        paths.sort();
        assert_eq!(paths, [b"app/a.txt".to_vec(), b"app/sub/b.txt".to_vec()]);
        assert_eq!(
            kiln_layer::tree_digest_with(dest.path(), &known).unwrap(),
            kiln_layer::tree_digest(dest.path()).unwrap()
        );
    }

    #[test]
    fn a_layer_listed_twice_keeps_its_topmost_place() {
        let stack = ["/l/c", "/l/a", "/l/b", "/l/a", "/l/c"]
            .map(PathBuf::from)
            .to_vec();
        let expected = ["/l/c", "/l/a", "/l/b"].map(PathBuf::from).to_vec();
        assert_eq!(topmost_unique(stack), expected);
    }

    #[test]
    fn a_stack_without_repeats_is_unchanged() {
        let stack = ["/l/3", "/l/2", "/l/1"].map(PathBuf::from).to_vec();
        assert_eq!(topmost_unique(stack.clone()), stack);
    }
}
