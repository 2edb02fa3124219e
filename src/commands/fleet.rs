//! `tagbump update` over the config file's `images:`: the registry asked
//! about every image at once, one clone for the whole run, one commit (with
//! `--direct`) or one review branch and merge request per group, and a row
//! per image saying what became of it. An image that fails is reported and
//! the others still land; the exit code then says that something failed.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use schemars::JsonSchema;
use serde::Serialize;

use crate::config::{Controller, SetValue};
use crate::error::{Failure, Kind};
use crate::fleet::Entry;
use crate::registry::Resolved;
use crate::update::{Operation, UpdateSpec};
use crate::{ci, cli, config, fleet, interrupt, registry, settings, update};

/// What `--output json` prints for a fleet run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FleetReport {
    pub version: u32,
    /// Whether anything was pushed (or, with `--dry-run`, would be).
    pub changed: bool,
    /// How many images failed.
    pub failed: usize,
    /// Registry requests for the whole fleet (token requests included).
    pub registry_requests: usize,
    pub images: Vec<FleetRow>,
}

/// One image of the fleet: what became of it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FleetRow {
    pub name: String,
    pub policy: String,
    /// The values its references held (as written in the files).
    pub old: Vec<String>,
    /// The tag the policy chose; null when the registry did not answer.
    pub new: Option<String>,
    pub digest: Option<String>,
    /// `pushed`, `unchanged`, `already-on-branch`, `dry-run` or `failed`.
    pub outcome: String,
    /// Why it failed.
    pub reason: Option<String>,
    pub branch: Option<String>,
    pub change_request: Option<String>,
}

/// Whether this run is a fleet run: the config lists `images:` and no
/// `--image` is given. `--only` and the single-image targets are checked.
pub fn applies(args: &cli::UpdateArgs, layer: &config::Layer) -> Result<bool> {
    let fleet = args.images.is_empty() && layer.lists_fleet();
    if !fleet && !args.only.is_empty() {
        return Err(Failure::new(
            Kind::Usage,
            "--only picks images of the config file's `images:`, for a run without --image",
        )
        .into());
    }
    if fleet && (args.tag_policy.is_some() || args.tag_sort.is_some()) {
        return Err(Failure::new(
            Kind::Usage,
            "--tag-policy and --tag-sort are per image in a fleet run: each entry's `policy` \
             and `tag_sort`",
        )
        .into());
    }
    if fleet && !(args.sets.is_empty() && args.promotions.is_empty() && args.puts.is_empty()) {
        return Err(Failure::new(
            Kind::Usage,
            "--set, --promote and --put are for a single run; a fleet run (`images:`, no \
             --image) takes its targets from each image's `in` and `set`",
        )
        .into());
    }
    Ok(fleet)
}

/// The fleet run, from the settings to the rows.
pub fn run(args: &cli::UpdateArgs, layer: &config::Layer, file: &Path) -> Result<()> {
    let env = crate::env::process_env;
    let mut base = settings::update_spec(args, layer, &env)?;
    let forge_spec = settings::forge_spec(args, layer, &base, &env)?;
    settings::transport(args, layer, &mut base, &env)?;
    if let update::Via::Api { fallback: true, .. } = base.via {
        base.via = update::Via::Git;
        base.via_reason = "--via auto: a fleet run scans many directories, which one fetch \
                           reads best"
            .into();
    }
    crate::git::set_timeouts();
    interrupt::install(base.timeout);
    let mut transport = update::attempt::open(&base)?;
    let listed = listed(layer, file, &base, transport.as_mut())?;
    let entries = fleet::entries(&listed, &args.only, &base.registry, file)?;
    let named: std::collections::BTreeSet<&str> =
        entries.iter().map(|e| e.group.as_str()).collect();
    if base.branch.is_some() && !base.direct && named.len() > 1 {
        return Err(Failure::new(
            Kind::Usage,
            format!(
                "--branch names one review branch, and this fleet has {} groups, each with its own",
                named.len()
            ),
        )
        .hint("give the images one `group`, drop --branch, or pass --direct")
        .into());
    }
    interrupt::stage(format!(
        "asking the registry about {} images",
        entries.len()
    ));
    let items: Vec<_> = entries
        .iter()
        .map(|e| (e.image.clone(), e.registry.clone()))
        .collect();
    let (answers, requests) = registry::resolve_each(&items)?;
    let mut rows = Vec::new();
    let mut landed: Vec<(&Entry, Resolved)> = Vec::new();
    for (entry, answer) in entries.iter().zip(answers) {
        match answer {
            Ok(resolved) => landed.push((entry, resolved)),
            Err(e) => {
                let reason = crate::secret::scrub(&format!("{e:#}"));
                crate::note!("{}: failed: {reason}", entry.name);
                rows.push(failed_row(entry, None, &reason));
            }
        }
    }
    let mut groups: BTreeMap<&str, Vec<(&Entry, Resolved)>> = BTreeMap::new();
    for (entry, resolved) in landed {
        let group = if base.direct {
            ""
        } else {
            entry.group.as_str()
        };
        groups.entry(group).or_default().push((entry, resolved));
    }
    let json = args.output == cli::OutputFormat::Json;
    for members in groups.values() {
        let spec = group_spec(&base, members);
        let report = match update::attempt::run_on(&spec, Some(transport.as_mut())) {
            Ok(report) => report,
            Err(e) if interrupt::stopping() => return Err(e),
            Err(e) => {
                let reason = crate::secret::scrub(&format!("{e:#}"));
                for (entry, resolved) in members {
                    crate::note!("{}: failed: {reason}", entry.name);
                    rows.push(failed_row(entry, Some(resolved), &reason));
                }
                continue;
            }
        };
        super::write_result(json, &report, &spec.remote.url)?;
        let outcome = match super::merge_request::open_or_update(&spec, &forge_spec, &report) {
            Ok(outcome) => outcome,
            // The push stands; the merge request is this group's failure.
            Err(e) => {
                let reason = format!(
                    "pushed to `{}`, but the merge request failed: {}",
                    report.branch,
                    crate::secret::scrub(&format!("{e:#}"))
                );
                for (entry, resolved) in members {
                    crate::note!("{}: failed: {reason}", entry.name);
                    rows.push(failed_row(entry, Some(resolved), &reason));
                }
                continue;
            }
        };
        for (entry, resolved) in members {
            let name = resolved.image.name();
            match report.plan.unmatched.iter().find(|(n, _)| *n == name) {
                Some((_, why)) => {
                    crate::note!("{}: failed: {why}", entry.name);
                    rows.push(failed_row(entry, Some(resolved), why));
                }
                None => rows.push(row(entry, resolved, &report, outcome.as_ref())),
            }
        }
    }
    finish(args, rows, requests, entries.len())
}

/// The config file's images, and those the controllers' configuration
/// in the base branch lists.
fn listed(
    layer: &config::Layer,
    file: &Path,
    base: &UpdateSpec,
    repo: &mut dyn update::transport::Transport,
) -> Result<Vec<fleet::Listed>> {
    let mut listed = fleet::from_config(&layer.images, file);
    if !layer.images_from.is_empty() {
        let (commit, files) = base_files(base, repo)?;
        let at = &commit[..commit.len().min(12)];
        for controller in &layer.images_from {
            let (what, found) = match controller {
                Controller::Flux => ("flux", fleet::flux::read(&files)?),
                Controller::ArgocdImageUpdater => {
                    ("argocd-image-updater", fleet::argocd::read(&files)?)
                }
            };
            crate::note!("{what}: {} images at `{at}`", found.len());
            listed.extend(found);
        }
    }
    Ok(listed)
}

/// Every YAML file of the base branch, where controllers keep their
/// configuration, and the commit they were read at.
fn base_files(
    base: &UpdateSpec,
    repo: &mut dyn update::transport::Transport,
) -> Result<(String, Vec<crate::targets::SourceFile>)> {
    let same = |b: &str| b.to_string();
    let naming = update::transport::Naming {
        spec: base,
        branch: &same,
        legacy: &same,
    };
    let tips = repo.tips(&naming)?.ok_or_else(|| {
        Failure::new(
            Kind::Remote,
            format!("{}: the base was not read whole", repo.url()),
        )
        .transient()
    })?;
    let (files, _) = repo.yaml_files(&tips.base_tip, "")?;
    Ok((tips.base_tip, files))
}

/// The spec of one group: its images, each with its scope, and the `set`
/// places that take their versions.
fn group_spec(base: &UpdateSpec, members: &[(&Entry, Resolved)]) -> UpdateSpec {
    let mut spec = base.clone();
    spec.images = members.iter().map(|(_, r)| r.image.clone()).collect();
    spec.image_sources = members.iter().map(|(_, r)| r.source).collect();
    spec.image_digests = members.iter().map(|(_, r)| r.digest.clone()).collect();
    spec.image_scopes = members.iter().map(|(e, _)| e.scope.clone()).collect();
    spec.dirs = Vec::new();
    spec.scan = true;
    spec.promotions = Vec::new();
    spec.puts = Vec::new();
    spec.sets = members
        .iter()
        .flat_map(|(entry, resolved)| {
            entry.sets.iter().map(move |(set, value)| {
                let mut set = set.clone();
                set.assignment.value = set_value(entry, resolved, *value);
                set
            })
        })
        .collect();
    spec
}

/// What a `set` place takes of a resolved image. `tag`: the tag alone, as
/// for --image (a digest pinned by the registry stays in image references:
/// a chart's appVersion wants the tag); `image`: `name:tag`, `@digest` when
/// pinned (as Flux's full `$imagepolicy` marker writes it).
fn set_value(entry: &Entry, resolved: &Resolved, value: SetValue) -> String {
    let tag = resolved.image.tag.clone().unwrap_or_default();
    let digest = resolved.image.digest.clone().unwrap_or_default();
    match value {
        SetValue::Tag => tag,
        SetValue::Name => entry.name.clone(),
        SetValue::Digest => digest,
        SetValue::Image if digest.is_empty() => format!("{}:{tag}", entry.name),
        SetValue::Image => format!("{}:{tag}@{digest}", entry.name),
    }
}

fn failed_row(entry: &Entry, resolved: Option<&Resolved>, reason: &str) -> FleetRow {
    FleetRow {
        name: entry.name.clone(),
        policy: entry.policy.clone(),
        old: Vec::new(),
        new: resolved.and_then(|r| r.image.tag.clone()),
        digest: resolved.and_then(|r| r.digest.clone()),
        outcome: "failed".into(),
        reason: Some(reason.to_string()),
        branch: None,
        change_request: None,
    }
}

fn row(
    entry: &Entry,
    resolved: &Resolved,
    report: &update::Report,
    outcome: Option<&crate::forge::Outcome>,
) -> FleetRow {
    let name = resolved.image.name();
    let old = report
        .plan
        .held
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, held)| held.clone())
        .unwrap_or_default();
    let done = match report.operation {
        Operation::Pushed => "pushed",
        Operation::Unchanged => "unchanged",
        Operation::AlreadyOnBranch => "already-on-branch",
        Operation::DryRun => "dry-run",
    };
    // An image whose files already held the version did not change, even
    // when others of its group did.
    let unchanged = !old.is_empty() && old.iter().all(|o| holds(o, &version_of(resolved)));
    FleetRow {
        name: entry.name.clone(),
        policy: entry.policy.clone(),
        old,
        new: resolved.image.tag.clone(),
        digest: resolved.digest.clone(),
        outcome: if unchanged { "unchanged" } else { done }.into(),
        reason: None,
        branch: (report.operation != Operation::Unchanged).then(|| report.branch.clone()),
        change_request: outcome.map(|o| o.url.clone()),
    }
}

/// Whether a value as written (`1.4.2`, `name:1.4.2`, `name:1.4.2@sha256:…`)
/// holds the tag `tag`.
fn holds(written: &str, tag: &str) -> bool {
    written == tag
        || written.ends_with(&format!(":{tag}"))
        || written.contains(&format!(":{tag}@"))
        || written.starts_with(&format!("{tag}@"))
}

fn version_of(resolved: &Resolved) -> String {
    resolved.image.tag.clone().unwrap_or_default()
}

/// The rows to stderr (and as JSON, the step summary and `GITHUB_OUTPUT`),
/// then the exit: a failure when any image failed.
fn finish(
    args: &cli::UpdateArgs,
    rows: Vec<FleetRow>,
    requests: usize,
    total: usize,
) -> Result<()> {
    let failed: Vec<&str> = rows
        .iter()
        .filter(|r| r.outcome == "failed")
        .map(|r| r.name.as_str())
        .collect();
    let report = FleetReport {
        version: 1,
        changed: rows
            .iter()
            .any(|r| matches!(r.outcome.as_str(), "pushed" | "dry-run")),
        failed: failed.len(),
        registry_requests: requests,
        images: rows.clone(),
    };
    crate::note!("{}", table(&rows).trim_end());
    if args.output == cli::OutputFormat::Json {
        let text = serde_json::to_string_pretty(&report).context("cannot encode the result")?;
        crate::say!("{text}");
    }
    let ci = ci::detect(&crate::env::process_env);
    if let Some(path) = &ci.github_output {
        let outputs = [
            ("changed", report.changed.to_string()),
            ("failed", report.failed.to_string()),
        ];
        let outputs: Vec<(&str, String)> = outputs.iter().map(|(k, v)| (*k, v.clone())).collect();
        ci::write_github_output(path, &outputs)
            .with_context(|| format!("cannot write GITHUB_OUTPUT ({})", path.display()))?;
    }
    if let Some(path) = &args.dotenv {
        let pairs = [
            ("TAGBUMP_CHANGED", report.changed.to_string()),
            ("TAGBUMP_FAILED", report.failed.to_string()),
        ];
        ci::write_dotenv(path, &pairs)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &ci.github_step_summary {
        let md = format!("### tagbump: {} images\n\n{}", total, table(&rows));
        ci::write_step_summary(path, &md)
            .with_context(|| format!("cannot write GITHUB_STEP_SUMMARY ({})", path.display()))?;
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        Kind::Partial,
        format!(
            "{} of {total} images failed: {}",
            failed.len(),
            failed.join(", ")
        ),
    )
    .hint("each failed image is listed above with its reason; the others landed")
    .into())
}

/// The rows as a Markdown table (also readable as text).
fn table(rows: &[FleetRow]) -> String {
    let mut md =
        String::from("| image | policy | old | new | outcome | branch | merge request |\n");
    md.push_str("|---|---|---|---|---|---|---|\n");
    for r in rows {
        let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            cell(&r.name),
            cell(&r.policy),
            cell(&r.old.join(", ")),
            r.new.as_deref().unwrap_or("-"),
            match &r.reason {
                Some(why) => format!("failed: {}", cell(why)),
                None => r.outcome.clone(),
            },
            r.branch.as_deref().unwrap_or("-"),
            r.change_request.as_deref().unwrap_or("-"),
        ));
    }
    md
}
