//! The Dockerfile parser: bytes to a list of instruction [`Node`]s, with BuildKit's
//! exact rules for directives, comments, continuations, heredocs and line splitting.

mod node;

pub use node::{Heredoc, Node};
