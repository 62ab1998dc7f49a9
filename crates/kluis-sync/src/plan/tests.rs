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

static NONE_ALLOWED: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
static NOT_SEEN: std::sync::LazyLock<std::collections::HashMap<String, i64>> =
    std::sync::LazyLock::new(Default::default);
static NOT_SUPERSEDED: std::sync::LazyLock<std::collections::HashMap<[u8; 16], String>> =
    std::sync::LazyLock::new(Default::default);
static NOT_DAMAGED: std::sync::LazyLock<std::collections::HashMap<String, (u64, i64)>> =
    std::sync::LazyLock::new(Default::default);

fn s(x: &str) -> String {
    x.to_owned()
}

fn run(c: &Case) -> Plan {
    run_opts(
        c,
        &Opts {
            quiet: 0,
            ..Opts::default()
        },
    )
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
            total: 20,
            missing_in_mirror: 0,
            sample: ["a0", "a1", "a2", "a3", "a4"].map(s).to_vec(),
        })
    );
    assert!(p.ops.is_empty());
}

/// Twenty synced files; `gone_local` of them deleted in the plaintext
/// folder, `gone_mirror` others deleted from the mirror, and `changed` one
/// more changed locally.
fn twenty(gone_local: usize, gone_mirror: usize) -> Case {
    let mut c = Case {
        name: "",
        local: vec![],
        remote: vec![],
        index: vec![],
        expect: vec![],
    };
    const NAMES: [&str; 20] = [
        "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b0", "b1", "b2", "b3", "b4",
        "b5", "b6", "b7", "b8", "b9",
    ];
    for (k, n) in NAMES.iter().enumerate() {
        c.index
            .push((*n, ifile((5, OLD, k as u64 + 1), (200, OLD), k as u8)));
        if k >= gone_local {
            c.local.push((*n, file(5, OLD, k as u64 + 1)));
        }
        if k < gone_local || k >= gone_local + gone_mirror {
            c.remote.push((*n, rfile(200, OLD, k as u8)));
        }
    }
    c
}

#[derive(Default)]
struct Opts {
    hold: bool,
    seen: std::collections::HashMap<String, i64>,
    quiet: i64,
    recent: usize,
    allowed: std::collections::BTreeSet<String>,
    restore: bool,
    damaged: std::collections::HashMap<String, (u64, i64)>,
    members_outdated: bool,
}

fn run_opts(c: &Case, o: &Opts) -> Plan {
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
        allowed_deletions: &o.allowed,
        hold_deletions: o.hold,
        deletion_seen: &o.seen,
        deletion_quiet: o.quiet,
        recent_deletions: o.recent,
        restore_missing: o.restore,
        damaged: &o.damaged,
        superseded: &NOT_SUPERSEDED,
        ignore: &Ignore::with(&[]),
        members_outdated: o.members_outdated,
    })
}

fn deletions(p: &Plan) -> usize {
    p.ops.iter().filter(|o| o.is_file_deletion()).count()
}

/// Issue 17.6: deletions arriving in batches. A wave is not acted on until
/// no new deletion has come for the quiet time; then it is judged whole.
#[test]
fn a_wave_of_deletions_waits_until_it_is_quiet_then_is_judged_whole() {
    let c = twenty(0, 3);
    let mut o = Opts {
        quiet: 1_000,
        ..Opts::default()
    };
    // Three just appeared: withheld, with a wake-up when quiet.
    let p = run_opts(&c, &o);
    assert_eq!(deletions(&p), 0);
    assert_eq!(p.guard, None);
    assert_eq!(p.wake_at, Some(NOW + 1_000));
    assert_eq!(p.deletions, ["a0", "a1", "a2"].map(s));
    // Seen long enough ago: they go.
    for d in &p.deletions {
        o.seen.insert(d.clone(), NOW - 1_000);
    }
    assert_eq!(deletions(&run_opts(&c, &o)), 3);
    // More arrived meanwhile (the wave goes on): the whole wave waits...
    let c = twenty(0, 15);
    let p = run_opts(&c, &o);
    assert_eq!(deletions(&p), 0);
    // ...and once quiet, 15 of 20 trip the guard: nothing is trashed.
    for d in &p.deletions {
        o.seen.insert(d.clone(), NOW - 1_000);
    }
    let p = run_opts(&c, &o);
    assert_eq!(deletions(&p), 0);
    assert!(
        matches!(
            p.guard,
            Some(Guard::MassDeletion {
                deletions: 15,
                missing_in_mirror: 15,
                ..
            })
        ),
        "{:?}",
        p.guard
    );
}

/// Deletions applied in the last hour count: twelve of twenty synced went
/// earlier, three more now make more than half of what the pair held.
#[test]
fn the_guard_adds_up_the_deletions_of_its_window() {
    let mut c = twenty(0, 3);
    c.index.truncate(8);
    c.local.truncate(8);
    c.remote
        .retain(|(p, _)| c.index.iter().any(|(q, _)| q == p));
    let p = run_opts(&c, &Opts::default());
    assert_eq!(deletions(&p), 3, "alone, 3 of 8 is not a mass deletion");
    let p = run_opts(
        &c,
        &Opts {
            recent: 12,
            ..Opts::default()
        },
    );
    assert_eq!(deletions(&p), 0);
    assert!(p.guard.is_some());
}

/// Once tripped the guard holds every unconfirmed deletion, however few
/// are left (a folder coming back gradually), but lets everything else
/// sync; confirmed deletions go ahead; a restore puts back instead.
#[test]
fn a_held_guard_withholds_only_deletions_and_confirmed_ones_go() {
    let mut c = twenty(1, 1);
    // b9 changed in the plaintext folder: an upload, not a deletion.
    c.local.retain(|(p, _)| *p != "b9");
    c.local.push(("b9", file(6, OLD, 20)));
    let hold = Opts {
        hold: true,
        ..Opts::default()
    };
    let p = run_opts(&c, &hold);
    assert_eq!(
        p.ops,
        vec![Operation::Upload { path: s("b9") }],
        "{:?}",
        p.ops
    );
    assert!(p.guard.is_some());
    let allowed = Opts {
        hold: true,
        allowed: [s("a0")].into(),
        ..Opts::default()
    };
    let p = run_opts(&c, &allowed);
    assert!(p.ops.contains(&Operation::DeleteRemote { path: s("a0") }));
    assert!(!p.ops.iter().any(|o| o.path() == "a1"));
    let restore = Opts {
        hold: true,
        restore: true,
        ..Opts::default()
    };
    let p = run_opts(&c, &restore);
    assert_eq!(deletions(&p), 0);
    assert!(p.ops.contains(&Operation::Download { path: s("a0") }));
    assert!(p.ops.contains(&Operation::Upload { path: s("a1") }));
    assert_eq!(p.guard, None);
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
        allowed_deletions: &NONE_ALLOWED,
        hold_deletions: false,
        deletion_seen: &NOT_SEEN,
        deletion_quiet: 0,
        recent_deletions: 0,
        restore_missing: false,
        damaged: &NOT_DAMAGED,
        superseded: &NOT_SUPERSEDED,
        ignore: &Ignore::with(&[]),
        members_outdated: false,
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
        allowed_deletions: &NONE_ALLOWED,
        hold_deletions: false,
        deletion_seen: &NOT_SEEN,
        deletion_quiet: 0,
        recent_deletions: 0,
        restore_missing: false,
        damaged: &NOT_DAMAGED,
        superseded: &NOT_SUPERSEDED,
        ignore,
        members_outdated: false,
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

/// A damaged ciphertext (with the stat it was judged with) is never read:
/// where the plaintext changed it is replaced, else left alone; once it
/// changes it is read as usual.
#[test]
fn a_damaged_ciphertext_is_replaced_or_left_alone_never_read() {
    let mut c = twenty(0, 0);
    // a0: changed on both sides; a1: changed in the mirror only.
    c.local.retain(|(p, _)| *p != "a0");
    c.local.push(("a0", file(6, OLD, 1)));
    c.remote.retain(|(p, _)| *p != "a0" && *p != "a1");
    c.remote.push(("a0", rfile(300, OLD, 0)));
    c.remote.push(("a1", rfile(300, OLD, 1)));
    let run = |damaged: &std::collections::HashMap<String, (u64, i64)>| {
        run_opts(
            &c,
            &Opts {
                damaged: damaged.clone(),
                ..Opts::default()
            },
        )
        .ops
    };
    assert_eq!(
        run(&NOT_DAMAGED),
        vec![
            Operation::Merge { path: s("a0") },
            Operation::Download { path: s("a1") }
        ]
    );
    let damaged = [(s("a0"), (300, OLD)), (s("a1"), (300, OLD))].into();
    assert_eq!(
        run(&damaged),
        vec![Operation::ReplaceDamaged { path: s("a0") }]
    );
    // Judged with another stat: it changed since, and is read again.
    let stale = [(s("a1"), (299, OLD))].into();
    assert!(run(&stale).contains(&Operation::Download { path: s("a1") }));
}

/// The plan, not the engine, decides how new files are applied: from
/// `BATCH_MIN` on they are one batch where the first of them was, the runs
/// of new mirror directories are made together, and a change of members
/// comes first when the plan writes into the mirror.
#[test]
fn new_files_are_batched_and_a_member_update_comes_first() {
    let new = |n: usize| {
        let mut c = Case {
            name: "",
            local: vec![anchor_l(), ("d", dir(50)), ("e", dir(51))],
            remote: vec![anchor_r()],
            index: vec![anchor_i()],
            expect: vec![],
        };
        const FILES: [&str; 4] = ["d/x0", "d/x1", "d/x2", "d/x3"];
        for (k, f) in FILES.iter().take(n).enumerate() {
            c.local.push((f, file(5, OLD, 60 + k as u64)));
        }
        c
    };
    let p = run(&new(3));
    assert!(p.only_new);
    assert_eq!(p.ops.len(), 5, "{:?}", p.ops);
    assert!(p.ops.contains(&Operation::MkdirRemote { path: s("d") }));
    assert!(p.ops.contains(&Operation::Upload { path: s("d/x2") }));

    let mut c = new(4);
    // The anchor changed locally: an upload of a synced file, not new.
    c.local.retain(|(p, _)| *p != "z");
    c.local.push(("z", file(2, OLD, 99)));
    let paths = vec![s("d/x0"), s("d/x1"), s("d/x2"), s("d/x3")];
    let scanned = (0..4).map(|k| Some(file(5, OLD, 60 + k))).collect();
    let batched = vec![
        Operation::MkdirRemoteRun {
            paths: vec![s("d"), s("e")],
        },
        Operation::UploadNew { paths, scanned },
        Operation::Upload { path: s("z") },
    ];
    let p = run(&c);
    assert_eq!(p.ops, batched);
    assert!(!p.only_new);
    let p = run_opts(
        &c,
        &Opts {
            members_outdated: true,
            ..Opts::default()
        },
    );
    assert_eq!(p.ops.first(), Some(&Operation::UpdateMembers));
    assert_eq!(p.ops[1..], batched[..]);
    // Nothing written into the mirror: the members wait.
    let only_dirs = Case {
        name: "",
        local: vec![anchor_l(), ("d", dir(50))],
        remote: vec![anchor_r()],
        index: vec![anchor_i()],
        expect: vec![],
    };
    let p = run_opts(
        &only_dirs,
        &Opts {
            members_outdated: true,
            ..Opts::default()
        },
    );
    assert_eq!(p.ops, vec![Operation::MkdirRemote { path: s("d") }]);
}
