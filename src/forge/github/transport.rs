//! Reading and committing through GitHub's API instead of git (`--via api`):
//! a few requests whatever the repository's size, and commits GitHub signs
//! itself (shown as Verified), which satisfies "require signed commits".
//!
//! - tips: one GraphQL query (two for a review branch);
//! - files: GraphQL `file(path:)` on the commit, many per query; image scans
//!   list the tree once (REST `git/trees?recursive=1`);
//! - writes: [`create_commit_on_branch`](super::create_commit_on_branch).
//!
//! The documents are fixed ([`documents`]) and validated against GitHub's
//! published schema by the test suite.

use std::cell::RefCell;
use std::collections::HashMap;

use anyhow::Result;
use serde::Deserialize;
use serde_json::{json, Value};

use super::graphql::GraphQl;
use crate::error::{Failure, Kind as ErrorKind};
use crate::forge::api::Api;
use crate::forge::entries::{tip_has, Entries, Entry};
use crate::forge::{Connection, Kind};
use crate::http::Response;
use crate::signing::Signer;
use crate::targets::FileEdit;
use crate::update::transport::{Change, Naming, Tips, Transport, Written, YamlFiles};

pub(super) const ZERO: &str = "0000000000000000000000000000000000000000";
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
            }) => Entry::text(text),
            Some(GitObject::Tree { oid }) => Entry::Tree(oid),
            Some(GitObject::Other) | None => Entry::Missing,
        }
    }
}

/// The GraphQL documents the transport reads with (the batch read with two
/// expressions), for validation against GitHub's schema.
pub fn documents() -> Vec<(&'static str, String)> {
    vec![
        ("TagbumpTips", TIPS.to_string()),
        ("TagbumpBranch", BRANCH.to_string()),
        ("TagbumpFiles", files_document(2)),
    ]
}

#[derive(Deserialize)]
struct Target {
    pub(super) oid: String,
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
pub(super) struct Oid {
    pub(super) oid: String,
}

#[derive(Deserialize)]
struct Ref {
    target: Target,
}

/// What is known of the review branch's tip.
pub(super) struct TipInfo {
    parent: Option<String>,
    changed_files: Option<u64>,
}

pub struct GitHubRepo {
    pub(super) api: Api,
    pub(super) graphql: GraphQl,
    pub(super) owner: String,
    pub(super) name: String,
    pub(super) url: String,
    pub(super) repository_id: RefCell<Option<String>>,
    pub(super) messages: RefCell<HashMap<String, String>>,
    pub(super) tip_info: RefCell<HashMap<String, TipInfo>>,
    pub(super) entries: Entries,
    /// `--via auto`: scans of more YAML files than this go to git.
    pub(super) scan_limit: Option<usize>,
}

impl GitHubRepo {
    pub fn new(conn: &Connection) -> Result<GitHubRepo> {
        let (owner, name) = super::owner_and_name(&conn.project)?;
        let api = Api::new(conn)?;
        Ok(GitHubRepo {
            graphql: GraphQl::new(&api, &format!("GitHub {owner}/{name}")),
            url: format!("GitHub {owner}/{name}"),
            api,
            owner,
            name,
            repository_id: RefCell::new(None),
            messages: RefCell::new(HashMap::new()),
            tip_info: RefCell::new(HashMap::new()),
            entries: Entries::default(),
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

    fn base_vars(&self) -> serde_json::Map<String, Value> {
        let mut vars = serde_json::Map::new();
        vars.insert("owner".into(), json!(self.owner));
        vars.insert("name".into(), json!(self.name));
        vars
    }

    /// Read the entries at `commit` for `paths` that are not known yet.
    fn fetch(&self, commit: &str, paths: &[&str]) -> Result<()> {
        let missing = self.entries.unknown(commit, paths);
        for chunk in missing.chunks(BATCH) {
            let mut vars = self.base_vars();
            vars.insert("commit".into(), json!(commit));
            for (i, path) in chunk.iter().enumerate() {
                vars.insert(format!("p{i}"), json!(path));
            }
            let data: FilesData = self.graphql.data(
                &self.api,
                "TagbumpFiles",
                &files_document(chunk.len()),
                Value::Object(vars),
            )?;
            let mut found = data.repository.object.unwrap_or_default();
            for (i, path) in chunk.iter().enumerate() {
                let entry = found
                    .remove(&format!("f{i}"))
                    .flatten()
                    .map_or(Entry::Missing, FileEntry::entry);
                self.entries.insert(commit, path, entry);
            }
        }
        Ok(())
    }

    fn entry(&self, commit: &str, path: &str) -> Result<Entry> {
        self.fetch(commit, &[path])?;
        Ok(self.entries.get(commit, path).unwrap_or(Entry::Missing))
    }

    /// The review branch's tip (its message, parent and changed-file count
    /// kept for the lease and "already holds it"), and whether the branch
    /// under tagbump 0.1's name exists.
    fn review_branch(&self, branch: &str, legacy: &str) -> Result<(Option<String>, bool)> {
        #[derive(Deserialize)]
        struct BranchRepository {
            branch: Option<Ref>,
            legacy: Option<serde::de::IgnoredAny>,
        }
        #[derive(Deserialize)]
        struct BranchData {
            repository: BranchRepository,
        }
        let mut vars = self.base_vars();
        vars.insert("branch".into(), json!(format!("refs/heads/{branch}")));
        vars.insert("legacy".into(), json!(format!("refs/heads/{legacy}")));
        let data: BranchData =
            self.graphql
                .data(&self.api, "TagbumpBranch", BRANCH, Value::Object(vars))?;
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
        Ok((branch_tip, data.repository.legacy.is_some()))
    }
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
        let data: Data = self
            .graphql
            .data(&self.api, "TagbumpTips", TIPS, Value::Object(vars))?;
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
        self.entry(commit, path)?.into_file(path)
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
                Entry::Text { text, .. } => return Ok(crate::forge::single_file(dir, Some(text))),
                Entry::Binary => return Ok(crate::forge::single_file(dir, None)),
                Entry::Symlink(_) | Entry::Missing => {
                    return Err(crate::forge::no_such_path(dir, commit, &self.url))
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
        crate::forge::check_scan_size(self.scan_limit, dir, paths.len())?;
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        self.fetch(commit, &refs)?;
        Ok(self.entries.scanned(commit, paths))
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
        tip_has(self, tip, edits)
    }

    fn write(&mut self, change: &Change<'_>) -> Result<Written> {
        self.create_commit_on_branch(change)
    }
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
        assert_eq!(super::super::documents().len(), 6);
    }
}
