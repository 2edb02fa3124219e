//! Commit signatures, as `git commit -S` writes them: an SSH signature
//! (`SSHSIG`, namespace `git`, SHA-512) or a detached OpenPGP signature in
//! the commit's `gpgsig` header, so `git verify-commit`, GitHub and GitLab
//! accept them and branches that require signed commits take the push.
//!
//! The key comes from a CI variable or a file and stays in memory: no
//! gpg-agent, no `ssh-keygen`, nothing written to disk. It is parsed and
//! unlocked while the settings are resolved, so a key that cannot be used
//! fails before any network traffic. Pure-Rust crates do the work: `ssh-key`
//! (RustCrypto; `SshSig`, and the bcrypt-pbkdf + AES of encrypted OpenSSH
//! keys) and `pgp` (rPGP, a maintained OpenPGP implementation with no C).

use std::fmt;

use anyhow::Result;
use pgp::composed::{ArmorOptions, Deserializable, DetachedSignature, SignedSecretKey};
use serde::Serialize;

use crate::error::{Failure, Kind};
use crate::secret::Secret;

mod ecdsa_width;
mod openpgp;
mod openpgp_valid;
mod sshsig;

use openpgp::{openpgp, pgp_sign};
use sshsig::{is_ssh_public_key, ssh, ssh_rsa_sign};

/// The kind of signature, as `--output json` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Ssh,
    #[serde(rename = "openpgp")]
    OpenPgp,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Ssh => "SSH",
            Format::OpenPgp => "OpenPGP",
        })
    }
}

/// An unlocked signing key. `Debug` shows the kind and fingerprint only.
pub struct Signer {
    key: Key,
    fingerprint: String,
    /// The SSH key's comment, or the OpenPGP key's user ids.
    identities: Vec<String>,
}

enum Key {
    Ssh(Box<ssh_key::PrivateKey>),
    OpenPgp {
        key: Box<SignedSecretKey>,
        /// The signing subkey, or `None` for the primary key.
        subkey: Option<usize>,
        password: Secret,
    },
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signer({} {})", self.format(), self.fingerprint)
    }
}

impl Signer {
    /// Parse and unlock a private key. `source` names where it came from
    /// (`$TAGBUMP_SIGNING_KEY`, a path) and `passphrase_var` the variable a
    /// passphrase is read from, for the messages.
    pub fn from_text(
        text: &str,
        passphrase: Option<&Secret>,
        source: &str,
        passphrase_var: &str,
    ) -> Result<Signer> {
        let refuse = |message: String, hint: &str| -> anyhow::Error {
            Failure::new(Kind::Usage, message).hint(hint).into()
        };
        if text.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
            ssh(text, passphrase, source, passphrase_var)
        } else if text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") {
            openpgp(text, passphrase, source, passphrase_var)
        } else if text.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
            Err(refuse(
                format!("the signing key in {source} is an OpenPGP public key, not a private one"),
                "export the secret key: `gpg --armor --export-secret-keys KEYID`; the public \
                 key is what GitHub or GitLab need",
            ))
        } else if is_ssh_public_key(text) {
            Err(refuse(
                format!("the signing key in {source} is an SSH public key, not a private one"),
                "pass the private key file (e.g. `id_ed25519`, not `id_ed25519.pub`); the \
                 public key is what GitHub or GitLab need",
            ))
        } else if text.contains("-----BEGIN") && text.contains("PRIVATE KEY-----") {
            Err(refuse(
                format!("the signing key in {source} is a PEM key; tagbump signs with OpenSSH or OpenPGP keys"),
                "convert it in place with `ssh-keygen -p -f KEYFILE` (it rewrites the key in \
                 the OpenSSH format), or create one with `ssh-keygen -t ed25519`",
            ))
        } else {
            Err(refuse(
                format!(
                    "the signing key in {source} is neither an OpenSSH nor an OpenPGP private key"
                ),
                "it must start with `-----BEGIN OPENSSH PRIVATE KEY-----` or \
                 `-----BEGIN PGP PRIVATE KEY BLOCK-----`",
            ))
        }
    }

    pub fn format(&self) -> Format {
        match self.key {
            Key::Ssh(_) => Format::Ssh,
            Key::OpenPgp { .. } => Format::OpenPgp,
        }
    }

    /// `SHA256:…` for SSH keys (as `ssh-keygen -l` prints), the hex
    /// fingerprint of the signing (sub)key for OpenPGP (as gpg prints).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A warning when the key does not name the committer's email: GitHub and
    /// GitLab then show the commit as "Unverified".
    pub fn identity_warning(&self, email: &str) -> Option<String> {
        let email = email.to_ascii_lowercase();
        if self
            .identities
            .iter()
            .any(|id| id.to_ascii_lowercase().contains(&email))
        {
            return None;
        }
        let named = match (self.format(), self.identities.as_slice()) {
            (Format::Ssh, [comment]) if !comment.is_empty() => format!("comment `{comment}`"),
            (Format::Ssh, _) => "comment (empty)".to_string(),
            (Format::OpenPgp, ids) => format!("user ids ({})", ids.join(", ")),
        };
        Some(format!(
            "the signing key's {named} does not contain the committer email `{email}`: \
             GitHub and GitLab show such commits as Unverified (set --author to the key's \
             email, or create the key for the committer)"
        ))
    }

    /// Whether `signature` (a commit's `gpgsig`) was made by this key. Only
    /// the signer is compared, for deciding whether a review branch's commit
    /// can stay; `git verify-commit` is what checks signatures.
    pub fn made(&self, signature: &str) -> bool {
        match &self.key {
            Key::Ssh(key) => ssh_key::SshSig::from_pem(signature.trim())
                .is_ok_and(|sig| sig.public_key() == key.public_key().key_data()),
            Key::OpenPgp { .. } => {
                DetachedSignature::from_string(signature.trim()).is_ok_and(|(sig, _)| {
                    sig.signature
                        .issuer_fingerprint()
                        .iter()
                        .any(|fp| hex(&fp.to_string()) == self.fingerprint)
                })
            }
        }
    }

    /// The armored signature of a commit's content (the commit object without
    /// its `gpgsig` header), for that header.
    pub fn sign(&self, content: &[u8]) -> Result<String> {
        let failed = |cause: Box<dyn std::error::Error + Send + Sync>| {
            Failure::new(Kind::Internal, "cannot sign the commit").with_source(cause)
        };
        match &self.key {
            Key::Ssh(key) => {
                let signature = match key.key_data() {
                    ssh_key::private::KeypairData::Rsa(rsa) => ssh_rsa_sign(key, rsa, content),
                    _ => key.sign("git", ssh_key::HashAlg::Sha512, content),
                }
                .map_err(|e| failed(e.into()))?;
                Ok(signature
                    .to_pem(ssh_key::LineEnding::LF)
                    .map_err(|e| failed(e.into()))?)
            }
            Key::OpenPgp {
                key,
                subkey,
                password,
            } => {
                let signature =
                    pgp_sign(key, *subkey, password, content).map_err(|e| failed(e.into()))?;
                Ok(signature
                    .to_armored_string(ArmorOptions::default())
                    .map_err(|e| failed(e.into()))?)
            }
        }
    }
}

/// Why an armored key did not parse, in tagbump's words: the parsers'
/// errors are never shown, as they can carry the key's bytes (rPGP's, for
/// one, prints its input as a list of decimal numbers).
fn unreadable(text: &str, kind: &str, source: &str) -> anyhow::Error {
    let lines: Vec<&str> = text.lines().collect();
    let indented = lines
        .iter()
        .skip(1)
        .filter(|l| l.starts_with([' ', '\t']))
        .count();
    let tabs = lines.iter().any(|l| l.starts_with('\t'));
    let (what, hint) = if lines.len() == 1 && text.matches("-----").count() > 2 {
        (
            "is on one line: its line breaks were lost".to_string(),
            "store the key with its line breaks (a masked multi-line variable, or a file \
             variable); a one-line value with `\\n` for each line break is also read",
        )
    } else if indented > 0 {
        (
            format!(
                "has {indented} indented line(s) (with {}): an armored key's lines start in \
                 the first column",
                if tabs { "tabs" } else { "spaces" }
            ),
            "remove the indentation: paste the key as `cat KEYFILE` prints it; in YAML, a \
             block scalar (`key: |`) indented under its key removes that indentation itself",
        )
    } else if !text.contains("-----END") {
        (
            "is cut off: it has no `-----END` line".to_string(),
            "paste the whole key, from -----BEGIN to -----END; check the variable's size limit",
        )
    } else {
        (
            "does not decode: its body is damaged".to_string(),
            "paste the key again as `cat KEYFILE` (or `gpg --armor --export-secret-keys KEYID`) \
             prints it, from -----BEGIN to -----END, with its line breaks",
        )
    };
    Failure::new(
        Kind::Usage,
        format!("the {kind} signing key in {source} {what}"),
    )
    .hint(hint)
    .into()
}

/// Upper-case hex without separators, as `gpg --list-keys` prints it.
pub(crate) fn hex(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn encrypted_without_passphrase(source: &str, passphrase_var: &str) -> anyhow::Error {
    Failure::new(
        Kind::Usage,
        format!("the signing key in {source} is encrypted, and {passphrase_var} is not set"),
    )
    .hint(format!(
        "set {passphrase_var} to its passphrase (a masked CI variable)"
    ))
    .into()
}

fn wrong_passphrase(source: &str, passphrase_var: &str) -> anyhow::Error {
    Failure::new(
        Kind::Usage,
        format!(
            "cannot decrypt the signing key in {source} with the passphrase in {passphrase_var}"
        ),
    )
    .hint(format!(
        "check {passphrase_var}: it must be the passphrase of this key"
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh_signer(comment: &str) -> (Signer, ssh_key::PublicKey) {
        let mut key =
            ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
                .unwrap();
        key.set_comment(comment);
        let text = key.to_openssh(ssh_key::LineEnding::LF).unwrap();
        let signer = Signer::from_text(&text, None, "$K", "P").unwrap();
        (signer, key.public_key().clone())
    }

    #[test]
    fn ssh_signatures_verify_in_the_git_namespace() {
        let (signer, public) = ssh_signer("ci@example.com");
        let signature = signer.sign(b"tree 0\n\nmessage\n").unwrap();
        let parsed = ssh_key::SshSig::from_pem(&signature).unwrap();
        assert_eq!(parsed.namespace(), "git");
        assert_eq!(parsed.hash_alg(), ssh_key::HashAlg::Sha512);
        public
            .verify("git", b"tree 0\n\nmessage\n", &parsed)
            .unwrap();
        assert!(public.verify("git", b"other", &parsed).is_err());
        assert!(signer.made(&signature));
        assert!(!ssh_signer("x").0.made(&signature));
        assert_eq!(signer.format(), Format::Ssh);
        assert!(signer.fingerprint().starts_with("SHA256:"));
        assert_eq!(
            format!("{signer:?}"),
            format!("Signer(SSH {})", signer.fingerprint())
        );
    }

    #[test]
    fn a_key_for_another_email_gets_a_warning() {
        let (signer, _) = ssh_signer("CI Bot <CI@example.com>");
        assert_eq!(signer.identity_warning("ci@example.com"), None);
        assert!(signer
            .identity_warning("someone@example.com")
            .unwrap()
            .starts_with("the signing key's comment `CI Bot <CI@example.com>` does not contain"));
        let (signer, _) = ssh_signer("");
        assert!(signer
            .identity_warning("ci@example.com")
            .unwrap()
            .starts_with("the signing key's comment (empty)"));
    }

    #[test]
    fn what_is_not_a_private_key_is_named() {
        let error = |text: &str| {
            let err = Signer::from_text(text, None, "$K", "P").unwrap_err();
            assert_eq!(crate::error::kind(&err), Kind::Usage);
            format!("{err:#}")
        };
        assert!(error("ssh-ed25519 AAAAC3Nza ci@x").contains("is an SSH public key"));
        assert!(error("-----BEGIN PGP PUBLIC KEY BLOCK-----\n").contains("OpenPGP public key"));
        assert!(error("-----BEGIN RSA PRIVATE KEY-----\nx\n").contains("is a PEM key"));
        assert!(error("hello").contains("neither an OpenSSH nor an OpenPGP private key"));
        assert_eq!(
            error("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"),
            "the OpenSSH signing key in $K does not decode: its body is damaged"
        );
        assert_eq!(
            error("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nAAAA\n-----END PGP PRIVATE KEY BLOCK-----\n"),
            "the OpenPGP signing key in $K does not decode: its body is damaged"
        );
    }

    /// Every way CI mangles a key gets its own words, and none of the
    /// key's lines (or a dump of its bytes) appear in them.
    #[test]
    fn mangled_keys_are_described_not_quoted() {
        let key = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap()
            .to_openssh(ssh_key::LineEnding::LF)
            .unwrap()
            .to_string();
        let lines: Vec<&str> = key.lines().collect();
        let indent = |prefix: &str| {
            lines
                .iter()
                .map(|l| format!("{prefix}{l}\n"))
                .collect::<String>()
        };
        let n = lines.len() - 1;
        let cases = [
            (
                indent("  "),
                format!("has {n} indented line(s) (with spaces)"),
            ),
            (
                indent("\t"),
                format!("has {n} indented line(s) (with tabs)"),
            ),
            (
                lines.join(" "),
                "is on one line: its line breaks were lost".into(),
            ),
            (
                lines[..3].join("\n"),
                "is cut off: it has no `-----END` line".into(),
            ),
        ];
        for (text, what) in cases {
            let err = Signer::from_text(&text, None, "$K", "P").unwrap_err();
            let shown = format!("{err:#} {err:?}");
            assert!(
                shown.starts_with(&format!("the OpenSSH signing key in $K {what}")),
                "{shown}"
            );
            for line in &lines[1..lines.len() - 1] {
                assert!(!shown.contains(line), "{shown}");
            }
            let bytes = key.as_bytes();
            let decimal = format!("{}, {}, {}", bytes[40], bytes[41], bytes[42]);
            assert!(!shown.contains(&decimal), "{shown}");
        }
    }
}
