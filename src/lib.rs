//! tagbump: write a new image tag into a GitOps manifest repo, changing only those bytes.
//!
//! `main` parses the command line and calls [`run`]; everything else is here.

pub mod cli;
pub mod demo;
pub mod error;
pub mod forge;
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
        cli::Command::Update(args) => update_command(&args),
        cli::Command::Set(args) => local::set(&args),
        cli::Command::Image(args) => local::image(&args),
        cli::Command::Demo(args) => demo::run(&args),
    }
}

/// `tagbump update`: the push, then the merge/pull request.
fn update_command(args: &cli::UpdateArgs) -> Result<()> {
    let env = settings::process_env;
    let spec = settings::update_spec(args, &env)?;
    let forge_spec = settings::forge_spec(args, &spec, &env)?;
    let report = update::run(&spec)?;
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    output::write_update(&mut out, &mut err, &report, &spec.remote.url)
        .context("cannot write the result")?;
    drop((out, err));
    let Some(conn) = &forge_spec.connection else {
        if let Some(note) = &forge_spec.note {
            eprintln!("note: {note}");
        }
        return Ok(());
    };
    // Nothing on the branch to review: the base already had the values.
    if report.commit.is_none() {
        return Ok(());
    }
    let vars = update::template_vars(&spec, &report.plan, &report.base, &report.branch);
    let render = |template: &str| {
        update::render_message(template, &vars)
            .map_err(|e| error::Failure::new(error::Kind::Usage, e))
    };
    let mut request = forge_spec.request.clone();
    request.title = match &forge_spec.title {
        Some(t) => render(t)?,
        None => update::summary(&spec, &report.plan),
    };
    request.description = match &forge_spec.description {
        Some(t) => render(t)?,
        None => update::default_description(&spec, &report, conn.kind.noun()),
    };
    request.source_branch = report.branch.clone();
    request.target_branch = report.base.clone();
    if let Some(note) = &forge_spec.note {
        eprintln!("note: {note}");
    }
    if report.operation == update::Operation::DryRun {
        output::write_change_request_plan(&mut std::io::stderr().lock(), conn, &request)?;
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(forge::open_or_update(conn, &request))?;
    output::write_change_request(&mut std::io::stderr().lock(), &outcome)?;
    Ok(())
}
