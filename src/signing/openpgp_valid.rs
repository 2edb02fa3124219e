//! Which key of an OpenPGP key gpg would sign with, and whether it may: a
//! revoked or expired key signs commits that `git verify-commit` (and GitHub
//! and GitLab) reject, so it is refused before any network traffic, naming
//! the key and the date.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use pgp::composed::{SignedSecretKey, SignedSecretSubKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::KeyDetails;

use crate::error::{Failure, Kind};

/// When a key stops being valid, read from its newest self-signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Validity {
    Valid,
    Revoked,
    /// Expired at this Unix time.
    Expired(u64),
}

/// The key to sign with: the newest valid subkey flagged for signing
/// (`Some(index)`), else the primary key (`None`) when its self-signatures
/// allow signing (or say nothing). A revoked or expired primary key, or only
/// revoked or expired signing subkeys, is a usage error.
pub fn signing_key(key: &SignedSecretKey, source: &str) -> Result<Option<usize>> {
    let primary_fp = super::hex(&key.primary_key.fingerprint().to_string());
    let refuse = |what: String, hint: String| -> anyhow::Error {
        Failure::new(Kind::Usage, what).hint(hint).into()
    };
    let self_signatures: Vec<&Signature> = key
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .chain(key.details.direct_signatures.iter())
        .collect();
    let primary = if !key.details.revocation_signatures.is_empty() {
        Validity::Revoked
    } else {
        validity(
            key.primary_key.created_at().as_secs(),
            newest(self_signatures.iter().copied()),
        )
    };
    if let Some(refused) = primary_refused(primary, source, &primary_fp) {
        return Err(refused);
    }
    let mut unusable = Vec::new();
    let newest_valid = key
        .secret_subkeys
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.signatures.iter().any(|sig| {
                sig.typ() == Some(SignatureType::SubkeyBinding) && sig.key_flags().sign()
            })
        })
        .filter(|(_, s)| {
            let state = subkey_validity(s);
            if state != Validity::Valid {
                unusable.push((super::hex(&s.key.fingerprint().to_string()), state));
            }
            state == Validity::Valid
        })
        .max_by_key(|(_, s)| s.key.created_at())
        .map(|(i, _)| i);
    if newest_valid.is_some() {
        return Ok(newest_valid);
    }
    let flags: Vec<_> = self_signatures.iter().map(|sig| sig.key_flags()).collect();
    let says_nothing = flags
        .iter()
        .all(|f| !f.sign() && !f.certify() && !f.encrypt_comms());
    if says_nothing || flags.iter().any(|f| f.sign()) {
        return Ok(None);
    }
    if let Some((fp, state)) = unusable.first() {
        let why = match state {
            Validity::Expired(at) => format!("expired on {}", date(*at)),
            _ => "is revoked".to_string(),
        };
        return Err(refuse(
            format!("the signing subkey {fp} of the OpenPGP key in {source} ({primary_fp}) {why}"),
            format!(
                "commits it signs do not verify; extend it with `gpg --quick-set-expire \
                 {primary_fp} 1y {fp}`, or add a new one with `gpg --quick-add-key {primary_fp} \
                 ed25519 sign`, and export the key again"
            ),
        ));
    }
    Err(refuse(
        format!("the OpenPGP key in {source} ({primary_fp}) has no key that may sign"),
        format!("add a signing subkey: `gpg --quick-add-key {primary_fp} ed25519 sign`"),
    ))
}

/// Why a primary key in `validity` cannot sign, if it cannot.
fn primary_refused(validity: Validity, source: &str, primary_fp: &str) -> Option<anyhow::Error> {
    let refuse = |what: String, hint: String| -> anyhow::Error {
        Failure::new(Kind::Usage, what).hint(hint).into()
    };
    match validity {
        Validity::Valid => None,
        Validity::Revoked => Some(refuse(
            format!("the OpenPGP key in {source} ({primary_fp}) is revoked"),
            "commits it signs do not verify; sign with another key".to_string(),
        )),
        Validity::Expired(at) => Some(refuse(
            format!(
                "the OpenPGP key in {source} ({primary_fp}) expired on {}",
                date(at)
            ),
            format!(
                "commits it signs do not verify; extend it with `gpg --quick-set-expire \
                     {primary_fp} 1y` and export it again"
            ),
        )),
    }
}

/// A signing subkey's state: revoked, or as its newest binding says.
fn subkey_validity(subkey: &SignedSecretSubKey) -> Validity {
    if subkey
        .signatures
        .iter()
        .any(|sig| sig.typ() == Some(SignatureType::SubkeyRevocation))
    {
        return Validity::Revoked;
    }
    let bindings = subkey
        .signatures
        .iter()
        .filter(|sig| sig.typ() == Some(SignatureType::SubkeyBinding));
    validity(subkey.key.created_at().as_secs(), newest(bindings))
}

fn newest<'a>(signatures: impl Iterator<Item = &'a Signature>) -> Option<&'a Signature> {
    signatures.max_by_key(|sig| sig.created().map(|t| t.as_secs()).unwrap_or(0))
}

/// A key created at `created` whose newest self-signature is `signature`.
fn validity(created: u32, signature: Option<&Signature>) -> Validity {
    let lifetime = signature
        .and_then(Signature::key_expiration_time)
        .map(|d| u64::from(d.as_secs()))
        .filter(|&s| s > 0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match lifetime.map(|l| u64::from(created) + l) {
        Some(end) if end <= now => Validity::Expired(end),
        _ => Validity::Valid,
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time (Howard Hinnant's civil-from-days).
fn date(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0) + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil_utc() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_796_083_200), "2026-12-01");
    }
}
