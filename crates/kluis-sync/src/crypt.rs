//! Streaming encryption with a flat one-chunk buffer.
//!
//! `kluis_format::encrypt` batches 64 chunks (two 1 MiB buffers per call,
//! zeroized over their whole capacity on drop), which is right for large
//! files but costs ~700 page faults per file when encrypting thousands of
//! small files. This writes the same bytes through the format crate's
//! [`Encryptor`], which seals one chunk at a time into a buffer we own: each
//! chunk is read into the buffer, sealed in place and written out with its
//! tag, no copy in between. The unit tests check the output with
//! `kluis_format::Decryptor`.

use std::io::{self, Read, Write};

use kluis_format::{
    Backend, Batch, Encryptor, Header, KemChoice, Metadata, PayloadLayout, Recipient,
};

/// Whom a new file is encrypted to.
#[derive(Clone, Copy, Debug)]
pub enum To<'a> {
    /// A fresh HPKE encapsulation per recipient.
    Recipients(&'a [Recipient]),
    /// The shared contexts of a batch of new files (FORMAT.md §4.8).
    Batch(&'a Batch),
}

/// Encrypt `input` to `output`; returns the plaintext length and the new
/// file's id. Fails with `SizeMismatch` before writing the final chunk if
/// `metadata.size` differs from what was read.
pub fn encrypt_stream<R: Read, W: Write>(
    mut input: R,
    mut output: W,
    to: To<'_>,
    metadata: &Metadata,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(u64, [u8; 16]), kluis_format::Error> {
    let (header, file_key) = match to {
        To::Recipients(r) => Header::new(r, KemChoice::default(), metadata, rng)?,
        To::Batch(b) => Header::new_in_batch(b, metadata, rng)?,
    };
    header.write(&mut output)?;
    let mut enc = Encryptor::new(&header, &file_key, rng, Backend::default())?;
    output.write_all(enc.prefix())?;
    let chunk = PayloadLayout::chunk_size();
    let mut buf = Scrub {
        buf: vec![0u8; PayloadLayout::sealed_chunk_size()],
        used: 0,
    };
    let mut total = 0u64;
    while !enc.is_finished() {
        let n = match read_full(&mut input, &mut buf.buf[..chunk]) {
            Ok(n) => n,
            Err(e) => {
                // It may have read part of a chunk before failing.
                buf.used = chunk;
                return Err(e.into());
            }
        };
        buf.used = buf.used.max(n);
        total += n as u64;
        if n < chunk
            && let Some(size) = metadata.size
            && size != total
        {
            return Err(kluis_format::Error::SizeMismatch {
                recorded: size,
                actual: total,
            });
        }
        // A short read is the final chunk: the encryptor closes the payload.
        let sealed = enc.seal_next(&mut buf.buf, n)?;
        output.write_all(&buf.buf[..sealed])?;
    }
    output.flush()?;
    Ok((total, *header.file_id()))
}

/// A plaintext buffer wiped on drop, but only as far as it was used: most
/// files are far smaller than a chunk, and wiping 16 KiB per file was 2 %
/// of a large first sync.
struct Scrub {
    buf: Vec<u8>,
    used: usize,
}

impl Drop for Scrub {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.buf[..self.used].zeroize();
    }
}

pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kluis_format::{Decryptor, Identity};

    const CHUNK_SIZE: usize = PayloadLayout::chunk_size();

    #[test]
    fn output_decrypts_with_the_format_crate_at_chunk_boundaries() {
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let id = Identity::generate(&mut rng);
        for len in [
            0usize,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE,
            50_000,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            let meta = Metadata {
                name: Some("x".into()),
                size: Some(len as u64),
                ..Metadata::default()
            };
            let mut out = Vec::new();
            let (n, file_id) = encrypt_stream(
                &data[..],
                &mut out,
                To::Recipients(&[id.recipient().clone()]),
                &meta,
                &mut rng,
            )
            .unwrap();
            assert_eq!(n, len as u64);
            assert_eq!(
                kluis_format::peek_file_id(&out).unwrap(),
                file_id,
                "the id read_file_id finds"
            );
            let mut d = Decryptor::new(&out[..], &id).unwrap();
            assert_eq!(d.metadata(), &meta);
            let mut back = Vec::new();
            d.read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "len {len}");
            // Truncation anywhere is detected.
            if len > 0 {
                let mut d = Decryptor::new(&out[..out.len() - 1], &id).unwrap();
                assert!(d.read_to_end(&mut Vec::new()).is_err(), "len {len}");
            }
        }
        let meta = Metadata {
            size: Some(5),
            ..Metadata::default()
        };
        let err = encrypt_stream(
            &b"four"[..],
            &mut Vec::new(),
            To::Recipients(&[id.recipient().clone()]),
            &meta,
            &mut rng,
        );
        assert!(matches!(err, Err(kluis_format::Error::SizeMismatch { .. })));
    }
}
