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
}

impl Operation {
    /// Execution phase; within a phase, paths sort ascending except rmdirs.
    fn phase(&self) -> u8 {
        use Operation::*;
        match self {
            RenameRemote {
                kind: Kind::Dir, ..
            }
            | RenameLocalDir { .. } => 0,
            MkdirRemote { .. } | MkdirLocal { .. } | Record { .. } => 1,
            RenameRemote { .. } | RenameLocal { .. } => 2,
            Upload { .. } | Download { .. } | Merge { .. } | AdoptSyncConflict { .. } => 3,
            DeleteRemote { .. } | TrashLocal { .. } => 4,
            RmdirRemote { .. } | RmdirLocal { .. } => 5,
            Forget { .. } => 6,
        }
    }

    /// The main path the operation is about.
    pub fn path(&self) -> &str {
        use Operation::*;
        match self {
            RenameRemote { from, .. } | RenameLocal { from, .. } | RenameLocalDir { from, .. } => {
                from
            }
            AdoptSyncConflict { cpath, .. } => cpath,
            MkdirRemote { path }
            | MkdirLocal { path }
            | Record { path }
            | Upload { path }
            | Download { path }
            | Merge { path }
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
    /// More than half of the synced files would be deleted.
    MassDeletion { deletions: usize, total: usize },
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
    /// The user confirmed the deletions (or the guard is off).
    pub allow_mass_delete: bool,
    /// This device's ignore rules. An ignored path is not this device's to
    /// sync in either direction: never uploaded, downloaded, deleted or
    /// trashed here, even when it was synced before the rule was added or
    /// another device (with other rules) put it in the mirror.
    pub ignore: &'a Ignore,
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
    /// Set when the plan was withheld.
    pub guard: Option<Guard>,
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
    if !input.allow_mass_delete && files_synced > 0 {
        if local.is_empty() {
            return Plan {
                guard: Some(Guard::LocalRootEmpty),
                ..Plan::default()
            };
        }
        if remote.is_empty() && input.remote.conflicts.is_empty() {
            return Plan {
                guard: Some(Guard::MirrorRootEmpty),
                ..Plan::default()
            };
        }
    }

    detect_local_renames(&mut local, &mut remote, &mut index, &mut ops);
    detect_remote_renames(&mut local, &mut remote, &mut index, &mut ops);

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
                (Kind::Dir, false) => Operation::RmdirRemote { path },
                (Kind::File, false) => Operation::DeleteRemote { path },
                (_, true) if r.stat.kind == Kind::Dir => Operation::MkdirLocal { path },
                (_, true) => Operation::Download { path },
            }),
            (Some(l), None, Some(i)) => Some(match (i.kind, local_changed(l, i)) {
                (Kind::Dir, false) => Operation::RmdirLocal { path },
                (Kind::File, false) => Operation::TrashLocal { path },
                (_, true) if l.kind == Kind::Dir => Operation::MkdirRemote { path },
                (_, true) => Operation::Upload { path },
            }),
        };
        let Some(op) = op else { continue };
        // A side we are about to read must have settled.
        let reads_local = matches!(op, Operation::Upload { .. } | Operation::Merge { .. });
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

    let deletions = ops
        .iter()
        .filter(|o| {
            matches!(
                o,
                Operation::DeleteRemote { .. } | Operation::TrashLocal { .. }
            )
        })
        .count();
    if !input.allow_mass_delete
        && deletions >= input.mass_delete_min
        && deletions * 2 > files_synced
    {
        return Plan {
            guard: Some(Guard::MassDeletion {
                deletions,
                total: files_synced,
            }),
            deferred,
            wake_at,
            ..Plan::default()
        };
    }
    Plan {
        ops,
        deferred,
        wake_at,
        guard: None,
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
