//! How an attempt reaches the repository. The attempt loop, planning, the
//! branch lease rules and the report are one piece of code over this small
//! interface: find the tips, read files at a commit, list YAML files, tell
//! whether a branch already holds the change, and write a commit to a branch
//! with compare-and-swap. [`GitTransport`] does it with a depth-1 fetch into
//! a temporary bare repository and a push with a lease.

use std::collections::BTreeMap;

use anyhow::Result;
use git2::{Oid, Signature};

use super::UpdateSpec;
use crate::error::{Failure, Kind};
use crate::git::{Advert, Pushed, Session};
use crate::signing::Signer;
use crate::targets::{FileEdit, SourceFile};

/// `--via auto` chose an API for a scan of `--in`, and the listing holds
/// more YAML files than reading them through the API is worth: the run
/// goes to git, where one depth-1 fetch reads them all.
#[derive(Debug)]
pub struct TooManyForTheApi {
    pub files: usize,
    pub dir: String,
}

impl std::fmt::Display for TooManyForTheApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` holds {} YAML files or more, over the {} an API read is chosen for",
            if self.dir.is_empty() { "/" } else { &self.dir },
            self.files,
            crate::update::AUTO_API_FILES
        )
    }
}

impl std::error::Error for TooManyForTheApi {}

/// What a forge's API cannot do without harm, said before anything is
/// written: `--via auto` goes to git for it, `--via api` is refused.
#[derive(Debug)]
pub struct ApiCannot(pub String);

impl std::fmt::Display for ApiCannot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ApiCannot {}

/// YAML files under a directory, and those that are not UTF-8.
pub type YamlFiles = (Vec<SourceFile>, Vec<(String, String)>);

/// The branches of one attempt and their tips (hex commit ids).
#[derive(Debug, Clone)]
pub struct Tips {
    pub base: String,
    pub base_tip: String,
    /// The branch written to: the base with `--direct`, else the review branch.
    pub branch: String,
    pub branch_tip: Option<String>,
    /// Whether the review branch under tagbump 0.1's name exists.
    pub legacy_exists: bool,
}

/// How the branches are named, given the base.
pub struct Naming<'a> {
    pub spec: &'a UpdateSpec,
    /// The branch to write to, for a base.
    pub branch: &'a dyn Fn(&str) -> String,
    /// The branch tagbump 0.1 would have used, for a base.
    pub legacy: &'a dyn Fn(&str) -> String,
}

/// One commit to write.
pub struct Change<'a> {
    /// The base branch (Gitea creates a new branch from a branch, by name).
    pub base: &'a str,
    pub base_tip: &'a str,
    pub branch: &'a str,
    /// What the branch must still point at (`None`: it must not exist).
    pub branch_tip: Option<&'a str>,
    pub edits: &'a [FileEdit],
    pub message: &'a str,
    pub author: &'a Signature<'a>,
    pub signer: Option<&'a Signer>,
    /// A review branch (replaced when ours) rather than a fast-forward of the base.
    pub review: bool,
    pub dry_run: bool,
}

/// What writing came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The commit is on the branch.
    Pushed(String),
    /// `--dry-run`: the commit that would be written, where it can be known.
    DryRun(Option<String>),
    /// The branch moved since it was read: try again on the new tip.
    Stale(String),
    /// Refused by policy (a hook, branch protection): the full message.
    Declined(String),
}

pub trait Transport {
    /// The repository, for messages.
    fn url(&self) -> &str;
    /// The base and branch tips; `None` when they could not be read whole
    /// (try again).
    fn tips(&mut self, naming: &Naming<'_>) -> Result<Option<Tips>>;
    /// Read these files at `commit` ahead of [`Transport::read_file`], in
    /// as few requests as the transport can (git has them all already).
    fn prefetch(&self, _commit: &str, _paths: &[&str]) -> Result<()> {
        Ok(())
    }
    /// The text of `path` at `commit`; `None` when there is no such file.
    fn read_file(&self, commit: &str, path: &str) -> Result<Option<String>>;
    fn is_directory(&self, commit: &str, path: &str) -> Result<bool>;
    /// Every `*.yaml`/`*.yml` file at or under `dir` (`""`: everywhere).
    fn yaml_files(&self, commit: &str, dir: &str) -> Result<YamlFiles>;
    /// A commit's message, if it can be read.
    fn message_of(&self, commit: &str) -> Option<String>;
    /// A commit's first parent, read when need be (its message is then
    /// known to [`Transport::message_of`]); `None` where the transport
    /// cannot tell, or need not: git writes every commit on the parent it
    /// was planned on, GitLab's commits API on whatever the head is by then.
    fn parent_of(&self, _commit: &str) -> Result<Option<String>> {
        Ok(None)
    }
    /// Whether `tip` is exactly `base_tip` plus `edits` (signed by `signer`
    /// when there is one): the review branch already holds this change.
    fn holds(
        &self,
        tip: &str,
        base_tip: &str,
        edits: &[FileEdit],
        signer: Option<&Signer>,
    ) -> Result<bool>;
    fn write(&mut self, change: &Change<'_>) -> Result<Written>;
    /// HTTP requests sent so far (API transports; git counts none).
    fn requests(&self) -> usize {
        0
    }
    /// Whether commits written here carry the signing key's signature (the
    /// API transports have the forge make the commit: the key is not used).
    fn signs_with_key(&self) -> bool {
        true
    }
}

/// git over SSH, HTTPS or a local path, through libgit2.
pub struct GitTransport {
    session: Session,
}

impl GitTransport {
    pub fn open(spec: &UpdateSpec) -> Result<GitTransport> {
        Ok(GitTransport {
            session: Session::open(spec.remote.clone(), spec.auth.clone())?,
        })
    }
}

fn oid(text: &str) -> Result<Oid> {
    Oid::from_str(text).map_err(|e| {
        Failure::new(Kind::Internal, format!("`{text}` is not a commit id"))
            .with_source(e)
            .into()
    })
}

impl Transport for GitTransport {
    fn url(&self) -> &str {
        self.session.url()
    }

    fn tips(&mut self, naming: &Naming<'_>) -> Result<Option<Tips>> {
        let session = &self.session;
        crate::interrupt::stage(format!("connecting to {}", session.url()));
        let mut chosen = None;
        let advert = session.discover_and_fetch(|advert| {
            let base = resolve_base(naming.spec, advert, session.url())?;
            let branch = (naming.branch)(&base);
            let mut wanted = vec![base.clone()];
            if branch != base && advert.head(&branch).is_some() {
                wanted.push(branch.clone());
            }
            crate::interrupt::stage(format!("fetching `{base}` from {}", session.url()));
            chosen = Some((base, branch));
            Ok(wanted)
        })?;
        let Some((base, branch)) = chosen else {
            return Ok(None);
        };
        let legacy_exists = advert.head(&(naming.legacy)(&base)).is_some();
        // The tips are the advertised ones, fetched on the same connection.
        let Some(base_tip) = session.fetched(&base).filter(|&c| session.has_commit(c)) else {
            return Ok(None);
        };
        let branch_tip = if branch == base {
            Some(base_tip)
        } else {
            session.fetched(&branch)
        };
        Ok(Some(Tips {
            base,
            base_tip: base_tip.to_string(),
            branch,
            branch_tip: branch_tip.map(|t| t.to_string()),
            legacy_exists,
        }))
    }

    fn read_file(&self, commit: &str, path: &str) -> Result<Option<String>> {
        self.session.read_file(oid(commit)?, path)
    }

    fn is_directory(&self, commit: &str, path: &str) -> Result<bool> {
        Ok(self.session.is_directory(oid(commit)?, path))
    }

    fn yaml_files(&self, commit: &str, dir: &str) -> Result<YamlFiles> {
        self.session.yaml_files(oid(commit)?, dir)
    }

    fn message_of(&self, commit: &str) -> Option<String> {
        self.session.message_of(oid(commit).ok()?)
    }

    fn holds(
        &self,
        tip: &str,
        base_tip: &str,
        edits: &[FileEdit],
        signer: Option<&Signer>,
    ) -> Result<bool> {
        let (tip, base_tip) = (oid(tip)?, oid(base_tip)?);
        if signer.is_some_and(|s| !self.session.is_signed_by(tip, s)) {
            return Ok(false);
        }
        let tree = self.session.build_tree(base_tip, edits)?;
        Ok(self.session.tree_and_parent(tip) == Some((tree, Some(base_tip))))
    }

    fn write(&mut self, change: &Change<'_>) -> Result<Written> {
        let session = &self.session;
        let base_tip = oid(change.base_tip)?;
        let tree = session.build_tree(base_tip, change.edits)?;
        if let Some(signer) = change.signer {
            crate::interrupt::stage(format!(
                "signing the commit ({} key {})",
                signer.format(),
                signer.fingerprint()
            ));
        }
        let commit =
            session.commit(base_tip, tree, change.message, change.author, change.signer)?;
        if change.dry_run {
            return Ok(Written::DryRun(Some(commit.to_string())));
        }
        let expect = change.branch_tip.map(oid).transpose()?;
        crate::interrupt::stage(format!("pushing `{}` to {}", change.branch, session.url()));
        crate::interrupt::pushing(&commit.to_string(), change.branch);
        let pushed = session.push(commit, change.branch, expect, change.review);
        crate::interrupt::pushed(matches!(pushed, Ok(Pushed::Done)));
        Ok(match pushed? {
            Pushed::Done => Written::Pushed(commit.to_string()),
            Pushed::Stale => Written::Stale(format!("`{}` moved while pushing", change.branch)),
            Pushed::Rejected(why) if crate::git::declined(&why) => {
                let mut message = format!(
                    "{} declined the push to `{}`: {why}",
                    session.url(),
                    change.branch
                );
                for line in session.remote_lines() {
                    message.push_str(&format!("\n  remote: {line}"));
                }
                Written::Declined(message)
            }
            Pushed::Rejected(why) => Written::Stale(format!("the push was rejected ({why})")),
        })
    }
}

fn resolve_base(spec: &UpdateSpec, advert: &Advert, url: &str) -> Result<String> {
    resolve_base_in(spec, &advert.heads, advert.default_branch.as_deref(), url)
}

/// The base branch: `--base`, else the repository's default; it must exist.
pub fn resolve_base_in<V>(
    spec: &UpdateSpec,
    heads: &BTreeMap<String, V>,
    default_branch: Option<&str>,
    url: &str,
) -> Result<String> {
    if heads.is_empty() {
        return Err(
            Failure::new(Kind::NotFound, format!("{url} has no branches"))
                .hint("push an initial commit first")
                .into(),
        );
    }
    let base = match (&spec.base, default_branch) {
        (Some(b), _) => b.clone(),
        (None, Some(d)) => d.to_string(),
        (None, None) => {
            return Err(Failure::new(
                Kind::NotFound,
                format!("{url} does not say which branch is its default"),
            )
            .hint("pass --base BRANCH")
            .into())
        }
    };
    if !heads.contains_key(&base) {
        let names: Vec<&str> = heads.keys().map(String::as_str).take(10).collect();
        return Err(Failure::new(
            Kind::NotFound,
            format!(
                "branch `{base}` does not exist on {url} (branches: {})",
                names.join(", ")
            ),
        )
        .hint("pass --base with an existing branch")
        .into());
    }
    Ok(base)
}
