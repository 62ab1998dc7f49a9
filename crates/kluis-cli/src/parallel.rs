//! File-to-file encryption and decryption on all cores.
//!
//! C2SP chunks are independently addressable, so a regular file can be split
//! into contiguous chunk ranges, one per thread, each reading and writing at
//! its own offsets. The output goes to a temporary file that is renamed into
//! place only after every chunk succeeded, so no unauthenticated plaintext and
//! no partial file is ever visible. Streams (stdin/stdout) use the sequential
//! path in `kluis-format` instead.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use kluis_format::{
    Backend, ChunkOpener, ChunkSealer, Error, Header, KemChoice, Metadata, PayloadLayout, Recipient,
};
use zeroize::Zeroizing;

use crate::output::Output;

/// Below this size the sequential path is as fast and simpler.
pub const PARALLEL_THRESHOLD: u64 = 4 * 1024 * 1024;
const CHUNK_SIZE: usize = PayloadLayout::chunk_size();
const ENC_CHUNK: u64 = PayloadLayout::sealed_chunk_size() as u64;
const BATCH: u64 = 64;

/// Worker threads: one per core (at most 8), or `KLUIS_THREADS`.
fn threads() -> u64 {
    if let Some(n) = std::env::var("KLUIS_THREADS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        return n.clamp(1, 64);
    }
    std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1)
        .clamp(1, 8)
}

/// Split `n` chunks into contiguous ranges, one per thread.
fn ranges(n: u64) -> Vec<(u64, u64)> {
    let t = threads().min(n.div_ceil(BATCH)).max(1);
    let per = n.div_ceil(t);
    (0..t)
        .map(|i| (i * per, ((i + 1) * per).min(n)))
        .filter(|(a, b)| a < b)
        .collect()
}

/// Run `work` on every range; the first error stops the others.
fn run_ranges(n: u64, work: impl Fn(u64, u64, &AtomicBool) -> Result<()> + Sync) -> Result<()> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let handles: Vec<_> = ranges(n)
            .into_iter()
            .map(|(a, b)| {
                let (work, stop) = (&work, &stop);
                s.spawn(move || {
                    let r = work(a, b, stop);
                    if r.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        let mut first = Ok(());
        for h in handles {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked")));
            if first.is_ok() {
                first = r;
            }
        }
        first
    })
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
    let src = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let len = src.metadata()?.len();
    let meta = Metadata {
        size: Some(len),
        ..meta.clone()
    };
    let (header, file_key) = Header::new(recipients, kem, &meta, rng)?;
    let sealer = ChunkSealer::new(&header, &file_key, len, rng, Backend::Ring)?;
    let layout = *sealer.layout();
    let head = header.to_bytes();
    let dst = out_file(out)?;
    // Size the file first: threads then write inside it instead of racing
    // to extend it, which serialises them on the inode.
    let base = head.len() as u64;
    dst.set_len(base + layout.payload_len())?;
    dst.write_all_at(&head, 0)?;
    dst.write_all_at(sealer.prefix(), base)?;
    let bar = crate::output::progress_bar(Some(len));
    run_ranges(layout.chunks(), |first, end, stop| {
        // One buffer laid out like the ciphertext: each chunk's plaintext is
        // read straight into its slot, sealed in place, and its tag written
        // into the gap after it. A second buffer (and a copy between the
        // two) doubled the memory traffic and made encryption a third slower
        // than decryption (bench/format-vs-age.sh).
        let mut buf = Zeroizing::new(vec![0u8; (BATCH * ENC_CHUNK) as usize]);
        let mut idx = first;
        while idx < end && !stop.load(Ordering::Relaxed) {
            let n = BATCH.min(end - idx);
            let p_off = layout.plaintext_range(idx).start;
            let p_len = (layout.plaintext_range(idx + n - 1).end - p_off) as usize;
            read_into_slots(&src, &mut buf, p_len, p_off)
                .context("the input file shrank while it was being encrypted")?;
            let mut w = 0;
            for k in 0..n {
                w += sealer.seal_chunk(idx + k, &mut buf[w..])?;
            }
            dst.write_all_at(&buf[..w], base + layout.sealed_range(idx).start)?;
            if let Some(b) = &bar {
                b.inc(p_len as u64);
            }
            idx += n;
        }
        Ok(())
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if src.metadata()?.len() != len {
        bail!(
            "{} changed size while it was being encrypted; try again",
            input.display()
        );
    }
    Ok(len)
}

/// Read `p_len` plaintext bytes at `offset` into the chunk slots of `buf`
/// (chunk k at `k * ENC_CHUNK`, leaving room for its tag), with one
/// `preadv(2)` per batch; short reads are resumed, end of file is an error.
fn read_into_slots(src: &File, buf: &mut [u8], p_len: usize, offset: u64) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSliceMut<'_>> = buf
        .chunks_mut(ENC_CHUNK as usize)
        .scan(p_len, |left, slot| {
            let take = CHUNK_SIZE.min(*left);
            *left -= take;
            (take > 0).then(|| std::io::IoSliceMut::new(&mut slot[..take]))
        })
        .collect();
    let mut slices = &mut slices[..];
    let mut done = 0usize;
    while done < p_len {
        match rustix::io::preadv(src, slices, offset + done as u64) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(got) => {
                done += got;
                std::io::IoSliceMut::advance_slices(&mut slices, got);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Decrypt the Kluis file `input` to the (temporary) file behind `out`.
/// Returns the metadata. Nothing is committed by this function.
pub fn decrypt_file(
    input: &Path,
    out: &mut Output,
    unwrap: impl FnOnce(&Header) -> Result<kluis_format::FileKey>,
) -> Result<Metadata> {
    let src = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let file_len = src.metadata()?.len();
    let header = Header::read(std::io::BufReader::new(&src))?;
    let file_key = unwrap(&header)?;
    let meta = header.metadata(&file_key)?;
    let head_len = header.to_bytes().len() as u64;
    let payload_len = file_len
        .checked_sub(head_len)
        .ok_or(Error::Payload(kluis_format::PayloadError::TruncatedHeader))?;
    // Checks the payload's length before reading its prefix, as before.
    let plain_len = PayloadLayout::for_payload(payload_len)?.plaintext_len();
    let mut prefix = [0u8; PayloadLayout::prefix_len()];
    src.read_exact_at(&mut prefix, head_len)?;
    let opener = ChunkOpener::new(&header, &file_key, payload_len, &prefix, Backend::Ring)?;
    let layout = *opener.layout();
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
    let dst = out_file(out)?;
    dst.set_len(plain_len)?;
    let bar = crate::output::progress_bar(Some(plain_len));
    run_ranges(layout.chunks(), |first, end, stop| {
        let mut buf = Zeroizing::new(vec![0u8; (BATCH * ENC_CHUNK) as usize]);
        let mut idx = first;
        while idx < end && !stop.load(Ordering::Relaxed) {
            let n = BATCH.min(end - idx);
            let c_off = layout.sealed_range(idx).start;
            let c_len = (layout.sealed_range(idx + n - 1).end - c_off) as usize;
            src.read_exact_at(&mut buf[..c_len], head_len + c_off)?;
            // Open each chunk in its slot, then move its plaintext down so
            // the batch's plaintext is contiguous.
            let mut w = 0;
            for k in 0..n as usize {
                let start = k * ENC_CHUNK as usize;
                let len = opener.open_chunk(idx + k as u64, &mut buf[start..])?;
                buf.copy_within(start..start + len, w);
                w += len;
            }
            dst.write_all_at(&buf[..w], layout.plaintext_range(idx).start)?;
            if let Some(b) = &bar {
                b.inc(w as u64);
            }
            idx += n;
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
