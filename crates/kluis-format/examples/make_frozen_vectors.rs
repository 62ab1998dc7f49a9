//! Writes the frozen compatibility vectors under `tests/vectors/frozen/`.
//!
//! Run once per format version; the output is committed and must never be
//! regenerated for an existing version: every later Kluis has to keep
//! decrypting exactly these bytes. Usage:
//! `cargo run -p kluis-format --example make_frozen_vectors -- tests/vectors/frozen`
#![allow(
    clippy::unwrap_used,
    reason = "a one-shot generator; a panic is the right failure"
)]

use std::fmt::Write as _;
use std::path::Path;

use kluis_format::{
    EncryptOptions, Identity, KdfParams, KemChoice, Metadata, encrypt, seal_identity,
};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: make_frozen_vectors DIR");
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    let mut people = Vec::new();
    for (name, pass) in [
        ("alice", "correct horse battery staple"),
        ("bob", "Tr0ub4dor&3 is not a passphrase"),
    ] {
        let id = Identity::generate(&mut rng);
        std::fs::write(
            dir.join(format!("{name}.key")),
            seal_identity(&id, pass.as_bytes(), KdfParams::DEFAULT, &mut rng).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join(format!("{name}.passphrase")), pass).unwrap();
        std::fs::write(
            dir.join(format!("{name}.recipient")),
            format!("{}\n", id.recipient()),
        )
        .unwrap();
        people.push(id);
    }
    let (alice, bob) = (&people[0], &people[1]);
    let pattern: Vec<u8> = (0..50_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    struct Case<'a> {
        name: &'a str,
        plain: Vec<u8>,
        to: Vec<(&'a Identity, KemChoice)>,
        meta: Metadata,
        reader: &'a str,
        expect: &'a str,
    }
    let cases = vec![
        Case {
            name: "empty",
            plain: vec![],
            to: vec![(alice, KemChoice::XWing)],
            meta: Metadata::default(),
            reader: "alice",
            expect: "ok",
        },
        Case {
            name: "small-two-recipients",
            plain: b"Hallo Kluis! Vertrouwelijk.\n".to_vec(),
            to: vec![(alice, KemChoice::XWing), (bob, KemChoice::XWing)],
            meta: Metadata {
                name: Some("notitie.txt".into()),
                size: Some(28),
                mtime: Some((1_795_000_000, 42)),
                label: None,
            },
            reader: "bob",
            expect: "ok",
        },
        Case {
            name: "multichunk-x25519",
            plain: pattern.clone(),
            to: vec![(alice, KemChoice::X25519)],
            meta: Metadata {
                name: Some("data.bin".into()),
                size: Some(50_000),
                mtime: None,
                label: Some("medical".into()),
            },
            reader: "alice",
            expect: "ok",
        },
        Case {
            name: "mixed-kems",
            plain: pattern[..16384].to_vec(),
            to: vec![(alice, KemChoice::XWing), (bob, KemChoice::X25519)],
            meta: Metadata::default(),
            reader: "bob",
            expect: "ok",
        },
        Case {
            name: "not-for-bob",
            plain: b"alice only".to_vec(),
            to: vec![(alice, KemChoice::XWing)],
            meta: Metadata::default(),
            reader: "bob",
            expect: "no-matching-recipient",
        },
    ];
    for c in cases {
        let mut header_recipients = Vec::new();
        let mut kems = Vec::new();
        for (id, kem) in &c.to {
            header_recipients.push(id.recipient().clone());
            kems.push(*kem);
        }
        // One KEM per file through `encrypt`, then add the rest header-only.
        let mut file = Vec::new();
        encrypt(
            &c.plain[..],
            &mut file,
            &header_recipients[..1],
            &c.meta,
            EncryptOptions {
                kem: kems[0],
                ..Default::default()
            },
            &mut rng,
        )
        .unwrap();
        if header_recipients.len() > 1 {
            let mut out = Vec::new();
            kluis_format::rewrite_header(&file[..], &mut out, c.to[0].0, |h, k| {
                for (r, kem) in header_recipients[1..].iter().zip(&kems[1..]) {
                    h.add_recipient(k, r, *kem, &mut rand_core::UnwrapErr(getrandom::SysRng))?;
                }
                Ok(())
            })
            .unwrap();
            file = out;
        }
        std::fs::write(dir.join(format!("{}.kluis", c.name)), &file).unwrap();
        let mut expect = format!("identity: {}\nexpect: {}\n", c.reader, c.expect);
        if c.expect == "ok" {
            let digest = ring_free_sha256(&c.plain);
            writeln!(expect, "length: {}\nsha256: {digest}", c.plain.len()).unwrap();
            if let Some(n) = &c.meta.name {
                writeln!(expect, "name: {n}").unwrap();
            }
            if let Some(l) = &c.meta.label {
                writeln!(expect, "label: {l}").unwrap();
            }
        }
        std::fs::write(dir.join(format!("{}.expect", c.name)), expect).unwrap();
    }
    // A damaged copy: one flipped bit in the last chunk.
    let mut bad = std::fs::read(dir.join("multichunk-x25519.kluis")).unwrap();
    let n = bad.len();
    bad[n - 20] ^= 1;
    std::fs::write(dir.join("damaged-chunk.kluis"), bad).unwrap();
    std::fs::write(
        dir.join("damaged-chunk.expect"),
        "identity: alice\nexpect: payload-chunk\n",
    )
    .unwrap();
}

fn ring_free_sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
