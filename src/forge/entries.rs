//! What both forges' API transports share: a commit's files read as
//! entries, cached by commit and path so that each is asked for once, and
//! the rules every transport answers with (a symlink is refused, a binary
//! file is not text, a directory is no file).

use std::cell::RefCell;
use std::collections::HashMap;

use anyhow::Result;

use crate::error::{Failure, Kind};
use crate::targets::{FileEdit, SourceFile};
use crate::update::transport::{Naming, Tips, Transport, YamlFiles};

/// One path at one commit, as the forge described it.
#[derive(Debug, Clone)]
pub enum Entry {
    /// `version`: what the forge's commit API checks the file against (a
    /// compare-and-swap), where the read told it: GitLab's last commit that
    /// changed the file (its REST files endpoint), Gitea's blob sha.
    Text {
        text: String,
        version: Option<String>,
    },
    Binary,
    /// A directory, and its tree's id.
    Tree(String),
    /// A symbolic link, and where it points.
    Symlink(String),
    Missing,
}

impl Entry {
    /// A file read as text.
    pub fn text(text: String) -> Entry {
        Entry::Text {
            text,
            version: None,
        }
    }

    /// What [`Transport::read_file`] answers for this entry of `path`.
    pub fn into_file(self, path: &str) -> Result<Option<String>> {
        match self {
            Entry::Text { text, .. } => Ok(Some(text)),
            Entry::Missing | Entry::Tree(_) => Ok(None),
            Entry::Symlink(to) => Err(crate::targets::symlink_refused(path, &to)),
            Entry::Binary => {
                Err(Failure::new(Kind::Input, format!("{path}: not UTF-8 text")).into())
            }
        }
    }
}

/// Entries read so far, by commit and path.
#[derive(Debug, Default)]
pub struct Entries(RefCell<HashMap<(String, String), Entry>>);

impl Entries {
    pub fn get(&self, commit: &str, path: &str) -> Option<Entry> {
        self.0
            .borrow()
            .get(&(commit.to_string(), path.to_string()))
            .cloned()
    }

    pub fn insert(&self, commit: &str, path: &str, entry: Entry) {
        self.0
            .borrow_mut()
            .insert((commit.to_string(), path.to_string()), entry);
    }

    pub fn forget(&self, commit: &str, path: &str) {
        self.0
            .borrow_mut()
            .remove(&(commit.to_string(), path.to_string()));
    }

    /// Those of `paths` not read yet at `commit`, each once, in order.
    pub fn unknown<'p>(&self, commit: &str, paths: &[&'p str]) -> Vec<&'p str> {
        let known = self.0.borrow();
        let mut out: Vec<&str> = Vec::new();
        for path in paths {
            if !known.contains_key(&(commit.to_string(), path.to_string())) && !out.contains(path) {
                out.push(path);
            }
        }
        out
    }

    /// The files a scan listed, as read: text files to plan on, and the
    /// paths that are not text (links and vanished paths are left out).
    pub fn scanned(&self, commit: &str, paths: Vec<String>) -> YamlFiles {
        let mut files = Vec::new();
        let mut unreadable = Vec::new();
        for path in paths {
            match self.get(commit, &path) {
                Some(Entry::Text { text, .. }) => files.push(SourceFile { path, text }),
                Some(Entry::Binary) => unreadable.push((path, "not UTF-8 text".to_string())),
                _ => {}
            }
        }
        (files, unreadable)
    }
}

/// Whether every changed edit's new text is what `tip` holds: the last
/// step of [`Transport::holds`], after the forge's own check that `tip`
/// is one commit on the base touching just these files.
pub fn tip_has(transport: &dyn Transport, tip: &str, edits: &[FileEdit]) -> Result<bool> {
    let changed: Vec<&FileEdit> = edits.iter().filter(|e| e.changed()).collect();
    let paths: Vec<&str> = changed.iter().map(|e| e.path.as_str()).collect();
    transport.prefetch(tip, &paths)?;
    for edit in changed {
        if transport.read_file(tip, &edit.path)?.as_deref() != Some(edit.new.as_str()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The tips of an attempt on a forge whose API reads one branch at a time
/// (GitLab, Gitea): the base's tip is known; the branch to write and, where
/// its note could be given, the branch under tagbump 0.1's name are read
/// with `branch` (`None`: no such branch).
pub fn tips_by_branch(
    naming: &Naming<'_>,
    base: String,
    base_tip: String,
    branch: &dyn Fn(&str) -> Result<Option<String>>,
) -> Result<Tips> {
    let name = (naming.branch)(&base);
    if name == base {
        return Ok(Tips {
            base_tip: base_tip.clone(),
            base,
            branch: name,
            branch_tip: Some(base_tip),
            legacy_exists: false,
        });
    }
    let branch_tip = branch(&name)?;
    // The old name is only asked about where its note could be given.
    let legacy = (naming.legacy)(&base);
    let legacy_exists = branch_tip.is_none()
        && naming.spec.branch.is_none()
        && legacy != name
        && branch(&legacy)?.is_some();
    Ok(Tips {
        base,
        base_tip,
        branch: name,
        branch_tip,
        legacy_exists,
    })
}

/// Whether a commit touching `touched` changed exactly the files `edits`
/// change (part of [`Transport::holds`]).
pub fn touches_just(edits: &[FileEdit], touched: &[&str]) -> bool {
    let mut changed: Vec<&str> = edits
        .iter()
        .filter(|e| e.changed())
        .map(|e| e.path.as_str())
        .collect();
    let mut touched = touched.to_vec();
    changed.sort_unstable();
    touched.sort_unstable();
    changed == touched
}
