//! Heredoc markers in `RUN`, `COPY` and `ADD` lines (`<<EOF`, `<<-EOF`, `3<<'EOF'`).
//!
//! BuildKit's rules: the line is lexed as shell words (quotes and escapes kept); every
//! word of the form `[digits]<<[-][blanks]delimiter` with no further `<` is a heredoc.
//! The delimiter is lexed once more: if it is not exactly one word, the marker is not
//! a heredoc; if any part of it is quoted, the body is not expanded. The body runs to
//! the first line equal to the delimiter (after removing leading tabs for `<<-`).
//! The markers are lexed with `\` as the escape character even after
//! ``# escape=` ``, as in BuildKit.

use super::error::HeredocError;
use super::node::Heredoc;
use crate::shell::{EnvList, Lex};

/// Reads a heredoc marker such as `<<EOF`, `<<-"EOF"` or `3<<EOF` (BuildKit's
/// `ParseHeredoc`). `Ok(None)` when `word` is not a heredoc marker; an error when it
/// is one whose delimiter cannot be lexed (`<<'EOF`). The content is left empty.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, HeredocError> {
    let Some(marker) = match_marker(word) else {
        return Ok(None);
    };
    if marker.delimiter.is_empty() {
        return Ok(None);
    }
    let mut lex = Lex::new('\\');
    lex.skip_unset_env = true;
    let env = EnvList::empty();
    let words = lex.process_words(marker.delimiter, &env)?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    // Lexed again with quotes kept: a different number of quote characters means part
    // of the delimiter was quoted.
    lex.raw_quotes = true;
    let raw_words = lex.process_words(marker.delimiter, &env)?;
    let [raw_name] = raw_words.as_slice() else {
        return Err(HeredocError::Inconsistent(marker.delimiter.to_string()));
    };
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Ok(Some(Heredoc {
        name: name.clone(),
        file_descriptor: marker.file_descriptor,
        expand: quotes(name) == quotes(raw_name),
        chomp: marker.chomp,
        content: String::new(),
    }))
}

/// The heredocs opened on an instruction line, in order (BuildKit's
/// `heredocsFromLine`). A line that does not lex has none.
pub(crate) fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, HeredocError> {
    let mut lex = Lex::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let words = lex
        .process_words(line, &EnvList::empty())
        .unwrap_or_default();
    let mut heredocs = Vec::new();
    for word in words {
        if let Some(heredoc) = parse_heredoc(&word)? {
            heredocs.push(heredoc);
        }
    }
    Ok(heredocs)
}

/// Removes the leading tabs of every line, as `<<-` asks (BuildKit's
/// `ChompHeredocContent`). The parser leaves [`Heredoc::content`] as written; apply
/// this when [`Heredoc::chomp`] is set.
pub fn chomp_heredoc_content(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}

struct Marker<'a> {
    file_descriptor: u64,
    chomp: bool,
    delimiter: &'a str,
}

/// Matches BuildKit's `^(\d*)<<(-?)\s*([^<]*)$`.
fn match_marker(word: &str) -> Option<Marker<'_>> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    let delimiter = rest.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
    if delimiter.contains('<') {
        return None;
    }
    // Go's strconv.ParseUint: no digits gives 0, too many gives the maximum.
    let file_descriptor = match digits {
        0 => 0,
        _ => word[..digits].parse().unwrap_or(u64::MAX),
    };
    Some(Marker {
        file_descriptor,
        chomp,
        delimiter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        for src in [
            "<<EOF",
            "<<'EOF'",
            r#"<<"EOF""#,
            "<<-EOF",
            "<<-'EOF'",
            r#"<<-"EOF""#,
            r#"<<EO"F""#,
            "<< EOF",
            "<<- EOF",
        ] {
            assert_eq!(parse_heredoc(src).unwrap().unwrap().name, "EOF", "{src}");
        }
        for src in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc(src).is_err(), "{src}");
        }
        for src in [
            "", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh", "<<''", "a<<EOF",
        ] {
            assert_eq!(parse_heredoc(src).unwrap(), None, "{src}");
        }
    }

    #[test]
    fn marker_fields() {
        let h = parse_heredoc("3<<-'EOF'").unwrap().unwrap();
        assert_eq!((h.file_descriptor, h.chomp, h.expand), (3, true, false));
        let h = parse_heredoc("<<EOF").unwrap().unwrap();
        assert_eq!((h.file_descriptor, h.chomp, h.expand), (0, false, true));
        assert_eq!(
            parse_heredoc("99999999999999999999<<A")
                .unwrap()
                .unwrap()
                .file_descriptor,
            u64::MAX
        );
        assert_eq!(parse_heredoc("<<$EOF").unwrap().unwrap().name, "$EOF");
        assert_eq!(parse_heredoc(r"<<eo\'f").unwrap().unwrap().name, "eo'f");
        assert!(parse_heredoc(r"<<eo\'f").unwrap().unwrap().expand);
        assert!(!parse_heredoc("<<'e'o\\'f").unwrap().unwrap().expand);
    }

    #[test]
    fn markers_on_a_line() {
        let names = |line: &str| -> Vec<String> {
            heredocs_from_line(line)
                .unwrap()
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(names("RUN <<EOF"), ["EOF"]);
        assert_eq!(names("RUN <<-EOF"), ["EOF"]);
        // Blanks after `<<-` split the word: `<<-` alone is no marker (BuildKit's own
        // test lists "EOF" here but only checks the heredocs it finds, which are none).
        assert!(names("RUN <<- EOF").is_empty());
        assert_eq!(names("RUN << -EOF"), ["-EOF"]);
        assert_eq!(names("RUN <<'EOF'"), ["EOF"]);
        assert_eq!(names("RUN 4<<EOF"), ["EOF"]);
        assert_eq!(names("RUN <<EOF <<EOF2"), ["EOF", "EOF2"]);
        assert_eq!(names("RUN <<  EOF  > foo"), ["EOF"]);
        assert!(names("RUN '<<EOF'").is_empty());
        assert!(names(r#"RUN "<<EOF""#).is_empty());
        assert!(names("RUN <<EOF 'unterminated").is_empty());
    }

    #[test]
    fn chomp() {
        assert_eq!(
            chomp_heredoc_content("\thello\n\t\tworld\n x\t\n"),
            "hello\nworld\n x\t\n"
        );
    }
}
