//! Rebuilds that reuse work from earlier builds (remembered selection digests, stat
//! caches) must still see every change: each check here changes one thing a COPY
//! reads and expects the COPY to run again with the new content, and expects an
//! untouched rebuild to be served from the cache.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::{BUSYBOX, Context, State, ready, text};

/// Builds into a local directory and returns the plain progress output.
fn build_local(state: &State, ctx: &Context, out: &Path) -> String {
    let o = state.build(&[
        "-o",
        &format!("type=local,dest={}", out.display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Whether the step whose name contains `step` was served from the cache.
fn cached(progress: &str, step: &str) -> bool {
    let Some(number) = progress
        .lines()
        .find(|l| l.starts_with('#') && l.contains(step))
        .and_then(|l| l.split_whitespace().next())
    else {
        panic!("no step {step:?} in:\n{progress}");
    };
    progress
        .lines()
        .any(|l| l.trim_end() == format!("{number} CACHED"))
}

/// Lets the context's times fall out of the window in which kiln does not trust them,
/// so the next build may remember what it computed from the context.
fn settle() {
    std::thread::sleep(Duration::from_millis(2200));
}

#[test]
fn context_changes_are_seen_after_a_remembered_rebuild() {
    if !ready("context_changes_are_seen_after_a_remembered_rebuild") {
        return;
    }
    let df = format!("FROM {BUSYBOX}\nCOPY . /app\n");
    let ctx = Context::new(&df, &[("a.txt", "alpha\n"), ("sub/b.txt", "bravo\n")]);
    let state = State::new();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("rootfs");
    settle();

    let p = build_local(&state, &ctx, &dest);
    assert!(!cached(&p, "COPY . /app"), "{p}");
    let p = build_local(&state, &ctx, &dest);
    assert!(cached(&p, "COPY . /app"), "{p}");

    // Same size, new bytes.
    std::fs::write(ctx.path().join("sub/b.txt"), "BRAVO\n").unwrap();
    let p = build_local(&state, &ctx, &dest);
    assert!(!cached(&p, "COPY . /app"), "{p}");
    assert_eq!(
        std::fs::read_to_string(dest.join("app/sub/b.txt")).unwrap(),
        "BRAVO\n"
    );

    // A mode change only.
    settle();
    let p = build_local(&state, &ctx, &dest);
    assert!(cached(&p, "COPY . /app"), "{p}");
    std::fs::set_permissions(
        ctx.path().join("a.txt"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let p = build_local(&state, &ctx, &dest);
    assert!(!cached(&p, "COPY . /app"), "{p}");
    let mode = std::fs::metadata(dest.join("app/a.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);

    // Touched only: contents and modes as before, so the cache serves it.
    settle();
    build_local(&state, &ctx, &dest);
    let now = std::time::SystemTime::now();
    for f in ["a.txt", "sub/b.txt"] {
        std::fs::File::options()
            .write(true)
            .open(ctx.path().join(f))
            .unwrap()
            .set_modified(now)
            .unwrap();
    }
    let p = build_local(&state, &ctx, &dest);
    assert!(cached(&p, "COPY . /app"), "{p}");
}

#[test]
fn a_copy_from_a_changed_stage_runs_again() {
    if !ready("a_copy_from_a_changed_stage_runs_again") {
        return;
    }
    let df = format!(
        "FROM {BUSYBOX} AS src\nCOPY a.txt /a.txt\nWORKDIR /w\nFROM {BUSYBOX}\nCOPY --from=src /a.txt /copied.txt\n"
    );
    let ctx = Context::new(&df, &[("a.txt", "one\n")]);
    let state = State::new();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("rootfs");
    build_local(&state, &ctx, &dest);
    let p = build_local(&state, &ctx, &dest);
    assert!(cached(&p, "COPY --from=src"), "{p}");
    std::fs::write(ctx.path().join("a.txt"), "two\n").unwrap();
    let p = build_local(&state, &ctx, &dest);
    assert!(!cached(&p, "COPY --from=src"), "{p}");
    assert_eq!(
        std::fs::read_to_string(dest.join("copied.txt")).unwrap(),
        "two\n"
    );
    let p = build_local(&state, &ctx, &dest);
    assert!(cached(&p, "COPY --from=src"), "{p}");
}
