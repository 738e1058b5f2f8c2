//! EXPOSE port specifications: `80`, `53/udp`, `8000-8002`, and the
//! `[ip:]host:container` forms Docker still accepts.

use super::lint::{Linter, Rule};

/// Expands port specs into `port/proto` entries, in order, running BuildKit's checks
/// on them (`ExposeProtoCasing`, `ExposeInvalidFormat`).
/// `line` is the EXPOSE's, for the checks' warnings.
pub(crate) fn parse_ports(
    ports: &[String],
    lint: &Linter,
    line: usize,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for p in ports {
        out.extend(parse_port(p, lint, line)?);
    }
    Ok(out)
}

fn parse_port(raw: &str, lint: &Linter, line: usize) -> Result<Vec<String>, String> {
    let (ip, host_port, container_port) = split_parts(raw);
    let (proto, container_port) =
        split_proto_port(&container_port).map_err(|e| format!("invalid port: {raw:?}: {e}"))?;
    if proto != proto.to_lowercase() {
        lint.run(
            Rule::ExposeProtoCasing,
            line,
            format!("Defined protocol '{raw}' in EXPOSE instruction should be lowercase"),
        );
    }
    if !ip.is_empty() || !host_port.is_empty() {
        lint.run(
            Rule::ExposeInvalidFormat,
            line,
            format!(
                "EXPOSE instruction should not define an IP address or host-port mapping, found '{raw}'"
            ),
        );
    }
    let mut ip = ip;
    if ip.starts_with('[') {
        ip = ip
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .map(str::to_string)
            .ok_or_else(|| format!("invalid IP address {ip}"))?;
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    let (start, end) = parse_port_range(&container_port)
        .map_err(|_| format!("invalid containerPort: {container_port}"))?;
    if !host_port.is_empty() {
        let (hs, he) =
            parse_port_range(&host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?;
        if (end - start) != (he - hs) && end != start {
            return Err(format!(
                "invalid ranges specified for container and host Ports: {container_port} and {host_port}"
            ));
        }
    }
    let proto = proto.to_lowercase();
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

fn parse_port_range(ports: &str) -> Result<(u32, u32), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let (start, end) = match ports.split_once('-') {
        Some((s, e)) => (s, Some(e)),
        None => (ports, None),
    };
    let start_port = parse_port_number(start)?;
    match end {
        None => Ok((start_port, start_port)),
        Some(e) if e == start => Ok((start_port, start_port)),
        Some(e) => {
            let end_port = parse_port_number(e)?;
            if end_port < start_port {
                return Err(format!("invalid port range: {ports}"));
            }
            Ok((start_port, end_port))
        }
    }
}

fn parse_port_number(raw: &str) -> Result<u32, String> {
    if raw.is_empty() {
        return Err("value is empty".into());
    }
    let v: i64 = raw.parse().map_err(|_| "invalid syntax".to_string())?;
    if !(0..=65535).contains(&v) {
        return Err("value out of range (0–65535)".into());
    }
    Ok(v as u32)
}

fn split_proto_port(raw: &str) -> Result<(String, String), String> {
    let (port, proto) = raw.split_once('/').unwrap_or((raw, ""));
    if port.is_empty() {
        return Err("no port specified".into());
    }
    match proto.to_lowercase().as_str() {
        "" => Ok(("tcp".into(), port.into())),
        "tcp" | "udp" | "sctp" => Ok((proto.into(), port.into())),
        _ => Err(format!("invalid proto: {proto}")),
    }
}

fn split_parts(raw: &str) -> (String, String, String) {
    let parts: Vec<&str> = raw.split(':').collect();
    match parts.len() {
        1 => (String::new(), String::new(), parts[0].into()),
        2 => (String::new(), parts[0].into(), parts[1].into()),
        3 => (parts[0].into(), parts[1].into(), parts[2].into()),
        n => (
            parts[..n - 2].join(":"),
            parts[n - 2].into(),
            parts[n - 1].into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(v: &[&str]) -> Result<Vec<String>, String> {
        let lint = Linter::default();
        parse_ports(
            &v.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &lint,
            1,
        )
    }

    #[test]
    fn proto_casing_and_host_parts_are_checked() {
        let lint = Linter::default();
        let ports: Vec<String> = ["80", "53/udp"].map(String::from).to_vec();
        parse_ports(&ports, &lint, 1).unwrap();
        assert!(lint.broken().is_empty());
        parse_ports(&["443/TCP".to_string()], &lint, 1).unwrap();
        parse_ports(&["8080:80".to_string()], &lint, 1).unwrap();
        assert_eq!(
            lint.broken(),
            [Rule::ExposeProtoCasing, Rule::ExposeInvalidFormat]
        );
    }

    #[test]
    fn forms() {
        assert_eq!(
            ports(&["80", "53/udp", "8000-8002", "443/TCP"]).unwrap(),
            vec![
                "80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp", "443/tcp"
            ]
        );
        assert_eq!(ports(&["8080:80"]).unwrap(), vec!["80/tcp"]);
        assert_eq!(ports(&["127.0.0.1:8080:80/udp"]).unwrap(), vec!["80/udp"]);
    }

    #[test]
    fn errors() {
        assert!(ports(&["abc"]).is_err());
        assert!(ports(&["70000"]).is_err());
        assert!(ports(&["80/icmp"]).is_err());
        assert!(ports(&["90-80"]).is_err());
        assert!(ports(&["/tcp"]).is_err());
    }
}
