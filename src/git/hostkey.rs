//! SSH host key verification: on by default, never trust-on-first-use.
//!
//! Keys come from known_hosts text (the `SSH_KNOWN_HOSTS` variable GitLab CI
//! users keep, a file, or `~/.ssh/known_hosts`) or from pinned `SHA256:`
//! fingerprints. libgit2 hands the callback the raw key but not the port, so
//! the `[host]:port` name is built here from the URL. An unknown or changed
//! key is refused with the offered fingerprint and how to pin it.

use std::fmt;
use std::path::PathBuf;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use ssh_key::known_hosts::{self, HostPatterns, Marker};

/// Where known host keys come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// known_hosts text held in an environment variable (named for messages).
    Env {
        name: String,
        text: String,
    },
    File(PathBuf),
}

impl Source {
    fn describe(&self) -> String {
        match self {
            Source::Env { name, .. } => format!("${name}"),
            Source::File(path) => path.display().to_string(),
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            Source::Env { text, .. } => Some(text.clone()),
            Source::File(path) => std::fs::read_to_string(path).ok(),
        }
    }
}

/// How host keys are checked.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub sources: Vec<Source>,
    /// Pinned `SHA256:…` fingerprints; when given, known_hosts is not consulted.
    pub fingerprints: Vec<String>,
    /// Accept any key. Only for throwaway test setups; loudly named on the CLI.
    pub insecure_accept_any: bool,
}

/// The key a server offered.
#[derive(Debug, Clone)]
pub struct Offered {
    /// The SSH wire-format key blob.
    pub blob: Vec<u8>,
    pub sha256: [u8; 32],
}

impl Offered {
    /// The key type, read from the blob itself (`ssh-ed25519`, `ssh-rsa`, …).
    pub fn key_type(&self) -> String {
        let len = self
            .blob
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .unwrap_or(0);
        self.blob
            .get(4..4 + len)
            .and_then(|t| std::str::from_utf8(t).ok())
            .unwrap_or("unknown")
            .to_string()
    }

    /// `SHA256:…` as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        format!("SHA256:{}", STANDARD_NO_PAD.encode(self.sha256))
    }

    /// A known_hosts line for this key.
    pub fn known_hosts_line(&self, name: &str) -> String {
        format!("{name} {} {}", self.key_type(), STANDARD.encode(&self.blob))
    }
}

/// Why a host key was refused.
#[derive(Debug, Clone)]
pub struct Refused {
    pub host: String,
    pub offered: Offered,
    pub reason: Reason,
    /// Where the user keeps known hosts, for the hint: the variable or file
    /// actually configured (`SSH_KNOWN_HOSTS` when none was).
    pub add_to: String,
}

#[derive(Debug, Clone)]
pub enum Reason {
    /// No known_hosts entry for the host (or only for other key types).
    Unknown {
        searched: Vec<String>,
        other_types: Vec<String>,
    },
    /// An entry of the same type holds a different key.
    Changed { at: String },
    /// The key is marked `@revoked`.
    Revoked { at: String },
    /// Fingerprints were pinned and this is not one of them.
    NotPinned { pinned: Vec<String> },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (host, kind, fp) = (
            &self.host,
            self.offered.key_type(),
            self.offered.fingerprint(),
        );
        match &self.reason {
            Reason::Unknown { searched, other_types } => {
                write!(f, "host key verification failed: {host} is not a known host")?;
                if searched.is_empty() {
                    write!(f, " (no known_hosts was found)")?;
                } else {
                    write!(f, " (searched {})", searched.join(", "))?;
                }
                if !other_types.is_empty() {
                    write!(
                        f,
                        "; known_hosts has a {} key for it, but the server offered {kind}",
                        other_types.join("/")
                    )?;
                }
                write!(f, "; the server offered {kind} {fp}")
            }
            Reason::Changed { at } => write!(
                f,
                "host key verification failed: the {kind} key of {host} has CHANGED from the one in {at}; \
                 the server offered {fp}. This can be a man-in-the-middle attack, or a rotated host key"
            ),
            Reason::Revoked { at } => write!(
                f,
                "host key verification failed: the {kind} key {fp} of {host} is marked @revoked in {at}"
            ),
            Reason::NotPinned { pinned } => write!(
                f,
                "host key verification failed: {host} offered {kind} {fp}, which is not a pinned \
                 fingerprint ({})",
                pinned.join(", ")
            ),
        }
    }
}

impl Refused {
    /// What to do about it.
    pub fn hint(&self) -> String {
        let fp = self.offered.fingerprint();
        let line = self.offered.known_hosts_line(&self.host);
        match &self.reason {
            Reason::Revoked { .. } => "a revoked key is never accepted; ask the server's administrator".into(),
            Reason::Changed { .. } => format!(
                "only if the change is expected (confirm {fp} with the server's administrator), \
                 replace the old line with: {line}"
            ),
            _ => format!(
                "confirm {fp} with the server's administrator (or run `ssh-keyscan` and `ssh-keygen -lf -` \
                 from a network you trust), then pass --ssh-host-fingerprint {fp} or add this line to \
                 {}: {line}",
                self.add_to
            ),
        }
    }
}

/// The name known_hosts uses for a host: `host`, or `[host]:port` off port 22.
pub fn lookup_name(host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) if p != 22 => format!("[{host}]:{p}"),
        _ => host.to_string(),
    }
}

/// Check `offered` for `name` (from [`lookup_name`]) against `policy`.
pub fn verify(policy: &Policy, name: &str, offered: &Offered) -> Result<(), Box<Refused>> {
    let refuse = |reason| {
        let add_to = match policy.sources.first() {
            Some(Source::Env { name, .. }) => name.clone(),
            Some(Source::File(path)) => path.display().to_string(),
            None => "SSH_KNOWN_HOSTS".to_string(),
        };
        Box::new(Refused {
            host: name.to_string(),
            offered: offered.clone(),
            reason,
            add_to,
        })
    };
    if policy.insecure_accept_any {
        return Ok(());
    }
    if !policy.fingerprints.is_empty() {
        let fp = offered.fingerprint();
        let matches = |pin: &String| pin.trim().trim_end_matches('=') == fp;
        return match policy.fingerprints.iter().any(matches) {
            true => Ok(()),
            false => Err(refuse(Reason::NotPinned {
                pinned: policy.fingerprints.clone(),
            })),
        };
    }
    let offered_type = offered.key_type();
    let mut searched = Vec::new();
    let mut other_types = Vec::new();
    let mut changed = None;
    let mut trusted = false;
    for source in &policy.sources {
        let Some(text) = source.text() else { continue };
        searched.push(source.describe());
        for (n, line) in text.lines().enumerate() {
            let Some(entry) = Entry::parse(line) else {
                continue;
            };
            if !entry.applies_to(name) {
                continue;
            }
            let at = format!("{} line {}", source.describe(), n + 1);
            let same_key = entry.blob().as_deref() == Some(offered.blob.as_slice());
            match entry.marker() {
                Some(Marker::Revoked) if same_key => return Err(refuse(Reason::Revoked { at })),
                Some(_) => {}
                None if same_key => trusted = true,
                None if entry.key_type() == offered_type => {
                    changed.get_or_insert(at);
                }
                None => other_types.push(entry.key_type()),
            }
        }
    }
    if trusted {
        return Ok(());
    }
    if let Some(at) = changed {
        return Err(refuse(Reason::Changed { at }));
    }
    other_types.sort();
    other_types.dedup();
    Err(refuse(Reason::Unknown {
        searched,
        other_types,
    }))
}

/// One known_hosts line, as ssh-key parses it (markers, hashed names,
/// pattern lists, the key); a line it cannot read is skipped, as ssh does.
struct Entry(known_hosts::Entry);

impl Entry {
    fn parse(line: &str) -> Option<Entry> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        line.parse().ok().map(Entry)
    }

    fn marker(&self) -> Option<&Marker> {
        self.0.marker()
    }

    fn key_type(&self) -> String {
        self.0.public_key().algorithm().as_str().to_string()
    }

    fn blob(&self) -> Option<Vec<u8>> {
        self.0.public_key().to_bytes().ok()
    }

    /// Whether the host field matches: hashed (`|1|salt|hash`) or a
    /// comma-separated list of patterns with `*`/`?` and `!negation`.
    fn applies_to(&self, name: &str) -> bool {
        let patterns = match self.0.host_patterns() {
            HostPatterns::HashedName { salt, hash } => {
                let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(name.as_bytes());
                return mac.verify_slice(hash).is_ok();
            }
            HostPatterns::Patterns(patterns) => patterns,
        };
        let name = name.to_ascii_lowercase();
        let mut matched = false;
        for pattern in patterns {
            let pattern = pattern.to_ascii_lowercase();
            if let Some(negated) = pattern.strip_prefix('!') {
                if glob(negated.as_bytes(), name.as_bytes()) {
                    return false;
                }
            } else if glob(pattern.as_bytes(), name.as_bytes()) {
                matched = true;
            }
        }
        matched
    }
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real public keys (known_hosts lines are parsed as keys).
    const GOOD: &str = "AAAAC3NzaC1lZDI1NTE5AAAAICfXMg1t/oFrijd6pGC6H8KfloSCTFS2FgdspuSzAdUE";
    const EVIL: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOppYVNbQbenLvBax2MUwrLDwuhluFA094kIqgY2GZZS";
    const ECDSA: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBDMBSTB0wn2W4utvQnCvKjdYu5EzBWVHaS83ipEFmCkya0LcIuFOWQlvvVESEmbJxQS4/TyDoBlw6W17Rs82BLU=";

    fn offered(base64: &str) -> Offered {
        Offered {
            blob: STANDARD.decode(base64).unwrap(),
            sha256: [7; 32],
        }
    }

    fn policy(text: &str) -> Policy {
        Policy {
            sources: vec![Source::Env {
                name: "SSH_KNOWN_HOSTS".into(),
                text: text.into(),
            }],
            ..Policy::default()
        }
    }

    #[test]
    fn trusted_unknown_changed() {
        let key = offered(GOOD);
        let line = key.known_hosts_line("[127.0.0.1]:2222");
        assert!(verify(&policy(&line), "[127.0.0.1]:2222", &key).is_ok());

        let err = verify(&policy(&line), "[127.0.0.1]:2223", &key).unwrap_err();
        assert!(matches!(err.reason, Reason::Unknown { .. }));
        assert!(
            err.to_string()
                .contains("[127.0.0.1]:2223 is not a known host (searched $SSH_KNOWN_HOSTS)"),
            "{err}"
        );
        assert!(err.to_string().contains(&key.fingerprint()));
        assert!(
            err.hint().contains("--ssh-host-fingerprint SHA256:"),
            "{}",
            err.hint()
        );

        let evil = offered(EVIL);
        let err = verify(&policy(&line), "[127.0.0.1]:2222", &evil).unwrap_err();
        assert!(
            err.to_string()
                .contains("has CHANGED from the one in $SSH_KNOWN_HOSTS line 1"),
            "{err}"
        );
    }

    // Issue #10: the hint names the variable the user configured.
    #[test]
    fn the_hint_names_the_configured_source() {
        let key = offered(GOOD);
        let mut p = policy("");
        p.sources = vec![Source::Env {
            name: "DEPLOY_KNOWN_HOSTS".into(),
            text: String::new(),
        }];
        let err = verify(&p, "h.example", &key).unwrap_err();
        assert!(
            err.hint().contains("add this line to DEPLOY_KNOWN_HOSTS:"),
            "{}",
            err.hint()
        );
        assert!(!err.hint().contains("SSH_KNOWN_HOSTS"), "{}", err.hint());
        p.sources = vec![Source::File("/etc/tagbump/known_hosts".into())];
        let err = verify(&p, "h.example", &key).unwrap_err();
        assert!(
            err.hint()
                .contains("add this line to /etc/tagbump/known_hosts:"),
            "{}",
            err.hint()
        );
    }

    #[test]
    fn another_key_type_is_unknown_not_changed() {
        let ecdsa = offered(ECDSA);
        let ed = offered(GOOD);
        let err = verify(
            &policy(&ecdsa.known_hosts_line("git.example.com")),
            "git.example.com",
            &ed,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains(
                "has a ecdsa-sha2-nistp256 key for it, but the server offered ssh-ed25519"
            ),
            "{err}"
        );
    }

    #[test]
    fn patterns_hashes_and_markers() {
        let key = offered(GOOD);
        let b64 = STANDARD.encode(&key.blob);
        let p = policy(&format!(
            "# comment\n\n*.example.com,!bad.example.com ssh-ed25519 {b64}\n"
        ));
        assert!(verify(&p, "git.example.com", &key).is_ok());
        assert!(verify(&p, "bad.example.com", &key).is_err());

        // `ssh-keyscan -H` output for "git.example.com".
        let salt = [1u8; 20];
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"git.example.com");
        let hash = mac.finalize().into_bytes();
        let hashed = format!(
            "|1|{}|{} ssh-ed25519 {b64}",
            STANDARD.encode(salt),
            STANDARD.encode(hash)
        );
        assert!(verify(&policy(&hashed), "git.example.com", &key).is_ok());
        assert!(verify(&policy(&hashed), "other.example.com", &key).is_err());

        let revoked = format!("git.example.com ssh-ed25519 {b64}\n@revoked * ssh-ed25519 {b64}\n");
        let err = verify(&policy(&revoked), "git.example.com", &key).unwrap_err();
        assert!(matches!(err.reason, Reason::Revoked { .. }));
    }

    #[test]
    fn pinned_fingerprints() {
        let key = offered(GOOD);
        let pinned = Policy {
            fingerprints: vec![key.fingerprint()],
            ..Policy::default()
        };
        assert!(verify(&pinned, "h", &key).is_ok());
        let other = Policy {
            fingerprints: vec!["SHA256:nope".into()],
            ..Policy::default()
        };
        assert!(matches!(
            verify(&other, "h", &key).unwrap_err().reason,
            Reason::NotPinned { .. }
        ));
    }

    #[test]
    fn lookup_names() {
        assert_eq!(lookup_name("gitlab.com", Some(22)), "gitlab.com");
        assert_eq!(lookup_name("gitlab.com", None), "gitlab.com");
        assert_eq!(lookup_name("127.0.0.1", Some(2222)), "[127.0.0.1]:2222");
    }
}
