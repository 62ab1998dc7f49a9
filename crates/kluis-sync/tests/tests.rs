//! Two devices of one user, each with its own plaintext folder and its own
//! copy of the mirror, and a replicator standing in for the sync client.
//! Every scenario ends converged with nothing lost.

mod util;

use std::fs;

use util::*;

#[test]
fn initial_sync_both_ways_with_deep_dirs_and_long_names() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    a.write("docs/2024/report.txt", b"quarterly");
    let long = format!("{}.txt", "very long name ".repeat(12));
    a.write(&format!("docs/{long}"), b"long name content");
    let long_dir = "d".repeat(120);
    b.write(&format!("{long_dir}/inner.txt"), b"from the desktop");
    converge(&mut [&mut a, &mut b], &mut rep);
    let tree = a.tree();
    assert_eq!(
        tree.get("docs/2024/report.txt").map(Vec::as_slice),
        Some(&b"quarterly"[..])
    );
    assert_eq!(
        tree.get(&format!("docs/{long}")).map(Vec::as_slice),
        Some(&b"long name content"[..])
    );
    assert_eq!(
        tree.get(&format!("{long_dir}/inner.txt"))
            .map(Vec::as_slice),
        Some(&b"from the desktop"[..])
    );
    // Ciphertext names reveal nothing and fit the limits.
    for k in tree_all(&a.mirror).keys() {
        assert!(
            !k.contains("report") && !k.contains("docs") && !k.contains("inner"),
            "{k}"
        );
        for comp in k.split('/') {
            assert!(comp.len() <= 160, "{comp}");
            assert!(
                !comp
                    .chars()
                    .any(|c| c.is_ascii_uppercase() || "\\:*?\"<>|".contains(c)),
                "{comp}"
            );
        }
    }
}

#[test]
fn a_first_sync_of_many_files_is_one_durable_batch_that_opens_elsewhere() {
    use kluis_format::{Header, KEM_XWING_BATCH};
    let t = tempfile::tempdir().unwrap();
    let id = std::sync::Arc::new(kluis_format::Identity::generate(&mut rng()));
    // fsync on: on Linux, 64 new files or more take the syncfs(2) path.
    // Eight chunks of up to 1,024 files exercise its pipeline, beyond the
    // number of chunks it lets wait to be recorded (six).
    const N: usize = 7_300;
    let mut a = Device::new_durable(t.path(), "laptop", id.clone());
    for i in 0..N {
        a.write(
            &format!("d{}/f{i}.txt", i % 7),
            format!("file {i}").as_bytes(),
        );
    }
    a.sync();
    assert_eq!(a.activity("encrypted").len(), N);
    // One X-Wing encapsulation per chunk of the batch (FORMAT.md §4.8).
    let headers: Vec<Header> = tree_all(&a.mirror)
        .iter()
        .filter(|(k, _)| !k.ends_with('/') && !k.rsplit('/').next().unwrap().starts_with(".kluis"))
        .map(|(k, v)| Header::read(&v[..]).unwrap_or_else(|e| panic!("{k}: {e}")))
        .collect();
    assert_eq!(headers.len(), N);
    let encs: std::collections::BTreeSet<&[u8]> = headers
        .iter()
        .map(|h| {
            assert_eq!(h.stanzas().len(), 1);
            assert_eq!(h.stanzas()[0].kem, KEM_XWING_BATCH);
            &h.stanzas()[0].body[..1120]
        })
        .collect();
    assert_eq!(encs.len(), N.div_ceil(1024));
    assert!(
        tree_all(&a.mirror)
            .keys()
            .all(|k| !k.contains(".kluis-tmp-"))
    );
    // Every file of it opens (a sample: one X-Wing decapsulation each in
    // a debug build) and holds its plaintext, and the index has them all.
    let plain = a.tree();
    for (k, v) in tree_all(&a.mirror)
        .iter()
        .filter(|(k, _)| !k.ends_with('/') && !k.contains("/.kluis") && !k.starts_with(".kluis"))
        .step_by(97)
    {
        let mut d =
            kluis_format::Decryptor::new(&v[..], &id).unwrap_or_else(|e| panic!("{k}: {e}"));
        let name = d.metadata().name.clone().unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut out).unwrap();
        let (_, want) = plain
            .iter()
            .find(|(p, _)| p.rsplit('/').next() == Some(name.as_str()))
            .unwrap();
        assert_eq!(&out, want, "{k}");
    }
    assert_eq!(a.sync().activity.len(), 0, "nothing left to do");
}

#[test]
fn editor_saves_lock_and_swap_files_are_ignored() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    a.write("notes.txt", b"v1");
    converge(&mut [&mut a, &mut b], &mut rep);
    // vim: swap file, the 4913 probe, write to a temp name then rename.
    a.write(".notes.txt.swp", b"swap");
    a.write("4913", b"");
    a.write("notes.txt~", b"v1");
    a.write(".notes.txt.new", b"version two");
    fs::rename(a.plain.join(".notes.txt.new"), a.plain.join("notes.txt")).unwrap();
    // LibreOffice and Word lock files.
    a.write(".~lock.budget.ods#", b"lock");
    a.write("~$budget.docx", b"lock");
    a.write("budget.ods", b"sheet");
    converge(&mut [&mut a, &mut b], &mut rep);
    let tb = b.tree();
    assert_eq!(
        tb.get("notes.txt").map(Vec::as_slice),
        Some(&b"version two"[..])
    );
    assert_eq!(tb.get("budget.ods").map(Vec::as_slice), Some(&b"sheet"[..]));
    for noise in [
        ".notes.txt.swp",
        "4913",
        "notes.txt~",
        ".~lock.budget.ods#",
        "~$budget.docx",
    ] {
        assert!(!tb.contains_key(noise), "{noise} leaked");
    }
}

/// Word's save (issue 17.11): the new version is written to `~WRL0001.tmp`,
/// the document renamed to `~WRL0002.tmp`, the new version renamed over it,
/// and the old one deleted. The other device must see one edit: never the
/// temp files, never the document missing, never a trash copy.
#[test]
fn word_s_save_through_temp_files_is_one_edit_on_the_other_device() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    a.write("report.docx", b"version one");
    converge(&mut [&mut a, &mut b], &mut rep);
    let seen_by_b = |b: &Device| -> Vec<String> {
        tree_all(&b.plain)
            .into_keys()
            .filter(|k| !k.starts_with(".kluis-") || k.starts_with(".kluis-trash/"))
            .filter(|k| !k.ends_with('/'))
            .collect()
    };
    // Word: the lock file, then the new version into a temp file.
    a.write("~$report.docx", b"owner");
    a.write("~WRL0001.tmp", b"version two");
    converge(&mut [&mut a, &mut b], &mut rep);
    assert_eq!(seen_by_b(&b), ["report.docx"]);
    assert_eq!(
        fs::read(b.plain.join("report.docx")).unwrap(),
        b"version one"
    );
    // The two renames, then the old version deleted.
    fs::rename(a.plain.join("report.docx"), a.plain.join("~WRL0002.tmp")).unwrap();
    fs::rename(a.plain.join("~WRL0001.tmp"), a.plain.join("report.docx")).unwrap();
    converge(&mut [&mut a, &mut b], &mut rep);
    assert_eq!(seen_by_b(&b), ["report.docx"]);
    assert_eq!(
        fs::read(b.plain.join("report.docx")).unwrap(),
        b"version two"
    );
    fs::remove_file(a.plain.join("~WRL0002.tmp")).unwrap();
    fs::remove_file(a.plain.join("~$report.docx")).unwrap();
    converge(&mut [&mut a, &mut b], &mut rep);
    assert_eq!(
        seen_by_b(&b),
        ["report.docx"],
        "no trash copy, no temp file"
    );
    assert_eq!(
        fs::read(b.plain.join("report.docx")).unwrap(),
        b"version two"
    );
    for d in [&a, &b] {
        for action in ["trashed", "deleted", "conflict"] {
            assert!(
                d.activity(action).is_empty(),
                "{} {action}: {:?}",
                d.name,
                d.activity(action)
            );
        }
    }
}

/// `.kluisignore` is one device's own rule (it is not synced): a file it
/// matches is left alone there, never deleted from the mirror — neither
/// one synced before the rule was added, nor another device's file that
/// happens to match it.
#[test]
fn a_device_s_ignore_rules_never_delete_other_devices_files() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    a.write("report.txt", b"keep the roots non-empty");
    a.write("before.log", b"synced before the rule");
    converge(&mut [&mut a, &mut b], &mut rep);
    assert!(b.tree().contains_key("before.log"));
    a.write(".kluisignore", b"# mine only\n*.log\n");
    b.write("theirs.log", b"written on B, which ignores nothing");
    converge(&mut [&mut a, &mut b], &mut rep);
    converge(&mut [&mut a, &mut b], &mut rep);
    let tb = b.tree();
    assert_eq!(
        tb.get("before.log").map(Vec::as_slice),
        Some(&b"synced before the rule"[..]),
        "A's new rule deleted B's copy"
    );
    assert_eq!(
        tb.get("theirs.log").map(Vec::as_slice),
        Some(&b"written on B, which ignores nothing"[..]),
        "A's rule deleted B's own file"
    );
    let ta = tree(&a.plain);
    assert!(ta.contains_key("before.log"), "A keeps its own copy");
    assert!(
        !ta.contains_key("theirs.log"),
        "A does not fetch names it ignores"
    );
    assert!(
        a.activity("deleted").is_empty(),
        "{:?}",
        a.activity("deleted")
    );
}

#[test]
fn renames_of_files_and_deep_directories_are_renames() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    a.write("old/x/y/z/deep.txt", b"deep file");
    a.write("old/x/sibling.txt", b"sibling");
    a.write("single.txt", b"single");
    converge(&mut [&mut a, &mut b], &mut rep);
    let before = tree_all(&a.mirror);
    fs::rename(a.plain.join("old"), a.plain.join("new")).unwrap();
    fs::rename(a.plain.join("single.txt"), a.plain.join("renamed.txt")).unwrap();
    a.log.clear();
    b.log.clear();
    converge(&mut [&mut a, &mut b], &mut rep);
    let tb = b.tree();
    assert_eq!(
        tb.get("new/x/y/z/deep.txt").map(Vec::as_slice),
        Some(&b"deep file"[..])
    );
    assert_eq!(
        tb.get("new/x/sibling.txt").map(Vec::as_slice),
        Some(&b"sibling"[..])
    );
    assert_eq!(
        tb.get("renamed.txt").map(Vec::as_slice),
        Some(&b"single"[..])
    );
    assert!(!tb.contains_key("old/") && !tb.contains_key("single.txt"));
    // Device A renamed in the mirror instead of re-encrypting.
    assert!(
        a.activity("encrypted").is_empty(),
        "A re-encrypted: {:?}",
        a.activity("encrypted")
    );
    assert_eq!(
        a.activity("renamed"),
        vec!["old".to_owned(), "single.txt".to_owned()]
    );
    // The ciphertext bytes were carried over unchanged.
    let after = tree_all(&a.mirror);
    let set = |t: &std::collections::BTreeMap<String, Vec<u8>>| {
        let mut v: Vec<Vec<u8>> = t
            .iter()
            .filter(|(k, _)| k.ends_with(".kls"))
            .map(|(_, v)| v.clone())
            .collect();
        v.sort();
        v
    };
    assert_eq!(set(&before), set(&after));
    // Device B applied renames too (same file ids), no downloads: the
    // directory as one rename, not one per file.
    assert!(
        b.activity("decrypted").is_empty(),
        "B re-decrypted: {:?}",
        b.activity("decrypted")
    );
    assert_eq!(
        b.activity("renamed"),
        vec!["old".to_owned(), "single.txt".to_owned()]
    );
}

#[test]
fn deletions_travel_and_plaintext_goes_to_trash() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    for i in 0..4 {
        a.write(&format!("f{i}.txt"), format!("file {i}").as_bytes());
    }
    converge(&mut [&mut a, &mut b], &mut rep);
    fs::remove_file(a.plain.join("f1.txt")).unwrap();
    converge(&mut [&mut a, &mut b], &mut rep);
    assert!(!b.tree().contains_key("f1.txt"));
    let trash: Vec<(String, Vec<u8>)> = tree_all(&b.plain.join(".kluis-trash"))
        .into_iter()
        .filter(|(k, _)| !k.ends_with('/'))
        .collect();
    assert_eq!(trash.len(), 1, "{trash:?}");
    assert!(trash[0].0.ends_with("/f1.txt"));
    assert_eq!(trash[0].1, b"file 1");
}

#[test]
fn concurrent_edits_keep_both_versions() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    a.write("plan.txt", b"original");
    converge(&mut [&mut a, &mut b], &mut rep);
    a.write("plan.txt", b"edited on the laptop");
    b.write("plan.txt", b"edited on the desktop!");
    // Same new file created on both devices: same ciphertext name, a conflict.
    a.write("new.txt", b"laptop's new file");
    b.write("new.txt", b"desktop's new file, longer");
    a.sync();
    b.sync();
    converge(&mut [&mut a, &mut b], &mut rep);
    for d in [&a, &b] {
        let contents: Vec<Vec<u8>> = d.tree().into_values().collect();
        for v in [
            &b"edited on the laptop"[..],
            b"edited on the desktop!",
            b"laptop's new file",
            b"desktop's new file, longer",
        ] {
            assert!(
                contents.iter().any(|c| c == v),
                "{} lost {:?}: {:?}",
                d.name,
                String::from_utf8_lossy(v),
                d.tree().keys().collect::<Vec<_>>()
            );
        }
        assert!(
            d.tree().keys().any(|k| k.contains(" (conflict ")),
            "{:?}",
            d.tree().keys().collect::<Vec<_>>()
        );
    }
}

#[test]
fn partial_ciphertext_is_retried_never_decrypted_never_deleted() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    a.write("big.bin", &big);
    a.sync();
    let c = tree_all(&a.mirror)
        .into_keys()
        .find(|k| k.ends_with(".kls"))
        .unwrap();
    for fraction in [0.0, 0.3, 0.99] {
        rep.put_partial(true, &c, fraction);
        let r = b.sync();
        assert!(
            r.errors
                .iter()
                .any(|e| e.kind == kluis_sync::ItemErrorKind::Incomplete),
            "{r:?}"
        );
        assert!(
            !b.plain.join("big.bin").exists(),
            "partial ciphertext was decrypted"
        );
        assert!(b.mirror.join(&c).exists(), "partial ciphertext was deleted");
        assert!(
            tree_all(&b.plain)
                .keys()
                .all(|k| !k.contains(".kluis-tmp-"))
        );
    }
    // The sync client finishes; the next round picks it up.
    rep.finish(true, &c);
    converge(&mut [&mut a, &mut b], &mut rep);
    assert_eq!(b.tree().get("big.bin"), Some(&big));
}

#[test]
fn remote_edit_is_never_clobbering_a_local_edit() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    a.write("x.txt", b"one");
    converge(&mut [&mut a, &mut b], &mut rep);
    a.write("x.txt", b"two from a");
    a.sync();
    rep.run();
    // B edits before it has seen A's version.
    b.write("x.txt", b"three from b!");
    converge(&mut [&mut a, &mut b], &mut rep);
    let vals: Vec<Vec<u8>> = b.tree().into_values().collect();
    assert!(vals.contains(&b"two from a".to_vec()) && vals.contains(&b"three from b!".to_vec()));
}

#[test]
fn symlinks_and_unreadable_files_are_visible_skips() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    a.write("real.txt", b"real");
    #[cfg(unix)]
    std::os::unix::fs::symlink("real.txt", a.plain.join("link.txt")).unwrap();
    let r = a.sync();
    assert!(
        r.skips.iter().any(|s| s.path == "link.txt"),
        "{:?}",
        r.skips
    );
    converge(&mut [&mut a, &mut b], &mut rep);
    assert!(!b.tree().contains_key("link.txt"));
}

#[test]
fn mass_deletion_pauses_until_allowed() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    for i in 0..12 {
        a.write(&format!("f{i:02}.txt"), b"x");
    }
    a.write("keep.txt", b"keep");
    converge(&mut [&mut a, &mut b], &mut rep);
    for i in 0..12 {
        fs::remove_file(a.plain.join(format!("f{i:02}.txt"))).unwrap();
    }
    let r = a.sync();
    assert!(
        matches!(
            r.guard,
            Some(kluis_sync::Guard::MassDeletion {
                deletions: 12,
                total: 13,
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(
        tree_all(&a.mirror)
            .keys()
            .filter(|k| k.ends_with(".kls"))
            .count(),
        13
    );
    a.engine.allow_mass_delete_once();
    a.sync();
    rep.run();
    // The other device sees the same mass deletion arrive and stops too.
    let r = b.sync();
    assert!(
        matches!(
            r.guard,
            Some(kluis_sync::Guard::MassDeletion {
                deletions: 12,
                total: 13,
                ..
            })
        ),
        "{r:?}"
    );
    assert_eq!(b.tree().len(), 13);
    b.engine.allow_mass_delete_once();
    converge(&mut [&mut a, &mut b], &mut rep);
    assert_eq!(
        b.tree()
            .keys()
            .filter(|k| !k.ends_with('/'))
            .cloned()
            .collect::<Vec<_>>(),
        vec!["keep.txt".to_owned()]
    );
}

#[test]
fn locally_unchanged_rescan_does_nothing() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    a.write("a/b.txt", b"b");
    converge(&mut [&mut a, &mut b], &mut rep);
    let r = a.sync();
    assert!(r.activity.is_empty() && r.errors.is_empty(), "{r:?}");
}

#[test]
fn bulk_initial_encryption_converges_and_renames_afterwards() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    for i in 0..60 {
        a.write(
            &format!("dir{}/file{i:02}.txt", i % 5),
            format!("content number {i}").repeat(i + 1).as_bytes(),
        );
    }
    let r = a.sync();
    assert_eq!(
        r.activity
            .iter()
            .filter(|x| x.action == "encrypted")
            .count(),
        60,
        "{:?}",
        r.errors
    );
    converge(&mut [&mut a, &mut b], &mut rep);
    assert_eq!(a.tree(), b.tree());
    assert_eq!(b.tree().len(), 65);
    // Batch-written entries carry file ids, so renames stay renames.
    fs::rename(a.plain.join("dir0"), a.plain.join("moved")).unwrap();
    b.log.clear();
    converge(&mut [&mut a, &mut b], &mut rep);
    assert!(
        b.activity("decrypted").is_empty(),
        "{:?}",
        b.activity("decrypted")
    );
    assert!(b.tree().contains_key("moved/file00.txt"));
}
