//! The per-account login limit (issue 18.2): the decision, with no I/O.
//! The state lives in the database (`login_backoff`, `login_ceiling`,
//! migration 6) so that every broker instance on it shares it; the store
//! loads it, calls [`LoginPolicy::attempt`] in one transaction and writes
//! back what changed.
//!
//! Two parts, so that no stranger can lock a victim out:
//!
//! * **Backoff per (account, source network).** With OPAQUE a wrong
//!   password is noticed by the client, which never sends the finish, so
//!   every login start counts as a failure until a login from that network
//!   succeeds. After `free` failures each further start must wait twice as
//!   long as the previous one (`base_secs`, doubling up to `max_secs`).
//!   An attacker's failures delay only the attacker's network.
//! * **A ceiling per account over all networks**: a token bucket
//!   ([`super::Gcra`], `[limits] login_per_account`) that bounds the total
//!   of guesses when the attacker has many networks. A network from which
//!   the account logged in successfully within [`TRUSTED_SECS`] is exempt
//!   from the ceiling (it still has its own backoff), so the owner at a
//!   usual place is never stopped by it.

use serde::Deserialize;

use super::{Gcra, Limit};

/// How long a network stays exempt from the ceiling after a successful
/// login from it (30 days, a session's lifetime).
pub const TRUSTED_SECS: i64 = 30 * 24 * 3600;

/// `[limits] login_backoff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backoff {
    /// Failures from one network before the first wait.
    pub free: u32,
    /// The first wait, in seconds; each further failure doubles it.
    pub base_secs: i64,
    /// The longest wait.
    pub max_secs: i64,
    /// A network's failures are forgotten this long after its last wait
    /// ended with no new attempt.
    pub forget_secs: i64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            free: 5,
            base_secs: 1,
            max_secs: 900,
            forget_secs: 3600,
        }
    }
}

/// What the database holds for one (account, network) and its account.
/// A missing row reads as [`ThrottleState::default`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThrottleState {
    /// Login starts from this network since its last success.
    pub failures: i64,
    /// No start from this network before this (Unix s).
    pub next_at: i64,
    /// Until when this network is exempt from the ceiling (Unix s).
    pub trusted_until: i64,
    /// When the backoff row may be deleted (Unix s).
    pub expires_at: i64,
    /// The account ceiling's theoretical arrival time (Unix ms); the row
    /// may be deleted once it is in the past.
    pub ceiling_tat_ms: i64,
}

/// The per-account decision.
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    ceiling: Gcra,
    backoff: Backoff,
}

impl LoginPolicy {
    /// From `[limits] login_per_account` and `login_backoff`.
    pub fn new(ceiling: Limit, backoff: Backoff) -> Self {
        Self {
            ceiling: Gcra::new(ceiling),
            backoff,
        }
    }

    /// One login start at `now`: true, with `s` charged, if it may go on;
    /// false, with `s` untouched, if the network must wait or the account
    /// is at its ceiling.
    pub fn attempt(&self, s: &mut ThrottleState, now: i64) -> bool {
        if now < s.next_at {
            return false;
        }
        let mut next = *s;
        if next.trusted_until <= now
            && !self
                .ceiling
                .take(&mut next.ceiling_tat_ms, now.saturating_mul(1000))
        {
            return false;
        }
        next.failures = next.failures.saturating_add(1);
        let over = next.failures - i64::from(self.backoff.free);
        if over >= 0 {
            let factor = 1i64.checked_shl(u32::try_from(over.min(62)).unwrap_or(62));
            let wait = factor
                .map_or(i64::MAX, |f| f.saturating_mul(self.backoff.base_secs))
                .min(self.backoff.max_secs);
            next.next_at = now.saturating_add(wait);
        }
        next.expires_at = next
            .next_at
            .max(now)
            .saturating_add(self.backoff.forget_secs)
            .max(next.trusted_until);
        *s = next;
        true
    }

    /// The backoff row after a successful login from the network at `now`:
    /// no failures, exempt from the ceiling for [`TRUSTED_SECS`].
    pub fn success(now: i64) -> ThrottleState {
        let trusted_until = now.saturating_add(TRUSTED_SECS);
        ThrottleState {
            failures: 0,
            next_at: 0,
            trusted_until,
            expires_at: trusted_until,
            ceiling_tat_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> LoginPolicy {
        let l = crate::config::Limits::default();
        LoginPolicy::new(l.login_per_account, l.login_backoff)
    }

    /// A greedy attacker trying every second for `secs`: the times it got
    /// through. `networks` share the account's ceiling; each has its own
    /// backoff.
    fn greedy(policy: &LoginPolicy, networks: usize, secs: i64) -> Vec<i64> {
        let mut rows = vec![ThrottleState::default(); networks];
        let mut ceiling = 0;
        let mut passed = Vec::new();
        for now in 0..secs {
            for row in &mut rows {
                // As the store does: one ceiling row for the account.
                row.ceiling_tat_ms = ceiling;
                while policy.attempt(row, now) {
                    passed.push(now);
                }
                ceiling = row.ceiling_tat_ms;
            }
        }
        passed
    }

    fn max_per_hour(times: &[i64]) -> usize {
        times
            .iter()
            .map(|&t| times.iter().filter(|&&u| u >= t && u < t + 3600).count())
            .max()
            .unwrap_or(0)
    }

    /// The figures in docs/BROKER.md ("Threat model").
    #[test]
    fn guesses_per_account_per_hour_at_the_defaults() {
        let p = defaults();
        let one = greedy(&p, 1, 6 * 3600);
        assert_eq!(max_per_hour(&one), 17, "from one network, worst hour");
        let last_hours = one.iter().filter(|&&t| t >= 5 * 3600).count();
        assert_eq!(last_hours, 4, "from one network, sustained");
        let many = greedy(&p, 1000, 6 * 3600);
        assert_eq!(max_per_hour(&many), 59, "from many networks, worst hour");
        let last_hours = many.iter().filter(|&&t| t >= 5 * 3600).count();
        assert_eq!(last_hours, 30, "from many networks, sustained");
    }

    #[test]
    fn backoff_doubles_and_a_success_clears_it() {
        let p = defaults();
        let mut s = ThrottleState::default();
        for _ in 0..5 {
            assert!(p.attempt(&mut s, 100));
        }
        assert_eq!(s.next_at, 101);
        assert!(!p.attempt(&mut s, 100));
        assert!(p.attempt(&mut s, 101));
        assert_eq!(s.next_at, 103);
        let mut ok = LoginPolicy::success(103);
        ok.ceiling_tat_ms = s.ceiling_tat_ms;
        assert!(p.attempt(&mut ok, 103));
        assert_eq!(ok.failures, 1);
    }

    #[test]
    fn a_trusted_network_passes_a_spent_ceiling() {
        let p = LoginPolicy::new(
            Limit {
                max: 1,
                window_secs: 3600,
            },
            Backoff::default(),
        );
        let mut stranger = ThrottleState::default();
        assert!(p.attempt(&mut stranger, 0));
        let mut other = ThrottleState {
            ceiling_tat_ms: stranger.ceiling_tat_ms,
            ..ThrottleState::default()
        };
        assert!(!p.attempt(&mut other, 1), "ceiling spent");
        let mut owner = LoginPolicy::success(-10);
        owner.ceiling_tat_ms = stranger.ceiling_tat_ms;
        assert!(p.attempt(&mut owner, 1), "the owner's network is exempt");
    }
}
