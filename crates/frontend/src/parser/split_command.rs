//! Splitting an instruction line into its keyword, its `--flags` and the rest.

use super::text::{split_whitespace_runs, trim_space};

/// An instruction line cut into its parts.
pub(crate) struct SplitCommand<'a> {
    /// The keyword as written.
    pub(crate) keyword: &'a [u8],
    /// The `--flag` words before the arguments, quotes and escapes removed.
    pub(crate) flags: Vec<String>,
    /// The rest of the line, trimmed.
    pub(crate) args: &'a [u8],
}

/// Splits `line` at its first blank into keyword and the rest, then takes the leading
/// `--flag` words off the rest (BuildKit's `splitCommand`).
pub(crate) fn split_command(line: &[u8], escape: char) -> SplitCommand<'_> {
    let parts = split_whitespace_runs(trim_space(line), Some(2));
    let keyword = parts[0];
    let (args, flags) = match parts.get(1) {
        Some(rest) => {
            let (args, flags) = extract_builder_flags(rest, escape);
            (trim_space(args), flags)
        }
        None => (&b""[..], Vec::new()),
    };
    SplitCommand {
        keyword,
        flags,
        args,
    }
}

#[derive(PartialEq)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Takes the words starting with `--` off the front of `line`; a lone `--` ends them.
///
/// BuildKit scans this part byte by byte, and so does this port: a byte is taken as the
/// character of the same number (Latin-1), so a non-ASCII flag value comes out as its
/// UTF-8 bytes read as Latin-1 (`é` becomes `Ã©`), and the UTF-8 continuation bytes
/// 0x85 and 0xA0 count as blanks. Inside a flag, quotes are removed and the escape
/// character escapes the next byte, inside quotes too.
fn extract_builder_flags(bytes: &[u8], escape: char) -> (&[u8], Vec<String>) {
    let is_space = |b: u8| crate::shell::go_text::is_space(char::from(b));
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        let at_end = pos == bytes.len();
        let ch = bytes.get(pos).copied().unwrap_or(0);
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            if ch != b'-' || bytes.get(pos + 1) != Some(&b'-') {
                return (&bytes[pos..], words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if word == "--" {
                    return (&bytes[pos..], words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            let mut ch = ch;
            if char::from(ch) == escape {
                if pos + 1 == bytes.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                ch = bytes[pos];
            }
            word.push(char::from(ch));
            pos += 1;
            continue;
        }
        // Inside quotes.
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        let mut ch = ch;
        if char::from(ch) == escape {
            if pos + 1 == bytes.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            ch = bytes[pos];
        }
        word.push(char::from(ch));
        pos += 1;
    }
    (&b""[..], words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::text::go_string;

    fn split(line: &str) -> (String, Vec<String>, String) {
        let s = split_command(line.as_bytes(), '\\');
        (go_string(s.keyword), s.flags, go_string(s.args))
    }

    fn owned(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keyword_and_args() {
        assert_eq!(
            split("  RUN  echo hi  "),
            ("RUN".into(), owned(&[]), "echo hi".into())
        );
        assert_eq!(split("RUN"), ("RUN".into(), owned(&[]), "".into()));
        assert_eq!(split(""), ("".into(), owned(&[]), "".into()));
        assert_eq!(split("FROM\tx"), ("FROM".into(), owned(&[]), "x".into()));
        // Only ASCII blanks separate the keyword.
        assert_eq!(
            split("RUN\u{a0}x"),
            ("RUN\u{a0}x".into(), owned(&[]), "".into())
        );
    }

    #[test]
    fn flags() {
        assert_eq!(
            split("COPY --from=a --chown=1:1 x y").1,
            owned(&["--from=a", "--chown=1:1"])
        );
        assert_eq!(split("COPY --from=a --chown=1:1 x y").2, "x y");
        assert_eq!(
            split("COPY --a -- --b x"),
            ("COPY".into(), owned(&["--a"]), "--b x".into())
        );
        assert_eq!(split("COPY -- x").1, owned(&[]));
        assert_eq!(split("COPY --a --").1, owned(&["--a"]));
        assert_eq!(split("COPY --a --").2, "");
        assert_eq!(
            split("COPY -a x"),
            ("COPY".into(), owned(&[]), "-a x".into())
        );
        assert_eq!(split("COPY --a='b c' x").1, owned(&["--a=b c"]));
        assert_eq!(split(r#"COPY --a="b\" c" x"#).1, owned(&["--a=b\" c"]));
        assert_eq!(split(r"COPY --a=b\ c x").1, owned(&["--a=b c"]));
        assert_eq!(split("COPY --a=''").1, owned(&["--a="]));
        assert_eq!(split("COPY --a=b\\").1, owned(&["--a=b"]));
    }

    #[test]
    fn flags_are_read_as_latin1_bytes() {
        assert_eq!(split("COPY --label=é x").1, owned(&["--label=Ã©"]));
        // U+2800 is E2 A0 80: the A0 byte ends the flag, the rest starts mid-character.
        let s = split_command("COPY --a=\u{2800}x y".as_bytes(), '\\');
        assert_eq!(s.flags, owned(&["--a=â"]));
        assert_eq!(s.args, b"\x80x y");
    }

    #[test]
    fn backtick_escape() {
        let s = split_command(b"COPY --a=b`\"c` --d x", '`');
        assert_eq!(s.flags, owned(&["--a=b\"c --d"]));
        assert_eq!(s.args, b"x");
    }
}
