//! Clone, read, commit and push without a working tree.
//!
//! A [`Session`] is a bare repository in a temporary directory that is removed
//! when the session is dropped. It fetches one branch at depth 1, reads files
//! as blobs from the fetched commit, writes new blob/tree/commit objects and
//! pushes them. Skipping the checkout is most of tagbump's speed: on a large
//! manifest repo the checkout costs more than the transfer.
//!
//! Facts this relies on (measured, see `docs/dependencies.md`):
//! `Remote::push` returns Ok even when the server rejects a ref, so rejections
//! are read in `push_update_reference`; the credentials callback is called
//! again after every failure, so attempts are capped; a host-key callback's
//! error text is replaced by libgit2's, so the detail is kept on our side.

mod auth;
mod errors;
pub mod hostkey;
mod objects;
mod transfer;
mod url;

pub use auth::Auth;
pub use errors::{declined, http_retry_after};
pub use url::{RemoteUrl, Scheme};

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path as FsPath;

use anyhow::{Context, Result};
use git2::{Oid, ProxyOptions, Repository};

use crate::targets::SourceFile;

/// The trailer that marks commits tagbump made; a review branch whose tip
/// lacks it has someone else's work on it and is never overwritten.
pub const TRAILER: &str = "Updated-by: tagbump";

/// Files read from a tree, and the paths that are not UTF-8 (with why).
pub type YamlFiles = (Vec<SourceFile>, Vec<(String, String)>);

/// What the remote advertised: branch tips and its default branch.
#[derive(Debug, Clone, Default)]
pub struct Advert {
    pub heads: BTreeMap<String, Oid>,
    pub default_branch: Option<String>,
}

impl Advert {
    pub fn head(&self, branch: &str) -> Option<Oid> {
        self.heads.get(branch).copied()
    }
}

/// The result of one push attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    Done,
    /// The ref moved since it was read (our lease no longer holds).
    Stale,
    /// The server refused the update, with its reason.
    Rejected(String),
}

/// What a callback saw that libgit2's own error text would hide.
#[derive(Debug, Default)]
pub(super) struct Seen {
    host_key: Option<Box<hostkey::Refused>>,
    auth: Option<String>,
    /// What the server said on the sideband (`remote: …` lines), scrubbed.
    remote_lines: Vec<String>,
}

/// A bare repository in a temporary directory, bound to one remote.
pub struct Session {
    // Dropped last: removes the directory.
    repo: Repository,
    remote: RemoteUrl,
    auth: Auth,
    seen: RefCell<Seen>,
    dir: tempfile::TempDir,
}

impl Session {
    pub fn open(remote: RemoteUrl, auth: Auth) -> Result<Session> {
        let dir = crate::interrupt::temp_dir("tagbump-")
            .context("cannot create a temporary directory")?;
        let repo = Repository::init_bare(dir.path()).context("cannot create a bare repository")?;
        Ok(Session {
            repo,
            remote,
            auth,
            seen: RefCell::new(Seen::default()),
            dir,
        })
    }

    pub fn path(&self) -> &FsPath {
        self.dir.path()
    }

    pub fn repo(&self) -> &Repository {
        &self.repo
    }

    pub fn url(&self) -> &str {
        &self.remote.url
    }

    pub(super) fn proxy() -> ProxyOptions<'static> {
        let mut proxy = ProxyOptions::new();
        proxy.auto();
        proxy
    }
}

/// Every git connection gets a connect timeout and an idle timeout
/// (libgit2 applies them to HTTP; SSH has only the --timeout watchdog).
pub fn set_timeouts() {
    // SAFETY: set once, before any network operation, from the main thread.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(15_000);
        let _ = git2::opts::set_server_timeout_in_milliseconds(60_000);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Removed and forgotten in one step (`dir`, dropped after this,
        // then finds nothing to remove).
        crate::interrupt::remove_dir(self.dir.path());
    }
}
