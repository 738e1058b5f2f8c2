//! Image references: parsing and normalizing `busybox`, `localhost:5000/x:tag`,
//! `name@sha256:…` the way Docker does (`distribution/reference`'s
//! `ParseNormalizedNamed`), and printing them in full or familiar form.
//!
//! The grammar is the one of `distribution/reference`, written as the same regular
//! expressions so that what Docker accepts and rejects, kiln accepts and rejects:
//!
//! - a name is an optional domain (the first `/`-separated component, when it holds a
//!   `.` or a `:`, is `localhost`, or has an upper-case letter) and a lower-case path of
//!   components separated by `.`, `_`, `__` or runs of `-`; the path is at most 255
//!   characters;
//! - a name without a domain is on Docker Hub (`docker.io`), and a one-component Docker
//!   Hub path is an official image under `library/`; `index.docker.io` means `docker.io`;
//! - a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; a reference with neither tag nor
//!   digest gets the tag `latest`; a reference may carry both a tag and a digest.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use kiln_graph::Digest;
use regex::Regex;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The domain older clients wrote for Docker Hub; normalized to [`DOCKER_HUB`].
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// Prefix of Docker Hub's official images.
const OFFICIAL_PREFIX: &str = "library/";
/// The tag of a reference that names none.
pub const DEFAULT_TAG: &str = "latest";
/// The longest repository path `distribution/reference` accepts.
pub const MAX_PATH_LENGTH: usize = 255;

// The building blocks of `distribution/reference`'s grammar (regexp.go). `\w` is spelled
// out as an ASCII class: Go's `\w` is ASCII-only, Rust's is Unicode-aware.
const ALPHANUMERIC: &str = r"[a-z0-9]+";
const SEPARATOR: &str = r"(?:[._]|__|[-]+)";
const DOMAIN_COMPONENT: &str = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const IPV6_ADDRESS: &str = r"\[(?:[a-fA-F0-9:]+)\]";
const OPTIONAL_PORT: &str = r"(?::[0-9]+)?";
const TAG: &str = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
const DIGEST: &str = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";

fn domain_and_port() -> String {
    let domain_name = format!(r"{DOMAIN_COMPONENT}(?:\.{DOMAIN_COMPONENT})*");
    format!(r"(?:{domain_name}|{IPV6_ADDRESS}){OPTIONAL_PORT}")
}

fn remote_name() -> String {
    let component = format!("{ALPHANUMERIC}(?:{SEPARATOR}{ALPHANUMERIC})*");
    format!("{component}(?:/{component})*")
}

/// `^(name)(?::(tag))?(?:@(digest))?$`
static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    let name = format!("(?:{}/)?{}", domain_and_port(), remote_name());
    compile(&format!("^({name})(?::({TAG}))?(?:@({DIGEST}))?$"))
});

/// `^(?:(domain)/)?(path)$`, splitting a matched name.
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        "^(?:({})/)?({})$",
        domain_and_port(),
        remote_name()
    ))
});

static TAG_ONLY: LazyLock<Regex> = LazyLock::new(|| compile(&format!("^{TAG}$")));

static HEX_IDENTIFIER: LazyLock<Regex> = LazyLock::new(|| compile("^[a-f0-9]{64}$"));

fn compile(pattern: &str) -> Regex {
    // The patterns are constants of this module; a failure is a bug caught by every test.
    Regex::new(pattern).unwrap_or_else(|e| panic!("reference grammar does not compile: {e}"))
}

/// Why a string is not a valid reference. The wording is Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceProblem {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
    #[error("repository name must not be more than {MAX_PATH_LENGTH} characters")]
    TooLong,
    #[error("invalid repository name, cannot specify 64-byte hexadecimal strings")]
    HexIdentifier,
    #[error("invalid tag format")]
    InvalidTag,
    #[error("unsupported digest algorithm {0:?}: kiln handles sha256 digests")]
    UnsupportedDigest(String),
    #[error("invalid checksum digest length")]
    InvalidDigest,
}

/// A string that is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot parse reference {input:?}: {problem}")]
pub struct ReferenceError {
    pub input: String,
    pub problem: ReferenceProblem,
}

/// A repository on a registry: `docker.io/library/busybox`, `127.0.0.1:5000/testbed/busybox`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Repository {
    registry: String,
    path: String,
}

impl Repository {
    /// Parses a repository name (no tag or digest), normalized as Docker does.
    pub fn parse(input: &str) -> Result<Repository, ReferenceError> {
        match parse_normalized(input) {
            Ok(Parsed {
                repository,
                tag: None,
                digest: None,
            }) => Ok(repository),
            Ok(_) => Err(ReferenceProblem::InvalidFormat),
            Err(problem) => Err(problem),
        }
        .map_err(|problem| ReferenceError {
            input: input.to_string(),
            problem,
        })
    }

    /// The registry as written in references: `docker.io`, `localhost:5000`, `[::1]:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The path within the registry: `library/busybox`, `testbed/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The short name Docker shows: `busybox`, `user/app`, `localhost:5000/x`.
    pub fn familiar(&self) -> String {
        if self.registry != DOCKER_HUB {
            return self.to_string();
        }
        match self.path.strip_prefix(OFFICIAL_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

impl FromStr for Repository {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Repository::parse(s)
    }
}

/// A normalized image reference: a repository with a tag, a digest, or both.
///
/// `Display` gives the full form (`docker.io/library/busybox:latest`), [`familiar`]
/// the short one Docker shows (`busybox:latest`).
///
/// [`familiar`]: Reference::familiar
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    repository: Repository,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalizes a reference as `docker pull` does; a reference with neither
    /// tag nor digest gets the tag `latest`.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let parsed = parse_normalized(input).map_err(|problem| ReferenceError {
            input: input.to_string(),
            problem,
        })?;
        let tag = match (&parsed.tag, &parsed.digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            _ => parsed.tag,
        };
        Ok(Reference {
            repository: parsed.repository,
            tag,
            digest: parsed.digest,
        })
    }

    /// A reference to `repository` with the given tag.
    pub fn with_tag(repository: Repository, tag: &str) -> Result<Reference, ReferenceError> {
        if !TAG_ONLY.is_match(tag) {
            return Err(ReferenceError {
                input: tag.to_string(),
                problem: ReferenceProblem::InvalidTag,
            });
        }
        Ok(Reference {
            repository,
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// A reference to `repository` pinned to `digest`, without a tag.
    pub fn with_digest(repository: Repository, digest: Digest) -> Reference {
        Reference {
            repository,
            tag: None,
            digest: Some(digest),
        }
    }

    /// This reference pinned to `digest`, keeping its tag (`name:tag@digest`).
    pub fn pinned(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    pub fn repository(&self) -> &Repository {
        &self.repository
    }

    /// The registry as written in the reference (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.repository.registry
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What the registry's manifest endpoint is asked for: the digest when pinned (a
    /// digest wins over a tag, as in containerd), else the tag.
    pub fn object(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The short form Docker shows: `busybox:latest`, `user/app@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut out = self.repository.familiar();
        self.write_suffix(&mut out);
        out
    }

    fn write_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.repository.to_string();
        self.write_suffix(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// A reference as written: the tag and digest are there only if the input had them.
struct Parsed {
    repository: Repository,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// `ParseNormalizedNamed`.
fn parse_normalized(input: &str) -> Result<Parsed, ReferenceProblem> {
    if HEX_IDENTIFIER.is_match(input) {
        return Err(ReferenceProblem::HexIdentifier);
    }
    let (domain, remainder) = split_docker_domain(input);
    let remote = remainder.split(':').next().unwrap_or_default();
    if remote.to_lowercase() != remote {
        return Err(ReferenceProblem::Uppercase);
    }
    let full = format!("{domain}/{remainder}");
    let Some(captures) = REFERENCE.captures(&full) else {
        if REFERENCE.is_match(&full.to_lowercase()) {
            return Err(ReferenceProblem::Uppercase);
        }
        return Err(ReferenceProblem::InvalidFormat);
    };
    let name = captures.get(1).map_or("", |m| m.as_str());
    let (registry, path) = match NAME.captures(name) {
        Some(parts) => (
            parts.get(1).map_or("", |m| m.as_str()),
            parts.get(2).map_or("", |m| m.as_str()),
        ),
        None => return Err(ReferenceProblem::InvalidFormat),
    };
    if path.len() > MAX_PATH_LENGTH {
        return Err(ReferenceProblem::TooLong);
    }
    if registry.is_empty() {
        // The domain was prepended above, so every match has one.
        return Err(ReferenceProblem::InvalidFormat);
    }
    let tag = captures.get(2).map(|m| m.as_str().to_string());
    let digest = captures
        .get(3)
        .map(|m| parse_digest(m.as_str()))
        .transpose()?;
    Ok(Parsed {
        repository: Repository {
            registry: registry.to_string(),
            path: path.to_string(),
        },
        tag,
        digest,
    })
}

/// Splits the domain off a name as `splitDockerDomain` does: the first component is a
/// domain when it is `localhost`, holds a `.` or `:`, or has an upper-case letter.
fn split_docker_domain(name: &str) -> (String, String) {
    let Some((first, rest)) = name.split_once('/') else {
        return (DOCKER_HUB.to_string(), format!("{OFFICIAL_PREFIX}{name}"));
    };
    let (domain, remainder) = if first == LEGACY_DOCKER_HUB {
        (DOCKER_HUB, rest)
    } else if first == "localhost" || first.contains(['.', ':']) || first.to_lowercase() != first {
        (first, rest)
    } else {
        (DOCKER_HUB, name)
    };
    if domain == DOCKER_HUB && !remainder.contains('/') {
        return (domain.to_string(), format!("{OFFICIAL_PREFIX}{remainder}"));
    }
    (domain.to_string(), remainder.to_string())
}

/// go-digest's `Parse` for the algorithms it knows; kiln stores sha256 only.
fn parse_digest(text: &str) -> Result<Digest, ReferenceProblem> {
    let (algorithm, hex) = text
        .split_once(':')
        .ok_or(ReferenceProblem::InvalidDigest)?;
    if algorithm != "sha256" {
        return Err(ReferenceProblem::UnsupportedDigest(algorithm.to_string()));
    }
    if hex.len() != 64 {
        return Err(ReferenceProblem::InvalidDigest);
    }
    text.parse().map_err(|_| ReferenceProblem::InvalidDigest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "ab8d3ad4ea6e5c6d5e2bde4a5c8c1b7e4d6f0f3a9b1c2d3e4f5a6b7c8d9e0f1a";

    fn full(input: &str) -> String {
        match Reference::parse(input) {
            Ok(r) => r.to_string(),
            Err(e) => panic!("{input:?} rejected: {e}"),
        }
    }

    fn problem(input: &str) -> ReferenceProblem {
        match Reference::parse(input) {
            Ok(r) => panic!("{input:?} accepted as {r}"),
            Err(e) => e.problem,
        }
    }

    #[test]
    fn normalizes_like_docker() {
        let d = format!("sha256:{HEX}");
        let table: Vec<(String, String)> = vec![
            ("busybox".into(), "docker.io/library/busybox:latest".into()),
            (
                "busybox:1.36".into(),
                "docker.io/library/busybox:1.36".into(),
            ),
            (
                "library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "index.docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "index.docker.io/user/app:v1".into(),
                "docker.io/user/app:v1".into(),
            ),
            ("user/app".into(), "docker.io/user/app:latest".into()),
            (
                "user/app/sub".into(),
                "docker.io/user/app/sub:latest".into(),
            ),
            (
                "docker.io/library/a/b".into(),
                "docker.io/library/a/b:latest".into(),
            ),
            ("localhost/x".into(), "localhost/x:latest".into()),
            ("localhost:5000/x".into(), "localhost:5000/x:latest".into()),
            (
                "localhost".into(),
                "docker.io/library/localhost:latest".into(),
            ),
            (
                "localhost:5000".into(),
                "docker.io/library/localhost:5000".into(),
            ),
            (
                "127.0.0.1:5000/testbed/busybox:latest".into(),
                "127.0.0.1:5000/testbed/busybox:latest".into(),
            ),
            ("[::1]:5000/x:y".into(), "[::1]:5000/x:y".into()),
            ("[2001:db8::1]/x".into(), "[2001:db8::1]/x:latest".into()),
            ("example.com/a/b".into(), "example.com/a/b:latest".into()),
            ("Example.com/a".into(), "Example.com/a:latest".into()),
            // An upper-case first component is taken as a domain, as in Docker.
            ("Foo/bar".into(), "Foo/bar:latest".into()),
            (
                "host:5000/a__b/c--d.e_f:TAG_1.0-x".into(),
                "host:5000/a__b/c--d.e_f:TAG_1.0-x".into(),
            ),
            (
                format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
            ),
            (
                format!("busybox:1.36@{d}"),
                format!("docker.io/library/busybox:1.36@{d}"),
            ),
            (
                format!("localhost:5000/x@{d}"),
                format!("localhost:5000/x@{d}"),
            ),
            (
                format!("{}/x", "a".repeat(63)),
                format!("docker.io/{}/x:latest", "a".repeat(63)),
            ),
        ];
        for (input, want) in table {
            assert_eq!(full(&input), want, "input {input:?}");
        }
    }

    #[test]
    fn familiar_form_is_what_docker_shows() {
        let d = format!("sha256:{HEX}");
        let table: Vec<(String, String)> = vec![
            ("busybox".into(), "busybox:latest".into()),
            ("docker.io/library/busybox:1".into(), "busybox:1".into()),
            ("user/app".into(), "user/app:latest".into()),
            ("library/a/b".into(), "library/a/b:latest".into()),
            ("localhost:5000/x".into(), "localhost:5000/x:latest".into()),
            (format!("busybox@{d}"), format!("busybox@{d}")),
            (format!("user/app:v1@{d}"), format!("user/app:v1@{d}")),
        ];
        for (input, want) in table {
            assert_eq!(
                Reference::parse(&input).unwrap().familiar(),
                want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn parts_are_exposed() {
        let r = Reference::parse("127.0.0.1:5000/testbed/busybox:latest").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository().path(), "testbed/busybox");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.object(), "latest");

        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        let pinned = r.pinned(d.clone());
        assert_eq!(
            pinned.to_string(),
            format!("127.0.0.1:5000/testbed/busybox:latest@{d}")
        );
        assert_eq!(pinned.object(), d.to_string());
        assert_eq!(
            Reference::with_digest(r.repository().clone(), d.clone()).tag(),
            None
        );
    }

    #[test]
    fn rejects_what_docker_rejects() {
        use ReferenceProblem::*;
        let long_path = format!("a/{}", "b".repeat(254));
        let table: Vec<(String, ReferenceProblem)> = vec![
            ("".into(), InvalidFormat),
            ("Busybox".into(), Uppercase),
            ("user/Busybox".into(), Uppercase),
            ("localhost:5000/Foo".into(), Uppercase),
            ("busybox:".into(), InvalidFormat),
            (":tag".into(), InvalidFormat),
            ("busybox@".into(), InvalidFormat),
            ("-busybox".into(), InvalidFormat),
            ("busybox-".into(), InvalidFormat),
            ("bus..box".into(), InvalidFormat),
            ("bus___box".into(), InvalidFormat),
            ("a//b".into(), InvalidFormat),
            ("a/".into(), InvalidFormat),
            ("/a".into(), InvalidFormat),
            ("host:port/x".into(), InvalidFormat),
            ("-host.com/x".into(), InvalidFormat),
            ("busybox:-tag".into(), InvalidFormat),
            (format!("busybox:{}", "t".repeat(129)), InvalidFormat),
            ("busybox@sha256:abc".into(), InvalidFormat),
            (format!("busybox@sha256:{}", &HEX[..40]), InvalidDigest),
            (format!("busybox@sha256:{HEX}00"), InvalidDigest),
            (
                format!("busybox@sha512:{HEX}{HEX}"),
                UnsupportedDigest("sha512".into()),
            ),
            (
                format!("busybox@md5:{HEX}"),
                UnsupportedDigest("md5".into()),
            ),
            (HEX.into(), HexIdentifier),
            (long_path, TooLong),
            ("busy box".into(), InvalidFormat),
            ("büsybox".into(), InvalidFormat),
        ];
        for (input, want) in table {
            assert_eq!(problem(&input), want, "input {input:?}");
        }
    }

    #[test]
    fn path_length_limit_counts_the_path_only() {
        // 255 characters of path is the limit; the domain does not count.
        let path = format!("a/{}", "b".repeat(253));
        assert_eq!(path.len(), 255);
        assert!(Reference::parse(&format!("example.com/{path}")).is_ok());
        let path = format!("a/{}", "b".repeat(254));
        assert_eq!(
            problem(&format!("example.com/{path}")),
            ReferenceProblem::TooLong
        );
    }

    #[test]
    fn errors_quote_the_input_and_use_dockers_words() {
        let err = Reference::parse("Busybox").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot parse reference \"Busybox\": invalid reference format: repository name must be lowercase"
        );
    }

    #[test]
    fn repositories_parse_without_tags() {
        let repo = Repository::parse("127.0.0.1:5000/testbed/busybox").unwrap();
        assert_eq!(repo.to_string(), "127.0.0.1:5000/testbed/busybox");
        assert_eq!(Repository::parse("busybox").unwrap().familiar(), "busybox");
        assert_eq!(
            Repository::parse("localhost:5000/x").unwrap().to_string(),
            "localhost:5000/x"
        );
        assert!(Repository::parse("busybox:latest").is_err());
        assert!(Repository::parse(&format!("busybox@sha256:{HEX}")).is_err());
    }

    #[test]
    fn with_tag_validates_the_tag() {
        let repo = Repository::parse("busybox").unwrap();
        assert_eq!(
            Reference::with_tag(repo.clone(), "v1.2")
                .unwrap()
                .to_string(),
            "docker.io/library/busybox:v1.2"
        );
        assert_eq!(
            Reference::with_tag(repo, "bad tag").unwrap_err().problem,
            ReferenceProblem::InvalidTag
        );
    }
}
