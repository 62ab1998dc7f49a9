use std::io::Read;
use std::path::PathBuf;

use kluis_format::{
    Backend, Decryptor, EncryptOptions, Encryptor, Error, FileKey, Header, Identity, Metadata,
    PayloadLayout, Recipient, encrypt,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// `tests/vectors` at the repository root.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

pub fn identities(n: usize, seed: u64) -> Vec<Identity> {
    let mut r = rng(seed);
    (0..n).map(|_| Identity::generate(&mut r)).collect()
}

pub fn recipients(ids: &[Identity]) -> Vec<Recipient> {
    ids.iter().map(|i| i.recipient().clone()).collect()
}

pub fn seal(plain: &[u8], to: &[Recipient], opts: EncryptOptions, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let meta = Metadata {
        name: Some("test.bin".into()),
        size: Some(plain.len() as u64),
        ..Default::default()
    };
    encrypt(plain, &mut out, to, &meta, opts, &mut rng(seed)).expect("encrypt");
    out
}

pub fn open(file: &[u8], id: &Identity) -> Result<Vec<u8>, Error> {
    let mut d = Decryptor::new(file, id)?;
    let mut out = Vec::new();
    d.read_to_end(&mut out).map_err(Error::from_io)?;
    Ok(out)
}

pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// `header` followed by the payload of `plain`, sealed chunk by chunk into one
/// buffer with [`Encryptor`] (the way the sync engine writes files).
pub fn seal_chunks(header: &Header, key: &FileKey, plain: &[u8], seed: u64) -> Vec<u8> {
    let mut r = rng(seed);
    let mut out = header.to_bytes();
    let mut enc = Encryptor::new(header, key, &mut r, Backend::default()).unwrap();
    out.extend_from_slice(enc.prefix());
    let mut slot = vec![0u8; PayloadLayout::sealed_chunk_size()];
    let mut rest = plain;
    while !enc.is_finished() {
        let n = rest.len().min(PayloadLayout::chunk_size());
        slot[..n].copy_from_slice(&rest[..n]);
        let m = enc.seal_next(&mut slot, n).unwrap();
        out.extend_from_slice(&slot[..m]);
        rest = &rest[n..];
    }
    out
}
