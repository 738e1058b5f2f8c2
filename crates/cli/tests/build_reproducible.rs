//! Reproducible builds: with `SOURCE_DATE_EPOCH` and `rewrite-timestamp=true`, two
//! builds in two fresh state directories, seconds apart, write byte-identical OCI
//! and docker tarballs; the config, history and index carry the epoch, and no file
//! the build made is newer than it (the base image's layers are kept as they are,
//! as BuildKit keeps them).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{BUSYBOX, Context, State, json, ready, run_tool, text};

const EPOCH: &str = "1700000000";
const EPOCH_RFC3339: &str = "2023-11-14T22:13:20Z";
/// How GNU tar prints the epoch with `--full-time` in UTC.
const EPOCH_TAR: &str = "2023-11-14 22:13:20";

fn context() -> Context {
    Context::new(
        &format!(
            "FROM {BUSYBOX}\nWORKDIR /w/x\nCOPY src /deep/dir/\n\
             RUN mkdir -p /made/sub && echo made > /made/sub/f && touch /made/g\n\
             ENV KEY=value\nLABEL kiln.test=repro\nCMD [\"/bin/sh\"]\n"
        ),
        &[("src/a.txt", "a\n"), ("src/sub/b.txt", "b\n")],
    )
}

fn build(state: &State, ctx: &Context, out: &Path) {
    let o = state
        .kiln()
        .args(["build", "--progress", "plain"])
        .arg("-o")
        .arg(format!(
            "type=oci,dest={},rewrite-timestamp=true",
            out.join("image.oci.tar").display()
        ))
        .arg("-o")
        .arg(format!(
            "type=docker,dest={},rewrite-timestamp=true",
            out.join("image.docker.tar").display()
        ))
        .arg("-t")
        .arg("kiln.test/repro:1")
        .arg(ctx.arg())
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .stdin(Stdio::null())
        .output()
        .expect("run kiln");
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn two_fresh_state_dirs_give_identical_tarballs() {
    if !ready("two_fresh_state_dirs_give_identical_tarballs") {
        return;
    }
    let ctx = context();
    let (a, b) = (State::new(), State::new());
    let (out_a, out_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build(&a, &ctx, out_a.path());
    // Later, with the context touched: times that differ must not show.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    for f in ["src/a.txt", "src/sub/b.txt"] {
        std::fs::File::options()
            .write(true)
            .open(ctx.path().join(f))
            .and_then(|f| f.set_modified(std::time::SystemTime::now()))
            .unwrap();
    }
    build(&b, &ctx, out_b.path());

    for name in ["image.oci.tar", "image.docker.tar"] {
        let (x, y) = (
            std::fs::read(out_a.path().join(name)).unwrap(),
            std::fs::read(out_b.path().join(name)).unwrap(),
        );
        assert!(x == y, "{name} differs between the two state directories");
    }

    // What the epoch should have touched.
    let layout = out_a.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    run_tool(
        Command::new("tar")
            .arg("-xf")
            .arg(out_a.path().join("image.oci.tar"))
            .arg("-C")
            .arg(&layout),
    );
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index = json(&std::fs::read(layout.join("index.json")).unwrap());
    let entry = &index["manifests"][0];
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.created"],
        EPOCH_RFC3339
    );
    let manifest = json(&std::fs::read(blob(entry["digest"].as_str().unwrap())).unwrap());
    let config =
        json(&std::fs::read(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap());
    assert_eq!(config["created"], EPOCH_RFC3339);
    let history = config["history"].as_array().unwrap();
    let ours: Vec<_> = history
        .iter()
        .filter(|h| h["comment"] == "buildkit.dockerfile.v0")
        .collect();
    assert_eq!(ours.len(), 6, "{history:#?}");
    for h in &ours {
        assert_eq!(h["created"], EPOCH_RFC3339, "{h}");
    }
    assert_eq!(config["config"]["Labels"]["kiln.test"], "repro");

    // The layers this build made: nothing newer than the epoch. (The first layer
    // is busybox's, kept as it was.)
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 4, "busybox, WORKDIR, COPY, RUN");
    for l in &layers[1..] {
        let listing = run_tool(
            Command::new("tar")
                .args(["--full-time", "-tvzf"])
                .arg(blob(l["digest"].as_str().unwrap()))
                .env("TZ", "UTC"),
        );
        let listing = String::from_utf8(listing).unwrap();
        assert!(!listing.is_empty());
        for line in listing.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let when = format!("{} {}", fields[3], fields[4]);
            assert!(when.as_str() <= EPOCH_TAR, "newer than the epoch: {line}");
        }
    }
    a.assert_clean();
    b.assert_clean();
}
