//! kiln's solver: builds the targets of a [`kiln_graph::Definition`].
//!
//! The walk is a tree of shared futures, one per vertex digest, so a vertex that
//! several others need runs once; independent vertices run in parallel, at most
//! [`SolveOptions::jobs`] ops at a time. Before an exec or file op runs, the solver
//! computes its cache key from the op and the *contents* of its inputs (never their
//! mtimes, never the digests of the vertices that produced them), so a step whose
//! inputs came out the same is a hit even when those inputs were rebuilt (early
//! cutoff). Every miss carries a reason derived from the previous result of a step of
//! the same name.
//!
//! The solver knows nothing of containers or files: a [`Backend`] runs ops and hashes
//! inputs, and the store keeps cache records.

mod output;
mod progress;
mod solve;

pub use output::{Output, chain_digest};
pub use progress::{Event, EventSink, Progress, Stream};
pub use solve::{Backend, FIRST_BUILD, OpError, SolveError, SolveOptions, Solver, cache_key};
