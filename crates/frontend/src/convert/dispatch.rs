//! One function per instruction: what each does to the stage's build state, the graph
//! and the image config, as BuildKit's `dispatch*` functions do.

use std::collections::BTreeSet;

use kiln_graph::{
    CacheSharing, Chmod, Chown, CopyAction, Digest, ExecOp, FileAction, FileOp, GraphBuilder,
    Healthcheck, History, MergeOp, MkdirAction, MkfileAction, Mount, MountKind, NetworkMode, Op,
    Platform, Principal, SecretEnv, SecurityMode, SourceOp, VertexMeta,
};

use super::args::proxy_env;
use super::expose::parse_ports;
use super::git::parse_git_ref;
use super::lint::{Linter, Rule, looks_like_secret};
use super::state::{EnvList, base_name, clean_path, join_path};
use super::{Cmd, ConvertError, Ctx, StageState, Stages, graph_location};
use crate::gofmt;
use crate::instructions::suggest;
use crate::instructions::{
    self, AddCommand, ArgDef, CmdLine, Command, CopyCommand, HealthcheckCommand, Instruction,
    KeyValue, Location, MountType, RunCommand, RunMount, ShareMode, SourcesAndDest,
};
use crate::parser;
use crate::shell::{EnvGetter, Lex};

const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// Dispatches every instruction of stage `i`, after setting it up from its base
/// image's config.
pub(crate) fn dispatch_stage(
    ctx: &mut Ctx<'_>,
    graph: &mut GraphBuilder,
    all: &mut Stages,
    i: usize,
) -> Result<(), ConvertError> {
    {
        let ds = &mut all.states[i];
        if ds.platform.is_none() {
            ds.platform = Some(ctx.target_platform.clone());
        }
        let os = ds
            .platform
            .as_ref()
            .map(|p| p.os.clone())
            .unwrap_or_default();
        let has_path = ds
            .image
            .config
            .env
            .iter()
            .any(|e| e.split_once('=').map(|(k, _)| k) == Some("PATH") || e == "PATH");
        if !has_path && os != "windows" {
            ds.image
                .config
                .env
                .push(format!("PATH={}", kiln_graph::default_path_env(&os)));
        }
        for e in ds.image.config.env.clone() {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            ds.state.env.add_or_replace(k, v);
        }
        if !ds.image.config.working_dir.is_empty() {
            let wd = ds.image.config.working_dir.clone();
            dispatch_workdir(ctx, graph, ds, &wd, None)
                .map_err(|e| ConvertError::at(e, ds.stage.location))?;
        }
        if !ds.image.config.user.is_empty() {
            let user = ds.image.config.user.clone();
            ds.state.user = user.clone();
            ds.image.config.user = user;
        }
    }
    let commands = all.states[i].commands.clone();
    for cmd in &commands {
        dispatch(ctx, graph, all, i, cmd).map_err(|e| e.or_at(cmd.ins.location))?;
    }
    Ok(())
}

/// Expands a word of an instruction and checks the names it uses: one that the
/// stage's environment lacks and no ARG of the stage declares breaks BuildKit's
/// `UndefinedVar`.
fn expand_checked(
    lint: &Linter,
    line: usize,
    lex: &Lex,
    env: &EnvList,
    declared: &BTreeSet<String>,
    word: &str,
) -> Result<String, String> {
    let (result, unmatched) = match lex.process_word(word, env) {
        Ok(r) => (Ok(r.result), r.unmatched),
        Err(e) => {
            let unmatched = e.unmatched().clone();
            (Err(e.to_string()), unmatched)
        }
    };
    let undefined: Vec<&String> = unmatched
        .iter()
        .filter(|k| !declared.contains(*k))
        .collect();
    if !undefined.is_empty() {
        let options = env.keys();
        for name in undefined {
            let message = format!("Usage of undefined variable '${name}'");
            let message = match suggest::closest(name, &options, true) {
                Some(m) => format!("{message} (did you mean ${m}?)"),
                None => message,
            };
            lint.run(Rule::UndefinedVar, line, message);
        }
    }
    result
}

/// `MultipleInstructionsDisallowed`: CMD, ENTRYPOINT or HEALTHCHECK given twice in a
/// stage (only the last one counts). The warning names the earlier one, which is the
/// one ignored.
fn used_once(lint: &Linter, ds: &mut StageState, ins: &Instruction, instruction: &'static str) {
    let line = ins.location.start_line;
    if let Some(earlier) = ds.used_once.insert(instruction, line) {
        lint.run(
            Rule::MultipleInstructionsDisallowed,
            earlier,
            format!(
                "Multiple {} instructions should not be used in the same stage because only the last one will be used",
                keyword_as_written(ins)
            ),
        );
    }
}

/// The instruction's keyword in the case the Dockerfile writes it (BuildKit's
/// `Name()` of a command).
fn keyword_as_written(ins: &Instruction) -> &str {
    ins.code.split_whitespace().next().unwrap_or(&ins.name)
}

/// `LegacyKeyValueFormat`'s message.
fn legacy_key_value(keyword: &str) -> String {
    format!(
        "\"{keyword} key=value\" should be used instead of legacy \"{keyword} key value\" format"
    )
}

/// `SecretsUsedInArgOrEnv`'s message.
fn secret_in(instruction: &str, key: &str) -> String {
    format!(
        "Do not use ARG or ENV instructions for sensitive data ({instruction} {})",
        gofmt::quote(key)
    )
}

/// The arguments a CMD or ENTRYPOINT (`once_key`) sets in the image: a shell form
/// runs in the image's shell. Runs the checks BuildKit makes on both:
/// `MultipleInstructionsDisallowed` and `JSONArgsRecommended`.
fn image_command(
    lint: &Linter,
    ds: &mut StageState,
    ins: &Instruction,
    once_key: &'static str,
    c: &CmdLine,
) -> Vec<String> {
    used_once(lint, ds, ins, once_key);
    if !c.prepend_shell {
        return c.args.clone();
    }
    if ds.image.config.shell.is_empty() {
        lint.run(
            Rule::JsonArgsRecommended,
            ins.location.start_line,
            format!(
                "JSON arguments recommended for {} to prevent unintended behavior related to OS signals",
                keyword_as_written(ins)
            ),
        );
    }
    with_shell(&ds.image, &c.args)
}

/// The names the stage's ARG instructions declared so far.
fn declared_args(ds: &StageState) -> BTreeSet<String> {
    ds.build_args.iter().map(|a| a.key.clone()).collect()
}

fn dispatch(
    ctx: &mut Ctx<'_>,
    graph: &mut GraphBuilder,
    all: &mut Stages,
    i: usize,
    cmd: &Cmd,
) -> Result<(), ConvertError> {
    all.states[i].cmd_is_onbuild = cmd.is_onbuild;
    let loc = cmd.ins.location;
    let err = |e: String| ConvertError::at(e, loc);
    let env = all.states[i].state.env.clone();
    let lex = ctx.lex.clone();
    let lint = ctx.lint.clone();
    let declared = declared_args(&all.states[i]);
    let line = loc.start_line;
    let x = |w: &str| expand_checked(&lint, line, &lex, &env, &declared, w);
    let mut raw_lex = Lex::new('\\');
    raw_lex.skip_process_quotes = true;
    let raw = |w: &str| expand_checked(&lint, line, &raw_lex, &env, &declared, w);
    match &cmd.ins.command {
        Command::Maintainer(m) => {
            let ds = &mut all.states[i];
            ds.image.author = m.clone();
            commit(
                ds,
                &format!("MAINTAINER {m}"),
                false,
                false,
                ctx.opts.source_date_epoch,
            );
        }
        Command::Env(kvs) => {
            for kv in kvs {
                if kv.no_delim {
                    lint.run(
                        Rule::LegacyKeyValueFormat,
                        line,
                        legacy_key_value(keyword_as_written(&cmd.ins)),
                    );
                }
                if looks_like_secret(&kv.key) {
                    lint.run(Rule::SecretsUsedInArgOrEnv, line, secret_in("ENV", &kv.key));
                }
            }
            let kvs = expand_kvs(kvs, &x).map_err(err)?;
            let ds = &mut all.states[i];
            let mut msg = String::from("ENV");
            for kv in &kvs {
                msg.push_str(&format!(" {}={}", kv.key, kv.value));
                ds.state.env.add_or_replace(&kv.key, &kv.value);
                add_env(&mut ds.image.config.env, &kv.key, &kv.value);
            }
            commit(ds, &msg, false, false, ctx.opts.source_date_epoch);
        }
        Command::Label(kvs) => {
            for _ in kvs.iter().filter(|kv| kv.no_delim) {
                lint.run(
                    Rule::LegacyKeyValueFormat,
                    line,
                    legacy_key_value(keyword_as_written(&cmd.ins)),
                );
            }
            let kvs = expand_kvs(kvs, &x).map_err(err)?;
            let ds = &mut all.states[i];
            let mut msg = String::from("LABEL");
            for kv in &kvs {
                ds.image
                    .config
                    .labels
                    .insert(kv.key.clone(), kv.value.clone());
                msg.push_str(&format!(" {}={}", kv.key, kv.value));
            }
            commit(ds, &msg, false, false, ctx.opts.source_date_epoch);
        }
        Command::Workdir(path) => {
            let path = x(path).map_err(err)?;
            let ds = &mut all.states[i];
            // Only the stage's first WORKDIR is checked: fixing it fixes the rest.
            if !ds.workdir_set && !path.starts_with('/') {
                lint.run(
                    Rule::WorkdirRelativePath,
                    line,
                    format!(
                        "Relative workdir {} can have unexpected results if the base image changes",
                        gofmt::quote(&path)
                    ),
                );
            }
            ds.workdir_set = true;
            dispatch_workdir(ctx, graph, ds, &path, Some(&cmd.ins)).map_err(err)?;
        }
        Command::User(user) => {
            let user = x(user).map_err(err)?;
            let ds = &mut all.states[i];
            ds.state.user = user.clone();
            ds.image.config.user = user.clone();
            commit(
                ds,
                &format!("USER {user}"),
                false,
                false,
                ctx.opts.source_date_epoch,
            );
        }
        Command::Volume(vols) => {
            let vols: Vec<String> = vols
                .iter()
                .map(|v| x(v))
                .collect::<Result<_, _>>()
                .map_err(err)?;
            let ds = &mut all.states[i];
            for v in &vols {
                if v.is_empty() {
                    return Err(err("VOLUME specified can not be an empty string".into()));
                }
                ds.image
                    .config
                    .volumes
                    .insert(v.clone(), kiln_graph::Empty {});
            }
            commit(
                ds,
                &format!("VOLUME {}", gofmt::plain_list(&vols)),
                false,
                false,
                ctx.opts.source_date_epoch,
            );
        }
        Command::StopSignal(sig) => {
            let sig = x(sig).map_err(err)?;
            check_signal(&sig).map_err(err)?;
            let ds = &mut all.states[i];
            ds.image.config.stop_signal = sig.clone();
            commit(
                ds,
                &format!("STOPSIGNAL {sig}"),
                false,
                false,
                ctx.opts.source_date_epoch,
            );
        }
        Command::Shell(shell) => {
            let ds = &mut all.states[i];
            ds.image.config.shell = shell.clone();
            commit(
                ds,
                &format!("SHELL {}", gofmt::plain_list(shell)),
                false,
                false,
                ctx.opts.source_date_epoch,
            );
        }
        Command::Onbuild(expr) => {
            all.states[i].image.config.on_build.push(expr.clone());
        }
        Command::Cmd(c) => {
            let ds = &mut all.states[i];
            let args = image_command(&lint, ds, &cmd.ins, "cmd", c);
            ds.image.config.cmd = Some(args.clone());
            ds.image.config.args_escaped = true;
            ds.cmd_set = true;
            commit(
                ds,
                &format!("CMD {}", gofmt::quote_list(&args)),
                false,
                false,
                ctx.opts.source_date_epoch,
            );
        }
        Command::Entrypoint(c) => {
            let ds = &mut all.states[i];
            let args = image_command(&lint, ds, &cmd.ins, "entrypoint", c);
            ds.image.config.entrypoint = Some(args.clone());
            if !ds.cmd_set {
                ds.image.config.cmd = None;
            }
            commit(
                ds,
                &format!("ENTRYPOINT {}", gofmt::quote_list(&args)),
                false,
                false,
                ctx.opts.source_date_epoch,
            );
        }
        Command::Healthcheck(h) => {
            let ds = &mut all.states[i];
            used_once(&lint, ds, &cmd.ins, "healthcheck");
            ds.image.config.healthcheck = Some(Healthcheck {
                test: h.test.clone(),
                interval: h.interval,
                timeout: h.timeout,
                start_period: h.start_period,
                start_interval: h.start_interval,
                retries: h.retries,
            });
            commit(
                ds,
                &format!("HEALTHCHECK {}", healthcheck_history(h)),
                false,
                false,
                ctx.opts.source_date_epoch,
            );
        }
        Command::Expose(ports) => {
            let mut words = Vec::new();
            for p in ports {
                words.extend(lex.process_words(p, &env).map_err(|e| err(e.to_string()))?);
            }
            let parsed = parse_ports(&words, &lint, line).map_err(err)?;
            let ds = &mut all.states[i];
            for p in &parsed {
                ds.image
                    .config
                    .exposed_ports
                    .insert(p.clone(), kiln_graph::Empty {});
            }
            commit(
                ds,
                &format!("EXPOSE {}", gofmt::plain_list(&parsed)),
                false,
                false,
                ctx.opts.source_date_epoch,
            );
        }
        Command::Arg(defs) => dispatch_arg(ctx, &mut all.states[i], line, defs).map_err(err)?,
        Command::Run(r) => dispatch_run(ctx, graph, all, i, cmd, r)?,
        Command::Copy(c) => {
            let c = expand_copy(c, &x, &raw).map_err(err)?;
            let source = match cmd.sources.first().copied().flatten() {
                Some(src) => {
                    let s = &all.states[src];
                    if !s.dispatched {
                        return Err(err(format!(
                            "cannot copy from stage {}, it needs to be defined before current stage {}",
                            gofmt::quote(&c.from),
                            gofmt::quote(&all.states[i].stage_name)
                        )));
                    }
                    CopySource::State(s.state.root.clone())
                }
                None => CopySource::Context,
            };
            let cfg = CopyConfig {
                sources: c.sources.clone(),
                exclude_patterns: c.exclude_patterns.clone(),
                source,
                is_add: false,
                chown: c.chown.clone(),
                chmod: c.chmod.clone(),
                link: c.link,
                keep_git_dir: None,
                checksum: String::new(),
                parents: c.parents,
                unpack: None,
            };
            dispatch_copy(ctx, graph, &mut all.states[i], &cmd.ins, cfg)?;
        }
        Command::Add(a) => {
            let a = expand_add(a, &x, &raw).map_err(err)?;
            let cfg = CopyConfig {
                sources: a.sources.clone(),
                exclude_patterns: a.exclude_patterns.clone(),
                source: CopySource::Context,
                is_add: true,
                chown: a.chown.clone(),
                chmod: a.chmod.clone(),
                link: a.link,
                keep_git_dir: a.keep_git_dir,
                checksum: a.checksum.clone(),
                parents: false,
                unpack: a.unpack,
            };
            dispatch_copy(ctx, graph, &mut all.states[i], &cmd.ins, cfg)?;
        }
    }
    Ok(())
}

fn expand_kvs(
    kvs: &[KeyValue],
    x: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Vec<KeyValue>, String> {
    kvs.iter()
        .map(|kv| {
            Ok(KeyValue {
                key: x(&kv.key)?,
                value: x(&kv.value)?,
                no_delim: kv.no_delim,
            })
        })
        .collect()
}

/// Expands sources and destination with `x`, and the bodies of heredocs that expand
/// with `raw` (a lexer that keeps quotes: expansion only replaces variables).
fn expand_sources(
    s: &SourcesAndDest,
    x: &dyn Fn(&str) -> Result<String, String>,
    raw: &dyn Fn(&str) -> Result<String, String>,
) -> Result<SourcesAndDest, String> {
    let mut out = s.clone();
    for p in &mut out.source_paths {
        *p = x(p)?;
    }
    out.dest = x(&out.dest)?;
    for c in &mut out.source_contents {
        if c.expand {
            c.data = raw(&c.data)?;
        }
    }
    Ok(out)
}

fn expand_copy(
    c: &CopyCommand,
    x: &dyn Fn(&str) -> Result<String, String>,
    raw: &dyn Fn(&str) -> Result<String, String>,
) -> Result<CopyCommand, String> {
    let mut out = c.clone();
    out.chown = x(&c.chown)?;
    out.chmod = x(&c.chmod)?;
    out.sources = expand_sources(&c.sources, x, raw)?;
    Ok(out)
}

fn expand_add(
    a: &AddCommand,
    x: &dyn Fn(&str) -> Result<String, String>,
    raw: &dyn Fn(&str) -> Result<String, String>,
) -> Result<AddCommand, String> {
    let mut out = a.clone();
    out.chown = x(&a.chown)?;
    out.chmod = x(&a.chmod)?;
    out.checksum = x(&a.checksum)?;
    out.sources = expand_sources(&a.sources, x, raw)?;
    Ok(out)
}

/// Appends a history entry (BuildKit's `commitToHistory`).
fn commit(ds: &mut StageState, msg: &str, with_layer: bool, builds: bool, epoch: Option<i64>) {
    let mut created_by = msg.to_string();
    if builds {
        created_by.push_str(" # buildkit");
    }
    ds.image.history.push(History {
        created: epoch.map(format_epoch),
        created_by,
        author: String::new(),
        comment: HISTORY_COMMENT.to_string(),
        empty_layer: !with_layer,
    });
}

/// RFC 3339 UTC time of a Unix timestamp, as Go's `time.Time` marshals it.
pub(crate) fn format_epoch(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if mo <= 2 { y + 1 } else { y };
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

fn add_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    for e in env.iter_mut() {
        let k = e.split_once('=').map(|(k, _)| k).unwrap_or(e.as_str());
        if k == key {
            *e = entry;
            return;
        }
    }
    env.push(entry);
}

fn with_shell(img: &kiln_graph::ImageConfig, args: &[String]) -> Vec<String> {
    let mut shell = if img.config.shell.is_empty() {
        default_shell(&img.os)
    } else {
        img.config.shell.clone()
    };
    shell.push(args.join(" "));
    shell
}

fn default_shell(os: &str) -> Vec<String> {
    if os == "windows" {
        vec!["cmd".into(), "/S".into(), "/C".into()]
    } else {
        vec!["/bin/sh".into(), "-c".into()]
    }
}

fn healthcheck_history(h: &HealthcheckCommand) -> String {
    format!(
        "&{{{} {} {} {} {} {}}}",
        gofmt::quote_list(&h.test),
        gofmt::quote(&gofmt::format_duration(h.interval)),
        gofmt::quote(&gofmt::format_duration(h.timeout)),
        gofmt::quote(&gofmt::format_duration(h.start_period)),
        gofmt::quote(&gofmt::format_duration(h.start_interval)),
        gofmt::quote_int_as_rune(h.retries),
    )
}

/// Accepts what moby's `signal.ParseSignal` accepts: a number, or a name with or
/// without `SIG`, including `RTMIN+n`.
fn check_signal(sig: &str) -> Result<(), String> {
    if let Ok(n) = sig.parse::<i64>() {
        return if n <= 0 {
            Err(format!("Invalid signal: {sig}"))
        } else {
            Ok(())
        };
    }
    let name = sig.strip_prefix("SIG").unwrap_or(sig);
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "UNUSED", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU",
        "XFSZ", "RTMIN", "RTMAX",
    ];
    if NAMES.contains(&name) {
        return Ok(());
    }
    for (prefix, max) in [("RTMIN+", 15), ("RTMAX-", 14)] {
        if let Some(n) = name.strip_prefix(prefix)
            && n.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n))
        {
            return Ok(());
        }
    }
    Err(format!("Invalid signal: {sig}"))
}

/// The progress label of a step: `[stage 2/5] COPY . /app` (BuildKit's
/// `prefixCommand`). Advances the stage's step counter.
pub(crate) fn prefix_command(
    ds: &mut StageState,
    text: &str,
    prefix_platform: bool,
    platform: Option<&Platform>,
) -> String {
    if ds.cmd_total == 0 {
        return text.to_string();
    }
    let mut out = String::from("[");
    if prefix_platform && let Some(p) = platform {
        out.push_str(&p.to_string());
        out.push(' ');
    }
    if !ds.stage_name.is_empty() {
        out.push_str(&ds.stage_name);
        out.push(' ');
    }
    ds.cmd_index += 1;
    let width = ds.cmd_total.to_string().len();
    out.push_str(&format!("{:>width$}/{}] ", ds.cmd_index, ds.cmd_total));
    if ds.cmd_is_onbuild {
        out.push_str("ONBUILD ");
    }
    out.push_str(text);
    out
}

fn uppercase_cmd(s: &str) -> String {
    match s.split_once(' ') {
        Some((a, b)) => format!("{} {b}", a.to_uppercase()),
        None => s.to_uppercase(),
    }
}

/// The instruction text with variables replaced, for progress output.
fn process_cmd_env(lex: &Lex, cmd: &str, env: &dyn EnvGetter) -> String {
    lex.process_word(cmd, env)
        .map(|r| r.result)
        .unwrap_or_else(|_| cmd.to_string())
}

fn step_name(ctx: &Ctx<'_>, ds: &mut StageState, ins: &Instruction, env: &dyn EnvGetter) -> String {
    let text = uppercase_cmd(&process_cmd_env(&ctx.lex, &ins.code, env));
    let platform = ds.platform.clone();
    prefix_command(ds, &text, ctx.opts.multi_platform, platform.as_ref())
}

fn meta(ctx: &Ctx<'_>, ds: &StageState, name: String, loc: Location) -> VertexMeta {
    VertexMeta {
        name,
        location: Some(graph_location(&ctx.opts.dockerfile_name, loc)),
        ignore_cache: ds.ignore_cache,
        internal: false,
    }
}

/// Parses `user[:group]` as BuildKit's `llb.WithUser`: a part that reads as a 32-bit
/// signed number is an id, kept as its 32-bit pattern (`-1` is 4294967295, which
/// `chown` takes as "leave unchanged"); anything else but `root` is a name.
fn chown_from_user(spec: &str) -> Chown {
    let principal = |s: &str| {
        if s == "root" {
            return Principal::Id(0);
        }
        match s.parse::<i32>() {
            Ok(n) => Principal::Id(n as u32),
            Err(_) => Principal::Name(s.to_string()),
        }
    };
    match spec.split_once(':') {
        Some((u, g)) => Chown {
            user: principal(u),
            group: Some(principal(g)),
        },
        None => Chown {
            user: principal(spec),
            group: None,
        },
    }
}

fn dispatch_workdir(
    ctx: &Ctx<'_>,
    graph: &mut GraphBuilder,
    ds: &mut StageState,
    path: &str,
    commit_ins: Option<&Instruction>,
) -> Result<(), String> {
    let current = if ds.image.config.working_dir.is_empty() {
        "/".to_string()
    } else {
        ds.image.config.working_dir.clone()
    };
    let wd = normalize_path(&current, path, false);
    ds.image.config.working_dir = wd.clone();
    ds.state.set_dir(&wd);
    let Some(ins) = commit_ins else {
        return Ok(());
    };
    let mut with_layer = false;
    if wd != "/" {
        let env = ds.state.env.clone();
        let name = step_name(ctx, ds, ins, &env);
        let owner =
            (!ds.image.config.user.is_empty()).then(|| chown_from_user(&ds.image.config.user));
        let (base, inputs) = match &ds.state.root {
            Some(r) => (Some(0), vec![r.clone()]),
            None => (None, vec![]),
        };
        let digest = graph.add(
            Op::File(FileOp {
                base,
                actions: vec![FileAction::Mkdir(MkdirAction {
                    path: wd.clone(),
                    mode: 0o755,
                    make_parents: true,
                    owner,
                    timestamp: ctx.opts.source_date_epoch,
                })],
            }),
            inputs,
            meta(ctx, ds, name, ins.location),
        );
        ds.state.root = Some(digest);
        with_layer = true;
    }
    commit(
        ds,
        &format!("WORKDIR {wd}"),
        with_layer,
        false,
        ctx.opts.source_date_epoch,
    );
    Ok(())
}

/// BuildKit's `system.NormalizePath` for Linux: relative paths join `parent` and are
/// cleaned; absolute paths are kept as written. With `keep_slash`, a trailing `/` or
/// `/.` survives.
fn normalize_path(parent: &str, new: &str, keep_slash: bool) -> String {
    let parent = if parent.is_empty() { "/" } else { parent };
    let parent = if parent.starts_with('/') {
        parent.to_string()
    } else {
        join_path(&["/", parent])
    };
    let orig = new;
    let mut p = if new.is_empty() {
        parent.clone()
    } else {
        new.to_string()
    };
    if !p.starts_with('/') {
        p = join_path(&[&parent, &p]);
    }
    if keep_slash {
        if orig.ends_with('/') && !p.ends_with('/') {
            p.push('/');
        } else if orig.ends_with("/.") {
            if p != "/" {
                p.push('/');
            }
            p.push('.');
        }
    }
    p
}

fn dispatch_arg(
    ctx: &Ctx<'_>,
    ds: &mut StageState,
    line: usize,
    defs: &[ArgDef],
) -> Result<(), String> {
    let mut parts = Vec::new();
    for def in defs {
        let mut def = def.clone();
        if looks_like_secret(&def.key) {
            ctx.lint.run(
                Rule::SecretsUsedInArgOrEnv,
                line,
                secret_in("ARG", &def.key),
            );
        }
        let build_value = ctx.opts.build_args.get(&def.key).cloned();
        if def.value.is_none()
            && build_value.is_none()
            && let Some(v) = ctx.global_args.get(&def.key)
        {
            def.value = Some(v);
        } else if let Some(v) = build_value {
            def.value = Some(v);
        } else if let Some(v) = &def.value {
            let env = ds.state.env.clone();
            let declared = declared_args(ds);
            def.value = Some(expand_checked(
                &ctx.lint, line, &ctx.lex, &env, &declared, v,
            )?);
        }
        if let Some(v) = &def.value {
            ds.state.env.add_or_replace(&def.key, v);
        }
        let mut s = def.key.clone();
        if let Some(v) = &def.value {
            s.push('=');
            s.push_str(v);
        }
        parts.push(s);
        ds.build_args.push(def);
    }
    commit(
        ds,
        &format!("ARG {}", parts.join(" ")),
        false,
        false,
        ctx.opts.source_date_epoch,
    );
    Ok(())
}

/// `RUN` history text: the build args the step sees, then the command
/// (`|2 A=1 B=2 /bin/sh -c make`).
fn run_command_string(args: &[String], build_args: &[ArgDef], env: &EnvList) -> String {
    let mut entries: Vec<(String, String)> = Vec::new();
    for arg in build_args {
        let v = env
            .get(&arg.key)
            .unwrap_or_else(|| arg.value.clone().unwrap_or_default());
        if let Some(e) = entries.iter_mut().find(|(k, _)| *k == arg.key) {
            e.1 = v;
        } else {
            entries.push((arg.key.clone(), v));
        }
    }
    let mut words: Vec<String> = Vec::new();
    if !entries.is_empty() {
        words.push(format!("|{}", entries.len()));
        words.extend(entries.into_iter().map(|(k, v)| format!("{k}={v}")));
    }
    words.extend(args.iter().cloned());
    words.join(" ")
}

fn summarize_heredoc(doc: &str) -> String {
    let doc = doc.trim();
    let doc = doc.replace("\r\n", "\n");
    let mut lines = doc.split('\n');
    let first = lines.next().unwrap_or("").to_string();
    if lines.next().is_some() {
        format!("{first}...")
    } else {
        first
    }
}

/// Collects a vertex's inputs, each digest once, and gives each its index.
#[derive(Default)]
struct Inputs {
    digests: Vec<Digest>,
}

impl Inputs {
    fn index(&mut self, d: &Digest) -> usize {
        if let Some(i) = self.digests.iter().position(|x| x == d) {
            return i;
        }
        self.digests.push(d.clone());
        self.digests.len() - 1
    }
}

fn scratch_mkfile(
    ctx: &Ctx<'_>,
    graph: &mut GraphBuilder,
    path: &str,
    mode: u32,
    data: &str,
) -> Digest {
    graph.add(
        Op::File(FileOp {
            base: None,
            actions: vec![FileAction::Mkfile(MkfileAction {
                path: path.to_string(),
                mode,
                data: data.to_string(),
                owner: None,
                timestamp: ctx.opts.source_date_epoch,
            })],
        }),
        vec![],
        VertexMeta {
            name: "[internal] preparing inline document".into(),
            internal: true,
            ..VertexMeta::default()
        },
    )
}

fn context_vertex(ctx: &mut Ctx<'_>, graph: &mut GraphBuilder) -> Digest {
    if let Some(d) = &ctx.context_vertex {
        return d.clone();
    }
    let d = graph.add(
        Op::Source(SourceOp::Local {
            name: "context".into(),
            exclude_patterns: ctx.opts.context_exclude_patterns.clone(),
        }),
        vec![],
        VertexMeta {
            name: "[internal] load build context".into(),
            ..VertexMeta::default()
        },
    );
    ctx.context_vertex = Some(d.clone());
    d
}

fn dispatch_run(
    ctx: &mut Ctx<'_>,
    graph: &mut GraphBuilder,
    all: &mut Stages,
    i: usize,
    cmd: &Cmd,
    r: &RunCommand,
) -> Result<(), ConvertError> {
    let loc = cmd.ins.location;
    let err = |e: String| ConvertError::at(e, loc);
    let env = all.states[i].state.env.clone();
    let mut inputs = Inputs::default();
    let mut mounts = vec![Mount {
        target: "/".into(),
        input: all.states[i].state.root.as_ref().map(|r| inputs.index(r)),
        source_path: "/".into(),
        readonly: false,
        kind: MountKind::Bind,
    }];
    let mut custom_name = cmd.ins.code.clone();
    let image_os = all.states[i].image.os.clone();
    let mut args = r.cmd.args.clone();
    if !r.cmd.files.is_empty() {
        if args.len() != 1 || !r.cmd.prepend_shell {
            return Err(err(format!(
                "parsing produced an invalid run command: {}",
                gofmt::plain_list(&args)
            )));
        }
        if parser::parse_heredoc(&args[0]).ok().flatten().is_some() {
            let file = &r.cmd.files[0];
            let data = if file.chomp {
                parser::chomp_heredoc_content(&file.data)
            } else {
                file.data.clone()
            };
            if image_os != "windows" && file.data.starts_with("#!") {
                // A script with an interpreter line: run it as a file.
                let doc = scratch_mkfile(ctx, graph, &format!("/{}", file.name), 0o755, &data);
                mounts.push(Mount {
                    target: "/dev/pipes/".into(),
                    input: Some(inputs.index(&doc)),
                    source_path: "/".into(),
                    readonly: true,
                    kind: MountKind::Bind,
                });
                args = vec![join_path(&["/dev/pipes/", &file.name])];
            } else {
                args = vec![data];
            }
            custom_name.push_str(&format!(" ({})", summarize_heredoc(&file.data)));
        } else {
            let mut full = args[0].clone();
            for f in &r.cmd.files {
                full.push('\n');
                full.push_str(&f.data);
                full.push_str(&f.name);
            }
            args = vec![full];
        }
    }
    if r.cmd.prepend_shell {
        args = with_shell(&all.states[i].image, &args);
    }

    // Mounts, expanded now that the environment is known.
    let mut secret_env = Vec::new();
    let mut secret_masks = EnvList::new();
    let mut ssh_count = 0;
    let mut first_ssh_target: Option<String> = None;
    for (mi, raw) in r.mounts.iter().enumerate() {
        let declared = declared_args(&all.states[i]);
        let mut expander =
            |w: &str| expand_checked(&ctx.lint, loc.start_line, &ctx.lex, &env, &declared, w);
        let m = instructions::parse_mount(raw, Some(&mut expander)).map_err(err)?;
        let source_stage = cmd.sources.get(mi).copied().flatten();
        match m.kind {
            MountType::Secret => {
                let (mount, senv) = secret_mount(&m).map_err(err)?;
                if let Some(mount) = mount {
                    mounts.push(mount);
                }
                if let Some(senv) = senv {
                    secret_masks.add_or_replace(&senv.name, "****");
                    secret_env.push(senv);
                }
                continue;
            }
            MountType::Ssh => {
                if !m.source.is_empty() {
                    return Err(err("ssh does not support source".into()));
                }
                let target = if m.target.is_empty() {
                    format!("/run/buildkit/ssh_agent.{ssh_count}")
                } else {
                    m.target.clone()
                };
                ssh_count += 1;
                if first_ssh_target.is_none() {
                    first_ssh_target = Some(target.clone());
                }
                let any = m.uid.is_some() || m.gid.is_some() || m.mode.is_some();
                mounts.push(Mount {
                    target,
                    input: None,
                    source_path: "/".into(),
                    readonly: false,
                    kind: MountKind::Ssh {
                        id: if m.id.is_empty() {
                            "default".into()
                        } else {
                            m.id.clone()
                        },
                        uid: m.uid.unwrap_or(0) as u32,
                        gid: m.gid.unwrap_or(0) as u32,
                        mode: if any {
                            m.mode.unwrap_or(0o600) as u32
                        } else {
                            0o600
                        },
                        optional: !m.required,
                    },
                });
                continue;
            }
            _ => {}
        }
        // The filesystem behind the mount.
        let mut root: Option<Digest> = if m.kind == MountType::Tmpfs {
            None
        } else if let Some(src) = source_stage {
            let s = &all.states[src];
            if !s.dispatched {
                return Err(err(format!(
                    "cannot mount from stage {}, stage needs to be defined before current command",
                    gofmt::quote(&m.from),
                )));
            }
            s.state.root.clone()
        } else if m.kind == MountType::Cache {
            None
        } else {
            Some(context_vertex(ctx, graph))
        };
        let dir = all.states[i].state.dir_or_root();
        let target = if m.target.starts_with('/') {
            m.target.clone()
        } else {
            join_path(&["/", &dir, &m.target])
        };
        if clean_path(&target) == "/" {
            return Err(err(format!(
                "invalid mount target {}",
                gofmt::quote(&target)
            )));
        }
        let src = join_path(&["/", &m.source]);
        let mut source_path = "/".to_string();
        if src != "/" {
            source_path = src;
        } else if m.uid.is_some() || m.gid.is_some() || m.mode.is_some() {
            // Ownership and mode of the mount's root come from a directory made for it.
            let (base, ins) = match &root {
                Some(r) => (Some(0), vec![r.clone()]),
                None => (None, vec![]),
            };
            root = Some(graph.add(
                Op::File(FileOp {
                    base,
                    actions: vec![FileAction::Mkdir(MkdirAction {
                        path: "/cache".into(),
                        mode: m.mode.unwrap_or(0o755) as u32,
                        make_parents: false,
                        owner: Some(Chown {
                            user: Principal::Id(m.uid.unwrap_or(0) as u32),
                            group: Some(Principal::Id(m.gid.unwrap_or(0) as u32)),
                        }),
                        timestamp: None,
                    })],
                }),
                ins,
                VertexMeta {
                    name: "[internal] setting cache mount permissions".into(),
                    internal: true,
                    ..VertexMeta::default()
                },
            ));
            source_path = "/cache".into();
        }
        let kind = match m.kind {
            MountType::Cache => MountKind::Cache {
                id: if m.id.is_empty() {
                    clean_path(&m.target)
                } else {
                    m.id.clone()
                },
                sharing: match m.sharing {
                    Some(ShareMode::Private) => CacheSharing::Private,
                    Some(ShareMode::Locked) => CacheSharing::Locked,
                    _ => CacheSharing::Shared,
                },
            },
            MountType::Tmpfs => MountKind::Tmpfs {
                size: (m.size_limit > 0).then_some(m.size_limit as u64),
            },
            _ => MountKind::Bind,
        };
        mounts.push(Mount {
            target,
            input: root.as_ref().map(|r| inputs.index(r)),
            source_path,
            readonly: m.read_only,
            kind,
        });
    }

    let mut exec_env = env.clone();
    exec_env.set_default("PATH", kiln_graph::default_path_env(&image_os));
    if let Some(t) = &first_ssh_target
        && exec_env.get_str("SSH_AUTH_SOCK").is_none()
    {
        exec_env.add_or_replace("SSH_AUTH_SOCK", t);
    }
    let network = match r.network.as_str() {
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        _ => NetworkMode::Default,
    };
    let security = if r.security == "insecure" {
        SecurityMode::Insecure
    } else {
        SecurityMode::Sandbox
    };

    // Progress shows variables replaced, secrets masked.
    let mut name_lex = ctx.lex.clone();
    name_lex.raw_quotes = true;
    name_lex.skip_unset_env = true;
    let mut masked = env.clone();
    for k in secret_masks.keys() {
        masked.add_or_replace(&k, "****");
    }
    let text = uppercase_cmd(&process_cmd_env(&name_lex, &custom_name, &masked));
    let ds = &mut all.states[i];
    let platform = ds.platform.clone();
    let name = prefix_command(ds, &text, ctx.opts.multi_platform, platform.as_ref());
    let digest = graph.add(
        Op::Exec(ExecOp {
            args: args.clone(),
            env: exec_env.to_array(),
            cwd: ds.state.dir_or_root(),
            user: ds.state.user.clone(),
            hostname: ctx
                .opts
                .build_args
                .get("BUILDKIT_SANDBOX_HOSTNAME")
                .filter(|h| !h.is_empty())
                .cloned(),
            network,
            security,
            mounts,
            secret_env,
            proxy_env: proxy_env(&ctx.opts.build_args),
            extra_hosts: Vec::new(),
        }),
        inputs.digests,
        meta(ctx, ds, name, loc),
    );
    ds.state.root = Some(digest);
    let history = format!("RUN {}", run_command_string(&args, &ds.build_args, &env));
    commit(ds, &history, true, true, ctx.opts.source_date_epoch);
    Ok(())
}

/// A secret mount: a file (unless only `env=` is given) and/or an environment variable.
fn secret_mount(m: &RunMount) -> Result<(Option<Mount>, Option<SecretEnv>), String> {
    let mut id = m.id.clone();
    if !m.source.is_empty() {
        id = m.source.clone();
    }
    if id.is_empty() {
        if m.target.is_empty() {
            return Err("one of source, target required".into());
        }
        id = base_name(&m.target);
    }
    let mut target = (!m.target.is_empty()).then(|| m.target.clone());
    if m.env.is_none() {
        target = Some(if m.target.is_empty() {
            format!("/run/secrets/{}", base_name(&id))
        } else {
            m.target.clone()
        });
    }
    let any = m.uid.is_some() || m.gid.is_some() || m.mode.is_some();
    let mount = target.map(|target| Mount {
        target,
        input: None,
        source_path: "/".into(),
        readonly: true,
        kind: MountKind::Secret {
            id: id.clone(),
            uid: m.uid.unwrap_or(0) as u32,
            gid: m.gid.unwrap_or(0) as u32,
            mode: if any {
                m.mode.unwrap_or(0o400) as u32
            } else {
                0o400
            },
            optional: !m.required,
        },
    });
    let env = m.env.as_ref().map(|name| SecretEnv {
        id: id.clone(),
        name: if name.is_empty() {
            id.clone()
        } else {
            name.clone()
        },
        optional: !m.required,
    });
    Ok((mount, env))
}

/// Where COPY/ADD read local paths from.
enum CopySource {
    /// The main build context.
    Context,
    /// Another stage's (or image's) filesystem; `None` is an empty one.
    State(Option<Digest>),
}

struct CopyConfig {
    sources: SourcesAndDest,
    exclude_patterns: Vec<String>,
    source: CopySource,
    is_add: bool,
    chown: String,
    chmod: String,
    link: bool,
    keep_git_dir: Option<bool>,
    checksum: String,
    parents: bool,
    unpack: Option<bool>,
}

/// Validates `--chmod`: octal up to 07777, or a symbolic mode (`u+x,go-w`).
fn parse_chmod(s: &str) -> Result<Chmod, String> {
    let non_octal = || {
        format!("invalid chmod parameter: '{s}'. it should be octal string and between 0 and 07777")
    };
    if let Ok(v) = u32::from_str_radix(s, 8) {
        if v > 0o7777 {
            return Err(non_octal());
        }
        return Ok(Chmod::Octal(v));
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(non_octal());
    }
    if !valid_symbolic_mode(s) {
        return Err("invalid file mode".into());
    }
    Ok(Chmod::Symbolic(s.to_string()))
}

/// `chmod(1)` symbolic syntax: clauses `[ugoa]*([-+=]([rwxXst]*|[ugo]))+` joined by `,`.
fn valid_symbolic_mode(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    s.split(',').all(|clause| {
        let b = clause.as_bytes();
        let mut i = 0;
        while i < b.len() && matches!(b[i], b'u' | b'g' | b'o' | b'a') {
            i += 1;
        }
        if i == b.len() {
            return false;
        }
        while i < b.len() {
            if !matches!(b[i], b'+' | b'-' | b'=') {
                return false;
            }
            i += 1;
            if i < b.len() && matches!(b[i], b'u' | b'g' | b'o') {
                i += 1;
                continue;
            }
            while i < b.len() && matches!(b[i], b'r' | b'w' | b'x' | b'X' | b's' | b't') {
                i += 1;
            }
        }
        true
    })
}

/// As BuildKit's `isGitSource`: a git reference that parses.
fn is_git_source(src: &str) -> bool {
    matches!(parse_git_ref(src), Some(Ok(_)))
}

fn is_http_source(src: &str) -> bool {
    (src.starts_with("http://") || src.starts_with("https://")) && !is_git_source(src)
}

/// Whether a COPY/ADD source of the main context, as written, is a path the
/// context's `.dockerignore` excludes (BuildKit's `CopyIgnoredFile` check).
fn copies_ignored_path(ctx: &Ctx<'_>, src: &str) -> bool {
    let patterns = &ctx.opts.context_exclude_patterns;
    if patterns.is_empty() {
        return false;
    }
    kiln_ignore::PatternMatcher::new(patterns)
        .and_then(|m| m.matches_or_parent_matches(src))
        .unwrap_or(false)
}

fn dispatch_copy(
    ctx: &mut Ctx<'_>,
    graph: &mut GraphBuilder,
    ds: &mut StageState,
    ins: &Instruction,
    mut cfg: CopyConfig,
) -> Result<(), ConvertError> {
    let loc = ins.location;
    let err = |e: String| ConvertError::at(e, loc);
    let dir = ds.state.dir_or_root();
    let dest = if cfg.sources.dest.starts_with('/') {
        normalize_path("/", &cfg.sources.dest, true)
    } else {
        let d = if cfg.sources.dest.is_empty() || cfg.sources.dest == "." {
            "./".to_string()
        } else {
            cfg.sources.dest.clone()
        };
        normalize_path(&dir, &d, true)
    };
    let owner = (!cfg.chown.is_empty()).then(|| chown_from_user(&cfg.chown));
    let mode = if cfg.chmod.is_empty() {
        None
    } else {
        Some(parse_chmod(&cfg.chmod).map_err(err)?)
    };
    if !cfg.checksum.is_empty() {
        if !cfg.is_add {
            return Err(err("checksum can't be specified for COPY".into()));
        }
        if cfg.sources.source_paths.len() != 1 {
            return Err(err(
                "checksum can't be specified for multiple sources".into()
            ));
        }
        let s = &cfg.sources.source_paths[0];
        if !is_http_source(s) && !is_git_source(s) {
            return Err(err("checksum requires HTTP(S) or Git sources".into()));
        }
    }
    let mut msg = String::from(if cfg.is_add { "ADD" } else { "COPY" });
    if cfg.parents {
        msg.push_str(" --parents");
    }
    if !cfg.chown.is_empty() {
        msg.push_str(&format!(" --chown={}", cfg.chown));
    }
    if !cfg.chmod.is_empty() {
        msg.push_str(&format!(" --chmod={}", cfg.chmod));
    }
    let env = ds.state.env.clone();
    let name = step_name(ctx, ds, ins, &env);

    let mut inputs = Inputs::default();
    let link = cfg.link && cfg.chmod.is_empty();
    // With --link the copy starts from an empty filesystem and is stacked afterwards.
    let base = if link {
        None
    } else {
        ds.state.root.as_ref().map(|r| inputs.index(r))
    };
    let mut actions = Vec::new();
    let copy = |source: usize, src: String| CopyAction {
        source,
        src,
        dest: dest.clone(),
        owner: owner.clone(),
        mode: mode.clone(),
        follow_symlinks: false,
        contents_only: false,
        unpack_archives: false,
        create_dest_path: true,
        allow_wildcard: false,
        allow_empty_wildcard: false,
        include_patterns: Vec::new(),
        exclude_patterns: cfg.exclude_patterns.clone(),
        replace_existing: false,
        timestamp: None,
    };

    for src in cfg.sources.source_paths.clone() {
        msg.push_str(&format!(" {src}"));
        if let Some(git) = parse_git_ref(&src) {
            let git = git.map_err(err)?;
            if !cfg.is_add {
                return Err(err("source can't be a git ref for COPY".into()));
            }
            if let (Some(a), Some(b)) = (cfg.keep_git_dir, git.keep_git_dir)
                && a != b
            {
                return Err(err("inconsistent keep-git-dir configuration".into()));
            }
            if git.keep_git_dir.is_some() {
                cfg.keep_git_dir = git.keep_git_dir;
            }
            if !cfg.checksum.is_empty() && !git.checksum.is_empty() && cfg.checksum != git.checksum
            {
                return Err(err(format!(
                    "checksum mismatch {} != {}",
                    gofmt::quote(&cfg.checksum),
                    gofmt::quote(&git.checksum)
                )));
            }
            if !git.checksum.is_empty() {
                cfg.checksum = git.checksum.clone();
            }
            let d = graph.add(
                Op::Source(SourceOp::Git {
                    remote: git.remote.clone(),
                    reference: (!git.reference.is_empty()).then(|| git.reference.clone()),
                    subdir: (!git.subdir.is_empty()).then(|| git.subdir.clone()),
                    keep_git_dir: cfg.keep_git_dir.unwrap_or(false),
                    checksum: (!cfg.checksum.is_empty()).then(|| cfg.checksum.clone()),
                }),
                vec![],
                VertexMeta {
                    name: name.clone(),
                    ..VertexMeta::default()
                },
            );
            let mut a = copy(inputs.index(&d), "/".into());
            a.exclude_patterns = cfg.exclude_patterns.clone();
            actions.push(FileAction::Copy(a));
        } else if is_http_source(&src) {
            if !cfg.is_add {
                return Err(err("source can't be a URL for COPY".into()));
            }
            let filename = url_filename(&src);
            let checksum = if cfg.checksum.is_empty() {
                None
            } else {
                Some(cfg.checksum.parse::<Digest>().map_err(|_| {
                    err(format!("invalid checksum digest format: {}", cfg.checksum))
                })?)
            };
            let d = graph.add(
                Op::Source(SourceOp::Http {
                    url: src.clone(),
                    checksum,
                    filename: filename.clone(),
                    mode: None,
                    owner: None,
                }),
                vec![],
                VertexMeta {
                    name: name.clone(),
                    ..VertexMeta::default()
                },
            );
            let mut a = copy(inputs.index(&d), format!("/{filename}"));
            a.unpack_archives = cfg.unpack.unwrap_or(false);
            actions.push(FileAction::Copy(a));
        } else {
            if matches!(cfg.source, CopySource::Context) && copies_ignored_path(ctx, &src) {
                ctx.lint.run(
                    Rule::CopyIgnoredFile,
                    loc.start_line,
                    format!(
                        "Attempting to {} file {} that is excluded by .dockerignore",
                        if cfg.is_add { "Add" } else { "Copy" },
                        gofmt::quote(&src)
                    ),
                );
            }
            let mut src = src;
            let mut patterns = Vec::new();
            if cfg.parents {
                let (parent, pattern) = match src.split_once("/./") {
                    Some((p, pat)) => (p.to_string(), pat.to_string()),
                    None => ("/".to_string(), src.clone()),
                };
                src = parent;
                let pattern = normalize_path("/", &pattern, false);
                patterns.push(pattern.trim_start_matches('/').to_string());
            }
            let src = normalize_path("/", &src, false);
            let source_root = match &cfg.source {
                CopySource::Context => Some(context_vertex(ctx, graph)),
                CopySource::State(root) => root.clone(),
            };
            let source = match &source_root {
                Some(r) => inputs.index(r),
                None => {
                    // Copying from an empty filesystem: an empty scratch vertex stands in.
                    let empty = graph.add(
                        Op::File(FileOp {
                            base: None,
                            actions: vec![],
                        }),
                        vec![],
                        VertexMeta {
                            name: "[internal] empty filesystem".into(),
                            internal: true,
                            ..VertexMeta::default()
                        },
                    );
                    inputs.index(&empty)
                }
            };
            let mut a = copy(source, src);
            a.follow_symlinks = true;
            a.contents_only = true;
            a.include_patterns = patterns;
            a.unpack_archives = cfg.unpack.unwrap_or(cfg.is_add);
            a.allow_wildcard = true;
            a.allow_empty_wildcard = true;
            actions.push(FileAction::Copy(a));
        }
    }
    for content in cfg.sources.source_contents.clone() {
        msg.push_str(&format!(" <<{}", content.path));
        let path = join_path(&["/", &content.path]);
        let doc = scratch_mkfile(ctx, graph, &path, 0o644, &content.data);
        let a = copy(inputs.index(&doc), path);
        actions.push(FileAction::Copy(a));
    }
    msg.push_str(&format!(" {}", cfg.sources.dest));

    let file_meta = meta(ctx, ds, name.clone(), loc);
    let copied = graph.add(
        Op::File(FileOp { base, actions }),
        inputs.digests,
        file_meta,
    );
    if link {
        match &ds.state.root {
            Some(root) => {
                let mut m = meta(ctx, ds, String::new(), loc);
                m.name = link_name(&name);
                let merged = graph.add(Op::Merge(MergeOp {}), vec![root.clone(), copied], m);
                ds.state.root = Some(merged);
            }
            None => ds.state.root = Some(copied),
        }
    } else {
        ds.state.root = Some(copied);
    }
    commit(ds, &msg, true, true, ctx.opts.source_date_epoch);
    Ok(())
}

/// `[stage 2/3] LINK COPY a /b` for the merge step of `COPY --link`.
fn link_name(name: &str) -> String {
    match name.find("] ") {
        Some(i) if name.starts_with('[') => format!("{}LINK {}", &name[..i + 2], &name[i + 2..]),
        _ => format!("LINK {name}"),
    }
}

/// The file name an `ADD <url>` download gets: the last path segment, or
/// `__unnamed__`.
fn url_filename(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = match rest.find('/') {
        Some(i) => &rest[i..],
        None => "",
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let base = base_name(path);
    if path.is_empty() || base == "." || base == "/" {
        "__unnamed__".into()
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chown_ids_are_32_bit_numbers_and_root() {
        let id = Principal::Id;
        let name = |n: &str| Principal::Name(n.into());
        let c = chown_from_user("-1:-1");
        assert_eq!((c.user, c.group), (id(u32::MAX), Some(id(u32::MAX))));
        let c = chown_from_user("+5:007");
        assert_eq!((c.user, c.group), (id(5), Some(id(7))));
        let c = chown_from_user("root");
        assert_eq!((c.user, c.group), (id(0), None));
        // Beyond i32 it is a name, as Go's ParseInt(s, 10, 32) refuses it.
        let c = chown_from_user("4294967294:app");
        assert_eq!((c.user, c.group), (name("4294967294"), Some(name("app"))));
    }

    #[test]
    fn chmod_forms() {
        assert_eq!(parse_chmod("0755").unwrap(), Chmod::Octal(0o755));
        assert_eq!(parse_chmod("755").unwrap(), Chmod::Octal(0o755));
        assert_eq!(
            parse_chmod("u+x,go-w").unwrap(),
            Chmod::Symbolic("u+x,go-w".into())
        );
        assert!(parse_chmod("10000").is_err());
        assert!(parse_chmod("0999").is_err());
        assert!(parse_chmod("u+q").is_err());
        assert!(parse_chmod("").is_err());
    }

    #[test]
    fn normalize_paths_like_buildkit() {
        assert_eq!(normalize_path("/app", "sub/", true), "/app/sub/");
        assert_eq!(normalize_path("/app", "./", true), "/app/");
        assert_eq!(normalize_path("/app", "x/.", true), "/app/x/.");
        assert_eq!(normalize_path("/", "a/../b", false), "/b");
        assert_eq!(normalize_path("/", "/a/../b/", false), "/a/../b/");
    }

    #[test]
    fn url_filenames() {
        assert_eq!(url_filename("https://example.com/a/b.tar.gz"), "b.tar.gz");
        assert_eq!(url_filename("https://example.com/"), "__unnamed__");
        assert_eq!(url_filename("https://example.com"), "__unnamed__");
        assert_eq!(url_filename("http://h/x?y=1"), "x");
    }

    #[test]
    fn epochs_format_as_rfc3339() {
        assert_eq!(format_epoch(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_epoch(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_epoch(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn run_history_lists_build_args() {
        let mut env = EnvList::new();
        env.add_or_replace("B", "2");
        let args = vec![
            ArgDef {
                key: "A".into(),
                value: Some("1".into()),
                comment: String::new(),
            },
            ArgDef {
                key: "B".into(),
                value: None,
                comment: String::new(),
            },
        ];
        assert_eq!(
            run_command_string(&["/bin/sh".into(), "-c".into(), "make".into()], &args, &env),
            "|2 A=1 B=2 /bin/sh -c make"
        );
    }
}
