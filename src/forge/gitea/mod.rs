//! Gitea, and Forgejo (Codeberg), which speaks the same API (`/api/v1`):
//! pull requests ([`pull_requests`]) and the repository API as a transport
//! ([`transport`], committing with [`change_files`]).
//!
//! Kept to what servers from before 1.23 and current ones both accept: the
//! token in `Authorization: token …` (the query-string token is gone since
//! 1.23), labels by id, drafts by title prefix.

pub mod change_files;
pub mod pull_requests;
pub mod transport;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Whether the server whose API would be `api` (`…/api/v1`) answers
/// `GET /version` as Gitea and Forgejo do (`{"version": "1.22.3"}`,
/// Forgejo `9.0.3+gitea-1.22.0`): how a self-hosted instance on a name
/// that tells nothing is recognised. Asked once per run, without the token.
pub fn answers_as_gitea(api: &str) -> bool {
    static ASKED: Mutex<BTreeMap<String, bool>> = Mutex::new(BTreeMap::new());
    if let Some(known) = ASKED.lock().ok().and_then(|a| a.get(api).copied()) {
        return known;
    }
    #[derive(serde::Deserialize)]
    struct Version {
        version: String,
    }
    let url = format!("{}/version", api.trim_end_matches('/'));
    let answer = crate::http::block_on(async {
        let response = crate::http::client()?
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await?;
        if !response.status().is_success() {
            return Ok(None);
        }
        Ok(response.json::<Version>().await.ok())
    });
    let gitea = matches!(answer, Ok(Some(v)) if !v.version.trim().is_empty());
    if let Ok(mut asked) = ASKED.lock() {
        asked.insert(api.to_string(), gitea);
    }
    gitea
}

/// The error words Gitea answers a refused write with, by cause.
fn said(message: &str, needles: &[&str]) -> bool {
    let m = message.to_ascii_lowercase();
    needles.iter().any(|n| m.contains(n))
}

/// A write another writer got to first: a file's sha that no longer
/// matches, a file or branch created meanwhile, a branch gone.
pub(crate) fn stale(message: &str) -> bool {
    said(
        message,
        &[
            // ErrSHADoesNotMatch: the file changed since it was read.
            "sha does not match",
            // ErrRepoFileAlreadyExists: created meanwhile.
            "file already exists",
            // ErrBranchNotExist: the branch was deleted meanwhile.
            "branch does not exist",
        ],
    )
}

/// A write refused by policy: branch protection, a pre-receive hook.
pub(crate) fn declined(message: &str) -> bool {
    said(
        message,
        &[
            // ErrUserCannotCommit, from the branch protection check.
            "cannot commit to repo",
            "protected",
            "not allowed to push",
            "pre-receive hook",
            "push rejected",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart() {
        assert!(stale("sha does not match [given: abc, expected: def]"));
        assert!(stale("repository file already exists [path: a.yaml]"));
        assert!(!declined("sha does not match [given: abc, expected: def]"));
        assert!(declined("user cannot commit to repo [user: bot]"));
        assert!(declined(
            "path is protected and can not be changed [path: apps/a.yaml]"
        ));
        assert!(!declined(
            "token does not have at least one of required scope(s): [write:repository]"
        ));
        assert!(!stale("user does not have permission"));
        assert!(!stale("repository does not exist [id: 0, uid: 0]"));
        assert!(!declined(
            "user should have a permission to write to the target branch"
        ));
    }
}
