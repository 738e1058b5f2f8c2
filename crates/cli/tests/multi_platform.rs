//! `--platform a,b`: one index over a manifest per platform, checked with skopeo.

mod common;

use std::process::Command;

use common::{Context, State, ready, text};

#[test]
fn several_platforms_make_one_index() {
    if !ready("several_platforms_make_one_index") {
        return;
    }
    let ctx = Context::new(
        "FROM scratch\nARG TARGETARCH\nCOPY hello.txt /hello-$TARGETARCH.txt\n",
        &[("hello.txt", "hi\n")],
    );
    let state = State::new();
    let out = ctx.path().join("out.tar");
    let o = state.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        &format!("type=oci,dest={}", out.display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci-archive:{}", out.display()))
        .output()
        .expect("skopeo");
    assert!(raw.status.success(), "{}", text(&raw));
    let index: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, vec!["amd64", "arm64"]);
    for arch in ["amd64", "arm64"] {
        let cfg = Command::new("skopeo")
            .args(["inspect", "--override-arch", arch, "--config"])
            .arg(format!("oci-archive:{}", out.display()))
            .output()
            .expect("skopeo");
        assert!(cfg.status.success(), "{}", text(&cfg));
        let cfg: serde_json::Value = serde_json::from_slice(&cfg.stdout).unwrap();
        assert_eq!(cfg["architecture"], arch);
    }
    // A docker tarball cannot hold a list, as with BuildKit.
    let o = state.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        &format!("type=docker,dest={}", ctx.path().join("d.tar").display()),
        ctx.arg(),
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("manifest lists"),
        "{}",
        text(&o)
    );
}

#[test]
fn several_platforms_into_an_oci_layout_directory() {
    if !ready("several_platforms_into_an_oci_layout_directory") {
        return;
    }
    let ctx = Context::new(
        "FROM scratch\nARG TARGETARCH\nCOPY hello.txt /hello-$TARGETARCH.txt\n",
        &[("hello.txt", "hi\n")],
    );
    let state = State::new();
    let layout = ctx.path().join("layout");
    let o = state.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        "example.com/multi:v1",
        "-o",
        &format!("type=oci,dest={},tar=false", layout.display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:v1", layout.display()))
        .output()
        .expect("skopeo");
    assert!(raw.status.success(), "{}", text(&raw));
    let index: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let archs: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, vec!["amd64", "arm64"]);
    let cfg = Command::new("skopeo")
        .args(["inspect", "--override-arch", "arm64", "--config"])
        .arg(format!("oci:{}:v1", layout.display()))
        .output()
        .expect("skopeo");
    assert!(cfg.status.success(), "{}", text(&cfg));
    let cfg: serde_json::Value = serde_json::from_slice(&cfg.stdout).unwrap();
    assert_eq!(cfg["architecture"], "arm64");
    let top: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        top["manifests"][0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
}
