//! Bad input fails with a message a user can act on, and leaves nothing behind: no
//! unfinished write under the state directory's `ingest/` or `tmp/`, only verified
//! blobs under `blobs/`, nothing half-written at an output path and nothing written
//! outside the image.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    BUSYBOX, Context, HttpServer, Response, State, StepEnd, TarEntry, digest_of, free_port, json,
    kiln_bin, ready, stderr, steps, tar_bytes, text,
};

/// Runs a build that must fail; returns its stderr.
fn failing(state: &State, args: &[&str]) -> String {
    let o = state.build(args);
    assert!(!o.status.success(), "the build should fail\n{}", text(&o));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    stderr(&o)
}

/// The names in a directory.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn copy_of_a_missing_file_names_it_and_the_line() {
    if !ready("copy_of_a_missing_file_names_it_and_the_line") {
        return;
    }
    let ctx = Context::new(
        &format!("FROM {BUSYBOX}\nCOPY present.txt /p\nCOPY missing.txt /x\nRUN true\n"),
        &[("present.txt", "here\n")],
    );
    let state = State::new();
    let err = failing(&state, &[ctx.arg()]);
    assert!(err.contains(r#""/missing.txt": not found"#), "{err}");
    assert!(err.contains("Dockerfile:3\n"), "{err}");
    assert!(err.contains(">>>   3 | COPY missing.txt /x"), "{err}");
    assert!(
        err.lines()
            .last()
            .unwrap_or("")
            .starts_with("ERROR: failed to solve: "),
        "{err}"
    );
    // The progress shows the failing step as failed, and the steps after it never ran.
    let s = steps(&err);
    let failed: Vec<_> = s
        .iter()
        .filter(|s| matches!(s.end, StepEnd::Error(_)))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(failed, ["[3/4] COPY missing.txt /x"], "{err}");
    assert!(
        !s.iter()
            .any(|s| s.name.contains("RUN true") && s.end == StepEnd::Done)
    );
    state.assert_clean();
}

#[test]
fn unreachable_registry_names_host_and_port() {
    if !ready("unreachable_registry_names_host_and_port") {
        return;
    }
    let addr = format!("127.0.0.1:{}", free_port());
    let ctx = Context::new(&format!("FROM {addr}/x/y\nRUN true\n"), &[]);
    let state = State::new();
    let err = failing(&state, &[ctx.arg()]);
    assert!(err.contains(&addr), "{err}");
    assert!(err.contains(&format!("{addr}/x/y")), "{err}");
    assert!(err.contains(">>>   1 | FROM"), "{err}");
    state.assert_clean();
}

#[test]
fn registry_that_refuses_names_the_status() {
    if !ready("registry_that_refuses_names_the_status") {
        return;
    }
    let server = HttpServer::start(|_| {
        Response::new(
            401,
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        )
        .header("Content-Type", "application/json")
        .header("WWW-Authenticate", r#"Basic realm="kiln test""#)
    });
    let ctx = Context::new(&format!("FROM {}/private/img:1\n", server.addr), &[]);
    let state = State::new();
    let err = failing(&state, &[ctx.arg()]);
    assert!(err.contains(&server.addr), "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(err.contains("private/img"), "{err}");
    assert!(
        !server.requests().is_empty(),
        "the registry was never asked"
    );
    state.assert_clean();

    // Pushing there fails the same way, naming the image.
    let ctx = Context::new(&format!("FROM {BUSYBOX}\nCOPY a /a\n"), &[("a", "a\n")]);
    let name = format!("{}/private/img:2", server.addr);
    let err = failing(
        &state,
        &["-o", &format!("type=registry,name={name}"), ctx.arg()],
    );
    assert!(err.contains(&name) && err.contains("401"), "{err}");
    state.assert_clean();
}

#[test]
fn push_to_an_unreachable_registry_names_it() {
    if !ready("push_to_an_unreachable_registry_names_it") {
        return;
    }
    let addr = format!("127.0.0.1:{}", free_port());
    let ctx = Context::new(&format!("FROM {BUSYBOX}\nCOPY a /a\n"), &[("a", "a\n")]);
    let state = State::new();
    let err = failing(
        &state,
        &["-t", &format!("{addr}/x/y:1"), "--push", ctx.arg()],
    );
    let last = err.lines().last().unwrap_or("");
    assert!(last.contains(&format!("{addr}/x/y:1")), "{err}");
    assert!(last.contains(&format!("registry {addr}")), "{err}");
    state.assert_clean();
}

/// A registry serving `img:1`, one layer whose bytes do not match its digest
/// (same size, one letter changed) — as a corrupted mirror would.
/// Returns the server, the layer's digest and the digests of the manifest and
/// config (which are fine, and may be kept).
fn lying_registry() -> (HttpServer, String, [String; 2]) {
    let good = tar_bytes(&[TarEntry::File("hello.txt", b"hello\n")]);
    let bad = tar_bytes(&[TarEntry::File("hello.txt", b"HELLO\n")]);
    assert_eq!(good.len(), bad.len());
    let layer = digest_of(&good);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer]},
    })
    .to_string();
    let config_digest = digest_of(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer, "size": good.len()}],
    })
    .to_string();
    let manifest_digest = digest_of(manifest.as_bytes());
    let layer_for_server = layer.clone();
    let fine = [manifest_digest.clone(), config_digest.clone()];
    let server = HttpServer::start(move |req| {
        let p = req.path.as_str();
        if p == "/v2/" {
            Response::new(200, "{}")
        } else if p == "/v2/bad/img/manifests/1" || p.ends_with(&manifest_digest) {
            Response::new(200, manifest.clone())
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .header("Docker-Content-Digest", &manifest_digest)
        } else if p == format!("/v2/bad/img/blobs/{config_digest}") {
            Response::new(200, config.clone())
        } else if p == format!("/v2/bad/img/blobs/{layer_for_server}") {
            Response::new(200, bad.clone())
        } else {
            Response::new(404, "")
        }
    });
    (server, layer, fine)
}

#[test]
fn blob_that_does_not_match_its_digest_is_not_stored() {
    if !ready("blob_that_does_not_match_its_digest_is_not_stored") {
        return;
    }
    let (server, layer, fine) = lying_registry();
    let state = State::new();
    // The base image first, so what the failed build stores can be told apart.
    let base = Context::new(&format!("FROM {BUSYBOX}\nRUN true\n"), &[]);
    let o = state.build(&[base.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let before = state.blobs();
    let ctx = Context::new(
        &format!(
            "FROM {BUSYBOX}\nCOPY --from={}/bad/img:1 /hello.txt /hello.txt\n",
            server.addr
        ),
        &[],
    );
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("image.tar");
    let err = failing(
        &state,
        &[
            "-o",
            &format!("type=oci,dest={}", dest.display()),
            ctx.arg(),
        ],
    );
    assert!(err.contains(&layer), "the message names the blob: {err}");
    assert!(err.contains(&server.addr), "{err}");
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.ends_with(&layer)),
        "the layer was never fetched"
    );
    // Nothing of the bad layer is kept, under any name: only the manifest and
    // config, which are what they claim to be.
    let added: Vec<String> = state
        .blobs()
        .into_iter()
        .filter(|b| !before.contains(b))
        .filter(|b| !fine.iter().any(|f| f.ends_with(b.as_str())))
        .collect();
    assert!(added.is_empty(), "stored from the bad layer: {added:?}");
    state.assert_clean();
    assert!(names(out.path()).is_empty(), "{:?}", names(out.path()));

    // Again, now that a failed attempt is behind: the same clear failure.
    let err = failing(&state, &[ctx.arg()]);
    assert!(err.contains(&layer), "{err}");
    state.assert_clean();
}

#[test]
fn add_of_a_tar_that_escapes_stays_inside() {
    if !ready("add_of_a_tar_that_escapes_stays_inside") {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let out_abs = outside.path().to_str().unwrap().to_string();
    let out_rel = out_abs.trim_start_matches('/').to_string();
    let climb = format!("../../../../../../../../../../{out_rel}");
    let dotdot = format!("{climb}/dotdot");
    let absolute = format!("{out_abs}/absolute");
    let cases: Vec<(&str, Vec<TarEntry<'_>>)> = vec![
        ("dotdot", vec![TarEntry::File(&dotdot, b"x\n")]),
        ("absolute", vec![TarEntry::File(&absolute, b"x\n")]),
        (
            "symlink-absolute",
            vec![
                TarEntry::Symlink("link", &out_abs),
                TarEntry::File("link/through-absolute", b"x\n"),
            ],
        ),
        (
            "symlink-relative",
            vec![
                TarEntry::Symlink("rel", &climb),
                TarEntry::File("rel/through-relative", b"x\n"),
            ],
        ),
        (
            "symlink-then-dir",
            vec![
                TarEntry::Symlink("d", &out_abs),
                TarEntry::Dir("d/sub"),
                TarEntry::File("d/sub/f", b"x\n"),
            ],
        ),
        (
            "hardlink-out",
            vec![TarEntry::Hardlink(
                "hard",
                "../../../../../../../../etc/hostname",
            )],
        ),
    ];
    let state = State::new();
    for (name, entries) in &cases {
        let archive = tar_bytes(entries);
        let ctx = Context::new(&format!("FROM {BUSYBOX}\nADD evil.tar /x/\n"), &[]);
        std::fs::write(ctx.path().join("evil.tar"), &archive).unwrap();
        let work = tempfile::tempdir().unwrap();
        let dest = work.path().join("fs");
        let o = state.build(&[
            "-o",
            &format!("type=local,dest={}", dest.display()),
            ctx.arg(),
        ]);
        assert!(
            names(outside.path()).is_empty(),
            "{name}: written outside the image: {:?}\n{}",
            names(outside.path()),
            text(&o)
        );
        if o.status.success() {
            // Whatever was written is under /x in the image.
            let x = dest.join("x");
            for entry in walk(&x) {
                let meta = std::fs::symlink_metadata(&entry).unwrap();
                if meta.file_type().is_symlink() {
                    continue;
                }
                let resolved = entry.canonicalize().unwrap();
                assert!(
                    resolved.starts_with(x.canonicalize().unwrap()),
                    "{name}: {} resolves to {}",
                    entry.display(),
                    resolved.display()
                );
            }
            if *name == "absolute" {
                let inside = x.join(absolute.trim_start_matches('/'));
                assert_eq!(std::fs::read(&inside).unwrap(), b"x\n", "{name}");
            }
        } else {
            let err = stderr(&o);
            assert!(err.contains("ADD evil.tar /x/"), "{name}: {err}");
            assert!(err.contains("archive entry"), "{name}: {err}");
            assert!(!dest.exists(), "{name}: a failed build wrote its output");
        }
        state.assert_clean();
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            out.push(p.clone());
            if std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                out.extend(walk(&p));
            }
        }
    }
    out
}

#[test]
fn output_paths_that_cannot_be_written_are_named() {
    if !ready("output_paths_that_cannot_be_written_are_named") {
        return;
    }
    let ctx = Context::new(
        &format!("FROM {BUSYBOX}\nCOPY a.txt /a.txt\n"),
        &[("a.txt", "a\n")],
    );
    let state = State::new();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::create_dir(w.join("a-dir")).unwrap();
    std::fs::write(w.join("a-file"), "keep me\n").unwrap();
    let missing = w.join("missing/parent");
    let cases = [
        (
            format!("type=oci,dest={}/image.tar", missing.display()),
            format!("{}/image.tar", missing.display()),
        ),
        (
            format!("type=docker,dest={}/image.tar", missing.display()),
            format!("{}/image.tar", missing.display()),
        ),
        (
            format!("type=tar,dest={}/fs.tar", missing.display()),
            format!("{}/fs.tar", missing.display()),
        ),
        (
            format!("type=local,dest={}/fs", missing.display()),
            format!("{}/fs", missing.display()),
        ),
        (
            format!("type=oci,dest={}/a-dir", w.display()),
            format!("{}/a-dir", w.display()),
        ),
        (
            format!("type=tar,dest={}/a-dir", w.display()),
            format!("{}/a-dir", w.display()),
        ),
        (
            format!("type=local,dest={}/a-file", w.display()),
            format!("{}/a-file", w.display()),
        ),
        (
            format!("type=oci,tar=false,dest={}/a-file", w.display()),
            format!("{}/a-file", w.display()),
        ),
    ];
    for (spec, path) in &cases {
        let err = failing(&state, &["-o", spec, ctx.arg()]);
        let last = err.lines().last().unwrap_or("");
        assert!(last.starts_with("ERROR: "), "{spec}: {err}");
        assert!(
            last.contains(path.as_str()),
            "{spec}: the message names {path}: {err}"
        );
        assert!(!err.contains("ERROR: ERROR:"), "{spec}: {err}");
        assert_eq!(names(w), ["a-dir", "a-file"], "{spec}: something was left");
        assert!(names(&w.join("a-dir")).is_empty(), "{spec}");
        assert_eq!(
            std::fs::read_to_string(w.join("a-file")).unwrap(),
            "keep me\n"
        );
        state.assert_clean();
    }

    // --iidfile and --metadata-file name their paths too.
    for flag in ["--iidfile", "--metadata-file"] {
        let path = format!("{}/id", missing.display());
        let err = failing(&state, &[flag, &path, ctx.arg()]);
        assert!(err.contains(&path), "{flag}: {err}");
        assert_eq!(names(w), ["a-dir", "a-file"], "{flag}");
    }
}

#[test]
fn a_full_disk_leaves_no_half_written_output() {
    let test = "a_full_disk_leaves_no_half_written_output";
    if !ready(test) || !common::have(test, "unshare") {
        return;
    }
    let ctx = Context::new(
        &format!("FROM {BUSYBOX}\nCOPY a.txt /a.txt\n"),
        &[("a.txt", "a\n")],
    );
    let state = State::new();
    // Warm the cache, so the build itself does not need the small disk.
    let o = state.build(&[ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let mnt = tempfile::tempdir().unwrap();
    for (spec, path) in [
        ("type=oci,dest={m}/image.tar", "{m}/image.tar"),
        ("type=docker,dest={m}/image.tar", "{m}/image.tar"),
        ("type=tar,dest={m}/fs.tar", "{m}/fs.tar"),
        ("type=local,dest={m}/fs", "{m}/fs"),
        ("type=oci,tar=false,dest={m}/layout", "{m}/layout"),
    ] {
        let m = mnt.path().display().to_string();
        let spec = spec.replace("{m}", &m);
        let path = path.replace("{m}", &m);
        // A 256 KiB tmpfs in a mount namespace of its own: busybox does not fit.
        let o = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(
                r#"mount -t tmpfs -o size=256k kiln-test "$1" || exit 99
                "$2" --root "$3" build --progress plain -o "$4" "$5"
                rc=$?
                echo "left: $(ls -A "$1")"
                exit $rc"#,
            )
            .arg("sh")
            .arg(&m)
            .arg(kiln_bin())
            .arg(state.path())
            .arg(&spec)
            .arg(ctx.arg())
            .output()
            .unwrap();
        assert_ne!(
            o.status.code(),
            Some(99),
            "cannot mount a tmpfs: {}",
            text(&o)
        );
        assert_eq!(o.status.code(), Some(1), "{spec}: {}", text(&o));
        let err = stderr(&o);
        assert!(
            err.contains(&path),
            "{spec}: the message names the path: {err}"
        );
        assert!(
            err.contains("No space left on device"),
            "{spec}: the message says why: {err}"
        );
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            stdout.trim(),
            "left:",
            "{spec}: something half-written was left"
        );
        state.assert_clean();
    }
}

#[test]
fn fake_registry_metadata_parses() {
    // The lying registry is well formed apart from the layer's bytes: its manifest
    // and config parse, so the failure above is about the blob alone.
    let (server, _, _) = lying_registry();
    let addr = server.addr.clone();
    let get = |path: &str| -> Vec<u8> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        let at = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        buf[at..].to_vec()
    };
    let manifest = json(&get("/v2/bad/img/manifests/1"));
    let config = get(&format!(
        "/v2/bad/img/blobs/{}",
        manifest["config"]["digest"].as_str().unwrap()
    ));
    assert_eq!(
        digest_of(&config),
        manifest["config"]["digest"].as_str().unwrap()
    );
    assert_eq!(
        json(&config)["rootfs"]["diff_ids"][0],
        manifest["layers"][0]["digest"]
    );
}
