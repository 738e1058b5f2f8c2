//! Shell patterns of `${VAR#p}`, `${VAR%p}` and `${VAR/p/r}`, matched the way BuildKit
//! matches them: translated to a regular expression.
//!
//! `*` matches any run of characters (shortest for `#`/`%`, longest for `##`/`%%` and
//! `/`), `?` one character, `\*`, `\?` and `\\` themselves; `\}` and `\/` stand for the
//! plain character. Everything else, bracket expressions included, is literal: BuildKit
//! does not implement `[...]` classes. `%` matches at the end of the value by reversing
//! both the pattern and the value and matching at the start.

use regex::Regex;

use super::error::ShellErrorKind;

/// Translates a shell pattern into a regex (BuildKit's `convertShellPatternToRegex`).
pub(crate) fn shell_pattern_to_regex(
    pattern: &str,
    greedy: bool,
    anchored: bool,
) -> Result<Regex, String> {
    let mut chars = pattern.chars().peekable();
    // Go's text/scanner drops a byte-order mark at the very start of its input.
    if chars.peek() == Some(&'\u{feff}') {
        chars.next();
    }
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let star = if greedy { ".*" } else { ".*?" };
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(star),
            '?' => out.push('.'),
            '\\' => {
                // `\}` and `\/` are escapes of ${}'s own syntax, not of the pattern.
                if matches!(chars.peek(), Some('}') | Some('/')) {
                    continue;
                }
                out.push('\\');
                match chars.next() {
                    Some(e @ ('*' | '?' | '\\')) => out.push(e),
                    // Go prints its EOF rune as U+FFFD.
                    other => {
                        return Err(format!(
                            "invalid escape '\\{}'",
                            other.unwrap_or('\u{fffd}')
                        ));
                    }
                }
            }
            '[' | ']' | '{' | '}' | '.' | '+' | '(' | ')' | '|' | '^' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Regex::new(&out).map_err(|e| e.to_string())
}

/// `${VAR#pattern}` / `${VAR##pattern}`: drops the matching prefix of `value`.
pub(crate) fn trim_prefix(
    pattern: &str,
    value: &str,
    greedy: bool,
) -> Result<String, ShellErrorKind> {
    let re = shell_pattern_to_regex(pattern, greedy, true).map_err(|reason| {
        ShellErrorKind::InvalidPattern {
            pattern: pattern.to_string(),
            reason,
        }
    })?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// `${VAR%pattern}` / `${VAR%%pattern}`: drops the matching suffix of `value`.
pub(crate) fn trim_suffix(
    pattern: &str,
    value: &str,
    greedy: bool,
) -> Result<String, ShellErrorKind> {
    // A regex finds the leftmost match only, so match the reversed value against the
    // reversed pattern.
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reverse(value), greedy)?;
    Ok(reverse(&trimmed))
}

/// Reverses a pattern but keeps each `\x` escape in front of the character it escapes.
pub(crate) fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = vec!['\0'; chars.len()];
    let last = chars.len().saturating_sub(1);
    let mut i = 0;
    while i < chars.len() {
        let at = last - i;
        if chars[i] == '\\' && i != last {
            out[at - 1] = '\\';
            out[at] = chars[i + 1];
            i += 2;
        } else {
            out[at] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

fn reverse(s: &str) -> String {
    s.chars().rev().collect()
}

/// `${VAR/pattern/replacement}`: replaces the first match, the replacement taken
/// literally.
pub(crate) fn replace_first(re: &Regex, value: &str, replacement: &str) -> String {
    match re.find(value) {
        Some(m) => format!(
            "{}{}{}",
            &value[..m.start()],
            replacement,
            &value[m.end()..]
        ),
        None => value.to_string(),
    }
}

/// `${VAR//pattern/replacement}`: replaces every match the way Go's
/// `Regexp.ReplaceAllString` does, including its template expansion of the
/// replacement (`$0` or `${0}` is the match, any other `$name` is empty, `$$` is `$`)
/// and its rule that an empty match right after a match is not replaced.
pub(crate) fn replace_all(re: &Regex, value: &str, template: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut last_match_end = 0;
    let mut search_pos = 0;
    while search_pos <= value.len() {
        let Some(m) = re.find_at(value, search_pos) else {
            break;
        };
        out.push_str(&value[last_match_end..m.start()]);
        if m.end() > last_match_end || m.start() == 0 {
            expand_template(&mut out, template, m.as_str());
        }
        last_match_end = m.end();
        let width = value[search_pos..].chars().next().map_or(0, char::len_utf8);
        if search_pos + width > m.end() {
            search_pos += width;
        } else if search_pos + 1 > m.end() {
            search_pos += 1;
        } else {
            search_pos = m.end();
        }
    }
    out.push_str(&value[last_match_end..]);
    out
}

/// Go's `Regexp.Expand` for a regex with no capture group besides the whole match.
fn expand_template(out: &mut String, template: &str, matched: &str) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match template_name(rest) {
            Some((name, after)) => {
                if name == "0" {
                    out.push_str(matched);
                }
                rest = after;
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// The group name after a `$` in a template (`name` or `{name}`) and the text after it.
fn template_name(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, s),
    };
    let len: usize = body
        .chars()
        .take_while(|&c| super::go_text::is_letter(c) || super::go_text::is_digit(c) || c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let name = &body[..len];
    let after = &body[len..];
    if braced {
        let after = after.strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_translate_like_buildkit() {
        let cases = [
            ("*", "^.*"),
            ("?", "^."),
            ("\\*", "^\\*"),
            (
                "(()[]{\\}^$.\\*\\?|\\\\",
                "^\\(\\(\\)\\[\\]\\{\\}\\^\\$\\.\\*\\?\\|\\\\",
            ),
        ];
        for (pattern, expected) in cases {
            let re = shell_pattern_to_regex(pattern, true, true).unwrap();
            assert_eq!(re.as_str(), expected, "{pattern}");
        }
        assert_eq!(
            shell_pattern_to_regex("a*b", false, false)
                .unwrap()
                .as_str(),
            "a.*?b"
        );
        assert_eq!(
            shell_pattern_to_regex("\u{feff}a", false, false)
                .unwrap()
                .as_str(),
            "a"
        );
    }

    #[test]
    fn invalid_escapes_are_rejected() {
        assert_eq!(
            shell_pattern_to_regex("\\", true, true).unwrap_err(),
            "invalid escape '\\\u{fffd}'"
        );
        assert_eq!(
            shell_pattern_to_regex("\\x", true, true).unwrap_err(),
            "invalid escape '\\x'"
        );
        assert!(shell_pattern_to_regex("\\\\\\", true, true).is_err());
    }

    #[test]
    fn reverse_pattern_keeps_escapes() {
        let cases = [
            ("a\\*c", "c\\*a"),
            ("\\\\\\ab", "b\\a\\\\"),
            ("ab\\", "\\ba"),
            ("👽\\🚀🖖", "🖖\\🚀👽"),
            ("\\\\b", "b\\\\"),
            ("", ""),
        ];
        for (pattern, expected) in cases {
            assert_eq!(reverse_pattern(pattern), expected, "{pattern}");
        }
        assert_eq!(reverse("🖖🚀👽"), "👽🚀🖖");
    }

    #[test]
    fn trims_shortest_and_longest() {
        assert_eq!(trim_prefix("*x", "axbxc", false).unwrap(), "bxc");
        assert_eq!(trim_prefix("*x", "axbxc", true).unwrap(), "c");
        assert_eq!(trim_suffix("x*", "axbxc", false).unwrap(), "axb");
        assert_eq!(trim_suffix("x*", "axbxc", true).unwrap(), "a");
        assert_eq!(trim_prefix("z", "abc", true).unwrap(), "abc");
        // An anchored pattern does not match in the middle.
        assert_eq!(trim_prefix("b", "abc", false).unwrap(), "abc");
    }

    #[test]
    fn replace_all_follows_go() {
        let re = shell_pattern_to_regex("*", true, false).unwrap();
        // `.*` matches the whole value; the empty match at the end is not replaced again.
        assert_eq!(replace_all(&re, "abc", "x"), "x");
        assert_eq!(replace_all(&re, "", "x"), "x");
        let re = shell_pattern_to_regex("b", true, false).unwrap();
        assert_eq!(replace_all(&re, "abcb", "[$0]"), "a[b]c[b]");
        assert_eq!(replace_all(&re, "abcb", "${0}$$$x${x"), "ab$${xcb$${x");
        assert_eq!(replace_first(&re, "abcb", "$0"), "a$0cb");
        let re = Regex::new("a*").unwrap();
        assert_eq!(replace_all(&re, "baaab", "X"), "XbXbX");
    }
}
