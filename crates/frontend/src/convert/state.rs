//! The build state a stage carries from instruction to instruction: the filesystem
//! produced so far and the environment, directory and user the next RUN would get.

use kiln_graph::{Digest, Platform};

use crate::shell::EnvGetter;

/// An ordered environment with BuildKit's `EnvList` semantics: setting a key that
/// exists moves it to the end (this is the order a RUN step sees), unlike the image
/// config's `Env`, where a replaced key keeps its place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EnvList {
    entries: Vec<(String, String)>,
}

impl EnvList {
    pub(crate) fn new() -> EnvList {
        EnvList::default()
    }

    pub(crate) fn add_or_replace(&mut self, key: &str, value: &str) {
        self.entries.retain(|(k, _)| k != key);
        self.entries.push((key.to_string(), value.to_string()));
    }

    pub(crate) fn set_default(&mut self, key: &str, value: &str) {
        if self.get_str(key).is_none() {
            self.add_or_replace(key, value);
        }
    }

    pub(crate) fn get_str(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn to_array(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

impl EnvGetter for EnvList {
    fn get(&self, key: &str) -> Option<String> {
        self.get_str(key).map(str::to_string)
    }

    fn keys(&self) -> Vec<String> {
        self.entries.iter().map(|(k, _)| k.clone()).collect()
    }
}

/// What a stage has built so far (BuildKit's `llb.State`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BuildState {
    /// The vertex holding the filesystem; `None` is an empty one (`scratch`).
    pub(crate) root: Option<Digest>,
    pub(crate) env: EnvList,
    /// Working directory; empty means `/`.
    pub(crate) dir: String,
    pub(crate) user: String,
    pub(crate) platform: Option<Platform>,
}

impl BuildState {
    pub(crate) fn scratch() -> BuildState {
        BuildState {
            root: None,
            env: EnvList::new(),
            dir: String::new(),
            user: String::new(),
            platform: None,
        }
    }

    pub(crate) fn dir_or_root(&self) -> String {
        if self.dir.is_empty() {
            "/".to_string()
        } else {
            self.dir.clone()
        }
    }

    /// Sets the working directory; a relative path joins the current one.
    pub(crate) fn set_dir(&mut self, dir: &str) {
        if dir.starts_with('/') {
            self.dir = dir.to_string();
        } else {
            self.dir = clean_path(&format!("{}/{}", self.dir_or_root(), dir));
        }
    }
}

/// Go's `path.Clean` and `path.Join` (slash-separated, as `filepath` on Unix).
pub(crate) use kiln_ignore::go::{clean as clean_path, join as join_path};

/// Go's `path.Base`.
pub(crate) fn base_name(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_string();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_list_moves_replaced_keys_to_the_end() {
        let mut e = EnvList::new();
        e.add_or_replace("A", "1");
        e.add_or_replace("B", "2");
        e.add_or_replace("A", "3");
        assert_eq!(e.to_array(), vec!["B=2", "A=3"]);
        e.set_default("B", "x");
        e.set_default("C", "4");
        assert_eq!(e.to_array(), vec!["B=2", "A=3", "C=4"]);
    }

    #[test]
    fn paths_clean_like_go() {
        assert_eq!(clean_path("/a/b/../c/./"), "/a/c");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(clean_path("a/../../b"), "../b");
        assert_eq!(clean_path(""), ".");
        assert_eq!(join_path(&["/", "a", "", "b/"]), "/a/b");
        assert_eq!(base_name("/run/secrets/x/"), "x");
        assert_eq!(base_name("/"), "/");
    }

    #[test]
    fn relative_dirs_join_the_current_one() {
        let mut s = BuildState::scratch();
        s.set_dir("a");
        assert_eq!(s.dir, "/a");
        s.set_dir("../b/c");
        assert_eq!(s.dir, "/b/c");
        s.set_dir("/abs/../kept");
        assert_eq!(s.dir, "/abs/../kept");
    }
}
