//! Instruction flags (`--from=builder`, `--link`): declaration and parsing with
//! BuildKit's rules and messages.

use std::collections::BTreeMap;

use super::suggest::with_suggestion;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    Bool,
    String,
    Strings,
}

#[derive(Debug, Clone)]
struct FlagSpec {
    kind: FlagKind,
    value: String,
    values: Vec<String>,
    used: bool,
}

/// The flags an instruction accepts, filled from the words written before its
/// arguments. Declare every flag, then call [`Flags::parse`].
#[derive(Debug, Clone)]
pub(crate) struct Flags {
    args: Vec<String>,
    specs: BTreeMap<String, FlagSpec>,
}

impl Flags {
    pub(crate) fn new(args: &[String]) -> Flags {
        Flags {
            args: args.to_vec(),
            specs: BTreeMap::new(),
        }
    }

    fn declare(&mut self, name: &str, kind: FlagKind, default: &str) {
        self.specs.insert(
            name.to_string(),
            FlagSpec {
                kind,
                value: default.to_string(),
                values: Vec::new(),
                used: false,
            },
        );
    }

    pub(crate) fn add_bool(&mut self, name: &str) {
        self.declare(name, FlagKind::Bool, "false");
    }

    pub(crate) fn add_string(&mut self, name: &str, default: &str) {
        self.declare(name, FlagKind::String, default);
    }

    pub(crate) fn add_strings(&mut self, name: &str) {
        self.declare(name, FlagKind::Strings, "");
    }

    /// Reads the flag words. Errors are worded as BuildKit's.
    pub(crate) fn parse(&mut self) -> Result<(), String> {
        let args = std::mem::take(&mut self.args);
        for arg in &args {
            if arg == "--" {
                // POSIX: `--` ends the options.
                return Ok(());
            }
            let Some(stripped) = arg.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {arg}"));
            };
            let (name, value) = match stripped.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (stripped, None),
            };
            let flag_name = format!("--{name}");
            let names: Vec<String> = self.specs.keys().cloned().collect();
            let Some(spec) = self.specs.get_mut(name) else {
                return Err(with_suggestion(
                    format!("unknown flag: {flag_name}"),
                    name,
                    &names,
                    true,
                ));
            };
            if spec.used && spec.kind != FlagKind::Strings {
                return Err(format!("duplicate flag specified: {flag_name}"));
            }
            spec.used = true;
            match spec.kind {
                FlagKind::Bool => {
                    if value == Some("") {
                        return Err(format!("missing a value on flag: {flag_name}"));
                    }
                    match value.unwrap_or("").to_ascii_lowercase().as_str() {
                        "true" | "" => spec.value = "true".into(),
                        "false" => spec.value = "false".into(),
                        _ => {
                            return Err(format!(
                                "expecting boolean value for flag {flag_name}, not: {}",
                                value.unwrap_or("")
                            ));
                        }
                    }
                }
                FlagKind::String => match value {
                    Some(v) => spec.value = v.to_string(),
                    None => return Err(format!("missing a value on flag: {flag_name}")),
                },
                FlagKind::Strings => match value {
                    Some(v) => spec.values.push(v.to_string()),
                    None => return Err(format!("missing a value on flag: {flag_name}")),
                },
            }
        }
        Ok(())
    }

    pub(crate) fn string(&self, name: &str) -> String {
        self.specs
            .get(name)
            .map(|s| s.value.clone())
            .unwrap_or_default()
    }

    pub(crate) fn strings(&self, name: &str) -> Vec<String> {
        self.specs
            .get(name)
            .map(|s| s.values.clone())
            .unwrap_or_default()
    }

    pub(crate) fn bool(&self, name: &str) -> bool {
        self.specs.get(name).is_some_and(|s| s.value == "true")
    }

    /// The value of a bool flag if it was written, `None` if it was not.
    pub(crate) fn bool_if_used(&self, name: &str) -> Option<bool> {
        self.specs
            .get(name)
            .filter(|s| s.used)
            .map(|s| s.value == "true")
    }

    /// Names of the flags that were written.
    pub(crate) fn used(&self) -> Vec<String> {
        self.specs
            .iter()
            .filter(|(_, s)| s.used)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(words: &[&str]) -> Flags {
        let words: Vec<String> = words.iter().map(|s| s.to_string()).collect();
        let mut f = Flags::new(&words);
        f.add_bool("link");
        f.add_string("from", "");
        f.add_strings("exclude");
        f
    }

    #[test]
    fn parses_each_kind() {
        let mut f = flags(&["--link", "--from=build", "--exclude=a", "--exclude=b"]);
        f.parse().unwrap();
        assert!(f.bool("link"));
        assert_eq!(f.string("from"), "build");
        assert_eq!(f.strings("exclude"), vec!["a", "b"]);
        assert_eq!(f.bool_if_used("link"), Some(true));
    }

    #[test]
    fn errors_are_worded_as_buildkit() {
        let err = |w: &[&str]| flags(w).parse().unwrap_err();
        assert_eq!(
            err(&["--frm=x"]),
            "unknown flag: --frm (did you mean from?)"
        );
        assert_eq!(err(&["--nope"]), "unknown flag: --nope");
        assert_eq!(
            err(&["--from=a", "--from=b"]),
            "duplicate flag specified: --from"
        );
        assert_eq!(err(&["--from"]), "missing a value on flag: --from");
        assert_eq!(err(&["--link="]), "missing a value on flag: --link");
        assert_eq!(
            err(&["--link=yes"]),
            "expecting boolean value for flag --link, not: yes"
        );
        assert_eq!(err(&["-x"]), "arg should start with -- : -x");
    }

    #[test]
    fn double_dash_ends_flags() {
        let mut f = flags(&["--", "--bogus"]);
        f.parse().unwrap();
    }
}
