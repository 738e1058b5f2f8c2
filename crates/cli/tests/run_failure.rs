//! A failed RUN says what a person needs to act: the stage and step, the Dockerfile
//! line, the command, the exit code in BuildKit's words and the last lines of output.

mod common;

use common::{BUSYBOX, Context, State, ready, text};

/// The part of kiln's stderr after the progress output: the located error.
fn error_report(stderr: &str) -> &str {
    let at = stderr
        .rfind("Dockerfile:")
        .unwrap_or_else(|| panic!("no Dockerfile location in:\n{stderr}"));
    &stderr[at..]
}

#[test]
fn a_failed_run_reports_stage_line_command_exit_code_and_last_output() {
    if !ready("a_failed_run_reports_stage_line_command_exit_code_and_last_output") {
        return;
    }
    let cmd = "for i in $(seq 1 40); do echo line$i; done; echo to-stderr >&2; exit 3";
    let df =
        format!("FROM {BUSYBOX} AS build\nRUN echo one\nRUN {cmd}\n\nFROM build\nRUN echo never\n");
    let ctx = Context::new(&df, &[]);
    let state = State::new();
    let o = state.build(&[ctx.arg()]);
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let report = error_report(&stderr);

    assert!(report.starts_with("Dockerfile:3\n"), "{report}");
    assert!(
        report
            .lines()
            .any(|l| l.starts_with(">>>") && l.contains("RUN for i in")),
        "the failing line is not marked: {report}"
    );
    assert!(
        report.contains("[build 3/3] RUN for i in"),
        "stage: {report}"
    );
    assert!(
        report.contains(&format!(
            "process \"/bin/sh -c {cmd}\" did not complete successfully: exit code: 3"
        )),
        "{report}"
    );
    // The last lines of output, stderr included, not all of them.
    for l in ["line40", "line35", "to-stderr"] {
        assert!(
            report.lines().any(|r| r.trim() == l),
            "{l} missing: {report}"
        );
    }
    assert!(
        !report.lines().any(|r| r.trim() == "line1"),
        "the whole output was repeated: {report}"
    );
    assert!(!stderr.contains("never"), "a later step ran");
}

#[test]
fn exit_codes_of_signals_and_missing_commands_read_as_in_docker() {
    if !ready("exit_codes_of_signals_and_missing_commands_read_as_in_docker") {
        return;
    }
    let state = State::new();
    for (run, code) in [
        // A command killed by SIGKILL (as by the OOM killer), under the shell.
        (r#"RUN sh -c 'kill -9 $$'; exit $?"#, 137),
        ("RUN no-such-command", 127),
        (r#"RUN ["/bin/false"]"#, 1),
    ] {
        let ctx = Context::new(&format!("FROM {BUSYBOX}\n{run}\n"), &[]);
        let o = state.build(&[ctx.arg()]);
        assert!(!o.status.success(), "{}", text(&o));
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        let report = error_report(&stderr);
        assert!(
            report.contains(&format!("did not complete successfully: exit code: {code}")),
            "{run}: {report}"
        );
    }
}

#[test]
fn a_missing_executable_in_exec_form_is_reported_plainly() {
    if !ready("a_missing_executable_in_exec_form_is_reported_plainly") {
        return;
    }
    let ctx = Context::new(&format!("FROM {BUSYBOX}\nRUN [\"/no/such/binary\"]\n"), &[]);
    let state = State::new();
    let o = state.build(&[ctx.arg()]);
    assert!(!o.status.success(), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let report = error_report(&stderr);
    assert!(report.contains("/no/such/binary"), "{report}");
    let main = report
        .lines()
        .find(|l| l.starts_with("ERROR: failed to solve:"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(
        main.contains("process \"/no/such/binary\" did not complete successfully")
            && main.contains("no such file or directory"),
        "the cause is not said: {report}"
    );
    assert!(
        !stderr.contains("level=error"),
        "runc's log leaked: {stderr}"
    );
    assert!(
        !report.contains("runc run failed"),
        "the runtime's own copy of the error is repeated: {report}"
    );
}
