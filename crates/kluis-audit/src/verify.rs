//! Verifying a log: the chain rule, sequence, time order and checkpoints.
//! RECOVERY.md §6.

use std::collections::HashMap;

use crate::chain::{Head, SignedCheckpoint};
use crate::entry::{Action, AuditRow, ChainHash, chain_hash};
use crate::error::{AuditError, Tamper};

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Rows verified.
    pub rows: u64,
    /// The head: compare it with the last head you saw (or published) to
    /// detect truncation, which no log can detect about itself.
    pub head: Head,
    /// Checkpoint rows found (all genuine).
    pub checkpoints: u64,
    /// The last row covered by a genuine checkpoint, if any.
    pub last_checkpointed_seq: Option<u64>,
    /// Rows after the last checkpointed row: protected by the chain only,
    /// not yet by a signature.
    pub unsigned_tail: u64,
}

/// Verifies rows in stored order (the broker reads them `ORDER BY` its
/// insertion id or exports them as written). Fails on the first problem,
/// naming the row; see [`Tamper`] for the findings.
pub fn verify(rows: &[AuditRow], org_public_key: &[u8; 32]) -> Result<Report, AuditError> {
    verify_rows(rows, org_public_key).map_err(AuditError::Tampered)
}

fn verify_rows(rows: &[AuditRow], org_public_key: &[u8; 32]) -> Result<Report, Tamper> {
    let mut positions: HashMap<u64, Vec<usize>> = HashMap::with_capacity(rows.len());
    for (pos, row) in rows.iter().enumerate() {
        positions.entry(row.seq).or_default().push(pos);
    }
    let mut hashes: Vec<ChainHash> = Vec::with_capacity(rows.len());
    let mut prev: Option<&AuditRow> = None;
    let mut last_checkpointed: Option<u64> = None;
    let mut checkpoints = 0u64;
    for (pos, row) in rows.iter().enumerate() {
        let expected = pos as u64 + 1;
        if row.seq != expected {
            return Err(misplaced(row.seq, expected, pos, &positions));
        }
        if chain_hash(&row.prev_hash, row.seq, &row.entry) != row.hash {
            return Err(Tamper::Edited { seq: row.seq });
        }
        match prev {
            None if row.prev_hash != ChainHash::GENESIS => {
                return Err(Tamper::Edited { seq: row.seq });
            }
            Some(p) if row.prev_hash != p.hash => {
                // Both rows are self-consistent, so p's hash moved: p was
                // edited and re-hashed after `row` was written.
                return Err(Tamper::Rehashed {
                    seq: p.seq,
                    next: row.seq,
                });
            }
            Some(p) if row.entry.time < p.entry.time => {
                return Err(Tamper::TimeWentBackwards { seq: row.seq });
            }
            _ => {}
        }
        if row.entry.action == Action::Checkpoint {
            let seq = row.seq;
            let cp = SignedCheckpoint::from_details(&row.entry.details).ok_or(
                Tamper::MalformedCheckpoint {
                    seq,
                    reason: "missing or mistyped fields",
                },
            )?;
            if !cp.is_signed_by(org_public_key) {
                return Err(Tamper::ForgedCheckpoint { seq });
            }
            if cp.covers_seq == 0 || cp.covers_seq >= seq {
                return Err(Tamper::MalformedCheckpoint {
                    seq,
                    reason: "covers a later row",
                });
            }
            let covered = usize::try_from(cp.covers_seq - 1)
                .ok()
                .and_then(|i| hashes.get(i))
                .ok_or(Tamper::MalformedCheckpoint {
                    seq,
                    reason: "covers a missing row",
                })?;
            if *covered != cp.covers_hash {
                return Err(Tamper::HistoryRewritten {
                    checkpoint_seq: seq,
                    covers_seq: cp.covers_seq,
                    since: last_checkpointed.map_or(1, |s| s + 1),
                });
            }
            checkpoints += 1;
            last_checkpointed =
                Some(last_checkpointed.map_or(cp.covers_seq, |s| s.max(cp.covers_seq)));
        }
        hashes.push(row.hash);
        prev = Some(row);
    }
    let head = prev.map_or(Head::GENESIS, Head::of);
    Ok(Report {
        rows: rows.len() as u64,
        head,
        checkpoints,
        last_checkpointed_seq: last_checkpointed,
        unsigned_tail: head.seq - last_checkpointed.unwrap_or(0),
    })
}

/// Names the problem when position `pos` holds `found` instead of `expected`.
fn misplaced(
    found: u64,
    expected: u64,
    pos: usize,
    positions: &HashMap<u64, Vec<usize>>,
) -> Tamper {
    let at = |seq: u64| positions.get(&seq).map(Vec::as_slice).unwrap_or_default();
    if found < expected {
        // Seen before at an earlier position, or displaced to here.
        if at(found).iter().any(|&p| p < pos) {
            return Tamper::Duplicated { seq: found };
        }
        return Tamper::Reordered {
            seq: found,
            position: pos,
        };
    }
    match at(expected).iter().find(|&&p| p > pos) {
        Some(&later) => Tamper::Reordered {
            seq: expected,
            position: later,
        },
        None => Tamper::Deleted { seq: expected },
    }
}
