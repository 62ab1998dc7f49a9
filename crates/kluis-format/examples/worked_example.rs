//! Prints every intermediate value of one small Kluis file, for the worked
//! example in docs/FORMAT.md §10. Deterministic: a fixed-seed RNG.
//! `cargo run -p kluis-format --example worked_example`
#![allow(clippy::unwrap_used, reason = "a documentation generator")]

use kluis_format::{EncryptOptions, Header, Identity, KemChoice, Metadata, encrypt};
use rand_core::SeedableRng;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn main() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2026);
    let id = Identity::generate(&mut rng);
    let secret = id.to_secret_bytes();
    println!(
        "identity secret (X-Wing seed || X25519): {}",
        hex(&secret[..])
    );
    println!(
        "recipient X25519 public key: {}",
        hex(&id.recipient().as_bytes()[1216..])
    );
    println!(
        "fingerprint:                 {}",
        id.recipient().fingerprint()
    );
    let plain = b"Kluis worked example\n";
    let meta = Metadata {
        name: Some("example.txt".into()),
        size: Some(plain.len() as u64),
        mtime: Some((1_800_000_000, 0)),
        label: Some("internal".into()),
    };
    let mut file = Vec::new();
    encrypt(
        &plain[..],
        &mut file,
        &[id.recipient().clone()],
        &meta,
        EncryptOptions {
            kem: KemChoice::X25519,
            ..Default::default()
        },
        &mut rng,
    )
    .unwrap();
    let h = Header::read(&file[..]).unwrap();
    let key = h.unwrap_file_key(&id).unwrap();
    let hl = h.to_bytes().len();
    println!("file id:      {}", hex(h.file_id()));
    println!("file key:     {}", hex(key.dangerous_bytes()));
    println!(
        "payload key:  {}",
        hex(&key.dangerous_subkey(h.file_id(), b"kluis/v1/payload")[..])
    );
    println!(
        "mac key:      {}",
        hex(&key.dangerous_subkey(h.file_id(), b"kluis/v1/header-mac")[..])
    );
    println!(
        "metadata key: {}",
        hex(&key.dangerous_subkey(h.file_id(), b"kluis/v1/metadata")[..])
    );
    println!("payload context: {}", hex(&h.payload_context()));
    let (aead_key, base_nonce) = kluis_format::dangerous_chunk_keys(&h, &key, &file[hl..]).unwrap();
    println!("chunk AEAD key: {}", hex(&aead_key));
    println!("base nonce:     {}", hex(&base_nonce));
    println!("header length {hl}, file length {}", file.len());
    println!("--- file, 32 bytes per line ---");
    for (i, line) in file.chunks(32).enumerate() {
        println!("{:04x}: {}", i * 32, hex(line));
    }
}
