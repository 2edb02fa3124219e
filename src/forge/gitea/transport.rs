//! Gitea's (and Forgejo's) repository API as a transport, no clone:
//! - tips: the repository (its default branch) and the branches, each with
//!   its tip commit and message (`GET …/branches/{branch}`);
//! - files: `GET …/contents/{path}?ref=` (base64 text, the blob sha the
//!   commit's compare-and-swap names, a link's target);
//! - scans: the directory's listing, then each subdirectory's recursive
//!   tree (the commit's whole tree for the repository, or past a few
//!   subdirectories), paged while `truncated`;
//! - commits: [`super::change_files`].

use std::cell::RefCell;
use std::collections::HashMap;

use anyhow::Result;
use base64::Engine as _;
use reqwest::Method;
use serde::Deserialize;

use crate::error::{Failure, Kind as ErrorKind};
use crate::forge::api::{Api, NO_BODY};
use crate::forge::entries::{tip_has, Entries, Entry};
use crate::forge::{percent_encode, Connection, Kind};
use crate::http::Response;
use crate::signing::Signer;
use crate::targets::FileEdit;
use crate::update::transport::{ApiCannot, Change, Naming, Tips, Transport, Written, YamlFiles};

/// Tree entries per page of a recursive listing.
const TREE_PAGE: usize = 1000;

/// Pages of one tree read at most (a million entries).
const TREE_PAGES: usize = 1000;

/// A commit as far as tagbump reads it.
#[derive(Debug, Clone, Default)]
pub(super) struct CommitInfo {
    pub(super) message: String,
    /// `None` until read (a branch's tip comes without its parents).
    pub(super) parents: Option<Vec<String>>,
    /// The files it changed, where read.
    pub(super) files: Option<Vec<String>>,
}

pub struct GiteaRepo {
    pub(super) api: Api,
    /// `/repos/{owner}/{repo}`.
    pub(super) repo: String,
    pub(super) url: String,
    pub(super) commits: RefCell<HashMap<String, CommitInfo>>,
    pub(super) entries: Entries,
    /// `--via auto`: scans of more YAML files than this go to git.
    scan_limit: Option<usize>,
}

impl GiteaRepo {
    pub fn new(conn: &Connection) -> Result<GiteaRepo> {
        let (owner, name) = crate::forge::github::owner_and_name(&conn.project)?;
        Ok(GiteaRepo {
            api: Api::new(conn)?,
            repo: format!(
                "/repos/{}/{}",
                percent_encode(&owner, false),
                percent_encode(&name, false)
            ),
            url: format!("Gitea {owner}/{name}"),
            commits: RefCell::new(HashMap::new()),
            entries: Entries::default(),
            scan_limit: None,
        })
    }

    /// Refuse (with `TooManyForTheApi`) a scan listing more YAML files.
    pub fn scan_limit(mut self, limit: Option<usize>) -> Self {
        self.scan_limit = limit;
        self
    }

    pub(super) fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl serde::Serialize + ?Sized)>,
    ) -> Result<Response> {
        self.api
            .send_now(method, &format!("{}{path}", self.repo), body)
    }

    /// A 404 on the repository itself names it.
    fn not_found(&self) -> anyhow::Error {
        Failure::new(ErrorKind::NotFound, format!("{} does not exist", self.url))
            .hint("check the repository (--project OWNER/REPO) and that the token can see it")
            .into()
    }

    /// A branch's tip, or `None` when there is no such branch.
    pub(super) fn branch(&self, name: &str) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct Branch {
            commit: Tip,
        }
        #[derive(Deserialize)]
        struct Tip {
            id: String,
            #[serde(default)]
            message: String,
        }
        let path = format!("/branches/{}", percent_encode(name, true));
        let response = self.send(Method::GET, &path, NO_BODY)?;
        if response.status == 404 {
            return Ok(None);
        }
        let branch: Branch = response.answer(Kind::Gitea, &format!("Gitea GET branch `{name}`"))?;
        let mut commits = self.commits.borrow_mut();
        let known = commits.entry(branch.commit.id.clone()).or_default();
        known.message = branch.commit.message;
        Ok(Some(branch.commit.id))
    }

    /// A commit's message, parents and files, read once.
    fn commit(&self, sha: &str) -> Result<CommitInfo> {
        if let Some(known) = self.commits.borrow().get(sha) {
            if known.parents.is_some() && known.files.is_some() {
                return Ok(known.clone());
            }
        }
        #[derive(Deserialize)]
        struct Read {
            commit: Message,
            #[serde(default)]
            parents: Vec<Sha>,
            #[serde(default)]
            files: Option<Vec<File>>,
        }
        #[derive(Deserialize)]
        struct Message {
            message: String,
        }
        #[derive(Deserialize)]
        struct Sha {
            sha: String,
        }
        #[derive(Deserialize)]
        struct File {
            filename: String,
        }
        let read: Read = self
            .send(Method::GET, &format!("/git/commits/{sha}"), NO_BODY)?
            .answer(Kind::Gitea, &format!("Gitea GET commit {sha}"))?;
        let info = CommitInfo {
            message: read.commit.message,
            parents: Some(read.parents.into_iter().map(|p| p.sha).collect()),
            files: Some(
                read.files
                    .unwrap_or_default()
                    .into_iter()
                    .map(|f| f.filename)
                    .collect(),
            ),
        };
        self.commits
            .borrow_mut()
            .insert(sha.to_string(), info.clone());
        Ok(info)
    }

    /// `path` at `commit`, read once.
    pub(super) fn entry(&self, commit: &str, path: &str) -> Result<Entry> {
        if let Some(entry) = self.entries.get(commit, path) {
            return Ok(entry);
        }
        let (entry, _) = self.contents(commit, path)?;
        Ok(entry)
    }

    /// `GET …/contents/{path}?ref=`: the entry (kept), and a directory's
    /// listing.
    fn contents(&self, commit: &str, path: &str) -> Result<(Entry, Vec<Child>)> {
        let request = format!(
            "/contents/{}?ref={commit}",
            percent_encode(path.trim_matches('/'), true)
        );
        let what = format!("Gitea GET contents `{path}`");
        let response = self.send(Method::GET, &request, NO_BODY)?;
        let (entry, children) = if response.status == 404 {
            (Entry::Missing, Vec::new())
        } else {
            let value: serde_json::Value = response.answer(Kind::Gitea, &what)?;
            let unreadable = |e: serde_json::Error| {
                Failure::new(
                    ErrorKind::Remote,
                    format!("{what} answered something tagbump cannot read"),
                )
                .with_source(e)
            };
            if value.is_array() {
                let children = serde_json::from_value(value).map_err(unreadable)?;
                (Entry::Tree(String::new()), children)
            } else {
                let read: Contents = serde_json::from_value(value).map_err(unreadable)?;
                if read.kind == "file" && read.content.is_none() {
                    // Past the instance's API blob size limit Gitea leaves
                    // the content out; git reads any size.
                    return Err(ApiCannot(format!(
                        "Gitea's API leaves out the content of `{path}` (larger than its \
                         API's blob size limit)"
                    ))
                    .into());
                }
                (read.entry(), Vec::new())
            }
        };
        self.entries.insert(commit, path, entry.clone());
        Ok((entry, children))
    }

    /// The trees a scan of `dir` lists (id, and the path in front of what
    /// they hold) and the files it names directly: the directory's own files
    /// and one recursive listing per subdirectory, or the commit's whole
    /// tree for the repository or a directory of many subdirectories (one
    /// paged listing costs less than many); or, when `dir` is a file, it.
    fn scan_plan(&self, commit: &str, dir: &str) -> Result<ScanPlan> {
        let whole = || ScanPlan::Trees {
            files: Vec::new(),
            trees: vec![(commit.to_string(), String::new())],
        };
        if dir.is_empty() {
            return Ok(whole());
        }
        let (entry, children) = self.contents(commit, dir)?;
        match entry {
            Entry::Tree(_) => {}
            Entry::Text { text, .. } => {
                return Ok(ScanPlan::File(crate::forge::single_file(dir, Some(text))))
            }
            Entry::Binary => return Ok(ScanPlan::File(crate::forge::single_file(dir, None))),
            Entry::Symlink(_) | Entry::Missing => {
                return Err(crate::forge::no_such_path(dir, commit, &self.url))
            }
        }
        let subdirs = children.iter().filter(|c| c.kind == "dir").count();
        if subdirs > SUBTREES {
            return Ok(whole());
        }
        Ok(ScanPlan::Trees {
            files: children
                .iter()
                .filter(|c| c.kind == "file")
                .map(|c| c.path.clone())
                .collect(),
            trees: children
                .into_iter()
                .filter(|c| c.kind == "dir")
                .map(|c| (c.sha, format!("{}/", c.path)))
                .collect(),
        })
    }

    /// One page of the recursive listing of tree (or commit) `sha`: its
    /// blobs' paths, and whether more pages follow.
    fn tree_page(&self, sha: &str, page: usize) -> Result<(Vec<String>, bool)> {
        #[derive(Deserialize)]
        struct Tree {
            #[serde(default)]
            tree: Vec<TreeEntry>,
            #[serde(default)]
            truncated: bool,
            #[serde(default)]
            total_count: Option<usize>,
        }
        #[derive(Deserialize)]
        struct TreeEntry {
            path: String,
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            mode: String,
        }
        let request = format!("/git/trees/{sha}?recursive=true&per_page={TREE_PAGE}&page={page}");
        let tree: Tree = self
            .send(Method::GET, &request, NO_BODY)?
            .answer(Kind::Gitea, "Gitea GET tree")?;
        // Gitea marks every page `truncated` when the whole is larger than
        // a page: the count tells when the last one has been read.
        let more = tree.truncated
            && !tree.tree.is_empty()
            && tree
                .total_count
                .is_none_or(|total| page * TREE_PAGE < total);
        let blobs = tree
            .tree
            .into_iter()
            .filter(|e| e.kind == "blob" && e.mode != "120000")
            .map(|e| e.path)
            .collect();
        Ok((blobs, more))
    }
}

/// Subdirectories of a scanned directory listed one by one, at most; past
/// this, the commit's whole tree is listed once instead.
const SUBTREES: usize = 8;

/// What a scan lists: files named directly, and trees with the path in
/// front of what they hold; or `--in` names one file, read already.
enum ScanPlan {
    Trees {
        files: Vec<String>,
        trees: Vec<(String, String)>,
    },
    File(YamlFiles),
}

/// One entry of a directory's `contents` listing.
#[derive(Deserialize)]
struct Child {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    sha: String,
}

/// Whether a listed `path` is a YAML file a scan of `dir` reads (hidden
/// directories count below `dir`, as in a git scan).
fn below(dir: &str, path: &str) -> bool {
    let rest = if dir.is_empty() {
        Some(path)
    } else {
        path.strip_prefix(dir).and_then(|r| r.strip_prefix('/'))
    };
    rest.is_some_and(crate::targets::is_scanned_path)
}

/// `GET …/contents/{path}` for one entry (ContentsResponse).
#[derive(Deserialize)]
struct Contents {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    sha: Option<String>,
    #[serde(default)]
    target: Option<String>,
}

impl Contents {
    fn entry(self) -> Entry {
        match self.kind.as_str() {
            "file" => {
                let bytes = self
                    .content
                    .map(|c| c.replace(['\n', '\r'], ""))
                    .and_then(|c| base64::engine::general_purpose::STANDARD.decode(c).ok());
                match bytes.map(String::from_utf8) {
                    Some(Ok(text)) => Entry::Text {
                        text,
                        version: self.sha,
                    },
                    _ => Entry::Binary,
                }
            }
            "symlink" => Entry::Symlink(self.target.unwrap_or_default()),
            "dir" => Entry::Tree(self.sha.unwrap_or_default()),
            // A submodule is no file to edit.
            _ => Entry::Missing,
        }
    }
}

impl Transport for GiteaRepo {
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
        struct Repository {
            default_branch: Option<String>,
        }
        crate::interrupt::stage(format!("reading the branches of {}", self.url));
        let base = match &naming.spec.base {
            Some(base) => base.clone(),
            None => {
                let response = self.send(Method::GET, "", NO_BODY)?;
                if response.status == 404 {
                    return Err(self.not_found());
                }
                let repository: Repository =
                    response.answer(Kind::Gitea, "Gitea GET repository")?;
                repository
                    .default_branch
                    .filter(|b| !b.is_empty())
                    .ok_or_else(|| {
                        Failure::new(ErrorKind::NotFound, format!("{} has no branches", self.url))
                            .hint("push an initial commit first")
                    })?
            }
        };
        let Some(base_tip) = self.branch(&base)? else {
            // A repository the token cannot see answers 404 for its
            // branches too: name the repository then, not the branch.
            if naming.spec.base.is_some() && self.send(Method::GET, "", NO_BODY)?.status == 404 {
                return Err(self.not_found());
            }
            return Err(Failure::new(
                ErrorKind::NotFound,
                format!("branch `{base}` does not exist on {}", self.url),
            )
            .hint("pass --base with an existing branch (and check --project)")
            .into());
        };
        let branch = |name: &str| self.branch(name);
        crate::forge::entries::tips_by_branch(naming, base, base_tip, &branch).map(Some)
    }

    fn read_file(&self, commit: &str, path: &str) -> Result<Option<String>> {
        self.entry(commit, path)?.into_file(path)
    }

    fn is_directory(&self, commit: &str, path: &str) -> Result<bool> {
        Ok(matches!(self.entry(commit, path)?, Entry::Tree(_)))
    }

    fn yaml_files(&self, commit: &str, dir: &str) -> Result<YamlFiles> {
        let dir = dir.trim_matches('/');
        let (files, trees) = match self.scan_plan(commit, dir)? {
            ScanPlan::File(one) => return Ok(one),
            ScanPlan::Trees { files, trees } => (files, trees),
        };
        let mut paths: Vec<String> = files.into_iter().filter(|p| below(dir, p)).collect();
        for (sha, prefix) in trees {
            for page in 1..=TREE_PAGES {
                let (blobs, more) = self.tree_page(&sha, page)?;
                paths.extend(
                    blobs
                        .into_iter()
                        .map(|p| format!("{prefix}{p}"))
                        .filter(|p| below(dir, p)),
                );
                // Stops listing as soon as the scan is too large for `auto`.
                crate::forge::check_scan_size(self.scan_limit, dir, paths.len())?;
                if !more {
                    break;
                }
            }
        }
        crate::forge::check_scan_size(self.scan_limit, dir, paths.len())?;
        for path in &paths {
            self.entry(commit, path)?;
        }
        Ok(self.entries.scanned(commit, paths))
    }

    fn message_of(&self, commit: &str) -> Option<String> {
        self.commits.borrow().get(commit).map(|c| c.message.clone())
    }

    fn parent_of(&self, commit: &str) -> Result<Option<String>> {
        if let Some(parents) = self
            .commits
            .borrow()
            .get(commit)
            .and_then(|c| c.parents.clone())
        {
            return Ok(parents.first().cloned());
        }
        Ok(self
            .commit(commit)?
            .parents
            .and_then(|p| p.first().cloned()))
    }

    fn holds(
        &self,
        tip: &str,
        base_tip: &str,
        edits: &[FileEdit],
        _signer: Option<&Signer>,
    ) -> Result<bool> {
        let info = self.commit(tip)?;
        if info.parents.as_deref() != Some(&[base_tip.to_string()][..]) {
            return Ok(false);
        }
        let touched: Vec<&str> = info.files.iter().flatten().map(String::as_str).collect();
        if !crate::forge::entries::touches_just(edits, &touched) {
            return Ok(false);
        }
        tip_has(self, tip, edits)
    }

    fn write(&mut self, change: &Change<'_>) -> Result<Written> {
        self.change_files(change)
    }
}
