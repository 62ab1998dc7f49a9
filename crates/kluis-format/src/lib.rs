//! The Kluis file format.
//!
//! A Kluis file is a header (recipient stanzas wrapping a random per-file key
//! with HPKE, encrypted metadata, and a MAC) followed by a C2SP chunked
//! payload (Cobblestone-256). `docs/FORMAT.md` is the normative description;
//! every parser here cites the section it implements.
//!
//! **What it owns:** every byte layout of `docs/FORMAT.md` (header,
//! stanzas, metadata, payload chunks, identity files). Other crates build,
//! parse and locate Kluis bytes only through this crate's API: whole files
//! ([`encrypt`], [`Decryptor`], [`rewrite_header`]), chunk by chunk into
//! their own buffers ([`Encryptor`], [`ChunkSealer`], [`ChunkOpener`],
//! [`PayloadLayout`]), or a peek at the id ([`peek_file_id`]).
//!
//! **What it must not depend on:** no file system, no network, no clock,
//! no other Kluis crate. It works on [`Read`]/[`Write`] and byte slices, and
//! takes its randomness as an argument.
//!
//! ```
//! # fn main() -> Result<(), kluis_format::Error> {
//! use kluis_format::{Identity, Metadata, EncryptOptions, encrypt, Decryptor};
//! let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
//! let alice = Identity::generate(&mut rng);
//! let mut file = Vec::new();
//! encrypt(&b"hello"[..], &mut file, &[alice.recipient().clone()], &Metadata::default(), EncryptOptions::default(), &mut rng)?;
//! let mut d = Decryptor::new(&file[..], &alice)?;
//! let mut out = Vec::new();
//! std::io::Read::read_to_end(&mut d, &mut out)?;
//! assert_eq!(out, b"hello");
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod chunks;
mod error;
mod header;
mod idfile;
mod keys;
mod meta;
mod payload;

use std::io::{self, Read, Write};

pub use chunks::{
    ChunkOpener, ChunkSealer, Encryptor, FILE_ID_PEEK_LEN, FileId, PayloadLayout, peek_file_id,
};
pub use error::{Error, PayloadError, Result, Section};
pub use header::{
    BATCH_BIT, Batch, FileKey, HEADER_BLOCK, Header, KEM_PADDING, KEM_X25519_BATCH,
    KEM_XWING_BATCH, MAX_HEADER_LEN, MAX_STANZAS, Refit, SMALL_HEADER_BLOCK, Stanza,
};
pub use idfile::{IDENTITY_FILE_LEN, KdfParams, identity_params, open_identity, seal_identity};
pub use keys::{
    Fingerprint, IDENTITY_SECRET_LEN, Identity, KEM_X25519, KEM_XWING, KemChoice, KeyId,
    RECIPIENT_PREFIX, Recipient,
};
pub use meta::Metadata;
pub use payload::Backend;
pub use rand_core;

/// Options for [`encrypt`].
#[derive(Debug, Clone, Copy, Default)]
pub struct EncryptOptions {
    /// Which KEM wraps the file key (X-Wing by default).
    pub kem: KemChoice,
    /// Which AES-GCM implementation seals the payload.
    pub backend: Backend,
}

/// Encrypt everything from `input` to `output` for `recipients`. Returns the
/// number of plaintext bytes. Every call uses a fresh file key and file id.
pub fn encrypt<R: Read, W: Write>(
    mut input: R,
    mut output: W,
    recipients: &[Recipient],
    metadata: &Metadata,
    opts: EncryptOptions,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<u64> {
    let (header, file_key) = Header::new(recipients, opts.kem, metadata, rng)?;
    header.write(&mut output)?;
    let mut w = payload::PayloadWriter::new(
        output,
        &header.payload_key(&file_key)[..],
        &header.payload_context(),
        rng,
        opts.backend,
    )?;
    // Large reads: the default 8 KiB copy buffer costs a syscall per 8 KiB.
    let mut buf = zeroize::Zeroizing::new(vec![0u8; 1 << 20]);
    let mut n = 0u64;
    loop {
        let k = match input.read(&mut buf[..]) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io(e)),
        };
        w.write_all(&buf[..k]).map_err(Error::from_io)?;
        n += k as u64;
    }
    if let Some(size) = metadata.size
        && size != n
    {
        return Err(Error::SizeMismatch {
            recorded: size,
            actual: n,
        });
    }
    w.finish()?.flush()?;
    Ok(n)
}

/// A decrypting reader: parses the header, unwraps the file key with an
/// identity, checks the header MAC and payload commitment, then yields only
/// authenticated plaintext. At the end it checks the recorded size.
pub struct Decryptor<R: Read> {
    header: Header,
    metadata: Metadata,
    reader: payload::PayloadReader<R>,
    failed: bool,
}

impl<R: Read> Decryptor<R> {
    /// Open `input` with `identity` using the default backend.
    pub fn new(input: R, identity: &Identity) -> Result<Self> {
        Self::with_backend(input, identity, Backend::default())
    }

    /// Open `input` with `identity` and a chosen AES-GCM backend.
    pub fn with_backend(mut input: R, identity: &Identity, backend: Backend) -> Result<Self> {
        let header = Header::read(&mut input)?;
        let file_key = header.unwrap_file_key(identity)?;
        Self::with_file_key(input, header, &file_key, backend)
    }

    /// Open `input` with whichever of `identities` has a stanza in its
    /// header ([`Header::unwrap_file_key_any`]).
    pub fn with_any(mut input: R, identities: &[&Identity], backend: Backend) -> Result<Self> {
        let header = Header::read(&mut input)?;
        let file_key = header.unwrap_file_key_any(identities)?;
        Self::with_file_key(input, header, &file_key, backend)
    }

    /// Continue with an already parsed header and unwrapped file key.
    pub fn with_file_key(
        input: R,
        header: Header,
        file_key: &FileKey,
        backend: Backend,
    ) -> Result<Self> {
        let metadata = header.metadata(file_key)?;
        let reader = payload::PayloadReader::new(
            input,
            &header.payload_key(file_key)[..],
            &header.payload_context(),
            backend,
        )?;
        Ok(Decryptor {
            header,
            metadata,
            reader,
            failed: false,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The decrypted metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(Error::HeaderAuth.into_io());
        }
        let n = self.reader.read(buf)?;
        if n == 0
            && !buf.is_empty()
            && let Some(size) = self.metadata.size
            && size != self.reader.plaintext_len()
        {
            self.failed = true;
            let actual = self.reader.plaintext_len();
            return Err(Error::SizeMismatch {
                recorded: size,
                actual,
            }
            .into_io());
        }
        Ok(n)
    }
}

/// Rewrite only the header of a Kluis file: parse it from `input`, unwrap the
/// file key with `identity`, let `edit` change the header, write the new
/// header to `output` and copy the payload bytes unchanged. Returns what
/// `edit` returned.
///
/// When `edit` changed the header, it is refitted ([`Header::refit`],
/// FORMAT.md §4.7): it keeps the old header's length when its padding has
/// room, and is padded afresh by the writer's rule otherwise, so sharing a
/// file (or a group's secret) with one more person does not grow it.
pub fn rewrite_header<R: Read, W: Write, T>(
    mut input: R,
    mut output: W,
    identity: &Identity,
    edit: impl FnOnce(&mut Header, &FileKey) -> Result<T>,
) -> Result<T> {
    let mut header = Header::read(&mut input)?;
    let old = header.to_bytes();
    let file_key = header.unwrap_file_key(identity)?;
    let result = edit(&mut header, &file_key)?;
    if header.to_bytes() != old {
        header.refit(&file_key, old.len())?;
    }
    header.write(&mut output)?;
    io::copy(&mut input, &mut output)?;
    output.flush()?;
    Ok(result)
}

/// The chunk AEAD key and base nonce of a payload (FORMAT.md §5.1), from its
/// header, file key and first [`PayloadLayout::prefix_len`] bytes. Only for
/// the worked example of FORMAT.md: anything holding the key reads the file.
#[doc(hidden)]
pub fn dangerous_chunk_keys(
    header: &Header,
    file_key: &FileKey,
    payload_prefix: &[u8],
) -> Result<([u8; 32], [u8; 12])> {
    let salt: [u8; payload::SALT_SIZE] = payload_prefix
        .get(..payload::SALT_SIZE)
        .and_then(|s| s.try_into().ok())
        .ok_or(PayloadError::TruncatedHeader)?;
    let d = payload::Derived::new(
        &header.payload_key(file_key)[..],
        &salt,
        &header.payload_context(),
    )?;
    Ok((*d.aead_key(), *d.base_nonce()))
}
