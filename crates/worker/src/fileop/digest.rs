//! The content digest of what a copy selects: the cache key of a COPY.
//!
//! It covers, for every match of the source path in order, the matched path
//! and, for every selected entry below it, its path relative to the match,
//! whether the action's patterns select it, its type, mode, ownership (as
//! read), symlink target, device number, xattrs, file content (through a
//! [`FileHasher`], so a stat cache can skip re-reading unchanged files) and
//! which earlier entry it is a hard link of. Times, inode numbers and where
//! the source lives are left out: touching a file keeps the digest, any
//! change that alters what the copy writes changes it.
//!
//! The encoding is a sequence of length-prefixed fields, so no two different
//! selections can produce the same byte stream.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use kiln_graph::{CopyAction, Digest};
use sha2::{Digest as _, Sha256};

use super::error::FileOpError;
use super::fsys::Kind;
use super::source::{Content, Node, Source, SourceTree, select};

/// What a [`FileHasher`] is told about a regular file: enough to key a stat
/// cache (a file whose size, times and inode are unchanged has unchanged
/// content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStat {
    /// Device of the file system.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time: seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// Status change time: seconds and nanoseconds.
    pub ctime: (i64, i64),
}

/// Content hashing of regular files, so callers can plug in a stat cache.
pub trait FileHasher {
    /// The sha256 digest of the content of the file at `abs_path` (which is
    /// `rel_path` below the source root), described by `stat`.
    fn file_digest(
        &mut self,
        rel_path: &Path,
        abs_path: &Path,
        stat: &FileStat,
    ) -> io::Result<Digest>;
}

/// A [`FileHasher`] that reads and hashes every file.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainHasher;

impl FileHasher for PlainHasher {
    fn file_digest(&mut self, _rel: &Path, abs_path: &Path, stat: &FileStat) -> io::Result<Digest> {
        let mut file = File::options()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(abs_path)?;
        let mut hasher = Sha256::new();
        // Sized to the file: zeroing 256 KiB for each small file costs more
        // than hashing it.
        let len = usize::try_from(stat.size.saturating_add(1))
            .unwrap_or(usize::MAX)
            .clamp(4096, 256 * 1024);
        let mut buf = vec![0u8; len];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Digest::from_sha256(hasher.finalize().into()))
    }
}

/// The content digest of what `action` selects from `source`: the selected
/// relative paths, types, modes, ownership (as read), symlink targets, file
/// contents and hard-link structure, never times or inode numbers. Two sources
/// that would copy the same bytes give the same digest; renaming, adding or
/// removing a selected file changes it; `touch` does not.
///
/// Fails as the copy would on a missing source (`"/missing.txt": not
/// found`).
pub fn selection_digest(
    action: &CopyAction,
    source: &SourceTree<'_>,
    hasher: &mut dyn FileHasher,
) -> Result<Digest, FileOpError> {
    let source = Source::open(source)?;
    let selection = select(&source, action)?;
    let mut out = Encoder(Sha256::new());
    out.field(b"kiln.copy-selection.v1");
    for m in &selection.matches {
        out.field(&m.src);
        let node = match &m.content {
            Content::Tree(node) => {
                out.field(b"tree");
                node
            }
            Content::Archive(node) => {
                out.field(b"archive");
                node
            }
        };
        let mut walk = Walk {
            source: &source,
            hasher: &mut *hasher,
            out: &mut out,
            links: HashMap::new(),
            index: 0,
        };
        walk.node(node, &m.rel, Path::new(""))?;
    }
    out.field(b"end");
    Ok(Digest::from_sha256(out.0.finalize().into()))
}

struct Encoder(Sha256);

impl Encoder {
    fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn number(&mut self, n: u64) {
        self.field(&n.to_le_bytes());
    }
}

struct Walk<'a> {
    source: &'a Source,
    hasher: &'a mut dyn FileHasher,
    out: &'a mut Encoder,
    /// (dev, ino) of hard-linked files → index of the first entry.
    links: HashMap<(u64, u64), u64>,
    index: u64,
}

impl Walk<'_> {
    fn node(&mut self, node: &Node, src_rel: &Path, path: &Path) -> Result<(), FileOpError> {
        let meta = &node.meta;
        self.out.field(path.as_os_str().as_bytes());
        self.out
            .field(&[u8::from(node.included), meta.kind.letter()]);
        self.out.number(u64::from(meta.mode));
        self.out.number(u64::from(meta.uid));
        self.out.number(u64::from(meta.gid));
        self.out.number(node.xattrs.len() as u64);
        for (key, value) in &node.xattrs {
            self.out.field(key);
            self.out.field(value);
        }
        match meta.kind {
            Kind::Symlink => self.out.field(&node.link),
            Kind::CharDevice | Kind::BlockDevice => self.out.number(meta.rdev),
            Kind::File => {
                let first = (meta.nlink > 1)
                    .then(|| self.links.get(&(meta.dev, meta.ino)).copied())
                    .flatten();
                match first {
                    Some(index) => {
                        self.out.field(b"link");
                        self.out.number(index);
                    }
                    None => {
                        if meta.nlink > 1 {
                            self.links.insert((meta.dev, meta.ino), self.index);
                        }
                        let stat = FileStat {
                            dev: meta.dev,
                            ino: meta.ino,
                            size: meta.size,
                            mtime: (meta.mtime.tv_sec, meta.mtime.tv_nsec),
                            ctime: (meta.ctime.tv_sec, meta.ctime.tv_nsec),
                        };
                        let abs = self.source.host_path(src_rel);
                        let digest =
                            self.hasher.file_digest(src_rel, &abs, &stat).map_err(|e| {
                                FileOpError::io("hash", format!("/{}", src_rel.display()), e)
                            })?;
                        self.out.field(b"data");
                        self.out.number(meta.size);
                        self.out.field(digest.hex().as_bytes());
                    }
                }
            }
            _ => {}
        }
        self.index += 1;
        for child in &node.children {
            let child_src: PathBuf = src_rel.join(&child.name);
            self.node(child, &child_src, &path.join(&child.name))?;
        }
        if !node.children.is_empty() || meta.is_dir() {
            self.out.field(b"/");
        }
        Ok(())
    }
}
