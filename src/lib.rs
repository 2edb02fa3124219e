//! tagbump: write a new image tag into a GitOps manifest repo, changing only those bytes.
//!
//! `main` parses the command line and calls [`run`]; everything else is here.

pub mod ci;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod forge;
pub mod git;
pub mod image;
pub mod interrupt;
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
        cli::Command::Completions(args) => {
            use clap::CommandFactory;
            let mut command = cli::Cli::command();
            clap_complete::generate(args.shell, &mut command, "tagbump", &mut std::io::stdout());
            Ok(())
        }
        cli::Command::ConfigSchema => {
            println!("{}", config::schema());
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

/// `tagbump update`: the push, then the merge/pull request, then the
/// results for later CI steps.
fn update_command(args: &cli::UpdateArgs) -> Result<()> {
    let env = settings::process_env;
    let mut args = args.clone();
    let environment = args.environment.clone();
    match config::load(args.config.as_deref())? {
        Some((path, config)) => config::apply(&mut args, &config, &path, environment.as_deref())?,
        None if args.environment.is_some() => {
            return Err(
                error::Failure::new(error::Kind::Usage, "--env needs a config file")
                    .hint("create .tagbump.yaml with `environments:`, or pass --config")
                    .into(),
            )
        }
        None => {}
    }
    let args = &args;
    let spec = settings::update_spec(args, &env)?;
    let forge_spec = settings::forge_spec(args, &spec, &env)?;
    // Every git connection gets a connect timeout and an idle timeout
    // (libgit2 applies them to HTTP; SSH has only the --timeout watchdog).
    // SAFETY: set once, before any network operation, from the main thread.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(15_000);
        let _ = git2::opts::set_server_timeout_in_milliseconds(60_000);
    }
    interrupt::install(spec.timeout);
    let report = update::run(&spec)?;
    interrupt::stage("opening or updating the merge request".into());
    let json = args.output == cli::OutputFormat::Json;
    {
        // With --output json the diffs travel inside the JSON, not beside it.
        let mut stdout = std::io::stdout().lock();
        let mut sink = std::io::sink();
        let out: &mut dyn std::io::Write = if json { &mut sink } else { &mut stdout };
        output::write_update(
            &mut &mut *out,
            &mut std::io::stderr().lock(),
            &report,
            &spec.remote.url,
        )
        .context("cannot write the result")?;
    }
    let outcome = change_request(&spec, &forge_spec, &report)?;
    let summary = output::Summary::new(&report, &spec.remote.url, outcome.as_ref());
    if json {
        let text = serde_json::to_string_pretty(&summary).context("cannot encode the result")?;
        println!("{text}");
    }
    let ci = ci::detect(&env);
    if let Some(path) = &ci.github_output {
        ci::write_github_output(path, &summary.outputs())
            .with_context(|| format!("cannot write GITHUB_OUTPUT ({})", path.display()))?;
    }
    if let Some(path) = &ci.github_step_summary {
        ci::write_step_summary(path, &summary.markdown())
            .with_context(|| format!("cannot write GITHUB_STEP_SUMMARY ({})", path.display()))?;
    }
    if let Some(path) = &args.dotenv {
        let pairs = summary.dotenv();
        let pairs: Vec<(&str, String)> =
            pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        ci::write_dotenv(path, &pairs)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Open or update the merge/pull request for a pushed review branch.
fn change_request(
    spec: &update::UpdateSpec,
    forge_spec: &settings::ForgeSpec,
    report: &update::Report,
) -> Result<Option<forge::Outcome>> {
    let Some(conn) = &forge_spec.connection else {
        if let Some(note) = &forge_spec.note {
            eprintln!("note: {note}");
        }
        return Ok(None);
    };
    // Nothing on the branch to review: the base already had the values.
    if report.commit.is_none() {
        return Ok(None);
    }
    let vars = update::template_vars(spec, &report.plan, &report.base, &report.branch);
    let render = |template: &str| {
        update::render_message(template, &vars)
            .map_err(|e| error::Failure::new(error::Kind::Usage, e))
    };
    let mut request = forge_spec.request.clone();
    request.title = match &forge_spec.title {
        Some(t) => render(t)?,
        None => update::summary(spec, &report.plan),
    };
    request.description = match &forge_spec.description {
        Some(t) => render(t)?,
        None => update::default_description(spec, report, conn.kind.noun()),
    };
    request.source_branch = report.branch.clone();
    request.target_branch = report.base.clone();
    if let Some(note) = &forge_spec.note {
        eprintln!("note: {note}");
    }
    if report.operation == update::Operation::DryRun {
        output::write_change_request_plan(&mut std::io::stderr().lock(), conn, &request)?;
        return Ok(None);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(forge::open_or_update(conn, &request))?;
    output::write_change_request(&mut std::io::stderr().lock(), &outcome)?;
    Ok(Some(outcome))
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
