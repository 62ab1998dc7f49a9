//! Round trips, identities, recipients and header-only re-sharing.

use std::io::Read;

use kluis_format::{
    Decryptor, EncryptOptions, Error, Header, IDENTITY_FILE_LEN, Identity, KdfParams, KemChoice,
    Metadata, Recipient, open_identity, rewrite_header, seal_identity,
};
use proptest::prelude::*;

use crate::util::{identities, open, pattern, recipients, rng, seal, seal_chunks};

/// A reader that yields at most `.1` bytes per read.
struct Pieces<'a>(&'a [u8], usize);

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.len().min(self.1).min(buf.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

const SIZES: [usize; 6] = [0, 1, 16383, 16384, 16385, 3 * 1024 * 1024 + 7];

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Every size at a chunk edge, 1 or 5 recipients, either KEM, written and
    /// read in random-sized pieces: every recipient gets the exact bytes.
    #[test]
    fn roundtrip_sizes(
        size_idx in 0..SIZES.len(),
        five in any::<bool>(),
        classical in any::<bool>(),
        write_piece in 1usize..70_000,
        read_piece in 1usize..70_000,
        seed in any::<u64>(),
    ) {
        let size = SIZES[size_idx];
        let n = if five { 5 } else { 1 };
        let ids = identities(n, seed);
        let plain = pattern(size, seed as u8);
        let opts = EncryptOptions { kem: if classical { KemChoice::X25519 } else { KemChoice::XWing }, ..Default::default() };
        // The plaintext reaches the payload writer in write_piece pieces.
        let mut file = Vec::new();
        kluis_format::encrypt(Pieces(&plain, write_piece), &mut file, &recipients(&ids), &Metadata::default(), opts, &mut rng(seed)).unwrap();
        for id in &ids {
            let mut d = Decryptor::new(&file[..], id).unwrap();
            let mut out = Vec::new();
            let mut buf = vec![0u8; read_piece];
            loop {
                let k = d.read(&mut buf).unwrap();
                if k == 0 { break; }
                out.extend_from_slice(&buf[..k]);
            }
            prop_assert!(out == plain);
        }
    }
}

#[test]
fn metadata_is_recovered() {
    let ids = identities(1, 1);
    let meta = Metadata {
        name: Some("dossier-sociaal.docx".into()),
        size: Some(3),
        mtime: Some((1_790_000_000, 123)),
        label: Some("social".into()),
    };
    let mut file = Vec::new();
    kluis_format::encrypt(
        &b"abc"[..],
        &mut file,
        &recipients(&ids),
        &meta,
        EncryptOptions::default(),
        &mut rng(2),
    )
    .unwrap();
    let d = Decryptor::new(&file[..], &ids[0]).unwrap();
    assert_eq!(d.metadata(), &meta);
    // The name is nowhere in the ciphertext.
    assert!(!file.windows(8).any(|w| w == b"dossier-"));
}

#[test]
fn every_file_gets_fresh_keys() {
    let ids = identities(1, 3);
    let a = seal(b"same", &recipients(&ids), EncryptOptions::default(), 10);
    let b = seal(b"same", &recipients(&ids), EncryptOptions::default(), 11);
    let ha = Header::read(&a[..]).unwrap();
    let hb = Header::read(&b[..]).unwrap();
    assert_ne!(ha.file_id(), hb.file_id());
    assert_ne!(
        ha.payload_key(&ha.unwrap_file_key(&ids[0]).unwrap())[..],
        hb.payload_key(&hb.unwrap_file_key(&ids[0]).unwrap())[..]
    );
}

#[test]
fn wrong_identity_is_no_matching_recipient() {
    let ids = identities(2, 4);
    let file = seal(
        b"secret",
        &recipients(&ids[..1]),
        EncryptOptions::default(),
        5,
    );
    let err = open(&file, &ids[1]).unwrap_err();
    assert!(matches!(err, Error::NoMatchingRecipient), "{err:?}");
    assert_eq!(
        err.to_string(),
        "no matching recipient: this file was not encrypted to your key"
    );
}

#[test]
fn identity_file_password_and_downgrade() {
    let id = &identities(1, 6)[0];
    let file = seal_identity(id, b"correct horse", KdfParams::DEFAULT, &mut rng(7)).unwrap();
    assert_eq!(file.len(), IDENTITY_FILE_LEN);
    let back = open_identity(&file, b"correct horse").unwrap();
    assert!(back.ct_eq(id));
    assert_eq!(back.recipient(), id.recipient());

    let err = open_identity(&file, b"wrong horse").unwrap_err();
    assert!(matches!(err, Error::WrongPassword));
    assert_eq!(err.to_string(), "wrong password");

    // Weak parameters are refused both when writing and when reading a
    // downgraded file (memory halved, then passes reduced).
    let weak = KdfParams {
        m_cost_kib: 32 * 1024,
        ..KdfParams::DEFAULT
    };
    assert!(matches!(
        seal_identity(id, b"pw", weak, &mut rng(8)),
        Err(Error::WeakKdf(_))
    ));
    let mut downgraded = file.clone();
    downgraded[10..14].copy_from_slice(&(32u32 * 1024).to_be_bytes());
    assert!(matches!(
        open_identity(&downgraded, b"correct horse"),
        Err(Error::WeakKdf(_))
    ));
    let mut downgraded = file.clone();
    downgraded[14..18].copy_from_slice(&2u32.to_be_bytes());
    assert!(matches!(
        open_identity(&downgraded, b"correct horse"),
        Err(Error::WeakKdf(_))
    ));
    // Above the maximum (FORMAT.md §3): refused before any work (a 4 GiB
    // Argon2id run would not finish in a test), by name, also when only the
    // parameters are read.
    for (at, value, why) in [
        (10, 4 * 1024 * 1024 + 1, "memory above 4 GiB"),
        (10, u32::MAX, "memory above 4 GiB"),
        (14, 65, "more than 64 passes"),
        (18, 17, "more than 16 lanes"),
    ] {
        let mut costly = file.clone();
        costly[at..at + 4].copy_from_slice(&value.to_be_bytes());
        for err in [
            open_identity(&costly, b"correct horse").unwrap_err(),
            kluis_format::identity_params(&costly).unwrap_err(),
        ] {
            assert_eq!(
                err.to_string(),
                format!(
                    "identity file asks for too costly key-derivation parameters ({why}); refusing it"
                )
            );
        }
    }
    assert!(matches!(
        kluis_format::identity_params(&downgraded),
        Err(Error::WeakKdf(_))
    ));
    // Raising the parameters is not a downgrade, but the AAD binds them, so
    // an edited file fails to open (as a wrong password would).
    let mut edited = file.clone();
    edited[14..18].copy_from_slice(&4u32.to_be_bytes());
    assert!(matches!(
        open_identity(&edited, b"correct horse"),
        Err(Error::WrongPassword)
    ));
    // Truncated, extended, other version.
    assert!(matches!(
        open_identity(&file[..100], b"x"),
        Err(Error::InvalidIdentity(_))
    ));
    let mut longer = file.clone();
    longer.push(0);
    assert!(matches!(
        open_identity(&longer, b"x"),
        Err(Error::InvalidIdentity(_))
    ));
    let mut v2 = file;
    v2[8] = 2;
    assert!(matches!(
        open_identity(&v2, b"x"),
        Err(Error::UnsupportedVersion(2))
    ));
}

#[test]
fn recipient_strings() {
    let id = &identities(1, 9)[0];
    let s = id.recipient().to_string();
    assert!(s.starts_with("kluis1"));
    assert!(!s.contains(char::is_whitespace));
    let back: Recipient = s.parse().unwrap();
    assert_eq!(&back, id.recipient());
    assert_eq!(back.fingerprint(), id.recipient().fingerprint());
    let fp = id.recipient().fingerprint().to_string();
    assert_eq!(fp.len(), 8 * 4 + 7, "{fp}");
    // One changed character breaks the checksum; truncation is caught first.
    let mut typo = s.clone().into_bytes();
    let i = typo.len() / 2;
    typo[i] = if typo[i] == b'A' { b'B' } else { b'A' };
    let typo = String::from_utf8(typo).unwrap();
    assert!(matches!(
        typo.parse::<Recipient>(),
        Err(Error::InvalidRecipient(_))
    ));
    assert!(matches!(
        s[..s.len() - 1].parse::<Recipient>(),
        Err(Error::InvalidRecipient(_))
    ));
    assert!(matches!(
        "age1qqq".parse::<Recipient>(),
        Err(Error::InvalidRecipient(_))
    ));
    // Secret bytes round trip.
    let again = Identity::from_secret_bytes(&id.to_secret_bytes()[..]).unwrap();
    assert!(again.ct_eq(id));
}

#[test]
fn reshare_rewrites_only_the_header() {
    let ids = identities(3, 12);
    let plain = pattern(100_000, 3);
    let file = seal(
        &plain,
        &recipients(&ids[..1]),
        EncryptOptions::default(),
        13,
    );
    let old_header_len = Header::read(&file[..]).unwrap().to_bytes().len();

    // Add Bob (X-Wing) and Carol (X25519) without touching the payload.
    let mut shared = Vec::new();
    rewrite_header(&file[..], &mut shared, &ids[0], |h, k| {
        h.add_recipient(k, ids[1].recipient(), KemChoice::XWing, &mut rng(14))?;
        h.add_recipient(k, ids[2].recipient(), KemChoice::X25519, &mut rng(15))
    })
    .unwrap();
    let new_header_len = Header::read(&shared[..]).unwrap().to_bytes().len();
    assert_eq!(
        &file[old_header_len..],
        &shared[new_header_len..],
        "payload bytes changed"
    );
    for id in &ids {
        assert_eq!(open(&shared, id).unwrap(), plain);
    }

    // Remove Bob: he can no longer open this version; the payload is still
    // identical.
    let mut removed = Vec::new();
    let n = rewrite_header(&shared[..], &mut removed, &ids[2], |h, k| {
        h.remove_recipient(k, &ids[1].recipient().fingerprint().key_id())
    })
    .unwrap();
    assert_eq!(n, 1);
    let len = Header::read(&removed[..]).unwrap().to_bytes().len();
    assert_eq!(&removed[len..], &file[old_header_len..]);
    assert!(matches!(
        open(&removed, &ids[1]),
        Err(Error::NoMatchingRecipient)
    ));
    assert_eq!(open(&removed, &ids[0]).unwrap(), plain);

    // A stranger cannot rewrite the header at all.
    let stranger = &identities(1, 99)[0];
    assert!(matches!(
        rewrite_header(&file[..], Vec::new(), stranger, |_, _| Ok(())),
        Err(Error::NoMatchingRecipient)
    ));
    // The last recipient cannot be removed.
    let res = rewrite_header(&file[..], Vec::new(), &ids[0], |h, k| {
        h.remove_recipient(k, &ids[0].recipient().fingerprint().key_id())
    });
    assert!(matches!(res, Err(Error::NoRecipients)));
}

#[test]
fn declared_size_is_enforced() {
    let ids = identities(1, 20);
    let meta = Metadata {
        size: Some(10),
        ..Default::default()
    };
    // The encryptor refuses to record a wrong size...
    let err = kluis_format::encrypt(
        &b"abc"[..],
        Vec::new(),
        &recipients(&ids),
        &meta,
        EncryptOptions::default(),
        &mut rng(21),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        Error::SizeMismatch {
            recorded: 10,
            actual: 3
        }
    ));
    // ...and a hand-made file that lies about it is caught by the decryptor.
    let (header, key) =
        Header::new(&recipients(&ids), KemChoice::X25519, &meta, &mut rng(22)).unwrap();
    let file = seal_chunks(&header, &key, b"abc", 23);
    assert!(matches!(
        open(&file, &ids[0]),
        Err(Error::SizeMismatch {
            recorded: 10,
            actual: 3
        })
    ));
}

#[test]
fn five_recipients_x25519_header_is_small() {
    let ids = identities(5, 30);
    let file = seal(
        b"x",
        &recipients(&ids),
        EncryptOptions {
            kem: KemChoice::X25519,
            ..Default::default()
        },
        31,
    );
    let h = Header::read(&file[..]).unwrap();
    assert_eq!(h.stanzas().len(), 5);
    // Preamble 30, five 100-byte stanzas, metadata nonce+length 16, one
    // padded metadata block 256+16, MAC 32: 850 bytes, padded to the next
    // 256-byte step (X25519-only headers, FORMAT.md §4.7).
    assert_eq!(h.to_bytes().len(), 1024);
    assert_eq!(h.padding_len(), 1024 - (30 + 5 * 100 + 16 + 272 + 32));
    for id in &ids {
        assert_eq!(open(&file, id).unwrap(), b"x");
    }
}
