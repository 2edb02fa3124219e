//! GitLab merge requests over REST v4 (reqwest).
//!
//! An open MR for the same source and target branch is updated, never
//! duplicated (GitLab would refuse a second one with 409 anyway). Auto-merge
//! uses `auto_merge` on GitLab 17.11+ and `merge_when_pipeline_succeeds`
//! before; when the version cannot be read both are sent, because a merge
//! call whose only flag the server ignores would merge at once.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Result;
use reqwest::header::{HeaderName, HeaderValue, AUTHORIZATION};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    api_error, ChangeRequest, Connection, Kind, Operation, Outcome, Response, TokenHeader,
    UNREACHABLE_HINT,
};
use crate::error::{Failure, Kind as ErrorKind};
use crate::http::send_with_retries;

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
    http: reqwest::Client,
    api: String,
    /// The project id, or its path URL-encoded (`group%2Frepo`).
    project: String,
    auth: (HeaderName, HeaderValue),
}

/// Percent-encode a project path for the `:id` slot.
pub fn encode_project(project: &str) -> String {
    if project.bytes().all(|b| b.is_ascii_digit()) {
        return project.to_string();
    }
    super::percent_encode(project, false)
}

/// The reqwest client both forges' plain HTTP calls use.
impl Client {
    pub fn new(conn: &Connection) -> Result<Client> {
        let (name, value) = match conn.header {
            TokenHeader::Private => (
                HeaderName::from_static("private-token"),
                conn.token.expose().to_string(),
            ),
            TokenHeader::Job => (
                HeaderName::from_static("job-token"),
                conn.token.expose().to_string(),
            ),
            TokenHeader::Bearer => (AUTHORIZATION, format!("Bearer {}", conn.token.expose())),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            Failure::new(
                ErrorKind::Usage,
                "the GitLab token contains characters a header cannot carry",
            )
        })?;
        value.set_sensitive(true);
        Ok(Client {
            http: crate::http::client(conn.timeout)?,
            api: conn.api_url.trim_end_matches('/').to_string(),
            project: encode_project(&conn.project),
            auth: (name, value),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Response> {
        let url = format!("{}{path}", self.api);
        let what = format!("GitLab {method} {path}");
        send_with_retries(&what, UNREACHABLE_HINT, || {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header(self.auth.0.clone(), self.auth.1.clone())
                .query(query);
            if let Some(body) = body {
                request = request.json(body);
            }
            crate::http::read(request)
        })
        .await
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<T> {
        let what = format!("GitLab {method} {path}");
        let response = self.call(method, path, query, body).await?;
        response.answer(Kind::GitLab, &what)
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
        let list: Vec<MergeRequest> = self.json(Method::GET, &self.mrs(), &query, None).await?;
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
                    None,
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
        let response = self.call(Method::GET, "/version", &[], None).await.ok()?;
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
                let mut body = json!({
                    "source_branch": request.source_branch,
                    "target_branch": request.target_branch,
                    "title": title,
                    "description": request.description,
                    "remove_source_branch": request.remove_source_branch,
                    "squash": request.squash,
                });
                if !request.labels.is_empty() {
                    body["labels"] = json!(request.labels);
                }
                if !assignee_ids.is_empty() {
                    body["assignee_ids"] = json!(assignee_ids);
                }
                if !reviewer_ids.is_empty() {
                    body["reviewer_ids"] = json!(reviewer_ids);
                }
                (
                    self.json(Method::POST, &self.mrs(), &[], Some(&body))
                        .await?,
                    Operation::Created,
                )
            }
            Some(mr) => {
                let mut body = serde_json::Map::new();
                if mr.title != title {
                    body.insert("title".into(), json!(title));
                }
                if mr.description.as_deref().unwrap_or_default() != request.description {
                    body.insert("description".into(), json!(request.description));
                }
                let labels: BTreeSet<&String> = mr.labels.iter().collect();
                if !request.labels.is_empty() && labels != request.labels.iter().collect() {
                    body.insert("labels".into(), json!(request.labels));
                }
                if !assignee_ids.is_empty() && ids(&mr.assignees) != ids_of(&assignee_ids) {
                    body.insert("assignee_ids".into(), json!(assignee_ids));
                }
                if !reviewer_ids.is_empty() && ids(&mr.reviewers) != ids_of(&reviewer_ids) {
                    body.insert("reviewer_ids".into(), json!(reviewer_ids));
                }
                if body.is_empty() {
                    (mr, Operation::Unchanged)
                } else {
                    let path = format!("{}/{}", self.mrs(), mr.iid);
                    (
                        self.json(Method::PUT, &path, &[], Some(&Value::Object(body)))
                            .await?,
                        Operation::Updated,
                    )
                }
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

    /// Set auto-merge once the MR has a pipeline. Returns a note when it could
    /// not be set; that is reported, not fatal (the MR itself is fine).
    async fn auto_merge(&self, iid: u64, request: &ChangeRequest) -> Result<Option<String>> {
        let path = format!("{}/{iid}", self.mrs());
        let (tries, interval) = poll();
        let mut has_pipeline = false;
        for attempt in 0..tries {
            let mr: MergeRequest = self.json(Method::GET, &path, &[], None).await?;
            if mr.head_pipeline.is_some_and(|p| !p.is_null())
                || mr.pipeline.is_some_and(|p| !p.is_null())
            {
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
        let mut body = match self.version().await {
            Some(v) if v >= (17, 11) => json!({ "auto_merge": true }),
            Some(_) => json!({ "merge_when_pipeline_succeeds": true }),
            None => json!({ "auto_merge": true, "merge_when_pipeline_succeeds": true }),
        };
        if request.remove_source_branch {
            body["should_remove_source_branch"] = json!(true);
        }
        if request.squash {
            body["squash"] = json!(true);
        }
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
    #[serde(default)]
    pub head_pipeline: Option<Value>,
    #[serde(default)]
    pub pipeline: Option<Value>,
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

    #[test]
    fn project_ids_are_encoded() {
        assert_eq!(encode_project("team/manifests"), "team%2Fmanifests");
        assert_eq!(encode_project("g/sub.group/r-1"), "g%2Fsub.group%2Fr-1");
        assert_eq!(encode_project("12345"), "12345");
    }
}
