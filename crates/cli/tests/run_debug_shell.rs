//! `--on-error=shell`, driven through a pseudo-terminal as a person would: kiln runs
//! with the terminal as its stdin, stdout and stderr; when a RUN fails, a shell opens
//! in the failed step's filesystem with its env, user, working directory and mounts;
//! Ctrl-C inside it interrupts the command, not the build; leaving it ends the build
//! with the step's error and nothing left behind.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{BUSYBOX, Context, RuncWatch, State, leftovers, ready};

/// A terminal: the controlling side, and everything read from it so far.
struct Terminal {
    master: std::fs::File,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    /// Opens a pseudo-terminal; returns it and the device for the child.
    fn open() -> (Terminal, OwnedFd) {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(name.to_str().expect("pts name"))
            .expect("open pts");
        let master = std::fs::File::from(master);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().expect("dup"), seen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every holder of the device has closed it.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        (Terminal { master, seen }, OwnedFd::from(slave))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).to_string()
    }

    /// Waits until the output after `from` contains `needle`; returns where it ends.
    fn wait_for(&self, from: usize, needle: &str, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let t = self.text();
            if let Some(at) = t.get(from..).and_then(|rest| rest.find(needle)) {
                return from + at + needle.len();
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on the terminal after {limit:?}:\n{t}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_in(&mut self, keys: &str) {
        self.master
            .write_all(keys.as_bytes())
            .expect("write to terminal");
    }
}

#[test]
fn on_error_shell_opens_in_the_failed_step_and_ends_the_build_with_its_error() {
    if !ready("on_error_shell_opens_in_the_failed_step_and_ends_the_build_with_its_error") {
        return;
    }
    let df = format!(
        r#"FROM {BUSYBOX}
ENV MARKER=from-env
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group
USER app
WORKDIR /tmp/work/dir
RUN --mount=type=bind,target=/ctx --mount=type=cache,target=/cache,uid=1000 \
    echo partial > /tmp/partial; cp /ctx/in.txt /cache/copied; echo "step-output"; sleep 0.5; exit 4
"#
    );
    let ctx = Context::new(&df, &[("in.txt", "context-content\n")]);
    let state = State::new();
    let watch = RuncWatch::start(state.path());
    let (mut term, slave) = Terminal::open();
    let mut cmd = state.kiln();
    cmd.args(["build", "--on-error=shell", ctx.arg()])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // SAFETY: only async-signal-safe calls between fork and exec: kiln gets a
    // session of its own with the terminal as its controlling terminal, as in a
    // login shell.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            // SAFETY: fd 0 is open (the terminal) for the whole call.
            let stdin = std::os::fd::BorrowedFd::borrow_raw(0);
            rustix::process::ioctl_tiocsctty(stdin)?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn kiln");
    drop(cmd);

    let at = term.wait_for(0, "opening a shell", Duration::from_secs(120));
    let at = term.wait_for(at, "$ ", Duration::from_secs(30));
    term.type_in("echo \"dbg=$MARKER:$(pwd):$(id -u):$(cat /tmp/partial):$(cat /ctx/in.txt):$(cat /cache/copied)\"\n");
    let at = term.wait_for(
        at,
        "dbg=from-env:/tmp/work/dir:1000:partial:context-content:context-content",
        Duration::from_secs(10),
    );
    term.type_in("[ -t 0 ] && echo \"term=$(tty)\"\n");
    let at = term.wait_for(at, "term=/dev/pts/", Duration::from_secs(10));
    // Ctrl-C interrupts the command in the shell; the build goes on waiting.
    term.type_in("sleep 100; echo after-sleep\n");
    std::thread::sleep(Duration::from_millis(500));
    term.type_in("\x03");
    term.type_in("echo still-here\n");
    let at = term.wait_for(at, "\nstill-here", Duration::from_secs(10));
    assert!(
        child.try_wait().unwrap().is_none(),
        "Ctrl-C ended the build"
    );
    assert!(!term.text()[..at].contains("\nafter-sleep"));

    let left = Instant::now();
    term.type_in("exit\n");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            left.elapsed() < Duration::from_secs(20),
            "kiln did not end after the shell: {}",
            term.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    term.wait_for(
        at,
        "did not complete successfully: exit code: 4",
        Duration::from_secs(5),
    );
    let containers = watch.finish();
    assert!(containers.len() >= 2, "{containers:?}");
    let left = leftovers(state.path(), &containers);
    assert!(left.is_empty(), "left behind:\n{}", left.join("\n"));
}
