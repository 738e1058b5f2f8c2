//! Secrets never leak: a build using a secret in every mount form (file at the
//! default path, file at a target with owner and mode, `env=`, `required`, an absent
//! optional one), exported as oci, docker, local and tar, leaves the value in no byte
//! kiln wrote — state directory (meta.db included), outputs (compressed layers
//! unpacked), progress in plain and rawjson, error text — and a rebuild with other
//! values is fully cached.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{BUSYBOX, Context, State, contains, files_containing, ready, text, value_of};

/// A value found nowhere before the test wrote it.
fn unique_secret(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{label}-{:x}-{}", nanos, std::process::id())
}

fn sha256_hex(data: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Unpacks every tar under `dir` (and the gzip/zstd blobs inside) into `into`, so
/// that compressed layers are searched as the bytes they hold.
fn unpack_outputs(files: &[PathBuf], into: &Path) {
    for (i, f) in files.iter().enumerate() {
        let d = into.join(format!("tar-{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let st = Command::new("tar")
            .arg("-xf")
            .arg(f)
            .arg("-C")
            .arg(&d)
            .status()
            .unwrap();
        assert!(st.success(), "cannot unpack {}", f.display());
    }
    // Decompress every blob that is gzip or zstd.
    let mut stack = vec![into.to_path_buf()];
    let mut n = 0;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
                continue;
            }
            let Ok(head) = std::fs::read(&p).map(|b| b[..b.len().min(4)].to_vec()) else {
                continue;
            };
            let tool = if head.starts_with(&[0x1f, 0x8b]) {
                "gzip"
            } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                "zstd"
            } else {
                continue;
            };
            n += 1;
            let out = Command::new(tool).arg("-dc").arg(&p).output().unwrap();
            assert!(out.status.success(), "{tool} -dc {}", p.display());
            std::fs::write(into.join(format!("decompressed-{n}")), out.stdout).unwrap();
        }
    }
    assert!(n > 0, "no compressed layer found in the outputs");
}

struct Secrets {
    file: String,
    env: String,
    required: String,
}

fn dockerfile() -> String {
    format!(
        r#"FROM {BUSYBOX}
ARG NOT_SECRET=plain
RUN --mount=type=secret,id=filesec \
    --mount=type=secret,id=filesec,target=/etc/app/token,mode=0440,uid=1000,gid=1001 \
    --mount=type=secret,id=envsec,env=API_TOKEN \
    --mount=type=secret,id=reqsec,required=true,target=/req/secret \
    --mount=type=secret,id=absent \
    echo "default_hash=$(cat /run/secrets/filesec | sha256sum | cut -d' ' -f1)"; \
    echo "default_meta=$(stat -c '%a %u %g' /run/secrets/filesec)"; \
    echo "target_hash=$(cat /etc/app/token | sha256sum | cut -d' ' -f1)"; \
    echo "target_meta=$(stat -c '%a %u %g' /etc/app/token)"; \
    echo "env_hash=$(printf %s "$API_TOKEN" | sha256sum | cut -d' ' -f1)"; \
    echo "required_hash=$(cat /req/secret | sha256sum | cut -d' ' -f1)"; \
    echo "absent=$([ -e /run/secrets/absent ] && echo present || echo absent)"; \
    echo "writable=$(echo x 2>/dev/null > /run/secrets/filesec && echo yes || echo no)"; \
    echo "printed=$API_TOKEN and $(cat /run/secrets/filesec) done"; \
    echo "$API_TOKEN" >&2; \
    echo built > /result
RUN echo "after=$(ls -A /run/secrets /etc/app /req 2>/dev/null | wc -w)"
"#
    )
}

fn secret_args(dir: &Path, s: &Secrets) -> Vec<String> {
    let file = dir.join("file-secret");
    let req = dir.join("required-secret");
    // As people write them: with a trailing newline.
    std::fs::write(&file, format!("{}\n", s.file)).unwrap();
    std::fs::write(&req, &s.required).unwrap();
    vec![
        "--secret".into(),
        format!("id=filesec,src={}", file.display()),
        "--secret".into(),
        "id=envsec,env=KILN_TEST_API_TOKEN".into(),
        "--secret".into(),
        format!("id=reqsec,src={}", req.display()),
    ]
}

#[test]
fn secrets_leave_no_trace_and_do_not_change_cache_keys() {
    if !ready("secrets_leave_no_trace_and_do_not_change_cache_keys") {
        return;
    }
    let secrets_dir = tempfile::tempdir().unwrap();
    let ctx = Context::new(&dockerfile(), &[]);
    let state = State::new();
    let outputs = tempfile::tempdir().unwrap();
    let out = |name: &str| outputs.path().join(name);
    let first = Secrets {
        file: unique_secret("file-secret"),
        env: unique_secret("env-secret"),
        required: unique_secret("required-secret"),
    };
    let mut args: Vec<String> = secret_args(secrets_dir.path(), &first);
    args.extend([
        "-o".into(),
        format!("type=oci,dest={}", out("image-oci.tar").display()),
        "-o".into(),
        format!(
            "type=docker,dest={},name=secret-test:1",
            out("image-docker.tar").display()
        ),
        "-o".into(),
        format!("type=local,dest={}", out("rootfs").display()),
        "-o".into(),
        format!("type=tar,dest={}", out("rootfs.tar").display()),
        "--metadata-file".into(),
        out("metadata.json").display().to_string(),
        "--iidfile".into(),
        out("iid").display().to_string(),
        ctx.arg().into(),
    ]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [("KILN_TEST_API_TOKEN", first.env.as_str())];
    let plain = state.build_env(&argv, &env);
    assert!(plain.status.success(), "{}", text(&plain));
    let stderr = String::from_utf8_lossy(&plain.stderr).to_string();
    let v = |k: &str| value_of(&stderr, k).unwrap_or_else(|| panic!("no {k}= in\n{stderr}"));

    // The step saw every secret, in the right place, owner and mode.
    let file_hash = sha256_hex(format!("{}\n", first.file).as_bytes());
    assert_eq!(v("default_hash"), file_hash);
    assert_eq!(v("default_meta"), "400 0 0");
    assert_eq!(v("target_hash"), file_hash);
    assert_eq!(v("target_meta"), "440 1000 1001");
    assert_eq!(v("env_hash"), sha256_hex(first.env.as_bytes()));
    assert_eq!(v("required_hash"), sha256_hex(first.required.as_bytes()));
    assert_eq!(v("absent"), "absent");
    assert_eq!(v("writable"), "no");
    assert_eq!(
        v("printed"),
        "**** and **** done",
        "printed secrets are masked"
    );
    assert_eq!(v("after"), "0", "a later step sees the secrets");

    // The same build, progress as rawjson, into other outputs.
    let rawjson = state
        .kiln()
        .args(["build", "--progress", "rawjson", "--no-cache"])
        .args(&argv[..6])
        .arg("-o")
        .arg(format!("type=oci,dest={}", out("again-oci.tar").display()))
        .arg(ctx.arg())
        .env("KILN_TEST_API_TOKEN", &first.env)
        .output()
        .unwrap();
    assert!(rawjson.status.success(), "{}", text(&rawjson));
    assert!(String::from_utf8_lossy(&rawjson.stderr).contains("****"));

    // A step that fails while printing the secrets.
    let failing = Context::new(
        &format!(
            "FROM {BUSYBOX}\nRUN --mount=type=secret,id=filesec --mount=type=secret,id=envsec,env=API_TOKEN \
             cat /run/secrets/filesec; echo \"token $API_TOKEN\" >&2; exit 9\n"
        ),
        &[],
    );
    let mut fail_args: Vec<&str> = argv[..6].to_vec();
    fail_args.push(failing.arg());
    let failed = state.build_env(&fail_args, &env);
    assert!(!failed.status.success(), "{}", text(&failed));
    let failed_err = String::from_utf8_lossy(&failed.stderr);
    assert!(failed_err.contains("exit code: 9"), "{failed_err}");
    assert!(failed_err.contains("token ****"), "{failed_err}");

    // Search every byte.
    let logs = outputs.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for (name, o) in [
        ("plain", &plain),
        ("rawjson", &rawjson),
        ("failed", &failed),
    ] {
        std::fs::write(logs.join(format!("{name}.stderr")), &o.stderr).unwrap();
        std::fs::write(logs.join(format!("{name}.stdout")), &o.stdout).unwrap();
    }
    let unpacked = tempfile::tempdir().unwrap();
    unpack_outputs(
        &[
            out("image-oci.tar"),
            out("image-docker.tar"),
            out("rootfs.tar"),
            out("again-oci.tar"),
        ],
        unpacked.path(),
    );
    assert!(out("rootfs").join("result").is_file());
    // Controls: the search does reach the cache records, the image configs and the
    // layers' contents.
    assert!(!files_containing(state.path(), b"default_hash=").is_empty());
    assert!(!files_containing(unpacked.path(), b"echo built ").is_empty());
    assert!(
        files_containing(unpacked.path(), b"built\n")
            .iter()
            .any(|p| p.to_string_lossy().contains("decompressed-")),
        "the layers were not searched"
    );
    for s in [&first.file, &first.env, &first.required] {
        for dir in [state.path(), outputs.path(), unpacked.path()] {
            let found = files_containing(dir, s.as_bytes());
            assert!(found.is_empty(), "the secret {s} is in {found:?}");
        }
        for o in [&plain, &rawjson, &failed] {
            assert!(!contains(&o.stderr, s.as_bytes()) && !contains(&o.stdout, s.as_bytes()));
        }
    }
    // The secrets' mount points are not in the image.
    for p in ["run/secrets", "etc/app", "req"] {
        assert!(
            std::fs::symlink_metadata(out("rootfs").join(p)).is_err(),
            "/{p} leaked into the image"
        );
    }

    // Other values: nothing runs again, and the image is the same.
    let second = Secrets {
        file: unique_secret("file-secret-two"),
        env: unique_secret("env-secret-two"),
        required: unique_secret("required-secret-two"),
    };
    let mut args2 = secret_args(secrets_dir.path(), &second);
    args2.extend([
        "-o".into(),
        format!("type=oci,dest={}", out("second-oci.tar").display()),
        ctx.arg().into(),
    ]);
    let argv2: Vec<&str> = args2.iter().map(String::as_str).collect();
    let o = state.build_env(&argv2, &[("KILN_TEST_API_TOKEN", second.env.as_str())]);
    assert!(o.status.success(), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.matches(" CACHED").count(), 2, "{stderr}");
    assert!(
        value_of(&stderr, "default_hash").is_none(),
        "a step ran: {stderr}"
    );
    assert_eq!(
        std::fs::read(out("second-oci.tar")).unwrap(),
        std::fs::read(out("image-oci.tar")).unwrap(),
        "another secret value changed the image"
    );
}

#[test]
fn a_required_secret_that_is_not_given_fails_plainly() {
    if !ready("a_required_secret_that_is_not_given_fails_plainly") {
        return;
    }
    let df = format!(
        "FROM {BUSYBOX}\nRUN --mount=type=secret,id=needed,required=true echo should-not-run\n"
    );
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let o = state.build(&[ctx.arg()]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("secret needed not found"), "{err}");
    assert!(err.contains("--secret id=needed"), "{err}");
    assert!(!err.contains("\nshould-not-run"), "{err}");
}
