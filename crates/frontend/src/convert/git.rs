//! Recognizes git sources in ADD (`https://host/repo.git#ref:subdir`,
//! `git@host:org/repo.git`, `ssh://`, `git://`) as BuildKit's `dfgitutil.ParseGitRef`.

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

/// `None` when `src` is not a git source (then it is a local path or a plain URL).
pub(crate) fn parse_git_ref(src: &str) -> Option<GitRef> {
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
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "ref" | "tag" | "branch" if !v.is_empty() => g.reference = v.to_string(),
                "subdir" => g.subdir = v.to_string(),
                "checksum" | "commit" => g.checksum = v.to_string(),
                "keep-git-dir" => {
                    g.keep_git_dir = Some(
                        v.is_empty() || matches!(v, "1" | "true" | "True" | "TRUE" | "t" | "T"),
                    )
                }
                _ => {}
            }
        }
    }
    Some(g)
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

    #[test]
    fn recognizes_git_sources() {
        let g = parse_git_ref("https://github.com/moby/buildkit.git#v0.10.1:docs").unwrap();
        assert_eq!(g.remote, "https://github.com/moby/buildkit.git");
        assert_eq!(g.reference, "v0.10.1");
        assert_eq!(g.subdir, "docs");
        assert!(parse_git_ref("git@github.com:moby/buildkit.git").is_some());
        assert!(parse_git_ref("ssh://git@host/repo").is_some());
        assert!(parse_git_ref("git://host/repo").is_some());
        let g = parse_git_ref("https://h/r.git?ref=main&keep-git-dir=true").unwrap();
        assert_eq!(g.reference, "main");
        assert_eq!(g.keep_git_dir, Some(true));
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
