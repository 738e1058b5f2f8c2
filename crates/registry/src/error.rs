//! The crate's error: what was being done, what went wrong (naming the registry, the
//! repository, the blob), and a kind a caller can branch on.

use std::fmt;
use std::time::Duration;

use crate::credentials::CredentialError;
use crate::reference::ReferenceError;

/// A failed registry operation: `failed to <action>: <problem>`.
///
/// ```text
/// failed to resolve 127.0.0.1:5999/testbed/busybox:latest: cannot connect to registry 127.0.0.1:5999: connection refused
/// ```
#[derive(Debug, thiserror::Error)]
#[error("failed to {action}: {problem}")]
pub struct Error {
    action: String,
    problem: Box<Problem>,
}

impl Error {
    pub(crate) fn new(action: impl Into<String>, problem: Problem) -> Error {
        Error {
            action: action.into(),
            problem: Box::new(problem),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.problem.kind()
    }

    /// What was being done: `resolve docker.io/library/busybox:latest`, `push blob sha256:… to …`.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// What went wrong.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

/// The kinds of failure a caller may treat differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The reference text is not a valid image reference.
    InvalidReference,
    /// Credentials could not be read (config file, credential helper).
    Credentials,
    /// The registry could not be reached (DNS, connection refused, TLS).
    Unreachable,
    /// The registry stopped answering within the configured time.
    Timeout,
    /// The registry refused the credentials, or the lack of them (401, 403).
    Unauthorized,
    /// The manifest, tag, blob or repository does not exist (404).
    NotFound,
    /// What the registry sent does not match what was asked for: wrong digest or size,
    /// too large, not valid JSON.
    InvalidContent,
    /// The content is of a kind kiln does not handle (Docker schema 1, unknown media types).
    Unsupported,
    /// An index has no image for the requested platform.
    NoMatchingPlatform,
    /// The registry answered with an unexpected status or a malformed response.
    Registry,
    /// Reading the caller's source or writing the caller's sink failed.
    Io,
}

/// What went wrong, with the context that lets a user act.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    #[error("{0}")]
    Reference(#[from] ReferenceError),

    #[error("{0}")]
    Credentials(#[from] CredentialError),

    #[error("cannot connect to registry {registry}: {reason}")]
    Unreachable { registry: String, reason: String },

    #[error("registry {registry} did not answer {request} within {}", seconds(*.after))]
    Timeout {
        registry: String,
        request: String,
        after: Duration,
    },

    #[error("registry {registry} refused {request}: {status}{}", detail(.message))]
    Unauthorized {
        registry: String,
        request: String,
        status: String,
        message: String,
    },

    #[error("{what} not found in {location}{}", detail(.message))]
    NotFound {
        what: String,
        location: String,
        message: String,
    },

    #[error("registry {registry} answered {request} with {status}{}", detail(.message))]
    UnexpectedStatus {
        registry: String,
        request: String,
        status: String,
        message: String,
    },

    #[error("registry {registry} sent a malformed response to {request}: {reason}")]
    Protocol {
        registry: String,
        request: String,
        reason: String,
    },

    #[error("{what} from {location} has digest {actual} (expected {expected})")]
    DigestMismatch {
        what: String,
        location: String,
        actual: String,
        expected: String,
    },

    #[error("{what} from {location} has {actual} bytes (expected {expected})")]
    SizeMismatch {
        what: String,
        location: String,
        actual: u64,
        expected: u64,
    },

    #[error("{what} from {location} is larger than the limit of {limit} bytes")]
    TooLarge {
        what: String,
        location: String,
        limit: u64,
    },

    #[error("download of {what} from {location} broke off after {received} bytes: {reason}")]
    Interrupted {
        what: String,
        location: String,
        received: u64,
        reason: String,
    },

    #[error("{what} from {location} is not valid: {reason}")]
    InvalidContent {
        what: String,
        location: String,
        reason: String,
    },

    #[error("{what} from {location} has media type {media_type:?}, which kiln does not support{}", detail(.hint))]
    Unsupported {
        what: String,
        location: String,
        media_type: String,
        hint: String,
    },

    #[error("no image for platform {wanted} in {location} (available: {})", list(.available))]
    NoMatchingPlatform {
        wanted: String,
        location: String,
        available: Vec<String>,
    },

    #[error("cannot {operation} {what}: {source}")]
    Io {
        operation: &'static str,
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Other(String),
}

impl Problem {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Problem::Reference(_) => ErrorKind::InvalidReference,
            Problem::Credentials(_) => ErrorKind::Credentials,
            Problem::Unreachable { .. } => ErrorKind::Unreachable,
            Problem::Timeout { .. } => ErrorKind::Timeout,
            Problem::Unauthorized { .. } => ErrorKind::Unauthorized,
            Problem::NotFound { .. } => ErrorKind::NotFound,
            Problem::UnexpectedStatus { .. } | Problem::Protocol { .. } | Problem::Other(_) => {
                ErrorKind::Registry
            }
            Problem::DigestMismatch { .. }
            | Problem::SizeMismatch { .. }
            | Problem::TooLarge { .. }
            | Problem::Interrupted { .. }
            | Problem::InvalidContent { .. } => ErrorKind::InvalidContent,
            Problem::Unsupported { .. } => ErrorKind::Unsupported,
            Problem::NoMatchingPlatform { .. } => ErrorKind::NoMatchingPlatform,
            Problem::Io { .. } => ErrorKind::Io,
        }
    }
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

fn seconds(d: Duration) -> impl fmt::Display {
    let secs = d.as_secs_f64();
    if secs >= 1.0 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_one_sentence() {
        let e = Error::new(
            "resolve 127.0.0.1:5999/testbed/busybox:latest",
            Problem::Unreachable {
                registry: "127.0.0.1:5999".into(),
                reason: "connection refused".into(),
            },
        );
        assert_eq!(
            e.to_string(),
            "failed to resolve 127.0.0.1:5999/testbed/busybox:latest: cannot connect to registry 127.0.0.1:5999: connection refused"
        );
        assert_eq!(e.kind(), ErrorKind::Unreachable);

        let e = Problem::NoMatchingPlatform {
            wanted: "linux/s390x".into(),
            location: "x".into(),
            available: vec!["linux/amd64".into(), "linux/arm64".into()],
        };
        assert_eq!(
            e.to_string(),
            "no image for platform linux/s390x in x (available: linux/amd64, linux/arm64)"
        );
        let e = Problem::Timeout {
            registry: "r".into(),
            request: "GET x".into(),
            after: Duration::from_millis(300),
        };
        assert_eq!(
            e.to_string(),
            "registry r did not answer GET x within 300ms"
        );
        assert_eq!(e.kind(), ErrorKind::Timeout);
    }
}
