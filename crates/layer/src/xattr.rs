//! Extended attributes of a path, without following a final symlink: list and
//! get with size queries that survive concurrent changes, and "not supported"
//! treated as "none".

use std::io;
use std::path::Path;

use rustix::io::Errno;

/// The names of the xattrs of `path` (not following a final symlink).
pub(crate) fn list(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    loop {
        let size = match rustix::fs::llistxattr_query(path) {
            Ok(size) => size,
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size];
        match rustix::fs::llistxattr(path, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf
                    .split(|&b| b == 0)
                    .filter(|name| !name.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect());
            }
            // The list grew between the two calls: ask again.
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The value of xattr `name` of `path`, or `None` if it is not set.
pub(crate) fn get(path: &Path, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    loop {
        let size = match rustix::fs::lgetxattr_query(path, name) {
            Ok(size) => size,
            Err(Errno::NODATA | Errno::NOTSUP) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if size == 0 {
            return Ok(Some(Vec::new()));
        }
        let mut buf = vec![0u8; size];
        match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::RANGE) => continue,
            Err(Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_and_get_round_trip_binary_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let value = b"a\nb\0c=d";
        rustix::fs::lsetxattr(&file, "user.binary", value, rustix::fs::XattrFlags::empty())
            .unwrap();
        assert_eq!(list(&file).unwrap(), vec![b"user.binary".to_vec()]);
        assert_eq!(get(&file, b"user.binary").unwrap().unwrap(), value);
        assert_eq!(get(&file, b"user.missing").unwrap(), None);
    }
}
