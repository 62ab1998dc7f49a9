//! A folder renamed on one device while the other edits files inside it
//! (issue 17, point 11): the edits follow the rename, nothing is trashed.

mod util;

use util::*;

#[test]
fn edits_follow_a_folder_renamed_on_the_other_device() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    for n in ["x", "y", "z"] {
        a.write(&format!("dir/{n}.txt"), format!("{n} first").as_bytes());
    }
    converge(&mut [&mut a, &mut b], &mut rep);
    std::fs::rename(a.plain.join("dir"), a.plain.join("renamed")).unwrap();
    b.write("dir/x.txt", b"x edited on b");
    b.write("dir/y.txt", b"y edited on b");
    a.sync();
    b.sync();
    converge(&mut [&mut a, &mut b], &mut rep);
    for d in [&a, &b] {
        let tree = d.tree();
        let files: Vec<_> = tree.keys().filter(|k| !k.ends_with('/')).collect();
        let trash = tree_all(&d.plain.join(".kluis-trash"));
        assert_eq!(
            tree.get("renamed/x.txt").map(Vec::as_slice),
            Some(&b"x edited on b"[..]),
            "{}",
            d.name
        );
        assert_eq!(
            tree.get("renamed/y.txt").map(Vec::as_slice),
            Some(&b"y edited on b"[..])
        );
        assert_eq!(
            tree.get("renamed/z.txt").map(Vec::as_slice),
            Some(&b"z first"[..])
        );
        // No file is left under the old name (the sync client may leave
        // the emptied folder itself).
        assert!(!files.iter().any(|k| k.starts_with("dir/")), "{files:?}");
        // Nothing only in the trash: whatever a sync client's deletions
        // put there is also in the folder.
        for (k, v) in trash.iter().filter(|(k, _)| !k.ends_with('/')) {
            assert!(
                tree.values().any(|x| x == v),
                "{}: {k} only in the trash",
                d.name
            );
        }
    }
}

/// The same with a sync client that keeps the edits under the old folder
/// name (as Dropbox does: the edited files recreate the renamed folder),
/// and a restart of the editing device before it sees the rename.
#[test]
fn edits_follow_a_rename_when_the_sync_client_recreates_the_old_folder() {
    let t = tempfile::tempdir().unwrap();
    let (mut a, mut b, mut rep) = pair(t.path());
    for n in ["x", "y", "z"] {
        a.write(&format!("dir/{n}.txt"), format!("{n} first").as_bytes());
    }
    converge(&mut [&mut a, &mut b], &mut rep);
    let old_dir = b.engine.index().get("dir").unwrap().unwrap().cpath;
    std::fs::rename(a.plain.join("dir"), a.plain.join("renamed")).unwrap();
    b.write("dir/x.txt", b"x edited on b");
    b.write("dir/y.txt", b"y edited on b");
    a.sync();
    b.sync();
    let new_dir = a.engine.index().get("renamed").unwrap().unwrap().cpath;
    // The sync client: A's folder rename reaches B...
    let _ = std::fs::remove_dir_all(b.mirror.join(&new_dir));
    copy_tree(&a.mirror.join(&new_dir), &b.mirror.join(&new_dir));
    let z = a
        .engine
        .index()
        .get("renamed/z.txt")
        .unwrap()
        .unwrap()
        .cpath;
    let z_name = z.rsplit('/').next().unwrap();
    std::fs::remove_file(b.mirror.join(&old_dir).join(z_name)).unwrap();
    // ...and B's edits recreate the old folder on A.
    copy_tree(&b.mirror.join(&old_dir), &a.mirror.join(&old_dir));
    let cfg = b.engine.config().clone();
    b.engine = kluis_sync::Engine::open(cfg).unwrap();
    let mut rep = Replicator::new(&a.mirror, &b.mirror);
    rep.base = tree_all(&a.mirror);
    converge(&mut [&mut a, &mut b], &mut rep);
    for d in [&a, &b] {
        let tree = d.tree();
        let files: Vec<_> = tree.keys().filter(|k| !k.ends_with('/')).collect();
        assert_eq!(
            tree.get("renamed/x.txt").map(Vec::as_slice),
            Some(&b"x edited on b"[..]),
            "{}: {files:?}",
            d.name
        );
        assert_eq!(
            tree.get("renamed/y.txt").map(Vec::as_slice),
            Some(&b"y edited on b"[..])
        );
        assert!(!files.iter().any(|k| k.starts_with("dir/")), "{files:?}");
        let trash = tree_all(&d.plain.join(".kluis-trash"));
        for (k, v) in trash.iter().filter(|(k, _)| !k.ends_with('/')) {
            assert!(
                tree.values().any(|x| x == v),
                "{}: {k} only in the trash",
                d.name
            );
        }
    }
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}
