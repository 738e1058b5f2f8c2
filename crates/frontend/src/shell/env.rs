//! Where word expansion looks variables up: the [`EnvGetter`] trait and [`EnvList`],
//! its implementation over `KEY=VALUE` strings.

use std::collections::HashMap;

/// A source of variables for word expansion.
pub trait EnvGetter {
    /// The value of `key`, or `None` when it is not set (set-but-empty is `Some("")`).
    fn get(&self, key: &str) -> Option<String>;
    /// The variable names, in the order the source defines them.
    fn keys(&self) -> Vec<String>;
}

impl<T: EnvGetter + ?Sized> EnvGetter for &T {
    fn get(&self, key: &str) -> Option<String> {
        (**self).get(key)
    }

    fn keys(&self) -> Vec<String> {
        (**self).keys()
    }
}

/// Variables from an ordered list of `KEY=VALUE` strings, like a process environment
/// (BuildKit's `EnvsFromSlice`).
///
/// A later entry for the same key wins. An entry without `=` sets its whole text as
/// the key with an empty value. [`EnvGetter::keys`] lists every entry's key in order,
/// repeats included, as BuildKit does. Keys are compared exactly (Unix rules).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList {
    values: HashMap<String, String>,
    keys: Vec<String>,
}

impl EnvList {
    /// Builds the list from `KEY=VALUE` entries.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Self {
        entries.iter().collect()
    }

    /// An empty environment: every variable is unset.
    pub fn empty() -> Self {
        Self::default()
    }
}

impl<S: AsRef<str>> FromIterator<S> for EnvList {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut list = EnvList::default();
        for entry in iter {
            let entry = entry.as_ref();
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            list.keys.push(key.to_string());
            list.values.insert(key.to_string(), value.to_string());
        }
        list
    }
}

impl EnvGetter for EnvList {
    fn get(&self, key: &str) -> Option<String> {
        self.values.get(key).cloned()
    }

    fn keys(&self) -> Vec<String> {
        self.keys.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_entries_win() {
        let env = EnvList::new(&["foo=bar", "car=hat", "car=bike"]);
        assert_eq!(env.get("foo").as_deref(), Some("bar"));
        assert_eq!(env.get("car").as_deref(), Some("bike"));
        assert_eq!(env.keys(), vec!["foo", "car", "car"]);
    }

    #[test]
    fn entries_without_value_are_set_and_empty() {
        let env = EnvList::new(&["foo", "bar=", "baz=a=b"]);
        assert_eq!(env.get("foo").as_deref(), Some(""));
        assert_eq!(env.get("bar").as_deref(), Some(""));
        assert_eq!(env.get("baz").as_deref(), Some("a=b"));
        assert_eq!(env.get("nope"), None);
    }

    #[test]
    fn keys_are_case_sensitive() {
        let env = EnvList::new(&["PWD=/home"]);
        assert_eq!(env.get("pwd"), None);
        assert!(EnvList::empty().keys().is_empty());
    }
}
