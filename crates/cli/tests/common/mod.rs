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

/// A free TCP port on 127.0.0.1 (nothing listens on it when this returns).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// Whether `tool` runs (`tool --version`); prints why a test skips when it does not.
pub fn have(test: &str, tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("{test}: {tool} is not installed; skipping");
    }
    ok
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let hash = sha2::Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Runs a tool and returns its stdout; panics with its output when it fails.
pub fn run_tool(cmd: &mut Command) -> Vec<u8> {
    let o = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?} failed\n{}", text(&o));
    o.stdout
}

/// Parses a tool's JSON output.
pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

impl State {
    /// Checks what a build (finished or failed) left in the state directory: no
    /// unfinished write under `ingest/` or `tmp/`, and every blob under
    /// `blobs/sha256/` holds the content its name says.
    pub fn assert_clean(&self) {
        for dir in ["ingest", "tmp"] {
            let left: Vec<_> = std::fs::read_dir(self.path().join(dir))
                .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
                .unwrap_or_default();
            assert!(left.is_empty(), "{dir}/ holds leftovers: {left:?}");
        }
        for blob in self.blobs() {
            let bytes =
                std::fs::read(self.path().join("blobs/sha256").join(&blob)).expect("read blob");
            assert_eq!(
                digest_of(&bytes),
                format!("sha256:{blob}"),
                "blob {blob} does not hold its content"
            );
        }
    }

    /// The hex digests of the blobs in the store.
    pub fn blobs(&self) -> Vec<String> {
        std::fs::read_dir(self.path().join("blobs/sha256"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// How a step of a build ended, as `--progress plain` tells it.
#[derive(Debug, Clone, PartialEq)]
pub enum StepEnd {
    Cached,
    Done,
    Error(String),
    Canceled,
    /// No end line (the build stopped first).
    Open,
}

/// A step of plain progress output: `#N NAME`, then `#N CACHED`, `#N DONE 0.3s`,
/// `#N ERROR: ...` or `#N CANCELED`.
#[derive(Debug, Clone)]
pub struct Step {
    pub number: u32,
    pub name: String,
    pub end: StepEnd,
    /// The lines between (logs, statuses), without the `#N ` prefix.
    pub lines: Vec<String>,
}

/// The steps of plain progress output, in the order they first appeared.
pub fn steps(plain: &str) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    for line in plain.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        let Some((n, body)) = rest.split_once(' ') else {
            continue;
        };
        let Ok(number) = n.parse::<u32>() else {
            continue;
        };
        let Some(step) = out.iter_mut().find(|s| s.number == number) else {
            out.push(Step {
                number,
                name: body.to_string(),
                end: StepEnd::Open,
                lines: Vec::new(),
            });
            continue;
        };
        if body == "CACHED" {
            step.end = StepEnd::Cached;
        } else if body == "CANCELED" {
            step.end = StepEnd::Canceled;
        } else if let Some(e) = body.strip_prefix("ERROR: ") {
            step.end = StepEnd::Error(e.to_string());
        } else if body
            .strip_prefix("DONE ")
            .and_then(|t| t.strip_suffix('s'))
            .is_some_and(|t| t.parse::<f64>().is_ok())
        {
            step.end = StepEnd::Done;
        } else {
            step.lines.push(body.to_string());
        }
    }
    out
}

/// The Dockerfile steps (`[stage i/n] INSTRUCTION`) of plain output other than
/// `FROM`, by name, with how each ended. A name can belong to two vertices (`ADD
/// <url>`: the download, then the copy that uses it); the later one, which makes the
/// step's result, counts.
pub fn dockerfile_steps(plain: &str) -> std::collections::BTreeMap<String, StepEnd> {
    let mut out = std::collections::BTreeMap::new();
    for s in steps(plain) {
        let instruction = s.name.split_once("] ").map(|(_, i)| i).unwrap_or("");
        if !s.name.starts_with('[')
            || s.name.starts_with("[internal]")
            || s.name.starts_with("[context ")
            || instruction.starts_with("FROM ")
        {
            continue;
        }
        out.insert(s.name.clone(), s.end.clone());
    }
    out
}

/// stderr of a kiln run, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A request the test HTTP server received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the test HTTP server answers.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A tiny HTTP/1.1 server on a free loopback port, for the fakes a test needs (a
/// file server, a registry that refuses or lies). One thread per connection, every
/// answer closes its connection. Stopped when dropped.
pub struct HttpServer {
    pub addr: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Request>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> HttpServer {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr").to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (handler, requests) = (handler.clone(), requests.clone());
                    std::thread::spawn(move || serve(conn, &*handler, &requests));
                }
            })
        };
        HttpServer {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn serve(mut conn: std::net::TcpStream, handler: &Handler, log: &std::sync::Mutex<Vec<Request>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(clone) = conn.try_clone() else { return };
    let mut reader = BufReader::new(clone);
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    let mut parts = first.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return;
    };
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let req = Request {
        method: method.to_string(),
        path: path.to_string(),
        headers,
    };
    if let Some(n) = req
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
    {
        let _ = std::io::copy(&mut (&mut reader).take(n), &mut std::io::sink());
    }
    let resp = handler(&req);
    if let Ok(mut l) = log.lock() {
        l.push(req.clone());
    }
    let mut head = format!("HTTP/1.1 {} X\r\n", resp.status);
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        resp.body.len()
    ));
    let _ = conn.write_all(head.as_bytes());
    if req.method != "HEAD" {
        let _ = conn.write_all(&resp.body);
    }
    let _ = conn.flush();
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::net::TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An entry of a tar archive a test writes byte by byte (so it can say things a
/// careful tar library refuses to: `../` names, absolute names, links out).
pub enum TarEntry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// A ustar archive of `entries` (names and link targets up to 100 bytes).
pub fn tar_bytes(entries: &[TarEntry<'_>]) -> Vec<u8> {
    fn octal(field: &mut [u8], value: u64) {
        let s = format!("{value:0width$o}", width = field.len() - 1);
        field[..s.len()].copy_from_slice(s.as_bytes());
    }
    let mut out = Vec::new();
    for e in entries {
        let (name, kind, mode, link, data): (&str, u8, u64, &str, &[u8]) = match e {
            TarEntry::File(n, d) => (n, b'0', 0o644, "", d),
            TarEntry::Dir(n) => (n, b'5', 0o755, "", &[]),
            TarEntry::Symlink(n, t) => (n, b'2', 0o777, t, &[]),
            TarEntry::Hardlink(n, t) => (n, b'1', 0o644, t, &[]),
        };
        assert!(name.len() <= 100 && link.len() <= 100, "name too long");
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], mode);
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], data.len() as u64);
        octal(&mut h[136..148], 1_600_000_000);
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// `git daemon` serving the repositories under a directory of its own on a free
/// loopback port, stopped (by PID) when dropped.
pub struct GitDaemon {
    child: Child,
    pub addr: String,
    dir: tempfile::TempDir,
}

impl GitDaemon {
    /// Starts one; `None` (with a message) when git is missing or it does not come up.
    pub fn start() -> Option<GitDaemon> {
        let dir = tempfile::tempdir().ok()?;
        let port = free_port();
        // `git daemon` would run `git-daemon` as a child of its own, which killing
        // `git` leaves behind: start the daemon itself, so its PID is the one to stop.
        let exec_path = Command::new("git")
            .arg("--exec-path")
            .output()
            .map_err(|e| eprintln!("cannot run git: {e}"))
            .ok()?;
        let daemon =
            Path::new(String::from_utf8_lossy(&exec_path.stdout).trim()).join("git-daemon");
        let child = Command::new(&daemon)
            .arg(format!("--base-path={}", dir.path().display()))
            .arg("--export-all")
            .arg("--reuseaddr")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={port}"))
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| eprintln!("cannot start {}: {e}", daemon.display()))
            .ok()?;
        let d = GitDaemon {
            child,
            addr: format!("127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(&d.addr).is_ok() {
                return Some(d);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("git daemon did not come up on {}", d.addr);
        None
    }

    /// Where repositories go: `<dir>/NAME` is served as `git://ADDR/NAME`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs git in `dir` with a fixed identity; panics with its output on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = run_tool(
        Command::new("git")
            .args(["-c", "user.name=kiln test", "-c", "user.email=test@kiln"])
            .args(args)
            .current_dir(dir),
    );
    String::from_utf8_lossy(&out).trim().to_string()
}

/// Where kiln's runc keeps container state.
pub const RUNC_ROOT: &str = "/run/kiln/runc";

/// Every file under `dir` (not following symlinks) whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_symlink() {
                if let Ok(t) = std::fs::read_link(&p)
                    && contains(t.as_os_str().as_encoded_bytes(), needle)
                {
                    found.push(p);
                }
            } else if ft.is_file()
                && let Ok(bytes) = std::fs::read(&p)
                && contains(&bytes, needle)
            {
                found.push(p);
            }
        }
    }
    found
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A runc container seen while a build ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub pid: i64,
    pub bundle: String,
}

/// Containers in kiln's runc root whose bundle lies under `state`.
pub fn containers_under(state: &Path) -> Vec<Container> {
    let Ok(out) = Command::new("runc")
        .args(["--root", RUNC_ROOT, "list", "--format", "json"])
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    let Ok(list) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return Vec::new();
    };
    let prefix = state.to_string_lossy().to_string();
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| {
                    let bundle = c["bundle"].as_str()?.to_string();
                    let id = c["id"].as_str()?.to_string();
                    bundle.starts_with(&prefix).then(|| Container {
                        id,
                        pid: c["pid"].as_i64().unwrap_or(0),
                        bundle,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Watches kiln's runc root while a build runs, recording every container of one
/// state directory, so the test can afterwards check that each one is gone.
pub struct RuncWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Container>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuncWatch {
    pub fn start(state: &Path) -> RuncWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Container>::new()));
        let (s, v, dir) = (stop.clone(), seen.clone(), state.to_path_buf());
        let thread = std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                for c in containers_under(&dir) {
                    let mut v = v.lock().unwrap();
                    if !v.iter().any(|x| x.id == c.id) {
                        v.push(c);
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        });
        RuncWatch {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Containers seen so far.
    pub fn seen(&self) -> Vec<Container> {
        self.seen.lock().unwrap().clone()
    }

    /// Stops watching; returns every container seen.
    pub fn finish(mut self) -> Vec<Container> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.seen()
    }
}

/// Mount lines (of `/proc/<pid>/mountinfo`) that mention `path`.
pub fn mounts_mentioning(pid: &str, path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().to_string();
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}

/// Processes whose root, working directory or command line lies in `state`, or that
/// run in one of `containers`' cgroups.
pub fn processes_of(state: &Path, containers: &[Container]) -> Vec<String> {
    let prefix = state.to_string_lossy().to_string();
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.parse::<u32>().is_err() {
            continue;
        }
        let p = e.path();
        let link = |l: &str| {
            std::fs::read_link(p.join(l))
                .map(|t| t.to_string_lossy().to_string())
                .unwrap_or_default()
        };
        let cmdline = std::fs::read(p.join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let cgroup = std::fs::read_to_string(p.join("cgroup")).unwrap_or_default();
        let ours = link("root").starts_with(&prefix)
            || link("cwd").starts_with(&prefix)
            || cmdline.contains(&prefix)
            || containers.iter().any(|c| cgroup.contains(&c.id));
        if ours {
            out.push(format!("pid {name}: {cmdline}"));
        }
    }
    out
}

/// cgroup directories (any controller) named after one of `containers`.
pub fn cgroups_of(containers: &[Container]) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, ids: &[&str], out: &mut Vec<PathBuf>) {
        if depth == 0 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if ids.iter().any(|id| e.file_name() == **id) {
                out.push(p.clone());
            }
            walk(&p, depth - 1, ids, out);
        }
    }
    let ids: Vec<&str> = containers.iter().map(|c| c.id.as_str()).collect();
    let mut out = Vec::new();
    if !ids.is_empty() {
        walk(Path::new("/sys/fs/cgroup"), 5, &ids, &mut out);
    }
    out
}

/// Everything a build in `state` may have left behind: mounts visible here, runc
/// containers, processes, cgroups, and leftover work directories in the store.
pub fn leftovers(state: &Path, containers: &[Container]) -> Vec<String> {
    let mut out = Vec::new();
    for m in mounts_mentioning("self", state) {
        out.push(format!("mount: {m}"));
    }
    for c in containers_under(state) {
        out.push(format!("runc container: {c:?}"));
    }
    for p in processes_of(state, containers) {
        out.push(format!("process: {p}"));
    }
    for c in containers {
        if c.pid > 0 && Path::new(&format!("/proc/{}", c.pid)).exists() {
            let root = std::fs::read_link(format!("/proc/{}/root", c.pid)).unwrap_or_default();
            if root.starts_with(state) {
                out.push(format!("container process {} still alive", c.pid));
            }
        }
        if Path::new(RUNC_ROOT).join(&c.id).exists() {
            out.push(format!("runc state {}/{}", RUNC_ROOT, c.id));
        }
    }
    for g in cgroups_of(containers) {
        out.push(format!("cgroup: {}", g.display()));
    }
    if let Ok(entries) = std::fs::read_dir(state.join("tmp")) {
        for e in entries.flatten() {
            out.push(format!("work directory: {}", e.path().display()));
        }
    }
    out
}

impl State {
    /// `kiln build --progress plain <args>` with extra environment variables.
    pub fn build_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.kiln();
        c.arg("build").arg("--progress").arg("plain").args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdin(Stdio::null()).output().expect("run kiln")
    }
}

/// The lines a step printed, in plain progress output (`#N 0.123 text`), without the
/// step number and time stamp.
pub fn step_output(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('#')?;
            let (_, rest) = rest.split_once(' ')?;
            let (ts, text) = rest.split_once(' ')?;
            ts.parse::<f64>().ok()?;
            Some(text.to_string())
        })
        .collect()
}

/// The value printed after `key=` on a step output line (`key=value`).
pub fn value_of(stderr: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    step_output(stderr)
        .into_iter()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
}

/// The image config of the single image in an OCI layout directory
/// (`-o type=oci,dest=DIR,tar=false`).
pub fn oci_dir_config(dir: &Path) -> serde_json::Value {
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let blob = |digest: &str| {
        let (alg, hex) = digest.split_once(':').expect("digest");
        dir.join("blobs").join(alg).join(hex)
    };
    let index = read(dir.join("index.json"));
    let manifest = read(blob(
        index["manifests"][0]["digest"]
            .as_str()
            .expect("manifest digest"),
    ));
    read(blob(
        manifest["config"]["digest"]
            .as_str()
            .expect("config digest"),
    ))
}

/// Whether the Debian mirror the test bed's Debian image uses (plain HTTP, see its
/// sources.list) answers; prints why not.
pub fn debian_mirror_reachable(test: &str) -> bool {
    use std::net::ToSocketAddrs;
    let ok = ("deb.debian.org", 80)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).is_ok()
        });
    if !ok {
        eprintln!("{test}: deb.debian.org:80 is not reachable; skipping");
    }
    ok
}

/// The duration plain progress printed for the step whose header contains `name`
/// (`#N DONE 12.3s`).
pub fn step_seconds(stderr: &str, name: &str) -> Option<f64> {
    let lines: Vec<&str> = stderr.lines().collect();
    let number = lines
        .iter()
        .find(|l| l.starts_with('#') && l.contains(name))?
        .split_whitespace()
        .next()?
        .to_string();
    lines.iter().find_map(|l| {
        l.strip_prefix(&format!("{number} DONE "))
            .and_then(|t| t.trim_end_matches('s').parse().ok())
    })
}
