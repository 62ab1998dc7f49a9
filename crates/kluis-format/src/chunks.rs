//! The payload one chunk at a time, for callers that own their buffers and
//! their I/O: the sync engine (one chunk-sized buffer per file) and the CLI's
//! parallel path (threads sealing and opening chunks at their own offsets).
//!
//! Everything here is arithmetic and cryptography on caller-provided bytes:
//! no reads, no writes, no clock; the salt comes from the RNG passed in. The
//! byte layout (FORMAT.md §5) stays inside this crate: callers learn where a
//! chunk lies from [`PayloadLayout`] and never see a tag or prefix size.
//!
//! - [`Encryptor`]: streaming, chunk after chunk, when the length is not
//!   known in advance. A chunk shorter than [`PayloadLayout::chunk_size`] is
//!   the last one (FORMAT.md §5.2).
//! - [`ChunkSealer`] / [`ChunkOpener`]: positional, for a payload whose
//!   length is known; chunk `i` can be sealed or opened by any thread, and
//!   which chunk is the short final one follows from the length.
//! - [`peek_file_id`]: the file id from the first bytes of a header.

use std::ops::Range;

use crate::error::{Error, PayloadError, Result, Section};
use crate::header::{FileKey, Header, MAGIC, VERSION};
use crate::payload::{self, Backend, CHUNK_SIZE, ChunkCipher, PAYLOAD_PREFIX_SIZE, TAG_SIZE};

/// A file's 16-byte random id (FORMAT.md §4.1), as [`Header::file_id`]
/// returns it.
pub type FileId = [u8; 16];

/// Magic (8), version (1), suite (1), reserved flags (2), file id (16):
/// FORMAT.md §4.1.
const FILE_ID_AT: Range<usize> = 12..28;

/// How many leading bytes of a file [`peek_file_id`] needs.
pub const FILE_ID_PEEK_LEN: usize = FILE_ID_AT.end;

/// The file id of a Kluis file, read from the first [`FILE_ID_PEEK_LEN`]
/// bytes of its header (more are ignored) without parsing or authenticating
/// the rest. Only the magic and the version are checked: the id is a hint
/// (for example to follow a renamed file), not a proof.
///
/// Errors: [`Error::NotKluis`] when the bytes do not start with the Kluis
/// magic, [`Error::UnsupportedVersion`] for another version, and
/// [`Error::Malformed`] (preamble, truncated) when a Kluis preamble is cut
/// short before the end of the id.
pub fn peek_file_id(header_prefix: &[u8]) -> Result<FileId> {
    let magic_len = header_prefix.len().min(MAGIC.len());
    if header_prefix[..magic_len] != MAGIC[..magic_len] || magic_len == 0 {
        return Err(Error::NotKluis);
    }
    if let Some(&version) = header_prefix.get(MAGIC.len())
        && version != VERSION
    {
        return Err(Error::UnsupportedVersion(version));
    }
    let Some(id) = header_prefix.get(FILE_ID_AT) else {
        return Err(Error::malformed(Section::Preamble, "truncated"));
    };
    let mut out = [0u8; 16];
    out.copy_from_slice(id);
    Ok(out)
}

/// Where the chunks of a payload lie (FORMAT.md §5.2): a prefix (salt and
/// key commitment), then chunk `i` as `ciphertext || tag`, every chunk full
/// except the last, which is shorter (possibly empty). Offsets are relative
/// to the start of the payload, that is, the end of the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadLayout {
    plaintext_len: u64,
    chunks: u64,
}

impl PayloadLayout {
    /// The layout of a payload holding `plaintext_len` bytes.
    /// [`PayloadError::TooLong`] beyond the scheme's chunk limit.
    pub fn for_plaintext(plaintext_len: u64) -> Result<Self> {
        // plaintext_len of the resulting payload checks the chunk limit.
        let payload = payload::payload_len(plaintext_len);
        payload::plaintext_len(payload)?;
        Ok(Self::new(plaintext_len))
    }

    /// The layout of a payload that is `payload_len` bytes long (everything
    /// after the header), or why no valid payload has that length
    /// ([`PayloadError::TruncatedHeader`], [`PayloadError::Truncated`],
    /// [`PayloadError::TooLong`]).
    pub fn for_payload(payload_len: u64) -> Result<Self> {
        Ok(Self::new(payload::plaintext_len(payload_len)?))
    }

    fn new(plaintext_len: u64) -> Self {
        PayloadLayout {
            plaintext_len,
            chunks: plaintext_len / CHUNK_SIZE as u64 + 1,
        }
    }

    /// Plaintext bytes in a full chunk (every chunk but the last): the
    /// size of a read buffer that fills one chunk.
    pub const fn chunk_size() -> usize {
        CHUNK_SIZE
    }

    /// Bytes a full chunk takes once sealed: the size of a buffer slot that
    /// holds one chunk as it lies in the payload.
    pub const fn sealed_chunk_size() -> usize {
        CHUNK_SIZE + TAG_SIZE
    }

    /// Bytes of the payload before chunk 0 (its salt and key commitment).
    pub const fn prefix_len() -> usize {
        PAYLOAD_PREFIX_SIZE
    }

    /// The plaintext length.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// The payload length, prefix included.
    pub fn payload_len(&self) -> u64 {
        payload::payload_len(self.plaintext_len)
    }

    /// How many chunks, the final short one included (at least one).
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// Where chunk `index` lies in the plaintext (empty past the end).
    pub fn plaintext_range(&self, index: u64) -> Range<u64> {
        let start = index.saturating_mul(CHUNK_SIZE as u64);
        let start = start.min(self.plaintext_len);
        let end = start
            .saturating_add(CHUNK_SIZE as u64)
            .min(self.plaintext_len);
        start..end
    }

    /// Where chunk `index` lies in the payload, prefix counted (empty past
    /// the end).
    pub fn sealed_range(&self, index: u64) -> Range<u64> {
        if index >= self.chunks {
            let end = self.payload_len();
            return end..end;
        }
        let start = PAYLOAD_PREFIX_SIZE as u64 + index * Self::sealed_chunk_size() as u64;
        let p = self.plaintext_range(index);
        start..start + (p.end - p.start) + TAG_SIZE as u64
    }

    fn check(&self, index: u64) -> Result<()> {
        if index < self.chunks {
            Ok(())
        } else {
            Err(Error::Usage("chunk index past the end of the payload"))
        }
    }
}

fn new_cipher(
    header: &Header,
    file_key: &FileKey,
    rng: &mut impl rand_core::CryptoRng,
    backend: Backend,
) -> Result<(ChunkCipher, [u8; PAYLOAD_PREFIX_SIZE])> {
    Ok(ChunkCipher::for_new_payload(
        &header.payload_key(file_key)[..],
        &header.payload_context(),
        rng,
        backend,
    )?)
}

/// Seals a payload chunk by chunk into buffers the caller owns, for a
/// plaintext whose length is not known in advance (a stream).
///
/// Write the header, then [`Encryptor::prefix`], then what each
/// [`Encryptor::seal_next`] produced, in order. With the same RNG state this
/// writes the same bytes as [`crate::encrypt`].
pub struct Encryptor {
    cipher: ChunkCipher,
    prefix: [u8; PAYLOAD_PREFIX_SIZE],
    next: u64,
    finished: bool,
}

impl Encryptor {
    /// Start the payload of `header` (whose file key is `file_key`); draws
    /// the payload salt from `rng`.
    pub fn new(
        header: &Header,
        file_key: &FileKey,
        rng: &mut impl rand_core::CryptoRng,
        backend: Backend,
    ) -> Result<Self> {
        let (cipher, prefix) = new_cipher(header, file_key, rng, backend)?;
        Ok(Encryptor {
            cipher,
            prefix,
            next: 0,
            finished: false,
        })
    }

    /// The bytes that go between the header and the first chunk.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Seal the next chunk in place: `slot[..len]` holds its plaintext, and
    /// the slot must have room for the sealed chunk
    /// ([`PayloadLayout::sealed_chunk_size`] is always enough). Afterwards
    /// `slot[..n]`, with `n` returned, is the chunk as it goes into the file.
    ///
    /// A chunk of exactly [`PayloadLayout::chunk_size`] bytes means more
    /// follow; a shorter one (possibly empty) is the last, after which
    /// nothing more can be sealed. A payload is complete only when a short
    /// chunk was sealed ([`Encryptor::is_finished`]).
    pub fn seal_next(&mut self, slot: &mut [u8], len: usize) -> Result<usize> {
        if self.finished {
            return Err(Error::Usage("the final chunk was already sealed"));
        }
        if len > CHUNK_SIZE {
            return Err(Error::Usage("a chunk holds at most chunk_size() bytes"));
        }
        if slot.len() < len + TAG_SIZE {
            return Err(Error::Usage("the slot has no room for the sealed chunk"));
        }
        let n = self.cipher.seal_slot(self.next, slot, len)?;
        self.next += 1;
        self.finished = len < CHUNK_SIZE;
        Ok(n)
    }

    /// Whether the final (short) chunk has been sealed.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// Seals the chunks of a payload of known length at their positions, in any
/// order and from several threads (`&self` only). Write the header, then
/// [`ChunkSealer::prefix`] at payload offset 0, then each sealed chunk at
/// [`PayloadLayout::sealed_range`].
pub struct ChunkSealer {
    cipher: ChunkCipher,
    prefix: [u8; PAYLOAD_PREFIX_SIZE],
    layout: PayloadLayout,
}

impl ChunkSealer {
    /// Start the payload of `header` for `plaintext_len` bytes; draws the
    /// payload salt from `rng`.
    pub fn new(
        header: &Header,
        file_key: &FileKey,
        plaintext_len: u64,
        rng: &mut impl rand_core::CryptoRng,
        backend: Backend,
    ) -> Result<Self> {
        let layout = PayloadLayout::for_plaintext(plaintext_len)?;
        let (cipher, prefix) = new_cipher(header, file_key, rng, backend)?;
        Ok(ChunkSealer {
            cipher,
            prefix,
            layout,
        })
    }

    /// The bytes at the start of the payload (before chunk 0).
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Where everything lies.
    pub fn layout(&self) -> &PayloadLayout {
        &self.layout
    }

    /// Seal chunk `index` in place: `slot` starts with the chunk's plaintext
    /// (the bytes of [`PayloadLayout::plaintext_range`]) and has room for the
    /// sealed chunk. Afterwards `slot[..n]`, with `n` returned, is what goes
    /// at [`PayloadLayout::sealed_range`].
    pub fn seal_chunk(&self, index: u64, slot: &mut [u8]) -> Result<usize> {
        self.layout.check(index)?;
        let r = self.layout.plaintext_range(index);
        let len = (r.end - r.start) as usize;
        if slot.len() < len + TAG_SIZE {
            return Err(Error::Usage("the slot has no room for the sealed chunk"));
        }
        Ok(self.cipher.seal_slot(index, slot, len)?)
    }
}

/// Opens the chunks of an existing payload at their positions, in any order
/// and from several threads (`&self` only). Each chunk authenticates on its
/// own; the payload's length fixes which chunk is the final one, so a
/// payload cut at a chunk boundary is refused when the opener is made.
pub struct ChunkOpener {
    cipher: ChunkCipher,
    layout: PayloadLayout,
}

impl ChunkOpener {
    /// Check the payload of `header`: `payload_len` is everything after the
    /// header, `prefix` its first [`PayloadLayout::prefix_len`] bytes (more
    /// are ignored). Fails on an impossible length or a key commitment that
    /// does not match (wrong key, or another file's payload).
    pub fn new(
        header: &Header,
        file_key: &FileKey,
        payload_len: u64,
        prefix: &[u8],
        backend: Backend,
    ) -> Result<Self> {
        let layout = PayloadLayout::for_payload(payload_len)?;
        let prefix: &[u8; PAYLOAD_PREFIX_SIZE] = prefix
            .get(..PAYLOAD_PREFIX_SIZE)
            .and_then(|p| p.try_into().ok())
            .ok_or(PayloadError::TruncatedHeader)?;
        let cipher = ChunkCipher::for_existing_payload(
            &header.payload_key(file_key)[..],
            &header.payload_context(),
            prefix,
            backend,
        )?;
        Ok(ChunkOpener { cipher, layout })
    }

    /// Where everything lies.
    pub fn layout(&self) -> &PayloadLayout {
        &self.layout
    }

    /// Open chunk `index` in place: `slot` starts with the sealed chunk (the
    /// bytes of [`PayloadLayout::sealed_range`]; more are ignored). On
    /// success its plaintext is `slot[..n]`, `n` returned. On failure
    /// ([`PayloadError::Chunk`]) the chunk's bytes in the slot are wiped, so
    /// no unauthenticated plaintext is left behind.
    pub fn open_chunk(&self, index: u64, slot: &mut [u8]) -> Result<usize> {
        self.layout.check(index)?;
        let r = self.layout.sealed_range(index);
        let sealed = (r.end - r.start) as usize;
        let Some(slot) = slot.get_mut(..sealed) else {
            return Err(Error::Usage("the slot is shorter than the sealed chunk"));
        };
        Ok(self.cipher.open_slot(index, slot)?)
    }
}
