//! Test helpers: small busybox-like layers built with kiln-layer, images made of
//! them, external tools (skopeo, umoci, podman, docker-registry) found or reported
//! missing, and a `docker-registry` on a free loopback port.

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kiln_exporter::{Descriptor, ExportLayer, Image};
use kiln_graph::{History, ImageConfig};
use kiln_layer::{CompressOptions, Compression, compress_layer};

/// Sets every mtime under `root` (and `root`) to `t`, so trees built at different
/// times give the same layers.
pub fn set_mtimes(root: &Path, t: i64) {
    let ts = rustix::fs::Timespec {
        tv_sec: t,
        tv_nsec: 0,
    };
    let times = rustix::fs::Timestamps {
        last_access: ts,
        last_modification: ts,
    };
    let mut stack = vec![root.to_path_buf()];
    let mut all = Vec::new();
    while let Some(p) = stack.pop() {
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        all.push(p);
    }
    for p in all {
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &p,
            &times,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }
}

/// A base tree: `bin/busybox`, `bin/sh` (symlink), `bin/ls` (hard link),
/// `etc/passwd`, `tmp` (1777).
pub fn base_tree(dir: &Path) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("etc")).unwrap();
    fs::create_dir_all(dir.join("tmp")).unwrap();
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    let busybox: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(dir.join("bin/busybox"), busybox).unwrap();
    fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("busybox", dir.join("bin/sh")).unwrap();
    fs::hard_link(dir.join("bin/busybox"), dir.join("bin/ls")).unwrap();
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    set_mtimes(dir, 1_600_000_000);
}

/// An app layer: `app/hello.txt` with `text`.
pub fn app_tree(dir: &Path, text: &str) {
    fs::create_dir_all(dir.join("app")).unwrap();
    fs::write(dir.join("app/hello.txt"), text).unwrap();
    set_mtimes(dir, 1_700_000_100);
}

/// Writes `tree` as a gzip layer blob into `blobs` and describes it.
pub fn layer(tree: &Path, blobs: &Path, name: &str, created: &str) -> ExportLayer {
    let blob = blobs.join(name);
    let file = fs::File::create(&blob).unwrap();
    let opts = CompressOptions {
        compression: Compression::gzip(),
        ..CompressOptions::default()
    };
    let stats = compress_layer(tree, file, &opts).unwrap();
    ExportLayer {
        blob,
        descriptor: Descriptor {
            media_type: stats.media_type.to_string(),
            digest: stats.digest,
            size: stats.size,
            platform: None,
            annotations: Default::default(),
            urls: vec![],
        },
        diff_id: stats.diff_id,
        created: Some(created.to_string()),
        source_repo: None,
        verified: false,
    }
}

/// The files a test image is made of.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub base: ExportLayer,
    pub app: ExportLayer,
    pub app2: ExportLayer,
    pub base_history: Vec<History>,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs");
        fs::create_dir(&blobs).unwrap();
        let trees = dir.path().join("trees");
        for t in ["base", "app", "app2"] {
            fs::create_dir_all(trees.join(t)).unwrap();
        }
        base_tree(&trees.join("base"));
        app_tree(&trees.join("app"), "hello from kiln\n");
        app_tree(&trees.join("app2"), "another app\n");
        let base = layer(&trees.join("base"), &blobs, "base", "2020-09-13T12:26:40Z");
        let app = layer(&trees.join("app"), &blobs, "app", "2024-05-01T10:00:00.25Z");
        let app2 = layer(&trees.join("app2"), &blobs, "app2", "2024-05-02T10:00:00Z");
        let base_history = vec![
            History {
                created: Some("2020-09-13T12:26:40Z".into()),
                created_by: "/bin/sh -c #(nop) ADD file:0123 in / ".into(),
                ..History::default()
            },
            History {
                created: Some("2020-09-13T12:26:41Z".into()),
                created_by: "/bin/sh -c #(nop)  CMD [\"sh\"]".into(),
                empty_layer: true,
                ..History::default()
            },
        ];
        Fixture {
            dir,
            base,
            app,
            app2,
            base_history,
        }
    }

    /// The base layer and one app layer, with Dockerfile-like history.
    pub fn image(&self, app: &ExportLayer) -> Image {
        let mut config = ImageConfig::empty(&"linux/amd64".parse().unwrap());
        config.config.cmd = Some(vec!["cat".into(), "/app/hello.txt".into()]);
        config.config.working_dir = "/app".into();
        config
            .config
            .labels
            .insert("org.example.note".into(), "a <b> & c".into());
        config.history = self.base_history.clone();
        config.history.push(History {
            created_by: "WORKDIR /app".into(),
            comment: "buildkit.dockerfile.v0".into(),
            empty_layer: true,
            ..History::default()
        });
        config.history.push(History {
            created_by: "COPY hello.txt /app/hello.txt # buildkit".into(),
            comment: "buildkit.dockerfile.v0".into(),
            ..History::default()
        });
        config.history.push(History {
            created_by: "CMD [\"cat\" \"/app/hello.txt\"]".into(),
            comment: "buildkit.dockerfile.v0".into(),
            empty_layer: true,
            ..History::default()
        });
        Image {
            config,
            layers: vec![self.base.clone(), app.clone()],
            base_history: self.base_history.clone(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `Some(path)` when `tool` is installed; otherwise says the test is skipped.
pub fn tool(name: &str) -> Option<PathBuf> {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Some(p);
        }
    }
    eprintln!(
        "{name} is not installed; skipping this check (install it with crates/exporter/tests/install-tools.sh)"
    );
    None
}

/// Runs a command and returns its output, failing the test with its stderr if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    out
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// A `docker-registry` serving from a temporary directory; killed by PID on drop.
pub struct Registry {
    child: Child,
    pub addr: String,
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Option<Registry> {
        let binary = tool("docker-registry")?;
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        fs::write(&config_path, config).unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let registry = Registry { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(&registry.addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", registry.addr);
                let mut head = [0u8; 12];
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_exact(&mut head).is_ok()
                    && head.starts_with(b"HTTP/1.")
                {
                    return Some(registry);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = fs::read_to_string(registry.dir.path().join("registry.log")).unwrap_or_default();
        panic!(
            "docker-registry on {} did not come up:\n{log}",
            registry.addr
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file under `dir`, relative, sorted.
pub fn list(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in fs::read_dir(&p).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            out.push(
                path.strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if e.file_type().unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}
