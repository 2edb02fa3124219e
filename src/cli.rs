//! The command line, as clap derive structs. Help text lives in doc comments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::image::ImageRef;
use crate::targets::{parse_assignment, Assignment};
use crate::update::put::{parse_put, PutArg};

/// `--version`: the release, and the commit it was built from (build.rs).
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TAGBUMP_COMMIT"),
    ", ",
    env!("TAGBUMP_COMMIT_DATE"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "tagbump",
    version,
    long_version = LONG_VERSION,
    about = "Write a new image tag into a GitOps manifest repo, changing only those bytes",
    long_about = "Write a new image tag into a GitOps manifest repo, changing only those bytes.\n\n\
        Comments, quoting, key order, indentation and blank lines survive every edit."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Also print each HTTP request: what, its status, how long it took.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Print no progress lines: only results, notes, warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Colour diffs: `always` for CI log viewers that render ANSI colours.
    #[arg(long, value_enum, global = true, default_value_t, value_name = "WHEN")]
    pub color: crate::log::Color,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Update(Box<UpdateArgs>),
    Set(SetArgs),
    Image(ImageArgs),
    Demo(DemoArgs),
    Completions(CompletionsArgs),
    /// Print the man page of tagbump or of one subcommand (`tagbump man
    /// update`), or write every page into a directory (`--dir`).
    Man(ManArgs),
    /// Print the JSON Schema of the config file (.tagbump.yaml).
    ConfigSchema,
    /// Print the JSON Schema of `tagbump update --output json`.
    ReportSchema,
}

/// `tagbump man [SUBCOMMAND]`, or `tagbump man --dir DIR` for every page.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (default: tagbump's own).
    pub subcommand: Option<String>,
    /// Write tagbump.1 and a page per subcommand (tagbump-update.1, …) into
    /// this directory instead, e.g. /usr/local/share/man/man1.
    #[arg(long, value_name = "DIR", conflicts_with = "subcommand")]
    pub dir: Option<std::path::PathBuf>,
}

/// Print a shell completion script, e.g. `tagbump completions bash > /etc/bash_completion.d/tagbump`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Clone a manifest repo, update it, commit, and push a review branch (or the base).
///
/// The repo is fetched shallow (depth 1) into a temporary directory, with no
/// working tree; files are read and written as git objects. When someone else
/// pushes first, the edits are recomputed on their tip and pushed again.
///
/// Authentication:
///   SSH    the key itself in $SSH_PRIVATE_KEY (or a file: --ssh-key-file), else
///          ssh-agent; host keys checked against $SSH_KNOWN_HOSTS, --ssh-known-hosts-file
///          or ~/.ssh/known_hosts, or pinned with --ssh-host-fingerprint.
///   HTTPS  a token from $TAGBUMP_GIT_TOKEN, $GITLAB_TOKEN, $GITHUB_TOKEN or
///          $CI_JOB_TOKEN; private CAs via SSL_CERT_FILE / GIT_SSL_CAINFO.
///
/// Examples:
///   tagbump update --repo git@gitlab.example.com:team/manifests.git \
///       --image registry.example.com/team/app:1.4.2 --in apps/app
///   tagbump update --repo https://github.com/acme/deploy.git --direct \
///       --set clusters/prod/app.yaml:spec.values.image.tag=1.4.2
///   tagbump update --repo ... --image ghcr.io/acme/app:2.0.0 --dry-run
#[derive(Debug, Clone, Args)]
#[command(verbatim_doc_comment)]
pub struct UpdateArgs {
    /// The manifest repository: ssh://, git@host:path, https:// or a local path.
    /// Required here, in TAGBUMP_REPO, or as `repo:` in the config file.
    #[arg(long, env = "TAGBUMP_REPO", value_name = "URL")]
    pub repo: Option<String>,

    /// Config file. Default: .tagbump.yaml in the working directory, when present.
    #[arg(long, env = "TAGBUMP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Use the targets of this environment from the config file.
    #[arg(long = "env", env = "TAGBUMP_ENV", value_name = "NAME")]
    pub environment: Option<String>,

    /// The branch to start from (and to push to with --direct). Default: the
    /// remote's default branch.
    #[arg(long, env = "TAGBUMP_BASE", value_name = "BRANCH")]
    pub base: Option<String>,

    /// The review branch to push. Default: derived from the targets, e.g.
    /// `tagbump/main/team-app-d3545c89` (a hash of the whole targets), so a
    /// re-run updates the same branch and other targets get their own.
    #[arg(
        long,
        env = "TAGBUMP_BRANCH",
        value_name = "NAME",
        conflicts_with = "direct"
    )]
    pub branch: Option<String>,

    /// How to read and commit: `git` (a depth-1 fetch and a push), `api`
    /// (GitHub's API: no clone, commits signed by GitHub), or `auto` (the API
    /// for https:// GitHub repositories when a token is set, else git).
    #[arg(long, env = "TAGBUMP_VIA", value_enum, value_name = "HOW")]
    pub via: Option<Via>,

    /// Push straight to the base branch instead of a review branch.
    /// `--direct=false` switches off a `direct: true` from the config file.
    #[arg(long, env = "TAGBUMP_DIRECT", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub direct: Option<bool>,

    /// With --branch: add this job's change to the branch's other tagbump
    /// changes (parallel jobs, one merge request) instead of refusing them.
    #[arg(long, env = "TAGBUMP_JOIN", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub join: Option<bool>,

    /// Set a value: FILE:PATH=VALUE, FILE relative to the repository root. Repeatable.
    #[arg(long = "set", value_name = "FILE:PATH=VALUE", value_parser = crate::update::parse_file_set)]
    pub sets: Vec<crate::update::FileSet>,

    /// Copy the value at FROM_FILE:PATH (as it is on the base) to TO_FILE:PATH, e.g.
    /// `envs/staging/values.yaml:image.tag=envs/prod/values.yaml:image.tag`. Repeatable.
    #[arg(long = "promote", value_name = "FROM_FILE:PATH=TO_FILE:PATH", value_parser = crate::update::parse_promotion)]
    pub promotions: Vec<crate::update::Promotion>,

    /// Add or replace whole files: LOCAL=REPO_PATH, e.g. a rendered
    /// `manifest.yaml=apps/app/production/manifest.yaml`. A directory copies
    /// its files (recursively) under REPO_PATH. Regular UTF-8 files only;
    /// YAML files must parse. Repeatable.
    #[arg(long = "put", value_name = "LOCAL=REPO_PATH", value_parser = parse_put)]
    pub puts: Vec<PutArg>,

    /// Update every reference to this image (name with tag and/or digest;
    /// the name alone with --tag-policy). Repeatable.
    #[arg(long = "image", value_name = "NEWREF", value_parser = parse_image)]
    pub images: Vec<ImageRef>,

    /// Where --image looks: a directory or file in the repo. Repeatable. Default: everywhere.
    #[arg(long = "in", value_name = "DIR")]
    pub dirs: Vec<String>,

    /// Of the config file's `images:` (a run without --image), update only
    /// this one (its `name`). Repeatable.
    #[arg(long = "only", value_name = "NAME")]
    pub only: Vec<String>,

    /// With --image, also set `appVersion` in the Chart.yaml of charts that use it.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub app_version: Option<bool>,

    /// With --set in a multi-document file, edit every document that matches.
    #[arg(long, conflicts_with = "document")]
    pub all: bool,

    /// With --set in a multi-document file, edit only document N (0-based).
    #[arg(long, value_name = "N")]
    pub document: Option<usize>,

    /// Let --set write an empty value. Without it `image.tag=` (typically an
    /// unset CI variable) is refused.
    #[arg(long)]
    pub allow_empty: bool,

    /// Check with the registry that each new image reference exists before
    /// changing anything (a HEAD of its manifest). `=false` switches off a
    /// `true` from the config file.
    #[arg(long, env = "TAGBUMP_VERIFY_IMAGE", help_heading = "Registry", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub verify_image: Option<bool>,

    /// Write the digest the tag resolves to now: `name:tag@sha256:…` in
    /// image strings, `digest:` keys where the file has them. `=tag` also
    /// writes `tag@sha256:…` into a Helm `tag` with no digest key; `=false`
    /// switches it off.
    #[arg(long, env = "TAGBUMP_PIN_DIGEST", help_heading = "Registry", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "true|tag|false", value_parser = parse_pin)]
    pub pin_digest: Option<crate::registry::Pin>,

    /// Choose the tag from the registry's: `semver:RANGE` (`~1.4`, `^2`,
    /// `>=1.2 <2`), `regex:EXPR` (ordered by its first group, see
    /// --tag-sort), or `latest-digest` (keep the tag, pin its digest now).
    /// With semver and regex, --image names the image without a tag.
    #[arg(
        long,
        env = "TAGBUMP_TAG_POLICY",
        help_heading = "Registry",
        value_name = "POLICY"
    )]
    pub tag_policy: Option<String>,

    /// How `regex:` policies order tags. Default: alphabetical.
    #[arg(long, env = "TAGBUMP_TAG_SORT", help_heading = "Registry", value_enum)]
    pub tag_sort: Option<crate::registry::policy::Sort>,

    /// The registry user; the password is read from --registry-password-env.
    /// Default: docker's config.json, then the CI's registry credentials.
    #[arg(
        long,
        env = "TAGBUMP_REGISTRY_USER",
        help_heading = "Registry",
        value_name = "USER"
    )]
    pub registry_user: Option<String>,

    /// Environment variable holding the registry password or token.
    #[arg(
        long,
        default_value = "TAGBUMP_REGISTRY_PASSWORD",
        help_heading = "Registry",
        value_name = "VAR"
    )]
    pub registry_password_env: String,

    /// A registry reached over plain HTTP (HOST[:PORT]); loopback registries
    /// always are. Repeatable.
    #[arg(
        long,
        env = "TAGBUMP_INSECURE_REGISTRY",
        help_heading = "Registry",
        value_name = "HOST",
        value_delimiter = ','
    )]
    pub insecure_registry: Vec<String>,

    /// Commit message template. Placeholders: {image} {name} {old_tag} {new_tag}
    /// {files} {changes} {branch} {base} {source_commit} {pipeline_url}.
    #[arg(long, env = "TAGBUMP_MESSAGE", value_name = "TEMPLATE")]
    pub message: Option<String>,

    /// Commit author and committer, as `Name <email>`. Default: the user who started
    /// the GitLab pipeline, github-actions[bot] in Actions, else `tagbump <tagbump@localhost>`.
    #[arg(long, env = "TAGBUMP_AUTHOR", value_name = "NAME <EMAIL>")]
    pub author: Option<String>,

    /// Result format on stdout: `text` (nothing on stdout but dry-run diffs) or
    /// `json` (one object, schema in the README; diffs inside it).
    #[arg(long, env = "TAGBUMP_OUTPUT", value_enum, default_value = "text")]
    pub output: OutputFormat,

    /// Also write the result as a dotenv file (GitLab `artifacts:reports:dotenv`).
    #[arg(long, env = "TAGBUMP_DOTENV", value_name = "FILE")]
    pub dotenv: Option<PathBuf>,

    /// How many times to try: when others push first, or the server or the
    /// network fails in a way that may pass (a shed connection, a 503).
    #[arg(long, env = "TAGBUMP_ATTEMPTS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub attempts: u32,

    /// The most the whole run may take, in seconds, retries included; a
    /// server that never answers fails after it instead of hanging the job.
    #[arg(long, env = "TAGBUMP_TIMEOUT", value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,

    /// Environment variable holding the SSH private key itself (or, as GitLab
    /// file variables do, the path to it).
    #[arg(long, default_value = "SSH_PRIVATE_KEY", value_name = "VAR")]
    pub ssh_key_env: String,

    /// File holding the SSH private key.
    #[arg(long, value_name = "PATH")]
    pub ssh_key_file: Option<std::path::PathBuf>,

    /// Environment variable holding the key's passphrase.
    #[arg(long, default_value = "SSH_KEY_PASSPHRASE", value_name = "VAR")]
    pub ssh_passphrase_env: String,

    /// Environment variable holding known_hosts lines (or the path to a file of them).
    #[arg(long, default_value = "SSH_KNOWN_HOSTS", value_name = "VAR")]
    pub ssh_known_hosts_env: String,

    /// A known_hosts file to trust (instead of ~/.ssh/known_hosts).
    #[arg(long, value_name = "PATH")]
    pub ssh_known_hosts_file: Option<std::path::PathBuf>,

    /// Trust only a host key with this fingerprint (`SHA256:…`, as `ssh-keygen -l` prints). Repeatable.
    #[arg(
        long,
        env = "TAGBUMP_SSH_HOST_FINGERPRINT",
        value_name = "SHA256:…",
        value_delimiter = ','
    )]
    pub ssh_host_fingerprint: Vec<String>,

    /// DANGEROUS: accept any SSH host key, so anyone on the network path can
    /// receive your key's access. For throwaway test servers only.
    #[arg(long)]
    pub insecure_accept_any_host_key: bool,

    /// Environment variable holding the key to sign commits with: an OpenSSH
    /// or OpenPGP private key (or, as GitLab file variables do, the path to
    /// it). Default: TAGBUMP_SIGNING_KEY, when set.
    #[arg(long, value_name = "VAR", help_heading = "Signing")]
    pub signing_key_env: Option<String>,

    /// File holding the key to sign commits with.
    #[arg(
        long,
        value_name = "PATH",
        help_heading = "Signing",
        conflicts_with = "signing_key_env"
    )]
    pub signing_key_file: Option<std::path::PathBuf>,

    /// Environment variable holding the signing key's passphrase.
    #[arg(
        long,
        default_value = "TAGBUMP_SIGNING_PASSPHRASE",
        value_name = "VAR",
        help_heading = "Signing"
    )]
    pub signing_passphrase_env: String,

    /// Environment variable holding the HTTPS token. Default: the first set of
    /// TAGBUMP_GIT_TOKEN, GITLAB_TOKEN, GITHUB_TOKEN, CI_JOB_TOKEN.
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,

    /// User name sent with the token. Default: from the URL, else
    /// `gitlab-ci-token` for CI_JOB_TOKEN, `x-access-token` for GitHub, `oauth2`.
    #[arg(long, value_name = "NAME")]
    pub git_user: Option<String>,

    /// Where to open the merge/pull request for the review branch (`gitea` is
    /// Gitea or Forgejo). Default: detected from the CI system, the repo host,
    /// or a server answering Gitea's /api/v1/version; `none` opens nothing.
    #[arg(
        long,
        env = "TAGBUMP_FORGE",
        value_enum,
        help_heading = "Merge/pull request"
    )]
    pub forge: Option<ForgeArg>,

    /// API base URL. Default: CI_API_V4_URL / GITHUB_API_URL when the job runs on
    /// that server, else https://HOST/api/v4, https://api.github.com, https://HOST/api/v3
    /// or (Gitea) https://HOST/api/v1.
    #[arg(
        long,
        env = "TAGBUMP_API_URL",
        value_name = "URL",
        help_heading = "Merge/pull request"
    )]
    pub api_url: Option<String>,

    /// GitLab project path or id, or GitHub OWNER/REPO. Default: from --repo.
    #[arg(
        long,
        env = "TAGBUMP_PROJECT",
        value_name = "PROJECT",
        help_heading = "Merge/pull request"
    )]
    pub project: Option<String>,

    /// Title template (same placeholders as --message). Default: `Update {name} to {new_tag}`.
    #[arg(
        long,
        env = "TAGBUMP_TITLE",
        value_name = "TEMPLATE",
        help_heading = "Merge/pull request"
    )]
    pub title: Option<String>,

    /// Description template. Default: a table of the changes and links to the source.
    #[arg(
        long,
        env = "TAGBUMP_DESCRIPTION",
        value_name = "TEMPLATE",
        help_heading = "Merge/pull request"
    )]
    pub description: Option<String>,

    /// Labels to set. Repeatable or comma-separated.
    #[arg(
        long = "label",
        value_name = "LABEL",
        value_delimiter = ',',
        help_heading = "Merge/pull request"
    )]
    pub labels: Vec<String>,

    /// Assignees by user name. Repeatable or comma-separated.
    #[arg(
        long = "assignee",
        value_name = "USER",
        value_delimiter = ',',
        help_heading = "Merge/pull request"
    )]
    pub assignees: Vec<String>,

    /// Reviewers by user name (GitHub teams as ORG/TEAM). Repeatable or comma-separated.
    #[arg(
        long = "reviewer",
        value_name = "USER",
        value_delimiter = ',',
        help_heading = "Merge/pull request"
    )]
    pub reviewers: Vec<String>,

    /// Open it as a draft. `=false` switches off a `true` from the config file.
    #[arg(long, help_heading = "Merge/pull request", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub draft: Option<bool>,

    /// GitLab: delete the source branch when merged. `=false` switches off a `true` from the config file.
    #[arg(long, help_heading = "Merge/pull request", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub remove_source_branch: Option<bool>,

    /// GitLab: squash on merge. `=false` switches off a `true` from the config file.
    #[arg(long, help_heading = "Merge/pull request", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub squash: Option<bool>,

    /// Merge automatically once the pipeline/checks pass. `=false` switches off a `true` from the config file.
    #[arg(long, help_heading = "Merge/pull request", num_args = 0..=1, require_equals = true, default_missing_value = "true", value_name = "BOOL", value_parser = clap::builder::BoolishValueParser::new())]
    pub auto_merge: Option<bool>,

    /// Auto-merge method (GitHub, Gitea). Default: squash.
    #[arg(long, value_enum, help_heading = "Merge/pull request")]
    pub merge_method: Option<MergeMethod>,

    /// Environment variable holding the API token. Default: TAGBUMP_FORGE_TOKEN,
    /// then GITLAB_TOKEN, GITHUB_TOKEN/GH_TOKEN or GITEA_TOKEN/FORGEJO_TOKEN, then
    /// the git token's variable.
    #[arg(long, value_name = "VAR", help_heading = "Merge/pull request")]
    pub forge_token_env: Option<String>,

    /// How a GitLab token is sent. Default: `job` for CI_JOB_TOKEN, else `private`.
    #[arg(long, value_enum, help_heading = "Merge/pull request")]
    pub gitlab_token_type: Option<GitLabTokenType>,

    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// `--forge` and `merge_request.forge`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "ForgeName")]
pub enum ForgeArg {
    Gitlab,
    Github,
    // Gitea, or Forgejo (Codeberg), which speaks the same API.
    Gitea,
    None,
}

pub use crate::forge::MergeMethod;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GitLabTokenType {
    /// PRIVATE-TOKEN: personal, project or group access token.
    Private,
    /// JOB-TOKEN: CI_JOB_TOKEN.
    Job,
    /// Authorization: Bearer (OAuth).
    Bearer,
}

/// Run the whole pipeline on a bundled example, offline: build a local
/// manifest repo, update an image in it, push a review branch, show the result.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo repository in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

/// Set values at YAML paths in one file, in place.
///
/// Paths: `a.b.c`, `list[0]` (`[-1]` is the last item), `containers[name=app]`
/// (the item whose `name` is `app`), `annotations["prometheus.io/port"]` for
/// keys holding `.`, `[` or `=`. A leading `.` or `$.` is accepted.
///
/// Examples:
///   tagbump set values.yaml image.tag=1.4.2
///   tagbump set deploy.yaml 'spec.template.spec.containers[name=app].image=registry.example.com/team/app:1.4.2'
///   tagbump set --dry-run Chart.yaml appVersion=1.4.2
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct SetArgs {
    /// The YAML file to edit.
    pub file: PathBuf,

    /// What to set, as PATH=VALUE (split at the first `=` outside brackets).
    #[arg(required = true, value_name = "PATH=VALUE", value_parser = parse_assignment)]
    pub assignments: Vec<Assignment>,

    /// In a multi-document file, edit every document where the path matches.
    #[arg(long, conflicts_with = "document")]
    pub all: bool,

    /// In a multi-document file, edit only document N (0-based).
    #[arg(long, value_name = "N")]
    pub document: Option<usize>,

    /// Allow an empty VALUE. Without it `image.tag=` (typically an unset CI
    /// variable) is refused.
    #[arg(long)]
    pub allow_empty: bool,

    #[command(flatten)]
    pub common: Common,
}

/// Update every reference to an image in files and directories, in place.
///
/// Found without markers: any `image:` key holding that image (containers,
/// initContainers, CronJobs, Argo Rollouts, HelmRelease values, ...); Helm
/// values mappings with `repository` + `tag` (+ `registry`, `digest`/`sha`);
/// kustomization `images:` entries by `name`/`newName`. Directories are
/// searched for *.yaml and *.yml; files that do not parse are skipped.
///
/// Examples:
///   tagbump image registry.example.com/team/app:1.4.2 apps/
///   tagbump image --dry-run ghcr.io/org/app@sha256:<64 hex> overlays/prod
///   tagbump image --app-version ghcr.io/org/app:2.0.0 charts/app
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ImageArgs {
    /// The new reference: name with a tag, a digest, or both.
    #[arg(value_name = "NEWREF", value_parser = parse_new_image)]
    pub image: ImageRef,

    /// Files and directories to search.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub paths: Vec<PathBuf>,

    /// Also set `appVersion` in the Chart.yaml of each chart that uses the image.
    #[arg(long)]
    pub app_version: bool,

    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Print a unified diff of what would change and write nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
}

/// `--via`: the transport.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Git,
    Api,
    Auto,
}

/// An image reference, with or without a tag (`update` checks that a tag
/// or digest is there unless a tag policy chooses one).
pub fn parse_image(text: &str) -> Result<ImageRef, String> {
    ImageRef::parse(text).map_err(|e| e.to_string())
}

/// `--pin-digest`: a boolean, or `tag`.
pub fn parse_pin(text: &str) -> Result<crate::registry::Pin, String> {
    use crate::registry::Pin;
    match text.to_ascii_lowercase().as_str() {
        "tag" => Ok(Pin::Tag),
        "true" | "yes" | "on" | "1" => Ok(Pin::On),
        "false" | "no" | "off" | "0" => Ok(Pin::Off),
        _ => Err(format!("`{text}` is not true, false or tag")),
    }
}

/// A new image reference must say what to move to: a tag or a digest.
pub fn parse_new_image(text: &str) -> Result<ImageRef, String> {
    let image = ImageRef::parse(text).map_err(|e| e.to_string())?;
    if image.tag.is_none() && image.digest.is_none() {
        return Err(format!(
            "`{text}` has no tag or digest; write e.g. `{text}:1.4.2` or `{text}@sha256:<64 hex>`"
        ));
    }
    Ok(image)
}
