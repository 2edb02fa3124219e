//! Reading and committing through GitLab's REST API (`--via api`), no clone:
//!
//! - tips: `GET /projects/:id` (default branch), `GET …/repository/branches/:b`;
//! - files: GraphQL `repository.blobs(ref:, paths:)`, fifty per query (for a
//!   project named by path), else `GET …/repository/files/:path?ref=` each;
//!   scans list `…/repository/tree?recursive=true` page by page; a changed
//!   file's `last_commit_id` comes from the files endpoint;
//! - writes: [`commits`](super::commits), all files landing as one commit or
//!   none.
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
use serde_json::json;

use crate::error::{Failure, Kind as ErrorKind};
use crate::forge::api::{Api, NO_BODY};
use crate::forge::entries::{tip_has, Entries, Entry};
use crate::forge::{Connection, Kind};
use crate::http::Response;
use crate::signing::Signer;
use crate::targets::FileEdit;
use crate::update::transport::{Change, Naming, Tips, Transport, Written, YamlFiles};

#[derive(Deserialize)]
struct Branch {
    commit: CommitInfo,
}

#[derive(Deserialize, Clone)]
pub(super) struct CommitInfo {
    pub(super) id: String,
    #[serde(default)]
    pub(super) message: String,
    #[serde(default)]
    pub(super) parent_ids: Vec<String>,
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
    pub(super) url: String,
    pub(super) commits: RefCell<HashMap<String, CommitInfo>>,
    pub(super) entries: Entries,
    /// `--via auto`: scans of more YAML files than this go to git.
    scan_limit: Option<usize>,
}

impl GitLabRepo {
    pub fn new(conn: &Connection) -> Result<GitLabRepo> {
        Ok(GitLabRepo {
            api: Api::new(conn)?,
            full_path: conn.project.contains('/').then(|| conn.project.clone()),
            graphql_off: std::cell::Cell::new(false),
            project: crate::forge::percent_encode(&conn.project, false),
            url: format!("GitLab project {}", conn.project),
            commits: RefCell::new(HashMap::new()),
            entries: Entries::default(),
            scan_limit: None,
        })
    }

    /// Refuse (with [`TooManyForTheApi`]) a scan listing more YAML files.
    pub fn scan_limit(mut self, limit: Option<usize>) -> Self {
        self.scan_limit = limit;
        self
    }

    pub(super) fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Response> {
        let path = format!("/projects/{}{path}", self.project);
        self.api.send_now(method, &path, body)
    }

    /// A branch's tip, or `None` when there is no such branch.
    pub(super) fn branch(&self, name: &str) -> Result<Option<CommitInfo>> {
        let path = format!(
            "/repository/branches/{}",
            crate::forge::percent_encode(name, false)
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
        let missing = self.entries.unknown(commit, paths);
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
                    }) => Entry::text(text.clone()),
                    Some(_) => Entry::Binary,
                    None => Entry::Missing,
                };
                self.entries.insert(commit, path, entry);
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
            request.push_str(&format!(
                "&path={}",
                crate::forge::percent_encode(dir, false)
            ));
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

    pub(super) fn entry(&self, commit: &str, path: &str) -> Result<Entry> {
        if let Some(entry) = self.entries.get(commit, path) {
            return Ok(entry);
        }
        #[derive(Deserialize)]
        struct File {
            content: String,
            last_commit_id: String,
        }
        let request = format!(
            "/repository/files/{}?ref={commit}",
            crate::forge::percent_encode(path, false)
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
                    version: Some(file.last_commit_id),
                },
                Err(_) => Entry::Binary,
            }
        };
        self.entries.insert(commit, path, entry.clone());
        Ok(entry)
    }
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
        let branch = |name: &str| Ok(self.branch(name)?.map(|c| c.id));
        crate::forge::entries::tips_by_branch(naming, base, base_commit.id, &branch).map(Some)
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
        self.entry(commit, path)?.into_file(path)
    }

    fn is_directory(&self, commit: &str, path: &str) -> Result<bool> {
        let request = format!(
            "/repository/tree?ref={commit}&path={}&per_page=1",
            crate::forge::percent_encode(path, false)
        );
        let response = self.send(Method::GET, &request, NO_BODY)?;
        if response.status == 404 {
            return Ok(false);
        }
        let entries: Vec<serde::de::IgnoredAny> =
            response.answer(Kind::GitLab, "GitLab GET tree")?;
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
                    Entry::Text { text, .. } => Ok(crate::forge::single_file(dir, Some(text))),
                    Entry::Binary => Ok(crate::forge::single_file(dir, None)),
                    Entry::Symlink(_) | Entry::Missing | Entry::Tree(_) => {
                        Err(crate::forge::no_such_path(dir, commit, &self.url))
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
            crate::forge::check_scan_size(self.scan_limit, dir, paths.len())?;
            match next {
                Some(next) => page = next,
                None => break,
            }
        }
        let wanted: Vec<&str> = paths.iter().map(String::as_str).collect();
        self.fetch(commit, &wanted)?;
        // Those GraphQL did not read come one by one from REST.
        for path in &paths {
            self.entry(commit, path)?;
        }
        Ok(self.entries.scanned(commit, paths))
    }

    fn message_of(&self, commit: &str) -> Option<String> {
        self.commits.borrow().get(commit).map(|c| c.message.clone())
    }

    fn parent_of(&self, commit: &str) -> Result<Option<String>> {
        if let Some(known) = self.commits.borrow().get(commit) {
            return Ok(known.parent_ids.first().cloned());
        }
        let read: CommitInfo = self
            .send(
                Method::GET,
                &format!("/repository/commits/{commit}"),
                NO_BODY,
            )?
            .answer(Kind::GitLab, &format!("GitLab GET commit {commit}"))?;
        let parent = read.parent_ids.first().cloned();
        self.commits.borrow_mut().insert(commit.to_string(), read);
        Ok(parent)
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
        let touched: Vec<&str> = diff.iter().map(|d| d.new_path.as_str()).collect();
        if !crate::forge::entries::touches_just(edits, &touched) {
            return Ok(false);
        }
        tip_has(self, tip, edits)
    }

    fn write(&mut self, change: &Change<'_>) -> Result<Written> {
        self.commit(change)
    }
}
