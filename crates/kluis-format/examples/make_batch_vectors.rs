//! Adds the frozen vectors for batch stanzas (FORMAT.md §4.8), made with the
//! frozen identities already in the folder, so no existing vector changes:
//!
//! - `batch-xwing-a` and `batch-xwing-b`: two files of one X-Wing batch to
//!   Alice and Bob (their stanzas share each recipient's `enc`);
//! - `batch-x25519`: a file of an X25519 batch to Alice;
//! - `batch-stanza-moved`: `batch-xwing-b` with Bob's stanza taken from
//!   `batch-xwing-a`, which must not open.
//!
//! Usage: cargo run -p kluis-format --example make_batch_vectors -- tests/vectors/frozen
#![allow(clippy::unwrap_used, reason = "one-off generator")]

use std::path::Path;

use kluis_format::{Backend, Batch, Header, KemChoice, Metadata};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: make_batch_vectors DIR");
    let dir = Path::new(&dir);
    let open = |who: &str| {
        kluis_format::open_identity(
            &std::fs::read(dir.join(format!("{who}.key"))).unwrap(),
            &std::fs::read(dir.join(format!("{who}.passphrase"))).unwrap(),
        )
        .unwrap()
    };
    let (alice, bob) = (open("alice"), open("bob"));
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let both = [alice.recipient().clone(), bob.recipient().clone()];
    let xwing = Batch::new(&both, KemChoice::XWing, &mut rng).unwrap();
    let x25519 = Batch::new(&both[..1], KemChoice::X25519, &mut rng).unwrap();
    let write = |name: &str, batch: &Batch, plain: &[u8], file: &str, who: &str, rng: &mut _| {
        let meta = Metadata {
            name: Some(file.into()),
            size: Some(plain.len() as u64),
            mtime: Some((1_796_040_000, 0)),
            label: None,
        };
        let (h, key) = Header::new_in_batch(batch, &meta, rng).unwrap();
        let mut out = h.to_bytes();
        let mut enc = kluis_format::Encryptor::new(&h, &key, rng, Backend::default()).unwrap();
        out.extend_from_slice(enc.prefix());
        // One short chunk: these plaintexts are far below a chunk.
        let mut slot = vec![0u8; kluis_format::PayloadLayout::sealed_chunk_size()];
        slot[..plain.len()].copy_from_slice(plain);
        let n = enc.seal_next(&mut slot, plain.len()).unwrap();
        assert!(enc.is_finished(), "a batch vector plaintext fits one chunk");
        out.extend_from_slice(&slot[..n]);
        std::fs::write(dir.join(format!("{name}.kluis")), &out).unwrap();
        let digest: String = ring::digest::digest(&ring::digest::SHA256, plain)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(
            dir.join(format!("{name}.expect")),
            format!(
                "identity: {who}\nexpect: ok\nlength: {}\nsha256: {digest}\nname: {file}\n",
                plain.len()
            ),
        )
        .unwrap();
        out
    };
    let a = write(
        "batch-xwing-a",
        &xwing,
        b"Eerste bestand van de reeks.\n",
        "a.txt",
        "bob",
        &mut rng,
    );
    let b = write(
        "batch-xwing-b",
        &xwing,
        b"Tweede bestand van de reeks.\n",
        "b.txt",
        "alice",
        &mut rng,
    );
    write(
        "batch-x25519",
        &x25519,
        b"Klein en snel.\n",
        "c.txt",
        "alice",
        &mut rng,
    );
    // Bob's stanza is the second one in both headers, at the same offset and
    // of the same length: swap it from `a` into `b`.
    let (ha, hb) = (Header::read(&a[..]).unwrap(), Header::read(&b[..]).unwrap());
    let bob_a = &ha.stanzas()[1];
    let bob_b = &hb.stanzas()[1];
    let start = b
        .windows(bob_b.body.len())
        .position(|w| w == &bob_b.body[..])
        .unwrap();
    let mut moved = b.clone();
    moved[start..start + bob_a.body.len()].copy_from_slice(&bob_a.body);
    std::fs::write(dir.join("batch-stanza-moved.kluis"), &moved).unwrap();
    std::fs::write(
        dir.join("batch-stanza-moved.expect"),
        "identity: bob\nexpect: header-auth\n",
    )
    .unwrap();
}
