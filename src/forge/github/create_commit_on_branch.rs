//! Writing through GitHub's API: `createCommitOnBranch` with
//! `expectedHeadOid` (a stale head answers HTTP 200 with an error of type
//! `STALE_DATA`: try again); a review branch is created or reset first with
//! `updateRefs`, whose `beforeOid` is the lease (all zeros: it must not exist).

use anyhow::Result;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::graphql::{graphql_failure, ErrorType};
use super::transport::{GitHubRepo, Oid, ZERO};
use crate::error::{Failure, Kind as ErrorKind};
use crate::update::transport::{Change, Written};

const RESET_BRANCH: &str = "mutation TagbumpResetBranch($repo: ID!, $name: GitRefname!, $before: GitObjectID!, $after: GitObjectID!) {
  updateRefs(input: {repositoryId: $repo, refUpdates: [{name: $name, beforeOid: $before, afterOid: $after, force: true}]}) {
    clientMutationId
  }
}";

const COMMIT: &str = "mutation TagbumpCommit($input: CreateCommitOnBranchInput!) {
  createCommitOnBranch(input: $input) { commit { oid } }
}";

/// The GraphQL documents the writes send, for validation against GitHub's
/// schema.
pub fn documents() -> Vec<(&'static str, String)> {
    vec![
        ("TagbumpResetBranch", RESET_BRANCH.to_string()),
        ("TagbumpCommit", COMMIT.to_string()),
    ]
}

impl GitHubRepo {
    /// The review branch at the base, under the lease: created if absent,
    /// reset if it is still the tip the lease was checked on. `Some`: the
    /// branch moved (or the reset was refused) and nothing was committed.
    fn reset_branch(&self, change: &Change<'_>, repository: &str) -> Result<Option<Written>> {
        // The branch at the base, under the lease: created if absent,
        // reset if it is still the tip the lease was checked on.
        crate::interrupt::stage(format!("resetting `{}` on {}", change.branch, self.url));
        let vars = json!({
            "repo": repository,
            "name": format!("refs/heads/{}", change.branch),
            "before": change.branch_tip.unwrap_or(ZERO),
            "after": change.base_tip,
        });
        let (_, errors) = self.graphql.call::<serde::de::IgnoredAny>(
            &self.api,
            "TagbumpResetBranch",
            RESET_BRANCH,
            vars,
        )?;
        if let Some(e) = errors.first() {
            if e.kind.refused() {
                return Err(graphql_failure("TagbumpResetBranch", e, &self.url));
            }
            return Ok(Some(Written::Stale(format!(
                "`{}` moved while it was being reset ({})",
                change.branch,
                crate::secret::scrub(&e.message)
            ))));
        }
        Ok(None)
    }

    fn repository_id(&self) -> Result<String> {
        self.repository_id.borrow().clone().ok_or_else(|| {
            Failure::new(
                ErrorKind::Internal,
                "the repository id was not read before writing",
            )
            .into()
        })
    }

    pub(super) fn create_commit_on_branch(&mut self, change: &Change<'_>) -> Result<Written> {
        if change.dry_run {
            return Ok(Written::DryRun(None));
        }
        let repository = self.repository_id()?;
        // A review branch is reset first; a joined branch's first commit
        // creates the branch (the lease: it must not exist).
        if change.review || change.branch_tip.is_none() {
            if let Some(refused) = self.reset_branch(change, &repository)? {
                return Ok(refused);
            }
        }
        let (headline, body) = change
            .message
            .split_once("\n\n")
            .unwrap_or((change.message, ""));
        let additions: Vec<Value> = change
            .edits
            .iter()
            .filter(|e| e.changed())
            .map(|e| {
                json!({
                    "path": e.path,
                    "contents": base64::engine::general_purpose::STANDARD.encode(e.new.as_bytes()),
                })
            })
            .collect();
        let input = json!({
            "branch": {
                "repositoryNameWithOwner": format!("{}/{}", self.owner, self.name),
                "branchName": change.branch,
            },
            "message": {"headline": headline, "body": body},
            "expectedHeadOid": change.base_tip,
            "fileChanges": {"additions": additions},
        });
        crate::interrupt::stage(format!("committing to `{}` on {}", change.branch, self.url));
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Created {
            create_commit_on_branch: Option<CommitPayload>,
        }
        #[derive(Deserialize)]
        struct CommitPayload {
            commit: Option<Oid>,
        }
        let (data, errors) = self.graphql.call::<Created>(
            &self.api,
            "TagbumpCommit",
            COMMIT,
            json!({"input": input}),
        )?;
        if let Some(e) = errors.first() {
            return match e.kind {
                ErrorType::StaleData => Ok(Written::Stale(format!(
                    "`{}` moved since it was read",
                    change.branch
                ))),
                // Branch protection and rulesets refuse in their own words,
                // whatever the error's type (FORBIDDEN included): a declined
                // push (exit 9), not a token without rights (exit 6).
                _ if declined(&e.message) => Ok(Written::Declined(format!(
                    "{} declined the commit to `{}`: {}",
                    self.url,
                    change.branch,
                    crate::secret::scrub(&e.message)
                ))),
                kind if kind.refused() => Err(graphql_failure("TagbumpCommit", e, &self.url)),
                _ => Err(graphql_failure("TagbumpCommit", e, &self.url)),
            };
        }
        match data
            .and_then(|d| d.create_commit_on_branch)
            .and_then(|c| c.commit)
        {
            Some(commit) => Ok(Written::Pushed(commit.oid)),
            None => Err(Failure::new(
                ErrorKind::Remote,
                "GitHub GraphQL TagbumpCommit answered neither a commit nor an error",
            )
            .into()),
        }
    }
}

/// Whether GitHub refused a commit by policy (branch protection, rulesets).
fn declined(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "protected branch",
        "rule violation",
        "repository rule",
        "required status check",
        "changes must be made through a pull request",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_refusals_are_told_apart() {
        assert!(declined(
            "Repository rule violations found: Changes must be made through a pull request."
        ));
        assert!(!declined("Expected branch to point to abc but it did not"));
    }
}
