//! Parse errors with their line range, worded as BuildKit's.

use std::fmt;

use crate::shell::{ShellError, go_text};

/// The Dockerfile could not be parsed.
///
/// Displays as `dockerfile parse error on line N: <message>`, the form BuildKit uses
/// for errors it reports against an instruction; the message alone (`kind`'s text) is
/// BuildKit's parser message. The lines are the ones BuildKit attaches to the error,
/// quirks included: an error in the parser directives at the top points at the line
/// *before* the directive (BuildKit counts lines from 0 there), and "file with no
/// instructions" points at the last line (line 0 for an empty file, shown without a
/// line number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// First line of the range the error is about (1-based; 0 when the file is empty).
    pub start_line: usize,
    /// Last line of the range, never before `start_line`.
    pub end_line: usize,
    /// What went wrong.
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, start_line: usize, end_line: usize) -> Self {
        ParseError {
            start_line,
            end_line: end_line.max(start_line),
            kind,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start_line == 0 {
            write!(f, "dockerfile parse error: {}", self.kind)
        } else {
            write!(
                f,
                "dockerfile parse error on line {}: {}",
                self.start_line, self.kind
            )
        }
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.kind)
    }
}

/// The reason a Dockerfile could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// Nothing but blank lines, comments and directives.
    #[error("file with no instructions")]
    NoInstructions,
    /// A heredoc whose terminator line never came.
    #[error("unterminated heredoc")]
    UnterminatedHeredoc,
    /// `# escape=` with something other than `\` or `` ` ``.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscapeToken(String),
    /// The same parser directive twice.
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    /// `ENV NAME` or `LABEL NAME` without a value.
    #[error("{0} must have two arguments")]
    MissingValue(&'static str),
    /// `ENV a=b c`: a later pair without `=`.
    #[error("Syntax error - can't find = in {}. Must be of the form: name=value", go_text::quote(.0))]
    MissingEquals(String),
    /// A JSON array with something other than strings in it.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    /// A heredoc marker that cannot be read.
    #[error(transparent)]
    Heredoc(#[from] HeredocError),
    /// A line longer than BuildKit's scanner accepts.
    #[error("dockerfile line greater than max allowed size of {}", super::text::MAX_TOKEN_SIZE - 1)]
    LineTooLong,
    /// `ONBUILD ONBUILD ...` nested deeper than kiln follows (BuildKit has no limit,
    /// but rejects any nesting later, when it reads the instructions).
    #[error("ONBUILD nested more than {0} levels deep")]
    OnbuildTooDeep(usize),
}

/// A heredoc marker (`<<EOF`, `<<'EOF'`, ...) that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeredocError {
    /// The delimiter word does not lex (for example an unclosed quote).
    #[error(transparent)]
    Lex(#[from] ShellError),
    /// Lexing the delimiter with and without quotes gave different word counts.
    #[error("internal lexing of heredoc produced inconsistent results: {0}")]
    Inconsistent(String),
}
