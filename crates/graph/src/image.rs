//! The image config model (the OCI image config with Docker's extensions) and platforms.
//!
//! Field names, JSON keys and `omitempty` behaviour follow the config BuildKit writes
//! (`dockerspec.DockerOCIImage`): fields that Go omits when empty are omitted here too,
//! so a config read from a registry and written back keeps its shape. Fields this model
//! does not know are dropped, as BuildKit drops them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An OCI platform: `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// A platform string that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {input:?}: {reason}")]
pub struct InvalidPlatform {
    pub input: String,
    pub reason: String,
}

impl Platform {
    /// The platform of the machine kiln runs on.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = (arch == "arm").then(|| "v7".to_string());
        Platform {
            os: "linux".to_string(),
            architecture: arch.to_string(),
            variant,
        }
    }

    /// `linux/amd64`, with `/variant` when there is one.
    pub fn to_short_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = InvalidPlatform;

    /// Parses and normalizes a platform as containerd's `platforms.Parse` does:
    /// `amd64`, `linux/x86_64`, `linux/arm64/v8` and `Linux/AMD64` are all accepted.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| InvalidPlatform {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let lower = input.trim().to_ascii_lowercase();
        if lower.is_empty() {
            return Err(err("empty platform"));
        }
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err("empty component"));
        }
        let valid = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        if !parts.iter().all(|p| valid(p)) {
            return Err(err(
                "components may only hold letters, digits, '_', '-' and '.'",
            ));
        }
        let (os, arch, variant) = match parts.as_slice() {
            [one] => {
                // A lone word is an OS if it is a known one, otherwise an architecture.
                if is_known_os(one) {
                    (one.to_string(), Platform::host().architecture, None)
                } else {
                    ("linux".to_string(), one.to_string(), None)
                }
            }
            [os, arch] => (os.to_string(), arch.to_string(), None),
            [os, arch, variant] => (os.to_string(), arch.to_string(), Some(variant.to_string())),
            _ => return Err(err("expected os/arch[/variant]")),
        };
        let (architecture, variant) = normalize_arch(&arch, variant);
        let os = if os == "macos" {
            "darwin".to_string()
        } else {
            os
        };
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }
}

fn is_known_os(s: &str) -> bool {
    matches!(
        s,
        "linux"
            | "windows"
            | "darwin"
            | "macos"
            | "freebsd"
            | "netbsd"
            | "openbsd"
            | "solaris"
            | "illumos"
            | "aix"
            | "android"
            | "ios"
            | "plan9"
            | "dragonfly"
            | "js"
            | "wasip1"
    )
}

fn normalize_arch(arch: &str, variant: Option<String>) -> (String, Option<String>) {
    match arch {
        "i386" | "i486" | "i586" | "i686" => ("386".to_string(), None),
        "x86_64" | "x86-64" | "amd64" => {
            let v = variant.filter(|v| v != "v1");
            ("amd64".to_string(), v)
        }
        "aarch64" | "arm64" => {
            let v = variant.filter(|v| v != "8" && v != "v8");
            ("arm64".to_string(), v)
        }
        "armhf" => ("arm".to_string(), Some("v7".to_string())),
        "armel" => ("arm".to_string(), Some("v6".to_string())),
        "arm" => {
            let v = match variant.as_deref() {
                None | Some("7") | Some("v7") => "v7",
                Some("5") | Some("v5") => "v5",
                Some("6") | Some("v6") => "v6",
                Some("8") | Some("v8") => "v8",
                Some(other) => return ("arm".to_string(), Some(other.to_string())),
            };
            ("arm".to_string(), Some(v.to_string()))
        }
        other => (other.to_string(), variant),
    }
}

/// The image config, as stored in a registry and written by kiln's exporters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    /// Creation time, RFC 3339 with nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    #[serde(default, rename = "os.features", skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    #[serde(default)]
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(default)]
    pub config: ContainerConfig,
}

impl ImageConfig {
    /// The platform this config describes.
    pub fn platform(&self) -> Platform {
        Platform {
            os: self.os.clone(),
            architecture: self.architecture.clone(),
            variant: (!self.variant.is_empty()).then(|| self.variant.clone()),
        }
    }

    /// The config BuildKit starts `FROM scratch` with: the platform and a default `PATH`.
    pub fn empty(platform: &Platform) -> ImageConfig {
        ImageConfig {
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            variant: platform.variant.clone().unwrap_or_default(),
            rootfs: RootFs::default(),
            config: ContainerConfig {
                env: vec![format!("PATH={}", default_path_env(&platform.os))],
                ..ContainerConfig::default()
            },
            ..ImageConfig::default()
        }
    }
}

/// The `PATH` a container gets when its image sets none.
pub fn default_path_env(os: &str) -> &'static str {
    if os == "windows" {
        ""
    } else {
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    }
}

/// `rootfs`: the layers' uncompressed digests, bottom first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".to_string(),
            diff_ids: Vec::new(),
        }
    }
}

/// One history entry; entries without `empty_layer` correspond to layers in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// An empty JSON object, the value type of `ExposedPorts` and `Volumes`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Empty {}

/// The runtime defaults of a container started from the image.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerConfig {
    #[serde(rename = "User", default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(
        rename = "ExposedPorts",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(
        rename = "Env",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub env: Vec<String>,
    /// `None` is "not set"; `Some(vec![])` is an explicit empty entrypoint, which Go
    /// also omits from the JSON but which still resets an inherited `Cmd`.
    #[serde(
        rename = "Entrypoint",
        default,
        skip_serializing_if = "is_none_or_empty"
    )]
    pub entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default, skip_serializing_if = "is_none_or_empty")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        rename = "Volumes",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(
        rename = "WorkingDir",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    #[serde(
        rename = "Labels",
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        rename = "StopSignal",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub stop_signal: String,
    #[serde(
        rename = "ArgsEscaped",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub args_escaped: bool,
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<Healthcheck>,
    #[serde(
        rename = "OnBuild",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub on_build: Vec<String>,
    #[serde(
        rename = "Shell",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub shell: Vec<String>,
}

/// `HEALTHCHECK` settings; durations in nanoseconds, 0 meaning "inherit the default".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Healthcheck {
    #[serde(
        rename = "Test",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub test: Vec<String>,
    #[serde(rename = "Interval", default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(rename = "Timeout", default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(rename = "StartPeriod", default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(rename = "StartInterval", default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(rename = "Retries", default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_none_or_empty(v: &Option<Vec<String>>) -> bool {
    v.as_ref().is_none_or(|v| v.is_empty())
}

/// Registries hold configs with `"Env": null` and the like; read those as empty.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_normalize_like_containerd() {
        let p = |s: &str| s.parse::<Platform>().unwrap().to_string();
        assert_eq!(p("linux/amd64"), "linux/amd64");
        assert_eq!(p("Linux/X86_64"), "linux/amd64");
        assert_eq!(p("linux/arm64/v8"), "linux/arm64");
        assert_eq!(p("linux/aarch64"), "linux/arm64");
        assert_eq!(p("linux/arm"), "linux/arm/v7");
        assert_eq!(p("linux/arm/6"), "linux/arm/v6");
        assert_eq!(p("arm64"), "linux/arm64");
        assert!("linux//amd64".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
        assert!("linux/am d64".parse::<Platform>().is_err());
    }

    #[test]
    fn config_with_nulls_reads_as_empty() {
        let cfg: ImageConfig = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"Env":null,"Cmd":null,"Labels":null},"rootfs":{"type":"layers","diff_ids":[]}}"#,
        )
        .unwrap();
        assert!(cfg.config.env.is_empty());
        assert_eq!(cfg.config.cmd, None);
    }

    #[test]
    fn empty_fields_are_omitted_as_go_omits_them() {
        let cfg = ImageConfig::empty(&"linux/amd64".parse().unwrap());
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(
            json,
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}}"#
        );
    }
}
