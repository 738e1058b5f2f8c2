use super::*;

fn parse_df(df: &str) -> Result<Parsed, InstructionError> {
    let parsed = crate::parser::parse(df.as_bytes()).expect("parse");
    parse(&parsed.nodes)
}

fn one(df: &str) -> Command {
    let p = parse_df(&format!("FROM scratch\n{df}")).unwrap();
    p.stages[0].commands[0].command.clone()
}

fn fail(df: &str) -> String {
    parse_df(&format!("FROM scratch\n{df}"))
        .unwrap_err()
        .message
}

#[test]
fn stages_and_meta_args() {
    let p = parse_df("ARG A=1\nARG B\nFROM busybox AS Build\nRUN x\nFROM build\n").unwrap();
    assert_eq!(p.meta_args.len(), 2);
    assert_eq!(p.meta_args[0].0[0].value.as_deref(), Some("1"));
    assert_eq!(p.stages.len(), 2);
    assert_eq!(p.stages[0].name, "build");
    assert_eq!(p.stages[0].base_name, "busybox");
    assert_eq!(p.stages[0].commands.len(), 1);
    assert_eq!(p.stages[1].base_name, "build");
    assert_eq!(p.stages[0].location.start_line, 3);
}

#[test]
fn from_flags_and_names() {
    let p = parse_df("FROM --platform=$BUILDPLATFORM busybox AS b\n").unwrap();
    assert_eq!(p.stages[0].platform, "$BUILDPLATFORM");
    assert_eq!(
        parse_df("FROM busybox AS 1x\n").unwrap_err().message,
        "dockerfile parse error on line 1: invalid name for build stage: \"1x\", name can't start with a number or contain symbols"
    );
    assert_eq!(
        parse_df("FROM a b\n").unwrap_err().message,
        "dockerfile parse error on line 1: FROM requires either one or three arguments"
    );
    assert_eq!(
        parse_df("FROM --plat=x a\n").unwrap_err().message,
        "dockerfile parse error on line 1: unknown flag: --plat"
    );
}

#[test]
fn argument_counts() {
    for cmd in ["MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"] {
        assert_eq!(
            fail(cmd),
            format!("dockerfile parse error on line 2: {cmd} requires exactly one argument")
        );
    }
    for cmd in ["LABEL", "ONBUILD", "HEALTHCHECK", "EXPOSE", "VOLUME", "ARG"] {
        assert_eq!(
            fail(cmd),
            format!("dockerfile parse error on line 2: {cmd} requires at least one argument")
        );
    }
    for cmd in ["ADD", "COPY"] {
        assert_eq!(
            fail(&format!("{cmd} arg1")),
            format!(
                "dockerfile parse error on line 2: {cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
            )
        );
    }
}

#[test]
fn env_label_arg_forms() {
    let Command::Env(kv) = one("ENV A=1 B=\"x y\"") else {
        panic!()
    };
    assert_eq!(kv.len(), 2);
    // Quotes stay until the value is expanded, as in BuildKit.
    assert_eq!(kv[1].value, "\"x y\"");
    assert!(!kv[0].no_delim);
    let Command::Env(kv) = one("ENV A legacy value") else {
        panic!()
    };
    assert_eq!(kv[0].value, "legacy value");
    assert!(kv[0].no_delim);
    let Command::Label(kv) = one("LABEL a=b") else {
        panic!()
    };
    assert_eq!(kv[0].key, "a");
    let Command::Arg(a) = one("ARG X Y=2") else {
        panic!()
    };
    assert_eq!(a[0].value, None);
    assert_eq!(a[1].value.as_deref(), Some("2"));
    assert_eq!(
        fail("ARG =x"),
        "dockerfile parse error on line 2: ARG names can not be blank"
    );
}

#[test]
fn copy_and_add_flags() {
    let Command::Copy(c) = one(
        "COPY --from=b --chown=1:2 --chmod=755 --link --parents --exclude=*.md --exclude=x a b /d/",
    ) else {
        panic!()
    };
    assert_eq!(c.from, "b");
    assert_eq!(c.chown, "1:2");
    assert_eq!(c.chmod, "755");
    assert!(c.link && c.parents);
    assert_eq!(c.exclude_patterns, vec!["*.md", "x"]);
    assert_eq!(c.sources.source_paths, vec!["a", "b"]);
    assert_eq!(c.sources.dest, "/d/");
    let Command::Add(a) =
        one("ADD --checksum=sha256:abc --keep-git-dir --unpack=false https://x/y /d")
    else {
        panic!()
    };
    assert_eq!(a.checksum, "sha256:abc");
    assert_eq!(a.keep_git_dir, Some(true));
    assert_eq!(a.unpack, Some(false));
    assert_eq!(
        fail("COPY --checksum=x a b"),
        "dockerfile parse error on line 2: unknown flag: --checksum"
    );
}

#[test]
fn copy_heredoc_sources() {
    let Command::Copy(c) = one("COPY <<EOF /dest\nhello\nEOF") else {
        panic!()
    };
    assert_eq!(c.sources.source_contents.len(), 1);
    assert_eq!(c.sources.source_contents[0].path, "EOF");
    assert_eq!(c.sources.source_contents[0].data, "hello\n");
    assert!(c.sources.source_contents[0].expand);
}

#[test]
fn run_flags() {
    let Command::Run(r) =
        one("RUN --mount=type=cache,target=/c --network=none --security=insecure make")
    else {
        panic!()
    };
    assert_eq!(r.mounts, vec!["type=cache,target=/c"]);
    assert_eq!(r.network, "none");
    assert_eq!(r.security, "insecure");
    assert_eq!(r.cmd.args, vec!["make"]);
    assert!(r.cmd.prepend_shell);
    let Command::Run(r) = one("RUN [\"echo\", \"hi\"]") else {
        panic!()
    };
    assert_eq!(r.cmd.args, vec!["echo", "hi"]);
    assert!(!r.cmd.prepend_shell);
    assert_eq!(
        fail("RUN --network=bridge x"),
        "dockerfile parse error on line 2: invalid network mode \"bridge\""
    );
    assert_eq!(
        fail("RUN --security=x y"),
        "dockerfile parse error on line 2: security \"x\" is not valid"
    );
    assert_eq!(
        fail("RUN --mount=type=bind,from=$X,target=/x y"),
        "dockerfile parse error on line 2: 'from' doesn't support variable expansion, define alias stage instead"
    );
}

#[test]
fn healthcheck_forms() {
    let Command::Healthcheck(h) = one("HEALTHCHECK NONE") else {
        panic!()
    };
    assert_eq!(h.test, vec!["NONE"]);
    let Command::Healthcheck(h) = one(
        "HEALTHCHECK --interval=1m --timeout=3s --start-period=1s --start-interval=2s --retries=3 CMD [\"curl\", \"x\"]",
    ) else {
        panic!()
    };
    assert_eq!(h.test, vec!["CMD", "curl", "x"]);
    assert_eq!(h.interval, 60_000_000_000);
    assert_eq!(h.retries, 3);
    assert_eq!(
        fail("HEALTHCHECK NONE x"),
        "dockerfile parse error on line 2: HEALTHCHECK NONE takes no arguments"
    );
    assert_eq!(
        fail("HEALTHCHECK FOO x"),
        "dockerfile parse error on line 2: Unknown type \"FOO\" in HEALTHCHECK (try CMD)"
    );
    assert_eq!(
        fail("HEALTHCHECK --retries=-1 CMD x"),
        "dockerfile parse error on line 2: --retries cannot be negative (-1)"
    );
    assert!(fail("HEALTHCHECK --interval=1 CMD x").contains("missing unit"));
}

#[test]
fn shell_needs_json() {
    let Command::Shell(s) = one("SHELL [\"/bin/bash\", \"-c\"]") else {
        panic!()
    };
    assert_eq!(s, vec!["/bin/bash", "-c"]);
    assert_eq!(
        fail("SHELL /bin/bash -c"),
        "dockerfile parse error on line 2: SHELL requires the arguments to be in JSON form"
    );
}

#[test]
fn onbuild_rules() {
    let Command::Onbuild(e) = one("ONBUILD RUN echo hi") else {
        panic!()
    };
    assert_eq!(e, "RUN echo hi");
    assert_eq!(
        fail("ONBUILD ONBUILD RUN x"),
        "dockerfile parse error on line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"
    );
    assert_eq!(
        fail("ONBUILD FROM x"),
        "dockerfile parse error on line 2: FROM isn't allowed as an ONBUILD trigger"
    );
    assert_eq!(
        fail("ONBUILD MAINTAINER x"),
        "dockerfile parse error on line 2: MAINTAINER isn't allowed as an ONBUILD trigger"
    );
}

#[test]
fn unknown_instructions_get_suggestions() {
    assert_eq!(
        fail("COPPY a b"),
        "dockerfile parse error on line 2: unknown instruction: COPPY (did you mean COPY?)"
    );
    assert_eq!(
        fail("xyzzy a"),
        "dockerfile parse error on line 2: unknown instruction: xyzzy"
    );
}

#[test]
fn expose_ports_are_sorted_as_written() {
    let Command::Expose(p) = one("EXPOSE 80 443/tcp 53/udp") else {
        panic!()
    };
    assert_eq!(p, vec!["443/tcp", "53/udp", "80"]);
}

#[test]
fn volume_and_cmd_forms() {
    let Command::Volume(v) = one("VOLUME [\"/a\", \"/b\"]") else {
        panic!()
    };
    assert_eq!(v, vec!["/a", "/b"]);
    let Command::Cmd(c) = one("CMD echo hi there") else {
        panic!()
    };
    assert_eq!(c.args, vec!["echo hi there"]);
    assert!(c.prepend_shell);
    let Command::Entrypoint(c) = one("ENTRYPOINT []") else {
        panic!()
    };
    assert!(c.args.is_empty());
}
