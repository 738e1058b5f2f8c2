//! Nothing outlives a RUN step: no mount, runc container, process, cgroup or work
//! directory is left after a build that succeeds, fails or is cancelled (SIGINT
//! while a step sleeps), and a cancelled build exits promptly.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{
    BUSYBOX, Context, RuncWatch, State, leftovers, mounts_mentioning, processes_of, ready, text,
};

/// Runs a build to its end while watching its containers; returns its output and
/// the containers it ran.
fn build_watched(state: &State, args: &[&str]) -> (std::process::Output, Vec<common::Container>) {
    let watch = RuncWatch::start(state.path());
    let o = state.build(args);
    (o, watch.finish())
}

fn assert_clean(state: &Path, containers: &[common::Container]) {
    let left = leftovers(state, containers);
    assert!(left.is_empty(), "left behind:\n{}", left.join("\n"));
}

#[test]
fn nothing_is_left_after_a_successful_or_failed_build() {
    if !ready("nothing_is_left_after_a_successful_or_failed_build") {
        return;
    }
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let df = format!(
        r#"FROM {BUSYBOX} AS other
RUN echo from-other > /other.txt && sleep 0.5
FROM {BUSYBOX}
COPY in.txt /in.txt
RUN --mount=type=bind,target=/ctx \
    --mount=type=bind,from=other,source=/other.txt,target=/o.txt \
    --mount=type=cache,target=/cache \
    --mount=type=tmpfs,target=/scratch \
    --mount=type=secret,id=tok \
    cat /ctx/in.txt /o.txt /run/secrets/tok > /dev/null && echo x > /cache/x && echo y > /scratch/y && echo ok > /ok && sleep 0.5
RUN sh -c 'sleep 0.2 & echo background-started; sleep 0.5'
"#
    );
    let ctx = Context::new(&df, &[("in.txt", "in\n"), ("tok.txt", "s3cr3t\n")]);
    let secret = format!("id=tok,src={}", ctx.path().join("tok.txt").display());
    let state = State::new();
    let (o, containers) = build_watched(&state, &["--secret", &secret, ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        containers.len() >= 2,
        "the watch saw {} containers; it cannot tell what is left",
        containers.len()
    );
    assert_clean(state.path(), &containers);

    // A failing step (its process left a child behind in the container).
    let df_fail = format!(
        "FROM {BUSYBOX}\nRUN --mount=type=cache,target=/cache --mount=type=tmpfs,target=/t sh -c 'sleep 30 & echo started; sleep 0.5; exit 7'\n"
    );
    std::fs::write(ctx.path().join("Dockerfile"), df_fail).unwrap();
    let started = Instant::now();
    let (o, containers) = build_watched(&state, &[ctx.arg()]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("exit code: 7"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the build waited for the step's orphaned child"
    );
    assert!(!containers.is_empty());
    assert_clean(state.path(), &containers);

    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    assert!(
        mounts_after <= mounts_before,
        "mount count grew from {mounts_before} to {mounts_after}"
    );
}

/// Removes a container kiln failed to remove, so a failing test leaves nothing.
fn kill_container(id: &str) {
    for args in [vec!["kill", id, "KILL"], vec!["delete", "--force", id]] {
        let _ = std::process::Command::new("runc")
            .args(["--root", common::RUNC_ROOT])
            .args(&args)
            .stderr(Stdio::null())
            .status();
    }
}

fn spawn_build(state: &State, args: &[&str]) -> Child {
    state
        .kiln()
        .arg("build")
        .arg("--progress")
        .arg("plain")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kiln")
}

/// Waits until `n` containers of `state` run a process whose command line contains
/// `needle` (the step's own process, not just the container's init).
fn wait_for_processes(
    state: &State,
    watch: &RuncWatch,
    n: usize,
    needle: &str,
    limit: Duration,
) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let procs = processes_of(state.path(), &watch.seen());
        if procs.iter().filter(|p| p.contains(needle)).count() >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_cancelled_build_exits_promptly_and_leaves_nothing() {
    if !ready("a_cancelled_build_exits_promptly_and_leaves_nothing") {
        return;
    }
    // Two stages sleeping at once, both with mounts, and a third waiting for the
    // locked cache the first holds; then cancelled.
    let df = format!(
        r#"FROM {BUSYBOX} AS a
RUN --mount=type=cache,id=lk,target=/cache,sharing=locked --mount=type=tmpfs,target=/t sleep 111
FROM {BUSYBOX} AS b
RUN --mount=type=bind,target=/ctx sleep 112
FROM {BUSYBOX} AS c
RUN --mount=type=cache,id=lk,target=/cache,sharing=locked sleep 115
FROM {BUSYBOX}
COPY --from=a /etc/passwd /a
COPY --from=b /etc/passwd /b
COPY --from=c /etc/passwd /c
"#
    );
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let watch = RuncWatch::start(state.path());
    let mut child = spawn_build(&state, &["--jobs", "3", ctx.arg()]);
    let kiln_pid = child.id();
    let both = wait_for_processes(&state, &watch, 2, "sleep 11", Duration::from_secs(60));
    // Give the third step time to reach the lock.
    std::thread::sleep(Duration::from_millis(500));
    if !both {
        // SIGINT, so that kiln removes what it started.
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(kiln_pid as i32).unwrap(),
            rustix::process::Signal::INT,
        );
        let out = child.wait_with_output().unwrap();
        panic!("the steps never ran: {}", text(&out));
    }
    // While the steps run, their mounts are visible in kiln's namespace: the checks
    // below look for the right things.
    let live_mounts = mounts_mentioning(&kiln_pid.to_string(), state.path());
    assert!(
        !live_mounts.is_empty(),
        "no mounts of the running steps seen"
    );
    assert!(watch.seen().len() >= 2, "{:?}", watch.seen());

    let signalled = Instant::now();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(kiln_pid as i32).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let deadline = signalled + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let containers = watch.finish();
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            for c in &containers {
                kill_container(&c.id);
            }
            panic!("kiln did not exit within 10s of SIGINT: {}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = signalled.elapsed();
    let out = child.wait_with_output().unwrap();
    let containers = watch.finish();
    assert!(!status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("canceled"), "{stderr}");
    assert!(took < Duration::from_secs(5), "cancel took {took:?}");
    assert_clean(state.path(), &containers);

    // The store is usable afterwards: the same build runs again from scratch.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {BUSYBOX}\nRUN --mount=type=cache,target=/cache echo again > /again\n"),
    )
    .unwrap();
    let (o, containers) = build_watched(&state, &[ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_clean(state.path(), &containers);
}

#[test]
fn the_next_build_removes_what_a_killed_kiln_left_running() {
    if !ready("the_next_build_removes_what_a_killed_kiln_left_running") {
        return;
    }
    let df = format!("FROM {BUSYBOX}\nRUN --mount=type=cache,target=/c sleep 113\n");
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let watch = RuncWatch::start(state.path());
    let mut child = spawn_build(&state, &[ctx.arg()]);
    let running = wait_for_processes(&state, &watch, 1, "sleep 113", Duration::from_secs(60));
    // SIGKILL: kiln cannot clean up; its container outlives it.
    let _ = child.kill();
    let _ = child.wait();
    let orphans = watch.finish();
    assert!(running, "the step never ran");
    let stranded = common::containers_under(state.path());
    assert!(!stranded.is_empty(), "the container died with kiln");

    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {BUSYBOX}\nRUN echo next-build\n"),
    )
    .unwrap();
    let (o, containers) = build_watched(&state, &[ctx.arg()]);
    // Whatever the outcome, nothing of the killed build may stay running.
    for c in &stranded {
        kill_container(&c.id);
    }
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("removed 1 containers left running"),
        "{}",
        text(&o)
    );
    let mut all = orphans;
    all.extend(containers);
    assert_clean(state.path(), &all);
}

#[test]
fn ctrl_c_on_a_terminal_cancels_cleanly() {
    if !ready("ctrl_c_on_a_terminal_cancels_cleanly") {
        return;
    }
    // A terminal's Ctrl-C signals the whole foreground process group: kiln and the
    // runc processes it started, which pass it on to the step.
    use std::os::unix::process::CommandExt;
    let df =
        format!("FROM {BUSYBOX}\nRUN trap 'echo got-sigint' INT; sleep 114 & wait; sleep 114\n");
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let watch = RuncWatch::start(state.path());
    let mut child = state
        .kiln()
        .args(["build", "--progress", "plain", ctx.arg()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn kiln");
    let pgid = child.id() as i32;
    let running = wait_for_processes(&state, &watch, 1, "sleep 114", Duration::from_secs(60));
    let signalled = Instant::now();
    rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(pgid).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let deadline = signalled + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            for c in watch.seen() {
                kill_container(&c.id);
            }
            panic!("kiln did not exit within 10s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = signalled.elapsed();
    let out = child.wait_with_output().unwrap();
    let containers = watch.finish();
    assert!(running, "the step never ran: {}", text(&out));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("canceled"), "{stderr}");
    assert!(took < Duration::from_secs(5), "cancel took {took:?}");
    assert_clean(state.path(), &containers);
}
