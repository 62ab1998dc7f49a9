//! FORMAT.md §4.5 (which stanzas a decoder tries) and §4.7 (refitting a
//! changed header), with access to the header's insides to build the hostile
//! headers a public API cannot.

use super::*;
use crate::keys::Identity;

fn rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

fn meta() -> Metadata {
    Metadata {
        name: Some("a.txt".into()),
        ..Default::default()
    }
}

/// A batch stanza for `to` that opens, in this file, to `key`.
fn batch_stanza(h: &Header, to: &Identity, key: &FileKey) -> Stanza {
    let batch = Batch::new(&[to.recipient().clone()], KemChoice::XWing, &mut rng()).unwrap();
    batch.stanza(&batch.members[0], key, &h.file_id).unwrap()
}

/// A member (who knows the file key) puts a stanza under Alice's key id in
/// front of her real one: it opens, but to another file key. The old
/// decoder stopped at its MAC failure ("the header failed to authenticate");
/// FORMAT.md §4.5 now says to try the next stanza with her key id.
#[test]
fn a_bogus_stanza_under_my_key_id_does_not_hide_the_real_one() {
    let alice = Identity::generate(&mut rng());
    let (mut h, k) = Header::new(
        &[alice.recipient().clone()],
        KemChoice::XWing,
        &meta(),
        &mut rng(),
    )
    .unwrap();
    let other = FileKey::generate(&mut rng());
    let bogus = batch_stanza(&h, &alice, &other);
    // It does open on its own, to the other key.
    assert_eq!(
        bogus.unwrap(&h.file_id, &alice).unwrap().dangerous_bytes(),
        other.dangerous_bytes()
    );
    h.stanzas.insert(0, bogus);
    h.padding = None;
    h.reseal(&k);
    let parsed = Header::read(&h.to_bytes()[..]).unwrap();
    assert_eq!(
        parsed.unwrap_file_key(&alice).unwrap().dangerous_bytes(),
        k.dangerous_bytes()
    );

    // Garbage under her key id in front: skipped too.
    let (mut h, k) = Header::new(
        &[alice.recipient().clone()],
        KemChoice::XWing,
        &meta(),
        &mut rng(),
    )
    .unwrap();
    h.stanzas.insert(
        0,
        Stanza {
            kem: KEM_XWING_BATCH,
            key_id: alice.recipient().fingerprint().key_id(),
            body: vec![7; XWING_ENC_LEN + WRAPPED_LEN],
        },
    );
    h.reseal(&k);
    let parsed = Header::read(&h.to_bytes()[..]).unwrap();
    assert_eq!(
        parsed.unwrap_file_key(&alice).unwrap().dangerous_bytes(),
        k.dangerous_bytes()
    );
}

/// Stanzas carry her key id but none yields a key that passes the MAC:
/// "the header failed to authenticate", never "no matching recipient".
#[test]
fn when_no_stanza_of_mine_authenticates_the_header_fails() {
    let alice = Identity::generate(&mut rng());
    let bob = Identity::generate(&mut rng());
    let (mut h, k) = Header::new(
        &[bob.recipient().clone()],
        KemChoice::XWing,
        &meta(),
        &mut rng(),
    )
    .unwrap();
    let other = FileKey::generate(&mut rng());
    h.stanzas.push(batch_stanza(&h, &alice, &other));
    h.reseal(&k);
    assert!(matches!(h.unwrap_file_key(&alice), Err(Error::HeaderAuth)));
    // A damaged MAC: every stanza of Bob's opens, none passes.
    let (mut h, _) = Header::new(
        &[bob.recipient().clone()],
        KemChoice::XWing,
        &meta(),
        &mut rng(),
    )
    .unwrap();
    h.mac[0] ^= 1;
    assert!(matches!(h.unwrap_file_key(&bob), Err(Error::HeaderAuth)));
    assert!(matches!(
        h.unwrap_file_key(&alice),
        Err(Error::NoMatchingRecipient)
    ));
}

/// §4.7: re-sharing keeps the header's length when the padding has room,
/// moves the padding stanza after the last recipient stanza, and keeps the
/// file's KEM.
#[test]
fn refit_keeps_the_length_and_the_kem() {
    let ids: Vec<Identity> = (0..4).map(|_| Identity::generate(&mut rng())).collect();
    let (mut h, k) = Header::new(
        &[ids[0].recipient().clone()],
        KemChoice::XWing,
        &meta(),
        &mut rng(),
    )
    .unwrap();
    assert_eq!(h.byte_len(), 4096);
    assert_eq!(h.reshare_kem(), KemChoice::XWing);
    h.add_recipient(&k, ids[1].recipient(), h.reshare_kem(), &mut rng())
        .unwrap();
    assert_eq!(h.refit(&k, 4096).unwrap(), Refit::SameLength);
    assert_eq!(h.byte_len(), 4096);
    assert_eq!(h.padding.unwrap().at, h.stanzas.len());
    // Two more X-Wing stanzas do not fit: padded afresh to 8192.
    h.add_recipient(&k, ids[2].recipient(), KemChoice::XWing, &mut rng())
        .unwrap();
    h.add_recipient(&k, ids[3].recipient(), KemChoice::XWing, &mut rng())
        .unwrap();
    assert_eq!(
        h.refit(&k, 4096).unwrap(),
        Refit::Repadded {
            from: 4096,
            to: 8192
        }
    );
    let parsed = Header::read(&h.to_bytes()[..]).unwrap();
    assert_eq!(parsed.byte_len(), 8192);
    parsed.unwrap_file_key(&ids[3]).unwrap();

    // A classical file stays classical.
    let (h, _) = Header::new(
        &[ids[0].recipient().clone()],
        KemChoice::X25519,
        &meta(),
        &mut rng(),
    )
    .unwrap();
    assert_eq!(h.reshare_kem(), KemChoice::X25519);
}
