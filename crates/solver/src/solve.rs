//! The graph walk: one shared future per vertex, inputs first, a bounded number of
//! ops running at once, and a cache lookup before anything runs.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use futures::FutureExt;
use futures::future::{Shared, try_join_all};
use kiln_graph::{Definition, Digest, Op, Vertex, vertex_digest};
use kiln_store::{CacheRecord, KeyComponent, Store};
use sha2::{Digest as _, Sha256};
use tokio::sync::Semaphore;

use crate::output::Output;
use crate::progress::{Event, EventSink, Progress};

/// A failure of one op, as the backend reports it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct OpError {
    pub message: String,
}

impl OpError {
    pub fn new(message: impl Into<String>) -> OpError {
        OpError {
            message: message.into(),
        }
    }
}

/// A failed build: which vertex failed and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SolveError {
    /// The failing vertex's progress name (`[build 2/3] RUN make`).
    pub vertex: String,
    pub location: Option<kiln_graph::Location>,
    pub message: String,
}

/// What the solver needs from the machine: running ops and hashing their inputs.
pub trait Backend: Send + Sync + 'static {
    /// Produces a source's output. Sources are not looked up in the solver's cache:
    /// the backend knows how to check them cheaply (a pinned image, a stat cache).
    fn source(
        &self,
        v: &Vertex,
        progress: Progress,
    ) -> impl Future<Output = Result<Output, OpError>> + Send;

    /// The parts of a vertex's cache key that come from its inputs' contents, e.g. the
    /// checksum of the files a COPY selects. The solver adds the op itself.
    fn key_components(
        &self,
        v: &Vertex,
        inputs: &[Arc<Output>],
    ) -> impl Future<Output = Result<Vec<KeyComponent>, OpError>> + Send;

    /// Runs an exec or file op on its inputs and returns the new layer stack.
    fn run(
        &self,
        v: &Vertex,
        inputs: &[Arc<Output>],
        progress: Progress,
    ) -> impl Future<Output = Result<Output, OpError>> + Send;
}

/// How a solve runs.
#[derive(Debug, Clone)]
pub struct SolveOptions {
    /// How many ops may run at once.
    pub jobs: usize,
}

impl Default for SolveOptions {
    fn default() -> Self {
        SolveOptions {
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        }
    }
}

type VertexFuture = Shared<Pin<Box<dyn Future<Output = Result<Arc<Output>, SolveError>> + Send>>>;

/// Builds graphs with a backend and a store for cache records.
pub struct Solver<B: Backend> {
    backend: Arc<B>,
    store: Arc<Store>,
    limit: Arc<Semaphore>,
}

struct Walk<B: Backend> {
    backend: Arc<B>,
    store: Arc<Store>,
    limit: Arc<Semaphore>,
    vertices: HashMap<Digest, Vertex>,
    futures: Mutex<HashMap<Digest, VertexFuture>>,
    events: EventSink,
}

impl<B: Backend> Solver<B> {
    pub fn new(backend: Arc<B>, store: Arc<Store>, opts: SolveOptions) -> Solver<B> {
        Solver {
            backend,
            store,
            limit: Arc::new(Semaphore::new(opts.jobs.max(1))),
        }
    }

    /// Builds every target's root and returns their outputs in target order
    /// (`None` for a target with an empty filesystem).
    pub async fn solve(
        &self,
        def: &Definition,
        events: EventSink,
    ) -> Result<Vec<Option<Arc<Output>>>, SolveError> {
        let walk = Arc::new(Walk {
            backend: self.backend.clone(),
            store: self.store.clone(),
            limit: self.limit.clone(),
            vertices: def
                .vertices
                .iter()
                .map(|v| (v.digest.clone(), v.clone()))
                .collect(),
            futures: Mutex::new(HashMap::new()),
            events,
        });
        // Pending futures hold the walk (and its event sink) alive, and the walk holds
        // them: drop them when the solve ends, however it ends. That also cancels steps
        // that no longer matter after a failure, or when the caller drops the solve
        // (Ctrl-C), which a reference cycle would otherwise keep running.
        let _clear = ClearFutures(walk.clone());
        let mut outs = Vec::new();
        let mut result = Ok(());
        for t in &def.targets {
            match &t.root {
                Some(root) => match Walk::get(&walk, root).await {
                    Ok(o) => outs.push(Some(o)),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                },
                None => outs.push(None),
            }
        }
        result.map(|()| outs)
    }
}

/// Drops a walk's pending vertex futures when dropped.
struct ClearFutures<B: Backend>(Arc<Walk<B>>);

impl<B: Backend> Drop for ClearFutures<B> {
    fn drop(&mut self) {
        // Taken out first: dropping a future may drop others, which must not find
        // the map locked.
        let pending =
            std::mem::take(&mut *self.0.futures.lock().unwrap_or_else(|e| e.into_inner()));
        drop(pending);
    }
}

impl<B: Backend> Walk<B> {
    /// The shared future of a vertex, created on first request.
    fn get(this: &Arc<Self>, d: &Digest) -> VertexFuture {
        let mut futures = this.futures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = futures.get(d) {
            return f.clone();
        }
        let me = this.clone();
        let digest = d.clone();
        let fut: Pin<Box<dyn Future<Output = Result<Arc<Output>, SolveError>> + Send>> =
            Box::pin(async move { me.evaluate(&digest).await });
        let shared = fut.shared();
        futures.insert(d.clone(), shared.clone());
        shared
    }

    async fn evaluate(self: Arc<Self>, d: &Digest) -> Result<Arc<Output>, SolveError> {
        let Some(v) = self.vertices.get(d) else {
            return Err(SolveError {
                vertex: d.to_string(),
                location: None,
                message: format!("vertex {d} is not in the graph"),
            });
        };
        let inputs: Vec<Arc<Output>> =
            try_join_all(v.inputs.iter().map(|i| Walk::get(&self, i))).await?;
        let fail = |message: String| SolveError {
            vertex: v.meta.name.clone(),
            location: v.meta.location.clone(),
            message,
        };
        let progress = self.events.for_vertex(&v.digest);
        let started = Instant::now();
        let visible = !v.meta.internal;
        let start = |this: &Self| {
            if visible {
                this.events.send(Event::Started {
                    vertex: v.digest.clone(),
                    name: v.meta.name.clone(),
                    at: SystemTime::now(),
                });
            }
        };
        let complete = |this: &Self, error: Option<String>| {
            if visible {
                this.events.send(Event::Completed {
                    vertex: v.digest.clone(),
                    duration: started.elapsed(),
                    error,
                });
            }
        };

        match &v.op {
            Op::Source(_) => {
                start(&self);
                let _permit = self.limit.acquire().await;
                let out = self.backend.source(v, progress).await;
                complete(&self, out.as_ref().err().map(|e| e.message.clone()));
                return out.map(Arc::new).map_err(|e| fail(e.message));
            }
            Op::Merge(_) => {
                // Stacking needs no work: the layers of every input, in order.
                let mut layers = Vec::new();
                for (i, input) in inputs.iter().enumerate() {
                    match input.layer_ids() {
                        Some(l) => layers.extend_from_slice(l),
                        None => {
                            return Err(fail(format!(
                                "merge input {i} is a local directory, not a filesystem"
                            )));
                        }
                    }
                }
                return Ok(Arc::new(Output::layers(layers)));
            }
            Op::Exec(_) | Op::File(_) => {}
        }

        start(&self);
        let mut components = vec![KeyComponent {
            label: STEP_DEFINITION.into(),
            digest: vertex_digest(&v.op, &[]),
        }];
        let extra = self.backend.key_components(v, &inputs).await.map_err(|e| {
            complete(&self, Some(e.message.clone()));
            fail(e.message)
        })?;
        components.extend(extra);
        let key = cache_key(&components);

        if !v.meta.ignore_cache {
            match self.store.cache_record(&key) {
                Ok(Some(rec)) if self.layers_usable(&rec.layers) => {
                    if visible {
                        self.events.send(Event::Cached {
                            vertex: v.digest.clone(),
                        });
                    }
                    complete(&self, None);
                    return Ok(Arc::new(Output::Layers {
                        digest: rec.output.clone(),
                        layers: rec.layers,
                    }));
                }
                Ok(_) => {}
                Err(e) => {
                    // A store that cannot answer is a miss, not a failed build.
                    progress.log(crate::Stream::Stderr, format!("cache lookup failed: {e}\n"));
                }
            }
        }
        let reason = if v.meta.ignore_cache {
            "cache disabled for this step".to_string()
        } else {
            self.explain_miss(&v.meta.name, &components)
        };
        if visible {
            self.events.send(Event::Miss {
                vertex: v.digest.clone(),
                reason,
            });
        }

        let permit = self.limit.acquire().await;
        let out = self.backend.run(v, &inputs, progress).await;
        drop(permit);
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                complete(&self, Some(e.message.clone()));
                return Err(fail(e.message));
            }
        };
        if let Output::Layers { layers, digest } = &out {
            let rec = CacheRecord {
                key,
                vertex: v.digest.clone(),
                name: v.meta.name.clone(),
                output: digest.clone(),
                layers: layers.clone(),
                components,
                created_at_ns: now_ns(),
            };
            if let Err(e) = self.store.put_cache_record(&rec) {
                self.events.for_vertex(&v.digest).log(
                    crate::Stream::Stderr,
                    format!("could not record the result in the cache: {e}\n"),
                );
            }
        }
        complete(&self, None);
        Ok(Arc::new(out))
    }

    /// A record is only usable while the store still has what it names (or can get it
    /// again from where it came from).
    fn layers_usable(&self, layers: &[Digest]) -> bool {
        layers.iter().all(|l| {
            matches!(self.store.layer(l), Ok(Some(_)))
                || matches!(self.store.layer_blobs(l), Ok(b) if !b.is_empty())
        })
    }

    /// Says what changed since the last time a step of the same name ran.
    fn explain_miss(&self, name: &str, components: &[KeyComponent]) -> String {
        let previous = match self.store.cache_records_for_vertex_name(name, 1) {
            Ok(p) => p,
            Err(_) => return "no previous result".into(),
        };
        let Some(prev) = previous.first() else {
            return FIRST_BUILD.into();
        };
        let mut changed = Vec::new();
        for c in components {
            match prev.components.iter().find(|p| p.label == c.label) {
                Some(p) if p.digest == c.digest => {}
                Some(_) if c.label == STEP_DEFINITION => changed.push(
                    "the step's definition changed (command, environment, arguments or flags)"
                        .to_string(),
                ),
                Some(_) => changed.push(format!("{} changed", c.label)),
                None => changed.push(format!("{} is new", c.label)),
            }
        }
        for p in &prev.components {
            if !components.iter().any(|c| c.label == p.label) {
                changed.push(format!("{} was removed", p.label));
            }
        }
        if changed.is_empty() {
            "previous result is no longer in the store".into()
        } else {
            changed.join(", ")
        }
    }
}

/// The label of the key component that is the op itself.
const STEP_DEFINITION: &str = "step definition";

/// The miss reason of a step that never ran before under its name.
pub const FIRST_BUILD: &str = "no earlier result for this step";

/// The cache key: sha256 over the labelled components, in order.
pub fn cache_key(components: &[KeyComponent]) -> Digest {
    let mut h = Sha256::new();
    h.update(b"kiln-cache-key-v1\n");
    for c in components {
        h.update(c.label.as_bytes());
        h.update(b"\0");
        h.update(c.digest.to_string().as_bytes());
        h.update(b"\n");
    }
    Digest::from_sha256(h.finalize().into())
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
