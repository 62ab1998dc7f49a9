//! Which notifications to show, rate-limited: at most one per kind per
//! window, each summarising everything of its kind since the last one, so a
//! thousand conflict copies make one notification, never one per file.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use kluis_agent::{ActivityEntry, PairState, Status};

/// Kinds of notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoteKind {
    /// Conflict copies were created.
    Conflict,
    /// A folder pair stopped on an error or a safety guard.
    NeedsAction,
    /// The agent paired a folder that a colleague shared with you.
    SharedWithYou,
}

/// One notification to show (the text is translated by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Kind.
    pub kind: NoteKind,
    /// How many events it summarises.
    pub count: usize,
    /// One example (a path, or the alert text).
    pub example: String,
}

/// The placeholders of the "IT recovered your key" notification: who
/// approved, who re-sealed the key, and when (UTC).
pub fn recovery_args(r: &kluis_client::account::KeyRecovery) -> [(&'static str, String); 3] {
    let approvers: Vec<&str> = r.approvals.iter().map(|a| a.admin_name.as_str()).collect();
    [
        ("approvers", approvers.join(", ")),
        ("by", r.completed_by.clone()),
        ("when", kluis_client::account::utc_text(r.completed_at)),
    ]
}

/// Collects events and releases notes no faster than `window` per kind.
#[derive(Debug)]
pub struct Notifier {
    window: Duration,
    last_shown: HashMap<NoteKind, Instant>,
    pending: HashMap<NoteKind, (usize, String)>,
    seen_activity: i64,
    seen_shared: u64,
    alerted: HashMap<String, PairState>,
    /// The language the alert examples are written in; the command line's
    /// English until the tray sets one.
    lang: Option<String>,
}

impl Notifier {
    /// Write alert examples in `lang` from now on.
    pub fn set_language(&mut self, lang: &str) {
        self.lang = Some(lang.to_owned());
    }

    /// At most one notification per kind per `window`.
    pub fn new(window: Duration) -> Self {
        Notifier {
            window,
            last_shown: HashMap::new(),
            pending: HashMap::new(),
            seen_activity: i64::MIN,
            seen_shared: 0,
            alerted: HashMap::new(),
            lang: None,
        }
    }

    fn add(&mut self, kind: NoteKind, example: &str) {
        let e = self
            .pending
            .entry(kind)
            .or_insert_with(|| (0, example.to_owned()));
        e.0 += 1;
    }

    /// Look at new activity and the current status; return what to show now.
    pub fn observe(
        &mut self,
        now: Instant,
        activity: &[ActivityEntry],
        status: &Status,
    ) -> Vec<Note> {
        let seen = self.seen_activity;
        for a in activity.iter().filter(|a| a.at > seen) {
            if a.action == "conflict" {
                let example = a.detail.clone().unwrap_or_else(|| a.path.clone());
                self.add(NoteKind::Conflict, &example);
            }
        }
        // Shared folders come from the numbered list, not the activity log:
        // a busy sync can push a log entry out before the tray polls.
        let seen = self.seen_shared;
        for s in status.shared_with_you.iter().filter(|s| s.seq > seen) {
            // "Alice - Projects": the folder under "Shared with me".
            let name = s
                .plain
                .file_name()
                .map_or_else(|| s.title.clone(), |n| n.to_string_lossy().into_owned());
            self.add(NoteKind::SharedWithYou, &name);
            self.seen_shared = self.seen_shared.max(s.seq);
        }
        if let Some(last) = activity.iter().map(|a| a.at).max() {
            self.seen_activity = self.seen_activity.max(last);
        }
        for p in &status.pairs {
            let bad = matches!(p.state, PairState::Alert | PairState::Error);
            let before = self.alerted.get(&p.id).copied();
            if bad && before != Some(p.state) {
                let text = match (&p.alert, &self.lang) {
                    (Some(a), Some(lang)) => crate::i18n::alert_text(lang, a),
                    (Some(a), None) => a.to_string(),
                    (None, _) => p.plain.display().to_string(),
                };
                self.add(NoteKind::NeedsAction, &text);
            }
            if bad {
                self.alerted.insert(p.id.clone(), p.state);
            } else {
                self.alerted.remove(&p.id);
            }
        }
        let mut out = Vec::new();
        let kinds: Vec<NoteKind> = self.pending.keys().copied().collect();
        for kind in kinds {
            let ready = self
                .last_shown
                .get(&kind)
                .is_none_or(|t| now.duration_since(*t) >= self.window);
            if ready && let Some((count, example)) = self.pending.remove(&kind) {
                self.last_shown.insert(kind, now);
                out.push(Note {
                    kind,
                    count,
                    example,
                });
            }
        }
        out.sort_by_key(|n| n.kind == NoteKind::NeedsAction);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kluis_agent::PairStatus;

    fn conflict(at: i64) -> ActivityEntry {
        ActivityEntry {
            pair: "p".into(),
            action: kluis_agent::Action::Conflict,
            path: format!("f{at}.txt"),
            detail: Some(format!("f{at} (conflict d 2026-01-01).txt")),
            at,
        }
    }

    fn status(state: PairState) -> Status {
        Status {
            locked: false,
            device: "d".into(),
            pairs: vec![PairStatus {
                id: "p".into(),
                plain: "/a".into(),
                mirror: "/b".into(),
                state,
                alert: Some(kluis_agent::Alert::SyncFailed {
                    detail: "paused: mass deletion".into(),
                }),
                last_sync: None,
                synced_files: 0,
                deferred: 0,
                errors: vec![],
                skips: vec![],
                polling: false,
                not_shared: vec![],
                notices: vec![],
                watcher_rescans: 0,
            }],
            shared_with_you: vec![],
            directory: None,
        }
    }

    #[test]
    fn a_recovery_names_its_approvers_the_administrator_and_the_time() {
        let r: kluis_client::account::KeyRecovery = serde_json::from_value(serde_json::json!({
            "request_id": "0123456789abcdef0123456789abcdef",
            "requested_at": 1_899_999_000,
            "approvals": [
                {"admin_name": "ann", "admin_key": "k1", "approved_at": 1_899_999_500},
                {"admin_name": "bram", "admin_key": "k2", "approved_at": 1_899_999_600},
            ],
            "completed_by": "ann",
            "completed_at": 1_900_000_000,
        }))
        .unwrap();
        let args = recovery_args(&r);
        assert_eq!(args[0], ("approvers", "ann, bram".to_owned()));
        assert_eq!(args[1], ("by", "ann".to_owned()));
        assert_eq!(args[2], ("when", "2030-03-17 17:46:40 UTC".to_owned()));
        for lang in ["en", "nl", "fr"] {
            let body = crate::i18n::t(lang, "notify.recovered.body", &args);
            assert!(
                body.contains("ann, bram") && body.contains("2030-03-17"),
                "{lang}: {body}"
            );
        }
    }

    #[test]
    fn a_burst_of_conflicts_is_one_notification_per_window() {
        let mut n = Notifier::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let burst: Vec<_> = (1..=500).map(conflict).collect();
        let first = n.observe(t0, &burst, &status(PairState::Idle));
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].kind, first[0].count), (NoteKind::Conflict, 500));
        // Same log again: nothing new.
        assert!(n.observe(t0, &burst, &status(PairState::Idle)).is_empty());
        // More conflicts within the window are held back, then summarised.
        let more: Vec<_> = (501..=510).map(conflict).collect();
        assert!(
            n.observe(t0 + Duration::from_secs(5), &more, &status(PairState::Idle))
                .is_empty()
        );
        let later = n.observe(
            t0 + Duration::from_secs(31),
            &more,
            &status(PairState::Idle),
        );
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].count, 10);
    }

    #[test]
    fn a_folder_shared_with_you_is_announced_by_name_once() {
        let mut n = Notifier::new(Duration::from_secs(0));
        let mut st = status(PairState::Idle);
        st.shared_with_you.push(kluis_agent::SharedWithYou {
            seq: 1,
            pair: "q".into(),
            plain: "/home/bob/Kluis/Shared with me/Alice - Plans".into(),
            mirror: "/sync/Kluis/plans".into(),
            owner: "alice@example.org".into(),
            title: "Plans".into(),
            at: 7,
        });
        let notes = n.observe(Instant::now(), &[conflict(1)], &st);
        let note = notes
            .iter()
            .find(|n| n.kind == NoteKind::SharedWithYou)
            .expect("a shared-with-you note");
        assert_eq!((note.count, note.example.as_str()), (1, "Alice - Plans"));
        assert_eq!(notes.len(), 2, "and the conflict, separately");
        let again = n.observe(Instant::now(), &[], &st);
        assert!(again.is_empty(), "the same folder is not announced twice");
    }

    #[test]
    fn an_alert_notifies_once_until_it_clears() {
        let mut n = Notifier::new(Duration::from_secs(0));
        let t = Instant::now();
        let a = n.observe(t, &[], &status(PairState::Alert));
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].kind, NoteKind::NeedsAction);
        assert_eq!(a[0].example, "paused: mass deletion");
        assert!(n.observe(t, &[], &status(PairState::Alert)).is_empty());
        assert!(n.observe(t, &[], &status(PairState::Idle)).is_empty());
        assert_eq!(n.observe(t, &[], &status(PairState::Alert)).len(), 1);
    }
}
