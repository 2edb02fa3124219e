//! Gitea's side of the repository API fake, backed by the real bare
//! repository: the version, the repository, branches (read, created at a
//! commit — 409 when one exists —, deleted), contents (base64 text with the
//! blob sha, a directory as a list, a link's target), the recursive tree
//! (paged while `truncated`), a commit, and `POST …/contents` ("change
//! files": every operation in one commit on the branch's head of the moment,
//! each `update` refused with 422 when its `sha` is not the file's blob —
//! "sha does not match"). Pull requests, labels, reviewers and the merge
//! endpoint keep their state here. Every request is recorded (method, path,
//! body) so a test can replay it to Prism serving Gitea's Swagger.

use std::path::Path;

use base64::Engine as _;
use serde_json::{json, Value};

use super::{
    git, git_bytes, head, ls_tree, message_and_parents, percent_decode, write_commit, State,
};

/// The labels the fake repository has.
pub fn labels() -> Value {
    json!([
        {"id": 11, "name": "gitops", "color": "00aabb"},
        {"id": 12, "name": "release", "color": "aa00bb"},
    ])
}

/// (status, body).
pub fn handle(
    method: &str,
    target: &str,
    body: &Value,
    state: &std::sync::Mutex<State>,
    repo: &Path,
) -> (u16, Value) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let param = |name: &str| super::query_param(query, name);
    let mut s = state.lock().unwrap();
    s.recorded
        .push((method.to_string(), target.to_string(), body.clone()));
    if path == "/api/v1/version" {
        s.requests.push("GET version".into());
        return (200, json!({"version": s.gitea_version.clone()}));
    }
    // The repository is acme/deploy (acme/large in the benchmark).
    let ours = ["/api/v1/repos/acme/deploy", "/api/v1/repos/acme/large"];
    if !ours
        .iter()
        .any(|r| path == *r || path.starts_with(&format!("{r}/")))
    {
        return (
            404,
            json!({"message": "The target couldn't be found.", "errors": []}),
        );
    }
    if s.read_only_token && method != "GET" {
        return (
            403,
            json!({"message": "token does not have at least one of required scope(s): [write:repository]"}),
        );
    }
    // /api/v1/repos/{owner}/{repo}/rest
    let rest: String = path.splitn(7, '/').nth(6).unwrap_or_default().to_string();
    s.requests.push(format!(
        "{method} {}",
        if rest.is_empty() {
            "repository".to_string()
        } else {
            rest.split('/').take(2).collect::<Vec<_>>().join("/")
        }
    ));
    let not_found = || {
        (
            404,
            json!({"message": "The target couldn't be found.", "errors": []}),
        )
    };
    match (method, rest.as_str()) {
        ("GET", "") => {
            let default = git(repo, &["symbolic-ref", "--short", "HEAD"]);
            (
                200,
                json!({"id": 1, "full_name": "acme/deploy", "default_branch": default}),
            )
        }
        ("GET", r) if r.starts_with("branches/") => {
            let name = percent_decode(&r["branches/".len()..]);
            match head(repo, &format!("refs/heads/{name}")) {
                Some(oid) => (200, branch(repo, &name, &oid)),
                None => not_found(),
            }
        }
        ("POST", "branches") => {
            let name = body["new_branch_name"].as_str().unwrap_or("");
            let at = body["old_ref_name"].as_str().unwrap_or("");
            match git(repo, &["update-ref", &format!("refs/heads/{name}"), at, ""]) {
                Some(_) => (201, branch(repo, name, at)),
                None => (409, json!({"message": "The branch already exists."})),
            }
        }
        ("DELETE", r) if r.starts_with("branches/") => {
            let name = percent_decode(&r["branches/".len()..]);
            if s.protected.as_deref() == Some(name.as_str()) {
                return (403, json!({"message": "branch protected"}));
            }
            match git(repo, &["update-ref", "-d", &format!("refs/heads/{name}")]) {
                Some(_) => (204, Value::Null),
                None => not_found(),
            }
        }
        ("GET", r) if r.starts_with("contents/") => {
            let file = percent_decode(&r["contents/".len()..]);
            let max = s.max_blob_size;
            contents(repo, &param("ref").unwrap_or_default(), &file, max).unwrap_or_else(not_found)
        }
        ("GET", r) if r.starts_with("git/trees/") => {
            let sha = &r["git/trees/".len()..];
            let per_page: usize = param("per_page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1000);
            let page: usize = param("page").and_then(|p| p.parse().ok()).unwrap_or(1);
            tree(repo, sha, per_page, page).unwrap_or_else(not_found)
        }
        ("GET", r) if r.starts_with("git/commits/") => {
            commit(repo, &r["git/commits/".len()..]).unwrap_or_else(not_found)
        }
        ("POST", "contents") => {
            let answer = change_files(repo, body, &mut s);
            if std::mem::take(&mut s.lose_commit_answer) {
                return (502, json!({"message": "502 Bad Gateway"}));
            }
            answer
        }
        ("GET", "labels") => (200, labels()),
        _ => super::gitea_pulls::handle(method, &rest, &param, body, &mut s),
    }
}

fn branch(repo: &Path, name: &str, oid: &str) -> Value {
    let (message, _) = message_and_parents(repo, oid);
    json!({"name": name, "commit": {"id": oid, "message": format!("{message}\n")}})
}

fn contents(repo: &Path, reference: &str, file: &str, max: Option<usize>) -> Option<(u16, Value)> {
    let spec = format!("{reference}:{file}");
    let kind = git(repo, &["cat-file", "-t", &spec])?;
    let sha = git(repo, &["rev-parse", &spec])?;
    if kind == "tree" {
        let entries: Vec<Value> = ls_tree(repo, &[&spec])
            .unwrap_or_default()
            .iter()
            .map(|[mode, kind, sha, name]| {
                let kind = match (kind.as_str(), mode.as_str()) {
                    ("tree", _) => "dir",
                    (_, "120000") => "symlink",
                    _ => "file",
                };
                json!({"type": kind, "name": name, "path": format!("{file}/{name}"), "sha": sha})
            })
            .collect();
        return Some((200, Value::Array(entries)));
    }
    let mode = git(repo, &["ls-tree", reference, "--", file])
        .and_then(|l| l.split(' ').next().map(String::from))
        .unwrap_or_default();
    let bytes = git_bytes(repo, &["cat-file", "blob", &spec]).unwrap_or_default();
    let name = file.rsplit('/').next().unwrap_or(file);
    if mode == "120000" {
        let target = String::from_utf8_lossy(&bytes).to_string();
        return Some((
            200,
            json!({"type": "symlink", "name": name, "path": file, "sha": sha, "target": target}),
        ));
    }
    let size = bytes.len();
    let content = (max.is_none_or(|max| size <= max))
        .then(|| base64::engine::general_purpose::STANDARD.encode(bytes));
    Some((
        200,
        json!({"type": "file", "name": name, "path": file, "sha": sha, "size": size,
            "encoding": content.as_ref().map(|_| "base64"), "content": content}),
    ))
}

fn tree(repo: &Path, sha: &str, per_page: usize, page: usize) -> Option<(u16, Value)> {
    let entries: Vec<Value> = ls_tree(repo, &["-r", "-t", sha])?
        .iter()
        .map(
            |[mode, kind, sha, path]| json!({"path": path, "mode": mode, "type": kind, "sha": sha}),
        )
        .collect();
    let start = (page - 1) * per_page;
    let slice: Vec<Value> = entries.iter().skip(start).take(per_page).cloned().collect();
    Some((
        200,
        json!({"sha": sha, "tree": slice, "page": page, "total_count": entries.len(),
            "truncated": entries.len() > per_page}),
    ))
}

fn commit(repo: &Path, sha: &str) -> Option<(u16, Value)> {
    let oid = head(repo, sha)?;
    let (message, parents) = message_and_parents(repo, &oid);
    let parents: Vec<Value> = parents.iter().map(|p| json!({"sha": p})).collect();
    let files: Vec<Value> = git(
        repo,
        &["diff-tree", "--no-commit-id", "--name-only", "-r", &oid],
    )
    .unwrap_or_default()
    .lines()
    .map(|f| json!({"filename": f, "status": "modified"}))
    .collect();
    Some((
        200,
        json!({"sha": oid, "commit": {"message": format!("{message}\n")}, "parents": parents, "files": files}),
    ))
}

/// `POST …/contents`: every operation in one commit on the branch's head.
fn change_files(repo: &Path, body: &Value, s: &mut State) -> (u16, Value) {
    let branch = body["branch"].as_str().unwrap_or("").to_string();
    let refname = format!("refs/heads/{branch}");
    if s.protected.as_deref() == Some(branch.as_str()) {
        return (
            403,
            json!({"message": "user cannot commit to repo [user: tagbump-bot]"}),
        );
    }
    super::interfere(repo, &refname, s);
    let Some(current) = head(repo, &refname) else {
        return (
            404,
            json!({"message": format!("branch does not exist [name: {branch}]")}),
        );
    };
    let mut files = Vec::new();
    for op in body["files"].as_array().cloned().unwrap_or_default() {
        let path = op["path"].as_str().unwrap_or("").to_string();
        let blob = git(
            repo,
            &["rev-parse", "-q", "--verify", &format!("{current}:{path}")],
        );
        match (op["operation"].as_str(), &blob) {
            (Some("create"), Some(_)) => {
                return (
                    422,
                    json!({"message": format!("repository file already exists [path: {path}]")}),
                )
            }
            (Some("update"), None) => {
                return (
                    404,
                    json!({"message": format!("file does not exist [path: {path}]")}),
                )
            }
            (Some("update"), Some(blob)) => {
                let given = op["sha"].as_str().unwrap_or("");
                if given != blob {
                    return (
                        422,
                        json!({"message": format!("sha does not match [given: {given}, expected: {blob}]")}),
                    );
                }
            }
            (Some("create"), None) => {}
            (other, _) => {
                return (
                    422,
                    json!({"message": format!("unsupported operation {other:?}")}),
                )
            }
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(op["content"].as_str().unwrap_or(""))
            .unwrap_or_default();
        files.push((path, bytes));
    }
    let message = body["message"].as_str().unwrap_or("");
    let new = write_commit(repo, &current, &files, message);
    if git(repo, &["update-ref", &refname, &new, &current]).is_none() {
        return (500, json!({"message": ""}));
    }
    (
        201,
        json!({"commit": {"sha": new, "message": message, "parents": [{"sha": current}]},
            "files": files.iter().map(|(p, _)| json!({"path": p, "type": "file"})).collect::<Vec<_>>()}),
    )
}
