use std::collections::BTreeMap;

use kiln_graph::{
    Chmod, Definition, FileAction, History, ImageConfig, MountKind, NetworkMode, Op, Platform,
    RootFs, SourceOp,
};

use super::*;

/// Resolves any reference to a small fixed image, pinned by a digest derived from the
/// reference, so tests need no registry.
struct FakeResolver {
    env: Vec<String>,
    on_build: Vec<String>,
    working_dir: String,
}

impl Default for FakeResolver {
    fn default() -> Self {
        FakeResolver {
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            on_build: vec![],
            working_dir: String::new(),
        }
    }
}

impl ImageResolver for FakeResolver {
    fn normalize(&self, reference: &str) -> Result<NormalizedRef, String> {
        if reference.chars().any(|c| c.is_ascii_uppercase()) {
            return Err("invalid reference format: repository name must be lowercase".into());
        }
        let (name, tag) = match reference.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
            _ => (reference.to_string(), "latest".to_string()),
        };
        let full = if name.contains('/') {
            format!("{name}:{tag}")
        } else {
            format!("docker.io/library/{name}:{tag}")
        };
        let familiar = name.strip_prefix("docker.io/library/").unwrap_or(&name);
        Ok(NormalizedRef {
            full,
            familiar: format!("{familiar}:{tag}"),
        })
    }

    fn resolve(
        &self,
        image: ImageSource<'_>,
        platform: &Platform,
    ) -> Result<ResolvedImage, String> {
        let reference = match image {
            ImageSource::Registry(r) => r.to_string(),
            ImageSource::OciLayout { reference, .. } => reference.to_string(),
        };
        if reference.contains("missing") {
            return Err("not found".into());
        }
        let mut config = ImageConfig::empty(platform);
        config.config.env = self.env.clone();
        config.config.cmd = Some(vec!["/bin/sh".into()]);
        config.config.on_build = self.on_build.clone();
        config.config.working_dir = self.working_dir.clone();
        config.rootfs = RootFs {
            kind: "layers".into(),
            diff_ids: vec![kiln_graph::Digest::of(reference.as_bytes()).to_string()],
        };
        config.history = vec![History {
            created_by: "base".into(),
            ..History::default()
        }];
        Ok(ResolvedImage {
            reference: format!(
                "{reference}@{}",
                kiln_graph::Digest::of(reference.as_bytes())
            ),
            config,
        })
    }
}

fn opts() -> ConvertOptions {
    ConvertOptions {
        build_platform: "linux/amd64".parse().unwrap(),
        ..ConvertOptions::default()
    }
}

fn build(df: &str) -> Definition {
    build_with(df, &opts())
}

fn build_with(df: &str, o: &ConvertOptions) -> Definition {
    convert(df.as_bytes(), o, &FakeResolver::default()).unwrap()
}

fn err(df: &str) -> ConvertError {
    convert(df.as_bytes(), &opts(), &FakeResolver::default()).unwrap_err()
}

fn history(def: &Definition) -> Vec<String> {
    def.targets[0]
        .image
        .history
        .iter()
        .map(|h| {
            format!(
                "{}{}",
                h.created_by,
                if h.empty_layer { " (empty)" } else { "" }
            )
        })
        .collect()
}

fn ops(def: &Definition) -> Vec<&Op> {
    def.vertices.iter().map(|v| &v.op).collect()
}

#[test]
fn digests_are_stable_across_runs() {
    let df = "FROM busybox\nARG V=1\nENV A=$V B=2\nCOPY . /app\nRUN echo $A\n";
    let a = build(df);
    let b = build(df);
    assert_eq!(a, b);
    assert_eq!(a.to_json(), b.to_json());
    let back = Definition::from_json(a.to_json().as_bytes()).unwrap();
    assert_eq!(back, a);
}

#[test]
fn build_arg_and_label_order_does_not_matter() {
    let df = "FROM busybox\nARG A\nARG B\nRUN echo $A $B\n";
    let mut o1 = opts();
    o1.build_args.insert("A".into(), "1".into());
    o1.build_args.insert("B".into(), "2".into());
    o1.labels.insert("x".into(), "1".into());
    o1.labels.insert("y".into(), "2".into());
    let mut o2 = opts();
    o2.labels.insert("y".into(), "2".into());
    o2.labels.insert("x".into(), "1".into());
    o2.build_args.insert("B".into(), "2".into());
    o2.build_args.insert("A".into(), "1".into());
    assert_eq!(build_with(df, &o1), build_with(df, &o2));
    // A changed value changes the RUN step's digest.
    let mut o3 = o1.clone();
    o3.build_args.insert("A".into(), "9".into());
    assert_ne!(
        build_with(df, &o1).targets[0].root,
        build_with(df, &o3).targets[0].root
    );
}

#[test]
fn unused_stages_are_not_in_the_graph() {
    let df = "FROM busybox AS a\nRUN echo a\nFROM busybox AS b\nRUN echo b\nFROM busybox\nCOPY --from=a /x /x\n";
    let def = build(df);
    let runs: Vec<String> = def
        .vertices
        .iter()
        .filter_map(|v| match &v.op {
            Op::Exec(e) => Some(e.args.join(" ")),
            _ => None,
        })
        .collect();
    assert_eq!(runs, vec!["/bin/sh -c echo a"]);
}

#[test]
fn target_selects_a_stage() {
    let df = "FROM busybox AS a\nLABEL s=a\nFROM busybox AS b\nLABEL s=b\n";
    let mut o = opts();
    o.target = Some("a".into());
    let def = build_with(df, &o);
    assert_eq!(def.targets[0].image.config.labels["s"], "a");
    o.target = Some("nope".into());
    let e = convert(df.as_bytes(), &o, &FakeResolver::default()).unwrap_err();
    assert_eq!(e.message, "target stage \"nope\" could not be found");
    o.target = Some("aa".into());
    let e = convert(df.as_bytes(), &o, &FakeResolver::default()).unwrap_err();
    assert_eq!(
        e.message,
        "target stage \"aa\" could not be found (did you mean a?)"
    );
}

#[test]
fn metadata_instructions_write_config_and_history() {
    let df = r#"FROM busybox
ENV A=1 B="two words"
LABEL x=y
EXPOSE 80 53/udp
VOLUME /data
USER nobody
WORKDIR /app
STOPSIGNAL SIGTERM
SHELL ["/bin/sh", "-ec"]
CMD echo hi
ENTRYPOINT ["/entry"]
HEALTHCHECK --interval=5s CMD true
MAINTAINER me
"#;
    let def = build(df);
    let img = &def.targets[0].image;
    assert_eq!(
        img.config.env,
        vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "A=1",
            "B=two words"
        ]
    );
    assert_eq!(img.config.labels["x"], "y");
    assert!(img.config.exposed_ports.contains_key("80/tcp"));
    assert!(img.config.exposed_ports.contains_key("53/udp"));
    assert!(img.config.volumes.contains_key("/data"));
    assert_eq!(img.config.user, "nobody");
    assert_eq!(img.config.working_dir, "/app");
    assert_eq!(img.config.stop_signal, "SIGTERM");
    assert_eq!(img.config.shell, vec!["/bin/sh", "-ec"]);
    // ENTRYPOINT after CMD keeps CMD.
    assert_eq!(
        img.config.cmd,
        Some(vec!["/bin/sh".into(), "-ec".into(), "echo hi".into()])
    );
    assert_eq!(img.config.entrypoint, Some(vec!["/entry".into()]));
    assert_eq!(img.author, "me");
    let hc = img.config.healthcheck.as_ref().unwrap();
    assert_eq!(hc.test, vec!["CMD-SHELL", "true"]);
    assert_eq!(hc.interval, 5_000_000_000);
    assert_eq!(
        history(&def),
        vec![
            "base",
            "ENV A=1 B=two words (empty)",
            "LABEL x=y (empty)",
            "EXPOSE [53/udp 80/tcp] (empty)",
            "VOLUME [/data] (empty)",
            "USER nobody (empty)",
            "WORKDIR /app",
            "STOPSIGNAL SIGTERM (empty)",
            "SHELL [/bin/sh -ec] (empty)",
            "CMD [\"/bin/sh\" \"-ec\" \"echo hi\"] (empty)",
            "ENTRYPOINT [\"/entry\"] (empty)",
            "HEALTHCHECK &{[\"CMD-SHELL\" \"true\"] \"5s\" \"0s\" \"0s\" \"0s\" '\\x00'} (empty)",
            "MAINTAINER me (empty)",
        ]
    );
}

#[test]
fn entrypoint_resets_inherited_cmd() {
    let def = build("FROM busybox\nENTRYPOINT [\"/e\"]\n");
    assert_eq!(def.targets[0].image.config.cmd, None);
}

#[test]
fn workdir_makes_a_directory_owned_by_the_user() {
    let def = build("FROM busybox\nUSER 1000:1000\nWORKDIR rel\nWORKDIR sub\n");
    let mkdirs: Vec<_> = ops(&def)
        .into_iter()
        .filter_map(|o| match o {
            Op::File(f) => match &f.actions[0] {
                FileAction::Mkdir(m) => Some(m.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(mkdirs.len(), 2);
    assert_eq!(mkdirs[0].path, "/rel");
    assert_eq!(mkdirs[1].path, "/rel/sub");
    assert_eq!(
        mkdirs[1].owner,
        Some(kiln_graph::Chown {
            user: kiln_graph::Principal::Id(1000),
            group: Some(kiln_graph::Principal::Id(1000))
        })
    );
    assert_eq!(def.targets[0].image.config.working_dir, "/rel/sub");
}

#[test]
fn copy_builds_file_ops_with_buildkit_options() {
    let def = build("FROM busybox\nWORKDIR /w\nCOPY --chmod=640 --chown=app a.txt sub/\n");
    let Some(Op::File(f)) = ops(&def).last().copied() else {
        panic!("no file op");
    };
    let FileAction::Copy(c) = &f.actions[0] else {
        panic!("not a copy");
    };
    assert_eq!(c.src, "/a.txt");
    assert_eq!(c.dest, "/w/sub/");
    assert_eq!(c.mode, Some(Chmod::Octal(0o640)));
    assert!(c.follow_symlinks && c.contents_only && c.allow_wildcard);
    assert!(!c.unpack_archives);
    assert_eq!(
        history(&def).last().unwrap(),
        "COPY --chown=app --chmod=640 a.txt sub/ # buildkit"
    );
    let local = def
        .vertices
        .iter()
        .find(|v| matches!(v.op, Op::Source(SourceOp::Local { .. })));
    assert!(local.is_some());
}

#[test]
fn copy_link_stacks_a_copy_made_on_scratch() {
    let def = build("FROM busybox\nCOPY --link a /a\n");
    let last = def.vertices.last().unwrap();
    assert!(matches!(last.op, Op::Merge(_)));
    assert_eq!(last.inputs.len(), 2);
    let copy = def.vertex(&last.inputs[1]).unwrap();
    let Op::File(f) = &copy.op else { panic!() };
    assert_eq!(f.base, None);
}

#[test]
fn copy_parents_uses_include_patterns() {
    let def =
        build("FROM busybox\nCOPY --parents src/**/x.conf /out/\nCOPY --parents ./a/./b/c /o/\n");
    let copies: Vec<_> = ops(&def)
        .into_iter()
        .filter_map(|o| match o {
            Op::File(f) => match &f.actions[0] {
                FileAction::Copy(c) => Some(c.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(copies[0].src, "/");
    assert_eq!(copies[0].include_patterns, vec!["src/**/x.conf"]);
    assert_eq!(copies[1].src, "/a");
    assert_eq!(copies[1].include_patterns, vec!["b/c"]);
}

#[test]
fn heredoc_sources_become_inline_files() {
    let df = "FROM busybox\nARG NAME=world\nCOPY <<EOF /greeting\nhello $NAME\nEOF\nCOPY <<'EOF' /literal\nhello $NAME\nEOF\n";
    let def = build(df);
    let files: Vec<String> = ops(&def)
        .into_iter()
        .filter_map(|o| match o {
            Op::File(f) => match f.actions.first() {
                Some(FileAction::Mkfile(m)) => Some(m.data.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(files, vec!["hello world\n", "hello $NAME\n"]);
}

#[test]
fn run_gets_env_args_mounts_and_history() {
    let df = r#"FROM busybox
ARG B=from-arg
ENV E=1
RUN --mount=type=cache,target=/cache --mount=type=secret,id=tok,env=TOKEN --mount=type=tmpfs,target=/t,size=1m --network=none echo $B
"#;
    let def = build(df);
    let exec = def
        .vertices
        .iter()
        .find_map(|v| match &v.op {
            Op::Exec(e) => Some(e.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(exec.args, vec!["/bin/sh", "-c", "echo $B"]);
    assert!(exec.env.contains(&"B=from-arg".to_string()));
    assert!(exec.env.contains(&"E=1".to_string()));
    assert_eq!(exec.network, NetworkMode::None);
    assert!(matches!(
        &exec.mounts[1].kind,
        MountKind::Cache { id, .. } if id == "/cache"
    ));
    assert!(matches!(
        exec.mounts[2].kind,
        MountKind::Tmpfs {
            size: Some(1048576)
        }
    ));
    assert_eq!(exec.secret_env[0].name, "TOKEN");
    assert_eq!(
        history(&def).last().unwrap(),
        "RUN |1 B=from-arg /bin/sh -c echo $B # buildkit"
    );
    // ARG values never reach the image config.
    assert!(
        !def.targets[0]
            .image
            .config
            .env
            .iter()
            .any(|e| e.starts_with("B="))
    );
}

#[test]
fn secret_values_and_proxy_args_stay_out_of_digests() {
    let df = "FROM busybox\nRUN --mount=type=secret,id=s cat /run/secrets/s\n";
    let mut o1 = opts();
    o1.build_args
        .insert("HTTP_PROXY".into(), "http://p1".into());
    let mut o2 = opts();
    o2.build_args
        .insert("HTTP_PROXY".into(), "http://p2".into());
    assert_eq!(
        build_with(df, &o1).targets[0].root,
        build_with(df, &o2).targets[0].root
    );
}

#[test]
fn the_sandbox_hostname_build_arg_names_every_run_container() {
    let df = "FROM busybox\nRUN hostname\n";
    let hostname = |def: &Definition| {
        ops(def).into_iter().find_map(|op| match op {
            Op::Exec(e) => Some(e.hostname.clone()),
            _ => None,
        })
    };
    assert_eq!(hostname(&build(df)), Some(None));
    let mut o = opts();
    o.build_args
        .insert("BUILDKIT_SANDBOX_HOSTNAME".into(), "foo".into());
    assert_eq!(hostname(&build_with(df, &o)), Some(Some("foo".into())));
    o.build_args
        .insert("BUILDKIT_SANDBOX_HOSTNAME".into(), String::new());
    assert_eq!(hostname(&build_with(df, &o)), Some(None));
}

#[test]
fn global_args_and_platform_args() {
    let df = "ARG TAG=1.0\nFROM busybox:${TAG}\nARG TARGETARCH\nARG TAG\nLABEL arch=$TARGETARCH tag=$TAG\n";
    let def = build(df);
    let src = def
        .vertices
        .iter()
        .find_map(|v| match &v.op {
            Op::Source(SourceOp::Image { reference, .. }) => Some(reference.clone()),
            _ => None,
        })
        .unwrap();
    assert!(src.starts_with("docker.io/library/busybox:1.0@sha256:"));
    let labels = &def.targets[0].image.config.labels;
    assert_eq!(labels["arch"], "amd64");
    assert_eq!(labels["tag"], "1.0");
}

#[test]
fn onbuild_triggers_run_in_the_child() {
    let df = "FROM busybox AS base\nONBUILD ENV TRIGGERED=yes\nFROM base\nLABEL child=1\n";
    let def = build(df);
    let img = &def.targets[0].image;
    assert!(img.config.env.contains(&"TRIGGERED=yes".to_string()));
    assert!(img.config.on_build.is_empty());
    let df = "FROM busybox\nONBUILD COPY . /app\n";
    assert_eq!(
        build(df).targets[0].image.config.on_build,
        vec!["COPY . /app"]
    );
}

#[test]
fn image_onbuild_triggers_are_applied() {
    let resolver = FakeResolver {
        on_build: vec!["ENV FROM_IMAGE=1".into()],
        ..FakeResolver::default()
    };
    let def = convert(b"FROM busybox\n", &opts(), &resolver).unwrap();
    assert!(
        def.targets[0]
            .image
            .config
            .env
            .contains(&"FROM_IMAGE=1".to_string())
    );
}

#[test]
fn errors_name_the_line() {
    let e = err("FROM busybox\nFOO bar\n");
    assert_eq!(e.location.unwrap().start_line, 2);
    assert_eq!(
        e.message,
        "dockerfile parse error on line 2: unknown instruction: FOO (did you mean FROM?)"
    );
    let e = err("FROM busybox\nCOPY --chowm=1 a b\n");
    assert_eq!(
        e.message,
        "dockerfile parse error on line 2: unknown flag: --chowm (did you mean chown?)"
    );
    let mut o = opts();
    o.target = Some("first".into());
    let e = convert(
        b"FROM busybox AS first\nCOPY --from=later /a /b\nFROM busybox AS later\n",
        &o,
        &FakeResolver::default(),
    )
    .unwrap_err();
    assert!(
        e.message.contains("cannot copy from stage"),
        "{}",
        e.message
    );
    let e = err("FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n");
    assert!(
        e.message.contains("circular dependency detected"),
        "{}",
        e.message
    );
    let e = err("FROM missing-image\n");
    assert_eq!(e.location.unwrap().start_line, 1);
    assert!(e.message.contains("not found"));
    let e = err("ENV A=1\n");
    assert_eq!(e.message, "no build stage in current context");
    let e = err("FROM busybox\nCOPY --from=$X /a /b\n");
    assert!(
        e.message
            .contains("variable expansion is not supported for --from")
    );
    let e = err("FROM busybox\nRUN --mount=type=bind,target=/ true\n");
    assert_eq!(e.message, "invalid mount target \"/\"");
    assert_eq!(e.location.unwrap().start_line, 2);
}

#[test]
fn named_contexts_override_stages_and_images() {
    let mut o = opts();
    o.named_contexts.insert(
        "extra".into(),
        NamedContext::Local {
            exclude_patterns: vec![],
        },
    );
    let def = build_with("FROM busybox\nCOPY --from=extra /data.txt /d\n", &o);
    assert!(def.vertices.iter().any(|v| matches!(
        &v.op,
        Op::Source(SourceOp::Local { name, .. }) if name == "extra"
    )));
}

#[test]
fn stages_by_index_and_scratch() {
    let def = build("FROM scratch\nCOPY a /a\nFROM busybox\nCOPY --from=0 /a /b\n");
    assert_eq!(history(&def).last().unwrap(), "COPY /a /b # buildkit");
    let def = build("FROM scratch\nCOPY a /a\n");
    assert_eq!(def.targets[0].image.config.working_dir, "/");
    assert_eq!(history(&def), vec!["COPY a /a # buildkit"]);
}

#[test]
fn explicit_platform_sets_the_image_platform() {
    let mut o = opts();
    o.target_platform = Some("linux/arm64".parse().unwrap());
    let def = build_with("FROM busybox\n", &o);
    assert_eq!(def.targets[0].image.architecture, "arm64");
    assert_eq!(def.targets[0].platform.to_string(), "linux/arm64");
}

#[test]
fn progress_names_count_steps() {
    let def = build("FROM busybox AS b\nCOPY a /a\nRUN true\nFROM b\nRUN false\n");
    let names: Vec<&str> = def
        .vertices
        .iter()
        .map(|v| v.meta.name.as_str())
        .filter(|n| n.starts_with('['))
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("[b 1/3] FROM docker.io/library/busybox:latest@sha256:")),
        "{names:?}"
    );
    assert!(names.contains(&"[b 2/3] COPY a /a"), "{names:?}");
    assert!(names.contains(&"[b 3/3] RUN true"), "{names:?}");
    assert!(names.contains(&"[stage-1 1/1] RUN false"), "{names:?}");
}

#[test]
fn build_args_override_defaults_but_not_undeclared() {
    let df = "FROM busybox\nARG A=default\nLABEL a=$A b=$B\n";
    let mut o = opts();
    o.build_args = BTreeMap::from([
        ("A".into(), "cli".into()),
        ("B".into(), "undeclared".into()),
    ]);
    let def = build_with(df, &o);
    assert_eq!(def.targets[0].image.config.labels["a"], "cli");
    assert_eq!(def.targets[0].image.config.labels["b"], "");
}

#[test]
fn broken_checks_fail_the_build_only_with_error_true() {
    let msg = |df: &str| err(df).message;
    assert_eq!(
        msg("# check=error=true\nFROM busybox as base\nMAINTAINER me\n"),
        "lint violation found for rules: FromAsCasing, MaintainerDeprecated"
    );
    build("FROM busybox as base\nMAINTAINER me\n");
    build(
        "# check=skip=FromAsCasing,MaintainerDeprecated;error=true\nFROM busybox as base\nMAINTAINER me\n",
    );
    assert_eq!(
        msg("# check=error=true\nFROM busybox\nENV A=$NOPE\n"),
        "lint violation found for rules: UndefinedVar"
    );
    // A declared ARG is defined even without a value; RUN is left to the shell.
    build("# check=error=true\nFROM busybox\nARG X\nENV A=$X\nRUN echo $NOPE\n");
    // Only the stages the target needs are checked.
    build("# check=error=true\nFROM busybox AS unused\nCMD echo x\nFROM busybox\n");
    assert_eq!(
        msg("# check=nope\nFROM busybox\n"),
        "failed to parse check options: invalid check option \"nope\""
    );
    let mut o = opts();
    o.build_args
        .insert("BUILDKIT_DOCKERFILE_CHECK".into(), "error=true".into());
    let e = convert(b"FROM busybox\nCMD echo hi\n", &o, &FakeResolver::default()).unwrap_err();
    assert_eq!(
        e.message,
        "lint violation found for rules: JSONArgsRecommended"
    );
}

#[test]
fn a_base_image_of_another_platform_breaks_a_check() {
    /// Always answers with an amd64 image, as a registry with a single manifest does.
    struct Amd64Only;
    impl ImageResolver for Amd64Only {
        fn normalize(&self, reference: &str) -> Result<NormalizedRef, String> {
            FakeResolver::default().normalize(reference)
        }
        fn resolve(&self, image: ImageSource<'_>, _: &Platform) -> Result<ResolvedImage, String> {
            FakeResolver::default().resolve(image, &"linux/amd64".parse().unwrap())
        }
    }
    let df = b"# check=error=true\nFROM --platform=linux/arm64 busybox AS arm64\nFROM scratch\nCOPY --from=arm64 /etc/passwd /p\n";
    let e = convert(df, &opts(), &Amd64Only).unwrap_err();
    assert_eq!(
        e.message,
        "lint violation found for rules: InvalidBaseImagePlatform"
    );
    let df = b"# check=error=true\nFROM --platform=linux/amd64 busybox AS amd64\n";
    convert(df, &opts(), &Amd64Only).unwrap();
}

#[test]
fn broken_checks_are_warnings_in_buildkits_words_with_their_lines() {
    let df = "\
FROM busybox as Base
MAINTAINER me
ENV PASSWORD secret
LABEL a b
WORKDIR app
EXPOSE 80/TcP 127.0.0.1:80:80
ENV X=$PAHT
ARG auth=1
CMD echo a
CMD [\"b\"]
FROM --platform=linux/amd64 base AS scratch
";
    let (_, warnings) = convert_checked(df.as_bytes(), &opts(), &FakeResolver::default()).unwrap();
    let shorts: Vec<String> = warnings.iter().map(LintWarning::short).collect();
    assert_eq!(
        shorts,
        [
            "StageNameCasing: Stage name 'Base' should be lowercase (line 1)",
            "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)",
            "MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 2)",
            "ReservedStageName: Stage name should not use the same name as reserved stage \"scratch\" (line 11)",
            "FromPlatformFlagConstDisallowed: FROM --platform flag should not use constant value \"linux/amd64\" (line 11)",
            "LegacyKeyValueFormat: \"ENV key=value\" should be used instead of legacy \"ENV key value\" format (line 3)",
            "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV \"PASSWORD\") (line 3)",
            "LegacyKeyValueFormat: \"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format (line 4)",
            "WorkdirRelativePath: Relative workdir \"app\" can have unexpected results if the base image changes (line 5)",
            // EXPOSE's ports are sorted first, as BuildKit sorts them.
            "ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80' (line 6)",
            "ExposeProtoCasing: Defined protocol '80/TcP' in EXPOSE instruction should be lowercase (line 6)",
            "UndefinedVar: Usage of undefined variable '$PAHT' (did you mean $PATH?) (line 7)",
            "SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG \"auth\") (line 8)",
            "JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 9)",
            "MultipleInstructionsDisallowed: Multiple CMD instructions should not be used in the same stage because only the last one will be used (line 9)",
        ]
    );
}
