//! How the client reaches registries: which use plain HTTP, credentials, timeouts,
//! retries and size limits.

use std::net::IpAddr;
use std::time::Duration;

use crate::credentials::DockerConfig;
use crate::reference::DOCKER_HUB;

/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";

/// The largest manifest or index accepted, as containerd (4 MiB).
pub const DEFAULT_MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// Settings of a [`crate::Client`]. Every field has a sensible default.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Registries reached over plain HTTP, as `host` (any port) or `host:port`.
    /// Loopback registries (`localhost`, `127.0.0.0/8`, `[::1]`) always are.
    pub insecure_registries: Vec<String>,
    /// Where credentials come from; [`DockerConfig::empty`] for anonymous access.
    pub credentials: DockerConfig,
    /// The longest wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// The longest silence while waiting for a response or between two reads of one.
    pub read_timeout: Duration,
    /// How often a request is repeated after a connection failure, a 5xx or a 429.
    pub retries: u32,
    /// The wait before the first repetition; it doubles after each.
    pub retry_delay: Duration,
    /// The largest manifest or index accepted.
    pub max_manifest_size: u64,
    /// The largest image config accepted.
    pub max_config_size: u64,
    /// Blobs up to this size are uploaded with one PUT; larger ones in PATCH chunks of
    /// this size, each held in memory while it is sent.
    pub upload_chunk_size: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            credentials: DockerConfig::empty(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            retries: 3,
            retry_delay: Duration::from_millis(250),
            max_manifest_size: DEFAULT_MAX_MANIFEST_SIZE,
            max_config_size: DEFAULT_MAX_MANIFEST_SIZE,
            upload_chunk_size: 16 << 20,
            user_agent: format!("kiln/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Where requests for one registry go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The registry as written in references (`docker.io`), used for credentials,
    /// token caching and messages.
    pub registry: String,
    pub scheme: &'static str,
    /// The host (and port) contacted: `registry-1.docker.io` for Docker Hub.
    pub host: String,
}

impl Endpoint {
    pub(crate) fn new(config: &ClientConfig, registry: &str) -> Endpoint {
        let host = if registry == DOCKER_HUB {
            DOCKER_HUB_API_HOST.to_string()
        } else {
            registry.to_string()
        };
        let scheme = if uses_plain_http(registry, &config.insecure_registries) {
            "http"
        } else {
            "https"
        };
        Endpoint {
            registry: registry.to_string(),
            scheme,
            host,
        }
    }

    /// `http(s)://host/v2/`
    pub(crate) fn base(&self) -> String {
        format!("{}://{}/v2/", self.scheme, self.host)
    }
}

/// Whether `registry` (`host` or `host:port`) is reached over plain HTTP.
pub fn uses_plain_http(registry: &str, insecure_registries: &[String]) -> bool {
    let host = host_without_port(registry);
    if host == "localhost" {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return true;
    }
    insecure_registries.iter().any(|entry| {
        let entry = entry
            .strip_prefix("http://")
            .or_else(|| entry.strip_prefix("https://"))
            .unwrap_or(entry)
            .trim_end_matches('/');
        entry == registry || entry == host
    })
}

fn host_without_port(registry: &str) -> &str {
    if registry.starts_with('[') {
        // `[::1]:5000` → `[::1]`
        return match registry.find(']') {
            Some(end) => &registry[..=end],
            None => registry,
        };
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_use_plain_http() {
        for registry in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(uses_plain_http(registry, &[]), "{registry}");
        }
        for registry in [
            "docker.io",
            "example.com:5000",
            "10.0.0.1:5000",
            "[2001:db8::1]:5000",
            "localhost.example.com",
        ] {
            assert!(!uses_plain_http(registry, &[]), "{registry}");
        }
    }

    #[test]
    fn insecure_list_matches_host_or_host_and_port() {
        let list = vec![
            "reg.internal".to_string(),
            "other.internal:5000".to_string(),
            "http://third:1/".to_string(),
        ];
        assert!(uses_plain_http("reg.internal", &list));
        assert!(uses_plain_http("reg.internal:443", &list));
        assert!(uses_plain_http("other.internal:5000", &list));
        assert!(!uses_plain_http("other.internal:5001", &list));
        assert!(!uses_plain_http("other.internal", &list));
        assert!(uses_plain_http("third:1", &list));
    }

    #[test]
    fn docker_hub_is_served_by_registry_1() {
        let config = ClientConfig::default();
        let hub = Endpoint::new(&config, "docker.io");
        assert_eq!(hub.base(), "https://registry-1.docker.io/v2/");
        assert_eq!(hub.registry, "docker.io");
        assert_eq!(
            Endpoint::new(&config, "127.0.0.1:5000").base(),
            "http://127.0.0.1:5000/v2/"
        );
        assert_eq!(
            Endpoint::new(&config, "[::1]:5000").base(),
            "http://[::1]:5000/v2/"
        );
        assert_eq!(
            Endpoint::new(&config, "ghcr.io").base(),
            "https://ghcr.io/v2/"
        );
    }
}
