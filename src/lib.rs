//! tagbump: write a new image tag into a GitOps manifest repo, changing only those bytes.
//!
//! `main` parses the command line and calls [`run`]; everything else is here.

pub mod cli;
pub mod demo;
pub mod error;
pub mod git;
pub mod image;
pub mod local;
pub mod output;
pub mod secret;
pub mod settings;
pub mod target;
pub mod update;
pub mod yaml;

use anyhow::{Context, Result};

/// Run one parsed command.
pub fn run(cli: cli::Cli) -> Result<()> {
    match cli.command {
        cli::Command::Update(args) => {
            let spec = settings::update_spec(&args, &settings::process_env)?;
            let report = update::run(&spec)?;
            output::write_update(
                &mut std::io::stdout().lock(),
                &mut std::io::stderr().lock(),
                &report,
                &spec.remote.url,
            )
            .context("cannot write the result")
        }
        cli::Command::Set(args) => local::set(&args),
        cli::Command::Image(args) => local::image(&args),
        cli::Command::Demo(args) => demo::run(&args),
    }
}
