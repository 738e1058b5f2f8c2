//! Errors of word expansion, worded as BuildKit's.

use std::collections::BTreeSet;

use super::go_text;

/// Word expansion failed.
///
/// Displays as BuildKit does: `failed to process "<word>": <reason>`. The variables
/// looked up before the failure are kept, because BuildKit's linter reports unmatched
/// variables even when expansion fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {}: {}", go_text::quote(&self.0.word), self.0.kind)]
pub struct ShellError(Box<Details>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Details {
    word: String,
    kind: ShellErrorKind,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl ShellError {
    pub(crate) fn new(
        word: &str,
        kind: ShellErrorKind,
        matched: BTreeSet<String>,
        unmatched: BTreeSet<String>,
    ) -> Self {
        ShellError(Box::new(Details {
            word: word.to_string(),
            kind,
            matched,
            unmatched,
        }))
    }

    /// The word being expanded.
    pub fn word(&self) -> &str {
        &self.0.word
    }

    /// What went wrong.
    pub fn kind(&self) -> &ShellErrorKind {
        &self.0.kind
    }

    /// Variables that were set, looked up before the failure.
    pub fn matched(&self) -> &BTreeSet<String> {
        &self.0.matched
    }

    /// Variables that were unset, looked up before the failure.
    pub fn unmatched(&self) -> &BTreeSet<String> {
        &self.0.unmatched
    }
}

/// The reason word expansion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShellErrorKind {
    /// `${` without its closing brace.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${}`, `${:...}` or `${{...}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${VAR/pattern` without the `/` before the replacement.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// An operator that is not supported, such as `${VAR:=x}` or `${VAR:#x}`.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${VAR?message}` with VAR unset, or `${VAR:?message}` with VAR unset or empty.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message written in the word, or BuildKit's default.
        message: String,
    },
    /// A `#`, `%` or `/` pattern that cannot be used.
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern {
        /// The pattern as BuildKit reports it (reversed for `%` and `%%`).
        pattern: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A `'` without its closing quote.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// A `"` without its closing quote.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// The word ended inside a `${...}` operand.
    #[error("unexpected end of statement while looking for matching {0}")]
    UnexpectedEnd(char),
    /// Substitutions nested deeper than kiln follows (BuildKit has no limit; real
    /// Dockerfiles nest a handful of levels).
    #[error("syntax error: substitutions nested more than {0} levels deep")]
    TooDeep(usize),
}
