//! The merge/pull request to open, and the transport (git or the forge's
//! API) with the forge it talks to: which forge, which API, which token.

use anyhow::Result;

use super::{first, first_list, refuse_request_flags};
use crate::cli::{ForgeArg, GitLabTokenType, UpdateArgs};
use crate::config::Layer;
use crate::env::Env;
use crate::error::{Failure, Kind};
use crate::forge::{self, ChangeRequest, Connection, Kind as ForgeKind, TokenHeader};
use crate::git::Scheme;
use crate::secret::Secret;
use crate::update::UpdateSpec;

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
    let asked_api = first(&args.api_url, &config.api_url);
    let kind = match forge_kind(
        first(&args.forge, &config.forge),
        asked_api.as_deref(),
        spec,
        env,
    ) {
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
                    "--via api needs an https:// (or http://) GitHub, GitLab or Gitea repository and a token for its API; `{}` is not one, or no token is set",
                    spec.remote.url
                ),
            )
            .hint("set GITHUB_TOKEN, GITLAB_TOKEN or GITEA_TOKEN (or TAGBUMP_FORGE_TOKEN), or pass --via git")
            .into())
        }
        _ => {
            spec.via_reason =
                "--via auto: no https:// GitHub, GitLab or Gitea repository with an API token".into();
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
    let asked_api = first(&args.api_url, &config.api_url);
    let kind = forge_kind(
        first(&args.forge, &config.forge),
        asked_api.as_deref(),
        spec,
        env,
    )
    .ok()??;
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
        merge_method: merge_method.unwrap_or_default(),
        ..ChangeRequest::default()
    }
}

/// Which forge hosts the repository: `--forge`, else detected. `Ok(None)`
/// for `--forge none`; `Err(note)` when it cannot be told (the note says so,
/// except for local repositories, which have no forge).
fn forge_kind(
    asked: Option<ForgeArg>,
    api_url: Option<&str>,
    spec: &UpdateSpec,
    env: Env<'_>,
) -> Result<Option<ForgeKind>, Option<String>> {
    match asked {
        Some(ForgeArg::None) => Ok(None),
        Some(ForgeArg::Gitlab) => Ok(Some(ForgeKind::GitLab)),
        Some(ForgeArg::Github) => Ok(Some(ForgeKind::GitHub)),
        Some(ForgeArg::Gitea) => Ok(Some(ForgeKind::Gitea)),
        None => match forge::detect(&spec.remote, &crate::ci::detect(env)) {
            Some(kind) => Ok(Some(kind)),
            // A name that tells nothing: Gitea and Forgejo say who they are.
            None if matches!(spec.remote.scheme, Scheme::Https | Scheme::Http)
                && forge::gitea::answers_as_gitea(&api_url.map_or_else(
                    || {
                        forge::default_api_url(
                            ForgeKind::Gitea,
                            &spec.remote,
                            &crate::ci::detect(env),
                        )
                    },
                    str::to_string,
                )) =>
            {
                Ok(Some(ForgeKind::Gitea))
            }
            None => Err((spec.remote.scheme != Scheme::Local).then(|| {
                format!(
                    "no merge/pull request: cannot tell which forge hosts `{}`; pass --forge gitlab|github|gitea (or --forge none)",
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
                // Gitea's and Forgejo's runners hand the job's token over
                // under GitHub's name too.
                ForgeKind::Gitea
                    if crate::ci::detect(env).system == Some(crate::ci::System::Gitea) =>
                {
                    &["GITEA_TOKEN", "FORGEJO_TOKEN", "GITHUB_TOKEN"]
                }
                ForgeKind::Gitea => &["GITEA_TOKEN", "FORGEJO_TOKEN"],
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
        (ForgeKind::Gitea, _) => TokenHeader::Token,
        (ForgeKind::GitLab, Some(GitLabTokenType::Private)) => TokenHeader::Private,
        (ForgeKind::GitLab, Some(GitLabTokenType::Job)) => TokenHeader::Job,
        (ForgeKind::GitLab, Some(GitLabTokenType::Bearer)) => TokenHeader::Bearer,
        (ForgeKind::GitLab, None) if var == "CI_JOB_TOKEN" => TokenHeader::Job,
        (ForgeKind::GitLab, None) => TokenHeader::Private,
    }
}
