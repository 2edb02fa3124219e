//! GitLab merge requests over REST v4.
//!
//! An open MR for the same source and target branch is updated, never
//! duplicated (GitLab would refuse a second one with 409 anyway). Auto-merge
//! uses `auto_merge` on GitLab 17.11+ and `merge_when_pipeline_succeeds`
//! before; when the version cannot be read both are sent, because a merge
//! call whose only flag the server ignores would merge at once.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;
use reqwest::Method;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::error::{Failure, Kind as ErrorKind};
use crate::forge::api::{Api, NO_BODY};
use crate::forge::{api_error, ChangeRequest, Connection, Kind, Operation, Outcome, Response};

/// How long to wait for an MR's pipeline before setting auto-merge, and how
/// often to ask. Tests shorten it with TAGBUMP_POLL_MS.
fn poll() -> (u32, Duration) {
    let ms = std::env::var("TAGBUMP_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    (10, Duration::from_millis(ms))
}

pub struct Client {
    api: Api,
    /// The project id, or its path URL-encoded (`group%2Frepo`).
    project: String,
}

impl Client {
    pub fn new(conn: &Connection) -> Result<Client> {
        Ok(Client {
            api: Api::new(conn)?,
            project: super::encode_project(&conn.project),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Response> {
        self.api.send(method, path, query, body).await
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T> {
        self.api.json(method, path, query, body).await
    }

    fn mrs(&self) -> String {
        format!("/projects/{}/merge_requests", self.project)
    }

    /// The open MR from `source` into `target`, if any.
    pub async fn find_open(&self, source: &str, target: &str) -> Result<Option<MergeRequest>> {
        let query = [
            ("state", "opened".to_string()),
            ("source_branch", source.to_string()),
            ("target_branch", target.to_string()),
        ];
        let list: Vec<MergeRequest> = self.json(Method::GET, &self.mrs(), &query, NO_BODY).await?;
        Ok(list
            .into_iter()
            .find(|mr| mr.source_branch == source && mr.target_branch == target))
    }

    /// User ids for user names.
    pub async fn user_ids(&self, names: &[String]) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        for name in names {
            let name = name.trim_start_matches('@');
            let users: Vec<UserId> = self
                .json(
                    Method::GET,
                    "/users",
                    &[("username", name.to_string())],
                    NO_BODY,
                )
                .await?;
            match users.first() {
                Some(user) => ids.push(user.id),
                None => {
                    return Err(Failure::new(
                        ErrorKind::NotFound,
                        format!("GitLab has no user `{name}`"),
                    )
                    .hint("--assignee and --reviewer take GitLab usernames")
                    .into())
                }
            }
        }
        Ok(ids)
    }

    /// `(major, minor)` of the server, when the token may read it.
    pub async fn version(&self) -> Option<(u32, u32)> {
        let response = self
            .call(Method::GET, "/version", &[], NO_BODY)
            .await
            .ok()?;
        let version = response
            .parse::<Version>("GitLab GET /version")
            .ok()?
            .version;
        let mut parts = version.split(['.', '-']).map(|p| p.parse::<u32>().ok());
        Some((parts.next()??, parts.next()??))
    }

    pub async fn open_or_update(&self, request: &ChangeRequest) -> Result<Outcome> {
        let title = if request.draft && !request.title.starts_with("Draft:") {
            format!("Draft: {}", request.title)
        } else {
            request.title.clone()
        };
        let assignee_ids = self.user_ids(&request.assignees).await?;
        let reviewer_ids = self.user_ids(&request.reviewers).await?;
        let existing = self
            .find_open(&request.source_branch, &request.target_branch)
            .await?;
        let (mr, operation) = match existing {
            None => {
                let body = NewMergeRequest {
                    source_branch: &request.source_branch,
                    target_branch: &request.target_branch,
                    title: &title,
                    description: &request.description,
                    remove_source_branch: request.remove_source_branch,
                    squash: request.squash,
                    labels: &request.labels,
                    assignee_ids: &assignee_ids,
                    reviewer_ids: &reviewer_ids,
                };
                let response = self
                    .call(Method::POST, &self.mrs(), &[], Some(&body))
                    .await?;
                if response.status == 409 {
                    // Another job of the same release opened it meanwhile
                    // (`--join`): bring that one in line instead.
                    let mr = self
                        .find_open(&request.source_branch, &request.target_branch)
                        .await?
                        .ok_or_else(|| {
                            api_error(Kind::GitLab, "GitLab POST merge request", &response)
                        })?;
                    let ids = (assignee_ids.as_slice(), reviewer_ids.as_slice());
                    self.bring_in_line(mr, request, &title, ids).await?
                } else {
                    let what = format!("GitLab POST {}", self.mrs());
                    (response.answer(Kind::GitLab, &what)?, Operation::Created)
                }
            }
            Some(mr) => {
                let ids = (assignee_ids.as_slice(), reviewer_ids.as_slice());
                self.bring_in_line(mr, request, &title, ids).await?
            }
        };
        let number = mr.iid;
        let mut outcome = Outcome {
            kind: Kind::GitLab,
            number,
            url: mr.web_url,
            operation,
            notes: Vec::new(),
        };
        if request.auto_merge {
            if let Some(note) = self.auto_merge(number, request).await? {
                outcome.notes.push(note);
            }
        }
        Ok(outcome)
    }

    /// Update the open merge request where it differs from `request`.
    async fn bring_in_line(
        &self,
        mr: MergeRequest,
        request: &ChangeRequest,
        title: &str,
        (assignee_ids, reviewer_ids): (&[u64], &[u64]),
    ) -> Result<(MergeRequest, Operation)> {
        if request.outdated_by(mr.description.as_deref().unwrap_or_default()) {
            return Ok((mr, Operation::Unchanged));
        }
        let labels: BTreeSet<&String> = mr.labels.iter().collect();
        let body = MergeRequestChanges {
            title: (mr.title != title).then_some(title),
            description: (mr.description.as_deref().unwrap_or_default() != request.description)
                .then_some(request.description.as_str()),
            labels: (!request.labels.is_empty() && labels != request.labels.iter().collect())
                .then_some(request.labels.as_slice()),
            assignee_ids: (!assignee_ids.is_empty() && ids(&mr.assignees) != ids_of(assignee_ids))
                .then_some(assignee_ids),
            reviewer_ids: (!reviewer_ids.is_empty() && ids(&mr.reviewers) != ids_of(reviewer_ids))
                .then_some(reviewer_ids),
        };
        if body.is_empty() {
            return Ok((mr, Operation::Unchanged));
        }
        let path = format!("{}/{}", self.mrs(), mr.iid);
        Ok((
            self.json(Method::PUT, &path, &[], Some(&body)).await?,
            Operation::Updated,
        ))
    }

    /// Set auto-merge once the MR has a pipeline. Returns a note when it could
    /// not be set; that is reported, not fatal (the MR itself is fine).
    async fn auto_merge(&self, iid: u64, request: &ChangeRequest) -> Result<Option<String>> {
        let path = format!("{}/{iid}", self.mrs());
        let (tries, interval) = poll();
        let mut has_pipeline = false;
        for attempt in 0..tries {
            let mr: MergeRequest = self.json(Method::GET, &path, &[], NO_BODY).await?;
            if mr.head_pipeline.is_some() || mr.pipeline.is_some() {
                has_pipeline = true;
                break;
            }
            if attempt + 1 < tries {
                tokio::time::sleep(interval).await;
            }
        }
        if !has_pipeline {
            return Ok(Some(format!(
                "auto-merge not set on !{iid}: it has no pipeline yet, and GitLab would merge it at once"
            )));
        }
        // Both flags when the version is unknown: a merge call whose only
        // flag the server ignores would merge at once.
        let (auto_merge, when_pipeline_succeeds) = match self.version().await {
            Some(v) if v >= (17, 11) => (Some(true), None),
            Some(_) => (None, Some(true)),
            None => (Some(true), Some(true)),
        };
        let body = MergeWhenReady {
            auto_merge,
            merge_when_pipeline_succeeds: when_pipeline_succeeds,
            should_remove_source_branch: request.remove_source_branch.then_some(true),
            squash: request.squash.then_some(true),
        };
        let merge = format!("{path}/merge");
        let mut last = None;
        for attempt in 0..tries {
            let response = self.call(Method::PUT, &merge, &[], Some(&body)).await?;
            // 405/406/422: the pipeline is not there yet or the MR is not
            // mergeable yet; worth asking again briefly.
            if response.ok() {
                return Ok(None);
            }
            if !matches!(response.status, 405 | 406 | 422) {
                return Err(api_error(
                    Kind::GitLab,
                    &format!("GitLab PUT {merge}"),
                    &response,
                ));
            }
            last = Some(response);
            if attempt + 1 < tries {
                tokio::time::sleep(interval).await;
            }
        }
        let why = last.map(|r| {
            format!(
                "HTTP {}: {}",
                r.status,
                r.body.chars().take(200).collect::<String>()
            )
        });
        Ok(Some(format!(
            "auto-merge not set on !{iid}: {}",
            why.unwrap_or_default()
        )))
    }
}

/// A merge request as GitLab's API returns it: the fields tagbump reads.
/// One that lacks a required field is an error naming it (`Response::parse`).
#[derive(Debug, Clone, Deserialize)]
pub struct MergeRequest {
    pub iid: u64,
    pub web_url: String,
    pub source_branch: String,
    pub target_branch: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub assignees: Vec<UserId>,
    #[serde(default)]
    pub reviewers: Vec<UserId>,
    /// Any pipeline at all (`null` when there is none): only its presence
    /// is read.
    #[serde(default)]
    pub head_pipeline: Option<IgnoredAny>,
    #[serde(default)]
    pub pipeline: Option<IgnoredAny>,
}

/// `POST /projects/:id/merge_requests`.
#[derive(Debug, Serialize)]
struct NewMergeRequest<'a> {
    source_branch: &'a str,
    target_branch: &'a str,
    title: &'a str,
    description: &'a str,
    remove_source_branch: bool,
    squash: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    labels: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    assignee_ids: &'a [u64],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    reviewer_ids: &'a [u64],
}

/// `PUT /projects/:id/merge_requests/:iid`: only what differs.
#[derive(Debug, Serialize)]
struct MergeRequestChanges<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    assignee_ids: Option<&'a [u64]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reviewer_ids: Option<&'a [u64]>,
}

impl MergeRequestChanges<'_> {
    fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.labels.is_none()
            && self.assignee_ids.is_none()
            && self.reviewer_ids.is_none()
    }
}

/// `PUT /projects/:id/merge_requests/:iid/merge`, to merge when the
/// pipeline succeeds.
#[derive(Debug, Serialize)]
struct MergeWhenReady {
    #[serde(skip_serializing_if = "Option::is_none")]
    auto_merge: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    merge_when_pipeline_succeeds: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    should_remove_source_branch: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    squash: Option<bool>,
}

/// A user (or the user part of an MR), by id.
#[derive(Debug, Clone, Deserialize)]
pub struct UserId {
    pub id: u64,
}

#[derive(Debug, Deserialize)]
struct Version {
    version: String,
}

fn ids(users: &[UserId]) -> BTreeSet<u64> {
    users.iter().map(|u| u.id).collect()
}

fn ids_of(ids: &[u64]) -> BTreeSet<u64> {
    ids.iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_request_without_its_number_is_an_error_naming_it() {
        let response = Response {
            status: 200,
            retry_after: None,
            headers: Default::default(),
            body: r#"[{"web_url": "https://g.example/x/-/merge_requests/1", "source_branch": "b",
                      "target_branch": "main", "title": "t"}]"#
                .into(),
        };
        let err = response
            .parse::<Vec<MergeRequest>>("GitLab GET /projects/x/merge_requests")
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("GitLab GET /projects/x/merge_requests answered something tagbump cannot read: missing field `iid`"),
            "{text}"
        );
        let not_json = Response {
            status: 200,
            retry_after: None,
            headers: Default::default(),
            body: "<html>".into(),
        };
        let err = not_json.parse::<MergeRequest>("GitLab GET /x").unwrap_err();
        assert!(
            format!("{err:#}").contains("GitLab GET /x answered something tagbump cannot read"),
            "{err:#}"
        );
    }
}
