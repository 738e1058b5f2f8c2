//! Word expansion for Dockerfile instructions: quotes, escapes and `$VAR` / `${VAR...}`
//! substitutions, with BuildKit's exact results and error messages.
//!
//! [`Lex`] processes a word against an [`EnvGetter`] (for example an [`EnvList`] of
//! `KEY=VALUE` strings). [`Lex::process_word`] gives the expanded word and the
//! variables it used; [`Lex::process_words`] splits the expansion into words.
//!
//! ```
//! use kiln_frontend::shell::{EnvList, Lex};
//!
//! let env = EnvList::new(&["NAME=kiln", "EMPTY="]);
//! let lex = Lex::new('\\');
//! let out = lex.process_word("${NAME}-${EMPTY:-x}-${UNSET}", &env).unwrap();
//! assert_eq!(out.result, "kiln-x-");
//! assert!(out.unmatched.contains("UNSET"));
//!
//! let words = lex.process_words(r#"a "b c" $NAME"#, &env).unwrap();
//! assert_eq!(words, ["a", "b c", "kiln"]);
//!
//! let err = lex.process_word("${}", &env).unwrap_err();
//! assert_eq!(err.to_string(), r#"failed to process "${}": syntax error: bad substitution"#);
//! ```
//!
//! Patterns in `${VAR#p}`, `${VAR%p}` and `${VAR/p/r}` are translated to regular
//! expressions as BuildKit does, so the `regex` crate does the matching.

mod env;
mod error;
pub(crate) mod go_text;
mod lex;
mod pattern;

pub use env::{EnvGetter, EnvList};
pub use error::{ShellError, ShellErrorKind};
pub use lex::{Lex, ProcessWordResult};
