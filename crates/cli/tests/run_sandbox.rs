//! The sandbox a RUN step gets, checked from inside the step: Docker's default mounts,
//! devices, capabilities, no_new_privs, masked and read-only kernel paths, its own
//! pid/ipc/uts namespaces with the host's network, BuildKit's hostname and hosts file,
//! and nothing of it (mount points, hosts, resolv.conf) left in the layer.

mod common;

use std::collections::HashMap;

use common::{BUSYBOX, Context, State, ready, step_output, text, value_of};

/// Docker's default capability set as a `CapEff` mask.
const DOCKER_CAPS: &str = "00000000a80425fb";

struct MountLine {
    point: String,
    options: String,
    fstype: String,
}

/// `mnt <mountinfo line>` step output lines, parsed.
fn mounts(stderr: &str) -> HashMap<String, MountLine> {
    let mut out = HashMap::new();
    for l in step_output(stderr) {
        let Some(line) = l.strip_prefix("mnt ") else {
            continue;
        };
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let f: Vec<&str> = left.split_whitespace().collect();
        let r: Vec<&str> = right.split_whitespace().collect();
        if f.len() < 6 || r.is_empty() {
            continue;
        }
        out.insert(
            f[4].to_string(),
            MountLine {
                point: f[4].to_string(),
                options: f[5].to_string(),
                fstype: r[0].to_string(),
            },
        );
    }
    out
}

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .to_string()
}

#[test]
fn a_step_runs_in_dockers_default_sandbox() {
    if !ready("a_step_runs_in_dockers_default_sandbox") {
        return;
    }
    let df = format!(
        r#"FROM {BUSYBOX}
RUN s=/proc/self/status; \
    echo "capeff=$(awk '/^CapEff/{{print $2}}' $s)"; \
    echo "capbnd=$(awk '/^CapBnd/{{print $2}}' $s)"; \
    echo "nnp=$(awk '/^NoNewPrivs/{{print $2}}' $s)"; \
    echo "hostname=$(hostname)"; \
    echo "pid=$$"; \
    echo "nofile=$(ulimit -n)"; \
    for n in uts ipc pid net; do echo "ns_$n=$(readlink /proc/self/ns/$n)"; done; \
    echo "hosts=$(grep buildkitsandbox /etc/hosts | tr -s ' \t' ' ')"; \
    echo "resolv=$(grep nameserver /etc/resolv.conf | head -n 1)"; \
    for d in null zero full random urandom tty ptmx fd stdin stdout stderr pts shm; do [ -e /dev/$d ] && echo "dev_$d=yes"; done; \
    echo "urandom=$(head -c 16 /dev/urandom | wc -c)"; \
    echo "keys=$(stat -c '%F %t,%T' /proc/keys)"; \
    echo "firmware=$(ls /sys/firmware | wc -l)"; \
    if echo x > /proc/sys/kernel/domainname 2>/dev/null; then echo procsys=writable; else echo procsys=refused; fi; \
    if touch /sys/kernel/kiln-probe 2>/dev/null; then echo sys=writable; else echo sys=refused; fi; \
    if echo x >> /etc/hosts 2>/dev/null; then echo etchosts=writable; else echo etchosts=refused; fi; \
    mkdir -p /tmp/m; if mount -t tmpfs none /tmp/m 2>/dev/null; then echo mount=allowed; else echo mount=refused; fi; \
    sed 's/^/mnt /' /proc/self/mountinfo
"#
    );
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let dest = ctx.path().join("rootfs");
    let o = state.build(&[
        "-o",
        &format!("type=local,dest={}", dest.display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let v = |k: &str| value_of(&err, k).unwrap_or_else(|| panic!("no {k}= in\n{err}"));

    assert_eq!(v("capeff"), DOCKER_CAPS, "effective capabilities");
    assert_eq!(v("capbnd"), DOCKER_CAPS, "bounding set");
    assert_eq!(v("nnp"), "1", "no_new_privs");
    assert_eq!(v("hostname"), "buildkitsandbox");
    assert_eq!(
        v("pid"),
        "1",
        "the step's shell is pid 1 of its own pid namespace"
    );
    // Limits are kiln's own (inherited from this test), as BuildKit's steps have
    // buildkitd's.
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let expected = nofile
        .current
        .map_or("unlimited".to_string(), |n| n.to_string());
    assert_eq!(v("nofile"), expected);
    for ns in ["uts", "ipc", "pid"] {
        assert_ne!(v(&format!("ns_{ns}")), host_ns(ns), "{ns} namespace shared");
    }
    assert_eq!(
        v("ns_net"),
        host_ns("net"),
        "the default network is the host's"
    );
    assert_eq!(v("hosts"), "127.0.0.1 localhost buildkitsandbox");
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let first_ns = host_resolv
        .lines()
        .find(|l| l.starts_with("nameserver"))
        .unwrap_or("");
    assert_eq!(v("resolv"), first_ns);
    for d in [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "fd", "stdin", "stdout",
        "stderr", "pts", "shm",
    ] {
        assert_eq!(v(&format!("dev_{d}")), "yes", "/dev/{d}");
    }
    assert_eq!(v("urandom"), "16");
    // Masked with /dev/null, as runc masks files.
    assert_eq!(
        v("keys"),
        "character special file 1,3",
        "/proc/keys is masked"
    );
    assert_eq!(v("firmware"), "0", "/sys/firmware is masked");
    assert_eq!(v("procsys"), "refused", "/proc/sys is read-only");
    assert_eq!(v("sys"), "refused", "/sys is read-only");
    assert_eq!(v("etchosts"), "refused", "/etc/hosts is read-only");
    assert_eq!(v("mount"), "refused", "no CAP_SYS_ADMIN");

    let m = mounts(&err);
    let expect = [
        ("/proc", "proc", false),
        ("/dev", "tmpfs", false),
        ("/dev/pts", "devpts", false),
        ("/dev/shm", "tmpfs", false),
        ("/dev/mqueue", "mqueue", false),
        ("/sys", "sysfs", true),
        ("/etc/hosts", "", true),
        ("/etc/resolv.conf", "", true),
    ];
    for (point, fstype, ro) in expect {
        let line = m
            .get(point)
            .unwrap_or_else(|| panic!("{point} is not mounted; mounts: {:?}", m.keys()));
        if !fstype.is_empty() {
            assert_eq!(line.fstype, fstype, "{}", line.point);
        }
        let is_ro = line.options.split(',').any(|o| o == "ro");
        assert_eq!(is_ro, ro, "{point} options {}", line.options);
    }
    assert!(
        !m.contains_key("/run"),
        "BuildKit does not mount a tmpfs on /run"
    );

    // Mount points runc created for /etc/hosts and /etc/resolv.conf are not in the
    // layer (the test bed's busybox has neither file).
    assert!(dest.join("bin/busybox").exists(), "local output missing");
    for f in ["etc/hosts", "etc/resolv.conf"] {
        assert!(
            std::fs::symlink_metadata(dest.join(f)).is_err(),
            "{f} leaked into the image"
        );
    }
}

#[test]
fn security_insecure_needs_the_entitlement_and_then_lifts_the_sandbox() {
    if !ready("security_insecure_needs_the_entitlement_and_then_lifts_the_sandbox") {
        return;
    }
    let df = format!(
        r#"FROM {BUSYBOX}
RUN echo before > /before
RUN --security=insecure echo "capeff=$(awk '/^CapEff/{{print $2}}' /proc/self/status)"; \
    echo "nnp=$(awk '/^NoNewPrivs/{{print $2}}' /proc/self/status)"; \
    mkdir -p /tmp/m; if mount -t tmpfs none /tmp/m; then echo mount=allowed; umount /tmp/m; else echo mount=refused; fi
"#
    );
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let o = state.build(&[ctx.arg()]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("security.insecure is not allowed"), "{err}");
    assert!(
        err.contains("Dockerfile:3"),
        "the error points at the step: {err}"
    );
    // As BuildKit, the entitlement is checked before anything runs.
    assert!(
        !err.lines().any(|l| l.starts_with('#')),
        "steps ran before the refusal: {err}"
    );
    assert_eq!(
        value_of(&err, "capeff"),
        None,
        "the insecure step ran without the entitlement: {err}"
    );

    let o = state.build(&["--allow", "security.insecure", ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let caps = u64::from_str_radix(&value_of(&err, "capeff").expect("capeff"), 16).unwrap();
    // Every capability the kernel has, CAP_SYS_ADMIN (21) among them.
    assert!(caps & (1 << 21) != 0, "{caps:x}");
    assert!(caps.count_ones() >= 38, "{caps:x}");
    assert_eq!(value_of(&err, "nnp").as_deref(), Some("0"));
    assert_eq!(value_of(&err, "mount").as_deref(), Some("allowed"));
}

#[test]
fn a_layer_holds_only_what_the_step_changed() {
    if !ready("a_layer_holds_only_what_the_step_changed") {
        return;
    }
    // The test bed's busybox has neither /etc/hosts nor /run: the mount points
    // made for them (and for the secret and tmpfs) must not bring /etc or /run into
    // the layer, as in BuildKit.
    let df = format!(
        "FROM {BUSYBOX}\nRUN --mount=type=tmpfs,target=/usr/share/t --mount=type=secret,id=s echo hi > /x && mkdir /newdir\n"
    );
    let ctx = Context::new(&df, &[]);
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "value").unwrap();
    let state = State::new();
    let layout = ctx.path().join("layout");
    let o = state.build(&[
        "--secret",
        &format!("id=s,src={}", secret.path().display()),
        "-o",
        &format!("type=oci,dest={},tar=false", layout.display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let read = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |d: &serde_json::Value| layout.join("blobs/sha256").join(&d.as_str().unwrap()[7..]);
    let index = read(layout.join("index.json"));
    let manifest = read(blob(&index["manifests"][0]["digest"]));
    let layers = manifest["layers"].as_array().unwrap();
    let last = blob(&layers[layers.len() - 1]["digest"]);
    let list = std::process::Command::new("tar")
        .arg("-tzf")
        .arg(&last)
        .output()
        .unwrap();
    let mut entries: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    entries.sort();
    assert_eq!(entries, vec!["newdir/", "x"]);
}
