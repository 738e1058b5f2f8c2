//! Byte-level line handling: splitting the file into lines the way BuildKit's scanner
//! does, and the trims it applies before a line is parsed.
//!
//! BuildKit works on Go strings, which are bytes: text that is not valid UTF-8 goes
//! through its parser unchanged wherever no step decodes it. The parser here works on
//! bytes too and decodes them the way Go does — each byte that is not part of a valid
//! UTF-8 sequence is one U+FFFD — only where BuildKit decodes or where a `String` is
//! handed out.

use crate::shell::go_text::is_space;

/// BuildKit reads lines with Go's `bufio.Scanner`, whose buffer holds at most 64 KiB:
/// a longer line ends the scan with an error.
pub(crate) const MAX_TOKEN_SIZE: usize = 64 * 1024;

/// The file's lines, each with its `\n` kept (BuildKit's `scanLines`).
pub(crate) struct Lines<'a> {
    data: &'a [u8],
    pos: usize,
    /// A line did not fit in the scanner's buffer; no line is returned after it.
    pub(crate) too_long: bool,
}

impl<'a> Lines<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Lines {
            data,
            pos: 0,
            too_long: false,
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.too_long || self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let (len, too_long) = match rest.iter().position(|&b| b == b'\n') {
            Some(newline) => (newline + 1, newline + 1 > MAX_TOKEN_SIZE),
            // The last line without `\n` must leave room in the full buffer for the
            // scanner to see the end of input.
            None => (rest.len(), rest.len() >= MAX_TOKEN_SIZE),
        };
        if too_long {
            self.too_long = true;
            return None;
        }
        self.pos += len;
        Some(&rest[..len])
    }
}

/// Decodes bytes as Go does when it ranges over a string: each byte that does not
/// belong to a valid UTF-8 sequence becomes one U+FFFD.
pub(crate) fn go_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for _ in chunk.invalid() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out
}

/// The characters of `bytes`, decoded as [`go_string`] does.
pub(crate) fn go_chars(bytes: &[u8]) -> Vec<char> {
    go_string(bytes).chars().collect()
}

/// Go's `bytes.TrimSpace`: drops leading and trailing Unicode whitespace.
pub(crate) fn trim_space(bytes: &[u8]) -> &[u8] {
    let bytes = trim_leading_whitespace(bytes);
    // The end of the last character that is not whitespace (invalid bytes count as
    // such characters).
    let mut end = 0;
    let mut pos = 0;
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            pos += c.len_utf8();
            if !is_space(c) {
                end = pos;
            }
        }
        pos += chunk.invalid().len();
        if !chunk.invalid().is_empty() {
            end = pos;
        }
    }
    &bytes[..end]
}

pub(crate) fn discard_bom(line: &[u8]) -> &[u8] {
    line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
}

/// Drops leading Unicode whitespace (Go's `bytes.TrimLeftFunc(b, unicode.IsSpace)`).
pub(crate) fn trim_leading_whitespace(line: &[u8]) -> &[u8] {
    let mut start = 0;
    for chunk in line.utf8_chunks() {
        for c in chunk.valid().chars() {
            if !is_space(c) {
                return &line[start..];
            }
            start += c.len_utf8();
        }
        if !chunk.invalid().is_empty() {
            return &line[start..];
        }
    }
    &line[start..]
}

/// Drops every trailing `\r` and `\n`.
pub(crate) fn trim_newline(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(0, |i| i + 1);
    &line[..end]
}

pub(crate) fn trim_leading_tabs(line: &[u8]) -> &[u8] {
    let start = line.iter().position(|&b| b != b'\t').unwrap_or(line.len());
    &line[start..]
}

/// A line whose first non-blank character is `#`.
pub(crate) fn is_comment(line: &[u8]) -> bool {
    trim_leading_whitespace(line).first() == Some(&b'#')
}

pub(crate) fn is_empty_continuation_line(line: &[u8]) -> bool {
    trim_leading_whitespace(trim_newline(line)).is_empty()
}

/// When the line ends in the escape character (blanks after it allowed) and is not an
/// escaped escape character, returns the line without it: the instruction continues.
///
/// This is BuildKit's `([^\\])\\[ \t]*$|^\\[ \t]*$`, so `foo \\` (an escaped
/// backslash) ends the instruction and `foo \\\` does too, as in BuildKit.
pub(crate) fn trim_continuation(line: &[u8], escape: u8) -> Option<&[u8]> {
    let end = line
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |i| i + 1);
    if end == 0 || line[end - 1] != escape {
        return None;
    }
    if end >= 2 && line[end - 2] == escape {
        return None;
    }
    Some(&line[..end - 1])
}

/// Splits at runs of BuildKit's `reWhitespace` (`[\t\v\f\r ]+`), at most `limit`
/// pieces (`None`: no limit), like Go's `Regexp.Split`.
pub(crate) fn split_whitespace_runs(s: &[u8], limit: Option<usize>) -> Vec<&[u8]> {
    let is_ws = |b: u8| matches!(b, b'\t' | b'\x0b' | b'\x0c' | b'\r' | b' ');
    let bytes = s;
    let mut parts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if limit.is_some_and(|limit| parts.len() + 1 >= limit) {
            break;
        }
        if is_ws(bytes[i]) {
            let run_start = i;
            while i < bytes.len() && is_ws(bytes[i]) {
                i += 1;
            }
            parts.push(&s[start..run_start]);
            start = i;
        } else {
            i += 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_newline() {
        let lines: Vec<&[u8]> = Lines::new(b"a\r\nb\n\nc").collect();
        assert_eq!(lines, [&b"a\r\n"[..], b"b\n", b"\n", b"c"]);
        assert_eq!(Lines::new(b"").count(), 0);
    }

    #[test]
    fn lines_stop_at_the_scanner_limit() {
        let ok = [
            vec![b'a'; MAX_TOKEN_SIZE - 1],
            b"\n".to_vec(),
            vec![b'b'; MAX_TOKEN_SIZE - 1],
        ]
        .concat();
        let mut lines = Lines::new(&ok);
        assert_eq!(lines.by_ref().count(), 2);
        assert!(!lines.too_long);

        let long = [
            b"x\n".to_vec(),
            vec![b'a'; MAX_TOKEN_SIZE],
            b"\ny\n".to_vec(),
        ]
        .concat();
        let mut lines = Lines::new(&long);
        assert_eq!(lines.by_ref().count(), 1);
        assert!(lines.too_long);

        let last = vec![b'a'; MAX_TOKEN_SIZE];
        let mut lines = Lines::new(&last);
        assert_eq!(lines.by_ref().count(), 0);
        assert!(lines.too_long);
    }

    #[test]
    fn trims() {
        assert_eq!(trim_leading_whitespace(" \t\u{a0}x ".as_bytes()), b"x ");
        assert_eq!(trim_leading_whitespace(b" \xff x"), b"\xff x");
        assert_eq!(trim_newline(b"a\r\n\r\n"), b"a");
        assert_eq!(trim_newline(b"\r\n"), b"");
        assert_eq!(trim_leading_tabs(b"\t\t a"), b" a");
        assert!(is_comment(b"  # x") && !is_comment(b"x # y") && !is_comment(b""));
        assert!(is_empty_continuation_line(b" \t\r\n") && !is_empty_continuation_line(b" x"));
        assert_eq!(discard_bom(b"\xEF\xBB\xBFFROM"), b"FROM");
    }

    #[test]
    fn continuation() {
        assert_eq!(trim_continuation(b"RUN a \\", b'\\'), Some(&b"RUN a "[..]));
        assert_eq!(
            trim_continuation(b"RUN a\\ \t ", b'\\'),
            Some(&b"RUN a"[..])
        );
        assert_eq!(trim_continuation(b"\\", b'\\'), Some(&b""[..]));
        assert_eq!(trim_continuation(b" \\", b'\\'), Some(&b" "[..]));
        assert_eq!(trim_continuation(b"RUN a \\\\", b'\\'), None);
        assert_eq!(trim_continuation(b"RUN a \\\\\\", b'\\'), None);
        assert_eq!(trim_continuation(b"RUN a \\ b", b'\\'), None);
        assert_eq!(trim_continuation(b"RUN a `", b'`'), Some(&b"RUN a "[..]));
        assert_eq!(trim_continuation(b"RUN a \\", b'`'), None);
        assert_eq!(trim_continuation(b"", b'\\'), None);
    }

    #[test]
    fn whitespace_split_follows_go() {
        let split = |s: &str, limit| -> Vec<String> {
            split_whitespace_runs(s.as_bytes(), limit)
                .into_iter()
                .map(go_string)
                .collect()
        };
        assert_eq!(split("a \t b\u{b}c", None), ["a", "b", "c"]);
        assert_eq!(split("a b c", Some(2)), ["a", "b c"]);
        assert_eq!(split("a", Some(2)), ["a"]);
        assert_eq!(split("", None), [""]);
        assert_eq!(split(" a ", None), ["", "a", ""]);
        // Newlines and Unicode spaces do not split.
        assert_eq!(split("a\nb\u{a0}c", None), ["a\nb\u{a0}c"]);
    }

    #[test]
    fn go_decoding() {
        // Every byte of a truncated sequence is its own U+FFFD, as in Go.
        assert_eq!(
            go_string(b"a\xf0\x9f\x98b\xff"),
            "a\u{fffd}\u{fffd}\u{fffd}b\u{fffd}"
        );
        assert_eq!(go_string("é".as_bytes()), "é");
        assert_eq!(go_chars(b"\xc3("), ['\u{fffd}', '(']);
    }

    #[test]
    fn trim_space_on_bytes() {
        assert_eq!(trim_space(" \u{a0}a b\t\u{85} ".as_bytes()), b"a b");
        assert_eq!(trim_space(b" \xff \xff "), b"\xff \xff");
        assert_eq!(trim_space(b" \t "), b"");
        assert_eq!(trim_space(b""), b"");
    }
}
