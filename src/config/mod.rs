//! The config file: `.tagbump.yaml` in the working directory, or `--config`.
//!
//! It holds what stays the same from run to run (the manifest repo, where a
//! service lives in it, per-environment targets, merge request defaults), so
//! the CI job only passes what changes: `--image`. It sits between the
//! `TAGBUMP_*` variables and the CI defaults: flag > variable > config > CI.
//! Unknown keys are errors that name the key and its line, and
//! `tagbump config-schema` prints a JSON Schema generated from these types
//! for editors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::cli::{ForgeArg, MergeMethod};
use crate::error::{Failure, Kind};
use crate::targets::Assignment;
use crate::update::{file_path, repo_path, FileSet, Promotion};

mod fleet;

pub use fleet::{Controller, FleetImage, FleetSet, SetValue};

pub const DEFAULT_FILE: &str = ".tagbump.yaml";

/// tagbump's config file.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The manifest repository: ssh://, git@host:path, https:// or a local path.
    pub repo: Option<String>,
    /// The branch to start from. Default: the remote's default branch.
    pub base: Option<String>,
    /// The review branch to push. Default: derived from the targets.
    pub branch: Option<String>,
    /// Push straight to the base branch.
    pub direct: Option<bool>,
    /// Add to the other tagbump changes on `branch` (see `--join`).
    pub join: Option<bool>,
    /// `git`, `api` or `auto` (see `--via`).
    pub via: Option<crate::cli::Via>,
    /// Targets used when no `--env` is given.
    #[serde(default)]
    pub targets: Targets,
    /// Named environments (`--env NAME`), each with its own targets and overrides.
    #[serde(default)]
    pub environments: BTreeMap<String, Environment>,
    #[serde(default)]
    pub commit: CommitConfig,
    #[serde(default)]
    pub merge_request: MergeRequestConfig,
    #[serde(default)]
    pub registry: RegistryConfig,
    /// A fleet: every image with its own policy and targets, all updated by
    /// one `tagbump update` without `--image` (see README, "A fleet of images").
    #[serde(default)]
    pub images: Vec<FleetImage>,
    /// Also the images these controllers' configuration in the manifest
    /// repository lists, read as it is (see README, "A fleet of images").
    #[serde(default)]
    pub images_from: Vec<Controller>,
}

/// What to ask the image registry before writing (see `--verify-image`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub verify_image: Option<bool>,
    /// `true`, `false` or `tag`.
    pub pin_digest: Option<PinDigest>,
    /// `semver:RANGE`, `regex:EXPR` or `latest-digest`.
    pub tag_policy: Option<String>,
    pub tag_sort: Option<crate::registry::policy::Sort>,
    /// Registries reached over plain HTTP (HOST[:PORT]).
    #[serde(default)]
    pub insecure: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PinDigest {
    Bool(bool),
    Word(PinWord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PinWord {
    Tag,
}

impl PinDigest {
    pub fn pin(self) -> crate::registry::Pin {
        match self {
            PinDigest::Bool(true) => crate::registry::Pin::On,
            PinDigest::Bool(false) => crate::registry::Pin::Off,
            PinDigest::Word(PinWord::Tag) => crate::registry::Pin::Tag,
        }
    }
}

/// What to change.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Where `--image` looks, relative to the repository root.
    #[serde(default, rename = "in")]
    pub dirs: Vec<String>,
    /// Explicit edits.
    #[serde(default)]
    pub set: Vec<SetTarget>,
    /// Copy a tested value from one file/path to another.
    #[serde(default)]
    pub promote: Vec<Promote>,
    /// Also set `appVersion` in the Chart.yaml of charts using the image.
    pub app_version: Option<bool>,
}

/// One explicit edit.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTarget {
    /// File, relative to the repository root.
    pub file: String,
    /// YAML path in it, e.g. `image.tag` or `spec.template.spec.containers[name=app].image`.
    pub path: String,
    /// The value. Default: the tag (and/or digest) of `--image`.
    pub value: Option<String>,
}

/// One promotion: `FILE:PATH` to `FILE:PATH`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Promote {
    pub from: String,
    pub to: String,
}

/// A named environment.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub base: Option<String>,
    pub branch: Option<String>,
    pub direct: Option<bool>,
    #[serde(default, rename = "in")]
    pub dirs: Vec<String>,
    #[serde(default)]
    pub set: Vec<SetTarget>,
    #[serde(default)]
    pub promote: Vec<Promote>,
    pub app_version: Option<bool>,
    /// Labels added to the merge request for this environment.
    #[serde(default)]
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitConfig {
    /// Message template (placeholders as for `--message`).
    pub message: Option<String>,
    /// `Name <email>`.
    pub author: Option<String>,
    /// A file holding the key to sign commits with (OpenSSH or OpenPGP).
    /// Relative to the working directory. Never the key itself: keys belong
    /// in masked CI variables, not in the repository.
    pub signing_key_file: Option<PathBuf>,
    /// The variable holding the signing key (default TAGBUMP_SIGNING_KEY).
    pub signing_key_env: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequestConfig {
    /// `gitlab`, `github` or `none`. Default: detected.
    pub forge: Option<ForgeArg>,
    pub api_url: Option<String>,
    pub project: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub assignees: Vec<String>,
    #[serde(default)]
    pub reviewers: Vec<String>,
    pub draft: Option<bool>,
    pub squash: Option<bool>,
    pub remove_source_branch: Option<bool>,
    pub auto_merge: Option<bool>,
    /// GitHub auto-merge method.
    pub merge_method: Option<MergeMethod>,
}

/// The JSON Schema of the config file, for editors (`# yaml-language-server: $schema=…`).
pub fn schema() -> String {
    let schema = schemars::schema_for!(Config);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

/// Parse config text; `name` is used in messages.
pub fn parse(name: &str, text: &str) -> Result<Config> {
    let config = serde_norway::from_str::<Option<Config>>(text)
        .map(Option::unwrap_or_default)
        .map_err(|e| {
            // serde reports some syntax errors in the words of a type error;
            // the YAML engine says what and where.
            if let Err(syntax) = crate::yaml::Stream::parse(text) {
                if syntax.kind == crate::yaml::YamlErrorKind::Syntax {
                    return Failure::new(
                        Kind::Input,
                        format!("{name}:{}: YAML syntax error: {}", syntax.line, syntax.message),
                    )
                    .hint("fix the YAML at that line (indentation, a missing `:` or quote)")
                    .into();
                }
            }
            let place = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
            let message = e.to_string();
            // serde_norway appends " at line L column C"; the prefix says it already.
            let message = match message.find(" at line ") {
                Some(i) => message[..i].to_string(),
                None => message,
            };
            anyhow::Error::from(
                Failure::new(Kind::Input, format!("{name}{place}: {message}")).hint(
                    "the keys are listed in the README (Config file) and in `tagbump config-schema`",
                ),
            )
        })?;
    check_values(name, text, &config)?;
    Ok(config)
}

/// `Name <email>`, split; `None` when it is not that.
pub fn split_author(text: &str) -> Option<(String, String)> {
    let (name, rest) = text.split_once('<')?;
    let email = rest.strip_suffix('>')?.trim();
    let name = name.trim();
    (!name.is_empty() && !email.is_empty()).then(|| (name.to_string(), email.to_string()))
}

/// Values with a grammar of their own, checked where the file's text is
/// known: the message names the file, line, column and key, not the flag
/// the value would otherwise be mistaken for.
fn check_values(name: &str, text: &str, config: &Config) -> Result<()> {
    let bad = |key: &str, what: String, hint: &str| -> anyhow::Error {
        Failure::new(
            Kind::Input,
            format!("{name}{}: {key} {what}", place(text, key)),
        )
        .hint(hint.to_string())
        .into()
    };
    if let Some(author) = &config.commit.author {
        if split_author(author).is_none() {
            return Err(bad(
                "commit.author",
                format!("`{author}` is not `Name <email>`"),
                "write e.g. `author: CI Bot <ci@example.com>`",
            ));
        }
    }
    if let Some(problem) = config
        .commit
        .message
        .as_deref()
        .and_then(crate::update::template_problem)
    {
        return Err(bad(
            "commit.message",
            problem,
            "the placeholders are listed under --message in the README",
        ));
    }
    Ok(())
}

/// `:LINE:COLUMN` of the value at `path` (`commit.author`) in `text`.
fn place(text: &str, path: &str) -> String {
    let at = || {
        let stream = crate::yaml::Stream::parse(text).ok()?;
        let path = crate::yaml::Path::parse(path).ok()?;
        let found = stream.resolve(&path, Some(0)).ok()?;
        let node = found.first()?.node;
        let start = node.as_scalar()?.start;
        let column = start - text.get(..start)?.rfind('\n').map_or(0, |i| i + 1) + 1;
        Some(format!(":{}:{column}", node.line))
    };
    at().unwrap_or_default()
}

/// The config file to use: `--config`, else `.tagbump.yaml` when present.
pub fn load(explicit: Option<&Path>) -> Result<Option<(PathBuf, Config)>> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let default = PathBuf::from(DEFAULT_FILE);
            if !default.is_file() {
                return Ok(None);
            }
            default
        }
    };
    let text = std::fs::read_to_string(&path).map_err(crate::error::io("read", &path))?;
    let config = parse(&path.display().to_string(), &text)?;
    Ok(Some((path, config)))
}

/// What the config file says for one run: the environment's values, then
/// the top level's. Each field is a layer under the command line (a flag or
/// its `TAGBUMP_*` variable) and over the CI facts and built-in defaults;
/// [`crate::settings`] resolves them field by field.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    pub repo: Option<String>,
    pub base: Option<String>,
    pub branch: Option<String>,
    pub direct: Option<bool>,
    pub join: Option<bool>,
    pub via: Option<crate::cli::Via>,
    pub message: Option<String>,
    pub author: Option<String>,
    pub signing_key_file: Option<PathBuf>,
    pub signing_key_env: Option<String>,
    pub dirs: Vec<String>,
    /// The environment chosen with --env, for messages.
    pub environment: Option<String>,
    pub app_version: Option<bool>,
    pub sets: Vec<FileSet>,
    pub promotions: Vec<Promotion>,
    pub forge: Option<ForgeArg>,
    pub api_url: Option<String>,
    pub project: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// The merge request's labels, then the environment's.
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
    pub reviewers: Vec<String>,
    pub draft: Option<bool>,
    pub squash: Option<bool>,
    pub remove_source_branch: Option<bool>,
    pub auto_merge: Option<bool>,
    pub merge_method: Option<MergeMethod>,
    pub verify_image: Option<bool>,
    pub pin_digest: Option<crate::registry::Pin>,
    pub tag_policy: Option<String>,
    pub tag_sort: Option<crate::registry::policy::Sort>,
    pub insecure_registry: Vec<String>,
    /// The fleet (`images:`), for a run without `--image`.
    pub images: Vec<FleetImage>,
    pub images_from: Vec<Controller>,
}

impl Layer {
    /// Whether the config lists a fleet (`images:` or `images_from:`).
    pub fn lists_fleet(&self) -> bool {
        !(self.images.is_empty() && self.images_from.is_empty())
    }
}

/// The config's layer for the environment `env_name` (or the top level).
/// `image_version` is the value of a `set` target without its own `value`;
/// such a target without an --image is refused, never left out.
pub fn layer(
    config: &Config,
    file: &Path,
    env_name: Option<&str>,
    image_version: Option<&str>,
) -> Result<Layer> {
    let environment = match env_name {
        Some(name) => Some(config.environments.get(name).ok_or_else(|| {
            let known: Vec<&str> = config.environments.keys().map(String::as_str).collect();
            Failure::new(
                Kind::Usage,
                format!(
                    "{}: no environment `{name}` (environments: {})",
                    file.display(),
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })?),
        None => None,
    };
    let (dirs, sets, promotes, app_version) = match environment {
        Some(e) => (&e.dirs, &e.set, &e.promote, e.app_version),
        None => (
            &config.targets.dirs,
            &config.targets.set,
            &config.targets.promote,
            config.targets.app_version,
        ),
    };
    let mr = &config.merge_request;
    let mut labels = mr.labels.clone();
    labels.extend(environment.map(|e| e.labels.clone()).unwrap_or_default());
    Ok(Layer {
        repo: config.repo.clone(),
        base: environment
            .and_then(|e| e.base.clone())
            .or_else(|| config.base.clone()),
        branch: environment
            .and_then(|e| e.branch.clone())
            .or_else(|| config.branch.clone()),
        direct: environment.and_then(|e| e.direct).or(config.direct),
        join: config.join,
        via: config.via,
        message: config.commit.message.clone(),
        author: config.commit.author.clone(),
        signing_key_file: config.commit.signing_key_file.clone(),
        signing_key_env: config.commit.signing_key_env.clone(),
        dirs: dirs.clone(),
        app_version,
        environment: env_name.map(|name| format!("environment `{name}` in {}", file.display())),
        sets: sets
            .iter()
            .map(|set| file_set(set, file, image_version))
            .collect::<Result<_>>()?,
        promotions: promotes
            .iter()
            .map(|p| promotion(p, file))
            .collect::<Result<_>>()?,
        forge: mr.forge,
        api_url: mr.api_url.clone(),
        project: mr.project.clone(),
        title: mr.title.clone(),
        description: mr.description.clone(),
        labels,
        assignees: mr.assignees.clone(),
        reviewers: mr.reviewers.clone(),
        draft: mr.draft,
        squash: mr.squash,
        remove_source_branch: mr.remove_source_branch,
        auto_merge: mr.auto_merge,
        merge_method: mr.merge_method,
        verify_image: config.registry.verify_image,
        pin_digest: config.registry.pin_digest.map(PinDigest::pin),
        tag_policy: config.registry.tag_policy.clone(),
        tag_sort: config.registry.tag_sort,
        insecure_registry: config.registry.insecure.clone(),
        images: config.images.clone(),
        images_from: config.images_from.clone(),
    })
}

/// A `set` target, built from its typed fields (not formatted back into a
/// flag and parsed again).
fn file_set(set: &SetTarget, file: &Path, image_version: Option<&str>) -> Result<FileSet> {
    let Some(value) = set.value.as_deref().or(image_version) else {
        return Err(Failure::new(
            Kind::Usage,
            format!(
                "{}: `set` for {}:{} has no `value`, and no --image gives one",
                file.display(),
                set.file,
                set.path
            ),
        )
        .into());
    };
    let bad = |e: String| Failure::new(Kind::Input, format!("{}: {e}", file.display()));
    Ok(FileSet {
        file: repo_path(&set.file).map_err(bad)?,
        assignment: Assignment {
            path: crate::yaml::Path::parse(&set.path).map_err(|e| bad(e.to_string()))?,
            value: value.to_string(),
        },
        from_image: set.value.is_none(),
        ask: format!("`set` {}:{} in {}", set.file, set.path, file.display()),
    })
}

/// A `promote` target: two `FILE:PATH` sides.
fn promotion(p: &Promote, file: &Path) -> Result<Promotion> {
    let side = |text: &str| {
        file_path(text).map_err(|e| {
            let why = e.unwrap_or_else(|| {
                format!("`{text}` in `promote` is not FILE:PATH, e.g. `envs/staging/values.yaml:image.tag`")
            });
            Failure::new(Kind::Input, format!("{}: {why}", file.display()))
        })
    };
    let ((from_file, from), (to_file, to)) = (side(&p.from)?, side(&p.to)?);
    Ok(Promotion {
        from_file,
        from,
        to_file,
        to,
        ask: format!("`promote` {} to {} in {}", p.from, p.to, file.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        format!("{:#}", parse(".tagbump.yaml", text).unwrap_err())
    }

    // Issue #19, class 11: a value with its own grammar names the file,
    // line, column and key (not `--author`); a syntax error says so.
    #[test]
    fn wrong_values_and_syntax_errors_name_the_place() {
        assert_eq!(
            error("repo: x\ncommit:\n  author: 42\n"),
            ".tagbump.yaml:3:11: commit.author `42` is not `Name <email>`"
        );
        assert!(error("commit:\n  message: \"deploy {nmae}\"\n").starts_with(
            ".tagbump.yaml:2:12: commit.message unknown placeholder `{nmae}` in the message template; use {image}"
        ));
        let err = error("repo: [git@x:a/b.git\nbase: main\n");
        assert!(err.starts_with(".tagbump.yaml:"), "{err}");
        assert!(err.contains(": YAML syntax error: "), "{err}");
    }

    #[test]
    fn a_full_config_parses() {
        let text = "\
repo: git@gitlab.example.com:team/manifests.git
base: main
targets:
  in: [apps/payments]
environments:
  staging:
    in: [envs/staging]
    labels: [staging]
  prod:
    promote:
      - from: envs/staging/values.yaml:image.tag
        to: envs/prod/values.yaml:image.tag
    set:
      - file: envs/prod/Chart.yaml
        path: appVersion
commit:
  author: CI Bot <ci@example.com>
merge_request:
  labels: [gitops]
  reviewers: [alice]
  auto_merge: true
  merge_method: squash
  forge: gitlab
";
        let c = parse(".tagbump.yaml", text).unwrap();
        assert_eq!(c.targets.dirs, ["apps/payments"]);
        assert_eq!(
            c.environments["prod"].promote[0].to,
            "envs/prod/values.yaml:image.tag"
        );
        assert_eq!(c.merge_request.labels, ["gitops"]);
    }

    #[test]
    fn errors_name_the_key_and_line() {
        assert_eq!(
            error("repo: x\nmerge_request:\n  labelz: [a]\n"),
            ".tagbump.yaml:3:3: merge_request: unknown field `labelz`, expected one of `forge`, `api_url`, \
             `project`, `title`, `description`, `labels`, `assignees`, `reviewers`, `draft`, `squash`, \
             `remove_source_branch`, `auto_merge`, `merge_method`"
        );
        assert_eq!(
            error("repos: x\n"),
            ".tagbump.yaml:1:1: unknown field `repos`, expected one of `repo`, `base`, `branch`, `direct`, \
             `join`, `via`, `targets`, `environments`, `commit`, `merge_request`, `registry`, `images`, `images_from`"
        );
        assert_eq!(
            error("direct: maybe\n"),
            ".tagbump.yaml:1:9: direct: invalid type: string \"maybe\", expected a boolean"
        );
        assert_eq!(
            error("merge_request:\n  forge: bitbucket\n"),
            ".tagbump.yaml:2:10: merge_request.forge: unknown variant `bitbucket`, expected one of `gitlab`, `github`, `gitea`, `none`"
        );
        assert_eq!(
            error("environments:\n  prod:\n    set:\n      - file: a.yaml\n"),
            ".tagbump.yaml:4:9: environments.prod.set[0]: missing field `path`"
        );
    }

    // An environment's values come before the top level's; its labels add
    // to the merge request's.
    #[test]
    fn the_environment_comes_before_the_top_level() {
        let config = parse(
            ".tagbump.yaml",
            "base: main
direct: false
targets:
  in: [apps]
merge_request:
  labels: [gitops]
environments:
  prod:
    base: production
    direct: true
    in: [envs/prod]
    labels: [prod]
    set:
      - file: Chart.yaml
        path: appVersion
",
        )
        .unwrap();
        let file = Path::new(".tagbump.yaml");
        let top = layer(&config, file, None, None).unwrap();
        assert_eq!(
            (top.base.as_deref(), top.direct, top.dirs.as_slice()),
            (Some("main"), Some(false), ["apps".to_string()].as_slice())
        );
        assert_eq!(top.labels, ["gitops"]);
        let prod = layer(&config, file, Some("prod"), Some("1.2")).unwrap();
        assert_eq!(
            (prod.base.as_deref(), prod.direct, prod.dirs.as_slice()),
            (
                Some("production"),
                Some(true),
                ["envs/prod".to_string()].as_slice()
            )
        );
        assert_eq!(prod.labels, ["gitops", "prod"]);
        assert_eq!(prod.sets[0].assignment.value, "1.2");
        // A `set` without `value` needs an --image, whatever else the
        // command line names: it is refused, never left out.
        let err = layer(&config, file, Some("prod"), None).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            ".tagbump.yaml: `set` for Chart.yaml:appVersion has no `value`, and no --image gives one"
        );
        let err = layer(&config, file, Some("qa"), None).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            ".tagbump.yaml: no environment `qa` (environments: prod)"
        );
    }

    #[test]
    fn an_empty_file_is_an_empty_config() {
        assert!(parse(".tagbump.yaml", "").unwrap().repo.is_none());
        assert!(parse(".tagbump.yaml", "# only comments\n")
            .unwrap()
            .repo
            .is_none());
    }

    #[test]
    fn the_schema_names_every_key() {
        let schema = schema();
        for key in [
            "repo",
            "environments",
            "merge_request",
            "auto_merge",
            "promote",
            "app_version",
        ] {
            assert!(
                schema.contains(&format!("\"{key}\"")),
                "{key} missing from the schema"
            );
        }
    }
}
