//! Secrets (tokens, private keys, passphrases) in a type that never prints
//! them, and a process-wide list used to scrub any text before it is shown.
//!
//! Defence in depth: secrets are kept out of URLs and messages by
//! construction; [`scrub`] still runs over every error line printed, in case a
//! library echoes something it was given.

use std::fmt;
use std::sync::Mutex;

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
/// as a private key) replaced by `***`.
pub fn scrub(text: &str) -> String {
    let Ok(known) = KNOWN.lock() else {
        return text.to_string();
    };
    let mut out = text.to_string();
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
    fn key_lines_are_scrubbed_too() {
        let _ =
            Secret::new("-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n-----END KEY-----\n");
        assert_eq!(scrub("oops AAAAB3NzaC1yc2EAAAADAQABAAABAQ"), "oops ***");
    }
}
