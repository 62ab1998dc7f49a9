//! The payload: C2SP chunked encryption, instantiated as Cobblestone-256
//! (AES-256-GCM, HKDF-Expand-SHA-512, 16 KiB chunks). See docs/FORMAT.md §5.
//!
//! FORMAT.md §5.1: `key || base nonce || commitment = HKDF-Expand-SHA-512(
//! prk = input key, info = "c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM"
//! || 0x00 || salt || context, L = 76)`.
//!
//! FORMAT.md §5.2: the message is split into 16 KiB chunks, the last one always
//! shorter (possibly empty). Chunk `i` is sealed with the nonce `base nonce XOR
//! i` (big-endian, right-aligned) and empty AAD.
//!
//! Streaming rules (§5.3): no byte of a chunk is released before that chunk
//! authenticates, and after the first error every further read fails again.

use std::io::{self, Read, Write};

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::PayloadError;

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 16 * 1024;
/// AES-GCM tag size.
pub const TAG_SIZE: usize = 16;
/// Random salt prepended to every payload.
pub const SALT_SIZE: usize = 24;
/// Key commitment that follows the salt.
pub const COMMITMENT_SIZE: usize = 32;
/// Salt plus commitment.
pub const PAYLOAD_PREFIX_SIZE: usize = SALT_SIZE + COMMITMENT_SIZE;
/// The input key size (AES-256).
pub const KEY_SIZE: usize = 32;
const NONCE_SIZE: usize = 12;
const ENC_CHUNK: usize = CHUNK_SIZE + TAG_SIZE;
/// The scheme's hard limit: at most 2^38 chunks.
const MAX_CHUNKS: u64 = 1 << 38;
/// Chunks processed per batch: 64 chunks = 1 MiB of plaintext, so reads and
/// writes to the underlying stream are large while memory stays flat.
const BATCH: usize = 64;
const INFO_PREFIX: &[u8] = b"c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM\x00";

/// Which AES-256-GCM implementation seals and opens chunks. Both produce
/// identical bytes (a test cross-checks them); `Ring` is much faster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// `ring` (AES-NI/VAES assembly). The default.
    #[default]
    Ring,
    /// RustCrypto `aes-gcm`, a second independent implementation.
    RustCrypto,
}

#[allow(
    clippy::large_enum_variant,
    reason = "one per payload; ring's key is used in place"
)]
enum Cipher {
    Ring(ring::aead::LessSafeKey),
    RustCrypto(Box<aes_gcm::Aes256Gcm>),
}

impl Cipher {
    fn new(backend: Backend, key: &[u8; KEY_SIZE]) -> Self {
        match backend {
            Backend::Ring => {
                // A 32-byte key is always accepted for AES-256-GCM.
                let unbound = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, key)
                    .unwrap_or_else(|_| unreachable_key_len());
                Cipher::Ring(ring::aead::LessSafeKey::new(unbound))
            }
            Backend::RustCrypto => {
                use aes_gcm::KeyInit;
                Cipher::RustCrypto(Box::new(aes_gcm::Aes256Gcm::new(key.into())))
            }
        }
    }

    fn seal(&self, nonce: [u8; NONCE_SIZE], buf: &mut [u8]) -> [u8; TAG_SIZE] {
        match self {
            Cipher::Ring(k) => {
                let n = ring::aead::Nonce::assume_unique_for_key(nonce);
                // Sealing only fails for inputs longer than GCM's 64 GiB limit.
                let tag = k
                    .seal_in_place_separate_tag(n, ring::aead::Aad::empty(), buf)
                    .unwrap_or_else(|_| unreachable_seal());
                let mut out = [0u8; TAG_SIZE];
                out.copy_from_slice(tag.as_ref());
                out
            }
            Cipher::RustCrypto(k) => {
                use aes_gcm::AeadInOut;
                let tag = k
                    .encrypt_inout_detached(&nonce.into(), &[], buf.into())
                    .unwrap_or_else(|_| unreachable_seal());
                let mut out = [0u8; TAG_SIZE];
                out.copy_from_slice(&tag);
                out
            }
        }
    }

    fn open(&self, nonce: [u8; NONCE_SIZE], buf: &mut [u8], tag: &[u8; TAG_SIZE]) -> bool {
        match self {
            Cipher::Ring(k) => {
                let n = ring::aead::Nonce::assume_unique_for_key(nonce);
                let t = ring::aead::Tag::from(*tag);
                k.open_in_place_separate_tag(n, ring::aead::Aad::empty(), t, buf, 0..)
                    .is_ok()
            }
            Cipher::RustCrypto(k) => {
                use aes_gcm::AeadInOut;
                k.decrypt_inout_detached(&nonce.into(), &[], buf.into(), tag.into())
                    .is_ok()
            }
        }
    }
}

fn unreachable_key_len() -> ! {
    // AES_256_GCM takes exactly 32 bytes and the type guarantees 32.
    panic!("ring rejected a 32-byte AES-256-GCM key")
}

fn unreachable_seal() -> ! {
    // Chunks are at most 16 KiB, far below GCM's per-message limit.
    panic!("AES-GCM refused to seal a 16 KiB chunk")
}

/// The values derived per message from the input key, salt and context.
pub struct Derived {
    key: Zeroizing<[u8; KEY_SIZE]>,
    base_nonce: [u8; NONCE_SIZE],
    commitment: [u8; COMMITMENT_SIZE],
}

impl Derived {
    /// FORMAT.md §5.1. `input_key` must be 32 bytes (the AEAD key size).
    pub fn new(
        input_key: &[u8],
        salt: &[u8; SALT_SIZE],
        context: &[u8],
    ) -> Result<Self, PayloadError> {
        if input_key.len() != KEY_SIZE {
            return Err(PayloadError::InvalidKeySize);
        }
        let prk = ring::hkdf::Prk::new_less_safe(ring::hkdf::HKDF_SHA512, input_key);
        let info: [&[u8]; 3] = [INFO_PREFIX, salt, context];
        let mut okm = Zeroizing::new([0u8; KEY_SIZE + NONCE_SIZE + COMMITMENT_SIZE]);
        prk.expand(&info, OkmLen(okm.len()))
            .and_then(|o| o.fill(&mut okm[..]))
            .map_err(|_| PayloadError::InvalidKeySize)?;
        let mut key = Zeroizing::new([0u8; KEY_SIZE]);
        key.copy_from_slice(&okm[..KEY_SIZE]);
        let mut base_nonce = [0u8; NONCE_SIZE];
        base_nonce.copy_from_slice(&okm[KEY_SIZE..KEY_SIZE + NONCE_SIZE]);
        let mut commitment = [0u8; COMMITMENT_SIZE];
        commitment.copy_from_slice(&okm[KEY_SIZE + NONCE_SIZE..]);
        Ok(Derived {
            key,
            base_nonce,
            commitment,
        })
    }

    /// The derived AEAD key (for raw-mode test vectors).
    pub fn aead_key(&self) -> &[u8; KEY_SIZE] {
        &self.key
    }

    /// The derived base nonce (for raw-mode test vectors).
    pub fn base_nonce(&self) -> &[u8; NONCE_SIZE] {
        &self.base_nonce
    }
}

struct OkmLen(usize);
impl ring::hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

fn chunk_nonce(base: &[u8; NONCE_SIZE], counter: u64) -> [u8; NONCE_SIZE] {
    let mut n = *base;
    for (b, c) in n[NONCE_SIZE - 8..].iter_mut().zip(counter.to_be_bytes()) {
        *b ^= c;
    }
    n
}

/// Random access to the chunks of one payload. Crate-internal: the public
/// faces ([`crate::Encryptor`], [`crate::ChunkSealer`],
/// [`crate::ChunkOpener`]) enforce the C2SP rules on top of it (the last
/// chunk short, no plaintext of a chunk that failed).
pub struct ChunkCipher {
    cipher: Cipher,
    base_nonce: [u8; NONCE_SIZE],
}

impl ChunkCipher {
    /// Derive the chunk keys for a new payload; returns the 56-byte payload
    /// prefix (salt and commitment) that must precede the chunks.
    pub fn for_new_payload(
        input_key: &[u8],
        context: &[u8],
        rng: &mut impl rand_core::CryptoRng,
        backend: Backend,
    ) -> Result<(Self, [u8; PAYLOAD_PREFIX_SIZE]), PayloadError> {
        let mut prefix = [0u8; PAYLOAD_PREFIX_SIZE];
        rng.fill_bytes(&mut prefix[..SALT_SIZE]);
        let mut salt = [0u8; SALT_SIZE];
        salt.copy_from_slice(&prefix[..SALT_SIZE]);
        let d = Derived::new(input_key, &salt, context)?;
        prefix[SALT_SIZE..].copy_from_slice(&d.commitment);
        Ok((
            ChunkCipher {
                cipher: Cipher::new(backend, &d.key),
                base_nonce: d.base_nonce,
            },
            prefix,
        ))
    }

    /// Check an existing payload's prefix (commitment) and derive its keys.
    pub fn for_existing_payload(
        input_key: &[u8],
        context: &[u8],
        prefix: &[u8; PAYLOAD_PREFIX_SIZE],
        backend: Backend,
    ) -> Result<Self, PayloadError> {
        let mut salt = [0u8; SALT_SIZE];
        salt.copy_from_slice(&prefix[..SALT_SIZE]);
        let d = Derived::new(input_key, &salt, context)?;
        if !bool::from(d.commitment.ct_eq(&prefix[SALT_SIZE..])) {
            return Err(PayloadError::Commitment);
        }
        Ok(ChunkCipher {
            cipher: Cipher::new(backend, &d.key),
            base_nonce: d.base_nonce,
        })
    }

    /// Seal chunk `index` in place (at most [`CHUNK_SIZE`] bytes) and return
    /// its tag.
    pub fn seal(&self, index: u64, chunk: &mut [u8]) -> Result<[u8; TAG_SIZE], PayloadError> {
        if index >= MAX_CHUNKS {
            return Err(PayloadError::TooLong);
        }
        Ok(self
            .cipher
            .seal(chunk_nonce(&self.base_nonce, index), chunk))
    }

    /// Seal chunk `index` whose `len` plaintext bytes start `slot`, and write
    /// its tag right after them: the slot then holds the chunk exactly as it
    /// lies in the payload (`ct || tag`, FORMAT.md §5.2). Returns the sealed
    /// length. `len` must be at most [`CHUNK_SIZE`] and the slot must hold
    /// `len + TAG_SIZE` bytes; the callers check both.
    pub fn seal_slot(
        &self,
        index: u64,
        slot: &mut [u8],
        len: usize,
    ) -> Result<usize, PayloadError> {
        let sealed = len + TAG_SIZE;
        let (chunk, rest) = slot[..sealed].split_at_mut(len);
        let tag = self.seal(index, chunk)?;
        rest.copy_from_slice(&tag);
        Ok(sealed)
    }

    /// Open chunk `index` held in `slot` as `ct || tag` (exactly the sealed
    /// chunk, at least [`TAG_SIZE`] bytes; the callers check). On success the
    /// plaintext is `slot[..n]` and `n` is returned; on failure the slot is
    /// wiped.
    pub fn open_slot(&self, index: u64, slot: &mut [u8]) -> Result<usize, PayloadError> {
        let len = slot.len() - TAG_SIZE;
        let (chunk, tag) = slot.split_at_mut(len);
        let mut t = [0u8; TAG_SIZE];
        t.copy_from_slice(tag);
        match self.open(index, chunk, &t) {
            Ok(()) => Ok(len),
            Err(e) => {
                tag.zeroize();
                Err(e)
            }
        }
    }

    /// Open chunk `index` in place. On failure the buffer is wiped.
    pub fn open(
        &self,
        index: u64,
        chunk: &mut [u8],
        tag: &[u8; TAG_SIZE],
    ) -> Result<(), PayloadError> {
        if index >= MAX_CHUNKS {
            return Err(PayloadError::TooLong);
        }
        if self
            .cipher
            .open(chunk_nonce(&self.base_nonce, index), chunk, tag)
        {
            Ok(())
        } else {
            chunk.zeroize();
            Err(PayloadError::Chunk(index))
        }
    }
}

/// The payload length (prefix included) for a plaintext of `len` bytes.
pub fn payload_len(len: u64) -> u64 {
    let chunks = len / CHUNK_SIZE as u64 + 1;
    PAYLOAD_PREFIX_SIZE as u64 + len + chunks * TAG_SIZE as u64
}

/// The plaintext length for a payload of `len` bytes (prefix included), or
/// why no valid payload has that length.
pub fn plaintext_len(len: u64) -> Result<u64, PayloadError> {
    let body = len
        .checked_sub(PAYLOAD_PREFIX_SIZE as u64)
        .ok_or(PayloadError::TruncatedHeader)?;
    let enc = ENC_CHUNK as u64;
    let full = body / enc;
    let last = body % enc;
    if last < TAG_SIZE as u64 {
        return Err(PayloadError::Truncated);
    }
    if full + 1 > MAX_CHUNKS {
        return Err(PayloadError::TooLong);
    }
    Ok(full * CHUNK_SIZE as u64 + last - TAG_SIZE as u64)
}

/// Streaming encryptor. Bytes written are encrypted chunk by chunk into the
/// inner writer; [`PayloadWriter::finish`] must be called to write the final
/// (short) chunk, otherwise the payload is truncated and will not decrypt.
pub struct PayloadWriter<W: Write> {
    inner: W,
    cipher: Cipher,
    base_nonce: [u8; NONCE_SIZE],
    counter: u64,
    plain: Zeroizing<Vec<u8>>,
    out: Vec<u8>,
}

impl<W: Write> PayloadWriter<W> {
    /// Start a payload with a fresh random salt from `rng`.
    pub fn new(
        inner: W,
        input_key: &[u8],
        context: &[u8],
        rng: &mut impl rand_core::CryptoRng,
        backend: Backend,
    ) -> Result<Self, crate::Error> {
        let mut salt = [0u8; SALT_SIZE];
        rng.fill_bytes(&mut salt);
        Self::with_salt(inner, input_key, context, &salt, backend)
    }

    /// Start a payload with the given salt. The salt must never repeat for an
    /// input key; this exists so that test vectors can be reproduced exactly.
    pub fn with_salt(
        mut inner: W,
        input_key: &[u8],
        context: &[u8],
        salt: &[u8; SALT_SIZE],
        backend: Backend,
    ) -> Result<Self, crate::Error> {
        let d = Derived::new(input_key, salt, context)?;
        inner.write_all(salt)?;
        inner.write_all(&d.commitment)?;
        Ok(PayloadWriter {
            inner,
            cipher: Cipher::new(backend, &d.key),
            base_nonce: d.base_nonce,
            counter: 0,
            plain: Zeroizing::new(Vec::with_capacity(BATCH * CHUNK_SIZE)),
            out: Vec::with_capacity(BATCH * ENC_CHUNK),
        })
    }

    /// Seal `plain` (whole chunks, plus a short final one if `last`) and write.
    fn seal_buffered(&mut self, last: bool) -> io::Result<()> {
        let full = self.plain.len() / CHUNK_SIZE;
        let full = if last { full } else { full.min(BATCH) };
        let tail = if last {
            self.plain.len() - full * CHUNK_SIZE
        } else {
            0
        };
        let chunks = full + usize::from(last);
        if self.counter + chunks as u64 > MAX_CHUNKS {
            return Err(crate::Error::Payload(PayloadError::TooLong).into_io());
        }
        self.out.clear();
        for i in 0..chunks {
            let len = if i < full { CHUNK_SIZE } else { tail };
            let src = &self.plain[i * CHUNK_SIZE..i * CHUNK_SIZE + len];
            let start = self.out.len();
            self.out.extend_from_slice(src);
            let tag = self.cipher.seal(
                chunk_nonce(&self.base_nonce, self.counter),
                &mut self.out[start..],
            );
            self.out.extend_from_slice(&tag);
            self.counter += 1;
        }
        self.inner.write_all(&self.out)?;
        let consumed = full * CHUNK_SIZE + tail;
        self.plain.drain(..consumed);
        Ok(())
    }

    /// Write the final chunk and return the inner writer (not flushed).
    pub fn finish(mut self) -> io::Result<W> {
        while self.plain.len() > BATCH * CHUNK_SIZE {
            self.seal_buffered(false)?;
        }
        self.seal_buffered(true)?;
        self.out.zeroize();
        Ok(self.inner)
    }
}

impl<W: Write> Write for PayloadWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // Only seal a batch once we know more data follows it, because the
        // final chunk must be short.
        if self.plain.len() == BATCH * CHUNK_SIZE {
            self.seal_buffered(false)?;
        }
        let room = BATCH * CHUNK_SIZE - self.plain.len();
        let n = room.min(data.len());
        self.plain.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streaming decryptor implementing [`Read`]. Construction reads the salt and
/// commitment and checks the commitment before any chunk is touched.
pub struct PayloadReader<R: Read> {
    inner: R,
    cipher: Cipher,
    base_nonce: [u8; NONCE_SIZE],
    counter: u64,
    /// Staging buffer: decrypted plaintext in `[pos, ready)`, then
    /// not-yet-processed ciphertext in `[ready_ct, filled)`.
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
    ready: usize,
    ready_ct: usize,
    filled: usize,
    eof: bool,
    done: bool,
    failed: Option<PayloadError>,
    plaintext_len: u64,
}

impl<R: Read> PayloadReader<R> {
    /// Read the payload prefix from `inner` and check the key commitment.
    pub fn new(
        mut inner: R,
        input_key: &[u8],
        context: &[u8],
        backend: Backend,
    ) -> Result<Self, crate::Error> {
        if input_key.len() != KEY_SIZE {
            return Err(PayloadError::InvalidKeySize.into());
        }
        let mut prefix = [0u8; PAYLOAD_PREFIX_SIZE];
        read_full(&mut inner, &mut prefix).and_then(|n| {
            if n < PAYLOAD_PREFIX_SIZE {
                Err(crate::Error::Payload(PayloadError::TruncatedHeader))
            } else {
                Ok(())
            }
        })?;
        let mut salt = [0u8; SALT_SIZE];
        salt.copy_from_slice(&prefix[..SALT_SIZE]);
        let d = Derived::new(input_key, &salt, context)?;
        if !bool::from(d.commitment.ct_eq(&prefix[SALT_SIZE..])) {
            return Err(PayloadError::Commitment.into());
        }
        Ok(PayloadReader {
            inner,
            cipher: Cipher::new(backend, &d.key),
            base_nonce: d.base_nonce,
            counter: 0,
            buf: Zeroizing::new(vec![0u8; BATCH * ENC_CHUNK + 1]),
            pos: 0,
            ready: 0,
            ready_ct: 0,
            filled: 0,
            eof: false,
            done: false,
            failed: None,
            plaintext_len: 0,
        })
    }

    /// Plaintext bytes released so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    fn fail(&mut self, e: PayloadError) -> io::Error {
        // Once an error is reported, nothing more is released, not even
        // authenticated chunks of the same batch: every later read fails.
        self.failed = Some(e);
        self.ready = self.pos;
        crate::Error::Payload(e).into_io()
    }

    /// Refill the staging buffer and decrypt as many chunks as can be known
    /// to be final or non-final.
    fn refill(&mut self) -> io::Result<()> {
        // Keep the unprocessed ciphertext, move it to the front.
        self.buf.copy_within(self.ready_ct..self.filled, 0);
        self.filled -= self.ready_ct;
        self.pos = 0;
        self.ready = 0;
        self.ready_ct = 0;
        while !self.eof && self.filled < self.buf.len() {
            match self.inner.read(&mut self.buf[self.filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let avail = self.filled;
        // Without EOF we must leave at least one byte behind, so that the
        // last chunk we process is known to be non-final.
        let (full, final_len) = if self.eof {
            let full = avail / ENC_CHUNK;
            let rem = avail % ENC_CHUNK;
            (full, Some(rem))
        } else {
            ((avail - 1) / ENC_CHUNK, None)
        };
        let mut out = 0;
        for i in 0..full {
            let off = i * ENC_CHUNK;
            let len = self.open_chunk(off, CHUNK_SIZE)?;
            self.buf.copy_within(off..off + len, out);
            out += len;
            self.ready = out;
            self.ready_ct = off + ENC_CHUNK;
        }
        if let Some(rem) = final_len {
            let off = full * ENC_CHUNK;
            if rem == 0 {
                // A full-size chunk was the last one: the short final chunk
                // is missing (or the payload is empty after the prefix).
                return Err(self.fail(PayloadError::Truncated));
            }
            if rem < TAG_SIZE {
                return Err(self.fail(PayloadError::Truncated));
            }
            let len = self.open_chunk(off, rem - TAG_SIZE)?;
            self.buf.copy_within(off..off + len, out);
            out += len;
            self.ready = out;
            self.ready_ct = off + rem;
            self.done = true;
        }
        Ok(())
    }

    /// Decrypt the chunk at `off` with `len` plaintext bytes in place.
    fn open_chunk(&mut self, off: usize, len: usize) -> io::Result<usize> {
        if self.counter >= MAX_CHUNKS {
            return Err(self.fail(PayloadError::TooLong));
        }
        let mut tag = [0u8; TAG_SIZE];
        tag.copy_from_slice(&self.buf[off + len..off + len + TAG_SIZE]);
        let nonce = chunk_nonce(&self.base_nonce, self.counter);
        if !self.cipher.open(nonce, &mut self.buf[off..off + len], &tag) {
            // Wipe whatever the failed open left behind; release nothing.
            self.buf[off..off + len].zeroize();
            return Err(self.fail(PayloadError::Chunk(self.counter)));
        }
        self.counter += 1;
        Ok(len)
    }
}

impl<R: Read> Read for PayloadReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos < self.ready {
                let n = (self.ready - self.pos).min(out.len());
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                self.plaintext_len += n as u64;
                return Ok(n);
            }
            if let Some(e) = self.failed {
                return Err(crate::Error::Payload(e).into_io());
            }
            if self.done {
                if self.ready_ct < self.filled {
                    return Err(self.fail(PayloadError::TrailingData));
                }
                return Ok(0);
            }
            self.refill()?;
        }
    }
}

/// Read until `buf` is full or EOF; returns the count read.
pub(crate) fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize, crate::Error> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(crate::Error::Io(e)),
        }
    }
    Ok(n)
}

/// Decrypt a whole payload held in memory. Nothing is returned unless every
/// chunk authenticated.
#[cfg(test)]
pub fn decrypt_to_vec(
    input_key: &[u8],
    context: &[u8],
    payload: &[u8],
    backend: Backend,
) -> Result<Vec<u8>, crate::Error> {
    let mut r = PayloadReader::new(payload, input_key, context, backend)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out).map_err(crate::Error::from_io)?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]
mod c2sp;
