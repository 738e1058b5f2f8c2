//! Typed instructions: turns parser [`Node`]s into [`Stage`]s of [`Instruction`]s,
//! checking each instruction's arguments and flags with BuildKit's rules and messages.
//!
//! Nothing is expanded here: variables are resolved when the converter dispatches an
//! instruction, because their values depend on what came before in the stage.

mod flags;
mod mount;
pub(crate) mod suggest;

use crate::gofmt;
use crate::parser::{self, Node};

pub(crate) use mount::parse_mount;
pub use mount::{MountType, RunMount, ShareMode};

use flags::Flags;

/// Lines of the Dockerfile an instruction spans (1-based, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// First line (1-based).
    pub start_line: usize,
    /// Last line (1-based, inclusive).
    pub end_line: usize,
}

/// An instruction that cannot be used as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructionError {
    /// What is wrong, worded as BuildKit words it.
    pub message: String,
    /// The lines of the instruction.
    pub location: Location,
}

/// `KEY=value` from ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The name.
    pub key: String,
    /// The value, unexpanded.
    pub value: String,
    /// Written in the legacy `ENV key value` form.
    pub no_delim: bool,
}

/// One name of an ARG instruction, with its default if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    /// The name.
    pub key: String,
    /// The default value, if one is given.
    pub value: Option<String>,
    /// The description comment above the ARG (`# KEY does ...`).
    pub comment: String,
}

/// A heredoc used as a COPY/ADD source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceContent {
    /// The heredoc name, used as the file name.
    pub path: String,
    /// The body.
    pub data: String,
    /// Variables in the body are expanded (unquoted delimiter).
    pub expand: bool,
}

/// Sources and destination of COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcesAndDest {
    /// The destination as written.
    pub dest: String,
    /// Paths in the source, as written.
    pub source_paths: Vec<String>,
    /// Heredoc sources.
    pub source_contents: Vec<SourceContent>,
}

/// A heredoc attached to RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// The heredoc delimiter.
    pub name: String,
    /// The body.
    pub data: String,
    /// Leading tabs are stripped (`<<-`).
    pub chomp: bool,
}

/// A command line in shell or exec form (RUN, CMD, ENTRYPOINT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdLine {
    /// Exec form: the words; shell form: one string. `None` for an empty exec form
    /// of ENTRYPOINT (which still resets the entrypoint).
    pub args: Vec<String>,
    /// Heredocs attached to the command.
    pub files: Vec<InlineFile>,
    /// Shell form: the shell is prepended when dispatched.
    pub prepend_shell: bool,
}

/// ADD's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCommand {
    /// What to copy and where.
    pub sources: SourcesAndDest,
    /// `--chown`, unexpanded.
    pub chown: String,
    /// `--chmod`, unexpanded.
    pub chmod: String,
    /// `--link`.
    pub link: bool,
    /// `--exclude` patterns.
    pub exclude_patterns: Vec<String>,
    /// `--keep-git-dir`, when written.
    pub keep_git_dir: Option<bool>,
    /// `--checksum`, unexpanded.
    pub checksum: String,
    /// `--unpack`, when written.
    pub unpack: Option<bool>,
}

/// COPY's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyCommand {
    /// What to copy and where.
    pub sources: SourcesAndDest,
    /// `--from`: a stage name or index, an image, or a named context.
    pub from: String,
    /// `--chown`, unexpanded.
    pub chown: String,
    /// `--chmod`, unexpanded.
    pub chmod: String,
    /// `--link`.
    pub link: bool,
    /// `--exclude` patterns.
    pub exclude_patterns: Vec<String>,
    /// `--parents`.
    pub parents: bool,
}

/// RUN's arguments. Mount values stay unexpanded until dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCommand {
    /// The command.
    pub cmd: CmdLine,
    /// `--mount` values as written.
    pub mounts: Vec<String>,
    /// Mounts parsed before expansion (the fields that may be known already).
    pub parsed_mounts: Vec<RunMount>,
    /// `--network`: `default`, `none` or `host`.
    pub network: String,
    /// `--security`: `sandbox` or `insecure`.
    pub security: String,
    /// Names of the flags that were written.
    pub flags_used: Vec<String>,
}

/// HEALTHCHECK's settings (durations in nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckCommand {
    /// The test, e.g. `["CMD-SHELL", "curl -f localhost"]`, or `["NONE"]`.
    pub test: Vec<String>,
    /// `--interval` in nanoseconds (0: default).
    pub interval: i64,
    /// `--timeout` in nanoseconds.
    pub timeout: i64,
    /// `--start-period` in nanoseconds.
    pub start_period: i64,
    /// `--start-interval` in nanoseconds.
    pub start_interval: i64,
    /// `--retries`.
    pub retries: i64,
}

/// What an instruction does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `ENV k=v ...`.
    Env(Vec<KeyValue>),
    /// `MAINTAINER name`.
    Maintainer(String),
    /// `LABEL k=v ...`.
    Label(Vec<KeyValue>),
    /// `ADD`.
    Add(AddCommand),
    /// `COPY`.
    Copy(CopyCommand),
    /// The trigger expression, e.g. `COPY . /app`.
    Onbuild(String),
    /// `WORKDIR path`, unexpanded.
    Workdir(String),
    /// `RUN`.
    Run(RunCommand),
    /// `CMD`.
    Cmd(CmdLine),
    /// `HEALTHCHECK`.
    Healthcheck(HealthcheckCommand),
    /// `ENTRYPOINT`.
    Entrypoint(CmdLine),
    /// `EXPOSE`: port specs sorted as strings, unexpanded (as BuildKit).
    Expose(Vec<String>),
    /// `USER user[:group]`, unexpanded.
    User(String),
    /// `VOLUME` paths, unexpanded.
    Volume(Vec<String>),
    /// `STOPSIGNAL`, unexpanded.
    StopSignal(String),
    /// `ARG name[=default] ...`.
    Arg(Vec<ArgDef>),
    /// `SHELL [...]`.
    Shell(Vec<String>),
}

/// One instruction inside a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// What the instruction does.
    pub command: Command,
    /// The keyword, lower-cased.
    pub name: String,
    /// The instruction's source, trimmed (BuildKit's `String()` of a command).
    pub code: String,
    /// The lines of the instruction.
    pub location: Location,
}

/// A `FROM` and the instructions that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// `AS name`, lower-cased; empty when unnamed.
    pub name: String,
    /// The image, stage or context the stage starts from, unexpanded.
    pub base_name: String,
    /// `--platform`, unexpanded.
    pub platform: String,
    /// The instructions after the FROM.
    pub commands: Vec<Instruction>,
    /// The FROM line, trimmed.
    pub source_code: String,
    /// The lines of the instruction.
    pub location: Location,
    /// The description comment above the FROM (`# name does ...`).
    pub comment: String,
}

/// What [`parse`] makes of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The stages in order.
    pub stages: Vec<Stage>,
    /// ARG instructions before the first FROM.
    pub meta_args: Vec<(Vec<ArgDef>, Location)>,
}

enum Parsed1 {
    Stage(Stage),
    Command(Instruction),
}

fn loc(node: &Node) -> Location {
    Location {
        start_line: node.start_line,
        end_line: node.end_line,
    }
}

/// The flat argument list BuildKit's instruction parser sees: ONBUILD's inner
/// instruction contributes its keyword and then its arguments.
fn node_args(node: &Node) -> Vec<String> {
    match &node.inner {
        Some(inner) => {
            let mut out = vec![inner.keyword.clone()];
            out.extend(node_args(inner));
            out
        }
        None => node.args.clone(),
    }
}

/// Turns the parsed Dockerfile into stages. Errors name the line:
/// `dockerfile parse error on line N: ...`.
pub fn parse(nodes: &[Node]) -> Result<Parsed, InstructionError> {
    let mut stages: Vec<Stage> = Vec::new();
    let mut meta_args = Vec::new();
    for node in nodes {
        let parsed = parse_instruction(node).map_err(|message| InstructionError {
            message: format!(
                "dockerfile parse error on line {}: {message}",
                node.start_line
            ),
            location: loc(node),
        })?;
        match parsed {
            Parsed1::Stage(s) => stages.push(s),
            Parsed1::Command(c) => {
                if stages.is_empty() {
                    if let Command::Arg(args) = c.command {
                        meta_args.push((args, c.location));
                        continue;
                    }
                    return Err(InstructionError {
                        message: "no build stage in current context".into(),
                        location: c.location,
                    });
                }
                if let Some(stage) = stages.last_mut() {
                    stage.commands.push(c);
                }
            }
        }
    }
    Ok(Parsed { stages, meta_args })
}

/// Parses one instruction that must not be a FROM (an ONBUILD trigger).
pub fn parse_command(node: &Node) -> Result<Instruction, String> {
    match parse_instruction(node)? {
        Parsed1::Command(c) => Ok(c),
        Parsed1::Stage(_) => Err("FROM isn't allowed as an ONBUILD trigger".into()),
    }
}

const ALL_INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

struct Request<'a> {
    node: &'a Node,
    args: Vec<String>,
    flags: Flags,
}

impl Request<'_> {
    fn instruction(&self, command: Command) -> Instruction {
        Instruction {
            command,
            name: self.node.keyword.to_lowercase(),
            code: self.node.original.trim().to_string(),
            location: loc(self.node),
        }
    }
}

fn parse_instruction(node: &Node) -> Result<Parsed1, String> {
    let mut req = Request {
        node,
        args: node_args(node),
        flags: Flags::new(&node.flags),
    };
    let keyword = node.keyword.to_lowercase();
    let command = match keyword.as_str() {
        "env" => {
            req.flags.parse()?;
            Command::Env(parse_kvps(&req.args, "ENV")?)
        }
        "maintainer" => {
            if req.args.len() != 1 {
                return Err(exactly_one("MAINTAINER"));
            }
            req.flags.parse()?;
            Command::Maintainer(req.args[0].clone())
        }
        "label" => {
            req.flags.parse()?;
            Command::Label(parse_kvps(&req.args, "LABEL")?)
        }
        "add" => Command::Add(parse_add(&mut req)?),
        "copy" => Command::Copy(parse_copy(&mut req)?),
        "from" => return parse_from(&mut req).map(Parsed1::Stage),
        "onbuild" => Command::Onbuild(parse_onbuild(&mut req)?),
        "workdir" => {
            if req.args.len() != 1 {
                return Err(exactly_one("WORKDIR"));
            }
            req.flags.parse()?;
            Command::Workdir(req.args[0].clone())
        }
        "run" => Command::Run(parse_run(&mut req)?),
        "cmd" => {
            req.flags.parse()?;
            Command::Cmd(shell_dependent(&req))
        }
        "entrypoint" => {
            req.flags.parse()?;
            Command::Entrypoint(shell_dependent(&req))
        }
        "healthcheck" => Command::Healthcheck(parse_healthcheck(&mut req)?),
        "expose" => {
            if req.args.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            req.flags.parse()?;
            let mut ports = req.args.clone();
            ports.sort();
            Command::Expose(ports)
        }
        "user" => {
            if req.args.len() != 1 {
                return Err(exactly_one("USER"));
            }
            req.flags.parse()?;
            Command::User(req.args[0].clone())
        }
        "volume" => {
            if req.args.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            req.flags.parse()?;
            let mut volumes = Vec::new();
            for v in &req.args {
                let v = v.trim();
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                volumes.push(v.to_string());
            }
            Command::Volume(volumes)
        }
        "stopsignal" => {
            if req.args.len() != 1 {
                return Err(exactly_one("STOPSIGNAL"));
            }
            Command::StopSignal(req.args[0].clone())
        }
        "arg" => Command::Arg(parse_arg(&req)?),
        "shell" => {
            req.flags.parse()?;
            let shell = handle_json_args(&req.args, node.json);
            if shell.is_empty() {
                return Err(at_least_one("SHELL"));
            }
            if !node.json {
                return Err("SHELL requires the arguments to be in JSON form".into());
            }
            Command::Shell(shell)
        }
        _ => {
            let written = node.keyword_as_written.clone();
            let names: Vec<String> = ALL_INSTRUCTIONS.iter().map(|s| s.to_string()).collect();
            return Err(suggest::with_suggestion(
                format!("unknown instruction: {written}"),
                &written,
                &names,
                false,
            ));
        }
    };
    Ok(Parsed1::Command(req.instruction(command)))
}

fn at_least_one(cmd: &str) -> String {
    format!("{cmd} requires at least one argument")
}

fn exactly_one(cmd: &str) -> String {
    format!("{cmd} requires exactly one argument")
}

fn no_destination(cmd: &str) -> String {
    format!(
        "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
    )
}

fn parse_kvps(args: &[String], cmd: &str) -> Result<Vec<KeyValue>, String> {
    if args.is_empty() {
        return Err(at_least_one(cmd));
    }
    if !args.len().is_multiple_of(3) {
        return Err(format!("Bad input to {cmd}, too many arguments"));
    }
    let mut out = Vec::new();
    for chunk in args.chunks(3) {
        if chunk[0].is_empty() {
            return Err(format!("{cmd} names can not be blank"));
        }
        out.push(KeyValue {
            key: chunk[0].clone(),
            value: chunk[1].clone(),
            no_delim: chunk[2].is_empty(),
        });
    }
    Ok(out)
}

fn parse_sources_and_dest(req: &Request<'_>, cmd: &str) -> Result<SourcesAndDest, String> {
    let (dest, srcs) = match req.args.split_last() {
        Some(x) => x,
        None => return Err(no_destination(cmd)),
    };
    if parser::parse_heredoc(dest).ok().flatten().is_some() {
        return Err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut source_paths = Vec::new();
    let mut source_contents = Vec::new();
    for src in srcs {
        if let Some(h) = parser::parse_heredoc(src).ok().flatten() {
            let content = req
                .node
                .heredocs
                .iter()
                .rev()
                .find(|d| d.name == h.name)
                .map(|d| d.content.clone())
                .unwrap_or_default();
            let data = if h.chomp {
                parser::chomp_heredoc_content(&content)
            } else {
                content
            };
            source_contents.push(SourceContent {
                path: h.name,
                data,
                expand: h.expand,
            });
        } else {
            source_paths.push(src.clone());
        }
    }
    Ok(SourcesAndDest {
        dest: dest.clone(),
        source_paths,
        source_contents,
    })
}

fn parse_add(req: &mut Request<'_>) -> Result<AddCommand, String> {
    if req.args.len() < 2 {
        return Err(no_destination("ADD"));
    }
    req.flags.add_strings("exclude");
    req.flags.add_string("chown", "");
    req.flags.add_string("chmod", "");
    req.flags.add_bool("link");
    req.flags.add_bool("keep-git-dir");
    req.flags.add_string("checksum", "");
    req.flags.add_bool("unpack");
    req.flags.parse()?;
    let sources = parse_sources_and_dest(req, "ADD")?;
    Ok(AddCommand {
        sources,
        chown: req.flags.string("chown"),
        chmod: req.flags.string("chmod"),
        link: req.flags.bool("link"),
        exclude_patterns: req.flags.strings("exclude"),
        keep_git_dir: req.flags.bool_if_used("keep-git-dir"),
        checksum: req.flags.string("checksum"),
        unpack: req.flags.bool_if_used("unpack"),
    })
}

fn parse_copy(req: &mut Request<'_>) -> Result<CopyCommand, String> {
    if req.args.len() < 2 {
        return Err(no_destination("COPY"));
    }
    req.flags.add_strings("exclude");
    req.flags.add_bool("parents");
    req.flags.add_string("chown", "");
    req.flags.add_string("from", "");
    req.flags.add_string("chmod", "");
    req.flags.add_bool("link");
    req.flags.parse()?;
    let sources = parse_sources_and_dest(req, "COPY")?;
    Ok(CopyCommand {
        sources,
        from: req.flags.string("from"),
        chown: req.flags.string("chown"),
        chmod: req.flags.string("chmod"),
        link: req.flags.bool("link"),
        exclude_patterns: req.flags.strings("exclude"),
        parents: req.flags.bool("parents"),
    })
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
}

fn parse_from(req: &mut Request<'_>) -> Result<Stage, String> {
    let args = &req.args;
    let name = if args.len() == 3 && args[1].eq_ignore_ascii_case("as") {
        let name = args[2].to_lowercase();
        if !valid_stage_name(&name) {
            return Err(format!(
                "invalid name for build stage: {}, name can't start with a number or contain symbols",
                gofmt::quote(&args[2])
            ));
        }
        name
    } else if args.len() != 1 {
        return Err("FROM requires either one or three arguments".into());
    } else {
        String::new()
    };
    req.flags.add_string("platform", "");
    req.flags.parse()?;
    Ok(Stage {
        comment: comment_for(&req.node.prev_comment, &name),
        name,
        base_name: req.args[0].clone(),
        platform: req.flags.string("platform"),
        commands: Vec::new(),
        source_code: req.node.original.trim().to_string(),
        location: loc(req.node),
    })
}

fn parse_onbuild(req: &mut Request<'_>) -> Result<String, String> {
    if req.args.is_empty() {
        return Err(at_least_one("ONBUILD"));
    }
    req.flags.parse()?;
    let trigger = req.args[0].trim().to_uppercase();
    match trigger.as_str() {
        "ONBUILD" => return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "MAINTAINER" | "FROM" => {
            return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"));
        }
        _ => {}
    }
    let mut expression = strip_onbuild_prefix(&req.node.original);
    for h in &req.node.heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(expression)
}

/// Removes a leading `ONBUILD` keyword (any case) and the whitespace around it.
fn strip_onbuild_prefix(original: &str) -> String {
    let trimmed = original.trim_start();
    let bytes = trimmed.as_bytes();
    if bytes.len() >= 7 && trimmed[..7].eq_ignore_ascii_case("onbuild") {
        trimmed[7..].trim_start().to_string()
    } else {
        original.to_string()
    }
}

fn handle_json_args(args: &[String], json: bool) -> Vec<String> {
    if args.is_empty() {
        return Vec::new();
    }
    if json {
        return args.to_vec();
    }
    vec![args.join(" ")]
}

fn shell_dependent(req: &Request<'_>) -> CmdLine {
    let files = req
        .node
        .heredocs
        .iter()
        .map(|h| InlineFile {
            name: h.name.clone(),
            data: h.content.clone(),
            chomp: h.chomp,
        })
        .collect();
    CmdLine {
        args: handle_json_args(&req.args, req.node.json),
        files,
        prepend_shell: !req.node.json,
    }
}

fn parse_run(req: &mut Request<'_>) -> Result<RunCommand, String> {
    req.flags.add_strings("mount");
    req.flags.add_string("network", "default");
    req.flags.add_string("security", "sandbox");
    req.flags.parse()?;
    let mounts = req.flags.strings("mount");
    let mut parsed_mounts = Vec::new();
    for m in &mounts {
        parsed_mounts.push(parse_mount(m, None)?);
    }
    let network = req.flags.string("network");
    if !matches!(network.as_str(), "default" | "none" | "host") {
        return Err(format!("invalid network mode {}", gofmt::quote(&network)));
    }
    let security = req.flags.string("security");
    if !matches!(security.as_str(), "sandbox" | "insecure") {
        return Err(format!("security {} is not valid", gofmt::quote(&security)));
    }
    Ok(RunCommand {
        cmd: shell_dependent(req),
        mounts,
        parsed_mounts,
        network,
        security,
        flags_used: req.flags.used(),
    })
}

fn parse_opt_interval(req: &Request<'_>, name: &str) -> Result<i64, String> {
    let value = req.flags.string(name);
    if value.is_empty() {
        return Ok(0);
    }
    let d = gofmt::parse_duration(&value)?;
    if d == 0 {
        return Ok(0);
    }
    if d < 1_000_000 {
        return Err(format!(
            "Interval {} cannot be less than 1ms",
            gofmt::quote(name)
        ));
    }
    Ok(d)
}

fn parse_healthcheck(req: &mut Request<'_>) -> Result<HealthcheckCommand, String> {
    if req.args.is_empty() {
        return Err(at_least_one("HEALTHCHECK"));
    }
    let kind = req.args[0].to_uppercase();
    let args = &req.args[1..];
    if kind == "NONE" {
        if !args.is_empty() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(HealthcheckCommand {
            test: vec![kind],
            interval: 0,
            timeout: 0,
            start_period: 0,
            start_interval: 0,
            retries: 0,
        });
    }
    req.flags.add_string("interval", "");
    req.flags.add_string("timeout", "");
    req.flags.add_string("start-period", "");
    req.flags.add_string("start-interval", "");
    req.flags.add_string("retries", "");
    req.flags.parse()?;
    let test = match kind.as_str() {
        "CMD" => {
            let cmd = handle_json_args(args, req.node.json);
            if cmd.is_empty() {
                return Err("Missing command after HEALTHCHECK CMD".into());
            }
            let kind = if req.node.json { "CMD" } else { "CMD-SHELL" };
            let mut test = vec![kind.to_string()];
            test.extend(cmd);
            test
        }
        _ => {
            return Err(format!(
                "Unknown type {} in HEALTHCHECK (try CMD)",
                gofmt::quote(&kind)
            ));
        }
    };
    let interval = parse_opt_interval(req, "interval")?;
    let timeout = parse_opt_interval(req, "timeout")?;
    let start_period = parse_opt_interval(req, "start-period")?;
    let start_interval = parse_opt_interval(req, "start-interval")?;
    let retries_str = req.flags.string("retries");
    let retries = if retries_str.is_empty() {
        0
    } else {
        let r: i64 = retries_str.parse::<i32>().map(i64::from).map_err(|_| {
            format!(
                "strconv.ParseInt: parsing {}: invalid syntax",
                gofmt::quote(&retries_str)
            )
        })?;
        if r < 0 {
            return Err(format!("--retries cannot be negative ({r})"));
        }
        r
    };
    Ok(HealthcheckCommand {
        test,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    })
}

fn parse_arg(req: &Request<'_>) -> Result<Vec<ArgDef>, String> {
    if req.args.is_empty() {
        return Err(at_least_one("ARG"));
    }
    let mut out = Vec::new();
    for arg in &req.args {
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => {
                if k.is_empty() {
                    return Err("ARG names can not be blank".into());
                }
                (k.to_string(), Some(v.to_string()))
            }
            None => (arg.clone(), None),
        };
        out.push(ArgDef {
            comment: comment_for(&req.node.prev_comment, &key),
            key,
            value,
        });
    }
    Ok(out)
}

fn comment_for(comments: &[String], name: &str) -> String {
    if name.is_empty() {
        return String::new();
    }
    let prefix = format!("{name} ");
    comments
        .iter()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
