//! The password-protected identity file. FORMAT.md §3.
//!
//! ```text
//! magic      8  "KLUISKEY"
//! version    1  0x01
//! kdf        1  0x01 = Argon2id v1.3
//! m_cost     4  memory in KiB, big-endian      (65536 ..= 4194304)
//! t_cost     4  iterations, big-endian         (3 ..= 64)
//! p_cost     4  lanes, big-endian              (1 ..= 16)
//! salt      16
//! nonce     12
//! sealed    80  AES-256-GCM(key, nonce, aad = bytes 0..50, secret(64)) || tag
//! ```
//! `key = Argon2id(password, salt, m_cost, t_cost, p_cost, 32 bytes)`.
//! The file is exactly 130 bytes; anything else is refused.

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keys::{IDENTITY_SECRET_LEN, Identity};

const MAGIC: &[u8; 8] = b"KLUISKEY";
const VERSION: u8 = 1;
const KDF_ARGON2ID: u8 = 1;
const AAD_LEN: usize = 8 + 1 + 1 + 4 + 4 + 4 + 16 + 12;
const SEALED_LEN: usize = IDENTITY_SECRET_LEN + 16;
/// Exact size of an identity file.
pub const IDENTITY_FILE_LEN: usize = AAD_LEN + SEALED_LEN;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KdfParams {
    /// The minimum accepted on read: 64 MiB, 3 passes, 1 lane.
    pub const MINIMUM: KdfParams = KdfParams {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };
    /// What new files use (the minimum; raise it as hardware allows).
    pub const DEFAULT: KdfParams = KdfParams::MINIMUM;
    const MAX_M: u32 = 4 * 1024 * 1024;
    const MAX_T: u32 = 64;
    const MAX_P: u32 = 16;

    fn check(&self) -> Result<()> {
        if self.m_cost_kib < Self::MINIMUM.m_cost_kib {
            return Err(Error::WeakKdf("memory below 64 MiB"));
        }
        if self.t_cost < Self::MINIMUM.t_cost {
            return Err(Error::WeakKdf("fewer than 3 passes"));
        }
        if self.p_cost < 1 {
            return Err(Error::WeakKdf("zero lanes"));
        }
        if self.m_cost_kib > Self::MAX_M {
            return Err(Error::CostlyKdf("memory above 4 GiB"));
        }
        if self.t_cost > Self::MAX_T {
            return Err(Error::CostlyKdf("more than 64 passes"));
        }
        if self.p_cost > Self::MAX_P {
            return Err(Error::CostlyKdf("more than 16 lanes"));
        }
        Ok(())
    }
}

fn derive_key(password: &[u8], salt: &[u8; 16], p: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let params = argon2::Params::new(p.m_cost_kib, p.t_cost, p.p_cost, Some(32))
        .map_err(|_| Error::InvalidIdentity("unusable key-derivation parameters"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password, salt, &mut key[..])
        .map_err(|_| Error::InvalidIdentity("key derivation failed"))?;
    Ok(key)
}

fn aead_key(key: &[u8; 32]) -> ring::aead::LessSafeKey {
    let unbound = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, key)
        .unwrap_or_else(|_| panic!("AES-256-GCM accepts every 32-byte key"));
    ring::aead::LessSafeKey::new(unbound)
}

/// Seal an identity under a password. `params` below [`KdfParams::MINIMUM`]
/// are refused, exactly as on read.
pub fn seal_identity(
    identity: &Identity,
    password: &[u8],
    params: KdfParams,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<u8>> {
    params.check()?;
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(IDENTITY_FILE_LEN);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(KDF_ARGON2ID);
    out.extend_from_slice(&params.m_cost_kib.to_be_bytes());
    out.extend_from_slice(&params.t_cost.to_be_bytes());
    out.extend_from_slice(&params.p_cost.to_be_bytes());
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    let key = derive_key(password, &salt, params)?;
    let mut sealed = Zeroizing::new(identity.to_secret_bytes().to_vec());
    let tag = aead_key(&key)
        .seal_in_place_separate_tag(
            ring::aead::Nonce::assume_unique_for_key(nonce),
            ring::aead::Aad::from(&out[..AAD_LEN]),
            &mut sealed[..],
        )
        .map_err(|_| Error::InvalidIdentity("sealing failed"))?;
    out.extend_from_slice(&sealed);
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Read and check the parameters of an identity file without the password,
/// so that a caller can refuse a file (weak or too costly parameters, §3)
/// before asking for the password.
pub fn identity_params(file: &[u8]) -> Result<KdfParams> {
    if file.len() < 8 || &file[..8] != MAGIC {
        return Err(Error::InvalidIdentity("not a Kluis identity file"));
    }
    if file.len() < 10 {
        return Err(Error::InvalidIdentity("truncated"));
    }
    if file[8] != VERSION {
        return Err(Error::UnsupportedVersion(file[8]));
    }
    if file[9] != KDF_ARGON2ID {
        return Err(Error::InvalidIdentity("unknown key-derivation function"));
    }
    if file.len() != IDENTITY_FILE_LEN {
        return Err(Error::InvalidIdentity(
            "wrong length (truncated or trailing data)",
        ));
    }
    let be = |o: usize| u32::from_be_bytes([file[o], file[o + 1], file[o + 2], file[o + 3]]);
    let params = KdfParams {
        m_cost_kib: be(10),
        t_cost: be(14),
        p_cost: be(18),
    };
    params.check()?;
    Ok(params)
}

/// Open an identity file with its password. Downgraded parameters are
/// refused before any work; a wrong password is [`Error::WrongPassword`].
pub fn open_identity(file: &[u8], password: &[u8]) -> Result<Identity> {
    let params = identity_params(file)?;
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&file[22..38]);
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&file[38..50]);
    let key = derive_key(password, &salt, params)?;
    let mut sealed = Zeroizing::new(file[AAD_LEN..].to_vec());
    let (ct, tag) = sealed.split_at_mut(IDENTITY_SECRET_LEN);
    let tag = ring::aead::Tag::try_from(&tag[..])
        .map_err(|_| Error::InvalidIdentity("bad tag length"))?;
    aead_key(&key)
        .open_in_place_separate_tag(
            ring::aead::Nonce::assume_unique_for_key(nonce),
            ring::aead::Aad::from(&file[..AAD_LEN]),
            tag,
            ct,
            0..,
        )
        .map_err(|_| Error::WrongPassword)?;
    Identity::from_secret_bytes(&sealed[..IDENTITY_SECRET_LEN])
}
