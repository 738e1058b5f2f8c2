//! Pushing to a registry and pulling back, checked with skopeo against a registry of
//! the test's own: `-o type=image,...,push=true`, `-o type=registry`, `-t` names, and
//! blobs the registry already has (same repository: skipped; another repository
//! kiln pulled them from: mounted) are not uploaded again.

mod common;

use std::process::Command;

use common::{
    BUSYBOX, Context, Registry, State, StepEnd, digest_of, have, json, ready, run_tool, stderr,
    steps, text,
};

/// `skopeo inspect [--raw|--config --raw] docker://REF` against a plain-HTTP registry.
fn skopeo_inspect(reference: &str, extra: &[&str]) -> Vec<u8> {
    run_tool(
        Command::new("skopeo")
            .arg("inspect")
            .arg("--tls-verify=false")
            .args(extra)
            .arg(format!("docker://{reference}")),
    )
}

/// The status lines of the export step (`exporting to image`).
fn push_lines(plain: &str) -> Vec<String> {
    steps(plain)
        .into_iter()
        .find(|s| s.name == "exporting to image")
        .map(|s| s.lines)
        .unwrap_or_default()
}

/// What the push reported for `digest`: `exists`, `mounted`, `uploaded` or `absent`.
fn blob_fate(lines: &[String], digest: &str) -> &'static str {
    for l in lines {
        if l.starts_with(&format!("{digest} exists")) {
            return "exists";
        }
        if l.starts_with(&format!("{digest} mounted")) {
            return "mounted";
        }
        if l.starts_with(&format!("pushing {digest}")) {
            return "uploaded";
        }
    }
    "absent"
}

fn layers_of(reference: &str) -> Vec<String> {
    let m = json(&skopeo_inspect(reference, &["--raw"]));
    m["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_string())
        .collect()
}

#[test]
fn push_inspect_pull_back_and_push_shared_layers_once() {
    let test = "push_inspect_pull_back_and_push_shared_layers_once";
    if !ready(test) || !have(test, "skopeo") {
        return;
    }
    let Some(reg) = Registry::start() else {
        eprintln!("{test}: docker-registry is not installed or did not start; skipping");
        return;
    };
    let addr = &reg.addr;
    let df = format!("FROM {BUSYBOX}\nCOPY a.txt /a.txt\nRUN echo built > /built\n");
    let ctx = Context::new(&df, &[("a.txt", "first\n")]);
    let a = State::new();
    let meta = ctx.path().join("meta.json");

    // 1. type=image,push=true: what skopeo sees is what kiln says it pushed.
    let y1 = format!("{addr}/x/y:1");
    let o = a.build(&[
        "-o",
        &format!("type=image,name={y1},push=true"),
        "--metadata-file",
        meta.to_str().unwrap(),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let md = json(&std::fs::read(&meta).unwrap());
    let raw_manifest = skopeo_inspect(&y1, &["--raw"]);
    assert_eq!(
        md["containerimage.digest"].as_str(),
        Some(digest_of(&raw_manifest).as_str()),
        "metadata digest is not the pushed manifest's"
    );
    let inspect = json(&skopeo_inspect(&y1, &[]));
    assert_eq!(
        inspect["Digest"].as_str(),
        md["containerimage.digest"].as_str()
    );
    let manifest = json(&raw_manifest);
    // BuildKit's image exporter defaults oci-mediatypes to false.
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    let layers = layers_of(&y1);
    assert_eq!(layers.len(), 3, "busybox + COPY + RUN: {manifest}");
    let raw_config = skopeo_inspect(&y1, &["--config", "--raw"]);
    assert_eq!(
        Some(digest_of(&raw_config).as_str()),
        md["containerimage.config.digest"].as_str()
    );
    assert_eq!(
        manifest["config"]["digest"].as_str(),
        md["containerimage.config.digest"].as_str()
    );
    let config = json(&raw_config);
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(3)
    );
    let history: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["created_by"].as_str())
        .collect();
    assert!(
        history.contains(&"COPY a.txt /a.txt # buildkit"),
        "{history:?}"
    );
    // skopeo fetches (and verifies) every blob; the files are there.
    let copy = tempfile::tempdir().unwrap();
    let layout = copy.path().join("layout");
    run_tool(
        Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{y1}"))
            .arg(format!("oci:{}:t", layout.display())),
    );
    if have(test, "umoci") {
        let bundle = copy.path().join("bundle");
        run_tool(
            Command::new("umoci")
                .args(["unpack", "--image"])
                .arg(format!("{}:t", layout.display()))
                .arg(&bundle),
        );
        let rootfs = bundle.join("rootfs");
        assert_eq!(
            std::fs::read_to_string(rootfs.join("a.txt")).unwrap(),
            "first\n"
        );
        assert_eq!(
            std::fs::read_to_string(rootfs.join("built")).unwrap(),
            "built\n"
        );
    }

    // 2. type=registry is the same image pushed: the same manifest digest.
    let r1 = format!("{addr}/x/r:1");
    let o = a.build(&["-o", &format!("type=registry,name={r1}"), ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        digest_of(&skopeo_inspect(&r1, &["--raw"])),
        digest_of(&raw_manifest)
    );

    // ... and oci-mediatypes=true pushes OCI media types.
    let oci = format!("{addr}/x/oci:1");
    let o = a.build(&[
        "-o",
        &format!("type=registry,name={oci},oci-mediatypes=true"),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let m = json(&skopeo_inspect(&oci, &["--raw"]));
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    // 3. -t NAME (twice) with a push output names both tags.
    let (t1, t2) = (format!("{addr}/x/t:1"), format!("{addr}/x/t:2"));
    let o = a.build(&[
        "-t",
        &t1,
        "-t",
        &t2,
        "-o",
        "type=image,push=true",
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for t in [&t1, &t2] {
        assert_eq!(
            digest_of(&skopeo_inspect(t, &["--raw"])),
            digest_of(&raw_manifest),
            "{t}"
        );
    }

    // ... and so does buildx's --push.
    let t3 = format!("{addr}/x/t:3");
    let o = a.build(&["-t", &t3, "--push", ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        digest_of(&skopeo_inspect(&t3, &["--raw"])),
        digest_of(&raw_manifest)
    );

    // 4. Pull back: another state dir builds FROM the pushed image.
    let b = State::new();
    let ctx2 = Context::new(&format!("FROM {y1}\nRUN cat /a.txt /built > /both\n"), &[]);
    let out = ctx2.path().join("out");
    let o = b.build(&[
        "-o",
        &format!("type=local,dest={}", out.display()),
        ctx2.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read_to_string(out.join("both")).unwrap(),
        "first\nbuilt\n"
    );
    b.assert_clean();

    // 5. A second image sharing the base layers, pushed to the same repository:
    //    the registry has them, nothing is uploaded again.
    std::fs::write(ctx.path().join("a.txt"), "second\n").unwrap();
    let y2 = format!("{addr}/x/y:2");
    let o = a.build(&["-o", &format!("type=image,name={y2},push=true"), ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let lines = push_lines(&stderr(&o));
    let layers2 = layers_of(&y2);
    assert_eq!(layers2[0], layers[0], "the base layer should be shared");
    assert_eq!(blob_fate(&lines, &layers[0]), "exists", "{lines:#?}");
    assert_ne!(layers2[1], layers[1], "the COPY layer changed");
    assert_eq!(blob_fate(&lines, &layers2[1]), "uploaded", "{lines:#?}");

    // 6. The image built FROM x/y:1 pushed to another repository of the same
    //    registry: the layers pulled from x/y are mounted, not uploaded.
    let derived = format!("{addr}/x/derived:1");
    let o = b.build(&[
        "-o",
        &format!("type=image,name={derived},push=true"),
        ctx2.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let lines = push_lines(&stderr(&o));
    let dl = layers_of(&derived);
    assert_eq!(&dl[..3], &layers[..], "derived image keeps the base layers");
    for l in &layers {
        assert_eq!(blob_fate(&lines, l), "mounted", "{l}: {lines:#?}");
    }
    assert_eq!(blob_fate(&lines, &dl[3]), "uploaded", "{lines:#?}");

    // 7. Pushing the same image again: every blob exists.
    let o = a.build(&["-o", &format!("type=image,name={y2},push=true"), ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let lines = push_lines(&stderr(&o));
    for l in &layers2 {
        assert_eq!(blob_fate(&lines, l), "exists", "{l}: {lines:#?}");
    }
    let exported = steps(&stderr(&o))
        .into_iter()
        .find(|s| s.name == "exporting to image")
        .map(|s| s.end);
    assert_eq!(exported, Some(StepEnd::Done));
    a.assert_clean();
}
