//! The budget of audit rows a user may report (`POST /v1/audit/shares`,
//! issue 18.4): a token bucket per user, so a client (or a stolen token)
//! cannot flood the log. Every user may write [`SHARE_ROWS_BURST`] rows at
//! once, then [`SHARE_ROWS_PER_HOUR`] per hour; beyond that the broker
//! answers 429 and writes nothing. Time comes from the broker's
//! [`Clock`](crate::clock::Clock) (seconds), so tests drive it.
//!
//! Memory is bounded: at most [`MAX_USERS`] buckets (keys are
//! authenticated user IDs, so a stranger cannot make new ones). When the
//! map is full, buckets that have refilled completely are dropped (they
//! hold no information); if none has, the map is emptied, which at worst
//! grants each user one more burst.

use std::collections::HashMap;
use std::sync::Mutex;

use kluis_types::UserId;

/// Rows one user may report at once.
pub const SHARE_ROWS_BURST: u32 = 120;
/// Rows one user may report per hour after the burst (one every 3 s).
pub const SHARE_ROWS_PER_HOUR: u32 = 1_200;
/// Most buckets kept.
pub const MAX_USERS: usize = 100_000;

/// Seconds to earn one row.
const SECS_PER_ROW: i64 = 3_600 / SHARE_ROWS_PER_HOUR as i64;

/// One user's bucket: rows left, and the time up to which refills have
/// been counted.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    rows: u32,
    counted_to: i64,
}

impl Bucket {
    fn refill(&mut self, now: i64) {
        let earned = (now - self.counted_to).max(0) / SECS_PER_ROW;
        if earned > 0 {
            let rows = i64::from(self.rows) + earned;
            self.rows =
                u32::try_from(rows.min(i64::from(SHARE_ROWS_BURST))).unwrap_or(SHARE_ROWS_BURST);
            self.counted_to += earned * SECS_PER_ROW;
        }
        if self.rows == SHARE_ROWS_BURST {
            self.counted_to = now;
        }
    }
}

/// Per-instance share-row budgets.
#[derive(Debug, Default)]
pub struct ShareAuditLimiter(Mutex<HashMap<UserId, Bucket>>);

impl ShareAuditLimiter {
    /// Takes one row from `user`'s budget; `false` when it is spent.
    pub(crate) fn take(&self, user: &UserId, now: i64) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_USERS && !map.contains_key(user) {
            map.retain(|_, b| {
                b.refill(now);
                b.rows < SHARE_ROWS_BURST
            });
            if map.len() >= MAX_USERS {
                map.clear();
            }
        }
        let bucket = map.entry(user.clone()).or_insert(Bucket {
            rows: SHARE_ROWS_BURST,
            counted_to: now,
        });
        bucket.refill(now);
        if bucket.rows == 0 {
            return false;
        }
        bucket.rows -= 1;
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    fn user(n: usize) -> UserId {
        UserId::parse(&format!("{n:032x}")).unwrap()
    }

    #[test]
    fn a_burst_then_the_stated_rate() {
        let l = ShareAuditLimiter::default();
        let u = user(1);
        let t = 1_000_000;
        for _ in 0..SHARE_ROWS_BURST {
            assert!(l.take(&u, t));
        }
        assert!(!l.take(&u, t), "the burst is spent");
        assert!(!l.take(&u, t + SECS_PER_ROW - 1), "not yet earned");
        assert!(l.take(&u, t + SECS_PER_ROW), "one row per 3 s");
        assert!(!l.take(&u, t + SECS_PER_ROW));
        // An hour later: the stated rate, never more than the burst.
        let mut ok = 0;
        for _ in 0..10_000 {
            ok += u32::from(l.take(&u, t + SECS_PER_ROW + 3_600));
        }
        assert_eq!(ok, SHARE_ROWS_BURST.min(SHARE_ROWS_PER_HOUR));
        // Another user has their own budget.
        assert!(l.take(&user(2), t));
    }

    #[test]
    fn memory_stays_bounded() {
        let l = ShareAuditLimiter::default();
        for n in 0..MAX_USERS + 10 {
            assert!(l.take(&user(n), 5));
        }
        assert!(l.len() <= MAX_USERS);
    }
}
