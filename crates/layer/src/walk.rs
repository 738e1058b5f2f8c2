//! Reads an overlay upper dir into the ordered list of [`Node`]s a layer is made
//! of. The layer writer and the tree digest both consume this list, so they agree
//! on order, on what counts as a whiteout and on which xattrs are content.
//!
//! Order: depth-first, a directory immediately followed by its contents; siblings
//! are ordered by the bytes of their name *as it appears in the tar* (a whiteout
//! for `x` sorts as `.wh.x`). This is what Go's `filepath.Walk` (used by
//! containerd's archive writer) and GNU `tar --sort=name` produce, so `a/b` comes
//! before `a-b` (the directory `a` is listed with its contents first).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::xattr;

/// The xattr that marks an overlay directory as opaque (value `y`).
pub(crate) const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";
/// The prefix of OCI whiteout file names.
pub(crate) const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The OCI opaque-directory marker file name.
pub(crate) const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// What kind of file a [`Node`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Dir {
        opaque: bool,
    },
    File {
        size: u64,
    },
    Symlink {
        target: Vec<u8>,
    },
    Fifo,
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    /// An overlay whiteout: a character device 0/0.
    Whiteout,
}

/// One file of the layer directory.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Path relative to the layer root, `/`-separated, no trailing slash.
    pub path: Vec<u8>,
    pub kind: NodeKind,
    /// Permission bits with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Modification time in whole seconds since the epoch.
    pub mtime: i64,
    /// Inode number and exact times: what says a file is still the one a caller
    /// knows the content of (see `tree::KnownContent`).
    pub ino: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    /// Extended attributes that are content, sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// For the second and later paths of a hard-linked inode: the index of the
    /// first node (in walk order) with the same inode.
    pub hardlink_to: Option<usize>,
}

impl Node {
    /// The name under which the node is stored in a tar: whiteouts become
    /// `.wh.<name>`, directories end in `/`.
    pub(crate) fn tar_name(&self) -> Vec<u8> {
        match self.kind {
            NodeKind::Whiteout => {
                let (parent, base) = split_last(&self.path);
                let mut name = Vec::with_capacity(self.path.len() + WHITEOUT_PREFIX.len());
                if !parent.is_empty() {
                    name.extend_from_slice(parent);
                    name.push(b'/');
                }
                name.extend_from_slice(WHITEOUT_PREFIX);
                name.extend_from_slice(base);
                name
            }
            NodeKind::Dir { .. } => {
                let mut name = self.path.clone();
                name.push(b'/');
                name
            }
            _ => self.path.clone(),
        }
    }

    /// The node's absolute path under `root`.
    pub(crate) fn full_path(&self, root: &Path) -> PathBuf {
        root.join(OsStr::from_bytes(&self.path))
    }
}

/// Splits `a/b/c` into (`a/b`, `c`), and `c` into (``, `c`).
pub(crate) fn split_last(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// Whether an xattr is part of a layer's content. Overlay's own bookkeeping
/// (`trusted.overlay.*`; opacity is carried separately) and SELinux labels (a
/// property of the host that ran the step, not of the image) are not.
pub(crate) fn is_content_xattr(name: &[u8]) -> bool {
    !name.starts_with(b"trusted.overlay.") && name != b"security.selinux"
}

/// Reads the layer directory at `root` into nodes, in layer order (see the
/// module docs). The root itself is not a node. Sockets are skipped, as
/// containerd's archive writer does.
pub(crate) fn scan(root: &Path) -> Result<Vec<Node>> {
    let meta = fs::metadata(root).map_err(|source| read_err(root, source))?;
    if !meta.is_dir() {
        return Err(read_err(
            root,
            io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        ));
    }
    let mut scanner = Scanner {
        root,
        nodes: Vec::new(),
        inodes: HashMap::new(),
    };
    scanner.scan_dir(&[])?;
    Ok(scanner.nodes)
}

/// Whether the directory at `path` carries the overlay opaque marker.
pub(crate) fn is_opaque(path: &Path) -> Result<bool> {
    let value = xattr::get(path, OPAQUE_XATTR).map_err(|source| read_err(path, source))?;
    Ok(value.as_deref() == Some(b"y"))
}

struct Scanner<'a> {
    root: &'a Path,
    nodes: Vec<Node>,
    /// (dev, ino) of multiply-linked inodes → index of their first node.
    inodes: HashMap<(u64, u64), usize>,
}

struct Child {
    sort_key: Vec<u8>,
    whiteout: bool,
    name: Vec<u8>,
    meta: Metadata,
}

impl Scanner<'_> {
    fn scan_dir(&mut self, rel: &[u8]) -> Result<()> {
        let dir_path = self.root.join(OsStr::from_bytes(rel));
        let entries = fs::read_dir(&dir_path).map_err(|source| read_err(&dir_path, source))?;
        let mut children = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| read_err(&dir_path, source))?;
            // DirEntry::metadata does not follow symlinks.
            let meta = entry
                .metadata()
                .map_err(|source| read_err(&entry.path(), source))?;
            let file_type = meta.file_type();
            if file_type.is_socket() {
                continue;
            }
            let name = entry.file_name().as_bytes().to_vec();
            let whiteout = file_type.is_char_device() && meta.rdev() == 0;
            let sort_key = if whiteout {
                [WHITEOUT_PREFIX, &name].concat()
            } else {
                name.clone()
            };
            children.push(Child {
                sort_key,
                whiteout,
                name,
                meta,
            });
        }
        // A whiteout for `x` and a real file named `.wh.x` share a tar name;
        // put the whiteout first so the order stays total.
        children.sort_by(|a, b| {
            a.sort_key
                .cmp(&b.sort_key)
                .then_with(|| b.whiteout.cmp(&a.whiteout))
        });

        for child in children {
            let path = if rel.is_empty() {
                child.name
            } else {
                [rel, b"/", &child.name].concat()
            };
            let is_dir = child.meta.is_dir();
            let node = self.node(path, &child.meta, child.whiteout)?;
            let node_path = if is_dir {
                Some(node.path.clone())
            } else {
                None
            };
            self.nodes.push(node);
            if let Some(node_path) = node_path {
                self.scan_dir(&node_path)?;
            }
        }
        Ok(())
    }

    fn node(&mut self, path: Vec<u8>, meta: &Metadata, whiteout: bool) -> Result<Node> {
        let full = self.root.join(OsStr::from_bytes(&path));
        let file_type = meta.file_type();
        let mut xattrs = Vec::new();
        let mut opaque = false;
        if !whiteout {
            let names = xattr::list(&full).map_err(|source| read_err(&full, source))?;
            for name in names {
                let Some(value) =
                    xattr::get(&full, &name).map_err(|source| read_err(&full, source))?
                else {
                    continue; // removed since it was listed
                };
                if name == OPAQUE_XATTR {
                    opaque = value == b"y";
                }
                if is_content_xattr(&name) {
                    xattrs.push((name, value));
                }
            }
            xattrs.sort();
        }

        let kind = if whiteout {
            NodeKind::Whiteout
        } else if file_type.is_dir() {
            NodeKind::Dir { opaque }
        } else if file_type.is_file() {
            NodeKind::File { size: meta.len() }
        } else if file_type.is_symlink() {
            let target = fs::read_link(&full).map_err(|source| read_err(&full, source))?;
            NodeKind::Symlink {
                target: target.into_os_string().into_encoded_bytes(),
            }
        } else if file_type.is_fifo() {
            NodeKind::Fifo
        } else {
            let dev = meta.rdev();
            let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
            if file_type.is_char_device() {
                NodeKind::CharDevice { major, minor }
            } else {
                NodeKind::BlockDevice { major, minor }
            }
        };

        let hardlink_to = if meta.nlink() > 1 && !file_type.is_dir() && !whiteout {
            let key = (meta.dev(), meta.ino());
            match self.inodes.get(&key) {
                Some(&first) => Some(first),
                None => {
                    self.inodes.insert(key, self.nodes.len());
                    None
                }
            }
        } else {
            None
        };

        Ok(Node {
            path,
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: meta.mtime(),
            ino: meta.ino(),
            mtime_ns: meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
            ctime_ns: meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec(),
            xattrs,
            hardlink_to,
        })
    }
}

fn read_err(path: &Path, source: io::Error) -> Error {
    Error::ReadTree {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_last_separates_parent_and_base() {
        assert_eq!(split_last(b"a/b/c"), (&b"a/b"[..], &b"c"[..]));
        assert_eq!(split_last(b"c"), (&b""[..], &b"c"[..]));
    }

    #[test]
    fn overlay_bookkeeping_and_selinux_labels_are_not_content() {
        assert!(!is_content_xattr(b"trusted.overlay.opaque"));
        assert!(!is_content_xattr(b"trusted.overlay.redirect"));
        assert!(!is_content_xattr(b"security.selinux"));
        assert!(is_content_xattr(b"security.capability"));
        assert!(is_content_xattr(b"user.comment"));
        assert!(is_content_xattr(b"trusted.other"));
    }

    #[test]
    fn walk_order_lists_a_directory_with_its_contents_and_sorts_whiteouts_by_tar_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("a")).unwrap();
        fs::write(root.join("a/b"), b"").unwrap();
        fs::write(root.join("a-b"), b"").unwrap();
        fs::write(root.join("Z"), b"").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            root.join("zz"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        let nodes = scan(root).unwrap();
        let names: Vec<String> = nodes
            .iter()
            .map(|n| String::from_utf8(n.tar_name()).unwrap())
            .collect();
        assert_eq!(names, [".wh.zz", "Z", "a/", "a/b", "a-b"]);
    }
}
