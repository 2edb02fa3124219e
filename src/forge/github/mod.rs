//! GitHub, on github.com or GitHub Enterprise: pull requests
//! ([`pull_requests`]) and the repository API as a transport
//! ([`transport`], committing with [`create_commit_on_branch`]).

pub mod create_commit_on_branch;
pub mod graphql;
pub mod pull_requests;
pub mod transport;

use anyhow::Result;

use crate::error::{Failure, Kind};

/// GraphQL lives beside REST: `api.github.com/graphql`, or `host/api/graphql`
/// for Enterprise (whose REST API is `host/api/v3`).
pub fn graphql_url(api: &str) -> String {
    match api.strip_suffix("/v3") {
        Some(base) => format!("{base}/graphql"),
        None => format!("{api}/graphql"),
    }
}

/// `OWNER/REPO` (a trailing `.git` dropped), as both clients name it.
pub fn owner_and_name(project: &str) -> Result<(String, String)> {
    let (owner, name) = project.split_once('/').ok_or_else(|| {
        Failure::new(Kind::Usage, format!("`{project}` is not OWNER/REPO"))
            .hint("pass --project OWNER/REPO")
    })?;
    Ok((owner.to_string(), name.trim_end_matches(".git").to_string()))
}

/// Every GraphQL document tagbump sends to GitHub, for validation against
/// its published schema.
pub fn documents() -> Vec<(&'static str, String)> {
    let mut all = transport::documents();
    all.extend(create_commit_on_branch::documents());
    all.extend(pull_requests::documents());
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_urls() {
        assert_eq!(
            graphql_url("https://api.github.com"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            graphql_url("https://ghe.example.com/api/v3"),
            "https://ghe.example.com/api/graphql"
        );
    }
}
