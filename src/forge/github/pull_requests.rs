//! GitHub pull requests, on github.com or GitHub Enterprise.
//!
//! An open PR for the same head and base is
//! updated, never duplicated. Auto-merge is GraphQL's
//! `enablePullRequestAutoMerge`; a repository that does not allow it gets a
//! note, not a failure.

use std::collections::BTreeSet;

use anyhow::Result;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::forge::api::Api;
use crate::forge::{ChangeRequest, Connection, Kind, Operation, Outcome};

pub struct Client {
    api: Api,
    owner: String,
    repo: String,
}

const AUTO_MERGE: &str = "mutation($id: ID!, $method: PullRequestMergeMethod!) { \
    enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method}) \
    { pullRequest { number } } }";

/// The GraphQL documents the pull request client sends, for validation
/// against GitHub's schema.
pub fn documents() -> Vec<(&'static str, String)> {
    vec![("enablePullRequestAutoMerge", AUTO_MERGE.to_string())]
}

impl Client {
    pub fn new(conn: &Connection) -> Result<Client> {
        let (owner, repo) = super::owner_and_name(&conn.project)?;
        Ok(Client {
            api: Api::new(conn)?,
            owner,
            repo,
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T> {
        self.api.json(method, path, &[], body).await
    }

    fn repo_path(&self) -> String {
        format!("/repos/{}/{}", self.owner, self.repo)
    }

    /// The open PR from `head` into `base`, if any.
    pub async fn find_open(&self, head: &str, base: &str) -> Result<Option<PullRequest>> {
        let path = format!(
            "{}/pulls?state=open&head={}:{}&base={}",
            self.repo_path(),
            self.owner,
            query_escape(head),
            query_escape(base)
        );
        let list: Vec<PullRequest> = self.json(Method::GET, &path, None).await?;
        Ok(list
            .into_iter()
            .find(|pr| pr.head.branch == head && pr.base.branch == base))
    }

    pub async fn open_or_update(&self, request: &ChangeRequest) -> Result<Outcome> {
        let pulls = format!("{}/pulls", self.repo_path());
        let (pr, mut operation) = match self
            .find_open(&request.source_branch, &request.target_branch)
            .await?
        {
            None => {
                let body = json!({
                    "title": request.title,
                    "head": request.source_branch,
                    "base": request.target_branch,
                    "body": request.description,
                    "draft": request.draft,
                });
                let response = self
                    .api
                    .send(Method::POST, &pulls, &[], Some(&body))
                    .await?;
                let open = match response.status {
                    // Another job of the same release opened it meanwhile
                    // (`--join`): bring that one in line instead.
                    422 if response.body.contains("already exists") => {
                        self.find_open(&request.source_branch, &request.target_branch)
                            .await?
                    }
                    _ => None,
                };
                match open {
                    Some(pr) => self.update_text(pr, request, &pulls).await?,
                    None => {
                        let what = self.api.what(&Method::POST, &pulls);
                        (response.answer(Kind::GitHub, &what)?, Operation::Created)
                    }
                }
            }
            Some(pr) => self.update_text(pr, request, &pulls).await?,
        };
        let number = pr.number;
        let issue = format!("{}/issues/{number}", self.repo_path());

        if self.bring_in_line(&pr, request, &issue, &pulls).await? {
            operation = bump(operation);
        }

        let mut outcome = Outcome {
            kind: Kind::GitHub,
            number,
            url: pr.html_url.clone(),
            operation,
            notes: Vec::new(),
        };
        if request.auto_merge {
            if let Some(note) = self.auto_merge(&pr, request).await? {
                outcome.notes.push(note);
            }
        }
        Ok(outcome)
    }

    /// Update the open pull request's title and body where they differ.
    async fn update_text(
        &self,
        pr: PullRequest,
        request: &ChangeRequest,
        pulls: &str,
    ) -> Result<(PullRequest, Operation)> {
        if request.outdated_by(pr.body.as_deref().unwrap_or_default()) {
            return Ok((pr, Operation::Unchanged));
        }
        let mut body = serde_json::Map::new();
        if pr.title != request.title {
            body.insert("title".into(), json!(request.title));
        }
        if pr.body.as_deref().unwrap_or_default() != request.description {
            body.insert("body".into(), json!(request.description));
        }
        if body.is_empty() {
            return Ok((pr, Operation::Unchanged));
        }
        let path = format!("{pulls}/{}", pr.number);
        Ok((
            self.json(Method::PATCH, &path, Some(&Value::Object(body)))
                .await?,
            Operation::Updated,
        ))
    }

    /// Add the labels, assignees and reviewers the PR lacks (only adds:
    /// people's own additions stay). Whether anything was sent.
    async fn bring_in_line(
        &self,
        pr: &PullRequest,
        request: &ChangeRequest,
        issue: &str,
        pulls: &str,
    ) -> Result<bool> {
        let missing = |want: &[String], have: Vec<&String>| -> Vec<String> {
            let have: BTreeSet<&String> = have.into_iter().collect();
            want.iter().filter(|w| !have.contains(w)).cloned().collect()
        };
        let labels = missing(&request.labels, pr.labels.iter().map(|l| &l.name).collect());
        let assignees = missing(
            &request.assignees,
            pr.assignees.iter().map(|a| &a.login).collect(),
        );
        let reviewers = missing(
            &request.reviewers,
            pr.requested_reviewers.iter().map(|r| &r.login).collect(),
        );
        let (teams, users): (Vec<String>, Vec<String>) =
            reviewers.into_iter().partition(|r| r.contains('/'));
        let team_slugs: Vec<&str> = teams.iter().filter_map(|t| t.split('/').nth(1)).collect();
        let sends = [
            (!labels.is_empty()).then(|| (format!("{issue}/labels"), json!({ "labels": labels }))),
            (!assignees.is_empty()).then(|| {
                (
                    format!("{issue}/assignees"),
                    json!({ "assignees": assignees }),
                )
            }),
            (!users.is_empty() || !team_slugs.is_empty()).then(|| {
                (
                    format!("{pulls}/{}/requested_reviewers", pr.number),
                    json!({ "reviewers": users, "team_reviewers": team_slugs }),
                )
            }),
        ];
        let mut sent = false;
        for (path, body) in sends.into_iter().flatten() {
            self.json::<serde::de::IgnoredAny>(Method::POST, &path, Some(&body))
                .await?;
            sent = true;
        }
        Ok(sent)
    }

    async fn auto_merge(
        &self,
        pr: &PullRequest,
        request: &ChangeRequest,
    ) -> Result<Option<String>> {
        let number = pr.number;
        let Some(id) = pr.node_id.as_deref() else {
            return Ok(Some(format!(
                "auto-merge not enabled on #{number}: the API did not return its node id"
            )));
        };
        let query = json!({
            "query": AUTO_MERGE,
            "variables": { "id": id, "method": request.merge_method.graphql() },
        });
        let url = super::graphql_url(self.api.base());
        let response = self.api.send(Method::POST, &url, &[], Some(&query)).await?;
        // GraphQL answers 200 with `errors` when the mutation failed.
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(default)]
            errors: Vec<GraphQlError>,
        }
        #[derive(serde::Deserialize)]
        struct GraphQlError {
            message: String,
        }
        let answer: Answer =
            response.answer(Kind::GitHub, "GitHub GraphQL enablePullRequestAutoMerge")?;
        let Some(first) = answer.errors.first() else {
            return Ok(None);
        };
        let message = first.message.as_str();
        let why = if message.to_lowercase().contains("not allowed") {
            format!(
                "the repository does not allow auto-merge ({message}); enable \"Allow auto-merge\" \
                 in its settings"
            )
        } else if message.to_lowercase().contains("clean status") {
            "it can already be merged (auto-merge needs pending checks or reviews)".to_string()
        } else {
            message.to_string()
        };
        Ok(Some(format!("auto-merge not enabled on #{number}: {why}")))
    }
}

/// Labels, assignees or reviewers changed on an otherwise unchanged PR.
fn bump(operation: Operation) -> Operation {
    match operation {
        Operation::Unchanged => Operation::Updated,
        other => other,
    }
}

/// A pull request as GitHub's REST API returns it: the fields tagbump reads.
/// One that lacks a required field is an error naming it (`Response::parse`).
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub html_url: String,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub node_id: Option<String>,
    pub head: BranchRef,
    pub base: BranchRef,
    #[serde(default)]
    pub labels: Vec<Label>,
    #[serde(default)]
    pub assignees: Vec<Login>,
    #[serde(default)]
    pub requested_reviewers: Vec<Login>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BranchRef {
    #[serde(rename = "ref")]
    pub branch: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    pub login: String,
}

fn query_escape(text: &str) -> String {
    crate::forge::percent_encode(text, true)
}
