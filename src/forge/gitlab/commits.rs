//! Writing through GitLab's commits API: every file of a commit in one
//! `POST …/repository/commits`, each update carrying the last commit that
//! changed the file (a stale one is refused: try again on the new tip); a
//! review branch is replaced with `start_sha` + `force` after a lease check.

use anyhow::Result;
use base64::Engine as _;
use reqwest::Method;
use serde::Serialize;

use super::transport::{CommitInfo, GitLabRepo};
use crate::forge::entries::Entry;
use crate::forge::{api_error, Kind, Response};
use crate::update::transport::{Change, Written};

impl GitLabRepo {
    pub(super) fn commit(&mut self, change: &Change<'_>) -> Result<Written> {
        if change.dry_run {
            return Ok(Written::DryRun(None));
        }
        let actions = self.actions(change)?;
        let mut body = NewCommit {
            branch: change.branch,
            commit_message: change.message,
            actions,
            author_name: change.author.name().unwrap_or("tagbump"),
            author_email: change.author.email().unwrap_or("tagbump@localhost"),
            start_sha: None,
            force: None,
        };
        if !change.review && change.branch_tip.is_none() {
            // A joined branch's first commit: the branch is created first,
            // and only if it does not exist (the lease).
            if let Some(stale) = self.create_branch(change.branch, change.base_tip)? {
                return Ok(stale);
            }
        } else if change.review {
            // No compare-and-swap on branches: the lease is checked right
            // before the commit that replaces the branch.
            let now = self.branch(change.branch)?.map(|c| c.id);
            if now.as_deref() != change.branch_tip {
                return Ok(Written::Stale(format!(
                    "`{}` moved since it was read",
                    change.branch
                )));
            }
            body.start_sha = Some(change.base_tip);
            body.force = Some(true);
        }
        crate::interrupt::stage(format!("committing to `{}` on {}", change.branch, self.url));
        let response = self.send(Method::POST, "/repository/commits", Some(&body))?;
        self.answer(&response, change.branch)
    }

    /// Create `branch` at `at`; `Some`: it exists already (try again).
    fn create_branch(&self, branch: &str, at: &str) -> Result<Option<Written>> {
        #[derive(Serialize)]
        struct NewBranch<'a> {
            branch: &'a str,
            #[serde(rename = "ref")]
            at: &'a str,
        }
        crate::interrupt::stage(format!("creating `{branch}` on {}", self.url));
        let response = self.send(
            Method::POST,
            "/repository/branches",
            Some(&NewBranch { branch, at }),
        )?;
        match response.status {
            200..=299 => Ok(None),
            400 if response
                .error_message()
                .is_some_and(|m| m.contains("already exists")) =>
            {
                Ok(Some(Written::Stale(format!(
                    "`{branch}` was created meanwhile"
                ))))
            }
            _ => Err(api_error(Kind::GitLab, "GitLab POST branch", &response)),
        }
    }

    /// Each changed file as an action; an update names the last commit
    /// that changed the file, so GitLab refuses it if the file moved on.
    fn actions<'c>(&self, change: &Change<'c>) -> Result<Vec<Action<'c>>> {
        let mut actions = Vec::new();
        for edit in change.edits.iter().filter(|e| e.changed()) {
            let content = base64::engine::general_purpose::STANDARD.encode(edit.new.as_bytes());
            let mut entry = self.entry(change.base_tip, &edit.path)?;
            if let Entry::Text { version: None, .. } = entry {
                // Read through GraphQL: the REST read gives the last commit.
                self.entries.forget(change.base_tip, &edit.path);
                entry = self.entry(change.base_tip, &edit.path)?;
            }
            let (action, last_commit_id) = match entry {
                Entry::Text { version, .. } => ("update", version),
                Entry::Binary => ("update", None),
                Entry::Missing | Entry::Tree(_) => ("create", None),
                Entry::Symlink(to) => return Err(crate::targets::symlink_refused(&edit.path, &to)),
            };
            let action = Action {
                action,
                file_path: &edit.path,
                content,
                encoding: "base64",
                last_commit_id,
            };
            actions.push(action);
        }
        Ok(actions)
    }

    /// What the commits API's answer means for this attempt.
    fn answer(&self, response: &Response, branch: &str) -> Result<Written> {
        match response.status {
            200..=299 => {
                let created: CommitInfo = response.parse("GitLab POST commits")?;
                let id = created.id.clone();
                // Kept: the parent it landed on tells a joined commit's
                // ledger whether commits came in between.
                self.commits.borrow_mut().insert(id.clone(), created);
                Ok(Written::Pushed(id))
            }
            // 400/409: a file changed since it was read, or a push rule. 403
            // "You are not allowed to push into this branch": the branch is
            // protected, a declined push (exit 9) in the server's words; a
            // 403 for a token's scope stays an auth error.
            400 | 403 | 409 => {
                let message = crate::secret::scrub(
                    &response
                        .error_message()
                        .unwrap_or_else(|| response.body.clone()),
                );
                if declined(&message) {
                    Ok(Written::Declined(format!(
                        "{} declined the commit to `{branch}`: {message}",
                        self.url
                    )))
                } else if response.status != 403 && stale(&message) {
                    Ok(Written::Stale(format!(
                        "a file changed on `{branch}` since it was read ({message})"
                    )))
                } else {
                    Err(api_error(Kind::GitLab, "GitLab POST commits", response))
                }
            }
            _ => Err(api_error(Kind::GitLab, "GitLab POST commits", response)),
        }
    }
}

/// Whether GitLab's 400 on a commit means "someone changed it meanwhile".
fn stale(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "has changed since",
        "already exists",
        "doesn't exist",
        "does not exist",
        "could not update",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// Whether GitLab refused a commit by policy (push rules, protected branches).
fn declined(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "push rule",
        "protected branch",
        "not allowed to push",
        "pre-receive hook",
        "rejected",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// `POST /projects/:id/repository/commits`.
#[derive(Debug, Serialize)]
struct NewCommit<'a> {
    branch: &'a str,
    commit_message: &'a str,
    actions: Vec<Action<'a>>,
    author_name: &'a str,
    author_email: &'a str,
    /// A review branch is created (or replaced, with `force`) from here.
    #[serde(skip_serializing_if = "Option::is_none")]
    start_sha: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    force: Option<bool>,
}

/// One file of a commit; `last_commit_id` makes GitLab refuse the update
/// when the file changed since that commit.
#[derive(Debug, Serialize)]
struct Action<'a> {
    action: &'static str,
    file_path: &'a str,
    content: String,
    encoding: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_commit_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart() {
        assert!(stale(
            "The file has changed since you started editing it: a.yaml"
        ));
        assert!(stale("A file with this name already exists"));
        assert!(declined(
            "Push rule violation: committer email not verified"
        ));
        assert!(!stale("You are not allowed to push into this branch"));
        assert!(declined("You are not allowed to push into this branch"));
    }
}
