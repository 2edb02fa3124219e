//! SSH signatures of commits (`SSHSIG`, namespace `git`), as
//! `ssh-keygen -Y sign` makes them and `git verify-commit` checks them.

use anyhow::Result;

use super::{ecdsa_width, encrypted_without_passphrase, unreadable, wrong_passphrase, Key, Signer};
use crate::error::{Failure, Kind};
use crate::secret::Secret;

/// An `SSHSIG` by an RSA key (`rsa-sha2-512`). ssh-key 0.6.7 hands the rsa
/// crate the prime `p` twice instead of `p` and `q` (RustCrypto/SSH#217,
/// fixed after 0.6.7), which rsa 0.9.7+ rejects, so every RSA signature
/// fails; the key is built here from its components instead.
pub(super) fn ssh_rsa_sign(
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

pub(super) fn is_ssh_public_key(text: &str) -> bool {
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

pub(super) fn ssh(
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
