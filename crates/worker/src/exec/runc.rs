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

/// Annotation on every container: the pid of the kiln process that runs it.
pub const OWNER_PID: &str = "org.kiln.owner.pid";
/// Annotation on every container: the store (state directory) of its step.
pub const OWNER_STORE: &str = "org.kiln.owner.store";

/// The annotations that mark a container as this process's, for `store`.
pub fn owner_annotations(store: &Path) -> std::collections::HashMap<String, String> {
    std::collections::HashMap::from([
        (OWNER_PID.to_string(), std::process::id().to_string()),
        (OWNER_STORE.to_string(), store_name(store)),
    ])
}

/// A store's absolute path, however it was given.
fn store_name(store: &Path) -> String {
    std::fs::canonicalize(store)
        .unwrap_or_else(|_| store.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

/// Whether `pid` is a running kiln process (a reused pid runs something else).
fn kiln_is_running(pid: u32) -> bool {
    let comm = |p: &str| {
        std::fs::read_to_string(format!("/proc/{p}/comm"))
            .map(|c| c.trim().to_string())
            .ok()
    };
    match (comm(&pid.to_string()), comm("self")) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => false,
    }
}

/// Removes the containers of `store` whose kiln process is gone (killed with
/// SIGKILL, say, so that it could not remove them): their processes, cgroups and
/// runc state. Returns how many there were.
pub fn reap_orphans(store: &Path) -> usize {
    let Ok(out) = runc()
        .args(["list", "--format", "json"])
        .stderr(Stdio::null())
        .output()
    else {
        return 0;
    };
    let Ok(list) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return 0;
    };
    let store = store_name(store);
    let mut reaped = 0;
    for c in list.as_array().map(Vec::as_slice).unwrap_or_default() {
        let notes = &c["annotations"];
        let (Some(id), Some(owner), Some(pid)) = (
            c["id"].as_str(),
            notes[OWNER_STORE].as_str(),
            notes[OWNER_PID]
                .as_str()
                .and_then(|p| p.parse::<u32>().ok()),
        ) else {
            continue;
        };
        if owner == store && !kiln_is_running(pid) {
            delete(id);
            reaped += 1;
        }
    }
    reaped
}

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
    /// Why the runtime could not start or run the process (runc's own errors, e.g.
    /// a missing executable), if it said.
    pub runtime_error: Option<String>,
}

/// runc's own error messages from its JSON log (`{"level":"error","msg":...}`),
/// without its generic prefix.
fn runtime_errors(log: &str) -> Option<String> {
    let msgs: Vec<String> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal")))
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .map(|m| {
            m.strip_prefix("runc run failed: ")
                .map(str::to_string)
                .unwrap_or(m)
        })
        .collect();
    (!msgs.is_empty()).then(|| msgs.join("; "))
}

/// How many of the last lines of output a failure shows, and how many of the last
/// stderr lines it always includes (stdout and stderr come through two pipes, so a
/// burst of stdout may arrive after the error message that followed it).
const TAIL_LINES: usize = 20;
const TAIL_STDERR_LINES: usize = 10;

/// The last lines of a step's output, in the order they arrived.
#[derive(Default)]
struct Tail {
    next: u64,
    all: VecDeque<(u64, String)>,
    stderr: VecDeque<(u64, String)>,
}

impl Tail {
    fn push(&mut self, stream: Stream, line: String) {
        let seq = self.next;
        self.next += 1;
        if stream == Stream::Stderr {
            self.stderr.push_back((seq, line.clone()));
            if self.stderr.len() > TAIL_STDERR_LINES {
                self.stderr.pop_front();
            }
        }
        self.all.push_back((seq, line));
        if self.all.len() > TAIL_LINES {
            self.all.pop_front();
        }
    }

    /// The last lines, with the last stderr lines among them.
    fn lines(&self) -> Vec<String> {
        let mut merged: Vec<&(u64, String)> = self.all.iter().chain(self.stderr.iter()).collect();
        merged.sort_by_key(|(seq, _)| *seq);
        merged.dedup_by_key(|(seq, _)| *seq);
        merged.into_iter().map(|(_, l)| l.clone()).collect()
    }
}

/// Secret values are shorter than this are not masked: replacing every occurrence of
/// one or two characters would garble the output without hiding anything.
const MIN_MASKED_LEN: usize = 3;

/// What to mask in output: each line of each secret (a file's trailing newline and a
/// key's line structure do not survive `$(cat ...)` or line-wise output), longest
/// first so that a longer value is not masked piecewise by a shorter one.
fn mask_patterns(secrets: &[Vec<u8>]) -> Vec<String> {
    let mut out: Vec<String> = secrets
        .iter()
        .filter_map(|s| std::str::from_utf8(s).ok())
        .flat_map(|s| s.split('\n'))
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| l.len() >= MIN_MASKED_LEN)
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.len()));
    out.dedup();
    out
}

fn mask(line: &str, patterns: &[String]) -> String {
    let mut out = line.to_string();
    for p in patterns {
        if out.contains(p.as_str()) {
            out = out.replace(p.as_str(), "****");
        }
    }
    out
}

fn pump(
    reader: impl Read + Send + 'static,
    stream: Stream,
    progress: Progress,
    secrets: Vec<Vec<u8>>,
    tail: Arc<Mutex<Tail>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let patterns = mask_patterns(&secrets);
        let mut r = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = mask(&String::from_utf8_lossy(&buf), &patterns);
                    progress.log(stream, line.clone());
                    tail.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(stream, line.trim_end_matches('\n').to_string());
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
    // runc's own messages go to a log of their own, not into the step's output.
    let log = bundle.join("runc.log");
    let mut cmd = runc();
    cmd.arg("--log")
        .arg(&log)
        .arg("--log-format")
        .arg("json")
        .arg("run")
        .arg("--bundle")
        .arg(bundle)
        .arg(id);
    let tail = Arc::new(Mutex::new(Tail::default()));
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
    let tail = tail.lock().unwrap_or_else(|e| e.into_inner()).lines();
    let runtime_error = if exit_code == 0 {
        None
    } else {
        std::fs::read_to_string(&log)
            .ok()
            .and_then(|l| runtime_errors(&l))
    };
    Ok(Finished {
        exit_code,
        tail,
        runtime_error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_keeps_the_last_stderr_lines_behind_a_burst_of_stdout() {
        let mut t = Tail::default();
        t.push(Stream::Stdout, "first".into());
        t.push(Stream::Stderr, "error: it broke".into());
        for i in 0..50 {
            t.push(Stream::Stdout, format!("late stdout {i}"));
        }
        let lines = t.lines();
        assert_eq!(lines.len(), TAIL_LINES + 1);
        assert_eq!(lines[0], "error: it broke");
        assert_eq!(lines[TAIL_LINES], "late stdout 49");
        assert!(!lines.contains(&"first".to_string()));

        let mut t = Tail::default();
        t.push(Stream::Stdout, "out".into());
        t.push(Stream::Stderr, "err".into());
        assert_eq!(t.lines(), vec!["out", "err"]);
    }

    #[test]
    fn runtime_errors_come_from_runcs_json_log() {
        let log = r#"{"level":"warning","msg":"something harmless","time":"2026-01-01T00:00:00Z"}
{"level":"error","msg":"runc run failed: unable to start container process: exec: \"/no/such\": stat /no/such: no such file or directory","time":"2026-01-01T00:00:00Z"}
"#;
        assert_eq!(
            runtime_errors(log).as_deref(),
            Some(
                "unable to start container process: exec: \"/no/such\": stat /no/such: no such file or directory"
            )
        );
        assert_eq!(runtime_errors(""), None);
        assert_eq!(runtime_errors("not json\n"), None);
    }

    #[test]
    fn secret_values_are_masked_in_output() {
        let p = mask_patterns(&[b"hunter2\n".to_vec(), b"x".to_vec()]);
        assert_eq!(mask("pw=hunter2 and hunter2!\n", &p), "pw=**** and ****!\n");
        assert_eq!(mask("nothing here, x", &p), "nothing here, x");
        // A multi-line secret is masked line by line.
        let p = mask_patterns(&[b"-----BEGIN KEY-----\r\nAbCdEf123\n-----END KEY-----\n".to_vec()]);
        assert_eq!(mask("  AbCdEf123\n", &p), "  ****\n");
        assert_eq!(mask("-----END KEY-----", &p), "****");
    }
}
