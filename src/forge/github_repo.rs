//! Reading and committing through GitHub's API instead of git (`--via api`):
//! a few requests whatever the repository's size, and commits GitHub signs
//! itself (shown as Verified), which satisfies "require signed commits".
//!
//! - tips: one GraphQL query (two for a review branch);
//! - files: GraphQL `object(expression: "<commit>:<path>")`, many per query;
//!   image scans list the tree once (REST `git/trees?recursive=1`);
//! - writes: `createCommitOnBranch` with `expectedHeadOid` (a stale head
//!   answers HTTP 200 with an error of type `STALE_DATA`: try again); a
//!   review branch is created or reset first with `updateRefs`, whose
//!   `beforeOid` is the lease (all zeros: it must not exist).
//!
//! The documents are fixed ([`DOCUMENTS`]) and validated against GitHub's
//! published schema by the test suite.

use std::cell::RefCell;
use std::collections::HashMap;

use anyhow::Result;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::Api;
use super::{api_error, Connection, Kind};
use crate::error::{Failure, Kind as ErrorKind};
use crate::http::Response;
use crate::signing::Signer;
use crate::targets::{FileEdit, SourceFile};
use crate::update::transport::{Change, Naming, Tips, Transport, Written, YamlFiles};

const ZERO: &str = "0000000000000000000000000000000000000000";
/// Blobs read per GraphQL query.
const BATCH: usize = 100;

const TIPS: &str =
    "query TagbumpTips($owner: String!, $name: String!, $base: String!, $hasBase: Boolean!) {
  repository(owner: $owner, name: $name) {
    id
    defaultBranchRef { name target { oid ... on Commit { message } } }
    base: ref(qualifiedName: $base) @include(if: $hasBase) { name target { oid ... on Commit { message } } }
  }
}";

const BRANCH: &str = "query TagbumpBranch($owner: String!, $name: String!, $branch: String!, $legacy: String!) {
  repository(owner: $owner, name: $name) {
    branch: ref(qualifiedName: $branch) {
      target { oid ... on Commit { message changedFilesIfAvailable parents(first: 2) { nodes { oid } } } }
    }
    legacy: ref(qualifiedName: $legacy) { name }
  }
}";

const RESET_BRANCH: &str = "mutation TagbumpResetBranch($repo: ID!, $name: GitRefname!, $before: GitObjectID!, $after: GitObjectID!) {
  updateRefs(input: {repositoryId: $repo, refUpdates: [{name: $name, beforeOid: $before, afterOid: $after, force: true}]}) {
    clientMutationId
  }
}";

const COMMIT: &str = "mutation TagbumpCommit($input: CreateCommitOnBranchInput!) {
  createCommitOnBranch(input: $input) { commit { oid } }
}";

/// The batch read of `n` paths (`$p0` … as `f0` …) at `$commit`: each
/// path's tree entry — its mode tells a symlink (120000) from a file — and
/// its blob's text, or its tree's oid.
fn files_document(n: usize) -> String {
    let vars: Vec<String> = (0..n).map(|i| format!("$p{i}: String!")).collect();
    let fields: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "        f{i}: file(path: $p{i}) {{ mode object {{ __typename ... on Blob {{ text isBinary byteSize }} ... on Tree {{ oid }} }} }}"
            )
        })
        .collect();
    format!(
        "query TagbumpFiles($owner: String!, $name: String!, $commit: GitObjectID!, {}) {{\n  repository(owner: $owner, name: $name) {{\n    object(oid: $commit) {{\n      ... on Commit {{\n{}\n      }}\n    }}\n  }}\n}}",
        vars.join(", "),
        fields.join("\n")
    )
}

/// `TagbumpFiles`' answer: the commit's `f0` … entries.
#[derive(Deserialize)]
struct FilesData {
    repository: FilesRepository,
}

#[derive(Deserialize)]
struct FilesRepository {
    object: Option<HashMap<String, Option<FileEntry>>>,
}

#[derive(Deserialize)]
struct FileEntry {
    mode: u32,
    object: Option<GitObject>,
}

/// The `Blob | Tree` union (and the other `GitObject`s, unused).
#[derive(Deserialize)]
#[serde(tag = "__typename")]
enum GitObject {
    Blob {
        text: Option<String>,
        #[serde(rename = "isBinary", default)]
        is_binary: Option<bool>,
    },
    Tree {
        oid: String,
    },
    #[serde(other)]
    Other,
}

/// A symbolic link's mode in a git tree (`0o120000`).
const SYMLINK_MODE: u32 = 0o120_000;

impl FileEntry {
    fn entry(self) -> Entry {
        match self.object {
            Some(GitObject::Blob { text, .. }) if self.mode == SYMLINK_MODE => {
                Entry::Symlink(text.unwrap_or_default())
            }
            Some(GitObject::Blob {
                is_binary: Some(true),
                ..
            })
            | Some(GitObject::Blob { text: None, .. }) => Entry::Binary,
            Some(GitObject::Blob {
                text: Some(text), ..
            }) => Entry::Text(text),
            Some(GitObject::Tree { oid }) => Entry::Tree(oid),
            Some(GitObject::Other) | None => Entry::Missing,
        }
    }
}

/// Every GraphQL document this client sends (the batch read with two
/// expressions), for validation against GitHub's schema.
pub fn documents() -> Vec<(&'static str, String)> {
    vec![
        ("TagbumpTips", TIPS.to_string()),
        ("TagbumpBranch", BRANCH.to_string()),
        ("TagbumpFiles", files_document(2)),
        ("TagbumpResetBranch", RESET_BRANCH.to_string()),
        ("TagbumpCommit", COMMIT.to_string()),
    ]
}

#[derive(Deserialize)]
struct GraphQl<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Vec<GraphQlError>,
}

#[derive(Debug, Deserialize)]
struct GraphQlError {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct Target {
    oid: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "changedFilesIfAvailable")]
    changed_files: Option<u64>,
    #[serde(default)]
    parents: Option<Nodes>,
}

#[derive(Deserialize)]
struct Nodes {
    nodes: Vec<Oid>,
}

#[derive(Deserialize)]
struct Oid {
    oid: String,
}

#[derive(Deserialize)]
struct Ref {
    target: Target,
}

/// What is known of the review branch's tip.
struct TipInfo {
    parent: Option<String>,
    changed_files: Option<u64>,
}

/// One blob, tree, or nothing at an expression.
#[derive(Debug, Clone)]
enum Entry {
    Text(String),
    Binary,
    /// A directory, and its tree's oid.
    Tree(String),
    /// A symbolic link, and where it points.
    Symlink(String),
    Missing,
}

pub struct GitHubRepo {
    api: Api,
    graphql: String,
    owner: String,
    name: String,
    url: String,
    repository_id: RefCell<Option<String>>,
    messages: RefCell<HashMap<String, String>>,
    tip_info: RefCell<HashMap<String, TipInfo>>,
    entries: RefCell<HashMap<(String, String), Entry>>,
    /// `--via auto`: scans of more YAML files than this go to git.
    scan_limit: Option<usize>,
}

impl GitHubRepo {
    pub fn new(conn: &Connection) -> Result<GitHubRepo> {
        let (owner, name) = conn.project.split_once('/').ok_or_else(|| {
            Failure::new(
                ErrorKind::Usage,
                format!("`{}` is not OWNER/REPO", conn.project),
            )
            .hint("pass --project OWNER/REPO")
        })?;
        let api = Api::new(conn)?;
        Ok(GitHubRepo {
            graphql: super::github::graphql_url(api.base()),
            url: format!("GitHub {}/{}", owner, name.trim_end_matches(".git")),
            api,
            owner: owner.to_string(),
            name: name.trim_end_matches(".git").to_string(),
            repository_id: RefCell::new(None),
            messages: RefCell::new(HashMap::new()),
            tip_info: RefCell::new(HashMap::new()),
            entries: RefCell::new(HashMap::new()),
            scan_limit: None,
        })
    }

    /// Refuse (with [`TooManyForTheApi`]) a scan listing more YAML files.
    pub fn scan_limit(mut self, limit: Option<usize>) -> Self {
        self.scan_limit = limit;
        self
    }

    fn send(&self, method: reqwest::Method, url: &str, body: Option<&Value>) -> Result<Response> {
        self.api.send_now(method, url, body)
    }

    /// A GraphQL operation: its data and errors (HTTP errors are errors).
    fn graphql<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        query: &str,
        variables: Value,
    ) -> Result<(Option<T>, Vec<GraphQlError>)> {
        let body = json!({"query": query, "operationName": operation, "variables": variables});
        let response = self.send(reqwest::Method::POST, &self.graphql, Some(&body))?;
        let what = format!("GitHub GraphQL {operation}");
        if !response.ok() {
            return Err(api_error(Kind::GitHub, &what, &response));
        }
        let answer: GraphQl<T> = response.parse(&what)?;
        Ok((answer.data, answer.errors))
    }

    /// Fail on errors of a query (reads never have expected errors).
    fn data<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        query: &str,
        variables: Value,
    ) -> Result<T> {
        let (data, errors) = self.graphql::<T>(operation, query, variables)?;
        if let Some(e) = errors.first() {
            return Err(graphql_failure(operation, e, &self.url));
        }
        data.ok_or_else(|| {
            Failure::new(
                ErrorKind::Remote,
                format!("GitHub GraphQL {operation} answered no data"),
            )
            .into()
        })
    }

    fn base_vars(&self) -> serde_json::Map<String, Value> {
        let mut vars = serde_json::Map::new();
        vars.insert("owner".into(), json!(self.owner));
        vars.insert("name".into(), json!(self.name));
        vars
    }

    /// Read the entries at `commit` for `paths` that are not known yet.
    fn fetch(&self, commit: &str, paths: &[&str]) -> Result<()> {
        let missing: Vec<&str> = {
            let known = self.entries.borrow();
            let mut seen = Vec::new();
            for p in paths {
                if !known.contains_key(&(commit.to_string(), p.to_string())) && !seen.contains(p) {
                    seen.push(*p);
                }
            }
            seen
        };
        for chunk in missing.chunks(BATCH) {
            let mut vars = self.base_vars();
            vars.insert("commit".into(), json!(commit));
            for (i, path) in chunk.iter().enumerate() {
                vars.insert(format!("p{i}"), json!(path));
            }
            let data: FilesData = self.data(
                "TagbumpFiles",
                &files_document(chunk.len()),
                Value::Object(vars),
            )?;
            let mut found = data.repository.object.unwrap_or_default();
            let mut entries = self.entries.borrow_mut();
            for (i, path) in chunk.iter().enumerate() {
                let entry = found
                    .remove(&format!("f{i}"))
                    .flatten()
                    .map_or(Entry::Missing, FileEntry::entry);
                entries.insert((commit.to_string(), path.to_string()), entry);
            }
        }
        Ok(())
    }

    fn entry(&self, commit: &str, path: &str) -> Result<Entry> {
        self.fetch(commit, &[path])?;
        Ok(self
            .entries
            .borrow()
            .get(&(commit.to_string(), path.to_string()))
            .cloned()
            .unwrap_or(Entry::Missing))
    }

    /// The review branch's tip (its message, parent and changed-file count
    /// kept for the lease and "already holds it"), and whether the branch
    /// under tagbump 0.1's name exists.
    fn review_branch(&self, branch: &str, legacy: &str) -> Result<(Option<String>, bool)> {
        #[derive(Deserialize)]
        struct BranchRepository {
            branch: Option<Ref>,
            legacy: Option<Value>,
        }
        #[derive(Deserialize)]
        struct BranchData {
            repository: BranchRepository,
        }
        let mut vars = self.base_vars();
        vars.insert("branch".into(), json!(format!("refs/heads/{branch}")));
        vars.insert("legacy".into(), json!(format!("refs/heads/{legacy}")));
        let data: BranchData = self.data("TagbumpBranch", BRANCH, Value::Object(vars))?;
        let branch_tip = data.repository.branch.map(|r| {
            let t = r.target;
            if let Some(message) = t.message {
                self.messages.borrow_mut().insert(t.oid.clone(), message);
            }
            self.tip_info.borrow_mut().insert(
                t.oid.clone(),
                TipInfo {
                    parent: t
                        .parents
                        .and_then(|p| p.nodes.into_iter().next())
                        .map(|n| n.oid),
                    changed_files: t.changed_files,
                },
            );
            t.oid
        });
        Ok((
            branch_tip,
            data.repository.legacy.is_some_and(|l| !l.is_null()),
        ))
    }

    /// The review branch at the base, under the lease: created if absent,
    /// reset if it is still the tip the lease was checked on. `Some`: the
    /// branch moved (or the reset was refused) and nothing was committed.
    fn reset_branch(&self, change: &Change<'_>, repository: &str) -> Result<Option<Written>> {
        // The branch at the base, under the lease: created if absent,
        // reset if it is still the tip the lease was checked on.
        crate::interrupt::stage(format!("resetting `{}` on {}", change.branch, self.url));
        let vars = json!({
            "repo": repository,
            "name": format!("refs/heads/{}", change.branch),
            "before": change.branch_tip.unwrap_or(ZERO),
            "after": change.base_tip,
        });
        let (_, errors) = self.graphql::<Value>("TagbumpResetBranch", RESET_BRANCH, vars)?;
        if let Some(e) = errors.first() {
            if matches!(
                e.kind.as_deref(),
                Some("FORBIDDEN" | "NOT_FOUND" | "INSUFFICIENT_SCOPES")
            ) {
                return Err(graphql_failure("TagbumpResetBranch", e, &self.url));
            }
            return Ok(Some(Written::Stale(format!(
                "`{}` moved while it was being reset ({})",
                change.branch,
                crate::secret::scrub(&e.message)
            ))));
        }
        Ok(None)
    }

    fn repository_id(&self) -> Result<String> {
        self.repository_id.borrow().clone().ok_or_else(|| {
            Failure::new(
                ErrorKind::Internal,
                "the repository id was not read before writing",
            )
            .into()
        })
    }
}

fn graphql_failure(operation: &str, e: &GraphQlError, url: &str) -> anyhow::Error {
    let message = crate::secret::scrub(&e.message);
    let (kind, hint) = match e.kind.as_deref() {
        Some("NOT_FOUND") => (
            ErrorKind::NotFound,
            "check the repository (--project OWNER/REPO) and that the token can see it",
        ),
        Some("FORBIDDEN") | Some("INSUFFICIENT_SCOPES") => (
            ErrorKind::Auth,
            "the token needs `contents: write` on the repository (or the `repo` scope for a classic token)",
        ),
        _ => (ErrorKind::Remote, "see the message from GitHub"),
    };
    Failure::new(kind, format!("{url}: GraphQL {operation}: {message}"))
        .hint(hint)
        .into()
}

impl Transport for GitHubRepo {
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
        struct Named {
            name: String,
            target: Target,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Repository {
            id: String,
            default_branch_ref: Option<Named>,
            #[serde(default)]
            base: Option<Named>,
        }
        #[derive(Deserialize)]
        struct Data {
            repository: Option<Repository>,
        }
        crate::interrupt::stage(format!("reading the branches of {}", self.url));
        let mut vars = self.base_vars();
        let asked = naming.spec.base.clone();
        vars.insert(
            "base".into(),
            json!(format!("refs/heads/{}", asked.clone().unwrap_or_default())),
        );
        vars.insert("hasBase".into(), json!(asked.is_some()));
        let data: Data = self.data("TagbumpTips", TIPS, Value::Object(vars))?;
        let Some(repository) = data.repository else {
            return Err(
                Failure::new(ErrorKind::NotFound, format!("{} does not exist", self.url))
                    .hint(
                        "check the repository (--project OWNER/REPO) and that the token can see it",
                    )
                    .into(),
            );
        };
        *self.repository_id.borrow_mut() = Some(repository.id.clone());
        let (base, base_tip) = match (asked, repository.base, repository.default_branch_ref) {
            (Some(_), Some(b), _) | (None, _, Some(b)) => {
                // Kept: a commit whose answer was lost is recognised by it.
                if let Some(message) = b.target.message {
                    self.messages
                        .borrow_mut()
                        .insert(b.target.oid.clone(), message);
                }
                (b.name, b.target.oid)
            }
            (Some(name), None, _) => {
                return Err(Failure::new(
                    ErrorKind::NotFound,
                    format!("branch `{name}` does not exist on {}", self.url),
                )
                .hint("pass --base with an existing branch")
                .into())
            }
            (None, _, None) => {
                return Err(Failure::new(
                    ErrorKind::NotFound,
                    format!("{} has no branches", self.url),
                )
                .hint("push an initial commit first")
                .into())
            }
        };
        let branch = (naming.branch)(&base);
        if branch == base {
            return Ok(Some(Tips {
                base_tip: base_tip.clone(),
                base,
                branch,
                branch_tip: Some(base_tip),
                legacy_exists: false,
            }));
        }
        let (branch_tip, legacy_exists) = self.review_branch(&branch, &(naming.legacy)(&base))?;
        Ok(Some(Tips {
            base,
            base_tip,
            branch,
            branch_tip,
            legacy_exists,
        }))
    }

    fn prefetch(&self, commit: &str, paths: &[&str]) -> Result<()> {
        self.fetch(commit, paths)
    }

    fn read_file(&self, commit: &str, path: &str) -> Result<Option<String>> {
        match self.entry(commit, path)? {
            Entry::Text(text) => Ok(Some(text)),
            Entry::Missing | Entry::Tree(_) => Ok(None),
            Entry::Symlink(to) => Err(crate::targets::symlink_refused(path, &to)),
            Entry::Binary => {
                Err(Failure::new(ErrorKind::Input, format!("{path}: not UTF-8 text")).into())
            }
        }
    }

    fn is_directory(&self, commit: &str, path: &str) -> Result<bool> {
        Ok(matches!(self.entry(commit, path)?, Entry::Tree(_)))
    }

    fn yaml_files(&self, commit: &str, dir: &str) -> Result<YamlFiles> {
        #[derive(Deserialize)]
        struct TreeEntry {
            path: String,
            mode: String,
            #[serde(rename = "type")]
            kind: String,
        }
        #[derive(Deserialize)]
        struct Tree {
            tree: Vec<TreeEntry>,
            #[serde(default)]
            truncated: bool,
        }
        let dir = dir.trim_matches('/');
        // The tree to list: the commit's, or the directory's.
        let sha = if dir.is_empty() {
            commit.to_string()
        } else {
            match self.entry(commit, dir)? {
                Entry::Tree(oid) => oid,
                // `--in` naming one file: that file, as a git scan gives it
                // (a symlink is not followed, as git does not).
                Entry::Text(text) => return Ok(super::single_file(dir, Some(text))),
                Entry::Binary => return Ok(super::single_file(dir, None)),
                Entry::Symlink(_) | Entry::Missing => {
                    return Err(super::no_such_path(dir, commit, &self.url))
                }
            }
        };
        let url = format!(
            "{}/repos/{}/{}/git/trees/{sha}?recursive=1",
            self.api.base(),
            self.owner,
            self.name
        );
        let response = self.send(reqwest::Method::GET, &url, None)?;
        let tree: Tree = response.answer(Kind::GitHub, "GitHub GET git/trees")?;
        if tree.truncated {
            return Err(Failure::new(
                ErrorKind::Remote,
                format!(
                    "{}: the tree of `{}` is too large for one listing from GitHub's API",
                    self.url,
                    if dir.is_empty() { "/" } else { dir }
                ),
            )
            .hint("narrow the scan with --in DIR, or pass --via git")
            .into());
        }
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let paths: Vec<String> = tree
            .tree
            .into_iter()
            .filter(|e| e.kind == "blob" && e.mode != "120000")
            .filter(|e| crate::targets::is_scanned_path(&e.path))
            .map(|e| format!("{prefix}{}", e.path))
            .collect();
        super::check_scan_size(self.scan_limit, dir, paths.len())?;
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        self.fetch(commit, &refs)?;
        let entries = self.entries.borrow();
        let mut files = Vec::new();
        let mut unreadable = Vec::new();
        for path in paths {
            match entries.get(&(commit.to_string(), path.clone())) {
                Some(Entry::Text(text)) => files.push(SourceFile {
                    path,
                    text: text.clone(),
                }),
                Some(Entry::Binary) => unreadable.push((path, "not UTF-8 text".to_string())),
                _ => {}
            }
        }
        Ok((files, unreadable))
    }

    fn message_of(&self, commit: &str) -> Option<String> {
        self.messages.borrow().get(commit).cloned()
    }

    fn holds(
        &self,
        tip: &str,
        base_tip: &str,
        edits: &[FileEdit],
        _signer: Option<&Signer>,
    ) -> Result<bool> {
        let changed: Vec<&FileEdit> = edits.iter().filter(|e| e.changed()).collect();
        let same_shape = self.tip_info.borrow().get(tip).is_some_and(|info| {
            info.parent.as_deref() == Some(base_tip)
                && info.changed_files == Some(changed.len() as u64)
        });
        if !same_shape {
            return Ok(false);
        }
        let paths: Vec<&str> = changed.iter().map(|e| e.path.as_str()).collect();
        self.fetch(tip, &paths)?;
        for edit in changed {
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
        let repository = self.repository_id()?;
        if change.review {
            if let Some(refused) = self.reset_branch(change, &repository)? {
                return Ok(refused);
            }
        }
        let (headline, body) = change
            .message
            .split_once("\n\n")
            .unwrap_or((change.message, ""));
        let additions: Vec<Value> = change
            .edits
            .iter()
            .filter(|e| e.changed())
            .map(|e| {
                json!({
                    "path": e.path,
                    "contents": base64::engine::general_purpose::STANDARD.encode(e.new.as_bytes()),
                })
            })
            .collect();
        let input = json!({
            "branch": {
                "repositoryNameWithOwner": format!("{}/{}", self.owner, self.name),
                "branchName": change.branch,
            },
            "message": {"headline": headline, "body": body},
            "expectedHeadOid": change.base_tip,
            "fileChanges": {"additions": additions},
        });
        crate::interrupt::stage(format!("committing to `{}` on {}", change.branch, self.url));
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Created {
            create_commit_on_branch: Option<CommitPayload>,
        }
        #[derive(Deserialize)]
        struct CommitPayload {
            commit: Option<Oid>,
        }
        let (data, errors) =
            self.graphql::<Created>("TagbumpCommit", COMMIT, json!({"input": input}))?;
        if let Some(e) = errors.first() {
            return match e.kind.as_deref() {
                Some("STALE_DATA") => Ok(Written::Stale(format!(
                    "`{}` moved since it was read",
                    change.branch
                ))),
                // Branch protection and rulesets refuse in their own words,
                // whatever the error's type (FORBIDDEN included): a declined
                // push (exit 9), not a token without rights (exit 6).
                _ if declined(&e.message) => Ok(Written::Declined(format!(
                    "{} declined the commit to `{}`: {}",
                    self.url,
                    change.branch,
                    crate::secret::scrub(&e.message)
                ))),
                Some("FORBIDDEN" | "NOT_FOUND" | "INSUFFICIENT_SCOPES") => {
                    Err(graphql_failure("TagbumpCommit", e, &self.url))
                }
                _ => Err(graphql_failure("TagbumpCommit", e, &self.url)),
            };
        }
        match data
            .and_then(|d| d.create_commit_on_branch)
            .and_then(|c| c.commit)
        {
            Some(commit) => Ok(Written::Pushed(commit.oid)),
            None => Err(Failure::new(
                ErrorKind::Remote,
                "GitHub GraphQL TagbumpCommit answered neither a commit nor an error",
            )
            .into()),
        }
    }
}

/// Whether GitHub refused a commit by policy (branch protection, rulesets).
fn declined(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "protected branch",
        "rule violation",
        "repository rule",
        "required status check",
        "changes must be made through a pull request",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_read_names_each_expression() {
        let doc = files_document(2);
        assert!(doc.starts_with(
            "query TagbumpFiles($owner: String!, $name: String!, $commit: GitObjectID!, $p0: String!, $p1: String!) {"
        ));
        assert!(doc.contains("f1: file(path: $p1) { mode object {"));
        assert_eq!(documents().len(), 5);
    }

    #[test]
    fn policy_refusals_are_told_apart() {
        assert!(declined(
            "Repository rule violations found: Changes must be made through a pull request."
        ));
        assert!(!declined("Expected branch to point to abc but it did not"));
    }
}
