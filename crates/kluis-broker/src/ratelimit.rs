//! Fixed-window rate limits, per peer IP and per account.
//!
//! Counters live in memory, per broker instance: with N instances behind a
//! load balancer the effective limit is up to N times the configured one.

use std::collections::HashMap;
use std::sync::Mutex;

/// One limit: at most `max` events per `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Events allowed per window.
    pub max: u32,
    /// Window length in seconds.
    pub window_secs: i64,
}

/// Counts events per key in fixed windows.
#[derive(Debug)]
pub struct RateLimiter {
    limit: Limit,
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

/// Past this many keys, stale windows are dropped on the next insert.
const PRUNE_AT: usize = 100_000;

impl RateLimiter {
    /// A limiter enforcing `limit`.
    pub fn new(limit: Limit) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Records one event for `key` at `now`; false if over the limit.
    pub fn check(&self, key: &str, now: i64) -> bool {
        let window = self.limit.window_secs.max(1);
        let start = now - now.rem_euclid(window);
        let mut map = match self.windows.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() >= PRUNE_AT {
            map.retain(|_, (s, _)| *s == start);
        }
        let entry = map.entry(key.to_owned()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        if entry.1 >= self.limit.max {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_resets_next_window() {
        let rl = RateLimiter::new(Limit {
            max: 2,
            window_secs: 60,
        });
        assert!(rl.check("a", 0));
        assert!(rl.check("a", 1));
        assert!(!rl.check("a", 2));
        assert!(rl.check("b", 2));
        assert!(rl.check("a", 60));
    }
}
