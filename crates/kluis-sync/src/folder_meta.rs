//! The encrypted folder-metadata file `.kluis-folder` in the mirror root.
//! docs/FORMAT.md §8.2.
//!
//! It is an ordinary Kluis file wrapped to every member, whose payload is:
//!
//! ```text
//! magic        8   "KLSFOLD1"
//! folder_id   16   random, fixed for the life of the mirror
//! name_secret 32   random; the name key is derived from it
//! count        2   u16 big-endian, number of members (1..=256)
//! member*          u16 big-endian length, then the recipient string (kluis1…)
//! ```

use std::io::Read;

use kluis_format::{Identity, Metadata, Recipient};
use zeroize::Zeroizing;

use crate::names::NameCipher;

/// File name of the folder metadata in the mirror root.
pub const FOLDER_META_FILE: &str = ".kluis-folder";
const MAGIC: &[u8; 8] = b"KLSFOLD1";

/// Why a folder-metadata payload was rejected.
#[derive(Debug, thiserror::Error)]
pub enum FolderMetaError {
    /// The Kluis layer failed (not shared with us, incomplete, tampered).
    #[error(transparent)]
    Format(#[from] kluis_format::Error),
    /// The payload is not a folder-metadata record.
    #[error("malformed folder metadata: {0}")]
    Malformed(&'static str),
}

/// The decrypted folder metadata.
pub struct FolderMeta {
    /// Random id of this mirror.
    pub folder_id: [u8; 16],
    name_secret: Zeroizing<[u8; 32]>,
    /// Who the folder is shared with (the sharing issue edits this list).
    pub members: Vec<Recipient>,
}

impl std::fmt::Debug for FolderMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderMeta")
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

impl FolderMeta {
    /// A new folder owned by `owner`.
    pub fn generate(owner: &Recipient, rng: &mut impl rand_core::CryptoRng) -> Self {
        let mut folder_id = [0u8; 16];
        rng.fill_bytes(&mut folder_id);
        let mut name_secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut name_secret[..]);
        FolderMeta {
            folder_id,
            name_secret,
            members: vec![owner.clone()],
        }
    }

    /// The name cipher of this folder.
    pub fn name_cipher(&self) -> NameCipher {
        NameCipher::new(self.folder_id, &self.name_secret)
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.folder_id);
        out.extend_from_slice(&self.name_secret[..]);
        out.extend_from_slice(&(self.members.len() as u16).to_be_bytes());
        for m in &self.members {
            let s = m.to_string();
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        out
    }

    fn decode(b: &[u8]) -> Result<Self, FolderMetaError> {
        let bad = FolderMetaError::Malformed;
        if b.len() < 58 || &b[..8] != MAGIC {
            return Err(bad("bad magic or too short"));
        }
        let mut folder_id = [0u8; 16];
        folder_id.copy_from_slice(&b[8..24]);
        let mut name_secret = Zeroizing::new([0u8; 32]);
        name_secret.copy_from_slice(&b[24..56]);
        let count = usize::from(u16::from_be_bytes([b[56], b[57]]));
        if count == 0 || count > 256 {
            return Err(bad("member count must be 1..=256"));
        }
        let mut rest = &b[58..];
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            if rest.len() < 2 {
                return Err(bad("truncated member list"));
            }
            let n = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
            let s = rest
                .get(2..2 + n)
                .and_then(|s| std::str::from_utf8(s).ok())
                .ok_or(bad("bad member entry"))?;
            members.push(s.parse().map_err(|_| bad("bad member recipient"))?);
            rest = &rest[2 + n..];
        }
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(FolderMeta {
            folder_id,
            name_secret,
            members,
        })
    }

    /// Encrypt to all members.
    pub fn seal(&self, rng: &mut impl rand_core::CryptoRng) -> Result<Vec<u8>, FolderMetaError> {
        let plain = self.encode();
        let mut out = Vec::new();
        let meta = Metadata {
            name: Some(FOLDER_META_FILE.to_owned()),
            size: Some(plain.len() as u64),
            ..Metadata::default()
        };
        kluis_format::encrypt(
            &plain[..],
            &mut out,
            &self.members,
            &meta,
            kluis_format::EncryptOptions::default(),
            rng,
        )?;
        Ok(out)
    }

    /// Decrypt with `identity`.
    pub fn open(bytes: &[u8], identity: &Identity) -> Result<Self, FolderMetaError> {
        let mut d = kluis_format::Decryptor::new(bytes, identity)?;
        let mut plain = Zeroizing::new(Vec::new());
        d.read_to_end(&mut plain)
            .map_err(kluis_format::Error::from_io)?;
        Self::decode(&plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let id = Identity::generate(&mut rng);
        let other = Identity::generate(&mut rng);
        let m = FolderMeta::generate(id.recipient(), &mut rng);
        let sealed = m.seal(&mut rng).unwrap();
        let back = FolderMeta::open(&sealed, &id).unwrap();
        assert_eq!(back.folder_id, m.folder_id);
        assert_eq!(back.members, m.members);
        assert_eq!(
            back.name_cipher().encrypt_component("x").unwrap(),
            m.name_cipher().encrypt_component("x").unwrap()
        );
        assert!(matches!(
            FolderMeta::open(&sealed, &other),
            Err(FolderMetaError::Format(kluis_format::Error::NoMatchingRecipient))
        ));
        assert!(FolderMeta::open(&sealed[..sealed.len() - 3], &id).is_err());
    }
}
