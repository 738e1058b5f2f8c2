//! SSH agent forwarding: for each `RUN --mount=type=ssh`, a socket of the mount's
//! ownership and mode that relays every connection to the user's agent. The socket
//! lives in a directory under `/run/kiln` only for the duration of the step.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::error::WorkerError;

/// Relay sockets of one step; dropping them stops the relays and removes the sockets.
pub struct Forwarders {
    dir: Option<PathBuf>,
    sockets: Vec<Option<PathBuf>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Forwarders {
    /// Starts one relay per agent (`None`: an optional agent that was not given).
    pub async fn start(agents: &[Option<PathBuf>]) -> Result<Forwarders, WorkerError> {
        let mut f = Forwarders {
            dir: None,
            sockets: Vec::new(),
            tasks: Vec::new(),
        };
        if agents.iter().all(|a| a.is_none()) {
            f.sockets = agents.iter().map(|_| None).collect();
            return Ok(f);
        }
        std::fs::create_dir_all("/run/kiln")
            .map_err(|e| WorkerError::io("creating /run/kiln", e))?;
        let dir = tempfile::Builder::new()
            .prefix("ssh-")
            .tempdir_in("/run/kiln")
            .map_err(|e| WorkerError::io("creating an ssh relay directory", e))?
            .keep();
        f.dir = Some(dir.clone());
        for (i, agent) in agents.iter().enumerate() {
            let Some(agent) = agent.clone() else {
                f.sockets.push(None);
                continue;
            };
            if !agent.exists() {
                return Err(WorkerError::Failed(format!(
                    "SSH agent socket {} does not exist",
                    agent.display()
                )));
            }
            let path = dir.join(format!("agent-{i}.sock"));
            let listener = UnixListener::bind(&path)
                .map_err(|e| WorkerError::io(format!("listening on {}", path.display()), e))?;
            f.tasks.push(tokio::spawn(relay(listener, agent)));
            f.sockets.push(Some(path));
        }
        Ok(f)
    }

    /// The relay socket of each agent, in order.
    pub fn paths(&self) -> Vec<Option<PathBuf>> {
        self.sockets.clone()
    }
}

impl Drop for Forwarders {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

async fn relay(listener: UnixListener, agent: PathBuf) {
    while let Ok((mut client, _)) = listener.accept().await {
        let agent = agent.clone();
        tokio::spawn(async move {
            if let Ok(mut upstream) = UnixStream::connect(&agent).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
    }
}

/// Gives a relay socket the ownership and mode the mount asked for.
pub fn set_socket_owner(path: &Path, uid: u32, gid: u32, mode: u32) -> Result<(), WorkerError> {
    rustix::fs::chown(
        path,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(|e| WorkerError::io(format!("chown {}", path.display()), e.into()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| WorkerError::io(format!("chmod {}", path.display()), e))
}
