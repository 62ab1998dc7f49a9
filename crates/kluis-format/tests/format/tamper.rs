//! Every kind of damage is rejected with the right error, and no input panics.

use kluis_format::PayloadLayout;
use kluis_format::{EncryptOptions, Error, Header, PayloadError, Section};
use proptest::prelude::*;

use crate::util::{identities, open, pattern, recipients, seal};

const CHUNK_SIZE: usize = PayloadLayout::chunk_size();
const ENC_CHUNK: usize = PayloadLayout::sealed_chunk_size();
const PAYLOAD_PREFIX_SIZE: usize = PayloadLayout::prefix_len();

fn header_len(file: &[u8]) -> usize {
    Header::read(file).unwrap().to_bytes().len()
}

#[test]
fn every_single_byte_flip_is_rejected() {
    let ids = identities(1, 40);
    let file = seal(
        b"a short confidential note",
        &recipients(&ids),
        EncryptOptions::default(),
        41,
    );
    assert_eq!(open(&file, &ids[0]).unwrap(), b"a short confidential note");
    for i in 0..file.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = file.clone();
            bad[i] ^= bit;
            assert!(
                open(&bad, &ids[0]).is_err(),
                "flip of bit {bit:#x} at byte {i} of {} was accepted",
                file.len()
            );
        }
    }
}

#[test]
fn truncation_at_every_chunk_boundary() {
    let ids = identities(1, 42);
    let plain = pattern(5 * CHUNK_SIZE + 1000, 1);
    let file = seal(&plain, &recipients(&ids), EncryptOptions::default(), 43);
    let h = header_len(&file);
    let payload_start = h + PAYLOAD_PREFIX_SIZE;
    // Inside the payload prefix.
    for cut in [h, h + 10, payload_start - 1] {
        let err = open(&file[..cut], &ids[0]).unwrap_err();
        assert!(
            matches!(err, Error::Payload(PayloadError::TruncatedHeader)),
            "cut {cut}: {err:?}"
        );
    }
    // At every chunk boundary: the short final chunk is missing.
    for k in 0..=5 {
        let cut = payload_start + k * ENC_CHUNK;
        let err = open(&file[..cut], &ids[0]).unwrap_err();
        assert!(
            matches!(err, Error::Payload(PayloadError::Truncated)),
            "cut after {k} chunks: {err:?}"
        );
    }
    // Mid-chunk: the partial chunk fails to authenticate as a final chunk.
    let cut = payload_start + 2 * ENC_CHUNK + 500;
    assert!(matches!(
        open(&file[..cut], &ids[0]).unwrap_err(),
        Error::Payload(PayloadError::Chunk(2))
    ));
    // Inside the header.
    for cut in [0, 5, 20, h / 2, h - 1] {
        let err = open(&file[..cut], &ids[0]).unwrap_err();
        assert!(
            matches!(err, Error::NotKluis | Error::Malformed { .. }),
            "cut {cut}: {err:?}"
        );
    }
    // Appended data after the final chunk.
    let mut longer = file.clone();
    longer.extend_from_slice(&[0u8; 40]);
    assert!(matches!(
        open(&longer, &ids[0]).unwrap_err(),
        Error::Payload(PayloadError::Chunk(_))
    ));
}

#[test]
fn chunk_swaps_and_duplicates_are_rejected() {
    let ids = identities(1, 44);
    let plain = pattern(3 * CHUNK_SIZE + 10, 2);
    let file = seal(&plain, &recipients(&ids), EncryptOptions::default(), 45);
    let start = header_len(&file) + PAYLOAD_PREFIX_SIZE;
    let chunk = |i: usize| start + i * ENC_CHUNK..start + (i + 1) * ENC_CHUNK;
    let mut swapped = file.clone();
    let (c0, c1) = (file[chunk(0)].to_vec(), file[chunk(1)].to_vec());
    swapped[chunk(0)].copy_from_slice(&c1);
    swapped[chunk(1)].copy_from_slice(&c0);
    assert!(matches!(
        open(&swapped, &ids[0]).unwrap_err(),
        Error::Payload(PayloadError::Chunk(0))
    ));
    let mut dup = file.clone();
    dup[chunk(2)].copy_from_slice(&c1);
    assert!(matches!(
        open(&dup, &ids[0]).unwrap_err(),
        Error::Payload(PayloadError::Chunk(2))
    ));
}

#[test]
fn header_moved_onto_another_payload() {
    let ids = identities(1, 46);
    let a = seal(
        &pattern(40_000, 3),
        &recipients(&ids),
        EncryptOptions::default(),
        47,
    );
    let b = seal(
        &pattern(40_000, 4),
        &recipients(&ids),
        EncryptOptions::default(),
        48,
    );
    let (ha, hb) = (header_len(&a), header_len(&b));
    let mut franken = a[..ha].to_vec();
    franken.extend_from_slice(&b[hb..]);
    let err = open(&franken, &ids[0]).unwrap_err();
    assert!(
        matches!(err, Error::Payload(PayloadError::Commitment)),
        "{err:?}"
    );
}

#[test]
fn stanza_from_another_file_is_rejected() {
    // A stanza copied from file B into file A's header wraps B's key, so A's
    // MAC check fails; it is never "no matching recipient" silently.
    let ids = identities(2, 50);
    let a = seal(
        b"aaa",
        &recipients(&ids[..1]),
        EncryptOptions::default(),
        51,
    );
    let b = seal(
        b"bbb",
        &recipients(&ids[1..]),
        EncryptOptions::default(),
        52,
    );
    let hb = Header::read(&b[..]).unwrap();
    let stanza_b = &hb.stanzas()[0];
    // Build A's header bytes with B's stanza appended.
    let ha = Header::read(&a[..]).unwrap();
    let mut bytes = ha.to_bytes();
    let count_at = 8 + 1 + 1 + 2 + 16;
    bytes[count_at + 1] += 1;
    let mut s = Vec::new();
    s.extend_from_slice(&stanza_b.kem.to_be_bytes());
    s.extend_from_slice(&stanza_b.key_id.0);
    s.extend_from_slice(&(stanza_b.body.len() as u16).to_be_bytes());
    s.extend_from_slice(&stanza_b.body);
    let first_stanza_len = 2 + 16 + 2 + ha.stanzas()[0].body.len();
    let insert_at = count_at + 2 + first_stanza_len;
    bytes.splice(insert_at..insert_at, s);
    bytes.extend_from_slice(&a[ha.to_bytes().len()..]);
    assert!(matches!(
        open(&bytes, &ids[1]).unwrap_err(),
        Error::HeaderAuth
    ));
    assert!(matches!(
        open(&bytes, &ids[0]).unwrap_err(),
        Error::HeaderAuth
    ));
}

#[test]
fn unknown_versions_and_suites_are_typed() {
    let ids = identities(1, 53);
    let file = seal(b"x", &recipients(&ids), EncryptOptions::default(), 54);
    let mut v = file.clone();
    v[8] = 2;
    assert!(matches!(
        open(&v, &ids[0]).unwrap_err(),
        Error::UnsupportedVersion(2)
    ));
    let mut s = file.clone();
    s[9] = 7;
    assert!(matches!(
        open(&s, &ids[0]).unwrap_err(),
        Error::UnsupportedSuite(7)
    ));
    let mut f = file.clone();
    f[11] = 1;
    assert!(matches!(
        open(&f, &ids[0]).unwrap_err(),
        Error::Malformed {
            section: Section::Preamble,
            ..
        }
    ));
    assert!(matches!(
        open(b"age-encryption.org/v1\n", &ids[0]).unwrap_err(),
        Error::NotKluis
    ));
    assert!(matches!(open(b"", &ids[0]).unwrap_err(), Error::NotKluis));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes (and arbitrary bytes behind a valid magic) never panic
    /// the parser; whatever parses re-encodes to exactly the bytes read.
    #[test]
    fn header_parser_total(mut data in proptest::collection::vec(any::<u8>(), 0..4096), magic in any::<bool>()) {
        if magic && data.len() > 12 {
            data[..8].copy_from_slice(&kluis_format_magic());
            data[8] = 1;
            data[9] = 1;
        }
        if let Ok(h) = Header::read(&data[..]) {
            let enc = h.to_bytes();
            prop_assert_eq!(&data[..enc.len()], &enc[..]);
        }
    }
}

fn kluis_format_magic() -> [u8; 8] {
    [0x89, b'K', b'L', b'U', b'I', b'S', 0x0D, 0x0A]
}

#[test]
fn parse_write_roundtrip_of_real_headers() {
    let ids = identities(4, 55);
    for (i, kem) in [
        kluis_format::KemChoice::XWing,
        kluis_format::KemChoice::X25519,
    ]
    .into_iter()
    .enumerate()
    {
        let file = seal(
            b"hello",
            &recipients(&ids),
            EncryptOptions {
                kem,
                ..Default::default()
            },
            56 + i as u64,
        );
        let h = Header::read(&file[..]).unwrap();
        let bytes = h.to_bytes();
        assert_eq!(&file[..bytes.len()], &bytes[..]);
        assert_eq!(Header::read(&bytes[..]).unwrap(), h);
    }
}
