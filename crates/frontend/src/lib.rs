//! The Dockerfile frontend: turns a Dockerfile into kiln's build graph.
//!
//! Pure functions only: the frontend reads no file and opens no connection. What it
//! needs from outside (the Dockerfile's bytes, `.dockerignore` patterns, base image
//! configs) is handed to it by the caller.
//!
//! The stages, each a module:
//!
//! - [`parser`]: bytes to instruction [`parser::Node`]s with BuildKit's exact rules
//!   (directives, comments, continuations, heredocs, per-instruction argument
//!   splitting), line numbers on every node and error.
//! - [`shell`]: word expansion — quotes, escapes, `$VAR` and `${VAR...}` — with
//!   BuildKit's exact results, through [`shell::Lex`].
//!
//! ```
//! use kiln_frontend::parser::parse;
//! use kiln_frontend::shell::{EnvList, Lex};
//!
//! let dockerfile = parse(b"FROM alpine\nARG VERSION=1.2\nRUN echo ${VERSION:-none}\n").unwrap();
//! let run = &dockerfile.nodes[2];
//! assert_eq!(run.dump(), r#"(run "echo ${VERSION:-none}")"#);
//!
//! let lex = Lex::new(dockerfile.escape_token);
//! let expanded = lex.process_word(&run.args[0], &EnvList::new(&["VERSION=1.2"])).unwrap();
//! assert_eq!(expanded.result, "echo 1.2");
//! ```
//!
//! Both stages are hand-written ports rather than uses of a shell or Dockerfile crate:
//! what matters is matching BuildKit's behaviour quirk for quirk, which no crate does.

#![warn(missing_docs)]

pub mod convert;
mod gofmt;
pub mod instructions;
pub mod parser;
pub mod shell;
