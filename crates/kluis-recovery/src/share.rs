//! The password-sealed share file. RECOVERY.md §3.
//!
//! ```text
//! off      len   field
//! 0        8     magic "KLUISSHR"
//! 8        1     version 0x01
//! 9        1     kdf 0x01 = Argon2id v1.3
//! 10       4     m_cost  KiB, big-endian       (65536 ..= 4194304)
//! 14       4     t_cost  big-endian            (3 ..= 64)
//! 18       4     p_cost  big-endian            (1 ..= 16)
//! 22       1     index i    Shamir x-coordinate (1 ..= N)
//! 23       1     threshold K                    (2 ..= N)
//! 24       1     shares N                       (K ..= 255)
//! 25       16    set id     random, equal in all N files of one `init`
//! 41       32    recovery key fingerprint (all 32 bytes)
//! 73       1     L, holder name length          (1 ..= 64)
//! 74       L     holder name, UTF-8
//! 74+L     32·N  commitments C_1 .. C_N
//! ..       16    salt
//! ..       12    nonce
//! ..       80    AES-256-GCM(key, nonce, aad = every preceding byte, y_i (64)) || tag
//! ```
//! `key = Argon2id(password, salt, m_cost, t_cost, p_cost, 32 bytes)`;
//! `C_j = SHA-256("kluis share commitment v1\n" || set id || j || y_j)`.
//! The file is exactly `74 + L + 32·N + 108` bytes; anything else is refused.

use aes_gcm::{AeadInOut as _, KeyInit as _};
use kluis_format::KdfParams;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::error::{RecoveryError, Result};

const MAGIC: &[u8; 8] = b"KLUISSHR";
const VERSION: u8 = 1;
const KDF_ARGON2ID: u8 = 1;
const FIXED_HEAD: usize = 74;
const TAIL: usize = 16 + 12 + SHARE_LEN + 16;
const COMMITMENT_DOMAIN: &[u8] = b"kluis share commitment v1\n";
/// Length of one share value: one GF(256) point per secret byte.
pub const SHARE_LEN: usize = kluis_format::IDENTITY_SECRET_LEN;
/// Longest holder name (bytes).
pub const MAX_HOLDER_LEN: usize = 64;
/// Most shares one setup may have (GF(256) has 255 non-zero points).
pub const MAX_SHARES: u8 = 255;

const MAX_M: u32 = 4 * 1024 * 1024;
const MAX_T: u32 = 64;
const MAX_P: u32 = 16;

pub(crate) fn check_kdf(p: KdfParams) -> Result<()> {
    if p.m_cost_kib < KdfParams::MINIMUM.m_cost_kib {
        return Err(RecoveryError::WeakKdf("memory below 64 MiB"));
    }
    if p.t_cost < KdfParams::MINIMUM.t_cost {
        return Err(RecoveryError::WeakKdf("fewer than 3 passes"));
    }
    if p.p_cost < 1 {
        return Err(RecoveryError::WeakKdf("zero lanes"));
    }
    if p.m_cost_kib > MAX_M || p.t_cost > MAX_T || p.p_cost > MAX_P {
        return Err(RecoveryError::MalformedShare(
            "key-derivation parameters above the allowed maximum",
        ));
    }
    Ok(())
}

/// A share commitment: SHA-256 over the domain, set id, index and value.
pub(crate) type Commitment = [u8; 32];

pub(crate) fn commit(set_id: &[u8; 16], index: u8, y: &[u8; SHARE_LEN]) -> Commitment {
    let mut h = Sha256::new();
    h.update(COMMITMENT_DOMAIN);
    h.update(set_id);
    h.update([index]);
    h.update(y);
    h.finalize().into()
}

/// The public header of a share file: everything but the sealed value.
/// Readable without the password, so the admin tool can show whose share a
/// file is before asking for a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareInfo {
    /// The Shamir x-coordinate, 1-based.
    pub index: u8,
    /// Shares needed to rebuild the key (K).
    pub threshold: u8,
    /// Shares made (N).
    pub shares: u8,
    /// Random id shared by all files of one setup.
    pub set_id: [u8; 16],
    /// Fingerprint (all 32 bytes) of the recovery public key.
    pub recovery_fingerprint: [u8; 32],
    /// Who holds this share.
    pub holder: String,
    /// Argon2id parameters protecting the file.
    pub kdf: KdfParams,
}

/// A parsed, still sealed share file.
#[derive(Clone, Debug)]
pub struct ShareFile {
    info: ShareInfo,
    commitments: Vec<Commitment>,
    bytes: Vec<u8>,
}

/// A share whose value has been decrypted with its holder's password.
/// The value is zeroized on drop and never printed.
pub struct OpenedShare {
    pub(crate) info: ShareInfo,
    pub(crate) commitments: Vec<Commitment>,
    pub(crate) y: Zeroizing<[u8; SHARE_LEN]>,
}

impl std::fmt::Debug for OpenedShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OpenedShare(index {}, {})",
            self.info.index, self.info.holder
        )
    }
}

impl OpenedShare {
    /// The public header.
    pub fn info(&self) -> &ShareInfo {
        &self.info
    }

    /// Re-seals this share under a new password (an admin changing their
    /// share password, or handing the share to a successor). The value and
    /// commitments are unchanged, so the other files still vouch for it.
    pub fn reseal(
        &self,
        holder: &str,
        password: &[u8],
        kdf: KdfParams,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Vec<u8>> {
        let mut info = self.info.clone();
        holder.clone_into(&mut info.holder);
        info.kdf = kdf;
        seal(&info, &self.commitments, &self.y, password, rng)
    }
}

fn derive_key(password: &[u8], salt: &[u8; 16], p: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let params = argon2::Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(32))
        .map_err(|_| RecoveryError::MalformedShare("unusable key-derivation parameters"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password, salt, &mut key[..])
        .map_err(|_| RecoveryError::MalformedShare("key derivation failed"))?;
    Ok(key)
}

fn cipher(key: &[u8; 32]) -> aes_gcm::Aes256Gcm {
    aes_gcm::Aes256Gcm::new(key.into())
}

fn check_holder(holder: &str) -> Result<()> {
    if holder.is_empty() || holder.len() > MAX_HOLDER_LEN {
        return Err(RecoveryError::BadParameters(
            "holder name must be 1 to 64 bytes",
        ));
    }
    if holder.chars().any(char::is_control) {
        return Err(RecoveryError::BadParameters(
            "holder name must not contain control characters",
        ));
    }
    Ok(())
}

/// Writes a share file (§3): header, commitments, salt, nonce, sealed value.
pub(crate) fn seal(
    info: &ShareInfo,
    commitments: &[Commitment],
    y: &[u8; SHARE_LEN],
    password: &[u8],
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<u8>> {
    check_kdf(info.kdf)?;
    check_holder(&info.holder)?;
    if password.is_empty() {
        return Err(RecoveryError::BadParameters(
            "a share password must not be empty",
        ));
    }
    if commitments.len() != usize::from(info.shares) {
        return Err(RecoveryError::BadParameters(
            "one commitment per share is required",
        ));
    }
    let mut out =
        Vec::with_capacity(FIXED_HEAD + info.holder.len() + 32 * commitments.len() + TAIL);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(KDF_ARGON2ID);
    out.extend_from_slice(&info.kdf.m_cost_kib.to_be_bytes());
    out.extend_from_slice(&info.kdf.t_cost.to_be_bytes());
    out.extend_from_slice(&info.kdf.p_cost.to_be_bytes());
    out.push(info.index);
    out.push(info.threshold);
    out.push(info.shares);
    out.extend_from_slice(&info.set_id);
    out.extend_from_slice(&info.recovery_fingerprint);
    // check_holder bounds the length to 64.
    out.push(u8::try_from(info.holder.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(info.holder.as_bytes());
    for c in commitments {
        out.extend_from_slice(c);
    }
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let key = derive_key(password, &salt, info.kdf)?;
    let mut sealed = Zeroizing::new(*y);
    let tag = cipher(&key)
        .encrypt_inout_detached(&nonce.into(), &out, (&mut sealed[..]).into())
        .map_err(|_| RecoveryError::BadParameters("AES-GCM refused to seal 64 bytes"))?;
    out.extend_from_slice(&sealed[..]);
    out.extend_from_slice(&tag);
    // Self-check: what we write must parse (§3 is the only definition).
    ShareFile::parse(&out)?;
    Ok(out)
}

impl ShareFile {
    /// Parses a share file without the password. Every rule of §3 except
    /// the AEAD tag is checked here.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        let malformed = RecoveryError::MalformedShare;
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(RecoveryError::NotAShareFile);
        }
        if bytes.len() < 10 {
            return Err(malformed("truncated"));
        }
        if bytes[8] != VERSION {
            return Err(RecoveryError::UnsupportedShareVersion(bytes[8]));
        }
        if bytes[9] != KDF_ARGON2ID {
            return Err(malformed("unknown key-derivation function"));
        }
        if bytes.len() < FIXED_HEAD {
            return Err(malformed("truncated"));
        }
        let be =
            |o: usize| u32::from_be_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let kdf = KdfParams {
            m_cost_kib: be(10),
            t_cost: be(14),
            p_cost: be(18),
        };
        check_kdf(kdf)?;
        let (index, threshold, shares) = (bytes[22], bytes[23], bytes[24]);
        if threshold < 2 {
            return Err(malformed("threshold below 2"));
        }
        if shares < threshold {
            return Err(malformed("fewer shares than the threshold"));
        }
        if index == 0 || index > shares {
            return Err(malformed("share index out of range"));
        }
        let mut set_id = [0u8; 16];
        set_id.copy_from_slice(&bytes[25..41]);
        let mut recovery_fingerprint = [0u8; 32];
        recovery_fingerprint.copy_from_slice(&bytes[41..73]);
        let holder_len = usize::from(bytes[73]);
        let n = usize::from(shares);
        let total = FIXED_HEAD + holder_len + 32 * n + TAIL;
        if bytes.len() != total {
            return Err(malformed("wrong length (truncated or trailing data)"));
        }
        let holder = std::str::from_utf8(&bytes[FIXED_HEAD..FIXED_HEAD + holder_len])
            .map_err(|_| malformed("holder name is not UTF-8"))?;
        check_holder(holder).map_err(|_| malformed("holder name breaks its rule"))?;
        let start = FIXED_HEAD + holder_len;
        let commitments = bytes[start..start + 32 * n]
            .chunks_exact(32)
            .map(|c| {
                let mut out = [0u8; 32];
                out.copy_from_slice(c);
                out
            })
            .collect();
        Ok(ShareFile {
            info: ShareInfo {
                index,
                threshold,
                shares,
                set_id,
                recovery_fingerprint,
                holder: holder.to_owned(),
                kdf,
            },
            commitments,
            bytes: bytes.to_vec(),
        })
    }

    /// The public header.
    pub fn info(&self) -> &ShareInfo {
        &self.info
    }

    /// The file bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decrypts the share value with its holder's password. A wrong
    /// password and an altered file are one error,
    /// [`RecoveryError::ShareUnreadable`]. The file's own commitment to its
    /// value is checked here too.
    pub fn open(&self, password: &[u8]) -> Result<OpenedShare> {
        let unreadable = || RecoveryError::ShareUnreadable {
            index: self.info.index,
            holder: self.info.holder.clone(),
        };
        let aad_len = self.bytes.len() - SHARE_LEN - 16;
        let salt_at = aad_len - 28;
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&self.bytes[salt_at..salt_at + 16]);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&self.bytes[salt_at + 16..aad_len]);
        let key = derive_key(password, &salt, self.info.kdf)?;
        let mut y = Zeroizing::new([0u8; SHARE_LEN]);
        y.copy_from_slice(&self.bytes[aad_len..aad_len + SHARE_LEN]);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&self.bytes[aad_len + SHARE_LEN..]);
        cipher(&key)
            .decrypt_inout_detached(
                &nonce.into(),
                &self.bytes[..aad_len],
                (&mut y[..]).into(),
                (&tag).into(),
            )
            .map_err(|_| unreadable())?;
        let own = commit(&self.info.set_id, self.info.index, &y);
        let listed = &self.commitments[usize::from(self.info.index) - 1];
        if !bool::from(own.ct_eq(listed)) {
            // Sealed with the right password but inconsistent with itself:
            // someone with the password replaced the value.
            return Err(RecoveryError::TamperedShare {
                index: self.info.index,
                holder: self.info.holder.clone(),
                part: crate::error::TamperedPart::Value,
            });
        }
        Ok(OpenedShare {
            info: self.info.clone(),
            commitments: self.commitments.clone(),
            y,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn sample(rng: &mut ChaCha20Rng) -> (ShareInfo, Vec<Commitment>, [u8; SHARE_LEN]) {
        let info = ShareInfo {
            index: 2,
            threshold: 2,
            shares: 3,
            set_id: [5u8; 16],
            recovery_fingerprint: [6u8; 32],
            holder: "Bob".into(),
            kdf: KdfParams::DEFAULT,
        };
        let y = [7u8; SHARE_LEN];
        let commitments = vec![[1u8; 32], commit(&info.set_id, 2, &y), [3u8; 32]];
        let _ = rng;
        (info, commitments, y)
    }

    #[test]
    fn parse_write_round_trip_and_exact_length() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let (info, commitments, y) = sample(&mut rng);
        let bytes = seal(&info, &commitments, &y, b"pw", &mut rng).expect("seals");
        assert_eq!(bytes.len(), 74 + 3 + 32 * 3 + 108);
        let file = ShareFile::parse(&bytes).expect("parses");
        assert_eq!(file.info(), &info);
        let opened = file.open(b"pw").expect("opens");
        assert_eq!(*opened.y, y);
        assert!(matches!(
            file.open(b"wrong"),
            Err(RecoveryError::ShareUnreadable { index: 2, .. })
        ));
    }

    #[test]
    fn structural_rules_are_typed_errors() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let (info, commitments, y) = sample(&mut rng);
        let bytes = seal(&info, &commitments, &y, b"pw", &mut rng).expect("seals");
        assert!(matches!(
            ShareFile::parse(b"KLUISKEY"),
            Err(RecoveryError::NotAShareFile)
        ));
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(matches!(
            ShareFile::parse(&v2),
            Err(RecoveryError::UnsupportedShareVersion(2))
        ));
        let mut weak = bytes.clone();
        weak[10..14].copy_from_slice(&1024u32.to_be_bytes());
        assert!(matches!(
            ShareFile::parse(&weak),
            Err(RecoveryError::WeakKdf(_))
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            ShareFile::parse(&long),
            Err(RecoveryError::MalformedShare(_))
        ));
        let mut index0 = bytes.clone();
        index0[22] = 0;
        assert!(ShareFile::parse(&index0).is_err());
        let mut k1 = bytes;
        k1[23] = 1;
        assert!(ShareFile::parse(&k1).is_err());
    }

    #[test]
    fn every_header_byte_is_authenticated() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (info, commitments, y) = sample(&mut rng);
        let bytes = seal(&info, &commitments, &y, b"pw", &mut rng).expect("seals");
        // Flip the set id, the fingerprint, a commitment and the ciphertext:
        // each still parses but no longer opens.
        for at in [30, 50, 74 + 3 + 40, bytes.len() - 20] {
            let mut t = bytes.clone();
            t[at] ^= 0x10;
            let file = ShareFile::parse(&t).expect("still well-formed");
            assert!(
                matches!(file.open(b"pw"), Err(RecoveryError::ShareUnreadable { .. })),
                "byte {at}"
            );
        }
    }
}
