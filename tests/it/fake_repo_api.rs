//! Stateful fakes of the parts of GitHub's and GitLab's APIs that `--via api`
//! uses, backed by a real bare git repository: reads answer from its objects,
//! and commits are made with git plumbing (a temporary index, `commit-tree`,
//! and `update-ref` with the expected old value, so compare-and-swap is git's
//! own). Tests inspect the result with the git CLI. GitHub's side answers by
//! GraphQL operation name, its documents' *shapes* validated against GitHub's
//! published schema separately (`contracts.rs`); GitLab's follows the fields
//! of its REST documentation (Repository files, Repository tree, Branches,
//! Commits: "Create a commit with multiple files and actions"). Everything
//! else (merge and pull requests) goes to `fake_forge`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{json, Value};

const ZERO: &str = "0000000000000000000000000000000000000000";

#[derive(Debug, Default)]
pub struct State {
    /// `METHOD path` or `GraphQL Operation`, in order.
    pub requests: Vec<String>,
    /// Bytes of every response body, and of every request body.
    pub bytes: usize,
    pub bytes_in: usize,
    /// Before the next commit mutation, commit this file on the branch as
    /// someone else (a head that moves mid-run).
    pub interfere: Option<(String, String)>,
    /// Refuse commits to the base branch as a ruleset would.
    pub protected: Option<String>,
    /// Answer GraphQL with this status (a token without API access).
    pub refuse_graphql: Option<u16>,
    /// Make the next commit, then answer 502 as if the answer was lost on
    /// the way back (a proxy timing out after the forge had committed).
    pub lose_commit_answer: bool,
    /// Gitea: every request (method, target, body), for a replay to Prism.
    pub recorded: Vec<(String, String, Value)>,
    /// Gitea: the pull requests.
    pub pulls: Vec<Value>,
    /// Gitea: what `GET /version` answers.
    pub gitea_version: String,
    /// Gitea: refuse writes as for a token without `write:repository`.
    pub read_only_token: bool,
    /// Gitea: leave out the content of larger files (`API.DEFAULT_MAX_BLOB_SIZE`).
    pub max_blob_size: Option<usize>,
}

pub struct FakeRepoApi {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    /// Pull requests and everything else: the merge/pull request fake.
    pub forge: Arc<Mutex<crate::fake_forge::State>>,
}

/// Which forge's API the fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    GitHub,
    GitLab,
    Gitea,
}

impl FakeRepoApi {
    pub fn github(repo: &Path, token: &str) -> FakeRepoApi {
        FakeRepoApi::start(repo, token, Flavour::GitHub)
    }

    pub fn gitlab(repo: &Path, token: &str) -> FakeRepoApi {
        FakeRepoApi::start(repo, token, Flavour::GitLab)
    }

    /// Gitea (and Forgejo): the repository and its pull requests, below
    /// `/api/v1`.
    pub fn gitea(repo: &Path, token: &str) -> FakeRepoApi {
        let fake = FakeRepoApi::start(repo, token, Flavour::Gitea);
        fake.state.lock().unwrap().gitea_version = "1.22.3".into();
        fake
    }

    fn start(repo: &Path, token: &str, flavour: Flavour) -> FakeRepoApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let forge = Arc::new(Mutex::new(crate::fake_forge::State::default()));
        let (shared, shared_forge, token, repo, base) = (
            state.clone(),
            forge.clone(),
            token.to_string(),
            repo.to_path_buf(),
            url.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let fakes = Fakes {
                    state: shared.clone(),
                    forge: shared_forge.clone(),
                    token: token.clone(),
                    repo: repo.clone(),
                    base: base.clone(),
                    flavour,
                };
                std::thread::spawn(move || serve(stream, &fakes));
            }
        });
        FakeRepoApi { url, state, forge }
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

pub(crate) fn git(repo: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// `git ls-tree ARGS` in `repo`: (mode, type, sha, path) of each entry.
pub(crate) fn ls_tree(repo: &Path, args: &[&str]) -> Option<Vec<[String; 4]>> {
    let listing = git(repo, &[&["ls-tree"], args].concat())?;
    Some(
        listing
            .lines()
            .filter_map(|l| {
                let (meta, path) = l.split_once('\t')?;
                let mut m = meta.split(' ');
                let (mode, kind, sha) = (m.next()?, m.next()?, m.next()?);
                Some([mode, kind, sha, path].map(String::from))
            })
            .collect(),
    )
}

/// A commit's message (as `git log` prints it, its last newline cut) and
/// its parents.
pub(crate) fn message_and_parents(repo: &Path, oid: &str) -> (String, Vec<String>) {
    let message = git(repo, &["log", "-1", "--format=%B", oid]).unwrap_or_default();
    let parents = git(repo, &["log", "-1", "--format=%P", oid])
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    (message, parents)
}

/// The value of `name` in a URL's query, percent-decoded.
pub(crate) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

pub(crate) fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

pub(crate) fn git_bytes(repo: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

struct Fakes {
    state: Arc<Mutex<State>>,
    forge: Arc<Mutex<crate::fake_forge::State>>,
    token: String,
    repo: PathBuf,
    base: String,
    flavour: Flavour,
}

fn serve(stream: TcpStream, fakes: &Fakes) {
    let (state, token, repo) = (&*fakes.state, fakes.token.as_str(), fakes.repo.as_path());
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut length = 0;
        let mut auth = String::new();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.trim_end().split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "authorization" => auth = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        state.lock().unwrap().bytes_in += body.len();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let private = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("private-token"))
            .map(|(_, v)| v.as_str());
        let project_path = target.split('?').next().unwrap_or("");
        let (ours, authorized) = match fakes.flavour {
            Flavour::GitHub => (
                target.contains("/git/trees/")
                    || body["operationName"]
                        .as_str()
                        .is_some_and(|o| o.starts_with("Tagbump")),
                auth == format!("Bearer {token}"),
            ),
            // Gitea answers its version to anyone.
            Flavour::Gitea => (
                target.starts_with("/api/v1/"),
                auth == format!("token {token}") || target == "/api/v1/version",
            ),
            Flavour::GitLab => (
                target.contains("/repository/")
                    || (project_path == "/api/graphql"
                        && body["operationName"]
                            .as_str()
                            .is_some_and(|o| o.starts_with("Tagbump")))
                    || (project_path.starts_with("/api/v4/projects/")
                        && project_path.matches('/').count() == 4),
                private == Some(token),
            ),
        };
        let mut extra = String::new();
        let (status, reply) = if !authorized {
            (401, json!({"message": "401 Unauthorized"}))
        } else if fakes.flavour == Flavour::Gitea {
            gitea::handle(&method, &target, &body, state, repo)
        } else if ours && fakes.flavour == Flavour::GitLab {
            let (status, reply, next) = gitlab::handle(&method, &target, &body, state, repo);
            if let Some(next) = next {
                extra = format!("X-Next-Page: {next}\r\n");
            }
            (status, reply)
        } else if ours {
            handle(&method, &target, &body, state, repo)
        } else {
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let request = crate::fake_forge::Request {
                method: method.clone(),
                path: path.to_string(),
                query: query.to_string(),
                headers: headers.clone(),
                body: body.clone(),
            };
            let (status, _, reply) =
                crate::fake_forge::handle(&request, &fakes.forge, token, &fakes.base);
            (status, reply)
        };
        let text = reply.to_string();
        state.lock().unwrap().bytes += text.len();
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n{text}",
            text.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

#[path = "fake_repo_api_gitlab.rs"]
mod gitlab;

#[path = "fake_repo_api_gitea.rs"]
mod gitea;

#[path = "fake_repo_api_gitea_pulls.rs"]
mod gitea_pulls;

fn handle(
    method: &str,
    target: &str,
    body: &Value,
    state: &Mutex<State>,
    repo: &Path,
) -> (u16, Value) {
    if method == "GET" && target.contains("/git/trees/") {
        state.lock().unwrap().requests.push("GET git/trees".into());
        let sha = target
            .split("/git/trees/")
            .nth(1)
            .unwrap_or("")
            .split('?')
            .next()
            .unwrap_or("");
        let Some(listing) = ls_tree(repo, &["-r", "-t", "--full-tree", sha]) else {
            return (404, json!({"message": "Not Found"}));
        };
        let tree: Vec<Value> = listing
            .iter()
            .map(|[mode, kind, sha, path]| {
                json!({"path": path, "mode": mode, "type": kind, "sha": sha})
            })
            .collect();
        return (200, json!({"sha": sha, "tree": tree, "truncated": false}));
    }
    if method != "POST" || !target.ends_with("/graphql") {
        return (404, json!({"message": "Not Found"}));
    }
    let operation = body["operationName"].as_str().unwrap_or("").to_string();
    let vars = &body["variables"];
    let mut s = state.lock().unwrap();
    s.requests.push(format!("GraphQL {operation}"));
    if let Some(status) = s.refuse_graphql {
        return (
            status,
            json!({"message": "Resource not accessible by integration"}),
        );
    }
    let reply = match operation.as_str() {
        "TagbumpTips" => tips(repo, vars),
        "TagbumpBranch" => branch(repo, vars),
        "TagbumpFiles" => files(repo, vars),
        "TagbumpResetBranch" => reset(repo, vars),
        "TagbumpCommit" => {
            let reply = commit(repo, vars, &mut s);
            if std::mem::take(&mut s.lose_commit_answer) {
                return (502, json!({"message": "Bad Gateway"}));
            }
            reply
        }
        _ => json!({"errors": [{"message": format!("unknown operation {operation}")}]}),
    };
    (200, reply)
}

pub(crate) fn head(repo: &Path, qualified: &str) -> Option<String> {
    git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "-q",
            &format!("{qualified}^{{commit}}"),
        ],
    )
}

fn tips(repo: &Path, vars: &Value) -> Value {
    let default = git(repo, &["symbolic-ref", "--short", "HEAD"]).unwrap_or_default();
    let message = |oid: &str| git(repo, &["log", "-1", "--format=%B", oid]).unwrap_or_default();
    let default_ref = head(repo, &format!("refs/heads/{default}"))
        .map(|oid| json!({"name": default, "target": {"oid": oid, "message": message(&oid)}}));
    let mut repository = json!({"id": "R_fake", "defaultBranchRef": default_ref});
    if vars["hasBase"] == true {
        let name = vars["base"].as_str().unwrap_or("");
        repository["base"] = match head(repo, name) {
            Some(oid) => {
                json!({"name": name.trim_start_matches("refs/heads/"), "target": {"oid": oid, "message": message(&oid)}})
            }
            None => Value::Null,
        };
    }
    json!({"data": {"repository": repository}})
}

fn branch(repo: &Path, vars: &Value) -> Value {
    let name = vars["branch"].as_str().unwrap_or("");
    let branch = head(repo, name).map(|oid| {
        let (message, parents) = message_and_parents(repo, &oid);
        let parents: Vec<Value> = parents.iter().map(|p| json!({"oid": p})).collect();
        let changed = git(repo, &["diff-tree", "--no-commit-id", "--name-only", "-r", &oid])
            .unwrap_or_default()
            .lines()
            .count();
        json!({"target": {"oid": oid, "message": format!("{message}\n"), "changedFilesIfAvailable": changed,
            "parents": {"nodes": parents}}})
    });
    let legacy =
        head(repo, vars["legacy"].as_str().unwrap_or("")).map(|_| json!({"name": vars["legacy"]}));
    json!({"data": {"repository": {"branch": branch, "legacy": legacy}}})
}

/// `TagbumpFiles`: `Commit.file(path:)` for each `$pN` at `$commit` — the
/// tree entry's mode (as GitHub gives it, a number) and its object.
fn files(repo: &Path, vars: &Value) -> Value {
    let commit = vars["commit"].as_str().unwrap_or("");
    if git(repo, &["cat-file", "-t", commit]).as_deref() != Some("commit") {
        return json!({"data": {"repository": {"object": null}}});
    }
    let mut object = serde_json::Map::new();
    for i in 0.. {
        let Some(path) = vars[format!("p{i}")].as_str() else {
            break;
        };
        // `<mode> <type> <oid>\t<path>`, or nothing when there is no such path.
        let listed = git(repo, &["ls-tree", commit, "--", path.trim_end_matches('/')]);
        let value = match listed.as_deref().and_then(|l| l.split_once('\t')) {
            Some((head, _)) => {
                let parts: Vec<&str> = head.split_whitespace().collect();
                let mode = u32::from_str_radix(parts[0], 8).unwrap_or(0);
                let oid = parts[2];
                let object = match parts[1] {
                    "blob" => {
                        let bytes = git_bytes(repo, &["cat-file", "blob", oid]).unwrap_or_default();
                        match String::from_utf8(bytes.clone()) {
                            Ok(text) => {
                                json!({"__typename": "Blob", "text": text, "isBinary": false, "byteSize": bytes.len()})
                            }
                            Err(_) => {
                                json!({"__typename": "Blob", "text": null, "isBinary": true, "byteSize": bytes.len()})
                            }
                        }
                    }
                    "tree" => json!({"__typename": "Tree", "oid": oid}),
                    _ => json!({"__typename": "Commit"}),
                };
                json!({"mode": mode, "object": object})
            }
            None => Value::Null,
        };
        object.insert(format!("f{i}"), value);
    }
    json!({"data": {"repository": {"object": object}}})
}

fn reset(repo: &Path, vars: &Value) -> Value {
    let name = vars["name"].as_str().unwrap_or("");
    let before = vars["before"].as_str().unwrap_or(ZERO);
    let after = vars["after"].as_str().unwrap_or("");
    match git(repo, &["update-ref", name, after, before]) {
        Some(_) => json!({"data": {"updateRefs": {"clientMutationId": null}}}),
        None => {
            json!({"data": null, "errors": [{"type": "UNPROCESSABLE", "message": format!("Could not update {name}: it was not at {before}")}]})
        }
    }
}

fn commit(repo: &Path, vars: &Value, s: &mut State) -> Value {
    let input = &vars["input"];
    let branch = input["branch"]["branchName"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let refname = format!("refs/heads/{branch}");
    if let Some(base) = &s.protected {
        if *base == branch {
            // Typed FORBIDDEN, like a token without rights: the words tell
            // branch protection apart.
            return json!({"data": {"createCommitOnBranch": null}, "errors": [{"type": "FORBIDDEN",
                "message": "Repository rule violations found\n\nChanges must be made through a pull request."}]});
        }
    }
    interfere(repo, &refname, s);
    let expected = input["expectedHeadOid"].as_str().unwrap_or("");
    let stale = || {
        json!({"data": {"createCommitOnBranch": null}, "errors": [{"type": "STALE_DATA",
            "message": format!("Expected branch to point to \"{expected}\" but it did not. Pull and try again.")}]})
    };
    if head(repo, &refname).as_deref() != Some(expected) {
        return stale();
    }
    let additions: Vec<(String, Vec<u8>)> = input["fileChanges"]["additions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap_or("").to_string(),
                base64::engine::general_purpose::STANDARD
                    .decode(a["contents"].as_str().unwrap_or(""))
                    .unwrap_or_default(),
            )
        })
        .collect();
    let message = format!(
        "{}\n\n{}",
        input["message"]["headline"].as_str().unwrap_or(""),
        input["message"]["body"].as_str().unwrap_or("")
    );
    let new = write_commit(repo, expected, &additions, message.trim_end());
    match git(repo, &["update-ref", &refname, &new, expected]) {
        Some(_) => json!({"data": {"createCommitOnBranch": {"commit": {"oid": new}}}}),
        None => stale(),
    }
}

/// The `interfere` change, if one is set: someone else's commit on
/// `refname`, made before the fake handles the next commit request.
pub(crate) fn interfere(repo: &Path, refname: &str, s: &mut State) {
    if let Some((path, text)) = s.interfere.take() {
        if let Some(tip) = head(repo, refname) {
            let new = write_commit(
                repo,
                &tip,
                &[(path, text.into_bytes())],
                "someone else's change",
            );
            git(repo, &["update-ref", refname, &new, &tip]);
        }
    }
}

/// A commit on `parent` with `files` replaced, as GitHub's web-flow makes it.
pub(crate) fn write_commit(
    repo: &Path,
    parent: &str,
    files: &[(String, Vec<u8>)],
    message: &str,
) -> String {
    let index: PathBuf = std::env::temp_dir().join(format!(
        "fake-github-index-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let with_index = |args: &[&str], input: Option<&[u8]>| -> String {
        let mut child = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .env("GIT_INDEX_FILE", &index)
            .env("GIT_AUTHOR_NAME", "web-flow")
            .env("GIT_AUTHOR_EMAIL", "noreply@github.com")
            .env("GIT_COMMITTER_NAME", "GitHub")
            .env("GIT_COMMITTER_EMAIL", "noreply@github.com")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("git");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.unwrap_or_default())
            .unwrap();
        let out = child.wait_with_output().expect("git");
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    with_index(&["read-tree", parent], None);
    for (path, bytes) in files {
        let blob = with_index(&["hash-object", "-w", "--stdin"], Some(bytes));
        with_index(
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{blob},{path}"),
            ],
            None,
        );
    }
    let tree = with_index(&["write-tree"], None);
    let commit = with_index(
        &["commit-tree", &tree, "-p", parent, "-F", "-"],
        Some(message.as_bytes()),
    );
    let _ = std::fs::remove_file(&index);
    commit
}
