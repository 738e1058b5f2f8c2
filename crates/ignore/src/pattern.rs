//! Docker's pattern matcher (moby/patternmatcher): compiling patterns and
//! deciding whether a path, or one of its parent directories, matches them.
//!
//! Rules, in the order patternmatcher applies them:
//!
//! - Each pattern is trimmed of white space (empty ones are dropped) and cleaned
//!   like Go's `filepath.Clean` (`./a//b/` becomes `a/b`, `a/../b` becomes `b`).
//!   A leading `/` is *kept* here: a pattern `/a` never matches the relative
//!   path `a`. (`.dockerignore` files drop it while being read; COPY `--exclude`
//!   patterns are used as written.)
//! - A leading `!` (after cleaning) makes the pattern an exception; the text after
//!   it is not cleaned again. A lone `!` is an error.
//! - The pattern must be a valid Go `filepath.Match` pattern, or it is rejected
//!   when the matcher is built.
//! - `*` matches any run of characters other than `/`, `?` one character other
//!   than `/`, `[...]`/`[^...]` a class, `\` escapes the next character. `**`
//!   matches any number of directories (including none); a `**` at the very end
//!   matches everything below.
//! - A pattern that matches a directory also matches everything under it.
//! - Patterns are applied in order and the last one that matches decides:
//!   a path is matched when the last matching pattern is not an exception.
//!
//! Each pattern is compiled once, to a plain comparison when it has no wildcard
//! (exact, prefix for `dir/**`, suffix for `**/name`) and otherwise to a regular
//! expression. patternmatcher builds a Go regular expression in which parts of
//! the user's pattern are passed through, so some malformed patterns are only
//! rejected by Go's regexp compiler, and only when that pattern is first
//! evaluated; such a pattern keeps its error and reports it every time it is
//! evaluated, so that a pattern that is never reached (an exception when
//! nothing matched before it) is, as in BuildKit, never an error.

use regex::Regex;

use crate::gomatch::go_match;
use crate::gopath::{clean, dir};
use crate::goregex;

/// Why a pattern list was rejected, or a match could not be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// A pattern consisting of `!` alone.
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclamation,
    /// The pattern is not a valid shell pattern (for example an unclosed `[`,
    /// an empty `[]` class, a class starting with `-`, or a trailing `\`).
    #[error("syntax error in pattern {pattern:?}")]
    Syntax {
        /// The pattern as given, trimmed.
        pattern: String,
    },
    /// The pattern is a valid shell pattern but the regular expression that
    /// Docker builds from it is not (for example a reversed range `[z-a]`, or
    /// an escape such as `\y`).
    #[error("syntax error in pattern {pattern:?}: {reason}")]
    Regex {
        /// The pattern as given, trimmed.
        pattern: String,
        /// What the regular expression compiler objected to.
        reason: String,
    },
    /// A [`MatchInfo`] from a different matcher was passed in.
    #[error("wrong number of values in parent match info: got {got}, expected {expected}")]
    ParentInfoMismatch {
        /// The number of patterns of this matcher.
        expected: usize,
        /// The number of values in the match info.
        got: usize,
    },
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The pattern as given (trimmed), for error messages.
    source: String,
    /// The cleaned pattern without its leading `!`.
    cleaned: String,
    exclusion: bool,
    /// How many `/`-separated elements the cleaned pattern has.
    dirs: usize,
    kind: MatchKind,
}

#[derive(Debug, Clone)]
enum MatchKind {
    /// No wildcard: the path must equal the pattern.
    Exact,
    /// `something**`: the path must start with these bytes.
    Prefix(Vec<u8>),
    /// `**something`: the path must end with these bytes.
    Suffix(Vec<u8>),
    Regex(Regex),
    /// Go's regexp compiler rejects what the pattern compiles to.
    Invalid(String),
}

/// How the scanner classified the pattern while building the expression.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scanned {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// Characters that are special in a regular expression but not in a shell
/// pattern, and so are escaped.
const REGEX_ONLY_SPECIALS: &str = ".+()|{}$";

impl Pattern {
    fn compile(source: &str, cleaned: &str, exclusion: bool) -> Pattern {
        let kind = compile_kind(cleaned);
        Pattern {
            source: source.to_owned(),
            cleaned: cleaned.to_owned(),
            exclusion,
            dirs: cleaned.split('/').count(),
            kind,
        }
    }

    /// The cleaned pattern, without the `!` of an exception.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    /// Whether this pattern is an exception (`!pattern`).
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// Whether `path` itself (not a parent) matches this pattern, ignoring
    /// whether it is an exception.
    pub fn matches_path(&self, path: &str) -> Result<bool, PatternError> {
        Ok(match &self.kind {
            MatchKind::Exact => path == self.cleaned,
            MatchKind::Prefix(prefix) => path.as_bytes().starts_with(prefix),
            MatchKind::Suffix(suffix) => {
                let path = path.as_bytes();
                // `**/foo` also matches `foo` itself.
                path.ends_with(suffix) || (suffix.first() == Some(&b'/') && path == &suffix[1..])
            }
            MatchKind::Regex(re) => re.is_match(path),
            MatchKind::Invalid(reason) => {
                return Err(PatternError::Regex {
                    pattern: self.source.clone(),
                    reason: reason.clone(),
                });
            }
        })
    }

    /// Whether any parent directory of `path` (not `path` itself) matches.
    /// Errors are not possible here: the pattern was already evaluated on
    /// `path`, which reports them.
    fn matches_a_parent(&self, parent: &str) -> bool {
        if parent == "." {
            return false;
        }
        parent_prefixes(parent).any(|p| self.matches_path(p).unwrap_or(false))
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.cleaned)
    }
}

/// `a`, `a/b`, `a/b/c` for the directory `a/b/c` (as Go's split-and-join gives).
fn parent_prefixes(parent: &str) -> impl Iterator<Item = &str> {
    parent
        .match_indices('/')
        .map(move |(i, _)| &parent[..i])
        .chain(std::iter::once(parent))
}

/// Builds the matcher for a cleaned pattern the way patternmatcher's
/// `compile` does, character by character.
fn compile_kind(pattern: &str) -> MatchKind {
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut scanned = Scanned::Exact;
    // Go's text/scanner silently skips a byte order mark at the start.
    let mut pos = usize::from(chars.first() == Some(&'\u{FEFF}'));
    let mut index = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                // `**/` is treated as `**`.
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos == chars.len() {
                    // A trailing `**` accepts everything, as in .gitignore.
                    if scanned == Scanned::Exact {
                        scanned = Scanned::Prefix;
                    } else {
                        re.push_str(".*");
                        scanned = Scanned::Regex;
                    }
                } else {
                    // Any number of directories, including none.
                    re.push_str("(.*/)?");
                    scanned = Scanned::Regex;
                }
                if index == 0 {
                    scanned = Scanned::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                scanned = Scanned::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                scanned = Scanned::Regex;
            }
            c if REGEX_ONLY_SPECIALS.contains(c) => {
                re.push('\\');
                re.push(c);
            }
            '\\' => match chars.get(pos) {
                Some(&next) => {
                    re.push('\\');
                    re.push(next);
                    pos += 1;
                    scanned = Scanned::Regex;
                }
                None => re.push('\\'),
            },
            '[' | ']' => {
                re.push(ch);
                scanned = Scanned::Regex;
            }
            c => re.push(c),
        }
        index += 1;
    }
    let bytes = pattern.as_bytes();
    match scanned {
        Scanned::Exact => MatchKind::Exact,
        // The trailing `**`, as bytes of the pattern.
        Scanned::Prefix => MatchKind::Prefix(bytes[..bytes.len().saturating_sub(2)].to_vec()),
        // The leading `**`, as bytes of the pattern.
        Scanned::Suffix => MatchKind::Suffix(bytes.get(2..).unwrap_or_default().to_vec()),
        Scanned::Regex => {
            re.push('$');
            match goregex::translate(&re)
                .and_then(|rust| Regex::new(&rust).map_err(|e| e.to_string()))
            {
                Ok(re) => MatchKind::Regex(re),
                Err(reason) => MatchKind::Invalid(reason),
            }
        }
    }
}

/// What a directory's evaluation recorded for its children: for each pattern,
/// whether it matched the directory or one of its parents. The empty value
/// (the [`Default`]) means "no information", as for an entry at the root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchInfo {
    parent_matched: Vec<bool>,
}

impl MatchInfo {
    /// Whether this carries no information (the value for the walk root).
    pub fn is_empty(&self) -> bool {
        self.parent_matched.is_empty()
    }
}

/// An ordered list of Docker ignore patterns, compiled.
///
/// ```
/// use kiln_ignore::PatternMatcher;
///
/// let pm = PatternMatcher::new(["docs", "!docs/README.md", "**/*.tmp"])?;
/// assert!(pm.matches_or_parent_matches("docs/guide.md")?);
/// assert!(!pm.matches_or_parent_matches("docs/README.md")?);
/// assert!(pm.matches_or_parent_matches("src/a/b.tmp")?);
/// assert!(pm.exclusions());
/// # Ok::<(), kiln_ignore::PatternError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PatternMatcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl PatternMatcher {
    /// Compiles `patterns` in order. Fails on a lone `!` or a pattern that is
    /// not a valid shell pattern, naming it.
    pub fn new<I, S>(patterns: I) -> Result<PatternMatcher, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut compiled = Vec::new();
        let mut exclusions = false;
        for pattern in patterns {
            let source = pattern.as_ref().trim();
            if source.is_empty() {
                continue;
            }
            let cleaned = clean(source);
            let (exclusion, body) = match cleaned.strip_prefix('!') {
                Some("") => return Err(PatternError::LoneExclamation),
                Some(rest) => (true, rest),
                None => (false, cleaned.as_str()),
            };
            exclusions |= exclusion;
            if go_match(body, ".").is_err() {
                return Err(PatternError::Syntax {
                    pattern: source.to_owned(),
                });
            }
            compiled.push(Pattern::compile(source, body, exclusion));
        }
        Ok(PatternMatcher {
            patterns: compiled,
            exclusions,
        })
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is an exception (`!pattern`).
    pub fn exclusions(&self) -> bool {
        self.exclusions
    }

    /// patternmatcher's original `Matches`: like
    /// [`matches_or_parent_matches`](Self::matches_or_parent_matches) but a
    /// pattern is tried only on the one parent directory that has as many
    /// elements as the pattern. BuildKit no longer uses it; kept for parity.
    pub fn matches(&self, file: &str) -> Result<bool, PatternError> {
        let parent = dir(file);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for pattern in &self.patterns {
            // Only an exception can undo a match, only a non-exception can make one.
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.matches_path(file)?;
            if !hit && parent != "." && pattern.dirs <= parent_dirs.len() {
                let candidate = parent_dirs[..pattern.dirs].join("/");
                hit = pattern.matches_path(&candidate).unwrap_or(false);
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        Ok(matched)
    }

    /// Whether `file` (a relative, `/`-separated path) is matched: the last
    /// pattern that matches it or any of its parent directories is not an
    /// exception.
    pub fn matches_or_parent_matches(&self, file: &str) -> Result<bool, PatternError> {
        let parent = dir(file);
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let hit = pattern.matches_path(file)? || pattern.matches_a_parent(&parent);
            if hit {
                matched = !pattern.exclusion;
            }
        }
        Ok(matched)
    }

    /// The incremental form used while walking a tree: `parent` is what this
    /// call returned for the parent directory of `file` (or the empty
    /// [`MatchInfo`] for an entry of the root, or when nothing is known, in which
    /// case the parent directories are checked as
    /// [`matches_or_parent_matches`](Self::matches_or_parent_matches) does).
    /// Returns whether `file` is matched and the information for its children.
    ///
    /// A pattern that matched the parent counts as matching `file`. Patterns
    /// are skipped, and recorded as not matching, when they cannot change the
    /// result at their position (an exception while nothing is matched, or a
    /// non-exception while already matched); this is BuildKit's behaviour and
    /// can differ from `matches_or_parent_matches` in rare cases, e.g. for
    /// `["a/b", "!a"]` the path `a/b/c` is matched here but not there.
    pub fn matches_using_parent_results(
        &self,
        file: &str,
        parent: &MatchInfo,
    ) -> Result<(bool, MatchInfo), PatternError> {
        let mut info = Vec::with_capacity(self.patterns.len());
        let matched = self.match_incremental(file, parent, Some(&mut info))?;
        Ok((
            matched,
            MatchInfo {
                parent_matched: info,
            },
        ))
    }

    /// [`matches_using_parent_results`](Self::matches_using_parent_results)
    /// without building the information for children (for files).
    pub(crate) fn match_incremental(
        &self,
        file: &str,
        parent: &MatchInfo,
        mut info: Option<&mut Vec<bool>>,
    ) -> Result<bool, PatternError> {
        let parent_matched = &parent.parent_matched;
        if !parent_matched.is_empty() && parent_matched.len() != self.patterns.len() {
            return Err(PatternError::ParentInfoMismatch {
                expected: self.patterns.len(),
                got: parent_matched.len(),
            });
        }
        let mut parent_path: Option<String> = None;
        let mut matched = false;
        for (i, pattern) in self.patterns.iter().enumerate() {
            // If the parent matched this pattern, so does this path.
            let mut hit = parent_matched.get(i).copied().unwrap_or(false);
            if !hit {
                if pattern.exclusion != matched {
                    if let Some(info) = info.as_deref_mut() {
                        info.push(false);
                    }
                    continue;
                }
                hit = pattern.matches_path(file)?;
                if !hit && parent_matched.is_empty() {
                    let parent = parent_path.get_or_insert_with(|| dir(file));
                    hit = pattern.matches_a_parent(parent);
                }
            }
            if let Some(info) = info.as_deref_mut() {
                info.push(hit);
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        Ok(matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Like patternmatcher's package-level `Matches`: the path is cleaned and
    /// `.` never matches.
    fn legacy(file: &str, patterns: &[&str]) -> Result<bool, PatternError> {
        let pm = PatternMatcher::new(patterns)?;
        let file = clean(file);
        if file == "." {
            return Ok(false);
        }
        pm.matches(&file)
    }

    /// Evaluates `text` incrementally from the root, as a walk does.
    fn incremental(pm: &PatternMatcher, text: &str) -> bool {
        let parent = dir(text);
        let mut info = MatchInfo::default();
        if parent != "." {
            for p in parent_prefixes(&parent) {
                info = pm.matches_using_parent_results(p, &info).unwrap().1;
            }
        }
        pm.matches_using_parent_results(text, &info).unwrap().0
    }

    /// (pattern, path, matched) from patternmatcher's TestMatches.
    const SINGLE: &[(&str, &str, bool)] = &[
        ("**", "file", true),
        ("**", "file/", true),
        ("**/", "file", true),
        ("**/", "file/", true),
        ("**", "/", true),
        ("**/", "/", true),
        ("**", "dir/file", true),
        ("**/", "dir/file", true),
        ("**", "dir/file/", true),
        ("**/", "dir/file/", true),
        ("**/**", "dir/file", true),
        ("**/**", "dir/file/", true),
        ("dir/**", "dir/file", true),
        ("dir/**", "dir/file/", true),
        ("dir/**", "dir/dir2/file", true),
        ("dir/**", "dir/dir2/file/", true),
        ("**/dir", "dir", true),
        ("**/dir", "dir/file", true),
        ("**/dir2/*", "dir/dir2/file", true),
        ("**/dir2/*", "dir/dir2/file/", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**/dir2/**", "dir/dir2/dir3/file/", true),
        ("**file", "file", true),
        ("**file", "dir/file", true),
        ("**/file", "dir/file", true),
        ("**file", "dir/dir/file", true),
        ("**/file", "dir/dir/file", true),
        ("**/file*", "dir/dir/file", true),
        ("**/file*", "dir/dir/file.txt", true),
        ("**/file*txt", "dir/dir/file.txt", true),
        ("**/file*.txt", "dir/dir/file.txt", true),
        ("**/file*.txt*", "dir/dir/file.txt", true),
        ("**/**/*.txt", "dir/dir/file.txt", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("**/*.txt", "file.txt", true),
        ("**/**/*.txt", "file.txt", true),
        ("a**/*.txt", "a/file.txt", true),
        ("a**/*.txt", "a/dir/file.txt", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("a/*.txt", "a/dir/file.txt", false),
        ("a/*.txt", "a/file.txt", true),
        ("a/*.txt**", "a/file.txt", true),
        ("a[b-d]e", "ae", false),
        ("a[b-d]e", "ace", true),
        ("a[b-d]e", "aae", false),
        ("a[^b-d]e", "aze", true),
        (".*", ".foo", true),
        (".*", "foo", false),
        ("abc.def", "abcdef", false),
        ("abc.def", "abc.def", true),
        ("abc.def", "abcZdef", false),
        ("abc?def", "abcZdef", true),
        ("abc?def", "abcdef", false),
        ("a\\\\", "a\\", true),
        ("**/foo/bar", "foo/bar", true),
        ("**/foo/bar", "dir/foo/bar", true),
        ("**/foo/bar", "dir/dir2/foo/bar", true),
        ("abc/**", "abc", false),
        ("abc/**", "abc/def", true),
        ("abc/**", "abc/def/ghi", true),
        ("**/.foo", ".foo", true),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a(b)c/def", "a(b)c/xyz", false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        (
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        ("a\\*b", "a*b", true),
    ];

    /// (patterns, path, matched) from patternmatcher's TestMatches.
    const MULTI: &[(&[&str], &str, bool)] = &[
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            true,
        ),
        (
            &[
                "**",
                "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            ],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
        (
            &["**", "!dist/*.whl"],
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            false,
        ),
    ];

    #[test]
    fn matches_or_parent_matches_table() {
        for &(pattern, text, want) in SINGLE {
            let pm = PatternMatcher::new([pattern]).unwrap();
            assert_eq!(
                pm.matches_or_parent_matches(text).unwrap(),
                want,
                "{pattern:?} on {text:?}"
            );
        }
        for &(patterns, text, want) in MULTI {
            let pm = PatternMatcher::new(patterns).unwrap();
            assert_eq!(
                pm.matches_or_parent_matches(text).unwrap(),
                want,
                "{patterns:?} on {text:?}"
            );
        }
    }

    #[test]
    fn incremental_matching_table() {
        for &(pattern, text, want) in SINGLE {
            let pm = PatternMatcher::new([pattern]).unwrap();
            assert_eq!(incremental(&pm, text), want, "{pattern:?} on {text:?}");
            // Without parent information the parents are checked directly.
            let (got, _) = pm
                .matches_using_parent_results(text, &MatchInfo::default())
                .unwrap();
            assert_eq!(got, want, "{pattern:?} on {text:?} without context");
        }
        for &(patterns, text, want) in MULTI {
            let pm = PatternMatcher::new(patterns).unwrap();
            assert_eq!(incremental(&pm, text), want, "{patterns:?} on {text:?}");
            let (got, _) = pm
                .matches_using_parent_results(text, &MatchInfo::default())
                .unwrap();
            assert_eq!(got, want, "{patterns:?} on {text:?} without context");
        }
    }

    #[test]
    fn legacy_matches_table() {
        let cases: &[(&str, &[&str], bool)] = &[
            ("fileutils.go", &["*"], true),
            ("fileutils.go", &["*.go"], true),
            ("fileutils.go", &["!fileutils.go", "*.go"], true),
            ("docs/README.md", &["docs", "!docs/README.md"], false),
            ("docs/README.md", &["docs/", "!docs/README.md"], false),
            ("docs/README.md", &["docs/*", "!docs/README.md"], false),
            ("fileutils.go", &["*.go", "!fileutils.go"], false),
            (".", &["*.go"], false),
            ("/any/path/there", &[], false),
            // Go's filepath.Match table.
            ("abc", &["abc"], true),
            ("abc", &["*"], true),
            ("abc", &["*c"], true),
            ("a", &["a*"], true),
            ("abc", &["a*"], true),
            // The parent `ab` matches `a*`.
            ("ab/c", &["a*"], true),
            ("abc/b", &["a*/b"], true),
            ("a/c/b", &["a*/b"], false),
            ("axbxcxdxe/f", &["a*b*c*d*e*/f"], true),
            ("axbxcxdxexxx/f", &["a*b*c*d*e*/f"], true),
            ("axbxcxdxe/xxx/f", &["a*b*c*d*e*/f"], false),
            ("axbxcxdxexxx/fff", &["a*b*c*d*e*/f"], false),
            ("abxbbxdbxebxczzx", &["a*b?c*x"], true),
            ("abxbbxdbxebxczzy", &["a*b?c*x"], false),
            ("abc", &["ab[c]"], true),
            ("abc", &["ab[b-d]"], true),
            ("abc", &["ab[e-g]"], false),
            ("abc", &["ab[^c]"], false),
            ("abc", &["ab[^b-d]"], false),
            ("abc", &["ab[^e-g]"], true),
            ("a*b", &["a\\*b"], true),
            ("ab", &["a\\*b"], false),
            ("a☺b", &["a?b"], true),
            ("a☺b", &["a[^a]b"], true),
            ("a☺b", &["a???b"], false),
            ("a☺b", &["a[^a][^a][^a]b"], false),
            ("α", &["[a-ζ]*"], true),
            ("A", &["*[a-ζ]"], false),
            ("a/b", &["a?b"], false),
            ("a/b", &["a*b"], false),
            ("]", &["[\\]a]"], true),
            ("-", &["[\\-]"], true),
            ("x", &["[x\\-]"], true),
            ("-", &["[x\\-]"], true),
            ("z", &["[x\\-]"], false),
            ("x", &["[\\-x]"], true),
            ("-", &["[\\-x]"], true),
            ("a", &["[\\-x]"], false),
            ("xxx", &["*x"], true),
        ];
        for &(file, patterns, want) in cases {
            assert_eq!(
                legacy(file, patterns),
                Ok(want),
                "Matches({file:?}, {patterns:?})"
            );
        }
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
        ] {
            assert_eq!(
                legacy("a", &[bad]),
                Err(PatternError::Syntax {
                    pattern: bad.to_owned()
                }),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn legacy_matches_checks_only_one_parent() {
        // The pattern has one element, so only `a` is tried as a parent.
        let pm = PatternMatcher::new(["b"]).unwrap();
        assert!(!pm.matches("a/b/c").unwrap());
        assert!(!pm.matches_or_parent_matches("a/b/c").unwrap());
        let pm = PatternMatcher::new(["a/b"]).unwrap();
        assert!(pm.matches("a/b/c").unwrap());
        let pm = PatternMatcher::new(["*/b"]).unwrap();
        assert!(pm.matches("a/b/c/d").unwrap());
        let pm = PatternMatcher::new(["b*"]).unwrap();
        assert!(!pm.matches("a/bc/d").unwrap());
    }

    #[test]
    fn compiled_kinds_are_patternmatchers() {
        let kind = |p: &str| match compile_kind(&clean(p)) {
            MatchKind::Exact => "exact",
            MatchKind::Prefix(_) => "prefix",
            MatchKind::Suffix(_) => "suffix",
            MatchKind::Regex(_) => "regex",
            MatchKind::Invalid(_) => "invalid",
        };
        let cases = [
            ("*", "regex"),
            ("file*", "regex"),
            ("*file", "regex"),
            ("a*/b", "regex"),
            ("**", "suffix"),
            ("**/**", "regex"),
            ("dir/**", "prefix"),
            ("**/dir", "suffix"),
            ("**/dir2/*", "regex"),
            ("**/dir2/**", "regex"),
            ("**file", "suffix"),
            ("**/file*txt", "regex"),
            ("**/**/*.txt", "regex"),
            ("a[b-d]e", "regex"),
            (".*", "regex"),
            ("abc.def", "exact"),
            ("abc?def", "regex"),
            ("**/foo/bar", "suffix"),
            ("a(b)c/def", "exact"),
            ("a.|)$(}+{bc", "exact"),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "exact",
            ),
            ("[Local-Only]", "invalid"),
        ];
        for (pattern, want) in cases {
            assert_eq!(kind(pattern), want, "{pattern:?}");
        }
    }

    #[test]
    fn cleaning_and_exceptions() {
        let pm = PatternMatcher::new(["docs", "config", ""]).unwrap();
        assert_eq!(pm.patterns().len(), 2);
        assert!(!pm.exclusions());
        for list in [
            ["docs", "!docs/README.md"],
            ["docs", "  !docs/README.md"],
            ["docs", "!docs/README.md  "],
        ] {
            let pm = PatternMatcher::new(list).unwrap();
            assert!(pm.exclusions(), "{list:?}");
            assert_eq!(pm.patterns()[1].as_str(), "docs/README.md");
            assert!(pm.patterns()[1].is_exclusion());
        }
        assert_eq!(
            PatternMatcher::new(["!"]).unwrap_err(),
            PatternError::LoneExclamation
        );
        assert_eq!(
            PatternMatcher::new(["  !  "]).unwrap_err(),
            PatternError::LoneExclamation
        );
        // `! foo` cleans to `! foo`: an exception for " foo".
        let pm = PatternMatcher::new(["! foo"]).unwrap();
        assert_eq!(pm.patterns()[0].as_str(), " foo");
        let pm = PatternMatcher::new(["./a//b/../c/", "a/./*.txt"]).unwrap();
        assert_eq!(pm.patterns()[0].as_str(), "a/c");
        assert_eq!(pm.patterns()[1].as_str(), "a/*.txt");
    }

    #[test]
    fn leading_slash_and_dots_in_matcher_patterns() {
        // The matcher keeps a leading `/`: such a pattern matches no relative path.
        let pm = PatternMatcher::new(["/build"]).unwrap();
        assert!(!pm.matches_or_parent_matches("build").unwrap());
        assert!(pm.matches_or_parent_matches("/build/x").unwrap());
        // `./` and `..` are cleaned away.
        let pm = PatternMatcher::new(["./tmp"]).unwrap();
        assert!(pm.matches_or_parent_matches("tmp/x").unwrap());
        let pm = PatternMatcher::new(["a/../b"]).unwrap();
        assert!(pm.matches_or_parent_matches("b").unwrap());
        assert!(!pm.matches_or_parent_matches("a/b").unwrap());
        // A `..` that climbs out stays and matches nothing inside the context.
        let pm = PatternMatcher::new(["../x"]).unwrap();
        assert!(!pm.matches_or_parent_matches("x").unwrap());
        // The text after `!` is not cleaned again.
        let pm = PatternMatcher::new(["*", "!./keep"]).unwrap();
        assert!(pm.matches_or_parent_matches("keep").unwrap());
    }

    #[test]
    fn last_match_wins() {
        let pm = PatternMatcher::new(["!keep*", "keep-not*", "*.bak", "!important.bak"]).unwrap();
        assert!(!pm.matches_or_parent_matches("keep-a").unwrap());
        assert!(pm.matches_or_parent_matches("keep-not-b").unwrap());
        assert!(pm.matches_or_parent_matches("x.bak").unwrap());
        assert!(!pm.matches_or_parent_matches("important.bak").unwrap());
    }

    #[test]
    fn trailing_slash_and_directories() {
        let pm = PatternMatcher::new(["secret/"]).unwrap();
        assert_eq!(pm.patterns()[0].as_str(), "secret");
        assert!(pm.matches_or_parent_matches("secret").unwrap());
        assert!(pm.matches_or_parent_matches("secret/k").unwrap());
        assert!(!pm.matches_or_parent_matches("secrets").unwrap());
        assert!(!pm.matches_or_parent_matches("a/secret").unwrap());
    }

    #[test]
    fn backslashes_are_escapes_not_separators() {
        let pm = PatternMatcher::new(["a\\-b"]).unwrap();
        assert!(pm.matches_or_parent_matches("a-b").unwrap());
        assert!(!pm.matches_or_parent_matches("a/-b").unwrap());
        assert!(!pm.matches_or_parent_matches("a\\-b").unwrap());
        // `\b` reaches Go's regexp as a word boundary: `a\b` matches `a`.
        let pm = PatternMatcher::new(["a\\b"]).unwrap();
        assert!(pm.matches_or_parent_matches("a").unwrap());
        assert!(!pm.matches_or_parent_matches("ab").unwrap());
        assert!(!pm.matches_or_parent_matches("a\\b").unwrap());
        let pm = PatternMatcher::new(["dir\\\\*"]).unwrap();
        assert!(pm.matches_or_parent_matches("dir\\file").unwrap());
        assert!(!pm.matches_or_parent_matches("dir/file").unwrap());
        let pm = PatternMatcher::new(["a\\?", "b\\[x]", "c\\*\\*"]).unwrap();
        assert!(pm.matches_or_parent_matches("a?").unwrap());
        assert!(!pm.matches_or_parent_matches("ab").unwrap());
        assert!(pm.matches_or_parent_matches("b[x]").unwrap());
        assert!(pm.matches_or_parent_matches("c**").unwrap());
        assert!(!pm.matches_or_parent_matches("cxx").unwrap());
    }

    #[test]
    fn regexp_errors_are_lazy_and_name_the_pattern() {
        // Valid for filepath.Match, rejected by Go's regexp: `l-O` is reversed.
        let pm = PatternMatcher::new(["[Local-Only]/"]).unwrap();
        for _ in 0..2 {
            let err = pm.matches_or_parent_matches("x").unwrap_err();
            assert!(
                matches!(&err, PatternError::Regex { pattern, .. } if pattern == "[Local-Only]/"),
                "{err}"
            );
            assert!(err.to_string().contains("[Local-Only]/"), "{err}");
        }
        // An exception is only evaluated once something matched before it.
        let pm = PatternMatcher::new(["a", "!b\\y"]).unwrap();
        assert_eq!(pm.matches_or_parent_matches("c"), Ok(false));
        assert!(pm.matches_or_parent_matches("a").is_err());
        let (res, _) = pm
            .matches_using_parent_results("c", &MatchInfo::default())
            .unwrap();
        assert!(!res);
    }

    #[test]
    fn go_regexp_quirks_are_kept() {
        let check = |pattern: &str, path: &str, want: bool| {
            let pm = PatternMatcher::new([pattern]).unwrap();
            assert_eq!(
                pm.matches_or_parent_matches(path),
                Ok(want),
                "{pattern:?} on {path:?}"
            );
        };
        // An escaped letter is a Go regexp escape: `\d` is a digit class.
        check("file\\d", "file1", true);
        check("file\\d", "filed", false);
        // `^` is only special to the regexp, and only when one is built.
        check("a^b", "a^b", true);
        check("a^b*", "a^b", false);
        // POSIX classes pass through.
        check("[[:digit:]]*", "1abc", true);
        check("[[:digit:]]*", "abc", false);
        // A `*` inside a class becomes part of a class in the regexp.
        check("[*]", "]", true);
        check("[*]", "*", false);
        // No gitignore-style `[!...]` negation: `!` is a member of the class.
        check("[!a]b", "!b", true);
        check("[!a]b", "ab", true);
        check("[!a]b", "cb", false);
        // No brace expansion, no case folding.
        check("*.{js,ts}", "x.{js,ts}", true);
        check("*.{js,ts}", "x.js", false);
        check("*.TXT", "a.txt", false);
        // `\Q` quotes the rest, including the end anchor.
        check("a\\Qb", "ab$", true);
        check("a\\Qb", "ab$/c", true);
        check("a\\Qb", "ab", false);
    }

    #[test]
    fn parent_info_from_another_matcher_is_an_error() {
        let one = PatternMatcher::new(["a"]).unwrap();
        let two = PatternMatcher::new(["a", "b"]).unwrap();
        let (_, info) = one
            .matches_using_parent_results("a", &MatchInfo::default())
            .unwrap();
        assert_eq!(
            two.matches_using_parent_results("a/x", &info).unwrap_err(),
            PatternError::ParentInfoMismatch {
                expected: 2,
                got: 1
            }
        );
    }

    #[test]
    fn incremental_differs_from_parent_matching_as_buildkit_does() {
        let pm = PatternMatcher::new(["a/b", "!a"]).unwrap();
        assert!(!pm.matches_or_parent_matches("a/b/c").unwrap());
        assert!(incremental(&pm, "a/b/c"));
    }

    #[test]
    fn byte_order_mark_is_skipped_by_the_regexp_scanner() {
        let pm = PatternMatcher::new(["\u{FEFF}foo*"]).unwrap();
        assert!(pm.matches_or_parent_matches("foobar").unwrap());
        // Without a wildcard the pattern is compared as written.
        let pm = PatternMatcher::new(["\u{FEFF}foo"]).unwrap();
        assert!(!pm.matches_or_parent_matches("foo").unwrap());
    }
}
