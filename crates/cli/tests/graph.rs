//! `--print-graph` and `--graph`: the build graph as a contract another frontend can
//! produce.

mod common;

use common::{BUSYBOX, Context, State, ready, text};

#[test]
fn a_printed_graph_builds_the_same_image() {
    if !ready("a_printed_graph_builds_the_same_image") {
        return;
    }
    let ctx = Context::new(
        &format!("FROM {BUSYBOX}\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n"),
        &[
            ("a.txt", "graph\n"),
            (".dockerignore", "ignored\n"),
            ("ignored", "x"),
        ],
    );
    let state = State::new();
    let o = state.build(&["--print-graph", ctx.arg()]);
    assert!(o.status.success(), "{}", text(&o));
    let graph = ctx.path().join("graph.json");
    std::fs::write(&graph, &o.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["version"], 1);
    let local = json["vertices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["op"]["kind"] == "local")
        .expect("a local source");
    assert_eq!(local["op"]["exclude_patterns"][0], "ignored");

    let from_df = ctx.path().join("df.tar");
    let from_graph = ctx.path().join("graph.tar");
    let o = state.build(&[
        "-o",
        &format!("type=oci,dest={}", from_df.display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = state.build(&[
        "--graph",
        graph.to_str().unwrap(),
        "-o",
        &format!("type=oci,dest={}", from_graph.display()),
        ctx.arg(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(&from_df).unwrap(),
        std::fs::read(&from_graph).unwrap()
    );

    // A graph whose digests do not match its content is refused.
    let tampered = String::from_utf8(std::fs::read(&graph).unwrap())
        .unwrap()
        .replace("cat /a.txt", "cat /etc/passwd");
    std::fs::write(&graph, tampered).unwrap();
    let o = state.build(&["--graph", graph.to_str().unwrap(), ctx.arg()]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("does not match its content"),
        "{}",
        text(&o)
    );
}
