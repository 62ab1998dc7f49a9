//! Administrator keys, signatures and key fingerprints, with their text forms.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use zeroize::Zeroizing;

use crate::{ApprovalError, parse_error};

/// An administrator's Ed25519 public key. Text form
/// `kluis-admin-ed25519:` + base64url (no padding) of the 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AdminPublicKey([u8; 32]);

impl AdminPublicKey {
    /// Prefix of the text form.
    pub const PREFIX: &'static str = "kluis-admin-ed25519:";

    /// Wraps raw key bytes. Whether they are a valid curve point is checked
    /// when a signature is verified.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Self, ApprovalError> {
        let rest = text
            .trim()
            .strip_prefix(Self::PREFIX)
            .ok_or_else(|| parse_error("admin public key", "wrong prefix"))?;
        decode_fixed::<32>(rest)
            .map(Self)
            .ok_or_else(|| parse_error("admin public key", "expected 32 base64url bytes"))
    }

    pub(crate) fn verifying_key(self) -> Option<ed25519_dalek::VerifyingKey> {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0).ok()
    }
}

impl fmt::Display for AdminPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::PREFIX)?;
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for AdminPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdminPublicKey({self})")
    }
}

impl std::str::FromStr for AdminPublicKey {
    type Err = ApprovalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// An administrator's Ed25519 signing key. Zeroized on drop (by
/// `ed25519-dalek`); no `Debug`, no text form: storing it is the admin
/// tool's business.
pub struct AdminSigningKey(ed25519_dalek::SigningKey);

impl AdminSigningKey {
    /// A fresh key from a cryptographic RNG.
    pub fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        Self::from_seed(&seed)
    }

    /// Rebuilds a key from its 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, for the admin tool to seal at rest.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half.
    pub fn public_key(&self) -> AdminPublicKey {
        AdminPublicKey(self.0.verifying_key().to_bytes())
    }

    pub(crate) fn sign(&self, message: &[u8]) -> SignatureBytes {
        SignatureBytes(self.0.sign(message).to_bytes())
    }
}

/// A 64-byte Ed25519 signature; text form is base64url without padding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignatureBytes(pub [u8; 64]);

impl SignatureBytes {
    /// Parses the base64url text form.
    pub fn parse(text: &str) -> Result<Self, ApprovalError> {
        decode_fixed::<64>(text.trim())
            .map(Self)
            .ok_or_else(|| parse_error("signature", "expected 64 base64url bytes"))
    }
}

impl fmt::Display for SignatureBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for SignatureBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureBytes({self})")
    }
}

/// The full 32-byte fingerprint of a Kluis recipient (the request key), as
/// `kluis_format::Fingerprint::as_bytes` returns it.
///
/// `Display` shows what people compare out of band: the first 16 bytes as
/// eight groups of four upper-case hex digits (`4F2A 9C1B …`), exactly as
/// `kluis_format` prints a fingerprint. The statement signs all 32 bytes.
/// The text form used on the wire is 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyFingerprint(pub [u8; 32]);

impl KeyFingerprint {
    /// The 64-hex-digit wire form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the 64-hex-digit wire form.
    pub fn from_hex(text: &str) -> Result<Self, ApprovalError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut out)
            .map_err(|_| parse_error("key fingerprint", "expected 64 hex digits"))?;
        Ok(Self(out))
    }
}

impl fmt::Display for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.0[..16].chunks(2).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{:02X}{:02X}", pair[0], pair[1])?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyFingerprint({self})")
    }
}

fn decode_fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    // One spare byte so that over-long input is detected rather than cut.
    let mut buf = vec![0u8; N + 1];
    match URL_SAFE_NO_PAD.decode_slice(text.as_bytes(), &mut buf) {
        Ok(n) if n == N => {
            let mut out = [0u8; N];
            out.copy_from_slice(&buf[..N]);
            Some(out)
        }
        _ => None,
    }
}

macro_rules! string_serde {
    ($ty:ty, $to:expr, $from:expr) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&$to(self))
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                $from(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(
    AdminPublicKey,
    |k: &AdminPublicKey| k.to_string(),
    AdminPublicKey::parse
);
string_serde!(
    SignatureBytes,
    |k: &SignatureBytes| k.to_string(),
    SignatureBytes::parse
);
string_serde!(
    KeyFingerprint,
    KeyFingerprint::to_hex,
    KeyFingerprint::from_hex
);

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn admin_key_text_round_trip() {
        let key = AdminSigningKey::generate(&mut ChaCha20Rng::seed_from_u64(1)).public_key();
        let text = key.to_string();
        assert!(text.starts_with(AdminPublicKey::PREFIX));
        assert_eq!(AdminPublicKey::parse(&text), Ok(key));
        assert!(AdminPublicKey::parse("kluis-admin-ed25519:AAAA").is_err());
        assert!(AdminPublicKey::parse(&text[1..]).is_err());
    }

    #[test]
    fn seed_round_trip() {
        let key = AdminSigningKey::generate(&mut ChaCha20Rng::seed_from_u64(2));
        let again = AdminSigningKey::from_seed(&key.to_seed());
        assert_eq!(key.public_key(), again.public_key());
    }

    #[test]
    fn fingerprint_display_matches_format_crate_style() {
        let mut raw = [0u8; 32];
        raw[0] = 0x4f;
        raw[1] = 0x2a;
        raw[2] = 0x9c;
        raw[3] = 0x1b;
        let fp = KeyFingerprint(raw);
        assert!(fp.to_string().starts_with("4F2A 9C1B 0000"));
        assert_eq!(fp.to_string().len(), 8 * 4 + 7);
        assert_eq!(KeyFingerprint::from_hex(&fp.to_hex()), Ok(fp));
    }

    #[test]
    fn signature_text_round_trip() {
        let sig = SignatureBytes([7u8; 64]);
        assert_eq!(SignatureBytes::parse(&sig.to_string()), Ok(sig));
        assert!(SignatureBytes::parse("AAAA").is_err());
    }
}
