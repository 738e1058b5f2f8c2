//! Go's `filepath.Match` (Unix flavour, `kiln_ignore::go::filepath_match`) as
//! BuildKit uses it to expand the wildcards of a COPY source against the relative
//! paths below its literal prefix.
//!
//! `*` matches a run of non-`/` bytes, `?` one non-`/` rune, `[...]` and
//! `[^...]` one rune from a class of `a-z` ranges (a class can match `/`, as in
//! Go), and `\` escapes the next character. Names are bytes; an invalid UTF-8
//! byte is one rune, `U+FFFD`, as Go decodes it. BuildKit ignores Go's
//! "bad pattern" error, which only ever comes with a non-match, so a malformed
//! pattern simply matches nothing here.

/// Whether `name` matches the shell pattern `pattern` as a whole.
pub(crate) fn matches(pattern: &[u8], name: &[u8]) -> bool {
    kiln_ignore::go::filepath_match(pattern, name).unwrap_or(false)
}

/// An upper bound on the number of `/` a name matching `pattern` can hold: a
/// `/` is matched only by a literal `/` or by a class.
pub(crate) fn max_separators(pattern: &[u8]) -> usize {
    pattern.iter().filter(|&&b| b == b'/' || b == b'[').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, name: &str) -> bool {
        matches(pattern.as_bytes(), name.as_bytes())
    }

    /// Cases from Go's own `match_test.go` table, on Unix.
    #[test]
    fn go_match_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("[]a]", "]", false),
            ("[-]", "-", false),
            ("[x-]", "x", false),
            ("[x-]", "-", false),
            ("[x-]", "z", false),
            ("[-x]", "x", false),
            ("[-x]", "-", false),
            ("[-x]", "a", false),
            ("\\", "a", false),
            ("[a-b-c]", "a", false),
            ("[", "a", false),
            ("[^", "a", false),
            ("[^bc", "a", false),
            ("a[", "a", false),
            ("a[", "ab", false),
            ("a[", "x", false),
            ("a/b[", "x", false),
            ("*x", "xxx", true),
        ];
        for &(pattern, name, want) in cases {
            assert_eq!(m(pattern, name), want, "Match({pattern:?}, {name:?})");
        }
    }

    #[test]
    fn classes_can_match_a_separator() {
        assert!(m("a[^x]b", "a/b"));
        assert!(m("*/x.conf", "src/x.conf"));
        assert!(!m("*.txt", "d/a.txt"));
        assert_eq!(max_separators(b"*/x"), 1);
        assert_eq!(max_separators(b"a[^x]b"), 1);
    }

    #[test]
    fn invalid_utf8_is_one_rune() {
        assert!(matches(b"a?b", b"a\xffb"));
        assert!(!matches(b"a??b", b"a\xffb"));
    }
}
