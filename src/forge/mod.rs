//! Merge requests (GitLab) and pull requests (GitHub, Gitea and Forgejo): one [`ChangeRequest`],
//! opened or, when one is already open for the branch, updated in place.
//!
//! Both clients speak through [`crate::http::send_with_retries`]: timeouts, retries with
//! backoff on 429 and 5xx honouring `Retry-After`, and errors that carry the
//! API's own message plus a hint (a 401/403 names the token scope to check).

pub mod api;
pub mod entries;
pub mod gitea;
pub mod github;
pub mod gitlab;

use std::fmt;
use std::time::Duration;

use anyhow::Result;
use clap::ValueEnum;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::error::{Failure, Kind as ErrorKind};
use crate::git::{RemoteUrl, Scheme};
pub use crate::http::Response;
use crate::secret::{scrub, Secret};

/// Which forge hosts the manifest repo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    GitLab,
    GitHub,
    /// Gitea, and Forgejo (Codeberg), which speaks the same API.
    Gitea,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::GitLab => "GitLab",
            Kind::GitHub => "GitHub",
            Kind::Gitea => "Gitea",
        })
    }
}

impl Kind {
    /// "merge request" / "pull request".
    pub fn noun(self) -> &'static str {
        match self {
            Kind::GitLab => "merge request",
            Kind::GitHub | Kind::Gitea => "pull request",
        }
    }

    /// `!12` / `#12`.
    pub fn reference(self, number: u64) -> String {
        match self {
            Kind::GitLab => format!("!{number}"),
            Kind::GitHub | Kind::Gitea => format!("#{number}"),
        }
    }
}

/// How the GitLab token is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHeader {
    /// `PRIVATE-TOKEN:` (personal, project or group access tokens).
    Private,
    /// `JOB-TOKEN:` (CI_JOB_TOKEN).
    Job,
    /// `Authorization: Bearer` (OAuth, GitHub tokens).
    Bearer,
    /// `Authorization: token` (Gitea and Forgejo access tokens).
    Token,
}

/// Where and as whom to talk to the forge.
#[derive(Debug, Clone)]
pub struct Connection {
    pub kind: Kind,
    /// API base: `https://gitlab.example.com/api/v4`, `https://api.github.com`.
    pub api_url: String,
    /// GitLab: project path or id. GitHub: `owner/repo`.
    pub project: String,
    pub token: Secret,
    pub header: TokenHeader,
    pub timeout: Duration,
}

/// What to open or update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeRequest {
    pub title: String,
    pub description: String,
    pub source_branch: String,
    pub target_branch: String,
    pub labels: Vec<String>,
    /// User names (GitLab usernames are resolved to ids).
    pub assignees: Vec<String>,
    pub reviewers: Vec<String>,
    pub draft: bool,
    pub remove_source_branch: bool,
    pub squash: bool,
    pub auto_merge: bool,
    /// GitHub auto-merge method.
    pub merge_method: MergeMethod,
    /// `--join`: how many images the branch's jobs asked for, this one's
    /// included. A job never replaces a description listing more (one that
    /// finished later wrote it).
    pub joined: usize,
}

/// The marker a joined branch's description carries: how many images it lists.
const JOINED_MARK: &str = "<!-- tagbump-joined: ";

impl ChangeRequest {
    /// The description with its joined count marked, for a joined branch.
    pub fn mark_joined(&mut self) {
        if self.joined > 0 {
            self.description
                .push_str(&format!("\n{JOINED_MARK}{} -->\n", self.joined));
        }
    }

    /// Whether the open request's `description` lists more joined images
    /// than this one: a later job wrote it, and it stays.
    pub fn outdated_by(&self, description: &str) -> bool {
        let theirs = description
            .split(JOINED_MARK)
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok());
        self.joined > 0 && theirs.is_some_and(|n| n > self.joined)
    }
}

/// How GitHub merges a pull request when auto-merge fires (`--merge-method`,
/// `merge_request.merge_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "MergeMethodName")]
pub enum MergeMethod {
    Merge,
    #[default]
    Squash,
    Rebase,
}

impl MergeMethod {
    /// GraphQL's `PullRequestMergeMethod` value.
    pub fn graphql(self) -> &'static str {
        match self {
            MergeMethod::Merge => "MERGE",
            MergeMethod::Squash => "SQUASH",
            MergeMethod::Rebase => "REBASE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Created,
    Updated,
    Unchanged,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Created => "created",
            Operation::Updated => "updated",
            Operation::Unchanged => "unchanged",
        })
    }
}

/// The merge or pull request after the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub kind: Kind,
    pub number: u64,
    pub url: String,
    pub operation: Operation,
    /// Things the user should know (auto-merge not allowed, …).
    pub notes: Vec<String>,
}

/// Open the change request, or update the open one for the same branches.
pub async fn open_or_update(conn: &Connection, request: &ChangeRequest) -> Result<Outcome> {
    match conn.kind {
        Kind::GitLab => {
            gitlab::merge_requests::Client::new(conn)?
                .open_or_update(request)
                .await
        }
        Kind::GitHub => {
            github::pull_requests::Client::new(conn)?
                .open_or_update(request)
                .await
        }
        Kind::Gitea => {
            gitea::pull_requests::Client::new(conn)?
                .open_or_update(request)
                .await
        }
    }
}

/// Which forge a remote is on: `--forge`, else the CI system whose server
/// hosts the repo, else the host name; `None` when it cannot be told.
pub fn detect(remote: &RemoteUrl, ci: &crate::ci::Context) -> Option<Kind> {
    if remote.scheme == Scheme::Local || remote.host.is_empty() {
        return None;
    }
    let host = remote.host.to_ascii_lowercase();
    if let Some(kind) = ci_forge(&host, ci) {
        return Some(kind);
    }
    if host.contains("github") {
        Some(Kind::GitHub)
    } else if host.contains("gitlab") {
        Some(Kind::GitLab)
    } else if host.contains("gitea") || host.contains("forgejo") || host == "codeberg.org" {
        Some(Kind::Gitea)
    } else {
        None
    }
}

/// The forge the CI job runs on, when it hosts `host` (one rule for both).
fn ci_forge(host: &str, ci: &crate::ci::Context) -> Option<Kind> {
    if ci.server_host.as_deref() != Some(host) {
        return None;
    }
    match ci.system? {
        crate::ci::System::GitLab => Some(Kind::GitLab),
        crate::ci::System::GitHub => Some(Kind::GitHub),
        crate::ci::System::Gitea => Some(Kind::Gitea),
    }
}

/// The default API base for a forge and remote: the CI system's own when the
/// job runs on that server, else derived from the host.
pub fn default_api_url(kind: Kind, remote: &RemoteUrl, ci: &crate::ci::Context) -> String {
    let host = remote.host.to_ascii_lowercase();
    if let (Some(url), Some(on)) = (&ci.api_url, ci_forge(&host, ci)) {
        if on == kind {
            return url.clone();
        }
    }
    // The API is where the repository is: its scheme (a self-managed
    // instance on plain http:// when the user named it so) and port.
    let scheme = if remote.scheme == crate::git::Scheme::Http {
        "http"
    } else {
        "https"
    };
    let port = remote.port.map(|p| format!(":{p}")).unwrap_or_default();
    match kind {
        Kind::GitLab => format!("{scheme}://{}{port}/api/v4", remote.host),
        Kind::GitHub if host == "github.com" => "https://api.github.com".into(),
        Kind::GitHub => format!("{scheme}://{}{port}/api/v3", remote.host),
        Kind::Gitea => format!("{scheme}://{}{port}/api/v1", remote.host),
    }
}

/// `group/sub/repo` from the remote URL (no leading `/`, no `.git`).
pub fn project_path(remote: &RemoteUrl) -> Option<String> {
    let path = if remote.url.contains("://") {
        url::Url::parse(&remote.url).ok()?.path().to_string()
    } else {
        remote.url.split_once(':')?.1.to_string()
    };
    let path = path
        .trim_matches('/')
        .trim_end_matches(".git")
        .trim_end_matches('/');
    (!path.is_empty()).then(|| path.to_string())
}

/// A scan's listing checked against `--via auto`'s limit (`None`: no
/// limit): more YAML files than that is [`TooManyForTheApi`], which sends
/// the run to git before any file is read.
pub fn check_scan_size(limit: Option<usize>, dir: &str, files: usize) -> anyhow::Result<()> {
    match limit {
        Some(limit) if files > limit => Err(crate::update::transport::TooManyForTheApi {
            files,
            dir: dir.to_string(),
        }
        .into()),
        _ => Ok(()),
    }
}

/// What an API scan of `--in PATH` found when PATH is one file: that file
/// (`None`: not UTF-8), as a git scan gives it.
pub fn single_file(path: &str, text: Option<String>) -> crate::update::transport::YamlFiles {
    match text {
        Some(text) => (
            vec![crate::targets::SourceFile {
                path: path.to_string(),
                text,
            }],
            Vec::new(),
        ),
        None => (
            Vec::new(),
            vec![(path.to_string(), "not UTF-8 text".into())],
        ),
    }
}

/// `--in PATH` names nothing at `commit` (through an API).
pub fn no_such_path(path: &str, commit: &str, url: &str) -> anyhow::Error {
    Failure::new(
        ErrorKind::NotFound,
        format!("`{path}` does not exist at {commit} on {url}"),
    )
    .hint("--in takes a directory or file path relative to the repository root")
    .into()
}

/// Percent-encode `text` for a URL path segment or query value: everything
/// but RFC 3986's unreserved characters, and `/` unless `keep_slash`.
pub fn percent_encode(text: &str, keep_slash: bool) -> String {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    const PATH: &AsciiSet = &UNRESERVED.remove(b'/');
    utf8_percent_encode(text, if keep_slash { PATH } else { UNRESERVED }).to_string()
}

impl Response {
    /// A 2xx answer's body as `T`; any other status is the API's error.
    pub fn answer<T: serde::de::DeserializeOwned>(&self, forge: Kind, what: &str) -> Result<T> {
        if !self.ok() {
            return Err(api_error(forge, what, self));
        }
        self.parse(what)
    }

    /// The body as `T`. An answer that is not JSON, or lacks a field the
    /// code needs, is an error naming the endpoint (`what`) and the field:
    /// never a default that would turn into `PUT …/merge_requests/0`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_str(&self.body).map_err(|e| {
            Failure::new(
                ErrorKind::Remote,
                format!("{what} answered something tagbump cannot read"),
            )
            .with_source(e)
            .hint("is --api-url the forge's API (e.g. https://gitlab.example.com/api/v4)?")
            .into()
        })
    }
}

/// An error body's fields, in the order they are read: GitLab's and GitHub's
/// `message`, OAuth's `error`/`error_description`, RFC 7807's `detail` and
/// `title`. GitLab's `message` can be an object of field errors.
#[derive(Debug, Default, serde::Deserialize)]
struct ErrorBody {
    message: Option<serde_json::Value>,
    error: Option<serde_json::Value>,
    error_description: Option<serde_json::Value>,
    detail: Option<serde_json::Value>,
    title: Option<serde_json::Value>,
}

impl Response {
    /// What an error body says, if it is JSON with one of the usual fields.
    pub fn error_message(&self) -> Option<String> {
        let body: ErrorBody = serde_json::from_str(&self.body).ok()?;
        [
            body.message,
            body.error,
            body.error_description,
            body.detail,
            body.title,
        ]
        .into_iter()
        .flatten()
        .find_map(|value| match value {
            serde_json::Value::String(text) => Some(text),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        })
    }
}

/// What the forge clients add to a transport failure.
pub const UNREACHABLE_HINT: &str =
    "check the API URL (--api-url) and that the server is reachable from here";

/// A non-2xx response as an error with the API's message and a hint.
pub fn api_error(kind: Kind, what: &str, response: &Response) -> anyhow::Error {
    let message = response
        .error_message()
        .unwrap_or_else(|| response.body.chars().take(300).collect());
    let message = scrub(&message);
    let (error_kind, hint) = match (response.status, kind) {
        (401, Kind::GitLab) => (
            ErrorKind::Auth,
            "the token was not accepted: check it has not expired and is sent the right way \
             (a personal/project access token as PRIVATE-TOKEN, CI_JOB_TOKEN as JOB-TOKEN)",
        ),
        (403, Kind::GitLab) => (
            ErrorKind::Auth,
            "the token lacks permission: it needs the `api` scope and at least the Developer \
             role on the project (CI_JOB_TOKEN cannot open merge requests; use a project access token)",
        ),
        (401, Kind::GitHub) => (ErrorKind::Auth, "the token was not accepted: check it has not expired"),
        (403, Kind::GitHub) => (
            ErrorKind::Auth,
            "the token lacks permission: it needs `pull-requests: write` (and `contents: write`), \
             or the `repo` scope for a classic token",
        ),
        (401, Kind::Gitea) => (
            ErrorKind::Auth,
            "the token was not accepted: check it has not expired or been deleted \
             (it is sent as `Authorization: token …`)",
        ),
        (403, Kind::Gitea) => (
            ErrorKind::Auth,
            "the token lacks permission: it needs the `write:repository` scope (and \
             `write:issue` for labels) and write access to the repository",
        ),
        (404, _) => (
            ErrorKind::NotFound,
            "check the project path or id (--project) and the API URL (--api-url); a token without \
             access to a private project also gets 404",
        ),
        (429, _) => (ErrorKind::Remote, "rate limited even after retries; try again later"),
        _ => (ErrorKind::Remote, "see the message from the server"),
    };
    Failure::new(
        error_kind,
        format!("{what}: HTTP {}: {message}", response.status),
    )
    .hint(hint)
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::env_of;

    #[test]
    fn detection() {
        let none = crate::ci::detect(&env_of(&[]));
        let r = |u: &str| RemoteUrl::parse(u).unwrap();
        assert_eq!(
            detect(&r("git@github.com:o/r.git"), &none),
            Some(Kind::GitHub)
        );
        assert_eq!(
            detect(&r("https://gitlab.example.com/g/r.git"), &none),
            Some(Kind::GitLab)
        );
        assert_eq!(detect(&r("https://git.example.com/g/r.git"), &none), None);
        assert_eq!(detect(&r("/srv/r.git"), &none), None);
        let ci = crate::ci::detect(&env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_SERVER_HOST", "git.example.com"),
        ]));
        assert_eq!(
            detect(&r("https://git.example.com/g/r.git"), &ci),
            Some(Kind::GitLab)
        );
        let gha = crate::ci::detect(&env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://ghe.example.com"),
        ]));
        assert_eq!(
            detect(&r("https://ghe.example.com/o/r.git"), &gha),
            Some(Kind::GitHub)
        );
        // Gitea and Forgejo: by name, and by their runners (which set
        // GitHub's variables with their own server and `/api/v1`).
        for url in [
            "https://gitea.example.com/o/r.git",
            "git@codeberg.org:o/r.git",
            "https://forgejo.example.org/o/r",
        ] {
            assert_eq!(detect(&r(url), &none), Some(Kind::Gitea), "{url}");
        }
        let gitea = crate::ci::detect(&env_of(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITEA_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://git.example.com"),
            ("GITHUB_API_URL", "https://git.example.com/api/v1"),
        ]));
        assert_eq!(
            detect(&r("https://git.example.com/o/r.git"), &gitea),
            Some(Kind::Gitea)
        );
        assert_eq!(
            default_api_url(Kind::Gitea, &r("https://git.example.com/o/r.git"), &gitea),
            "https://git.example.com/api/v1"
        );
    }

    #[test]
    fn api_urls_and_projects() {
        let none = crate::ci::detect(&env_of(&[]));
        let r = |u: &str| RemoteUrl::parse(u).unwrap();
        assert_eq!(
            default_api_url(Kind::GitHub, &r("git@github.com:o/r.git"), &none),
            "https://api.github.com"
        );
        assert_eq!(
            default_api_url(Kind::GitHub, &r("https://ghe.example.com/o/r"), &none),
            "https://ghe.example.com/api/v3"
        );
        assert_eq!(
            default_api_url(Kind::GitLab, &r("git@gitlab.com:g/r.git"), &none),
            "https://gitlab.com/api/v4"
        );
        assert_eq!(
            default_api_url(Kind::Gitea, &r("ssh://git@codeberg.org/o/r.git"), &none),
            "https://codeberg.org/api/v1"
        );
        let ci = crate::ci::detect(&env_of(&[
            ("GITLAB_CI", "true"),
            ("CI_API_V4_URL", "https://gl.example.com:8443/api/v4"),
            ("CI_SERVER_HOST", "gl.example.com"),
        ]));
        assert_eq!(
            default_api_url(Kind::GitLab, &r("https://gl.example.com/g/r.git"), &ci),
            "https://gl.example.com:8443/api/v4"
        );
        assert_eq!(
            project_path(&r("git@gitlab.com:group/sub/repo.git")).as_deref(),
            Some("group/sub/repo")
        );
        assert_eq!(
            project_path(&r("ssh://git@h:2222/team/m.git")).as_deref(),
            Some("team/m")
        );
        assert_eq!(
            project_path(&r("https://github.com/o/r")).as_deref(),
            Some("o/r")
        );
    }
}
