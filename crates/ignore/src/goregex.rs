//! Translation of Go `regexp` syntax into an equivalent `regex` crate pattern.
//!
//! patternmatcher turns each pattern into a Go regular expression, and parts of
//! the user's pattern reach it verbatim: `[...]` classes, `^`, and whatever
//! follows a `\`. Go's syntax differs from the `regex` crate's in exactly those
//! places (`[[:alpha:]]` versus nested classes, `[a&&b]` set operations, `\Q..\E`,
//! octal escapes, ASCII-only `\d`/`\w`/`\b`, which escapes are errors), so the
//! Go expression is parsed here with Go's rules and re-emitted in a form whose
//! meaning is the same for the `regex` crate: every literal as `\x{..}`, every
//! class as explicit ranges, every group non-capturing.
//!
//! The flags are those of Go's `regexp.Compile`: `^`/`$` match only at the ends
//! of the text, `.` does not match `\n`, negated classes do match `\n`.

use std::fmt::Write as _;

/// Translates the Go expression `go` into a `regex` crate expression, or says
/// why Go's `regexp.Compile` would reject it.
pub(crate) fn translate(go: &str) -> Result<String, String> {
    let src: Vec<char> = go.chars().collect();
    let mut t = Translator {
        src: &src,
        pos: 0,
        out: String::with_capacity(go.len() * 2),
        prev: Prev::Nothing,
        last_start: 0,
        group_starts: Vec::new(),
    };
    t.run()?;
    Ok(t.out)
}

/// What the next repetition operator would apply to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prev {
    /// Start of the expression, of a group, or of an alternative.
    Nothing,
    /// Something repeatable, starting at `last_start` in the output.
    Atom,
    /// A repetition operator: another one directly after it is an error in Go.
    Repeat,
}

struct Translator<'a> {
    src: &'a [char],
    pos: usize,
    out: String,
    prev: Prev,
    last_start: usize,
    group_starts: Vec<usize>,
}

/// One member of a bracket class.
enum ClassItem {
    Range(u32, u32),
    /// A named ASCII group (`\d`, `[:alpha:]`), possibly negated.
    Group {
        negated: bool,
        ranges: &'static [(u32, u32)],
    },
    /// A Unicode table as a `regex` class fragment such as `\p{Lu}`.
    Unicode {
        negated: bool,
        fragment: &'static str,
    },
}

const DIGIT: &[(u32, u32)] = &[(0x30, 0x39)];
const SPACE_PERL: &[(u32, u32)] = &[(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)];
const WORD: &[(u32, u32)] = &[(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)];

/// Go's POSIX classes (`posixGroup`), all ASCII.
fn posix_group(name: &str) -> Option<&'static [(u32, u32)]> {
    Some(match name {
        "alnum" => &[(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
        "alpha" => &[(0x41, 0x5A), (0x61, 0x7A)],
        "ascii" => &[(0x00, 0x7F)],
        "blank" => &[(0x09, 0x09), (0x20, 0x20)],
        "cntrl" => &[(0x00, 0x1F), (0x7F, 0x7F)],
        "digit" => DIGIT,
        "graph" => &[(0x21, 0x7E)],
        "lower" => &[(0x61, 0x7A)],
        "print" => &[(0x20, 0x7E)],
        "punct" => &[(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
        "space" => &[(0x09, 0x0D), (0x20, 0x20)],
        "upper" => &[(0x41, 0x5A)],
        "word" => WORD,
        "xdigit" => &[(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
        _ => return None,
    })
}

/// Go's `\d \D \s \S \w \W` (ASCII only, `\s` without `\v`).
fn perl_group(c: char) -> Option<(bool, &'static [(u32, u32)])> {
    Some(match c {
        'd' => (false, DIGIT),
        'D' => (true, DIGIT),
        's' => (false, SPACE_PERL),
        'S' => (true, SPACE_PERL),
        'w' => (false, WORD),
        'W' => (true, WORD),
        _ => return None,
    })
}

/// The Unicode tables Go accepts by name: `Any` and the general categories.
/// Go's `C` is Cc, Cf, Co and Cs (without unassigned code points).
fn unicode_table(name: &str) -> Option<&'static str> {
    Some(match name {
        "Any" => r"\x{0}-\x{10FFFF}",
        "C" => r"\p{Cc}\p{Cf}\p{Co}\p{Cs}",
        "Cc" => r"\p{Cc}",
        "Cf" => r"\p{Cf}",
        "Co" => r"\p{Co}",
        "Cs" => r"\p{Cs}",
        "L" => r"\p{L}",
        "Ll" => r"\p{Ll}",
        "Lm" => r"\p{Lm}",
        "Lo" => r"\p{Lo}",
        "Lt" => r"\p{Lt}",
        "Lu" => r"\p{Lu}",
        "M" => r"\p{M}",
        "Mc" => r"\p{Mc}",
        "Me" => r"\p{Me}",
        "Mn" => r"\p{Mn}",
        "N" => r"\p{N}",
        "Nd" => r"\p{Nd}",
        "Nl" => r"\p{Nl}",
        "No" => r"\p{No}",
        "P" => r"\p{P}",
        "Pc" => r"\p{Pc}",
        "Pd" => r"\p{Pd}",
        "Pe" => r"\p{Pe}",
        "Pf" => r"\p{Pf}",
        "Pi" => r"\p{Pi}",
        "Po" => r"\p{Po}",
        "Ps" => r"\p{Ps}",
        "S" => r"\p{S}",
        "Sc" => r"\p{Sc}",
        "Sk" => r"\p{Sk}",
        "Sm" => r"\p{Sm}",
        "So" => r"\p{So}",
        "Z" => r"\p{Z}",
        "Zl" => r"\p{Zl}",
        "Zp" => r"\p{Zp}",
        "Zs" => r"\p{Zs}",
        _ => return None,
    })
}

fn push_char(out: &mut String, c: u32) {
    match char::from_u32(c) {
        Some(ch) if ch.is_ascii_alphanumeric() => out.push(ch),
        // `write!` to a String cannot fail.
        _ => {
            let _ = write!(out, r"\x{{{c:X}}}");
        }
    }
}

/// A class fragment for `lo..=hi`, leaving out surrogates (which no Rust
/// string, and no path Go decodes, can contain).
fn push_range(out: &mut String, lo: u32, hi: u32) {
    let mut emit = |lo: u32, hi: u32| {
        if lo > hi {
            return;
        }
        push_char(out, lo);
        if hi != lo {
            out.push('-');
            push_char(out, hi);
        }
    };
    if hi < 0xD800 || lo > 0xDFFF {
        emit(lo, hi);
    } else {
        if lo < 0xD800 {
            emit(lo, 0xD7FF);
        }
        if hi > 0xDFFF {
            emit(0xE000, hi);
        }
    }
}

/// A class that matches nothing.
const NOTHING: &str = r"[^\x{0}-\x{10FFFF}]";

fn emit_class(out: &mut String, negated: bool, items: &[ClassItem]) {
    let class_start = out.len();
    out.push('[');
    if negated {
        out.push('^');
    }
    let members_start = out.len();
    for item in items {
        match item {
            ClassItem::Range(lo, hi) => push_range(out, *lo, *hi),
            ClassItem::Group { negated, ranges } => {
                if *negated {
                    out.push_str("[^");
                }
                for (lo, hi) in ranges.iter() {
                    push_range(out, *lo, *hi);
                }
                if *negated {
                    out.push(']');
                }
            }
            ClassItem::Unicode { negated, fragment } => {
                if *negated {
                    out.push_str("[^");
                    out.push_str(fragment);
                    out.push(']');
                } else {
                    out.push_str(fragment);
                }
            }
        }
    }
    if out.len() == members_start {
        // Every member fell away (lone surrogates): nothing, or anything.
        out.truncate(class_start);
        out.push_str(if negated {
            r"[\x{0}-\x{10FFFF}]"
        } else {
            NOTHING
        });
        return;
    }
    out.push(']');
}

fn unhex(c: char) -> Option<u32> {
    c.to_digit(16)
}

impl Translator<'_> {
    fn peek(&self, offset: usize) -> Option<char> {
        self.src.get(self.pos + offset).copied()
    }

    fn text_from(&self, start: usize) -> String {
        self.src[start..self.pos.min(self.src.len())]
            .iter()
            .collect()
    }

    fn begin_atom(&mut self) {
        self.last_start = self.out.len();
        self.prev = Prev::Atom;
    }

    fn run(&mut self) -> Result<(), String> {
        while let Some(c) = self.peek(0) {
            match c {
                '(' => {
                    self.group_starts.push(self.out.len());
                    self.out.push_str("(?:");
                    self.pos += 1;
                    self.prev = Prev::Nothing;
                }
                ')' => {
                    let Some(start) = self.group_starts.pop() else {
                        return Err(format!(
                            "unexpected ): `{}`",
                            self.src.iter().collect::<String>()
                        ));
                    };
                    self.out.push(')');
                    self.pos += 1;
                    self.last_start = start;
                    self.prev = Prev::Atom;
                }
                '|' => {
                    self.out.push('|');
                    self.pos += 1;
                    self.prev = Prev::Nothing;
                }
                '^' => {
                    self.begin_atom();
                    self.out.push_str(r"\A");
                    self.pos += 1;
                }
                '$' => {
                    self.begin_atom();
                    self.out.push_str(r"\z");
                    self.pos += 1;
                }
                '.' => {
                    self.begin_atom();
                    self.out.push_str(r"[^\n]");
                    self.pos += 1;
                }
                '[' => {
                    let (negated, items) = self.parse_class()?;
                    self.begin_atom();
                    emit_class(&mut self.out, negated, &items);
                }
                '*' | '+' | '?' => {
                    let start = self.pos;
                    self.pos += 1;
                    let lazy = self.peek(0) == Some('?');
                    if lazy {
                        self.pos += 1;
                    }
                    self.repeat(&c.to_string(), lazy, start)?;
                }
                '{' => {
                    let start = self.pos;
                    match self.parse_repeat() {
                        Some(op) => {
                            let lazy = self.peek(0) == Some('?');
                            if lazy {
                                self.pos += 1;
                            }
                            self.repeat(&op, lazy, start)?;
                        }
                        // Not a valid `{n,m}`: Go takes `{` literally.
                        None => {
                            self.begin_atom();
                            push_char(&mut self.out, u32::from('{'));
                            self.pos += 1;
                        }
                    }
                }
                '\\' => self.top_level_escape()?,
                _ => {
                    self.begin_atom();
                    push_char(&mut self.out, u32::from(c));
                    self.pos += 1;
                }
            }
        }
        if !self.group_starts.is_empty() {
            return Err(format!(
                "missing closing ): `{}`",
                self.src.iter().collect::<String>()
            ));
        }
        Ok(())
    }

    /// Applies a repetition operator to what precedes it, with Go's checks.
    fn repeat(&mut self, op: &str, lazy: bool, start: usize) -> Result<(), String> {
        match self.prev {
            Prev::Nothing => {
                return Err(format!(
                    "missing argument to repetition operator: `{}`",
                    self.text_from(start)
                ));
            }
            Prev::Repeat => {
                return Err(format!(
                    "invalid nested repetition operator: `{}`",
                    self.text_from(start)
                ));
            }
            Prev::Atom => {}
        }
        // Group the operand so that the operator applies to all of it even
        // when it is itself a repetition or an assertion.
        self.out.insert_str(self.last_start, "(?:");
        self.out.push(')');
        self.out.push_str(op);
        if lazy {
            self.out.push('?');
        }
        self.prev = Prev::Repeat;
        Ok(())
    }

    /// Parses `{n}`, `{n,}` or `{n,m}` at the current position, like Go's
    /// `parseRepeat`; returns the operator text and advances past it.
    fn parse_repeat(&mut self) -> Option<String> {
        let mut i = self.pos + 1;
        let number = |i: &mut usize| -> Option<u32> {
            let start = *i;
            while self.src.get(*i).is_some_and(char::is_ascii_digit) {
                *i += 1;
            }
            if *i == start {
                return None;
            }
            let digits: String = self.src[start..*i].iter().collect();
            // Go rejects leading zeros in counts other than "0".
            if digits.len() > 1 && digits.starts_with('0') {
                return None;
            }
            digits.parse::<u32>().ok().filter(|n| *n <= 1000)
        };
        let min = number(&mut i)?;
        let max = if self.src.get(i) == Some(&',') {
            i += 1;
            if self.src.get(i) == Some(&'}') {
                None
            } else {
                Some(number(&mut i)?)
            }
        } else {
            Some(min)
        };
        if self.src.get(i) != Some(&'}') {
            return None;
        }
        if let Some(max) = max
            && max < min
        {
            return None;
        }
        self.pos = i + 1;
        Some(match max {
            None => format!("{{{min},}}"),
            Some(max) if max == min => format!("{{{min}}}"),
            Some(max) => format!("{{{min},{max}}}"),
        })
    }

    fn top_level_escape(&mut self) -> Result<(), String> {
        let start = self.pos;
        match self.peek(1) {
            Some('A') => {
                self.begin_atom();
                self.out.push_str(r"\A");
                self.pos += 2;
                return Ok(());
            }
            Some('z') => {
                self.begin_atom();
                self.out.push_str(r"\z");
                self.pos += 2;
                return Ok(());
            }
            Some('b') => {
                self.begin_atom();
                self.out.push_str(r"(?-u:\b)");
                self.pos += 2;
                return Ok(());
            }
            Some('B') => {
                self.begin_atom();
                self.out.push_str(r"(?-u:\B)");
                self.pos += 2;
                return Ok(());
            }
            Some('C') => return Err(r"invalid escape sequence: `\C`".to_owned()),
            Some('Q') => {
                // Everything up to `\E` (or the end) is literal text.
                self.pos += 2;
                let mut lit = Vec::new();
                while let Some(c) = self.peek(0) {
                    if c == '\\' && self.peek(1) == Some('E') {
                        self.pos += 2;
                        break;
                    }
                    lit.push(c);
                    self.pos += 1;
                }
                for c in lit {
                    self.begin_atom();
                    push_char(&mut self.out, u32::from(c));
                }
                if self.prev == Prev::Repeat {
                    // An empty `\Q\E` ends a repetition run in Go.
                    self.prev = Prev::Atom;
                }
                return Ok(());
            }
            _ => {}
        }
        if let Some(item) = self.parse_unicode_class()? {
            self.begin_atom();
            emit_class(&mut self.out, false, &[item]);
            return Ok(());
        }
        if let Some((negated, ranges)) = self.peek(1).and_then(perl_group) {
            self.pos += 2;
            self.begin_atom();
            emit_class(
                &mut self.out,
                false,
                &[ClassItem::Group { negated, ranges }],
            );
            return Ok(());
        }
        let c = self.parse_escape(start)?;
        self.begin_atom();
        match c {
            c if char::from_u32(c).is_some() => push_char(&mut self.out, c),
            // A surrogate code point can never be in the text.
            _ => self.out.push_str(NOTHING),
        }
        Ok(())
    }

    /// `\p{Name}`, `\pN`, `\P..` and `\p{^Name}` at the current position.
    fn parse_unicode_class(&mut self) -> Result<Option<ClassItem>, String> {
        let mut negated = match (self.peek(0), self.peek(1)) {
            (Some('\\'), Some('p')) => false,
            (Some('\\'), Some('P')) => true,
            _ => return Ok(None),
        };
        let start = self.pos;
        let name: String = match self.peek(2) {
            Some('{') => {
                let Some(end) = self.src[start..].iter().position(|&c| c == '}') else {
                    return Err(format!(
                        "invalid character class range: `{}`",
                        self.src[start..].iter().collect::<String>()
                    ));
                };
                self.pos = start + end + 1;
                self.src[start + 3..start + end].iter().collect()
            }
            Some(c) => {
                self.pos = start + 3;
                c.to_string()
            }
            None => {
                self.pos = start + 2;
                String::new()
            }
        };
        let name = match name.strip_prefix('^') {
            Some(rest) => {
                negated = !negated;
                rest.to_owned()
            }
            None => name,
        };
        match unicode_table(&name) {
            Some(fragment) => Ok(Some(ClassItem::Unicode { negated, fragment })),
            None => Err(format!(
                "invalid character class range: `{}`",
                self.text_from(start)
            )),
        }
    }

    /// A single-character escape at `start` (the backslash), like Go's
    /// `parseEscape`; returns the code point and advances past the escape.
    fn parse_escape(&mut self, start: usize) -> Result<u32, String> {
        let invalid = |t: &Self, end: usize| {
            let end = end.min(t.src.len());
            format!(
                "invalid escape sequence: `{}`",
                t.src[start..end].iter().collect::<String>()
            )
        };
        let Some(c) = self.src.get(start + 1).copied() else {
            return Err("trailing backslash at end of expression".to_owned());
        };
        let mut p = start + 2;
        if c.is_ascii() && !c.is_ascii_alphanumeric() {
            self.pos = p;
            return Ok(u32::from(c));
        }
        let is_octal = |c: Option<&char>| matches!(c, Some('0'..='7'));
        let value = match c {
            '1'..='7' | '0' => {
                // A single non-zero digit would be a backreference.
                if c != '0' && !is_octal(self.src.get(p)) {
                    return Err(invalid(self, p));
                }
                let mut r = c as u32 - '0' as u32;
                for _ in 1..3 {
                    if !is_octal(self.src.get(p)) {
                        break;
                    }
                    r = r * 8 + (self.src[p] as u32 - '0' as u32);
                    p += 1;
                }
                r
            }
            'x' => {
                let Some(c2) = self.src.get(p).copied() else {
                    return Err(invalid(self, p));
                };
                p += 1;
                if c2 == '{' {
                    let mut r: u32 = 0;
                    let mut digits = 0;
                    loop {
                        let Some(d) = self.src.get(p).copied() else {
                            return Err(invalid(self, p));
                        };
                        p += 1;
                        if d == '}' {
                            break;
                        }
                        let Some(v) = unhex(d) else {
                            return Err(invalid(self, p));
                        };
                        r = r * 16 + v;
                        if r > 0x10FFFF {
                            return Err(invalid(self, p));
                        }
                        digits += 1;
                    }
                    if digits == 0 {
                        return Err(invalid(self, p));
                    }
                    r
                } else {
                    let c3 = self.src.get(p).copied();
                    p += 1;
                    match (unhex(c2), c3.and_then(unhex)) {
                        (Some(x), Some(y)) => x * 16 + y,
                        _ => return Err(invalid(self, p)),
                    }
                }
            }
            'a' => 7,
            'f' => 12,
            'n' => 10,
            'r' => 13,
            't' => 9,
            'v' => 11,
            _ => return Err(invalid(self, p)),
        };
        self.pos = p;
        Ok(value)
    }

    /// A bracket class at the current position, with Go's rules: `]` or `-`
    /// first is literal, `[:name:]` POSIX groups, `\d`-style and `\pN`
    /// Unicode groups, and escapes.
    fn parse_class(&mut self) -> Result<(bool, Vec<ClassItem>), String> {
        let class_start = self.pos;
        self.pos += 1;
        let mut negated = false;
        if self.peek(0) == Some('^') {
            negated = true;
            self.pos += 1;
        }
        let missing = |t: &Self| {
            format!(
                "missing closing ]: `{}`",
                t.src[class_start..].iter().collect::<String>()
            )
        };
        let mut items = Vec::new();
        let mut first = true;
        loop {
            match self.peek(0) {
                None => return Err(missing(self)),
                Some(']') if !first => {
                    self.pos += 1;
                    break;
                }
                _ => {}
            }
            first = false;
            // POSIX group; Go looks for the closing `:]` anywhere further on.
            if self.peek(0) == Some('[') && self.peek(1) == Some(':') {
                let rest = &self.src[self.pos + 2..];
                if let Some(i) = rest.windows(2).position(|w| w == [':', ']']) {
                    let name: String = rest[..i].iter().collect();
                    let end = self.pos + 2 + i + 2;
                    let (neg, bare) = match name.strip_prefix('^') {
                        Some(b) => (true, b),
                        None => (false, name.as_str()),
                    };
                    let Some(ranges) = posix_group(bare) else {
                        return Err(format!(
                            "invalid character class range: `{}`",
                            self.src[self.pos..end].iter().collect::<String>()
                        ));
                    };
                    items.push(ClassItem::Group {
                        negated: neg,
                        ranges,
                    });
                    self.pos = end;
                    continue;
                }
            }
            if let Some(item) = self.parse_unicode_class()? {
                items.push(item);
                continue;
            }
            if self.peek(0) == Some('\\')
                && let Some((neg, ranges)) = self.peek(1).and_then(perl_group)
            {
                items.push(ClassItem::Group {
                    negated: neg,
                    ranges,
                });
                self.pos += 2;
                continue;
            }
            let range_start = self.pos;
            let lo = self.parse_class_char(class_start)?;
            let mut hi = lo;
            if self.peek(0) == Some('-') && self.peek(1).is_some_and(|c| c != ']') {
                self.pos += 1;
                hi = self.parse_class_char(class_start)?;
                if hi < lo {
                    return Err(format!(
                        "invalid character class range: `{}`",
                        self.text_from(range_start)
                    ));
                }
            }
            items.push(ClassItem::Range(lo, hi));
        }
        Ok((negated, items))
    }

    fn parse_class_char(&mut self, class_start: usize) -> Result<u32, String> {
        match self.peek(0) {
            None => Err(format!(
                "missing closing ]: `{}`",
                self.src[class_start..].iter().collect::<String>()
            )),
            Some('\\') => self.parse_escape(self.pos),
            Some(c) => {
                self.pos += 1;
                Ok(u32::from(c))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn re(go: &str) -> Regex {
        let rust = translate(go).unwrap_or_else(|e| panic!("translate({go:?}): {e}"));
        Regex::new(&rust).unwrap_or_else(|e| panic!("compile({rust:?}) from {go:?}: {e}"))
    }

    /// (Go expression, text, whether Go's regexp.MatchString says it matches).
    #[test]
    fn go_semantics_are_kept() {
        let cases: &[(&str, &str, bool)] = &[
            // Output of patternmatcher for ordinary patterns.
            (r"^[^/]*$", "abc", true),
            (r"^[^/]*$", "a/b", false),
            (r"^[^/]*$", "a\nb", true),
            (r"^(.*/)?dir2/[^/]*$", "dir/dir2/file", true),
            (r"^(.*/)?dir2/[^/]*$", "dir2/file", true),
            (r"^(.*/)?dir2/[^/]*$", "dir/dir2/a/b", false),
            (r"^\.[^/]*$", ".foo", true),
            (r"^\.[^/]*$", "xfoo", false),
            (r"^a[b-d]e$", "ace", true),
            (r"^a[^b-d]e$", "aze", true),
            (r"^a[^b-d]e$", "ace", false),
            (r"^.*$", "a\nb", false),
            // A user class that swallows the generated `[^/]` of a `*`: `[*]`.
            (r"^[[^/]*]$", "]", true),
            (r"^[[^/]*]$", "[^/]", true),
            (r"^[[^/]*]$", "x]", false),
            // POSIX classes are Go's, ASCII.
            (r"^[[:alpha:]]$", "a", true),
            (r"^[[:alpha:]]$", "é", false),
            (r"^[[:^alpha:]]$", "é", true),
            (r"^[[:digit:]x]$", "x", true),
            // `&&` is not an operator in Go classes.
            (r"^[a&&b]$", "&", true),
            (r"^[a&&b]$", "a", true),
            // Perl classes are ASCII in Go.
            (r"^\d$", "5", true),
            (r"^\d$", "٣", false),
            (r"^\w$", "é", false),
            (r"^[\W]$", "é", true),
            (r"^\s$", "\u{b}", false),
            // Unicode groups.
            (r"^\pL$", "é", true),
            (r"^\PL$", "é", false),
            (r"^[\pN]$", "٣", true),
            // Escapes.
            (r"^a\*b$", "a*b", true),
            (r"^a\.b$", "axb", false),
            (r"^\x41$", "A", true),
            (r"^\101$", "A", true),
            (r"^\0$", "\0", true),
            (r"^\t$", "\t", true),
            (r"^\Qa.b$", "a.b$", true),
            (r"^\Qa.b$", "xa.b$", false),
            (r"^\Qa\E.$", "ab", true),
            (r"^a\b$", "a", true),
            (r"^\A\z$", "", true),
            // `]` first in a class is literal; `-` last is literal.
            (r"^[]a]$", "]", true),
            (r"^[a-]$", "-", true),
            // `^` outside a class is an anchor.
            (r"^a^b$", "a^b", false),
            // `{` that is not a repeat is literal.
            (r"^a{x$", "a{x", true),
            (r"^a{2}$", "aa", true),
        ];
        for (go, text, want) in cases {
            assert_eq!(re(go).is_match(text), *want, "Go {go:?} on {text:?}");
        }
    }

    #[test]
    fn go_rejections_are_kept() {
        for go in [
            r"^[Local-Only]$", // l-O is a reversed range
            r"^a\y$",          // unknown escape
            r"^\1$",           // backreference
            r"^\8$",
            r"^\C$",
            r"^\E$",
            r"^[\b]$",
            r"^\p\{Greek\}$",
            r"^\pX$",
            r"^[[:foo:]]$",
            r"^\x4$",
            r"^[a$",
            r"^(a$",
            r"^a)$",
            "*",
            r"^a**$",
            r"^a*?*$",
            r"^(*)$",
            r"^a|*$",
            r"^\é$",
        ] {
            assert!(translate(go).is_err(), "Go rejects {go:?}");
        }
    }

    #[test]
    fn assertions_and_empty_quotes_can_be_repeated() {
        assert!(re(r"^*$").is_match("x"));
        assert!(re(r"a*\Q\E*").is_match("aaa"));
    }
}
