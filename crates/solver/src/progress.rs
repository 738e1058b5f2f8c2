//! Progress events: what the solver and the ops it runs report while a build runs.
//! Renderers (plain, tty, rawjson) live in the CLI; this module only defines the events
//! and the channel they travel on.

use std::time::{Duration, SystemTime};

use kiln_graph::Digest;
use serde::Serialize;
use tokio::sync::mpsc;

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One thing that happened to a vertex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The vertex started (or was found in the cache right away).
    Started {
        vertex: Digest,
        name: String,
        #[serde(skip)]
        at: SystemTime,
    },
    /// The vertex's result came from the cache.
    Cached { vertex: Digest },
    /// The vertex had to run; `reason` says why the cache could not serve it.
    Miss { vertex: Digest, reason: String },
    /// Output of a running step.
    Log {
        vertex: Digest,
        stream: Stream,
        data: String,
    },
    /// Progress of a transfer or long task within a step (`id` names it, e.g. a
    /// layer digest).
    Status {
        vertex: Digest,
        id: String,
        current: u64,
        total: Option<u64>,
        done: bool,
    },
    /// The vertex finished; `error` is set when it failed.
    Completed {
        vertex: Digest,
        #[serde(serialize_with = "secs")]
        duration: Duration,
        error: Option<String>,
    },
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Where events go. Cloning shares the channel; sending never blocks and never fails
/// (a renderer that went away just stops receiving).
#[derive(Debug, Clone)]
pub struct EventSink {
    tx: Option<mpsc::UnboundedSender<Event>>,
}

impl EventSink {
    /// A sink and the receiving end a renderer reads from.
    pub fn channel() -> (EventSink, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (EventSink { tx: Some(tx) }, rx)
    }

    /// A sink that drops every event.
    pub fn discard() -> EventSink {
        EventSink { tx: None }
    }

    pub fn send(&self, e: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(e);
        }
    }

    /// A handle for reporting about one vertex.
    pub fn for_vertex(&self, vertex: &Digest) -> Progress {
        Progress {
            sink: self.clone(),
            vertex: vertex.clone(),
        }
    }
}

/// Reports about one vertex: its output and the progress of its transfers.
#[derive(Debug, Clone)]
pub struct Progress {
    sink: EventSink,
    vertex: Digest,
}

impl Progress {
    /// A handle whose reports go nowhere (work done outside a step's visible life,
    /// such as computing its cache key).
    pub fn detached(vertex: &Digest) -> Progress {
        Progress {
            sink: EventSink::discard(),
            vertex: vertex.clone(),
        }
    }

    pub fn vertex(&self) -> &Digest {
        &self.vertex
    }

    pub fn log(&self, stream: Stream, data: impl Into<String>) {
        self.sink.send(Event::Log {
            vertex: self.vertex.clone(),
            stream,
            data: data.into(),
        });
    }

    pub fn status(&self, id: impl Into<String>, current: u64, total: Option<u64>, done: bool) {
        self.sink.send(Event::Status {
            vertex: self.vertex.clone(),
            id: id.into(),
            current,
            total,
            done,
        });
    }
}
