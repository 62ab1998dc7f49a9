//! The pure planner: (local scan, mirror scan, index, clock) → sorted
//! operations. No I/O, no clock, no randomness: same input, same output.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::index::IndexEntry;
use crate::scan::{Ignore, Kind, RemoteEntry, RemoteScan, Stat};

/// One step for the executor. Paths are plaintext paths; the executor
/// derives ciphertext paths from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Operation {
    /// A plaintext rename, mirrored as a ciphertext rename.
    RenameRemote {
        from: String,
        to: String,
        kind: Kind,
    },
    /// A ciphertext rename (same file id), mirrored as a plaintext rename.
    RenameLocal { from: String, to: String },
    /// Another device moved the version of `from` that this device then
    /// replaced with an edit (the moved file's id is the one this device
    /// superseded) to `to`: the edit follows the move — the plaintext moves
    /// to `to` and is encrypted over the old version there, and this
    /// device's ciphertext under the old name goes.
    FollowRename { from: String, to: String },
    /// A directory renamed in the mirror (every file under it reappeared,
    /// by file id, at the same place under one new directory), mirrored as
    /// one plaintext directory rename.
    RenameLocalDir { from: String, to: String },
    /// Create the encrypted directory.
    MkdirRemote { path: String },
    /// Create the plaintext directory.
    MkdirLocal { path: String },
    /// The directory exists on both sides; record it.
    Record { path: String },
    /// Encrypt the plaintext into the mirror (create or replace).
    Upload { path: String },
    /// Decrypt the ciphertext into the plaintext folder (create or replace).
    Download { path: String },
    /// Both sides changed: keep both if they differ (the local version
    /// becomes the conflict copy).
    Merge { path: String },
    /// The ciphertext is damaged (fails authentication, unchanged for a
    /// while) and the plaintext changed: the plaintext replaces it; the
    /// damaged bytes are kept in the Kluis trash.
    ReplaceDamaged { path: String },
    /// A sync client's conflicted copy of ciphertext: decrypt it into a
    /// Kluis conflict copy of `of`.
    AdoptSyncConflict { cpath: String, of: String },
    /// Deleted in the plaintext folder: delete the ciphertext.
    DeleteRemote { path: String },
    /// Deleted in the mirror: move the plaintext to the Kluis trash.
    TrashLocal { path: String },
    /// Remove the (empty) encrypted directory.
    RmdirRemote { path: String },
    /// Remove the (empty) plaintext directory.
    RmdirLocal { path: String },
    /// Gone on both sides: drop from the index.
    Forget { path: String },
    /// New files (no index entry), [`BATCH_MIN`] or more: encrypted
    /// together in parallel batches, where the first of them would have
    /// been uploaded. `scanned[i]` is what the scan saw of `paths[i]`: what
    /// the header and the index record, and what the file must still be
    /// right before its rename.
    UploadNew {
        paths: Vec<String>,
        scanned: Vec<Option<Stat>>,
    },
    /// The directory's view changes the folder's members (people who
    /// left, members with new keys): the folder metadata is rewritten
    /// (next epoch) before anything is written into the mirror, so that it
    /// is encrypted to the current members. Always first in its plan.
    UpdateMembers,
    /// A run of new mirror directories in a plan with [`Operation::UploadNew`]:
    /// made together, with one fsync per parent instead of one each.
    MkdirRemoteRun { paths: Vec<String> },
}

/// From this many new files on, a plan encrypts them together
/// ([`Operation::UploadNew`]).
pub const BATCH_MIN: usize = 4;

impl Operation {
    /// Execution phase; within a phase, paths sort ascending except rmdirs.
    fn phase(&self) -> u8 {
        use Operation::*;
        match self {
            UpdateMembers => 0,
            RenameRemote {
                kind: Kind::Dir, ..
            }
            | RenameLocalDir { .. } => 0,
            MkdirRemote { .. } | MkdirRemoteRun { .. } | MkdirLocal { .. } | Record { .. } => 1,
            RenameRemote { .. } | RenameLocal { .. } | FollowRename { .. } => 2,
            Upload { .. }
            | Download { .. }
            | Merge { .. }
            | ReplaceDamaged { .. }
            | AdoptSyncConflict { .. }
            | UploadNew { .. } => 3,
            DeleteRemote { .. } | TrashLocal { .. } => 4,
            RmdirRemote { .. } | RmdirLocal { .. } => 5,
            Forget { .. } => 6,
        }
    }

    /// The main path the operation is about.
    pub fn path(&self) -> &str {
        use Operation::*;
        match self {
            RenameRemote { from, .. }
            | RenameLocal { from, .. }
            | RenameLocalDir { from, .. }
            | FollowRename { from, .. } => from,
            AdoptSyncConflict { cpath, .. } => cpath,
            UploadNew { paths, .. } | MkdirRemoteRun { paths } => {
                paths.first().map_or("", String::as_str)
            }
            UpdateMembers => "",
            MkdirRemote { path }
            | MkdirLocal { path }
            | Record { path }
            | Upload { path }
            | Download { path }
            | Merge { path }
            | ReplaceDamaged { path }
            | DeleteRemote { path }
            | TrashLocal { path }
            | RmdirRemote { path }
            | RmdirLocal { path }
            | Forget { path } => path,
        }
    }

    fn sort_cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.phase().cmp(&other.phase()).then_with(|| {
            if self.phase() == 5 {
                other.path().cmp(self.path())
            } else {
                self.path().cmp(other.path())
            }
        })
    }
}

/// Why the planner refused to act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Guard {
    /// More than half of the synced files would be deleted (in one wave
    /// of deletions, or within the last hour), or the guard tripped before
    /// and not every file is back yet. Only the deletions are withheld;
    /// everything else syncs.
    MassDeletion {
        /// Deletions withheld.
        deletions: usize,
        /// Files synced.
        total: usize,
        /// Of `deletions`, files gone from the mirror (their plaintext
        /// would go to the trash); the rest are gone from the plaintext
        /// folder (their ciphertext would be deleted).
        missing_in_mirror: usize,
        /// The first few paths of those deletions, sorted.
        sample: Vec<String>,
    },
    /// The plaintext folder is empty although files were synced.
    LocalRootEmpty,
    /// The mirror is empty although files were synced.
    MirrorRootEmpty,
}

/// Inputs of one planning round.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// Plaintext tree.
    pub local: &'a BTreeMap<String, Stat>,
    /// Mirror tree.
    pub remote: &'a RemoteScan,
    /// Last synced state.
    pub index: &'a BTreeMap<String, IndexEntry>,
    /// The clock, ns since the epoch.
    pub now: i64,
    /// Quiet period, ns: a changed file is picked up only when its mtime and
    /// ctime are at least this old.
    pub quiet: i64,
    /// Fewest deletions that can trip the mass-deletion guard.
    pub mass_delete_min: usize,
    /// Deletions the user confirmed (by path): they go ahead whatever the
    /// guard says.
    pub allowed_deletions: &'a BTreeSet<String>,
    /// The guard tripped before and the deletions it withheld are not all
    /// back: every unconfirmed deletion stays withheld.
    pub hold_deletions: bool,
    /// When each pending deletion was first planned (ns); a deletion not
    /// in it is new now.
    pub deletion_seen: &'a HashMap<String, i64>,
    /// Deletions wait until no new one has appeared for this long (ns), so
    /// that a wave (a sync client applying a folder deletion in pieces) is
    /// judged whole.
    pub deletion_quiet: i64,
    /// Deletions applied within the guard's window (the last hour).
    pub recent_deletions: usize,
    /// Put back what is missing on one side from the other, instead of
    /// deleting it (the user's "restore" after a guard).
    pub restore_missing: bool,
    /// Ciphertext known to be damaged, by plaintext path, with the size and
    /// mtime it had: never downloaded while it has them; replaced where the
    /// plaintext changed.
    pub damaged: &'a HashMap<String, (u64, i64)>,
    /// File ids of versions this device replaced with its own edit, with
    /// the path of that edit (only the ids of new mirror files are needed).
    pub superseded: &'a HashMap<[u8; 16], String>,
    /// This device's ignore rules. An ignored path is not this device's to
    /// sync in either direction: never uploaded, downloaded, deleted or
    /// trashed here, even when it was synced before the rule was added or
    /// another device (with other rules) put it in the mirror.
    pub ignore: &'a Ignore,
    /// The directory's view would change the folder's members: a plan that
    /// writes into the mirror (an upload or a merge) starts with
    /// [`Operation::UpdateMembers`].
    pub members_outdated: bool,
}

/// The planner's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Sorted operations.
    pub ops: Vec<Operation>,
    /// Paths left for later (still being written).
    pub deferred: Vec<String>,
    /// When to plan again for the deferred paths (ns).
    pub wake_at: Option<i64>,
    /// Set when the plan (or its deletions) was withheld.
    pub guard: Option<Guard>,
    /// Every deletion this plan would make (withheld or not), sorted:
    /// files, then directories.
    pub deletions: Vec<String>,
    /// Only new files and new mirror directories: once they are done, a
    /// new plan would find nothing but changes made meanwhile (which the
    /// watcher reports), so the engine plans no further round.
    pub only_new: bool,
}

fn local_changed(l: &Stat, i: &IndexEntry) -> bool {
    l.kind != i.kind || (l.kind == Kind::File && (l.size != i.l_size || l.mtime != i.l_mtime))
}

fn remote_changed(r: &RemoteEntry, i: &IndexEntry) -> bool {
    r.stat.kind != i.kind
        || (r.stat.kind == Kind::File && (r.stat.size != i.r_size || r.stat.mtime != i.r_mtime))
}

fn reparent(p: &str, from: &str, to: &str) -> Option<String> {
    if p == from {
        Some(to.to_owned())
    } else {
        p.strip_prefix(from)
            .filter(|rest| rest.starts_with('/'))
            .map(|rest| format!("{to}{rest}"))
    }
}

fn move_keys<V>(m: &mut BTreeMap<String, V>, from: &str, to: &str) {
    let keys: Vec<String> = m
        .range(from.to_owned()..)
        .take_while(|(k, _)| reparent(k, from, "").is_some())
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        if let (Some(v), Some(nk)) = (m.remove(&k), reparent(&k, from, to)) {
            m.insert(nk, v);
        }
    }
}

/// Plan one round.
pub fn plan(input: PlanInput<'_>) -> Plan {
    let mut local = input.local.clone();
    let mut remote = input.remote.entries.clone();
    let mut index = input.index.clone();
    let mut ops = Vec::new();

    let files_synced = index.values().filter(|e| e.kind == Kind::File).count();
    let local_root_empty = local.is_empty();
    let mirror_root_empty = remote.is_empty() && input.remote.conflicts.is_empty();

    detect_local_renames(&mut local, &mut remote, &mut index, &mut ops);
    detect_remote_renames(&mut local, &mut remote, &mut index, &mut ops);
    detect_followed_renames(
        &mut local,
        &mut remote,
        &mut index,
        input.superseded,
        &mut ops,
    );

    let mut deferred = Vec::new();
    let mut wake_at: Option<i64> = None;
    let mut settled = |s: &Stat, path: &str| -> bool {
        let ready = s.last_change() + input.quiet;
        if s.kind == Kind::File && ready > input.now {
            deferred.push(path.to_owned());
            wake_at = Some(wake_at.map_or(ready, |w| w.min(ready)));
            false
        } else {
            true
        }
    };

    let keys: BTreeSet<&String> = local
        .keys()
        .chain(remote.keys())
        .chain(index.keys())
        .collect();
    for p in keys {
        let l = local.get(p);
        let r = remote.get(p);
        let i = index.get(p);
        if r.is_some_and(|r| r.offline) {
            continue;
        }
        let path = p.clone();
        if input.ignore.is_ignored_path(p) {
            // Hands off. Only an entry gone from both trees leaves the index.
            if l.is_none() && r.is_none() && i.is_some() {
                ops.push(Operation::Forget { path });
            }
            continue;
        }
        let op = match (l, r, i) {
            (None, None, None) => None,
            (None, None, Some(_)) => Some(Operation::Forget { path }),
            (Some(l), None, None) => Some(match l.kind {
                Kind::Dir => Operation::MkdirRemote { path },
                Kind::File => Operation::Upload { path },
            }),
            (None, Some(r), None) => Some(match r.stat.kind {
                Kind::Dir => Operation::MkdirLocal { path },
                Kind::File => Operation::Download { path },
            }),
            (Some(l), Some(r), None) => Some(if l.kind == Kind::Dir && r.stat.kind == Kind::Dir {
                Operation::Record { path }
            } else {
                Operation::Merge { path }
            }),
            (Some(l), Some(r), Some(i)) => match (local_changed(l, i), remote_changed(r, i)) {
                (false, false) => None,
                (true, false) => Some(Operation::Upload { path }),
                (false, true) => Some(Operation::Download { path }),
                (true, true) => Some(Operation::Merge { path }),
            },
            (None, Some(r), Some(i)) => Some(match (i.kind, remote_changed(r, i)) {
                (Kind::Dir, false) if input.restore_missing => Operation::MkdirLocal { path },
                (Kind::File, false) if input.restore_missing => Operation::Download { path },
                (Kind::Dir, false) => Operation::RmdirRemote { path },
                (Kind::File, false) => Operation::DeleteRemote { path },
                (_, true) if r.stat.kind == Kind::Dir => Operation::MkdirLocal { path },
                (_, true) => Operation::Download { path },
            }),
            (Some(l), None, Some(i)) => Some(match (i.kind, local_changed(l, i)) {
                (Kind::Dir, false) if input.restore_missing => Operation::MkdirRemote { path },
                (Kind::File, false) if input.restore_missing => Operation::Upload { path },
                (Kind::Dir, false) => Operation::RmdirLocal { path },
                (Kind::File, false) => Operation::TrashLocal { path },
                (_, true) if l.kind == Kind::Dir => Operation::MkdirRemote { path },
                (_, true) => Operation::Upload { path },
            }),
        };
        let Some(mut op) = op else { continue };
        if r.is_some_and(|r| input.damaged.get(p) == Some(&(r.stat.size, r.stat.mtime))) {
            match op {
                // Both changed, and the other side cannot be read: this
                // side's version wins.
                Operation::Merge { path } if l.is_some_and(|l| l.kind == Kind::File) => {
                    op = Operation::ReplaceDamaged { path };
                }
                // Nothing to read until it changes (the engine reports it).
                Operation::Download { .. } | Operation::Merge { .. } => continue,
                _ => {}
            }
        }
        // A side we are about to read must have settled.
        let reads_local = matches!(
            op,
            Operation::Upload { .. } | Operation::Merge { .. } | Operation::ReplaceDamaged { .. }
        );
        let reads_remote = matches!(op, Operation::Download { .. } | Operation::Merge { .. });
        let ok_l = !reads_local || l.is_none_or(|l| settled(l, p));
        let ok_r = !reads_remote || r.is_none_or(|r| settled(&r.stat, p));
        if ok_l && ok_r {
            ops.push(op);
        }
    }
    for c in &input.remote.conflicts {
        if input.ignore.is_ignored_path(&c.of) {
            continue;
        }
        if settled(&c.stat, &c.cpath) {
            ops.push(Operation::AdoptSyncConflict {
                cpath: c.cpath.clone(),
                of: c.of.clone(),
            });
        }
    }

    ops.sort_by(Operation::sort_cmp);
    deferred.sort();
    deferred.dedup();

    let mut plan = guard_deletions(
        ops,
        deferred,
        wake_at,
        &input,
        files_synced,
        local_root_empty,
        mirror_root_empty,
    );
    group_new(&mut plan, &input);
    let writes = plan.ops.iter().any(|op| {
        matches!(
            op,
            Operation::Upload { .. } | Operation::UploadNew { .. } | Operation::Merge { .. }
        )
    });
    if input.members_outdated && writes {
        plan.ops.insert(0, Operation::UpdateMembers);
    }
    plan
}

/// The last step of a plan: with [`BATCH_MIN`] new files or more, they
/// become one [`Operation::UploadNew`] where the first of them was, and
/// each run of new mirror directories one [`Operation::MkdirRemoteRun`].
/// Also sets [`Plan::only_new`]. "New" is "not in the index" (as scanned,
/// before renames were matched).
fn group_new(plan: &mut Plan, input: &PlanInput<'_>) {
    let is_new = |op: &Operation| matches!(op, Operation::Upload { path } if !input.index.contains_key(path));
    plan.only_new = plan
        .ops
        .iter()
        .all(|op| is_new(op) || matches!(op, Operation::MkdirRemote { .. }));
    let new = plan.ops.iter().filter(|op| is_new(op)).count();
    if new < BATCH_MIN {
        return;
    }
    let mut grouped: Vec<Operation> = Vec::with_capacity(plan.ops.len() - new + 1);
    let mut batch: Option<usize> = None;
    for op in std::mem::take(&mut plan.ops) {
        match op {
            Operation::Upload { path } if !input.index.contains_key(&path) => {
                let scanned = input.local.get(&path).copied();
                let at = *batch.get_or_insert_with(|| {
                    grouped.push(Operation::UploadNew {
                        paths: Vec::with_capacity(new),
                        scanned: Vec::with_capacity(new),
                    });
                    grouped.len() - 1
                });
                if let Some(Operation::UploadNew { paths, scanned: s }) = grouped.get_mut(at) {
                    paths.push(path);
                    s.push(scanned);
                }
            }
            Operation::MkdirRemote { path } => match grouped.last_mut() {
                Some(Operation::MkdirRemoteRun { paths }) => paths.push(path),
                _ => grouped.push(Operation::MkdirRemoteRun { paths: vec![path] }),
            },
            op => grouped.push(op),
        }
    }
    plan.ops = grouped;
}

impl Operation {
    /// A file deletion (ciphertext deleted, or plaintext trashed).
    pub fn is_file_deletion(&self) -> bool {
        matches!(
            self,
            Operation::DeleteRemote { .. } | Operation::TrashLocal { .. }
        )
    }

    fn is_rmdir(&self) -> bool {
        matches!(
            self,
            Operation::RmdirRemote { .. } | Operation::RmdirLocal { .. }
        )
    }
}

/// How many paths a guard names.
const GUARD_SAMPLE: usize = 5;

/// The mass-deletion guard, over the sorted `ops` of a plan. Deletions the
/// user confirmed go ahead. The others are withheld while the guard holds
/// or trips: more than half of the files the pair held (before the
/// deletions of the last hour) would be gone. Otherwise they wait until no
/// new deletion has appeared for the quiet time, so that a wave is judged
/// whole. An empty root (an unmounted disk, a sync client logged out)
/// withholds the whole plan. Directories are removed only once no file
/// deletion is withheld.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site, each a plain value"
)]
fn guard_deletions(
    ops: Vec<Operation>,
    mut deferred: Vec<String>,
    mut wake_at: Option<i64>,
    input: &PlanInput<'_>,
    files_synced: usize,
    local_root_empty: bool,
    mirror_root_empty: bool,
) -> Plan {
    let mut deletions: Vec<String> = ops
        .iter()
        .filter(|o| o.is_file_deletion())
        .map(|o| o.path().to_owned())
        .collect();
    deletions.extend(
        ops.iter()
            .filter(|o| o.is_rmdir())
            .map(|o| o.path().to_owned()),
    );
    let unconfirmed: Vec<&Operation> = ops
        .iter()
        .filter(|o| o.is_file_deletion() && !input.allowed_deletions.contains(o.path()))
        .collect();
    if unconfirmed.is_empty() {
        return Plan {
            ops,
            deferred,
            wake_at,
            guard: None,
            deletions,
            only_new: false,
        };
    }
    let root_guard = if files_synced == 0 {
        None
    } else if local_root_empty {
        Some(Guard::LocalRootEmpty)
    } else if mirror_root_empty {
        Some(Guard::MirrorRootEmpty)
    } else {
        None
    };
    if root_guard.is_some() {
        return Plan {
            ops: Vec::new(),
            deferred,
            wake_at,
            guard: root_guard,
            deletions,
            only_new: false,
        };
    }
    let judged = unconfirmed.len() + input.recent_deletions;
    let held_before = files_synced + input.recent_deletions;
    let trips = judged >= input.mass_delete_min && judged * 2 > held_before;
    let guard = (input.hold_deletions || trips).then(|| Guard::MassDeletion {
        deletions: unconfirmed.len(),
        total: files_synced,
        missing_in_mirror: unconfirmed
            .iter()
            .filter(|o| matches!(o, Operation::TrashLocal { .. }))
            .count(),
        sample: unconfirmed
            .iter()
            .take(GUARD_SAMPLE)
            .map(|o| o.path().to_owned())
            .collect(),
    });
    let newest = unconfirmed
        .iter()
        .map(|o| {
            input
                .deletion_seen
                .get(o.path())
                .copied()
                .unwrap_or(input.now)
        })
        .max()
        .unwrap_or(input.now);
    let settled = newest + input.deletion_quiet <= input.now;
    if guard.is_none() && settled {
        return Plan {
            ops,
            deferred,
            wake_at,
            guard: None,
            deletions,
            only_new: false,
        };
    }
    if guard.is_none() {
        let ready = newest + input.deletion_quiet;
        wake_at = Some(wake_at.map_or(ready, |w| w.min(ready)));
        deferred.extend(unconfirmed.iter().map(|o| o.path().to_owned()));
        deferred.sort();
        deferred.dedup();
    }
    let withheld: BTreeSet<&str> = unconfirmed.iter().map(|o| o.path()).collect();
    let ops = ops
        .iter()
        .filter(|o| !o.is_rmdir() && !withheld.contains(o.path()))
        .cloned()
        .collect();
    Plan {
        ops,
        deferred,
        wake_at,
        guard,
        deletions,
        only_new: false,
    }
}

/// Plaintext renames: an index entry missing locally whose inode shows up
/// under a new, unindexed path. Directories first (shallow first), then files
/// (which must also keep size and mtime).
fn detect_local_renames(
    local: &mut BTreeMap<String, Stat>,
    remote: &mut BTreeMap<String, RemoteEntry>,
    index: &mut BTreeMap<String, IndexEntry>,
    ops: &mut Vec<Operation>,
) {
    for kind in [Kind::Dir, Kind::File] {
        let new_by_ino: HashMap<u64, String> = local
            .iter()
            .filter(|(p, s)| s.kind == kind && s.ino != 0 && !index.contains_key(*p))
            .map(|(p, s)| (s.ino, p.clone()))
            .collect();
        let missing: Vec<String> = index
            .iter()
            .filter(|(p, e)| e.kind == kind && e.l_ino != 0 && !local.contains_key(*p))
            .map(|(p, _)| p.clone())
            .collect();
        for from in missing {
            let Some(e) = index.get(&from) else { continue }; // moved by an ancestor
            let Some(to) = new_by_ino.get(&e.l_ino) else {
                continue;
            };
            let (Some(l), Some(r)) = (local.get(to), remote.get(&from)) else {
                continue;
            };
            if remote.contains_key(to) || index.contains_key(to) {
                continue;
            }
            if kind == Kind::File
                && (l.size != e.l_size || l.mtime != e.l_mtime || remote_changed(r, e))
            {
                continue;
            }
            ops.push(Operation::RenameRemote {
                from: from.clone(),
                to: to.clone(),
                kind,
            });
            move_keys(remote, &from, to);
            move_keys(index, &from, to);
        }
    }
}

/// Mirror renames: an indexed file missing in the mirror whose Kluis file id
/// shows up under a new ciphertext path.
fn detect_remote_renames(
    local: &mut BTreeMap<String, Stat>,
    remote: &mut BTreeMap<String, RemoteEntry>,
    index: &mut BTreeMap<String, IndexEntry>,
    ops: &mut Vec<Operation>,
) {
    let new_by_id: HashMap<[u8; 16], String> = remote
        .iter()
        .filter(|(p, _)| !index.contains_key(*p))
        .filter_map(|(p, r)| r.file_id.map(|id| (id, p.clone())))
        .collect();
    detect_remote_dir_renames(local, remote, index, &new_by_id, ops);
    let missing: Vec<String> = index
        .iter()
        .filter(|(p, e)| e.kind == Kind::File && e.file_id.is_some() && !remote.contains_key(*p))
        .map(|(p, _)| p.clone())
        .collect();
    for from in missing {
        let Some(e) = index.get(&from) else { continue };
        let Some(to) = e.file_id.and_then(|id| new_by_id.get(&id)) else {
            continue;
        };
        let (Some(l), Some(r)) = (local.get(&from), remote.get(to)) else {
            continue;
        };
        if local.contains_key(to) || local_changed(l, e) || r.stat.size != e.r_size {
            continue;
        }
        ops.push(Operation::RenameLocal {
            from: from.clone(),
            to: to.clone(),
        });
        move_keys(local, &from, to);
        move_keys(index, &from, to);
        // The renamed ciphertext keeps its content but gets a new mtime on
        // some clients; the executor records the fresh stat.
        if let (Some(ie), Some(r)) = (index.get_mut(to), remote.get(to)) {
            ie.r_mtime = r.stat.mtime;
        }
    }
}

/// A new mirror file whose file id is a version this device superseded
/// with an edit of `from`: another device moved the old version (alone, or
/// with its directory) while this device edited it. The edit follows the
/// move, if `from` is still here and this device's version is still the
/// one under `from` in the mirror (or gone from it).
fn detect_followed_renames(
    local: &mut BTreeMap<String, Stat>,
    remote: &mut BTreeMap<String, RemoteEntry>,
    index: &mut BTreeMap<String, IndexEntry>,
    superseded: &HashMap<[u8; 16], String>,
    ops: &mut Vec<Operation>,
) {
    if superseded.is_empty() {
        return;
    }
    let moved: Vec<(String, String)> = remote
        .iter()
        .filter(|(p, r)| {
            r.stat.kind == Kind::File && !index.contains_key(*p) && !local.contains_key(*p)
        })
        .filter_map(|(p, r)| Some((superseded.get(&r.file_id?)?.clone(), p.clone())))
        .collect();
    for (from, to) in moved {
        let Some(e) = index.get(&from) else { continue };
        let ours_there = remote.get(&from).is_none_or(|r| !remote_changed(r, e));
        let here = local.get(&from).is_some_and(|l| l.kind == Kind::File);
        if e.kind != Kind::File || !here || !ours_there || local.contains_key(&to) {
            continue;
        }
        ops.push(Operation::FollowRename {
            from: from.clone(),
            to: to.clone(),
        });
        local.remove(&from);
        remote.remove(&from);
        index.remove(&from);
        remote.remove(&to);
    }
}

/// Mirror directory renames, shallowest first: an indexed directory
/// missing in the mirror all of whose indexed files reappear (by file id,
/// unchanged on both sides) at the same relative paths under one new,
/// unindexed mirror directory. Anything less clear-cut is left to the
/// per-file renames.
fn detect_remote_dir_renames(
    local: &mut BTreeMap<String, Stat>,
    remote: &mut BTreeMap<String, RemoteEntry>,
    index: &mut BTreeMap<String, IndexEntry>,
    new_by_id: &HashMap<[u8; 16], String>,
    ops: &mut Vec<Operation>,
) {
    let missing: Vec<String> = index
        .iter()
        .filter(|(p, e)| e.kind == Kind::Dir && !remote.contains_key(*p))
        .map(|(p, _)| p.clone())
        .collect();
    for from in missing {
        if !index.contains_key(&from) {
            continue; // moved with an ancestor
        }
        let Some(to) = common_new_parent(&from, local, remote, index, new_by_id) else {
            continue;
        };
        let ok = local.get(&from).is_some_and(|l| l.kind == Kind::Dir)
            && remote.get(&to).is_some_and(|r| r.stat.kind == Kind::Dir)
            && !local.contains_key(&to)
            && !index.contains_key(&to);
        if !ok {
            continue;
        }
        ops.push(Operation::RenameLocalDir {
            from: from.clone(),
            to: to.clone(),
        });
        move_keys(local, &from, &to);
        move_keys(index, &from, &to);
        // As for a file rename: the moved ciphertext keeps its content (same
        // file id and size) but may carry a new mtime; the executor records
        // the fresh stat.
        let prefix = format!("{to}/");
        for (p, ie) in index
            .range_mut(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
        {
            if let Some(r) = remote.get(p).filter(|r| r.stat.kind == Kind::File) {
                ie.r_mtime = r.stat.mtime;
            }
        }
    }
}

/// Where every indexed file under `dir` went, if that is one place: the
/// new directory `to` with `dir/rel` now at `to/rel` for each file.
fn common_new_parent(
    dir: &str,
    local: &BTreeMap<String, Stat>,
    remote: &BTreeMap<String, RemoteEntry>,
    index: &BTreeMap<String, IndexEntry>,
    new_by_id: &HashMap<[u8; 16], String>,
) -> Option<String> {
    let prefix = format!("{dir}/");
    let mut to: Option<String> = None;
    let files = index
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .filter(|(_, e)| e.kind == Kind::File);
    for (p, e) in files {
        let now_at = new_by_id.get(&e.file_id?)?;
        let rel = &p[prefix.len()..];
        let base = now_at.strip_suffix(rel)?.strip_suffix('/')?;
        let unchanged = local.get(p).is_some_and(|l| !local_changed(l, e))
            && remote.get(now_at).is_some_and(|r| r.stat.size == e.r_size);
        match &to {
            _ if !unchanged || base.is_empty() => return None,
            None => to = Some(base.to_owned()),
            Some(t) if t == base => {}
            Some(_) => return None,
        }
    }
    to
}

#[cfg(test)]
mod tests;
