//! The per-instruction argument parsers (BuildKit's `line_parsers.go`).
//!
//! The rules, instruction by instruction, are listed in the parser module docs.

use std::borrow::Cow;

use super::error::ParseErrorKind;
use super::node::Node;
use super::split_command::split_command;
use super::text::{go_chars, go_string, split_whitespace_runs, trim_leading_whitespace};
use crate::shell::go_text::{is_space, to_lower};

/// How deep `ONBUILD ONBUILD ...` may nest.
const MAX_ONBUILD_NESTING: usize = 64;

/// The arguments a line parser produced, as bytes: some parsers pass the line's bytes
/// through undecoded.
#[derive(Default)]
struct Parsed {
    args: Vec<Vec<u8>>,
    inner: Option<Box<Node>>,
    json: bool,
}

impl Parsed {
    fn args(args: Vec<Vec<u8>>) -> Self {
        Parsed {
            args,
            ..Parsed::default()
        }
    }

    fn strings(args: Vec<String>) -> Self {
        Parsed::args(args.into_iter().map(String::into_bytes).collect())
    }
}

/// Builds the node for one complete instruction line (BuildKit's `newNodeFromLine`).
/// Line numbers and heredocs are filled in by the caller.
pub(crate) fn node_from_line(
    line: &[u8],
    escape: char,
    prev_comment: Vec<String>,
) -> Result<Node, ParseErrorKind> {
    node_at_depth(line, escape, prev_comment, 0)
}

fn node_at_depth(
    line: &[u8],
    escape: char,
    prev_comment: Vec<String>,
    depth: usize,
) -> Result<Node, ParseErrorKind> {
    let split = split_command(line, escape);
    let keyword_as_written = go_string(split.keyword);
    let keyword = to_lower(&keyword_as_written);
    let rest = split.args;
    let parsed = match keyword.as_str() {
        "add" | "copy" | "volume" => parse_maybe_json_to_list(rest)?,
        "arg" => Parsed::strings(parse_words(rest, escape)),
        "cmd" | "entrypoint" | "run" | "shell" => parse_maybe_json(rest)?,
        "env" => parse_name_val(rest, "ENV", escape)?,
        "label" => parse_name_val(rest, "LABEL", escape)?,
        "expose" | "from" => Parsed::args(parse_strings_whitespace_delimited(rest)),
        "healthcheck" => parse_health_config(rest)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => Parsed::args(parse_string(rest)),
        "onbuild" => parse_sub_command(rest, escape, depth)?,
        // Unknown instructions are the instruction layer's to reject; BuildKit's
        // parser keeps them with one empty argument.
        _ => Parsed::args(vec![Vec::new()]),
    };
    let args = parsed.args.iter().map(|arg| go_string(arg)).collect();
    // Keep the bytes only when decoding changed them, for an exact dump.
    let raw_args = parsed
        .args
        .iter()
        .any(|arg| std::str::from_utf8(arg).is_err())
        .then_some(parsed.args);
    Ok(Node {
        keyword,
        keyword_as_written,
        flags: split.flags,
        args,
        raw_args,
        json: parsed.json,
        inner: parsed.inner,
        heredocs: Vec::new(),
        original: go_string(line),
        start_line: 0,
        end_line: 0,
        prev_comment,
    })
}

/// `ONBUILD RUN foo` → the `RUN foo` node, nested.
fn parse_sub_command(rest: &[u8], escape: char, depth: usize) -> Result<Parsed, ParseErrorKind> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    if depth >= MAX_ONBUILD_NESTING {
        return Err(ParseErrorKind::OnbuildTooDeep(MAX_ONBUILD_NESTING));
    }
    let inner = node_at_depth(rest, escape, Vec::new(), depth + 1)?;
    Ok(Parsed {
        inner: Some(Box::new(inner)),
        ..Parsed::default()
    })
}

#[derive(PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Splits at blanks outside quotes, keeping quotes and escapes in the words (BuildKit's
/// `parseWords`). An escape character at the very end is dropped.
pub(crate) fn parse_words(rest: &[u8], escape: char) -> Vec<String> {
    let chars = go_chars(rest);
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut pos = 0;
    loop {
        let at_end = pos == chars.len();
        let mut ch = chars.get(pos).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                // Outside quotes the escape and the next character are kept as they
                // are, even when that character is a quote.
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // Inside quotes: the escape character works except between single quotes.
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(ch);
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

/// `ENV`/`LABEL`: `key=value ...` pairs, or the legacy `key value` form when the first
/// word has no `=`. Each pair gives three arguments: key, value and `=` (or an empty
/// string for the legacy form).
fn parse_name_val(
    rest: &[u8],
    keyword: &'static str,
    escape: char,
) -> Result<Parsed, ParseErrorKind> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Parsed::default());
    };
    if !first.contains('=') {
        // The legacy form splits the undecoded text, not the words.
        let parts = split_whitespace_runs(rest, Some(2));
        if parts.len() < 2 {
            return Err(ParseErrorKind::MissingValue(keyword));
        }
        return Ok(Parsed::args(vec![
            parts[0].to_vec(),
            parts[1].to_vec(),
            Vec::new(),
        ]));
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(ParseErrorKind::MissingEquals(word));
        };
        args.extend([key.to_string(), value.to_string(), "=".to_string()]);
    }
    Ok(Parsed::strings(args))
}

fn parse_strings_whitespace_delimited(rest: &[u8]) -> Vec<Vec<u8>> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_whitespace_runs(rest, None)
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

fn parse_string(rest: &[u8]) -> Vec<Vec<u8>> {
    if rest.is_empty() {
        return Vec::new();
    }
    vec![rest.to_vec()]
}

/// A JSON array of strings: `Ok(Some)`; not a JSON array at all: `Ok(None)`; a JSON
/// array with something else in it: an error.
fn parse_json(rest: &[u8]) -> Result<Option<Vec<String>>, ParseErrorKind> {
    let rest = trim_leading_whitespace(rest);
    if !rest.starts_with(b"[") {
        return Ok(None);
    }
    // Go's JSON decoder reads each invalid byte inside a string as U+FFFD, and one
    // outside a string is a syntax error either way.
    let decoded = go_string(rest);
    let text = replace_lone_surrogates(&decoded);
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(&text) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|value| match value {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(ParseErrorKind::NotStringArray),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Rewrites `\uXXXX` escapes of unpaired UTF-16 surrogates to `\ufffd`: Go's JSON
/// decoder reads them as U+FFFD, serde_json rejects them.
fn replace_lone_surrogates(json: &str) -> Cow<'_, str> {
    if !json.contains("\\u") {
        return Cow::Borrowed(json);
    }
    let hex4 = |s: &str| -> Option<u32> {
        let digits = s.get(..4)?;
        // from_str_radix alone would also take a sign.
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(digits, 16).ok()
    };
    let escape_at = |s: &str, i: usize| {
        s.get(i..)
            .and_then(|t| t.strip_prefix("\\u"))
            .and_then(hex4)
    };
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut i = 0;
    while i < json.len() {
        let rest = &json[i..];
        let Some(c) = rest.chars().next() else { break };
        if !in_string {
            in_string = c == '"';
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        match c {
            '"' => in_string = false,
            '\\' => {
                if let Some(unit) = escape_at(json, i) {
                    let is_high = (0xD800..0xDC00).contains(&unit);
                    let pairs = is_high
                        && escape_at(json, i + 6)
                            .is_some_and(|low| (0xDC00..0xE000).contains(&low));
                    if pairs {
                        out.push_str(&json[i..i + 12]);
                        i += 12;
                    } else if (0xD800..0xE000).contains(&unit) {
                        out.push_str("\\ufffd");
                        i += 6;
                    } else {
                        out.push_str(&json[i..i + 6]);
                        i += 6;
                    }
                    continue;
                }
                // Any other escape: copy it whole so an escaped quote does not end
                // the string.
                out.push('\\');
                i += 1;
                if let Some(next) = json[i..].chars().next() {
                    out.push(next);
                    i += next.len_utf8();
                }
                continue;
            }
            _ => {}
        }
        out.push(c);
        i += c.len_utf8();
    }
    Cow::Owned(out)
}

fn json_parsed(args: Vec<String>) -> Parsed {
    Parsed {
        json: true,
        ..Parsed::strings(args)
    }
}

fn parse_maybe_json(rest: &[u8]) -> Result<Parsed, ParseErrorKind> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    Ok(match parse_json(rest)? {
        Some(args) => json_parsed(args),
        None => Parsed::args(vec![rest.to_vec()]),
    })
}

fn parse_maybe_json_to_list(rest: &[u8]) -> Result<Parsed, ParseErrorKind> {
    Ok(match parse_json(rest)? {
        Some(args) => json_parsed(args),
        None => Parsed::args(parse_strings_whitespace_delimited(rest)),
    })
}

/// `HEALTHCHECK [--flags] TYPE [command]`: the type word, then the command as
/// `RUN`'s. BuildKit finds the end of the type word byte by byte, with the same
/// Latin-1 reading of bytes as the flags (see `split_command`).
fn parse_health_config(rest: &[u8]) -> Result<Parsed, ParseErrorKind> {
    let bytes = rest;
    let is_blank = |b: &u8| is_space(char::from(*b));
    let sep = bytes.iter().position(is_blank).unwrap_or(bytes.len());
    if sep == 0 {
        return Ok(Parsed::default());
    }
    let next = bytes[sep..]
        .iter()
        .position(|b| !is_blank(b))
        .map_or(bytes.len(), |i| sep + i);
    let command = parse_maybe_json(&bytes[next..])?;
    let mut args = vec![bytes[..sep].to_vec()];
    args.extend(command.args);
    Ok(Parsed {
        args,
        json: command.json,
        inner: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(line: &str) -> Node {
        node_from_line(line.as_bytes(), '\\', Vec::new()).unwrap()
    }

    fn args(line: &str) -> Vec<String> {
        node(line).args
    }

    fn error(line: &str) -> String {
        node_from_line(line.as_bytes(), '\\', Vec::new())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn words_keep_quotes_and_escapes() {
        let cases: [(&str, &[&str]); 11] = [
            ("foo", &["foo"]),
            ("foo bar", &["foo", "bar"]),
            ("foo\\ bar", &["foo\\ bar"]),
            ("foo=bar", &["foo=bar"]),
            ("foo bar 'abc xyz'", &["foo", "bar", "'abc xyz'"]),
            (r#"foo bar "abc xyz""#, &["foo", "bar", r#""abc xyz""#]),
            ("àöû", &["àöû"]),
            (r#"föo bàr "âbc xÿz""#, &["föo", "bàr", r#""âbc xÿz""#]),
            (r#"a="b\"c" d='e\'f"#, &[r#"a="b\"c""#, r#"d='e\'f"#]),
            ("'' a\\", &["''", "a"]),
            ("a\u{a0}b", &["a", "b"]),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_words(input.as_bytes(), '\\'), expected, "{input}");
        }
    }

    #[test]
    fn name_val_forms() {
        assert_eq!(args("LABEL foo bar"), ["foo", "bar", ""]);
        assert_eq!(
            args("LABEL foo=bar thing=star"),
            ["foo", "bar", "=", "thing", "star", "="]
        );
        assert_eq!(args("ENV a b  c"), ["a", "b  c", ""]);
        assert_eq!(args("ENV a="), ["a", "", "="]);
        assert_eq!(args("ENV"), Vec::<String>::new());
        assert_eq!(error("ENV foo"), "ENV must have two arguments");
        assert_eq!(error("LABEL foo"), "LABEL must have two arguments");
        assert_eq!(
            error("ENV a=b c"),
            r#"Syntax error - can't find = in "c". Must be of the form: name=value"#
        );
    }

    #[test]
    fn arg_words() {
        assert_eq!(args("ARG a b=c d=\"e f\""), ["a", "b=c", "d=\"e f\""]);
        assert_eq!(args("ARG"), Vec::<String>::new());
    }

    #[test]
    fn json_arrays_of_strings() {
        let valid: [(&str, &[&str]); 8] = [
            ("[]", &[]),
            (r#"[""]"#, &[""]),
            (r#"["a"]"#, &["a"]),
            (r#"["a","b"]"#, &["a", "b"]),
            (r#"[ "a", "b" ]"#, &["a", "b"]),
            ("[\t\"a\",\t\"b\"\t]", &["a", "b"]),
            ("\t[\t\"a\",\t\"b\"\t]\t", &["a", "b"]),
            (
                r#"["abc 123", "♥", "☃", "\" \\ \/ \b \f \n \r \t \u0000"]"#,
                &["abc 123", "♥", "☃", "\" \\ / \u{8} \u{c} \n \r \t \u{0}"],
            ),
        ];
        for (input, expected) in valid {
            assert_eq!(
                parse_json(input.as_bytes()).unwrap().unwrap(),
                expected,
                "{input}"
            );
        }
        let not_strings = [
            r#"["a",42,"b"]"#,
            r#"["a",123.456,"b"]"#,
            r#"["a",{},"b"]"#,
            r#"["a",{"c": "d"},"b"]"#,
            r#"["a",["c"],"b"]"#,
            r#"["a",true,"b"]"#,
            r#"["a",false,"b"]"#,
            r#"["a",null,"b"]"#,
        ];
        for input in not_strings {
            assert_eq!(
                parse_json(input.as_bytes()),
                Err(ParseErrorKind::NotStringArray),
                "{input}"
            );
        }
        // Unpaired surrogates read as U+FFFD, as Go reads them.
        let surrogates =
            r#"["\ud800", "\udc00x", "\ud83d\ude00", "\ud800\ud83d\ude00", "\\ud800"]"#;
        assert_eq!(
            parse_json(surrogates.as_bytes()).unwrap().unwrap(),
            ["\u{fffd}", "\u{fffd}x", "😀", "\u{fffd}😀", "\\ud800"]
        );
        for input in [
            "",
            "a",
            "['a']",
            r#"["a""#,
            r#"["a"] x"#,
            "[1e400]",
            r#"["\ud80"]"#,
        ] {
            assert_eq!(parse_json(input.as_bytes()), Ok(None), "{input}");
        }
    }

    #[test]
    fn exec_and_shell_forms() {
        let run = node(r#"RUN ["echo", "hi"]"#);
        assert!(run.json);
        assert_eq!(run.args, ["echo", "hi"]);
        let run = node("RUN echo [hi]");
        assert!(!run.json);
        assert_eq!(run.args, ["echo [hi]"]);
        assert_eq!(args("CMD ['a']"), ["['a']"]);
        assert_eq!(args("COPY [a] b"), ["[a]", "b"]);
        assert_eq!(args("VOLUME /a  /b"), ["/a", "/b"]);
        assert_eq!(args("RUN"), Vec::<String>::new());
        assert_eq!(
            error(r#"CMD [ "echo", [ "nested json" ] ]"#),
            "when using JSON array syntax, arrays must be comprised of strings only"
        );
    }

    #[test]
    fn healthcheck() {
        let node = node(r#"HEALTHCHECK --retries=3 CMD ["a", "b"]"#);
        assert_eq!(
            (node.flags.as_slice(), node.args.as_slice(), node.json),
            (
                &["--retries=3".to_string()][..],
                &["CMD".to_string(), "a".into(), "b".into()][..],
                true
            )
        );
        assert_eq!(args("HEALTHCHECK NONE"), ["NONE"]);
        assert_eq!(args("HEALTHCHECK CMD   a  b"), ["CMD", "a  b"]);
        assert_eq!(args("HEALTHCHECK"), Vec::<String>::new());
    }

    #[test]
    fn simple_forms() {
        assert_eq!(args("USER a b"), ["a b"]);
        assert_eq!(args("FROM a AS b"), ["a", "AS", "b"]);
        assert_eq!(args("EXPOSE 1\t2\u{b}3"), ["1", "2", "3"]);
        assert_eq!(args("NOTANINSTRUCTION x y"), [""]);
    }

    #[test]
    fn onbuild_nests() {
        let onbuild = node("ONBUILD --x RUN --mount=a echo");
        assert_eq!(onbuild.flags, ["--x"]);
        assert!(onbuild.args.is_empty());
        let inner = onbuild.inner.unwrap();
        assert_eq!(
            (
                inner.keyword.as_str(),
                inner.flags.as_slice(),
                inner.args.as_slice()
            ),
            (
                "run",
                &["--mount=a".to_string()][..],
                &["echo".to_string()][..]
            )
        );
        assert_eq!(inner.original, "RUN --mount=a echo");
        assert!(node("ONBUILD").inner.is_none());
        let deep = "ONBUILD ".repeat(1000) + "RUN x";
        assert_eq!(error(&deep), "ONBUILD nested more than 64 levels deep");
    }
}
