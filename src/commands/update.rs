//! The `update` subcommand from end to end: resolve the settings (flags,
//! config file, environment), arm the signal handlers and the wall-clock cap,
//! run the attempts, then the merge/pull request, then write the results for
//! later CI steps (JSON, `GITHUB_OUTPUT`, step summary, dotenv).
//!
//! It sits above every layer it uses: settings, the update itself, the
//! registry, the forge client and the reports.

use anyhow::{Context, Result};

use crate::image::ImageRef;
use crate::{ci, cli, config, error, interrupt, registry, report, settings, update};

/// `tagbump update`: the push, then the merge/pull request, then the
/// results for later CI steps.
pub fn run(args: &cli::UpdateArgs) -> Result<()> {
    let env = crate::env::process_env;
    let image_version = args.images.first().map(|i| i.version());
    let mut file = std::path::PathBuf::from(config::DEFAULT_FILE);
    let layer = match config::load(args.config.as_deref())? {
        Some((path, config)) => {
            file = path.clone();
            config::layer(
                &config,
                &path,
                args.environment.as_deref(),
                image_version.as_deref(),
            )?
        }
        None if args.environment.is_some() => {
            return Err(
                error::Failure::new(error::Kind::Usage, "--env needs a config file")
                    .hint("create .tagbump.yaml with `environments:`, or pass --config")
                    .into(),
            )
        }
        None => config::Layer::default(),
    };
    if super::fleet::applies(args, &layer)? {
        return super::fleet::run(args, &layer, &file);
    }
    let mut spec = settings::update_spec(args, &layer, &env)?;
    let forge_spec = settings::forge_spec(args, &layer, &spec, &env)?;
    settings::transport(args, &layer, &mut spec, &env)?;
    crate::git::set_timeouts();
    interrupt::install(spec.timeout);
    // The registry first: a missing image stops the run before the clone.
    if spec.registry.active() {
        interrupt::stage("asking the image registry".into());
    }
    let images = registry::resolve(&spec.images, &spec.registry)?;
    if let (Some(given), Some(settled)) = (spec.images.first(), images.first()) {
        fill_image_sets(&mut spec.sets, given, &settled.image);
    }
    spec.images = images.iter().map(|r| r.image.clone()).collect();
    spec.image_sources = images.iter().map(|r| r.source).collect();
    spec.image_digests = images.iter().map(|r| r.digest.clone()).collect();
    let report = update::run(&spec)?;
    if !spec.direct && !spec.dry_run {
        interrupt::stage("opening or updating the merge request".into());
    }
    let json = args.output == cli::OutputFormat::Json;
    super::write_result(json, &report, &spec.remote.url)?;
    let outcome = super::merge_request::open_or_update(&spec, &forge_spec, &report)?;
    let summary = report::JsonReport::new(&report, &spec, outcome.as_ref());
    if json {
        let text = serde_json::to_string_pretty(&summary).context("cannot encode the result")?;
        crate::say!("{text}");
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

/// Config `set`s without a `value` take the image's version: the tag the
/// registry settled on (a `--tag-policy`'s choice) and the digest only when
/// `--image` gave one. A digest the registry added for `--pin-digest` stays
/// in image references: a chart's `appVersion` wants the tag.
fn fill_image_sets(sets: &mut [update::FileSet], given: &ImageRef, settled: &ImageRef) {
    let version = ImageRef {
        tag: settled.tag.clone(),
        ..given.clone()
    }
    .version();
    for set in sets.iter_mut().filter(|set| set.from_image) {
        set.assignment.value = version.clone();
    }
}
