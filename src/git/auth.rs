//! How a session authenticates and whom it trusts: the credentials callback
//! (capped, as libgit2 calls it again after every failure), the host-key
//! check, and the hints a refused login gets.

use std::cell::RefCell;

use anyhow::Result;
use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};

use super::{hostkey, Scheme, Session};
use crate::secret::{scrub, Secret};

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

pub(super) fn auth_hint(scheme: Scheme, auth: &Auth) -> String {
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

impl Session {
    /// Callbacks for one connection: credentials (capped), host keys, and
    /// push rejections into `rejected`.
    pub(super) fn callbacks<'a>(
        &'a self,
        rejected: Option<&'a RefCell<Vec<String>>>,
    ) -> RemoteCallbacks<'a> {
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
}
