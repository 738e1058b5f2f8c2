//! Resolves a step's `USER` (`name`, `uid`, `name:group`, `uid:gid`) against the
//! root filesystem's `/etc/passwd` and `/etc/group`, as runc's user lookup does, with
//! supplementary groups.

use std::path::Path;

use crate::error::WorkerError;
use crate::fsutil::read_in_root;

/// Who a step's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups, the primary one first.
    pub additional_gids: Vec<u32>,
    /// Home directory from `/etc/passwd`.
    pub home: String,
}

fn parse_id(s: &str) -> Option<u32> {
    if s == "root" {
        return Some(0);
    }
    s.parse::<u32>().ok()
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn passwd_entries(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

fn group_entries(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `spec` inside `root`. `uid:gid` needs no files; a name needs the files.
pub fn resolve_user(root: &Path, spec: &str) -> Result<ExecUser, WorkerError> {
    let spec = if spec.is_empty() { "0" } else { spec };
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // The fast path, as BuildKit: numeric user and group.
    if let (Some(u), Some(g)) = (parse_id(user_arg), group_arg.and_then(parse_id)) {
        return Ok(ExecUser {
            uid: u,
            gid: g,
            additional_gids: vec![g],
            home: "/".into(),
        });
    }
    let passwd = read_in_root(root, "/etc/passwd")
        .ok()
        .map(|b| passwd_entries(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    let groups = read_in_root(root, "/etc/group")
        .ok()
        .map(|b| group_entries(&String::from_utf8_lossy(&b)))
        .unwrap_or_default();
    let numeric_user = user_arg.parse::<u32>().ok();
    let found = passwd.iter().find(|p| match numeric_user {
        Some(n) => p.uid == n,
        None => p.name == user_arg,
    });
    let mut user = ExecUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".into(),
    };
    let mut matched_name = None;
    match found {
        Some(p) => {
            user.uid = p.uid;
            user.gid = p.gid;
            user.home = p.home.clone();
            matched_name = Some(p.name.clone());
        }
        None => match numeric_user {
            Some(n) => user.uid = n,
            None => {
                return Err(WorkerError::Failed(format!(
                    "unable to find user {user_arg}: no matching entries in passwd file"
                )));
            }
        },
    }
    match group_arg {
        Some(g) => {
            let numeric = g.parse::<u32>().ok();
            match groups.iter().find(|e| match numeric {
                Some(n) => e.gid == n,
                None => e.name == g,
            }) {
                Some(e) => user.gid = e.gid,
                None => match numeric {
                    Some(n) => user.gid = n,
                    None => {
                        return Err(WorkerError::Failed(format!(
                            "unable to find group {g}: no matching entries in group file"
                        )));
                    }
                },
            }
        }
        None => {
            if let Some(name) = &matched_name {
                user.additional_gids = groups
                    .iter()
                    .filter(|g| g.members.iter().any(|m| m == name))
                    .map(|g| g.gid)
                    .collect();
            }
        }
    }
    // As BuildKit: the primary group is always among the supplementary ones.
    if !user.additional_gids.contains(&user.gid) {
        user.additional_gids.insert(0, user.gid);
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\napp:x:1001:\nwheel:x:10:app,other\ndocker:x:999:app\nnogroup:x:65534:\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn names_ids_and_groups() {
        let r = root();
        let u = resolve_user(r.path(), "app").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1001));
        assert_eq!(u.additional_gids, vec![1001, 10, 999]);
        assert_eq!(u.home, "/home/app");
        let u = resolve_user(r.path(), "app:wheel").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        assert_eq!(u.additional_gids, vec![10]);
        let u = resolve_user(r.path(), "1000").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 1001));
        let u = resolve_user(r.path(), "4242").unwrap();
        assert_eq!((u.uid, u.gid), (4242, 0));
        let u = resolve_user(r.path(), "5:6").unwrap();
        assert_eq!((u.uid, u.gid), (5, 6));
        let u = resolve_user(r.path(), "").unwrap();
        assert_eq!((u.uid, u.gid), (0, 0));
        let u = resolve_user(r.path(), "nobody:nogroup").unwrap();
        assert_eq!((u.uid, u.gid), (65534, 65534));
        assert!(resolve_user(r.path(), "ghost").is_err());
        assert!(resolve_user(r.path(), "app:ghosts").is_err());
    }
}
