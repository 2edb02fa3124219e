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
pub mod config;
pub mod demo;
pub mod error;
pub mod files;
pub mod forge;
pub mod git;
pub mod http;
pub mod image;
pub mod interrupt;
pub mod output;
pub mod registry;
pub mod report;
pub mod secret;
pub mod settings;
pub mod signing;
pub mod target;
pub mod update;
pub mod yaml;

use anyhow::{Context, Result};

/// Run one parsed command.
pub fn run(cli: cli::Cli) -> Result<()> {
    match cli.command {
        cli::Command::Update(args) => update::command::run(&args),
        cli::Command::Set(args) => files::set(&args),
        cli::Command::Image(args) => files::image(&args),
        cli::Command::Demo(args) => demo::run(&args),
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
        cli::Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(cli::Cli::command())
                .render(&mut std::io::stdout())
                .context("cannot write the man page")
        }
    }
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
