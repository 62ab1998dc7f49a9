//! What the tray shows, derived from the agent's status: one of five states
//! and the counts for the menu's status line. Pure functions, so the mapping
//! is tested without a display.

use kluis_agent::{PairState, Status};
use serde::Serialize;

/// The tray icon's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum TrayKind {
    /// The identity is locked: nothing is encrypted or decrypted.
    Locked,
    /// Everything is in sync.
    UpToDate,
    /// Files are waiting or being encrypted/decrypted.
    Syncing,
    /// Every folder pair is paused by the user.
    Paused,
    /// A conflict copy, an error, or a safety guard needs the user.
    Attention,
}

impl TrayKind {
    /// Every state, in menu order.
    pub const ALL: [TrayKind; 5] = [
        TrayKind::Locked,
        TrayKind::UpToDate,
        TrayKind::Syncing,
        TrayKind::Paused,
        TrayKind::Attention,
    ];

    /// Stable name (icon file stem, translation key suffix).
    pub fn name(self) -> &'static str {
        match self {
            TrayKind::Locked => "locked",
            TrayKind::UpToDate => "up_to_date",
            TrayKind::Syncing => "syncing",
            TrayKind::Paused => "paused",
            TrayKind::Attention => "attention",
        }
    }

    /// The icon (PNG, 64×64, dark outline on a light body so it reads on
    /// dark, light and high-contrast panels alike).
    pub fn icon_png(self) -> &'static [u8] {
        match self {
            TrayKind::Locked => include_bytes!("../icons/tray/locked.png"),
            TrayKind::UpToDate => include_bytes!("../icons/tray/up_to_date.png"),
            TrayKind::Syncing => include_bytes!("../icons/tray/syncing.png"),
            TrayKind::Paused => include_bytes!("../icons/tray/paused.png"),
            TrayKind::Attention => include_bytes!("../icons/tray/attention.png"),
        }
    }
}

/// What the tray shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct TrayView {
    /// Icon state.
    pub kind: TrayKind,
    /// Files waiting to be encrypted or decrypted.
    pub pending: u32,
    /// Conflict copies waiting for the user.
    pub conflicts: u32,
    /// Items that failed in the last round, plus pairs in error or alert.
    pub errors: u32,
    /// Folder pairs configured.
    pub pairs: u32,
    /// Whether every pair is paused (the menu offers Resume).
    pub paused: bool,
    /// Whether the identity is locked (the menu offers Unlock).
    pub locked: bool,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The tray view of a status. Precedence: locked, attention, syncing,
/// paused, up to date — the most urgent thing wins.
pub fn tray_view(status: &Status, conflicts: usize) -> TrayView {
    let pending: usize = status.pairs.iter().map(|p| p.deferred).sum();
    let errors: usize = status
        .pairs
        .iter()
        .map(|p| {
            p.errors.len() + usize::from(matches!(p.state, PairState::Alert | PairState::Error))
        })
        .sum();
    let paused =
        !status.pairs.is_empty() && status.pairs.iter().all(|p| p.state == PairState::Paused);
    let busy = status
        .pairs
        .iter()
        .any(|p| matches!(p.state, PairState::Syncing | PairState::Starting) || p.deferred > 0);
    let kind = if status.locked {
        TrayKind::Locked
    } else if errors > 0 || conflicts > 0 {
        TrayKind::Attention
    } else if busy {
        TrayKind::Syncing
    } else if paused {
        TrayKind::Paused
    } else {
        TrayKind::UpToDate
    };
    TrayView {
        kind,
        pending: count(pending),
        conflicts: count(conflicts),
        errors: count(errors),
        pairs: count(status.pairs.len()),
        paused,
        locked: status.locked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kluis_agent::PairStatus;

    fn pair(state: PairState, deferred: usize) -> PairStatus {
        PairStatus {
            id: "p".into(),
            plain: "/a".into(),
            mirror: "/b".into(),
            state,
            alert: None,
            last_sync: None,
            synced_files: 3,
            deferred,
            errors: vec![],
            skips: vec![],
            polling: false,
            not_shared: vec![],
            notices: vec![],
            watcher_rescans: 0,
        }
    }

    fn status(locked: bool, pairs: Vec<PairStatus>) -> Status {
        Status {
            locked,
            device: "d".into(),
            pairs,
            shared_with_you: vec![],
            directory: None,
        }
    }

    #[test]
    fn each_state_is_reached_and_most_urgent_wins() {
        let v = |s: &Status, c| tray_view(s, c).kind;
        assert_eq!(
            v(&status(true, vec![pair(PairState::Alert, 2)]), 1),
            TrayKind::Locked
        );
        assert_eq!(
            v(&status(false, vec![pair(PairState::Idle, 0)]), 1),
            TrayKind::Attention
        );
        assert_eq!(
            v(&status(false, vec![pair(PairState::Error, 0)]), 0),
            TrayKind::Attention
        );
        assert_eq!(
            v(&status(false, vec![pair(PairState::Idle, 2)]), 0),
            TrayKind::Syncing
        );
        assert_eq!(
            v(&status(false, vec![pair(PairState::Syncing, 0)]), 0),
            TrayKind::Syncing
        );
        assert_eq!(
            v(&status(false, vec![pair(PairState::Paused, 0)]), 0),
            TrayKind::Paused
        );
        assert_eq!(
            v(
                &status(
                    false,
                    vec![pair(PairState::Paused, 0), pair(PairState::Idle, 0)]
                ),
                0
            ),
            TrayKind::UpToDate
        );
        assert_eq!(v(&status(false, vec![]), 0), TrayKind::UpToDate);
    }

    #[test]
    fn counts_add_up_over_pairs() {
        let s = status(
            false,
            vec![pair(PairState::Idle, 2), pair(PairState::Alert, 3)],
        );
        let t = tray_view(&s, 4);
        assert_eq!((t.pending, t.conflicts, t.errors, t.pairs), (5, 4, 1, 2));
        assert!(!t.paused && !t.locked);
    }

    #[test]
    fn icons_are_distinct_pngs() {
        let mut seen = std::collections::HashSet::new();
        for k in TrayKind::ALL {
            let png = k.icon_png();
            assert_eq!(&png[1..4], b"PNG", "{}", k.name());
            assert!(seen.insert(png), "{} shares an icon", k.name());
        }
    }
}
