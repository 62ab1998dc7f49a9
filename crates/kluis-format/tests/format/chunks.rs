//! The chunk-level API (`Encryptor`, `ChunkSealer`, `ChunkOpener`,
//! `PayloadLayout`, `peek_file_id`, opening with any of several
//! identities): it writes the same bytes as `encrypt`, and refuses what the
//! streaming path refuses.

use std::io::Read;

use kluis_format::{
    Backend, ChunkOpener, ChunkSealer, Decryptor, EncryptOptions, Encryptor, Error,
    FILE_ID_PEEK_LEN, Header, KemChoice, Metadata, PayloadError, PayloadLayout, Section, encrypt,
    peek_file_id,
};

use crate::util::{identities, open, pattern, recipients, rng, seal};

const CHUNK: usize = PayloadLayout::chunk_size();
const SIZES: [usize; 8] = [
    0,
    1,
    CHUNK - 1,
    CHUNK,
    CHUNK + 1,
    3 * CHUNK,
    64 * CHUNK + 5,
    65 * CHUNK,
];

fn meta(len: usize) -> Metadata {
    Metadata {
        name: Some("x.bin".into()),
        size: Some(len as u64),
        ..Default::default()
    }
}

/// What `encrypt` writes for `plain` with `rng(seed)`.
fn reference(plain: &[u8], ids: &[kluis_format::Identity], kem: KemChoice, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let opts = EncryptOptions {
        kem,
        ..Default::default()
    };
    encrypt(
        plain,
        &mut out,
        &recipients(ids),
        &meta(plain.len()),
        opts,
        &mut rng(seed),
    )
    .unwrap();
    out
}

#[test]
fn sealing_into_a_caller_buffer_equals_encrypt_for_the_same_rng() {
    let ids = identities(2, 100);
    for (i, &len) in SIZES.iter().enumerate() {
        let plain = pattern(len, i as u8);
        let seed = 200 + i as u64;
        let mut r = rng(seed);
        let (h, key) =
            Header::new(&recipients(&ids), KemChoice::X25519, &meta(len), &mut r).unwrap();
        let mut out = h.to_bytes();
        let mut enc = Encryptor::new(&h, &key, &mut r, Backend::Ring).unwrap();
        out.extend_from_slice(enc.prefix());
        let mut slot = vec![0u8; PayloadLayout::sealed_chunk_size()];
        let mut rest = &plain[..];
        while !enc.is_finished() {
            let n = rest.len().min(CHUNK);
            slot[..n].copy_from_slice(&rest[..n]);
            let m = enc.seal_next(&mut slot, n).unwrap();
            out.extend_from_slice(&slot[..m]);
            rest = &rest[n..];
        }
        assert!(
            out == reference(&plain, &ids, KemChoice::X25519, seed),
            "len {len}"
        );
        assert!(matches!(enc.seal_next(&mut slot, 0), Err(Error::Usage(_))));
    }
}

#[test]
fn encryptor_refuses_an_oversized_chunk_or_slot() {
    let ids = identities(1, 101);
    let mut r = rng(1);
    let (h, key) = Header::new(&recipients(&ids), KemChoice::X25519, &meta(0), &mut r).unwrap();
    let mut enc = Encryptor::new(&h, &key, &mut r, Backend::Ring).unwrap();
    let mut slot = vec![0u8; PayloadLayout::sealed_chunk_size() + 1];
    assert!(matches!(
        enc.seal_next(&mut slot, CHUNK + 1),
        Err(Error::Usage(_))
    ));
    assert!(matches!(
        enc.seal_next(&mut slot[..CHUNK], CHUNK),
        Err(Error::Usage(_))
    ));
    assert!(!enc.is_finished());
}

#[test]
fn positional_sealing_in_any_order_equals_encrypt() {
    let ids = identities(1, 102);
    for (i, &len) in SIZES.iter().enumerate() {
        let plain = pattern(len, i as u8);
        let seed = 300 + i as u64;
        let mut r = rng(seed);
        let (h, key) =
            Header::new(&recipients(&ids), KemChoice::XWing, &meta(len), &mut r).unwrap();
        let sealer = ChunkSealer::new(&h, &key, len as u64, &mut r, Backend::Ring).unwrap();
        let layout = *sealer.layout();
        assert_eq!(layout.plaintext_len(), len as u64);
        let head = h.to_bytes();
        let mut out = vec![0u8; head.len() + layout.payload_len() as usize];
        out[..head.len()].copy_from_slice(&head);
        out[head.len()..head.len() + PayloadLayout::prefix_len()].copy_from_slice(sealer.prefix());
        let mut slot = vec![0u8; PayloadLayout::sealed_chunk_size()];
        for idx in (0..layout.chunks()).rev() {
            let p = layout.plaintext_range(idx);
            let p = p.start as usize..p.end as usize;
            slot[..p.len()].copy_from_slice(&plain[p]);
            let n = sealer.seal_chunk(idx, &mut slot).unwrap();
            let s = layout.sealed_range(idx);
            assert_eq!(n as u64, s.end - s.start);
            let at = head.len() + s.start as usize;
            out[at..at + n].copy_from_slice(&slot[..n]);
        }
        assert!(
            out == reference(&plain, &ids, KemChoice::XWing, seed),
            "len {len}"
        );
        assert!(matches!(
            sealer.seal_chunk(layout.chunks(), &mut slot),
            Err(Error::Usage(_))
        ));
    }
}

#[test]
fn layout_round_trips_and_rejects_impossible_lengths() {
    for &len in &SIZES {
        let l = PayloadLayout::for_plaintext(len as u64).unwrap();
        assert_eq!(PayloadLayout::for_payload(l.payload_len()).unwrap(), l);
        let last = l.sealed_range(l.chunks() - 1);
        assert_eq!(last.end, l.payload_len());
        assert_eq!(l.plaintext_range(l.chunks() - 1).end, len as u64);
    }
    // Cut right after a full chunk: the short final chunk is missing.
    let full = PayloadLayout::for_plaintext(CHUNK as u64).unwrap();
    let cut = full.sealed_range(0).end;
    assert!(matches!(
        PayloadLayout::for_payload(cut),
        Err(Error::Payload(PayloadError::Truncated))
    ));
    assert!(matches!(
        PayloadLayout::for_payload(10),
        Err(Error::Payload(PayloadError::TruncatedHeader))
    ));
}

/// A file of `len` bytes and its header length, key and opener.
fn opened(len: usize, seed: u64) -> (Vec<u8>, usize, ChunkOpener, Vec<u8>) {
    let ids = identities(1, 103);
    let plain = pattern(len, seed as u8);
    let file = seal(&plain, &recipients(&ids), EncryptOptions::default(), seed);
    let h = Header::read(&file[..]).unwrap();
    let hl = h.to_bytes().len();
    let key = h.unwrap_file_key(&ids[0]).unwrap();
    let opener = ChunkOpener::new(
        &h,
        &key,
        (file.len() - hl) as u64,
        &file[hl..],
        Backend::RustCrypto,
    )
    .unwrap();
    (file, hl, opener, plain)
}

#[test]
fn positional_opening_yields_the_plaintext() {
    for (i, &len) in SIZES.iter().enumerate() {
        let (file, hl, opener, plain) = opened(len, 400 + i as u64);
        let layout = *opener.layout();
        let mut back = vec![0u8; len];
        for idx in 0..layout.chunks() {
            let s = layout.sealed_range(idx);
            let mut slot = file[hl + s.start as usize..hl + s.end as usize].to_vec();
            let n = opener.open_chunk(idx, &mut slot).unwrap();
            let p = layout.plaintext_range(idx);
            assert_eq!(n as u64, p.end - p.start);
            back[p.start as usize..p.end as usize].copy_from_slice(&slot[..n]);
        }
        assert!(back == plain, "len {len}");
    }
}

#[test]
fn positional_open_of_a_tampered_chunk_fails_and_wipes_it() {
    let (file, hl, opener, _) = opened(3 * CHUNK + 10, 450);
    let layout = *opener.layout();
    for idx in 0..layout.chunks() {
        let s = layout.sealed_range(idx);
        let mut slot = file[hl + s.start as usize..hl + s.end as usize].to_vec();
        slot[3] ^= 0x40;
        let err = opener.open_chunk(idx, &mut slot).unwrap_err();
        assert!(
            matches!(err, Error::Payload(PayloadError::Chunk(i)) if i == idx),
            "{err:?}"
        );
        assert!(slot.iter().all(|&b| b == 0), "chunk {idx} not wiped");
        // A good chunk at the wrong index fails too (reordering).
        let mut slot = file[hl + s.start as usize..hl + s.end as usize].to_vec();
        let other = (idx + 1) % layout.chunks();
        assert!(opener.open_chunk(other, &mut slot).is_err());
    }
    let mut slot = vec![0u8; PayloadLayout::sealed_chunk_size()];
    assert!(matches!(
        opener.open_chunk(layout.chunks(), &mut slot),
        Err(Error::Usage(_))
    ));
}

#[test]
fn positional_opener_checks_the_commitment_and_the_length() {
    let ids = identities(1, 103);
    let file = seal(
        &pattern(2 * CHUNK, 1),
        &recipients(&ids),
        EncryptOptions::default(),
        460,
    );
    let h = Header::read(&file[..]).unwrap();
    let hl = h.to_bytes().len();
    let key = h.unwrap_file_key(&ids[0]).unwrap();
    let payload = (file.len() - hl) as u64;
    let mut prefix = file[hl..hl + PayloadLayout::prefix_len()].to_vec();
    // The final (empty) chunk cut off: the payload ends after a full chunk.
    let cut = PayloadLayout::for_payload(payload)
        .unwrap()
        .sealed_range(2)
        .start;
    assert!(matches!(
        ChunkOpener::new(&h, &key, cut, &prefix, Backend::Ring),
        Err(Error::Payload(PayloadError::Truncated))
    ));
    assert!(matches!(
        ChunkOpener::new(&h, &key, payload, &prefix[..10], Backend::Ring),
        Err(Error::Payload(PayloadError::TruncatedHeader))
    ));
    prefix[40] ^= 1;
    assert!(matches!(
        ChunkOpener::new(&h, &key, payload, &prefix, Backend::Ring),
        Err(Error::Payload(PayloadError::Commitment))
    ));
}

#[test]
fn peek_file_id_reads_the_id_and_refuses_short_or_foreign_bytes() {
    let ids = identities(1, 104);
    let file = seal(b"hello", &recipients(&ids), EncryptOptions::default(), 500);
    let h = Header::read(&file[..]).unwrap();
    assert_eq!(&peek_file_id(&file).unwrap(), h.file_id());
    assert_eq!(
        &peek_file_id(&file[..FILE_ID_PEEK_LEN]).unwrap(),
        h.file_id()
    );
    // Short: empty is not Kluis at all; a cut Kluis preamble is truncated.
    assert!(matches!(peek_file_id(&[]), Err(Error::NotKluis)));
    for n in [1, 7, 8, 12, FILE_ID_PEEK_LEN - 1] {
        assert!(
            matches!(
                peek_file_id(&file[..n]),
                Err(Error::Malformed {
                    section: Section::Preamble,
                    ..
                })
            ),
            "{n} bytes"
        );
    }
    // Foreign: another magic, or another version.
    let mut foreign = file[..64].to_vec();
    foreign[1] = b'X';
    assert!(matches!(peek_file_id(&foreign), Err(Error::NotKluis)));
    assert!(matches!(
        peek_file_id(b"%PDF-1.7 not a kluis file at all"),
        Err(Error::NotKluis)
    ));
    let mut v2 = file[..64].to_vec();
    v2[8] = 2;
    assert!(matches!(
        peek_file_id(&v2),
        Err(Error::UnsupportedVersion(2))
    ));
}

#[test]
fn opening_with_any_of_several_identities() {
    let ids = identities(3, 105);
    let file = seal(
        b"group file",
        &recipients(&ids[1..2]),
        EncryptOptions::default(),
        600,
    );
    let h = Header::read(&file[..]).unwrap();
    let keys: Vec<_> = ids.iter().collect();
    assert!(h.unwrap_file_key_any(&keys).is_ok());
    let mut d = Decryptor::with_any(&file[..], &keys, Backend::Ring).unwrap();
    let mut out = Vec::new();
    d.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"group file");
    assert_eq!(open(&file, &ids[1]).unwrap(), b"group file");
    let strangers = [&ids[0], &ids[2]];
    assert!(matches!(
        h.unwrap_file_key_any(&strangers),
        Err(Error::NoMatchingRecipient)
    ));
    assert!(matches!(
        Decryptor::with_any(&file[..], &[], Backend::Ring),
        Err(Error::NoMatchingRecipient)
    ));
}
