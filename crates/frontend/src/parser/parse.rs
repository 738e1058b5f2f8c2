//! The main loop: lines to instruction nodes.

use super::directives::{Directive, DirectiveParser};
use super::error::{ParseError, ParseErrorKind};
use super::heredoc::heredocs_from_line;
use super::line_parsers::node_from_line;
use super::node::Node;
use super::text::{
    Lines, discard_bom, go_string, is_comment, is_empty_continuation_line, trim_continuation,
    trim_leading_tabs, trim_leading_whitespace, trim_newline, trim_space,
};

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseResult {
    /// The instructions, in file order.
    pub nodes: Vec<Node>,
    /// The escape character in force: `\`, or `` ` `` after `# escape=``.
    pub escape_token: char,
    /// Things BuildKit warns about without failing (empty continuation lines).
    pub warnings: Vec<Warning>,
    /// The parser directives at the top of the file, in order.
    pub directives: Vec<Directive>,
}

impl ParseResult {
    /// BuildKit's dump of the whole file: one [`Node::dump`] per line, no newline
    /// after the last.
    pub fn dump(&self) -> String {
        let lines: Vec<String> = self.nodes.iter().map(Node::dump).collect();
        lines.join("\n")
    }
}

/// A problem BuildKit reports without failing the parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// One-line summary: `Empty continuation line found in: <instruction>`.
    pub short: String,
    /// The longer explanation.
    pub detail: String,
    /// Where the rule is documented.
    pub url: String,
    /// The last line of the instruction it is about.
    pub line: usize,
}

/// The directive state of one parse.
struct Directives {
    parser: DirectiveParser,
    escape: u8,
    found: Vec<Directive>,
}

impl Directives {
    /// Trims a line the way BuildKit's `processLine` does and feeds it to the
    /// directive parser. Returns the trimmed line (empty for a comment) and whether
    /// the line was a directive.
    fn process_line<'a>(
        &mut self,
        line: &'a [u8],
        strip_left: bool,
    ) -> Result<(&'a [u8], bool), ParseErrorKind> {
        let mut line = trim_newline(line);
        if strip_left {
            line = trim_leading_whitespace(line);
        }
        let directive = self.parser.parse_line(line)?;
        let is_directive = match directive {
            Some(directive) => {
                if directive.name == "escape" {
                    self.escape = match directive.value.as_str() {
                        "\\" => b'\\',
                        "`" => b'`',
                        other => return Err(ParseErrorKind::InvalidEscapeToken(other.to_string())),
                    };
                }
                self.found.push(directive);
                true
            }
            None => false,
        };
        let line = if is_comment(line) { &line[..0] } else { line };
        Ok((line, is_directive))
    }
}

/// Parses a Dockerfile into instruction nodes, with BuildKit's rules.
///
/// - A UTF-8 byte-order mark at the start is skipped.
/// - Parser directives (`# syntax=`, `# escape=`, `# check=`) count only at the top;
///   see [`Directive`].
/// - Lines starting with `#` (after blanks) are comments: they are collected as the
///   next instruction's [`Node::prev_comment`], and inside a continued instruction
///   they are skipped. So are blank lines inside a continued instruction, with a
///   [`Warning`].
/// - A line ending in the escape character (blanks after it allowed) continues on the
///   next line; the lines are joined without a separator, the continuation lines
///   keeping their leading blanks.
/// - `RUN`, `COPY` and `ADD` (also behind `ONBUILD`) in shell form read the bodies of
///   the heredocs their line opens, in order.
/// - Each instruction's arguments are split by the instruction's own rules; see the
///   table in the [module docs](crate::parser).
///
/// Unknown instructions are not an error here. Errors are: no instruction at all, a
/// bad or repeated directive, `ENV`/`LABEL` without a value or with a pair missing
/// `=`, a JSON array holding non-strings, an unterminated or unreadable heredoc, and a
/// line longer than 65535 bytes.
pub fn parse(input: &[u8]) -> Result<ParseResult, ParseError> {
    let mut directives = Directives {
        parser: DirectiveParser::new(),
        escape: b'\\',
        found: Vec::new(),
    };
    let mut lines = Lines::new(input);
    let mut current_line = 0;
    let mut nodes: Vec<Node> = Vec::new();
    let mut warnings = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();

    while let Some(mut raw) = lines.next() {
        if current_line == 0 {
            raw = discard_bom(raw);
        }
        if is_comment(raw) {
            // BuildKit drops the first byte of the untrimmed line, so an indented
            // comment keeps its `#`.
            let comment = go_string(trim_space(&raw[1..]));
            if comment.is_empty() {
                comments.clear();
            } else {
                comments.push(comment);
            }
        }
        // BuildKit reports directive errors at the 0-based line index.
        let (line, is_directive) = directives
            .process_line(raw, true)
            .map_err(|kind| ParseError::new(kind, current_line, 0))?;
        if is_directive {
            comments.pop();
        }
        current_line += 1;
        let start_line = current_line;

        let escape = directives.escape;
        let (first, mut is_end_of_line) = match trim_continuation(line, escape) {
            Some(trimmed) => (trimmed, false),
            None => (line, true),
        };
        if is_end_of_line && first.is_empty() {
            continue;
        }
        buf.clear();
        buf.extend_from_slice(first);

        let mut has_empty_continuation_line = false;
        while !is_end_of_line {
            let Some(raw) = lines.next() else {
                break;
            };
            let (line, _) = directives
                .process_line(raw, false)
                .map_err(|kind| ParseError::new(kind, current_line, 0))?;
            current_line += 1;
            if is_comment(raw) {
                continue;
            }
            if is_empty_continuation_line(line) {
                has_empty_continuation_line = true;
                continue;
            }
            let escape = directives.escape;
            match trim_continuation(line, escape) {
                Some(trimmed) => buf.extend_from_slice(trimmed),
                None => {
                    buf.extend_from_slice(line);
                    is_end_of_line = true;
                }
            }
        }

        let line = buf.as_slice();
        if has_empty_continuation_line {
            warnings.push(Warning {
                short: format!("Empty continuation line found in: {}", go_string(line)),
                detail: "Empty continuation lines will become errors in a future release"
                    .to_string(),
                url: "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"
                    .to_string(),
                line: current_line,
            });
        }

        let escape = char::from(directives.escape);
        let mut node = node_from_line(line, escape, std::mem::take(&mut comments))
            .map_err(|kind| ParseError::new(kind, start_line, current_line))?;

        if node.can_contain_heredoc() && line.windows(2).any(|w| w == b"<<") {
            let heredocs = heredocs_from_line(&go_string(line))
                .map_err(|err| ParseError::new(err.into(), start_line, current_line))?;
            for mut heredoc in heredocs {
                let mut terminated = false;
                for raw in lines.by_ref() {
                    current_line += 1;
                    let mut candidate = trim_newline(raw);
                    if heredoc.chomp {
                        candidate = trim_leading_tabs(candidate);
                    }
                    if candidate == heredoc.name.as_bytes() {
                        terminated = true;
                        break;
                    }
                    heredoc.content.push_str(&go_string(raw));
                }
                if !terminated {
                    return Err(ParseError::new(
                        ParseErrorKind::UnterminatedHeredoc,
                        start_line,
                        current_line,
                    ));
                }
                node.heredocs.push(heredoc);
            }
        }

        node.set_lines(start_line, current_line);
        nodes.push(node);
    }

    if nodes.is_empty() {
        return Err(ParseError::new(
            ParseErrorKind::NoInstructions,
            current_line,
            0,
        ));
    }
    if lines.too_long {
        return Err(ParseError::new(
            ParseErrorKind::LineTooLong,
            current_line,
            0,
        ));
    }
    Ok(ParseResult {
        nodes,
        escape_token: char::from(directives.escape),
        warnings,
        directives: directives.found,
    })
}
