//! Go's `path/filepath` string functions (Unix flavour) and the path helpers
//! BuildKit's file backend builds on them.
//!
//! The copy rules hinge on exactly how BuildKit cleans, splits and joins the
//! paths of an action (a trailing `/` or `/.` on a destination means "into this
//! directory", a wildcard splits a path into a literal prefix and a pattern), so
//! these are ports of the Go functions rather than `std::path` equivalents,
//! which normalise differently (`Path::components` drops a trailing `/`).

pub(crate) use kiln_ignore::go::{clean, join};

/// `filepath.Split`: everything up to and including the last `/`, and the rest.
pub(crate) fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    }
}

/// `filepath.Base` on bytes: the last element, trailing slashes ignored
/// (`/` for a path of slashes, `.` for an empty one).
pub(crate) fn base(path: &[u8]) -> &[u8] {
    if path.is_empty() {
        return b".";
    }
    let mut end = path.len();
    while end > 0 && path[end - 1] == b'/' {
        end -= 1;
    }
    if end == 0 {
        return b"/";
    }
    let start = path[..end]
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(0, |i| i + 1);
    &path[start..end]
}

/// BuildKit's `cleanPath` for action paths: absolute and clean, but keeping a
/// trailing `/` or `/.`, which carry meaning for a destination.
pub(crate) fn clean_action_path(path: &str) -> String {
    let mut cleaned = join(&["/", path]);
    if path.ends_with("/.") {
        if cleaned != "/" {
            cleaned.push('/');
        }
        cleaned.push('.');
    } else if path.ends_with('/') && cleaned != "/" {
        cleaned.push('/');
    }
    cleaned
}

/// Whether a path element holds an unescaped `*`, `?` or `[` (fsutil's
/// `containsWildcards`).
pub(crate) fn contains_wildcards(element: &str) -> bool {
    let bytes = element.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// fsutil's `splitWildcards`: the path up to the first element with a
/// wildcard, and the rest (empty when there is no wildcard).
pub(crate) fn split_wildcards(path: &str) -> (String, String) {
    let cleaned = join(&[path]);
    let mut literal: Vec<&str> = Vec::new();
    let mut pattern: Vec<&str> = Vec::new();
    let mut found = false;
    for part in cleaned.split('/') {
        if !found && contains_wildcards(part) {
            found = true;
        }
        let part = if part.is_empty() { "/" } else { part };
        if found {
            pattern.push(part);
        } else {
            literal.push(part);
        }
    }
    (join(&literal), join(&pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("//a//b/", "/a/b"),
            ("a/./b/..", "a"),
            ("/../x", "/x"),
            ("../../x", "../../x"),
            ("a/../..", ".."),
            ("/a/b/.", "/a/b"),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn join_split_base_match_go() {
        assert_eq!(join(&["/", "a.txt"]), "/a.txt");
        assert_eq!(join(&["", ""]), "");
        assert_eq!(join(&["/x", "../y"]), "/y");
        assert_eq!(split("/x/y"), ("/x/", "y"));
        assert_eq!(split("/x/"), ("/x/", ""));
        assert_eq!(split("y"), ("", "y"));
        assert_eq!(base(b"/a/b/"), b"b");
        assert_eq!(base(b"///"), b"/");
        assert_eq!(base(b"a.txt"), b"a.txt");
        assert_eq!(base(b""), b".");
        assert_eq!(base(b"/caf\xc3\xa9"), b"caf\xc3\xa9");
    }

    #[test]
    fn action_paths_keep_their_trailing_slash_or_dot() {
        assert_eq!(clean_action_path("/x/"), "/x/");
        assert_eq!(clean_action_path("x//"), "/x/");
        assert_eq!(clean_action_path("/x/."), "/x/.");
        assert_eq!(clean_action_path("/"), "/");
        assert_eq!(clean_action_path("/."), "/.");
        assert_eq!(clean_action_path("/a/../b"), "/b");
        assert_eq!(clean_action_path("/x"), "/x");
    }

    #[test]
    fn wildcards_split_at_the_first_pattern_element() {
        assert_eq!(split_wildcards("/a/*.txt"), ("/a".into(), "*.txt".into()));
        assert_eq!(
            split_wildcards("/src/*/deep/x"),
            ("/src".into(), "*/deep/x".into())
        );
        assert_eq!(split_wildcards("/a/b/"), ("/a/b".into(), String::new()));
        assert_eq!(
            split_wildcards("/f[12].log"),
            ("/".into(), "f[12].log".into())
        );
        assert_eq!(split_wildcards("/a\\*b"), ("/a\\*b".into(), String::new()));
        assert!(contains_wildcards("x?"));
        assert!(!contains_wildcards("x\\?"));
    }
}
