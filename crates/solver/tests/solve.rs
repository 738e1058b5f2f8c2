//! The solver against a fake backend: dedupe, parallelism, cache hits, early cutoff,
//! miss reasons and failures.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiln_graph::{
    Definition, Digest, ExecOp, GraphBuilder, ImageConfig, Mount, MountKind, Op, Platform,
    SourceOp, Target, Vertex, VertexMeta,
};
use kiln_solver::{Backend, Event, EventSink, OpError, Output, Progress, SolveOptions, Solver};
use kiln_store::{KeyComponent, Store};

/// Sources yield one layer named by `content`; an exec yields a layer whose id is the
/// digest of its first arg plus what `outputs` says for that arg (default: the input
/// digests), so tests control what an op "produces".
struct Fake {
    store: Arc<Store>,
    content: Mutex<HashMap<String, String>>,
    outputs: Mutex<HashMap<String, String>>,
    runs: Mutex<Vec<String>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    delay: Duration,
}

impl Fake {
    fn new(store: Arc<Store>) -> Fake {
        Fake {
            store,
            content: Mutex::new(HashMap::new()),
            outputs: Mutex::new(HashMap::new()),
            runs: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            delay: Duration::from_millis(0),
        }
    }

    fn layer(&self, id: &Digest) {
        if self.store.layer(id).unwrap().is_none() {
            self.store.work_dir().unwrap().commit(id).unwrap();
        }
    }

    fn runs(&self) -> Vec<String> {
        self.runs.lock().unwrap().clone()
    }
}

impl Backend for Fake {
    async fn source(&self, v: &Vertex, _p: Progress) -> Result<Output, OpError> {
        let Op::Source(SourceOp::Local { name, .. }) = &v.op else {
            return Err(OpError::new("unexpected source"));
        };
        let content = self
            .content
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.clone());
        let id = Digest::of(content.as_bytes());
        self.layer(&id);
        Ok(Output::layers(vec![id]))
    }

    async fn key_components(
        &self,
        _v: &Vertex,
        inputs: &[Arc<Output>],
    ) -> Result<Vec<KeyComponent>, OpError> {
        Ok(inputs
            .iter()
            .enumerate()
            .map(|(i, o)| KeyComponent::new(format!("input {i}"), o.digest().clone()))
            .collect())
    }

    async fn run(
        &self,
        v: &Vertex,
        inputs: &[Arc<Output>],
        _p: Progress,
    ) -> Result<Output, OpError> {
        let Op::Exec(e) = &v.op else {
            return Err(OpError::new("unexpected op"));
        };
        let name = e.args[0].clone();
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let still_running = Running(&self.running);
        tokio::time::sleep(self.delay).await;
        drop(still_running);
        self.runs.lock().unwrap().push(name.clone());
        if name.starts_with("fail") {
            return Err(OpError::new(format!(
                "{name} did not complete successfully: exit code: 1"
            )));
        }
        // An op with a fixed output makes a filesystem of that one layer (like a copy
        // onto an empty filesystem); others stack a new layer on their first input.
        if let Some(fixed) = self.outputs.lock().unwrap().get(&name).cloned() {
            let id = Digest::of(fixed.as_bytes());
            self.layer(&id);
            return Ok(Output::layers(vec![id]));
        }
        let ins: Vec<String> = inputs.iter().map(|o| o.digest().to_string()).collect();
        let id = Digest::of(format!("{name}:{}", ins.join(",")).as_bytes());
        self.layer(&id);
        let mut layers: Vec<Digest> = inputs
            .first()
            .and_then(|o| o.layer_ids())
            .map(|l| l.to_vec())
            .unwrap_or_default();
        layers.push(id);
        Ok(Output::layers(layers))
    }
}

/// Counts an op as running until its future ends or is dropped.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn exec(b: &mut GraphBuilder, name: &str, inputs: Vec<Digest>) -> Digest {
    let mounts = vec![Mount {
        target: "/".into(),
        input: (!inputs.is_empty()).then_some(0),
        source_path: "/".into(),
        readonly: false,
        kind: MountKind::Bind,
    }];
    b.add(
        Op::Exec(ExecOp {
            args: vec![name.into()],
            env: vec![],
            cwd: "/".into(),
            user: String::new(),
            hostname: None,
            network: Default::default(),
            security: Default::default(),
            mounts,
            secret_env: vec![],
            proxy_env: Default::default(),
            extra_hosts: vec![],
        }),
        inputs,
        VertexMeta {
            name: format!("[{name}] RUN {name}"),
            ..VertexMeta::default()
        },
    )
}

fn local(b: &mut GraphBuilder, name: &str) -> Digest {
    b.add(
        Op::Source(SourceOp::Local {
            name: name.into(),
            exclude_patterns: vec![],
        }),
        vec![],
        VertexMeta {
            name: format!("load {name}"),
            ..VertexMeta::default()
        },
    )
}

fn target(root: Digest) -> Target {
    let p: Platform = "linux/amd64".parse().unwrap();
    Target {
        platform: p.clone(),
        root: Some(root),
        image: ImageConfig::empty(&p),
    }
}

/// ctx -> a -> {b, c} -> d (d reads b and c).
fn diamond() -> Definition {
    let mut g = GraphBuilder::new();
    let ctx = local(&mut g, "ctx");
    let a = exec(&mut g, "a", vec![ctx]);
    let b = exec(&mut g, "b", vec![a.clone()]);
    let c = exec(&mut g, "c", vec![a]);
    let d = exec(&mut g, "d", vec![b, c]);
    g.finish(vec![target(d)])
}

fn setup() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    (dir, store)
}

async fn solve(fake: &Arc<Fake>, store: &Arc<Store>, def: &Definition) -> Vec<Event> {
    let solver = Solver::new(fake.clone(), store.clone(), SolveOptions { jobs: 2 });
    let (sink, mut rx) = EventSink::channel();
    solver.solve(def, sink).await.unwrap();
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    events
}

fn cached(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Cached { .. }))
        .count()
}

#[tokio::test]
async fn shared_vertices_run_once_and_rebuilds_are_cached() {
    let (_d, store) = setup();
    let fake = Arc::new(Fake::new(store.clone()));
    let def = diamond();
    solve(&fake, &store, &def).await;
    let mut runs = fake.runs();
    runs.sort();
    assert_eq!(runs, vec!["a", "b", "c", "d"]);
    let events = solve(&fake, &store, &def).await;
    assert_eq!(fake.runs().len(), 4, "nothing ran again");
    assert_eq!(cached(&events), 4);
}

#[tokio::test]
async fn changed_input_reruns_only_what_depends_on_it() {
    let (_d, store) = setup();
    let fake = Arc::new(Fake::new(store.clone()));
    let mut g = GraphBuilder::new();
    let one = local(&mut g, "one");
    let two = local(&mut g, "two");
    let a = exec(&mut g, "a", vec![one]);
    let b = exec(&mut g, "b", vec![two]);
    let c = exec(&mut g, "c", vec![a, b]);
    let def = g.finish(vec![target(c)]);
    solve(&fake, &store, &def).await;
    fake.content
        .lock()
        .unwrap()
        .insert("two".into(), "changed".into());
    let events = solve(&fake, &store, &def).await;
    assert_eq!(fake.runs(), vec!["a", "b", "c", "b", "c"]);
    assert_eq!(cached(&events), 1);
    let reasons: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Miss { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, vec!["input 0 changed", "input 1 changed"]);
}

#[tokio::test]
async fn same_output_after_a_rerun_keeps_dependents_cached() {
    let (_d, store) = setup();
    let fake = Arc::new(Fake::new(store.clone()));
    // "a" always produces the same layer whatever its input: early cutoff.
    fake.outputs
        .lock()
        .unwrap()
        .insert("a".into(), "constant".into());
    let mut g = GraphBuilder::new();
    let ctx = local(&mut g, "ctx");
    let a = exec(&mut g, "a", vec![ctx]);
    let b = exec(&mut g, "b", vec![a]);
    let def = g.finish(vec![target(b)]);
    solve(&fake, &store, &def).await;
    fake.content
        .lock()
        .unwrap()
        .insert("ctx".into(), "touched".into());
    let events = solve(&fake, &store, &def).await;
    assert_eq!(fake.runs(), vec!["a", "b", "a"], "b stays cached");
    assert_eq!(cached(&events), 1);
}

#[tokio::test]
async fn independent_ops_run_in_parallel_within_the_limit() {
    let (_d, store) = setup();
    let mut fake = Fake::new(store.clone());
    fake.delay = Duration::from_millis(100);
    let fake = Arc::new(fake);
    let mut g = GraphBuilder::new();
    let ctx = local(&mut g, "ctx");
    let leaves: Vec<Digest> = (0..6)
        .map(|i| exec(&mut g, &format!("p{i}"), vec![ctx.clone()]))
        .collect();
    let join = exec(&mut g, "join", leaves);
    let def = g.finish(vec![target(join)]);
    let start = std::time::Instant::now();
    solve(&fake, &store, &def).await;
    let elapsed = start.elapsed();
    assert_eq!(fake.max_running.load(Ordering::SeqCst), 2);
    // 6 ops of 100 ms two at a time, then the join: about 400 ms, not 700.
    assert!(elapsed < Duration::from_millis(650), "{elapsed:?}");
}

#[tokio::test]
async fn dropping_a_solve_drops_the_steps_it_runs() {
    let (_d, store) = setup();
    let mut fake = Fake::new(store.clone());
    fake.delay = Duration::from_secs(30);
    let fake = Arc::new(fake);
    let mut g = GraphBuilder::new();
    let ctx = local(&mut g, "ctx");
    let a = exec(&mut g, "slow-a", vec![ctx.clone()]);
    let b = exec(&mut g, "slow-b", vec![ctx]);
    let join = exec(&mut g, "join", vec![a, b]);
    let def = g.finish(vec![target(join)]);
    let solver = Solver::new(fake.clone(), store.clone(), SolveOptions { jobs: 2 });
    // As on Ctrl-C: the caller stops waiting and drops the solve.
    let r = tokio::time::timeout(
        Duration::from_millis(300),
        solver.solve(&def, EventSink::discard()),
    )
    .await;
    assert!(r.is_err(), "the slow steps finished?");
    assert_eq!(fake.max_running.load(Ordering::SeqCst), 2);
    assert_eq!(
        fake.running.load(Ordering::SeqCst),
        0,
        "steps of a dropped solve are still running"
    );
}

#[tokio::test]
async fn failures_name_the_step_and_are_not_cached() {
    let (_d, store) = setup();
    let fake = Arc::new(Fake::new(store.clone()));
    let mut g = GraphBuilder::new();
    let ctx = local(&mut g, "ctx");
    let a = exec(&mut g, "fail-a", vec![ctx]);
    let b = exec(&mut g, "b", vec![a]);
    let def = g.finish(vec![target(b)]);
    let solver = Solver::new(fake.clone(), store.clone(), SolveOptions { jobs: 2 });
    let err = solver.solve(&def, EventSink::discard()).await.unwrap_err();
    assert_eq!(err.vertex, "[fail-a] RUN fail-a");
    assert!(err.message.contains("exit code: 1"));
    let err = solver.solve(&def, EventSink::discard()).await.unwrap_err();
    assert!(err.message.contains("exit code: 1"));
    assert_eq!(fake.runs(), vec!["fail-a", "fail-a"]);
}

#[tokio::test]
async fn ignore_cache_reruns_a_step() {
    let (_d, store) = setup();
    let fake = Arc::new(Fake::new(store.clone()));
    let mut def = diamond();
    solve(&fake, &store, &def).await;
    for v in &mut def.vertices {
        if v.meta.name.contains("RUN b") {
            v.meta.ignore_cache = true;
        }
    }
    let events = solve(&fake, &store, &def).await;
    assert_eq!(fake.runs().len(), 5);
    assert_eq!(fake.runs()[4], "b");
    // b produced the same layer again, so d is still a hit.
    assert_eq!(cached(&events), 3);
}
