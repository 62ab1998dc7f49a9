//! Telling a ciphertext that is still arriving from one that is damaged
//! (issue 17, point 4). Both fail to authenticate. A sync client that writes
//! in place, in pieces, changes the file's size or mtime as it goes; a
//! damaged file stays as it is. So a file that has failed to authenticate
//! with the same size and mtime for longer than `after` is judged damaged:
//! it is no longer retried (until it changes), it is reported with what to
//! do, and where the plaintext changed the plaintext replaces it
//! ([`crate::Operation::ReplaceDamaged`]). Kept in memory: after a restart
//! a damaged file is judged again, `after` later.

use std::collections::{BTreeMap, HashMap};

use crate::error::{ItemError, ItemErrorKind};
use crate::scan::{RemoteScan, Stat};

#[derive(Debug)]
struct Suspect {
    stat: (u64, i64),
    since: i64,
    cpath: String,
    why: String,
}

/// Ciphertexts that failed to authenticate, by plaintext path.
#[derive(Debug, Default)]
pub(crate) struct DamageTracker {
    suspects: HashMap<String, Suspect>,
}

impl DamageTracker {
    /// The damaged ciphertexts at `now`: path → the size and mtime they
    /// were judged with.
    pub fn damaged(&self, now: i64, after: i64) -> HashMap<String, (u64, i64)> {
        self.suspects
            .iter()
            .filter(|(_, s)| s.since.saturating_add(after) <= now)
            .map(|(p, s)| (p.clone(), s.stat))
            .collect()
    }

    /// After a round: note the ciphertexts that did not authenticate
    /// (`Incomplete` errors), forget those that changed or went, and turn
    /// the errors of files now judged damaged into `Damaged` ones. True if
    /// a file was judged damaged just now (another round can act on it).
    pub fn observe(
        &mut self,
        errors: &mut [ItemError],
        remote: &RemoteScan,
        local: &BTreeMap<String, Stat>,
        now: i64,
        after: i64,
    ) -> bool {
        let stat_of = |p: &str| {
            remote
                .entries
                .get(p)
                .map(|r| ((r.stat.size, r.stat.mtime), r.cpath.clone()))
        };
        self.suspects
            .retain(|p, s| stat_of(p).is_some_and(|(st, _)| st == s.stat));
        let mut newly = false;
        for e in errors.iter_mut() {
            if e.kind != ItemErrorKind::Incomplete {
                continue;
            }
            let Some((stat, cpath)) = stat_of(&e.path) else {
                continue;
            };
            let s = self.suspects.entry(e.path.clone()).or_insert(Suspect {
                stat,
                since: now,
                cpath,
                why: e.detail.clone(),
            });
            if s.since.saturating_add(after) <= now {
                newly = true;
                e.kind = ItemErrorKind::Damaged;
                e.detail =
                    crate::exec::damaged_advice(&s.cpath, local.contains_key(&e.path), &s.why);
            }
        }
        newly
    }

    /// The damaged files that are still there, as errors for the report.
    pub fn report(
        &self,
        remote: &RemoteScan,
        local: &BTreeMap<String, Stat>,
        now: i64,
        after: i64,
    ) -> Vec<ItemError> {
        let mut out: Vec<ItemError> = self
            .suspects
            .iter()
            .filter(|(p, s)| {
                s.since.saturating_add(after) <= now
                    && remote
                        .entries
                        .get(*p)
                        .is_some_and(|r| (r.stat.size, r.stat.mtime) == s.stat)
            })
            .map(|(p, s)| ItemError {
                path: p.clone(),
                kind: ItemErrorKind::Damaged,
                detail: crate::exec::damaged_advice(&s.cpath, local.contains_key(p), &s.why),
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }
}
