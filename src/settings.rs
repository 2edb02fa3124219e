//! Flags and environment resolved into one validated [`UpdateSpec`].
//!
//! Each field comes from the first layer that has it: the command line (a
//! flag, or the `TAGBUMP_*` variable clap reads for it), the config file's
//! [`Layer`], the CI facts ([`crate::ci::detect`]), then a built-in default.
//! Nothing here reads the process environment: it is passed in as [`Env`],
//! so tests resolve settings in fixed environments.
//!
//! Secrets are only ever read from the environment or files (never flags,
//! which other users of the machine can read in the process list), and go
//! straight into [`Secret`]s.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::{ForgeArg, GitLabTokenType, MergeMethod, UpdateArgs};
use crate::config::Layer;
use crate::error::{Failure, Kind};
use crate::forge::{self, ChangeRequest, Connection, Kind as ForgeKind, TokenHeader};
use crate::git::hostkey::{Policy, Source};
use crate::git::{Auth, RemoteUrl, Scheme};
use crate::registry::credentials::Credentials;
use crate::registry::policy::Policy as TagPolicy;
use crate::registry::RegistrySpec;
use crate::secret::Secret;
use crate::signing::Signer;
use crate::update::{FileSet, Promotion, UpdateSpec};
use crate::yaml::Documents;

/// Reads one environment variable; tests pass their own.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The first layer that has a value: the command line (a flag, or the
/// `TAGBUMP_*` variable clap read for it), then the config file. The CI
/// facts and built-in defaults come after, where each field is resolved.
fn first<T: Clone>(flag: &Option<T>, config: &Option<T>) -> Option<T> {
    flag.clone().or_else(|| config.clone())
}

/// A list from the command line replaces the config file's, never extends it.
fn first_list<'a, T>(flag: &'a [T], config: &'a [T]) -> &'a [T] {
    if flag.is_empty() {
        config
    } else {
        flag
    }
}

/// The merge request's flags given on the command line where no merge
/// request is opened (`why`): a usage error rather than silently ignored.
/// The config file's `merge_request` defaults are shared by every run and
/// stay quiet.
fn refuse_request_flags(args: &UpdateArgs, why: &str) -> Result<()> {
    let given: Vec<&str> = [
        ("--label", !args.labels.is_empty()),
        ("--assignee", !args.assignees.is_empty()),
        ("--reviewer", !args.reviewers.is_empty()),
        ("--draft", args.draft == Some(true)),
        ("--auto-merge", args.auto_merge == Some(true)),
        ("--title", args.title.is_some()),
        ("--description", args.description.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, set)| set.then_some(flag))
    .collect();
    if given.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        Kind::Usage,
        format!("{} apply to a merge request, and {why}", given.join(", ")),
    )
    .hint("drop them, or push a review branch (no --direct) to a forge")
    .into())
}

/// A `--message` template is checked before any connection: an empty one
/// (the subject would be the trailers) or an unknown placeholder.
fn check_message(template: &str) -> Result<()> {
    match crate::update::template_problem(template) {
        None => Ok(()),
        Some(problem) if template.trim().is_empty() => Err(Failure::new(
            Kind::Usage,
            format!("--message {problem}"),
        )
        .hint("drop --message for the default summary, or write e.g. `deploy {name}: {new_tag}`")
        .into()),
        Some(problem) => Err(Failure::new(Kind::Usage, format!("--message: {problem}")).into()),
    }
}

/// Resolve `tagbump update`'s arguments: each field from the first layer
/// that has it (flag, `TAGBUMP_*`, config file, CI, built-in).
pub fn update_spec(args: &UpdateArgs, config: &Layer, env: Env<'_>) -> Result<UpdateSpec> {
    // One rule for every kind of target: the command line's add to the
    // config file's (its top-level `targets`, or the environment's); two
    // different values asked for one scalar are refused when planning.
    let sets = [config.sets.as_slice(), args.sets.as_slice()].concat();
    let promotions = [config.promotions.as_slice(), args.promotions.as_slice()].concat();
    let mut dirs = config.dirs.clone();
    dirs.extend(
        args.dirs
            .iter()
            .filter(|d| !config.dirs.contains(d))
            .cloned(),
    );
    check_targets(args, &sets, &promotions)?;
    // An environment scans for --image only where it says (`in`): the
    // whole repository holds the other environments too.
    let scan = config.environment.is_none() || !dirs.is_empty();
    if let (false, Some(env)) = (scan, &config.environment) {
        if !args.images.is_empty() && !sets.iter().any(|s| s.from_image) {
            return Err(Failure::new(
                Kind::Usage,
                format!("{env} has no `in`, so --image would change nothing there"),
            )
            .hint("add `in:` to the environment, pass --in DIR, or drop --image")
            .into());
        }
    }
    let puts = crate::update::put::read(&args.puts)?;
    let Some(repo) = first(&args.repo, &config.repo) else {
        return Err(
            Failure::new(Kind::Usage, "no manifest repository: pass --repo URL")
                .hint("or set TAGBUMP_REPO, or `repo:` in .tagbump.yaml")
                .into(),
        );
    };
    let remote = RemoteUrl::parse(&repo)?;
    check_local_repository(&remote)?;
    let base = first(&args.base, &config.base);
    let branch = first(&args.branch, &config.branch);
    check_branch_names(&base, &branch)?;
    if let Some(template) = first(&args.message, &config.message) {
        check_message(&template)?;
    }
    let ci = crate::ci::detect(env);
    let (author_name, author_email) = match (first(&args.author, &config.author), &ci.author) {
        (Some(text), _) => parse_author(&text)?,
        (None, Some(ci_author)) => ci_author.clone(),
        (None, None) => ("tagbump".to_string(), "tagbump@localhost".to_string()),
    };
    let auth = auth(args, &remote, env)?;
    let signer = signer(args, config, env)?;
    let registry = registry_spec(args, config, env)?;
    if let Some(warning) = signer
        .as_ref()
        .and_then(|s| s.identity_warning(&author_email))
    {
        crate::note!("warning: {warning}");
    }
    let documents = match (args.all, args.document) {
        (true, _) => Documents::All,
        (false, Some(n)) => Documents::Index(n),
        (false, None) => Documents::One,
    };
    Ok(UpdateSpec {
        remote,
        auth,
        base,
        branch,
        direct: first(&args.direct, &config.direct).unwrap_or(false),
        dry_run: args.common.dry_run,
        sets,
        promotions,
        scan,
        via_reason: String::new(),
        puts,
        documents,
        images: args.images.clone(),
        dirs: dirs
            .iter()
            .map(|d| {
                crate::update::repo_path(d)
                    .map_err(|e| Failure::new(Kind::Usage, format!("--in {e}")))
            })
            .collect::<Result<_, _>>()?,
        app_version: first(&args.app_version, &config.app_version).unwrap_or(false),
        message: first(&args.message, &config.message),
        author_name,
        author_email,
        signer: signer.map(std::sync::Arc::new),
        registry,
        image_sources: Vec::new(),
        image_digests: Vec::new(),
        // Chosen by `transport` once the forge is known.
        via: crate::update::Via::Git,
        attempts: args.attempts,
        timeout: std::time::Duration::from_secs(args.timeout),
        source_commit: ci.commit_sha.clone(),
        pipeline_url: ci.pipeline_url.clone(),
    })
}

/// Flags that make no sense together, refused before anything else.
fn check_targets(args: &UpdateArgs, sets: &[FileSet], promotions: &[Promotion]) -> Result<()> {
    if args.images.is_empty() && sets.is_empty() && promotions.is_empty() && args.puts.is_empty() {
        return Err(Failure::new(
            Kind::Usage,
            "nothing to update: pass --image NEWREF, --set FILE:PATH=VALUE, --promote FROM=TO \
             or --put LOCAL=REPO_PATH",
        )
        .into());
    }
    if !args.dirs.is_empty() && args.images.is_empty() {
        return Err(Failure::new(Kind::Usage, "--in only applies to --image").into());
    }
    // Two values for one image: refused before the registry is asked.
    for (i, a) in args.images.iter().enumerate() {
        if let Some(b) = args.images[..i]
            .iter()
            .find(|b| b.normalized_name() == a.normalized_name() && b.version() != a.version())
        {
            return Err(Failure::new(
                Kind::Input,
                format!(
                    "two values asked for `{}`: `--image {b}` and `--image {a}`",
                    a.name()
                ),
            )
            .hint("ask for one value: drop or change one of the two; nothing was changed")
            .into());
        }
    }
    if (args.all || args.document.is_some()) && sets.is_empty() && promotions.is_empty() {
        return Err(Failure::new(
            Kind::Usage,
            "--document and --all only apply to --set and --promote",
        )
        .into());
    }
    if !args.allow_empty {
        // A `set` that takes the image's version is filled in once the
        // registry has chosen it (an untagged --image needs a policy).
        if let Some(set) = sets
            .iter()
            .find(|s| s.assignment.value.is_empty() && !s.from_image)
        {
            return Err(crate::target::empty_value_refused(&format!(
                "{}:{}",
                set.file, set.assignment.path
            ))
            .into());
        }
    }
    Ok(())
}

/// A local `--repo` must exist: "no such repository", not a libgit2 protocol error.
fn check_local_repository(remote: &RemoteUrl) -> Result<()> {
    if remote.scheme == Scheme::Local {
        let path = remote.url.strip_prefix("file://").unwrap_or(&remote.url);
        if !std::path::Path::new(path).exists() {
            return Err(Failure::new(
                Kind::NotFound,
                format!("no such repository: `{path}` does not exist here"),
            )
            .hint(
                "a --repo without `scheme://` or `host:` is a local path; for a server use \
                 ssh://…, git@host:group/repo.git or https://…",
            )
            .into());
        }
    }
    Ok(())
}

/// `--base` and `--branch` by `git check-ref-format`'s rules, before any network work.
fn check_branch_names(base: &Option<String>, branch: &Option<String>) -> Result<()> {
    for (flag, name) in [("--base", base), ("--branch", branch)] {
        if let Some(name) = name {
            if !git2::Reference::is_valid_name(&format!("refs/heads/{name}")) {
                return Err(Failure::new(
                    Kind::Usage,
                    format!("{flag} `{name}` is not a valid branch name"),
                )
                .hint(
                    "branch names follow `git check-ref-format`: no `..`, spaces, `~^:?*[\\`, \
                     no leading `-` or trailing `/`, `.lock` or `.`",
                )
                .into());
            }
        }
    }
    Ok(())
}

/// What to do about a merge/pull request after the push.
#[derive(Debug, Clone)]
pub struct ForgeSpec {
    /// `None`: open nothing (direct push, `--forge none`, or unknown forge).
    pub connection: Option<Connection>,
    /// Why nothing will be opened, when the user may not expect that.
    pub note: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    /// Options; title, description and branches are filled in after the push.
    pub request: ChangeRequest,
}

/// Resolve the merge/pull request options. Runs before anything is cloned,
/// so a missing token fails fast instead of after a push.
pub fn forge_spec(
    args: &UpdateArgs,
    config: &Layer,
    spec: &UpdateSpec,
    env: Env<'_>,
) -> Result<ForgeSpec> {
    let mut out = ForgeSpec {
        connection: None,
        note: None,
        title: first(&args.title, &config.title),
        description: first(&args.description, &config.description),
        request: request_options(args, config),
    };
    if spec.direct {
        refuse_request_flags(args, "--direct pushes to the base and opens none")?;
        return Ok(out);
    }
    let kind = match forge_kind(first(&args.forge, &config.forge), spec, env) {
        Ok(Some(kind)) => kind,
        Ok(None) => {
            if args.forge == Some(ForgeArg::None) {
                refuse_request_flags(args, "--forge none opens none")?;
            }
            return Ok(out);
        }
        Err(note) => {
            out.note = note;
            return Ok(out);
        }
    };
    let (api_url, project) = api_of(args, config, spec, kind, env);
    let Some(project) = project else {
        return Err(Failure::new(
            Kind::Usage,
            format!("cannot tell the {kind} project from `{}`", spec.remote.url),
        )
        .hint("pass --project")
        .into());
    };
    let (var, token) = match forge_token(args, spec, kind, env)? {
        Some(found) => found,
        None => {
            out.note = Some(format!(
                "dry run: no {kind} token is set; a real run needs one"
            ));
            ("none".to_string(), Secret::new(""))
        }
    };
    out.connection = Some(connection(args, kind, api_url, project, &var, token));
    Ok(out)
}

/// A forge's API for this repository: `--api-url` (or the config's), else
/// the CI's or the remote's; and the project (`--project`, else from the
/// remote URL; `None` when neither tells).
fn api_of(
    args: &UpdateArgs,
    config: &Layer,
    spec: &UpdateSpec,
    kind: ForgeKind,
    env: Env<'_>,
) -> (String, Option<String>) {
    let api_url = first(&args.api_url, &config.api_url)
        .unwrap_or_else(|| forge::default_api_url(kind, &spec.remote, &crate::ci::detect(env)));
    let project =
        first(&args.project, &config.project).or_else(|| forge::project_path(&spec.remote));
    (api_url, project)
}

/// The connection to a forge's API with the token found in `var`.
fn connection(
    args: &UpdateArgs,
    kind: ForgeKind,
    api_url: String,
    project: String,
    var: &str,
    token: Secret,
) -> Connection {
    Connection {
        kind,
        api_url,
        project,
        token,
        header: token_header(kind, args.gitlab_token_type, var),
        timeout: std::time::Duration::from_secs(30),
    }
}

/// How the repository is read and written (`--via`, then the config file,
/// default `auto`): GitHub's API for an https:// GitHub repository with a
/// forge token, else git. Run after [`forge_spec`], before anything is sent.
pub fn transport(
    args: &UpdateArgs,
    config: &Layer,
    spec: &mut UpdateSpec,
    env: Env<'_>,
) -> Result<()> {
    use crate::cli::Via as Asked;
    use crate::update::Via;
    let asked = first(&args.via, &config.via).unwrap_or(Asked::Auto);
    if asked == Asked::Git {
        spec.via_reason = "--via git".into();
        return Ok(());
    }
    let conn = api_connection(args, config, spec, env);
    spec.via = match (asked, conn) {
        (Asked::Api, Some(conn)) => {
            spec.via_reason = "--via api".into();
            Via::Api {
                conn,
                fallback: false,
            }
        }
        // `auto` takes the cheaper road: the API when the files to read are
        // named, or few (a scan of `--in`, while it lists at most
        // AUTO_API_FILES YAML files); git for a scan of the whole
        // repository, which through an API reads more than a clone.
        (_, Some(conn)) if spec.scan && !spec.images.is_empty() && spec.dirs.is_empty() => {
            spec.via_reason = format!(
                "--via auto: an --image scan of the whole repository reads less by a depth-1 \
                 clone than through {}'s API",
                conn.kind
            );
            Via::Git
        }
        (_, Some(conn)) => {
            spec.via_reason = if spec.scan && !spec.images.is_empty() {
                format!(
                    "--via auto: an --image scan of --in {} (through the API while it lists at \
                     most {} YAML files)",
                    spec.dirs.join(", "),
                    crate::update::AUTO_API_FILES
                )
            } else {
                "--via auto: the files to read are named (--set, --promote, --put)".into()
            };
            Via::Api {
                conn,
                fallback: true,
            }
        }
        (Asked::Api, None) => {
            return Err(Failure::new(
                Kind::Usage,
                format!(
                    "--via api needs an https:// (or http://) GitHub or GitLab repository and a token for its API; `{}` is not one, or no token is set",
                    spec.remote.url
                ),
            )
            .hint("set GITHUB_TOKEN or GITLAB_TOKEN (or TAGBUMP_FORGE_TOKEN), or pass --via git")
            .into())
        }
        _ => {
            spec.via_reason =
                "--via auto: no https:// GitHub or GitLab repository with an API token".into();
            Via::Git
        }
    };
    if let Via::Api { conn, .. } = &spec.via {
        if spec.signer.is_some() {
            crate::note!(
                "note: the signing key is not used: commits made through {}'s API are signed by {} \
                 (where the instance signs web commits); --via git signs with the key",
                conn.kind, conn.kind
            );
        }
    }
    Ok(())
}

/// The forge API for committing through it: an https:// repository on a
/// known forge, with a token for its API.
fn api_connection(
    args: &UpdateArgs,
    config: &Layer,
    spec: &UpdateSpec,
    env: Env<'_>,
) -> Option<Connection> {
    // Plain http:// only as the user gave it: the token then travels as it
    // already does for git on that URL.
    if !matches!(spec.remote.scheme, Scheme::Https | Scheme::Http) {
        return None;
    }
    let kind = forge_kind(first(&args.forge, &config.forge), spec, env).ok()??;
    let (api_url, project) = api_of(args, config, spec, kind, env);
    let project = project?;
    let (var, token) = forge_token(args, spec, kind, env).ok()??;
    (!token.expose().is_empty()).then(|| connection(args, kind, api_url, project, &var, token))
}

/// Names as CI passes them: comma- or newline-separated, with spaces around
/// (`alice, bob`): each trimmed, empty ones dropped.
fn names(list: &[String]) -> Vec<String> {
    list.iter()
        .flat_map(|item| item.split([',', '\n']))
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .collect()
}

/// The merge/pull request's options from the flags, then the config file.
fn request_options(args: &UpdateArgs, config: &Layer) -> ChangeRequest {
    let merge_method = first(&args.merge_method, &config.merge_method);
    ChangeRequest {
        labels: names(first_list(&args.labels, &config.labels)),
        assignees: names(first_list(&args.assignees, &config.assignees)),
        reviewers: names(first_list(&args.reviewers, &config.reviewers)),
        draft: first(&args.draft, &config.draft).unwrap_or(false),
        remove_source_branch: first(&args.remove_source_branch, &config.remove_source_branch)
            .unwrap_or(false),
        squash: first(&args.squash, &config.squash).unwrap_or(false),
        auto_merge: first(&args.auto_merge, &config.auto_merge).unwrap_or(false),
        merge_method: match merge_method.unwrap_or(MergeMethod::Squash) {
            MergeMethod::Merge => "MERGE",
            MergeMethod::Squash => "SQUASH",
            MergeMethod::Rebase => "REBASE",
        }
        .to_string(),
        ..ChangeRequest::default()
    }
}

/// Which forge hosts the repository: `--forge`, else detected. `Ok(None)`
/// for `--forge none`; `Err(note)` when it cannot be told (the note says so,
/// except for local repositories, which have no forge).
fn forge_kind(
    asked: Option<ForgeArg>,
    spec: &UpdateSpec,
    env: Env<'_>,
) -> Result<Option<ForgeKind>, Option<String>> {
    match asked {
        Some(ForgeArg::None) => Ok(None),
        Some(ForgeArg::Gitlab) => Ok(Some(ForgeKind::GitLab)),
        Some(ForgeArg::Github) => Ok(Some(ForgeKind::GitHub)),
        None => match forge::detect(&spec.remote, &crate::ci::detect(env)) {
            Some(kind) => Ok(Some(kind)),
            None => Err((spec.remote.scheme != Scheme::Local).then(|| {
                format!(
                    "no merge/pull request: cannot tell which forge hosts `{}`; pass --forge gitlab|github (or --forge none)",
                    spec.remote.host
                )
            })),
        },
    }
}

/// The forge token and the variable it came from: `--forge-token-env`, else
/// `TAGBUMP_FORGE_TOKEN` and the forge's usual variables, else the git token.
/// `None` only on a dry run (nothing will be sent); otherwise a missing token
/// is an error before anything is cloned.
fn forge_token(
    args: &UpdateArgs,
    spec: &UpdateSpec,
    kind: ForgeKind,
    env: Env<'_>,
) -> Result<Option<(String, Secret)>> {
    let candidates: Vec<String> = match &args.forge_token_env {
        Some(var) => vec![var.clone()],
        None => {
            let usual: &[&str] = match kind {
                ForgeKind::GitLab => &["GITLAB_TOKEN", "CI_JOB_TOKEN"],
                ForgeKind::GitHub => &["GITHUB_TOKEN", "GH_TOKEN"],
            };
            std::iter::once("TAGBUMP_FORGE_TOKEN")
                .chain(usual.iter().copied())
                .map(String::from)
                .collect()
        }
    };
    let found = candidates
        .iter()
        .find_map(|var| env(var).map(|v| (var.clone(), Secret::new(v))));
    match (found, &spec.auth.token) {
        (Some(found), _) => Ok(Some(found)),
        (None, Some(git_token)) if args.forge_token_env.is_none() => {
            Ok(Some(("the git token".to_string(), git_token.clone())))
        }
        (None, _) if spec.dry_run => Ok(None),
        (None, _) => Err(Failure::new(
            Kind::Usage,
            format!(
                "no token to open the {} on {kind}: set {}",
                kind.noun(),
                candidates.join(" or ")
            ),
        )
        .hint("or pass --forge none to push the branch without opening one")
        .into()),
    }
}

/// How the token travels: GitHub always `Authorization: Bearer`; GitLab as
/// asked, else `JOB-TOKEN` for `CI_JOB_TOKEN` and `PRIVATE-TOKEN` otherwise.
fn token_header(kind: ForgeKind, asked: Option<GitLabTokenType>, var: &str) -> TokenHeader {
    match (kind, asked) {
        (ForgeKind::GitHub, _) => TokenHeader::Bearer,
        (ForgeKind::GitLab, Some(GitLabTokenType::Private)) => TokenHeader::Private,
        (ForgeKind::GitLab, Some(GitLabTokenType::Job)) => TokenHeader::Job,
        (ForgeKind::GitLab, Some(GitLabTokenType::Bearer)) => TokenHeader::Bearer,
        (ForgeKind::GitLab, None) if var == "CI_JOB_TOKEN" => TokenHeader::Job,
        (ForgeKind::GitLab, None) => TokenHeader::Private,
    }
}

/// `Name <email>`.
fn parse_author(text: &str) -> Result<(String, String)> {
    crate::config::split_author(text).ok_or_else(|| {
        Failure::new(
            Kind::Usage,
            format!("--author `{text}` is not `Name <email>`"),
        )
        .hint("write e.g. --author 'CI Bot <ci@example.com>'")
        .into()
    })
}

fn auth(args: &UpdateArgs, remote: &RemoteUrl, env: Env<'_>) -> Result<Auth> {
    let mut auth = Auth::default();
    if remote.scheme == Scheme::Ssh {
        auth.ssh_key = match &args.ssh_key_file {
            Some(path) => Some(Secret::new(normalize_key(&read_secret_file(
                path,
                "SSH private key",
            )?))),
            None => match env(&args.ssh_key_env) {
                Some(value) => Some(Secret::new(normalize_key(&value_or_file(
                    &value,
                    &args.ssh_key_env,
                )?))),
                None => None,
            },
        };
        auth.ssh_key_source = match &args.ssh_key_file {
            Some(path) => format!("--ssh-key-file {}", path.display()),
            None => args.ssh_key_env.clone(),
        };
        auth.ssh_passphrase =
            env(&args.ssh_passphrase_env).map(|p| Secret::new(p.trim_end_matches(['\r', '\n'])));
        auth.ssh_agent = auth.ssh_key.is_none() && env("SSH_AUTH_SOCK").is_some();
        auth.host_keys = host_key_policy(args, env)?;
    }
    let (token, token_var) = match (&remote.embedded_secret, &args.token_env) {
        (Some(secret), _) => (Some(secret.clone()), None),
        (None, Some(var)) => match env(var) {
            Some(v) => (Some(Secret::new(v)), Some(var.clone())),
            None => {
                return Err(Failure::new(
                    Kind::Usage,
                    format!("--token-env names ${var}, which is not set"),
                )
                .into())
            }
        },
        (None, None) => [
            "TAGBUMP_GIT_TOKEN",
            "GITLAB_TOKEN",
            "GITHUB_TOKEN",
            "CI_JOB_TOKEN",
        ]
        .iter()
        .find_map(|var| env(var).map(|v| (Some(Secret::new(v)), Some(var.to_string()))))
        .unwrap_or((None, None)),
    };
    auth.token = token;
    auth.http_user = match (&args.git_user, &remote.user) {
        (Some(user), _) => user.clone(),
        (None, Some(user)) if remote.scheme != Scheme::Ssh => user.clone(),
        _ if token_var.as_deref() == Some("CI_JOB_TOKEN") => "gitlab-ci-token".into(),
        _ if token_var.as_deref() == Some("GITHUB_TOKEN") || remote.host.contains("github") => {
            "x-access-token".into()
        }
        _ => "oauth2".into(),
    };
    // Both add trust, as with git: OpenSSL's default paths (the system store,
    // or SSL_CERT_FILE) are loaded when libgit2 starts, and GIT_SSL_CAINFO is
    // loaded on top of them, not instead.
    auth.trust = vec!["the system store".to_string()];
    if let Some(file) = env("SSL_CERT_FILE") {
        auth.trust = vec![format!("SSL_CERT_FILE={file}")];
    }
    if let Some(ca) = env("GIT_SSL_CAINFO") {
        // SAFETY: called before any network operation, from the main thread.
        unsafe { git2::opts::set_ssl_cert_file(&ca) }.map_err(|e| {
            Failure::new(Kind::Usage, format!("GIT_SSL_CAINFO={ca}: {}", e.message()))
        })?;
        auth.trust.push(format!("GIT_SSL_CAINFO={ca}"));
    }
    Ok(auth)
}

/// What to ask the image registry: each field from the flag, then the
/// config file; credentials from the environment ([`Credentials`]).
fn registry_spec(args: &UpdateArgs, config: &Layer, env: Env<'_>) -> Result<RegistrySpec> {
    let sort = first(&args.tag_sort, &config.tag_sort).unwrap_or_default();
    let policy = match first(&args.tag_policy, &config.tag_policy) {
        Some(text) => Some(
            TagPolicy::parse(&text, sort)
                .map_err(|e| Failure::new(Kind::Usage, format!("--tag-policy: {e}")))?,
        ),
        None => None,
    };
    let mut spec = RegistrySpec {
        verify: first(&args.verify_image, &config.verify_image).unwrap_or(false),
        pin: first(&args.pin_digest, &config.pin_digest).unwrap_or_default(),
        policy,
        credentials: Credentials::default(),
        insecure: first_list(&args.insecure_registry, &config.insecure_registry).to_vec(),
        timeout: std::time::Duration::from_secs(30),
    };
    // Docker's config files are read (and their secrets held) only when the
    // registry will be asked.
    if spec.active() {
        spec.credentials = Credentials::from_env(
            args.registry_user.as_deref(),
            &args.registry_password_env,
            env,
        );
    }
    if spec.active() && args.images.is_empty() {
        return Err(Failure::new(
            Kind::Usage,
            "--verify-image, --pin-digest and --tag-policy apply to --image",
        )
        .into());
    }
    let chooses_tags = matches!(
        spec.policy,
        Some(TagPolicy::Semver(_) | TagPolicy::Regex(..))
    );
    if args.tag_sort.is_some() && !matches!(spec.policy, Some(TagPolicy::Regex(..))) {
        return Err(Failure::new(
            Kind::Usage,
            "--tag-sort orders the tags a `regex:` --tag-policy matches; there is none",
        )
        .hint("pass --tag-policy 'regex:EXPR', or drop --tag-sort")
        .into());
    }
    if let (true, Some(image)) = (chooses_tags, args.images.iter().find(|i| i.tag.is_some())) {
        return Err(Failure::new(
            Kind::Usage,
            format!(
                "--tag-policy chooses the tag, and `{image}` already has one (`{}`)",
                image.tag.as_deref().unwrap_or_default()
            ),
        )
        .hint(format!(
            "pass --image {} without a tag, or run it without --tag-policy",
            image.name()
        ))
        .into());
    }
    if let Some(image) = args
        .images
        .iter()
        .find(|i| i.tag.is_none() && i.digest.is_none())
    {
        if !chooses_tags {
            return Err(Failure::new(
                Kind::Usage,
                format!(
                    "`{image}` has no tag or digest; write e.g. `{image}:1.4.2` or \
                     `{image}@sha256:<64 hex>`"
                ),
            )
            .hint("or let the registry choose: --tag-policy semver:RANGE")
            .into());
        }
    }
    Ok(spec)
}

/// The commit signing key: `--signing-key-file`, else the variable
/// `--signing-key-env` names (its value, or a path), else
/// `TAGBUMP_SIGNING_KEY` when set; the config file's keys below the flags.
/// Parsed and unlocked now, before any network traffic.
fn signer(args: &UpdateArgs, config: &Layer, env: Env<'_>) -> Result<Option<Signer>> {
    let (text, source) = match first(&args.signing_key_file, &config.signing_key_file) {
        Some(path) => (
            read_secret_file(&path, "signing key")?,
            path.display().to_string(),
        ),
        None => {
            let named = first(&args.signing_key_env, &config.signing_key_env);
            let var = named.as_deref().unwrap_or("TAGBUMP_SIGNING_KEY");
            if env(var).is_none() && set_but_empty(var) {
                // What GitHub passes for a secret that does not exist, and
                // what a forked pull request's run gets for every secret.
                return Err(Failure::new(
                    Kind::Usage,
                    format!("${var} is set but empty: no signing key, and the commit must not go unsigned"),
                )
                .hint(format!(
                    "check that the CI secret behind ${var} exists and is available to this run \
                     (forked pull requests and unprotected branches get none), or unset ${var} \
                     to push unsigned commits"
                ))
                .into());
            }
            match (env(var), &named) {
                (Some(value), _) => (value_or_file(&value, var)?, format!("${var}")),
                (None, Some(_)) => {
                    return Err(Failure::new(
                        Kind::Usage,
                        format!("--signing-key-env names ${var}, which is not set"),
                    )
                    .into())
                }
                (None, None) => return Ok(None),
            }
        }
    };
    // Registered as a secret first, so no message can echo the key.
    let key = Secret::new(normalize_key(&text));
    // A trailing line break comes with values read from files or pasted.
    let passphrase =
        env(&args.signing_passphrase_env).map(|p| Secret::new(p.trim_end_matches(['\r', '\n'])));
    Signer::from_text(
        key.expose(),
        passphrase.as_ref(),
        &source,
        &args.signing_passphrase_env,
    )
    .map(Some)
}

fn host_key_policy(args: &UpdateArgs, env: Env<'_>) -> Result<Policy> {
    let mut sources = Vec::new();
    if let Some(path) = &args.ssh_known_hosts_file {
        if !path.is_file() {
            return Err(Failure::new(
                Kind::Io,
                format!("cannot read {}: no such file", path.display()),
            )
            .into());
        }
        sources.push(Source::File(path.clone()));
    }
    if let Some(value) = env(&args.ssh_known_hosts_env) {
        let looks_like_path = !value.contains(' ') && Path::new(value.trim()).is_file();
        sources.push(if looks_like_path {
            Source::File(PathBuf::from(value.trim()))
        } else {
            Source::Env {
                name: args.ssh_known_hosts_env.clone(),
                text: value,
            }
        });
    }
    if sources.is_empty() {
        if let Some(home) = env("HOME") {
            sources.push(Source::File(Path::new(&home).join(".ssh/known_hosts")));
        }
        sources.push(Source::File(PathBuf::from("/etc/ssh/ssh_known_hosts")));
        sources.retain(|s| matches!(s, Source::File(p) if p.is_file()));
    }
    for fp in &args.ssh_host_fingerprint {
        if !fp.starts_with("SHA256:") {
            return Err(Failure::new(
                Kind::Usage,
                format!("--ssh-host-fingerprint `{fp}` is not a SHA256 fingerprint"),
            )
            .hint("use the `SHA256:…` form that `ssh-keygen -lf` prints")
            .into());
        }
    }
    if args.insecure_accept_any_host_key {
        crate::note!("warning: --insecure-accept-any-host-key: the SSH host key is NOT verified");
    }
    Ok(Policy {
        sources,
        fingerprints: args.ssh_host_fingerprint.clone(),
        insecure_accept_any: args.insecure_accept_any_host_key,
    })
}

/// A variable holding a key, or (GitLab "file" variables) a path to one.
fn value_or_file(value: &str, var: &str) -> Result<String> {
    let trimmed = value.trim();
    let one_line = !value.contains("-----BEGIN") && !trimmed.contains('\n');
    if one_line && Path::new(trimmed).is_file() {
        return read_secret_file(Path::new(trimmed), &format!("${var}"));
    }
    let looks_like_path = ["/", "./", "../", "~/"]
        .iter()
        .any(|p| trimmed.starts_with(p))
        && !trimmed.contains(char::is_whitespace);
    if one_line && looks_like_path {
        // The value is not printed: it might be a key after all.
        return Err(Failure::new(
            Kind::Usage,
            format!("${var} looks like a path to a file, and there is no such file"),
        )
        .hint(format!(
            "a GitLab \"File\" variable holds the path of a file the job can read; check the \
             variable's name and type, or put the key itself in ${var}"
        ))
        .into());
    }
    Ok(value.to_string())
}

/// A variable that is set to the empty string (`process_env` reads it as
/// unset).
fn set_but_empty(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| v.is_empty())
}

/// A key file's text. A binary key (`gpg --export-secret-keys` without
/// `--armor`, a DER file) is refused in words, its bytes never shown.
fn read_secret_file(path: &Path, what: &str) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| crate::error::io(&format!("read the {what} from"), path)(e))?;
    match String::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => Ok(text),
        _ => Err(Failure::new(
            Kind::Usage,
            format!(
                "{} (the {what}) is binary, not an armored (text) key",
                path.display()
            ),
        )
        .hint(
            "export an OpenPGP key armored: `gpg --export-secret-keys --armor KEYID`; an \
             OpenSSH key is the text file `ssh-keygen` wrote (e.g. `id_ed25519`)",
        )
        .into()),
    }
}

/// Keys pasted into CI variables arrive mangled: CRLF, literal `\n`, quotes,
/// or no final newline (which libssh2 rejects).
fn normalize_key(text: &str) -> String {
    let mut key = text
        .trim()
        .trim_matches('"')
        .trim_matches('\'')
        .replace("\r\n", "\n");
    if !key.contains('\n') && key.contains("\\n") {
        key = key.replace("\\n", "\n");
    }
    key.push('\n');
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> UpdateArgs {
        let mut argv = vec!["tagbump", "update", "--image", "ghcr.io/acme/app:1"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Update(a) => *a,
            _ => unreachable!(),
        }
    }

    use crate::testing::env_of;

    #[test]
    fn token_user_follows_the_source() {
        let a = args(&["--repo", "https://gitlab.example.com/g/r.git"]);
        let s = update_spec(
            &a,
            &Layer::default(),
            &env_of(&[("CI_JOB_TOKEN", "job-token-123")]),
        )
        .unwrap();
        assert_eq!(s.auth.http_user, "gitlab-ci-token");
        assert_eq!(s.auth.token.unwrap().expose(), "job-token-123");
        let s = update_spec(
            &a,
            &Layer::default(),
            &env_of(&[("GITLAB_TOKEN", "glpat-123456")]),
        )
        .unwrap();
        assert_eq!(s.auth.http_user, "oauth2");
        let a = args(&["--repo", "https://github.com/o/r.git"]);
        let s = update_spec(
            &a,
            &Layer::default(),
            &env_of(&[("TAGBUMP_GIT_TOKEN", "ghp_123456")]),
        )
        .unwrap();
        assert_eq!(s.auth.http_user, "x-access-token");
        let a = args(&["--repo", "https://user:pw-123456@git.example.com/r.git"]);
        let s = update_spec(&a, &Layer::default(), &env_of(&[])).unwrap();
        assert_eq!(
            (s.auth.http_user.as_str(), s.auth.token.unwrap().expose()),
            ("user", "pw-123456")
        );
        assert_eq!(s.remote.url, "https://git.example.com/r.git");
    }

    #[test]
    fn keys_from_ci_variables_are_repaired() {
        assert_eq!(
            normalize_key("\"-----BEGIN X-----\\nabc\\n-----END X-----\""),
            "-----BEGIN X-----\nabc\n-----END X-----\n"
        );
        assert_eq!(
            normalize_key("-----BEGIN X-----\r\nabc\r\n-----END X-----\r\n"),
            "-----BEGIN X-----\nabc\n-----END X-----\n"
        );
    }

    #[test]
    fn known_hosts_from_the_variable_and_pins() {
        let a = args(&["--repo", "git@gitlab.com:g/r.git"]);
        let s = update_spec(
            &a,
            &Layer::default(),
            &env_of(&[("SSH_KNOWN_HOSTS", "gitlab.com ssh-ed25519 AAAA")]),
        )
        .unwrap();
        assert!(
            matches!(&s.auth.host_keys.sources[..], [Source::Env { name, .. }] if name == "SSH_KNOWN_HOSTS")
        );
        let a = args(&[
            "--repo",
            "git@gitlab.com:g/r.git",
            "--ssh-host-fingerprint",
            "MD5:aa",
        ]);
        let err = update_spec(&a, &Layer::default(), &env_of(&[])).unwrap_err();
        assert_eq!(
            crate::error::kind(&err),
            crate::error::Kind::Usage,
            "{err:#}"
        );
        assert!(format!("{err:#}").contains("MD5:aa"), "{err:#}");
    }

    #[test]
    fn authors_and_ci_links() {
        let a = args(&[
            "--repo",
            "https://example.com/x.git",
            "--author",
            "CI Bot <ci@example.com>",
        ]);
        let s = update_spec(
            &a,
            &Layer::default(),
            &env_of(&[
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_SHA", "abc"),
                ("GITHUB_SERVER_URL", "https://github.com"),
                ("GITHUB_REPOSITORY", "o/r"),
                ("GITHUB_RUN_ID", "42"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (s.author_name.as_str(), s.author_email.as_str()),
            ("CI Bot", "ci@example.com")
        );
        assert_eq!(s.source_commit.as_deref(), Some("abc"));
        assert_eq!(
            s.pipeline_url.as_deref(),
            Some("https://github.com/o/r/actions/runs/42")
        );
        // Without --author: the user who started the GitLab pipeline, or tagbump.
        let a = args(&["--repo", "https://example.com/x.git"]);
        let gitlab = env_of(&[
            ("GITLAB_CI", "true"),
            ("GITLAB_USER_NAME", "Alice"),
            ("GITLAB_USER_EMAIL", "a@x"),
        ]);
        let s = update_spec(&a, &Layer::default(), &gitlab).unwrap();
        assert_eq!(
            (s.author_name.as_str(), s.author_email.as_str()),
            ("Alice", "a@x")
        );
        let s = update_spec(&a, &Layer::default(), &env_of(&[])).unwrap();
        assert_eq!(
            (s.author_name.as_str(), s.author_email.as_str()),
            ("tagbump", "tagbump@localhost")
        );
        let a = args(&["--repo", "https://example.com/x.git", "--author", "nobody"]);
        let err = update_spec(&a, &Layer::default(), &env_of(&[])).unwrap_err();
        assert_eq!(
            crate::error::kind(&err),
            crate::error::Kind::Usage,
            "{err:#}"
        );
        assert!(format!("{err:#}").contains("nobody"), "{err:#}");
    }

    /// The spec and forge spec of a dry run with these flags over this
    /// config file, in this (fixed) environment.
    fn resolved(
        config: &str,
        flags: &[&str],
        env: &'static [(&'static str, &'static str)],
    ) -> (UpdateSpec, ForgeSpec) {
        // A dry run: no forge token needed where a test does not set one.
        let a = args(&[&["--dry-run"], flags].concat());
        let config = crate::config::parse(".tagbump.yaml", config).unwrap();
        let image = a.images.first().map(|i| i.version());
        let layer = crate::config::layer(
            &config,
            Path::new(".tagbump.yaml"),
            a.environment.as_deref(),
            image.as_deref(),
        )
        .unwrap();
        let env = env_of(env);
        let spec = update_spec(&a, &layer, &env).unwrap();
        let forge = forge_spec(&a, &layer, &spec, &env).unwrap();
        (spec, forge)
    }

    const REPO: &str = "repo: https://gitlab.example.com/team/manifests.git\n";

    // Values: flag, then config, then built-in (none).
    #[test]
    fn values_come_from_the_flag_then_the_config() {
        let config = format!("{REPO}base: develop\nmerge_request:\n  title: config title\n");
        let (s, f) = resolved(&config, &["--title", "flag title"], &[]);
        assert_eq!(
            s.remote.url,
            "https://gitlab.example.com/team/manifests.git"
        );
        assert_eq!(s.base.as_deref(), Some("develop"));
        assert_eq!(f.title.as_deref(), Some("flag title"));
        let (s, f) = resolved(&config, &["--base", "main", "--repo", "/tmp"], &[]);
        assert_eq!(
            (s.remote.url.as_str(), s.base.as_deref()),
            ("/tmp", Some("main"))
        );
        assert_eq!(f.title.as_deref(), Some("config title"));
        let (s, f) = resolved(REPO, &[], &[]);
        assert_eq!((s.base, f.title), (None, None));
    }

    // Issue #10: a boolean the config file switches on can be switched off on
    // the command line; a bare flag is `true`; unset anywhere is off.
    #[test]
    fn flags_switch_off_config_booleans() {
        let on = format!(
            "{REPO}targets:\n  app_version: true\nmerge_request:\n  draft: true\n  squash: true\n  auto_merge: true\n  remove_source_branch: true\n"
        );
        let bools = |(s, f): (UpdateSpec, ForgeSpec)| {
            let r = f.request;
            [
                s.app_version,
                r.draft,
                r.squash,
                r.auto_merge,
                r.remove_source_branch,
            ]
        };
        assert_eq!(bools(resolved(&on, &[], &[])), [true; 5]);
        let off = [
            "--app-version=false",
            "--draft=false",
            "--squash=no",
            "--auto-merge=0",
            "--remove-source-branch=false",
        ];
        assert_eq!(bools(resolved(&on, &off, &[])), [false; 5]);
        assert_eq!(bools(resolved(REPO, &[], &[])), [false; 5]);
        let (_, f) = resolved(REPO, &["--draft"], &[]);
        assert_eq!((f.request.draft, f.request.squash), (true, false));
        // `direct` too: with it on, no merge request is resolved at all.
        // The registry's booleans too.
        let registry = format!("{REPO}registry:\n  verify_image: true\n  pin_digest: tag\n");
        let (s, _) = resolved(&registry, &[], &[]);
        assert!(s.registry.verify);
        assert_eq!(s.registry.pin, crate::registry::Pin::Tag);
        let (s, _) = resolved(
            &registry,
            &["--verify-image=false", "--pin-digest=false"],
            &[],
        );
        assert!(!s.registry.verify);
        assert_eq!(s.registry.pin, crate::registry::Pin::Off);
        let direct = format!("{REPO}direct: true\n");
        assert!(resolved(&direct, &[], &[]).0.direct);
        assert!(!resolved(&direct, &["--direct=false"], &[]).0.direct);
    }

    // Lists: the command line's replaces the config's, never extends it.
    #[test]
    fn lists_from_the_flag_replace_the_config() {
        let config = format!(
            "{REPO}merge_request:\n  labels: [gitops]\n  reviewers: [alice]\nenvironments:\n  prod:\n    in: [envs/prod]\n    labels: [prod]\n"
        );
        let (_, f) = resolved(&config, &["--env", "prod"], &[]);
        assert_eq!(f.request.labels, ["gitops", "prod"]);
        assert_eq!(f.request.reviewers, ["alice"]);
        let (_, f) = resolved(&config, &["--env", "prod", "--label", " hotfix "], &[]);
        assert_eq!(f.request.labels, ["hotfix"]);
        assert_eq!(f.request.reviewers, ["alice"]);
        // As CI passes lists: comma- or newline-separated, spaces around.
        let (_, f) = resolved(
            &config,
            &[
                "--env",
                "prod",
                "--reviewer",
                "alice, bob",
                "--reviewer",
                " carol\n dave ,",
            ],
            &[],
        );
        assert_eq!(f.request.reviewers, ["alice", "bob", "carol", "dave"]);
    }

    // Choices: flag, then config, then detected (forge) or built-in (squash).
    #[test]
    fn choices_come_from_the_flag_then_the_config_then_detection() {
        const TOKEN: &[(&str, &str)] = &[
            ("GITLAB_TOKEN", "glpat-123456"),
            ("GITHUB_TOKEN", "ghp-123456"),
        ];
        let kind = |(_, f): (UpdateSpec, ForgeSpec)| f.connection.map(|c| c.kind);
        assert_eq!(kind(resolved(REPO, &[], TOKEN)), Some(ForgeKind::GitLab));
        let config = format!("{REPO}merge_request:\n  forge: github\n  merge_method: rebase\n");
        assert_eq!(kind(resolved(&config, &[], TOKEN)), Some(ForgeKind::GitHub));
        assert_eq!(kind(resolved(&config, &["--forge", "none"], TOKEN)), None);
        let (_, f) = resolved(&config, &[], TOKEN);
        assert_eq!(f.request.merge_method, "REBASE");
        let (_, f) = resolved(&config, &["--merge-method", "merge"], TOKEN);
        assert_eq!(f.request.merge_method, "MERGE");
        let (_, f) = resolved(REPO, &[], TOKEN);
        assert_eq!(f.request.merge_method, "SQUASH");
    }

    // Facts CI knows: flag, then config, then CI, then built-in.
    #[test]
    fn ci_facts_come_after_the_flag_and_the_config() {
        const CI: &[(&str, &str)] = &[
            ("GITLAB_CI", "true"),
            ("GITLAB_USER_NAME", "Alice"),
            ("GITLAB_USER_EMAIL", "a@x"),
            ("CI_SERVER_HOST", "gitlab.example.com"),
            ("CI_API_V4_URL", "https://gitlab.example.com/ci-api/v4"),
            ("CI_JOB_TOKEN", "job-token-123"),
        ];
        let author =
            |(s, _): &(UpdateSpec, ForgeSpec)| format!("{} <{}>", s.author_name, s.author_email);
        let api = |(_, f): &(UpdateSpec, ForgeSpec)| f.connection.clone().unwrap().api_url;
        let config = format!(
            "{REPO}commit:\n  author: Config <c@x>\nmerge_request:\n  api_url: https://config.example.com/api/v4\n"
        );
        let flags = [
            "--author",
            "Flag <f@x>",
            "--api-url",
            "https://flag.example.com/api/v4",
        ];
        let r = resolved(&config, &flags, CI);
        assert_eq!(
            (author(&r), api(&r)),
            (
                "Flag <f@x>".into(),
                "https://flag.example.com/api/v4".into()
            )
        );
        let r = resolved(&config, &[], CI);
        assert_eq!(
            (author(&r), api(&r)),
            (
                "Config <c@x>".into(),
                "https://config.example.com/api/v4".into()
            )
        );
        let r = resolved(REPO, &[], CI);
        assert_eq!(
            (author(&r), api(&r)),
            (
                "Alice <a@x>".into(),
                "https://gitlab.example.com/ci-api/v4".into()
            )
        );
        let r = resolved(REPO, &[], &[("GITLAB_TOKEN", "glpat-123456")]);
        assert_eq!(
            (author(&r), api(&r)),
            (
                "tagbump <tagbump@localhost>".into(),
                "https://gitlab.example.com/api/v4".into()
            )
        );
    }

    // Targets: the command line's replace the config's; a config `set`
    // without `value` takes the --image's version.
    #[test]
    fn targets_from_the_flag_add_to_the_config() {
        let config = format!(
            "{REPO}targets:\n  in: [apps]\n  set:\n    - file: Chart.yaml\n      path: appVersion\n"
        );
        let (s, _) = resolved(&config, &[], &[]);
        assert_eq!(s.dirs, ["apps"]);
        assert_eq!(
            (s.sets[0].file.as_str(), s.sets[0].assignment.value.as_str()),
            ("Chart.yaml", "1")
        );
        // Issue #19, class 4: one rule for --image, --set, --promote and
        // --in: the command line's targets add to the config's.
        let (s, _) = resolved(&config, &["--in", "envs", "--set", "a.yaml:x=2"], &[]);
        assert_eq!(s.dirs, ["apps", "envs"]);
        let sets: Vec<(&str, &str, &str)> = s
            .sets
            .iter()
            .map(|s| (s.file.as_str(), s.assignment.value.as_str(), s.ask.as_str()))
            .collect();
        assert_eq!(
            sets,
            [
                (
                    "Chart.yaml",
                    "1",
                    "`set` Chart.yaml:appVersion in .tagbump.yaml"
                ),
                ("a.yaml", "2", "--set a.yaml:x=2")
            ]
        );
    }

    // An environment scans for --image only in its own `in`; one without
    // `in` and without a `set` to take the version refuses the --image.
    #[test]
    fn an_environment_scans_only_where_it_says() {
        let config = format!(
            "{REPO}environments:\n  prod:\n    promote:\n      - from: s.yaml:tag\n        to: p.yaml:tag\n  qa:\n    set:\n      - file: Chart.yaml\n        path: appVersion\n"
        );
        let a = args(&["--dry-run", "--env", "prod"]);
        let parsed = crate::config::parse(".tagbump.yaml", &config).unwrap();
        let layer =
            crate::config::layer(&parsed, Path::new(".tagbump.yaml"), Some("prod"), Some("1"))
                .unwrap();
        let err = update_spec(&a, &layer, &env_of(&[])).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "environment `prod` in .tagbump.yaml has no `in`, so --image would change nothing there"
        );
        let (s, _) = resolved(&config, &["--env", "qa"], &[]);
        assert!(!s.scan);
        assert_eq!(s.sets[0].assignment.value, "1");
        let (s, _) = resolved(&config, &["--env", "qa", "--in", "envs/qa"], &[]);
        assert!(s.scan);
    }

    #[test]
    fn two_tags_for_one_image_are_refused() {
        let a = args(&["--image", "ghcr.io/acme/app:2"]);
        let err = update_spec(&a, &crate::config::Layer::default(), &env_of(&[])).unwrap_err();
        assert_eq!(crate::error::kind(&err), Kind::Input);
        assert_eq!(
            format!("{err:#}"),
            "two values asked for `ghcr.io/acme/app`: `--image ghcr.io/acme/app:1` and `--image ghcr.io/acme/app:2`"
        );
        let a = args(&[
            "--image",
            "ghcr.io/acme/app:1",
            "--repo",
            "https://gitlab.example.com/a/b.git",
        ]);
        assert!(update_spec(&a, &crate::config::Layer::default(), &env_of(&[])).is_ok());
    }
}
