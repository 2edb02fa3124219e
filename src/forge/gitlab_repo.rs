//! Reading and committing through GitLab's REST API (`--via api`), no clone:
//!
//! - tips: `GET /projects/:id` (default branch), `GET …/repository/branches/:b`;
//! - files: GraphQL `repository.blobs(ref:, paths:)`, fifty per query (for a
//!   project named by path), else `GET …/repository/files/:path?ref=` each;
//!   scans list `…/repository/tree?recursive=true` page by page; a changed
//!   file's `last_commit_id` comes from the files endpoint;
//! - writes: `POST …/repository/commits` with `actions[]`, all landing as one
//!   commit or none. Each `update` action carries the file's
//!   `last_commit_id`, so a file changed since it was read is refused (400,
//!   "the file has changed"): a retry on the new tip. A review branch is
//!   reset with `start_sha` + `force`.
//!
//! GitLab has no compare-and-swap on a branch: the review branch's tip is
//! checked immediately before the commit, which leaves a window of one
//! request in which another writer's commit to the *review branch* could be
//! replaced (README). On the base, `last_commit_id` protects every file this
//! run writes, so nothing another writer changed is lost.

use std::cell::RefCell;
use std::collections::HashMap;

use anyhow::Result;
use base64::Engine as _;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::api::{Api, NO_BODY};
use super::{api_error, Connection, Kind};
use crate::error::{Failure, Kind as ErrorKind};
use crate::http::Response;
use crate::signing::Signer;
use crate::targets::{FileEdit, SourceFile};
use crate::update::transport::{Change, Naming, Tips, Transport, Written, YamlFiles};

#[derive(Deserialize)]
struct Branch {
    commit: CommitInfo,
}

#[derive(Deserialize, Clone)]
struct CommitInfo {
    id: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    parent_ids: Vec<String>,
}

/// One entry of a `repository/tree` listing.
#[derive(Deserialize)]
struct TreeEntry {
    path: String,
    #[serde(rename = "type")]
    kind: String,
    mode: String,
}

/// A symbolic link's mode, as GitLab writes it.
const SYMLINK_MODE: &str = "120000";

#[derive(Clone)]
enum Entry {
    /// `last_commit`: known when read through REST.
    Text {
        text: String,
        last_commit: Option<String>,
    },
    Binary,
    /// A symbolic link, and where it points.
    Symlink(String),
    Missing,
}

/// Blobs read per GraphQL query.
const BATCH: usize = 50;

const BLOBS: &str = "query TagbumpBlobs($fullPath: ID!, $ref: String!, $paths: [String!]!) {
  project(fullPath: $fullPath) {
    repository { blobs(ref: $ref, paths: $paths) { nodes { path mode rawTextBlob } } }
  }
}";

/// The GraphQL document this client sends (fields from GitLab's GraphQL
/// reference: `Repository.blobs(ref, paths)`, `RepositoryBlob.rawTextBlob`).
pub fn documents() -> Vec<(&'static str, String)> {
    vec![("TagbumpBlobs", BLOBS.to_string())]
}

pub struct GitLabRepo {
    api: Api,
    /// `group/project` when the project is named by path (GraphQL needs it).
    full_path: Option<String>,
    /// Set when the GraphQL endpoint answered 404: REST reads from then on.
    graphql_off: std::cell::Cell<bool>,
    project: String,
    url: String,
    commits: RefCell<HashMap<String, CommitInfo>>,
    entries: RefCell<HashMap<(String, String), Entry>>,
    /// `--via auto`: scans of more YAML files than this go to git.
    scan_limit: Option<usize>,
}

impl GitLabRepo {
    pub fn new(conn: &Connection) -> Result<GitLabRepo> {
        Ok(GitLabRepo {
            api: Api::new(conn)?,
            full_path: conn.project.contains('/').then(|| conn.project.clone()),
            graphql_off: std::cell::Cell::new(false),
            project: super::percent_encode(&conn.project, false),
            url: format!("GitLab project {}", conn.project),
            commits: RefCell::new(HashMap::new()),
            entries: RefCell::new(HashMap::new()),
            scan_limit: None,
        })
    }

    /// Refuse (with [`TooManyForTheApi`]) a scan listing more YAML files.
    pub fn scan_limit(mut self, limit: Option<usize>) -> Self {
        self.scan_limit = limit;
        self
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Response> {
        let path = format!("/projects/{}{path}", self.project);
        self.api.send_now(method, &path, body)
    }

    /// A branch's tip, or `None` when there is no such branch.
    fn branch(&self, name: &str) -> Result<Option<CommitInfo>> {
        let path = format!(
            "/repository/branches/{}",
            super::percent_encode(name, false)
        );
        let response = self.send(Method::GET, &path, NO_BODY)?;
        if response.status == 404 && response.body.contains("Branch Not Found") {
            return Ok(None);
        }
        let branch: Branch =
            response.answer(Kind::GitLab, &format!("GitLab GET branch `{name}`"))?;
        self.commits
            .borrow_mut()
            .insert(branch.commit.id.clone(), branch.commit.clone());
        Ok(Some(branch.commit))
    }

    /// Read these files through GraphQL, fifty per query, where the project
    /// is named by path; the rest is read one by one by [`Self::entry`].
    fn fetch(&self, commit: &str, paths: &[&str]) -> Result<()> {
        let Some(full_path) = self.full_path.as_ref().filter(|_| !self.graphql_off.get()) else {
            return Ok(());
        };
        let missing: Vec<&str> = {
            let known = self.entries.borrow();
            let mut out: Vec<&str> = Vec::new();
            for p in paths {
                if !known.contains_key(&(commit.to_string(), p.to_string())) && !out.contains(p) {
                    out.push(p);
                }
            }
            out
        };
        // One path too: the GraphQL answer has the mode, which tells a
        // symlink from a file (the REST files endpoint does not).
        if missing.is_empty() {
            return Ok(());
        }
        #[derive(Deserialize)]
        struct Node {
            path: String,
            #[serde(default)]
            mode: Option<String>,
            #[serde(rename = "rawTextBlob")]
            raw_text_blob: Option<String>,
        }
        #[derive(Deserialize)]
        struct Nodes {
            nodes: Vec<Node>,
        }
        #[derive(Deserialize)]
        struct Repository {
            blobs: Nodes,
        }
        #[derive(Deserialize)]
        struct Project {
            repository: Repository,
        }
        #[derive(Deserialize)]
        struct Data {
            project: Option<Project>,
        }
        #[derive(Deserialize)]
        struct Answer {
            data: Option<Data>,
        }
        let graphql = format!("{}/graphql", self.api.base().trim_end_matches("/v4"));
        for chunk in missing.chunks(BATCH) {
            let body = json!({
                "query": BLOBS,
                "operationName": "TagbumpBlobs",
                "variables": {"fullPath": full_path, "ref": commit, "paths": chunk},
            });
            let response = self.api.send_now(Method::POST, &graphql, Some(&body))?;
            // The REST calls before this one worked: a GraphQL endpoint that
            // is not there (turned off, or not passed by a proxy) is not a
            // wrong project path. Read through REST instead.
            if response.status == 404 {
                if !self.graphql_off.replace(true) {
                    crate::note!(
                        "note: {graphql} answered 404: GraphQL is unavailable on this instance; \
                         reading files through the REST API instead"
                    );
                }
                return Ok(());
            }
            let answer: Answer = response.answer(Kind::GitLab, "GitLab GraphQL TagbumpBlobs")?;
            let Some(project) = answer.data.and_then(|d| d.project) else {
                // Not visible through GraphQL: the REST reads will say why.
                return Ok(());
            };
            let mut entries = self.entries.borrow_mut();
            for path in chunk {
                let node = project
                    .repository
                    .blobs
                    .nodes
                    .iter()
                    .find(|n| n.path == *path);
                let entry = match node {
                    Some(Node {
                        mode: Some(mode),
                        raw_text_blob,
                        ..
                    }) if mode == SYMLINK_MODE => {
                        Entry::Symlink(raw_text_blob.clone().unwrap_or_default())
                    }
                    Some(Node {
                        raw_text_blob: Some(text),
                        ..
                    }) => Entry::Text {
                        text: text.clone(),
                        last_commit: None,
                    },
                    Some(_) => Entry::Binary,
                    None => Entry::Missing,
                };
                entries.insert((commit.to_string(), path.to_string()), entry);
            }
        }
        Ok(())
    }

    /// Whether `path` is a symlink, from its directory's REST listing: for
    /// a project named by id, read without GraphQL (whose blobs say it).
    fn rest_is_symlink(&self, commit: &str, path: &str) -> Result<bool> {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let mut page = "1".to_string();
        loop {
            let Some((entries, next)) = self.tree_page(commit, dir, false, &page, true)? else {
                return Ok(false);
            };
            if let Some(e) = entries.iter().find(|e| e.path == path) {
                return Ok(e.mode == SYMLINK_MODE);
            }
            match next {
                Some(next) => page = next,
                None => return Ok(false),
            }
        }
    }

    /// One page of `repository/tree` at `commit` under `dir` (recursive or
    /// not): its entries and the next page's number. `None` for a 404 when
    /// `missing_ok` (no such directory), else the 404 is an error.
    fn tree_page(
        &self,
        commit: &str,
        dir: &str,
        recursive: bool,
        page: &str,
        missing_ok: bool,
    ) -> Result<Option<(Vec<TreeEntry>, Option<String>)>> {
        let mut request = format!("/repository/tree?ref={commit}&per_page=100&page={page}");
        if recursive {
            request.push_str("&recursive=true");
        }
        if !dir.is_empty() {
            request.push_str(&format!("&path={}", super::percent_encode(dir, false)));
        }
        let response = self.send(Method::GET, &request, NO_BODY)?;
        if response.status == 404 && missing_ok {
            return Ok(None);
        }
        let entries: Vec<TreeEntry> = response.answer(Kind::GitLab, "GitLab GET tree")?;
        let next = response
            .header("x-next-page")
            .filter(|p| !p.is_empty())
            .map(String::from);
        Ok(Some((entries, next)))
    }

    fn entry(&self, commit: &str, path: &str) -> Result<Entry> {
        let key = (commit.to_string(), path.to_string());
        if let Some(entry) = self.entries.borrow().get(&key) {
            return Ok(entry.clone());
        }
        #[derive(Deserialize)]
        struct File {
            content: String,
            last_commit_id: String,
        }
        let request = format!(
            "/repository/files/{}?ref={commit}",
            super::percent_encode(path, false)
        );
        let response = self.send(Method::GET, &request, NO_BODY)?;
        let entry = if response.status == 404 {
            Entry::Missing
        } else {
            let file: File = response.answer(Kind::GitLab, &format!("GitLab GET file `{path}`"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(file.content.replace('\n', ""))
                .map_err(|e| {
                    Failure::new(
                        ErrorKind::Remote,
                        format!("GitLab sent `{path}` in a form tagbump cannot read"),
                    )
                    .with_source(e)
                })?;
            match String::from_utf8(bytes) {
                Ok(text) => Entry::Text {
                    text,
                    last_commit: Some(file.last_commit_id),
                },
                Err(_) => Entry::Binary,
            }
        };
        self.entries.borrow_mut().insert(key, entry.clone());
        Ok(entry)
    }
}

/// Whether GitLab's 400 on a commit means "someone changed it meanwhile".
fn stale(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "has changed since",
        "already exists",
        "doesn't exist",
        "does not exist",
        "could not update",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// Whether GitLab refused a commit by policy (push rules, protected branches).
fn declined(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "push rule",
        "protected branch",
        "not allowed to push",
        "pre-receive hook",
        "rejected",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

impl Transport for GitLabRepo {
    fn url(&self) -> &str {
        &self.url
    }

    fn signs_with_key(&self) -> bool {
        false
    }

    fn requests(&self) -> usize {
        self.api.requests()
    }

    fn tips(&mut self, naming: &Naming<'_>) -> Result<Option<Tips>> {
        #[derive(Deserialize)]
        struct Project {
            default_branch: Option<String>,
        }
        crate::interrupt::stage(format!("reading the branches of {}", self.url));
        let base = match &naming.spec.base {
            Some(base) => base.clone(),
            None => {
                let project: Project = self
                    .send(Method::GET, "", NO_BODY)?
                    .answer(Kind::GitLab, "GitLab GET project")?;
                project.default_branch.ok_or_else(|| {
                    Failure::new(ErrorKind::NotFound, format!("{} has no branches", self.url))
                        .hint("push an initial commit first")
                })?
            }
        };
        let Some(base_commit) = self.branch(&base)? else {
            return Err(Failure::new(
                ErrorKind::NotFound,
                format!("branch `{base}` does not exist on {}", self.url),
            )
            .hint("pass --base with an existing branch")
            .into());
        };
        let branch = (naming.branch)(&base);
        if branch == base {
            return Ok(Some(Tips {
                base_tip: base_commit.id.clone(),
                base,
                branch,
                branch_tip: Some(base_commit.id),
                legacy_exists: false,
            }));
        }
        let branch_tip = self.branch(&branch)?.map(|c| c.id);
        // The old name is only asked about where its note could be given.
        let legacy = (naming.legacy)(&base);
        let legacy_exists = branch_tip.is_none()
            && naming.spec.branch.is_none()
            && legacy != branch
            && self.branch(&legacy)?.is_some();
        Ok(Some(Tips {
            base_tip: base_commit.id,
            base,
            branch,
            branch_tip,
            legacy_exists,
        }))
    }

    fn prefetch(&self, commit: &str, paths: &[&str]) -> Result<()> {
        self.fetch(commit, paths)
    }

    fn read_file(&self, commit: &str, path: &str) -> Result<Option<String>> {
        self.fetch(commit, &[path])?;
        let read_by_rest = self.full_path.is_none() || self.graphql_off.get();
        if read_by_rest && self.rest_is_symlink(commit, path)? {
            // The files endpoint gives a link's target as its content.
            let to = match self.entry(commit, path)? {
                Entry::Text { text, .. } => text,
                _ => String::new(),
            };
            return Err(crate::targets::symlink_refused(path, &to));
        }
        match self.entry(commit, path)? {
            Entry::Text { text, .. } => Ok(Some(text)),
            Entry::Symlink(to) => Err(crate::targets::symlink_refused(path, &to)),
            Entry::Missing => Ok(None),
            Entry::Binary => {
                Err(Failure::new(ErrorKind::Input, format!("{path}: not UTF-8 text")).into())
            }
        }
    }

    fn is_directory(&self, commit: &str, path: &str) -> Result<bool> {
        let request = format!(
            "/repository/tree?ref={commit}&path={}&per_page=1",
            super::percent_encode(path, false)
        );
        let response = self.send(Method::GET, &request, NO_BODY)?;
        if response.status == 404 {
            return Ok(false);
        }
        let entries: Vec<Value> = response.answer(Kind::GitLab, "GitLab GET tree")?;
        Ok(!entries.is_empty())
    }

    fn yaml_files(&self, commit: &str, dir: &str) -> Result<YamlFiles> {
        let dir = dir.trim_matches('/');
        let mut paths = Vec::new();
        let mut page = "1".to_string();
        loop {
            let (entries, next) = self
                .tree_page(commit, dir, true, &page, !dir.is_empty())?
                .unwrap_or_default();
            // No tree there (404, or an empty listing: git has no empty
            // directories): `--in` names one file, or nothing.
            if entries.is_empty() && page == "1" && !dir.is_empty() {
                return match self.entry(commit, dir)? {
                    Entry::Text { text, .. } => Ok(super::single_file(dir, Some(text))),
                    Entry::Binary => Ok(super::single_file(dir, None)),
                    Entry::Symlink(_) | Entry::Missing => {
                        Err(super::no_such_path(dir, commit, &self.url))
                    }
                };
            }
            paths.extend(
                entries
                    .into_iter()
                    .filter(|e| e.kind == "blob" && e.mode != SYMLINK_MODE)
                    // Hidden directories count below `--in`, as in a git scan.
                    .filter(|e| {
                        let below = e.path.strip_prefix(dir).unwrap_or(&e.path);
                        crate::targets::is_scanned_path(below.trim_start_matches('/'))
                    })
                    .map(|e| e.path),
            );
            // Stops listing as soon as the scan is too large for `auto`.
            super::check_scan_size(self.scan_limit, dir, paths.len())?;
            match next {
                Some(next) => page = next,
                None => break,
            }
        }
        let wanted: Vec<&str> = paths.iter().map(String::as_str).collect();
        self.fetch(commit, &wanted)?;
        let mut files = Vec::new();
        let mut unreadable = Vec::new();
        for path in paths {
            match self.entry(commit, &path)? {
                Entry::Text { text, .. } => files.push(SourceFile { path, text }),
                Entry::Binary => unreadable.push((path, "not UTF-8 text".to_string())),
                Entry::Symlink(_) | Entry::Missing => {}
            }
        }
        Ok((files, unreadable))
    }

    fn message_of(&self, commit: &str) -> Option<String> {
        self.commits.borrow().get(commit).map(|c| c.message.clone())
    }

    fn holds(
        &self,
        tip: &str,
        base_tip: &str,
        edits: &[FileEdit],
        _signer: Option<&Signer>,
    ) -> Result<bool> {
        let parent_is_base = self
            .commits
            .borrow()
            .get(tip)
            .is_some_and(|c| c.parent_ids == [base_tip]);
        if !parent_is_base {
            return Ok(false);
        }
        #[derive(Deserialize)]
        struct Diff {
            new_path: String,
        }
        let diff: Vec<Diff> = self
            .send(
                Method::GET,
                &format!("/repository/commits/{tip}/diff?per_page=100"),
                NO_BODY,
            )?
            .answer(Kind::GitLab, "GitLab GET commit diff")?;
        let mut changed: Vec<&str> = edits
            .iter()
            .filter(|e| e.changed())
            .map(|e| e.path.as_str())
            .collect();
        let mut touched: Vec<&str> = diff.iter().map(|d| d.new_path.as_str()).collect();
        changed.sort_unstable();
        touched.sort_unstable();
        if changed != touched {
            return Ok(false);
        }
        for edit in edits.iter().filter(|e| e.changed()) {
            if self.read_file(tip, &edit.path)?.as_deref() != Some(edit.new.as_str()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn write(&mut self, change: &Change<'_>) -> Result<Written> {
        if change.dry_run {
            return Ok(Written::DryRun(None));
        }
        let mut actions = Vec::new();
        for edit in change.edits.iter().filter(|e| e.changed()) {
            let content = base64::engine::general_purpose::STANDARD.encode(edit.new.as_bytes());
            let mut entry = self.entry(change.base_tip, &edit.path)?;
            if let Entry::Text {
                last_commit: None, ..
            } = entry
            {
                // Read through GraphQL: the REST read gives the last commit.
                self.entries
                    .borrow_mut()
                    .remove(&(change.base_tip.to_string(), edit.path.clone()));
                entry = self.entry(change.base_tip, &edit.path)?;
            }
            let (action, last_commit_id) = match entry {
                Entry::Text { last_commit, .. } => ("update", last_commit),
                Entry::Binary => ("update", None),
                Entry::Missing => ("create", None),
                Entry::Symlink(to) => return Err(crate::targets::symlink_refused(&edit.path, &to)),
            };
            let action = Action {
                action,
                file_path: &edit.path,
                content,
                encoding: "base64",
                last_commit_id,
            };
            actions.push(action);
        }
        let mut body = NewCommit {
            branch: change.branch,
            commit_message: change.message,
            actions,
            author_name: change.author.name().unwrap_or("tagbump"),
            author_email: change.author.email().unwrap_or("tagbump@localhost"),
            start_sha: None,
            force: None,
        };
        if change.review {
            // No compare-and-swap on branches: the lease is checked right
            // before the commit that replaces the branch.
            let now = self.branch(change.branch)?.map(|c| c.id);
            if now.as_deref() != change.branch_tip {
                return Ok(Written::Stale(format!(
                    "`{}` moved since it was read",
                    change.branch
                )));
            }
            body.start_sha = Some(change.base_tip);
            body.force = Some(true);
        }
        crate::interrupt::stage(format!("committing to `{}` on {}", change.branch, self.url));
        let response = self.send(Method::POST, "/repository/commits", Some(&body))?;
        #[derive(Deserialize)]
        struct Created {
            id: String,
        }
        match response.status {
            200..=299 => {
                let created: Created = response.parse("GitLab POST commits")?;
                Ok(Written::Pushed(created.id))
            }
            400 | 409 => {
                let message = crate::secret::scrub(
                    &response
                        .error_message()
                        .unwrap_or_else(|| response.body.clone()),
                );
                if declined(&message) {
                    Ok(Written::Declined(format!(
                        "{} declined the commit to `{}`: {message}",
                        self.url, change.branch
                    )))
                } else if stale(&message) {
                    Ok(Written::Stale(format!(
                        "a file changed on `{}` since it was read ({message})",
                        change.branch
                    )))
                } else {
                    Err(api_error(Kind::GitLab, "GitLab POST commits", &response))
                }
            }
            // "You are not allowed to push into this branch": the branch is
            // protected, which is a declined push (exit 9) in the server's
            // words; a 403 for a token's scope stays an auth error.
            403 => {
                let message = crate::secret::scrub(
                    &response
                        .error_message()
                        .unwrap_or_else(|| response.body.clone()),
                );
                if declined(&message) {
                    Ok(Written::Declined(format!(
                        "{} declined the commit to `{}`: {message}",
                        self.url, change.branch
                    )))
                } else {
                    Err(api_error(Kind::GitLab, "GitLab POST commits", &response))
                }
            }
            _ => Err(api_error(Kind::GitLab, "GitLab POST commits", &response)),
        }
    }
}

/// `POST /projects/:id/repository/commits`.
#[derive(Debug, Serialize)]
struct NewCommit<'a> {
    branch: &'a str,
    commit_message: &'a str,
    actions: Vec<Action<'a>>,
    author_name: &'a str,
    author_email: &'a str,
    /// A review branch is created (or replaced, with `force`) from here.
    #[serde(skip_serializing_if = "Option::is_none")]
    start_sha: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    force: Option<bool>,
}

/// One file of a commit; `last_commit_id` makes GitLab refuse the update
/// when the file changed since that commit.
#[derive(Debug, Serialize)]
struct Action<'a> {
    action: &'static str,
    file_path: &'a str,
    content: String,
    encoding: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_commit_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart() {
        assert!(stale(
            "The file has changed since you started editing it: a.yaml"
        ));
        assert!(stale("A file with this name already exists"));
        assert!(declined(
            "Push rule violation: committer email not verified"
        ));
        assert!(!stale("You are not allowed to push into this branch"));
        assert!(declined("You are not allowed to push into this branch"));
    }
}
