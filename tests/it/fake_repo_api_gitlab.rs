//! GitLab's side of the repository API fake: `GET /projects/:id`, branches,
//! files (base64 content and `last_commit_id`), the recursive tree (paged,
//! `X-Next-Page`), a commit and its diff, branch creation (refused when the
//! branch exists), and `POST /repository/commits` with
//! `actions[]` — each `update` checked against the file's last commit on the
//! start point, as GitLab does ("The file has changed since you started
//! editing it"), all actions in one commit or none.

use std::path::Path;

use base64::Engine as _;
use serde_json::{json, Value};

use super::{git, git_bytes, head, percent_decode, write_commit, State};

/// (status, body, next page).
pub fn handle(
    method: &str,
    target: &str,
    body: &Value,
    state: &std::sync::Mutex<State>,
    repo: &Path,
) -> (u16, Value, Option<usize>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path == "/api/graphql" {
        let mut s = state.lock().unwrap();
        s.requests.push("GraphQL TagbumpBlobs".into());
        // An instance whose GraphQL endpoint is off (or behind a proxy
        // that does not pass it).
        if let Some(status) = s.refuse_graphql {
            return (
                status,
                json!({"message": format!("{status} Not Found")}),
                None,
            );
        }
        return (200, blobs(repo, &body["variables"]), None);
    }
    let param = |name: &str| super::query_param(query, name);
    let rest = path
        .splitn(5, '/')
        .nth(4)
        .and_then(|p| p.split_once('/').map(|(_, r)| r.to_string()))
        .unwrap_or_default();
    let mut s = state.lock().unwrap();
    s.requests.push(format!(
        "{method} {}",
        if rest.is_empty() {
            "project".to_string()
        } else {
            rest.split('/').take(2).collect::<Vec<_>>().join("/")
        }
    ));
    let not_found = |what: &str| {
        (
            404,
            json!({"message": format!("404 {what} Not Found")}),
            None,
        )
    };
    match (method, rest.as_str()) {
        ("GET", "") => {
            let default = git(repo, &["symbolic-ref", "--short", "HEAD"]);
            (
                200,
                json!({"id": 1, "default_branch": default, "path_with_namespace": "acme/deploy"}),
                None,
            )
        }
        ("GET", r) if r.starts_with("repository/branches/") => {
            let name = percent_decode(&r["repository/branches/".len()..]);
            match head(repo, &format!("refs/heads/{name}")) {
                Some(oid) => (
                    200,
                    json!({"name": name, "commit": commit_info(repo, &oid)}),
                    None,
                ),
                None => not_found("Branch"),
            }
        }
        ("GET", r) if r.starts_with("repository/files/") => {
            let file = percent_decode(&r["repository/files/".len()..]);
            let reference = param("ref").unwrap_or_default();
            let spec = format!("{reference}:{file}");
            if git(repo, &["cat-file", "-t", &spec]).as_deref() != Some("blob") {
                return not_found("File");
            }
            let bytes = git_bytes(repo, &["cat-file", "blob", &spec]).unwrap_or_default();
            let last = git(repo, &["log", "-1", "--format=%H", &reference, "--", &file])
                .unwrap_or_default();
            (
                200,
                json!({"file_path": file, "encoding": "base64", "last_commit_id": last,
                    "content": base64::engine::general_purpose::STANDARD.encode(bytes)}),
                None,
            )
        }
        ("GET", "repository/tree") => {
            let reference = param("ref").unwrap_or_default();
            let dir = param("path").unwrap_or_default();
            let treeish = if dir.is_empty() {
                reference.clone()
            } else {
                format!("{reference}:{dir}")
            };
            let Some(listing) = super::ls_tree(repo, &["-r", "-t", &treeish]) else {
                return not_found("Tree");
            };
            let entries: Vec<Value> = listing
                .iter()
                .map(|[mode, kind, _, name]| {
                    let full = if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
                    json!({"path": full, "name": name.rsplit('/').next(), "type": kind, "mode": mode})
                })
                .collect();
            let per_page: usize = param("per_page").and_then(|p| p.parse().ok()).unwrap_or(20);
            let page: usize = param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            let start = (page - 1) * per_page;
            let slice: Vec<Value> = entries.iter().skip(start).take(per_page).cloned().collect();
            let next = (start + per_page < entries.len()).then_some(page + 1);
            (200, Value::Array(slice), next)
        }
        ("GET", r) if r.starts_with("repository/commits/") && r.ends_with("/diff") => {
            let sha = &r["repository/commits/".len()..r.len() - "/diff".len()];
            let names = git(
                repo,
                &["diff-tree", "--no-commit-id", "--name-only", "-r", sha],
            )
            .unwrap_or_default();
            let diff: Vec<Value> = names
                .lines()
                .map(|n| json!({"new_path": n, "old_path": n}))
                .collect();
            (200, Value::Array(diff), None)
        }
        ("GET", r) if r.starts_with("repository/commits/") => {
            let sha = &r["repository/commits/".len()..];
            match git(
                repo,
                &["rev-parse", "--verify", &format!("{sha}^{{commit}}")],
            ) {
                Some(oid) => (200, commit_info(repo, &oid), None),
                None => not_found("Commit"),
            }
        }
        // Create a branch: refused, as GitLab does, when it exists.
        ("POST", "repository/branches") => {
            let name = body["branch"].as_str().unwrap_or("");
            let at = body["ref"].as_str().unwrap_or("");
            let refname = format!("refs/heads/{name}");
            match git(repo, &["update-ref", &refname, at, ""]) {
                Some(_) => (
                    201,
                    json!({"name": name, "commit": commit_info(repo, at)}),
                    None,
                ),
                None => (400, json!({"message": "Branch already exists"}), None),
            }
        }
        ("POST", "repository/commits") => {
            let (status, reply) = create_commit(repo, body, &mut s);
            if std::mem::take(&mut s.lose_commit_answer) {
                return (502, json!({"message": "502 Bad Gateway"}), None);
            }
            (status, reply, None)
        }
        _ => not_found("Endpoint"),
    }
}

/// `project.repository.blobs(ref, paths)`: the blobs that exist, with their
/// `mode` (`100644`, `120000` for a symlink) and `rawTextBlob` null for
/// binary ones.
fn blobs(repo: &Path, vars: &Value) -> Value {
    let reference = vars["ref"].as_str().unwrap_or("");
    let nodes: Vec<Value> =
        vars["paths"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|p| {
                let path = p.as_str()?;
                let spec = format!("{reference}:{path}");
                (git(repo, &["cat-file", "-t", &spec]).as_deref() == Some("blob")).then(|| {
                let bytes = git_bytes(repo, &["cat-file", "blob", &spec]).unwrap_or_default();
                let listed = git(repo, &["ls-tree", reference, "--", path]).unwrap_or_default();
                let mode = listed.split_whitespace().next().unwrap_or("100644").to_string();
                json!({"path": path, "mode": mode, "rawTextBlob": String::from_utf8(bytes).ok()})
            })
            })
            .collect();
    json!({"data": {"project": {"repository": {"blobs": {"nodes": nodes}}}}})
}

fn commit_info(repo: &Path, oid: &str) -> Value {
    let (message, parents) = super::message_and_parents(repo, oid);
    json!({"id": oid, "message": format!("{message}\n"), "parent_ids": parents})
}

fn create_commit(repo: &Path, body: &Value, s: &mut State) -> (u16, Value) {
    let branch = body["branch"].as_str().unwrap_or("").to_string();
    let refname = format!("refs/heads/{branch}");
    let bad = |message: String| (400, json!({"message": message}));
    // A protected branch: 403, as GitLab answers it (not 400).
    if s.protected.as_deref() == Some(branch.as_str()) {
        return (
            403,
            json!({"message": "403 Forbidden - You are not allowed to push into this branch"}),
        );
    }
    super::interfere(repo, &refname, s);
    let force = body["force"] == true;
    let current = head(repo, &refname);
    let start = match (body["start_sha"].as_str(), &current) {
        (Some(sha), _) => sha.to_string(),
        (None, Some(tip)) => tip.clone(),
        (None, None) => {
            return bad(format!(
                "You can only create or edit files when you are on a branch ({branch})"
            ))
        }
    };
    let mut files = Vec::new();
    for action in body["actions"].as_array().cloned().unwrap_or_default() {
        let path = action["file_path"].as_str().unwrap_or("").to_string();
        let exists =
            git(repo, &["cat-file", "-t", &format!("{start}:{path}")]).as_deref() == Some("blob");
        match action["action"].as_str() {
            Some("create") if exists => return bad("A file with this name already exists".into()),
            Some("update") if !exists => return bad("A file with this name doesn't exist".into()),
            Some("update") => {
                let last = git(repo, &["log", "-1", "--format=%H", &start, "--", &path])
                    .unwrap_or_default();
                if action["last_commit_id"]
                    .as_str()
                    .is_some_and(|id| id != last)
                {
                    return bad(format!(
                        "The file has changed since you started editing it: {path}"
                    ));
                }
            }
            Some("create") => {}
            other => return bad(format!("unsupported action {other:?}")),
        }
        let content = action["content"].as_str().unwrap_or("");
        let bytes = match action["encoding"].as_str() {
            Some("base64") => base64::engine::general_purpose::STANDARD
                .decode(content)
                .unwrap_or_default(),
            _ => content.as_bytes().to_vec(),
        };
        files.push((path, bytes));
    }
    let new = write_commit(
        repo,
        &start,
        &files,
        body["commit_message"].as_str().unwrap_or(""),
    );
    let moved = match (force, &current) {
        (true, _) => git(repo, &["update-ref", &refname, &new]),
        (false, Some(tip)) => git(repo, &["update-ref", &refname, &new, tip]),
        (false, None) => git(repo, &["update-ref", &refname, &new, ""]),
    };
    match moved {
        Some(_) => (
            201,
            json!({"id": new, "parent_ids": [start], "message": body["commit_message"]}),
        ),
        None => bad(format!("Could not update {branch}")),
    }
}
