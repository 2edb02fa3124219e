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

use anyhow::Result;

use crate::cli::UpdateArgs;
use crate::config::Layer;
use crate::env::Env;
use crate::error::{Failure, Kind};
use crate::git::{RemoteUrl, Scheme};
use crate::update::{FileSet, Promotion, UpdateSpec};
use crate::yaml::Documents;

mod credentials;
mod forge_spec;
mod registry;

use credentials::{auth, signer};
pub use forge_spec::{forge_spec, transport, ForgeSpec};
use registry::registry_spec;

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
    check_targets(args, &sets, &promotions, config.lists_fleet())?;
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
    let join = first(&args.join, &config.join).unwrap_or(false);
    let direct = first(&args.direct, &config.direct);
    check_join(join, &first(&args.branch, &config.branch), direct, &puts)?;
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
        join,
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
        image_scopes: Vec::new(),
        // Chosen by `transport` once the forge is known.
        via: crate::update::Via::Git,
        attempts: args.attempts,
        timeout: std::time::Duration::from_secs(args.timeout),
        source_commit: ci.commit_sha.clone(),
        pipeline_url: ci.pipeline_url.clone(),
    })
}

/// `--join` names the branch every job adds to, and adds edits (a whole
/// file from `--put` has no scalar to record and replay).
fn check_join(
    join: bool,
    branch: &Option<String>,
    direct: Option<bool>,
    puts: &[crate::update::put::Put],
) -> Result<()> {
    if !join {
        return Ok(());
    }
    let refuse =
        |what: &str| -> anyhow::Error { Failure::new(Kind::Usage, what.to_string()).into() };
    if branch.is_none() {
        return Err(Failure::new(
            Kind::Usage,
            "--join needs --branch NAME: the branch the jobs join",
        )
        .hint("every job of the release passes the same --branch")
        .into());
    }
    if direct == Some(true) {
        return Err(refuse(
            "--join adds to a review branch; --direct pushes to the base",
        ));
    }
    if !puts.is_empty() {
        return Err(refuse(
            "--put replaces whole files, which --join cannot record and replay; use --set",
        ));
    }
    Ok(())
}

/// Flags that make no sense together, refused before anything else.
/// `fleet`: the config file lists `images:`, which a run without `--image`
/// updates.
fn check_targets(
    args: &UpdateArgs,
    sets: &[FileSet],
    promotions: &[Promotion],
    fleet: bool,
) -> Result<()> {
    let given = !args.images.is_empty() || !args.puts.is_empty();
    if !given && !fleet && sets.is_empty() && promotions.is_empty() {
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
            return Err(crate::targets::empty_value_refused(&format!(
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

#[cfg(test)]
mod tests;
