//! The `kiln` command line: parses arguments, runs the engine in this process and
//! decides exit codes. Only this crate prints.

mod args;
mod build;
mod export;
mod progress;
mod resolver;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, DockerfileCommand};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dockerfile {
            command: DockerfileCommand::Parse { file },
        } => dockerfile_parse(&file),
        Command::Build(args) => {
            // Mount namespaces are per thread: isolate before any thread exists, so
            // every mount kiln makes is private to it and gone when it exits.
            if rustix::process::geteuid().is_root()
                && let Err(e) = kiln_worker::isolate_mounts()
            {
                eprintln!("ERROR: cannot create a private mount namespace: {e}");
                return ExitCode::from(1);
            }
            runtime().and_then(|rt| rt.block_on(build::run(state_dir(cli.root), *args)))
        }
        Command::Du => runtime().and_then(|rt| rt.block_on(build::du(state_dir(cli.root)))),
        Command::Prune(args) => {
            runtime().and_then(|rt| rt.block_on(build::prune(state_dir(cli.root), args)))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("ERROR: cannot start the runtime: {e}"))
}

/// `--root`, `KILN_ROOT`, else `/var/lib/kiln` for root and `$XDG_DATA_HOME/kiln`
/// (or `~/.local/share/kiln`) for others — always absolute: paths under it are handed
/// to runc, which resolves a relative rootfs against the bundle, not our cwd.
fn state_dir(root: Option<PathBuf>) -> PathBuf {
    if let Some(r) = root {
        return std::path::absolute(&r).unwrap_or(r);
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/kiln");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("kiln");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/kiln")
}

/// `kiln dockerfile parse FILE`: BuildKit's dump of the syntax tree.
fn dockerfile_parse(file: &std::path::Path) -> Result<(), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("ERROR: {}: {e}", file.display()))?;
    match kiln_frontend::parser::parse(&bytes) {
        Ok(result) => {
            println!("{}", result.dump());
            for w in &result.warnings {
                eprintln!("WARNING: {}: {}", file.display(), w.short);
            }
            Ok(())
        }
        Err(e) => Err(format!("ERROR: {}: {e}", file.display())),
    }
}
