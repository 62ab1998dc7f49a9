//! Changing the recipients of an existing header, and the padding that lets
//! the new header keep the old one's length (FORMAT.md §4.7, §6). The sync
//! agent's sharing, `kluis recipients` and [`crate::rewrite_header`] all go
//! through [`Header::refit`], so the rule lives once.

use super::{
    HEADER_BLOCK, Header, MAX_STANZAS, PAD_MAX, PAD_MIN, Padding, SMALL_HEADER_BLOCK, Stanza,
    base_kem,
};
use crate::error::{Error, Result};
use crate::header::FileKey;
use crate::keys::{KEM_X25519, KEM_XWING, KemChoice, KeyId, Recipient};

/// How [`Header::refit`] made the changed header fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refit {
    /// The padding absorbed the change: the header has its old length and
    /// can be written over the old one in place; the payload is untouched.
    SameLength,
    /// The change did not fit the padding: the header was padded afresh by
    /// the writer's rule and the file must be rewritten whole.
    Repadded {
        /// The old header length.
        from: usize,
        /// The new one.
        to: usize,
    },
}

impl Header {
    /// Add a recipient without touching the payload (FORMAT.md §6). Returns
    /// false if the recipient already had a stanza of that KEM.
    pub fn add_recipient(
        &mut self,
        file_key: &FileKey,
        r: &Recipient,
        kem: KemChoice,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<bool> {
        self.verify_mac(file_key)?;
        let added = self.push_stanza(file_key, r, kem, rng)?;
        self.padding_last();
        self.reseal(file_key);
        Ok(added)
    }

    /// Remove every stanza for `key_id`. Refuses to remove the last stanza.
    /// Returns how many stanzas were removed.
    pub fn remove_recipient(&mut self, file_key: &FileKey, key_id: &KeyId) -> Result<usize> {
        self.verify_mac(file_key)?;
        let before = self.stanzas.len();
        let kept: Vec<Stanza> = self
            .stanzas
            .iter()
            .filter(|s| &s.key_id != key_id)
            .cloned()
            .collect();
        if kept.is_empty() {
            return Err(Error::NoRecipients);
        }
        self.stanzas = kept;
        self.padding_last();
        self.reseal(file_key);
        Ok(before - self.stanzas.len())
    }

    /// Length of the encoded header, padding included.
    pub fn byte_len(&self) -> usize {
        self.encoded_len()
    }

    /// Bytes of padding (the whole padding stanza; 0 without one).
    pub fn padding_len(&self) -> usize {
        self.padding.map_or(0, |p| p.len)
    }

    fn padding_last(&mut self) {
        if let Some(p) = &mut self.padding {
            p.at = self.stanzas.len();
        }
    }

    fn unpadded_len(&self) -> usize {
        self.encoded_len() - self.padding_len()
    }

    /// Resize the padding so that the header is exactly `len` bytes long,
    /// then re-MAC: after a recipient change, the new header then fits where
    /// the old one was and can be written over it in place (FORMAT.md §4.7).
    /// Returns false, changing nothing, when it cannot fit.
    pub fn fit_to(&mut self, file_key: &FileKey, len: usize) -> Result<bool> {
        self.verify_mac(file_key)?;
        let base = self.unpadded_len();
        let pad = match len.checked_sub(base) {
            Some(0) => None,
            Some(n) if (PAD_MIN..=PAD_MAX).contains(&n) => Some(n),
            _ => return Ok(false),
        };
        if pad.is_some() && self.stanzas.len() + 1 > MAX_STANZAS {
            return Ok(false);
        }
        self.padding = pad.map(|len| Padding {
            at: self.stanzas.len(),
            len,
        });
        self.reseal(file_key);
        Ok(true)
    }

    /// Fresh padding up to the next multiple of [`HEADER_BLOCK`], or of
    /// [`SMALL_HEADER_BLOCK`] for an X25519-only header (the writer's rule,
    /// FORMAT.md §4.7), then re-MAC.
    pub fn repad(&mut self, file_key: &FileKey) -> Result<()> {
        self.verify_mac(file_key)?;
        self.pad_to_block();
        self.reseal(file_key);
        Ok(())
    }

    pub(super) fn pad_to_block(&mut self) {
        // X25519-only headers are the small ones (FORMAT.md §4.2): they
        // keep to 256-byte steps.
        let block = if self.stanzas.iter().all(|s| base_kem(s.kem) == KEM_X25519) {
            SMALL_HEADER_BLOCK
        } else {
            HEADER_BLOCK
        };
        let base = self.unpadded_len();
        let mut pad = base.next_multiple_of(block) - base;
        if pad < PAD_MIN {
            pad += block;
        }
        self.padding = (self.stanzas.len() < MAX_STANZAS).then_some(Padding {
            at: self.stanzas.len(),
            len: pad,
        });
    }

    /// The KEM that new stanzas of this file should use, so that re-sharing
    /// keeps the file's choice: X25519 when every stanza of a known KEM is
    /// X25519 (direct or batch, a `--classical` file), X-Wing otherwise. A
    /// classical file shared with one more person stays classical and keeps
    /// its small header; a post-quantum file never gets a weaker stanza.
    pub fn reshare_kem(&self) -> KemChoice {
        let mut known = self
            .stanzas
            .iter()
            .map(|s| base_kem(s.kem))
            .filter(|k| matches!(*k, KEM_XWING | KEM_X25519))
            .peekable();
        if known.peek().is_some() && known.all(|k| k == KEM_X25519) {
            KemChoice::X25519
        } else {
            KemChoice::XWing
        }
    }

    /// After a recipient change (or any edit) of a header that was
    /// `old_len` bytes long: resize its padding so that it keeps that length
    /// ([`Header::fit_to`]), or, when that cannot be done, pad it afresh by
    /// the writer's rule ([`Header::repad`]). Either way the padding stanza
    /// ends up after the last recipient stanza, and the header is re-MACed
    /// (FORMAT.md §4.7).
    pub fn refit(&mut self, file_key: &FileKey, old_len: usize) -> Result<Refit> {
        if self.fit_to(file_key, old_len)? {
            return Ok(Refit::SameLength);
        }
        self.repad(file_key)?;
        Ok(Refit::Repadded {
            from: old_len,
            to: self.byte_len(),
        })
    }
}
