//! Writing through Gitea's API: every file of a commit in one
//! `POST …/contents` ("change files"), each update carrying the blob sha it
//! replaces, so a file changed since it was read is refused (try again on
//! the new tip). The commit lands on the branch's head of the moment: like
//! GitLab's commits API, no compare-and-swap on the branch itself.
//!
//! A new branch is created first at the exact base commit (`POST
//! …/branches` with `old_ref_name`, refused with 409 when it exists: the
//! lease). Replacing a review branch is left to git ([`ApiCannot`]): Gitea
//! (to 1.25) has no API to move a branch, and deleting one closes its pull
//! request, which a branch made again does not reopen.

use anyhow::Result;
use base64::Engine as _;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::transport::{CommitInfo, GiteaRepo};
use crate::forge::entries::Entry;
use crate::forge::{api_error, Kind};
use crate::http::Response;
use crate::update::transport::{ApiCannot, Change, Written};

impl GiteaRepo {
    pub(super) fn change_files(&mut self, change: &Change<'_>) -> Result<Written> {
        if change.dry_run {
            return Ok(Written::DryRun(None));
        }
        // A branch still at the base (made by a run that then failed to
        // commit) takes the commit as it is; any other is moved only by git.
        if change.review && change.branch_tip.is_some_and(|t| t != change.base_tip) {
            // Gitea (to 1.25) moves a branch only by deleting it, which
            // closes its pull request for good.
            return Err(ApiCannot(format!(
                "Gitea's API cannot move `{}` to a new commit without closing its pull request",
                change.branch
            ))
            .into());
        }
        let files = self.operations(change)?;
        if change.branch_tip.is_none() {
            if let Some(refused) = self.create_branch(change)? {
                return Ok(refused);
            }
        }
        let body = ChangeFiles {
            branch: change.branch,
            message: change.message,
            author: identity(change.author),
            files,
        };
        crate::interrupt::stage(format!("committing to `{}` on {}", change.branch, self.url));
        let response = self.send(Method::POST, "/contents", Some(&body))?;
        self.answer(&response, change.branch)
    }

    /// Each changed file as an operation; an update names the blob it
    /// replaces.
    fn operations(&self, change: &Change<'_>) -> Result<Vec<Operation>> {
        let mut files = Vec::new();
        for edit in change.edits.iter().filter(|e| e.changed()) {
            let (operation, sha) = match self.entry(change.base_tip, &edit.path)? {
                Entry::Text { version, .. } => ("update", version),
                // Not reached: a file that is not text is refused before
                // anything is written (planning reads it), as through git.
                Entry::Binary => ("update", None),
                Entry::Missing | Entry::Tree(_) => ("create", None),
                Entry::Symlink(to) => return Err(crate::targets::symlink_refused(&edit.path, &to)),
            };
            files.push(Operation {
                operation,
                path: edit.path.clone(),
                content: base64::engine::general_purpose::STANDARD.encode(edit.new.as_bytes()),
                sha,
            });
        }
        Ok(files)
    }

    /// Create the branch at the exact commit planned on; `Some`: it exists
    /// already (another writer's), or the server refused.
    fn create_branch(&self, change: &Change<'_>) -> Result<Option<Written>> {
        #[derive(Serialize)]
        struct NewBranch<'a> {
            new_branch_name: &'a str,
            old_ref_name: &'a str,
            /// For servers older than `old_ref_name` (it wins where known).
            old_branch_name: &'a str,
        }
        crate::interrupt::stage(format!("creating `{}` on {}", change.branch, self.url));
        let body = NewBranch {
            new_branch_name: change.branch,
            old_ref_name: change.base_tip,
            old_branch_name: change.base,
        };
        let response = self.send(Method::POST, "/branches", Some(&body))?;
        Ok(match response.status {
            200..=299 => None,
            // "The branch already exists.": another writer's; a clash
            // with a tag or a branch `a` for `a/b` is no race.
            409 if response
                .error_message()
                .is_some_and(|m| m.contains("branch already exists")) =>
            {
                Some(Written::Stale(format!(
                    "`{}` was created meanwhile",
                    change.branch
                )))
            }
            _ => return Err(api_error(Kind::Gitea, "Gitea POST branches", &response)),
        })
    }

    /// What the change-files answer means for this attempt.
    fn answer(&self, response: &Response, branch: &str) -> Result<Written> {
        #[derive(Deserialize)]
        struct Files {
            commit: Commit,
        }
        #[derive(Deserialize)]
        struct Commit {
            sha: String,
            #[serde(default)]
            message: String,
            #[serde(default)]
            parents: Vec<Parent>,
        }
        #[derive(Deserialize)]
        struct Parent {
            sha: String,
        }
        match response.status {
            200..=299 => {
                let files: Files = response.parse("Gitea POST contents")?;
                let commit = files.commit;
                // Kept: the parent it landed on tells a joined commit's
                // ledger whether commits came in between.
                self.commits.borrow_mut().insert(
                    commit.sha.clone(),
                    CommitInfo {
                        message: commit.message,
                        parents: Some(commit.parents.into_iter().map(|p| p.sha).collect()),
                        files: None,
                    },
                );
                Ok(Written::Pushed(commit.sha))
            }
            // 403: branch protection (a declined push, exit 9, in the
            // server's words) unless it is the token's rights; 409/422/404:
            // a file or the branch changed since it was read.
            403 | 404 | 409 | 422 => {
                let message = said(response);
                if super::declined(&message) {
                    Ok(Written::Declined(format!(
                        "{} declined the commit to `{branch}`: {message}",
                        self.url
                    )))
                } else if response.status != 403 && super::stale(&message) {
                    Ok(Written::Stale(format!(
                        "a file changed on `{branch}` since it was read ({message})"
                    )))
                } else {
                    Err(api_error(Kind::Gitea, "Gitea POST contents", response))
                }
            }
            _ => Err(api_error(Kind::Gitea, "Gitea POST contents", response)),
        }
    }
}

/// The commit's author as Gitea takes it: its description types the email
/// `format: email`, which a host-only address (tagbump's default,
/// `tagbump@localhost`) is not; without one, Gitea writes the token's user.
fn identity<'a>(author: &'a git2::Signature<'a>) -> Option<Identity<'a>> {
    let (name, email) = (author.name().ok()?, author.email().ok()?);
    let (local, domain) = email.split_once('@')?;
    let dotted = domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.');
    (!local.is_empty() && dotted).then_some(Identity { name, email })
}

/// The server's words, secrets scrubbed.
fn said(response: &Response) -> String {
    crate::secret::scrub(
        &response
            .error_message()
            .unwrap_or_else(|| response.body.chars().take(300).collect()),
    )
}

/// `POST /repos/{owner}/{repo}/contents` (ChangeFilesOptions).
#[derive(Debug, Serialize)]
struct ChangeFiles<'a> {
    branch: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<Identity<'a>>,
    files: Vec<Operation>,
}

#[derive(Debug, Serialize)]
struct Identity<'a> {
    name: &'a str,
    email: &'a str,
}

/// One file of the commit (ChangeFileOperation); `sha` makes Gitea refuse
/// an update of a file that changed since it was read.
#[derive(Debug, Serialize)]
struct Operation {
    operation: &'static str,
    path: String,
    content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha: Option<String>,
}
