//! Adds the frozen vector `decoy-stanza-first` (FORMAT.md §4.5): a file for
//! Alice in which a member who knows the file key put, in front of Alice's
//! real X-Wing stanza, an X-Wing batch stanza under her key id that opens to
//! *another* file key, took its bytes from the padding (the header keeps its
//! 4096 bytes) and recomputed the MAC. A decoder that tries the next stanza
//! with its key id opens the file; one that stops at the first MAC failure
//! does not. It uses the frozen identities already in the folder, so no
//! existing vector changes.
//!
//! Usage: cargo run -p kluis-format --example make_decoy_vector -- tests/vectors/frozen
#![allow(clippy::unwrap_used, reason = "one-off generator")]

use std::convert::Infallible;
use std::path::Path;

use kluis_format::{
    Batch, EncryptOptions, Header, KEM_XWING_BATCH, KemChoice, Metadata, encrypt, open_identity,
};
use rand_core::{Rng, TryCryptoRng, TryRng};

/// Hands out `first` for the first 16-byte request (a new header's file id,
/// FORMAT.md §4.1), then the system RNG: the decoy stanza is made for the
/// victim file's own file id, as a member who read that file id would.
struct FileIdFirst<R> {
    first: Option<[u8; 16]>,
    inner: R,
}

impl<R: Rng> TryRng for FileIdFirst<R> {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.inner.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.inner.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        match self.first.take() {
            Some(id) if dst.len() == 16 => dst.copy_from_slice(&id),
            other => {
                self.first = other;
                self.inner.fill_bytes(dst);
            }
        }
        Ok(())
    }
}
impl<R: rand_core::CryptoRng> TryCryptoRng for FileIdFirst<R> {}

const PREAMBLE: usize = 30;
const XWING_STANZA: usize = 20 + 1168;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: make_decoy_vector DIR");
    let dir = Path::new(&dir);
    let alice = open_identity(
        &std::fs::read(dir.join("alice.key")).unwrap(),
        &std::fs::read(dir.join("alice.passphrase")).unwrap(),
    )
    .unwrap();
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let plain = b"Een lokstanza onder mijn sleutel-id verbergt de echte niet.\n";
    let meta = Metadata {
        name: Some("lokaas.txt".into()),
        size: Some(plain.len() as u64),
        ..Default::default()
    };
    let mut file = Vec::new();
    encrypt(
        &plain[..],
        &mut file,
        &[alice.recipient().clone()],
        &meta,
        EncryptOptions::default(),
        &mut rng,
    )
    .unwrap();
    let header = Header::read(&file[..]).unwrap();
    let hl = header.byte_len();
    let key = header.unwrap_file_key(&alice).unwrap();
    assert_eq!((hl, header.stanzas().len()), (4096, 1));

    // The decoy: a batch stanza to Alice for this file id, another file key.
    let batch = Batch::new(&[alice.recipient().clone()], KemChoice::XWing, &mut rng).unwrap();
    let mut forced = FileIdFirst {
        first: Some(*header.file_id()),
        inner: rand_core::UnwrapErr(getrandom::SysRng),
    };
    let (decoy_header, decoy_key) = Header::new_in_batch(&batch, &meta, &mut forced).unwrap();
    assert_eq!(decoy_header.file_id(), header.file_id());
    assert_ne!(decoy_key.dangerous_bytes(), key.dangerous_bytes());
    let decoy_bytes = decoy_header.to_bytes();
    let decoy = &decoy_bytes[PREAMBLE..PREAMBLE + XWING_STANZA];
    assert_eq!(decoy[..2], KEM_XWING_BATCH.to_be_bytes());

    // Alice's stanza, then the padding stanza: shrink it by the decoy's size.
    let head = &file[..hl];
    let pad_at = PREAMBLE + XWING_STANZA;
    assert_eq!(head[pad_at..pad_at + 18], [0; 18]);
    let pad_body = usize::from(u16::from_be_bytes([head[pad_at + 18], head[pad_at + 19]]));
    let new_body = pad_body - XWING_STANZA;
    let mut new = head[..PREAMBLE - 2].to_vec();
    new.extend_from_slice(&3u16.to_be_bytes());
    new.extend_from_slice(decoy);
    new.extend_from_slice(&head[PREAMBLE..pad_at]);
    new.extend_from_slice(&[0; 18]);
    new.extend_from_slice(&(new_body as u16).to_be_bytes());
    new.resize(new.len() + new_body, 0);
    new.extend_from_slice(&head[pad_at + 20 + pad_body..hl - 32]);
    let mac_key = key.dangerous_subkey(header.file_id(), b"kluis/v1/header-mac");
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &mac_key[..]),
        &new,
    );
    new.extend_from_slice(mac.as_ref());
    assert_eq!(new.len(), hl);
    file[..hl].copy_from_slice(&new);

    let parsed = Header::read(&file[..]).unwrap();
    assert_eq!(parsed.stanzas()[0].kem, KEM_XWING_BATCH);
    std::fs::write(dir.join("decoy-stanza-first.kluis"), &file).unwrap();
    let digest: String = ring::digest::digest(&ring::digest::SHA256, plain)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(
        dir.join("decoy-stanza-first.expect"),
        format!(
            "identity: alice\nexpect: ok\nlength: {}\nsha256: {digest}\nname: lokaas.txt\n",
            plain.len()
        ),
    )
    .unwrap();
}
