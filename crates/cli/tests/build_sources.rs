//! Sources from outside the build context, served on loopback by the test: `ADD`
//! of an HTTP URL (with and without `--checksum`), `ADD` of a git repository served
//! by `git daemon`, and named contexts (`--build-context NAME=DIR`,
//! `docker-image://`, `oci-layout://` made with kiln's own OCI output).

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{
    BUSYBOX, Context, GitDaemon, HttpServer, Response, State, StepEnd, digest_of, dockerfile_steps,
    git, ready, stderr, text,
};

/// Builds `dockerfile` into a local directory; returns the directory and the output.
fn build_local(
    state: &State,
    dockerfile: &str,
    extra: &[&str],
) -> (tempfile::TempDir, std::process::Output) {
    let ctx = Context::new(dockerfile, &[]);
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().join("fs").display());
    let mut args = extra.to_vec();
    args.extend(["-o", dest.as_str(), ctx.arg()]);
    let o = state.build(&args);
    (out, o)
}

fn read(dir: &tempfile::TempDir, path: &str) -> String {
    std::fs::read_to_string(dir.path().join("fs").join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn add_from_http_with_and_without_checksum() {
    if !ready("add_from_http_with_and_without_checksum") {
        return;
    }
    let body = Arc::new(Mutex::new(b"remote content\n".to_vec()));
    let served = body.clone();
    let server = HttpServer::start(move |req| match req.path.as_str() {
        "/file.txt" => Response::new(200, served.lock().unwrap().clone())
            .header("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        _ => Response::new(404, "not here\n"),
    });
    let url = format!("http://{}/file.txt", server.addr);
    let right = digest_of(b"remote content\n");
    let state = State::new();

    let df = format!(
        "FROM {BUSYBOX}\nADD {url} /plain.txt\nADD --checksum={right} {url} /checked.txt\n"
    );
    let (out, o) = build_local(&state, &df, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read(&out, "plain.txt"), "remote content\n");
    assert_eq!(read(&out, "checked.txt"), "remote content\n");
    let meta = std::fs::metadata(out.path().join("fs/plain.txt")).unwrap();
    // As BuildKit: a download is 0600 and keeps the server's Last-Modified.
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(meta.mtime(), 784_111_777);
    let gets = server
        .requests()
        .iter()
        .filter(|r| r.path == "/file.txt")
        .count();
    assert!(gets >= 1);

    // Unchanged on the server: asked again, the copy is a cache hit.
    let (_, o) = build_local(&state, &df, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let steps = dockerfile_steps(&stderr(&o));
    assert!(steps.values().all(|e| *e == StepEnd::Cached), "{steps:#?}");
    assert!(
        server
            .requests()
            .iter()
            .filter(|r| r.path == "/file.txt")
            .count()
            > gets,
        "the URL was not checked again"
    );

    // Changed on the server: the step without a checksum picks it up; the pinned
    // one now fails, naming the URL and both digests.
    *body.lock().unwrap() = b"new remote content\n".to_vec();
    let (out, o) = build_local(
        &state,
        &format!("FROM {BUSYBOX}\nADD {url} /plain.txt\n"),
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read(&out, "plain.txt"), "new remote content\n");
    let (out, o) = build_local(&state, &df, &[]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains(&url), "{err}");
    assert!(err.contains(&right), "{err}");
    assert!(err.contains(&digest_of(b"new remote content\n")), "{err}");
    // The download failed (a vertex BuildKit gives no Dockerfile location either):
    // the message names the step.
    assert!(
        err.lines()
            .last()
            .is_some_and(|l| l.starts_with("ERROR: failed to solve: [3/3] ADD --checksum=")),
        "{err}"
    );
    assert!(!out.path().join("fs").exists());
    state.assert_clean();

    // A URL that is not there.
    let missing = format!("http://{}/missing.txt", server.addr);
    let (_, o) = build_local(&state, &format!("FROM {BUSYBOX}\nADD {missing} /m\n"), &[]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains(&missing) && err.contains("404"), "{err}");
    state.assert_clean();
}

/// A repository served as `git://ADDR/repo`: `main` with two commits, tag `v1` on
/// the first, a subdirectory, and a symlink pointing out of the repository.
fn repository(daemon: &GitDaemon) -> (String, String) {
    let repo = daemon.dir().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::create_dir(repo.join("sub")).unwrap();
    std::fs::write(repo.join("top.txt"), "one\n").unwrap();
    std::fs::write(repo.join("sub/inner.txt"), "inner\n").unwrap();
    std::os::unix::fs::symlink("/etc", repo.join("escape")).unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "one"]);
    git(&repo, &["tag", "v1"]);
    let v1 = git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(repo.join("top.txt"), "two\n").unwrap();
    git(&repo, &["commit", "-qam", "two"]);
    (format!("git://{}/repo", daemon.addr), v1)
}

#[test]
fn add_from_a_git_daemon() {
    let test = "add_from_a_git_daemon";
    if !ready(test) || !common::have(test, "git") {
        return;
    }
    let Some(daemon) = GitDaemon::start() else {
        eprintln!("{test}: git daemon did not start; skipping");
        return;
    };
    let (remote, v1) = repository(&daemon);
    let state = State::new();
    let df = format!(
        "FROM {BUSYBOX}\n\
         ADD {remote} /head/\n\
         ADD {remote}#v1 /v1/\n\
         ADD {remote}#main:sub /sub/\n\
         ADD {remote}?tag=v1&subdir=sub /q/\n\
         ADD --checksum={v1} {remote}#v1 /pinned/\n\
         ADD --keep-git-dir=true {remote}#main /kept/\n\
         ADD {remote}?branch=main /branch/\n"
    );
    let (out, o) = build_local(&state, &df, &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read(&out, "head/top.txt"), "two\n");
    assert_eq!(read(&out, "v1/top.txt"), "one\n");
    assert_eq!(read(&out, "sub/inner.txt"), "inner\n");
    assert!(!out.path().join("fs/sub/top.txt").exists());
    assert_eq!(read(&out, "q/inner.txt"), "inner\n");
    assert_eq!(read(&out, "pinned/top.txt"), "one\n");
    assert_eq!(read(&out, "branch/top.txt"), "two\n");
    assert!(
        !out.path().join("fs/head/.git").exists(),
        ".git kept by default"
    );
    assert!(
        out.path().join("fs/kept/.git").is_dir(),
        "--keep-git-dir lost .git"
    );
    // The symlink is copied as a symlink; nothing of the host's /etc is in the image.
    let link = out.path().join("fs/head/escape");
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/etc"));

    // A query BuildKit does not understand is an error at its line, not ignored.
    let (_, o) = build_local(
        &state,
        &format!("FROM {BUSYBOX}\nADD {remote}?refs=v1 /x/\n"),
        &[],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains(r#"unexpected query "refs""#), "{err}");
    assert!(err.contains(">>>   2 | ADD"), "{err}");

    // A checksum that is not the commit fails, naming both.
    let wrong = "0123456789abcdef0123456789abcdef01234567";
    let (_, o) = build_local(
        &state,
        &format!("FROM {BUSYBOX}\nADD --checksum={wrong} {remote}#v1 /x/\n"),
        &[],
    );
    assert!(!o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains(wrong) && err.contains(&v1), "{err}");
    state.assert_clean();

    // A subdirectory that is a symlink out of the repository, or climbs out: not
    // found in the repository, and the host's files are not copied.
    for sub in ["escape", "../../../../../../../../etc"] {
        let (out, o) = build_local(
            &state,
            &format!("FROM {BUSYBOX}\nADD {remote}#main:{sub} /x/\n"),
            &[],
        );
        assert!(
            !o.status.success(),
            "{sub}: the host's /etc was copied\n{}",
            text(&o)
        );
        let err = stderr(&o);
        assert!(err.contains("not found"), "{sub}: {err}");
        assert!(!out.path().join("fs").exists());
        state.assert_clean();
    }

    // A repository that is not there names the remote.
    let (_, o) = build_local(
        &state,
        &format!(
            "FROM {BUSYBOX}\nADD git://{}/nothing-here /x/\n",
            daemon.addr
        ),
        &[],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(stderr(&o).contains("nothing-here"), "{}", text(&o));
    state.assert_clean();
}

#[test]
fn named_contexts_dir_image_and_oci_layout() {
    if !ready("named_contexts_dir_image_and_oci_layout") {
        return;
    }
    let state = State::new();
    let work = tempfile::tempdir().unwrap();

    // An OCI layout made by kiln itself, tagged v3.
    let base = Context::new(
        &format!("FROM {BUSYBOX}\nRUN echo from-the-layout > /layout.txt\n"),
        &[],
    );
    let layout = work.path().join("layout");
    let o = state.build(&[
        "-t",
        "kiln.test/base:v3",
        "-o",
        &format!("type=oci,tar=false,dest={}", layout.display()),
        base.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));

    let dir = work.path().join("named-dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("n.txt"), "from the named dir\n").unwrap();
    std::fs::write(dir.join("skip.txt"), "ignored\n").unwrap();
    std::fs::write(dir.join(".dockerignore"), "skip.txt\n").unwrap();

    let df = "FROM base AS b\nRUN echo on-the-named-image > /b.txt\n\
              FROM lay AS l\nRUN cat /layout.txt > /l.txt\n\
              FROM lay\n\
              COPY --from=dir / /dir/\n\
              COPY --from=b /b.txt /b.txt\n\
              COPY --from=l /l.txt /l.txt\n";
    let dir_arg = format!("dir={}", dir.display());
    let layout_arg = format!("lay=oci-layout://{}:v3", layout.display());
    let image_arg = format!("base=docker-image://{BUSYBOX}");
    let (out, o) = build_local(
        &state,
        df,
        &[
            "--build-context",
            &dir_arg,
            "--build-context",
            &image_arg,
            "--build-context",
            &layout_arg,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(read(&out, "dir/n.txt"), "from the named dir\n");
    assert!(
        !out.path().join("fs/dir/skip.txt").exists(),
        "the dir's .dockerignore"
    );
    assert_eq!(read(&out, "b.txt"), "on-the-named-image\n");
    assert_eq!(read(&out, "l.txt"), "from-the-layout\n");
    assert_eq!(
        read(&out, "layout.txt"),
        "from-the-layout\n",
        "FROM the layout"
    );

    // A tag the layout does not have is an error naming it.
    let bad = format!("lay=oci-layout://{}:nope", layout.display());
    let (_, o) = build_local(
        &state,
        df,
        &[
            "--build-context",
            &dir_arg,
            "--build-context",
            &image_arg,
            "--build-context",
            &bad,
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(stderr(&o).contains("nope"), "{}", text(&o));
    state.assert_clean();
}
