//! The file header: preamble, recipient stanzas, encrypted metadata, MAC.
//! FORMAT.md §4. Every field is fixed-size or length-prefixed with a bound, so
//! there is exactly one encoding of a header and parsing never allocates more
//! than [`MAX_HEADER_LEN`].

use std::io::{Read, Write};

use hpke::aead::AesGcm256;
use hpke::kdf::HkdfSha256;
use hpke::kem::{X25519HkdfSha256, XWing};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::error::{Error, Result, Section};
use crate::keys::{Identity, KEM_X25519, KEM_XWING, KemChoice, KeyId, Recipient};
use crate::meta::Metadata;

mod reshare;
#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod tests;

pub use reshare::Refit;

/// `0x89 "KLUIS" CR LF`: the high bit catches 7-bit channels, CR LF catches
/// newline conversion.
pub const MAGIC: [u8; 8] = [0x89, b'K', b'L', b'U', b'I', b'S', 0x0D, 0x0A];
/// The only format version.
pub const VERSION: u8 = 1;
/// Suite 1: HKDF-SHA-256 key schedule, HMAC-SHA-256 header MAC, AES-256-GCM
/// metadata, Cobblestone-256 payload.
pub const SUITE: u8 = 1;
/// At most this many stanzas.
pub const MAX_STANZAS: usize = 256;
/// Bound on the body of a stanza with an unknown KEM.
pub const MAX_UNKNOWN_BODY: usize = 4096;
/// Bound on the metadata ciphertext.
pub const MAX_META_CT: usize = crate::meta::MAX_META_PLAINTEXT + 16;
const PREAMBLE_LEN: usize = 8 + 1 + 1 + 2 + 16 + 2;
const STANZA_FIXED: usize = 2 + 16 + 2;
const WRAPPED_LEN: usize = 32 + 16;
const XWING_ENC_LEN: usize = 1120;
const X25519_ENC_LEN: usize = 32;
const MAC_LEN: usize = 32;
/// Largest possible header.
pub const MAX_HEADER_LEN: usize =
    PREAMBLE_LEN + MAX_STANZAS * (STANZA_FIXED + MAX_UNKNOWN_BODY) + 12 + 4 + MAX_META_CT + MAC_LEN;

/// KEM id of the padding stanza (FORMAT.md §4.7): RFC 9180 reserves
/// `0x0000`, so no HPKE KEM will ever take it. Older decoders skip it as an
/// unknown KEM.
pub const KEM_PADDING: u16 = 0x0000;
/// Writers pad headers to a multiple of this (FORMAT.md §4.7).
pub const HEADER_BLOCK: usize = 4096;
/// ... or of this when every stanza is X25519.
pub const SMALL_HEADER_BLOCK: usize = 256;
/// Smallest and largest padding stanza, whole (kem, key id, length, body).
const PAD_MIN: usize = STANZA_FIXED + 1;
const PAD_MAX: usize = STANZA_FIXED + MAX_UNKNOWN_BODY;

const LABEL_PAYLOAD: &[u8] = b"kluis/v1/payload";
const LABEL_MAC: &[u8] = b"kluis/v1/header-mac";
const LABEL_META: &[u8] = b"kluis/v1/metadata";
const LABEL_WRAP_INFO: &[u8] = b"kluis/v1/file-key";
const LABEL_BATCH_INFO: &[u8] = b"kluis/v1/batch";
const LABEL_BATCH_EXPORT: &[u8] = b"kluis/v1/batch-file-key";

/// Stanza type of a batch stanza (FORMAT.md §4.8): its KEM's id with the
/// top bit set. No HPKE KEM id has it, and decoders that predate batch
/// stanzas skip them as unknown KEMs.
pub const BATCH_BIT: u16 = 0x8000;
/// A batch stanza for X-Wing (`0xe47a`).
pub const KEM_XWING_BATCH: u16 = KEM_XWING | BATCH_BIT;
/// A batch stanza for DHKEM(X25519) (`0x8020`).
pub const KEM_X25519_BATCH: u16 = KEM_X25519 | BATCH_BIT;

/// The KEM a stanza type uses: itself for a direct stanza, the KEM without
/// the batch bit for a batch stanza.
fn base_kem(kem: u16) -> u16 {
    match kem {
        KEM_XWING_BATCH => KEM_XWING,
        KEM_X25519_BATCH => KEM_X25519,
        k => k,
    }
}

/// The per-file random content key. Never printed, zeroized on drop.
pub struct FileKey(Zeroizing<[u8; 32]>);

impl FileKey {
    /// A fresh random key.
    pub fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut k[..]);
        FileKey(k)
    }

    /// HKDF-SHA-256(salt = file id, ikm = file key, info = label), 32 bytes.
    fn derive(&self, file_id: &[u8; 16], label: &[u8]) -> Zeroizing<[u8; 32]> {
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, file_id).extract(&self.0[..]);
        let mut out = Zeroizing::new([0u8; 32]);
        let info = [label];
        prk.expand(&info, ring::hkdf::HKDF_SHA256)
            .and_then(|okm| okm.fill(&mut out[..]))
            .unwrap_or_else(|_| panic!("HKDF-SHA-256 can always expand 32 bytes"));
        out
    }

    /// Construct from raw bytes (tests, raw vectors).
    pub fn from_bytes(raw: [u8; 32]) -> Self {
        FileKey(Zeroizing::new(raw))
    }

    /// The raw key. Only for worked examples and interoperability tests:
    /// anything holding these bytes can read the file.
    #[doc(hidden)]
    pub fn dangerous_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A derived subkey (FORMAT.md §4.3), exposed for the worked example.
    #[doc(hidden)]
    pub fn dangerous_subkey(&self, file_id: &[u8; 16], label: &[u8]) -> Zeroizing<[u8; 32]> {
        self.derive(file_id, label)
    }
}

/// One recipient stanza: the file key wrapped with HPKE to one public key.
#[derive(Clone, PartialEq, Eq)]
pub struct Stanza {
    /// HPKE KEM id.
    pub kem: u16,
    /// The recipient's key id (first 16 bytes of the fingerprint).
    pub key_id: KeyId,
    /// `enc || wrapped file key`, or opaque bytes for an unknown KEM.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Stanza {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Stanza(kem={:#06x}, key_id={}, {} bytes)",
            self.kem,
            self.key_id,
            self.body.len()
        )
    }
}

impl Stanza {
    /// A human name for the KEM.
    pub fn kem_name(&self) -> &'static str {
        match self.kem {
            KEM_XWING => "X-Wing (ML-KEM-768 + X25519)",
            KEM_X25519 => "X25519",
            KEM_XWING_BATCH => "X-Wing (ML-KEM-768 + X25519), batch",
            KEM_X25519_BATCH => "X25519, batch",
            _ => "unknown KEM",
        }
    }

    fn wrap(
        file_key: &FileKey,
        file_id: &[u8; 16],
        to: &Recipient,
        kem: KemChoice,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Self> {
        let key_id = to.fingerprint().key_id();
        let info = wrap_info(file_id);
        let aad = wrap_aad(kem.id(), &key_id);
        let body = match kem {
            KemChoice::XWing => seal::<XWing>(to.xwing(), &info, &aad, &file_key.0[..], rng)?,
            KemChoice::X25519 => {
                seal::<X25519HkdfSha256>(to.x25519(), &info, &aad, &file_key.0[..], rng)?
            }
        };
        Ok(Stanza {
            kem: kem.id(),
            key_id,
            body,
        })
    }

    fn unwrap(&self, file_id: &[u8; 16], identity: &Identity) -> Result<FileKey> {
        let info = wrap_info(file_id);
        let aad = wrap_aad(self.kem, &self.key_id);
        let raw = match self.kem {
            KEM_XWING => open::<XWing>(identity.xwing(), &self.body, XWING_ENC_LEN, &info, &aad)?,
            KEM_X25519 => open::<X25519HkdfSha256>(
                identity.x25519(),
                &self.body,
                X25519_ENC_LEN,
                &info,
                &aad,
            )?,
            KEM_XWING_BATCH => {
                open_batch::<XWing>(identity.xwing(), &self.body, XWING_ENC_LEN, file_id, &aad)?
            }
            KEM_X25519_BATCH => open_batch::<X25519HkdfSha256>(
                identity.x25519(),
                &self.body,
                X25519_ENC_LEN,
                file_id,
                &aad,
            )?,
            _ => return Err(Error::NoMatchingRecipient),
        };
        let mut k = [0u8; 32];
        k.copy_from_slice(&raw[..]);
        Ok(FileKey::from_bytes(k))
    }
}

fn wrap_info(file_id: &[u8; 16]) -> Vec<u8> {
    [LABEL_WRAP_INFO, &file_id[..]].concat()
}

fn wrap_aad(kem: u16, key_id: &KeyId) -> Vec<u8> {
    [&kem.to_be_bytes()[..], &key_id.0[..]].concat()
}

fn seal<K: Kem>(
    pk: &K::PublicKey,
    info: &[u8],
    aad: &[u8],
    pt: &[u8],
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<u8>> {
    let (enc, ct) = hpke::single_shot_seal_with_rng::<AesGcm256, HkdfSha256, K>(
        &OpModeS::Base,
        pk,
        info,
        pt,
        aad,
        rng,
    )
    .map_err(|_| Error::InvalidRecipient("HPKE encapsulation failed"))?;
    let mut body = enc.to_bytes().to_vec();
    body.extend_from_slice(&ct);
    Ok(body)
}

fn open<K: Kem>(
    sk: &K::PrivateKey,
    body: &[u8],
    enc_len: usize,
    info: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let (enc, ct) = body.split_at(enc_len);
    let enc = K::EncappedKey::from_bytes(enc).map_err(|_| Error::HeaderAuth)?;
    let pt =
        hpke::single_shot_open::<AesGcm256, HkdfSha256, K>(&OpModeR::Base, sk, &enc, info, ct, aad)
            .map_err(|_| Error::HeaderAuth)?;
    if pt.len() != 32 {
        return Err(Error::HeaderAuth);
    }
    Ok(Zeroizing::new(pt))
}

/// Opens a batch stanza (FORMAT.md §4.8): the batch's HPKE context, then the
/// file's own wrap key from its exporter, then the file key.
fn open_batch<K: Kem>(
    sk: &K::PrivateKey,
    body: &[u8],
    enc_len: usize,
    file_id: &[u8; 16],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let (enc, ct) = body.split_at(enc_len);
    let enc = K::EncappedKey::from_bytes(enc).map_err(|_| Error::HeaderAuth)?;
    let ctx = hpke::setup_receiver::<AesGcm256, HkdfSha256, K>(
        &OpModeR::Base,
        sk,
        &enc,
        LABEL_BATCH_INFO,
    )
    .map_err(|_| Error::HeaderAuth)?;
    let mut wrap_key = Zeroizing::new([0u8; 32]);
    ctx.export(&batch_export_context(file_id), &mut wrap_key[..])
        .map_err(|_| Error::HeaderAuth)?;
    let mut buf = Zeroizing::new(ct.to_vec());
    let pt = aes_key(&wrap_key)
        .open_in_place(
            ring::aead::Nonce::assume_unique_for_key([0; 12]),
            ring::aead::Aad::from(aad),
            &mut buf[..],
        )
        .map_err(|_| Error::HeaderAuth)?;
    if pt.len() != 32 {
        return Err(Error::HeaderAuth);
    }
    Ok(Zeroizing::new(pt.to_vec()))
}

fn batch_export_context(file_id: &[u8; 16]) -> Vec<u8> {
    [LABEL_BATCH_EXPORT, &file_id[..]].concat()
}

/// One HPKE sender context per recipient, shared by many new files
/// (FORMAT.md §4.8). An X-Wing encapsulation costs more than encrypting a
/// small file, so encrypting a folder of them with a batch pays it once per
/// batch and recipient instead of once per file and recipient. Every file
/// still gets its own random file key and file id; what the files share is
/// the encapsulation that wraps those keys.
pub struct Batch {
    members: Vec<BatchMember>,
}

struct BatchMember {
    kem: u16,
    key_id: KeyId,
    enc: Vec<u8>,
    ctx: BatchContext,
}

enum BatchContext {
    XWing(hpke::aead::AeadCtxS<AesGcm256, HkdfSha256, XWing>),
    X25519(hpke::aead::AeadCtxS<AesGcm256, HkdfSha256, X25519HkdfSha256>),
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("recipients", &self.members.len())
            .finish_non_exhaustive()
    }
}

impl Batch {
    /// Encapsulate once to each recipient (duplicates count once).
    pub fn new(
        recipients: &[Recipient],
        kem: KemChoice,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Batch> {
        if recipients.is_empty() {
            return Err(Error::NoRecipients);
        }
        let mut members: Vec<BatchMember> = Vec::with_capacity(recipients.len());
        for r in recipients {
            let key_id = r.fingerprint().key_id();
            if members.iter().any(|m| m.key_id == key_id) {
                continue;
            }
            if members.len() >= MAX_STANZAS {
                return Err(Error::Limit(
                    "too many recipients (at most 256 per file; use a group)",
                ));
            }
            let failed = |_| Error::InvalidRecipient("HPKE encapsulation failed");
            let (enc, ctx) = match kem {
                KemChoice::XWing => {
                    let (enc, ctx) = hpke::setup_sender_with_rng::<AesGcm256, HkdfSha256, XWing>(
                        &OpModeS::Base,
                        r.xwing(),
                        LABEL_BATCH_INFO,
                        rng,
                    )
                    .map_err(failed)?;
                    (enc.to_bytes().to_vec(), BatchContext::XWing(ctx))
                }
                KemChoice::X25519 => {
                    let (enc, ctx) = hpke::setup_sender_with_rng::<
                        AesGcm256,
                        HkdfSha256,
                        X25519HkdfSha256,
                    >(
                        &OpModeS::Base, r.x25519(), LABEL_BATCH_INFO, rng
                    )
                    .map_err(failed)?;
                    (enc.to_bytes().to_vec(), BatchContext::X25519(ctx))
                }
            };
            members.push(BatchMember {
                kem: kem.id() | BATCH_BIT,
                key_id,
                enc,
                ctx,
            });
        }
        Ok(Batch { members })
    }

    fn stanza(&self, m: &BatchMember, file_key: &FileKey, file_id: &[u8; 16]) -> Result<Stanza> {
        let mut wrap_key = Zeroizing::new([0u8; 32]);
        let exported = match &m.ctx {
            BatchContext::XWing(c) => c.export(&batch_export_context(file_id), &mut wrap_key[..]),
            BatchContext::X25519(c) => c.export(&batch_export_context(file_id), &mut wrap_key[..]),
        };
        exported.map_err(|_| Error::InvalidRecipient("HPKE export failed"))?;
        let mut body = Vec::with_capacity(m.enc.len() + WRAPPED_LEN);
        body.extend_from_slice(&m.enc);
        // The wrap key is used for this one message: its exporter context
        // holds the file id, which is fresh for every file.
        let mut ct = file_key.0.to_vec();
        let tag = aes_key(&wrap_key)
            .seal_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key([0; 12]),
                ring::aead::Aad::from(wrap_aad(m.kem, &m.key_id)),
                &mut ct[..],
            )
            .map_err(|_| Error::InvalidRecipient("wrapping the file key failed"))?;
        body.extend_from_slice(&ct);
        body.extend_from_slice(tag.as_ref());
        Ok(Stanza {
            kem: m.kem,
            key_id: m.key_id,
            body,
        })
    }
}

/// A parsed (or freshly built) header.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    file_id: [u8; 16],
    /// Recipient stanzas, known or unknown KEM; never the padding stanza.
    stanzas: Vec<Stanza>,
    /// The padding stanza, if any: where it sits among the stanzas (so that
    /// a parsed header re-encodes byte for byte) and its whole length.
    padding: Option<Padding>,
    meta_nonce: [u8; 12],
    meta_ct: Vec<u8>,
    mac: [u8; MAC_LEN],
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header")
            .field("file_id", &hex16(&self.file_id))
            .field("stanzas", &self.stanzas)
            .field("padding", &self.padding_len())
            .field("meta_ct_len", &self.meta_ct.len())
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Padding {
    /// Index among the encoded stanzas.
    at: usize,
    /// Whole stanza length, `PAD_MIN..=PAD_MAX`.
    len: usize,
}

fn hex16(b: &[u8; 16]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Header {
    /// Build a header for a new file: fresh file id and file key, one stanza
    /// per recipient, metadata sealed under the file key.
    pub fn new(
        recipients: &[Recipient],
        kem: KemChoice,
        metadata: &Metadata,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<(Header, FileKey)> {
        if recipients.is_empty() {
            return Err(Error::NoRecipients);
        }
        let mut file_id = [0u8; 16];
        rng.fill_bytes(&mut file_id);
        let file_key = FileKey::generate(rng);
        let mut h = Header {
            file_id,
            stanzas: Vec::new(),
            padding: None,
            meta_nonce: [0; 12],
            meta_ct: Vec::new(),
            mac: [0; MAC_LEN],
        };
        h.set_metadata(&file_key, metadata, rng)?;
        for r in recipients {
            h.push_stanza(&file_key, r, kem, rng)?;
        }
        h.pad_to_block();
        h.reseal(&file_key);
        Ok((h, file_key))
    }

    /// Like [`Header::new`], with the file key wrapped through `batch`'s
    /// contexts (FORMAT.md §4.8) instead of a fresh encapsulation each.
    pub fn new_in_batch(
        batch: &Batch,
        metadata: &Metadata,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<(Header, FileKey)> {
        let mut file_id = [0u8; 16];
        rng.fill_bytes(&mut file_id);
        let file_key = FileKey::generate(rng);
        let mut h = Header {
            file_id,
            stanzas: Vec::with_capacity(batch.members.len()),
            padding: None,
            meta_nonce: [0; 12],
            meta_ct: Vec::new(),
            mac: [0; MAC_LEN],
        };
        h.set_metadata(&file_key, metadata, rng)?;
        for m in &batch.members {
            h.stanzas.push(batch.stanza(m, &file_key, &file_id)?);
        }
        h.pad_to_block();
        h.reseal(&file_key);
        Ok((h, file_key))
    }

    fn push_stanza(
        &mut self,
        file_key: &FileKey,
        r: &Recipient,
        kem: KemChoice,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<bool> {
        let key_id = r.fingerprint().key_id();
        if self
            .stanzas
            .iter()
            .any(|s| s.key_id == key_id && base_kem(s.kem) == kem.id())
        {
            return Ok(false);
        }
        if self.stanzas.len() + 1 >= MAX_STANZAS {
            // The last slot goes to a recipient rather than to padding.
            self.padding = None;
        }
        if self.stanzas.len() >= MAX_STANZAS {
            return Err(Error::Limit(
                "too many recipients (at most 256 per file; use a group)",
            ));
        }
        self.stanzas
            .push(Stanza::wrap(file_key, &self.file_id, r, kem, rng)?);
        Ok(true)
    }

    /// The immutable file id.
    pub fn file_id(&self) -> &[u8; 16] {
        &self.file_id
    }

    /// The stanzas, in order.
    pub fn stanzas(&self) -> &[Stanza] {
        &self.stanzas
    }

    /// Length of the encrypted metadata block (padded, so it reveals little).
    pub fn metadata_len(&self) -> usize {
        self.meta_ct.len()
    }

    /// Find our stanza and unwrap the file key, then check the header MAC
    /// with it. FORMAT.md §4.5: stanzas are found by key id, not by trial
    /// decryption. Every stanza with our key id and a known type is tried,
    /// X-Wing (direct or batch) first: one that does not open, or whose file
    /// key fails the MAC, is skipped, so a bogus stanza that a writer added
    /// under our key id cannot hide the real one. Only one file key can pass
    /// the MAC (HMAC commits to its key, §4.6), so trying more than one never
    /// yields a second plaintext.
    pub fn unwrap_file_key(&self, identity: &Identity) -> Result<FileKey> {
        let ours = identity.recipient().fingerprint().key_id();
        let mut candidates: Vec<&Stanza> = self
            .stanzas
            .iter()
            .filter(|s| s.key_id == ours && matches!(base_kem(s.kem), KEM_XWING | KEM_X25519))
            .collect();
        if candidates.is_empty() {
            return Err(Error::NoMatchingRecipient);
        }
        // Stable: in stanza order within each KEM.
        candidates.sort_by_key(|s| base_kem(s.kem) != KEM_XWING);
        for s in candidates {
            if let Ok(k) = s.unwrap(&self.file_id, identity)
                && self.verify_mac(&k).is_ok()
            {
                return Ok(k);
            }
        }
        Err(Error::HeaderAuth)
    }

    /// Unwrap the file key with the first of `identities` that has a stanza
    /// in this header (your own identity and the keys of your groups: a
    /// folder shared with a group has one stanza for the group,
    /// docs/SHARING.md). [`Error::NoMatchingRecipient`] when none has; the
    /// last other error (tampering) otherwise.
    pub fn unwrap_file_key_any(&self, identities: &[&Identity]) -> Result<FileKey> {
        let mut last = Error::NoMatchingRecipient;
        for id in identities {
            let kid = id.recipient().fingerprint().key_id();
            if !self.stanzas.iter().any(|s| s.key_id == kid) {
                continue;
            }
            match self.unwrap_file_key(id) {
                Ok(fk) => return Ok(fk),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn verify_mac(&self, file_key: &FileKey) -> Result<()> {
        let key = file_key.derive(&self.file_id, LABEL_MAC);
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key[..]);
        ring::hmac::verify(&k, &self.encode_unauthenticated(), &self.mac)
            .map_err(|_| Error::HeaderAuth)
    }

    fn reseal(&mut self, file_key: &FileKey) {
        let key = file_key.derive(&self.file_id, LABEL_MAC);
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key[..]);
        let tag = ring::hmac::sign(&k, &self.encode_unauthenticated());
        self.mac.copy_from_slice(tag.as_ref());
    }

    /// Decrypt the metadata. The file key must come from
    /// [`Header::unwrap_file_key`] (which checked the MAC).
    pub fn metadata(&self, file_key: &FileKey) -> Result<Metadata> {
        let key = file_key.derive(&self.file_id, LABEL_META);
        let k = aes_key(&key);
        let mut buf = Zeroizing::new(self.meta_ct.clone());
        let pt = k
            .open_in_place(
                ring::aead::Nonce::assume_unique_for_key(self.meta_nonce),
                ring::aead::Aad::from(&self.file_id),
                &mut buf[..],
            )
            .map_err(|_| Error::Metadata)?;
        Metadata::decode(pt)
    }

    /// Replace the metadata (new random nonce) and re-MAC.
    pub fn set_metadata(
        &mut self,
        file_key: &FileKey,
        metadata: &Metadata,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<()> {
        let mut pt = metadata.encode()?;
        let key = file_key.derive(&self.file_id, LABEL_META);
        rng.fill_bytes(&mut self.meta_nonce);
        let tag = aes_key(&key)
            .seal_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(self.meta_nonce),
                ring::aead::Aad::from(&self.file_id),
                &mut pt[..],
            )
            .map_err(|_| Error::Metadata)?;
        self.meta_ct = pt.to_vec();
        self.meta_ct.extend_from_slice(tag.as_ref());
        self.reseal(file_key);
        Ok(())
    }

    /// The C2SP input key for the payload.
    pub fn payload_key(&self, file_key: &FileKey) -> Zeroizing<[u8; 32]> {
        file_key.derive(&self.file_id, LABEL_PAYLOAD)
    }

    /// The C2SP context: binds the format version, suite and file id, but not
    /// the recipients (so re-sharing never touches the payload).
    pub fn payload_context(&self) -> Vec<u8> {
        let mut c = LABEL_PAYLOAD.to_vec();
        c.push(VERSION);
        c.push(SUITE);
        c.extend_from_slice(&self.file_id);
        c
    }

    fn encode_unauthenticated(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(SUITE);
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&self.file_id);
        // Bounded by MAX_STANZAS (256) and MAX_UNKNOWN_BODY (4096) on every path
        // that creates a stanza, so these casts cannot truncate.
        let count = self.stanzas.len() + usize::from(self.padding.is_some());
        out.extend_from_slice(&(count as u16).to_be_bytes());
        for (i, s) in self.stanzas.iter().enumerate() {
            if let Some(p) = self.padding.filter(|p| p.at == i) {
                encode_padding(&mut out, p.len);
            }
            out.extend_from_slice(&s.kem.to_be_bytes());
            out.extend_from_slice(&s.key_id.0);
            out.extend_from_slice(&(s.body.len() as u16).to_be_bytes());
            out.extend_from_slice(&s.body);
        }
        if let Some(p) = self.padding.filter(|p| p.at >= self.stanzas.len()) {
            encode_padding(&mut out, p.len);
        }
        out.extend_from_slice(&self.meta_nonce);
        out.extend_from_slice(&(self.meta_ct.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.meta_ct);
        out
    }

    fn encoded_len(&self) -> usize {
        PREAMBLE_LEN
            + self
                .stanzas
                .iter()
                .map(|s| STANZA_FIXED + s.body.len())
                .sum::<usize>()
            + self.padding.map_or(0, |p| p.len)
            + 12
            + 4
            + self.meta_ct.len()
            + MAC_LEN
    }

    /// The complete encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.encode_unauthenticated();
        out.extend_from_slice(&self.mac);
        out
    }

    /// Write the header.
    pub fn write<W: Write>(&self, mut w: W) -> Result<()> {
        w.write_all(&self.to_bytes())?;
        Ok(())
    }

    /// Parse a header from the start of `r`, leaving `r` at the payload.
    /// Reads at most [`MAX_HEADER_LEN`] bytes and never more than the header.
    pub fn read<R: Read>(mut r: R) -> Result<Header> {
        let mut p = Parser { r: &mut r };
        let magic: [u8; 8] = p.array(Section::Preamble)?;
        if magic != MAGIC {
            return Err(Error::NotKluis);
        }
        let [version] = p.array(Section::Preamble)?;
        if version != VERSION {
            return Err(Error::UnsupportedVersion(version));
        }
        let [suite] = p.array(Section::Preamble)?;
        if suite != SUITE {
            return Err(Error::UnsupportedSuite(suite));
        }
        if u16::from_be_bytes(p.array(Section::Preamble)?) != 0 {
            return Err(Error::malformed(
                Section::Preamble,
                "reserved flags must be zero",
            ));
        }
        let file_id: [u8; 16] = p.array(Section::Preamble)?;
        let count = usize::from(u16::from_be_bytes(p.array(Section::Preamble)?));
        if count == 0 {
            return Err(Error::malformed(Section::Preamble, "no recipient stanzas"));
        }
        if count > MAX_STANZAS {
            return Err(Error::malformed(Section::Preamble, "more than 256 stanzas"));
        }
        let mut stanzas: Vec<Stanza> = Vec::with_capacity(count);
        let mut padding = None;
        for i in 0..count {
            let sec = Section::Stanza(i);
            let kem = u16::from_be_bytes(p.array(sec)?);
            let key_id = KeyId(p.array(sec)?);
            let len = usize::from(u16::from_be_bytes(p.array(sec)?));
            let ok = match base_kem(kem) {
                KEM_XWING => len == XWING_ENC_LEN + WRAPPED_LEN,
                KEM_X25519 => len == X25519_ENC_LEN + WRAPPED_LEN,
                _ => (1..=MAX_UNKNOWN_BODY).contains(&len),
            };
            if !ok {
                return Err(Error::malformed(
                    sec,
                    "stanza body has the wrong length for its KEM",
                ));
            }
            let body = p.vec(len, sec)?;
            if kem == KEM_PADDING {
                if key_id.0 != [0; 16] || body.iter().any(|&b| b != 0) {
                    return Err(Error::malformed(
                        sec,
                        "padding stanza with a non-zero key id or body",
                    ));
                }
                if padding.is_some() {
                    return Err(Error::malformed(sec, "more than one padding stanza"));
                }
                padding = Some(Padding {
                    at: stanzas.len(),
                    len: STANZA_FIXED + len,
                });
                continue;
            }
            if stanzas.iter().any(|s| s.kem == kem && s.key_id == key_id) {
                return Err(Error::malformed(
                    sec,
                    "duplicate stanza for the same key and KEM",
                ));
            }
            stanzas.push(Stanza { kem, key_id, body });
        }
        if stanzas.is_empty() {
            return Err(Error::malformed(Section::Preamble, "no recipient stanzas"));
        }
        let meta_nonce: [u8; 12] = p.array(Section::Metadata)?;
        let meta_len = u32::from_be_bytes(p.array(Section::Metadata)?) as usize;
        if !(crate::meta::META_BLOCK + 16..=MAX_META_CT).contains(&meta_len)
            || !(meta_len - 16).is_multiple_of(crate::meta::META_BLOCK)
        {
            return Err(Error::malformed(
                Section::Metadata,
                "metadata length is not a padded block size",
            ));
        }
        let meta_ct = p.vec(meta_len, Section::Metadata)?;
        let mac: [u8; MAC_LEN] = p.array(Section::Mac)?;
        Ok(Header {
            file_id,
            stanzas,
            padding,
            meta_nonce,
            meta_ct,
            mac,
        })
    }
}

fn encode_padding(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&KEM_PADDING.to_be_bytes());
    out.extend_from_slice(&[0; 16]);
    // len ≤ PAD_MAX, so the body length fits a u16.
    out.extend_from_slice(&((len - STANZA_FIXED) as u16).to_be_bytes());
    out.resize(out.len() + len - STANZA_FIXED, 0);
}

fn aes_key(key: &[u8; 32]) -> ring::aead::LessSafeKey {
    let unbound = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, key)
        .unwrap_or_else(|_| panic!("AES-256-GCM accepts every 32-byte key"));
    ring::aead::LessSafeKey::new(unbound)
}

struct Parser<'a, R: Read> {
    r: &'a mut R,
}

impl<R: Read> Parser<'_, R> {
    fn fill(&mut self, buf: &mut [u8], sec: Section) -> Result<()> {
        let n = crate::payload::read_full(self.r, buf)?;
        if n < buf.len() {
            return Err(
                if n == 0 && matches!(sec, Section::Preamble) && buf.len() == 8 {
                    Error::NotKluis
                } else {
                    Error::malformed(sec, "truncated")
                },
            );
        }
        Ok(())
    }

    fn array<const N: usize>(&mut self, sec: Section) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        self.fill(&mut a, sec)?;
        Ok(a)
    }

    fn vec(&mut self, len: usize, sec: Section) -> Result<Vec<u8>> {
        let mut v = vec![0u8; len];
        self.fill(&mut v, sec)?;
        Ok(v)
    }
}
