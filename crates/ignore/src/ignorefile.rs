//! Reading a `.dockerignore` file into its list of patterns, exactly as
//! patternmatcher's `ignorefile.ReadAll` does, and choosing which ignore file
//! applies to a build.

use std::path::{Path, PathBuf};

/// Go's `bufio.Scanner` buffer limit (`MaxScanTokenSize`): `ignorefile.ReadAll`
/// fails on a line that does not fit in it with one byte to spare.
const MAX_LINE: usize = 64 * 1024;

/// Why an ignore file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IgnoreFileError {
    /// A line is 64 KiB or longer, which Docker refuses.
    #[error("line {line} is too long (limit {MAX_LINE} bytes)")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
    },
    /// An error in the named file.
    #[error("failed parsing {}: {source}", path.display())]
    InFile {
        /// The ignore file.
        path: PathBuf,
        /// What is wrong in it.
        source: Box<IgnoreFileError>,
    },
}

/// The ignore file that applies to a build and its patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildIgnore {
    /// The file the patterns were read from; `None` when there is none.
    pub file: Option<PathBuf>,
    /// The patterns, as [`read_ignore_file`] returns them.
    pub patterns: Vec<String>,
}

/// Finds and reads the ignore file for a build as BuildKit's Dockerfile
/// frontend does: `<Dockerfile>.dockerignore` beside the Dockerfile (e.g.
/// `build/app.Dockerfile.dockerignore` for `build/app.Dockerfile`) when it can
/// be read, otherwise `.dockerignore` at the root of the context, otherwise
/// none. A file that cannot be read counts as absent, as in BuildKit; a file
/// that is not UTF-8 is read with invalid bytes replaced.
pub fn read_build_ignore(
    context: &Path,
    dockerfile: &Path,
) -> Result<BuildIgnore, IgnoreFileError> {
    let specific = dockerfile.file_name().map(|name| {
        let mut name = name.to_os_string();
        name.push(".dockerignore");
        dockerfile.with_file_name(name)
    });
    let candidates = specific
        .into_iter()
        .chain(std::iter::once(context.join(".dockerignore")));
    for path in candidates {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let patterns = read_ignore_file(&String::from_utf8_lossy(&bytes)).map_err(|source| {
            IgnoreFileError::InFile {
                path: path.clone(),
                source: Box::new(source),
            }
        })?;
        return Ok(BuildIgnore {
            file: Some(path),
            patterns,
        });
    }
    Ok(BuildIgnore::default())
}

/// Reads the patterns of an ignore file (`.dockerignore` or
/// `<Dockerfile>.dockerignore`).
///
/// - A UTF-8 byte order mark at the start is dropped.
/// - Lines end at `\n`; a `\r` before it is dropped.
/// - A line whose first character is `#` is a comment (a `#` after leading
///   spaces is not: it is a pattern).
/// - Each line is trimmed of white space; empty lines are skipped.
/// - A leading `!` marks an exception; white space after it is trimmed too.
/// - The rest is cleaned like Go's `filepath.Clean` (so `./a/` is `a` and
///   `a/../b` is `b`), and a leading `/` is removed (`/a` is `a`).
///
/// The result is ready for [`PatternMatcher::new`](crate::PatternMatcher::new);
/// a line with only `!` is kept as `!`, which the matcher rejects.
///
/// ```
/// let patterns = kiln_ignore::read_ignore_file("# build output\n/target\n!target/keep\n\n*.log\r\n")?;
/// assert_eq!(patterns, ["target", "!target/keep", "*.log"]);
/// # Ok::<(), kiln_ignore::IgnoreFileError>(())
/// ```
pub fn read_ignore_file(contents: &str) -> Result<Vec<String>, IgnoreFileError> {
    let mut patterns = Vec::new();
    for (index, raw) in lines(contents).enumerate() {
        // The scanner needs room for the line and one more byte.
        if raw.len() >= MAX_LINE {
            return Err(IgnoreFileError::LineTooLong { line: index + 1 });
        }
        let raw = if index == 0 {
            raw.strip_prefix('\u{FEFF}').unwrap_or(raw)
        } else {
            raw
        };
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (invert, body) = match line.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let mut pattern = String::new();
        if invert {
            pattern.push('!');
        }
        if !body.is_empty() {
            let cleaned = crate::gopath::clean(body);
            let cleaned = match cleaned.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest,
                _ => cleaned.as_str(),
            };
            pattern.push_str(cleaned);
        }
        patterns.push(pattern);
    }
    Ok(patterns)
}

/// The lines of `contents` as Go's `bufio.ScanLines` splits them, but with a
/// final `\r` still attached (the caller drops it after the length check): split
/// at `\n`, with a last line only when it is not empty.
fn lines(contents: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(contents);
    std::iter::from_fn(move || {
        let text = rest?;
        match text.find('\n') {
            Some(i) => {
                rest = Some(&text[i + 1..]);
                Some(&text[..i])
            }
            None => {
                rest = None;
                (!text.is_empty()).then_some(text)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_ignorefile_readall() {
        let content = "test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! ";
        assert_eq!(
            read_ignore_file(content).unwrap(),
            [
                "test1",
                "test2",
                "a/file/here",
                "lastfile",
                "!inverted/abs/path",
                "!",
                "!"
            ]
        );
        assert!(read_ignore_file("").unwrap().is_empty());
    }

    #[test]
    fn comments_only_at_the_very_start_of_a_line() {
        assert_eq!(
            read_ignore_file("# c\n  # not a comment\n#\n").unwrap(),
            ["# not a comment"]
        );
    }

    #[test]
    fn crlf_bom_and_cleaning() {
        let content = "\u{FEFF}a.txt\r\n./tmp/\r\nb/../c\r\n/\r\n//x//\r\n!./y\r\n\u{FEFF}z";
        assert_eq!(
            read_ignore_file(content).unwrap(),
            ["a.txt", "tmp", "c", "/", "x", "!y", "\u{FEFF}z"]
        );
        // Only one `\r` is dropped; the trim takes the rest.
        assert_eq!(read_ignore_file("a\r\r\n").unwrap(), ["a"]);
        // A `\r` alone does not end a line.
        assert_eq!(read_ignore_file("a\rb\n").unwrap(), ["a\rb"]);
    }

    #[test]
    fn dot_and_climbing_patterns_survive() {
        assert_eq!(
            read_ignore_file(".\n..\n../x\n/../y\n").unwrap(),
            [".", "..", "../x", "y"]
        );
    }

    #[test]
    fn windows_separators_are_not_special() {
        assert_eq!(read_ignore_file("a\\b\\..\\c\n").unwrap(), ["a\\b\\..\\c"]);
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let context = tmp.path().join("ctx");
        std::fs::create_dir(&context).unwrap();
        let dockerfile = tmp.path().join("app.Dockerfile");
        assert_eq!(
            read_build_ignore(&context, &dockerfile).unwrap(),
            BuildIgnore::default()
        );
        std::fs::write(context.join(".dockerignore"), "*.txt\n").unwrap();
        let found = read_build_ignore(&context, &dockerfile).unwrap();
        assert_eq!(
            found.file.as_deref(),
            Some(context.join(".dockerignore").as_path())
        );
        assert_eq!(found.patterns, ["*.txt"]);
        std::fs::write(tmp.path().join("app.Dockerfile.dockerignore"), "*.md\n").unwrap();
        let found = read_build_ignore(&context, &dockerfile).unwrap();
        assert_eq!(
            found.file.as_deref(),
            Some(tmp.path().join("app.Dockerfile.dockerignore").as_path())
        );
        assert_eq!(found.patterns, ["*.md"]);
        std::fs::write(context.join(".dockerignore"), "x".repeat(MAX_LINE)).unwrap();
        let err = read_build_ignore(&context, &context.join("Dockerfile")).unwrap_err();
        assert!(err.to_string().starts_with("failed parsing "), "{err}");
        assert!(
            err.to_string()
                .ends_with(".dockerignore: line 1 is too long (limit 65536 bytes)"),
            "{err}"
        );
    }

    #[test]
    fn overlong_lines_are_refused_as_docker_does() {
        let ok = "x".repeat(MAX_LINE - 1);
        assert_eq!(read_ignore_file(&format!("{ok}\n")).unwrap(), [ok.as_str()]);
        assert_eq!(read_ignore_file(&ok).unwrap(), [ok.as_str()]);
        let long = "x".repeat(MAX_LINE);
        let long_with_bom = format!("\u{FEFF}{}", "x".repeat(MAX_LINE - 3));
        assert_eq!(
            read_ignore_file(&long_with_bom),
            Err(IgnoreFileError::LineTooLong { line: 1 })
        );
        assert_eq!(
            read_ignore_file(&format!("a\n{long}\n")),
            Err(IgnoreFileError::LineTooLong { line: 2 })
        );
        assert_eq!(
            read_ignore_file(&long),
            Err(IgnoreFileError::LineTooLong { line: 1 })
        );
    }
}
