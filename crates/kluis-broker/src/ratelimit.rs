//! Rate limits (issue 18.2).
//!
//! * [`RateLimiter`]: per peer network, in memory, per broker instance — a
//!   GCRA token bucket (the algorithm of the `governor` crate) over an LRU
//!   map with a fixed capacity, so attacker-chosen keys cannot grow it.
//! * [`account::LoginPolicy`]: per account, in the database so that every
//!   instance on one database shares it — exponential backoff per (account,
//!   source network) and a generous ceiling per account over all networks.
//!
//! The order is what keeps victims out of it: an attempt refused by the
//! per-network limit charges nothing to the account.

use std::collections::hash_map::RandomState;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use hashlink::LruCache;
use sha2::{Digest, Sha256};

pub mod account;

/// One limit, as a token bucket: a burst of `max` events, refilled at `max`
/// per `window_secs` (one every `window_secs / max`). Unlike a fixed window
/// it never lets `2 × max` through around a window boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// The burst: events allowed at once (0 refuses everything).
    pub max: u32,
    /// Seconds to refill the whole burst.
    pub window_secs: i64,
}

/// GCRA (generic cell rate algorithm): a token bucket kept as one number
/// per key, the theoretical arrival time (TAT) of the next event, in ms.
#[derive(Debug, Clone, Copy)]
pub struct Gcra {
    /// Milliseconds per token (`None`: `max` is 0, nothing passes).
    interval_ms: Option<i64>,
    /// How far the TAT may run ahead of now: (burst − 1) intervals.
    tolerance_ms: i64,
}

impl Gcra {
    /// The bucket for `limit`.
    pub fn new(limit: Limit) -> Self {
        if limit.max == 0 {
            return Self {
                interval_ms: None,
                tolerance_ms: 0,
            };
        }
        let window_ms = limit.window_secs.max(1).saturating_mul(1000);
        let interval_ms = (window_ms / i64::from(limit.max)).max(1);
        Self {
            interval_ms: Some(interval_ms),
            tolerance_ms: interval_ms.saturating_mul(i64::from(limit.max) - 1),
        }
    }

    /// Takes one token at `now_ms` from the bucket whose TAT is `tat_ms`
    /// (0 for a new key); false, and `tat_ms` unchanged, if none is left.
    pub fn take(&self, tat_ms: &mut i64, now_ms: i64) -> bool {
        let Some(interval) = self.interval_ms else {
            return false;
        };
        let tat = (*tat_ms).max(now_ms);
        if tat - now_ms > self.tolerance_ms {
            return false;
        }
        *tat_ms = tat.saturating_add(interval);
        true
    }
}

/// Default number of keys a [`RateLimiter`] remembers (`[limits]
/// limiter_capacity`).
pub const DEFAULT_CAPACITY: usize = 100_000;

/// A [`Gcra`] per key in a bounded LRU map. When the map is full the least
/// recently seen key is forgotten: usually one whose bucket has refilled
/// (its state is that of a new key); docs/BROKER.md says what an attacker
/// with more than `capacity` addresses gains.
#[derive(Debug)]
pub struct RateLimiter<K: Hash + Eq> {
    gcra: Gcra,
    entries: Mutex<LruCache<K, i64, RandomState>>,
}

impl<K: Hash + Eq> RateLimiter<K> {
    /// A limiter enforcing `limit` over at most `capacity` keys (at least 1).
    pub fn new(limit: Limit, capacity: usize) -> Self {
        Self {
            gcra: Gcra::new(limit),
            // SipHash with a random key: the keys are attacker-chosen.
            entries: Mutex::new(LruCache::with_hasher(capacity.max(1), RandomState::new())),
        }
    }

    /// Records one event for `key` at `now` (Unix seconds); false, and
    /// nothing charged, if over the limit.
    pub fn check(&self, key: K, now: i64) -> bool {
        self.check_ms(key, now.saturating_mul(1000))
    }

    /// [`Self::check`] with `now` in milliseconds.
    pub fn check_ms(&self, key: K, now_ms: i64) -> bool {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tat) = map.get_mut(&key) {
            return self.gcra.take(tat, now_ms);
        }
        let mut tat = 0;
        let ok = self.gcra.take(&mut tat, now_ms);
        if ok {
            map.insert(key, tat);
        }
        ok
    }

    /// Keys currently remembered.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The source network an address is limited as: an IPv4 address itself,
/// an IPv6 address's /64 (one subscriber holds a whole /64). IPv4-mapped
/// IPv6 addresses count as IPv4.
pub fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                IpAddr::from(o)
            }
        },
    }
}

/// The fixed-size key an e-mail address is limited under (SHA-256 of the
/// normalised address): bounded memory whatever the address's length.
pub fn account_key(email: &kluis_types::Email) -> [u8; 32] {
    Sha256::digest(email.as_str().as_bytes()).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    fn limit(max: u32, window_secs: i64) -> Limit {
        Limit { max, window_secs }
    }

    #[test]
    fn limits_per_key_and_refills() {
        let rl = RateLimiter::new(limit(2, 60), 10);
        assert!(rl.check("a", 0));
        assert!(rl.check("a", 1));
        assert!(!rl.check("a", 2));
        assert!(rl.check("b", 2));
        // One token back every 30 s.
        assert!(!rl.check("a", 29));
        assert!(rl.check("a", 30));
        assert!(!rl.check("a", 30));
        assert!(rl.check("a", 200));
        assert!(rl.check("a", 200));
        assert!(!rl.check("a", 200));
    }

    #[test]
    fn zero_refuses_everything() {
        let rl = RateLimiter::new(limit(0, 60), 10);
        assert!(!rl.check("a", 0));
        assert!(rl.is_empty());
    }

    /// The fixed window let `max` through at 59.9 s and `max` more at
    /// 60.0 s; the bucket lets through the burst plus what refilled.
    #[test]
    fn no_double_burst_at_a_window_edge() {
        let rl = RateLimiter::new(limit(10, 60), 10);
        let passed = (0..40).filter(|i| rl.check_ms("k", 59_900 + i * 5)).count();
        assert_eq!(passed, 10, "the burst, and nothing refilled in 0.2 s");
    }

    #[test]
    fn entries_stay_at_the_cap() {
        let rl = RateLimiter::new(limit(5, 60), 1000);
        for i in 0..100_000u32 {
            assert!(rl.check(i, 0));
        }
        assert_eq!(rl.len(), 1000);
        // The most recent keys are remembered, with their debt.
        for _ in 0..4 {
            assert!(rl.check(99_999, 0));
        }
        assert!(!rl.check(99_999, 0));
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(network(a), network(b));
        assert_ne!(network(a), network(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(network(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_ne!(network(v4), network("192.0.2.8".parse().unwrap()));
    }
}
