//! The Dockerfile frontend: turns a Dockerfile into kiln's build graph.
//!
//! Pure functions only: the frontend reads no file and opens no connection. What it
//! needs from outside (the Dockerfile's bytes, `.dockerignore` patterns, base image
//! configs) is handed to it by the caller.

pub mod parser;
pub mod shell;
