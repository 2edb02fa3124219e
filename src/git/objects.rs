//! Objects in the session's bare repository: files read as blobs from a
//! fetched commit, new trees and commits written, commits inspected.

use std::path::Path as FsPath;

use anyhow::Result;
use git2::build::TreeUpdateBuilder;
use git2::{ErrorCode, FileMode, ObjectType, Oid, Signature, TreeWalkMode, TreeWalkResult};

use super::{Session, YamlFiles};
use crate::error::{local_git, Failure, Kind};
use crate::targets::{FileEdit, SourceFile};

impl Session {
    /// The text of `path` at `commit`; `None` when there is no such file.
    pub fn read_file(&self, commit: Oid, path: &str) -> Result<Option<String>> {
        let tree = self.tree_of(commit)?;
        let entry = match tree.get_path(FsPath::new(path)) {
            Ok(entry) => entry,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(local_git(format_args!("look up `{path}` at {commit}"))(e).into()),
        };
        if entry.kind() != Some(ObjectType::Blob) {
            return Ok(None);
        }
        let blob = self
            .repo
            .find_blob(entry.id())
            .map_err(local_git(format_args!("read `{path}` at {commit}")))?;
        if entry.filemode() == i32::from(FileMode::Link) {
            let to = String::from_utf8_lossy(blob.content()).into_owned();
            return Err(crate::targets::symlink_refused(path, &to));
        }
        match String::from_utf8(blob.content().to_vec()) {
            Ok(text) => Ok(Some(text)),
            Err(_) => Err(Failure::new(Kind::Input, format!("{path}: not UTF-8 text")).into()),
        }
    }

    /// Whether `path` is a directory (a tree) at `commit`.
    pub fn is_directory(&self, commit: Oid, path: &str) -> bool {
        self.tree_of(commit)
            .ok()
            .and_then(|tree| tree.get_path(FsPath::new(path)).ok())
            .is_some_and(|entry| entry.kind() == Some(ObjectType::Tree))
    }

    /// Every `*.yaml`/`*.yml` blob at or under `dir` (`""` for the whole tree).
    /// Symlinks and submodules are not followed; hidden directories are skipped.
    /// Returns the files and those that are not UTF-8.
    pub fn yaml_files(&self, commit: Oid, dir: &str) -> Result<YamlFiles> {
        let root = self.tree_of(commit)?;
        let dir = dir.trim_matches('/');
        let tree = if dir.is_empty() {
            root
        } else {
            let entry = match root.get_path(FsPath::new(dir)) {
                Ok(entry) => entry,
                Err(e) if e.code() == ErrorCode::NotFound => {
                    return Err(Failure::new(
                        Kind::NotFound,
                        format!("`{dir}` does not exist in the repository"),
                    )
                    .hint("--in takes a directory or file path relative to the repository root")
                    .into())
                }
                Err(e) => return Err(e.into()),
            };
            if entry.kind() == Some(ObjectType::Blob) {
                let text = self.read_file(commit, dir)?.unwrap_or_default();
                return Ok((
                    vec![SourceFile {
                        path: dir.to_string(),
                        text,
                    }],
                    Vec::new(),
                ));
            }
            self.repo
                .find_tree(entry.id())
                .map_err(local_git(format_args!("read the directory `{dir}`")))?
        };
        let mut blobs = Vec::new();
        tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
            let name = entry.name().unwrap_or_default();
            if entry.kind() == Some(ObjectType::Tree) && !crate::targets::is_scanned_dir(name) {
                return TreeWalkResult::Skip;
            }
            let mode = entry.filemode();
            let is_blob =
                mode == i32::from(FileMode::Blob) || mode == i32::from(FileMode::BlobExecutable);
            if is_blob && crate::targets::is_yaml_name(name) {
                let prefix = if dir.is_empty() {
                    String::new()
                } else {
                    format!("{dir}/")
                };
                blobs.push((format!("{prefix}{parent}{name}"), entry.id()));
            }
            TreeWalkResult::Ok
        })
        .map_err(local_git(format_args!("list the files under `{dir}`")))?;
        let mut files = Vec::new();
        let mut unreadable = Vec::new();
        for (path, id) in blobs {
            let blob = self
                .repo
                .find_blob(id)
                .map_err(local_git(format_args!("read `{path}`")))?;
            match std::str::from_utf8(blob.content()) {
                Ok(text) => files.push(SourceFile {
                    path,
                    text: text.to_string(),
                }),
                Err(_) => unreadable.push((path, "not UTF-8 text".to_string())),
            }
        }
        Ok((files, unreadable))
    }

    /// A tree: `parent`'s with each changed file's new text, modes kept.
    pub fn build_tree(&self, parent: Oid, edits: &[FileEdit]) -> Result<Oid> {
        let base = self.tree_of(parent)?;
        let mut builder = TreeUpdateBuilder::new();
        for edit in edits.iter().filter(|e| e.changed()) {
            let mode = match base.get_path(FsPath::new(&edit.path)) {
                Ok(entry) if entry.filemode() == i32::from(FileMode::BlobExecutable) => {
                    FileMode::BlobExecutable
                }
                _ => FileMode::Blob,
            };
            let blob = self
                .repo
                .blob(edit.new.as_bytes())
                .map_err(local_git(format_args!("write the new `{}`", edit.path)))?;
            builder.upsert(edit.path.as_str(), blob, mode);
        }
        Ok(builder
            .create_updated(&self.repo, &base)
            .map_err(local_git("write the new tree"))?)
    }

    /// The tree of a fetched commit.
    fn tree_of(&self, commit: Oid) -> Result<git2::Tree<'_>> {
        Ok(self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(local_git(format_args!("read the tree of {commit}")))?)
    }

    /// Make the commit (not on any ref: the push names it), signed by
    /// `signer` when there is one, as `git commit -S` does: the signature of
    /// the commit's bytes goes into its `gpgsig` header.
    pub fn commit(
        &self,
        parent: Oid,
        tree: Oid,
        message: &str,
        author: &Signature<'_>,
        signer: Option<&crate::signing::Signer>,
    ) -> Result<Oid> {
        let doing = format!("make the commit on {parent}");
        let doing = doing.as_str();
        let parent = self.repo.find_commit(parent).map_err(local_git(doing))?;
        let tree = self.repo.find_tree(tree).map_err(local_git(doing))?;
        let Some(signer) = signer else {
            return Ok(self
                .repo
                .commit(None, author, author, message, &tree, &[&parent])
                .map_err(local_git(doing))?);
        };
        let content = self
            .repo
            .commit_create_buffer(author, author, message, &tree, &[&parent])
            .map_err(local_git(doing))?;
        // The buffer is UTF-8: git2 wrote it from `&str`s.
        let content = String::from_utf8_lossy(&content).into_owned();
        let signature = signer.sign(content.as_bytes())?;
        // Without its last newline, libgit2 writes the header byte for byte
        // as git does (no trailing ` ` continuation line).
        Ok(self
            .repo
            .commit_signed(&content, signature.trim_end_matches('\n'), None)
            .map_err(local_git(doing))?)
    }

    /// Whether `commit` carries a signature (`gpgsig`) made by `signer`.
    pub fn is_signed_by(&self, commit: Oid, signer: &crate::signing::Signer) -> bool {
        self.repo
            .extract_signature(&commit, None)
            .is_ok_and(|(signature, _)| signature.as_str().is_ok_and(|s| signer.made(s)))
    }

    /// The message of `commit`, when its object was fetched.
    pub fn message_of(&self, commit: Oid) -> Option<String> {
        let commit = self.repo.find_commit(commit).ok()?;
        commit.message().ok().map(str::to_string)
    }

    /// Tree and first parent of `commit`, when its objects were fetched.
    /// Read from the raw object: a shallow commit's parents are hidden.
    pub fn tree_and_parent(&self, commit: Oid) -> Option<(Oid, Option<Oid>)> {
        let odb = self.repo.odb().ok()?;
        let object = odb.read(commit).ok()?;
        let text = std::str::from_utf8(object.data()).ok()?;
        let header = text.split("\n\n").next()?;
        let field = |name: &str| {
            header
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|hex| Oid::from_str(hex.trim()).ok())
        };
        Some((field("tree ")?, field("parent ")))
    }

    pub fn has_commit(&self, commit: Oid) -> bool {
        self.repo.find_commit(commit).and_then(|c| c.tree()).is_ok()
    }
}
