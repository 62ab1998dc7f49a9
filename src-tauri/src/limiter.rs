//! Unlock attempts are rate-limited: three free tries, then a growing wait
//! (2 s, 4 s, 8 s … at most 60 s) before the next one is even tried. A
//! success resets it. The identity file's KDF already makes each guess slow;
//! this keeps someone at an unlocked desk from scripting the prompt.

use std::time::{Duration, Instant};

/// Failed-attempt bookkeeping.
#[derive(Debug, Default)]
pub struct Limiter {
    failures: u32,
    not_before: Option<Instant>,
}

const FREE: u32 = 3;

impl Limiter {
    /// `Err(wait)` when the next attempt must wait.
    pub fn check(&self, now: Instant) -> Result<(), Duration> {
        match self.not_before {
            Some(t) if t > now => Err(t - now),
            _ => Ok(()),
        }
    }

    /// Record a failed attempt.
    pub fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        if self.failures >= FREE {
            let exp = (self.failures - FREE).min(5);
            let wait = Duration::from_secs(2u64 << exp).min(Duration::from_secs(60));
            self.not_before = Some(now + wait);
        }
    }

    /// Record a success.
    pub fn succeeded(&mut self) {
        *self = Limiter::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_free_tries_then_growing_waits() {
        let mut l = Limiter::default();
        let t = Instant::now();
        for _ in 0..2 {
            assert!(l.check(t).is_ok());
            l.failed(t);
        }
        assert!(l.check(t).is_ok());
        l.failed(t);
        assert_eq!(l.check(t), Err(Duration::from_secs(2)));
        let t2 = t + Duration::from_secs(2);
        assert!(l.check(t2).is_ok());
        l.failed(t2);
        assert_eq!(l.check(t2), Err(Duration::from_secs(4)));
        for _ in 0..10 {
            l.failed(t2);
        }
        assert_eq!(l.check(t2), Err(Duration::from_secs(60)));
        l.succeeded();
        assert!(l.check(t2).is_ok());
    }
}
