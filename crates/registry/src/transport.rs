//! Sending one registry request: authentication (see [`crate::auth`]), retries after
//! connection failures, 5xx and 429 with a doubling delay (or the registry's
//! `Retry-After`), and turning failures into [`Problem`]s that name the registry.
//!
//! Bodies are held in memory ([`Bytes`]), so any request can be sent again after a
//! 401; requests that change upload state (PATCH, the final PUT) are not repeated
//! after a failure, because the registry may have taken part of them.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode, Url};
use serde::Deserialize;

use crate::auth::{self, Scheme, TokenRequest};
use crate::challenge::parse_challenges;
use crate::config::{ClientConfig, Endpoint};
use crate::credentials::Credential;
use crate::error::Problem;

/// The longest wait a `Retry-After` header can impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// How much of an error response body is read for its message.
const ERROR_BODY_LIMIT: u64 = 64 << 10;

/// The shared state behind a [`crate::Client`].
pub(crate) struct Inner {
    pub http: reqwest::Client,
    pub config: ClientConfig,
    pub auth: auth::AuthState,
}

/// One request to a registry.
pub(crate) struct Call<'a> {
    pub endpoint: &'a Endpoint,
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// The token scopes the request needs.
    pub scopes: Vec<String>,
    /// Whether the request may be sent again after a connection failure or a 5xx/429.
    pub retry: bool,
    /// How the request is named in messages: `GET manifest testbed/busybox:latest`.
    pub request: String,
}

impl<'a> Call<'a> {
    pub(crate) fn new(endpoint: &'a Endpoint, method: Method, url: Url, request: String) -> Self {
        let retry = method != Method::PATCH;
        Call {
            endpoint,
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            scopes: Vec::new(),
            retry,
            request,
        }
    }
}

impl Inner {
    /// Sends `call`, authenticating and retrying as needed, and returns the final
    /// response whatever its status.
    pub(crate) async fn send(&self, call: &Call<'_>) -> Result<Response, Problem> {
        // Credentials go to the registry only, not to storage the upload was sent to.
        let to_registry = same_origin(&call.url, call.endpoint);
        let mut scopes = call.scopes.clone();
        let mut reauthenticated = false;
        loop {
            let authorization = if to_registry {
                self.authorization(call.endpoint, &scopes).await?
            } else {
                None
            };
            let response = self
                .send_with_retries(call, |request| match &authorization {
                    Some(value) => request.header(AUTHORIZATION, value),
                    None => request,
                })
                .await?;
            if response.status() != StatusCode::UNAUTHORIZED || !to_registry || reauthenticated {
                return Ok(response);
            }
            let challenges: Vec<_> = response
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(parse_challenges)
                .collect();
            let Some(scheme) = auth::pick_scheme(&challenges) else {
                return Ok(response);
            };
            for extra in auth::challenge_scopes(&challenges) {
                if !scopes.contains(&extra) {
                    scopes.push(extra);
                }
            }
            let registry = &call.endpoint.registry;
            tracing::debug!(registry, ?scheme, "registry asks for authentication");
            self.auth.forget_token(registry, &scopes);
            self.auth.set_scheme(registry, scheme.clone());
            let credential = self.credential(registry).await?;
            match (&scheme, &credential) {
                // Without credentials, Basic cannot be answered: report the 401.
                (Scheme::Basic, Some(Credential::Basic { .. })) => {}
                (Scheme::Basic, _) => return Ok(response),
                (Scheme::Bearer { realm, service }, _) => {
                    if matches!(credential, Some(Credential::RegistryToken(_))) {
                        return Ok(response);
                    }
                    self.fetch_token(
                        call,
                        realm,
                        service.as_deref(),
                        &scopes,
                        credential.as_ref(),
                    )
                    .await?;
                }
            }
            reauthenticated = true;
        }
    }

    /// Sends one request, repeating it after connection failures, 5xx and 429.
    async fn send_with_retries(
        &self,
        call: &Call<'_>,
        decorate: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Response, Problem> {
        let mut attempt = 0;
        loop {
            let mut request = self
                .http
                .request(call.method.clone(), call.url.clone())
                .headers(call.headers.clone());
            if let Some(body) = &call.body {
                request = request.body(body.clone());
            }
            let result = decorate(request).send().await;
            let may_retry = call.retry && attempt < self.config.retries;
            let delay = self
                .config
                .retry_delay
                .saturating_mul(1u32 << attempt.min(16));
            match result {
                Err(e) if may_retry && e.is_connect() => {
                    tracing::debug!(request = %call.request, error = %e, "connection failed, retrying");
                }
                Err(e) => return Err(self.transport_problem(call, &e)),
                Ok(response)
                    if may_retry
                        && (response.status().is_server_error()
                            || response.status() == StatusCode::TOO_MANY_REQUESTS) =>
                {
                    let delay = retry_after(response.headers()).unwrap_or(delay);
                    tracing::debug!(request = %call.request, status = %response.status(), ?delay, "retrying");
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Ok(response) => return Ok(response),
            }
            attempt += 1;
            tokio::time::sleep(delay).await;
        }
    }

    /// The `Authorization` header to send before any challenge, from what is known.
    async fn authorization(
        &self,
        endpoint: &Endpoint,
        scopes: &[String],
    ) -> Result<Option<String>, Problem> {
        let registry = &endpoint.registry;
        let Some(scheme) = self.auth.scheme(registry) else {
            // A registry token needs no challenge to be sent.
            return Ok(match self.credential(registry).await? {
                Some(Credential::RegistryToken(token)) => Some(format!("Bearer {token}")),
                _ => None,
            });
        };
        let credential = self.credential(registry).await?;
        Ok(match (scheme, credential) {
            (_, Some(Credential::RegistryToken(token))) => Some(format!("Bearer {token}")),
            (Scheme::Basic, Some(Credential::Basic { username, password })) => {
                Some(auth::basic_header(&username, &password))
            }
            (Scheme::Basic, _) => None,
            (Scheme::Bearer { .. }, _) => self
                .auth
                .token(registry, scopes)
                .map(|token| format!("Bearer {token}")),
        })
    }

    /// The credentials for a registry, looked up once per client.
    pub(crate) async fn credential(&self, registry: &str) -> Result<Option<Credential>, Problem> {
        if let Some(known) = self.auth.cached_credential(registry) {
            return Ok(known);
        }
        let found = self.config.credentials.credential_for(registry).await?;
        self.auth.remember_credential(registry, found.clone());
        Ok(found)
    }

    /// Fetches a token for `scopes` from the registry's token service and caches it.
    async fn fetch_token(
        &self,
        call: &Call<'_>,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credential: Option<&Credential>,
    ) -> Result<(), Problem> {
        let registry = &call.endpoint.registry;
        let request = auth::token_request(registry, realm, service, scopes, credential)?;
        let (method, url, body, basic, content_type) = match request {
            TokenRequest::Get { url, basic } => (Method::GET, url, None, basic, None),
            TokenRequest::Post { url, form } => {
                let body: String = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish();
                (
                    Method::POST,
                    url,
                    Some(Bytes::from(body)),
                    None,
                    Some("application/x-www-form-urlencoded"),
                )
            }
        };
        let token_endpoint = Endpoint {
            registry: registry.clone(),
            scheme: if url.scheme() == "http" {
                "http"
            } else {
                "https"
            },
            host: host_and_port(&url),
        };
        let mut token_call = Call::new(
            &token_endpoint,
            method,
            url,
            format!("token request for {} to {realm}", scopes.join(" ")),
        );
        token_call.body = body;
        if let Some(content_type) = content_type {
            token_call.headers.insert(
                reqwest::header::CONTENT_TYPE,
                reqwest::header::HeaderValue::from_static(content_type),
            );
        }
        let response = self
            .send_with_retries(&token_call, |request| match &basic {
                Some(value) => request.header(AUTHORIZATION, value),
                None => request,
            })
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.status_problem(&token_call, response, None).await);
        }
        let body = read_limited(response, ERROR_BODY_LIMIT)
            .await
            .map_err(|reason| Problem::Protocol {
                registry: registry.clone(),
                request: token_call.request.clone(),
                reason,
            })?;
        let (token, lifetime) = auth::parse_token_answer(registry, &body)?;
        tracing::debug!(registry, scopes = scopes.join(" "), ?lifetime, "got token");
        self.auth
            .store_token(registry, scopes, token.clone(), lifetime);
        // Later requests ask with the scopes they started with; serve them too.
        if scopes != call.scopes.as_slice() {
            self.auth
                .store_token(registry, &call.scopes, token, lifetime);
        }
        Ok(())
    }

    /// A [`Problem`] for a response with an unexpected status. `not_found` names what
    /// a 404 means (`("manifest latest", "127.0.0.1:5000/x")`); without it a 404 is
    /// reported like any other status.
    pub(crate) async fn status_problem(
        &self,
        call: &Call<'_>,
        response: Response,
        not_found: Option<(&str, &str)>,
    ) -> Problem {
        let status = response.status();
        let message = error_message(response).await;
        let registry = call.endpoint.registry.clone();
        let request = call.request.clone();
        match (status, not_found) {
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => Problem::Unauthorized {
                registry,
                request,
                status: status.to_string(),
                message,
            },
            (StatusCode::NOT_FOUND, Some((what, location))) => Problem::NotFound {
                what: what.to_string(),
                location: location.to_string(),
                message,
            },
            _ => Problem::UnexpectedStatus {
                registry,
                request,
                status: status.to_string(),
                message,
            },
        }
    }

    /// A [`Problem`] for a request that got no response.
    pub(crate) fn transport_problem(&self, call: &Call<'_>, error: &reqwest::Error) -> Problem {
        let host = host_and_port(&call.url);
        if error.is_timeout() {
            let after = if error.is_connect() {
                self.config.connect_timeout
            } else {
                self.config.read_timeout
            };
            return Problem::Timeout {
                registry: host,
                request: call.request.clone(),
                after,
            };
        }
        if error.is_connect() {
            return Problem::Unreachable {
                registry: host,
                reason: root_cause(error),
            };
        }
        Problem::Unreachable {
            registry: host,
            reason: format!("{} failed: {}", call.request, root_cause(error)),
        }
    }
}

/// Whether `url` points at the registry's own host (not storage it redirected to).
fn same_origin(url: &Url, endpoint: &Endpoint) -> bool {
    Url::parse(&endpoint.base()).is_ok_and(|base| base.origin() == url.origin())
}

/// `host` or `host:port` of a URL, as registries are written in references.
pub(crate) fn host_and_port(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// The innermost cause of an error, without the `(os error N)` suffix.
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    let text = current.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The registry's explanation of an error: the messages of its `errors` list, or the
/// start of a non-JSON body.
async fn error_message(response: Response) -> String {
    let Ok(body) = read_limited(response, ERROR_BODY_LIMIT).await else {
        return String::new();
    };
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(&body)
        && !parsed.errors.is_empty()
    {
        return parsed
            .errors
            .iter()
            .map(|e| {
                if e.message.is_empty() {
                    e.code.to_lowercase()
                } else {
                    e.message.clone()
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// Reads at most `limit` bytes of a body (for error messages and token answers).
async fn read_limited(mut response: Response, limit: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| root_cause(&e))? {
        out.extend_from_slice(&chunk);
        if out.len() as u64 >= limit {
            out.truncate(limit as usize);
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_matches_reference_spelling() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            host_and_port(&url("http://127.0.0.1:5000/v2/")),
            "127.0.0.1:5000"
        );
        assert_eq!(host_and_port(&url("http://[::1]:5000/v2/")), "[::1]:5000");
        assert_eq!(
            host_and_port(&url("https://registry-1.docker.io/v2/")),
            "registry-1.docker.io"
        );
        // The default port is not shown, as in references.
        assert_eq!(host_and_port(&url("https://ghcr.io:443/v2/")), "ghcr.io");
    }

    #[test]
    fn retry_after_is_read_and_capped() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, "3600".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn root_cause_drops_os_error_numbers() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(root_cause(&e), "Connection refused");
    }
}
