//! What both forges' API transports share: a commit's files read as
//! entries, cached by commit and path so that each is asked for once, and
//! the rules every transport answers with (a symlink is refused, a binary
//! file is not text, a directory is no file).

use std::cell::RefCell;
use std::collections::HashMap;

use anyhow::Result;

use crate::error::{Failure, Kind};
use crate::targets::{FileEdit, SourceFile};
use crate::update::transport::{Transport, YamlFiles};

/// One path at one commit, as the forge described it.
#[derive(Debug, Clone)]
pub enum Entry {
    /// `last_commit`: the last commit that changed the file, where the read
    /// told it (GitLab's REST files endpoint; its commits API takes it as a
    /// compare-and-swap).
    Text {
        text: String,
        last_commit: Option<String>,
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
            last_commit: None,
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
