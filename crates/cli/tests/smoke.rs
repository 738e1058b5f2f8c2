//! The smallest end-to-end check: a multi-stage build with RUN steps into an OCI
//! tarball, read back by the conformance suite's own reader semantics (index, manifest,
//! config) — and the same build again, served from the cache.

mod common;

use common::{BUSYBOX, Context, State, ready, text};

#[test]
fn multi_stage_build_with_run_then_cached_rebuild() {
    if !ready("multi_stage_build_with_run_then_cached_rebuild") {
        return;
    }
    let df = format!(
        "FROM {BUSYBOX} AS build\nCOPY in.txt /in.txt\nRUN tr a-z A-Z < /in.txt > /out.txt\nFROM {BUSYBOX}\nCOPY --from=build /out.txt /result.txt\n"
    );
    let ctx = Context::new(&df, &[("in.txt", "hello\n")]);
    let state = State::new();
    let out = ctx.path().join("out.tar");
    let o = state.build(&["-o", &format!("type=oci,dest={}", out.display()), ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let first = std::fs::read(&out).unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("RUN tr a-z A-Z"), "{stderr}");

    let o = state.build(&["-o", &format!("type=oci,dest={}", out.display()), ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.matches(" CACHED").count(), 3, "{stderr}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        first,
        "the rebuild wrote other bytes"
    );
}

#[test]
fn quiet_prints_only_the_image_id() {
    if !ready("quiet_prints_only_the_image_id") {
        return;
    }
    let ctx = Context::new(&format!("FROM {BUSYBOX}\nLABEL quiet=yes\n"), &[]);
    let state = State::new();
    let iid = ctx.path().join("iid");
    let o = state
        .kiln()
        .args(["build", "-q", "--iidfile", iid.to_str().unwrap(), ctx.arg()])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run kiln");
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.trim(), std::fs::read_to_string(&iid).unwrap());
    assert!(stdout.trim().starts_with("sha256:"), "{stdout}");
    assert!(o.stderr.is_empty(), "{}", text(&o));
}
