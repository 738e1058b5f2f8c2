//! The parser's rules, one test per rule, through the public API. Several cases are
//! BuildKit's own parser tests (parser_test.go, parser_heredoc_test.go) restated.

use kiln_frontend::parser::{Heredoc, ParseErrorKind, ParseResult, parse};

fn parsed(text: &str) -> ParseResult {
    match parse(text.as_bytes()) {
        Ok(result) => result,
        Err(err) => panic!("{text:?} did not parse: {err}"),
    }
}

fn dump(text: &str) -> String {
    parsed(text).dump()
}

/// The error's message, start line and end line.
fn failure(text: &str) -> (String, usize, usize) {
    match parse(text.as_bytes()) {
        Ok(result) => panic!("{text:?} parsed: {}", result.dump()),
        Err(err) => (err.kind.to_string(), err.start_line, err.end_line),
    }
}

fn heredoc(name: &str, content: &str, expand: bool, chomp: bool, fd: u64) -> Heredoc {
    Heredoc {
        name: name.to_string(),
        file_descriptor: fd,
        expand,
        chomp,
        content: content.to_string(),
    }
}

/// BuildKit's TestParseExtractsHeredoc.
#[test]
fn heredocs_are_extracted() {
    let file = "
FROM alpine:3.6

ENV NAME=me

RUN ls

USER <<INVALID
INVALID

RUN <<EMPTY
EMPTY

RUN 3<<EMPTY2
EMPTY2

RUN \"<<NOHEREDOC\"

RUN <<INDENT
\tfoo
\tbar
INDENT

RUN <<-UNINDENT
\tbaz
\tquux
UNINDENT

RUN <<-UNINDENT2
\tbaz
\tquux
\tUNINDENT2

RUN <<-EXPAND
\texpand $NAME
EXPAND

RUN <<-'NOEXPAND'
\tdon't expand $NAME
NOEXPAND

RUN <<COPY
echo hello world
echo foo bar
COPY

RUN <<COMMENT
# internal comment
echo hello world
echo foo bar # trailing comment
COMMENT

RUN --mount=type=cache,target=/foo <<MOUNT
echo hello
MOUNT

COPY <<FILE1 <<FILE2 /dest
content 1
FILE1
content 2
FILE2

COPY <<EOF /quotes
\"foo\"
'bar'
EOF

COPY <<X <<Y /dest
Y
X
X
Y

RUN <<COMPLEX python3
print('hello world')
COMPLEX

COPY <<file.txt /dest
hello world
file.txt

RUN <<eo'f'
echo foo
eof

RUN <<eo\\'f
echo foo
eo'f

RUN <<'e'o\\'f
echo foo
eo'f

RUN <<'one two'
echo bar
one two

RUN <<$EOF
$EOF

RUN <<  EOF
EOF

RUN <<  EOF  > foo
EOF
\t";
    let expected: Vec<Vec<Heredoc>> = vec![
        vec![],
        vec![],
        vec![],
        vec![],
        vec![heredoc("EMPTY", "", true, false, 0)],
        vec![heredoc("EMPTY2", "", true, false, 3)],
        vec![],
        vec![heredoc("INDENT", "\tfoo\n\tbar\n", true, false, 0)],
        vec![heredoc("UNINDENT", "\tbaz\n\tquux\n", true, true, 0)],
        vec![heredoc("UNINDENT2", "\tbaz\n\tquux\n", true, true, 0)],
        vec![heredoc("EXPAND", "\texpand $NAME\n", true, true, 0)],
        vec![heredoc(
            "NOEXPAND",
            "\tdon't expand $NAME\n",
            false,
            true,
            0,
        )],
        vec![heredoc(
            "COPY",
            "echo hello world\necho foo bar\n",
            true,
            false,
            0,
        )],
        vec![heredoc(
            "COMMENT",
            "# internal comment\necho hello world\necho foo bar # trailing comment\n",
            true,
            false,
            0,
        )],
        vec![heredoc("MOUNT", "echo hello\n", true, false, 0)],
        vec![
            heredoc("FILE1", "content 1\n", true, false, 0),
            heredoc("FILE2", "content 2\n", true, false, 0),
        ],
        vec![heredoc("EOF", "\"foo\"\n'bar'\n", true, false, 0)],
        vec![
            heredoc("X", "Y\n", true, false, 0),
            heredoc("Y", "X\n", true, false, 0),
        ],
        vec![heredoc("COMPLEX", "print('hello world')\n", true, false, 0)],
        vec![heredoc("file.txt", "hello world\n", true, false, 0)],
        vec![heredoc("eof", "echo foo\n", false, false, 0)],
        vec![heredoc("eo'f", "echo foo\n", true, false, 0)],
        vec![heredoc("eo'f", "echo foo\n", false, false, 0)],
        vec![heredoc("one two", "echo bar\n", false, false, 0)],
        vec![heredoc("$EOF", "", true, false, 0)],
        vec![heredoc("EOF", "", true, false, 0)],
        vec![heredoc("EOF", "", true, false, 0)],
    ];
    let result = parsed(file);
    assert_eq!(result.nodes.len(), expected.len() + 1);
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(
            &result.nodes[i + 1].heredocs,
            want,
            "node {}",
            result.nodes[i + 1].original
        );
    }
    // `USER <<INVALID` reads no body, so its terminator is an instruction of its own.
    assert_eq!(result.nodes[4].keyword, "invalid");
}

/// BuildKit's TestParseJSONHeredoc: exec form reads no heredoc.
#[test]
fn exec_form_has_no_heredocs() {
    let result =
        parsed("\nFROM alpine:3.6\n\nRUN [\"whoami\"]\nRUN [\"<<EOF\"]\nRUN [\"<<'EOF'\"]\n\t");
    for node in &result.nodes[1..] {
        assert!(node.heredocs.is_empty(), "{}", node.original);
    }
}

#[test]
fn heredoc_lines_and_dump() {
    let file = "FROM a\nCOPY --chmod=644 <<one 3<<-\"two\" /dst\n1\none\n\t2\n\ttwo\nRUN x\n";
    let result = parsed(file);
    let copy = &result.nodes[1];
    assert_eq!((copy.start_line, copy.end_line), (2, 6));
    assert_eq!(
        copy.dump(),
        r#"(copy ["--chmod=644"] "<<one" "3<<-\"two\"" "/dst")"#
    );
    assert_eq!(
        copy.heredocs,
        [
            heredoc("one", "1\n", true, false, 0),
            heredoc("two", "\t2\n", false, true, 3)
        ]
    );
    assert_eq!(
        (result.nodes[2].start_line, result.nodes[2].end_line),
        (7, 7)
    );
}

#[test]
fn heredocs_keep_line_endings_and_need_an_exact_terminator() {
    let result = parsed("RUN <<EOF\r\na\r\n EOF\nEOF \nEOF\r\n");
    assert_eq!(result.nodes[0].heredocs[0].content, "a\r\n EOF\nEOF \n");
    assert_eq!(result.nodes[0].end_line, 5);
}

#[test]
fn heredocs_behind_onbuild_belong_to_the_outer_node() {
    let result = parsed("FROM a\nONBUILD RUN <<EOF\necho hi\nEOF\n");
    let onbuild = &result.nodes[1];
    assert_eq!(onbuild.dump(), r#"(onbuild (run "<<EOF"))"#);
    assert_eq!(
        onbuild.heredocs,
        [heredoc("EOF", "echo hi\n", true, false, 0)]
    );
    let inner = onbuild.inner.as_deref().unwrap();
    assert!(inner.heredocs.is_empty());
    assert_eq!((inner.start_line, inner.end_line), (2, 4));
}

#[test]
fn heredocs_only_in_run_copy_add() {
    let result = parsed("CMD <<EOF\nEOF\nENTRYPOINT <<EOF\n");
    assert!(result.nodes.iter().all(|n| n.heredocs.is_empty()));
    assert_eq!(result.nodes.len(), 3);
}

#[test]
fn unterminated_heredoc() {
    assert_eq!(
        failure("FROM a\nRUN <<EOF\nhello\n"),
        ("unterminated heredoc".to_string(), 2, 3)
    );
    assert_eq!(failure("FROM a\nRUN <<A <<B\nA\nB-\n").1, 2);
}

/// BuildKit's TestParseWarnsOnEmptyContinutationLine.
#[test]
fn empty_continuation_lines_warn() {
    let file = "
FROM alpine:3.6

RUN valid \\
    continuation

RUN something \\

    following \\

    more

RUN another \\

    thing

RUN non-indented \\
# this is a comment
   after-comment

RUN indented \\
    # this is an indented comment
    comment
\t";
    let result = parsed(file);
    assert_eq!(result.warnings.len(), 2);
    assert_eq!(
        result.warnings[0].short,
        "Empty continuation line found in: RUN something     following     more"
    );
    assert_eq!(result.warnings[0].line, 11);
    assert_eq!(
        result.warnings[1].short,
        "Empty continuation line found in: RUN another     thing"
    );
    assert_eq!(result.warnings[1].line, 15);
    assert!(
        result.warnings[0]
            .detail
            .contains("will become errors in a future release")
    );
    assert_eq!(
        result.warnings[0].url,
        "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/"
    );
    assert_eq!(result.nodes[4].args, ["non-indented    after-comment"]);
    assert_eq!(result.nodes[5].args, ["indented     comment"]);
}

/// BuildKit's TestParseReturnsScannerErrors.
#[test]
fn overlong_lines_are_errors() {
    let label = "a".repeat(64 * 1024);
    let file = format!("\n\t\tFROM image\n\t\tLABEL test={label}\n");
    let (message, line, _) = failure(&file);
    assert_eq!(
        message,
        "dockerfile line greater than max allowed size of 65535"
    );
    assert_eq!(line, 2);
    // One byte less fits.
    let label = "a".repeat(64 * 1024 - 12);
    assert_eq!(parsed(&format!("LABEL test={label}\n")).nodes.len(), 1);
}

#[test]
fn continuation_rules() {
    assert_eq!(
        dump("RUN a \\\n  b \\\n\n# c\n  c\n"),
        r#"(run "a   b   c")"#
    );
    // An escaped escape character does not continue the line.
    assert_eq!(
        dump("RUN a \\\\\nRUN b\n"),
        "(run \"a \\\\\\\\\")\n(run \"b\")"
    );
    // Blanks after the escape character are allowed.
    assert_eq!(dump("RUN a \\ \t\nb\n"), r#"(run "a b")"#);
    // A continuation at the end of the file ends the instruction.
    assert_eq!(dump("RUN a \\"), r#"(run "a")"#);
    // A lone escape character on the first line starts an instruction.
    let result = parsed("\\\nRUN a\n");
    assert_eq!(result.dump(), r#"(run "a")"#);
    assert_eq!(
        (result.nodes[0].start_line, result.nodes[0].end_line),
        (1, 2)
    );
    // CRLF line endings.
    assert_eq!(
        dump("FROM a\r\nRUN b \\\r\n c\r\n"),
        "(from \"a\")\n(run \"b  c\")"
    );
}

#[test]
fn backtick_escape_directive() {
    let result = parsed("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo `\"hi`\"\n");
    assert_eq!(result.escape_token, '`');
    assert_eq!(result.nodes[1].args, ["dir c:\\   && echo `\"hi`\""]);
    assert_eq!(result.directives[0].name, "escape");
    assert_eq!(result.directives[0].line, 1);
}

#[test]
fn directives_only_at_the_top() {
    let result =
        parsed("# syntax=docker/dockerfile:1\n# CHECK = skip=all\n\n# escape=`\nFROM a \\\n b\n");
    let names: Vec<&str> = result.directives.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["syntax", "check"]);
    assert_eq!(result.escape_token, '\\');
    assert_eq!(result.nodes[0].args, ["a", "b"]);
    // Directives are not comments of the first instruction; other comments are.
    assert_eq!(result.nodes[0].prev_comment, ["escape=`"]);
}

#[test]
fn directive_errors() {
    // BuildKit reports these at the line before the directive (it counts from 0 there).
    assert_eq!(
        failure("# escape=x\nFROM a\n"),
        (
            "invalid escape token 'x' does not match ` or \\".to_string(),
            0,
            0
        )
    );
    assert_eq!(
        failure("# syntax=a\n# Syntax=b\nFROM a\n"),
        (
            "only one syntax parser directive can be used".to_string(),
            1,
            1
        )
    );
}

#[test]
fn byte_order_mark_is_skipped() {
    let result = parse(b"\xEF\xBB\xBF# escape=`\nFROM a `\n b\n").unwrap();
    assert_eq!(result.escape_token, '`');
    assert_eq!(result.dump(), "(from \"a\" \"b\")");
}

#[test]
fn comments_before_an_instruction() {
    let result = parsed("# one\n\n  # two\nFROM a\n# three\n#\n# four\nRUN b\nRUN c\n");
    // Blank lines do not interrupt them; an indented comment keeps its `#` (BuildKit
    // drops the line's first byte); an empty `#` line clears them.
    assert_eq!(result.nodes[0].prev_comment, ["one", "# two"]);
    assert_eq!(result.nodes[1].prev_comment, ["four"]);
    assert!(result.nodes[2].prev_comment.is_empty());
}

#[test]
fn original_and_keyword_as_written() {
    let result = parsed("  Run  --mount=a   echo \\\n   hi  \n");
    let run = &result.nodes[0];
    assert_eq!(run.original, "Run  --mount=a   echo    hi  ");
    assert_eq!(
        (run.keyword.as_str(), run.keyword_as_written.as_str()),
        ("run", "Run")
    );
    assert_eq!(run.flags, ["--mount=a"]);
    assert_eq!(run.args, ["echo    hi"]);
}

#[test]
fn unknown_instructions_are_kept() {
    let result = parsed("FROM a\nFOO bar baz\n");
    assert_eq!(result.nodes[1].dump(), r#"(foo "")"#);
    assert_eq!(result.nodes[1].keyword_as_written, "FOO");
}

#[test]
fn parse_errors_carry_lines() {
    assert_eq!(
        failure("FROM a\n\nENV PATH\n"),
        ("ENV must have two arguments".to_string(), 3, 3)
    );
    assert_eq!(
        failure("FROM a\nLABEL a=b \\\n  c\n"),
        (
            r#"Syntax error - can't find = in "c". Must be of the form: name=value"#.to_string(),
            2,
            3
        )
    );
    assert_eq!(
        failure("FROM a\nCMD [\"a\", 1]\n"),
        (
            "when using JSON array syntax, arrays must be comprised of strings only".to_string(),
            2,
            2
        )
    );
    assert_eq!(failure(""), ("file with no instructions".to_string(), 0, 0));
    assert_eq!(
        failure("# a\n\n# b\n"),
        ("file with no instructions".to_string(), 3, 3)
    );
    let err = parse(b"FROM a\nENV x\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "dockerfile parse error on line 2: ENV must have two arguments"
    );
    assert_eq!(err.kind, ParseErrorKind::MissingValue("ENV"));
    assert_eq!(
        parse(b"").unwrap_err().to_string(),
        "dockerfile parse error: file with no instructions"
    );
}

#[test]
fn stray_bytes_pass_through_like_buildkit() {
    let result = parse(b"FROM a\nLABEL maintainer Jos\xe9\nENV a=\xe9\n").unwrap();
    // Old-form LABEL keeps the bytes; the name=value form decodes them.
    assert_eq!(result.nodes[1].args, ["maintainer", "Jos\u{fffd}", ""]);
    assert_eq!(
        result.nodes[1].dump(),
        r#"(label "maintainer" "Jos\xe9" "")"#
    );
    assert_eq!(result.nodes[2].dump(), "(env \"a\" \"\u{fffd}\" \"=\")");
    assert!(result.nodes[2].raw_args.is_none());
}

#[test]
fn flags_and_json() {
    assert_eq!(
        dump("COPY --from=x [\"a b\", \"c\"]\n"),
        r#"(copy ["--from=x"] "a b" "c")"#
    );
    assert!(parsed("CMD [\"a\"]\n").nodes[0].json);
    assert!(!parsed("CMD [\"a\"\n").nodes[0].json);
    assert_eq!(dump("CMD [\"\\u00e9\\u0001\"]\n"), r#"(cmd "é\x01")"#);
}
