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

    /// All 32 bytes as sixteen groups of four upper-case hex digits
    /// (FORMAT.md §2). `Display` shows only the key id, the first eight
    /// groups, which is what people compare.
    pub fn to_full_string(&self) -> String {
        let mut out = String::with_capacity(79);
        for (i, pair) in self.0.chunks(2).enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&format!("{:02X}{:02X}", pair[0], pair[1]));
        }
        out
    }
}

impl fmt::Display for Fingerprint {
    /// `4F2A 9C1B …`: the key id, eight groups of four hex digits (128
    /// bits); [`Fingerprint::to_full_string`] shows all 32 bytes.
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

    /// Parse the raw 1248-byte encoding (X-Wing pk || X25519 pk). Both keys
    /// must be valid for their KEM (FORMAT.md §2): the ML-KEM-768 part of the
    /// X-Wing key passes FIPS 203's modulus check, and both X25519 keys (the
    /// classical one and the one inside X-Wing) are canonical and not of low
    /// order.
    pub fn from_bytes(raw: &[u8]) -> Result<Self> {
        if raw.len() != RECIPIENT_PAYLOAD_LEN {
            return Err(Error::InvalidRecipient("wrong length"));
        }
        check_x25519_public(&raw[XWING_PK_LEN - X25519_PK_LEN..XWING_PK_LEN]).map_err(|why| {
            Error::InvalidRecipient(match why {
                X25519Flaw::NotCanonical => {
                    "invalid X-Wing public key: its X25519 part is not a canonical encoding"
                }
                X25519Flaw::LowOrder => {
                    "invalid X-Wing public key: its X25519 part is all-zero or of low order"
                }
            })
        })?;
        check_x25519_public(&raw[XWING_PK_LEN..]).map_err(|why| {
            Error::InvalidRecipient(match why {
                X25519Flaw::NotCanonical => "invalid X25519 public key: not a canonical encoding",
                X25519Flaw::LowOrder => "invalid X25519 public key: all-zero or of low order",
            })
        })?;
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
            // The engine refuses padding, other alphabets and non-zero
            // unused bits in the last character: one encoding per key (§2).
            .map_err(|_| Error::InvalidRecipient("not canonical unpadded base64url"))?;
        let (keys, sum) = raw.split_at(RECIPIENT_PAYLOAD_LEN);
        if checksum(keys)[..] != sum[..] {
            return Err(Error::InvalidRecipient(
                "checksum mismatch (typo or damaged copy)",
            ));
        }
        Recipient::from_bytes(keys)
    }
}

enum X25519Flaw {
    NotCanonical,
    LowOrder,
}

/// FORMAT.md §2, what "valid" means for an X25519 public key: the canonical
/// encoding of a u-coordinate (little-endian, below p = 2^255 − 19, so the
/// top bit is clear), and not of low order. X25519 clamps every scalar to a
/// multiple of 8, so its result is all zeros exactly for the points whose
/// order divides 8 (on the curve or its twist): 0, 1, p − 1 and the two
/// points of order 8. Encrypting to such a key would give a shared secret
/// anyone knows (HPKE refuses it, so a file could never be encrypted to it).
fn check_x25519_public(pk: &[u8]) -> std::result::Result<(), X25519Flaw> {
    let u: [u8; 32] = pk.try_into().map_err(|_| X25519Flaw::NotCanonical)?;
    let at_least_p = u[31] == 0x7f && u[1..31].iter().all(|&b| b == 0xff) && u[0] >= 0xed;
    if u[31] & 0x80 != 0 || at_least_p {
        return Err(X25519Flaw::NotCanonical);
    }
    // Any scalar will do: clamping makes it a multiple of 8.
    if x25519_dalek::x25519([0x5a; 32], u) == [0; 32] {
        return Err(X25519Flaw::LowOrder);
    }
    Ok(())
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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests {
    use super::*;

    fn rng() -> impl rand_core::CryptoRng {
        rand_core::UnwrapErr(getrandom::SysRng)
    }

    fn hex32(h: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    /// The recipient string of arbitrary key bytes, checksum included.
    fn string_of(raw: &[u8]) -> String {
        let mut all = raw.to_vec();
        all.extend_from_slice(&checksum(raw));
        format!("{RECIPIENT_PREFIX}{}", URL_SAFE_NO_PAD.encode(all))
    }

    /// The X25519 u-coordinates of low order (libsodium's blocklist and
    /// Wycheproof's x25519 test vectors): 0, 1, the two points of order 8,
    /// p − 1; and non-canonical encodings (p, p + 1, the top bit set).
    const LOW_ORDER: [&str; 5] = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ];
    const NOT_CANONICAL: [&str; 4] = [
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0900000000000000000000000000000000000000000000000000000000000080",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
    ];

    #[test]
    fn low_order_and_non_canonical_x25519_keys_are_refused() {
        let good = Identity::generate(&mut rng())
            .recipient()
            .as_bytes()
            .to_vec();
        assert!(Recipient::from_bytes(&good).is_ok());
        for (list, flaw) in [
            (&LOW_ORDER[..], "all-zero or of low order"),
            (&NOT_CANONICAL[..], "not a canonical encoding"),
        ] {
            for h in list {
                // The classical key, then the X25519 part of the X-Wing key.
                for (at, kem) in [
                    (XWING_PK_LEN, "invalid X25519 public key"),
                    (XWING_PK_LEN - X25519_PK_LEN, "invalid X-Wing public key"),
                ] {
                    let mut raw = good.clone();
                    raw[at..at + 32].copy_from_slice(&hex32(h));
                    for parsed in [Recipient::from_bytes(&raw), string_of(&raw).parse()] {
                        match parsed {
                            Err(Error::InvalidRecipient(why)) => {
                                assert!(why.starts_with(kem) && why.ends_with(flaw), "{h}: {why}")
                            }
                            other => panic!("{h} at {at}: accepted: {other:?}"),
                        }
                    }
                }
            }
        }
        // The base point itself is a fine key.
        let mut raw = good.clone();
        raw[XWING_PK_LEN] = 9;
        raw[XWING_PK_LEN + 1..].fill(0);
        assert!(Recipient::from_bytes(&raw).is_ok());
    }

    /// 1252 bytes take 1670 characters; the last one carries 2 bits and 4
    /// unused bits, which must be zero. Padding and the standard alphabet
    /// are refused too.
    #[test]
    fn only_canonical_base64url_is_accepted() {
        let s = Identity::generate(&mut rng()).recipient().to_string();
        assert!(s.parse::<Recipient>().is_ok());
        let last = s.chars().last().unwrap();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let pos = alphabet.iter().position(|&c| c == last as u8).unwrap();
        assert_eq!(pos & 0x0f, 0, "canonical: the unused bits are zero");
        let mut flipped = s.clone();
        flipped.pop();
        flipped.push(alphabet[pos | 1] as char);
        let mut std_alphabet = s.clone();
        let i = s.len() - 10;
        std_alphabet.replace_range(i..i + 1, "+");
        let mut padded = s.clone();
        padded.pop();
        padded.push('=');
        for bad in [flipped, std_alphabet, padded] {
            assert!(
                matches!(
                    bad.parse::<Recipient>(),
                    Err(Error::InvalidRecipient("not canonical unpadded base64url"))
                ),
                "{bad}"
            );
        }
    }
}
