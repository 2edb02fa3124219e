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

use crate::cli::{ForgeArg, MergeMethod, UpdateArgs};
use crate::error::{Failure, Kind};
use crate::target::Assignment;
use crate::update::{file_path, repo_path, FileSet, Promotion};

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
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequestConfig {
    /// `gitlab`, `github` or `none`. Default: detected.
    pub forge: Option<ForgeName>,
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
    pub merge_method: Option<MergeMethodName>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForgeName {
    Gitlab,
    Github,
    None,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MergeMethodName {
    Merge,
    Squash,
    Rebase,
}

/// The JSON Schema of the config file, for editors (`# yaml-language-server: $schema=…`).
pub fn schema() -> String {
    let schema = schemars::schema_for!(Config);
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

/// Parse config text; `name` is used in messages.
pub fn parse(name: &str, text: &str) -> Result<Config> {
    serde_norway::from_str::<Option<Config>>(text)
        .map(Option::unwrap_or_default)
        .map_err(|e| {
            let place = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
            let message = e.to_string();
            // serde_norway appends " at line L column C"; the prefix says it already.
            let message = match message.find(" at line ") {
                Some(i) => message[..i].to_string(),
                None => message,
            };
            Failure::new(Kind::Input, format!("{name}{place}: {message}"))
                .hint("the keys are listed in the README (Config file) and in `tagbump config-schema`")
                .into()
        })
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
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::new(Kind::Io, format!("cannot read {}: {e}", path.display())))?;
    let config = parse(&path.display().to_string(), &text)?;
    Ok(Some((path, config)))
}

/// Fill what flags and `TAGBUMP_*` variables left unset from the config, and
/// the environment `env_name` within it.
pub fn apply(
    args: &mut UpdateArgs,
    config: &Config,
    file: &Path,
    env_name: Option<&str>,
) -> Result<()> {
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
    fill(&mut args.repo, &config.repo);
    fill(
        &mut args.base,
        &environment
            .and_then(|e| e.base.clone())
            .or_else(|| config.base.clone()),
    );
    fill(
        &mut args.branch,
        &environment
            .and_then(|e| e.branch.clone())
            .or_else(|| config.branch.clone()),
    );
    // A flag (or TAGBUMP_DIRECT) wins, `--direct=false` included.
    args.direct = args
        .direct
        .or(environment.and_then(|e| e.direct))
        .or(config.direct);
    fill(&mut args.message, &config.commit.message);
    fill(&mut args.author, &config.commit.author);

    apply_targets(args, config, environment, file)?;
    apply_merge_request(args, &config.merge_request, environment);
    Ok(())
}

/// What to change: the environment's targets, or the top-level ones, where
/// the command line named none.
fn apply_targets(
    args: &mut UpdateArgs,
    config: &Config,
    environment: Option<&Environment>,
    file: &Path,
) -> Result<()> {
    let (dirs, sets, promotes, app_version) = match environment {
        Some(e) => (&e.dirs, &e.set, &e.promote, e.app_version),
        None => (
            &config.targets.dirs,
            &config.targets.set,
            &config.targets.promote,
            config.targets.app_version,
        ),
    };
    if args.dirs.is_empty() {
        args.dirs = dirs.clone();
    }
    args.app_version = args.app_version.or(app_version);
    if args.sets.is_empty() {
        let default_value = args.images.first().map(|i| i.version());
        for set in sets {
            let value = match (&set.value, &default_value) {
                (Some(v), _) => v.clone(),
                (None, Some(v)) => v.clone(),
                (None, None) => {
                    return Err(Failure::new(
                        Kind::Usage,
                        format!(
                            "{}: `set` for {}:{} has no `value`, and no --image gives one",
                            file.display(),
                            set.file,
                            set.path
                        ),
                    )
                    .into())
                }
            };
            // Built from the typed fields, not formatted back into a flag
            // and parsed again.
            let bad = |e: String| Failure::new(Kind::Input, format!("{}: {e}", file.display()));
            args.sets.push(FileSet {
                file: repo_path(&set.file).map_err(bad)?,
                assignment: Assignment {
                    path: crate::yaml::Path::parse(&set.path).map_err(|e| bad(e.to_string()))?,
                    value,
                },
            });
        }
    }
    if args.promotions.is_empty() {
        for p in promotes {
            let side = |text: &str| {
                file_path(text).map_err(|e| {
                    let why = e.unwrap_or_else(|| {
                        format!("`{text}` in `promote` is not FILE:PATH, e.g. `envs/staging/values.yaml:image.tag`")
                    });
                    Failure::new(Kind::Input, format!("{}: {why}", file.display()))
                })
            };
            let ((from_file, from), (to_file, to)) = (side(&p.from)?, side(&p.to)?);
            args.promotions.push(Promotion {
                from_file,
                from,
                to_file,
                to,
            });
        }
    }
    Ok(())
}

/// The merge request's settings, where the command line left them unset.
fn apply_merge_request(
    args: &mut UpdateArgs,
    mr: &MergeRequestConfig,
    environment: Option<&Environment>,
) {
    if args.forge.is_none() {
        args.forge = mr.forge.map(|f| match f {
            ForgeName::Gitlab => ForgeArg::Gitlab,
            ForgeName::Github => ForgeArg::Github,
            ForgeName::None => ForgeArg::None,
        });
    }
    fill(&mut args.api_url, &mr.api_url);
    fill(&mut args.project, &mr.project);
    fill(&mut args.title, &mr.title);
    fill(&mut args.description, &mr.description);
    if args.labels.is_empty() {
        args.labels = mr.labels.clone();
        args.labels
            .extend(environment.map(|e| e.labels.clone()).unwrap_or_default());
    }
    if args.assignees.is_empty() {
        args.assignees = mr.assignees.clone();
    }
    if args.reviewers.is_empty() {
        args.reviewers = mr.reviewers.clone();
    }
    // The command line wins, `--draft=false` included: a lower layer never
    // switches on what a higher one switched off.
    args.draft = args.draft.or(mr.draft);
    args.squash = args.squash.or(mr.squash);
    args.remove_source_branch = args.remove_source_branch.or(mr.remove_source_branch);
    args.auto_merge = args.auto_merge.or(mr.auto_merge);
    if args.merge_method.is_none() {
        args.merge_method = mr.merge_method.map(|m| match m {
            MergeMethodName::Merge => MergeMethod::Merge,
            MergeMethodName::Squash => MergeMethod::Squash,
            MergeMethodName::Rebase => MergeMethod::Rebase,
        });
    }
}

fn fill(slot: &mut Option<String>, value: &Option<String>) {
    if slot.is_none() {
        slot.clone_from(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        format!("{:#}", parse(".tagbump.yaml", text).unwrap_err())
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
             `targets`, `environments`, `commit`, `merge_request`"
        );
        assert_eq!(
            error("direct: maybe\n"),
            ".tagbump.yaml:1:9: direct: invalid type: string \"maybe\", expected a boolean"
        );
        assert_eq!(
            error("merge_request:\n  forge: bitbucket\n"),
            ".tagbump.yaml:2:10: merge_request.forge: unknown variant `bitbucket`, expected one of `gitlab`, `github`, `none`"
        );
        assert_eq!(
            error("environments:\n  prod:\n    set:\n      - file: a.yaml\n"),
            ".tagbump.yaml:4:9: environments.prod.set[0]: missing field `path`"
        );
    }

    fn applied(config: &str, flags: &[&str]) -> UpdateArgs {
        use clap::Parser;
        let mut argv = vec!["tagbump", "update", "--image", "ghcr.io/acme/app:1"];
        argv.extend_from_slice(flags);
        let mut args = match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Update(a) => *a,
            _ => unreachable!(),
        };
        let config = parse(".tagbump.yaml", config).unwrap();
        apply(&mut args, &config, Path::new(".tagbump.yaml"), None).unwrap();
        args
    }

    // Issue #10: a boolean the config file switches on can be switched off
    // on the command line (flag > config), and the config fills what the
    // command line left open.
    #[test]
    fn flags_switch_off_config_booleans() {
        let config = "repo: x
direct: true
merge_request:
  draft: true
  squash: true
  auto_merge: true
  remove_source_branch: true
";
        let a = applied(config, &[]);
        assert_eq!(
            (
                a.direct,
                a.draft,
                a.squash,
                a.auto_merge,
                a.remove_source_branch
            ),
            (Some(true), Some(true), Some(true), Some(true), Some(true))
        );
        let a = applied(
            config,
            &[
                "--direct=false",
                "--draft=false",
                "--squash=no",
                "--auto-merge=0",
                "--remove-source-branch=false",
            ],
        );
        assert_eq!(
            (
                a.direct,
                a.draft,
                a.squash,
                a.auto_merge,
                a.remove_source_branch
            ),
            (
                Some(false),
                Some(false),
                Some(false),
                Some(false),
                Some(false)
            )
        );
        // A bare flag is `true`; nothing anywhere is `None` (off).
        let a = applied(
            "repo: x
",
            &["--draft"],
        );
        assert_eq!((a.draft, a.squash), (Some(true), None));
    }

    #[test]
    fn flags_win_over_the_config_file_for_values() {
        let a = applied(
            "repo: from-config
base: develop
merge_request:
  title: config title
",
            &["--repo", "from-flag", "--title", "flag title"],
        );
        assert_eq!(a.repo.as_deref(), Some("from-flag"));
        assert_eq!(a.base.as_deref(), Some("develop"));
        assert_eq!(a.title.as_deref(), Some("flag title"));
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
