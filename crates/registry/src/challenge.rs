//! Parsing `WWW-Authenticate` headers (RFC 7235): the scheme a registry asks for
//! (`Basic` or `Bearer`) and its parameters (`realm`, `service`, `scope`, `error`).
//!
//! One header may hold several challenges separated by commas, parameters may be
//! quoted strings with `\` escapes, and scheme and parameter names are
//! case-insensitive. A registry's challenges are a few bytes, so a small hand-written
//! scanner does the job.

use std::collections::BTreeMap;

/// One challenge: `Bearer realm="https://auth.example.com/token",service="registry"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// The scheme, lower-cased: `basic`, `bearer`.
    pub scheme: String,
    /// Parameters by lower-cased name.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parses every challenge in a header value; malformed trailing text is ignored.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut scanner = Scanner {
        bytes: header.as_bytes(),
        pos: 0,
    };
    let mut challenges = Vec::new();
    loop {
        scanner.skip(|b| b == b' ' || b == b'\t' || b == b',');
        if scanner.peek().is_none() {
            break;
        }
        let scheme = scanner.token();
        if scheme.is_empty() {
            // Stray text (a token68 value's padding, a lone quote): skip to the next
            // comma. The current byte is neither a comma nor a space, so this advances.
            scanner.skip(|b| b != b',');
            continue;
        }
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        loop {
            scanner.skip(|b| b == b' ' || b == b'\t' || b == b',');
            let mark = scanner.pos;
            let name = scanner.token();
            scanner.skip(|b| b == b' ' || b == b'\t');
            if name.is_empty() || !scanner.eat(b'=') {
                // Not a parameter: the start of the next challenge.
                scanner.pos = mark;
                break;
            }
            scanner.skip(|b| b == b' ' || b == b'\t');
            let value = if scanner.peek() == Some(b'"') {
                scanner.quoted()
            } else {
                scanner.token()
            };
            challenge.params.insert(name.to_ascii_lowercase(), value);
        }
        challenges.push(challenge);
    }
    challenges
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip(&mut self, mut keep_going: impl FnMut(u8) -> bool) {
        while self.peek().is_some_and(&mut keep_going) {
            self.pos += 1;
        }
    }

    /// An RFC 7230 token (`tchar`s).
    fn token(&mut self) -> String {
        let start = self.pos;
        self.skip(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b));
        String::from_utf8_lossy(&self.bytes[start..self.pos]).into_owned()
    }

    /// A quoted string starting at `"`, with `\` escapes; an unterminated one runs to
    /// the end.
    fn quoted(&mut self) -> String {
        let mut out = Vec::new();
        self.pos += 1;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.pos += 1;
                    }
                }
                other => out.push(other),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn docker_hub_bearer_challenge() {
        let got = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(
            got,
            [Challenge {
                scheme: "bearer".into(),
                params: params(&[
                    ("realm", "https://auth.docker.io/token"),
                    ("service", "registry.docker.io"),
                    ("scope", "repository:library/busybox:pull"),
                ]),
            }]
        );
        assert_eq!(got[0].param("service"), Some("registry.docker.io"));
    }

    #[test]
    fn basic_challenge_and_case_insensitivity() {
        assert_eq!(
            parse_challenges(r#"BASIC Realm="basic-realm""#),
            [Challenge {
                scheme: "basic".into(),
                params: params(&[("realm", "basic-realm")]),
            }]
        );
        assert_eq!(parse_challenges("Basic")[0].scheme, "basic");
    }

    #[test]
    fn several_challenges_in_one_header() {
        let got = parse_challenges(
            r#"Basic realm="r1", Bearer realm="https://t/token", service=reg , error="insufficient_scope""#,
        );
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].scheme, "basic");
        assert_eq!(got[0].params, params(&[("realm", "r1")]));
        assert_eq!(got[1].scheme, "bearer");
        assert_eq!(
            got[1].params,
            params(&[
                ("realm", "https://t/token"),
                ("service", "reg"),
                ("error", "insufficient_scope")
            ])
        );
    }

    #[test]
    fn quoted_strings_keep_commas_and_escapes() {
        let got = parse_challenges(
            r#"Bearer realm="https://t/token",scope="repository:a:pull,push repository:b:pull",x="say \"hi\"""#,
        );
        assert_eq!(
            got[0].param("scope"),
            Some("repository:a:pull,push repository:b:pull")
        );
        assert_eq!(got[0].param("x"), Some(r#"say "hi""#));
    }

    #[test]
    fn junk_does_not_loop_or_panic() {
        for junk in [
            "",
            ",,,",
            "=",
            "Bearer =",
            "Bearer realm=\"unterminated",
            "Bearer abc==, Basic realm=x",
            "\"",
            "Bearer realm=\"a\" junk junk",
            "é",
        ] {
            let _ = parse_challenges(junk);
        }
        let got = parse_challenges("Bearer abc==, Basic realm=x");
        assert_eq!(
            got.last().map(|c| c.scheme.as_str()),
            Some("basic"),
            "{got:?}"
        );
        assert!(parse_challenges("").is_empty());
    }
}
