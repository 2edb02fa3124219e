//! tagbump: write a new image tag into a GitOps manifest repo, changing only those bytes.
//!
//! `main` parses the command line and calls [`run`]; everything else is here.

/// `eprintln!` that never panics: a closed stderr (`tagbump … 2>&1 | head -1`)
/// must not turn a run into a panic with exit 101. Progress and notes are
/// best effort; the exit code still says how the run went.
#[macro_export]
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that never panics on a closed stdout, for the same reason.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod ci;
pub mod cli;
pub mod commands;
pub mod config;
pub mod env;
pub mod error;
pub mod fleet;
pub mod forge;
pub mod git;
pub mod http;
pub mod image;
pub mod interrupt;
pub mod log;
pub mod output;
pub mod registry;
pub mod report;
pub mod secret;
pub mod settings;
pub mod signing;
pub mod targets;
pub mod update;
pub mod yaml;

use anyhow::{Context, Result};

/// Run one parsed command.
pub fn run(cli: cli::Cli) -> Result<()> {
    log::configure(cli.verbose, cli.quiet, cli.color);
    match cli.command {
        cli::Command::Update(args) => commands::update::run(&args),
        cli::Command::Set(args) => commands::files::set(&args),
        cli::Command::Image(args) => commands::files::image(&args),
        cli::Command::Demo(args) => commands::demo::run(&args),
        cli::Command::Completions(args) => {
            use clap::CommandFactory;
            let mut command = cli::Cli::command();
            clap_complete::generate(args.shell, &mut command, "tagbump", &mut std::io::stdout());
            Ok(())
        }
        cli::Command::ConfigSchema => {
            crate::say!("{}", config::schema());
            Ok(())
        }
        cli::Command::ReportSchema => {
            crate::say!("{}", report::schema());
            Ok(())
        }
        cli::Command::Man(args) => man(&args),
    }
}

/// The man pages: every page is generated (tagbump.1 names the
/// subcommands' pages, which then exist), into `--dir` or a temporary
/// directory whose one page is printed.
fn man(args: &cli::ManArgs) -> Result<()> {
    use clap::CommandFactory;
    let generate = |dir: &std::path::Path| {
        clap_mangen::generate_to(cli::Cli::command(), dir)
            .with_context(|| format!("cannot write the man pages into {}", dir.display()))
    };
    if let Some(dir) = &args.dir {
        return generate(dir);
    }
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    generate(temp.path())?;
    let page = match &args.subcommand {
        Some(name) => format!("tagbump-{name}.1"),
        None => "tagbump.1".to_string(),
    };
    let text = std::fs::read_to_string(temp.path().join(&page)).map_err(|_| {
        let names: Vec<String> = cli::Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .filter(|n| n != "help")
            .collect();
        error::Failure::new(
            error::Kind::Usage,
            format!(
                "no man page for `{}`: the subcommands are {}",
                args.subcommand.as_deref().unwrap_or_default(),
                names.join(", ")
            ),
        )
    })?;
    say!("{}", text.trim_end());
    Ok(())
}

#[cfg(test)]
mod testing {
    /// An environment made of fixed pairs, for settings and CI detection tests.
    pub fn env_of(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }
}
