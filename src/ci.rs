//! GitLab CI, GitHub Actions and Gitea/Forgejo Actions: defaults read from their variables, and
//! results handed back to them. The one place CI variables are read (with
//! one rule for each: `GITLAB_CI=true`, `GITHUB_ACTIONS=true`); everything
//! else takes the [`Context`].
//!
//! Precedence everywhere: a flag, then its `TAGBUMP_*` variable (both via
//! clap), then these CI defaults, then tagbump's own default.

use std::io::Write;
use std::path::PathBuf;

/// The CI system a run is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    GitLab,
    GitHub,
    /// Gitea Actions or Forgejo Actions: GitHub's variables, their server.
    Gitea,
}

/// What the CI system says about the job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub system: Option<System>,
    /// The CI server's host name, lowercase: a repository on it is on this forge.
    pub server_host: Option<String>,
    /// The CI server's API (`CI_API_V4_URL`, `GITHUB_API_URL`).
    pub api_url: Option<String>,
    pub commit_sha: Option<String>,
    pub pipeline_url: Option<String>,
    /// Who started the job, as a commit author.
    pub author: Option<(String, String)>,
    /// GitHub Actions' step output and summary files.
    pub github_output: Option<PathBuf>,
    pub github_step_summary: Option<PathBuf>,
}

/// Read the context from `env`.
pub fn detect(env: &dyn Fn(&str) -> Option<String>) -> Context {
    if env("GITLAB_CI").as_deref() == Some("true") {
        let author = match (env("GITLAB_USER_NAME"), env("GITLAB_USER_EMAIL")) {
            (Some(name), Some(email)) => Some((name, email)),
            _ => None,
        };
        return Context {
            system: Some(System::GitLab),
            server_host: env("CI_SERVER_HOST")
                .or_else(|| env("CI_SERVER_URL").and_then(host_of))
                .map(|h| h.to_ascii_lowercase()),
            api_url: env("CI_API_V4_URL"),
            commit_sha: env("CI_COMMIT_SHA"),
            pipeline_url: env("CI_PIPELINE_URL"),
            author,
            ..Context::default()
        };
    }
    if env("GITHUB_ACTIONS").as_deref() == Some("true") {
        let server = env("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
        let pipeline_url = match (env("GITHUB_REPOSITORY"), env("GITHUB_RUN_ID")) {
            (Some(repo), Some(run)) => Some(format!("{server}/{repo}/actions/runs/{run}")),
            _ => None,
        };
        let api_url = env("GITHUB_API_URL");
        // Gitea's and Forgejo's runners set GitHub's variables too, with
        // their own server and its `/api/v1`.
        let gitea = ["GITEA_ACTIONS", "FORGEJO_ACTIONS"]
            .iter()
            .any(|v| env(v).as_deref() == Some("true"))
            || api_url
                .as_deref()
                .is_some_and(|u| u.trim_end_matches('/').ends_with("/api/v1"));
        return Context {
            system: Some(if gitea { System::Gitea } else { System::GitHub }),
            server_host: host_of(server.clone()),
            api_url,
            commit_sha: env("GITHUB_SHA"),
            pipeline_url,
            // The identity GitHub's own actions commit as (Gitea's runner
            // has none of its own to borrow: tagbump's default then).
            author: (!gitea).then(|| {
                (
                    "github-actions[bot]".into(),
                    "41898282+github-actions[bot]@users.noreply.github.com".into(),
                )
            }),
            github_output: env("GITHUB_OUTPUT").map(PathBuf::from),
            github_step_summary: env("GITHUB_STEP_SUMMARY").map(PathBuf::from),
        };
    }
    Context::default()
}

fn host_of(url: String) -> Option<String> {
    url::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
}

/// Append `key=value` lines to the GitHub Actions output file. Values are
/// single-line here (URLs, SHAs, names), so the simple form is enough.
pub fn write_github_output(path: &PathBuf, pairs: &[(&str, String)]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    for (key, value) in pairs {
        writeln!(file, "{key}={}", value.replace(['\n', '\r'], " "))?;
    }
    Ok(())
}

/// Append markdown to the job summary.
pub fn write_step_summary(path: &PathBuf, markdown: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(markdown.as_bytes())
}

/// A GitHub Actions `::error::` workflow command, escaped as the runner expects.
pub fn github_error_annotation(message: &str) -> String {
    let escaped = message
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    format!("::error title=tagbump::{escaped}")
}

/// A dotenv file (GitLab `artifacts:reports:dotenv`): `KEY=value` lines.
pub fn write_dotenv(path: &PathBuf, pairs: &[(&str, String)]) -> std::io::Result<()> {
    let mut text = String::new();
    for (key, value) in pairs {
        text.push_str(&format!("{key}={}\n", value.replace(['\n', '\r'], " ")));
    }
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::env_of;

    /// The variables a GitLab 17 job really has (values from a sample job).
    const GITLAB: &[(&str, &str)] = &[
        ("CI", "true"),
        ("GITLAB_CI", "true"),
        ("CI_SERVER_URL", "https://gitlab.example.com"),
        ("CI_SERVER_HOST", "gitlab.example.com"),
        ("CI_API_V4_URL", "https://gitlab.example.com/api/v4"),
        ("CI_PROJECT_PATH", "team/app"),
        ("CI_COMMIT_SHA", "1f8e3c2b9a7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f"),
        ("CI_COMMIT_SHORT_SHA", "1f8e3c2b"),
        ("CI_COMMIT_REF_NAME", "main"),
        (
            "CI_PIPELINE_URL",
            "https://gitlab.example.com/team/app/-/pipelines/4242",
        ),
        ("CI_JOB_TOKEN", "job-token"),
        ("GITLAB_USER_NAME", "Alice Example"),
        ("GITLAB_USER_EMAIL", "alice@example.com"),
    ];

    /// The variables a GitHub Actions job has.
    const GITHUB: &[(&str, &str)] = &[
        ("CI", "true"),
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SERVER_URL", "https://github.com"),
        ("GITHUB_API_URL", "https://api.github.com"),
        ("GITHUB_REPOSITORY", "acme/app"),
        ("GITHUB_SHA", "0123456789abcdef0123456789abcdef01234567"),
        ("GITHUB_REF_NAME", "main"),
        ("GITHUB_RUN_ID", "987654321"),
        (
            "GITHUB_OUTPUT",
            "/home/runner/work/_temp/_runner_file_commands/set_output_1",
        ),
        (
            "GITHUB_STEP_SUMMARY",
            "/home/runner/work/_temp/_runner_file_commands/step_summary_1",
        ),
    ];

    #[test]
    fn gitlab_ci() {
        let c = detect(&env_of(GITLAB));
        assert_eq!(c.system, Some(System::GitLab));
        assert_eq!(
            c.api_url.as_deref(),
            Some("https://gitlab.example.com/api/v4")
        );
        assert_eq!(c.server_host.as_deref(), Some("gitlab.example.com"));
        assert_eq!(
            c.pipeline_url.as_deref(),
            Some("https://gitlab.example.com/team/app/-/pipelines/4242")
        );
        assert_eq!(
            c.author,
            Some(("Alice Example".into(), "alice@example.com".into()))
        );
        assert_eq!(c.github_output, None);
    }

    /// Gitea's and Forgejo's runners set GitHub's variables (their own
    /// server, `/api/v1`) and GITEA_ACTIONS / FORGEJO_ACTIONS.
    #[test]
    fn gitea_and_forgejo_actions() {
        let runner = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://git.example.com"),
            ("GITHUB_API_URL", "https://git.example.com/api/v1"),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_RUN_ID", "17"),
            ("GITHUB_OUTPUT", "/tmp/out"),
            ("GITHUB_STEP_SUMMARY", "/tmp/summary"),
        ];
        for flag in ["GITEA_ACTIONS", "FORGEJO_ACTIONS", ""] {
            let mut env = runner.to_vec();
            if !flag.is_empty() {
                env.push((flag, "true"));
            }
            let c = detect(&env_of(Box::leak(env.into_boxed_slice())));
            assert_eq!(c.system, Some(System::Gitea), "{flag}");
            assert_eq!(c.server_host.as_deref(), Some("git.example.com"));
            assert_eq!(c.api_url.as_deref(), Some("https://git.example.com/api/v1"));
            assert_eq!(c.author, None, "no GitHub bot identity");
            assert!(c.github_output.is_some() && c.github_step_summary.is_some());
        }
    }

    #[test]
    fn github_actions() {
        let c = detect(&env_of(GITHUB));
        assert_eq!(c.system, Some(System::GitHub));
        assert_eq!(
            c.pipeline_url.as_deref(),
            Some("https://github.com/acme/app/actions/runs/987654321")
        );
        assert_eq!(c.server_host.as_deref(), Some("github.com"));
        assert_eq!(c.author.unwrap().0, "github-actions[bot]");
        assert!(c.github_output.is_some() && c.github_step_summary.is_some());
    }

    #[test]
    fn outside_ci() {
        assert_eq!(detect(&env_of(&[("CI", "true")])), Context::default());
    }

    #[test]
    fn annotations_are_escaped() {
        assert_eq!(
            github_error_annotation("a%b\nc"),
            "::error title=tagbump::a%25b%0Ac"
        );
    }
}
