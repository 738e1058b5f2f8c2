//! Docker's build-context selection rules, exactly as BuildKit applies them:
//! `.dockerignore` files, COPY/ADD `--exclude` patterns, and the include
//! patterns of COPY `--parents` and follow-paths.
//!
//! Docker's patterns are not gitignore patterns: there is no anchoring rule
//! (every pattern is relative to the context root), a trailing `/` means
//! nothing, `*` never crosses `/`, a pattern matching a directory matches
//! everything below it, the last matching rule wins, and an exception (`!`) can
//! re-include a file inside an excluded directory. Crates such as `ignore` and
//! `globset` implement gitignore and glob rules, which differ on each of these
//! points, so this crate is a port of the behaviour of moby/patternmatcher and
//! tonistiigi/fsutil (the code BuildKit runs), including Go's own path cleaning,
//! `filepath.Match` syntax checks and regular-expression syntax where they show
//! through.
//!
//! # Main types
//!
//! - [`read_ignore_file`]: the patterns of a `.dockerignore` file (comments,
//!   blank lines, `\r\n`, byte order mark, `!`, cleaning, leading `/`), and
//!   [`read_build_ignore`] to pick `<Dockerfile>.dockerignore` or `.dockerignore`.
//! - [`PatternMatcher`]: an ordered pattern list, with
//!   [`matches_or_parent_matches`](PatternMatcher::matches_or_parent_matches)
//!   for one path and
//!   [`matches_using_parent_results`](PatternMatcher::matches_using_parent_results)
//!   for the incremental form a tree walk uses.
//! - [`Filter`]: include and exclude lists together, deciding per entry whether
//!   it is sent, skipped while its directory is still walked, or pruned, for
//!   callers that walk a tree themselves (its docs give the rules to follow).
//! - [`walk`] / [`Walker`]: walks a directory and returns the selected
//!   [`Entry`]s in fsutil's order, with their `lstat` metadata.
//!
//! # Example
//!
//! ```
//! use kiln_ignore::{read_ignore_file, walk, WalkOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let context = tempfile::tempdir()?;
//! std::fs::create_dir_all(context.path().join("docs/img"))?;
//! std::fs::write(context.path().join("docs/README.md"), "read me")?;
//! std::fs::write(context.path().join("docs/img/logo.png"), "png")?;
//! std::fs::write(context.path().join("main.rs"), "fn main() {}")?;
//!
//! let options = WalkOptions {
//!     exclude_patterns: read_ignore_file("docs\n!docs/README.md\n")?,
//!     ..WalkOptions::default()
//! };
//! let paths: Vec<_> = walk(context.path(), &options)?
//!     .into_iter()
//!     .map(|entry| entry.path.to_string_lossy().into_owned())
//!     .collect();
//! assert_eq!(paths, ["docs", "docs/README.md", "main.rs"]);
//! # Ok(())
//! # }
//! ```
//!
//! # Differences from BuildKit
//!
//! Only in failure cases: an unreadable context root is an error (BuildKit
//! sends an empty context); an entry that vanishes during the walk is skipped
//! (fsutil skips the rest of its directory); follow-paths that climb out of
//! the root with `..` are not looked up outside it. Paths are matched as text:
//! a file name that is not UTF-8 is matched with each invalid byte read as
//! `U+FFFD`, which is what Go's regular expressions do.

#![deny(missing_docs)]

mod filter;
mod follow;
mod gomatch;
mod gopath;
mod goregex;
mod ignorefile;
mod pattern;
mod walk;

pub use filter::{DirState, Filter, FilterError, PatternList, Verdict};
pub use follow::{FollowError, follow_links};
pub use ignorefile::{BuildIgnore, IgnoreFileError, read_build_ignore, read_ignore_file};
pub use pattern::{MatchInfo, Pattern, PatternError, PatternMatcher};
pub use walk::{Entry, WalkError, WalkOptions, Walker, walk};

/// Go's `filepath.Match` and `path/filepath` string functions with Go's exact
/// results, which BuildKit's file operations apply to COPY sources too.
pub mod go {
    pub use crate::gomatch::{BadPattern, match_bytes as filepath_match};
    pub use crate::gopath::{clean, join};
}
