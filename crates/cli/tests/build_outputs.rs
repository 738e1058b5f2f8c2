//! Every `-o` output read back by tools kiln did not write: OCI tarballs and layouts
//! by skopeo and umoci, docker tarballs by podman, `local` and `tar` by the file
//! system and tar(1); `--iidfile` and `--metadata-file` against what those tools
//! report.

mod common;

use std::path::Path;
use std::process::Command;

use common::{BUSYBOX, Context, State, digest_of, have, json, ready, run_tool, text};

/// A build with a file from the context, one made by RUN and a symlink.
fn context() -> Context {
    Context::new(
        &format!(
            "FROM {BUSYBOX}\nCOPY a.txt /srv/a.txt\nRUN echo made > /srv/made && ln -s a.txt /srv/link\nLABEL kiln.test=outputs\n"
        ),
        &[("a.txt", "from the context\n")],
    )
}

fn check_rootfs(rootfs: &Path) {
    assert_eq!(
        std::fs::read_to_string(rootfs.join("srv/a.txt")).unwrap(),
        "from the context\n"
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join("srv/made")).unwrap(),
        "made\n"
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("srv/link")).unwrap(),
        Path::new("a.txt")
    );
    assert!(
        rootfs.join("bin/busybox").is_file(),
        "the base image is there"
    );
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    run_tool(Command::new("skopeo").args(args))
}

#[test]
fn oci_tarball_and_layout_read_by_skopeo_and_umoci() {
    let test = "oci_tarball_and_layout_read_by_skopeo_and_umoci";
    if !ready(test) || !have(test, "skopeo") || !have(test, "umoci") {
        return;
    }
    let ctx = context();
    let state = State::new();
    let work = tempfile::tempdir().unwrap();
    let tarball = work.path().join("image.tar");
    let iid = work.path().join("iid");
    let meta = work.path().join("meta.json");
    let o = state.build(&[
        "-t",
        "kiln.test/outputs:v1",
        "-o",
        &format!("type=oci,dest={}", tarball.display()),
        "--iidfile",
        iid.to_str().unwrap(),
        "--metadata-file",
        meta.to_str().unwrap(),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));

    let archive = format!("oci-archive:{}", tarball.display());
    let raw_manifest = skopeo(&["inspect", "--raw", &archive]);
    let raw_config = skopeo(&["inspect", "--config", "--raw", &archive]);
    let inspect = json(&skopeo(&["inspect", &archive]));
    let md = json(&std::fs::read(&meta).unwrap());
    let iid = std::fs::read_to_string(&iid).unwrap();

    assert_eq!(
        iid,
        digest_of(&raw_config),
        "--iidfile is the config digest"
    );
    assert_eq!(
        md["containerimage.config.digest"].as_str(),
        Some(iid.as_str())
    );
    assert_eq!(
        md["containerimage.digest"].as_str(),
        Some(digest_of(&raw_manifest).as_str())
    );
    assert_eq!(
        inspect["Digest"].as_str(),
        Some(digest_of(&raw_manifest).as_str())
    );
    assert_eq!(md["image.name"], "kiln.test/outputs:v1");
    assert_eq!(inspect["Labels"]["kiln.test"], "outputs");
    assert_eq!(inspect["Layers"].as_array().map(Vec::len), Some(3));
    let manifest = json(&raw_manifest);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(manifest["config"]["digest"].as_str(), Some(iid.as_str()));

    // skopeo copies it into a layout (checking every blob); umoci unpacks that.
    let layout = work.path().join("layout");
    skopeo(&[
        "copy",
        &archive,
        &format!("oci:{}:copied", layout.display()),
    ]);
    let bundle = work.path().join("bundle");
    run_tool(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:copied", layout.display()))
            .arg(&bundle),
    );
    check_rootfs(&bundle.join("rootfs"));

    // tar=false writes the layout itself; umoci reads it by the tag's ref.name.
    let dir = work.path().join("direct");
    let o = state.build(&[
        "-t",
        "kiln.test/outputs:v1",
        "-o",
        &format!("type=oci,tar=false,dest={}", dir.display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let bundle2 = work.path().join("bundle2");
    run_tool(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:v1", dir.display()))
            .arg(&bundle2),
    );
    check_rootfs(&bundle2.join("rootfs"));
    let index = json(&std::fs::read(dir.join("index.json")).unwrap());
    assert_eq!(
        index["manifests"][0]["digest"].as_str(),
        Some(digest_of(&raw_manifest).as_str()),
        "the layout holds the same image as the tarball"
    );
    state.assert_clean();
}

#[test]
fn docker_tarball_loads_into_podman() {
    let test = "docker_tarball_loads_into_podman";
    if !ready(test) || !have(test, "podman") {
        return;
    }
    let ctx = context();
    let state = State::new();
    let work = tempfile::tempdir().unwrap();
    let tarball = work.path().join("docker.tar");
    let iid = work.path().join("iid");
    let o = state.build(&[
        "-t",
        "kiln.test/loaded:v2",
        "-o",
        &format!("type=docker,dest={}", tarball.display()),
        "--iidfile",
        iid.to_str().unwrap(),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let iid = std::fs::read_to_string(&iid).unwrap();

    // A throwaway podman store: nothing global is touched.
    let podman = |args: &[&str]| -> Vec<u8> {
        run_tool(
            Command::new("podman")
                .arg("--root")
                .arg(work.path().join("podman-root"))
                .arg("--runroot")
                .arg(work.path().join("podman-run"))
                .arg("--tmpdir")
                .arg(work.path().join("podman-tmp"))
                .args(["--storage-driver", "vfs", "--events-backend", "none"])
                .args(args),
        )
    };
    let loaded = String::from_utf8(podman(&["load", "-i", tarball.to_str().unwrap()])).unwrap();
    assert!(loaded.contains("kiln.test/loaded:v2"), "{loaded}");
    let images = String::from_utf8(podman(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]))
    .unwrap();
    let hex = iid.trim_start_matches("sha256:");
    assert!(
        images
            .lines()
            .any(|l| l.contains("kiln.test/loaded:v2") && l.contains(hex)),
        "tag and image id {iid} not listed:\n{images}"
    );
    let config = json(&podman(&["image", "inspect", "kiln.test/loaded:v2"]));
    assert_eq!(config[0]["Labels"]["kiln.test"], "outputs");
    assert_eq!(
        config[0]["RootFS"]["Layers"].as_array().map(Vec::len),
        Some(3)
    );
    state.assert_clean();
}

#[test]
fn local_and_tar_outputs_hold_the_filesystem() {
    let test = "local_and_tar_outputs_hold_the_filesystem";
    if !ready(test) {
        return;
    }
    let ctx = context();
    let state = State::new();
    let work = tempfile::tempdir().unwrap();

    let dir = work.path().join("local");
    let o = state.build(&[
        "-o",
        &format!("type=local,dest={}", dir.display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    check_rootfs(&dir);

    let tarball = work.path().join("fs.tar");
    let o = state.build(&[
        "-o",
        &format!("type=tar,dest={}", tarball.display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let unpacked = work.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    run_tool(
        Command::new("tar")
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(&unpacked),
    );
    check_rootfs(&unpacked);
    let listing =
        String::from_utf8(run_tool(Command::new("tar").arg("-tvf").arg(&tarball))).unwrap();
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with('l') && l.ends_with("srv/link -> a.txt")),
        "{listing}"
    );

    // dest=- writes the same tarball to stdout.
    let o = state
        .kiln()
        .args([
            "build",
            "--progress",
            "plain",
            "-o",
            "type=tar,dest=-",
            ctx.arg(),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        o.stdout == std::fs::read(&tarball).unwrap(),
        "the tarball on stdout differs from the file"
    );

    // --iidfile without an image output: the id of the image the build made, the
    // same one an OCI output writes.
    let iid = work.path().join("iid");
    let oci = work.path().join("oci.tar");
    let o = state.build(&["--iidfile", iid.to_str().unwrap(), ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = state.build(&["-o", &format!("type=oci,dest={}", oci.display()), ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    if have(test, "skopeo") {
        let config = skopeo(&[
            "inspect",
            "--config",
            "--raw",
            &format!("oci-archive:{}", oci.display()),
        ]);
        assert_eq!(std::fs::read_to_string(&iid).unwrap(), digest_of(&config));
    }
    state.assert_clean();
}
