//! Helpers shared by the end-to-end tests: the kiln binary, throwaway state
//! directories, the local test bed registry, and a registry of a test's own.
//!
//! These tests need root (overlay mounts, runc) and the test bed registry on
//! 127.0.0.1:5000 (`scripts/testbed.sh`); when either is missing they say so plainly
//! and return without checking anything.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The test bed's busybox image.
pub const BUSYBOX: &str = "127.0.0.1:5000/testbed/busybox:latest";
/// The test bed's Debian image (debootstrap, minbase).
pub const DEBIAN: &str = "127.0.0.1:5000/testbed/debian:bookworm";

/// The kiln binary built for these tests.
pub fn kiln_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln"))
}

/// Whether the machine can run the end-to-end tests; prints why not.
pub fn ready(test: &str) -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("{test}: not root; skipping (the end-to-end tests run as root in CI)");
        return false;
    }
    if !registry_up("127.0.0.1:5000") {
        eprintln!("{test}: no registry on 127.0.0.1:5000; skipping (run scripts/testbed.sh)");
        return false;
    }
    true
}

/// Whether an image is in the test bed (the Debian image may be missing).
pub fn has_image(reference: &str) -> bool {
    let Some(rest) = reference.strip_prefix("127.0.0.1:5000/") else {
        return false;
    };
    let (repo, tag) = rest.rsplit_once(':').unwrap_or((rest, "latest"));
    http_get(
        "127.0.0.1:5000",
        &format!("/v2/{repo}/manifests/{tag}"),
        "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json",
    )
    .is_some_and(|status| status == 200)
}

fn http_get(addr: &str, path: &str, accept: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "HEAD {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    let line = String::from_utf8_lossy(&buf[..n]);
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Whether a registry answers `/v2/` at `addr`.
pub fn registry_up(addr: &str) -> bool {
    matches!(http_get(addr, "/v2/", "*/*"), Some(200 | 401))
}

/// A kiln state directory that is removed at the end of the test.
pub struct State {
    dir: tempfile::TempDir,
}

impl State {
    pub fn new() -> State {
        State {
            dir: tempfile::Builder::new()
                .prefix("kiln-test-state-")
                .tempdir_in(std::env::temp_dir())
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `kiln --root STATE <args>`.
    pub fn kiln(&self) -> Command {
        let mut c = Command::new(kiln_bin());
        c.arg("--root").arg(self.path());
        c
    }

    /// Runs `kiln build --progress plain <args>` and returns its output.
    pub fn build(&self, args: &[&str]) -> Output {
        self.kiln()
            .arg("build")
            .arg("--progress")
            .arg("plain")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kiln")
    }
}

/// stderr and stdout of a command, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A build context in a temporary directory.
pub struct Context {
    dir: tempfile::TempDir,
}

impl Context {
    /// A context with a Dockerfile and files (`path`, `contents`).
    pub fn new(dockerfile: &str, files: &[(&str, &str)]) -> Context {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
        for (p, c) in files {
            let path = dir.path().join(p);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(path, c).expect("write file");
        }
        Context { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn arg(&self) -> &str {
        self.dir.path().to_str().expect("utf-8 temp path")
    }
}

/// A docker-registry of the test's own on a free loopback port, stopped (by PID)
/// when dropped.
pub struct Registry {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts one; `None` (with a message) when `docker-registry` is not installed.
    pub fn start() -> Option<Registry> {
        let bin = ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"]
            .into_iter()
            .find(|p| Path::new(p).exists())?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .ok()?;
        let dir = tempfile::tempdir().ok()?;
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: {addr}}}\n",
                dir.path().join("data").display()
            ),
        )
        .ok()?;
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let r = Registry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if registry_up(&r.addr) {
                return Some(r);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
