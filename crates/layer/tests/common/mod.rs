//! Helpers shared by the integration tests: building upper dirs with every
//! kind of file, snapshotting trees for comparison, running system tools.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::fs::{FileType, Mode, XattrFlags};

pub fn write(root: &Path, rel: &str, data: &[u8], mode: u32) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, data).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn mkdir(root: &Path, rel: &str, mode: u32) {
    let path = root.join(rel);
    fs::create_dir_all(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn symlink(root: &Path, rel: &str, target: &str) {
    std::os::unix::fs::symlink(target, root.join(rel)).unwrap();
}

pub fn mknod(root: &Path, rel: &str, kind: FileType, mode: u32, major: u32, minor: u32) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join(rel),
        kind,
        Mode::from_raw_mode(mode),
        rustix::fs::makedev(major, minor),
    )
    .unwrap();
    rustix::fs::chmod(root.join(rel), Mode::from_raw_mode(mode)).unwrap();
}

/// An overlay whiteout for `rel`.
pub fn whiteout(root: &Path, rel: &str) {
    mknod(root, rel, FileType::CharacterDevice, 0, 0, 0);
}

pub fn set_xattr(root: &Path, rel: &str, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(root.join(rel), name, value, XattrFlags::empty()).unwrap();
}

pub fn opaque(root: &Path, rel: &str) {
    set_xattr(root, rel, "trusted.overlay.opaque", b"y");
}

pub fn chown(root: &Path, rel: &str, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(root.join(rel), Some(uid), Some(gid)).unwrap();
}

pub fn set_mtime(root: &Path, rel: &str, secs: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        root.join(rel),
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

/// Sets every mtime under `root` (children first, so directories keep theirs).
pub fn set_all_mtimes(root: &Path, secs: i64) {
    let mut paths = Vec::new();
    collect(root, root, &mut paths);
    paths.sort();
    for rel in paths.iter().rev() {
        set_mtime(root, rel, secs);
    }
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        out.push(
            path.strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        );
        if entry.file_type().unwrap().is_dir() {
            collect(root, &path, out);
        }
    }
}

/// An upper dir with every kind of file the layer format knows.
pub fn rich_tree(root: &Path) {
    mkdir(root, "etc", 0o755);
    write(root, "etc/hosts", b"127.0.0.1 localhost\n", 0o644);
    write(root, "etc/shadow", b"root:*:1::::::\n", 0o640);
    chown(root, "etc/shadow", 0, 42);
    mkdir(root, "usr/bin", 0o755);
    write(root, "usr/bin/sudo", b"\x7fELF setuid", 0o4755);
    write(root, "usr/bin/wall", b"\x7fELF setgid", 0o2755);
    mkdir(root, "tmp", 0o1777);
    write(root, "usr/bin/ping", b"\x7fELF ping", 0o755);
    set_xattr(
        root,
        "usr/bin/ping",
        "security.capability",
        &[
            1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
    );
    set_xattr(root, "etc/hosts", "user.note", b"line1\nline2=x\0binary");
    // Overlay bookkeeping that must not reach the tar.
    set_xattr(root, "etc/hosts", "trusted.overlay.origin", b"\x00\xfb");
    // Hard links: three names for one inode.
    write(root, "usr/bin/python3.12", b"#!python", 0o755);
    fs::hard_link(
        root.join("usr/bin/python3.12"),
        root.join("usr/bin/python3"),
    )
    .unwrap();
    fs::hard_link(
        root.join("usr/bin/python3.12"),
        root.join("usr/bin/a-python"),
    )
    .unwrap();
    symlink(root, "usr/bin/python", "python3");
    symlink(root, "etc/localtime", "/usr/share/zoneinfo/UTC");
    // Long and non-ASCII names.
    let long_dir = format!("usr/share/{}", "d".repeat(120));
    mkdir(root, &long_dir, 0o755);
    write(
        root,
        &format!("{long_dir}/{}", "f".repeat(150)),
        b"long",
        0o644,
    );
    write(root, "usr/share/caf\u{e9}-\u{1f600}.txt", b"unicode", 0o644);
    // Long but splittable into the USTAR prefix and name fields.
    let split_dir = format!("usr/share/doc/{}", "p".repeat(80));
    mkdir(root, &split_dir, 0o755);
    write(
        root,
        &format!("{split_dir}/{}", "c".repeat(40)),
        b"split",
        0o644,
    );
    symlink(root, "usr/share/long-link", &"../".repeat(60));
    // Devices and fifos.
    mkdir(root, "dev", 0o755);
    mknod(root, "dev/null", FileType::CharacterDevice, 0o666, 1, 3);
    mknod(root, "dev/loop0", FileType::BlockDevice, 0o660, 7, 0);
    mknod(root, "dev/initctl", FileType::Fifo, 0o600, 0, 0);
    // Whiteouts and an opaque directory.
    whiteout(root, "etc/motd");
    mkdir(root, "var/cache/apt", 0o755);
    opaque(root, "var/cache/apt");
    write(root, "var/cache/apt/new", b"fresh", 0o644);
    // Big ids.
    write(root, "home/big-ids", b"", 0o600);
    chown(root, "home/big-ids", 3_000_000, 4_000_000);
    // Empty file, empty dir.
    write(root, "empty", b"", 0o644);
    mkdir(root, "emptydir", 0o700);
    set_all_mtimes(root, 1_600_000_000);
    set_mtime(root, "etc/hosts", 1_700_000_000);
}

/// Everything about one path that a layer round trip must keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Option<i64>,
    pub content: Vec<u8>,
    pub rdev: (u32, u32),
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// The first path (in sorted order) that shares this inode, if linked.
    pub link_group: Option<String>,
}

/// A snapshot of a tree: path → metadata. `with_dir_mtimes` false skips
/// directory mtimes (which extraction into implied directories cannot know).
pub fn snapshot(root: &Path, with_dir_mtimes: bool) -> BTreeMap<String, Meta> {
    let mut paths = Vec::new();
    collect(root, root, &mut paths);
    paths.sort();
    let mut inodes: HashMap<(u64, u64), String> = HashMap::new();
    let mut out = BTreeMap::new();
    for rel in paths {
        let path = root.join(&rel);
        let meta = fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "socket"
        };
        let content = if ft.is_file() {
            fs::read(&path).unwrap()
        } else if ft.is_symlink() {
            fs::read_link(&path)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec()
        } else {
            Vec::new()
        };
        let mut xattrs = BTreeMap::new();
        let mut names = vec![0u8; 65536];
        let n = rustix::fs::llistxattr(&path, &mut names[..]).unwrap_or(0);
        for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
            let mut value = vec![0u8; 65536];
            let len = rustix::fs::lgetxattr(&path, name, &mut value[..]).unwrap();
            xattrs.insert(
                String::from_utf8_lossy(name).into_owned(),
                value[..len].to_vec(),
            );
        }
        let link_group = if meta.nlink() > 1 && !ft.is_dir() {
            Some(
                inodes
                    .entry((meta.dev(), meta.ino()))
                    .or_insert_with(|| rel.clone())
                    .clone(),
            )
        } else {
            None
        };
        let rdev = meta.rdev();
        out.insert(
            rel,
            Meta {
                kind,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                mtime: if ft.is_dir() && !with_dir_mtimes {
                    None
                } else {
                    Some(meta.mtime())
                },
                content,
                rdev: (rustix::fs::major(rdev), rustix::fs::minor(rdev)),
                xattrs,
                link_group,
            },
        );
    }
    out
}

/// Asserts two snapshots are equal, listing the paths that differ.
pub fn assert_same_tree(left: &BTreeMap<String, Meta>, right: &BTreeMap<String, Meta>) {
    let mut problems = Vec::new();
    for (path, meta) in left {
        match right.get(path) {
            None => problems.push(format!("only in left: {path}")),
            Some(other) if other != meta => {
                problems.push(format!("{path}:\n  left  {meta:?}\n  right {other:?}"))
            }
            _ => {}
        }
    }
    for path in right.keys() {
        if !left.contains_key(path) {
            problems.push(format!("only in right: {path}"));
        }
    }
    assert!(
        problems.is_empty(),
        "trees differ:\n{}",
        problems.join("\n")
    );
}

/// Runs `cmd` with `stdin` as input; returns stdout. Panics with a clear
/// message when the tool is missing.
pub fn run(cmd: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("this test needs `{cmd}` on PATH: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn sha256_hex(data: &[u8]) -> String {
    kiln_graph::Digest::of(data).to_string()
}

/// A scratch area with a `dest` directory and a sibling `outside` directory
/// holding a sentinel file, to check that extraction never leaves `dest`.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("dest")).unwrap();
        fs::create_dir(dir.path().join("outside")).unwrap();
        fs::write(dir.path().join("outside/sentinel"), b"untouched").unwrap();
        Sandbox { dir }
    }

    pub fn dest(&self) -> PathBuf {
        self.dir.path().join("dest")
    }

    pub fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }

    /// Everything in the sandbox except `dest`'s contents.
    pub fn outside_snapshot(&self) -> BTreeMap<String, Meta> {
        let mut snap = snapshot(self.dir.path(), true);
        snap.retain(|path, _| !path.starts_with("dest/"));
        snap.remove("dest");
        snap
    }
}
