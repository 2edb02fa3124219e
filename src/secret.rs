//! Secrets (tokens, private keys, passphrases) in a type that never prints
//! them, and a process-wide list used to scrub any text before it is shown.
//!
//! Defence in depth: secrets are kept out of URLs and messages by
//! construction; [`scrub`] still runs over every error line printed, in case a
//! library echoes something it was given.

use std::fmt;
use std::sync::{LazyLock, Mutex};

use regex_lite::Regex;

/// `scheme://user:password@`: the password part.
static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/\s@:]*):([^/\s@]+)@").expect("a valid pattern")
});

/// `user:password@host:path` at the start of a word: the password part.
static SCP_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(^|[\s`'(<])([^\s/@:`'(<]+):([^\s/@`']+)@([A-Za-z0-9.-]+:)")
        .expect("a valid pattern")
});

static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A secret value. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value and remember it for [`scrub`].
    pub fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        // Short values would scrub ordinary words; real tokens and keys are long.
        if value.len() >= 6 {
            if let Ok(mut known) = KNOWN.lock() {
                if !known.contains(&value) {
                    known.push(value.clone());
                }
            }
        }
        Secret(value)
    }

    /// The value itself, for handing to the library that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `text` with every known secret (and each line of a multi-line one, such
/// as a private key) replaced by `***`, and the password of anything that
/// looks like a URL with credentials (`scheme://user:pass@`, `user:pass@host:`)
/// too, known or not.
pub fn scrub(text: &str) -> String {
    let mut out = URL_PASSWORD.replace_all(text, "$1$2:***@").into_owned();
    out = SCP_PASSWORD
        .replace_all(&out, |c: &regex_lite::Captures<'_>| {
            // `nginx:1.27@sha256:…` is an image reference, not a login.
            if c[4].starts_with("sha256:") || c[4].starts_with("sha512:") {
                c[0].to_string()
            } else {
                format!("{}{}:***@{}", &c[1], &c[2], &c[4])
            }
        })
        .into_owned();
    let Ok(known) = KNOWN.lock() else {
        return out;
    };
    for secret in known.iter() {
        out = out.replace(secret.as_str(), "***");
        for line in secret.lines().map(str::trim).filter(|l| l.len() >= 16) {
            out = out.replace(line, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("glpat-abcdef123456");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(scrub("token glpat-abcdef123456 here"), "token *** here");
    }

    #[test]
    fn passwords_in_anything_url_like_are_scrubbed() {
        assert_eq!(
            scrub("cannot reach https://oauth2:unknown-tok@h.example/g/r.git: 503"),
            "cannot reach https://oauth2:***@h.example/g/r.git: 503"
        );
        assert_eq!(
            scrub("`oauth2:unknown-tok@gitlab.example.com:g/r.git`"),
            "`oauth2:***@gitlab.example.com:g/r.git`"
        );
        // Image references and plain URLs are left alone.
        for text in [
            "nginx:1.27@sha256:0123abcd",
            "ssh://git@h.example:2222/g/r.git",
            "git@h.example:g/r.git",
        ] {
            assert_eq!(scrub(text), text);
        }
    }

    #[test]
    fn key_lines_are_scrubbed_too() {
        let _ =
            Secret::new("-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n-----END KEY-----\n");
        assert_eq!(scrub("oops AAAAB3NzaC1yc2EAAAADAQABAAABAQ"), "oops ***");
    }
}
