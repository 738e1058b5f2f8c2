//! `RUN --mount=...` values: CSV fields of `key=value` options, parsed with BuildKit's
//! rules, defaults and messages.

use super::suggest::with_suggestion;

/// The kind of a `RUN --mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// `type=bind` (the default): a directory of the context or a stage.
    Bind,
    /// `type=cache`: a directory kept across builds.
    Cache,
    /// `type=tmpfs`: an empty in-memory filesystem.
    Tmpfs,
    /// `type=secret`: a secret as a file or variable.
    Secret,
    /// `type=ssh`: a forwarded SSH agent.
    Ssh,
}

impl MountType {
    /// The name used in `type=`.
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareMode {
    /// Used by everyone at once.
    Shared,
    /// A busy cache gets a new private one.
    Private,
    /// Users wait for each other.
    Locked,
}

/// One parsed `--mount` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMount {
    /// The mount type.
    pub kind: MountType,
    /// `from=`: a stage, image or named context.
    pub from: String,
    /// `source=`: a path within `from`.
    pub source: String,
    /// `target=`: where it is mounted.
    pub target: String,
    /// `ro`/`rw`, with BuildKit's per-type default.
    pub read_only: bool,
    /// `size=` of a tmpfs, in bytes (0: no limit).
    pub size_limit: i64,
    /// `id=` (cache id, secret id, ssh id).
    pub id: String,
    /// `sharing=` of a cache.
    pub sharing: Option<ShareMode>,
    /// `required` for secrets and ssh.
    pub required: bool,
    /// `env=` for secrets: expose the secret as this variable.
    pub env: Option<String>,
    /// `mode=` (octal).
    pub mode: Option<u64>,
    /// `uid=`.
    pub uid: Option<u64>,
    /// `gid=`.
    pub gid: Option<u64>,
}

const ALL_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses one `--mount` value. With `expand` = `None`, only checks the syntax that
/// can be checked before variables are known (as BuildKit does at parse time); with an
/// expander, values are expanded and everything is checked.
/// Expands one word of a mount option.
pub(crate) type Expander<'a> = &'a mut dyn FnMut(&str) -> Result<String, String>;

pub(crate) fn parse_mount(value: &str, expand: Option<Expander<'_>>) -> Result<RunMount, String> {
    let fields = csv_fields(value).map_err(|e| format!("failed to parse csv mounts: {e}"))?;
    let mut m = RunMount {
        kind: MountType::Bind,
        from: String::new(),
        source: String::new(),
        target: String::new(),
        read_only: false,
        size_limit: 0,
        id: String::new(),
        sharing: None,
        required: false,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let mut ro_auto = true;
    let mut expand = expand;
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v.to_string())),
            None => (field.to_lowercase(), None),
        };
        let Some(value) = value else {
            if expand.is_none() {
                continue;
            }
            match key.as_str() {
                "readonly" | "ro" => {
                    m.read_only = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.read_only = false;
                    ro_auto = false;
                }
                "required" => {
                    if matches!(m.kind, MountType::Secret | MountType::Ssh) {
                        m.required = true;
                    } else {
                        return Err(format!(
                            "unexpected key '{key}' for mount type '{}'",
                            m.kind.as_str()
                        ));
                    }
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        };
        let value = match expand.as_mut() {
            Some(f) => f(&value)?,
            None => {
                if key == "from" {
                    if let Some(idx) = value.find('$')
                        && idx != value.len() - 1
                    {
                        return Err(format!(
                            "'{key}' doesn't support variable expansion, define alias stage instead"
                        ));
                    }
                } else {
                    continue;
                }
                value
            }
        };
        match key.as_str() {
            "type" => {
                m.kind = match value.to_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(with_suggestion(
                            format!("unsupported mount type {value:?}"),
                            &value,
                            &strings(&["bind", "cache", "tmpfs", "secret", "ssh"]),
                            true,
                        ));
                    }
                }
            }
            "from" => m.from = value,
            "source" | "src" => m.source = value,
            "target" | "dst" | "destination" => m.target = value,
            "readonly" | "ro" => {
                m.read_only = parse_go_bool(&value)
                    .ok_or_else(|| format!("invalid value for {key}: {value}"))?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                let rw = parse_go_bool(&value)
                    .ok_or_else(|| format!("invalid value for {key}: {value}"))?;
                m.read_only = !rw;
                ro_auto = false;
            }
            "required" => {
                if matches!(m.kind, MountType::Secret | MountType::Ssh) {
                    m.required = parse_go_bool(&value)
                        .ok_or_else(|| format!("invalid value for {key}: {value}"))?;
                } else {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.as_str()
                    ));
                }
            }
            "size" => {
                if m.kind == MountType::Tmpfs {
                    m.size_limit = ram_in_bytes(&value)
                        .ok_or_else(|| format!("invalid value for {key}: {value}"))?;
                } else {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.kind.as_str()
                    ));
                }
            }
            "id" => m.id = value,
            "sharing" => {
                m.sharing = Some(match value.to_lowercase().as_str() {
                    "shared" => ShareMode::Shared,
                    "private" => ShareMode::Private,
                    "locked" => ShareMode::Locked,
                    _ => {
                        return Err(with_suggestion(
                            format!("unsupported sharing value {value:?}"),
                            &value,
                            &strings(&["shared", "private", "locked"]),
                            true,
                        ));
                    }
                })
            }
            "mode" => {
                m.mode = Some(
                    u64::from_str_radix(&value, 8)
                        .ok()
                        .filter(|v| *v <= u64::from(u32::MAX))
                        .ok_or_else(|| format!("invalid value {value} for mode"))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    value
                        .parse::<u32>()
                        .map(u64::from)
                        .map_err(|_| format!("invalid value {value} for uid"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    value
                        .parse::<u32>()
                        .map(u64::from)
                        .map_err(|_| format!("invalid value {value} for gid"))?,
                )
            }
            "env" => m.env = Some(value),
            _ => {
                return Err(with_suggestion(
                    format!("unexpected key '{key}' in '{field}'"),
                    &key,
                    &strings(ALL_KEYS),
                    true,
                ));
            }
        }
    }
    let file_info_allowed = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info_allowed {
        let kind = m.kind.as_str();
        if m.mode.is_some() {
            return Err(format!("mode not allowed for {kind:?} type mounts"));
        }
        if m.uid.is_some() {
            return Err(format!("uid not allowed for {kind:?} type mounts"));
        }
        if m.gid.is_some() {
            return Err(format!("gid not allowed for {kind:?} type mounts"));
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if !m.from.is_empty() {
            return Err("secret mount should not have a from".into());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_empty() && m.target.is_empty() && m.id.is_empty() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if !m.source.is_empty() && !m.id.is_empty() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            m.kind.as_str()
        ));
    }
    Ok(m)
}

/// Splits one CSV record the way Go's strict `encoding/csv` does (quotes, `""`
/// escapes, no bare quotes inside unquoted fields).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let line = line
        .strip_suffix("\r\n")
        .or_else(|| line.strip_suffix('\n'))
        .unwrap_or(line);
    if line.is_empty() {
        return Err("EOF".into());
    }
    let mut fields = Vec::new();
    let mut rest = line;
    loop {
        if !rest.starts_with('"') {
            let (field, next) = match rest.find(',') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            if field.contains('"') {
                return Err("bare \" in non-quoted-field".into());
            }
            fields.push(field.to_string());
            match next {
                Some(n) => {
                    rest = n;
                    continue;
                }
                None => break,
            }
        }
        // Quoted field.
        rest = &rest[1..];
        let mut field = String::new();
        loop {
            let Some(i) = rest.find('"') else {
                return Err("extraneous or missing \" in quoted-field".into());
            };
            field.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(r) = rest.strip_prefix('"') {
                field.push('"');
                rest = r;
            } else if let Some(r) = rest.strip_prefix(',') {
                fields.push(std::mem::take(&mut field));
                rest = r;
                break;
            } else if rest.is_empty() {
                fields.push(std::mem::take(&mut field));
                return Ok(fields);
            } else {
                return Err("extraneous or missing \" in quoted-field".into());
            }
        }
    }
    Ok(fields)
}

/// Parses a size as docker's `units.RAMInBytes` (binary multiples: `64m`, `1g`, `512`).
pub(crate) fn ram_in_bytes(s: &str) -> Option<i64> {
    let sep = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    let (num, sfx) = if s.as_bytes()[sep] != b' ' {
        (&s[..=sep], &s[sep + 1..])
    } else {
        (&s[..sep], &s[sep + 1..])
    };
    let size: f64 = num.parse().ok()?;
    if size < 0.0 || !size.is_finite() {
        return None;
    }
    if sfx.is_empty() {
        return Some(size as i64);
    }
    if sfx.len() > 3 {
        return None;
    }
    let sfx = sfx.to_lowercase();
    let b = sfx.as_bytes();
    if b[0] == b'b' {
        return (b.len() == 1).then_some(size as i64);
    }
    let mul: f64 = match b[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0 * 1024.0 * 1024.0,
        b't' => 1024.0f64.powi(4),
        b'p' => 1024.0f64.powi(5),
        _ => return None,
    };
    let size = size * mul;
    match &sfx[1..] {
        "" | "b" | "ib" => Some(size as i64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(v: &str) -> Result<RunMount, String> {
        let mut id = |s: &str| Ok(s.to_string());
        parse_mount(v, Some(&mut id))
    }

    #[test]
    fn defaults_per_type() {
        let bind = full("target=/src").unwrap();
        assert_eq!(bind.kind, MountType::Bind);
        assert!(bind.read_only);
        let cache = full("type=cache,target=/root/.cache").unwrap();
        assert!(!cache.read_only);
        let bind_rw = full("type=bind,target=/x,rw").unwrap();
        assert!(!bind_rw.read_only);
        let secret = full("type=secret,id=tok,env=TOKEN,required").unwrap();
        assert_eq!(secret.env.as_deref(), Some("TOKEN"));
        assert!(secret.required);
        let tmpfs = full("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(tmpfs.size_limit, 64 * 1024 * 1024);
        let cache =
            full("type=cache,target=/c,sharing=locked,mode=0700,uid=1000,gid=1000").unwrap();
        assert_eq!(cache.sharing, Some(ShareMode::Locked));
        assert_eq!(cache.mode, Some(0o700));
        assert_eq!(cache.uid, Some(1000));
    }

    #[test]
    fn errors_as_buildkit() {
        assert_eq!(
            full("type=bnd,target=/x").unwrap_err(),
            "unsupported mount type \"bnd\" (did you mean bind?)"
        );
        assert_eq!(
            full("type=bind,target=/x,mode=0700").unwrap_err(),
            "mode not allowed for \"bind\" type mounts"
        );
        assert_eq!(
            full("type=secret").unwrap_err(),
            "invalid secret mount. one of source, target required"
        );
        assert_eq!(
            full("type=bind,targte=/x").unwrap_err(),
            "unexpected key 'targte' in 'targte=/x' (did you mean target?)"
        );
        assert_eq!(
            full("type=bind,target=/x,sharing=shared").unwrap_err(),
            "invalid cache sharing set for bind mount"
        );
        assert_eq!(
            full("type=bind,target").unwrap_err(),
            "invalid field 'target' must be a key=value pair"
        );
        assert_eq!(
            full("type=bind,required").unwrap_err(),
            "unexpected key 'required' for mount type 'bind'"
        );
        assert!(full("type=tmpfs,size=lots").is_err());
    }

    #[test]
    fn from_rejects_variables_before_expansion() {
        assert_eq!(
            parse_mount("type=bind,from=$STAGE,target=/x", None).unwrap_err(),
            "'from' doesn't support variable expansion, define alias stage instead"
        );
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(
            csv_fields(r#"type=bind,"source=a,b",target=/x"#).unwrap(),
            vec!["type=bind", "source=a,b", "target=/x"]
        );
        assert_eq!(csv_fields(r#""a""b",c"#).unwrap(), vec!["a\"b", "c"]);
        assert!(csv_fields(r#"a"b"#).is_err());
        assert!(csv_fields(r#""ab"#).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("1024"), Some(1024));
        assert_eq!(ram_in_bytes("1k"), Some(1024));
        assert_eq!(ram_in_bytes("1KiB"), Some(1024));
        assert_eq!(ram_in_bytes("1.5g"), Some(1610612736));
        assert_eq!(ram_in_bytes("64 MB"), Some(64 * 1024 * 1024));
        assert_eq!(ram_in_bytes("x"), None);
        assert_eq!(ram_in_bytes("-1"), None);
        assert_eq!(ram_in_bytes("1kx"), None);
    }
}
