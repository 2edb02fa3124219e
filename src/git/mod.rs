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

pub mod hostkey;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path as FsPath;

use anyhow::{Context, Result};
use git2::build::TreeUpdateBuilder;
use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, Direction, ErrorClass, ErrorCode,
    FetchOptions, FileMode, ObjectType, Oid, ProxyOptions, PushOptions, RemoteCallbacks,
    Repository, Signature, TreeWalkMode, TreeWalkResult,
};

use crate::error::{local_git, Failure, Kind};
use crate::secret::{scrub, Secret};
use crate::targets::{FileEdit, SourceFile};

/// The trailer that marks commits tagbump made; a review branch whose tip
/// lacks it has someone else's work on it and is never overwritten.
pub const TRAILER: &str = "Updated-by: tagbump";

/// How to authenticate and whom to trust.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// A private key (OpenSSH or PEM text), held in memory only.
    pub ssh_key: Option<Secret>,
    /// Where the key was configured, for messages: the variable, or the file
    /// (`SSH_PRIVATE_KEY` when none was).
    pub ssh_key_source: String,
    pub ssh_passphrase: Option<Secret>,
    /// Use ssh-agent when no key is given and `SSH_AUTH_SOCK` is set.
    pub ssh_agent: bool,
    pub host_keys: hostkey::Policy,
    /// HTTPS token, sent as the password of `http_user`.
    pub token: Option<Secret>,
    pub http_user: String,
    /// The CA sources TLS trusts, for messages: `SSL_CERT_FILE=…`, `GIT_SSL_CAINFO=…`.
    pub trust: Vec<String>,
}

/// The transport a URL uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Ssh,
    Https,
    Http,
    /// A path or `file://` URL: no shallow fetches (libgit2's local transport
    /// refuses them), used by `tagbump demo`.
    Local,
}

/// A remote URL with any credentials taken out of it.
#[derive(Debug, Clone)]
pub struct RemoteUrl {
    /// What libgit2 is given, and what is printed: never holds a password.
    pub url: String,
    pub scheme: Scheme,
    pub host: String,
    pub port: Option<u16>,
    /// The user named in the URL (`git@…`, `oauth2:…@`), if any.
    pub user: Option<String>,
    /// A password or token that was embedded in the URL.
    pub embedded_secret: Option<Secret>,
}

impl RemoteUrl {
    pub fn parse(text: &str) -> Result<RemoteUrl, Failure> {
        let usage = |why: &str| {
            Failure::new(Kind::Usage, format!("invalid repository URL: {why}")).hint(
                "use ssh://git@host[:port]/group/repo.git, git@host:group/repo.git, \
                 https://host/group/repo.git or a local path",
            )
        };
        if text.contains("://") {
            let mut url = url::Url::parse(text).map_err(|e| usage(&e.to_string()))?;
            let scheme = match url.scheme() {
                "ssh" | "git+ssh" | "ssh+git" => Scheme::Ssh,
                "https" => Scheme::Https,
                "http" => Scheme::Http,
                "file" => Scheme::Local,
                other => return Err(usage(&format!("the `{other}` scheme is not supported"))),
            };
            let user = Some(url.username().to_string()).filter(|u| !u.is_empty());
            let embedded_secret = url.password().map(|p| Secret::new(percent_decode(p)));
            let _ = url.set_password(None);
            if scheme != Scheme::Ssh {
                let _ = url.set_username("");
            }
            Ok(RemoteUrl {
                host: url.host_str().unwrap_or_default().to_string(),
                port: url.port(),
                url: url.to_string(),
                scheme,
                user,
                embedded_secret,
            })
        } else if let Some((userinfo, host_path)) = scp_with_password(text) {
            // `oauth2:TOKEN@host:path`: remember the secret first, so no
            // message can show it, then refuse: SSH does not take passwords.
            if let Some((_, secret)) = userinfo.split_once(':') {
                let _ = Secret::new(secret);
            }
            let user = userinfo.split(':').next().unwrap_or_default();
            Err(usage(&format!(
                "`{user}:***@{host_path}` holds a password or token, and an scp-like address \
                 is SSH, which uses keys"
            )))
        } else if let Some((user_host, _path)) = scp_like(text) {
            let (user, host) = match user_host.split_once('@') {
                Some((u, h)) => (Some(u.to_string()), h.to_string()),
                None => (None, user_host.to_string()),
            };
            Ok(RemoteUrl {
                url: text.to_string(),
                scheme: Scheme::Ssh,
                host,
                port: None,
                user,
                embedded_secret: None,
            })
        } else {
            if text.is_empty() {
                return Err(usage("it is empty"));
            }
            Ok(RemoteUrl {
                url: text.to_string(),
                scheme: Scheme::Local,
                host: String::new(),
                port: None,
                user: None,
                embedded_secret: None,
            })
        }
    }
}

/// Undo URL percent-encoding (`%2F` -> `/`) in a password.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// `user:secret@host:path`: an scp-like address with a password in it.
fn scp_with_password(text: &str) -> Option<(&str, &str)> {
    let (userinfo, rest) = text.split_once('@')?;
    (userinfo.contains(':') && !userinfo.contains('/') && rest.contains(':'))
        .then_some((userinfo, rest))
}

/// `[user@]host:path` (scp-like SSH), but not a Windows drive or a local path.
fn scp_like(text: &str) -> Option<(&str, &str)> {
    let (head, path) = text.split_once(':')?;
    if head.is_empty() || head.contains('/') || path.starts_with("//") || head.len() == 1 {
        return None;
    }
    Some((head, path))
}

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
struct Seen {
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

    fn proxy() -> ProxyOptions<'static> {
        let mut proxy = ProxyOptions::new();
        proxy.auto();
        proxy
    }

    /// Callbacks for one connection: credentials (capped), host keys, and
    /// push rejections into `rejected`.
    fn callbacks<'a>(&'a self, rejected: Option<&'a RefCell<Vec<String>>>) -> RemoteCallbacks<'a> {
        let mut callbacks = RemoteCallbacks::new();
        let mut tries = 0;
        callbacks.credentials(move |_url, url_user, allowed| {
            tries += 1;
            self.credential(tries, url_user, allowed)
        });
        let name = hostkey::lookup_name(&self.remote.host, self.remote.port);
        callbacks.certificate_check(move |cert, _host| {
            let Some(key) = cert.as_hostkey() else {
                // TLS: libgit2 checks the chain against the CA store.
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            let (Some(blob), Some(sha256)) = (key.hostkey(), key.hash_sha256()) else {
                return Err(git2::Error::from_str(
                    "the server's host key could not be read",
                ));
            };
            let offered = hostkey::Offered {
                blob: blob.to_vec(),
                sha256: *sha256,
            };
            match hostkey::verify(&self.auth.host_keys, &name, &offered) {
                Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
                Err(refused) => {
                    self.seen.borrow_mut().host_key = Some(refused);
                    Err(git2::Error::from_str("host key verification failed"))
                }
            }
        });
        callbacks.sideband_progress(move |data| {
            let text = String::from_utf8_lossy(data);
            let mut seen = self.seen.borrow_mut();
            for line in text.split(['\n', '\r']).map(str::trim) {
                // Progress counters are noise; what a hook says is not.
                let progress = [
                    "Counting objects",
                    "Compressing objects",
                    "Enumerating objects",
                    "Total ",
                ]
                .iter()
                .any(|p| line.starts_with(p));
                if !line.is_empty() && !progress && seen.remote_lines.len() < 50 {
                    seen.remote_lines.push(scrub(line));
                }
            }
            true
        });
        if let Some(rejected) = rejected {
            callbacks.push_update_reference(move |name, status| {
                if let Some(why) = status {
                    rejected.borrow_mut().push(format!("{name}: {why}"));
                }
                Ok(())
            });
        }
        callbacks
    }

    /// Credentials for the `tries`-th request of one connection: the SSH
    /// key (from memory, or the agent) or the token, once each; a second
    /// request means the first was refused, and that is said, not retried.
    fn credential(
        &self,
        tries: u32,
        url_user: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        let fail = |why: String| {
            self.seen.borrow_mut().auth = Some(why.clone());
            Err(git2::Error::from_str(&why))
        };
        if tries > 2 {
            return fail("the server refused the credentials".into());
        }
        let user = url_user.unwrap_or("git");
        if allowed.contains(CredentialType::SSH_KEY) {
            if tries > 1 {
                return fail(format!("the server refused the SSH key for user `{user}`"));
            }
            if let Some(key) = &self.auth.ssh_key {
                let passphrase = self.auth.ssh_passphrase.as_ref().map(Secret::expose);
                return Cred::ssh_key_from_memory(user, None, key.expose(), passphrase)
                    .or_else(|e| fail(format!("cannot use the SSH private key: {}", e.message())));
            }
            if self.auth.ssh_agent {
                return Cred::ssh_key_from_agent(user);
            }
            return fail(format!(
                "no SSH key: set {} (the key itself) or pass --ssh-key-file",
                self.auth.key_source()
            ));
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if tries > 1 {
                return fail("the server refused the token".into());
            }
            return match &self.auth.token {
                Some(token) => Cred::userpass_plaintext(&self.auth.http_user, token.expose()),
                None => fail("the server wants a token: set TAGBUMP_GIT_TOKEN (or GITLAB_TOKEN, GITHUB_TOKEN, CI_JOB_TOKEN)".into()),
            };
        }
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(user);
        }
        fail("the server asked for an unsupported kind of credentials".into())
    }

    /// Turn a libgit2 error into one the user can act on.
    fn failure(&self, err: git2::Error, doing: &str) -> anyhow::Error {
        let seen = self.seen.borrow();
        let url = &self.remote.url;
        if let Some(refused) = &seen.host_key {
            return Failure::new(Kind::Auth, format!("cannot {doing} {url}: {refused}"))
                .hint(refused.hint())
                .into();
        }
        let message = scrub(err.message());
        if let Some(why) = &seen.auth {
            return Failure::new(
                Kind::Auth,
                format!("cannot {doing} {url}: authentication failed: {why}"),
            )
            .hint(auth_hint(self.remote.scheme, &self.auth))
            .into();
        }
        if message.contains("private key") {
            return Failure::new(Kind::Auth, format!("cannot {doing} {url}: the SSH private key cannot be used: {message}"))
                .hint(format!(
                    "{} must hold the whole key, from `-----BEGIN` to `-----END`, in OpenSSH \
                     or PEM format (or be the path to such a file); a passphrase goes in SSH_KEY_PASSPHRASE",
                    self.auth.key_source()
                ))
                .into();
        }
        let auth_like = err.code() == ErrorCode::Auth
            || message.contains("401")
            || message.contains("403")
            || message.to_lowercase().contains("authenticat");
        if auth_like {
            return Failure::new(
                Kind::Auth,
                format!("cannot {doing} {url}: authentication failed: {message}"),
            )
            .hint(auth_hint(self.remote.scheme, &self.auth))
            .into();
        }
        if err.code() == ErrorCode::Certificate || err.class() == ErrorClass::Ssl {
            let trusted = if self.auth.trust.is_empty() {
                "the system store".to_string()
            } else {
                self.auth.trust.join(" and ")
            };
            return Failure::new(Kind::Auth, format!("cannot {doing} {url}: TLS: {message}"))
                .hint(format!(
                    "trusted: {trusted}; for a private CA, put its PEM certificate in \
                     GIT_SSL_CAINFO (it adds to the others)"
                ))
                .into();
        }
        let failure = Failure::new(Kind::Remote, format!("cannot {doing} {url}: {message}"));
        if transient(&message) {
            return failure
                .hint("the server or the network failed for now; it was retried as long as --attempts and --timeout allowed")
                .transient()
                .into();
        }
        failure
            .hint("check the URL, and that the server is reachable from here (HTTPS_PROXY/NO_PROXY are honoured)")
            .into()
    }

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
        self.seen.replace(Seen::default());
        let mut remote = self
            .repo
            .remote_anonymous(&self.remote.url)
            .map_err(|e| self.failure(e, "read"))?;
        let mut connection = remote
            .connect_auth(
                Direction::Fetch,
                Some(self.callbacks(None)),
                Some(Self::proxy()),
            )
            .map_err(|e| self.failure(e, "connect to"))?;
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
        self.seen.replace(Seen::default());
        let local = "refs/tagbump/push";
        self.repo
            .reference(local, commit, true, "tagbump: to push")
            .map_err(local_git(format_args!("point `{local}` at {commit}")))?;
        let mut remote = self
            .repo
            .remote_anonymous(&self.remote.url)
            .map_err(|e| self.failure(e, "push to"))?;
        let mut connection = remote
            .connect_auth(
                Direction::Push,
                Some(self.callbacks(None)),
                Some(Self::proxy()),
            )
            .map_err(|e| self.failure(e, "push to"))?;
        let target = format!("refs/heads/{branch}");
        let current = connection
            .list()
            .map_err(|e| self.failure(e, "list branches of"))?
            .iter()
            .find(|h| h.name() == target)
            .map(|h| h.oid());
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
}

/// Whether a transport error (not an authentication or host-key one, which
/// are told apart before) may pass on a retry: a connection shed before the
/// SSH handshake (sshd's `MaxStartups`), refused, reset or timed out, a
/// transfer cut short, a temporary DNS failure, an HTTP 408/429/5xx. A
/// missing repository, a refused permission, a bad URL or an unknown host
/// name will not pass, nor will anything not known to.
pub fn transient(message: &str) -> bool {
    let m = message.to_lowercase();
    const PERMANENT: &[&str] = &[
        "http status code: 401",
        "http status code: 403",
        "http status code: 404",
        "not found",
        "does not appear to be a git repository",
        "permission denied",
        "unsupported url",
        "malformed",
        "name or service not known",
        "no address associated",
        "could not resolve host",
        "authenticat",
        "hostkey",
        "certificate",
    ];
    const TRANSIENT: &[&str] = &[
        "failed getting banner",
        "failed to start ssh session",
        "unable to exchange encryption keys",
        "failed to open ssh channel",
        "ssh could not read data",
        "ssh could not write data",
        "ssh could not execute request",
        "connection refused",
        "connection reset",
        "connection aborted",
        "connection closed",
        "timed out",
        "timeout",
        "broken pipe",
        "early eof",
        "unexpected eof",
        "hung up",
        "temporary failure in name resolution",
        "http status code: 408",
        "http status code: 429",
        "http status code: 500",
        "http status code: 502",
        "http status code: 503",
        "http status code: 504",
        "failed to connect",
        "could not connect",
        "failed to send",
        "failed to receive",
        "error sending request",
        "error receiving",
        "short read",
    ];
    !PERMANENT.iter().any(|p| m.contains(p)) && TRANSIENT.iter().any(|p| m.contains(p))
}

/// What a smart-HTTP server that answered 429 or 503 asks for in
/// `Retry-After`. libgit2 does not hand response headers on, so the first
/// request of a fetch (`info/refs`) is made once more, with the same
/// credentials, to read it. `None` for other transports, or when the server
/// does not say (or now answers something else).
pub fn http_retry_after(remote: &RemoteUrl, auth: &Auth) -> Option<std::time::Duration> {
    if !matches!(remote.scheme, Scheme::Http | Scheme::Https) {
        return None;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let _inside = runtime.enter();
    let client = crate::http::client(std::time::Duration::from_secs(10)).ok()?;
    let url = format!(
        "{}/info/refs?service=git-upload-pack",
        remote.url.trim_end_matches('/')
    );
    let mut request = client.get(url);
    if let Some(token) = auth.token.as_ref().or(remote.embedded_secret.as_ref()) {
        request = request.basic_auth(&auth.http_user, Some(token.expose()));
    }
    let response = runtime.block_on(request.send()).ok()?;
    if !matches!(response.status().as_u16(), 429 | 503) {
        return None;
    }
    crate::http::retry_after(response.headers())
}

/// Whether a push the server refused was declined by its policy (a hook, a
/// protected branch) rather than lost to a concurrent update.
pub fn declined(status: &str) -> bool {
    let s = status.to_lowercase();
    [
        "hook declined",
        "protected",
        "not allowed",
        "denied",
        "declined",
        "forbidden",
    ]
    .iter()
    .any(|p| s.contains(p))
}

impl Drop for Session {
    fn drop(&mut self) {
        // Removed and forgotten in one step (`dir`, dropped after this,
        // then finds nothing to remove).
        crate::interrupt::remove_dir(self.dir.path());
    }
}

impl Auth {
    /// The variable or file the SSH key was configured in, for messages.
    pub fn key_source(&self) -> &str {
        if self.ssh_key_source.is_empty() {
            "SSH_PRIVATE_KEY"
        } else {
            &self.ssh_key_source
        }
    }
}

fn auth_hint(scheme: Scheme, auth: &Auth) -> String {
    match scheme {
        Scheme::Ssh => format!(
            "check that {} holds a key the server accepts for this repository, with write \
             access to push",
            auth.key_source()
        ),
        _ => "check the token and its scopes: GitLab needs `write_repository` (a job token needs \
              push access enabled for the project), GitHub needs `contents: write`"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets() {
        let r =
            RemoteUrl::parse("https://oauth2:glpat-s3cr3t%2Fx@gitlab.example.com/g/r.git").unwrap();
        assert_eq!(r.url, "https://gitlab.example.com/g/r.git");
        assert_eq!(r.user.as_deref(), Some("oauth2"));
        assert_eq!(r.embedded_secret.unwrap().expose(), "glpat-s3cr3t/x");
        assert_eq!(r.scheme, Scheme::Https);
    }

    #[test]
    fn transport_errors_are_told_apart() {
        for m in [
            "failed to start SSH session: Failed getting banner",
            "failed to connect to 127.0.0.1: Connection refused",
            "unexpected http status code: 503",
            "SSH could not read data: Timed out waiting on socket",
            "early EOF",
            "failed to resolve address for h: Temporary failure in name resolution",
        ] {
            assert!(transient(m), "{m}");
        }
        for m in [
            "unexpected http status code: 404",
            "unexpected http status code: 401",
            "failed to resolve address for nope.invalid: Name or service not known",
            "unsupported URL protocol",
            "remote rejected authentication: Failure",
            "some new message nobody has seen",
        ] {
            assert!(!transient(m), "{m}");
        }
        assert!(declined("refs/heads/main: pre-receive hook declined"));
        assert!(!declined("refs/heads/main: failed to update ref"));
    }

    #[test]
    fn ssh_forms() {
        let r = RemoteUrl::parse("ssh://git@127.0.0.1:2222/team/m.git").unwrap();
        assert_eq!(
            (r.scheme, r.host.as_str(), r.port),
            (Scheme::Ssh, "127.0.0.1", Some(2222))
        );
        assert_eq!(r.user.as_deref(), Some("git"));
        let r = RemoteUrl::parse("git@gitlab.com:team/manifests.git").unwrap();
        assert_eq!(
            (r.scheme, r.host.as_str(), r.port),
            (Scheme::Ssh, "gitlab.com", None)
        );
        assert_eq!(r.url, "git@gitlab.com:team/manifests.git");
    }

    #[test]
    fn local_and_bad() {
        assert_eq!(
            RemoteUrl::parse("/srv/git/m.git").unwrap().scheme,
            Scheme::Local
        );
        assert_eq!(
            RemoteUrl::parse("file:///srv/git/m.git").unwrap().scheme,
            Scheme::Local
        );
        assert!(RemoteUrl::parse("ftp://x/y").is_err());
        // A token in an scp-like address is refused without being shown.
        let err =
            RemoteUrl::parse("oauth2:glpat-SCPLIKE123456@gitlab.example.com:g/r.git").unwrap_err();
        assert!(
            !err.message.contains("glpat-SCPLIKE123456"),
            "{}",
            err.message
        );
        assert!(err
            .message
            .contains("oauth2:***@gitlab.example.com:g/r.git"));
        assert_eq!(crate::secret::scrub("x glpat-SCPLIKE123456 y"), "x *** y");
        assert!(RemoteUrl::parse("").is_err());
    }
}
