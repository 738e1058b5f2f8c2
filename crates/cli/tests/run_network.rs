//! `RUN --network`: the default is the host's network (as BuildKit's default worker
//! without CNI), `none` is an empty namespace with only loopback, and `host` needs
//! `--allow network.host`.

mod common;

use common::{BUSYBOX, Context, State, ready, text, value_of};

const PROBE: &str = r#"if wget -q -O /dev/null http://127.0.0.1:5000/v2/; then echo "registry=reached"; else echo "registry=unreachable"; fi; \
    echo "ifaces=$(ls /sys/class/net | tr '\n' ' ')"; \
    echo "netns=$(readlink /proc/self/ns/net)""#;

fn host_netns() -> String {
    std::fs::read_link("/proc/self/ns/net")
        .unwrap()
        .to_string_lossy()
        .to_string()
}

#[test]
fn network_none_cannot_reach_the_registry_and_default_can() {
    if !ready("network_none_cannot_reach_the_registry_and_default_can") {
        return;
    }
    let df = format!(
        "FROM {BUSYBOX} AS none\nRUN --network=none {PROBE}\nFROM {BUSYBOX} AS default\nRUN --network=default echo default; {PROBE}\n"
    );
    let ctx = Context::new(&df, &[]);
    let state = State::new();

    let o = state.build(&["--target", "none", ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        value_of(&err, "registry").as_deref(),
        Some("unreachable"),
        "{err}"
    );
    assert_eq!(
        value_of(&err, "ifaces").as_deref().map(str::trim),
        Some("lo")
    );
    assert_ne!(value_of(&err, "netns").unwrap(), host_netns());

    let o = state.build(&["--target", "default", ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        value_of(&err, "registry").as_deref(),
        Some("reached"),
        "{err}"
    );
    assert_eq!(value_of(&err, "netns").unwrap(), host_netns());
}

#[test]
fn network_host_needs_the_entitlement() {
    if !ready("network_host_needs_the_entitlement") {
        return;
    }
    let df = format!("FROM {BUSYBOX}\nRUN echo first\nRUN --network=host {PROBE}\n");
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let o = state.build(&[ctx.arg()]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("network.host is not allowed"), "{err}");
    assert!(err.contains("Dockerfile:3"), "{err}");
    assert!(
        !err.lines().any(|l| l.starts_with('#')),
        "steps ran before the refusal: {err}"
    );

    let o = state.build(&["--allow", "network.host", ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        value_of(&err, "registry").as_deref(),
        Some("reached"),
        "{err}"
    );
    assert_eq!(value_of(&err, "netns").unwrap(), host_netns());

    // Cached now, the step still needs the entitlement (BuildKit checks on load).
    let o = state.build(&[ctx.arg()]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("network.host is not allowed"));
}
