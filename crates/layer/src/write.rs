//! The layer writer: an overlay upper dir in, an uncompressed OCI layer tar out,
//! the same bytes every time for the same tree.
//!
//! Entry order: depth-first, each directory immediately followed by its
//! contents, siblings ordered by the bytes of their name as written in the tar
//! (a whiteout for `x` sorts as `.wh.x`; an opaque marker comes right after its
//! directory). This is the order of Go's `filepath.Walk`, which containerd's
//! writer follows, and of GNU `tar --sort=name`: `a/`, `a/b`, `a-b`.
//!
//! What goes into the tar, entry by entry:
//!
//! - directories (`name/`), regular files, symlinks, fifos, character and block
//!   devices, with mode (including setuid, setgid, sticky), numeric uid/gid
//!   (user and group names empty), mtime in whole seconds, optionally clamped to
//!   [`LayerOptions::source_date_epoch`]; no atime or ctime;
//! - xattrs as `SCHILY.xattr.<name>` PAX records, except `trusted.overlay.*` and
//!   `security.selinux`;
//! - an overlay whiteout (char device 0/0 `name`) becomes an empty regular file
//!   `.wh.<name>`; an opaque directory (xattr `trusted.overlay.opaque=y`) is its
//!   directory entry followed by an empty `<dir>/.wh..wh..opq`. Both carry mode
//!   0, uid/gid 0 and mtime 0, as containerd writes whiteouts;
//! - a file whose inode appears again later in the walk is written once; the
//!   later paths are hard-link entries naming the first path;
//! - sockets are skipped; the root directory itself has no entry.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use kiln_graph::Digest;

use crate::error::{Error, Result};
use crate::hash::HashWriter;
use crate::header::{self, EntryHeader};
use crate::walk::{self, Node, NodeKind, OPAQUE_MARKER};

/// Media type of an uncompressed OCI layer.
pub const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// How to write a layer tar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerOptions {
    /// `SOURCE_DATE_EPOCH`, in seconds: any mtime later than this is written
    /// as this value. Earlier mtimes are kept.
    pub source_date_epoch: Option<i64>,
}

/// What a written layer is: its digests, sizes and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerStats {
    /// sha256 of the uncompressed tar (the image config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// sha256 of the bytes written (the manifest's layer digest); equal to
    /// `diff_id` when uncompressed.
    pub digest: Digest,
    /// Number of bytes written.
    pub size: u64,
    /// Size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// The layer's OCI media type.
    pub media_type: &'static str,
    /// Number of entries in the tar (PAX headers not counted).
    pub entries: u64,
}

/// Writes the overlay upper dir `dir` as an uncompressed OCI layer tar to `out`.
///
/// The format (order, headers, whiteouts, hard links, xattrs) is described in
/// the crate docs under "Layer tar format". `out` receives large writes; it is not
/// flushed beyond what the tar needs.
pub fn write_layer<W: Write>(dir: &Path, out: W, opts: &LayerOptions) -> Result<LayerStats> {
    let mut hashed = HashWriter::new(out);
    let entries = write_tar(dir, &mut hashed, opts)?;
    let (_, digest, size) = hashed.finish().map_err(Error::Write)?;
    Ok(LayerStats {
        diff_id: digest.clone(),
        digest,
        size,
        uncompressed_size: size,
        media_type: MEDIA_TYPE_TAR,
        entries,
    })
}

/// Size of the copy buffer and of the writes handed to `out`.
const CHUNK: usize = 1 << 20;

/// Writes the tar for `dir` to `out`; returns the number of entries.
pub(crate) fn write_tar<W: Write>(dir: &Path, out: &mut W, opts: &LayerOptions) -> Result<u64> {
    let nodes = walk::scan(dir)?;
    let mut writer = TarWriter {
        out: BufWriter::with_capacity(CHUNK, out),
        header: Vec::with_capacity(3 * header::BLOCK),
        copy_buf: vec![0; CHUNK],
        entries: 0,
    };
    if walk::is_opaque(dir)? {
        writer.whiteout(OPAQUE_MARKER.to_vec())?;
    }
    for node in &nodes {
        writer.node(dir, node, &nodes, opts)?;
    }
    writer
        .out
        .write_all(&header::END_OF_ARCHIVE)
        .map_err(Error::Write)?;
    writer
        .out
        .into_inner()
        .map_err(|e| Error::Write(e.into_error()))?;
    Ok(writer.entries)
}

struct TarWriter<W: Write> {
    out: BufWriter<W>,
    header: Vec<u8>,
    copy_buf: Vec<u8>,
    entries: u64,
}

impl<W: Write> TarWriter<W> {
    fn node(
        &mut self,
        root: &Path,
        node: &Node,
        nodes: &[Node],
        opts: &LayerOptions,
    ) -> Result<()> {
        let name = node.tar_name();
        if node.kind == NodeKind::Whiteout {
            return self.whiteout(name);
        }
        let mtime = match opts.source_date_epoch {
            Some(epoch) if node.mtime > epoch => epoch,
            _ => node.mtime,
        };
        let mut h = EntryHeader {
            name: &name,
            typeflag: b'0',
            mode: node.mode,
            uid: node.uid.into(),
            gid: node.gid.into(),
            size: 0,
            mtime,
            linkname: b"",
            dev_major: 0,
            dev_minor: 0,
            xattrs: &node.xattrs,
        };
        let first = node.hardlink_to.and_then(|i| nodes.get(i));
        match (&node.kind, first) {
            (_, Some(first)) => {
                h.typeflag = b'1';
                h.linkname = &first.path;
            }
            (NodeKind::Dir { .. }, None) => h.typeflag = b'5',
            (NodeKind::File { size }, None) => h.size = *size,
            (NodeKind::Symlink { target }, None) => {
                h.typeflag = b'2';
                h.linkname = target;
            }
            (NodeKind::Fifo, None) => h.typeflag = b'6',
            (NodeKind::CharDevice { major, minor }, None) => {
                h.typeflag = b'3';
                (h.dev_major, h.dev_minor) = (*major, *minor);
            }
            (NodeKind::BlockDevice { major, minor }, None) => {
                h.typeflag = b'4';
                (h.dev_major, h.dev_minor) = (*major, *minor);
            }
            (NodeKind::Whiteout, None) => unreachable!("handled above"),
        }
        self.header.clear();
        header::encode(&h, &mut self.header).map_err(|reason| Error::Unrepresentable {
            path: node.full_path(root),
            reason,
        })?;
        self.out.write_all(&self.header).map_err(Error::Write)?;
        self.entries += 1;

        if h.typeflag == b'0' && h.size > 0 {
            self.copy_file(&node.full_path(root), h.size)?;
            self.out
                .write_all(header::padding(h.size))
                .map_err(Error::Write)?;
        }
        if matches!(node.kind, NodeKind::Dir { opaque: true }) {
            self.whiteout([&name[..], OPAQUE_MARKER].concat())?;
        }
        Ok(())
    }

    /// An empty regular file with everything zero but its name.
    fn whiteout(&mut self, name: Vec<u8>) -> Result<()> {
        let h = EntryHeader {
            name: &name,
            typeflag: b'0',
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            linkname: b"",
            dev_major: 0,
            dev_minor: 0,
            xattrs: &[],
        };
        self.header.clear();
        header::encode(&h, &mut self.header).map_err(|reason| Error::Unrepresentable {
            path: String::from_utf8_lossy(&name).into_owned().into(),
            reason,
        })?;
        self.out.write_all(&self.header).map_err(Error::Write)?;
        self.entries += 1;
        Ok(())
    }

    /// Copies exactly `size` bytes of the file at `path`.
    fn copy_file(&mut self, path: &Path, size: u64) -> Result<()> {
        let read_err = |source: io::Error| Error::ReadTree {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::options()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .map_err(read_err)?;
        let mut remaining = size;
        while remaining > 0 {
            let want = remaining.min(self.copy_buf.len() as u64) as usize;
            let n = match file.read(&mut self.copy_buf[..want]) {
                Ok(0) => {
                    return Err(Error::FileChanged {
                        path: path.to_path_buf(),
                        expected: size,
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e)),
            };
            self.out
                .write_all(&self.copy_buf[..n])
                .map_err(Error::Write)?;
            remaining -= n as u64;
        }
        Ok(())
    }
}
