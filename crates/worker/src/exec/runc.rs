//! Running a bundle with the `runc` binary: output streamed as it comes, the
//! container killed when the build is cancelled, and always deleted afterwards so no
//! process, cgroup or state is left behind.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiln_solver::{Progress, Stream};

use crate::error::WorkerError;

/// Where runc keeps container state (a tmpfs on most systems).
pub const RUNC_ROOT: &str = "/run/kiln/runc";

/// How the process's standard streams are connected.
pub enum Stdio3<'a> {
    /// Output goes to progress, secret values masked; stdin is empty.
    Captured {
        progress: &'a Progress,
        secrets: &'a [Vec<u8>],
    },
    /// The user's terminal, for a debug shell.
    Inherit,
}

/// How a container ended.
pub struct Finished {
    pub exit_code: i32,
    /// The last lines of output.
    pub tail: Vec<String>,
}

const TAIL_LINES: usize = 20;

fn mask(line: &str, secrets: &[Vec<u8>]) -> String {
    let mut out = line.to_string();
    for s in secrets {
        if let Ok(s) = std::str::from_utf8(s)
            && !s.is_empty()
            && out.contains(s)
        {
            out = out.replace(s, "****");
        }
    }
    out
}

fn pump(
    reader: impl Read + Send + 'static,
    stream: Stream,
    progress: Progress,
    secrets: Vec<Vec<u8>>,
    tail: Arc<Mutex<VecDeque<String>>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = mask(&String::from_utf8_lossy(&buf), &secrets);
                    progress.log(stream, line.clone());
                    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                    t.push_back(line.trim_end_matches('\n').to_string());
                    while t.len() > TAIL_LINES {
                        t.pop_front();
                    }
                }
            }
        }
    })
}

fn runc() -> Command {
    let mut c = Command::new("runc");
    c.arg("--root").arg(RUNC_ROOT);
    c
}

/// Removes a container and its state, whatever state it is in.
pub fn delete(id: &str) {
    let _ = runc()
        .args(["kill", id, "KILL"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = runc()
        .args(["delete", "--force", id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs the bundle as container `id` until it exits or `cancel` is set.
pub fn run(
    bundle: &Path,
    id: &str,
    stdio: Stdio3<'_>,
    cancel: &AtomicBool,
) -> Result<Finished, WorkerError> {
    std::fs::create_dir_all(RUNC_ROOT)
        .map_err(|e| WorkerError::io(format!("creating {RUNC_ROOT}"), e))?;
    let mut cmd = runc();
    cmd.arg("run").arg("--bundle").arg(bundle).arg(id);
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let mut pumps = Vec::new();
    let mut child = match &stdio {
        Stdio3::Captured { .. } => cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn(),
        Stdio3::Inherit => cmd
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn(),
    }
    .map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            WorkerError::Failed(
                "RUN needs the runc OCI runtime, which is not installed (apt-get install runc)"
                    .into(),
            )
        } else {
            WorkerError::io("starting runc", e)
        }
    })?;
    if let Stdio3::Captured { progress, secrets } = &stdio {
        if let Some(out) = child.stdout.take() {
            pumps.push(pump(
                out,
                Stream::Stdout,
                (*progress).clone(),
                secrets.to_vec(),
                tail.clone(),
            ));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(pump(
                err,
                Stream::Stderr,
                (*progress).clone(),
                secrets.to_vec(),
                tail.clone(),
            ));
        }
    }
    let mut killed = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {
                if cancel.load(Ordering::SeqCst) && !killed {
                    killed = true;
                    let _ = runc()
                        .args(["kill", id, "KILL"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                delete(id);
                return Err(WorkerError::io("waiting for runc", e));
            }
        }
    };
    for p in pumps {
        let _ = p.join();
    }
    delete(id);
    if killed {
        return Err(WorkerError::Failed("canceled".into()));
    }
    use std::os::unix::process::ExitStatusExt;
    let exit_code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1);
    let tail = tail
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    Ok(Finished { exit_code, tail })
}
