//! Registry credentials from Docker's client config, as `docker login` leaves them.
//!
//! The file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; a missing
//! file means "no credentials". For a registry, the lookup follows the Docker CLI:
//!
//! 1. `credHelpers[<server>]` names a helper for this registry, else `credsStore` names
//!    one for all registries; the helper program `docker-credential-<name>` is run as
//!    `get` with the server address on stdin and answers
//!    `{"ServerURL": …, "Username": …, "Secret": …}` (user name `<token>` marks an
//!    identity token). "credentials not found" is no credentials, not an error. When a
//!    helper applies, `auths` is not consulted.
//! 2. Otherwise `auths[<server>]`, or an entry whose key reduces to the same host name
//!    (`https://host:5000/v2/` counts as `host:5000`). An entry holds `auth`
//!    (base64 of `user:password`, winning over the separate fields), `username` and
//!    `password`, `identitytoken` (an OAuth refresh token) or `registrytoken` (a bearer
//!    token used as is).
//!
//! The server address of Docker Hub is `https://index.docker.io/v1/`; host-name keys
//! `docker.io`, `index.docker.io` and `registry-1.docker.io` are accepted for it too.
//! Every other registry's server address is its host (and port), as in references.
//!
//! The file format and helper protocol are small and kiln needs identity tokens, Docker
//! Hub's key spellings and errors that name the file and helper, so this is written here
//! rather than taken from a crate.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::reference::DOCKER_HUB;

/// Docker Hub's key in the config file and the server address its helpers expect.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";
/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);
/// The user name a helper returns with an identity token as the secret.
const TOKEN_USERNAME: &str = "<token>";

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password: sent as HTTP Basic, or traded for a bearer token.
    Basic { username: String, password: String },
    /// An OAuth refresh token from `docker login`, traded for bearer tokens.
    IdentityToken { username: String, token: String },
    /// A bearer token sent as is.
    RegistryToken(String),
}

impl fmt::Debug for Credential {
    // Secrets never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => {
                write!(
                    f,
                    "Basic {{ username: {username:?}, password: <redacted> }}"
                )
            }
            Credential::IdentityToken { username, .. } => {
                write!(
                    f,
                    "IdentityToken {{ username: {username:?}, token: <redacted> }}"
                )
            }
            Credential::RegistryToken(_) => write!(f, "RegistryToken(<redacted>)"),
        }
    }
}

/// Credentials that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    #[error("cannot read docker config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("docker config {} is not valid: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("docker config {}: the auth entry {key:?} is not valid: {reason}", path.display())]
    InvalidEntry {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("credential helper docker-credential-{helper} failed for {server}: {reason}")]
    Helper {
        helper: String,
        server: String,
        reason: String,
    },
}

/// The credential part of Docker's `config.json`.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    path: PathBuf,
    auths: BTreeMap<String, AuthEntry>,
    creds_store: Option<String>,
    cred_helpers: BTreeMap<String, String>,
    helper_search_path: Option<OsString>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Clone, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthEntry {{ username: {:?}, .. }}", self.username)
    }
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Where the Docker CLI keeps its config: `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn config_dir(docker_config: Option<OsString>, home: Option<PathBuf>) -> Option<PathBuf> {
    match docker_config {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => home.map(|h| h.join(".docker")),
    }
}

impl DockerConfig {
    /// No credentials at all: every registry is accessed anonymously.
    pub fn empty() -> DockerConfig {
        DockerConfig::default()
    }

    /// The config of the current user (`$DOCKER_CONFIG` or `~/.docker`); empty if there
    /// is none.
    pub fn load_default() -> Result<DockerConfig, CredentialError> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        match config_dir(std::env::var_os("DOCKER_CONFIG"), home) {
            Some(dir) => DockerConfig::load_dir(&dir),
            None => Ok(DockerConfig::empty()),
        }
    }

    /// `dir/config.json`; empty if the file does not exist.
    pub fn load_dir(dir: &Path) -> Result<DockerConfig, CredentialError> {
        let path = dir.join("config.json");
        match std::fs::read(&path) {
            Ok(bytes) => DockerConfig::parse(&bytes, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig {
                path,
                ..DockerConfig::default()
            }),
            Err(source) => Err(CredentialError::Read { path, source }),
        }
    }

    /// Parses a config file's contents; `path` is named in errors.
    pub fn parse(json: &[u8], path: &Path) -> Result<DockerConfig, CredentialError> {
        let file: ConfigFile =
            serde_json::from_slice(json).map_err(|e| CredentialError::Invalid {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        Ok(DockerConfig {
            path: path.to_path_buf(),
            auths: file.auths,
            creds_store: file.creds_store.filter(|s| !s.is_empty()),
            cred_helpers: file.cred_helpers,
            helper_search_path: None,
        })
    }

    /// Looks for `docker-credential-*` programs in these directories (a `PATH`-style
    /// list) instead of the process's `PATH`.
    pub fn with_helper_search_path(mut self, path: impl Into<OsString>) -> DockerConfig {
        self.helper_search_path = Some(path.into());
        self
    }

    /// The file this config was read from (empty for [`DockerConfig::empty`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credentials for `registry` (as written in references: `docker.io`,
    /// `127.0.0.1:5000`), or `None` to go anonymous.
    pub async fn credential_for(
        &self,
        registry: &str,
    ) -> Result<Option<Credential>, CredentialError> {
        let server = server_address(registry);
        if let Some(helper) = self.helper_for(registry) {
            return self.run_helper(helper, &server).await;
        }
        self.file_credential(registry)
    }

    fn helper_for(&self, registry: &str) -> Option<&str> {
        let server = server_address(registry);
        let hub_alias = (registry == DOCKER_HUB).then_some(DOCKER_HUB);
        [Some(server.as_str()), hub_alias]
            .into_iter()
            .flatten()
            .find_map(|key| self.cred_helpers.get(key))
            .or(self.creds_store.as_ref())
            .map(String::as_str)
            .filter(|h| !h.is_empty())
    }

    fn file_credential(&self, registry: &str) -> Result<Option<Credential>, CredentialError> {
        let server = server_address(registry);
        let entry = self.auths.get_key_value(&server).or_else(|| {
            let hosts: Vec<&str> = if registry == DOCKER_HUB {
                vec![DOCKER_HUB, "index.docker.io", "registry-1.docker.io"]
            } else {
                vec![registry]
            };
            self.auths
                .iter()
                .find(|(key, _)| hosts.contains(&host_of_key(key)))
        });
        let Some((key, entry)) = entry else {
            return Ok(None);
        };
        entry_credential(entry).map_err(|reason| CredentialError::InvalidEntry {
            path: self.path.clone(),
            key: key.clone(),
            reason,
        })
    }

    async fn run_helper(
        &self,
        helper: &str,
        server: &str,
    ) -> Result<Option<Credential>, CredentialError> {
        let fail = |reason: String| CredentialError::Helper {
            helper: helper.to_string(),
            server: server.to_string(),
            reason,
        };
        let mut command = tokio::process::Command::new(format!("docker-credential-{helper}"));
        command
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(path) = &self.helper_search_path {
            command.env("PATH", path);
        }
        let mut child = command
            .spawn()
            .map_err(|e| fail(format!("cannot run it: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(server.as_bytes())
                .await
                .map_err(|e| fail(format!("cannot write to it: {e}")))?;
        }
        let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| fail(format!("no answer within {}s", HELPER_TIMEOUT.as_secs())))?
            .map_err(|e| fail(e.to_string()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let message = format!("{} {}", stdout.trim(), stderr.trim());
            if message.contains("credentials not found") {
                return Ok(None);
            }
            return Err(fail(format!("{}: {}", output.status, message.trim())));
        }
        let answer: HelperAnswer = serde_json::from_str(stdout.trim())
            .map_err(|e| fail(format!("unreadable answer: {e}")))?;
        if answer.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(if answer.username == TOKEN_USERNAME {
            Credential::IdentityToken {
                username: String::new(),
                token: answer.secret,
            }
        } else {
            Credential::Basic {
                username: answer.username,
                password: answer.secret,
            }
        }))
    }
}

/// The key Docker stores a registry's credentials under.
fn server_address(registry: &str) -> String {
    if registry == DOCKER_HUB {
        DOCKER_HUB_SERVER.to_string()
    } else {
        registry.to_string()
    }
}

/// Docker's `ConvertToHostname`: drop the scheme and anything after the host.
fn host_of_key(key: &str) -> &str {
    let rest = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

fn entry_credential(entry: &AuthEntry) -> Result<Option<Credential>, String> {
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    if let Some(token) = nonempty(&entry.registrytoken) {
        return Ok(Some(Credential::RegistryToken(token)));
    }
    let (mut username, mut password) = (nonempty(&entry.username), nonempty(&entry.password));
    if let Some(auth) = nonempty(&entry.auth) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("\"auth\" is not base64: {e}"))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| "\"auth\" is not UTF-8 text".to_string())?;
        let (user, pass) = decoded
            .split_once(':')
            .ok_or_else(|| "\"auth\" does not hold user:password".to_string())?;
        username = Some(user.to_string());
        password = Some(pass.to_string());
    }
    if let Some(token) = nonempty(&entry.identitytoken) {
        return Ok(Some(Credential::IdentityToken {
            username: username.unwrap_or_default(),
            token,
        }));
    }
    if username.is_none() && password.is_none() {
        return Ok(None);
    }
    Ok(Some(Credential::Basic {
        username: username.unwrap_or_default(),
        password: password.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn config(json: &str) -> DockerConfig {
        DockerConfig::parse(json.as_bytes(), Path::new("/test/config.json")).unwrap()
    }

    fn basic(u: &str, p: &str) -> Option<Credential> {
        Some(Credential::Basic {
            username: u.into(),
            password: p.into(),
        })
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn lookup(config: &DockerConfig, registry: &str) -> Option<Credential> {
        let rt = runtime();
        rt.block_on(config.credential_for(registry)).unwrap()
    }

    #[test]
    fn config_dir_prefers_docker_config() {
        assert_eq!(
            config_dir(Some("/etc/dc".into()), Some("/home/u".into())),
            Some(PathBuf::from("/etc/dc"))
        );
        assert_eq!(
            config_dir(None, Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.docker"))
        );
        assert_eq!(
            config_dir(Some("".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.docker"))
        );
        assert_eq!(config_dir(None, None), None);
    }

    #[test]
    fn auth_entries_in_every_form() {
        let json = format!(
            r#"{{"auths": {{
                "127.0.0.1:5000": {{"auth": "{}"}},
                "https://other.example.com/v2/": {{"username": "bob", "password": "pw"}},
                "both.example.com": {{"auth": "{}", "username": "ignored", "password": "ignored"}},
                "id.example.com": {{"auth": "{}", "identitytoken": "refresh-me"}},
                "tok.example.com": {{"registrytoken": "bearer-token"}},
                "empty.example.com": {{}},
                "{DOCKER_HUB_SERVER}": {{"auth": "{}"}}
            }}}}"#,
            b64("alice:pa:ss"),
            b64("carol:secret"),
            b64("dave:"),
            b64("hubuser:hubpass"),
        );
        let c = config(&json);
        assert_eq!(lookup(&c, "127.0.0.1:5000"), basic("alice", "pa:ss"));
        assert_eq!(lookup(&c, "other.example.com"), basic("bob", "pw"));
        assert_eq!(lookup(&c, "both.example.com"), basic("carol", "secret"));
        assert_eq!(
            lookup(&c, "id.example.com"),
            Some(Credential::IdentityToken {
                username: "dave".into(),
                token: "refresh-me".into()
            })
        );
        assert_eq!(
            lookup(&c, "tok.example.com"),
            Some(Credential::RegistryToken("bearer-token".into()))
        );
        assert_eq!(lookup(&c, "empty.example.com"), None);
        assert_eq!(lookup(&c, "docker.io"), basic("hubuser", "hubpass"));
        assert_eq!(lookup(&c, "127.0.0.1:5001"), None);
        assert_eq!(lookup(&c, "unknown.example.com"), None);
    }

    #[test]
    fn docker_hub_accepts_host_name_keys() {
        let c = config(&format!(
            r#"{{"auths": {{"docker.io": {{"auth": "{}"}}}}}}"#,
            b64("u:p")
        ));
        assert_eq!(lookup(&c, "docker.io"), basic("u", "p"));
        let c = config(&format!(
            r#"{{"auths": {{"https://index.docker.io/v2/": {{"auth": "{}"}}}}}}"#,
            b64("u:p")
        ));
        assert_eq!(lookup(&c, "docker.io"), basic("u", "p"));
    }

    #[test]
    fn malformed_entries_name_the_file_and_key() {
        let c = config(r#"{"auths": {"r.example.com": {"auth": "not base64!"}}}"#);
        let rt = runtime();
        let err = rt.block_on(c.credential_for("r.example.com")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/test/config.json"), "{msg}");
        assert!(msg.contains("r.example.com"), "{msg}");
        let c = config(&format!(
            r#"{{"auths": {{"r": {{"auth": "{}"}}}}}}"#,
            b64("nocolon")
        ));
        assert!(rt.block_on(c.credential_for("r")).is_err());

        let err = DockerConfig::parse(b"{not json", Path::new("/x/config.json")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("docker config /x/config.json is not valid")
        );
    }

    #[test]
    fn missing_config_file_means_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let c = DockerConfig::load_dir(dir.path()).unwrap();
        assert_eq!(lookup(&c, "docker.io"), None);
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"r":{"username":"u","password":"p"}}}"#,
        )
        .unwrap();
        let c = DockerConfig::load_dir(dir.path()).unwrap();
        assert_eq!(lookup(&c, "r"), basic("u", "p"));
        assert_eq!(c.path(), dir.path().join("config.json"));
    }

    #[test]
    fn credential_helpers_and_stores() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("asked");
        let script = format!(
            r#"#!/bin/sh
[ "$1" = get ] || exit 3
server=$(cat)
echo "$server" >> {log}
case "$server" in
  helped.example.com) echo '{{"ServerURL":"helped.example.com","Username":"helen","Secret":"h3lp"}}' ;;
  token.example.com) echo '{{"ServerURL":"token.example.com","Username":"<token>","Secret":"idtok"}}' ;;
  {DOCKER_HUB_SERVER}) echo '{{"ServerURL":"x","Username":"hub","Secret":"hubsecret"}}' ;;
  broken.example.com) echo 'something went wrong' >&2; exit 2 ;;
  *) echo 'credentials not found in native keychain'; exit 1 ;;
esac
"#,
            log = log.display()
        );
        let helper = dir.path().join("docker-credential-test");
        std::fs::write(&helper, script).unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();

        let path = format!("{}:/usr/bin:/bin", dir.path().display());
        let c = config(&format!(
            r#"{{"auths": {{"helped.example.com": {{"auth": "{}"}}, "plain.example.com": {{"auth": "{}"}}}},
               "credsStore": "test"}}"#,
            b64("file:ignored"),
            b64("file:used")
        ))
        .with_helper_search_path(&path);
        // The store wins over the file's entry.
        assert_eq!(lookup(&c, "helped.example.com"), basic("helen", "h3lp"));
        assert_eq!(
            lookup(&c, "token.example.com"),
            Some(Credential::IdentityToken {
                username: String::new(),
                token: "idtok".into()
            })
        );
        assert_eq!(lookup(&c, "docker.io"), basic("hub", "hubsecret"));
        // "not found" is no credentials, even though the file has an entry.
        assert_eq!(lookup(&c, "plain.example.com"), None);
        let rt = runtime();
        let err = rt
            .block_on(c.credential_for("broken.example.com"))
            .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("docker-credential-test"), "{msg}");
        assert!(msg.contains("something went wrong"), "{msg}");

        // credHelpers picks a helper per registry; other registries use the file.
        let c = config(&format!(
            r#"{{"auths": {{"plain.example.com": {{"auth": "{}"}}}},
               "credHelpers": {{"helped.example.com": "test"}}}}"#,
            b64("file:used")
        ))
        .with_helper_search_path(&path);
        assert_eq!(lookup(&c, "helped.example.com"), basic("helen", "h3lp"));
        assert_eq!(lookup(&c, "plain.example.com"), basic("file", "used"));

        let asked = std::fs::read_to_string(&log).unwrap();
        assert!(asked.lines().any(|l| l == DOCKER_HUB_SERVER), "{asked}");
        // Asked once under credsStore, never under credHelpers, which does not cover it.
        assert_eq!(
            asked.lines().filter(|l| *l == "plain.example.com").count(),
            1,
            "{asked}"
        );

        // A helper that is not installed is an error naming it.
        let c = config(r#"{"credsStore": "absent"}"#).with_helper_search_path(dir.path());
        let err = rt.block_on(c.credential_for("r.example.com")).unwrap_err();
        assert!(
            err.to_string().contains("docker-credential-absent"),
            "{err}"
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let c = Credential::IdentityToken {
            username: "u".into(),
            token: "tok".into(),
        };
        assert!(!format!("{c:?}").contains("\"tok\""));
    }
}
