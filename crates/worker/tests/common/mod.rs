//! Helpers shared by the integration tests: Dockerfile-shaped actions, a
//! busybox-like base tree, running actions, and a listing of a tree in the
//! conformance suite's normalized form.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use kiln_graph::{
    Chmod, Chown, CopyAction, FileAction, MkdirAction, MkfileAction, Principal, RmAction,
};
use kiln_worker::fileop::{ApplyOptions, FileOpError, SourceTree, apply};
use sha2::{Digest as _, Sha256};

/// `COPY src dest` as the Dockerfile frontend emits it (source input 1).
pub fn copy(src: &str, dest: &str) -> CopyAction {
    CopyAction {
        source: 1,
        src: src.to_string(),
        dest: dest.to_string(),
        owner: None,
        mode: None,
        follow_symlinks: true,
        contents_only: true,
        unpack_archives: false,
        create_dest_path: true,
        allow_wildcard: true,
        allow_empty_wildcard: true,
        include_patterns: Vec::new(),
        exclude_patterns: Vec::new(),
        replace_existing: false,
        timestamp: None,
    }
}

/// `ADD src dest` for a local source.
pub fn add(src: &str, dest: &str) -> CopyAction {
    CopyAction {
        unpack_archives: true,
        ..copy(src, dest)
    }
}

/// The copy of a heredoc: from input `source`, nothing followed or expanded.
pub fn copy_inline(source: usize, name: &str, dest: &str) -> CopyAction {
    CopyAction {
        source,
        follow_symlinks: false,
        contents_only: false,
        allow_wildcard: false,
        allow_empty_wildcard: false,
        ..copy(name, dest)
    }
}

pub fn chown(user: &str, group: Option<&str>) -> Chown {
    let principal = |s: &str| match s.parse::<u32>() {
        Ok(id) => Principal::Id(id),
        Err(_) => Principal::Name(s.to_string()),
    };
    Chown {
        user: principal(user),
        group: group.map(principal),
    }
}

pub fn octal(mode: u32) -> Option<Chmod> {
    Some(Chmod::Octal(mode))
}

pub fn symbolic(expr: &str) -> Option<Chmod> {
    Some(Chmod::Symbolic(expr.to_string()))
}

/// `WORKDIR path` (as USER `user`, if any).
pub fn workdir(path: &str, user: Option<&str>) -> FileAction {
    FileAction::Mkdir(MkdirAction {
        path: path.to_string(),
        mode: 0o755,
        make_parents: true,
        owner: user.map(|u| {
            let (user, group) = match u.split_once(':') {
                Some((user, group)) => (user, Some(group)),
                None => (u, None),
            };
            chown(user, group)
        }),
        timestamp: None,
    })
}

pub fn mkfile(path: &str, mode: u32, data: &str) -> FileAction {
    FileAction::Mkfile(MkfileAction {
        path: path.to_string(),
        mode,
        data: data.to_string(),
        owner: None,
        timestamp: None,
    })
}

pub fn rm(path: &str, allow_not_found: bool, allow_wildcard: bool) -> FileAction {
    FileAction::Rm(RmAction {
        path: path.to_string(),
        allow_not_found,
        allow_wildcard,
    })
}

pub const PASSWD: &str =
    "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
pub const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// A base tree like the busybox testbed image's, without the busybox binary
/// and its links.
pub fn busybox_base(root: &Path) {
    for dir in [
        "bin", "dev", "etc", "proc", "root", "sbin", "sys", "tmp", "usr", "usr/bin", "usr/sbin",
    ] {
        fs::create_dir_all(root.join(dir)).unwrap();
        fs::set_permissions(root.join(dir), fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    write(&root.join("etc/passwd"), PASSWD, 0o644);
    write(&root.join("etc/group"), GROUP, 0o644);
    fs::set_permissions(root, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Writes a file with an exact mode.
pub fn write(path: &Path, content: &str, mode: u32) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn mkdir(path: &Path, mode: u32) {
    fs::create_dir_all(path).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The build context as BuildKit reads it: owned by 0:0.
pub fn context(root: &Path) -> SourceTree<'_> {
    SourceTree {
        root,
        exclude: &[],
        owner: Some((0, 0)),
    }
}

/// Runs `actions` on `rootfs` with input 0 the base and input 1 `context`.
pub fn run(rootfs: &Path, context_dir: &Path, actions: &[FileAction]) -> Result<(), FileOpError> {
    apply(
        rootfs,
        actions,
        &[None, Some(context(context_dir))],
        &ApplyOptions::default(),
    )
}

/// Runs copy actions, as one file op.
pub fn run_copies(
    rootfs: &Path,
    context_dir: &Path,
    copies: Vec<CopyAction>,
) -> Result<(), FileOpError> {
    let actions: Vec<FileAction> = copies.into_iter().map(FileAction::Copy).collect();
    run(rootfs, context_dir, &actions)
}

/// The tree under `root` in the conformance suite's form: path → "type mode
/// uid gid size content". Files sharing an inode are listed as the first of
/// them (in sorted order) plus hardlinks ("h") to it.
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut entries: BTreeMap<String, (fs::Metadata, String)> = BTreeMap::new();
    collect(root, root, &mut entries);
    let mut first_of_inode: HashMap<(u64, u64), String> = HashMap::new();
    let mut out = BTreeMap::new();
    for (path, (meta, content)) in entries {
        let mode = format!("{:04o}", meta.mode() & 0o7777);
        let ft = meta.file_type();
        let line = if ft.is_file() {
            let key = (meta.dev(), meta.ino());
            if meta.nlink() > 1
                && let Some(first) = first_of_inode.get(&key)
            {
                format!("h {mode} {} {} 0 {first}", meta.uid(), meta.gid())
            } else {
                first_of_inode.insert(key, path.clone());
                format!(
                    "f {mode} {} {} {} {content}",
                    meta.uid(),
                    meta.gid(),
                    meta.len()
                )
            }
        } else {
            let kind = if ft.is_dir() {
                "d"
            } else if ft.is_symlink() {
                "l"
            } else {
                use std::os::unix::fs::FileTypeExt;
                if ft.is_char_device() {
                    "c"
                } else if ft.is_block_device() {
                    "b"
                } else if ft.is_fifo() {
                    "p"
                } else {
                    "s"
                }
            };
            format!("{kind} {mode} {} {} 0 {content}", meta.uid(), meta.gid())
        };
        out.insert(path, line);
    }
    out
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, (fs::Metadata, String)>) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let ft = meta.file_type();
        let content = if ft.is_file() {
            sha256_file(&path)
        } else if ft.is_symlink() {
            fs::read_link(&path).unwrap().to_string_lossy().into_owned()
        } else if ft.is_dir() {
            "-".to_string()
        } else {
            let rdev = meta.rdev();
            let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
            use std::os::unix::fs::FileTypeExt;
            if ft.is_char_device() || ft.is_block_device() {
                format!("{major},{minor}")
            } else {
                "-".to_string()
            }
        };
        let is_dir = ft.is_dir();
        out.insert(rel, (meta, content));
        if is_dir {
            collect(root, &path, out);
        }
    }
}

pub fn sha256_file(path: &Path) -> String {
    let mut file = fs::File::open(path).unwrap();
    let mut data = Vec::new();
    file.read_to_end(&mut data).unwrap();
    hex(&Sha256::digest(&data))
}

pub fn sha256(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The line of `path` in `tree(root)`, for assertions.
pub fn line(root: &Path, path: &str) -> Option<String> {
    tree(root).remove(path)
}

/// `lstat` shortcut.
pub fn meta(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap()
}
