//! The parser never panics, and what it returns is consistent, whatever the input.

use kiln_frontend::parser::parse;
use proptest::prelude::*;

/// Parses and checks what holds for every successful parse: nodes come in file order
/// within the file's lines, the dump has one line per node, errors point into the file.
fn check(input: &[u8]) {
    let total_lines = input.split(|&b| b == b'\n').count();
    match parse(input) {
        Ok(result) => {
            assert!(!result.nodes.is_empty());
            let mut previous_end = 0;
            for node in &result.nodes {
                assert!(node.start_line > previous_end, "{input:?}");
                assert!(node.start_line <= node.end_line, "{input:?}");
                assert!(node.end_line <= total_lines, "{input:?}");
                previous_end = node.end_line;
            }
            assert_eq!(
                result.dump().lines().count(),
                result.nodes.len(),
                "{input:?}"
            );
            assert!(result.escape_token == '\\' || result.escape_token == '`');
        }
        Err(err) => {
            assert!(err.start_line <= err.end_line);
            assert!(err.end_line <= total_lines, "{input:?}: {err}");
            assert!(!err.to_string().is_empty());
        }
    }
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("FROM ".to_string()),
        Just("RUN ".to_string()),
        Just("COPY ".to_string()),
        Just("ADD ".to_string()),
        Just("ENV ".to_string()),
        Just("LABEL ".to_string()),
        Just("ARG ".to_string()),
        Just("CMD ".to_string()),
        Just("HEALTHCHECK ".to_string()),
        Just("ONBUILD ".to_string()),
        Just("# escape=`\n".to_string()),
        Just("# syntax=x\n".to_string()),
        Just("#".to_string()),
        Just("\\".to_string()),
        Just("`".to_string()),
        Just("\\\n".to_string()),
        Just("<<EOF".to_string()),
        Just("<<-EOF".to_string()),
        Just("3<<'EOF'".to_string()),
        Just("EOF".to_string()),
        Just("\tEOF".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("[\"a\", \"b\"]".to_string()),
        Just("--flag=v ".to_string()),
        Just("a=b ".to_string()),
        Just("${A:-b}".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("\u{a0}".to_string()),
        Just("\u{feff}".to_string()),
        "\\PC{0,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..300)) {
        check(&input);
    }

    #[test]
    fn dockerfile_like_text_never_panics(parts in prop::collection::vec(fragment(), 0..40)) {
        check(parts.concat().as_bytes());
    }
}

#[test]
fn deep_nesting_is_refused_without_crashing() {
    let onbuild = "ONBUILD ".repeat(10_000) + "RUN x\n";
    assert!(parse(onbuild.as_bytes()).is_err());
    let substitutions = format!("RUN <<EOF {}\nEOF\n", "${A:-".repeat(10_000));
    check(substitutions.as_bytes());
    let json = format!("CMD {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    check(json.as_bytes());
}
