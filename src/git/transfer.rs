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
        let rejected = RefCell::new(Vec::new());
        let mut options = PushOptions::new();
        options
            .remote_callbacks(self.callbacks(Some(&rejected)))
            .proxy_options(Self::proxy());
        let spec = format!("{}{local}:{target}", if force { "+" } else { "" });
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
