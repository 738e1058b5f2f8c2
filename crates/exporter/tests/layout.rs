//! OCI layouts and docker tarballs, checked by tools kiln did not write: skopeo,
//! umoci, podman and the conformance suite's `normalize.py`.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use kiln_exporter::{
    ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME, AssembleOptions, ExportError, MediaTypes,
    OutputSpec, assemble, write_docker, write_oci,
};

const NORMALIZE: &str = "/work/shared/conformance/normalize.py";

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn tar_list(path: &Path) -> Vec<String> {
    let out = run(Command::new("tar").arg("-tvf").arg(path).env("TZ", "UTC"));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn oci_tarball_is_deterministic_and_readable_by_other_tools() {
    let fx = Fixture::new();
    let image = fx.image(&fx.app);
    let spec = OutputSpec::parse("type=oci,dest=unused,name=kiln/app:1").unwrap();
    let opts = spec
        .assemble_options(&image.config.platform(), None)
        .unwrap()
        .unwrap();
    let a = assemble(&image, &opts).unwrap();
    let first = fx.path("first.tar");
    let second = fx.path("second.tar");
    write_oci(&a, &image, &first, true, &names(&["kiln/app:1"])).unwrap();
    // Assembled again from scratch: byte-identical.
    let again = assemble(&image, &opts).unwrap();
    write_oci(&again, &image, &second, true, &names(&["kiln/app:1"])).unwrap();
    assert_eq!(fs::read(&first).unwrap(), fs::read(&second).unwrap());

    // Sorted entries, fixed owners, modes and times.
    let listing = tar_list(&first);
    let names_only: Vec<&str> = listing
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    let mut sorted = names_only.clone();
    sorted.sort();
    assert_eq!(names_only, sorted);
    assert_eq!(names_only[..2], ["blobs/", "blobs/sha256/"]);
    assert_eq!(
        names_only[names_only.len() - 2..],
        ["index.json", "oci-layout"]
    );
    assert_eq!(names_only.len(), 2 + 4 + 2, "{listing:#?}");
    for line in &listing {
        assert!(line.contains(" 0/0 "), "{line}");
        assert!(line.contains("1970-01-01 00:00"), "{line}");
    }
    assert!(listing[2].starts_with("-r--r--r--"), "{}", listing[2]);

    // index.json as BuildKit's oci exporter writes it.
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&first)
        .arg("-C")
        .arg(dir.path()));
    let index = fs::read_to_string(dir.path().join("index.json")).unwrap();
    assert_eq!(
        index,
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{},"annotations":{{"io.containerd.image.name":"docker.io/kiln/app:1","org.opencontainers.image.created":"2024-05-01T10:00:00Z","org.opencontainers.image.ref.name":"1"}},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            a.manifest_digest,
            a.manifest.len()
        )
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );

    if let Some(skopeo) = tool("skopeo") {
        let out = run(Command::new(&skopeo)
            .arg("inspect")
            .arg(format!("oci-archive:{}", first.display())));
        let info = json(&out);
        assert_eq!(info["Digest"], a.manifest_digest.to_string());
        assert_eq!(info["Architecture"], "amd64");
        assert_eq!(info["Layers"][0], fx.base.descriptor.digest.to_string());
        assert_eq!(info["Layers"][1], fx.app.descriptor.digest.to_string());
        assert_eq!(info["Labels"]["org.example.note"], "a <b> & c");
        // The config exactly as written, looked up by its ref.name.
        let raw = run(Command::new(&skopeo)
            .arg("inspect")
            .arg("--raw")
            .arg("--config")
            .arg(format!("oci-archive:{}:1", first.display())));
        assert_eq!(raw.stdout, a.config);
    }

    if let Some(python) = tool("python3") {
        let out = run(Command::new(python).arg(NORMALIZE).arg(&first));
        let norm = json(&out);
        assert_eq!(norm["layers"], 2);
        assert_eq!(norm["config"]["config"]["WorkingDir"], "/app");
        let history: Vec<&str> = norm["config"]["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["created_by"].as_str().unwrap())
            .collect();
        assert_eq!(history[3], "COPY hello.txt /app/hello.txt # buildkit");
        let fs_lines: Vec<&str> = norm["fs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert!(fs_lines.contains(&"tmp d 1777 0 0 0 -"), "{fs_lines:#?}");
        assert!(
            fs_lines.contains(&"bin/sh l 0777 0 0 0 busybox"),
            "{fs_lines:#?}"
        );
        assert!(
            fs_lines.contains(&"bin/ls h 0755 0 0 0 bin/busybox"),
            "{fs_lines:#?}"
        );
        assert!(
            fs_lines
                .iter()
                .any(|l| l.starts_with("app/hello.txt f 0644 0 0 16 ")),
            "{fs_lines:#?}"
        );
    }
}

#[test]
fn oci_directory_is_unpacked_by_umoci_and_merges_names() {
    let fx = Fixture::new();
    let image = fx.image(&fx.app);
    let a = assemble(&image, &AssembleOptions::default()).unwrap();
    let layout = fx.path("layout");
    write_oci(&a, &image, &layout, false, &names(&["kiln/app:1"])).unwrap();
    let mut files = list(&layout);
    files.retain(|f| f.starts_with("blobs/sha256/"));
    assert_eq!(files.len(), 4);
    assert_eq!(
        fs::metadata(layout.join("blobs/sha256").join(a.config_digest.hex()))
            .unwrap()
            .len(),
        a.config.len() as u64
    );

    // A second image into the same layout keeps the first; the same name again
    // replaces its entry.
    let image2 = fx.image(&fx.app2);
    let a2 = assemble(&image2, &AssembleOptions::default()).unwrap();
    write_oci(&a2, &image2, &layout, false, &names(&["kiln/app:2"])).unwrap();
    write_oci(&a2, &image2, &layout, false, &names(&["kiln/app:2"])).unwrap();
    write_oci(&a2, &image2, &layout, false, &[]).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entries: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap().to_string(),
                m["annotations"][ANNOTATION_REF_NAME]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (a.manifest_digest.to_string(), "1".to_string()),
            (a2.manifest_digest.to_string(), "2".to_string()),
            (a2.manifest_digest.to_string(), "latest".to_string()),
        ]
    );
    assert_eq!(
        index["manifests"][0]["annotations"][ANNOTATION_IMAGE_NAME],
        "docker.io/kiln/app:1"
    );
    assert!(
        index["manifests"][2]["annotations"]
            .get(ANNOTATION_IMAGE_NAME)
            .is_none()
    );

    if let Some(skopeo) = tool("skopeo") {
        let info = json(&run(Command::new(&skopeo)
            .arg("inspect")
            .arg(format!("oci:{}:2", layout.display()))));
        assert_eq!(info["Digest"], a2.manifest_digest.to_string());
    }
    if let Some(umoci) = tool("umoci") {
        let bundle = fx.path("bundle");
        run(Command::new(umoci)
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:1", layout.display()))
            .arg(&bundle));
        let rootfs = bundle.join("rootfs");
        assert_eq!(
            fs::read_to_string(rootfs.join("app/hello.txt")).unwrap(),
            "hello from kiln\n"
        );
        assert_eq!(
            fs::read_link(rootfs.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        let config: serde_json::Value =
            serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
        assert_eq!(config["process"]["cwd"], "/app");
    }
}

#[test]
fn docker_tarball_loads_in_podman_under_its_tag() {
    let fx = Fixture::new();
    let image = fx.image(&fx.app);
    let spec = OutputSpec::parse("type=docker,dest=x.tar,name=kiln/app:1").unwrap();
    let opts = spec
        .assemble_options(&image.config.platform(), None)
        .unwrap()
        .unwrap();
    assert_eq!(opts.media_types, MediaTypes::Docker);
    let a = assemble(&image, &opts).unwrap();
    let tarball = fx.path("docker.tar");
    let tag = names(&["kiln/app:1", "kiln/app:latest"]);
    write_docker(&a, &image, &tarball, &tag).unwrap();
    let copy = fx.path("docker2.tar");
    write_docker(&a, &image, &copy, &tag).unwrap();
    assert_eq!(fs::read(&tarball).unwrap(), fs::read(&copy).unwrap());

    let dir = tempfile::tempdir().unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir.path()));
    let manifest = fs::read_to_string(dir.path().join("manifest.json")).unwrap();
    assert_eq!(
        manifest,
        format!(
            r#"[{{"Config":"blobs/sha256/{}","RepoTags":["kiln/app:1","kiln/app:latest"],"Layers":["blobs/sha256/{}","blobs/sha256/{}"]}}]"#,
            a.config_digest.hex(),
            fx.base.descriptor.digest.hex(),
            fx.app.descriptor.digest.hex()
        )
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("repositories")).unwrap(),
        format!(
            r#"{{"kiln/app":{{"1":"{0}","latest":"{0}"}}}}"#,
            fx.app.descriptor.digest.hex()
        )
    );
    let m: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        m["layers"][1]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );

    if let Some(skopeo) = tool("skopeo") {
        let info = json(&run(Command::new(&skopeo)
            .arg("inspect")
            .arg(format!("docker-archive:{}", tarball.display()))));
        // docker-archive presents the layers uncompressed: by their diff_ids.
        assert_eq!(info["Layers"][1], fx.app.diff_id.to_string());
        assert_eq!(info["Labels"]["org.example.note"], "a <b> & c");
    }
    let Some(podman) = tool("podman") else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let podman_cmd = || {
        let mut c = Command::new(&podman);
        c.arg("--root")
            .arg(store.path().join("root"))
            .arg("--runroot")
            .arg(store.path().join("run"))
            .arg("--storage-driver")
            .arg("vfs")
            .arg("--cgroup-manager")
            .arg("cgroupfs")
            .arg("--events-backend")
            .arg("none");
        c
    };
    run(podman_cmd().arg("load").arg("-i").arg(&tarball));
    // Looked up by image ID, which is the config digest; podman files short names
    // under `localhost/`, docker under `docker.io/`.
    let out = run(podman_cmd()
        .arg("image")
        .arg("inspect")
        .arg(a.config_digest.hex()));
    let info = json(&out);
    assert_eq!(info[0]["Id"], a.config_digest.hex());
    let tags: Vec<&str> = info[0]["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.iter().any(|t| t.ends_with("/kiln/app:1")), "{tags:?}");
    assert!(
        tags.iter().any(|t| t.ends_with("/kiln/app:latest")),
        "{tags:?}"
    );
    assert_eq!(info[0]["Config"]["WorkingDir"], "/app");
}

#[test]
fn failed_writes_name_the_path_and_leave_nothing() {
    let fx = Fixture::new();
    let image = fx.image(&fx.app);
    let a = assemble(&image, &AssembleOptions::default()).unwrap();
    let out = fx.path("out");
    fs::create_dir(&out).unwrap();

    let missing = out.join("no/such/dir/image.tar");
    let err = write_oci(&a, &image, &missing, true, &[]).unwrap_err();
    assert!(matches!(err, ExportError::MissingParent { .. }), "{err}");
    assert!(err.to_string().contains("no/such/dir"), "{err}");

    let err = write_oci(&a, &image, &out, true, &[]).unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
    let file = out.join("file");
    fs::write(&file, "x").unwrap();
    let err = write_oci(&a, &image, &file, false, &[]).unwrap_err();
    assert!(err.to_string().contains("is a file"), "{err}");

    // A layer blob that is not what its descriptor says stops the export, names the
    // blob, and leaves no tarball or directory behind.
    let mut corrupt = image.clone();
    let bad = fx.path("bad-layer");
    let mut bytes = fs::read(&fx.app.blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&bad, &bytes).unwrap();
    corrupt.layers[1].blob = bad.clone();
    for tar in [true, false] {
        let dest = out.join(if tar { "bad.tar" } else { "bad-dir" });
        let err = write_oci(&a, &corrupt, &dest, tar, &[]).unwrap_err();
        assert!(matches!(err, ExportError::BlobMismatch { .. }), "{err}");
        assert!(err.to_string().contains("bad-layer"), "{err}");
    }
    let err = write_docker(&a, &corrupt, &out.join("bad-docker.tar"), &[]).unwrap_err();
    assert!(matches!(err, ExportError::BlobMismatch { .. }), "{err}");
    assert_eq!(list(&out), ["file"]);

    // A truncated blob is caught by its size.
    fs::write(&bad, &bytes[..10]).unwrap();
    let err = write_oci(&a, &corrupt, &out.join("short.tar"), true, &[]).unwrap_err();
    assert!(err.to_string().contains("size 10"), "{err}");
    assert_eq!(list(&out), ["file"]);
}

#[test]
fn a_verified_layer_is_copied_unhashed_but_still_checked_for_size() {
    let fx = Fixture::new();
    let image = fx.image(&fx.app);
    let a = assemble(&image, &AssembleOptions::default()).unwrap();
    let out = fx.path("out");
    fs::create_dir(&out).unwrap();
    let good = out.join("good.tar");
    write_oci(&a, &image, &good, true, &[]).unwrap();

    // Same bytes, marked verified: the same tarball.
    let mut verified = image.clone();
    for l in &mut verified.layers {
        l.verified = true;
    }
    for tar in [true, false] {
        let dest = out.join(if tar { "verified.tar" } else { "verified-dir" });
        write_oci(&a, &verified, &dest, tar, &[]).unwrap();
        if tar {
            assert_eq!(fs::read(&dest).unwrap(), fs::read(&good).unwrap());
        }
    }

    // Not read again: bytes that differ from what the caller hashed (which a
    // caller must never give) go through unnoticed, where unverified ones stop.
    let flipped = fx.path("flipped-layer");
    let mut bytes = fs::read(&fx.app.blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&flipped, &bytes).unwrap();
    verified.layers[1].blob = flipped;
    write_oci(&a, &verified, &out.join("trusted.tar"), true, &[]).unwrap();
    let mut unverified = verified.clone();
    unverified.layers[1].verified = false;
    let err = write_oci(&a, &unverified, &out.join("checked.tar"), true, &[]).unwrap_err();
    assert!(matches!(err, ExportError::BlobMismatch { .. }), "{err}");

    // The caller vouches for the digest, not the size: a short blob still fails.
    let bad = fx.path("short-layer");
    fs::write(&bad, &bytes[..10]).unwrap();
    verified.layers[1].blob = bad;
    let err = write_oci(&a, &verified, &out.join("short.tar"), true, &[]).unwrap_err();
    assert!(err.to_string().contains("size 10"), "{err}");
}

#[test]
fn epoch_fixes_times_in_config_index_and_tar_headers() {
    let fx = Fixture::new();
    let image = fx.image(&fx.app);
    let spec = OutputSpec::parse("type=oci,dest=x,source-date-epoch=1700000000").unwrap();
    let opts = spec
        .assemble_options(&image.config.platform(), None)
        .unwrap()
        .unwrap();
    let a = assemble(&image, &opts).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&a.config).unwrap();
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    let times: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created"].as_str().unwrap())
        .collect();
    // The base image's entries keep their times; the build's get the epoch.
    assert_eq!(
        times,
        [
            "2020-09-13T12:26:40Z",
            "2020-09-13T12:26:41Z",
            "2023-11-14T22:13:20Z",
            "2023-11-14T22:13:20Z",
            "2023-11-14T22:13:20Z"
        ]
    );
    let tarball = fx.path("epoch.tar");
    write_oci(&a, &image, &tarball, true, &[]).unwrap();
    for line in tar_list(&tarball) {
        assert!(line.contains("2023-11-14 22:13"), "{line}");
    }
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir.path()));
    let index = fs::read_to_string(dir.path().join("index.json")).unwrap();
    assert!(
        index.contains(
            r#""annotations":{"org.opencontainers.image.created":"2023-11-14T22:13:20Z"}"#
        ),
        "{index}"
    );
}
