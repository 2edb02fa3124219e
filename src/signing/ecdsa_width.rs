//! ssh-key 0.6.7 reads an ECDSA private scalar only at its full width (32, 48
//! or 66 bytes), but OpenSSH writes it as an `mpint`, which drops leading zero
//! bytes: about half of all P-521 keys (the top byte holds one bit) and one
//! P-256 or P-384 key in 256 were refused as "length invalid". [`widen`]
//! rewrites the key's private section with the scalar at full width — the same
//! key, in the encoding ssh-key reads — decrypting it first when it is
//! encrypted, and hands the result back to ssh-key.
//!
//! The format is OpenSSH's `PROTOCOL.key`: a magic string, cipher, KDF and
//! its options, one public key, then the (possibly encrypted) private section:
//! two check integers, the key pair, the comment, and padding 1, 2, 3, ….

use base64::Engine as _;

const MAGIC: &[u8] = b"openssh-key-v1\0";
const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";

/// The key in `text` with its ECDSA scalar widened; `None` when it is not an
/// ECDSA key, does not decode, or `passphrase` does not decrypt it.
pub fn widen(text: &str, passphrase: Option<&[u8]>) -> Option<ssh_key::PrivateKey> {
    let body: String = text
        .lines()
        .skip_while(|l| l.trim() != BEGIN)
        .skip(1)
        .take_while(|l| l.trim() != END)
        .map(str::trim)
        .collect();
    let blob = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let mut outer = Reader(&blob);
    if outer.take(MAGIC.len())? != MAGIC {
        return None;
    }
    let cipher = outer.string()?;
    let _kdf = outer.string()?;
    let _kdf_options = outer.string()?;
    if outer.u32()? != 1 {
        return None;
    }
    let public = outer.string()?;
    let mut private = outer.string()?.to_vec();
    if cipher != b"none" {
        // ssh-key parses an encrypted key's public half and its KDF; the
        // decryption is done here so the plaintext can be widened.
        let key = ssh_key::PrivateKey::from_openssh(text.trim()).ok()?;
        if key.cipher().has_tag() {
            return None;
        }
        let (k, iv) = key
            .kdf()
            .derive_key_and_iv(key.cipher(), passphrase?)
            .ok()?;
        key.cipher().decrypt(&k, &iv, &mut private, None).ok()?;
    }
    let section = widened_section(&private)?;
    let mut out = MAGIC.to_vec();
    for field in [b"none".as_slice(), b"none", b""] {
        put_string(&mut out, field);
    }
    out.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut out, public);
    put_string(&mut out, &section);
    let encoded = base64::engine::general_purpose::STANDARD.encode(out);
    let mut armored = format!("{BEGIN}\n");
    for chunk in encoded.as_bytes().chunks(70) {
        armored.push_str(std::str::from_utf8(chunk).ok()?);
        armored.push('\n');
    }
    armored.push_str(END);
    armored.push('\n');
    ssh_key::PrivateKey::from_openssh(armored).ok()
}

/// The plaintext private section with the scalar at its curve's width.
fn widened_section(private: &[u8]) -> Option<Vec<u8>> {
    let mut r = Reader(private);
    let (check1, check2) = (r.u32()?, r.u32()?);
    if check1 != check2 {
        return None; // a wrong passphrase
    }
    let algorithm = r.string()?;
    let curve = r.string()?;
    let width = match curve {
        b"nistp256" => 32,
        b"nistp384" => 48,
        b"nistp521" => 66,
        _ => return None,
    };
    if !algorithm.starts_with(b"ecdsa-sha2-") {
        return None;
    }
    let point = r.string()?;
    let scalar = r.string()?;
    let significant = &scalar[scalar.iter().take_while(|&&b| b == 0).count()..];
    if significant.len() > width {
        return None;
    }
    let comment = r.string()?;
    let mut out = Vec::with_capacity(private.len() + width);
    out.extend_from_slice(&check1.to_be_bytes());
    out.extend_from_slice(&check2.to_be_bytes());
    put_string(&mut out, algorithm);
    put_string(&mut out, curve);
    put_string(&mut out, point);
    let mut wide = vec![0; width - significant.len()];
    wide.extend_from_slice(significant);
    put_string(&mut out, &wide);
    put_string(&mut out, comment);
    // The unencrypted section is padded to the `none` cipher's block of 8.
    let mut pad = 1u8;
    while out.len() % 8 != 0 {
        out.push(pad);
        pad += 1;
    }
    Some(out)
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// SSH wire-format fields, read front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key as OpenSSH writes it when the scalar's top byte is zero: the
    /// mpint one byte short (`key` must have such a scalar).
    fn shortened(key: &ssh_key::PrivateKey) -> String {
        let text = key.to_openssh(ssh_key::LineEnding::LF).unwrap();
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        let blob = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let mut r = Reader(&blob);
        r.take(MAGIC.len()).unwrap();
        let (_, _, _) = (r.string(), r.string(), r.string());
        r.u32();
        let public = r.string().unwrap().to_vec();
        let private = r.string().unwrap();
        let mut p = Reader(private);
        let (c1, c2) = (p.u32().unwrap(), p.u32().unwrap());
        let (alg, curve, point, scalar, comment) = (
            p.string().unwrap(),
            p.string().unwrap(),
            p.string().unwrap(),
            p.string().unwrap(),
            p.string().unwrap(),
        );
        let mut section = Vec::new();
        section.extend_from_slice(&c1.to_be_bytes());
        section.extend_from_slice(&c2.to_be_bytes());
        for field in [alg, curve, point, &scalar[1..], comment] {
            put_string(&mut section, field);
        }
        let mut pad = 1u8;
        while section.len() % 8 != 0 {
            section.push(pad);
            pad += 1;
        }
        let mut out = MAGIC.to_vec();
        for field in [b"none".as_slice(), b"none", b""] {
            put_string(&mut out, field);
        }
        out.extend_from_slice(&1u32.to_be_bytes());
        put_string(&mut out, &public);
        put_string(&mut out, &section);
        format!(
            "{BEGIN}\n{}\n{END}\n",
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    #[test]
    fn a_scalar_written_without_its_leading_zero_is_read_whole() {
        // A P-521 scalar whose first byte is zero (about every other key):
        // OpenSSH writes it one byte short, which ssh-key alone refuses.
        let mut key = std::iter::repeat_with(|| {
            let algorithm = ssh_key::Algorithm::Ecdsa {
                curve: ssh_key::EcdsaCurve::NistP521,
            };
            ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, algorithm).unwrap()
        })
        .find(|k| match k.key_data() {
            ssh_key::private::KeypairData::Ecdsa(pair) => pair.private_key_bytes()[0] == 0,
            _ => false,
        })
        .unwrap();
        key.set_comment("ci@example.com");
        let text = shortened(&key);
        assert!(ssh_key::PrivateKey::from_openssh(&text).is_err());
        let read = widen(&text, None).unwrap();
        assert_eq!(read.public_key(), key.public_key());
        assert_eq!(read.comment(), "ci@example.com");
        assert!(read.sign("git", ssh_key::HashAlg::Sha512, b"x").is_ok());
        assert!(widen("not a key", None).is_none());
    }
}
