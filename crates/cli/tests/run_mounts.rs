//! `RUN --mount`: bind (from the context, a stage or an image; source, target, rw
//! whose writes are discarded), cache (id, sharing, from/source, mode/uid/gid, ro;
//! persistent across builds), tmpfs (size), and their mount points kept out of the
//! layer.

mod common;

use common::{BUSYBOX, Context, State, ready, text, value_of};

#[test]
fn bind_mounts_from_context_stage_and_image() {
    if !ready("bind_mounts_from_context_stage_and_image") {
        return;
    }
    let df = format!(
        r#"FROM {BUSYBOX} AS builder
RUN mkdir -p /out && echo from-stage > /out/file
FROM {BUSYBOX}
RUN --mount=type=bind,target=/ctx \
    --mount=type=bind,source=sub,target=/mnt/sub \
    --mount=type=bind,from=builder,source=/out/file,target=/stage-file \
    --mount=type=bind,from={BUSYBOX},source=/etc,target=/image-etc \
    echo "ctx=$(cat /ctx/in.txt)"; echo "sub=$(cat /mnt/sub/deep.txt)"; \
    echo "stage=$(cat /stage-file)"; echo "image=$(grep -c root /image-etc/passwd)"; \
    echo "ignored=$([ -e /ctx/ignored.txt ] && echo visible || echo hidden)"; \
    if echo x > /ctx/new 2>/dev/null; then echo ro=writable; else echo ro=refused; fi
RUN --mount=type=bind,target=/ctx,rw \
    echo changed > /ctx/in.txt && echo new > /ctx/new && rm /ctx/sub/deep.txt && echo "rw=$(cat /ctx/in.txt)"
RUN --mount=type=bind,target=/ctx \
    echo "after=$(cat /ctx/in.txt) $([ -e /ctx/new ] && echo new-kept || echo new-gone)"
"#
    );
    let ctx = Context::new(
        &df,
        &[
            ("in.txt", "context-file"),
            ("sub/deep.txt", "deep-file"),
            ("ignored.txt", "x"),
            (".dockerignore", "ignored.txt\n"),
        ],
    );
    let state = State::new();
    let dest = ctx.path().join("..").join(format!(
        "{}-rootfs",
        ctx.path().file_name().unwrap().to_string_lossy()
    ));
    let o = state.build(&[
        "-o",
        &format!("type=local,dest={}", dest.display()),
        ctx.arg(),
    ]);
    let _cleanup = DirGuard(dest.clone());
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let v = |k: &str| value_of(&err, k).unwrap_or_else(|| panic!("no {k}= in\n{err}"));
    assert_eq!(v("ctx"), "context-file");
    assert_eq!(v("sub"), "deep-file");
    assert_eq!(v("stage"), "from-stage");
    assert_eq!(v("image"), "1");
    assert_eq!(
        v("ignored"),
        "hidden",
        ".dockerignore applies to bind mounts"
    );
    assert_eq!(v("ro"), "refused", "bind mounts are read-only by default");
    assert_eq!(v("rw"), "changed");
    assert_eq!(v("after"), "context-file new-gone", "rw writes were kept");
    // Nothing reached the context on the host or the image.
    assert_eq!(
        std::fs::read_to_string(ctx.path().join("in.txt")).unwrap(),
        "context-file"
    );
    assert!(!ctx.path().join("new").exists());
    assert!(ctx.path().join("sub/deep.txt").exists());
    for p in ["ctx", "mnt/sub", "stage-file", "image-etc"] {
        assert!(
            std::fs::symlink_metadata(dest.join(p)).is_err(),
            "mount point /{p} is in the image"
        );
    }
}

struct DirGuard(std::path::PathBuf);

impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn cache_mounts_persist_share_by_id_and_take_owner_mode_and_seed() {
    if !ready("cache_mounts_persist_share_by_id_and_take_owner_mode_and_seed") {
        return;
    }
    let df = format!(
        r#"FROM {BUSYBOX} AS seed
RUN mkdir -p /seed && echo seeded > /seed/file
FROM {BUSYBOX}
RUN --mount=type=cache,target=/var/cache/app \
    echo run >> /var/cache/app/runs; echo "runs=$(wc -l < /var/cache/app/runs)"
RUN --mount=type=cache,id=shared-cache,target=/one echo written-by-one > /one/note
RUN --mount=type=cache,id=shared-cache,target=/two,ro \
    echo "two=$(cat /two/note)"; \
    if echo x > /two/other 2>/dev/null; then echo cache_ro=writable; else echo cache_ro=refused; fi
RUN --mount=type=cache,target=/owned,uid=1000,gid=1001,mode=0750 \
    echo "owned=$(stat -c '%a %u %g' /owned)"; touch /owned/by-1000
RUN --mount=type=cache,target=/owned,uid=2000,gid=2000 \
    echo "reowned=$(stat -c '%a %u %g' /owned) $(ls /owned | wc -l)"
RUN --mount=type=cache,target=/seeded,from=seed,source=/seed \
    echo "seeded=$(cat /seeded/file)"; echo more >> /seeded/file
RUN --mount=type=cache,target=/var/cache/app echo "in_layer=$(ls /var/cache/app | wc -l)" && \
    touch /layer-marker
"#
    );
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let dest = tempfile::tempdir().unwrap();
    let o = state.build(&[
        "-o",
        &format!("type=local,dest={}", dest.path().display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let v = |e: &str, k: &str| value_of(e, k).unwrap_or_else(|| panic!("no {k}= in\n{e}"));
    assert_eq!(v(&err, "runs"), "1");
    assert_eq!(
        v(&err, "two"),
        "written-by-one",
        "the same id is the same cache"
    );
    assert_eq!(v(&err, "cache_ro"), "refused");
    assert_eq!(v(&err, "owned"), "750 1000 1001");
    // Another owner is another cache, as in BuildKit.
    assert_eq!(v(&err, "reowned"), "755 2000 2000 0");
    assert_eq!(v(&err, "seeded"), "seeded");
    assert_eq!(
        v(&err, "in_layer"),
        "1",
        "the cache is mounted in the last step"
    );
    // The cache's contents are not in the image.
    assert!(dest.path().join("layer-marker").exists());
    let in_image = std::fs::read_dir(dest.path().join("var/cache/app"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(in_image, 0, "cache contents leaked into the image");
    assert!(!dest.path().join("one/note").exists());

    // The next build (steps not cached) finds the caches as they were left.
    let o = state.build(&["--no-cache", ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        v(&err, "runs"),
        "2",
        "the cache did not persist across builds"
    );
    assert_eq!(
        v(&err, "seeded"),
        "seeded",
        "a seeded cache keeps its own contents"
    );
    let du = state.kiln().arg("du").output().unwrap();
    let du = String::from_utf8_lossy(&du.stdout);
    assert!(
        du.lines()
            .any(|l| l.starts_with("cache mounts") && !l.contains(" 0 ")),
        "{du}"
    );
}

/// Two stages' steps meet in a cache (each writes its name and waits up to 3 s
/// for the other's) and report whether they met and whether they ever ran inside
/// the cache at the same time.
fn sharing_probe(sharing: &str) -> String {
    let step = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,id=probe-{sharing},target=/c,sharing={sharing} \
             if ls /c/inside-* >/dev/null 2>&1; then echo {me}_overlap=yes; else echo {me}_overlap=no; fi; \
             touch /c/inside-{me} /c/seen-{me}; i=0; \
             while [ ! -e /c/seen-{other} ] && [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done; \
             if [ -e /c/seen-{other} ]; then echo {me}_met=yes; else echo {me}_met=no; fi; \
             rm -f /c/inside-{me}"
        )
    };
    format!(
        "FROM {BUSYBOX} AS a\n{}\nFROM {BUSYBOX} AS b\n{}\nFROM {BUSYBOX}\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n",
        step("a", "b"),
        step("b", "a")
    )
}

#[test]
fn cache_sharing_shared_locked_and_private() {
    if !ready("cache_sharing_shared_locked_and_private") {
        return;
    }
    let state = State::new();
    let run = |sharing: &str| {
        let ctx = Context::new(&sharing_probe(sharing), &[]);
        let o = state.build(&["--jobs", "2", ctx.arg()]);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let v = |e: &str, k: &str| value_of(e, k).unwrap_or_else(|| panic!("no {k}= in\n{e}"));

    let shared = run("shared");
    assert_eq!(v(&shared, "a_met"), "yes", "{shared}");
    assert_eq!(v(&shared, "b_met"), "yes", "{shared}");

    // Locked: one after the other; the second finds the first's note.
    let locked = run("locked");
    assert_eq!(v(&locked, "a_overlap"), "no", "{locked}");
    assert_eq!(v(&locked, "b_overlap"), "no", "{locked}");
    let met: Vec<String> = ["a_met", "b_met"].iter().map(|k| v(&locked, k)).collect();
    assert!(
        met.contains(&"no".to_string()) && met.contains(&"yes".to_string()),
        "locked steps ran at the same time: {locked}"
    );

    // Private: a concurrent writer gets a directory of its own.
    let private = run("private");
    assert_eq!(v(&private, "a_met"), "no", "{private}");
    assert_eq!(v(&private, "b_met"), "no", "{private}");
}

#[test]
fn tmpfs_mounts_have_their_size_and_leave_nothing() {
    if !ready("tmpfs_mounts_have_their_size_and_leave_nothing") {
        return;
    }
    let df = format!(
        r#"FROM {BUSYBOX}
RUN --mount=type=tmpfs,target=/new/dir/scratch,size=1m \
    echo "fstype=$(awk '$2 == "/new/dir/scratch" {{print $3}}' /proc/mounts)"; \
    echo "size_kb=$(df -k /new/dir/scratch | awk 'NR==2 {{print $2}}')"; \
    if dd if=/dev/zero of=/new/dir/scratch/big bs=1024 count=2048 2>/dev/null; then echo fits=yes; else echo fits=no; fi; \
    echo "mode=$(stat -c %a /new/dir/scratch)"; \
    if mknod /new/dir/scratch/null c 1 3 2>/dev/null; then echo mknod=ok; else echo mknod=refused; fi; \
    echo keep > /kept
"#
    );
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let dest = tempfile::tempdir().unwrap();
    let o = state.build(&[
        "-o",
        &format!("type=local,dest={}", dest.path().display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let v = |k: &str| value_of(&err, k).unwrap_or_else(|| panic!("no {k}= in\n{err}"));
    assert_eq!(v("fstype"), "tmpfs");
    assert_eq!(v("size_kb"), "1024");
    assert_eq!(v("fits"), "no", "a 2 MiB file fit a 1 MiB tmpfs");
    assert_eq!(v("mode"), "1777");
    assert_eq!(v("mknod"), "ok", "BuildKit's tmpfs allows device nodes");
    assert!(dest.path().join("kept").exists());
    assert!(
        !dest.path().join("new").exists(),
        "the tmpfs mount point's parents were left in the image"
    );
}
