//! Identities (secret key pairs) and recipients (their public halves).
//! FORMAT.md §2 (recipient strings and fingerprints) and §3 (identity files).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hpke::kem::{X25519HkdfSha256, XWing};
use hpke::{Deserializable, Kem, Serializable};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// HPKE KEM identifiers used in stanzas (RFC 9180 registry).
pub const KEM_XWING: u16 = 0x647a;
/// DHKEM(X25519, HKDF-SHA256).
pub const KEM_X25519: u16 = 0x0020;

const XWING_PK_LEN: usize = 1216;
const X25519_PK_LEN: usize = 32;
const RECIPIENT_PAYLOAD_LEN: usize = XWING_PK_LEN + X25519_PK_LEN;
const RECIPIENT_CHECKSUM_LEN: usize = 4;
/// Every recipient string starts with this.
pub const RECIPIENT_PREFIX: &str = "kluis1";
const FINGERPRINT_LABEL: &[u8] = b"kluis/v1/fingerprint\x00";
const CHECKSUM_LABEL: &[u8] = b"kluis/v1/recipient-checksum\x00";

/// Which KEM wraps the file key for a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KemChoice {
    /// Hybrid X-Wing (ML-KEM-768 + X25519): post-quantum. The default.
    #[default]
    XWing,
    /// Classical DHKEM(X25519): 80-byte stanzas instead of 1168.
    X25519,
}

impl KemChoice {
    /// The HPKE KEM id.
    pub fn id(self) -> u16 {
        match self {
            KemChoice::XWing => KEM_XWING,
            KemChoice::X25519 => KEM_X25519,
        }
    }
}

/// A 32-byte fingerprint of a recipient's public keys. The first 16 bytes are
/// the key id written in stanzas; the same 16 bytes, grouped, are what people
/// compare out of band.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub(crate) [u8; 32]);

impl Fingerprint {
    /// The 16-byte key id used in stanzas.
    pub fn key_id(&self) -> KeyId {
        let mut id = [0u8; 16];
        id.copy_from_slice(&self.0[..16]);
        KeyId(id)
    }

    /// All 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    /// `4F2A 9C1B …`: eight groups of four hex digits (128 bits).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.key_id().fmt(f)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The 16-byte recipient key id carried by each stanza.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 16]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.0.chunks(2).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{:02X}{:02X}", pair[0], pair[1])?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A public recipient: X-Wing and X25519 public keys.
#[derive(Clone)]
pub struct Recipient {
    xwing: <XWing as Kem>::PublicKey,
    x25519: <X25519HkdfSha256 as Kem>::PublicKey,
    bytes: Box<[u8; RECIPIENT_PAYLOAD_LEN]>,
    fingerprint: Fingerprint,
}

impl Recipient {
    fn from_keys(
        xwing: <XWing as Kem>::PublicKey,
        x25519: <X25519HkdfSha256 as Kem>::PublicKey,
    ) -> Self {
        let mut bytes = Box::new([0u8; RECIPIENT_PAYLOAD_LEN]);
        bytes[..XWING_PK_LEN].copy_from_slice(&xwing.to_bytes());
        bytes[XWING_PK_LEN..].copy_from_slice(&x25519.to_bytes());
        let fingerprint = fingerprint_of(&bytes[..]);
        Recipient {
            xwing,
            x25519,
            bytes,
            fingerprint,
        }
    }

    /// Parse the raw 1248-byte encoding (X-Wing pk || X25519 pk).
    pub fn from_bytes(raw: &[u8]) -> Result<Self> {
        if raw.len() != RECIPIENT_PAYLOAD_LEN {
            return Err(Error::InvalidRecipient("wrong length"));
        }
        let xwing = <XWing as Kem>::PublicKey::from_bytes(&raw[..XWING_PK_LEN])
            .map_err(|_| Error::InvalidRecipient("invalid X-Wing public key"))?;
        let x25519 = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(&raw[XWING_PK_LEN..])
            .map_err(|_| Error::InvalidRecipient("invalid X25519 public key"))?;
        Ok(Self::from_keys(xwing, x25519))
    }

    /// The raw encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..]
    }

    /// The fingerprint (and key id).
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    pub(crate) fn xwing(&self) -> &<XWing as Kem>::PublicKey {
        &self.xwing
    }

    pub(crate) fn x25519(&self) -> &<X25519HkdfSha256 as Kem>::PublicKey {
        &self.x25519
    }
}

impl PartialEq for Recipient {
    fn eq(&self, other: &Self) -> bool {
        self.bytes[..] == other.bytes[..]
    }
}
impl Eq for Recipient {}

impl fmt::Display for Recipient {
    /// `kluis1` followed by unpadded base64url of the keys and a checksum.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(RECIPIENT_PAYLOAD_LEN + RECIPIENT_CHECKSUM_LEN);
        raw.extend_from_slice(&self.bytes[..]);
        raw.extend_from_slice(&checksum(&self.bytes[..]));
        write!(f, "{RECIPIENT_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({})", self.fingerprint)
    }
}

impl std::str::FromStr for Recipient {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        let body = s
            .strip_prefix(RECIPIENT_PREFIX)
            .ok_or(Error::InvalidRecipient("must start with kluis1"))?;
        // The exact length is fixed; refuse before decoding anything large.
        let expected = ((RECIPIENT_PAYLOAD_LEN + RECIPIENT_CHECKSUM_LEN) * 4).div_ceil(3);
        if body.len() != expected {
            return Err(Error::InvalidRecipient(
                "wrong length (truncated or not a Kluis recipient)",
            ));
        }
        let raw = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| Error::InvalidRecipient("not base64url"))?;
        let (keys, sum) = raw.split_at(RECIPIENT_PAYLOAD_LEN);
        if checksum(keys)[..] != sum[..] {
            return Err(Error::InvalidRecipient(
                "checksum mismatch (typo or damaged copy)",
            ));
        }
        Recipient::from_bytes(keys)
    }
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn fingerprint_of(raw: &[u8]) -> Fingerprint {
    Fingerprint(sha256(&[FINGERPRINT_LABEL, raw]))
}

fn checksum(raw: &[u8]) -> [u8; RECIPIENT_CHECKSUM_LEN] {
    let h = sha256(&[CHECKSUM_LABEL, raw]);
    let mut out = [0u8; RECIPIENT_CHECKSUM_LEN];
    out.copy_from_slice(&h[..RECIPIENT_CHECKSUM_LEN]);
    out
}

/// A secret identity: the X-Wing seed and the X25519 secret key. Zeroized on
/// drop; `Debug` shows only the fingerprint.
pub struct Identity {
    xwing: <XWing as Kem>::PrivateKey,
    x25519: <X25519HkdfSha256 as Kem>::PrivateKey,
    recipient: Recipient,
}

/// Length of [`Identity::to_secret_bytes`].
pub const IDENTITY_SECRET_LEN: usize = 64;

impl Identity {
    /// Generate a fresh identity.
    pub fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        let (xwing, xwing_pk) = XWing::gen_keypair_with_rng(rng);
        let (x25519, x25519_pk) = X25519HkdfSha256::gen_keypair_with_rng(rng);
        let recipient = Recipient::from_keys(xwing_pk, x25519_pk);
        Identity {
            xwing,
            x25519,
            recipient,
        }
    }

    /// The public half.
    pub fn recipient(&self) -> &Recipient {
        &self.recipient
    }

    /// The 64 secret bytes (X-Wing seed || X25519 secret), for sealing into
    /// another container (the identity file, the broker's escrow).
    pub fn to_secret_bytes(&self) -> Zeroizing<[u8; IDENTITY_SECRET_LEN]> {
        let mut out = Zeroizing::new([0u8; IDENTITY_SECRET_LEN]);
        let mut a = self.xwing.to_bytes();
        let mut b = self.x25519.to_bytes();
        out[..32].copy_from_slice(&a);
        out[32..].copy_from_slice(&b);
        a.zeroize();
        b.zeroize();
        out
    }

    /// Rebuild from [`Identity::to_secret_bytes`].
    pub fn from_secret_bytes(raw: &[u8]) -> Result<Self> {
        if raw.len() != IDENTITY_SECRET_LEN {
            return Err(Error::InvalidIdentity(
                "secret key material has the wrong length",
            ));
        }
        let xwing = <XWing as Kem>::PrivateKey::from_bytes(&raw[..32])
            .map_err(|_| Error::InvalidIdentity("invalid X-Wing secret"))?;
        let x25519 = <X25519HkdfSha256 as Kem>::PrivateKey::from_bytes(&raw[32..])
            .map_err(|_| Error::InvalidIdentity("invalid X25519 secret"))?;
        let recipient =
            Recipient::from_keys(XWing::sk_to_pk(&xwing), X25519HkdfSha256::sk_to_pk(&x25519));
        Ok(Identity {
            xwing,
            x25519,
            recipient,
        })
    }

    pub(crate) fn xwing(&self) -> &<XWing as Kem>::PrivateKey {
        &self.xwing
    }

    pub(crate) fn x25519(&self) -> &<X25519HkdfSha256 as Kem>::PrivateKey {
        &self.x25519
    }

    /// Constant-time comparison of two identities' secrets.
    pub fn ct_eq(&self, other: &Identity) -> bool {
        bool::from(self.to_secret_bytes()[..].ct_eq(&other.to_secret_bytes()[..]))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.recipient.fingerprint)
    }
}
