//! Batch stanzas (FORMAT.md §4.8): files encrypted together share one HPKE
//! encapsulation per recipient, and still each open on their own, only in
//! their own header, for exactly their recipients.

use kluis_format::{
    Batch, Error, Header, KEM_X25519, KEM_X25519_BATCH, KEM_XWING, KEM_XWING_BATCH, KemChoice,
    Metadata,
};

use crate::util::{identities, open, pattern, recipients, rng, seal_chunks};

/// A whole file (header, payload) of `batch`.
fn seal_in_batch(batch: &Batch, plain: &[u8], seed: u64) -> Vec<u8> {
    let mut r = rng(seed);
    let meta = Metadata {
        name: Some(format!("file-{seed}.bin")),
        size: Some(plain.len() as u64),
        ..Default::default()
    };
    let (h, key) = Header::new_in_batch(batch, &meta, &mut r).unwrap();
    seal_chunks(&h, &key, plain, seed ^ 0x5eed)
}

#[test]
fn batch_files_open_for_every_recipient_with_both_kems() {
    for (kem, ty, base, block) in [
        (KemChoice::XWing, KEM_XWING_BATCH, KEM_XWING, 4096),
        (KemChoice::X25519, KEM_X25519_BATCH, KEM_X25519, 256),
    ] {
        let ids = identities(3, 70);
        let batch = Batch::new(&recipients(&ids), kem, &mut rng(71)).unwrap();
        let plains = [pattern(0, 1), pattern(1000, 2), pattern(40_000, 3)];
        let files: Vec<Vec<u8>> = plains
            .iter()
            .enumerate()
            .map(|(i, p)| seal_in_batch(&batch, p, 100 + i as u64))
            .collect();
        let headers: Vec<Header> = files
            .iter()
            .map(|f| Header::read(&f[..]).unwrap())
            .collect();
        for (f, p) in files.iter().zip(&plains) {
            for id in &ids {
                assert_eq!(&open(f, id).unwrap(), p, "{kem:?}");
            }
        }
        for h in &headers {
            assert_eq!(
                h.byte_len() % block,
                0,
                "{kem:?}: padded by the writer's rule"
            );
            assert_eq!(h.stanzas().len(), 3);
            assert!(h.stanzas().iter().all(|s| s.kem == ty && s.kem != base));
        }
        // One encapsulation per recipient for the whole batch; fresh file ids
        // and file keys (the wrapped keys differ) for every file.
        let enc_len = headers[0].stanzas()[0].body.len() - 48;
        for r in 0..3 {
            let encs: Vec<&[u8]> = headers
                .iter()
                .map(|h| &h.stanzas()[r].body[..enc_len])
                .collect();
            assert!(encs.iter().all(|e| *e == encs[0]), "{kem:?}");
            let wrapped: Vec<&[u8]> = headers
                .iter()
                .map(|h| &h.stanzas()[r].body[enc_len..])
                .collect();
            assert!(wrapped[0] != wrapped[1] && wrapped[1] != wrapped[2]);
        }
        assert_ne!(headers[0].file_id(), headers[1].file_id());
        assert_ne!(
            headers[0].stanzas()[0].body[..enc_len],
            headers[0].stanzas()[1].body[..enc_len],
            "each recipient has an encapsulation of its own"
        );
        let stranger = identities(1, 72).remove(0);
        assert!(matches!(
            open(&files[1], &stranger),
            Err(Error::NoMatchingRecipient)
        ));
    }
}

#[test]
fn a_batch_stanza_opens_only_in_its_own_file() {
    let ids = identities(2, 73);
    let batch = Batch::new(&recipients(&ids), KemChoice::XWing, &mut rng(74)).unwrap();
    let a = seal_in_batch(&batch, b"first", 1);
    let b = seal_in_batch(&batch, b"second", 2);
    let (ha, hb) = (Header::read(&a[..]).unwrap(), Header::read(&b[..]).unwrap());
    // Same recipient, same batch, same length and place: only the wrapped
    // key differs. It is bound to the other file's id, and wraps the other
    // file's key, which the MAC would refuse anyway.
    let (from, to) = (&ha.stanzas()[1].body, &hb.stanzas()[1].body);
    let at = b.windows(to.len()).position(|w| w == &to[..]).unwrap();
    let mut moved = b.clone();
    moved[at..at + from.len()].copy_from_slice(from);
    assert!(matches!(open(&moved, &ids[1]), Err(Error::HeaderAuth)));
    // The first recipient's stanza was not touched, but the MAC covers
    // every header byte.
    assert!(matches!(open(&moved, &ids[0]), Err(Error::HeaderAuth)));
    assert_eq!(open(&b, &ids[1]).unwrap(), b"second");
}

#[test]
fn every_byte_flip_in_a_batch_stanza_is_rejected() {
    let ids = identities(1, 75);
    for kem in [KemChoice::X25519, KemChoice::XWing] {
        let batch = Batch::new(&recipients(&ids), kem, &mut rng(76)).unwrap();
        let file = seal_in_batch(&batch, b"flip me", 3);
        let h = Header::read(&file[..]).unwrap();
        let body = &h.stanzas()[0].body;
        let at = file
            .windows(body.len())
            .position(|w| w == &body[..])
            .unwrap();
        // The type, key id and length fields before the body too.
        for i in at - 20..at + body.len() {
            let mut bad = file.clone();
            bad[i] ^= 0x01;
            assert!(
                open(&bad, &ids[0]).is_err(),
                "{kem:?}: flip at {i} accepted"
            );
        }
    }
}

#[test]
fn sharing_a_batch_file_adds_direct_stanzas_and_never_duplicates() {
    let ids = identities(3, 77);
    let batch = Batch::new(&recipients(&ids[..2]), KemChoice::XWing, &mut rng(78)).unwrap();
    let file = seal_in_batch(&batch, b"shared later", 4);
    let mut h = Header::read(&file[..]).unwrap();
    let len = h.byte_len();
    let key = h.unwrap_file_key(&ids[0]).unwrap();
    let mut r = rng(79);
    assert!(
        !h.add_recipient(&key, ids[1].recipient(), KemChoice::XWing, &mut r)
            .unwrap(),
        "already has a batch stanza for X-Wing"
    );
    assert!(
        h.add_recipient(&key, ids[2].recipient(), KemChoice::XWing, &mut r)
            .unwrap()
    );
    assert_eq!(h.stanzas()[2].kem, KEM_XWING);
    assert!(h.fit_to(&key, len).unwrap(), "fits in the padding");
    let mut shared = h.to_bytes();
    shared.extend_from_slice(&file[len..]);
    for id in &ids {
        assert_eq!(open(&shared, id).unwrap(), b"shared later");
    }
    let mut h = Header::read(&shared[..]).unwrap();
    assert_eq!(
        h.remove_recipient(&key, &ids[1].recipient().fingerprint().key_id())
            .unwrap(),
        1
    );
    assert!(h.fit_to(&key, len).unwrap());
    let mut removed = h.to_bytes();
    removed.extend_from_slice(&file[len..]);
    assert!(matches!(
        open(&removed, &ids[1]),
        Err(Error::NoMatchingRecipient)
    ));
    assert_eq!(open(&removed, &ids[0]).unwrap(), b"shared later");
}

#[test]
fn a_batch_stanza_of_the_wrong_length_is_malformed() {
    let ids = identities(1, 80);
    let batch = Batch::new(&recipients(&ids), KemChoice::X25519, &mut rng(81)).unwrap();
    let file = seal_in_batch(&batch, b"x", 5);
    // The stanza's length field follows the preamble, type and key id.
    let len_at = 8 + 1 + 1 + 2 + 16 + 2 + 2 + 16;
    assert_eq!(
        &file[len_at - 18..len_at - 16],
        &KEM_X25519_BATCH.to_be_bytes()
    );
    let mut bad = file.clone();
    bad[len_at + 1] = 79;
    assert!(matches!(
        Header::read(&bad[..]),
        Err(Error::Malformed { .. })
    ));
    assert!(Batch::new(&[], KemChoice::XWing, &mut rng(82)).is_err());
}
