//! Recognizes git sources in ADD (`https://host/repo.git#ref:subdir`,
//! `git@host:org/repo.git`, `ssh://`, `git://`, and the query form
//! `?ref=|tag=|branch=|subdir=|checksum=|keep-git-dir=`) as BuildKit's
//! `dfgitutil.ParseGitRef`, including its errors for a query it does not understand.
//! (`submodules=` is checked but not acted on: submodules are always fetched.)

/// A git source named by an ADD argument.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct GitRef {
    /// The remote without fragment or query.
    pub(crate) remote: String,
    pub(crate) reference: String,
    pub(crate) subdir: String,
    pub(crate) checksum: String,
    pub(crate) keep_git_dir: Option<bool>,
}

/// `None` when `src` is not a git source (then it is a local path or a plain URL);
/// an error when it is one whose query BuildKit rejects.
pub(crate) fn parse_git_ref(src: &str) -> Option<Result<GitRef, String>> {
    if src.starts_with("./") || src.starts_with("../") || src.starts_with("github.com/") {
        // `github.com/...` is indistinguishable from a local path; BuildKit treats it
        // as one in ADD.
        return None;
    }
    let (without_fragment, fragment) = match src.split_once('#') {
        Some((a, b)) => (a, Some(b)),
        None => (src, None),
    };
    let (remote, query) = match without_fragment.split_once('?') {
        Some((a, b)) => (a, Some(b)),
        None => (without_fragment, None),
    };
    let is_git = if let Some((scheme, rest)) = remote.split_once("://") {
        if !scheme.chars().all(|c| c.is_ascii_alphanumeric()) || scheme.is_empty() {
            return None;
        }
        match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" => {
                let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
                path.ends_with(".git")
            }
            "git" | "ssh" => true,
            _ => false,
        }
    } else {
        is_scp_style(remote)
    };
    if !is_git {
        return None;
    }
    let mut g = GitRef {
        remote: remote.to_string(),
        ..GitRef::default()
    };
    if let Some(f) = fragment {
        let (r, s) = f.split_once(':').unwrap_or((f, ""));
        g.reference = r.to_string();
        g.subdir = s.to_string();
    }
    if let Some(q) = query
        && let Err(e) = load_query(&mut g, q)
    {
        return Some(Err(e));
    }
    Some(Ok(g))
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Applies the query of a git URL as BuildKit's `GitRef.loadQuery`: `tag=` and
/// `branch=` become `refs/tags/...` and `refs/heads/...`, and a key it does not
/// know, a key given twice, a key without a value or a conflict with the fragment
/// is an error.
fn load_query(g: &mut GitRef, query: &str) -> Result<(), String> {
    let mut values: Vec<(&str, Vec<&str>)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match values.iter_mut().find(|(key, _)| *key == k) {
            Some((_, vs)) => vs.push(v),
            None => values.push((k, vec![v])),
        }
    }
    let (mut tag, mut branch) = (String::new(), String::new());
    for (k, vs) in values {
        if vs.len() > 1 {
            return Err(format!("query {} has multiple values", quote(k)));
        }
        let v = vs[0];
        if v.is_empty() && !matches!(k, "submodules" | "keep-git-dir") {
            return Err(format!("query {} has no value", quote(k)));
        }
        match k {
            "ref" => {
                if !g.reference.is_empty() && g.reference != v {
                    return Err(format!(
                        "ref conflicts: {} vs {}",
                        quote(&g.reference),
                        quote(v)
                    ));
                }
                g.reference = v.to_string();
            }
            "tag" => tag = v.to_string(),
            "branch" => branch = v.to_string(),
            "subdir" => {
                if !g.subdir.is_empty() && g.subdir != v {
                    return Err(format!(
                        "subdir conflicts: {} vs {}",
                        quote(&g.subdir),
                        quote(v)
                    ));
                }
                g.subdir = v.to_string();
            }
            "checksum" | "commit" => g.checksum = v.to_string(),
            "keep-git-dir" => {
                let b = if v.is_empty() {
                    Some(true)
                } else {
                    parse_bool(v)
                };
                g.keep_git_dir =
                    Some(b.ok_or_else(|| format!("invalid keep-git-dir value: {}", quote(v)))?);
            }
            "submodules" => {
                if !v.is_empty() && parse_bool(v).is_none() {
                    return Err(format!("invalid submodules value: {}", quote(v)));
                }
            }
            _ => return Err(format!("unexpected query {}", quote(k))),
        }
    }
    for (value, prefix) in [(&mut tag, "refs/tags/"), (&mut branch, "refs/heads/")] {
        if !value.is_empty() && !value.starts_with(prefix) {
            value.insert_str(0, prefix);
        }
    }
    if !tag.is_empty() {
        if !g.reference.is_empty() && g.reference != tag {
            return Err(format!(
                "ref conflicts: {} vs {}",
                quote(&g.reference),
                quote(&tag)
            ));
        }
        g.reference = tag.clone();
    }
    if !branch.is_empty() {
        if !tag.is_empty() {
            return Err("branch conflicts with tag".into());
        }
        if !g.reference.is_empty() && g.reference != branch {
            return Err(format!(
                "ref conflicts: {} vs {}",
                quote(&g.reference),
                quote(&branch)
            ));
        }
        g.reference = branch;
    }
    Ok(())
}

fn quote(s: &str) -> String {
    crate::gofmt::quote(s)
}

/// `user@host:path`, as git's scp-like syntax.
fn is_scp_style(s: &str) -> bool {
    let Some((user, rest)) = s.split_once('@') else {
        return false;
    };
    let Some((host, path)) = rest.split_once(':') else {
        return false;
    };
    !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !path.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(src: &str) -> GitRef {
        parse_git_ref(src).unwrap().unwrap()
    }

    #[test]
    fn recognizes_git_sources() {
        let g = git("https://github.com/moby/buildkit.git#v0.10.1:docs");
        assert_eq!(g.remote, "https://github.com/moby/buildkit.git");
        assert_eq!(g.reference, "v0.10.1");
        assert_eq!(g.subdir, "docs");
        assert!(parse_git_ref("git@github.com:moby/buildkit.git").is_some());
        assert!(parse_git_ref("ssh://git@host/repo").is_some());
        assert!(parse_git_ref("git://host/repo").is_some());
        let g = git("https://h/r.git?ref=main&keep-git-dir=true");
        assert_eq!(g.reference, "main");
        assert_eq!(g.keep_git_dir, Some(true));
    }

    #[test]
    fn query_forms_as_buildkit() {
        assert_eq!(git("git://h/r?tag=v1").reference, "refs/tags/v1");
        assert_eq!(git("git://h/r?tag=refs/tags/v1").reference, "refs/tags/v1");
        assert_eq!(git("git://h/r?branch=main").reference, "refs/heads/main");
        let g = git("git://h/r?branch=main&subdir=docs&commit=abc&submodules=false");
        assert_eq!(
            (g.reference.as_str(), g.subdir.as_str(), g.checksum.as_str()),
            ("refs/heads/main", "docs", "abc")
        );
        assert_eq!(git("git://h/r?keep-git-dir").keep_git_dir, Some(true));
        assert_eq!(git("git://h/r?keep-git-dir=0").keep_git_dir, Some(false));
        // The fragment and the query may say the same thing.
        assert_eq!(git("git://h/r?ref=main#main").reference, "main");
        for (src, error) in [
            ("git://h/r?refs=main", r#"unexpected query "refs""#),
            ("git://h/r?ref=", r#"query "ref" has no value"#),
            (
                "git://h/r?ref=a&ref=b",
                r#"query "ref" has multiple values"#,
            ),
            ("git://h/r?ref=a#b", r#"ref conflicts: "b" vs "a""#),
            ("git://h/r?subdir=a#m:b", r#"subdir conflicts: "b" vs "a""#),
            ("git://h/r?tag=v1&branch=main", "branch conflicts with tag"),
            (
                "git://h/r?tag=v1#main",
                r#"ref conflicts: "main" vs "refs/tags/v1""#,
            ),
            (
                "git://h/r?keep-git-dir=maybe",
                r#"invalid keep-git-dir value: "maybe""#,
            ),
            ("git://h/r?submodules=2", r#"invalid submodules value: "2""#),
        ] {
            assert_eq!(parse_git_ref(src), Some(Err(error.to_string())), "{src}");
        }
    }

    #[test]
    fn other_sources_are_not_git() {
        for s in [
            "a.txt",
            "./x.git",
            "https://example.com/file.tar.gz",
            "github.com/moby/buildkit",
            "dir/sub",
            "foo@bar",
        ] {
            assert_eq!(parse_git_ref(s), None, "{s}");
        }
    }
}
