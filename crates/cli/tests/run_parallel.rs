//! RUN steps of independent stages run at the same time: each step records when it
//! started and ended (the host's uptime clock, which a container shares), and the
//! intervals overlap. Their output streams into the progress as it happens.

mod common;

use common::{BUSYBOX, Context, State, ready, text};

fn interval(path: &std::path::Path) -> (f64, f64) {
    let s = std::fs::read_to_string(path).unwrap();
    let mut it = s.split_whitespace().map(|v| v.parse::<f64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

#[test]
fn run_steps_of_independent_stages_overlap() {
    if !ready("run_steps_of_independent_stages_overlap") {
        return;
    }
    let step = "RUN s=$(cut -d' ' -f1 /proc/uptime); echo started; sleep 2; echo finished; e=$(cut -d' ' -f1 /proc/uptime); echo \"$s $e\" > /t";
    let df = format!(
        "FROM {BUSYBOX} AS a\n{step}; : stage-a\nFROM {BUSYBOX} AS b\n{step}; : stage-b\nFROM {BUSYBOX}\nCOPY --from=a /t /a\nCOPY --from=b /t /b\n"
    );
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let dest = ctx.path().join("out");
    let o = state.build(&[
        "--jobs",
        "2",
        "-o",
        &format!("type=local,dest={}", dest.display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let (a0, a1) = interval(&dest.join("a"));
    let (b0, b1) = interval(&dest.join("b"));
    assert!(a1 - a0 >= 2.0 && b1 - b0 >= 2.0);
    assert!(
        a0.max(b0) < a1.min(b1),
        "the steps ran one after the other: a {a0}..{a1}, b {b0}..{b1}"
    );

    // Plain progress interleaves the two steps: each one's "started" is printed
    // before the other one's "finished".
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let pos = |step: &str, word: &str| {
        let lines: Vec<&str> = stderr.lines().collect();
        let number = lines
            .iter()
            .find(|l| l.contains("RUN s=$(cut") && l.ends_with(step))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no header for {step}: {stderr}"))
            .to_string();
        lines
            .iter()
            .position(|l| l.starts_with(&format!("{number} ")) && l.ends_with(word))
            .unwrap_or_else(|| panic!("no {word} for {step}: {stderr}"))
    };
    assert!(
        pos("stage-a", "started") < pos("stage-b", "finished"),
        "{stderr}"
    );
    assert!(
        pos("stage-b", "started") < pos("stage-a", "finished"),
        "{stderr}"
    );
}

#[test]
fn step_output_streams_while_the_step_runs() {
    if !ready("step_output_streams_while_the_step_runs") {
        return;
    }
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};
    let df = format!("FROM {BUSYBOX}\nRUN echo early-line; sleep 4; echo late-line\n");
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    for mode in ["plain", "rawjson"] {
        let mut child = state
            .kiln()
            .args(["build", "--no-cache", "--progress", mode, ctx.arg()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut early_at = None;
        let mut late_at = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line.contains("early-line") && !line.contains("RUN echo") {
                early_at.get_or_insert(started.elapsed());
            }
            if line.contains("late-line") && !line.contains("RUN echo") {
                late_at.get_or_insert(started.elapsed());
            }
        }
        assert!(child.wait().unwrap().success());
        let (early, late) = (
            early_at.expect("no early line"),
            late_at.expect("no late line"),
        );
        assert!(
            late >= early + Duration::from_secs(3),
            "{mode}: the output came at the end of the step (early at {early:?}, late at {late:?})"
        );
    }
}
