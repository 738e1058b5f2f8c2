//! Paths inside a root filesystem, resolved as if the root were `/`: a symlink in the
//! image (even an absolute one, or one full of `..`) never leads outside it. Uses
//! `openat2(RESOLVE_IN_ROOT)`.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags, openat2};

/// Opens `path` (absolute or relative, taken as relative to `root`) inside `root`.
pub fn open_in_root(root: &Path, path: &str, flags: OFlags) -> std::io::Result<OwnedFd> {
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    Ok(openat2(
        &dir,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// Reads a file inside `root`.
pub fn read_in_root(root: &Path, path: &str) -> std::io::Result<Vec<u8>> {
    let fd = open_in_root(root, path, OFlags::RDONLY)?;
    let mut f = std::fs::File::from(fd);
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

/// Where `path` ends up inside `root` after resolving symlinks within it, as a host
/// path, or `None` when a component does not exist (the prefix that exists is
/// resolved and the rest appended).
pub fn resolve_in_root(root: &Path, path: &str) -> PathBuf {
    let mut resolved = PathBuf::from("/");
    let mut hops = 0;
    let mut pending: Vec<String> = Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .rev()
        .collect();
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            if resolved.as_os_str().is_empty() {
                resolved.push("/");
            }
            continue;
        }
        let candidate = resolved.join(&part);
        let host = root.join(candidate.strip_prefix("/").unwrap_or(&candidate));
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() && hops < 40 => {
                hops += 1;
                let target = std::fs::read_link(&host).unwrap_or_default();
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                let mut more: Vec<String> = target
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                        Component::ParentDir => Some("..".into()),
                        _ => None,
                    })
                    .collect();
                more.reverse();
                pending.extend(more);
            }
            _ => resolved = candidate,
        }
    }
    root.join(resolved.strip_prefix("/").unwrap_or(&resolved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("real/etc")).unwrap();
        std::fs::write(root.join("real/etc/passwd"), "inside").unwrap();
        symlink("/real/etc", root.join("etc")).unwrap();
        symlink("../../../../..", root.join("up")).unwrap();
        std::fs::write(t.path().join("secret"), "outside").unwrap();
        assert_eq!(read_in_root(&root, "/etc/passwd").unwrap(), b"inside");
        assert!(read_in_root(&root, "/up/secret").is_err());
        assert_eq!(
            resolve_in_root(&root, "/etc/passwd"),
            root.join("real/etc/passwd")
        );
        assert_eq!(resolve_in_root(&root, "/up/secret"), root.join("secret"));
        assert_eq!(resolve_in_root(&root, "/a/b"), root.join("a/b"));
    }
}
