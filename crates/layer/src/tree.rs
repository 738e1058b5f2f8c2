//! [`tree_digest`]: a canonical content hash of a layer directory, so that two
//! steps that produced the same layer can be recognised without writing tars
//! (early cutoff).
//!
//! It covers exactly what the layer tar records except timestamps: paths,
//! types, modes (with setuid/setgid/sticky), uid/gid, content xattrs, file
//! contents, symlink targets, device numbers, whiteouts, opaque directories
//! and which paths are hard links of which. It ignores mtimes, atimes, ctimes,
//! inode numbers, `trusted.overlay.*` xattrs other than opacity, and SELinux
//! labels. File contents are hashed in parallel.
//!
//! The digest is sha256 over this serialization (all integers big-endian,
//! `bytes` = u32 length then the bytes), one record per node in layer order:
//!
//! ```text
//! "kiln-tree-v1\n" u8(root opaque)
//! per node: bytes(path) u8(kind)
//!   kind 'w' (whiteout): nothing more
//!   otherwise: u32(mode) u32(uid) u32(gid) u32(#xattrs) {bytes(name) bytes(value)}
//!     'h' (hard link): bytes(path of the first link)
//!     'd': u8(opaque)   'f': u64(size) [32](sha256 of contents)
//!     'l': bytes(target)   'c' / 'b': u32(major) u32(minor)   'p': nothing
//! ```

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use kiln_graph::Digest;
use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::walk::{self, NodeKind};

/// The canonical content digest of the overlay upper dir `dir` (see the module
/// docs for what it covers). Two directories have the same digest exactly when
/// [`write_layer`](crate::write_layer) would write the same tar for them,
/// timestamps aside.
pub fn tree_digest(dir: &Path) -> Result<Digest> {
    let nodes = walk::scan(dir)?;
    let root_opaque = walk::is_opaque(dir)?;

    let contents: Vec<Option<[u8; 32]>> = nodes
        .par_iter()
        .map(|node| match node.kind {
            NodeKind::File { size } if node.hardlink_to.is_none() => {
                hash_file(&node.full_path(dir), size).map(Some)
            }
            _ => Ok(None),
        })
        .collect::<Result<_>>()?;

    let mut h = Sha256::new();
    h.update(b"kiln-tree-v1\n");
    h.update([u8::from(root_opaque)]);
    for (node, content) in nodes.iter().zip(&contents) {
        bytes(&mut h, &node.path);
        if node.kind == NodeKind::Whiteout {
            h.update(b"w");
            continue;
        }
        let first = node.hardlink_to.and_then(|i| nodes.get(i));
        let kind = match (&node.kind, first) {
            (_, Some(_)) => b'h',
            (NodeKind::Dir { .. }, None) => b'd',
            (NodeKind::File { .. }, None) => b'f',
            (NodeKind::Symlink { .. }, None) => b'l',
            (NodeKind::Fifo, None) => b'p',
            (NodeKind::CharDevice { .. }, None) => b'c',
            (NodeKind::BlockDevice { .. }, None) => b'b',
            (NodeKind::Whiteout, None) => unreachable!("handled above"),
        };
        h.update([kind]);
        h.update(node.mode.to_be_bytes());
        h.update(node.uid.to_be_bytes());
        h.update(node.gid.to_be_bytes());
        h.update((node.xattrs.len() as u32).to_be_bytes());
        for (name, value) in &node.xattrs {
            bytes(&mut h, name);
            bytes(&mut h, value);
        }
        match (&node.kind, first) {
            (_, Some(first)) => bytes(&mut h, &first.path),
            (NodeKind::Dir { opaque }, None) => h.update([u8::from(*opaque)]),
            (NodeKind::File { size }, None) => {
                h.update(size.to_be_bytes());
                h.update(content.unwrap_or_default());
            }
            (NodeKind::Symlink { target }, None) => bytes(&mut h, target),
            (
                NodeKind::CharDevice { major, minor } | NodeKind::BlockDevice { major, minor },
                None,
            ) => {
                h.update(major.to_be_bytes());
                h.update(minor.to_be_bytes());
            }
            (NodeKind::Fifo | NodeKind::Whiteout, None) => {}
        }
    }
    Ok(Digest::from_sha256(h.finalize().into()))
}

fn bytes(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u32).to_be_bytes());
    h.update(b);
}

/// A read buffer for a file of `size` bytes: the whole file up to 256 KiB.
fn read_buffer_len(size: u64) -> usize {
    usize::try_from(size.saturating_add(1))
        .unwrap_or(usize::MAX)
        .clamp(4096, 256 * 1024)
}

/// sha256 of exactly `size` bytes of the file at `path`.
fn hash_file(path: &Path, size: u64) -> Result<[u8; 32]> {
    let read_err = |source: io::Error| Error::ReadTree {
        path: path.to_path_buf(),
        source,
    };
    let file = File::options()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(read_err)?;
    let mut h = Sha256::new();
    // Sized to the file: most files are small, and zeroing a big buffer for
    // each would cost more than hashing them.
    let mut buf = vec![0u8; read_buffer_len(size)];
    let mut file = file.take(size);
    let mut read = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        h.update(&buf[..n]);
        read += n as u64;
    }
    if read != size {
        return Err(Error::FileChanged {
            path: path.to_path_buf(),
            expected: size,
        });
    }
    Ok(h.finalize().into())
}
