//! The two connections a run makes: discovery and fetch on one, the push
//! (a compare-and-swap on the advertised tip) on another.

use std::cell::RefCell;

use anyhow::Result;
use git2::{
    AutotagOption, Direction, ErrorCode, FetchOptions, Oid, PushOptions, Remote, RemoteConnection,
};

use super::{Advert, Pushed, Scheme, Seen, Session};
use crate::error::local_git;
use crate::secret::scrub;

impl Session {
    /// What the server said on the sideband during the last connection.
    pub fn remote_lines(&self) -> Vec<String> {
        self.seen.borrow().remote_lines.clone()
    }

    /// One connection for discovery and fetch: read the branch list and the
    /// default branch, let `choose` name the branches to fetch, and fetch them
    /// (depth 1 except over the local transport) on the same connection. The
    /// fetched tips are exactly the advertised ones (`fetched` returns them).
    /// One SSH handshake instead of two is faster, and kinder to a server
    /// that sheds connections (`MaxStartups`).
    pub fn discover_and_fetch(
        &self,
        choose: impl FnOnce(&Advert) -> Result<Vec<String>>,
    ) -> Result<Advert> {
        let mut remote = self.remote_handle("read")?;
        let (mut connection, advert) = self.connect(&mut remote, Direction::Fetch)?;
        let wanted = choose(&advert)?;
        let specs: Vec<String> = wanted
            .iter()
            .map(|b| format!("+refs/heads/{b}:refs/remotes/origin/{b}"))
            .collect();
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(self.callbacks(None))
            .proxy_options(Self::proxy())
            .download_tags(AutotagOption::None);
        if self.remote.scheme != Scheme::Local {
            options.depth(1);
        }
        connection
            .remote()
            .download(&specs, Some(&mut options))
            .map_err(|e| self.failure(e, "fetch from"))?;
        // What came over the wire (a local path's transport reports none).
        let stats = connection.remote().stats();
        if stats.received_bytes() > 0 {
            crate::log::stage(&format!(
                "fetched {} objects, {}",
                stats.received_objects(),
                crate::log::bytes(stats.received_bytes())
            ));
        }
        drop(options);
        drop(connection);
        for branch in &wanted {
            if let Some(oid) = advert.head(branch).filter(|&oid| self.has_commit(oid)) {
                self.repo
                    .reference(
                        &format!("refs/remotes/origin/{branch}"),
                        oid,
                        true,
                        "tagbump: fetched",
                    )
                    .map_err(local_git(format_args!("record the fetched `{branch}`")))?;
            }
        }
        Ok(advert)
    }

    /// The tip of `branch` as fetched (not as advertised: it may have moved
    /// between the two, and only what was fetched can be built on).
    pub fn fetched(&self, branch: &str) -> Option<Oid> {
        self.repo
            .refname_to_id(&format!("refs/remotes/origin/{branch}"))
            .ok()
    }

    /// Push `commit` to `branch`, only if the remote branch still points at
    /// `expect` (`None`: it must not exist). The check runs on the push
    /// connection itself, whose advertised value is also the old value sent
    /// to the server, so the server refuses the update if anything moved in
    /// between: a compare-and-swap, like `git push --force-with-lease`.
    pub fn push(
        &self,
        commit: Oid,
        branch: &str,
        expect: Option<Oid>,
        force: bool,
    ) -> Result<Pushed> {
        let local = "refs/tagbump/push";
        self.repo
            .reference(local, commit, true, "tagbump: to push")
            .map_err(local_git(format_args!("point `{local}` at {commit}")))?;
        let mut remote = self.remote_handle("push to")?;
        let (mut connection, advert) = self.connect(&mut remote, Direction::Push)?;
        let target = format!("refs/heads/{branch}");
        let current = advert.head(branch);
        if current != expect {
            return Ok(Pushed::Stale);
        }
        // libgit2's local transport updates the ref without comparing it
        // to what it was: the objects are copied, and the branch is then
        // swapped under the repository's ref lock.
        if self.remote.scheme == Scheme::Local {
            drop(connection);
            return self.push_local(&target, commit, expect);
        }
        let spec = format!("{}{local}:{target}", if force { "+" } else { "" });
        let rejected = RefCell::new(Vec::new());
        let mut options = PushOptions::new();
        options
            .remote_callbacks(self.callbacks(Some(&rejected)))
            .proxy_options(Self::proxy());
        let result = connection
            .remote()
            .push(&[spec.as_str()], Some(&mut options));
        drop(options);
        match result {
            Ok(()) => {}
            Err(e) if matches!(e.code(), ErrorCode::NotFastForward | ErrorCode::Modified) => {
                return Ok(Pushed::Stale)
            }
            Err(e) => return Err(self.failure(e, "push to")),
        }
        let rejected = rejected.into_inner();
        if rejected.is_empty() {
            Ok(Pushed::Done)
        } else {
            Ok(Pushed::Rejected(scrub(&rejected.join("; "))))
        }
    }

    /// Copy `commit`'s new objects into the local repository, then point
    /// `target` at it if it still is `expect` (`None`: it must not exist).
    fn push_local(&self, target: &str, commit: Oid, expect: Option<Oid>) -> Result<Pushed> {
        let path = self
            .remote
            .url
            .strip_prefix("file://")
            .unwrap_or(&self.remote.url);
        let there = git2::Repository::open(path).map_err(|e| self.failure(e, "push to"))?;
        copy_objects(&self.repo, &there, commit).map_err(|e| self.failure(e, "push to"))?;
        let swapped = match expect {
            Some(old) => there
                .reference_matching(target, commit, true, old, "tagbump: push")
                .map(|_| true),
            None => create_exclusively(&there, target, commit),
        };
        match swapped {
            Ok(true) => Ok(Pushed::Done),
            Ok(false) => Ok(Pushed::Stale),
            // Another writer holds the ref's lock, or changed it first.
            Err(e)
                if matches!(
                    e.code(),
                    ErrorCode::Modified | ErrorCode::Exists | ErrorCode::Locked
                ) =>
            {
                Ok(Pushed::Stale)
            }
            Err(e) => Err(self.failure(e, "push to")),
        }
    }

    /// A fresh in-memory remote for the session's URL; what callbacks saw
    /// on an earlier connection is forgotten.
    fn remote_handle(&self, doing: &str) -> Result<Remote<'_>> {
        self.seen.replace(Seen::default());
        self.repo
            .remote_anonymous(&self.remote.url)
            .map_err(|e| self.failure(e, doing))
    }

    /// Connect in `direction` (credentials, host keys, proxy) and read what
    /// the server advertises: its branch tips and default branch.
    fn connect<'s, 'c>(
        &'s self,
        remote: &'c mut Remote<'s>,
        direction: Direction,
    ) -> Result<(RemoteConnection<'s, 'c, 's>, Advert)> {
        let doing = match direction {
            Direction::Fetch => "connect to",
            Direction::Push => "push to",
        };
        let connection = remote
            .connect_auth(direction, Some(self.callbacks(None)), Some(Self::proxy()))
            .map_err(|e| self.failure(e, doing))?;
        let mut advert = Advert::default();
        for head in connection
            .list()
            .map_err(|e| self.failure(e, "list branches of"))?
        {
            if let Some(branch) = head.name().strip_prefix("refs/heads/") {
                advert.heads.insert(branch.to_string(), head.oid());
            }
        }
        advert.default_branch = connection.default_branch().ok().and_then(|b| {
            b.as_str()
                .ok()
                .map(|s| s.trim_start_matches("refs/heads/").to_string())
        });
        Ok((connection, advert))
    }
}

/// Create `target` pointing at `commit` only if it does not exist, under
/// git's own ref lock (`<ref>.lock`, created exclusively): libgit2 checks a
/// new ref's absence before taking the lock, so two creators could both win.
/// `Ok(false)`: it exists, or another writer holds the lock.
fn create_exclusively(
    repo: &git2::Repository,
    target: &str,
    commit: Oid,
) -> Result<bool, git2::Error> {
    let io = |e: std::io::Error| git2::Error::from_str(&e.to_string());
    let path = repo.path().join(target);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let lock = path.with_file_name(format!("{name}.lock"));
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&lock)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(io(e)),
    };
    if repo.find_reference(target).is_ok() {
        let _ = std::fs::remove_file(&lock);
        return Ok(false);
    }
    use std::io::Write as _;
    let written = writeln!(file, "{commit}").and_then(|()| file.sync_all());
    drop(file);
    match written.and_then(|()| std::fs::rename(&lock, &path)) {
        Ok(()) => Ok(true),
        Err(e) => {
            let _ = std::fs::remove_file(&lock);
            Err(io(e))
        }
    }
}

/// The objects of `commit` that `to` lacks, copied from `from` (its parents
/// are there already: the push is on top of a tip that repository has).
fn copy_objects(
    from: &git2::Repository,
    to: &git2::Repository,
    commit: Oid,
) -> Result<(), git2::Error> {
    let (src, dst) = (from.odb()?, to.odb()?);
    let mut pending = vec![commit];
    while let Some(oid) = pending.pop() {
        if dst.exists(oid) {
            continue;
        }
        let object = src.read(oid)?;
        dst.write(object.kind(), object.data())?;
        match object.kind() {
            git2::ObjectType::Commit => pending.push(from.find_commit(oid)?.tree_id()),
            git2::ObjectType::Tree => pending.extend(
                from.find_tree(oid)?
                    .iter()
                    .filter(|e| e.kind() != Some(git2::ObjectType::Commit))
                    .map(|e| e.id()),
            ),
            _ => {}
        }
    }
    Ok(())
}
