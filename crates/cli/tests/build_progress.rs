//! What a build tells the user while it runs: `--progress plain` in buildx's shape,
//! `--progress rawjson` one JSON object per line, failures that point at the
//! failing step; `--print-graph` a graph that reads back; `kiln dockerfile parse`
//! failing on a bad file with its line.

mod common;

use std::collections::BTreeMap;

use common::{BUSYBOX, Context, State, StepEnd, ready, stderr, steps, text};

fn dockerfile() -> String {
    format!(
        "FROM {BUSYBOX} AS build\nCOPY a.txt /a.txt\nRUN echo hello from run && cat /a.txt\n\
         FROM {BUSYBOX}\nCOPY --from=build /a.txt /b.txt\n"
    )
}

/// `[stage i/n] INSTRUCTION` or `[i/n] INSTRUCTION`.
fn is_step_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('[') else {
        return false;
    };
    let Some((inside, instruction)) = rest.split_once("] ") else {
        return false;
    };
    let pos = inside.rsplit(' ').next().unwrap_or("");
    let Some((i, n)) = pos.split_once('/') else {
        return false;
    };
    matches!((i.parse::<u32>(), n.parse::<u32>()), (Ok(i), Ok(n)) if i >= 1 && i <= n)
        && instruction
            .split_whitespace()
            .next()
            .is_some_and(|w| w.chars().all(|c| c.is_ascii_uppercase()))
}

#[test]
fn plain_progress_has_buildx_shape() {
    if !ready("plain_progress_has_buildx_shape") {
        return;
    }
    let ctx = Context::new(&dockerfile(), &[("a.txt", "the file\n")]);
    let state = State::new();
    let o = state.build(&[ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let err = stderr(&o);

    let all = steps(&err);
    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    for want in [
        "[build 2/3] COPY a.txt /a.txt",
        "[build 3/3] RUN echo hello from run && cat /a.txt",
        "[stage-1 2/2] COPY --from=build /a.txt /b.txt",
        "[internal] load build context",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:#?}");
    }
    // Numbered from 1 without gaps, each `#N NAME` first, then its lines, ending in
    // DONE <seconds>s (a fresh build caches nothing).
    let mut numbers: Vec<u32> = all.iter().map(|s| s.number).collect();
    numbers.sort();
    assert_eq!(numbers, (1..=all.len() as u32).collect::<Vec<_>>());
    for s in &all {
        assert_eq!(s.end, StepEnd::Done, "{s:?}");
        if s.name.starts_with('[') && !s.name.starts_with("[internal]") {
            assert!(is_step_name(&s.name), "{}", s.name);
        }
    }
    for line in err.lines().filter(|l| l.starts_with('#')) {
        let (n, rest) = line[1..].split_once(' ').expect("#N then text");
        assert!(n.parse::<u32>().is_ok(), "{line}");
        if let Some(t) = rest.strip_prefix("DONE ") {
            let secs = t.strip_suffix('s').unwrap_or_else(|| panic!("{line}"));
            assert!(secs.parse::<f64>().is_ok_and(|s| s >= 0.0), "{line}");
            assert_eq!(
                secs.split_once('.').map(|(_, f)| f.len()),
                Some(1),
                "one decimal: {line}"
            );
        }
    }
    // The RUN step's output, with its timestamp, under its number.
    let run = all
        .iter()
        .find(|s| s.name.starts_with("[build 3/3] RUN"))
        .unwrap();
    let logs: Vec<&str> = run
        .lines
        .iter()
        .filter_map(|l| l.split_once(" "))
        .filter(|(t, _)| t.parse::<f64>().is_ok())
        .map(|(_, rest)| rest)
        .collect();
    assert_eq!(logs, ["hello from run", "the file"], "{:?}", run.lines);

    // Again: the same steps, every Dockerfile step CACHED.
    let o = state.build(&[ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let again = common::dockerfile_steps(&stderr(&o));
    assert_eq!(again.len(), 3, "{again:?}");
    assert!(again.values().all(|e| *e == StepEnd::Cached), "{again:#?}");
    for line in stderr(&o).lines() {
        if let Some(rest) = line.strip_prefix('#')
            && let Some((_, body)) = rest.split_once(' ')
        {
            assert!(
                !body.starts_with("0.") || !body.contains("hello"),
                "a cached RUN printed: {line}"
            );
        }
    }
}

#[test]
fn failing_step_is_shown_with_its_output_and_line() {
    if !ready("failing_step_is_shown_with_its_output_and_line") {
        return;
    }
    let ctx = Context::new(
        &format!(
            "FROM {BUSYBOX}\nRUN echo before\nRUN echo about to fail && exit 3\nRUN echo never\n"
        ),
        &[],
    );
    let state = State::new();
    let o = state.build(&[ctx.arg()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    let all = steps(&err);
    let failed: Vec<_> = all
        .iter()
        .filter(|s| matches!(s.end, StepEnd::Error(_)))
        .collect();
    assert_eq!(failed.len(), 1, "{err}");
    let f = failed[0];
    assert_eq!(f.name, "[3/4] RUN echo about to fail && exit 3");
    assert!(
        f.lines.iter().any(|l| l.ends_with(" about to fail")),
        "{:?}",
        f.lines
    );
    let StepEnd::Error(msg) = &f.end else {
        unreachable!()
    };
    assert!(msg.contains("exit code: 3"), "{msg}");
    assert!(
        !all.iter()
            .any(|s| s.name.contains("echo never") && s.end == StepEnd::Done)
    );
    assert!(err.contains("Dockerfile:3\n"), "{err}");
    assert!(
        err.contains(">>>   3 | RUN echo about to fail && exit 3"),
        "{err}"
    );
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("ERROR: failed to solve: [3/4] RUN echo about to fail && exit 3")
            || err.contains("ERROR: failed to solve: [3/4] RUN echo about to fail && exit 3"),
        "{err}"
    );
}

#[test]
fn rawjson_progress_is_one_object_per_line() {
    if !ready("rawjson_progress_is_one_object_per_line") {
        return;
    }
    let ctx = Context::new(&dockerfile(), &[("a.txt", "the file\n")]);
    let state = State::new();
    let run = |ctx: &Context| {
        state
            .kiln()
            .args(["build", "--progress", "rawjson", ctx.arg()])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let o = run(&ctx);
    assert!(o.status.success(), "{}", text(&o));
    let events = parse_events(&stderr(&o));
    // Every vertex that starts completes, once, without error; names as in plain.
    let mut names = BTreeMap::new();
    let mut completed = BTreeMap::new();
    for e in &events {
        let v = e["vertex"]
            .as_str()
            .expect("every event names its vertex")
            .to_string();
        match e["event"].as_str() {
            Some("started") => {
                names.insert(v, e["name"].as_str().unwrap().to_string());
            }
            Some("completed") => {
                assert!(names.contains_key(&v), "completed before started: {e}");
                assert!(e["error"].is_null(), "{e}");
                assert!(e["duration"].as_f64().is_some_and(|d| d >= 0.0), "{e}");
                *completed.entry(v).or_insert(0) += 1;
            }
            Some("log") | Some("status") | Some("cached") | Some("miss") => {}
            other => panic!("unknown event {other:?}: {e}"),
        }
    }
    assert!(
        names.values().any(|n| n == "[build 2/3] COPY a.txt /a.txt"),
        "{names:?}"
    );
    for v in names.keys() {
        assert_eq!(completed.get(v), Some(&1), "{}", names[v]);
    }
    let logs: String = events
        .iter()
        .filter(|e| e["event"] == "log")
        .filter_map(|e| e["data"].as_str())
        .collect();
    assert!(logs.contains("hello from run\n"), "{logs:?}");

    // A failing build: the failing step's completion carries the error.
    let bad = Context::new(&format!("FROM {BUSYBOX}\nRUN exit 7\n"), &[]);
    let o = run(&bad);
    assert_eq!(o.status.code(), Some(1));
    let events = parse_events(&stderr(&o));
    let started: BTreeMap<&str, &str> = events
        .iter()
        .filter(|e| e["event"] == "started")
        .map(|e| (e["vertex"].as_str().unwrap(), e["name"].as_str().unwrap()))
        .collect();
    let failed: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["event"] == "completed" && !e["error"].is_null())
        .map(|e| {
            (
                started[e["vertex"].as_str().unwrap()],
                e["error"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "[2/2] RUN exit 7");
    assert!(failed[0].1.contains("exit code: 7"), "{failed:?}");
}

/// The JSON lines of rawjson output; other lines are only the final report
/// (`ERROR: ...` with the Dockerfile excerpt) and warnings.
fn parse_events(err: &str) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    let mut report = false;
    for line in err.lines() {
        if line.starts_with('{') && !report {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(v.is_object(), "{line}");
            events.push(v);
        } else if line.starts_with("WARNING: ") {
        } else {
            // The report comes last; nothing JSON after it.
            report = true;
            assert!(!line.starts_with('{'), "JSON after the report: {line}");
        }
    }
    assert!(!events.is_empty(), "no events in {err}");
    events
}

#[test]
fn print_graph_reads_back_as_a_definition() {
    if !ready("print_graph_reads_back_as_a_definition") {
        return;
    }
    let ctx = Context::new(&dockerfile(), &[("a.txt", "the file\n")]);
    let state = State::new();
    let o = state
        .kiln()
        .args(["build", "--print-graph", ctx.arg()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let def = kiln_graph::Definition::from_json(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(def.targets.len(), 1);
    let names: Vec<&str> = def.vertices.iter().map(|v| v.meta.name.as_str()).collect();
    assert!(
        names.contains(&"[build 3/3] RUN echo hello from run && cat /a.txt"),
        "{names:?}"
    );
    // Read back and written again, the same JSON: nothing is lost on the way.
    assert_eq!(
        def.to_json().trim(),
        String::from_utf8_lossy(&o.stdout).trim()
    );
    // jq, which kiln did not write, reads it too.
    if common::have("print_graph_reads_back_as_a_definition", "jq") {
        let mut jq = std::process::Command::new("jq")
            .args(["-e", ".vertices | length"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        jq.stdin.take().unwrap().write_all(&o.stdout).unwrap();
        let out = jq.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            def.vertices.len().to_string()
        );
    }
    // Nothing was built (resolving the base image's config is all it did).
    let layers = std::fs::read_dir(state.path().join("layers"))
        .unwrap()
        .count();
    assert_eq!(layers, 0, "--print-graph made layers");
    state.assert_clean();
}

#[test]
fn dockerfile_parse_names_the_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let kiln = || std::process::Command::new(common::kiln_bin());

    let good = dir.path().join("Good");
    std::fs::write(&good, "FROM busybox\nRUN echo \\\n  hi\n").unwrap();
    let o = kiln()
        .args(["dockerfile", "parse"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("(run \"echo   hi\")"),
        "{}",
        text(&o)
    );

    for (contents, line, what) in [
        (
            "FROM busybox\nRUN <<EOF\necho never ends\n",
            "line 2",
            "unterminated heredoc",
        ),
        ("", "", "file with no instructions"),
    ] {
        let bad = dir.path().join("Bad");
        std::fs::write(&bad, contents).unwrap();
        let o = kiln()
            .args(["dockerfile", "parse"])
            .arg(&bad)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let err = stderr(&o);
        assert!(err.starts_with("ERROR: "), "{err}");
        assert!(err.contains(&*bad.to_string_lossy()), "{err}");
        assert!(err.contains(line) && err.contains(what), "{err}");
    }

    // A missing file names it.
    let o = kiln()
        .args(["dockerfile", "parse"])
        .arg(dir.path().join("Nope"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Nope"), "{}", text(&o));

    // `kiln build` on an instruction that does not exist names the line and shows it.
    let ctx = Context::new("FROM busybox\nRUN true\nFROOM x\n", &[]);
    let o = std::process::Command::new(common::kiln_bin())
        .args(["build", "--print-graph", ctx.arg()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains("Dockerfile:3\n"), "{err}");
    assert!(err.contains(">>>   3 | FROOM x"), "{err}");
    assert!(err.contains("unknown instruction: FROOM"), "{err}");
}

#[test]
fn quiet_progress_prints_nothing_and_q_only_the_image_id() {
    if !ready("quiet_progress_prints_nothing_and_q_only_the_image_id") {
        return;
    }
    let ctx = Context::new(
        &format!("FROM {BUSYBOX}\nCOPY a.txt /a.txt\n"),
        &[("a.txt", "x\n")],
    );
    let state = State::new();
    let run = |args: &[&str]| {
        state
            .kiln()
            .arg("build")
            .args(args)
            .arg(ctx.arg())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run kiln")
    };

    let o = run(&["--progress", "quiet"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(o.stdout.is_empty() && o.stderr.is_empty(), "{}", text(&o));

    let o = run(&["-q"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let id = out.trim_end().strip_prefix("sha256:").unwrap_or("");
    assert!(
        id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{}",
        text(&o)
    );
    assert!(o.stderr.is_empty(), "{}", text(&o));

    let o = run(&["-q", "--progress", "plain"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("progress=plain and quiet cannot be used together"),
        "{}",
        text(&o)
    );
}

#[test]
fn broken_dockerfile_checks_are_listed_after_the_build() {
    if !ready("broken_dockerfile_checks_are_listed_after_the_build") {
        return;
    }
    let ctx = Context::new(
        &format!("FROM {BUSYBOX} as base\nENV A 1\nCMD echo hi\n"),
        &[],
    );
    let state = State::new();
    let o = state.build(&[ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let err = stderr(&o);
    let list = err
        .split_once(" 3 warnings found:\n")
        .map(|(_, l)| l)
        .unwrap_or_else(|| panic!("no warnings listed:\n{err}"));
    let lines: Vec<&str> = list.lines().filter(|l| l.starts_with(" - ")).collect();
    assert_eq!(
        lines,
        [
            " - FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)",
            " - LegacyKeyValueFormat: \"ENV key=value\" should be used instead of legacy \"ENV key value\" format (line 2)",
            " - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 3)",
        ]
    );
    // In rawjson, one event each.
    let o = state
        .kiln()
        .args(["build", "--progress", "rawjson", ctx.arg()])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run kiln");
    assert!(o.status.success(), "{}", text(&o));
    let events: Vec<serde_json::Value> = stderr(&o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "warning")
        .collect();
    assert_eq!(events.len(), 3, "{}", text(&o));
    assert_eq!(events[2]["rule"], "JSONArgsRecommended");
    assert_eq!(events[2]["line"], 3);
    // Skipped rules are not listed.
    let ctx = Context::new(
        &format!("# check=skip=all\nFROM {BUSYBOX} as base\nCMD echo hi\n"),
        &[],
    );
    let o = state.build(&[ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!stderr(&o).contains("warning"), "{}", text(&o));
}
