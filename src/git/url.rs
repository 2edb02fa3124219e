//! Remote URLs: SSH (`ssh://`, scp-like), HTTPS, HTTP and local paths, with
//! any password or token taken out of them so that what is printed never
//! holds one.

use anyhow::Result;

use crate::error::{Failure, Kind};
use crate::secret::Secret;

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
