//! The padding stanza (FORMAT.md §4.7): new headers end on a 4 KiB boundary,
//! a recipient change fits in the same bytes, and the parser is strict about
//! the padding while older decoders skip it as an unknown KEM.

use kluis_format::{
    EncryptOptions, Error, HEADER_BLOCK, Header, KEM_PADDING, KemChoice, SMALL_HEADER_BLOCK,
    rewrite_header,
};

use crate::util::{identities, open, pattern, recipients, rng, seal};

/// Offset of stanza `i` in an encoded header.
fn stanza_offset(bytes: &[u8], i: usize) -> usize {
    let mut at = 8 + 1 + 1 + 2 + 16 + 2;
    for _ in 0..i {
        let len = u16::from_be_bytes([bytes[at + 18], bytes[at + 19]]) as usize;
        at += 20 + len;
    }
    at
}

#[test]
fn new_headers_end_on_a_block_boundary_with_room_to_share() {
    for n in 1..=6 {
        let ids = identities(n, 40 + n as u64);
        for kem in [KemChoice::XWing, KemChoice::X25519] {
            let opts = EncryptOptions {
                kem,
                ..EncryptOptions::default()
            };
            let file = seal(b"hello", &recipients(&ids), opts, 41);
            let h = Header::read(&file[..]).unwrap();
            let block = match kem {
                KemChoice::XWing => HEADER_BLOCK,
                KemChoice::X25519 => SMALL_HEADER_BLOCK,
            };
            assert_eq!(h.byte_len() % block, 0, "{n} recipients, {kem:?}");
            assert!(h.padding_len() >= 21, "{n} recipients, {kem:?}");
            assert_eq!(h.stanzas().len(), n, "the padding is not a recipient");
            assert_eq!(h.to_bytes(), file[..h.byte_len()], "canonical");
            assert_eq!(open(&file, &ids[n - 1]).unwrap(), b"hello");
        }
    }
}

#[test]
fn adding_and_removing_a_recipient_fits_in_the_same_bytes() {
    let ids = identities(3, 50);
    let plain = pattern(50_000, 9);
    let file = seal(
        &plain,
        &recipients(&ids[..1]),
        EncryptOptions::default(),
        51,
    );
    let old = Header::read(&file[..]).unwrap();
    let len = old.byte_len();

    let mut shared = Vec::new();
    let fitted = rewrite_header(&file[..], &mut shared, &ids[0], |h, k| {
        h.add_recipient(k, ids[1].recipient(), KemChoice::XWing, &mut rng(52))?;
        h.add_recipient(k, ids[2].recipient(), KemChoice::X25519, &mut rng(53))?;
        h.fit_to(k, len)
    })
    .unwrap();
    assert!(
        fitted,
        "one X-Wing and one X25519 stanza fit a fresh header's padding"
    );
    assert_eq!(shared.len(), file.len(), "same length");
    assert_eq!(shared[len..], file[len..], "payload untouched");
    for id in &ids {
        assert_eq!(open(&shared, id).unwrap(), plain);
    }

    // Removing gives the bytes back to the padding.
    let mut removed = Vec::new();
    let fitted = rewrite_header(&shared[..], &mut removed, &ids[0], |h, k| {
        h.remove_recipient(k, &ids[1].recipient().fingerprint().key_id())?;
        h.fit_to(k, len)
    })
    .unwrap();
    assert!(fitted);
    assert_eq!(removed.len(), file.len());
    assert!(matches!(
        open(&removed, &ids[1]),
        Err(Error::NoMatchingRecipient)
    ));
    assert_eq!(open(&removed, &ids[2]).unwrap(), plain);
}

#[test]
fn a_change_that_does_not_fit_is_refused_and_the_header_kept() {
    let ids = identities(5, 60);
    let file = seal(b"x", &recipients(&ids[..1]), EncryptOptions::default(), 61);
    let mut h = Header::read(&file[..]).unwrap();
    let k = h.unwrap_file_key(&ids[0]).unwrap();
    let len = h.byte_len();
    for id in &ids[1..] {
        h.add_recipient(&k, id.recipient(), KemChoice::XWing, &mut rng(62))
            .unwrap();
    }
    let before = h.clone();
    assert!(
        !h.fit_to(&k, len).unwrap(),
        "four X-Wing stanzas need more than 4 KiB"
    );
    assert_eq!(h, before, "a refused fit changes nothing");
    // The writer's rule instead: the next block boundary.
    h.repad(&k).unwrap();
    assert_eq!(h.byte_len() % HEADER_BLOCK, 0);
    assert!(h.byte_len() > len);
    // A fit without the file key's MAC is refused.
    let wrong = identities(1, 63);
    let other = seal(b"y", &recipients(&wrong), EncryptOptions::default(), 64);
    let other_key = Header::read(&other[..])
        .unwrap()
        .unwrap_file_key(&wrong[0])
        .unwrap();
    assert!(matches!(h.fit_to(&other_key, len), Err(Error::HeaderAuth)));
}

#[test]
fn the_parser_is_strict_about_padding() {
    let ids = identities(1, 70);
    let file = seal(b"z", &recipients(&ids), EncryptOptions::default(), 71);
    let pad = stanza_offset(&file, 1);
    assert_eq!(u16::from_be_bytes([file[pad], file[pad + 1]]), KEM_PADDING);

    // A non-zero key id or body byte.
    for at in [pad + 2, pad + 17, pad + 20, pad + 100] {
        let mut bad = file.clone();
        bad[at] = 1;
        match Header::read(&bad[..]) {
            Err(Error::Malformed { .. }) => {}
            other => panic!("byte {at}: {other:?}"),
        }
    }

    // A padding stanza alone: no recipient.
    let mut only = file[..30].to_vec();
    only[28..30].copy_from_slice(&1u16.to_be_bytes());
    only.extend_from_slice(&file[pad..]);
    assert!(matches!(
        Header::read(&only[..]),
        Err(Error::Malformed { .. })
    ));

    // Two padding stanzas.
    let mut two = file[..30].to_vec();
    two[28..30].copy_from_slice(&3u16.to_be_bytes());
    let pad_len = 20 + u16::from_be_bytes([file[pad + 18], file[pad + 19]]) as usize;
    two.extend_from_slice(&file[30..pad + pad_len]);
    two.extend_from_slice(&file[pad..]);
    assert!(matches!(
        Header::read(&two[..]),
        Err(Error::Malformed { .. })
    ));
}

/// An older Kluis appends a stanza after the padding (it keeps unknown
/// stanzas where they are): the header still parses, re-encodes byte for
/// byte, and opens for everyone.
#[test]
fn padding_anywhere_among_the_stanzas_round_trips() {
    let ids = identities(2, 80);
    let file = seal(
        b"older",
        &recipients(&ids[..1]),
        EncryptOptions::default(),
        81,
    );
    let mut h = Header::read(&file[..]).unwrap();
    let k = h.unwrap_file_key(&ids[0]).unwrap();
    h.add_recipient(&k, ids[1].recipient(), KemChoice::XWing, &mut rng(82))
        .unwrap();
    let appended = h.to_bytes();
    // Move the padding stanza (now last) in front of the first stanza and
    // re-MAC through an edit that keeps its place: swap the encoded order.
    let s0 = stanza_offset(&appended, 0);
    let s1 = stanza_offset(&appended, 1);
    let s2 = stanza_offset(&appended, 2);
    let s3 = stanza_offset(&appended, 3);
    let mut moved = appended[..s0].to_vec();
    moved.extend_from_slice(&appended[s0..s1]);
    moved.extend_from_slice(&appended[s2..s3]);
    moved.extend_from_slice(&appended[s1..s2]);
    moved.extend_from_slice(&appended[s3..]);
    let parsed = Header::read(&moved[..]).unwrap();
    assert_eq!(
        parsed.to_bytes(),
        moved,
        "parse∘write keeps the padding's place"
    );
    assert_eq!(parsed.stanzas().len(), 2);
    // The MAC was computed over the other order: rejected, as any change is.
    assert!(matches!(
        parsed.unwrap_file_key(&ids[0]),
        Err(Error::HeaderAuth)
    ));
}

/// `rewrite_header` refits on its own (Header::refit): a caller that only
/// adds a recipient, as the agent's group-secret sharing does, keeps the
/// 4096-byte header (it grew to 5284 before, issue 17.9), and one whose
/// change cannot fit gets a freshly padded header.
#[test]
fn rewrite_header_keeps_the_length_without_being_asked() {
    let ids = identities(5, 70);
    let plain = pattern(3000, 7);
    let file = seal(
        &plain,
        &recipients(&ids[..1]),
        EncryptOptions::default(),
        71,
    );
    let mut shared = Vec::new();
    rewrite_header(&file[..], &mut shared, &ids[0], |h, k| {
        h.add_recipient(k, ids[1].recipient(), KemChoice::XWing, &mut rng(72))
    })
    .unwrap();
    assert_eq!(shared.len(), file.len());
    assert_eq!(Header::read(&shared[..]).unwrap().byte_len(), HEADER_BLOCK);
    assert_eq!(open(&shared, &ids[1]).unwrap(), plain);
    // An edit that changes nothing changes no byte.
    let mut same = Vec::new();
    rewrite_header(&shared[..], &mut same, &ids[0], |_, _| Ok(())).unwrap();
    assert_eq!(same, shared);
    // Three more X-Wing stanzas cannot fit: padded afresh to 8192.
    let mut grown = Vec::new();
    rewrite_header(&shared[..], &mut grown, &ids[0], |h, k| {
        for id in &ids[2..] {
            h.add_recipient(k, id.recipient(), KemChoice::XWing, &mut rng(73))?;
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(
        Header::read(&grown[..]).unwrap().byte_len(),
        2 * HEADER_BLOCK
    );
    assert_eq!(open(&grown, &ids[4]).unwrap(), plain);
}
