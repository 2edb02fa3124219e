//! OpenPGP signatures of commits, as `gpg --detach-sign --armor` makes them.

use anyhow::Result;
use pgp::composed::{Deserializable, DetachedSignature, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::{KeyDetails, Password};

use super::{
    encrypted_without_passphrase, hex, openpgp_valid, unreadable, wrong_passphrase, Key, Signer,
};
use crate::error::{Failure, Kind};
use crate::secret::Secret;

pub(super) fn openpgp(
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

pub(super) fn pgp_sign(
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
