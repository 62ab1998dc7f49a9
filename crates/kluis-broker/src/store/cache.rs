//! The read cache in front of the two hottest queries: the session test
//! every authenticated request makes, and the directory search.
//!
//! Correctness rests on one number, the *generation*. Every entry is
//! stored with the generation read **before** its query ran, and is served
//! only while the generation is unchanged. The generation moves:
//!
//! - at once, in this process, after any write that can change a session's
//!   validity or a directory entry commits (the backends call
//!   [`LookupCache::invalidate`] from those methods);
//! - when another process or broker instance commits such a write: SQLite
//!   notices through `PRAGMA data_version` on a connection of its own,
//!   PostgreSQL through `LISTEN` on the channel the tables' triggers
//!   `NOTIFY` (see the backends).
//!
//! While that second path is not known to work (before it started, after
//! its connection failed) the cache is *off*: every lookup goes to the
//! database, as it would without a cache. So a revocation, a disabled
//! account or a rotated key is never served stale longer than the
//! notification takes to arrive.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{DirectoryRow, SessionRow, TokenHash};

/// At most this many sessions and searches each; a full map is emptied
/// rather than grown (the next lookups refill it from the database).
const MAX_ENTRIES: usize = 50_000;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct LookupCache {
    generation: AtomicU64,
    enabled: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    sessions: Mutex<Map<TokenHash, SessionRow>>,
    searches: Mutex<Map<(String, i64), Vec<DirectoryRow>>>,
}

#[derive(Debug)]
struct Map<K, V> {
    generation: u64,
    entries: HashMap<K, V>,
}

impl<K, V> Default for Map<K, V> {
    fn default() -> Self {
        Map {
            generation: 0,
            entries: HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> Map<K, V> {
    fn get(&self, key: &K, generation: u64) -> Option<V> {
        if self.generation != generation {
            return None;
        }
        self.entries.get(key).cloned()
    }

    fn put(&mut self, key: K, value: V, read_at: u64, now: u64) {
        if read_at != now {
            // Read before a write that has since committed: maybe stale.
            return;
        }
        if self.generation != now || self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
            self.generation = now;
        }
        self.entries.insert(key, value);
    }
}

/// See [`LookupCache::after_write`].
#[must_use = "the cache is invalidated when this guard drops"]
pub struct Invalidate<'a>(&'a LookupCache);

impl Drop for Invalidate<'_> {
    fn drop(&mut self) {
        self.0.invalidate();
    }
}

/// A generation read before a query; hand it back with the query's result.
#[derive(Debug, Clone, Copy)]
pub struct ReadTicket(Option<u64>);

impl LookupCache {
    /// A cache that stays off until [`LookupCache::set_enabled`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything cached so far may be stale: serve none of it.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Hold across a write: when the guard drops — after the commit, or
    /// after a failure or a cancelled request, whatever the outcome —
    /// everything cached before is dropped.
    pub fn after_write(&self) -> Invalidate<'_> {
        Invalidate(self)
    }

    /// Turns the cache on (the cross-process notification path works) or
    /// off (it does not; every lookup goes to the database). Either way
    /// what was cached before is dropped.
    pub fn set_enabled(&self, on: bool) {
        self.invalidate();
        self.enabled.store(on, Ordering::SeqCst);
    }

    /// Whether lookups are being served from memory.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    /// The current generation: it moves at every invalidation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Lookups answered from memory and lookups that went to the database
    /// since start (for `/metrics`).
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    fn count<T>(&self, found: Option<T>) -> Option<T> {
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn current(&self) -> Option<u64> {
        self.enabled()
            .then(|| self.generation.load(Ordering::SeqCst))
    }

    /// Take before querying the database for a value to cache.
    pub fn ticket(&self) -> ReadTicket {
        ReadTicket(self.current())
    }

    /// The live session with this token hash at `now`: `Some(Some(_))`
    /// from the cache, `Some(None)` when the cached session has expired,
    /// `None` when the database must be asked.
    pub fn session(&self, hash: &TokenHash, now: i64) -> Option<Option<SessionRow>> {
        let generation = self.current()?;
        let cached = self.count(lock(&self.sessions).get(hash, generation))?;
        // Expiry is the one thing that changes without a write.
        Some(Some(cached).filter(|s| s.expires_at > now))
    }

    /// Remembers the database's answer for `hash`.
    pub fn put_session(&self, ticket: ReadTicket, hash: TokenHash, row: SessionRow) {
        if let (Some(read_at), Some(now)) = (ticket.0, self.current()) {
            lock(&self.sessions).put(hash, row, read_at, now);
        }
    }

    /// A cached directory search.
    pub fn search(&self, prefix: &str, limit: i64) -> Option<Vec<DirectoryRow>> {
        let generation = self.current()?;
        self.count(lock(&self.searches).get(&(prefix.to_owned(), limit), generation))
    }

    /// Remembers a directory search.
    pub fn put_search(
        &self,
        ticket: ReadTicket,
        prefix: &str,
        limit: i64,
        rows: Vec<DirectoryRow>,
    ) {
        if let (Some(read_at), Some(now)) = (ticket.0, self.current()) {
            lock(&self.searches).put((prefix.to_owned(), limit), rows, read_at, now);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a map that is merely
    // incomplete, never inconsistent: keep using it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kluis_types::{SessionId, UserId};

    fn session(expires_at: i64) -> SessionRow {
        SessionRow {
            session_id: SessionId::from_random_bytes(&[7; 16]),
            user_id: UserId::from_random_bytes(&[8; 16]),
            created_at: 0,
            expires_at,
        }
    }

    #[test]
    fn off_until_enabled_and_after_disabling() {
        let c = LookupCache::new();
        let t = c.ticket();
        c.put_session(t, [1; 32], session(100));
        assert!(c.session(&[1; 32], 0).is_none(), "off: nothing served");
        c.set_enabled(true);
        let t = c.ticket();
        c.put_session(t, [1; 32], session(100));
        assert!(matches!(c.session(&[1; 32], 0), Some(Some(_))));
        c.set_enabled(false);
        assert!(c.session(&[1; 32], 0).is_none());
    }

    #[test]
    fn a_write_between_ticket_and_put_keeps_the_answer_out() {
        let c = LookupCache::new();
        c.set_enabled(true);
        let t = c.ticket();
        c.invalidate(); // a revocation commits while the query runs
        c.put_session(t, [2; 32], session(100));
        assert!(c.session(&[2; 32], 0).is_none());
    }

    #[test]
    fn invalidation_and_expiry_end_a_cached_session() {
        let c = LookupCache::new();
        c.set_enabled(true);
        let t = c.ticket();
        c.put_session(t, [3; 32], session(100));
        assert!(matches!(c.session(&[3; 32], 99), Some(Some(_))));
        assert!(matches!(c.session(&[3; 32], 100), Some(None)), "expired");
        c.invalidate();
        assert!(c.session(&[3; 32], 0).is_none());
        let t = c.ticket();
        c.put_search(t, "al", 20, vec![]);
        assert_eq!(c.search("al", 20).map(|v| v.len()), Some(0));
        assert!(c.search("al", 10).is_none(), "the limit is part of the key");
        c.invalidate();
        assert!(c.search("al", 20).is_none());
    }
}
