//! Package installs on the test bed's Debian image: `apt-get update && apt-get
//! install` works from a RUN step (the mirror over plain HTTP), and cache mounts on
//! /var/cache/apt and /var/lib/apt make the next build, which adds a package, reuse
//! what the previous one downloaded.

mod common;

use common::{
    Context, DEBIAN, State, debian_mirror_reachable, has_image, ready, step_output, step_seconds,
    text, value_of,
};

fn gets(stderr: &str) -> Vec<String> {
    step_output(stderr)
        .into_iter()
        .filter(|l| l.starts_with("Get:"))
        .collect()
}

fn cached_install(packages: &str) -> String {
    format!(
        r#"FROM {DEBIAN}
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    echo "debs_before=$(ls /var/cache/apt/archives/*.deb 2>/dev/null | wc -l)"; \
    apt-get update && apt-get install -y --no-install-recommends {packages} && \
    echo "debs_after=$(ls /var/cache/apt/archives/*.deb | wc -l)" && hello
"#
    )
}

#[test]
fn apt_get_install_works_and_cache_mounts_reuse_downloads() {
    let name = "apt_get_install_works_and_cache_mounts_reuse_downloads";
    if !ready(name) || !debian_mirror_reachable(name) {
        return;
    }
    if !has_image(DEBIAN) {
        eprintln!("{name}: {DEBIAN} is not in the test bed; skipping");
        return;
    }
    let state = State::new();

    // A plain install (after a first step that has the base image unpacked, so
    // that the install's own time is measured).
    let ctx = Context::new(
        &format!(
            "FROM {DEBIAN}\nRUN true\nRUN apt-get update && apt-get install -y --no-install-recommends hello && hello\n"
        ),
        &[],
    );
    let o = state.build(&[ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        step_output(&err).iter().any(|l| l == "Hello, world!"),
        "{err}"
    );
    let cold = step_seconds(&err, "RUN apt-get update").expect("step time");

    // With cache mounts: the first build fills them.
    let ctx = Context::new(&cached_install("hello"), &[]);
    let o = state.build(&[ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let first = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(value_of(&first, "debs_before").as_deref(), Some("0"));
    assert_eq!(value_of(&first, "debs_after").as_deref(), Some("1"));
    let first_gets = gets(&first);
    assert!(
        first_gets.iter().any(|g| g.contains("hello")),
        "{first_gets:?}"
    );
    assert!(
        first_gets.iter().any(|g| g.contains("Packages")),
        "{first_gets:?}"
    );
    let first_time = step_seconds(&first, "RUN --mount=type=cache").expect("step time");

    // Adding a package: the step runs again and finds the lists and the hello
    // package already downloaded; only the new package is fetched.
    std::fs::write(ctx.path().join("Dockerfile"), cached_install("hello tree")).unwrap();
    let o = state.build(&[ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let second = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        value_of(&second, "debs_before").as_deref(),
        Some("1"),
        "the download of the previous build is not in the cache: {second}"
    );
    assert_eq!(value_of(&second, "debs_after").as_deref(), Some("2"));
    let second_gets = gets(&second);
    assert!(
        second_gets.iter().all(|g| !g.contains(" hello ")),
        "hello was downloaded again: {second_gets:?}"
    );
    assert!(
        second_gets.iter().any(|g| g.contains(" tree ")),
        "{second_gets:?}"
    );
    assert!(
        !second_gets.iter().any(|g| g.contains("Packages")),
        "the package lists were downloaded again: {second_gets:?}"
    );
    assert!(second_gets.len() < first_gets.len());
    let second_time = step_seconds(&second, "RUN --mount=type=cache").expect("step time");
    eprintln!(
        "figures: apt-get update+install hello, cold: {cold:.1}s; with cache mounts, first build: {first_time:.1}s ({} Get lines); second build adding tree: {second_time:.1}s ({} Get lines)",
        first_gets.len(),
        second_gets.len()
    );
}
