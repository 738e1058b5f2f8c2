//! Registry authentication: what each registry asked for (Basic or a Bearer token
//! service), the credentials looked up for it, and bearer tokens cached per registry
//! and scope.
//!
//! A request first goes out with whatever is known: Basic credentials for a registry
//! that asked for Basic, a cached (or freshly fetched) token for a registry with a
//! token service, nothing for a registry not yet seen. On a 401 the registry's
//! `WWW-Authenticate` challenge is read, a token is fetched from its `realm` for the
//! request's scopes (anonymously, with Basic credentials, or by trading an identity
//! token through the OAuth2 `refresh_token` grant), and the request is repeated once.
//!
//! Scopes are `repository:<path>:pull` for reads, `repository:<path>:pull,push` for
//! writes, plus `repository:<source>:pull` when mounting from another repository; a
//! scope the challenge names is added to them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Url;
use serde::Deserialize;

use crate::challenge::Challenge;
use crate::credentials::Credential;
use crate::error::Problem;

/// A token is dropped this long before the registry says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// Tokens without a lifetime live this long (the distribution spec's minimum).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// The `client_id` sent to token services.
const CLIENT_ID: &str = "kiln";

/// How a registry wants to be authenticated, as its challenge said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scheme {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// What the client has learned about authentication, shared by all its requests.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    schemes: Mutex<HashMap<String, Scheme>>,
    tokens: Mutex<HashMap<(String, String), Token>>,
    credentials: Mutex<HashMap<String, Option<Credential>>>,
}

#[derive(Debug, Clone)]
struct Token {
    value: String,
    valid_until: Instant,
}

/// The scope string for reading a repository.
pub(crate) fn pull_scope(path: &str) -> String {
    format!("repository:{path}:pull")
}

/// The scope string for writing a repository.
pub(crate) fn push_scope(path: &str) -> String {
    format!("repository:{path}:pull,push")
}

fn scope_key(scopes: &[String]) -> String {
    let mut sorted = scopes.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted.join(" ")
}

impl AuthState {
    pub(crate) fn scheme(&self, registry: &str) -> Option<Scheme> {
        lock(&self.schemes).get(registry).cloned()
    }

    pub(crate) fn set_scheme(&self, registry: &str, scheme: Scheme) {
        lock(&self.schemes).insert(registry.to_string(), scheme);
    }

    pub(crate) fn cached_credential(&self, registry: &str) -> Option<Option<Credential>> {
        lock(&self.credentials).get(registry).cloned()
    }

    pub(crate) fn remember_credential(&self, registry: &str, credential: Option<Credential>) {
        lock(&self.credentials).insert(registry.to_string(), credential);
    }

    pub(crate) fn token(&self, registry: &str, scopes: &[String]) -> Option<String> {
        let key = (registry.to_string(), scope_key(scopes));
        let tokens = lock(&self.tokens);
        tokens
            .get(&key)
            .filter(|t| t.valid_until > Instant::now())
            .map(|t| t.value.clone())
    }

    pub(crate) fn store_token(
        &self,
        registry: &str,
        scopes: &[String],
        value: String,
        lifetime: Duration,
    ) {
        let valid_until = Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN);
        lock(&self.tokens).insert(
            (registry.to_string(), scope_key(scopes)),
            Token { value, valid_until },
        );
    }

    pub(crate) fn forget_token(&self, registry: &str, scopes: &[String]) {
        lock(&self.tokens).remove(&(registry.to_string(), scope_key(scopes)));
    }
}

/// A poisoned lock only means another request panicked mid-update of a cache; the
/// cache is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The challenge to answer: Bearer if offered, else Basic.
pub(crate) fn pick_scheme(challenges: &[Challenge]) -> Option<Scheme> {
    let bearer = challenges
        .iter()
        .find(|c| c.scheme == "bearer")
        .and_then(|c| {
            c.param("realm").map(|realm| Scheme::Bearer {
                realm: realm.to_string(),
                service: c.param("service").map(str::to_string),
            })
        });
    bearer.or_else(|| {
        challenges
            .iter()
            .any(|c| c.scheme == "basic")
            .then_some(Scheme::Basic)
    })
}

/// Scopes a challenge names beyond the ones asked for (`scope="a b"`).
pub(crate) fn challenge_scopes(challenges: &[Challenge]) -> Vec<String> {
    challenges
        .iter()
        .filter(|c| c.scheme == "bearer")
        .filter_map(|c| c.param("scope"))
        .flat_map(|s| s.split(' '))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The `Authorization` header value for Basic credentials.
pub(crate) fn basic_header(username: &str, password: &str) -> String {
    let raw = format!("{username}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A token service's answer.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// How to ask a token service for a token.
pub(crate) enum TokenRequest {
    /// `GET realm?service=…&scope=…`, with Basic credentials if any.
    Get { url: Url, basic: Option<String> },
    /// `POST realm` with the OAuth2 `refresh_token` grant form.
    Post {
        url: Url,
        form: Vec<(String, String)>,
    },
}

/// Builds the token request for `scopes` at `realm` with `credential`.
pub(crate) fn token_request(
    registry: &str,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    credential: Option<&Credential>,
) -> Result<TokenRequest, Problem> {
    let mut url = Url::parse(realm).map_err(|e| Problem::Protocol {
        registry: registry.to_string(),
        request: "authentication".to_string(),
        reason: format!("token realm {realm:?} is not a URL: {e}"),
    })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(Problem::Protocol {
            registry: registry.to_string(),
            request: "authentication".to_string(),
            reason: format!("token realm {realm:?} is not an http(s) URL"),
        });
    }
    match credential {
        Some(Credential::IdentityToken { token, .. }) => {
            let mut form = vec![
                ("grant_type".to_string(), "refresh_token".to_string()),
                ("refresh_token".to_string(), token.clone()),
                ("client_id".to_string(), CLIENT_ID.to_string()),
            ];
            if let Some(service) = service {
                form.push(("service".to_string(), service.to_string()));
            }
            if !scopes.is_empty() {
                form.push(("scope".to_string(), scopes.join(" ")));
            }
            Ok(TokenRequest::Post { url, form })
        }
        other => {
            {
                let mut query = url.query_pairs_mut();
                if let Some(service) = service {
                    query.append_pair("service", service);
                }
                for scope in scopes {
                    query.append_pair("scope", scope);
                }
                if let Some(Credential::Basic { username, .. }) = other {
                    query.append_pair("account", username);
                    query.append_pair("client_id", CLIENT_ID);
                    query.append_pair("offline_token", "true");
                }
            }
            let basic = match other {
                Some(Credential::Basic { username, password }) => {
                    Some(basic_header(username, password))
                }
                _ => None,
            };
            Ok(TokenRequest::Get { url, basic })
        }
    }
}

/// Reads a token service's answer: the token and how long it lives.
pub(crate) fn parse_token_answer(
    registry: &str,
    body: &[u8],
) -> Result<(String, Duration), Problem> {
    let malformed = |reason: String| Problem::Protocol {
        registry: registry.to_string(),
        request: "token request".to_string(),
        reason,
    };
    let answer: TokenAnswer = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("token answer is not JSON: {e}")))?;
    let token = answer
        .token
        .filter(|t| !t.is_empty())
        .or(answer.access_token.filter(|t| !t.is_empty()))
        .ok_or_else(|| malformed("token answer holds no token".to_string()))?;
    let lifetime = answer
        .expires_in
        .map(Duration::from_secs)
        .filter(|d| *d >= DEFAULT_TOKEN_LIFETIME)
        .unwrap_or(DEFAULT_TOKEN_LIFETIME);
    Ok((token, lifetime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::challenge::parse_challenges;

    #[test]
    fn bearer_is_preferred_over_basic() {
        let c =
            parse_challenges(r#"Basic realm="x", Bearer realm="https://auth/token",service="reg""#);
        assert_eq!(
            pick_scheme(&c),
            Some(Scheme::Bearer {
                realm: "https://auth/token".into(),
                service: Some("reg".into())
            })
        );
        assert_eq!(
            pick_scheme(&parse_challenges(r#"Basic realm="x""#)),
            Some(Scheme::Basic)
        );
        assert_eq!(
            pick_scheme(&parse_challenges(r#"Bearer service="no-realm""#)),
            None
        );
        assert_eq!(pick_scheme(&parse_challenges("Negotiate")), None);
    }

    #[test]
    fn token_requests_carry_service_scopes_and_credentials() {
        let scopes = vec![push_scope("a/b"), pull_scope("c")];
        let anon = token_request(
            "r",
            "https://auth.example.com/token",
            Some("reg"),
            &scopes,
            None,
        )
        .unwrap();
        let TokenRequest::Get { url, basic } = anon else {
            panic!("anonymous requests are GETs")
        };
        assert_eq!(
            url.as_str(),
            "https://auth.example.com/token?service=reg&scope=repository%3Aa%2Fb%3Apull%2Cpush&scope=repository%3Ac%3Apull"
        );
        assert_eq!(basic, None);

        let cred = Credential::Basic {
            username: "u".into(),
            password: "p".into(),
        };
        let TokenRequest::Get { url, basic } =
            token_request("r", "https://auth/token", None, &scopes[..1], Some(&cred)).unwrap()
        else {
            panic!("basic requests are GETs")
        };
        assert!(url.as_str().contains("account=u"), "{url}");
        assert_eq!(basic.as_deref(), Some("Basic dTpw"));

        let id = Credential::IdentityToken {
            username: "u".into(),
            token: "refresh".into(),
        };
        let TokenRequest::Post { form, .. } =
            token_request("r", "https://auth/token", Some("reg"), &scopes, Some(&id)).unwrap()
        else {
            panic!("identity tokens are POSTed")
        };
        assert!(form.contains(&("grant_type".into(), "refresh_token".into())));
        assert!(form.contains(&("refresh_token".into(), "refresh".into())));
        assert!(form.contains(&(
            "scope".into(),
            "repository:a/b:pull,push repository:c:pull".into()
        )));

        assert!(token_request("r", "not a url", None, &scopes, None).is_err());
        assert!(token_request("r", "ftp://x/token", None, &scopes, None).is_err());
    }

    #[test]
    fn token_answers_in_both_spellings() {
        let (t, life) = parse_token_answer("r", br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!((t.as_str(), life), ("abc", Duration::from_secs(300)));
        let (t, life) = parse_token_answer("r", br#"{"access_token":"xyz"}"#).unwrap();
        assert_eq!((t.as_str(), life), ("xyz", DEFAULT_TOKEN_LIFETIME));
        let (_, life) = parse_token_answer("r", br#"{"token":"abc","expires_in":5}"#).unwrap();
        assert_eq!(life, DEFAULT_TOKEN_LIFETIME);
        assert!(parse_token_answer("r", br#"{"token":""}"#).is_err());
        assert!(parse_token_answer("r", b"<html>").is_err());
    }

    #[test]
    fn tokens_are_cached_per_registry_and_scope_set() {
        let state = AuthState::default();
        let a = vec![pull_scope("x"), pull_scope("y")];
        let a_reordered = vec![pull_scope("y"), pull_scope("x")];
        state.store_token("r", &a, "tok".into(), Duration::from_secs(60));
        assert_eq!(state.token("r", &a_reordered).as_deref(), Some("tok"));
        assert_eq!(state.token("other", &a), None);
        assert_eq!(state.token("r", &[pull_scope("x")]), None);
        state.forget_token("r", &a);
        assert_eq!(state.token("r", &a), None);
        // A token whose lifetime is within the margin is never served.
        state.store_token("r", &a, "short".into(), Duration::from_secs(5));
        assert_eq!(state.token("r", &a), None);
    }
}
