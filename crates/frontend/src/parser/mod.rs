//! The Dockerfile parser: bytes to a list of instruction [`Node`]s, with BuildKit's
//! exact rules for directives, comments, continuations, heredocs and line splitting.
//!
//! [`parse`] gives a [`ParseResult`]: the nodes, the escape character, the
//! directives and the warnings. A node keeps the instruction as BuildKit's parser
//! leaves it — keyword, `--flags`, arguments split by the instruction's line parser,
//! heredoc bodies, the original text and its lines — and [`Node::dump`] prints it in
//! BuildKit's test dump format. Checking what the instruction means (unknown keywords,
//! flag values, argument counts) is left to the instruction layer.
//!
//! ```
//! use kiln_frontend::parser::parse;
//!
//! let file = b"# syntax=docker/dockerfile:1\nFROM alpine AS base\n# say hello\n\
//!              RUN --network=none echo hello \\\n    world\n\
//!              COPY <<EOF /greeting\nhi\nEOF\n";
//! let result = parse(file).unwrap();
//! assert_eq!(result.directives[0].value, "docker/dockerfile:1");
//! assert_eq!(
//!     result.dump(),
//!     "(from \"alpine\" \"AS\" \"base\")\n\
//!      (run [\"--network=none\"] \"echo hello     world\")\n\
//!      (copy \"<<EOF\" \"/greeting\")"
//! );
//! let run = &result.nodes[1];
//! assert_eq!((run.start_line, run.end_line), (4, 5));
//! assert_eq!(run.prev_comment, ["say hello"]);
//! assert_eq!(result.nodes[2].heredocs[0].content, "hi\n");
//!
//! let err = parse(b"FROM alpine\nENV PATH\n").unwrap_err();
//! assert_eq!(err.to_string(), "dockerfile parse error on line 2: ENV must have two arguments");
//! ```
//!
//! # Arguments per instruction
//!
//! | instruction | BuildKit parser | arguments |
//! |---|---|---|
//! | `RUN` `CMD` `ENTRYPOINT` `SHELL` | maybe JSON | JSON strings, else the whole text as one |
//! | `ADD` `COPY` `VOLUME` | maybe JSON to list | JSON strings, else split at blanks |
//! | `FROM` `EXPOSE` | whitespace delimited | split at blanks |
//! | `ENV` `LABEL` | name/value | `key value sep` triples, sep `=` or `""` (legacy `ENV k v`) |
//! | `ARG` | name or name=value | one word each, quotes kept |
//! | `MAINTAINER` `USER` `WORKDIR` `STOPSIGNAL` | string | the whole text |
//! | `HEALTHCHECK` | health config | the type word, then maybe JSON |
//! | `ONBUILD` | sub-command | the inner instruction |
//! | anything else | ignore | one empty argument |
//!
//! "Blanks" for splitting are BuildKit's `[\t\v\f\r ]`. A JSON array that holds
//! anything but strings is an error; text that is not a valid JSON array falls back
//! to the shell form. Flags are the leading words that start with `--`, up to a lone
//! `--`.
//!
//! # Bytes and text
//!
//! Text that is not valid UTF-8 is handled as BuildKit handles it: passed through
//! where BuildKit passes bytes through, decoded to U+FFFD where BuildKit decodes. The
//! `String` fields show stray bytes as U+FFFD; [`Node::raw_args`] keeps the bytes so
//! that the dump prints them as BuildKit's does (`\xe9`).
//!
//! # Differences from BuildKit
//!
//! All on input no real Dockerfile has, and all bounds that keep hostile input from
//! exhausting the stack: a JSON array nested more than 128 levels deep is taken as
//! shell form (BuildKit reads it as JSON and rejects it); `ONBUILD` nested more than
//! 64 deep is an error; a heredoc line whose `${...}` nest 200 deep opens no heredoc.

mod directives;
mod error;
mod heredoc;
mod line_parsers;
mod node;
mod parse;
mod split_command;
mod text;

pub use directives::{Directive, detect_syntax, parse_directive};
pub use error::{HeredocError, ParseError, ParseErrorKind};
pub use heredoc::{chomp_heredoc_content, parse_heredoc};
pub use node::{Heredoc, Node};
pub use parse::{ParseResult, Warning, parse};
