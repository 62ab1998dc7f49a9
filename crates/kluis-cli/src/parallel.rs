//! File-to-file encryption and decryption using two cores as a pipeline.
//!
//! One thread reads the input and seals (or opens) its chunks; a second
//! thread only writes, sequentially, in large blocks. On this kind of machine
//! the kernel's page-cache writes dominate, and splitting them over several
//! writer threads makes them contend on the file's lock, so the pipeline
//! keeps exactly one writer and overlaps everything else with it.
//!
//! The output goes to a temporary file that is renamed into place only after
//! every chunk succeeded, so no unauthenticated plaintext and no partial file
//! is ever visible. Streams (stdin/stdout) use the sequential path in
//! `kluis-format` instead.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};

use anyhow::{Context, Result, bail};
use kluis_format::payload::{
    CHUNK_SIZE, ChunkCipher, PAYLOAD_PREFIX_SIZE, TAG_SIZE, payload_len, plaintext_len,
};
use kluis_format::{Backend, Error, Header, Identity, KemChoice, Metadata, Recipient};
use zeroize::Zeroizing;

use crate::output::Output;

/// Below this size the sequential path is as fast and simpler.
pub const PARALLEL_THRESHOLD: u64 = 4 * 1024 * 1024;
const ENC_CHUNK: usize = CHUNK_SIZE + TAG_SIZE;
/// Chunks per block handed to the writer: 4 MiB of plaintext.
const BATCH: usize = 256;
/// Blocks in flight between the two threads.
const DEPTH: usize = 3;

/// Run `produce` on this thread, handing its blocks to a writer thread that
/// appends them to `dst` in order. Buffers are recycled, so memory is flat:
/// at most DEPTH + 2 blocks exist at once.
fn pipeline(
    mut dst: &File,
    produce: impl FnOnce(
        &mut dyn FnMut(Zeroizing<Vec<u8>>) -> Result<()>,
        &Receiver<Zeroizing<Vec<u8>>>,
    ) -> Result<()>,
) -> Result<()> {
    let (to_writer, from_producer): (SyncSender<Zeroizing<Vec<u8>>>, _) = sync_channel(DEPTH);
    let (recycle, recycled) = channel::<Zeroizing<Vec<u8>>>();
    std::thread::scope(|s| {
        let writer = s.spawn(move || -> std::io::Result<()> {
            for block in from_producer {
                dst.write_all(&block)?;
                let _ = recycle.send(block);
            }
            Ok(())
        });
        let mut send = |block: Zeroizing<Vec<u8>>| -> Result<()> {
            // A closed channel means the writer failed; its error is
            // reported below.
            to_writer
                .send(block)
                .map_err(|_| anyhow::anyhow!("the writer stopped"))
        };
        let produced = produce(&mut send, &recycled);
        drop(to_writer);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the writer thread panicked")));
        written?;
        produced
    })
}

fn take_buffer(recycled: &Receiver<Zeroizing<Vec<u8>>>, cap: usize) -> Zeroizing<Vec<u8>> {
    let mut b = recycled
        .try_recv()
        .unwrap_or_else(|_| Zeroizing::new(Vec::with_capacity(cap)));
    b.clear();
    b
}

fn out_file(out: &Output) -> Result<&File> {
    match out {
        Output::File { tmp, .. } => Ok(tmp.get_ref().as_file()),
        Output::Stdout(_) => bail!("parallel output needs a file"),
    }
}

/// Encrypt the regular file `input` to the (temporary) file behind `out`.
pub fn encrypt_file(
    input: &Path,
    out: &mut Output,
    recipients: &[Recipient],
    meta: &Metadata,
    kem: KemChoice,
    rng: &mut impl kluis_format::rand_core::CryptoRng,
) -> Result<u64> {
    let mut src = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let len = src.metadata()?.len();
    let meta = Metadata {
        size: Some(len),
        ..meta.clone()
    };
    let (header, file_key) = Header::new(recipients, kem, &meta, rng)?;
    let (cipher, prefix) = ChunkCipher::for_new_payload(
        &header.payload_key(&file_key)[..],
        &header.payload_context(),
        rng,
        Backend::Ring,
    )
    .map_err(Error::from)?;
    let mut dst = out_file(out)?;
    let head = header.to_bytes();
    dst.write_all(&head)?;
    dst.write_all(&prefix)?;
    let expected = head.len() as u64 + payload_len(len);
    let chunks = len / CHUNK_SIZE as u64 + 1;
    let bar = crate::output::progress_bar(Some(len));
    let mut plain = Zeroizing::new(vec![0u8; BATCH * CHUNK_SIZE]);
    pipeline(dst, |send, recycled| {
        let mut idx = 0u64;
        while idx < chunks {
            let n = (BATCH as u64).min(chunks - idx) as usize;
            let p_off = idx * CHUNK_SIZE as u64;
            let p_len = ((n * CHUNK_SIZE) as u64).min(len - p_off) as usize;
            src.read_exact(&mut plain[..p_len])
                .context("the input file shrank while it was being encrypted")?;
            let mut block = take_buffer(recycled, BATCH * ENC_CHUNK);
            for k in 0..n {
                let start = k * CHUNK_SIZE;
                let c_len = CHUNK_SIZE.min(p_len - start.min(p_len));
                let at = block.len();
                block.extend_from_slice(&plain[start..start + c_len]);
                let tag = cipher
                    .seal(idx + k as u64, &mut block[at..])
                    .map_err(Error::from)?;
                block.extend_from_slice(&tag);
            }
            send(block)?;
            if let Some(b) = &bar {
                b.inc(p_len as u64);
            }
            idx += n as u64;
        }
        Ok(())
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if src.metadata()?.len() != len || dst.metadata()?.len() != expected {
        bail!(
            "{} changed size while it was being encrypted; try again",
            input.display()
        );
    }
    Ok(len)
}

/// Decrypt the Kluis file `input` to the (temporary) file behind `out`.
/// Returns the metadata. Nothing is committed by this function.
pub fn decrypt_file(input: &Path, out: &mut Output, identity: &Identity) -> Result<Metadata> {
    let mut src = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let file_len = src.metadata()?.len();
    let header = Header::read(std::io::BufReader::new(&src))?;
    let file_key = header.unwrap_file_key(identity)?;
    let meta = header.metadata(&file_key)?;
    let head_len = header.to_bytes().len() as u64;
    let plain_len = plaintext_len(file_len - head_len).map_err(Error::from)?;
    if let Some(size) = meta.size {
        if plain_len < size {
            // The file is shorter than what was encrypted: cut off.
            return Err(Error::Payload(kluis_format::PayloadError::Truncated).into());
        }
        if size != plain_len {
            return Err(Error::SizeMismatch {
                recorded: size,
                actual: plain_len,
            }
            .into());
        }
    }
    // The BufReader read ahead; position the file right after the header.
    use std::io::Seek;
    src.seek(std::io::SeekFrom::Start(head_len))?;
    let mut prefix = [0u8; PAYLOAD_PREFIX_SIZE];
    src.read_exact(&mut prefix)?;
    let cipher = ChunkCipher::for_existing_payload(
        &header.payload_key(&file_key)[..],
        &header.payload_context(),
        &prefix,
        Backend::Ring,
    )
    .map_err(Error::from)?;
    let chunks = plain_len / CHUNK_SIZE as u64 + 1;
    let dst = out_file(out)?;
    let bar = crate::output::progress_bar(Some(plain_len));
    pipeline(dst, |send, recycled| {
        let mut idx = 0u64;
        while idx < chunks {
            let n = (BATCH as u64).min(chunks - idx) as usize;
            let p_off = idx * CHUNK_SIZE as u64;
            let p_len = ((n * CHUNK_SIZE) as u64).min(plain_len - p_off) as usize;
            let c_len = p_len + n * TAG_SIZE;
            let mut block = take_buffer(recycled, BATCH * ENC_CHUNK);
            block.resize(c_len, 0);
            src.read_exact(&mut block[..])?;
            let mut w = 0;
            for k in 0..n {
                let start = k * ENC_CHUNK;
                let len = CHUNK_SIZE.min(p_len - k * CHUNK_SIZE);
                let mut tag = [0u8; TAG_SIZE];
                tag.copy_from_slice(&block[start + len..start + len + TAG_SIZE]);
                cipher
                    .open(idx + k as u64, &mut block[start..start + len], &tag)
                    .map_err(Error::from)?;
                block.copy_within(start..start + len, w);
                w += len;
            }
            block.truncate(w);
            send(block)?;
            if let Some(b) = &bar {
                b.inc(w as u64);
            }
            idx += n as u64;
        }
        Ok(())
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if src.metadata()?.len() != file_len {
        bail!(
            "{} changed while it was being decrypted; try again",
            input.display()
        );
    }
    Ok(meta)
}
