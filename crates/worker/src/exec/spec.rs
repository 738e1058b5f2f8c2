//! The OCI runtime spec of a RUN step, built with the `oci-spec` crate: Docker's
//! defaults (mounts, capabilities, masked and read-only kernel paths, namespaces) plus
//! the step's process, user and mounts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kiln_graph::{NetworkMode, SecurityMode};
use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDevice, LinuxDeviceBuilder,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxResourcesBuilder, Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder,
    UserBuilder, get_default_maskedpaths, get_default_mounts, get_default_readonly_paths,
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
    /// The container's hostname ([`HOSTNAME`] unless the op names one).
    pub hostname: &'a str,
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
    /// Annotations of the container (who runs it, see [`super::runc::reap_orphans`]).
    pub annotations: &'a HashMap<String, String>,
}

fn err(e: impl std::fmt::Display) -> WorkerError {
    WorkerError::Failed(format!("building the container spec: {e}"))
}

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

pub fn build_spec(input: &SpecInput<'_>) -> Result<Spec, WorkerError> {
    let insecure = input.security == SecurityMode::Insecure;
    let capabilities = if insecure {
        // As BuildKit: every capability kiln itself holds, in every set, so that
        // they survive a switch to a non-root user too. Asking for one kiln lacks
        // would make runc fail.
        let all: oci_spec::runtime::Capabilities = current_caps().into_iter().collect();
        LinuxCapabilitiesBuilder::default()
            .bounding(all.clone())
            .effective(all.clone())
            .permitted(all.clone())
            .inheritable(all.clone())
            .ambient(all)
            .build()
            .map_err(err)?
    } else {
        let capset: oci_spec::runtime::Capabilities = DEFAULT_CAPS.iter().copied().collect();
        LinuxCapabilitiesBuilder::default()
            .bounding(capset.clone())
            .effective(capset.clone())
            .permitted(capset)
            .inheritable(oci_spec::runtime::Capabilities::new())
            .ambient(oci_spec::runtime::Capabilities::new())
            .build()
            .map_err(err)?
    };
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
        // None: the step inherits kiln's limits, as BuildKit's steps inherit
        // buildkitd's (the builder's default would cap open files at 1024).
        .rlimits(Vec::new())
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
    if insecure {
        // Set explicitly: the builder's defaults would mask and protect them.
        linux = linux
            .devices(insecure_devices()?)
            .masked_paths(Vec::new())
            .readonly_paths(Vec::new());
    } else {
        linux = linux
            .masked_paths(get_default_maskedpaths())
            .readonly_paths(get_default_readonly_paths());
    }
    let linux = linux.build().map_err(err)?;

    let mut mounts: Vec<Mount> = get_default_mounts();
    for m in &mut mounts {
        match m.typ().as_deref() {
            // containerd's (and so BuildKit's) options for /proc.
            Some("proc") => {
                m.set_options(Some(vec!["nosuid".into(), "noexec".into(), "nodev".into()]));
            }
            // Insecure steps may write to /sys and their cgroup, as in BuildKit.
            Some("sysfs" | "cgroup") if insecure => {
                let opts = m
                    .options()
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|o| if o == "ro" { "rw".to_string() } else { o })
                    .collect();
                m.set_options(Some(opts));
            }
            _ => {}
        }
    }
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
        // BuildKit's options: devices may be made in a tmpfs, its mode is tmpfs's 1777.
        let mut options = vec!["nosuid".to_string()];
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
        .annotations(input.annotations.clone())
        .build()
        .map_err(err)
}

/// The capabilities in kiln's own effective set, read from `/proc/self/status`.
fn current_caps() -> Vec<Capability> {
    let mask = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    caps_in_mask(mask)
}

/// The capabilities whose bits are set in a kernel capability mask.
fn caps_in_mask(mask: u64) -> Vec<Capability> {
    caps_by_bit()
        .into_iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, c)| c)
        .collect()
}

/// Device nodes an insecure step gets, as BuildKit gives them: kernel log, FUSE,
/// KVM, TUN and loop devices.
fn insecure_devices() -> Result<Vec<LinuxDevice>, WorkerError> {
    let mut nodes: Vec<(String, LinuxDeviceType, i64, i64)> = vec![
        ("/dev/kmsg".into(), LinuxDeviceType::C, 1, 11),
        ("/dev/cuse".into(), LinuxDeviceType::C, 10, 203),
        ("/dev/fuse".into(), LinuxDeviceType::C, 10, 229),
        ("/dev/kvm".into(), LinuxDeviceType::C, 10, 232),
        ("/dev/net/tun".into(), LinuxDeviceType::C, 10, 200),
        ("/dev/loop-control".into(), LinuxDeviceType::C, 10, 237),
    ];
    for i in 0..8 {
        nodes.push((format!("/dev/loop{i}"), LinuxDeviceType::B, 7, i));
    }
    nodes
        .into_iter()
        .map(|(path, typ, major, minor)| {
            LinuxDeviceBuilder::default()
                .path(path)
                .typ(typ)
                .major(major)
                .minor(minor)
                .build()
                .map_err(err)
        })
        .collect()
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

/// Every capability, indexed by its bit number in the kernel's masks.
fn caps_by_bit() -> Vec<Capability> {
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
            hostname: HOSTNAME,
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
            annotations: &HashMap::new(),
        })
        .unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["hostname"], HOSTNAME);
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert!(
            json["process"]["rlimits"]
                .as_array()
                .is_none_or(|r| r.is_empty()),
            "{}",
            json["process"]["rlimits"]
        );
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

    fn input<'a>(
        user: &'a ExecUser,
        security: SecurityMode,
        annotations: &'a HashMap<String, String>,
    ) -> SpecInput<'a> {
        SpecInput {
            rootfs: Path::new("/r"),
            hostname: "box",
            args: &[],
            env: &[],
            cwd: "/",
            user,
            network: NetworkMode::Default,
            security,
            binds: &[],
            tmpfs: &[],
            terminal: false,
            annotations,
        }
    }

    #[test]
    fn dockers_capability_mask_is_its_default_set() {
        let mut from_mask = caps_in_mask(0xa804_25fb);
        let mut defaults = DEFAULT_CAPS.to_vec();
        from_mask.sort_by_key(|c| c.to_string());
        defaults.sort_by_key(|c| c.to_string());
        assert_eq!(from_mask, defaults);
        assert_eq!(caps_by_bit()[21], Capability::SysAdmin);
        assert_eq!(caps_by_bit()[40], Capability::CheckpointRestore);
        assert!(caps_in_mask(0).is_empty());
    }

    #[test]
    fn insecure_spec_lifts_the_sandbox_within_kilns_own_capabilities() {
        let user = ExecUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![0],
            home: "/".into(),
        };
        let owner = HashMap::from([("org.kiln.owner.pid".to_string(), "42".to_string())]);
        let spec = build_spec(&input(&user, SecurityMode::Insecure, &owner)).unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["hostname"], "box");
        assert_eq!(json["annotations"]["org.kiln.owner.pid"], "42");
        assert_eq!(json["process"]["noNewPrivileges"], false);
        let own = current_caps();
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            let caps = json["process"]["capabilities"][set].as_array().unwrap();
            assert_eq!(caps.len(), own.len(), "{set}");
        }
        assert_eq!(json["linux"]["maskedPaths"], serde_json::json!([]));
        assert_eq!(json["linux"]["readonlyPaths"], serde_json::json!([]));
        let devices: Vec<&str> = json["linux"]["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert!(devices.contains(&"/dev/fuse") && devices.contains(&"/dev/loop0"));
        for m in json["mounts"].as_array().unwrap() {
            if m["type"] == "sysfs" || m["type"] == "cgroup" {
                let opts = m["options"].as_array().unwrap();
                assert!(!opts.iter().any(|o| o == "ro"), "{m}");
            }
        }

        let sandbox = build_spec(&input(&user, SecurityMode::Sandbox, &owner)).unwrap();
        let json = serde_json::to_value(&sandbox).unwrap();
        let proc_opts = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/proc")
            .unwrap()["options"]
            .clone();
        assert_eq!(proc_opts, serde_json::json!(["nosuid", "noexec", "nodev"]));
        let sys = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys")
            .unwrap()["options"]
            .clone();
        assert!(sys.as_array().unwrap().iter().any(|o| o == "ro"));
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
            annotations: &HashMap::new(),
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
