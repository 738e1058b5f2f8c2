//! `--chown` and the owner of WORKDIR and inline files: turning a [`Chown`]
//! into a uid and gid, reading names from the `/etc/passwd` and `/etc/group`
//! of the filesystem being built, as BuildKit does.
//!
//! BuildKit's rules (`solver/llbsolver/ops/user_linux.go`):
//! - a user id `N` means uid `N` and gid `N`;
//! - a user name is looked up in `/etc/passwd` (uid and primary gid); a name
//!   that is not there, or a missing file, gives uid 0 and gid 0, not an error;
//! - a group id replaces the gid; a group name is looked up in `/etc/group`
//!   and replaces the gid only when found.
//!
//! The files are parsed as moby/sys/user does: blank lines skipped, fields
//! split at `:`, numbers that do not parse read as 0; `#` starts a comment in
//! `/etc/group` only.

use std::io::Read;

use kiln_graph::{Chown, Principal};
use rustix::fs::{Gid, Mode, OFlags, Uid};
use rustix::io::Errno;

use super::error::FileOpError;
use super::fsys::Root;
use super::resolve::{DestNamespace, resolve};

/// A resolved owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// Resolves `chown` against the `/etc/passwd` and `/etc/group` inside `root`.
pub(crate) fn resolve_owner(root: &Root, chown: &Chown) -> Result<Owner, FileOpError> {
    let mut owner = Owner { uid: 0, gid: 0 };
    match &chown.user {
        Principal::Id(id) => {
            owner.uid = *id;
            owner.gid = *id;
        }
        Principal::Name(name) => {
            if let Some(text) = read_etc_file(root, "/etc/passwd")?
                && let Some((uid, gid)) = find_user(&text, name)
            {
                owner.uid = to_id(uid, "/etc/passwd", name)?;
                owner.gid = to_id(gid, "/etc/passwd", name)?;
            }
        }
    }
    match &chown.group {
        None => {}
        Some(Principal::Id(id)) => owner.gid = *id,
        Some(Principal::Name(name)) => {
            if let Some(text) = read_etc_file(root, "/etc/group")?
                && let Some(gid) = find_group(&text, name)
            {
                owner.gid = to_id(gid, "/etc/group", name)?;
            }
        }
    }
    Ok(owner)
}

/// The ids to hand to `chown`: the all-ones id (what `--chown=-1` gives) means
/// "leave unchanged" to the kernel, which rustix says with `None`.
pub(crate) fn chown_ids(uid: u32, gid: u32) -> (Option<Uid>, Option<Gid>) {
    (
        (uid != u32::MAX).then(|| Uid::from_raw(uid)),
        (gid != u32::MAX).then(|| Gid::from_raw(gid)),
    )
}

fn to_id(value: i64, file: &str, name: &str) -> Result<u32, FileOpError> {
    u32::try_from(value).map_err(|_| FileOpError::InvalidIdentity {
        file: file.to_string(),
        name: name.to_string(),
        value,
    })
}

/// The bytes of `path` inside `root` (symlinks resolved within it), or `None`
/// when it does not exist.
fn read_etc_file(root: &Root, path: &str) -> Result<Option<Vec<u8>>, FileOpError> {
    let io_err = |source: std::io::Error| FileOpError::Io {
        op: "read",
        path: path.to_string(),
        source,
    };
    let rel = resolve(&DestNamespace(root), path.as_bytes(), true)?;
    let fd = match root.open_beneath(
        &rel,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(io_err(e.into())),
    };
    let mut text = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut text)
        .map_err(io_err)?;
    Ok(Some(text))
}

/// Lines as Go's line readers give them: split at `\n`, a trailing `\r`
/// dropped, surrounding white space trimmed.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n').map(|line| line.trim_ascii())
}

/// Go's `strconv.Atoi`, with errors read as 0.
fn atoi(field: &[u8]) -> i64 {
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0)
}

/// The uid and gid of the first `/etc/passwd` entry named `name`.
fn find_user(text: &[u8], name: &str) -> Option<(i64, i64)> {
    lines(text).filter(|l| !l.is_empty()).find_map(|line| {
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        (fields.first() == Some(&name.as_bytes())).then(|| {
            let uid = fields.get(2).map_or(0, |f| atoi(f));
            let gid = fields.get(3).map_or(0, |f| atoi(f));
            (uid, gid)
        })
    })
}

/// The gid of the first `/etc/group` entry named `name`.
fn find_group(text: &[u8], name: &str) -> Option<i64> {
    lines(text)
        .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
        .find_map(|line| {
            let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
            (fields.first() == Some(&name.as_bytes())).then(|| fields.get(2).map_or(0, |f| atoi(f)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\r\n\n  app:x:1000:1001::/home/app:/bin/sh  \nbroken:x:abc\n#c:x:7:7\n";
    const GROUP: &[u8] = b"root:x:0:\n# staff:x:50:\nstaff:x:51:app\nweird:x:+12:\n";

    #[test]
    fn passwd_lookup_follows_moby_parsing() {
        assert_eq!(find_user(PASSWD, "root"), Some((0, 0)));
        assert_eq!(find_user(PASSWD, "app"), Some((1000, 1001)));
        assert_eq!(find_user(PASSWD, "broken"), Some((0, 0)));
        // passwd has no comments: "#c" is a user name.
        assert_eq!(find_user(PASSWD, "#c"), Some((7, 7)));
        assert_eq!(find_user(PASSWD, "nobody"), None);
    }

    #[test]
    fn group_lookup_skips_comments() {
        assert_eq!(find_group(GROUP, "staff"), Some(51));
        assert_eq!(find_group(GROUP, "weird"), Some(12));
        assert_eq!(find_group(GROUP, "# staff"), None);
        assert_eq!(find_group(GROUP, "wheel"), None);
    }
}
