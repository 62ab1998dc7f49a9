//! Adds the frozen vector `padded-shared-in-place`: a file written with the
//! padding stanza (FORMAT.md §4.7) to Alice, then shared with Bob in place
//! (his stanza took bytes from the padding; same header length). It uses the
//! frozen identities already in the folder, so no existing vector changes.
//!
//! Usage: cargo run -p kluis-format --example make_padded_vector -- tests/vectors/frozen
#![allow(clippy::unwrap_used, reason = "one-off generator")]

use std::path::Path;

use kluis_format::{EncryptOptions, Header, KemChoice, Metadata, encrypt, open_identity};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: make_padded_vector DIR");
    let dir = Path::new(&dir);
    let open = |who: &str| {
        open_identity(
            &std::fs::read(dir.join(format!("{who}.key"))).unwrap(),
            &std::fs::read(dir.join(format!("{who}.passphrase"))).unwrap(),
        )
        .unwrap()
    };
    let (alice, bob) = (open("alice"), open("bob"));
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let plain = b"Gedeeld zonder de inhoud opnieuw te versleutelen.\n";
    let meta = Metadata {
        name: Some("gedeeld.txt".into()),
        size: Some(plain.len() as u64),
        mtime: Some((1_796_000_000, 7)),
        label: Some("internal".into()),
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
    let mut h = Header::read(&file[..]).unwrap();
    let len = h.byte_len();
    let k = h.unwrap_file_key(&alice).unwrap();
    h.add_recipient(&k, bob.recipient(), KemChoice::XWing, &mut rng)
        .unwrap();
    assert!(h.fit_to(&k, len).unwrap());
    file[..len].copy_from_slice(&h.to_bytes());
    std::fs::write(dir.join("padded-shared-in-place.kluis"), &file).unwrap();
    let digest: String = ring::digest::digest(&ring::digest::SHA256, plain)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(
        dir.join("padded-shared-in-place.expect"),
        format!(
            "identity: bob\nexpect: ok\nlength: {}\nsha256: {digest}\nname: gedeeld.txt\nlabel: internal\n",
            plain.len()
        ),
    )
    .unwrap();
}
