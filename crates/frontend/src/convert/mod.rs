//! Conversion of a parsed Dockerfile into kiln's build graph, with BuildKit's
//! semantics (`dockerfile2llb`): stage resolution, ARG scoping, ONBUILD triggers, one
//! graph vertex per filesystem-changing instruction, and the image config with history.
//!
//! Base image configs are needed while converting (ENV, WORKDIR and ONBUILD of a base
//! image change what later instructions mean); they come from the caller's
//! [`ImageResolver`], so this module itself does no I/O.

mod args;
mod dispatch;
mod expose;
mod git;
pub(crate) mod lint;
mod state;

pub use lint::LintWarning;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kiln_graph::{
    Definition, Digest, GraphBuilder, ImageConfig, Location as GraphLocation, Op, Platform,
    SourceOp, Target, VertexMeta,
};

use crate::gofmt;
use crate::instructions::{self, ArgDef, Command, Instruction, Location, Stage};
use crate::parser;
use crate::shell::{EnvGetter, Lex};

use state::{BuildState, EnvList};

/// The name of the empty base image.
const SCRATCH: &str = "scratch";

/// A directory or image the user names on the command line
/// (`--build-context NAME=VALUE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A directory on the client; the engine knows it by the context's name.
    Local {
        /// The directory's own `.dockerignore` patterns.
        exclude_patterns: Vec<String>,
    },
    /// `docker-image://REF`.
    Image {
        /// The image reference.
        reference: String,
    },
    /// `oci-layout://PATH[:TAG|@DIGEST]`; the engine reads the layout by the context's
    /// name, the resolver knows the path.
    OciLayout {
        /// Tag or `@digest` within the layout.
        reference: String,
    },
}

/// Which image a resolver is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource<'a> {
    /// A registry reference as written (`busybox`, `127.0.0.1:5000/x:1`).
    Registry(&'a str),
    /// An image in the OCI layout given as named context `context`.
    OciLayout {
        /// The named context holding the layout.
        context: &'a str,
        /// Tag or digest within the layout.
        reference: &'a str,
    },
}

/// A reference in its two usual forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedRef {
    /// Fully qualified with a tag unless it has a digest:
    /// `docker.io/library/busybox:latest`.
    pub full: String,
    /// As docker shows it, without `:latest`: `busybox`.
    pub familiar: String,
}

/// What a base image turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The reference pinned to the manifest that was chosen
    /// (`docker.io/library/busybox:latest@sha256:...`); for an OCI layout, the
    /// manifest digest.
    pub reference: String,
    /// The image config.
    pub config: ImageConfig,
}

/// Supplies what the frontend cannot know without I/O: reference normalization and
/// base image configs.
pub trait ImageResolver {
    /// Parses and normalizes a reference as `docker` does; the error is shown to the
    /// user as is (e.g. `invalid reference format`).
    fn normalize(&self, reference: &str) -> Result<NormalizedRef, String>;
    /// Resolves an image for a platform.
    fn resolve(&self, image: ImageSource<'_>, platform: &Platform)
    -> Result<ResolvedImage, String>;
}

/// How to convert.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Name of the Dockerfile, for locations in errors and the graph.
    pub dockerfile_name: String,
    /// `--target`; `None` builds the last stage.
    pub target: Option<String>,
    /// `--build-arg KEY=VALUE`.
    pub build_args: BTreeMap<String, String>,
    /// `--label KEY=VALUE`, added to the final image.
    pub labels: BTreeMap<String, String>,
    /// `--platform`; `None` means "the build platform", and base images of another
    /// platform then decide.
    pub target_platform: Option<Platform>,
    /// The platform the build runs on.
    pub build_platform: Platform,
    /// `--build-context NAME=...`, keyed by name.
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// `.dockerignore` patterns of the main context.
    pub context_exclude_patterns: Vec<String>,
    /// `--no-cache`: every step runs again.
    pub no_cache: bool,
    /// `--no-cache-filter`: the steps of these stages run again.
    pub no_cache_filter: Vec<String>,
    /// `SOURCE_DATE_EPOCH`, Unix seconds.
    pub source_date_epoch: Option<i64>,
    /// Several platforms are built at once: progress names say which.
    pub multi_platform: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            dockerfile_name: "Dockerfile".into(),
            target: None,
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            target_platform: None,
            build_platform: Platform::host(),
            named_contexts: BTreeMap::new(),
            context_exclude_patterns: Vec::new(),
            no_cache: false,
            no_cache_filter: Vec::new(),
            source_date_epoch: None,
            multi_platform: false,
        }
    }
}

/// A Dockerfile that cannot be built, with the lines it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConvertError {
    /// What is wrong.
    pub message: String,
    /// Lines of the Dockerfile the error is about, when it is about some.
    pub location: Option<Location>,
}

impl ConvertError {
    pub(crate) fn new(message: impl Into<String>) -> ConvertError {
        ConvertError {
            message: message.into(),
            location: None,
        }
    }

    pub(crate) fn at(message: impl Into<String>, location: Location) -> ConvertError {
        ConvertError {
            message: message.into(),
            location: Some(location),
        }
    }

    fn or_at(mut self, location: Location) -> ConvertError {
        if self.location.is_none() {
            self.location = Some(location);
        }
        self
    }
}

/// One instruction of a stage, with the stages it reads from.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub(crate) ins: Instruction,
    /// For COPY --from: the source stage. For RUN: one entry per mount, the stage a
    /// `from=` names (`None` when the mount has no `from`).
    pub(crate) sources: Vec<Option<usize>>,
    pub(crate) is_onbuild: bool,
}

/// The conversion state of one stage (BuildKit's `dispatchState`).
#[derive(Debug, Clone)]
pub(crate) struct StageState {
    pub(crate) stage: Stage,
    /// The name in progress output: the stage name, `stage-N`, or empty when the
    /// Dockerfile has a single stage.
    pub(crate) stage_name: String,
    pub(crate) base: Option<usize>,
    /// Stages this one reads from, with the location of the instruction that does.
    pub(crate) deps: Vec<(usize, Location)>,
    pub(crate) platform: Option<Platform>,
    pub(crate) image: ImageConfig,
    pub(crate) state: BuildState,
    pub(crate) named_context: Option<NamedContext>,
    pub(crate) commands: Vec<Cmd>,
    pub(crate) build_args: Vec<ArgDef>,
    pub(crate) dispatched: bool,
    pub(crate) resolved: bool,
    pub(crate) onbuild_init: bool,
    /// Created for a `--from` that names no stage: an image or a named context.
    pub(crate) unregistered: bool,
    pub(crate) ignore_cache: bool,
    pub(crate) cmd_index: usize,
    pub(crate) cmd_total: usize,
    pub(crate) cmd_is_onbuild: bool,
    pub(crate) workdir_set: bool,
    /// CMD was set in this stage (an ENTRYPOINT after it keeps it).
    pub(crate) cmd_set: bool,
    /// CMD, ENTRYPOINT and HEALTHCHECK seen in this stage, for the check that each
    /// appears once.
    pub(crate) used_once: BTreeMap<&'static str, usize>,
}

impl StageState {
    fn new(stage: Stage) -> StageState {
        StageState {
            stage_name: stage.name.clone(),
            stage,
            base: None,
            deps: Vec::new(),
            platform: None,
            image: ImageConfig::default(),
            state: BuildState::scratch(),
            named_context: None,
            commands: Vec::new(),
            build_args: Vec::new(),
            dispatched: false,
            resolved: false,
            onbuild_init: false,
            unregistered: false,
            ignore_cache: false,
            cmd_index: 0,
            cmd_total: 0,
            cmd_is_onbuild: false,
            workdir_set: false,
            cmd_set: false,
            used_once: BTreeMap::new(),
        }
    }

    fn unregistered(base_name: &str, location: Location) -> StageState {
        let mut s = StageState::new(Stage {
            name: String::new(),
            base_name: base_name.to_string(),
            platform: String::new(),
            commands: Vec::new(),
            source_code: String::new(),
            location,
            comment: String::new(),
        });
        s.unregistered = true;
        s
    }
}

/// All stages, in the order they appear, plus the implicit ones `--from` created.
#[derive(Debug, Default)]
pub(crate) struct Stages {
    pub(crate) states: Vec<StageState>,
    by_name: HashMap<String, usize>,
}

impl Stages {
    fn add(&mut self, mut ds: StageState) -> usize {
        let index = self.states.len();
        if let Some(&base) = self.by_name.get(&ds.stage.base_name) {
            ds.base = Some(base);
        }
        if !ds.stage.name.is_empty() {
            self.by_name.insert(ds.stage.name.to_lowercase(), index);
        }
        self.states.push(ds);
        index
    }

    pub(crate) fn find_by_name(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_lowercase()).copied()
    }

    fn names(&self) -> Vec<String> {
        self.states
            .iter()
            .filter(|s| !s.stage_name.is_empty())
            .map(|s| s.stage_name.clone())
            .collect()
    }
}

/// Shared, read-only inputs of dispatch.
pub(crate) struct Ctx<'a> {
    pub(crate) opts: &'a ConvertOptions,
    pub(crate) resolver: &'a dyn ImageResolver,
    pub(crate) lex: Lex,
    pub(crate) global_args: EnvList,
    pub(crate) target_platform: Platform,
    pub(crate) build_platform: Platform,
    /// The main build context's source vertex, added on first use.
    pub(crate) context_vertex: Option<Digest>,
    /// BuildKit's Dockerfile checks, which fail the build with `check=error=true`.
    pub(crate) lint: std::rc::Rc<lint::Linter>,
}

/// Converts a Dockerfile into a build graph with one target.
pub fn convert(
    dockerfile: &[u8],
    opts: &ConvertOptions,
    resolver: &dyn ImageResolver,
) -> Result<Definition, ConvertError> {
    convert_checked(dockerfile, opts, resolver).map(|(definition, _)| definition)
}

/// [`convert`], also giving the warnings of BuildKit's Dockerfile checks, in the
/// order BuildKit finds them.
pub fn convert_checked(
    dockerfile: &[u8],
    opts: &ConvertOptions,
    resolver: &dyn ImageResolver,
) -> Result<(Definition, Vec<LintWarning>), ConvertError> {
    if dockerfile.is_empty() {
        return Err(ConvertError::new("the Dockerfile cannot be empty"));
    }
    let linter = lint::Linter::new(lint_config(dockerfile, opts)?);
    let parsed = parser::parse(dockerfile).map_err(|e| ConvertError {
        message: e.to_string(),
        location: Some(Location {
            start_line: e.start_line,
            end_line: e.end_line,
        }),
    })?;
    let instructions::Parsed { stages, meta_args } =
        instructions::parse(&parsed.nodes).map_err(|e| ConvertError::at(e.message, e.location))?;
    for w in &parsed.warnings {
        linter.run(
            lint::Rule::NoEmptyContinuation,
            w.line,
            "Empty continuation line",
        );
    }
    lint_nodes(&linter, &parsed.nodes);
    if stages.is_empty() {
        return Err(ConvertError::new("dockerfile contains no stages to build"));
    }
    lint_stage_names(&linter, &stages);

    let implicit_target = opts.target_platform.is_none();
    let target_platform = opts
        .target_platform
        .clone()
        .unwrap_or_else(|| opts.build_platform.clone());
    let target_name = opts
        .target
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| stages[stages.len() - 1].name.clone());
    let default_args = args::default_args(
        &opts.build_platform,
        &target_platform,
        &opts.build_args,
        &target_name,
    );
    let lex = Lex::new(parsed.escape_token);
    lint_default_base_names(&linter, resolver, &lex, &default_args, &meta_args, &stages);
    let global_args = args::meta_args(default_args, &lex, &meta_args, &opts.build_args)?;
    // Names an expansion in FROM may use: builtin and global args, declared or not.
    let mut from_arg_keys: BTreeSet<String> = global_args.keys().into_iter().collect();
    from_arg_keys.extend(
        meta_args
            .iter()
            .flat_map(|(defs, _)| defs.iter().map(|d| d.key.clone())),
    );

    let mut ctx = Ctx {
        opts,
        resolver,
        lex,
        global_args,
        target_platform: target_platform.clone(),
        build_platform: opts.build_platform.clone(),
        context_vertex: None,
        lint: std::rc::Rc::new(linter),
    };
    let mut graph = GraphBuilder::new();
    let mut all = Stages::default();

    // Expand every FROM and register the stages.
    for (i, st) in stages.into_iter().enumerate() {
        let mut st = st;
        let name_match = ctx
            .lex
            .process_word(&st.base_name, &ctx.global_args)
            .map_err(|e| ConvertError::at(e.to_string(), st.location))?;
        report_undefined_from_args(
            &ctx.lint,
            st.location.start_line,
            &name_match.unmatched,
            &from_arg_keys,
        );
        if name_match.result.is_empty() {
            return Err(ConvertError::at(
                format!("base name ({}) should not be blank", st.base_name),
                st.location,
            ));
        }
        st.base_name = name_match.result;
        let mut ds = StageState::new(st);
        if !ds.stage.platform.is_empty() {
            let v = ds.stage.platform.clone();
            let m = ctx.lex.process_word(&v, &ctx.global_args).map_err(|e| {
                ConvertError::at(
                    format!("failed to process arguments for platform {v}: {e}"),
                    ds.stage.location,
                )
            })?;
            let line = ds.stage.location.start_line;
            report_undefined_from_args(&ctx.lint, line, &m.unmatched, &from_arg_keys);
            lint_from_platform(&ctx, line, &ds.stage.name, &v, &m);
            if m.result.is_empty() {
                return Err(ConvertError::at(
                    format!("empty platform value from expression {v}"),
                    ds.stage.location,
                ));
            }
            let p: Platform = m.result.parse().map_err(|e| {
                ConvertError::at(
                    format!("failed to parse platform {v}: {e}"),
                    ds.stage.location,
                )
            })?;
            ds.platform = Some(p);
        }
        if !ds.stage.name.is_empty()
            && let Some((_, nc)) = named_context(&ctx, &ds.stage.name)?
        {
            ds.named_context = Some(nc);
            let idx = all.add(ds);
            all.states[idx].base = None;
            continue;
        }
        if ds.stage.name.is_empty() {
            ds.stage_name = format!("stage-{i}");
        }
        let idx = all.add(ds);
        let ds = &mut all.states[idx];
        let mut total = 0;
        if ds.stage.base_name != SCRATCH && ds.base.is_none() {
            total = 1;
        }
        total += ds
            .stage
            .commands
            .iter()
            .filter(|c| {
                matches!(
                    c.command,
                    Command::Add(_) | Command::Copy(_) | Command::Run(_) | Command::Workdir(_)
                )
            })
            .count();
        ds.cmd_total = total;
        ds.ignore_cache = opts.no_cache
            || opts
                .no_cache_filter
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&ds.stage.name));
    }

    let target = match &opts.target {
        Some(t) if !t.is_empty() => all.find_by_name(t).ok_or_else(|| {
            ConvertError::new(instructions::suggest::with_suggestion(
                format!("target stage {} could not be found", crate::gofmt::quote(t)),
                t,
                &all.names(),
                true,
            ))
        })?,
        _ => all.states.len() - 1,
    };

    // Find the stages each instruction reads from.
    let registered = all.states.len();
    for i in 0..registered {
        let commands = all.states[i].stage.commands.clone();
        let mut cmds = Vec::with_capacity(commands.len());
        for ins in commands {
            let cmd = to_command(ins, &mut all, &ctx.lex)?;
            for src in cmd.sources.iter().flatten() {
                all.states[i].deps.push((*src, cmd.ins.location));
            }
            cmds.push(cmd);
        }
        all.states[i].commands = cmds;
    }
    check_cycles(&all)?;
    if all.states.len() == 1 {
        all.states[0].stage_name.clear();
    }

    // Resolve base images, then ONBUILD triggers (which may add dependencies), until
    // nothing new appears.
    loop {
        let reachable = reachable_stages(&all, target);
        for &i in &reachable {
            resolve_stage(&mut ctx, &mut graph, &mut all, i, implicit_target)?;
        }
        let mut new_deps = false;
        for &i in &reachable {
            init_from_base(&mut all, i);
            let mut triggers = all.states[i].image.config.on_build.clone();
            if let Some(b) = all.states[i].base
                && !all.states[i].onbuild_init
            {
                for c in &all.states[b].commands {
                    if let Command::Onbuild(expr) = &c.ins.command {
                        triggers.push(expr.clone());
                    }
                }
                all.states[i].onbuild_init = true;
            }
            if !triggers.is_empty() {
                let location = all.states[i].stage.location;
                if init_onbuild_triggers(&mut all, i, &triggers, &ctx.lex)
                    .map_err(|e| e.or_at(location))?
                {
                    new_deps = true;
                }
                all.states[i].image.config.on_build.clear();
            }
        }
        if !new_deps {
            break;
        }
    }

    let reachable = reachable_stages(&all, target);
    for i in 0..all.states.len() {
        if !reachable.contains(&i) || all.states[i].dispatched {
            continue;
        }
        init_from_base(&mut all, i);
        all.states[i].dispatched = true;
        dispatch::dispatch_stage(&mut ctx, &mut graph, &mut all, i)?;
    }

    if let Some(message) = ctx.lint.error() {
        return Err(ConvertError::new(message));
    }

    let t = &mut all.states[target];
    for (k, v) in &opts.labels {
        t.image.config.labels.insert(k.clone(), v.clone());
    }
    if !implicit_target {
        let same = t.image.os == target_platform.os
            && t.image.architecture == target_platform.architecture;
        t.image.os = target_platform.os.clone();
        t.image.architecture = target_platform.architecture.clone();
        if target_platform.variant.is_some() || !same {
            t.image.variant = target_platform.variant.clone().unwrap_or_default();
        }
    }
    let platform = t.image.platform();
    let image = t.image.clone();
    let root = t.state.root.clone();
    let definition = graph.finish(vec![Target {
        platform,
        root,
        image,
    }]);
    Ok((definition, ctx.lint.warnings()))
}

/// The check options: the `BUILDKIT_DOCKERFILE_CHECK` build arg if given, else the
/// `# check=` directive.
fn lint_config(dockerfile: &[u8], opts: &ConvertOptions) -> Result<lint::LintConfig, ConvertError> {
    if let Some(v) = opts.build_args.get("BUILDKIT_DOCKERFILE_CHECK") {
        return lint::LintConfig::parse(v).map_err(|e| {
            ConvertError::new(format!(
                "failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: {e}"
            ))
        });
    }
    let value = parser::parse_directive("check", dockerfile)
        .map(|d| d.value)
        .unwrap_or_default();
    lint::LintConfig::parse(&value)
        .map_err(|e| ConvertError::new(format!("failed to parse check options: {e}")))
}

/// The checks BuildKit makes while reading instructions: MAINTAINER, the casing of
/// `FROM ... AS name`, and keywords of one case throughout the stages.
fn lint_nodes(lint: &lint::Linter, nodes: &[parser::Node]) {
    let mut keywords: Vec<(&str, usize)> = Vec::new();
    let mut in_stages = false;
    for node in nodes {
        let line = node.start_line;
        match node.keyword.as_str() {
            "maintainer" => lint.run(
                lint::Rule::MaintainerDeprecated,
                line,
                "Maintainer instruction is deprecated in favor of using label",
            ),
            "arg" => {
                let keys: Vec<String> = node
                    .args
                    .iter()
                    .map(|a| a.split_once('=').map_or(a.as_str(), |(k, _)| k).to_string())
                    .collect();
                lint::check_description(lint, "ARG", line, &keys, &node.prev_comment);
            }
            "from" => {
                in_stages = true;
                if node.args.len() == 3 {
                    lint::check_description(
                        lint,
                        "FROM",
                        line,
                        &[node.args[2].to_lowercase()],
                        &node.prev_comment,
                    );
                    if node.args[2] != node.args[2].to_lowercase() {
                        lint.run(
                            lint::Rule::StageNameCasing,
                            line,
                            format!("Stage name '{}' should be lowercase", node.args[2]),
                        );
                    }
                    if !lint::from_as_casing_matches(&node.keyword_as_written, &node.args[1]) {
                        lint.run(
                            lint::Rule::FromAsCasing,
                            line,
                            format!(
                                "'{}' and '{}' keywords' casing do not match",
                                node.args[1], node.keyword_as_written
                            ),
                        );
                    }
                }
            }
            _ => {}
        }
        // ARGs before the first FROM belong to no stage and are not counted.
        if in_stages {
            keywords.push((&node.keyword_as_written, line));
        }
    }
    lint::check_keyword_casing(lint, &keywords);
}

/// `ReservedStageName` and `DuplicateStageName`.
fn lint_stage_names(lint: &lint::Linter, stages: &[Stage]) {
    let mut seen = BTreeSet::new();
    for st in stages.iter().filter(|s| !s.name.is_empty()) {
        let line = st.location.start_line;
        if st.name == SCRATCH || st.name == "context" {
            lint.run(
                lint::Rule::ReservedStageName,
                line,
                format!(
                    "Stage name should not use the same name as reserved stage {}",
                    gofmt::quote(&st.name)
                ),
            );
        }
        if !seen.insert(st.name.as_str()) {
            lint.run(
                lint::Rule::DuplicateStageName,
                line,
                format!(
                    "Duplicate stage name {}, stage names should be unique",
                    gofmt::quote(&st.name)
                ),
            );
        }
    }
}

/// `InvalidDefaultArgInFrom`: with the global args' defaults alone (no build args),
/// every FROM must still name a valid image.
fn lint_default_base_names(
    lint: &lint::Linter,
    resolver: &dyn ImageResolver,
    lex: &Lex,
    builtin: &EnvList,
    meta_args: &[(Vec<ArgDef>, Location)],
    stages: &[Stage],
) {
    let Ok(defaults) = args::meta_args(builtin.clone(), lex, meta_args, &BTreeMap::new()) else {
        return; // the build fails on it later
    };
    for st in stages {
        let Ok(m) = lex.process_word(&st.base_name, &defaults) else {
            return;
        };
        if m.result.is_empty() || resolver.normalize(&m.result).is_err() {
            lint.run(
                lint::Rule::InvalidDefaultArgInFrom,
                st.location.start_line,
                format!(
                    "Default value for ARG {} results in empty or invalid base image name",
                    st.base_name
                ),
            );
        }
    }
}

/// `UndefinedArgInFrom`: a FROM expands a name that is neither a global ARG nor a
/// builtin one.
fn report_undefined_from_args(
    lint: &lint::Linter,
    line: usize,
    unmatched: &BTreeSet<String>,
    known: &BTreeSet<String>,
) {
    let options: Vec<String> = known.iter().cloned().collect();
    for arg in unmatched.iter().filter(|k| !known.contains(*k)) {
        lint.run(
            lint::Rule::UndefinedArgInFrom,
            line,
            instructions::suggest::with_suggestion(
                format!("FROM argument '{arg}' is not declared"),
                arg,
                &options,
                true,
            ),
        );
    }
}

/// `RedundantTargetPlatform` (`--platform=$TARGETPLATFORM`) and
/// `FromPlatformFlagConstDisallowed` (a constant platform the stage name does not
/// mention).
fn lint_from_platform(
    ctx: &Ctx<'_>,
    line: usize,
    stage_name: &str,
    platform_flag: &str,
    m: &crate::shell::ProcessWordResult,
) {
    if m.matched.len() == 1
        && m.unmatched.is_empty()
        && m.matched.contains("TARGETPLATFORM")
        && ctx.global_args.get("TARGETPLATFORM").as_deref() == Some(m.result.as_str())
    {
        ctx.lint.run(
            lint::Rule::RedundantTargetPlatform,
            line,
            format!(
                "Setting platform to predefined {platform_flag} in FROM is redundant as this is the default behavior"
            ),
        );
    }
    if m.matched.is_empty()
        && m.unmatched.is_empty()
        && let Ok(p) = m.result.parse::<Platform>()
        && !stage_name.contains(&p.os)
        && !stage_name.contains(&p.architecture)
    {
        ctx.lint.run(
            lint::Rule::FromPlatformFlagConstDisallowed,
            line,
            format!(
                "FROM --platform flag should not use constant value {}",
                gofmt::quote(&m.result)
            ),
        );
    }
}

/// Looks a name up among the named contexts, as BuildKit does: by its familiar form
/// without `:latest`.
fn named_context(
    ctx: &Ctx<'_>,
    name: &str,
) -> Result<Option<(String, NamedContext)>, ConvertError> {
    if ctx.opts.named_contexts.is_empty()
        || name.eq_ignore_ascii_case(SCRATCH)
        || name.eq_ignore_ascii_case("context")
    {
        return Ok(None);
    }
    let norm = ctx
        .resolver
        .normalize(name)
        .map_err(|e| ConvertError::new(format!("invalid context name {name}: {e}")))?;
    let key = norm
        .familiar
        .strip_suffix(":latest")
        .unwrap_or(&norm.familiar)
        .to_string();
    Ok(ctx
        .opts
        .named_contexts
        .get(&key)
        .map(|nc| (key.clone(), nc.clone())))
}

fn to_command(ins: Instruction, all: &mut Stages, lex: &Lex) -> Result<Cmd, ConvertError> {
    let mut sources = Vec::new();
    match &ins.command {
        Command::Copy(c) if !c.from.is_empty() => {
            let res = lex
                .process_word(&c.from, &EnvList::new())
                .map_err(|e| ConvertError::at(e.to_string(), ins.location))?;
            if res.result != c.from {
                return Err(ConvertError::at(
                    "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
                    ins.location,
                ));
            }
            let src = match c.from.parse::<i64>() {
                Ok(index) => {
                    if index < 0 || index as usize >= all.states.len() {
                        return Err(ConvertError::at(
                            format!("invalid stage index {index}"),
                            ins.location,
                        ));
                    }
                    index as usize
                }
                Err(_) => match all.find_by_name(&c.from) {
                    Some(i) => i,
                    None => all.add(StageState::unregistered(&c.from, ins.location)),
                },
            };
            sources.push(Some(src));
        }
        Command::Run(r) => {
            for m in &r.parsed_mounts {
                let from = if m.from.is_empty() { SCRATCH } else { &m.from };
                let src = match all.find_by_name(from) {
                    Some(i) => i,
                    None => all.add(StageState::unregistered(from, ins.location)),
                };
                sources.push(if m.from.is_empty() { None } else { Some(src) });
            }
        }
        _ => {}
    }
    Ok(Cmd {
        ins,
        sources,
        is_onbuild: false,
    })
}

fn check_cycles(all: &Stages) -> Result<(), ConvertError> {
    fn visit(
        all: &Stages,
        s: usize,
        visited: &mut BTreeSet<usize>,
        path: &mut BTreeSet<usize>,
    ) -> Option<Location> {
        if !visited.insert(s) {
            return None;
        }
        path.insert(s);
        for (dep, loc) in &all.states[s].deps {
            if path.contains(dep) {
                return Some(*loc);
            }
            if let Some(l) = visit(all, *dep, visited, path) {
                return Some(l);
            }
        }
        path.remove(&s);
        None
    }
    let mut visited = BTreeSet::new();
    for s in 0..all.states.len() {
        let mut path = BTreeSet::new();
        if let Some(loc) = visit(all, s, &mut visited, &mut path) {
            return Err(ConvertError::at(
                format!(
                    "circular dependency detected on stage: {}",
                    all.states[s].stage_name
                ),
                loc,
            ));
        }
    }
    Ok(())
}

/// The stages `target` needs, in stage order.
fn reachable_stages(all: &Stages, target: usize) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![target];
    while let Some(s) = stack.pop() {
        if !seen.insert(s) {
            continue;
        }
        if let Some(b) = all.states[s].base {
            stack.push(b);
        }
        for (d, _) in &all.states[s].deps {
            stack.push(*d);
        }
    }
    seen.into_iter().collect()
}

/// A stage built on another stage starts from that stage's result and config.
fn init_from_base(all: &mut Stages, i: usize) {
    let Some(b) = all.states[i].base else {
        return;
    };
    let base = &all.states[b];
    let state = base.state.clone();
    let platform = base.platform.clone();
    let mut image = base.image.clone();
    image.config.on_build.clear();
    let workdir_set = base.workdir_set;
    let base_args = base.build_args.clone();
    let ds = &mut all.states[i];
    ds.state = state;
    ds.platform = platform;
    ds.image = image;
    ds.workdir_set = workdir_set;
    ds.build_args.extend(base_args);
}

fn resolve_stage(
    ctx: &mut Ctx<'_>,
    graph: &mut GraphBuilder,
    all: &mut Stages,
    i: usize,
    implicit_target: bool,
) -> Result<(), ConvertError> {
    let ds = &all.states[i];
    if ds.base.is_some() || ds.dispatched || ds.resolved {
        return Ok(());
    }
    let location = ds.stage.location;
    let result = resolve_stage_inner(ctx, graph, all, i, implicit_target);
    let ds = &mut all.states[i];
    ds.resolved = true;
    if ds.unregistered {
        // Implicit stages have no instructions of their own.
        ds.dispatched = true;
    }
    result.map_err(|e| e.or_at(location))
}

fn resolve_stage_inner(
    ctx: &mut Ctx<'_>,
    graph: &mut GraphBuilder,
    all: &mut Stages,
    i: usize,
    implicit_target: bool,
) -> Result<(), ConvertError> {
    let target_platform = ctx.target_platform.clone();
    let ds = &all.states[i];
    if ds.stage.base_name == SCRATCH && ds.named_context.is_none() {
        let ds = &mut all.states[i];
        ds.state = BuildState::scratch();
        ds.image = empty_image(&target_platform);
        ds.platform = Some(target_platform);
        return Ok(());
    }

    if let Some(nc) = ds.named_context.clone() {
        let name = ds.stage.name.clone();
        let platform = ds.platform.clone().unwrap_or(target_platform);
        let (state, image) = load_named_context(ctx, graph, &name, &nc, &platform)?;
        let ds = &mut all.states[i];
        ds.dispatched = true;
        ds.state = state;
        if let Some(img) = image {
            if !img.architecture.is_empty() && !img.os.is_empty() {
                ds.platform = Some(img.platform());
            }
            ds.image = img;
        }
        return Ok(());
    }

    let orig_name = ds.stage.base_name.clone();
    let platform = ds
        .platform
        .clone()
        .unwrap_or_else(|| target_platform.clone());
    let norm = ctx.resolver.normalize(&orig_name).map_err(|e| {
        ConvertError::new(format!(
            "failed to parse stage name {}: {e}",
            crate::gofmt::quote(&orig_name)
        ))
    })?;
    all.states[i].stage.base_name = norm.full.clone();

    if let Some((name, nc)) = named_context(ctx, &norm.full)? {
        let (mut state, image) = load_named_context(ctx, graph, &name, &nc, &platform)?;
        let image = image.unwrap_or_else(|| empty_image(&platform));
        state.platform = Some(platform.clone());
        let ds = &mut all.states[i];
        ds.image = image;
        ds.state = state;
        ds.platform = Some(platform);
        return Ok(());
    }

    let resolved = ctx
        .resolver
        .resolve(ImageSource::Registry(&norm.full), &platform)
        .map_err(|e| {
            let mut names = all.names();
            names.extend(common_image_names());
            ConvertError::new(instructions::suggest::with_suggestion(
                format!("{orig_name}: {e}"),
                &orig_name,
                &names,
                true,
            ))
        })?;
    let mut img = resolved.config;
    img.created = None;
    let mut platform = platform;
    if all.states[i].platform.is_none() && implicit_target {
        platform = auto_detect_platform(&img, &platform, &ctx.build_platform);
    }
    let is_scratch = img.rootfs.diff_ids.is_empty() && img.history.iter().all(|h| h.empty_layer);
    if !is_scratch && (img.os != platform.os || img.architecture != platform.architecture) {
        let actual = Platform {
            os: img.os.clone(),
            architecture: img.architecture.clone(),
            variant: Some(img.variant.clone()).filter(|v| !v.is_empty()),
        };
        ctx.lint.run(
            lint::Rule::InvalidBaseImagePlatform,
            all.states[i].stage.location.start_line,
            format!(
                "Base image {orig_name} was pulled with platform {}, expected {} for current build",
                gofmt::quote(&actual.to_string()),
                gofmt::quote(&platform.to_string())
            ),
        );
    }
    let ds = &mut all.states[i];
    ds.stage.base_name = resolved.reference.clone();
    ds.image = img;
    if is_scratch {
        ds.state = BuildState::scratch();
    } else {
        let name = dispatch::prefix_command(
            ds,
            &format!("FROM {}", resolved.reference),
            ctx.opts.multi_platform,
            Some(&platform),
        );
        let digest = graph.add(
            Op::Source(SourceOp::Image {
                reference: resolved.reference,
                platform: platform.clone(),
            }),
            vec![],
            VertexMeta {
                name,
                location: Some(graph_location(&ctx.opts.dockerfile_name, ds.stage.location)),
                ignore_cache: false,
                internal: false,
            },
        );
        ds.state = BuildState::scratch();
        ds.state.root = Some(digest);
    }
    ds.state.platform = Some(platform.clone());
    ds.platform = Some(platform);
    Ok(())
}

/// The filesystem (and config, for images) of a named context.
fn load_named_context(
    ctx: &mut Ctx<'_>,
    graph: &mut GraphBuilder,
    name: &str,
    nc: &NamedContext,
    platform: &Platform,
) -> Result<(BuildState, Option<ImageConfig>), ConvertError> {
    match nc {
        NamedContext::Local { exclude_patterns } => {
            let digest = graph.add(
                Op::Source(SourceOp::Local {
                    name: name.to_string(),
                    exclude_patterns: exclude_patterns.clone(),
                }),
                vec![],
                VertexMeta {
                    name: format!("[context {name}] load from client"),
                    ..VertexMeta::default()
                },
            );
            let mut st = BuildState::scratch();
            st.root = Some(digest);
            Ok((st, None))
        }
        NamedContext::Image { reference } => {
            if reference == SCRATCH {
                return Ok((BuildState::scratch(), None));
            }
            let norm = ctx
                .resolver
                .normalize(reference)
                .map_err(ConvertError::new)?;
            let resolved = ctx
                .resolver
                .resolve(ImageSource::Registry(&norm.full), platform)
                .map_err(|e| ConvertError::new(format!("{reference}: {e}")))?;
            let mut img = resolved.config;
            img.created = None;
            let digest = graph.add(
                Op::Source(SourceOp::Image {
                    reference: resolved.reference.clone(),
                    platform: platform.clone(),
                }),
                vec![],
                VertexMeta {
                    name: format!("[context {name}] {reference}"),
                    ..VertexMeta::default()
                },
            );
            Ok((state_with_image_config(digest, &img, platform), Some(img)))
        }
        NamedContext::OciLayout { reference } => {
            let resolved = ctx
                .resolver
                .resolve(
                    ImageSource::OciLayout {
                        context: name,
                        reference,
                    },
                    platform,
                )
                .map_err(|e| ConvertError::new(format!("oci-layout context {name}: {e}")))?;
            let mut img = resolved.config;
            img.created = None;
            let digest = graph.add(
                Op::Source(SourceOp::OciLayout {
                    name: name.to_string(),
                    reference: resolved.reference.clone(),
                    platform: platform.clone(),
                }),
                vec![],
                VertexMeta {
                    name: format!("[context {name}] OCI load from client"),
                    ..VertexMeta::default()
                },
            );
            Ok((state_with_image_config(digest, &img, platform), Some(img)))
        }
    }
}

/// An image's filesystem with the environment, directory and user its config sets
/// (BuildKit's `State.WithImageConfig`).
fn state_with_image_config(root: Digest, img: &ImageConfig, platform: &Platform) -> BuildState {
    let mut st = BuildState::scratch();
    st.root = Some(root);
    for e in &img.config.env {
        let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
        st.env.add_or_replace(k, v);
    }
    if !img.config.working_dir.is_empty() {
        st.set_dir(&img.config.working_dir);
    }
    st.user = img.config.user.clone();
    st.platform = Some(platform.clone());
    st
}

fn auto_detect_platform(img: &ImageConfig, target: &Platform, build: &Platform) -> Platform {
    if img.os == target.os && img.architecture == target.architecture {
        return target.clone();
    }
    if img.os == build.os && img.architecture == build.architecture {
        return build.clone();
    }
    target.clone()
}

/// The config a stage starts from when it is built `FROM scratch`.
pub(crate) fn empty_image(platform: &Platform) -> ImageConfig {
    let mut img = ImageConfig::empty(platform);
    img.config.working_dir = "/".into();
    img
}

fn common_image_names() -> Vec<String> {
    let mut out = Vec::new();
    for name in [
        "alpine", "busybox", "centos", "debian", "golang", "ubuntu", "fedora",
    ] {
        out.push(name.to_string());
        out.push(format!("docker.io/library{name}"));
        out.push(format!("{name}:latest"));
        out.push(format!("docker.io/library{name}:latest"));
    }
    out
}

fn init_onbuild_triggers(
    all: &mut Stages,
    i: usize,
    triggers: &[String],
    lex: &Lex,
) -> Result<bool, ConvertError> {
    let mut has_new_deps = false;
    let mut commands = Vec::new();
    let location = all.states[i].stage.location;
    for trigger in triggers {
        let parsed =
            parser::parse(trigger.as_bytes()).map_err(|e| ConvertError::new(e.to_string()))?;
        if parsed.nodes.len() != 1 {
            return Err(ConvertError::new(
                "onbuild trigger should be a single expression",
            ));
        }
        let mut node = parsed.nodes[0].clone();
        node.start_line = location.start_line;
        node.end_line = location.end_line;
        let ins = instructions::parse_command(&node).map_err(ConvertError::new)?;
        let mut cmd = to_command(ins, all, lex)?;
        cmd.is_onbuild = true;
        if cmd.sources.iter().any(|s| s.is_some()) {
            has_new_deps = true;
        }
        for src in cmd.sources.iter().flatten() {
            all.states[i].deps.push((*src, location));
        }
        commands.push(cmd);
    }
    let ds = &mut all.states[i];
    ds.cmd_total += commands.len();
    commands.append(&mut ds.commands);
    ds.commands = commands;
    Ok(has_new_deps)
}

pub(crate) fn graph_location(file: &str, loc: Location) -> GraphLocation {
    GraphLocation {
        file: file.to_string(),
        start_line: loc.start_line,
        end_line: loc.end_line,
    }
}

#[cfg(test)]
mod tests;
