//! One forge API session, shared by the merge/pull request clients and the
//! API transports of both forges: the base URL, the token in the header the
//! forge expects, the one HTTP client with this run's timeout, retries, and a
//! count of the requests sent.

use std::cell::Cell;
use std::time::Duration;

use anyhow::Result;
use reqwest::header::{HeaderName, AUTHORIZATION};
use reqwest::Method;
use serde::Serialize;

use super::{Connection, Kind, Response, TokenHeader, UNREACHABLE_HINT};
use crate::http::send_with_retries;
use crate::secret::Secret;

/// The body of a request that has none.
pub const NO_BODY: Option<&()> = None;

/// One forge's API, as one user.
pub struct Api {
    forge: Kind,
    base: String,
    auth: (HeaderName, Secret),
    timeout: Duration,
    http: reqwest::Client,
    requests: Cell<usize>,
}

impl Api {
    pub fn new(conn: &Connection) -> Result<Api> {
        let token = conn.token.expose();
        let auth = match (conn.kind, conn.header) {
            (Kind::GitLab, TokenHeader::Private) => (
                HeaderName::from_static("private-token"),
                Secret::new(token.to_string()),
            ),
            (Kind::GitLab, TokenHeader::Job) => (
                HeaderName::from_static("job-token"),
                Secret::new(token.to_string()),
            ),
            (Kind::Gitea, _) | (_, TokenHeader::Token) => {
                (AUTHORIZATION, Secret::new(format!("token {token}")))
            }
            (_, _) => (AUTHORIZATION, Secret::new(format!("Bearer {token}"))),
        };
        Ok(Api {
            forge: conn.kind,
            base: conn.api_url.trim_end_matches('/').to_string(),
            auth,
            timeout: conn.timeout,
            http: crate::http::client()?,
            requests: Cell::new(0),
        })
    }

    pub fn forge(&self) -> Kind {
        self.forge
    }

    /// `https://gitlab.example.com/api/v4`, `https://api.github.com`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// How many requests were sent (retries included).
    pub fn requests(&self) -> usize {
        self.requests.get()
    }

    /// `METHOD path` for messages: the URL below the API base (or, for an
    /// endpoint beside it such as GraphQL, below the host), without its
    /// query (which may name branches, never secrets, but is noise).
    pub fn what(&self, method: &Method, url: &str) -> String {
        let origin_end = self
            .base
            .match_indices('/')
            .nth(2)
            .map_or(self.base.len(), |(i, _)| i);
        let path = url
            .strip_prefix(&self.base)
            .or_else(|| url.strip_prefix(&self.base[..origin_end]))
            .unwrap_or(url);
        let path = path.split('?').next().unwrap_or(path);
        format!("{} {method} {path}", self.forge)
    }

    /// Send `method url` (a path below the base, or a whole URL such as
    /// GitHub's GraphQL endpoint) with the token, retried on 429, 5xx and
    /// transport faults. Any status is an answer: callers read it.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Response> {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        };
        let what = self.what(&method, &url);
        send_with_retries(&what, UNREACHABLE_HINT, || {
            self.requests.set(self.requests.get() + 1);
            let mut request = self
                .http
                .request(method.clone(), &url)
                .timeout(self.timeout)
                .query(query);
            if self.forge == Kind::GitHub {
                // GitHub's media type first; plain JSON is what its OpenAPI
                // description (and Prism serving it) names.
                request = request.header(
                    "accept",
                    "application/vnd.github+json, application/json;q=0.9",
                );
            }
            request = crate::http::with_secret(request, self.auth.0.clone(), self.auth.1.expose());
            if let Some(body) = body {
                request = request.json(body);
            }
            crate::http::read(request)
        })
        .await
    }

    /// [`Api::send`], and a 2xx answer's body as `T` (any other status is
    /// the API's error, naming the request).
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T> {
        let what = self.what(&method, url);
        self.send(method, url, query, body)
            .await?
            .answer(self.forge, &what)
    }

    /// [`Api::send`] from synchronous code (the API transports).
    pub fn send_now(
        &self,
        method: Method,
        url: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Response> {
        crate::http::block_on(self.send(method, url, &[], body))
    }
}
