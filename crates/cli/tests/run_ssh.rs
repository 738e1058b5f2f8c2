//! `RUN --mount=type=ssh` with a real agent: a key made with `ssh-keygen`, loaded
//! into an `ssh-agent` listening on a socket of the test's own; the step lists it
//! with `ssh-add -l` (openssh-client installed in an earlier step of the Debian
//! image), through the default socket and `SSH_AUTH_SOCK`, or a target of its own
//! owned by a non-root user.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    BUSYBOX, Context, DEBIAN, State, debian_mirror_reachable, has_image, ready, step_output, text,
    value_of,
};

/// An `ssh-agent` of the test's own, stopped (by PID) when dropped.
struct Agent {
    child: Child,
    socket: std::path::PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Option<Agent> {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let agent = Agent { child, socket };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !agent.socket.exists() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(agent)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes a key, loads it into the agent, returns its SHA256 fingerprint.
fn load_key(dir: &Path, agent: &Agent) -> String {
    let key = dir.join("id_ed25519");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "kiln-test-key", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let st = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &agent.socket)
        .stderr(Stdio::null())
        .status()
        .expect("ssh-add");
    assert!(st.success());
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key.with_extension("pub"))
        .output()
        .expect("ssh-keygen -l");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_string()
}

fn tools_present() -> bool {
    ["ssh-agent", "ssh-add", "ssh-keygen"].iter().all(|t| {
        Command::new(t)
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    })
}

#[test]
fn a_step_uses_the_forwarded_agent() {
    let name = "a_step_uses_the_forwarded_agent";
    if !ready(name) || !debian_mirror_reachable(name) {
        return;
    }
    if !has_image(DEBIAN) || !tools_present() {
        eprintln!("{name}: needs {DEBIAN} and OpenSSH's client tools; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(dir.path()).expect("ssh-agent did not start");
    let fingerprint = load_key(dir.path(), &agent);

    let df = format!(
        r#"FROM {DEBIAN}
RUN apt-get update && apt-get install -y --no-install-recommends openssh-client && \
    useradd -u 1000 -m app
RUN --mount=type=ssh \
    echo "sock=$SSH_AUTH_SOCK"; echo "keys=$(ssh-add -l)"
RUN --mount=type=ssh,id=deploy,target=/home/app/agent.sock,uid=1000,mode=0600 \
    echo "meta=$(stat -c '%a %u' /home/app/agent.sock)"; \
    su app -c 'echo "app_keys=$(SSH_AUTH_SOCK=/home/app/agent.sock ssh-add -l)"'
RUN echo "stub=$([ -e /run/buildkit ] && echo present || echo absent)"; \
    echo "sock_left=$([ -e /home/app/agent.sock ] && echo present || echo absent)"
"#
    );
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let deploy = format!("deploy={}", agent.socket.display());
    // `--ssh default` takes the agent from SSH_AUTH_SOCK, as with docker.
    let o = state.build_env(
        &["--ssh", "default", "--ssh", &deploy, ctx.arg()],
        &[("SSH_AUTH_SOCK", agent.socket.to_str().unwrap())],
    );
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let v = |k: &str| value_of(&err, k).unwrap_or_else(|| panic!("no {k}= in\n{err}"));
    assert_eq!(v("sock"), "/run/buildkit/ssh_agent.0");
    assert!(
        v("keys").contains(&fingerprint) && v("keys").contains("kiln-test-key"),
        "the step does not see the key {fingerprint}: {err}"
    );
    assert_eq!(v("meta"), "600 1000");
    assert!(v("app_keys").contains(&fingerprint), "{err}");
    assert_eq!(
        v("stub"),
        "absent",
        "the default socket's directory is in the image"
    );
    assert_eq!(v("sock_left"), "absent");
    // The agent still serves the host afterwards.
    let host = Command::new("ssh-add")
        .arg("-l")
        .env("SSH_AUTH_SOCK", &agent.socket)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&host.stdout).contains(&fingerprint));
    assert!(
        !step_output(&err)
            .iter()
            .any(|l| l.contains("Permission denied")),
        "{err}"
    );
}

#[test]
fn a_required_agent_that_is_not_given_fails_plainly() {
    if !ready("a_required_agent_that_is_not_given_fails_plainly") {
        return;
    }
    let df = format!(
        "FROM {BUSYBOX}\nRUN --mount=type=ssh,required=true echo should-not-run\nRUN --mount=type=ssh echo \"optional=${{SSH_AUTH_SOCK:-unset}}\"\n"
    );
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let o = state.build(&[ctx.arg()]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--ssh default"), "{err}");
    assert!(!step_output(&err).iter().any(|l| l == "should-not-run"));

    // Not required: the step runs without an agent.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {BUSYBOX}\nRUN --mount=type=ssh echo \"optional=$([ -S \"$SSH_AUTH_SOCK\" ] && echo socket || echo none)\"\n"
        ),
    )
    .unwrap();
    let o = state.build(&[ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(value_of(&err, "optional").as_deref(), Some("none"));
}
