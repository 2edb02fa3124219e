//! GitHub's GraphQL endpoint as the transport speaks it: an answer's
//! `data` and `errors`, and an error told apart by its `type`.

use anyhow::Result;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{Failure, Kind as ErrorKind};
use crate::forge::api::Api;
use crate::forge::{api_error, Kind};

/// GitHub's GraphQL endpoint, for one repository (named in messages).
pub(super) struct GraphQl {
    endpoint: String,
    repository: String,
}

/// An answer: its data and errors.
#[derive(Deserialize)]
struct Answer<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<GraphQlError>,
}

#[derive(Debug, Deserialize)]
pub(super) struct GraphQlError {
    #[serde(rename = "type", default)]
    pub(super) kind: ErrorType,
    #[serde(default)]
    pub(super) message: String,
}

/// The `type` of a GraphQL error, as far as tagbump tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(super) enum ErrorType {
    /// `expectedHeadOid` no longer holds: the branch moved.
    StaleData,
    NotFound,
    Forbidden,
    InsufficientScopes,
    /// Any other type, or none.
    #[default]
    #[serde(other)]
    Other,
}

impl ErrorType {
    /// The token or a rule refused the operation, or hides the repository.
    pub(super) fn refused(self) -> bool {
        matches!(
            self,
            ErrorType::NotFound | ErrorType::Forbidden | ErrorType::InsufficientScopes
        )
    }
}

impl GraphQl {
    /// The endpoint beside `api`'s REST base; `repository` names it in messages.
    pub(super) fn new(api: &Api, repository: &str) -> GraphQl {
        GraphQl {
            endpoint: super::graphql_url(api.base()),
            repository: repository.to_string(),
        }
    }

    /// A GraphQL operation: its data and errors (HTTP errors are errors).
    pub(super) fn call<T: serde::de::DeserializeOwned>(
        &self,
        api: &Api,
        operation: &str,
        query: &str,
        variables: Value,
    ) -> Result<(Option<T>, Vec<GraphQlError>)> {
        let body = json!({"query": query, "operationName": operation, "variables": variables});
        let response = api.send_now(reqwest::Method::POST, &self.endpoint, Some(&body))?;
        let what = format!("GitHub GraphQL {operation}");
        if !response.ok() {
            return Err(api_error(Kind::GitHub, &what, &response));
        }
        let answer: Answer<T> = response.parse(&what)?;
        Ok((answer.data, answer.errors))
    }

    /// Fail on errors of a query (reads never have expected errors).
    pub(super) fn data<T: serde::de::DeserializeOwned>(
        &self,
        api: &Api,
        operation: &str,
        query: &str,
        variables: Value,
    ) -> Result<T> {
        let (data, errors) = self.call::<T>(api, operation, query, variables)?;
        if let Some(e) = errors.first() {
            return Err(graphql_failure(operation, e, &self.repository));
        }
        data.ok_or_else(|| {
            Failure::new(
                ErrorKind::Remote,
                format!("GitHub GraphQL {operation} answered no data"),
            )
            .into()
        })
    }
}

pub(super) fn graphql_failure(operation: &str, e: &GraphQlError, url: &str) -> anyhow::Error {
    let message = crate::secret::scrub(&e.message);
    let (kind, hint) = match e.kind {
        ErrorType::NotFound => (
            ErrorKind::NotFound,
            "check the repository (--project OWNER/REPO) and that the token can see it",
        ),
        ErrorType::Forbidden | ErrorType::InsufficientScopes => (
            ErrorKind::Auth,
            "the token needs `contents: write` on the repository (or the `repo` scope for a classic token)",
        ),
        _ => (ErrorKind::Remote, "see the message from GitHub"),
    };
    Failure::new(kind, format!("{url}: GraphQL {operation}: {message}"))
        .hint(hint)
        .into()
}
