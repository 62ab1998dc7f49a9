//! Table-driven planner tests over (local, remote, index) cases.

use super::*;
use crate::scan::SyncConflict;

const NOW: i64 = 1_000_000_000_000;
const QUIET: i64 = 1_000_000_000;
const OLD: i64 = NOW - 10 * QUIET;

fn file(size: u64, mtime: i64, ino: u64) -> Stat {
    Stat {
        kind: Kind::File,
        size,
        mtime,
        ctime: mtime,
        ino,
    }
}
fn dir(ino: u64) -> Stat {
    Stat {
        kind: Kind::Dir,
        size: 0,
        mtime: OLD,
        ctime: OLD,
        ino,
    }
}
fn rfile(size: u64, mtime: i64, id: u8) -> RemoteEntry {
    RemoteEntry {
        cpath: String::new(),
        stat: file(size, mtime, 0),
        file_id: Some([id; 16]),
        offline: false,
    }
}
fn rdir() -> RemoteEntry {
    RemoteEntry {
        cpath: String::new(),
        stat: dir(0),
        file_id: None,
        offline: false,
    }
}
/// Synced file: local (size, mtime, ino), remote (size, mtime), file id.
fn ifile(l: (u64, i64, u64), r: (u64, i64), id: u8) -> IndexEntry {
    IndexEntry {
        kind: Kind::File,
        l_size: l.0,
        l_mtime: l.1,
        l_ino: l.2,
        hash: vec![],
        cpath: String::new(),
        r_size: r.0,
        r_mtime: r.1,
        file_id: Some([id; 16]),
    }
}
fn idir(ino: u64) -> IndexEntry {
    IndexEntry {
        kind: Kind::Dir,
        l_size: 0,
        l_mtime: OLD,
        l_ino: ino,
        hash: vec![],
        cpath: String::new(),
        r_size: 0,
        r_mtime: OLD,
        file_id: None,
    }
}

struct Case {
    name: &'static str,
    local: Vec<(&'static str, Stat)>,
    remote: Vec<(&'static str, RemoteEntry)>,
    index: Vec<(&'static str, IndexEntry)>,
    expect: Vec<Operation>,
}

fn s(x: &str) -> String {
    x.to_owned()
}

fn run(c: &Case) -> Plan {
    let local: BTreeMap<String, Stat> = c.local.iter().map(|(p, v)| (s(p), *v)).collect();
    let remote = RemoteScan {
        entries: c.remote.iter().map(|(p, v)| (s(p), v.clone())).collect(),
        ..RemoteScan::default()
    };
    let index: BTreeMap<String, IndexEntry> =
        c.index.iter().map(|(p, v)| (s(p), v.clone())).collect();
    plan(PlanInput {
        local: &local,
        remote: &remote,
        index: &index,
        now: NOW,
        quiet: QUIET,
        mass_delete_min: 10,
        allow_mass_delete: false,
        ignore: &Ignore::with(&[]),
    })
}

// An unrelated synced file that keeps the roots non-empty.
fn anchor_l() -> (&'static str, Stat) {
    ("z", file(1, OLD, 99))
}
fn anchor_r() -> (&'static str, RemoteEntry) {
    ("z", rfile(100, OLD, 99))
}
fn anchor_i() -> (&'static str, IndexEntry) {
    ("z", ifile((1, OLD, 99), (100, OLD), 99))
}

#[test]
fn table() {
    use Operation::*;
    let synced = ifile((5, OLD, 1), (200, OLD), 1);
    let cases = vec![
        Case {
            name: "new local file uploads",
            local: vec![("a", file(5, OLD, 1))],
            remote: vec![],
            index: vec![],
            expect: vec![Upload { path: s("a") }],
        },
        Case {
            name: "new remote file downloads",
            local: vec![],
            remote: vec![("a", rfile(200, OLD, 1))],
            index: vec![],
            expect: vec![Download { path: s("a") }],
        },
        Case {
            name: "new on both sides merges",
            local: vec![("a", file(5, OLD, 1))],
            remote: vec![("a", rfile(200, OLD, 1))],
            index: vec![],
            expect: vec![Merge { path: s("a") }],
        },
        Case {
            name: "unchanged does nothing",
            local: vec![("a", file(5, OLD, 1))],
            remote: vec![("a", rfile(200, OLD, 1))],
            index: vec![("a", synced.clone())],
            expect: vec![],
        },
        Case {
            name: "local edit uploads",
            local: vec![("a", file(6, OLD + 1, 1))],
            remote: vec![("a", rfile(200, OLD, 1))],
            index: vec![("a", synced.clone())],
            expect: vec![Upload { path: s("a") }],
        },
        Case {
            name: "remote edit downloads",
            local: vec![("a", file(5, OLD, 1))],
            remote: vec![("a", rfile(300, OLD + 5, 2))],
            index: vec![("a", synced.clone())],
            expect: vec![Download { path: s("a") }],
        },
        Case {
            name: "both edited merges",
            local: vec![("a", file(6, OLD + 1, 1))],
            remote: vec![("a", rfile(300, OLD + 5, 2))],
            index: vec![("a", synced.clone())],
            expect: vec![Merge { path: s("a") }],
        },
        Case {
            name: "local delete deletes ciphertext",
            local: vec![anchor_l()],
            remote: vec![("a", rfile(200, OLD, 1)), anchor_r()],
            index: vec![("a", synced.clone()), anchor_i()],
            expect: vec![DeleteRemote { path: s("a") }],
        },
        Case {
            name: "remote delete trashes plaintext",
            local: vec![("a", file(5, OLD, 1)), anchor_l()],
            remote: vec![anchor_r()],
            index: vec![("a", synced.clone()), anchor_i()],
            expect: vec![TrashLocal { path: s("a") }],
        },
        Case {
            name: "edit beats remote delete",
            local: vec![("a", file(6, OLD + 1, 1)), anchor_l()],
            remote: vec![anchor_r()],
            index: vec![("a", synced.clone()), anchor_i()],
            expect: vec![Upload { path: s("a") }],
        },
        Case {
            name: "remote edit beats local delete",
            local: vec![anchor_l()],
            remote: vec![("a", rfile(300, OLD + 5, 2)), anchor_r()],
            index: vec![("a", synced.clone()), anchor_i()],
            expect: vec![Download { path: s("a") }],
        },
        Case {
            name: "gone on both sides is forgotten",
            local: vec![anchor_l()],
            remote: vec![anchor_r()],
            index: vec![("a", synced.clone()), anchor_i()],
            expect: vec![Forget { path: s("a") }],
        },
        Case {
            name: "file still being written waits",
            local: vec![("a", file(5, NOW - 10, 1))],
            remote: vec![],
            index: vec![],
            expect: vec![],
        },
        Case {
            name: "ciphertext still arriving waits",
            local: vec![],
            remote: vec![("a", rfile(5, NOW - 10, 1))],
            index: vec![],
            expect: vec![],
        },
        Case {
            name: "new dirs are created parents first",
            local: vec![("d", dir(7)), ("d/e", dir(8)), ("d/e/f", file(1, OLD, 9))],
            remote: vec![],
            index: vec![],
            expect: vec![
                MkdirRemote { path: s("d") },
                MkdirRemote { path: s("d/e") },
                Upload { path: s("d/e/f") },
            ],
        },
        Case {
            name: "remote dirs are created locally",
            local: vec![],
            remote: vec![("d", rdir()), ("d/f", rfile(100, OLD, 3))],
            index: vec![],
            expect: vec![MkdirLocal { path: s("d") }, Download { path: s("d/f") }],
        },
        Case {
            name: "dir on both sides is recorded",
            local: vec![("d", dir(7))],
            remote: vec![("d", rdir())],
            index: vec![],
            expect: vec![Record { path: s("d") }],
        },
        Case {
            name: "local file rename is a mirror rename",
            local: vec![("b", file(5, OLD, 1)), anchor_l()],
            remote: vec![("a", rfile(200, OLD, 1)), anchor_r()],
            index: vec![("a", synced.clone()), anchor_i()],
            expect: vec![RenameRemote {
                from: s("a"),
                to: s("b"),
                kind: Kind::File,
            }],
        },
        Case {
            name: "local deep dir rename is one mirror rename",
            local: vec![
                ("n", dir(7)),
                ("n/x", dir(8)),
                ("n/x/f", file(5, OLD, 1)),
                anchor_l(),
            ],
            remote: vec![
                ("o", rdir()),
                ("o/x", rdir()),
                ("o/x/f", rfile(200, OLD, 1)),
                anchor_r(),
            ],
            index: vec![
                ("o", idir(7)),
                ("o/x", idir(8)),
                ("o/x/f", synced.clone()),
                anchor_i(),
            ],
            expect: vec![RenameRemote {
                from: s("o"),
                to: s("n"),
                kind: Kind::Dir,
            }],
        },
        Case {
            name: "mirror rename (same file id) is a local rename",
            local: vec![("a", file(5, OLD, 1)), anchor_l()],
            remote: vec![("b", rfile(200, OLD + 3, 1)), anchor_r()],
            index: vec![("a", synced.clone()), anchor_i()],
            expect: vec![RenameLocal {
                from: s("a"),
                to: s("b"),
            }],
        },
        Case {
            name: "mirror deep dir rename is one local rename",
            local: vec![
                ("o", dir(7)),
                ("o/x", dir(8)),
                ("o/x/f", file(5, OLD, 1)),
                ("o/g", file(5, OLD, 2)),
                anchor_l(),
            ],
            remote: vec![
                ("n", rdir()),
                ("n/x", rdir()),
                ("n/x/f", rfile(200, OLD, 1)),
                ("n/g", rfile(200, OLD, 2)),
                anchor_r(),
            ],
            index: vec![
                ("o", idir(7)),
                ("o/x", idir(8)),
                ("o/x/f", synced.clone()),
                ("o/g", ifile((5, OLD, 2), (200, OLD), 2)),
                anchor_i(),
            ],
            expect: vec![RenameLocalDir {
                from: s("o"),
                to: s("n"),
            }],
        },
        Case {
            name: "mirror dir whose files went to two places stays per-file",
            local: vec![
                ("o", dir(7)),
                ("o/f", file(5, OLD, 1)),
                ("o/g", file(5, OLD, 2)),
                anchor_l(),
            ],
            remote: vec![
                ("n", rdir()),
                ("m", rdir()),
                ("n/f", rfile(200, OLD, 1)),
                ("m/g", rfile(200, OLD, 2)),
                anchor_r(),
            ],
            index: vec![
                ("o", idir(7)),
                ("o/f", synced.clone()),
                ("o/g", ifile((5, OLD, 2), (200, OLD), 2)),
                anchor_i(),
            ],
            expect: vec![
                MkdirLocal { path: s("m") },
                MkdirLocal { path: s("n") },
                RenameLocal {
                    from: s("o/f"),
                    to: s("n/f"),
                },
                RenameLocal {
                    from: s("o/g"),
                    to: s("m/g"),
                },
                RmdirLocal { path: s("o") },
            ],
        },
        Case {
            name: "edited then renamed locally uploads and deletes",
            local: vec![("b", file(9, OLD + 1, 1)), anchor_l()],
            remote: vec![("a", rfile(200, OLD, 1)), anchor_r()],
            index: vec![("a", synced.clone()), anchor_i()],
            expect: vec![Upload { path: s("b") }, DeleteRemote { path: s("a") }],
        },
        Case {
            name: "remote dir delete trashes then removes dir, deepest first",
            local: vec![
                ("d", dir(7)),
                ("d/e", dir(8)),
                ("d/e/f", file(5, OLD, 1)),
                anchor_l(),
            ],
            remote: vec![anchor_r()],
            index: vec![
                ("d", idir(7)),
                ("d/e", idir(8)),
                ("d/e/f", synced.clone()),
                anchor_i(),
            ],
            expect: vec![
                TrashLocal { path: s("d/e/f") },
                RmdirLocal { path: s("d/e") },
                RmdirLocal { path: s("d") },
            ],
        },
        Case {
            name: "offline placeholder is remote-only",
            local: vec![],
            remote: vec![(
                "a",
                RemoteEntry {
                    offline: true,
                    ..rfile(200, OLD, 1)
                },
            )],
            index: vec![],
            expect: vec![],
        },
    ];
    let mut failed = Vec::new();
    for c in &cases {
        let got = run(c);
        if got.ops != c.expect || got.guard.is_some() {
            failed.push(format!(
                "{}:\n  expected {:?}\n  got      {:?} guard {:?}",
                c.name, c.expect, got.ops, got.guard
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn deferred_files_report_a_wake_time() {
    let c = Case {
        name: "",
        local: vec![("a", file(5, NOW - 10, 1))],
        remote: vec![],
        index: vec![],
        expect: vec![],
    };
    let p = run(&c);
    assert_eq!(p.deferred, vec![s("a")]);
    assert_eq!(p.wake_at, Some(NOW - 10 + QUIET));
}

#[test]
fn mass_deletion_is_guarded() {
    let mut local = vec![];
    let mut remote = vec![];
    let mut index = vec![];
    const NAMES: [&str; 20] = [
        "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b0", "b1", "b2", "b3", "b4",
        "b5", "b6", "b7", "b8", "b9",
    ];
    for (k, n) in NAMES.iter().enumerate() {
        remote.push((*n, rfile(200, OLD, k as u8)));
        index.push((*n, ifile((5, OLD, k as u64 + 1), (200, OLD), k as u8)));
        if k >= 15 {
            local.push((*n, file(5, OLD, k as u64 + 1)));
        }
    }
    let p = run(&Case {
        name: "",
        local,
        remote,
        index,
        expect: vec![],
    });
    assert_eq!(
        p.guard,
        Some(Guard::MassDeletion {
            deletions: 15,
            total: 20
        })
    );
    assert!(p.ops.is_empty());
}

#[test]
fn empty_roots_are_guarded() {
    let synced = ifile((5, OLD, 1), (200, OLD), 1);
    let p = run(&Case {
        name: "",
        local: vec![],
        remote: vec![("a", rfile(200, OLD, 1))],
        index: vec![("a", synced.clone())],
        expect: vec![],
    });
    assert_eq!(p.guard, Some(Guard::LocalRootEmpty));
    let p = run(&Case {
        name: "",
        local: vec![("a", file(5, OLD, 1))],
        remote: vec![],
        index: vec![("a", synced)],
        expect: vec![],
    });
    assert_eq!(p.guard, Some(Guard::MirrorRootEmpty));
}

#[test]
fn sync_client_conflict_copies_are_adopted() {
    let local = BTreeMap::new();
    let remote = RemoteScan {
        conflicts: vec![SyncConflict {
            cpath: s("x (conflicted copy).kls"),
            of: s("a"),
            stat: file(200, OLD, 0),
        }],
        ..RemoteScan::default()
    };
    let index = BTreeMap::new();
    let p = plan(PlanInput {
        local: &local,
        remote: &remote,
        index: &index,
        now: NOW,
        quiet: QUIET,
        mass_delete_min: 10,
        allow_mass_delete: false,
        ignore: &Ignore::with(&[]),
    });
    assert_eq!(
        p.ops,
        vec![Operation::AdoptSyncConflict {
            cpath: s("x (conflicted copy).kls"),
            of: s("a")
        }]
    );
}

#[test]
fn plan_is_deterministic() {
    let c = Case {
        name: "",
        local: vec![
            ("b", file(1, OLD, 2)),
            ("a", file(1, OLD, 3)),
            ("d", dir(4)),
        ],
        remote: vec![("c", rfile(1, OLD, 5)), ("e", rdir())],
        index: vec![],
        expect: vec![],
    };
    assert_eq!(run(&c), run(&c));
}

/// Ignore rules are this device's alone: a path they match is never
/// uploaded, downloaded, deleted or trashed here, whether it was synced
/// before the rule existed or another device put it in the mirror.
#[test]
fn ignored_paths_are_left_alone_in_both_trees() {
    let synced = ifile((5, OLD, 1), (200, OLD), 1);
    let local: BTreeMap<String, Stat> = [anchor_l()].into_iter().map(|(p, v)| (s(p), v)).collect();
    let remote = RemoteScan {
        entries: [
            // Synced before `*.log` was added here: still in the mirror.
            ("old.log", rfile(200, OLD, 1)),
            // Another device's file whose name this device ignores.
            ("theirs.log", rfile(300, OLD, 2)),
            ("logs", rdir()),
            ("logs/x.txt", rfile(300, OLD, 3)),
            anchor_r(),
        ]
        .into_iter()
        .map(|(p, v)| (s(p), v))
        .collect(),
        ..RemoteScan::default()
    };
    let index: BTreeMap<String, IndexEntry> = [
        ("old.log", synced.clone()),
        ("gone.log", synced),
        anchor_i(),
    ]
    .into_iter()
    .map(|(p, v)| (s(p), v))
    .collect();
    let input = |ignore| PlanInput {
        local: &local,
        remote: &remote,
        index: &index,
        now: NOW,
        quiet: QUIET,
        mass_delete_min: 10,
        allow_mass_delete: false,
        ignore,
    };
    let (with_rules, without) = (Ignore::with(&["*.log", "logs"]), Ignore::with(&[]));
    let p = plan(input(&with_rules));
    assert_eq!(p.guard, None);
    assert_eq!(
        p.ops,
        vec![Operation::Forget {
            path: s("gone.log")
        }],
        "no deletion in the mirror, no download of ignored names"
    );
    // Without the rules the same trees would delete and download: the
    // test above is not vacuous.
    let p = plan(input(&without));
    assert!(
        p.ops
            .contains(&Operation::DeleteRemote { path: s("old.log") })
    );
    assert!(p.ops.contains(&Operation::Download {
        path: s("theirs.log")
    }));
}
