//! What a failed git operation means: authentication, host key, TLS, a
//! transient fault worth a retry, or a permanent one; and what a refused push
//! or a busy smart-HTTP server says.

use git2::{ErrorClass, ErrorCode};

use super::auth::auth_hint;
use super::{Auth, RemoteUrl, Scheme, Session};
use crate::error::{Failure, Kind};
use crate::secret::scrub;

impl Session {
    /// Turn a libgit2 error into one the user can act on.
    pub(super) fn failure(&self, err: git2::Error, doing: &str) -> anyhow::Error {
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
        let cause = classify(&err);
        if cause == Cause::Key {
            return Failure::new(Kind::Auth, format!("cannot {doing} {url}: the SSH private key cannot be used: {message}"))
                .hint(format!(
                    "{} must hold the whole key, from `-----BEGIN` to `-----END`, in OpenSSH \
                     or PEM format (or be the path to such a file); a passphrase goes in SSH_KEY_PASSPHRASE",
                    self.auth.key_source()
                ))
                .into();
        }
        if cause == Cause::Auth {
            return Failure::new(
                Kind::Auth,
                format!("cannot {doing} {url}: authentication failed: {message}"),
            )
            .hint(auth_hint(self.remote.scheme, &self.auth))
            .into();
        }
        if cause == Cause::Tls {
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
        if cause == Cause::Transient {
            return failure
                .hint("the server or the network failed for now; it was retried as long as --attempts and --timeout allowed")
                .transient()
                .into();
        }
        failure
            .hint("check the URL, and that the server is reachable from here (HTTPS_PROXY/NO_PROXY are honoured)")
            .into()
    }
}

/// What a libgit2 error from a connection means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// The SSH private key itself cannot be used (format, passphrase).
    Key,
    /// The server refused the credentials.
    Auth,
    /// The TLS handshake or the certificate failed.
    Tls,
    /// May pass on a retry.
    Transient,
    /// Will not pass: a missing repository, a bad URL, anything unknown.
    Permanent,
}

/// Classify by libgit2's code and class first. Its text is read only where
/// libgit2 has no finer code: libssh2's and the HTTP transport's failures
/// all come as `GenericError` of class `Ssh`, `Http`, `Net` or `Os`. Errors
/// of any other class (references, objects, the index) are never transient.
fn classify(err: &git2::Error) -> Cause {
    let text = err.message().to_lowercase();
    let transport = matches!(
        err.class(),
        ErrorClass::Net | ErrorClass::Ssh | ErrorClass::Http | ErrorClass::Os
    );
    match err.code() {
        ErrorCode::Certificate => return Cause::Tls,
        ErrorCode::Auth if text.contains("private key") => return Cause::Key,
        ErrorCode::Auth => return Cause::Auth,
        ErrorCode::Eof | ErrorCode::Timeout => return Cause::Transient,
        _ => {}
    }
    match err.class() {
        ErrorClass::Ssl => Cause::Tls,
        ErrorClass::Ssh if text.contains("private key") => Cause::Key,
        ErrorClass::Http
            if text.contains("status code: 401") || text.contains("status code: 403") =>
        {
            Cause::Auth
        }
        _ if transport && text.contains("authenticat") => Cause::Auth,
        _ if transport && transient(&text) => Cause::Transient,
        _ => Cause::Permanent,
    }
}

/// Whether a transport failure's text says it may pass on a retry: a
/// connection shed before the SSH handshake (sshd's `MaxStartups`), refused,
/// reset or timed out, a transfer cut short, a temporary DNS failure, an HTTP
/// 408/429/5xx. A missing repository, a refused permission, a bad URL or an
/// unknown host name will not pass, nor will anything not known to.
fn transient(m: &str) -> bool {
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
    let client = crate::http::client().ok()?;
    let url = format!(
        "{}/info/refs?service=git-upload-pack",
        remote.url.trim_end_matches('/')
    );
    let mut request = client.get(url).timeout(std::time::Duration::from_secs(10));
    if let Some(token) = auth.token.as_ref().or(remote.embedded_secret.as_ref()) {
        request = request.basic_auth(&auth.http_user, Some(token.expose()));
    }
    let response = crate::http::block_on(async { Ok(request.send().await?) }).ok()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_are_told_apart() {
        use git2::Error;
        let transient = [
            (
                ErrorClass::Ssh,
                "failed to start SSH session: Failed getting banner",
            ),
            (
                ErrorClass::Net,
                "failed to connect to 127.0.0.1: Connection refused",
            ),
            (ErrorClass::Http, "unexpected http status code: 503"),
            (
                ErrorClass::Ssh,
                "SSH could not read data: Timed out waiting on socket",
            ),
            (ErrorClass::Net, "early EOF"),
            (
                ErrorClass::Net,
                "failed to resolve address for h: Temporary failure in name resolution",
            ),
        ];
        for (class, m) in transient {
            let err = Error::new(ErrorCode::GenericError, class, m);
            assert_eq!(classify(&err), Cause::Transient, "{m}");
        }
        let timeout = Error::new(ErrorCode::Timeout, ErrorClass::Net, "a new wording");
        assert_eq!(classify(&timeout), Cause::Transient);
        let permanent = [
            (ErrorClass::Http, "unexpected http status code: 404"),
            (
                ErrorClass::Net,
                "failed to resolve address for nope.invalid: Name or service not known",
            ),
            (ErrorClass::Net, "unsupported URL protocol"),
            (ErrorClass::Net, "some new message nobody has seen"),
            // The same words outside a transport are not a network fault.
            (ErrorClass::Reference, "connection reset while locking"),
        ];
        for (class, m) in permanent {
            let err = Error::new(ErrorCode::GenericError, class, m);
            assert_eq!(classify(&err), Cause::Permanent, "{m}");
        }
        let refused = Error::new(
            ErrorCode::Auth,
            ErrorClass::Ssh,
            "remote rejected authentication: Failure",
        );
        assert_eq!(classify(&refused), Cause::Auth);
        let http = Error::new(
            ErrorCode::GenericError,
            ErrorClass::Http,
            "unexpected http status code: 401",
        );
        assert_eq!(classify(&http), Cause::Auth);
        let key = Error::new(
            ErrorCode::Auth,
            ErrorClass::Ssh,
            "Unable to extract public key from private key file",
        );
        assert_eq!(classify(&key), Cause::Key);
        let tls = Error::new(
            ErrorCode::Certificate,
            ErrorClass::Ssl,
            "the SSL certificate is invalid",
        );
        assert_eq!(classify(&tls), Cause::Tls);
        assert!(declined("refs/heads/main: pre-receive hook declined"));
        assert!(!declined("refs/heads/main: failed to update ref"));
    }
}
