//! Go's text primitives, reproduced where BuildKit's results depend on them.
//!
//! BuildKit classifies characters with Go's `unicode` package and prints strings with
//! `strconv.Quote`. Rust's nearest equivalents differ in small ways (`char::is_alphabetic`
//! is the Alphabetic property, not the Letter category; `str::to_lowercase` applies
//! final-sigma and multi-char mappings), so the functions here follow Go's definitions.

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// Go's `unicode.IsSpace`: the Unicode White_Space property (same set as Rust's
/// `char::is_whitespace`).
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Go's `unicode.IsLetter`: general category L.
pub(crate) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    c.general_category_group() == GeneralCategoryGroup::Letter
}

/// Go's `unicode.IsDigit`: general category Nd.
pub(crate) fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    c.general_category() == unicode_properties::GeneralCategory::DecimalNumber
}

/// Go's `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII
/// space.
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter
            | GeneralCategoryGroup::Mark
            | GeneralCategoryGroup::Number
            | GeneralCategoryGroup::Punctuation
            | GeneralCategoryGroup::Symbol
    )
}

/// Go's `strings.ToLower`: the simple lower-case mapping of each character.
pub(crate) fn to_lower(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        // U+0130 is the one character whose full lower-case mapping (two chars) differs
        // from its simple mapping, which is what Go uses.
        if c == '\u{130}' {
            out.push('i');
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Go's `strings.TrimSpace`.
pub(crate) fn trim_space(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Go's `strconv.Quote` for bytes that may not be valid UTF-8: each byte outside a
/// valid sequence prints as `\x..`.
pub(crate) fn quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_escaped(&mut out, c);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// Go's `fmt.Sprintf("%q", []string{...})`: `["a" "b"]`.
pub(crate) fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `strconv.Quote` for a valid UTF-8 string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    out.push('"');
    out
}

fn push_escaped(out: &mut String, c: char) {
    if c == '"' || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if c < ' ' || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            quote("\u{0}\u{7}\u{8}\t\n\u{b}\u{c}\r\u{1b}\u{7f}"),
            r#""\x00\a\b\t\n\v\f\r\x1b\x7f""#
        );
        assert_eq!(quote("♥ 한국어 é"), "\"♥ 한국어 é\"");
        assert_eq!(
            quote("\u{a0}\u{ad}\u{85}\u{200b}\u{feff}"),
            r#""\u00a0\u00ad\u0085\u200b\ufeff""#
        );
        assert_eq!(quote("\u{e0001}\u{10ffff}"), r#""\U000e0001\U0010ffff""#);
        assert_eq!(quote("😀\u{fffd}"), "\"😀\u{fffd}\"");
        assert_eq!(quote(""), r#""""#);
    }

    #[test]
    fn classification_matches_go() {
        assert!(is_letter('a') && is_letter('한') && is_letter('ǅ') && !is_letter('_'));
        // Roman numeral Ⅻ is alphabetic in Unicode but a number (Nl), not a letter.
        assert!(!is_letter('Ⅻ') && 'Ⅻ'.is_alphabetic());
        assert!(is_digit('7') && is_digit('٣') && !is_digit('½') && !is_digit('Ⅻ'));
        assert!(
            is_space('\u{85}')
                && is_space('\u{a0}')
                && is_space('\u{3000}')
                && !is_space('\u{200b}')
        );
    }

    #[test]
    fn quote_bytes_matches_go() {
        assert_eq!(
            quote_bytes(b"a\xff\xf0\x9f\x98\"\xc3\xa9"),
            r#""a\xff\xf0\x9f\x98\"é""#
        );
        assert_eq!(quote_bytes("\u{fffd}".as_bytes()), "\"\u{fffd}\"");
    }

    #[test]
    fn quote_list_matches_go() {
        assert_eq!(
            quote_list(&["--a=1".into(), "b\"".into()]),
            r#"["--a=1" "b\""]"#
        );
        assert_eq!(quote_list(&[]), "[]");
    }

    #[test]
    fn lower_uses_simple_mapping() {
        assert_eq!(to_lower("RUN"), "run");
        assert_eq!(to_lower("İ"), "i");
        // No final-sigma rule in Go.
        assert_eq!(to_lower("ΟΣ"), "οσ");
    }

    #[test]
    fn trim_space_matches_go() {
        assert_eq!(trim_space("\u{a0} a b\t\n\u{85}"), "a b");
    }
}
