//! Parser directives: `# syntax=...`, `# escape=...` and `# check=...` at the top of
//! a Dockerfile.
//!
//! BuildKit's rules: a directive is a line `#` *name* `=` *value* (blanks allowed
//! around each part; the name is matched case-insensitively and reported in lower
//! case). Directives are looked for only until the first line that is not a known
//! directive — an instruction, a blank line, any other comment, or an unknown
//! directive name all end the search. Repeating a directive is an error.

use super::error::ParseErrorKind;
use super::text::{Lines, discard_bom, go_string};

const KNOWN: [&str; 3] = ["syntax", "escape", "check"];

/// A parser directive found at the top of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// The directive's name, lower-cased: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value as written, blanks around it removed.
    pub value: String,
    /// The line it is on (1-based; 0 for the JSON form of [`detect_syntax`]).
    pub line: usize,
}

impl Directive {
    /// The value up to its first space: for `# syntax=docker/dockerfile:1 // opts`,
    /// the frontend reference.
    pub fn first_word(&self) -> &str {
        self.value
            .split_once(' ')
            .map_or(&self.value, |(first, _)| first)
    }
}

/// Reads directives line by line, in BuildKit's `DirectiveParser` way.
pub(crate) struct DirectiveParser {
    line: usize,
    comment: &'static [u8],
    seen: Vec<String>,
    done: bool,
}

impl DirectiveParser {
    pub(crate) fn new() -> Self {
        Self::with_comment(b"#", 0)
    }

    fn with_comment(comment: &'static [u8], line: usize) -> Self {
        DirectiveParser {
            line,
            comment,
            seen: Vec::new(),
            done: false,
        }
    }

    /// Looks at the next line of the file.
    pub(crate) fn parse_line(&mut self, line: &[u8]) -> Result<Option<Directive>, ParseErrorKind> {
        self.line += 1;
        if self.done {
            return Ok(None);
        }
        let Some((name, value)) = match_directive(line, self.comment) else {
            self.done = true;
            return Ok(None);
        };
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if !KNOWN.contains(&name.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if self.seen.contains(&name) {
            return Err(ParseErrorKind::DuplicateDirective(name));
        }
        self.seen.push(name.clone());
        Ok(Some(Directive {
            name,
            value: go_string(value),
            line: self.line,
        }))
    }

    /// Every directive at the top of `data`; stops quietly at the first error.
    fn parse_all(mut self, data: &[u8]) -> Vec<Directive> {
        let mut found = Vec::new();
        for line in Lines::new(data) {
            if self.done {
                break;
            }
            // bufio.ScanLines drops the `\n` and one `\r` before it.
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match self.parse_line(line) {
                Ok(Some(directive)) => found.push(directive),
                Ok(None) => {}
                Err(_) => break,
            }
        }
        found
    }
}

/// Go's `\s`: ASCII blanks without `\v`.
fn is_regex_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

fn skip_regex_space(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| !is_regex_space(b))
        .unwrap_or(s.len());
    &s[start..]
}

/// Matches BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`, giving the name
/// and the value.
fn match_directive<'a>(line: &'a [u8], comment: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let rest = skip_regex_space(line.strip_prefix(comment)?);
    if !rest.first()?.is_ascii_alphabetic() {
        return None;
    }
    let name_len = rest
        .iter()
        .position(|b| !b.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let (name, rest) = rest.split_at(name_len);
    let rest = skip_regex_space(rest).strip_prefix(b"=")?;
    let value_start = rest.iter().position(|&b| !is_regex_space(b));
    let value = match value_start {
        Some(start) => {
            let end = rest
                .iter()
                .rposition(|&b| !is_regex_space(b))
                .map_or(0, |i| i + 1);
            &rest[start..end]
        }
        // Only blanks after `=`: the lazy `.+?` takes one of them, the last one that
        // is not a newline.
        None => {
            let last = rest.iter().rposition(|&b| b != b'\n')?;
            &rest[last..last + 1]
        }
    };
    // `.` does not match a newline.
    if value.contains(&b'\n') {
        return None;
    }
    Some((name, value))
}

/// Finds the `syntax` directive of a Dockerfile the way BuildKit picks the frontend: a
/// `# syntax=` directive, else a `// syntax=` one, else a `{"syntax": "..."}` JSON
/// document. A leading BOM and a first `#!` line are skipped.
pub fn detect_syntax(dockerfile: &[u8]) -> Option<Directive> {
    find_directive("syntax", dockerfile, true)
}

/// Finds the directive `name` (such as `check`) in the `#` form only.
pub fn parse_directive(name: &str, dockerfile: &[u8]) -> Option<Directive> {
    find_directive(name, dockerfile, false)
}

fn find_directive(name: &str, data: &[u8], any_format: bool) -> Option<Directive> {
    let data = discard_bom(data);
    let (data, first_line) = match data.split(|&b| b == b'\n').next() {
        Some(first) if first.starts_with(b"#!") => {
            (data.get(first.len() + 1..).unwrap_or_default(), 1)
        }
        _ => (data, 0),
    };
    let find = |comment| {
        DirectiveParser::with_comment(comment, first_line)
            .parse_all(data)
            .into_iter()
            .find(|d| d.name == name)
    };
    if let Some(found) = find(b"#") {
        return Some(found);
    }
    if !any_format {
        return None;
    }
    if let Some(found) = find(b"//") {
        return Some(found);
    }
    let json: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(data).ok()?;
    match json.get(name)? {
        serde_json::Value::String(value) => Some(Directive {
            name: name.to_string(),
            value: value.clone(),
            line: first_line,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(data: &str) -> Vec<(String, String)> {
        DirectiveParser::new()
            .parse_all(data.as_bytes())
            .into_iter()
            .map(|d| (d.name, d.value))
            .collect()
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_string(), value.to_string())
    }

    #[test]
    fn directives_stop_at_the_first_other_line() {
        assert_eq!(
            all("#escape=\\\n# key = FOO bar\n\n# smth\n"),
            [pair("escape", "\\")]
        );
        assert_eq!(
            all("# EScape=\\\n# KEY = FOO bar\n\n# smth\n"),
            [pair("escape", "\\")]
        );
        assert_eq!(
            all("# syntax = a b \t\n#check=skip=all\n"),
            [pair("syntax", "a b"), pair("check", "skip=all")]
        );
        assert_eq!(all("\n# syntax=a\n"), []);
        assert_eq!(all("FROM x\n# syntax=a\n"), []);
        assert_eq!(all("# unknown=1\n# syntax=a\n"), []);
    }

    #[test]
    fn directive_syntax() {
        let m = |line: &str| {
            match_directive(line.as_bytes(), b"#").map(|(n, v)| (go_string(n), go_string(v)))
        };
        assert_eq!(m("#a=b"), Some(("a".into(), "b".into())));
        assert_eq!(m("#  a1 \t=\t b c  "), Some(("a1".into(), "b c".into())));
        assert_eq!(m("# a = "), Some(("a".into(), " ".into())));
        assert_eq!(m("# a =\t "), Some(("a".into(), " ".into())));
        assert_eq!(m("# a ="), None);
        assert_eq!(m("# 1a = b"), None);
        assert_eq!(m("# a b = c"), None);
        assert_eq!(m("# a-b = c"), None);
        assert_eq!(m(" # a = b"), None);
        // `\v` is not a blank for Go's `\s`.
        assert_eq!(m("# a\u{b}= b"), None);
    }

    #[test]
    fn duplicates_are_errors() {
        let mut parser = DirectiveParser::new();
        assert!(parser.parse_line(b"# syntax=a").unwrap().is_some());
        assert_eq!(
            parser.parse_line(b"# SYNTAX=b").unwrap_err().to_string(),
            "only one syntax parser directive can be used"
        );
    }

    #[test]
    fn detect_syntax_like_buildkit() {
        let found =
            detect_syntax(b"# syntax = dockerfile:experimental // opts\nFROM busybox\n").unwrap();
        assert_eq!(found.first_word(), "dockerfile:experimental");
        assert_eq!(found.value, "dockerfile:experimental // opts");
        assert_eq!(found.line, 1);

        let found = detect_syntax(b"#!/bin/sh\n# syntax = dockerfile:experimental\nFROM busybox\n")
            .unwrap();
        assert_eq!(found.first_word(), "dockerfile:experimental");
        assert_eq!(found.line, 2);

        assert_eq!(
            detect_syntax(b"#!/bin/sh\n\n# syntax = dockerfile:experimental\n"),
            None
        );
        assert_eq!(detect_syntax(b"FROM busybox\nRUN ls\n"), None);
        assert_eq!(
            detect_syntax(b"//syntax=foo\n//key=value")
                .unwrap()
                .first_word(),
            "foo"
        );
        assert_eq!(
            detect_syntax(b"#!/bin/sh\n//syntax=x")
                .unwrap()
                .first_word(),
            "x"
        );
        assert_eq!(
            detect_syntax(br#"{"syntax": "foo", "bar": ["abc"]}"#)
                .unwrap()
                .first_word(),
            "foo"
        );
        assert_eq!(detect_syntax(br#"{"syntax": "foo""#), None);
        assert_eq!(detect_syntax(b"{\"syntax\": \"foo\"}\n# syntax=bar"), None);
    }

    #[test]
    fn detect_syntax_skips_bom() {
        let found = detect_syntax(b"\xEF\xBB\xBF# syntax = myfrontend\nFROM busybox\n").unwrap();
        assert_eq!(
            (found.first_word(), found.value.as_str(), found.line),
            ("myfrontend", "myfrontend", 1)
        );
    }

    #[test]
    fn parse_directive_like_buildkit() {
        let found = parse_directive("check", b"#check = skip=all // opts\nFROM busybox\n").unwrap();
        assert_eq!(found.first_word(), "skip=all");
        assert_eq!(found.value, "skip=all // opts");
        assert_eq!(found.line, 1);
        let found =
            parse_directive("check", b"#!/bin/sh\n# check = skip=all\nFROM busybox\n").unwrap();
        assert_eq!((found.first_word(), found.line), ("skip=all", 2));
        assert_eq!(
            parse_directive("check", b"#!/bin/sh\n\n# check = skip=all\n"),
            None
        );
        assert_eq!(parse_directive("check", b"FROM busybox\nRUN ls\n"), None);
        assert_eq!(
            parse_directive("check", b"//check=skip=all\n//key=value"),
            None
        );
    }
}
