//! The per-path decision of fsutil's filtered walk: given include and exclude
//! pattern lists, whether an entry is sent, skipped while its directory is
//! still walked, or pruned with everything under it.

use crate::pattern::{MatchInfo, PatternError, PatternMatcher};

/// Characters that make a pattern more than a plain path prefix (fsutil's
/// `patternChars` on Unix).
const PATTERN_CHARS: &[char] = &['*', '[', ']', '?', '^', '\\'];

/// Which list a pattern belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternList {
    /// The include patterns (COPY `--parents` sources, follow-paths).
    Include,
    /// The exclude patterns (`.dockerignore`, COPY/ADD `--exclude`).
    Exclude,
}

impl std::fmt::Display for PatternList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PatternList::Include => "include",
            PatternList::Exclude => "exclude",
        })
    }
}

/// Why a [`Filter`] could not be built or could not decide.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// A pattern list does not compile.
    #[error("invalid {list} patterns: {source}")]
    InvalidPatterns {
        /// The list the bad pattern is in.
        list: PatternList,
        /// What is wrong with it.
        source: PatternError,
    },
    /// A pattern could only be judged invalid when it was first used.
    #[error("failed to match {list} patterns: {source}")]
    Match {
        /// The list the bad pattern is in.
        list: PatternList,
        /// What is wrong with it.
        source: PatternError,
    },
}

/// What a directory's check records for checking its entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirState {
    include: MatchInfo,
    exclude: MatchInfo,
}

/// The decision for one entry; see [`Filter`] for how a walker uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send the entry (after its unsent ancestors). For a directory, walk its
    /// entries with this state.
    Include(DirState),
    /// Do not send the entry. For a directory, walk its entries with this
    /// state and send it just before the first of them that is included.
    Exclude(DirState),
    /// A directory that neither it nor anything inside it is selected: do not
    /// send it and do not walk into it.
    Prune,
}

/// Include and exclude patterns compiled for checking paths one by one, with
/// the results of fsutil's filtered walk.
///
/// An entry is selected when it matches the include patterns (if any are
/// given; a directory matching them includes everything under it, subject to
/// `!` exceptions in the same list) and does not match the exclude patterns.
///
/// A caller walking a tree on its own (over a snapshot, or in parallel) gets
/// BuildKit's selection by following these rules:
///
/// 1. Visit entries depth-first; each directory's entries in byte order of
///    their names; paths relative to the walk root, `/`-separated; the root
///    itself is not an entry.
/// 2. Call [`Filter::check`] with the [`DirState`] that the parent directory's
///    check returned (the [`DirState::default`] for entries of the root).
/// 3. [`Verdict::Include`]: send the entry, but first send every ancestor
///    directory that was not sent yet (see 4), outermost first, each with its
///    own metadata. For a directory, walk its entries with the returned state.
/// 4. [`Verdict::Exclude`]: do not send it. A directory is still walked with
///    the returned state, and is sent later, just before the first entry
///    inside it that is included; if none is, it is never sent.
/// 5. [`Verdict::Prune`] (directories only): do not send it or walk into it;
///    no pattern can select anything inside it.
///
/// The symlinks in a tree are entries like files: never followed.
///
/// ```
/// use kiln_ignore::{DirState, Filter, Verdict};
///
/// let filter = Filter::new::<&str>(&[], &["node_modules", "!node_modules/keep"])?;
/// let root = DirState::default();
/// let Verdict::Exclude(inside) = filter.check("node_modules", true, &root)? else { panic!() };
/// assert!(matches!(filter.check("node_modules/keep", false, &inside)?, Verdict::Include(_)));
/// assert!(matches!(filter.check("node_modules/dep", true, &inside)?, Verdict::Prune));
/// # Ok::<(), kiln_ignore::FilterError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Filter {
    include: Option<PatternMatcher>,
    exclude: Option<PatternMatcher>,
    /// With only plain-path include patterns, a directory that no include
    /// pattern reaches into can be pruned: these are their paths with `/`.
    include_prefixes: Option<Vec<String>>,
    /// Likewise for the exceptions of the exclude patterns.
    exception_prefixes: Option<Vec<String>>,
}

/// The pattern without a trailing `/**` or `/*` (fsutil's
/// `patternWithoutTrailingGlob`).
fn without_trailing_glob(pattern: &str) -> &str {
    let p = pattern.strip_suffix("/**").unwrap_or(pattern);
    p.strip_suffix("/*").unwrap_or(p)
}

/// When every selected pattern (`exceptions` or not) is a plain path once a
/// trailing glob is removed, those paths with a `/` appended; otherwise `None`.
fn plain_prefixes(matcher: &PatternMatcher, exceptions: bool) -> Option<Vec<String>> {
    let mut prefixes = Vec::new();
    for pattern in matcher
        .patterns()
        .iter()
        .filter(|p| p.is_exclusion() == exceptions)
    {
        let stripped = without_trailing_glob(pattern.as_str());
        if stripped.contains(PATTERN_CHARS) {
            return None;
        }
        prefixes.push(format!("{stripped}/"));
    }
    Some(prefixes)
}

/// Whether some prefix lies inside the directory `dir` (or is `dir/` itself).
fn reaches_into(prefixes: &[String], dir: &str) -> bool {
    prefixes
        .iter()
        .any(|p| p.len() > dir.len() && p.starts_with(dir) && p.as_bytes()[dir.len()] == b'/')
}

impl Filter {
    /// Compiles the two lists. An empty list imposes nothing; a non-empty
    /// include list whose patterns are all blank selects nothing, as in BuildKit.
    pub fn new<S: AsRef<str>>(
        include_patterns: &[S],
        exclude_patterns: &[S],
    ) -> Result<Filter, FilterError> {
        let compile = |patterns: &[S], list| {
            if patterns.is_empty() {
                return Ok(None);
            }
            PatternMatcher::new(patterns)
                .map(Some)
                .map_err(|source| FilterError::InvalidPatterns { list, source })
        };
        let include = compile(include_patterns, PatternList::Include)?;
        let exclude = compile(exclude_patterns, PatternList::Exclude)?;
        Ok(Filter {
            include_prefixes: include.as_ref().and_then(|m| plain_prefixes(m, false)),
            exception_prefixes: exclude.as_ref().and_then(|m| plain_prefixes(m, true)),
            include,
            exclude,
        })
    }

    /// Whether the filter has no patterns at all (everything is selected).
    pub fn is_empty(&self) -> bool {
        self.include.is_none() && self.exclude.is_none()
    }

    /// The include patterns, if any were given.
    pub fn include(&self) -> Option<&PatternMatcher> {
        self.include.as_ref()
    }

    /// The exclude patterns, if any were given.
    pub fn exclude(&self) -> Option<&PatternMatcher> {
        self.exclude.as_ref()
    }

    /// Decides for the entry at `path` (relative, `/`-separated), given the
    /// state its parent directory's check returned.
    pub fn check(
        &self,
        path: &str,
        is_dir: bool,
        parent: &DirState,
    ) -> Result<Verdict, FilterError> {
        let mut state = DirState::default();
        let mut skip = false;

        if let Some(include) = &self.include {
            let (matched, info) =
                incremental(include, path, is_dir, &parent.include, PatternList::Include)?;
            state.include = info;
            if !matched {
                if is_dir
                    && let Some(prefixes) = &self.include_prefixes
                    && !reaches_into(prefixes, path)
                {
                    return Ok(Verdict::Prune);
                }
                skip = true;
            }
        }

        if let Some(exclude) = &self.exclude {
            let (matched, info) =
                incremental(exclude, path, is_dir, &parent.exclude, PatternList::Exclude)?;
            state.exclude = info;
            if matched {
                if is_dir
                    && let Some(prefixes) = &self.exception_prefixes
                    && (!exclude.exclusions() || !reaches_into(prefixes, path))
                {
                    return Ok(Verdict::Prune);
                }
                skip = true;
            }
        }

        Ok(if skip {
            Verdict::Exclude(state)
        } else {
            Verdict::Include(state)
        })
    }

    /// Whether the single path `path` is selected, judging it and its parent
    /// directories directly (fsutil's filtered `Open`).
    pub fn is_selected(&self, path: &str) -> Result<bool, FilterError> {
        if let Some(include) = &self.include {
            let matched =
                include
                    .matches_or_parent_matches(path)
                    .map_err(|source| FilterError::Match {
                        list: PatternList::Include,
                        source,
                    })?;
            if !matched {
                return Ok(false);
            }
        }
        if let Some(exclude) = &self.exclude {
            let matched =
                exclude
                    .matches_or_parent_matches(path)
                    .map_err(|source| FilterError::Match {
                        list: PatternList::Exclude,
                        source,
                    })?;
            if matched {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Runs the incremental match, building the state for children only for
/// directories.
fn incremental(
    matcher: &PatternMatcher,
    path: &str,
    is_dir: bool,
    parent: &MatchInfo,
    list: PatternList,
) -> Result<(bool, MatchInfo), FilterError> {
    let result = if is_dir {
        matcher.matches_using_parent_results(path, parent)
    } else {
        matcher
            .match_incremental(path, parent, None)
            .map(|m| (m, MatchInfo::default()))
    };
    result.map_err(|source| FilterError::Match { list, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks a list of `(path, is_dir)` given in walk order through the filter
    /// the way fsutil does, returning what is sent.
    pub(crate) fn simulate(filter: &Filter, tree: &[(&str, bool)]) -> Vec<String> {
        // (directory path, its state, whether sent)
        let mut stack: Vec<(String, DirState, bool)> = Vec::new();
        let mut pruned: Option<String> = None;
        let mut sent = Vec::new();
        for &(path, is_dir) in tree {
            if let Some(p) = &pruned {
                if path.starts_with(&format!("{p}/")) {
                    continue;
                }
                pruned = None;
            }
            while let Some((dir, _, _)) = stack.last() {
                if path.starts_with(&format!("{dir}/")) {
                    break;
                }
                stack.pop();
            }
            let parent = stack.last().map(|(_, s, _)| s.clone()).unwrap_or_default();
            match filter.check(path, is_dir, &parent).unwrap() {
                Verdict::Prune => pruned = Some(path.to_owned()),
                Verdict::Exclude(state) => {
                    if is_dir {
                        stack.push((path.to_owned(), state, false));
                    }
                }
                Verdict::Include(state) => {
                    for (dir, _, was_sent) in stack.iter_mut() {
                        if !*was_sent {
                            sent.push(format!("{dir}/"));
                            *was_sent = true;
                        }
                    }
                    sent.push(if is_dir {
                        format!("{path}/")
                    } else {
                        path.to_owned()
                    });
                    if is_dir {
                        stack.push((path.to_owned(), state, true));
                    }
                }
            }
        }
        sent
    }

    fn filter(include: &[&str], exclude: &[&str]) -> Filter {
        Filter::new(include, exclude).unwrap()
    }

    /// The tree of fsutil's TestWalkerDoublestarInclude, in walk order.
    const DOUBLESTAR_TREE: &[(&str, bool)] = &[
        ("a", true),
        ("a/b", true),
        ("a/b/bar", true),
        ("a/b/bar/foo", false),
        ("a/b/bar/fop", false),
        ("a/b/baz", true),
        ("bar", true),
        ("bar/foo", false),
        ("baz", true),
        ("foo", true),
        ("foo/bar", true),
        ("foo/bar/bee", false),
        ("foo2", false),
    ];

    #[test]
    fn doublestar_includes() {
        let cases: &[(&str, &[&str])] = &[
            (
                "**",
                &[
                    "a/",
                    "a/b/",
                    "a/b/bar/",
                    "a/b/bar/foo",
                    "a/b/bar/fop",
                    "a/b/baz/",
                    "bar/",
                    "bar/foo",
                    "baz/",
                    "foo/",
                    "foo/bar/",
                    "foo/bar/bee",
                    "foo2",
                ],
            ),
            (
                "**/bar",
                &[
                    "a/",
                    "a/b/",
                    "a/b/bar/",
                    "a/b/bar/foo",
                    "a/b/bar/fop",
                    "bar/",
                    "bar/foo",
                    "foo/",
                    "foo/bar/",
                    "foo/bar/bee",
                ],
            ),
            (
                "**/bar/foo",
                &["a/", "a/b/", "a/b/bar/", "a/b/bar/foo", "bar/", "bar/foo"],
            ),
            (
                "**/b*",
                &[
                    "a/",
                    "a/b/",
                    "a/b/bar/",
                    "a/b/bar/foo",
                    "a/b/bar/fop",
                    "a/b/baz/",
                    "bar/",
                    "bar/foo",
                    "baz/",
                    "foo/",
                    "foo/bar/",
                    "foo/bar/bee",
                ],
            ),
            (
                "**/bar/f*",
                &[
                    "a/",
                    "a/b/",
                    "a/b/bar/",
                    "a/b/bar/foo",
                    "a/b/bar/fop",
                    "bar/",
                    "bar/foo",
                ],
            ),
            ("**/bar/g*", &[]),
            (
                "**/f*",
                &[
                    "a/",
                    "a/b/",
                    "a/b/bar/",
                    "a/b/bar/foo",
                    "a/b/bar/fop",
                    "bar/",
                    "bar/foo",
                    "foo/",
                    "foo/bar/",
                    "foo/bar/bee",
                    "foo2",
                ],
            ),
            (
                "**/b*/f*",
                &[
                    "a/",
                    "a/b/",
                    "a/b/bar/",
                    "a/b/bar/foo",
                    "a/b/bar/fop",
                    "bar/",
                    "bar/foo",
                ],
            ),
            (
                "**/b*/foo",
                &["a/", "a/b/", "a/b/bar/", "a/b/bar/foo", "bar/", "bar/foo"],
            ),
            ("**/foo/**", &["foo/", "foo/bar/", "foo/bar/bee"]),
            ("**/baz", &["a/", "a/b/", "a/b/baz/", "baz/"]),
        ];
        for &(pattern, want) in cases {
            assert_eq!(
                simulate(&filter(&[pattern], &[]), DOUBLESTAR_TREE),
                want,
                "include {pattern:?}"
            );
        }
    }

    #[test]
    fn simple_includes() {
        let tree = &[("bar", true), ("bar/foo", false), ("foo2", false)];
        for pattern in ["bar", "bar/foo", "b*", "bar/f*", "b*/f*", "b*/foo", "b*/"] {
            assert_eq!(
                simulate(&filter(&[pattern], &[]), tree),
                ["bar/", "bar/foo"],
                "include {pattern:?}"
            );
        }
        assert!(simulate(&filter(&["bar/g*"], &[]), tree).is_empty());
        assert_eq!(simulate(&filter(&["f*"], &[]), tree), ["foo2"]);
    }

    #[test]
    fn exclude_with_exception_inside() {
        let tree = &[
            ("bar", false),
            ("foo", true),
            ("foo/bar2", false),
            ("foo2", false),
        ];
        assert_eq!(
            simulate(&filter(&[], &["foo*", "!foo/bar2"]), tree),
            ["bar", "foo/", "foo/bar2"]
        );
    }

    #[test]
    fn exception_reincludes_inside_excluded_dirs() {
        let tree = &[
            ("foo", true),
            ("foo/bar", true),
            ("foo/bar/baz", true),
            ("foo/bar/baz/x", false),
            ("foo/bar/baz/y", false),
            ("foo/bar/z", false),
            ("foo/w", false),
        ];
        let f = filter(&[], &["foo", "!foo/bar", "foo/bar/baz", "!foo/bar/baz/x"]);
        assert_eq!(
            simulate(&f, tree),
            [
                "foo/",
                "foo/bar/",
                "foo/bar/baz/",
                "foo/bar/baz/x",
                "foo/bar/z"
            ]
        );
        assert!(f.is_selected("foo/bar/baz/x").unwrap());
        assert!(!f.is_selected("foo/bar/baz/y").unwrap());
        assert!(!f.is_selected("foo/w").unwrap());
    }

    #[test]
    fn pruning_follows_fsutil() {
        let root = DirState::default();
        // No exceptions at all: an excluded directory is pruned.
        let f = filter(&[], &["**/bar"]);
        assert_eq!(f.check("bar", true, &root).unwrap(), Verdict::Prune);
        // A plain exception elsewhere: still pruned.
        let f = filter(&[], &["**/bar", "!foo/bar/baz"]);
        assert_eq!(f.check("bar", true, &root).unwrap(), Verdict::Prune);
        assert!(matches!(
            f.check("foo/bar", true, &root).unwrap(),
            Verdict::Exclude(_)
        ));
        // An exception with a wildcard: excluded directories are always walked.
        let f = filter(&[], &["**/bar", "!*/keep"]);
        assert!(matches!(
            f.check("bar", true, &root).unwrap(),
            Verdict::Exclude(_)
        ));
        // A file is never pruned.
        let f = filter(&[], &["bar"]);
        assert!(matches!(
            f.check("bar", false, &root).unwrap(),
            Verdict::Exclude(_)
        ));
        // Includes: a directory no plain include reaches into is pruned.
        let f = filter(&["foo", "!**/bar"], &[]);
        assert!(matches!(
            f.check("foo", true, &root).unwrap(),
            Verdict::Include(_)
        ));
        assert_eq!(f.check("other", true, &root).unwrap(), Verdict::Prune);
        let Verdict::Include(inside) = f.check("foo", true, &root).unwrap() else {
            unreachable!()
        };
        assert_eq!(f.check("foo/bar", true, &inside).unwrap(), Verdict::Prune);
        let f = filter(&["a/b/c/**"], &[]);
        assert!(matches!(
            f.check("a", true, &root).unwrap(),
            Verdict::Exclude(_)
        ));
        assert_eq!(f.check("ab", true, &root).unwrap(), Verdict::Prune);
        // A wildcard include: every directory is walked.
        let f = filter(&["**/*.txt"], &[]);
        assert!(matches!(
            f.check("x", true, &root).unwrap(),
            Verdict::Exclude(_)
        ));
    }

    #[test]
    fn include_and_exclude_together() {
        let tree = &[
            ("src", true),
            ("src/a.rs", false),
            ("src/a.tmp", false),
            ("src/sub", true),
            ("src/sub/b.rs", false),
            ("top.rs", false),
        ];
        let f = filter(&["src"], &["**/*.tmp", "src/sub"]);
        assert_eq!(simulate(&f, tree), ["src/", "src/a.rs"]);
        let f = filter(&["**/*.rs"], &["src/a.rs"]);
        assert_eq!(
            simulate(&f, tree),
            ["src/", "src/sub/", "src/sub/b.rs", "top.rs"]
        );
    }

    #[test]
    fn blank_include_list_selects_nothing() {
        let f = filter(&[""], &[]);
        assert!(!f.is_empty());
        assert_eq!(
            f.check("a", true, &DirState::default()).unwrap(),
            Verdict::Prune
        );
        assert!(matches!(
            f.check("a", false, &DirState::default()).unwrap(),
            Verdict::Exclude(_)
        ));
        assert!(filter(&[], &[]).is_empty());
    }

    #[test]
    fn can_be_shared_by_parallel_walkers() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Filter>();
        shareable::<DirState>();
        shareable::<PatternMatcher>();
    }

    #[test]
    fn errors_name_the_list_and_pattern() {
        let err = Filter::new(&["ok"], &["["]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid exclude patterns: syntax error in pattern \"[\""
        );
        let err = Filter::new(&["!"], &[]).unwrap_err();
        assert!(matches!(
            err,
            FilterError::InvalidPatterns {
                list: PatternList::Include,
                ..
            }
        ));
        let f = filter(&[], &["x[z-a]"]);
        let err = f.check("xy", false, &DirState::default()).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "failed to match exclude patterns: syntax error in pattern \"x[z-a]\""
            ),
            "{err}"
        );
    }
}
