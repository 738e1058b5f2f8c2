//! BuildKit's Dockerfile checks (its `linter` package): each broken rule is a
//! [`LintWarning`] in BuildKit's words, with the line it concerns; with
//! `# check=error=true` (or the build arg `BUILDKIT_DOCKERFILE_CHECK=error=true`) a
//! Dockerfile that breaks a rule fails with `lint violation found for rules: ...`.
//!
//! [`LintConfig::parse`] reads the check options (`skip=A,B;error=true;experimental=C`)
//! and the conversion calls [`Linter::run`] where BuildKit's frontend runs each rule;
//! [`Linter::error`] gives the failure at the end.

use std::cell::RefCell;
use std::collections::BTreeSet;

/// A check BuildKit runs on Dockerfiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rule {
    StageNameCasing,
    FromAsCasing,
    NoEmptyContinuation,
    ConsistentInstructionCasing,
    DuplicateStageName,
    ReservedStageName,
    JsonArgsRecommended,
    MaintainerDeprecated,
    UndefinedArgInFrom,
    WorkdirRelativePath,
    UndefinedVar,
    MultipleInstructionsDisallowed,
    LegacyKeyValueFormat,
    RedundantTargetPlatform,
    SecretsUsedInArgOrEnv,
    InvalidDefaultArgInFrom,
    FromPlatformFlagConstDisallowed,
    ExposeProtoCasing,
    ExposeInvalidFormat,
    InvalidBaseImagePlatform,
    /// Experimental: COPY or ADD of a context path `.dockerignore` excludes.
    CopyIgnoredFile,
    /// Experimental: the comment above a named FROM or an ARG does not start with the
    /// name it describes.
    InvalidDefinitionDescription,
}

impl Rule {
    /// The name `# check=skip=...` and the error message use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Rule::StageNameCasing => "StageNameCasing",
            Rule::FromAsCasing => "FromAsCasing",
            Rule::NoEmptyContinuation => "NoEmptyContinuation",
            Rule::ConsistentInstructionCasing => "ConsistentInstructionCasing",
            Rule::DuplicateStageName => "DuplicateStageName",
            Rule::ReservedStageName => "ReservedStageName",
            Rule::JsonArgsRecommended => "JSONArgsRecommended",
            Rule::MaintainerDeprecated => "MaintainerDeprecated",
            Rule::UndefinedArgInFrom => "UndefinedArgInFrom",
            Rule::WorkdirRelativePath => "WorkdirRelativePath",
            Rule::UndefinedVar => "UndefinedVar",
            Rule::MultipleInstructionsDisallowed => "MultipleInstructionsDisallowed",
            Rule::LegacyKeyValueFormat => "LegacyKeyValueFormat",
            Rule::RedundantTargetPlatform => "RedundantTargetPlatform",
            Rule::SecretsUsedInArgOrEnv => "SecretsUsedInArgOrEnv",
            Rule::InvalidDefaultArgInFrom => "InvalidDefaultArgInFrom",
            Rule::FromPlatformFlagConstDisallowed => "FromPlatformFlagConstDisallowed",
            Rule::ExposeProtoCasing => "ExposeProtoCasing",
            Rule::ExposeInvalidFormat => "ExposeInvalidFormat",
            Rule::InvalidBaseImagePlatform => "InvalidBaseImagePlatform",
            Rule::CopyIgnoredFile => "CopyIgnoredFile",
            Rule::InvalidDefinitionDescription => "InvalidDefinitionDescription",
        }
    }

    /// Experimental rules run only when the options name them; `skip` does not
    /// apply to them.
    fn experimental(self) -> bool {
        matches!(
            self,
            Rule::CopyIgnoredFile | Rule::InvalidDefinitionDescription
        )
    }
}

/// The check options: BuildKit's `linter.ParseLintOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LintConfig {
    skip_all: bool,
    skip: BTreeSet<String>,
    experimental_all: bool,
    experimental: BTreeSet<String>,
    /// A broken rule fails the build.
    pub(crate) error: bool,
}

impl LintConfig {
    /// Parses `skip=all|A,B;experimental=...;error=true|false` (at most three parts).
    pub(crate) fn parse(options: &str) -> Result<LintConfig, String> {
        let options = options.trim();
        let mut config = LintConfig::default();
        if options.is_empty() {
            return Ok(config);
        }
        for part in options.splitn(3, ';') {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!(
                    "invalid check option {}",
                    crate::gofmt::quote(part)
                ));
            };
            let value = value.trim();
            match key.trim() {
                "skip" if value == "all" => config.skip_all = true,
                "skip" => config.skip = value.split(',').map(|r| r.trim().to_string()).collect(),
                "experimental" if value == "all" => config.experimental_all = true,
                "experimental" => {
                    config.experimental = value.split(',').map(|r| r.trim().to_string()).collect()
                }
                "error" => {
                    config.error = parse_go_bool(value).ok_or_else(|| {
                        format!(
                            "failed to parse check option {}: strconv.ParseBool: parsing {}: invalid syntax",
                            crate::gofmt::quote(part),
                            crate::gofmt::quote(value)
                        )
                    })?
                }
                other => {
                    return Err(format!(
                        "invalid check option {}",
                        crate::gofmt::quote(other)
                    ));
                }
            }
        }
        Ok(config)
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// A rule a Dockerfile broke, as BuildKit reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintWarning {
    /// The rule's name, as `# check=skip=` takes it (`JSONArgsRecommended`).
    pub rule: &'static str,
    /// What is wrong, in BuildKit's words.
    pub message: String,
    /// The Dockerfile line it concerns; 0 when none.
    pub line: usize,
}

impl LintWarning {
    /// BuildKit's one-line form: `Rule: message (line N)`.
    pub fn short(&self) -> String {
        if self.line > 0 {
            format!("{}: {} (line {})", self.rule, self.message, self.line)
        } else {
            format!("{}: {}", self.rule, self.message)
        }
    }
}

/// Runs rules and remembers which ones a Dockerfile broke.
#[derive(Debug, Default)]
pub(crate) struct Linter {
    config: LintConfig,
    /// Each rule broken, in order, with its warning.
    broken: RefCell<Vec<(Rule, LintWarning)>>,
}

impl Linter {
    pub(crate) fn new(config: LintConfig) -> Linter {
        Linter {
            config,
            broken: RefCell::new(Vec::new()),
        }
    }

    /// Records that the Dockerfile broke `rule` at `line` (0: no line), `message`
    /// saying how, unless the rule is skipped.
    pub(crate) fn run(&self, rule: Rule, line: usize, message: impl Into<String>) {
        let off = if rule.experimental() {
            !self.config.experimental_all && !self.config.experimental.contains(rule.name())
        } else {
            self.config.skip_all || self.config.skip.contains(rule.name())
        };
        if off {
            return;
        }
        let warning = LintWarning {
            rule: rule.name(),
            message: message.into(),
            line,
        };
        self.broken.borrow_mut().push((rule, warning));
    }

    /// The warnings so far, in the order the rules were broken.
    pub(crate) fn warnings(&self) -> Vec<LintWarning> {
        self.broken
            .borrow()
            .iter()
            .map(|(_, w)| w.clone())
            .collect()
    }

    /// The build's failure when checks are errors and a rule was broken.
    pub(crate) fn error(&self) -> Option<String> {
        if !self.config.error {
            return None;
        }
        let broken = self.broken.borrow();
        let mut names: Vec<&str> = Vec::new();
        for (rule, _) in broken.iter() {
            if !names.contains(&rule.name()) {
                names.push(rule.name());
            }
        }
        (!names.is_empty()).then(|| format!("lint violation found for rules: {}", names.join(", ")))
    }

    /// The rules broken so far, in the order they were first broken.
    #[cfg(test)]
    pub(crate) fn broken(&self) -> Vec<Rule> {
        let mut out: Vec<Rule> = Vec::new();
        for (r, _) in self.broken.borrow().iter() {
            if !out.contains(r) {
                out.push(*r);
            }
        }
        out
    }
}

/// `ConsistentInstructionCasing` for keywords as written: each must be all lower or all
/// upper case, and of the case most keywords of the Dockerfile use.
/// `keywords` are the keywords with their lines.
pub(crate) fn check_keyword_casing(lint: &Linter, keywords: &[(&str, usize)]) {
    let consistent = |k: &str| k == k.to_lowercase() || k == k.to_uppercase();
    let (mut lower, mut upper) = (0, 0);
    for (k, _) in keywords.iter().filter(|(k, _)| consistent(k)) {
        if k.to_lowercase() == **k {
            lower += 1;
        } else {
            upper += 1;
        }
    }
    let majority_lower = lower > upper;
    for &(k, line) in keywords {
        let wrong = if majority_lower {
            k.to_lowercase() != k
        } else {
            k.to_uppercase() != k
        };
        if wrong {
            let casing = if majority_lower {
                "lowercase"
            } else {
                "uppercase"
            };
            lint.run(
                Rule::ConsistentInstructionCasing,
                line,
                format!("Command '{k}' should match the case of the command majority ({casing})"),
            );
        }
    }
}

/// `FromAsCasing`: the `AS` of `FROM image AS name` in the case of the `FROM`.
pub(crate) fn from_as_casing_matches(from: &str, as_keyword: &str) -> bool {
    let from_lower = from == from.to_lowercase();
    let from_upper = from == from.to_uppercase();
    if !from_lower && !from_upper {
        return true; // the keyword's own casing is another rule
    }
    if from_lower {
        as_keyword == as_keyword.to_lowercase()
    } else {
        as_keyword == as_keyword.to_uppercase()
    }
}

/// `InvalidDefinitionDescription`: a description comment above a named stage or an
/// ARG (`instruction`, at `line`) must start with one of the names it describes.
pub(crate) fn check_description(
    lint: &Linter,
    instruction: &str,
    line: usize,
    names: &[String],
    comments: &[String],
) {
    let (Some(last), Some(first_name)) = (comments.last(), names.first()) else {
        return;
    };
    let first_word = last.split(' ').next().unwrap_or("");
    if !names.iter().any(|n| n == first_word) {
        let example = if names.len() > 1 {
            "<arg_key>"
        } else {
            first_name
        };
        lint.run(
            Rule::InvalidDefinitionDescription,
            line,
            format!(
                "Comment for {instruction} should follow the format: `# {example} <description>`"
            ),
        );
    }
}

/// `SecretsUsedInArgOrEnv`: an ARG or ENV name that looks like it holds a secret
/// (`API_KEY`, `db_password`, `TOKEN`; `PUBLIC_KEY` is fine).
pub(crate) fn looks_like_secret(key: &str) -> bool {
    const SECRET: [&str; 10] = [
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    const ALLOWED: [&str; 1] = ["public"];
    let words: Vec<String> = key.split('_').map(|w| w.to_lowercase()).collect();
    // BuildKit's pattern: a token preceded by `_` or the start and followed by `_` or
    // the end, that is, one of the `_`-separated words.
    let has = |tokens: &[&str]| words.iter().any(|w| tokens.contains(&w.as_str()));
    has(&SECRET) && !has(&ALLOWED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_as_buildkit_reads_them() {
        let c = LintConfig::parse("skip=FromAsCasing, StageNameCasing;error=true").unwrap();
        assert!(c.error && !c.skip_all);
        assert!(c.skip.contains("StageNameCasing"));
        assert!(LintConfig::parse(" skip = all ").unwrap().skip_all);
        assert_eq!(LintConfig::parse("").unwrap(), LintConfig::default());
        assert!(LintConfig::parse("experimental=all;error=1").unwrap().error);
        assert_eq!(
            LintConfig::parse("foo").unwrap_err(),
            "invalid check option \"foo\""
        );
        assert_eq!(
            LintConfig::parse("bar=1").unwrap_err(),
            "invalid check option \"bar\""
        );
        assert!(LintConfig::parse("error=yes").is_err());
    }

    #[test]
    fn broken_rules_fail_only_with_error_true_and_unless_skipped() {
        let lint = Linter::new(LintConfig::parse("skip=FromAsCasing").unwrap());
        lint.run(Rule::FromAsCasing, 1, "");
        lint.run(Rule::MaintainerDeprecated, 1, "");
        assert_eq!(lint.error(), None);
        let lint = Linter::new(LintConfig::parse("skip=FromAsCasing;error=true").unwrap());
        lint.run(Rule::FromAsCasing, 1, "");
        assert_eq!(lint.error(), None);
        lint.run(Rule::MaintainerDeprecated, 1, "");
        lint.run(Rule::JsonArgsRecommended, 1, "");
        lint.run(Rule::MaintainerDeprecated, 1, "");
        assert_eq!(
            lint.error().unwrap(),
            "lint violation found for rules: MaintainerDeprecated, JSONArgsRecommended"
        );
        let lint = Linter::new(LintConfig::parse("skip=all;error=true").unwrap());
        lint.run(Rule::UndefinedVar, 1, "");
        lint.run(Rule::CopyIgnoredFile, 1, "");
        assert_eq!(lint.error(), None);
        // Experimental rules run when named, even with skip=all.
        let lint = Linter::new(
            LintConfig::parse("skip=all;experimental=CopyIgnoredFile;error=true").unwrap(),
        );
        lint.run(Rule::CopyIgnoredFile, 1, "");
        assert_eq!(
            lint.error().unwrap(),
            "lint violation found for rules: CopyIgnoredFile"
        );
    }

    #[test]
    fn keyword_casing_follows_the_majority() {
        let lint = Linter::new(LintConfig::default());
        check_keyword_casing(&lint, &[("FROM", 1), ("RUN", 2), ("copy", 3)]);
        assert_eq!(lint.broken(), [Rule::ConsistentInstructionCasing]);
        assert_eq!(
            lint.warnings()[0].short(),
            "ConsistentInstructionCasing: Command 'copy' should match the case of the command majority (uppercase) (line 3)"
        );
        let lint = Linter::new(LintConfig::default());
        check_keyword_casing(&lint, &[("from", 1), ("run", 2), ("Copy", 3)]);
        assert_eq!(lint.broken(), [Rule::ConsistentInstructionCasing]);
        let lint = Linter::new(LintConfig::default());
        check_keyword_casing(&lint, &[("FROM", 1), ("RUN", 2)]);
        check_keyword_casing(&lint, &[("from", 1), ("run", 2)]);
        assert!(lint.broken().is_empty());
    }

    #[test]
    fn descriptions_start_with_the_name() {
        let lint = Linter::new(LintConfig::parse("experimental=all").unwrap());
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        check_description(
            &lint,
            "FROM",
            1,
            &names(&["base"]),
            &names(&["base image for all"]),
        );
        check_description(
            &lint,
            "FROM",
            1,
            &names(&["a", "b"]),
            &names(&["x", "b sets b"]),
        );
        check_description(&lint, "FROM", 1, &names(&["base"]), &[]);
        assert!(lint.broken().is_empty());
        check_description(
            &lint,
            "FROM",
            1,
            &names(&["base"]),
            &names(&["the base image"]),
        );
        assert_eq!(lint.broken(), [Rule::InvalidDefinitionDescription]);
        check_description(
            &lint,
            "ARG",
            4,
            &names(&["a", "b"]),
            &names(&["sets a and b"]),
        );
        let shorts: Vec<String> = lint.warnings().iter().map(LintWarning::short).collect();
        assert_eq!(
            shorts,
            [
                "InvalidDefinitionDescription: Comment for FROM should follow the format: `# base <description>` (line 1)",
                "InvalidDefinitionDescription: Comment for ARG should follow the format: `# <arg_key> <description>` (line 4)",
            ]
        );
    }

    #[test]
    fn as_follows_from() {
        assert!(from_as_casing_matches("FROM", "AS"));
        assert!(from_as_casing_matches("from", "as"));
        assert!(!from_as_casing_matches("FROM", "as"));
        assert!(!from_as_casing_matches("from", "AS"));
        assert!(from_as_casing_matches("From", "as"));
    }

    #[test]
    fn secret_looking_names() {
        for k in [
            "API_KEY",
            "db_password",
            "TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "auth",
        ] {
            assert!(looks_like_secret(k), "{k}");
        }
        for k in [
            "PUBLIC_KEY",
            "KEYS",
            "monkey",
            "PASSWORDS",
            "NODE_ENV",
            "public_token",
        ] {
            assert!(!looks_like_secret(k), "{k}");
        }
    }
}
