//! What a pass's per-item errors mean for a pair: what its status says,
//! and, for downloads refused for lack of space, when to try again.
//!
//! A pass that left items failing is not `Idle`: the pair says `Retrying`
//! and lists them. Items refused because the plaintext's disk is too full
//! (`ItemErrorKind::NoSpace`, checked before anything is written) are not
//! retried on the short backoff: the pair tries again when that disk's free
//! space has grown (looked at every 5 s, a `statvfs`, no I/O on the disk's
//! files) or, failing that, after a long backoff (5 minutes, doubling up to
//! an hour), and the alert says which disk, what is needed and what is free.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kluis_sync::exec::space::{FreeSpace, System};
use kluis_sync::{ItemErrorKind, Report};

use crate::status::words::count;
use crate::status::{Alert, PairState};

/// How often the free space is looked at while items wait for it.
const POLL: Duration = Duration::from_secs(5);
/// Growth of the free space that counts as "space was freed".
const FREED: u64 = 1 << 20;
const FIRST_BACKOFF: Duration = Duration::from_secs(5 * 60);
const MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);

/// The state of a pair after a pass without a guard.
pub(crate) fn state(rep: &Report) -> PairState {
    if rep.errors.iter().any(|e| e.kind == ItemErrorKind::Damaged) {
        // Not retried: the user is told what to do.
        PairState::Alert
    } else if rep.errors.is_empty() {
        PairState::Idle
    } else {
        PairState::Retrying
    }
}

/// Whether a pass left items to retry on the usual backoff: not those that
/// wait for space, nor damaged files, which wait for a change.
pub(crate) fn retry(rep: &Report) -> bool {
    rep.errors
        .iter()
        .any(|e| !matches!(e.kind, ItemErrorKind::NoSpace | ItemErrorKind::Damaged))
}

/// The alert after a pass without a guard: why items wait for space, or
/// which files are damaged.
pub(crate) fn alert(rep: &Report) -> Option<Alert> {
    let first_of = |kind: ItemErrorKind| {
        let mut it = rep.errors.iter().filter(move |e| e.kind == kind);
        let first = it.next()?;
        Some((first.path.clone(), count(it.count()), first.detail.clone()))
    };
    if let Some((path, more, detail)) = first_of(ItemErrorKind::NoSpace) {
        return Some(Alert::NoSpace { path, more, detail });
    }
    let (path, more, detail) = first_of(ItemErrorKind::Damaged)?;
    Some(Alert::Damaged { path, more, detail })
}

/// Items wait for free space on the plaintext's disk.
#[derive(Debug)]
pub(crate) struct SpaceWait {
    dir: PathBuf,
    available: Option<u64>,
    backoff: Duration,
    until: Instant,
    next_poll: Instant,
}

impl SpaceWait {
    /// After a pass: a wait when items were refused for lack of space
    /// (the backoff doubling if they already were), else none.
    pub fn after(prev: Option<SpaceWait>, rep: &Report, plain: &Path) -> Option<SpaceWait> {
        if !rep.errors.iter().any(|e| e.kind == ItemErrorKind::NoSpace) {
            return None;
        }
        let backoff = prev.map_or(FIRST_BACKOFF, |p| (p.backoff * 2).min(MAX_BACKOFF));
        let now = Instant::now();
        Some(SpaceWait {
            dir: plain.to_path_buf(),
            available: free(plain),
            backoff,
            until: now + backoff,
            next_poll: now + POLL,
        })
    }

    /// When this wait next needs looking at.
    pub fn next_check(&self) -> Instant {
        self.next_poll.min(self.until)
    }

    /// Whether to try again now: the backoff has passed, or space was
    /// freed. Otherwise the next look is scheduled.
    pub fn due(&mut self, now: Instant) -> bool {
        if now >= self.until {
            return true;
        }
        if now < self.next_poll {
            return false;
        }
        self.next_poll = now + POLL;
        match (self.available, free(&self.dir)) {
            (Some(before), Some(after)) => after >= before.saturating_add(FREED),
            // No figure: only the backoff.
            _ => false,
        }
    }
}

fn free(dir: &Path) -> Option<u64> {
    System.free(dir).ok().flatten().map(|f| f.available)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;
    use kluis_sync::ItemError;

    fn report(errors: &[(&str, ItemErrorKind)]) -> Report {
        Report {
            errors: errors
                .iter()
                .map(|(p, k)| ItemError {
                    path: (*p).into(),
                    kind: k.clone(),
                    detail: format!("detail of {p}"),
                })
                .collect(),
            ..Report::default()
        }
    }

    #[test]
    fn failing_items_are_not_idle_and_a_full_disk_is_said_plainly() {
        assert_eq!(state(&report(&[])), PairState::Idle);
        assert_eq!(alert(&report(&[])), None);
        let r = report(&[("a.txt", ItemErrorKind::Incomplete)]);
        assert_eq!(state(&r), PairState::Retrying);
        assert_eq!(alert(&r), None, "the error list says why");
        let r = report(&[
            ("a.txt", ItemErrorKind::Incomplete),
            ("big.iso", ItemErrorKind::NoSpace),
            ("big2.iso", ItemErrorKind::NoSpace),
        ]);
        assert_eq!(state(&r), PairState::Retrying);
        assert_eq!(
            alert(&r).unwrap().to_string(),
            "detail of big.iso; waiting: big.iso and 1 more (tried again as soon as space is freed)"
        );
        assert!(retry(&r), "a.txt is retried");
    }

    /// Issue 17.4: a damaged file is said, with what to do, and not
    /// retried ("retrying" for ever was the old state).
    #[test]
    fn a_damaged_file_needs_attention_and_is_not_retried() {
        let r = report(&[("bad/doc.bin", ItemErrorKind::Damaged)]);
        assert_eq!(state(&r), PairState::Alert);
        assert!(!retry(&r));
        assert_eq!(
            alert(&r).unwrap().to_string(),
            "damaged: bad/doc.bin: detail of bad/doc.bin"
        );
    }

    #[test]
    fn a_wait_for_space_backs_off_and_ends_when_nothing_lacks_space() {
        let dir = tempfile::tempdir().unwrap();
        let full = report(&[("big.iso", ItemErrorKind::NoSpace)]);
        let w = SpaceWait::after(None, &full, dir.path()).unwrap();
        assert_eq!(w.backoff, FIRST_BACKOFF);
        let mut w = SpaceWait::after(Some(w), &full, dir.path()).unwrap();
        assert_eq!(w.backoff, FIRST_BACKOFF * 2);
        // Not before the first look; then only if space grew.
        let now = Instant::now();
        assert!(!w.due(now));
        w.available = Some(0);
        assert!(w.due(w.next_poll), "this disk has more than 1 MiB free");
        assert!(w.due(w.until));
        assert!(SpaceWait::after(Some(w), &report(&[]), dir.path()).is_none());
    }
}
