//! `--platform a,b`: one index over a manifest per platform, checked with skopeo.

mod common;

use std::process::Command;

use common::{Context, State, ready, text};

/// The architectures of the platform index at `image` (a skopeo transport and
/// reference), in order.
fn index_archs(image: &str) -> Vec<String> {
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", image])
        .output()
        .expect("skopeo");
    assert!(raw.status.success(), "{}", text(&raw));
    let index: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap().to_string())
        .collect()
}

/// The `architecture` of the config skopeo picks from `image` for `arch`.
fn config_arch(image: &str, arch: &str) -> String {
    let cfg = Command::new("skopeo")
        .args(["inspect", "--override-arch", arch, "--config", image])
        .output()
        .expect("skopeo");
    assert!(cfg.status.success(), "{}", text(&cfg));
    let cfg: serde_json::Value = serde_json::from_slice(&cfg.stdout).unwrap();
    cfg["architecture"].as_str().unwrap_or_default().to_string()
}

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
    let image = format!("oci-archive:{}", out.display());
    assert_eq!(index_archs(&image), ["amd64", "arm64"]);
    for arch in ["amd64", "arm64"] {
        assert_eq!(config_arch(&image, arch), arch);
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
    let image = format!("oci:{}:v1", layout.display());
    assert_eq!(index_archs(&image), ["amd64", "arm64"]);
    assert_eq!(config_arch(&image, "arm64"), "arm64");
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

#[test]
fn several_platforms_into_one_tarball_of_platform_directories() {
    if !ready("several_platforms_into_one_tarball_of_platform_directories") {
        return;
    }
    let ctx = Context::new(
        "FROM scratch\nARG TARGETARCH\nCOPY hello.txt /hello-$TARGETARCH.txt\n",
        &[("hello.txt", "hi\n")],
    );
    let state = State::new();
    let out = ctx.path().join("fs.tar");
    let o = state.build(&[
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        &format!("type=tar,dest={}", out.display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let listing = Command::new("tar")
        .arg("-tf")
        .arg(&out)
        .output()
        .expect("tar");
    assert!(listing.status.success(), "{}", text(&listing));
    let names: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        names,
        [
            "linux_amd64/",
            "linux_amd64/hello-amd64.txt",
            "linux_arm64/",
            "linux_arm64/hello-arm64.txt",
        ]
    );
    // The staging directory is gone.
    let leftovers: Vec<_> = std::fs::read_dir(state.path().join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
