//! The subcommands, each from its arguments to its results; they sit above
//! every layer they use (settings, the update, the forge, the reports).

pub mod demo;
pub mod files;
pub mod fleet;
pub mod merge_request;
pub mod update;

use anyhow::{Context, Result};

/// What an update did, on stderr (and its diffs on stdout for a dry run):
/// with `--output json` the diffs travel inside the JSON, not beside it.
fn write_result(json: bool, report: &crate::update::Report, url: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let mut sink = std::io::sink();
    let out: &mut dyn std::io::Write = if json { &mut sink } else { &mut stdout };
    crate::output::write_update(&mut &mut *out, &mut std::io::stderr().lock(), report, url)
        .context("cannot write the result")
}
