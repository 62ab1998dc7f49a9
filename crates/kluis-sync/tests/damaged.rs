//! A damaged ciphertext in the sync folder (issue 17, point 4): a flipped
//! payload byte, a damaged header, a truncation, zeroed bytes. The
//! plaintext stays intact, the file is reported as damaged with what to
//! do (not "retrying" for ever), and a newer version from the other device
//! gets through.

mod util;

use std::fs;

use kluis_sync::ItemErrorKind;
use util::*;

fn cpath(d: &Device, path: &str) -> String {
    d.engine.index().get(path).unwrap().unwrap().cpath
}

/// The first version: 200 KiB, several payload chunks.
fn first() -> Vec<u8> {
    (0..200 * 1024).map(|i| (i % 251) as u8).collect()
}

fn damage(bytes: &mut Vec<u8>, how: &str) {
    let n = bytes.len();
    match how {
        "flipped payload byte" => bytes[n - 70_000] ^= 0x40,
        // Inside the header, past the stanzas: the header MAC fails. (A
        // damaged key id reads as "not shared with you" and is reported so.)
        "damaged header" => bytes[3000] ^= 0x01,
        "truncated" => bytes.truncate(n - 1000),
        "zeroed" => bytes[n / 2..n / 2 + 4096].fill(0),
        _ => unreachable!(),
    }
}

#[test]
fn a_damaged_ciphertext_is_reported_and_a_newer_version_gets_through() {
    for how in [
        "flipped payload byte",
        "damaged header",
        "truncated",
        "zeroed",
    ] {
        let t = tempfile::tempdir().unwrap();
        let (mut a, mut b, mut rep) = pair(t.path());
        a.write("bad/doc.bin", &first());
        converge(&mut [&mut a, &mut b], &mut rep);
        // The sync client carries the same damage to both devices.
        let c = cpath(&a, "bad/doc.bin");
        let mut bytes = fs::read(a.mirror.join(&c)).unwrap();
        damage(&mut bytes, how);
        fs::write(a.mirror.join(&c), &bytes).unwrap();
        fs::write(b.mirror.join(&c), &bytes).unwrap();
        rep.run();

        // B: the plaintext stays; after a while the file is damaged, not
        // "retrying" for ever, and the report says what to do.
        let mut last = b.sync();
        for _ in 0..3 {
            last = b.sync();
        }
        assert_eq!(b.tree().get("bad/doc.bin"), Some(&first()), "{how}");
        let e = last
            .errors
            .iter()
            .find(|e| e.path == "bad/doc.bin")
            .unwrap_or_else(|| panic!("{how}: {:?}", last.errors));
        assert_eq!(e.kind, ItemErrorKind::Damaged, "{how}: {e:?}");
        assert!(
            e.detail.contains("damaged") && e.detail.contains("save"),
            "{e:?}"
        );
        assert!(
            !last.needs_retry(),
            "{how}: a damaged file waits for a change"
        );

        // A: a new edit replaces the damaged ciphertext...
        a.write("bad/doc.bin", b"the newer version");
        for _ in 0..3 {
            a.sync();
        }
        let kept = tree_all(&a.plain.join(".kluis-trash"));
        assert!(
            kept.iter()
                .any(|(k, v)| k.ends_with("bad/doc.bin.damaged.kls") && *v == bytes),
            "{how}: the damaged bytes are kept: {:?}",
            kept.keys()
        );
        // ...and reaches B.
        converge(&mut [&mut a, &mut b], &mut rep);
        assert_eq!(
            b.tree().get("bad/doc.bin").map(Vec::as_slice),
            Some(&b"the newer version"[..]),
            "{how}"
        );
        let r = b.sync();
        assert!(r.errors.is_empty(), "{how}: {:?}", r.errors);
    }
}

/// A file still arriving (written in place, growing) is never judged
/// damaged, however long the sync client takes, as long as it changes.
#[test]
fn a_slowly_arriving_file_is_not_judged_damaged() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    a.write("big.bin", &first());
    a.sync();
    let c = cpath(&a, "big.bin");
    let full = fs::read(a.mirror.join(&c)).unwrap();
    // A minute of test time per sync: each piece lands a minute apart.
    for k in 1..8 {
        fs::write(b.mirror.join(&c), &full[..full.len() * k / 8]).unwrap();
        let r = b.sync();
        assert!(
            r.errors.iter().all(|e| e.kind != ItemErrorKind::Damaged),
            "{:?}",
            r.errors
        );
    }
    rep.finish(true, &c);
    b.sync();
    assert_eq!(b.tree().get("big.bin"), Some(&first()));
}
