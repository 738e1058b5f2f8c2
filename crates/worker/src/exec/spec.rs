//! The OCI runtime spec of a RUN step, built with the `oci-spec` crate: Docker's
//! defaults (mounts, capabilities, masked and read-only kernel paths, namespaces) plus
//! the step's process, user and mounts.

use std::path::{Path, PathBuf};

use kiln_graph::{NetworkMode, SecurityMode};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroupBuilder,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxResourcesBuilder, Mount, MountBuilder,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder, get_default_maskedpaths,
    get_default_mounts, get_default_readonly_paths,
};

use super::user::ExecUser;
use crate::error::WorkerError;

/// The hostname a step sees unless the build sets one, as in BuildKit.
pub const HOSTNAME: &str = "buildkitsandbox";

/// Docker's default capability set.
const DEFAULT_CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// A bind mount into the container.
#[derive(Debug, Clone)]
pub struct BindMount {
    pub source: PathBuf,
    pub target: String,
    pub readonly: bool,
}

/// Everything that goes into a step's spec.
pub struct SpecInput<'a> {
    pub rootfs: &'a Path,
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    pub user: &'a ExecUser,
    pub network: NetworkMode,
    pub security: SecurityMode,
    pub binds: &'a [BindMount],
    /// tmpfs mounts: target and size limit.
    pub tmpfs: &'a [(String, Option<u64>)],
    pub terminal: bool,
    /// The container's hostname.
    pub hostname: &'a str,
}

fn err(e: impl std::fmt::Display) -> WorkerError {
    WorkerError::Failed(format!("building the container spec: {e}"))
}

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

pub fn build_spec(input: &SpecInput<'_>) -> Result<Spec, WorkerError> {
    let insecure = input.security == SecurityMode::Insecure;
    let caps: Vec<Capability> = if insecure {
        all_caps()
    } else {
        DEFAULT_CAPS.to_vec()
    };
    let capset: oci_spec::runtime::Capabilities = caps.into_iter().collect();
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(capset.clone())
        .effective(capset.clone())
        .permitted(capset.clone())
        .inheritable(oci_spec::runtime::Capabilities::new())
        .ambient(oci_spec::runtime::Capabilities::new())
        .build()
        .map_err(err)?;
    let user = UserBuilder::default()
        .uid(input.user.uid)
        .gid(input.user.gid)
        .additional_gids(input.user.additional_gids.clone())
        .build()
        .map_err(err)?;
    let process = ProcessBuilder::default()
        .terminal(input.terminal)
        .args(input.args.to_vec())
        .env(input.env.to_vec())
        .cwd(input.cwd)
        .user(user)
        .capabilities(capabilities)
        .no_new_privileges(!insecure)
        .build()
        .map_err(err)?;

    let mut namespaces = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if input.network == NetworkMode::None {
        namespaces.push(LinuxNamespaceType::Network);
    }
    if cgroup_v2() {
        namespaces.push(LinuxNamespaceType::Cgroup);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let deny_devices = LinuxDeviceCgroupBuilder::default()
        .allow(insecure)
        .access("rwm")
        .build()
        .map_err(err)?;
    let resources = LinuxResourcesBuilder::default()
        .devices(vec![deny_devices])
        .build()
        .map_err(err)?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .resources(resources);
    if !insecure {
        linux = linux
            .masked_paths(get_default_maskedpaths())
            .readonly_paths(get_default_readonly_paths());
    }
    let linux = linux.build().map_err(err)?;

    let mut mounts: Vec<Mount> = get_default_mounts();
    let mut user_mounts: Vec<(String, Mount)> = Vec::new();
    for b in input.binds {
        let mut options = vec!["rbind".to_string()];
        if b.readonly {
            options.push("ro".into());
        }
        user_mounts.push((
            b.target.clone(),
            MountBuilder::default()
                .destination(&b.target)
                .typ("bind")
                .source(&b.source)
                .options(options)
                .build()
                .map_err(err)?,
        ));
    }
    for (target, size) in input.tmpfs {
        let mut options = vec!["nosuid".to_string(), "nodev".into(), "mode=1777".into()];
        if let Some(s) = size {
            options.push(format!("size={s}"));
        }
        user_mounts.push((
            target.clone(),
            MountBuilder::default()
                .destination(target)
                .typ("tmpfs")
                .source("tmpfs")
                .options(options)
                .build()
                .map_err(err)?,
        ));
    }
    // Parents before children: mount in order of depth, keeping the given order otherwise.
    user_mounts.sort_by_key(|(t, _)| t.trim_end_matches('/').matches('/').count());
    mounts.extend(user_mounts.into_iter().map(|(_, m)| m));
    let mounts = dedup_mounts(mounts);

    let root = RootBuilder::default()
        .path(input.rootfs)
        .readonly(false)
        .build()
        .map_err(err)?;
    SpecBuilder::default()
        .version("1.0.2")
        .root(root)
        .hostname(input.hostname)
        .process(process)
        .linux(linux)
        .mounts(mounts)
        .build()
        .map_err(err)
}

/// One mount per destination, as BuildKit's `dedupMounts`: a later mount (the
/// step's own, e.g. a tmpfs at `/dev/shm`) takes the place of an earlier one.
fn dedup_mounts(mounts: Vec<Mount>) -> Vec<Mount> {
    let mut out: Vec<Mount> = Vec::with_capacity(mounts.len());
    for m in mounts {
        match out.iter().position(|o| o.destination() == m.destination()) {
            Some(i) => out[i] = m,
            None => out.push(m),
        }
    }
    out
}

fn all_caps() -> Vec<Capability> {
    use Capability::*;
    vec![
        Chown,
        DacOverride,
        DacReadSearch,
        Fowner,
        Fsetid,
        Kill,
        Setgid,
        Setuid,
        Setpcap,
        LinuxImmutable,
        NetBindService,
        NetBroadcast,
        NetAdmin,
        NetRaw,
        IpcLock,
        IpcOwner,
        SysModule,
        SysRawio,
        SysChroot,
        SysPtrace,
        SysPacct,
        SysAdmin,
        SysBoot,
        SysNice,
        SysResource,
        SysTime,
        SysTtyConfig,
        Mknod,
        Lease,
        AuditWrite,
        AuditControl,
        Setfcap,
        MacOverride,
        MacAdmin,
        Syslog,
        WakeAlarm,
        BlockSuspend,
        AuditRead,
        Perfmon,
        Bpf,
        CheckpointRestore,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_spec_has_docker_defaults() {
        let user = ExecUser {
            uid: 1000,
            gid: 1000,
            additional_gids: vec![10],
            home: "/".into(),
        };
        let spec = build_spec(&SpecInput {
            rootfs: Path::new("/r"),
            args: &["/bin/sh".into(), "-c".into(), "true".into()],
            env: &["PATH=/bin".into()],
            cwd: "/w",
            user: &user,
            network: NetworkMode::None,
            security: SecurityMode::Sandbox,
            binds: &[BindMount {
                source: "/src".into(),
                target: "/mnt/a".into(),
                readonly: true,
            }],
            tmpfs: &[("/t".into(), Some(1024))],
            terminal: false,
            hostname: HOSTNAME,
        })
        .unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["hostname"], HOSTNAME);
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(json["process"]["user"]["uid"], 1000);
        let caps = json["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap();
        assert_eq!(caps.len(), DEFAULT_CAPS.len());
        assert!(caps.iter().any(|c| c == "CAP_CHOWN"));
        assert!(!caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        let ns: Vec<&str> = json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert!(ns.contains(&"network") && ns.contains(&"pid") && ns.contains(&"mount"));
        assert!(json["linux"]["maskedPaths"].as_array().unwrap().len() > 3);
        let dests: Vec<&str> = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
        for d in [
            "/proc", "/dev", "/dev/pts", "/dev/shm", "/sys", "/mnt/a", "/t",
        ] {
            assert!(dests.contains(&d), "{d} missing from {dests:?}");
        }
    }

    #[test]
    fn a_step_mount_replaces_the_default_at_the_same_place() {
        let user = ExecUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/root".into(),
        };
        let spec = build_spec(&SpecInput {
            rootfs: Path::new("/r"),
            args: &["true".into()],
            env: &[],
            cwd: "/",
            user: &user,
            network: NetworkMode::Host,
            security: SecurityMode::Sandbox,
            binds: &[],
            tmpfs: &[("/dev/shm".into(), Some(128 << 20))],
            terminal: false,
            hostname: HOSTNAME,
        })
        .unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        let mounts = json["mounts"].as_array().unwrap();
        let shm: Vec<&serde_json::Value> = mounts
            .iter()
            .filter(|m| m["destination"] == "/dev/shm")
            .collect();
        assert_eq!(shm.len(), 1, "{mounts:?}");
        let options = shm[0]["options"].as_array().unwrap();
        assert!(options.iter().any(|o| o == "size=134217728"), "{options:?}");
        // It keeps the default's place: before /sys, which the defaults list later.
        let place = |d: &str| mounts.iter().position(|m| m["destination"] == d);
        assert!(place("/dev/shm") < place("/sys"));
    }
}
