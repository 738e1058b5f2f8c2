//! The word lexer: quotes, escapes and `$` substitutions of one Dockerfile word.

use std::collections::BTreeSet;

use super::env::EnvGetter;
use super::error::{ShellError, ShellErrorKind};
use super::go_text::{is_digit, is_letter, is_space};
use super::pattern;

/// How deep `${...}` operands may nest before expansion gives up. BuildKit recurses
/// without a bound; a bound keeps hostile input from exhausting the stack.
const MAX_NESTING: usize = 200;

/// Shell-like word processing for Dockerfile instructions (BuildKit's `shell.Lex`).
///
/// It removes quotes and escapes and expands `$VAR` and `${VAR...}` the way BuildKit
/// does — a subset of POSIX sh: no command substitution, no arithmetic, no globbing.
///
/// - `'...'` keeps everything literally; the escape character does not escape a `'`.
/// - `"..."` keeps everything but `$` substitutions; the escape character escapes only
///   `"`, `$` and itself there, and stays literal before anything else.
/// - Outside quotes the escape character makes the next character literal; at the end
///   of the word it is dropped.
/// - `$NAME` reads a name of letters, digits and `_`; `$1`, `$001` read all digits;
///   `$@ $* $# $? $- $$ $! $0` are single-character special parameters. A `$` followed
///   by none of these stays a literal `$`.
/// - `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`,
///   `${NAME:?message}`, `${NAME?message}`: the colon forms treat an empty value like
///   an unset one.
/// - `${NAME#pattern}`, `${NAME##pattern}`, `${NAME%pattern}`, `${NAME%%pattern}`,
///   `${NAME/pattern/replacement}`, `${NAME//pattern/replacement}`: see
///   the pattern rules below.
/// - `<<` followed by blanks is kept together with them, so that `<< EOF` stays one
///   word (heredoc markers).
///
/// Patterns: `*` any run of characters (shortest for `#` and `%`, longest for `##`,
/// `%%` and `/`), `?` one character, `\*` `\?` `\\` the character itself, `\}` and
/// `\/` the plain character; bracket expressions are *not* supported and match
/// literally, as in BuildKit. `${NAME//p/r}` expands `$0`/`${0}` in the replacement
/// to the match and any other `$name` to nothing (Go's template rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lex {
    /// The escape character: `\` by default, `` ` `` after `# escape=``.
    pub escape_token: char,
    /// Keep quote characters in the result.
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Treat `'` and `"` as ordinary characters.
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written instead of expanding them.
    pub skip_unset_env: bool,
}

impl Default for Lex {
    fn default() -> Self {
        Lex::new('\\')
    }
}

/// The outcome of expanding one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessWordResult {
    /// The expanded word, spaces kept.
    pub result: String,
    /// The expanded word split into words at unquoted whitespace.
    pub words: Vec<String>,
    /// Variables the word referenced that were set.
    pub matched: BTreeSet<String>,
    /// Variables the word referenced that were unset.
    pub unmatched: BTreeSet<String>,
}

impl Lex {
    /// A lexer with the given escape character and every option off.
    pub fn new(escape_token: char) -> Self {
        Lex {
            escape_token,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// Expands `word` as one word, recording which variables it used (BuildKit's
    /// `ProcessWordWithMatches`; its `ProcessWord` is the `result` and `unmatched`
    /// parts of this).
    pub fn process_word(
        &self,
        word: &str,
        env: &dyn EnvGetter,
    ) -> Result<ProcessWordResult, ShellError> {
        self.process(word, env, true)
    }

    /// Expands `word` and splits the result into words at unquoted whitespace
    /// (BuildKit's `ProcessWords`). Whitespace that comes out of a variable splits too;
    /// quoted whitespace does not. As in BuildKit, the part of a word before a
    /// `${VAR:-...}`-style operand is lost from the words (`a${X:-b}c` gives `bc`),
    /// though not from [`ProcessWordResult::result`].
    pub fn process_words(
        &self,
        word: &str,
        env: &dyn EnvGetter,
    ) -> Result<Vec<String>, ShellError> {
        self.process(word, env, false).map(|r| r.words)
    }

    fn process(
        &self,
        word: &str,
        env: &dyn EnvGetter,
        capture: bool,
    ) -> Result<ProcessWordResult, ShellError> {
        let mut sw = ShellWord::new(self, env, word, capture);
        match sw.process_stop_on(None, self.raw_escapes) {
            Ok((result, words)) => Ok(ProcessWordResult {
                result,
                words,
                matched: sw.matched,
                unmatched: sw.unmatched,
            }),
            Err(kind) => Err(ShellError::new(word, kind, sw.matched, sw.unmatched)),
        }
    }
}

/// Collects the words of a processed word.
///
/// The buffer of the word being built is not owned here but shared by every nested
/// operand (`${VAR:-...}`) of one expansion, and each operand clears it when it
/// starts. BuildKit works the same way, and it shows: text before a `${VAR:-...}` in
/// the same word is dropped from the split words (but not from the joined result).
#[derive(Default)]
struct Words {
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, buf: &mut String, c: char) {
        if is_space(c) {
            if self.in_word && !buf.is_empty() {
                self.words.push(std::mem::take(buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(buf, c);
        }
    }

    fn add_raw_char(&mut self, buf: &mut String, c: char) {
        buf.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, buf: &mut String, s: &str) {
        for c in s.chars() {
            self.add_char(buf, c);
        }
    }

    fn add_raw_string(&mut self, buf: &mut String, s: &str) {
        buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self, buf: &mut String) -> Vec<String> {
        if !buf.is_empty() {
            self.words.push(std::mem::take(buf));
        }
        self.words
    }
}

/// The state of one expansion.
struct ShellWord<'a> {
    lex: &'a Lex,
    env: &'a dyn EnvGetter,
    chars: Vec<char>,
    pos: usize,
    raw_escapes: bool,
    capture: bool,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
    words_buffer: String,
    depth: usize,
}

type Processed = Result<(String, Vec<String>), ShellErrorKind>;

impl<'a> ShellWord<'a> {
    fn new(lex: &'a Lex, env: &'a dyn EnvGetter, word: &str, capture: bool) -> Self {
        let mut chars: Vec<char> = word.chars().collect();
        // BuildKit reads the word with Go's text/scanner, which skips a leading BOM.
        if chars.first() == Some(&'\u{feff}') {
            chars.remove(0);
        }
        ShellWord {
            lex,
            env,
            chars,
            pos: 0,
            raw_escapes: lex.raw_escapes,
            capture,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
            words_buffer: String::new(),
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes up to `stop` (consumed) or the end of the word when `stop` is `None`.
    fn process_stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Processed {
        if self.depth >= MAX_NESTING {
            return Err(ShellErrorKind::TooDeep(MAX_NESTING));
        }
        self.depth += 1;
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let processed = self.process_until(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        processed
    }

    fn process_until(&mut self, stop: Option<char>) -> Processed {
        let mut result = String::new();
        self.words_buffer.clear();
        let mut words = Words::default();
        let process_quotes = !self.lex.skip_process_quotes;

        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish(&mut self.words_buffer)));
            }
            match ch {
                '$' => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                    words.add_string(&mut self.words_buffer, &value);
                }
                '<' => {
                    let value = self.process_possible_heredoc();
                    result.push_str(&value);
                    words.add_raw_string(&mut self.words_buffer, &value);
                }
                '\'' if process_quotes => {
                    let value = self.process_single_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&mut self.words_buffer, &value);
                }
                '"' if process_quotes => {
                    let value = self.process_double_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&mut self.words_buffer, &value);
                }
                _ => {
                    self.next();
                    if ch == self.lex.escape_token {
                        if self.raw_escapes {
                            words.add_raw_char(&mut self.words_buffer, ch);
                            result.push(ch);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.next() else {
                            break;
                        };
                        words.add_raw_char(&mut self.words_buffer, escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(&mut self.words_buffer, ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(ShellErrorKind::UnexpectedEnd(stop));
        }
        Ok((result, words.finish(&mut self.words_buffer)))
    }

    fn process_single_quote(&mut self) -> Result<String, ShellErrorKind> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(ShellErrorKind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, ShellErrorKind> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(ShellErrorKind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(mut ch) => {
                    self.next();
                    if ch == self.lex.escape_token {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // The missing closing quote is reported on the next turn.
                            None => continue,
                            Some(next)
                                if next == '"' || next == '$' || next == self.lex.escape_token =>
                            {
                                self.next();
                                ch = next;
                            }
                            // Before any other character the escape stays literal.
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_dollar(&mut self) -> Result<String, ShellErrorKind> {
        self.next(); // the `$`

        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(value) => value,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }

        self.next(); // the `{`
        match self.peek() {
            None => return Err(ShellErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ShellErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let mut op = self.next();
        // Go spells its end-of-input rune as U+FFFD in messages.
        let mut op_text = String::from(op.unwrap_or('\u{fffd}'));

        match op {
            Some('}') => Ok(match self.get_env(&name) {
                Some(value) => value,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let null_is_unset = op == Some(':');
                if null_is_unset {
                    op = self.next();
                    op_text.push(op.unwrap_or('\u{fffd}'));
                }
                let raw_escapes = matches!(op, Some('#' | '%'));
                if null_is_unset && raw_escapes {
                    return Err(ShellErrorKind::UnsupportedModifier(op_text));
                }
                let word = self.operand('}', raw_escapes, ShellErrorKind::MissingBrace)?;

                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}{op_text}{word}}}"));
                }
                let unset = value.is_none() || (null_is_unset && value.as_deref() == Some(""));
                match op {
                    Some('-') => Ok(if unset {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    Some('+') => Ok(if unset { String::new() } else { word }),
                    Some('?') => {
                        let default = match value {
                            None => "is not allowed to be unset",
                            Some(v) if null_is_unset && v.is_empty() => {
                                "is not allowed to be empty"
                            }
                            Some(v) => return Ok(v),
                        };
                        let message = if word.is_empty() {
                            default.to_string()
                        } else {
                            word
                        };
                        Err(ShellErrorKind::Required { name, message })
                    }
                    Some(c @ ('%' | '#')) => {
                        // `%%` and `##` match the longest pattern, `%` and `#` the shortest.
                        let (greedy, pattern) = match word.strip_prefix(c) {
                            Some(rest) => (true, rest),
                            None => (false, word.as_str()),
                        };
                        let value = value.unwrap_or_default();
                        if c == '%' {
                            pattern::trim_suffix(pattern, &value, greedy)
                        } else {
                            pattern::trim_prefix(pattern, &value, greedy)
                        }
                    }
                    _ => Err(ShellErrorKind::UnsupportedModifier(op_text)),
                }
            }
            Some('/') => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let pattern = self.operand('/', true, ShellErrorKind::MissingSlash)?;
                let replacement = self.operand('}', true, ShellErrorKind::MissingBrace)?;

                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let value = value.unwrap_or_default();
                let re = pattern::shell_pattern_to_regex(&pattern, true, false)
                    .map_err(|reason| ShellErrorKind::InvalidPattern { pattern, reason })?;
                Ok(if replace_all {
                    pattern::replace_all(&re, &value, &replacement)
                } else {
                    pattern::replace_first(&re, &value, &replacement)
                })
            }
            _ => Err(ShellErrorKind::UnsupportedModifier(op_text)),
        }
    }

    /// Reads an operand of `${...}` up to `stop`; running out of input reports
    /// `at_end` instead of the operand's own error.
    fn operand(
        &mut self,
        stop: char,
        raw_escapes: bool,
        at_end: ShellErrorKind,
    ) -> Result<String, ShellErrorKind> {
        match self.process_stop_on(Some(stop), raw_escapes) {
            Ok((word, _)) => Ok(word),
            Err(_) if self.peek().is_none() => Err(at_end),
            Err(err) => Err(err),
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(d) = self.peek().filter(|&c| is_digit(c)) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !is_letter(ch) && !is_digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next(); // the first `<`
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut result = "<<".to_string();
        while let Some(c) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            result.push(c);
            self.next();
        }
        result
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        let value = self.env.get(name);
        if self.capture {
            let set = if value.is_some() {
                &mut self.matched
            } else {
                &mut self.unmatched
            };
            set.insert(name.to_string());
        }
        value
    }
}

/// POSIX special parameters (`$@`, `$*`, `$#`, `$?`, `$-`, `$$`, `$!`, `$0`).
fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::EnvList;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn word(input: &str, env: &[&str]) -> Result<String, String> {
        Lex::new('\\')
            .process_word(input, &EnvList::new(env))
            .map(|r| r.result)
            .map_err(|e| e.to_string())
    }

    fn words(lex: &Lex, input: &str, env: &[&str]) -> Vec<String> {
        lex.process_words(input, &EnvList::new(env)).unwrap()
    }

    /// BuildKit's TestProcessWithMatches table: result, matched and unmatched names.
    #[test]
    fn results_and_matches() {
        let ok =
            |input: &str, env: &[&str], expected: &str, matched: &[&str], unmatched: &[&str]| {
                let r = Lex::new('\\')
                    .process_word(input, &EnvList::new(env))
                    .unwrap();
                assert_eq!(r.result, expected, "{input}");
                assert_eq!(r.matched, set(matched), "{input}");
                assert_eq!(r.unmatched, set(unmatched), "{input}");
            };
        ok("x", &["DUMMY=dummy"], "x", &[], &[]);
        ok("x ${UNUSED}", &["DUMMY=dummy"], "x ", &[], &["UNUSED"]);
        ok("x ${FOO}", &["FOO=y"], "x y", &["FOO"], &[]);
        let fb = ["FOO=xxx", "BAR="];
        ok(
            "${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}",
            &fb,
            "xxx  ccc",
            &["FOO", "BAR"],
            &["BAZ"],
        );
        ok(
            "${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}",
            &fb,
            "xxx bbb ccc",
            &["FOO", "BAR"],
            &["BAZ"],
        );
        ok("${FOO:-}", &fb, "xxx", &["FOO"], &[]);
        ok("${FOO:-}", &[], "", &[], &["FOO"]);
        ok(
            "${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}",
            &fb,
            "aaa bbb ",
            &["FOO", "BAR"],
            &["BAZ"],
        );
        ok(
            "${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}",
            &fb,
            "aaa  ",
            &["FOO", "BAR"],
            &["BAZ"],
        );
        ok("${FOO?aaa}", &fb, "xxx", &["FOO"], &[]);
        ok("${BAR?bbb}", &fb, "", &["BAR"], &[]);
        ok("${FOO:?aaa}", &fb, "xxx", &["FOO"], &[]);
        ok(
            "${FOO#()[]{\\}^$.\\*\\?|\\\\}",
            &["FOO=()[]{}^$.*?|\\x"],
            "x",
            &["FOO"],
            &[],
        );
        ok("${FOO%%\\**}", &["FOO=xx**"], "xx", &["FOO"], &[]);
        ok("${FOO#*x*y}", &["FOO=xxyy"], "y", &["FOO"], &[]);
        ok("${FOO#*}", &["FOO=xxyy"], "xxyy", &["FOO"], &[]);
        ok(
            "${FOO#$BAR}",
            &["FOO=xxyy", "BAR=x"],
            "xyy",
            &["FOO", "BAR"],
            &[],
        );
        ok(
            "${FOO#$BAR}",
            &["FOO=xxyy", "BAR="],
            "xxyy",
            &["FOO", "BAR"],
            &[],
        );
        ok("${FOO#}", &["FOO=xxyy"], "xxyy", &["FOO"], &[]);
        ok("${FOO##*x}", &["FOO=xxyy"], "yy", &["FOO"], &[]);
        ok("${FOO##}", &["FOO=xxyy"], "xxyy", &["FOO"], &[]);
        ok("${FOO#?\\?}", &["FOO=???y"], "?y", &["FOO"], &[]);
        ok(
            "${ABC:-.}${FOO%x}${ABC:-.}",
            &["FOO=xxyy"],
            ".xxyy.",
            &["FOO"],
            &["ABC"],
        );
        ok("${FOO%%\\**\\*}", &["FOO=a***yy*"], "a", &["FOO"], &[]);
        ok("${FOO%}", &["FOO=xxyy"], "xxyy", &["FOO"], &[]);
        ok(
            "${FOO%%$BAR}",
            &["FOO=xxyy", "BAR="],
            "xxyy",
            &["FOO", "BAR"],
            &[],
        );
        let needle = ["FOO=/foo*/*/*.txt", "NEEDLE=\\*/"];
        ok(
            "${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}",
            &needle,
            "/foo.*/*.txt - /foo..*.txt",
            &["FOO", "NEEDLE"],
            &[],
        );
        let tmp = ["FOO=/tmp/tmp/bar.txt", "NEEDLE=/tmp"];
        ok(
            "${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}",
            &tmp,
            "/tmp/bar.txt - /bar.txt",
            &["FOO", "NEEDLE"],
            &[],
        );
        let abc = ["FOO=/a/foo/b/c.txt", "NEEDLE=/?/", "REPLACEMENT=/"];
        ok(
            "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
            &abc,
            "/foo/b/c.txt - /foo/c.txt",
            &["FOO", "NEEDLE", "REPLACEMENT"],
            &[],
        );
        let url = [
            "FOO=http://google.de",
            "NEEDLE=http://",
            "REPLACEMENT=https://",
        ];
        ok(
            "${FOO/$NEEDLE/$REPLACEMENT}",
            &url,
            "https://google.de",
            &["FOO", "NEEDLE", "REPLACEMENT"],
            &[],
        );
        ok(
            "${FOO//\\//\\/}",
            &["FOO=/tmp/foo.txt"],
            "\\/tmp\\/foo.txt",
            &["FOO"],
            &[],
        );
        ok(
            "${FOO/$BAR/ww}",
            &["FOO=xxyy", "BAR="],
            "wwxxyy",
            &["FOO", "BAR"],
            &[],
        );
        ok("${FOO///}", &["FOO=xxyy"], "xxyy", &["FOO"], &[]);
        ok("${FOO///}", &[], "", &[], &["FOO"]);
    }

    #[test]
    fn failures_keep_the_variables_seen() {
        let err = Lex::new('\\')
            .process_word("${BAZ?ccc}", &EnvList::new(&["FOO=xxx"]))
            .unwrap_err();
        assert_eq!(err.unmatched(), &set(&["BAZ"]));
        assert_eq!(
            err.kind(),
            &ShellErrorKind::Required {
                name: "BAZ".into(),
                message: "ccc".into()
            }
        );
        assert_eq!(
            err.to_string(),
            r#"failed to process "${BAZ?ccc}": BAZ: ccc"#
        );
        let err = Lex::new('\\')
            .process_word("${BAR:?bbb}", &EnvList::new(&["BAR="]))
            .unwrap_err();
        assert_eq!(err.matched(), &set(&["BAR"]));
        assert_eq!(err.word(), "${BAR:?bbb}");
    }

    #[test]
    fn error_messages_match_buildkit() {
        let cases = [
            ("${}", "syntax error: bad substitution"),
            ("${:}", "syntax error: bad substitution"),
            ("${{aaa}", "syntax error: bad substitution"),
            ("${", "syntax error: missing '}'"),
            ("${aaa:-bbb", "syntax error: missing '}'"),
            ("${aaa:-bbb ${foo}", "syntax error: missing '}'"),
            ("he${PWD", "unsupported modifier (\u{fffd}) in substitution"),
            ("${.}", "unsupported modifier (.) in substitution"),
            ("${XXX:YYY}", "unsupported modifier (:Y) in substitution"),
            ("${PWD:=000}", "unsupported modifier (:=) in substitution"),
            ("${FOO=aaa}", "unsupported modifier (=) in substitution"),
            ("${FOO:#x}", "unsupported modifier (:#) in substitution"),
            ("${FOO:%%x}", "unsupported modifier (:%) in substitution"),
            ("${FOO//ww}", "syntax error: missing '/' in ${}"),
            ("${FOO//}", "syntax error: missing '/' in ${}"),
            ("${XXX?}", "XXX: is not allowed to be unset"),
            ("${NULL:?}", "NULL: is not allowed to be empty"),
            ("${XXX:?oops $PWD}", "XXX: oops /home"),
            (
                "'abc",
                "unexpected end of statement while looking for matching single-quote",
            ),
            (
                "\"abc",
                "unexpected end of statement while looking for matching double-quote",
            ),
            (
                "\"abc\\\"",
                "unexpected end of statement while looking for matching double-quote",
            ),
            (
                "${PWD#\\x}",
                "invalid pattern (\\x) in substitution: invalid escape '\\x'",
            ),
            // `%` reports the reversed pattern, as BuildKit does.
            (
                "${PWD%ab\\x}",
                "invalid pattern (\\xba) in substitution: invalid escape '\\x'",
            ),
            (
                "${PWD/a\\x/b}",
                "invalid pattern (a\\x) in substitution: invalid escape '\\x'",
            ),
            ("${PWD:-${}}", "syntax error: bad substitution"),
        ];
        for (input, message) in cases {
            let got = word(input, &["PWD=/home", "NULL="]).unwrap_err();
            let quoted = crate::shell::go_text::quote(input);
            assert_eq!(
                got,
                format!("failed to process {quoted}: {message}"),
                "{input}"
            );
        }
    }

    #[test]
    fn mandatory_variables() {
        let set_env = ["VAR=plain", "ARG=x"];
        let empty = ["VAR=", "ARG=x"];
        let unset = ["ARG=x"];
        assert_eq!(word("${VAR:?message here$ARG}", &set_env).unwrap(), "plain");
        assert!(
            word("${VAR:?message here$ARG}", &empty)
                .unwrap_err()
                .contains("message herex")
        );
        assert!(
            word("${VAR:?message here$ARG}", &unset)
                .unwrap_err()
                .contains("message herex")
        );
        assert_eq!(word("${VAR?message here$ARG}", &set_env).unwrap(), "plain");
        assert_eq!(word("${VAR?message here$ARG}", &empty).unwrap(), "");
        assert!(
            word("${VAR?message here$ARG}", &unset)
                .unwrap_err()
                .contains("message herex")
        );
    }

    #[test]
    fn release_file_name() {
        let release = "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz";
        let base = ["VERSION=v1.2.3", "TARGETOS=linux"];
        let with = |extra: &[&str]| {
            let env: Vec<&str> = base.iter().chain(extra).copied().collect();
            word(release, &env).unwrap()
        };
        assert_eq!(
            with(&["TARGETARCH=arm", "TARGETVARIANT=v7"]),
            "something-v1.2.3.linux-arm-v7.tar.gz"
        );
        assert_eq!(
            with(&["TARGETARCH=arm64", "TARGETVARIANT="]),
            "something-v1.2.3.linux-arm64.tar.gz"
        );
        assert_eq!(
            with(&["TARGETARCH=arm64"]),
            "something-v1.2.3.linux-arm64.tar.gz"
        );
    }

    #[test]
    fn names_and_special_parameters() {
        let env = ["A=1", "A_B2=2", "한=k", "1=one", "@=at"];
        assert_eq!(word("$A_B2.$A-", &env).unwrap(), "2.1-");
        assert_eq!(word("$한글", &env).unwrap(), "");
        assert_eq!(word("$한", &env).unwrap(), "k");
        // A name starting with a digit reads digits only.
        assert_eq!(word("$1a ${1}", &env).unwrap(), "onea one");
        assert_eq!(word("$@@", &env).unwrap(), "at@");
        assert_eq!(word("$ $. $}", &env).unwrap(), "$ $. $}");
        assert_eq!(word("${A}}", &env).unwrap(), "1}");
    }

    #[test]
    fn quoting_rules() {
        let env = ["X=a b", "E="];
        assert_eq!(word(r#"'$X \n "'"#, &env).unwrap(), r#"$X \n ""#);
        assert_eq!(
            word(r#""$X \$X \" \\ \n \'""#, &env).unwrap(),
            r#"a b $X " \ \n \'"#
        );
        assert_eq!(word(r"\$X\'\a\", &env).unwrap(), "$X'a");
        assert_eq!(word(r#"a"b"'c'd"#, &env).unwrap(), "abcd");
        // The escape character does not escape a single quote inside single quotes.
        assert!(word(r"'a\'b'", &env).is_err());
    }

    #[test]
    fn backtick_escape() {
        let lex = Lex::new('`');
        let env = EnvList::new(&["X=x"]);
        assert_eq!(
            lex.process_word("`$X\\$X`\"", &env).unwrap().result,
            "$X\\x\""
        );
        assert_eq!(
            lex.process_word("\"``\\`$X\"", &env).unwrap().result,
            "`\\$X"
        );
    }

    #[test]
    fn options() {
        let env = ["SET=v"];
        let mut lex = Lex::new('\\');
        lex.raw_quotes = true;
        assert_eq!(words(&lex, r#"a'b c'"d""#, &env), [r#"a'b c'"d""#]);
        let mut lex = Lex::new('\\');
        lex.raw_escapes = true;
        assert_eq!(words(&lex, r#"a\ b "\"\n""#, &env), [r#"a\ b"#, r#"\"\\n"#]);
        let mut lex = Lex::new('\\');
        lex.skip_process_quotes = true;
        assert_eq!(words(&lex, r#"'a b' "$SET""#, &env), ["'a", "b'", "\"v\""]);
        let mut lex = Lex::new('\\');
        lex.skip_unset_env = true;
        assert_eq!(
            lex.process_word(
                "$SET $NO ${NO} ${NO:-x} ${NO//a/b} ${SET:+y}",
                &EnvList::new(&env)
            )
            .unwrap()
            .result,
            "v $NO ${NO} ${NO:-x} ${NO/a/b} y"
        );
    }

    #[test]
    fn word_splitting() {
        let lex = Lex::new('\\');
        let env = ["S=  x  y ", "E="];
        assert_eq!(words(&lex, "a$S\"b\"", &env), ["a", "x", "y", "b"]);
        assert_eq!(words(&lex, "a\"$S\"b", &env), ["a  x  y b"]);
        assert_eq!(words(&lex, " a\\ b  c ", &env), ["a b", "c"]);
        // Empty quotes produce no word, as in BuildKit.
        assert_eq!(words(&lex, "'' a \"\"", &env), ["a"]);
        assert!(words(&lex, "$E", &env).is_empty());
        // BuildKit quirk: a ${...:-...} operand clears the word being built.
        assert_eq!(words(&lex, "pre${E:-x}post", &env), ["xpost"]);
        assert_eq!(
            lex.process_word("pre${E:-x}post", &EnvList::new(&env))
                .unwrap()
                .result,
            "prexpost"
        );
    }

    #[test]
    fn heredoc_markers_stay_together() {
        let lex = Lex::new('\\');
        assert_eq!(
            words(&lex, "RUN << \t EOF a<b", &[]),
            ["RUN", "<< \t EOF", "a<b"]
        );
        assert_eq!(words(&lex, "3<<-'E F'", &[]), ["3<<-E F"]);
    }

    #[test]
    fn leading_byte_order_mark_is_skipped() {
        assert_eq!(word("\u{feff}a\u{feff}", &[]).unwrap(), "a\u{feff}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "${A:-".repeat(10_000) + &"}".repeat(10_000);
        let err = word(&deep, &[]).unwrap_err();
        assert!(err.contains("nested"), "{err}");
        // Just under the limit, through double quotes (the deepest frames), still works.
        let levels = MAX_NESTING - 1;
        let quoted = "\"${A:-".repeat(levels) + "x" + &"}\"".repeat(levels);
        assert_eq!(word(&quoted, &[]).unwrap(), "x");
    }
}
