//! Two `kiln build`s sharing one `--root` at the same time: different Dockerfiles
//! with steps in common (the same base, the same first COPY) and steps that take a
//! while, the second started a little after the first (a different moment each
//! round, so it opens the store while the first is pulling, copying or running), in
//! a fresh state directory each round. Both succeed with the right files, and the
//! store is clean afterwards.

mod common;

use std::process::Stdio;

use common::{BUSYBOX, Context, State, ready, text};

#[test]
fn two_builds_share_one_state_directory() {
    if !ready("two_builds_share_one_state_directory") {
        return;
    }
    let files: Vec<(String, String)> = (0..200)
        .map(|i| (format!("src/f{i}.txt"), format!("shared file {i}\n")))
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let one = Context::new(
        &format!(
            "FROM {BUSYBOX}\nCOPY src /src\nRUN sleep 1 && ls /src | wc -l > /count\nRUN echo one > /which\n"
        ),
        &files,
    );
    let two = Context::new(
        &format!(
            "FROM {BUSYBOX}\nCOPY src /src\nRUN sleep 1 && cat /src/f1*.txt > /cat\nRUN echo two > /which\n"
        ),
        &files,
    );
    for (round, delay_ms) in [0u64, 150, 400, 900].into_iter().enumerate() {
        let state = State::new();
        let out = tempfile::tempdir().unwrap();
        let spawn = |ctx: &Context, name: &str| {
            state
                .kiln()
                .args(["build", "--progress", "plain", "-o"])
                .arg(format!(
                    "type=local,dest={}",
                    out.path().join(name).display()
                ))
                .arg(ctx.arg())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start kiln")
        };
        let a = spawn(&one, "one");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let b = spawn(&two, "two");
        let a = a.wait_with_output().unwrap();
        let b = b.wait_with_output().unwrap();
        assert!(
            a.status.success(),
            "round {round}, first build: {}",
            text(&a)
        );
        assert!(
            b.status.success(),
            "round {round}, second build: {}",
            text(&b)
        );
        let read = |p: &str| std::fs::read_to_string(out.path().join(p)).unwrap();
        assert_eq!(read("one/which"), "one\n");
        assert_eq!(read("one/count").trim(), "200");
        assert_eq!(read("two/which"), "two\n");
        assert!(
            read("two/cat").starts_with("shared file 1\n"),
            "{}",
            read("two/cat")
        );
        assert_eq!(read("two/src/f199.txt"), "shared file 199\n");
        state.assert_clean();

        // Both again, together, from the cache now.
        let a = spawn(&one, "one-again");
        let b = spawn(&two, "two-again");
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        assert!(a.status.success(), "round {round}: {}", text(&a));
        assert!(b.status.success(), "round {round}: {}", text(&b));
        for o in [&a, &b] {
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(err.matches(" CACHED").count(), 3, "round {round}: {err}");
        }
        state.assert_clean();
    }
}
