//! The cache as a `docker buildx build` user sees it: a context of a few hundred
//! files copied with `COPY . /app` and steps that depend on parts of it. Unchanged
//! and merely touched contexts rebuild entirely from the cache into the same bytes;
//! a changed, renamed or added file re-runs exactly the steps that read it; a
//! `.dockerignore`d file is never looked at; `--no-cache` and `--no-cache-filter`
//! re-run what they name.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{BUSYBOX, Context, State, StepEnd, dockerfile_steps, ready, stderr, text};

const A_COPY: &str = "[a 2/3] COPY a/ /a";
const A_RUN: &str = "[a 3/3] RUN cat /a/* > /a.sum";
const B_COPY: &str = "[b 2/3] COPY b/ /b";
const B_RUN: &str = "[b 3/3] RUN cat /b/* > /b.sum";
const FROM_A: &str = "[stage-2 2/5] COPY --from=a /a.sum /";
const FROM_B: &str = "[stage-2 3/5] COPY --from=b /b.sum /";
const COPY_ALL: &str = "[stage-2 4/5] COPY . /app";
const COUNT: &str = "[stage-2 5/5] RUN find /app | sort | md5sum > /count";
const ALL: [&str; 8] = [
    A_COPY, A_RUN, B_COPY, B_RUN, FROM_A, FROM_B, COPY_ALL, COUNT,
];

fn dockerfile() -> String {
    format!(
        "FROM {BUSYBOX} AS a\nCOPY a/ /a\nRUN cat /a/* > /a.sum\n\
         FROM {BUSYBOX} AS b\nCOPY b/ /b\nRUN cat /b/* > /b.sum\n\
         FROM {BUSYBOX}\nCOPY --from=a /a.sum /\nCOPY --from=b /b.sum /\nCOPY . /app\n\
         RUN find /app | sort | md5sum > /count\n"
    )
}

fn context() -> Context {
    let names: Vec<String> = (0..300)
        .map(|i| format!("src/d{}/f{i}.txt", i % 7))
        .collect();
    let contents: Vec<String> = (0..300).map(|i| format!("file {i}\n")).collect();
    let mut files: Vec<(&str, &str)> = names
        .iter()
        .map(String::as_str)
        .zip(contents.iter().map(String::as_str))
        .collect();
    files.extend([
        ("a/x", "a one\n"),
        ("b/x", "b one\n"),
        ("notes.log", "ignored\n"),
        (".dockerignore", "*.log\n"),
    ]);
    Context::new(&dockerfile(), &files)
}

/// Builds into an OCI tarball; returns how each Dockerfile step ended and the bytes.
fn build(state: &State, ctx: &Context, extra: &[&str]) -> (BTreeMap<String, StepEnd>, Vec<u8>) {
    // Outside the context: an output inside it would be part of the next build.
    let out = state.path().with_extension("out.tar");
    let dest = format!("type=oci,dest={}", out.display());
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["-o", &dest, ctx.arg()]);
    let o = state.build(&args);
    assert!(o.status.success(), "{}", text(&o));
    let steps = dockerfile_steps(&stderr(&o));
    let names: Vec<&str> = steps.keys().map(String::as_str).collect();
    let mut all = ALL.to_vec();
    all.sort();
    assert_eq!(names, all, "the build's steps");
    let bytes = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    (steps, bytes)
}

/// Asserts exactly the steps in `ran` ran and every other one was cached.
fn expect(steps: &BTreeMap<String, StepEnd>, ran: &[&str], when: &str) {
    for (name, end) in steps {
        let want = if ran.contains(&name.as_str()) {
            StepEnd::Done
        } else {
            StepEnd::Cached
        };
        assert_eq!(end, &want, "{when}: step {name}\nall: {steps:#?}");
    }
}

/// Sets the modification time of every file and directory under `dir`.
fn touch_all(dir: &Path, to: SystemTime) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            touch_all(&path, to);
        }
        std::fs::File::open(&path)
            .and_then(|f| f.set_modified(to))
            .unwrap_or_else(|e| panic!("touch {}: {e}", path.display()));
    }
}

#[test]
fn cache_follows_content_like_buildkit() {
    if !ready("cache_follows_content_like_buildkit") {
        return;
    }
    let ctx = context();
    let state = State::new();
    let root = ctx.path();

    let (steps, first) = build(&state, &ctx, &[]);
    expect(&steps, &ALL, "first build");

    let (steps, bytes) = build(&state, &ctx, &[]);
    expect(&steps, &[], "unchanged rebuild");
    assert!(bytes == first, "an unchanged rebuild wrote other bytes");

    touch_all(root, SystemTime::now() + Duration::from_secs(3600));
    let (steps, bytes) = build(&state, &ctx, &[]);
    expect(&steps, &[], "every file touched");
    assert!(bytes == first, "a touched context changed the image");

    std::fs::write(root.join("b/x"), "b two, longer\n").unwrap();
    let (steps, _) = build(&state, &ctx, &[]);
    expect(
        &steps,
        &[B_COPY, B_RUN, FROM_B, COPY_ALL, COUNT],
        "b/x changed",
    );

    std::fs::write(root.join("src/d3/f10.txt"), "file ten, edited\n").unwrap();
    let (steps, edited) = build(&state, &ctx, &[]);
    expect(&steps, &[COPY_ALL, COUNT], "one source file changed");

    std::fs::write(root.join("notes.log"), "ignored, and changed\n").unwrap();
    std::fs::write(root.join("new.log"), "a new ignored file\n").unwrap();
    let (steps, bytes) = build(&state, &ctx, &[]);
    expect(&steps, &[], "only .dockerignored files changed");
    assert!(bytes == edited, "an ignored file changed the image");

    std::fs::rename(root.join("src/d1/f1.txt"), root.join("src/d1/g1.txt")).unwrap();
    let (steps, _) = build(&state, &ctx, &[]);
    expect(&steps, &[COPY_ALL, COUNT], "a file renamed");

    std::fs::write(root.join("src/added.txt"), "added\n").unwrap();
    let (steps, _) = build(&state, &ctx, &[]);
    expect(&steps, &[COPY_ALL, COUNT], "a file added");

    // The mode is content too.
    use std::os::unix::fs::PermissionsExt;
    let f = root.join("a/x");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (steps, _) = build(&state, &ctx, &[]);
    expect(
        &steps,
        &[A_COPY, A_RUN, COPY_ALL, COUNT],
        "a file made executable",
    );

    let (steps, _) = build(&state, &ctx, &["--no-cache"]);
    expect(&steps, &ALL, "--no-cache");

    // Stage a runs again; what it makes has the same content, so the step that
    // copies it from there is still a cache hit (the key is the content).
    let (steps, _) = build(&state, &ctx, &["--no-cache-filter", "a"]);
    expect(&steps, &[A_COPY, A_RUN], "--no-cache-filter a");

    state.assert_clean();
}
