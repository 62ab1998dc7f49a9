//! A sync client's conflicted copies of a device's *own* ciphertext
//! (issue 17, points 1 and 3), played step by step: when both devices
//! changed a file, the sync client keeps one upload under the name, renames
//! the losing device's ciphertext to "… (dev-b's conflicted copy DATE).kls"
//! and downloads the winner over the name later — partly written, or
//! seconds after the rename. No version may be lost in any of the gaps.

mod util;

use std::fs;
use std::io::Write;
use std::path::Path;

use kluis_sync::Engine;
use util::*;

/// The ciphertext path (in the mirror) of a synced plaintext path.
fn cpath(d: &Device, path: &str) -> String {
    d.engine
        .index()
        .get(path)
        .unwrap()
        .unwrap_or_else(|| panic!("{path} is not in {}'s index", d.name))
        .cpath
}

/// What a Dropbox-style client calls the losing device's copy.
fn conflicted_copy_name(cpath: &str) -> String {
    let stem = cpath.strip_suffix(".kls").unwrap();
    format!("{stem} (desktop's conflicted copy 2026-12-07).kls")
}

/// The agent was killed and started again: a new engine on the same index.
fn restart(d: &mut Device) {
    let cfg = d.engine.config().clone();
    d.engine = Engine::open(cfg).unwrap();
}

/// Write `data` over `dst` in place, in three pieces, running the device's
/// engine between the pieces (a download that lands late and slowly).
fn download_in_place(d: &mut Device, rel: &str, data: &[u8]) {
    let p = d.mirror.join(rel);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&p)
        .unwrap();
    for piece in data.chunks(data.len().div_ceil(3)) {
        f.write_all(piece).unwrap();
        f.flush().unwrap();
        d.sync();
    }
}

/// Every plaintext (path, content) of a device, trash included.
fn everything(root: &Path) -> Vec<(String, Vec<u8>)> {
    tree_all(root)
        .into_iter()
        .filter(|(k, _)| !k.ends_with('/'))
        .collect()
}

fn holds(d: &Device, content: &[u8]) -> Vec<String> {
    d.tree()
        .into_iter()
        .filter(|(_, v)| v == content)
        .map(|(k, _)| k)
        .collect()
}

/// Both devices edit `name`; the sync client lets laptop (A) win. On B it
/// renames B's own upload to a conflicted copy, B's engine runs in that gap
/// (and is restarted, with `restart`), then A's ciphertext lands late.
fn both_edit_then_b_loses(name: &str, restart_b: bool) {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    a.write(name, b"first version");
    converge(&mut [&mut a, &mut b], &mut rep);

    a.write(name, b"the laptop's edit");
    b.write(name, b"the desktop's edit, which must not be lost");
    a.sync();
    b.sync();
    let c = cpath(&a, name);
    assert_eq!(c, cpath(&b, name), "one name on both devices");
    let winner = fs::read(a.mirror.join(&c)).unwrap();
    let loser = fs::read(b.mirror.join(&c)).unwrap();
    assert_ne!(winner, loser);

    // The sync client renames B's own ciphertext to the conflicted copy...
    let cc = conflicted_copy_name(&c);
    fs::rename(b.mirror.join(&c), b.mirror.join(&cc)).unwrap();
    b.sync();
    if restart_b {
        restart(&mut b);
    }
    b.sync();
    // ...and only later writes the winner in place, in pieces.
    download_in_place(&mut b, &c, &winner);
    b.sync();
    // A receives B's copy too.
    fs::write(a.mirror.join(&cc), &loser).unwrap();
    a.sync();

    for d in [&a, &b] {
        assert_eq!(
            d.tree().get(name).map(Vec::as_slice),
            Some(&b"the laptop's edit"[..]),
            "{}",
            d.name
        );
        let kept = holds(d, b"the desktop's edit, which must not be lost");
        assert_eq!(
            kept.len(),
            1,
            "{}: {kept:?} in {:?}",
            d.name,
            d.tree().keys()
        );
        assert!(kept[0].contains(" (conflict sync "), "{kept:?}");
        // Not in the trash: a live conflict copy, seen by the next scan.
        assert!(!kept[0].starts_with(".kluis-trash"), "{kept:?}");
    }
    // Both devices chose the same conflict name for the same copy.
    assert_eq!(
        holds(&a, b"the desktop's edit, which must not be lost"),
        holds(&b, b"the desktop's edit, which must not be lost")
    );
    // The sync client's copy is gone from the mirrors; both converge.
    let mut rep = Replicator::new(&a.mirror, &b.mirror);
    converge(&mut [&mut a, &mut b], &mut rep);
    for d in [&mut a, &mut b] {
        assert!(
            !tree_all(&d.mirror)
                .keys()
                .any(|k| k.contains("conflicted copy")),
            "{}",
            d.name
        );
        let trashed: Vec<_> = everything(&d.plain)
            .into_iter()
            .filter(|(k, _)| k.starts_with(".kluis-trash"))
            .map(|(k, _)| k)
            .collect();
        let scanned_again = d.sync();
        assert!(
            scanned_again.skips.is_empty(),
            "{}: {:?} (trash: {trashed:?})",
            d.name,
            scanned_again.skips
        );
    }
}

#[test]
fn a_device_s_own_upload_renamed_to_a_conflicted_copy_is_kept() {
    both_edit_then_b_loses("doc-10.txt", false);
}

#[test]
fn a_device_s_own_upload_renamed_to_a_conflicted_copy_is_kept_across_a_restart() {
    both_edit_then_b_loses("doc-10.txt", true);
}

/// Point 3: a conflict name of 80 bytes or more is hashed (FORMAT.md §8.4);
/// the adopted copy must pass the §8.4 check on the next scan instead of
/// being skipped and its plaintext trashed.
#[test]
fn conflict_copies_with_long_names_are_kept() {
    for len in [50, 85] {
        let name = format!("{}.txt", "n".repeat(len - 4));
        assert_eq!(name.len(), len);
        both_edit_then_b_loses(&name, false);
    }
}

/// A sync client that duplicates a ciphertext without any edit behind it:
/// the copy holds the very version under the name, and goes without a
/// conflict copy.
#[test]
fn a_copy_of_the_current_version_is_removed_without_a_conflict_copy() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    a.write("notes.txt", b"only version");
    converge(&mut [&mut a, &mut b], &mut rep);
    let c = cpath(&b, "notes.txt");
    let cc = conflicted_copy_name(&c);
    fs::copy(b.mirror.join(&c), b.mirror.join(&cc)).unwrap();
    let r = b.sync();
    assert!(
        r.activity
            .iter()
            .any(|x| x.action == "deleted" && x.path == cc),
        "{:?}",
        r.activity
    );
    assert!(!b.mirror.join(&cc).exists());
    assert_eq!(b.tree().len(), 1, "{:?}", b.tree().keys());
}

/// The copy matches what this device last synced, but the name now holds
/// something else (or nothing): that version survives nowhere else, so it
/// becomes a conflict copy — the old rule (compare with the index) deleted
/// it.
#[test]
fn a_copy_equal_to_the_last_synced_version_is_kept_when_the_name_moved_on() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    a.write("plan.txt", b"version one");
    converge(&mut [&mut a, &mut b], &mut rep);
    let c = cpath(&b, "plan.txt");
    let cc = conflicted_copy_name(&c);
    fs::rename(b.mirror.join(&c), b.mirror.join(&cc)).unwrap();
    b.sync();
    b.sync();
    assert_eq!(holds(&b, b"version one").len(), 1, "{:?}", b.tree());
    assert!(
        holds(&b, b"version one")[0].contains(" (conflict sync "),
        "{:?}",
        b.tree()
    );
}
