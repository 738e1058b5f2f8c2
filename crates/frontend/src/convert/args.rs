//! Build arguments that exist before the first FROM: the predefined platform ARGs and
//! the global `ARG` instructions, with `--build-arg` overrides.

use std::collections::BTreeMap;

use kiln_graph::Platform;

use super::ConvertError;
use super::state::EnvList;
use crate::instructions::{ArgDef, Location};
use crate::shell::Lex;

/// BuildKit's predefined ARGs. A `--build-arg` of the same name overrides the value.
pub(crate) fn default_args(
    build: &Platform,
    target: &Platform,
    overrides: &BTreeMap<String, String>,
    target_stage: &str,
) -> EnvList {
    let stage = if target_stage.is_empty() {
        "default"
    } else {
        target_stage
    };
    let values = [
        ("BUILDPLATFORM", build.to_string()),
        ("BUILDOS", build.os.clone()),
        ("BUILDOSVERSION", String::new()),
        ("BUILDARCH", build.architecture.clone()),
        ("BUILDVARIANT", build.variant.clone().unwrap_or_default()),
        ("TARGETPLATFORM", target.to_string()),
        ("TARGETOS", target.os.clone()),
        ("TARGETOSVERSION", String::new()),
        ("TARGETARCH", target.architecture.clone()),
        ("TARGETVARIANT", target.variant.clone().unwrap_or_default()),
        ("TARGETSTAGE", stage.to_string()),
    ];
    let mut env = EnvList::new();
    for (k, v) in values {
        let v = overrides.get(k).cloned().unwrap_or(v);
        env.add_or_replace(k, &v);
    }
    env
}

/// Applies the ARGs declared before the first FROM, in order: a `--build-arg` wins
/// over a default, and a default is expanded with what came before it.
pub(crate) fn meta_args(
    mut env: EnvList,
    lex: &Lex,
    meta: &[(Vec<ArgDef>, Location)],
    build_args: &BTreeMap<String, String>,
) -> Result<EnvList, ConvertError> {
    for (defs, location) in meta {
        for def in defs {
            let value = match build_args.get(&def.key) {
                Some(v) => Some(v.clone()),
                None => match &def.value {
                    Some(v) => Some(
                        lex.process_word(v, &env)
                            .map_err(|e| ConvertError::at(e.to_string(), *location))?
                            .result,
                    ),
                    None => None,
                },
            };
            if let Some(v) = value {
                env.add_or_replace(&def.key, &v);
            }
        }
    }
    Ok(env)
}

/// Proxy variables among the build args (matched case-insensitively, as BuildKit).
pub(crate) fn proxy_env(build_args: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in build_args {
        let lower = k.to_ascii_lowercase();
        let canonical = match lower.as_str() {
            "http_proxy" => "HTTP_PROXY",
            "https_proxy" => "HTTPS_PROXY",
            "ftp_proxy" => "FTP_PROXY",
            "no_proxy" => "NO_PROXY",
            "all_proxy" => "ALL_PROXY",
            _ => continue,
        };
        out.insert(canonical.to_string(), v.clone());
    }
    out
}
