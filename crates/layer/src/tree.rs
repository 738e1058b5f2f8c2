//! [`tree_digest`]: a canonical content hash of a layer directory, so that two
//! steps that produced the same layer can be recognised without writing tars
//! (early cutoff).
//!
//! It covers exactly what the layer tar records except timestamps: paths,
//! types, modes (with setuid/setgid/sticky), uid/gid, content xattrs, file
//! contents, symlink targets, device numbers, whiteouts, opaque directories
//! and which paths are hard links of which. It ignores mtimes, atimes, ctimes,
//! inode numbers, `trusted.overlay.*` xattrs other than opacity, and SELinux
//! labels. File contents are hashed in parallel, except those a caller knows
//! already ([`tree_digest_with`]).
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

use std::collections::HashMap;
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
    tree_digest_with(dir, &HashMap::new())
}

/// The content digest of a file that a caller knows without reading it (it wrote
/// the file from content whose digest it had), with what identifies the file as
/// it was then: any later change of the file changes its ctime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownContent {
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds since the epoch.
    pub ctime_ns: i64,
    /// The sha256 of the content.
    pub digest: Digest,
}

/// [`tree_digest`], taking the contents of the files in `known` (by path relative
/// to `dir`, `/`-separated, as the layer names them) from there instead of reading
/// them, when the file's inode, size, mtime and ctime are still the ones given.
/// A stale entry (the file changed since) only costs a read; the caller vouches
/// that each `digest` is the content's.
pub fn tree_digest_with(dir: &Path, known: &HashMap<Vec<u8>, KnownContent>) -> Result<Digest> {
    let nodes = walk::scan(dir)?;
    let root_opaque = walk::is_opaque(dir)?;

    let contents: Vec<Option<[u8; 32]>> = nodes
        .par_iter()
        .map(|node| match node.kind {
            NodeKind::File { size } if node.hardlink_to.is_none() => {
                if let Some(k) = known.get(&node.path)
                    && (k.ino, k.size, k.mtime_ns, k.ctime_ns)
                        == (node.ino, size, node.mtime_ns, node.ctime_ns)
                    && let Some(raw) = raw_sha256(&k.digest)
                {
                    return Ok(Some(raw));
                }
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

/// The 32 bytes of a digest (always 64 hex digits).
fn raw_sha256(d: &Digest) -> Option<[u8; 32]> {
    let mut raw = [0u8; 32];
    hex::decode_to_slice(d.hex(), &mut raw).ok()?;
    Some(raw)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn known(path: &Path, digest: Digest) -> KnownContent {
        let m = std::fs::symlink_metadata(path).unwrap();
        KnownContent {
            ino: m.ino(),
            size: m.size(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            digest,
        }
    }

    #[test]
    fn known_contents_are_used_only_while_the_file_is_unchanged() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        std::fs::create_dir(dir.join("d")).unwrap();
        std::fs::write(dir.join("d/f"), "content").unwrap();
        std::fs::write(dir.join("g"), "other").unwrap();
        let plain = tree_digest(dir).unwrap();

        let mut map = HashMap::new();
        map.insert(
            b"d/f".to_vec(),
            known(&dir.join("d/f"), Digest::of(b"content")),
        );
        assert_eq!(tree_digest_with(dir, &map).unwrap(), plain);

        // The entry is what the digest is made of: a wrong one shows.
        map.insert(b"d/f".to_vec(), known(&dir.join("d/f"), Digest::of(b"lie")));
        assert_ne!(tree_digest_with(dir, &map).unwrap(), plain);

        // Once the file changes (here only its mode, so its ctime), it is read.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::set_permissions(dir.join("d/f"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(dir.join("d/f"), std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(tree_digest_with(dir, &map).unwrap(), plain);
    }
}
