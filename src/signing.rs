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
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{KeyDetails, Password};
use serde::Serialize;

use crate::error::{Failure, Kind};
use crate::secret::Secret;

mod ecdsa_width;
mod openpgp_valid;

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

/// An `SSHSIG` by an RSA key (`rsa-sha2-512`). ssh-key 0.6.7 hands the rsa
/// crate the prime `p` twice instead of `p` and `q` (RustCrypto/SSH#217,
/// fixed after 0.6.7), which rsa 0.9.7+ rejects, so every RSA signature
/// fails; the key is built here from its components instead.
fn ssh_rsa_sign(
    key: &ssh_key::PrivateKey,
    rsa: &ssh_key::private::RsaKeypair,
    content: &[u8],
) -> ssh_key::Result<ssh_key::SshSig> {
    use rsa::signature::{SignatureEncoding, Signer as _};
    let int = |m: &ssh_key::Mpint| {
        m.as_positive_bytes()
            .map(rsa::BigUint::from_bytes_be)
            .ok_or(ssh_key::Error::Crypto)
    };
    let private = rsa::RsaPrivateKey::from_components(
        int(&rsa.public.n)?,
        int(&rsa.public.e)?,
        int(&rsa.private.d)?,
        vec![int(&rsa.private.p)?, int(&rsa.private.q)?],
    )
    .map_err(|_| ssh_key::Error::Crypto)?;
    let hash = ssh_key::HashAlg::Sha512;
    let data = ssh_key::SshSig::signed_data("git", hash, content)?;
    let signature = rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(private)
        .try_sign(&data)
        .map_err(|_| ssh_key::Error::Crypto)?;
    let signature = ssh_key::Signature::new(
        ssh_key::Algorithm::Rsa { hash: Some(hash) },
        signature.to_vec(),
    )?;
    ssh_key::SshSig::new(key.public_key().key_data().clone(), "git", hash, signature)
}

fn is_ssh_public_key(text: &str) -> bool {
    let text = text.trim_start();
    [
        "ssh-ed25519 ",
        "ssh-rsa ",
        "ecdsa-sha2-",
        "sk-ssh-",
        "sk-ecdsa-",
        "ssh-dss ",
    ]
    .iter()
    .any(|prefix| text.starts_with(prefix))
        || text.contains("---- BEGIN SSH2 PUBLIC KEY ----")
}

fn ssh(
    text: &str,
    passphrase: Option<&Secret>,
    source: &str,
    passphrase_var: &str,
) -> Result<Signer> {
    let text = text.trim();
    // ssh-key's own error is not shown: a parser's error may quote the key.
    let key = ssh_key::PrivateKey::from_openssh(text)
        .ok()
        .or_else(|| ecdsa_width::widen(text, None))
        .ok_or_else(|| unreadable(text, "OpenSSH", source))?;
    let key = if key.is_encrypted() {
        let Some(passphrase) = passphrase else {
            return Err(encrypted_without_passphrase(source, passphrase_var));
        };
        let passphrase = passphrase.expose().as_bytes();
        match key.decrypt(passphrase) {
            Ok(key) => key,
            Err(err) => match ecdsa_width::widen(text, Some(passphrase)) {
                Some(key) => key,
                // A wrong passphrase fails the key's check values: `Crypto`.
                None if err == ssh_key::Error::Crypto => {
                    return Err(wrong_passphrase(source, passphrase_var))
                }
                None => {
                    return Err(Failure::new(
                        Kind::Usage,
                        format!("cannot decrypt the SSH signing key in {source}"),
                    )
                    .with_source(err)
                    .hint("re-encrypt it with `ssh-keygen -p -f FILE` (OpenSSH's default cipher)")
                    .into())
                }
            },
        }
    } else {
        key
    };
    let fingerprint = key.fingerprint(ssh_key::HashAlg::Sha256).to_string();
    let identities = vec![key.comment().to_string()];
    let algorithm = key.algorithm();
    let signer = Signer {
        key: Key::Ssh(Box::new(key)),
        fingerprint,
        identities,
    };
    // Sign once now: a kind of key that cannot sign fails before the clone.
    if signer.sign(b"").is_err() {
        let why = if matches!(algorithm, ssh_key::Algorithm::Dsa) {
            "DSA keys are obsolete: OpenSSH has refused them since 7.0, and GitHub and GitLab do not verify them"
        } else {
            "tagbump signs with ed25519, ECDSA (P-256, P-384, P-521) and RSA keys"
        };
        return Err(Failure::new(
            Kind::Usage,
            format!(
                "the SSH signing key in {source} is a {} key, which cannot sign commits here: {why}",
                algorithm.as_str()
            ),
        )
        .hint("create a signing key with `ssh-keygen -t ed25519`")
        .into());
    }
    Ok(signer)
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

fn openpgp(
    text: &str,
    passphrase: Option<&Secret>,
    source: &str,
    passphrase_var: &str,
) -> Result<Signer> {
    let text = text.trim();
    // rPGP's error is not shown: it prints its input as decimal bytes.
    let (key, _) =
        SignedSecretKey::from_string(text).map_err(|_| unreadable(text, "OpenPGP", source))?;
    let subkey = openpgp_valid::signing_key(&key, source)?;
    let password = passphrase.cloned().unwrap_or_else(|| Secret::new(""));
    let encrypted = match subkey {
        Some(i) => key.secret_subkeys[i].key.secret_params().is_encrypted(),
        None => key.primary_key.secret_params().is_encrypted(),
    };
    if encrypted && passphrase.is_none() {
        return Err(encrypted_without_passphrase(source, passphrase_var));
    }
    // Unlock once now: a wrong passphrase fails here, not after the clone.
    // rPGP's outer error is the unlock's, the inner one the work's.
    let unlocked = match subkey {
        Some(i) => key.secret_subkeys[i]
            .key
            .unlock(&Password::from(password.expose()), |_, _| Ok(())),
        None => key
            .primary_key
            .unlock(&Password::from(password.expose()), |_, _| Ok(())),
    };
    if unlocked.is_err() {
        return Err(wrong_passphrase(source, passphrase_var));
    }
    pgp_sign(&key, subkey, &password, b"").map_err(|err| {
        Failure::new(
            Kind::Usage,
            format!("the OpenPGP signing key in {source} cannot sign (a kind of key rPGP does not sign with)"),
        )
        .with_source(err)
        .hint("create a signing key with `gpg --quick-gen-key 'NAME <EMAIL>' ed25519 sign`")
    })?;
    let fingerprint = match subkey {
        Some(i) => key.secret_subkeys[i].key.fingerprint(),
        None => key.primary_key.fingerprint(),
    };
    let identities = key
        .details
        .users
        .iter()
        .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
        .collect();
    Ok(Signer {
        key: Key::OpenPgp {
            key: Box::new(key),
            subkey,
            password,
        },
        fingerprint: hex(&fingerprint.to_string()),
        identities,
    })
}

fn pgp_sign(
    key: &SignedSecretKey,
    subkey: Option<usize>,
    password: &Secret,
    content: &[u8],
) -> pgp::errors::Result<DetachedSignature> {
    let password = Password::from(password.expose());
    let rng = rand::thread_rng();
    match subkey {
        Some(i) => DetachedSignature::sign_binary_data(
            rng,
            &key.secret_subkeys[i].key,
            &password,
            HashAlgorithm::Sha256,
            content,
        ),
        None => DetachedSignature::sign_binary_data(
            rng,
            &key.primary_key,
            &password,
            HashAlgorithm::Sha256,
            content,
        ),
    }
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
