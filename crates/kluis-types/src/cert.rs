//! Public keys, fingerprints and organisation certificates.
//!
//! This crate only defines the data and the exact bytes that are signed; the
//! signing (broker admin) and verification (`kluis-account`) live elsewhere.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Email, ParseError, SignatureBytes, invalid};

/// A user's public key in its text form, opaque to the broker and to this
/// crate: printable ASCII without spaces, starting with `kluis`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicKeyString(String);

impl PublicKeyString {
    /// Longest accepted key text.
    pub const MAX_LEN: usize = 8192;

    /// Validates the text form.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        if !text.starts_with("kluis") {
            return Err(invalid("public key", "must start with `kluis`"));
        }
        if text.len() > Self::MAX_LEN {
            return Err(invalid("public key", "too long"));
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                "public key",
                "must be printable ASCII without spaces",
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The key text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's fingerprint, for people to compare out of band.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self)
    }
}

impl TryFrom<String> for PublicKeyString {
    type Error = ParseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}
impl From<PublicKeyString> for String {
    fn from(value: PublicKeyString) -> Self {
        value.0
    }
}
impl std::fmt::Display for PublicKeyString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHA-256 of the public-key text, shown as 16 groups of 4 hex digits.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Computes the fingerprint of a public key.
    pub fn of(key: &PublicKeyString) -> Self {
        use std::fmt::Write as _;
        let digest = Sha256::digest(key.as_str().as_bytes());
        let mut text = String::with_capacity(80);
        for (i, pair) in digest.chunks(2).enumerate() {
            if i > 0 {
                text.push(' ');
            }
            for b in pair {
                // Writing to a String cannot fail.
                let _ = write!(text, "{b:02x}");
            }
        }
        Self(text)
    }

    /// The display form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The organisation's Ed25519 public key, text form
/// `kluis-org-ed25519:` + base64url (no padding) of the 32 key bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OrgPublicKey([u8; 32]);

impl OrgPublicKey {
    /// Prefix of the text form.
    pub const PREFIX: &'static str = "kluis-org-ed25519:";

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let rest = text
            .trim()
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| invalid("org public key", "wrong prefix"))?;
        let mut out = [0u8; 33];
        match URL_SAFE_NO_PAD.decode_slice(rest.as_bytes(), &mut out) {
            Ok(32) => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&out[..32]);
                Ok(Self(key))
            }
            _ => Err(invalid("org public key", "expected 32 base64url bytes")),
        }
    }
}

impl std::fmt::Display for OrgPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(Self::PREFIX)?;
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl Serialize for OrgPublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for OrgPublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An organisation's signature over one (e-mail, public key) binding.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrgCertificate {
    /// The certified address.
    pub email: Email,
    /// The certified key text.
    pub public_key: PublicKeyString,
    /// When the binding was signed (Unix seconds).
    pub issued_at: i64,
    /// Ed25519 signature over [`certificate_message`].
    pub signature: SignatureBytes,
}

impl OrgCertificate {
    /// The exact bytes the organisation key signs for this certificate.
    pub fn message(&self) -> Vec<u8> {
        certificate_message(&self.email, &self.public_key, self.issued_at)
    }
}

/// The bytes signed by the organisation key: a domain-separation line, then
/// each field length-prefixed so no two bindings share an encoding.
pub fn certificate_message(email: &Email, key: &PublicKeyString, issued_at: i64) -> Vec<u8> {
    const DOMAIN: &[u8] = b"kluis org certificate v1\n";
    let email = email.as_str().as_bytes();
    let key = key.as_str().as_bytes();
    let mut out = Vec::with_capacity(DOMAIN.len() + 16 + email.len() + key.len() + 8);
    out.extend_from_slice(DOMAIN);
    for field in [email, key] {
        // Both lengths are bounded far below u32::MAX by their parsers.
        out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(field);
    }
    out.extend_from_slice(&issued_at.to_be_bytes());
    out
}

#[cfg(feature = "openapi")]
crate::schema::string_schema!(
    PublicKeyString,
    "a public key in its text form, starting with `kluis`",
    Some(5),
    Some(8192),
    Some("^kluis[!-~]*$")
);
#[cfg(feature = "openapi")]
crate::schema::string_schema!(
    Fingerprint,
    "SHA-256 of the public-key text, 16 groups of 4 hex digits",
    None,
    None,
    None
);
#[cfg(feature = "openapi")]
crate::schema::string_schema!(
    OrgPublicKey,
    "organisation Ed25519 public key: `kluis-org-ed25519:` + base64url",
    None,
    None,
    None
);

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[test]
    fn public_key_validation() {
        assert!(PublicKeyString::parse("kluis1abc").is_ok());
        assert!(PublicKeyString::parse("age1abc").is_err());
        assert!(PublicKeyString::parse("kluis1 abc").is_err());
    }

    #[test]
    fn fingerprint_is_stable_and_grouped() {
        let fp = PublicKeyString::parse("kluis1abc").unwrap().fingerprint();
        assert_eq!(fp.as_str().split(' ').count(), 16);
        assert_eq!(
            fp,
            PublicKeyString::parse("kluis1abc").unwrap().fingerprint()
        );
        assert_ne!(
            fp,
            PublicKeyString::parse("kluis1abd").unwrap().fingerprint()
        );
    }

    #[test]
    fn org_key_text_round_trip() {
        let k = OrgPublicKey::from_bytes([9u8; 32]);
        assert_eq!(OrgPublicKey::parse(&k.to_string()).unwrap(), k);
        assert!(OrgPublicKey::parse("kluis-org-ed25519:AAAA").is_err());
    }

    #[test]
    fn certificate_message_separates_fields() {
        let a = certificate_message(
            &Email::parse("a@b.c").unwrap(),
            &PublicKeyString::parse("kluisX").unwrap(),
            1,
        );
        let b = certificate_message(
            &Email::parse("a@b.ck").unwrap(),
            &PublicKeyString::parse("kluis").unwrap(),
            1,
        );
        assert_ne!(a, b);
    }
}
