//! tagbump: write a new image tag into a GitOps manifest repo, changing only those bytes.
//!
//! `main` parses the command line and calls [`run`]; everything else is here.

pub mod cli;
pub mod error;
pub mod image;
pub mod local;
pub mod output;
pub mod target;
pub mod yaml;

use anyhow::Result;

/// Run one parsed command.
pub fn run(cli: cli::Cli) -> Result<()> {
    match cli.command {
        cli::Command::Set(args) => local::set(&args),
        cli::Command::Image(args) => local::image(&args),
    }
}
