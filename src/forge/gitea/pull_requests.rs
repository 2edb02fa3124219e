//! Gitea and Forgejo pull requests.
//!
//! An open PR for the same head and base is updated, never duplicated (a
//! concurrent job's duplicate create, 409, becomes an update). Labels are
//! sent by id, looked up by name; a draft is a `WIP: ` title prefix (Gitea's
//! default `WORK_IN_PROGRESS_PREFIXES`); auto-merge is the merge endpoint's
//! `merge_when_checks_succeed`.

use std::collections::BTreeSet;

use anyhow::Result;
use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize};

use crate::forge::api::{Api, NO_BODY};
use crate::forge::{ChangeRequest, Connection, Kind, MergeMethod, Operation, Outcome};

/// The title prefix Gitea marks a draft (work in progress) with.
pub const DRAFT_PREFIX: &str = "WIP: ";

/// Items per page of a listing (Gitea's default maximum is 50).
const PAGE: usize = 50;

/// Pages read at most of a listing (open PRs, labels).
const PAGES: usize = 20;

pub struct Client {
    api: Api,
    /// `/repos/{owner}/{repo}`.
    repo: String,
    /// `owner/repo`, for messages.
    name: String,
}

impl Client {
    pub fn new(conn: &Connection) -> Result<Client> {
        let (owner, name) = crate::forge::github::owner_and_name(&conn.project)?;
        Ok(Client {
            api: Api::new(conn)?,
            name: format!("{owner}/{name}"),
            repo: format!(
                "/repos/{}/{}",
                crate::forge::percent_encode(&owner, false),
                crate::forge::percent_encode(&name, false)
            ),
        })
    }

    /// Every item of a paged listing below the repository: pages until
    /// `X-Total-Count` items are read (an instance may cap `limit` below
    /// what is asked), or an empty page; an error past [`PAGES`] pages.
    async fn all<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Vec<T>> {
        let url = format!("{}{path}", self.repo);
        let what = self.api.what(&Method::GET, &url);
        let mut all = Vec::new();
        for page in 1..=PAGES {
            let query = [("page", page.to_string()), ("limit", PAGE.to_string())];
            let response = self.api.send(Method::GET, &url, &query, NO_BODY).await?;
            let total = response
                .headers
                .get("x-total-count")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<usize>().ok());
            let items: Vec<T> = response.answer(Kind::Gitea, &what)?;
            let (read, empty) = (items.len(), items.is_empty());
            all.extend(items);
            let done = match total {
                Some(total) => all.len() >= total,
                None => read < PAGE,
            };
            if done || empty {
                return Ok(all);
            }
        }
        Err(crate::error::Failure::new(
            crate::error::Kind::Remote,
            format!("{what} lists more than {} items", PAGES * PAGE),
        )
        .into())
    }

    /// The open PR from `head` into `base`, if any.
    pub async fn find_open(&self, head: &str, base: &str) -> Result<Option<PullRequest>> {
        let open: Vec<PullRequest> = self.all("/pulls?state=open").await?;
        // Only from this repository's own branch: a fork's pull request
        // from a branch of the same name is someone else's.
        Ok(open.into_iter().find(|pr| {
            pr.head.branch == head
                && pr.base.branch == base
                && pr.head.repo_id.is_some()
                && pr.head.repo_id == pr.base.repo_id
        }))
    }

    pub async fn open_or_update(&self, request: &ChangeRequest) -> Result<Outcome> {
        let title = draft_title(&request.title, request.draft);
        let (labels, unknown) = self.label_ids(&request.labels).await?;
        let pulls = format!("{}/pulls", self.repo);
        let (pr, mut operation) = match self
            .find_open(&request.source_branch, &request.target_branch)
            .await?
        {
            Some(pr) => self.update_text(pr, request, &title).await?,
            None => {
                let body = NewPull {
                    title: &title,
                    head: &request.source_branch,
                    base: &request.target_branch,
                    body: &request.description,
                    labels: labels.iter().map(|(id, _)| *id).collect(),
                    assignees: &request.assignees,
                };
                let response = self
                    .api
                    .send(Method::POST, &pulls, &[], Some(&body))
                    .await?;
                // Another job of the same release opened it meanwhile
                // (`--join`): bring that one in line instead.
                let open = if response.status == 409 {
                    self.find_open(&request.source_branch, &request.target_branch)
                        .await?
                } else {
                    None
                };
                match open {
                    Some(pr) => self.update_text(pr, request, &title).await?,
                    None => {
                        let what = self.api.what(&Method::POST, &pulls);
                        (response.answer(Kind::Gitea, &what)?, Operation::Created)
                    }
                }
            }
        };
        if self.bring_in_line(&pr, request, &labels).await? && operation == Operation::Unchanged {
            operation = Operation::Updated;
        }
        let mut notes: Vec<String> = unknown
            .iter()
            .map(|name| {
                format!(
                    "label `{name}` does not exist on {}; create it there to have it set",
                    self.name
                )
            })
            .collect();
        if request.auto_merge {
            notes.extend(self.auto_merge(&pr, request).await?);
        }
        Ok(Outcome {
            kind: Kind::Gitea,
            number: pr.number,
            url: pr.html_url.clone(),
            operation,
            notes,
        })
    }

    /// The ids of the labels named, and the names no label has.
    async fn label_ids(&self, names: &[String]) -> Result<(Vec<(i64, String)>, Vec<String>)> {
        if names.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let all: Vec<Label> = self.all("/labels").await?;
        let mut found = Vec::new();
        let mut unknown = Vec::new();
        for name in names {
            match all.iter().find(|l| l.name == *name) {
                Some(label) => found.push((label.id, label.name.clone())),
                None => unknown.push(name.clone()),
            }
        }
        Ok((found, unknown))
    }

    /// Update the open pull request's title and body where they differ.
    async fn update_text(
        &self,
        pr: PullRequest,
        request: &ChangeRequest,
        title: &str,
    ) -> Result<(PullRequest, Operation)> {
        let body = pr.body.clone().unwrap_or_default();
        if request.outdated_by(&body) {
            return Ok((pr, Operation::Unchanged));
        }
        // A draft marked by hand stays one.
        let title = if is_draft(&pr.title) {
            draft_title(title, true)
        } else {
            title.to_string()
        };
        let edit = EditPull {
            title: (pr.title != title).then_some(title.as_str()),
            body: (body != request.description).then_some(request.description.as_str()),
            assignees: None,
        };
        if edit.title.is_none() && edit.body.is_none() {
            return Ok((pr, Operation::Unchanged));
        }
        let path = format!("{}/pulls/{}", self.repo, pr.number);
        let updated = self
            .api
            .json(Method::PATCH, &path, &[], Some(&edit))
            .await?;
        Ok((updated, Operation::Updated))
    }

    /// Add the labels, assignees and reviewers the PR lacks (only adds:
    /// people's own additions stay). Whether anything was sent.
    async fn bring_in_line(
        &self,
        pr: &PullRequest,
        request: &ChangeRequest,
        labels: &[(i64, String)],
    ) -> Result<bool> {
        let number = pr.number;
        let mut sent = false;
        let have: BTreeSet<i64> = pr.labels.iter().map(|l| l.id).collect();
        let ids: Vec<i64> = labels
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !have.contains(id))
            .collect();
        if !ids.is_empty() {
            let path = format!("{}/issues/{number}/labels", self.repo);
            let body = serde_json::json!({ "labels": ids });
            self.api
                .json::<serde::de::IgnoredAny>(Method::POST, &path, &[], Some(&body))
                .await?;
            sent = true;
        }
        let assigned: Vec<&String> = pr.assignees.iter().map(|a| &a.login).collect();
        if request.assignees.iter().any(|a| !assigned.contains(&a)) {
            // Gitea sets the list it is given: the ones there, and ours.
            let mut all: Vec<String> = assigned.into_iter().cloned().collect();
            for name in &request.assignees {
                if !all.contains(name) {
                    all.push(name.clone());
                }
            }
            let edit = EditPull {
                title: None,
                body: None,
                assignees: Some(all),
            };
            let path = format!("{}/pulls/{number}", self.repo);
            self.api
                .json::<serde::de::IgnoredAny>(Method::PATCH, &path, &[], Some(&edit))
                .await?;
            sent = true;
        }
        let asked: Vec<&String> = pr.requested_reviewers.iter().map(|r| &r.login).collect();
        let teams_asked: Vec<&String> = pr
            .requested_reviewers_teams
            .iter()
            .map(|t| &t.name)
            .collect();
        let (teams, users): (Vec<&String>, Vec<&String>) = request
            .reviewers
            .iter()
            .filter(|r| match r.split_once('/') {
                Some((_, team)) => !teams_asked.iter().any(|t| *t == team),
                None => !asked.contains(r),
            })
            .partition(|r| r.contains('/'));
        if !users.is_empty() || !teams.is_empty() {
            let teams: Vec<&str> = teams.iter().filter_map(|t| t.split('/').nth(1)).collect();
            let path = format!("{}/pulls/{number}/requested_reviewers", self.repo);
            let body = serde_json::json!({ "reviewers": users, "team_reviewers": teams });
            self.api
                .json::<serde::de::IgnoredAny>(Method::POST, &path, &[], Some(&body))
                .await?;
            sent = true;
        }
        Ok(sent)
    }

    /// Merge when the checks succeed (now, when they have). A refusal is a
    /// note, as on the other forges.
    async fn auto_merge(&self, pr: &PullRequest, request: &ChangeRequest) -> Result<Vec<String>> {
        let number = pr.number;
        let path = format!("{}/pulls/{number}/merge", self.repo);
        let body = Merge {
            method: match request.merge_method {
                MergeMethod::Merge => "merge",
                MergeMethod::Squash => "squash",
                MergeMethod::Rebase => "rebase",
            },
            when_checks_succeed: true,
            delete_branch: request.remove_source_branch,
        };
        // Right after a push Gitea may not have checked mergeability yet:
        // 405 "Please try again later", retried a few times.
        let mut response = self.api.send(Method::POST, &path, &[], Some(&body)).await?;
        for wait in [1, 2, 4, 8] {
            if !(response.status == 405 && response.body.contains("try again later")) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            response = self.api.send(Method::POST, &path, &[], Some(&body)).await?;
        }
        let said = crate::secret::scrub(
            &response
                .error_message()
                .unwrap_or_else(|| response.body.chars().take(300).collect()),
        );
        Ok(match response.status {
            // 201: scheduled; 200: its checks had passed, merged now.
            201 => Vec::new(),
            200 => vec![format!(
                "#{number} was merged at once: its checks had passed"
            )],
            409 if said.contains("already scheduled") => Vec::new(),
            401 | 403 | 404 => {
                let what = self.api.what(&Method::POST, &path);
                return Err(crate::forge::api_error(Kind::Gitea, &what, &response));
            }
            status => vec![format!(
                "auto-merge not enabled on #{number}: HTTP {status}: {said}"
            )],
        })
    }
}

/// Whether a title marks a draft: Gitea's default prefixes, `WIP:` and
/// `[WIP]`, in any case.
fn is_draft(title: &str) -> bool {
    let t = title.trim_start().to_ascii_uppercase();
    t.starts_with("WIP:") || t.starts_with("[WIP]")
}

/// The title, with the draft prefix when `draft` (once).
pub fn draft_title(title: &str, draft: bool) -> String {
    if draft && !is_draft(title) {
        format!("{DRAFT_PREFIX}{title}")
    } else {
        title.to_string()
    }
}

/// `POST /repos/{owner}/{repo}/pulls` (CreatePullRequestOption).
#[derive(Serialize)]
struct NewPull<'a> {
    title: &'a str,
    head: &'a str,
    base: &'a str,
    body: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    labels: Vec<i64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    assignees: &'a [String],
}

/// `PATCH /repos/{owner}/{repo}/pulls/{index}` (EditPullRequestOption).
#[derive(Serialize)]
struct EditPull<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignees: Option<Vec<String>>,
}

/// `POST /repos/{owner}/{repo}/pulls/{index}/merge` (MergePullRequestOption).
#[derive(Serialize)]
struct Merge {
    #[serde(rename = "Do")]
    method: &'static str,
    #[serde(rename = "merge_when_checks_succeed")]
    when_checks_succeed: bool,
    #[serde(rename = "delete_branch_after_merge")]
    delete_branch: bool,
}

/// A pull request as Gitea's API returns it: the fields tagbump reads.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub html_url: String,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub head: BranchRef,
    pub base: BranchRef,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub labels: Vec<Label>,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub assignees: Vec<Login>,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub requested_reviewers: Vec<Login>,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub requested_reviewers_teams: Vec<Team>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Team {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BranchRef {
    #[serde(rename = "ref")]
    pub branch: String,
    /// The repository the branch is in (a fork's differs from the base's).
    #[serde(default)]
    pub repo_id: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    pub login: String,
}

/// Gitea writes `null` for an empty list.
fn null_is_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_is_marked_once() {
        assert_eq!(draft_title("Update a", true), "WIP: Update a");
        assert_eq!(draft_title("WIP: Update a", true), "WIP: Update a");
        assert_eq!(draft_title("Update a", false), "Update a");
        assert_eq!(draft_title("[wip] Update a", true), "[wip] Update a");
    }

    #[test]
    fn null_lists_read_as_empty() {
        let pr: PullRequest = serde_json::from_str(
            r#"{"number": 3, "html_url": "u", "title": "t", "body": null,
                "head": {"ref": "h"}, "base": {"ref": "main"},
                "labels": null, "assignees": null, "requested_reviewers": null}"#,
        )
        .unwrap();
        assert!(pr.labels.is_empty() && pr.assignees.is_empty());
    }
}
