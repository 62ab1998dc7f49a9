//! The agent's status as the IPC endpoint reports it: pairs, their state
//! and alerts, per-item problems, skips and the activity log.
//!
//! These are the agent's own types, not the sync engine's: the engine's
//! report is converted at the boundary (the `From` impls of the `words`
//! submodule, called by the pair workers), so the wire protocol does not
//! change when the engine's internals do. Everything a screen shows in words is a typed value here
//! (state, [`Action`], [`Alert`], [`ProblemKind`], [`SkipKind`]): the
//! faces write the sentences, each in its language. `Display` gives the
//! English the command line prints.
//!
//! This module depends on nothing else in the agent; `agent`, `pair` and
//! `ipc` depend on it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub(crate) mod words;

pub use words::{Action, Alert, ItemProblem, ProblemKind, Skip, SkipKind};

/// Most membership notices kept per pair.
pub(crate) const NOTICES_CAP: usize = 20;

/// State of one folder pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum PairState {
    /// Starting up.
    Starting,
    /// In sync, watching.
    Idle,
    /// Reconciling now.
    Syncing,
    /// The last pass left files that could not be synced (`errors` says
    /// which and why); they are tried again: soon, or — when the disk is
    /// too full for them — once space is freed (`alert` says so).
    Retrying,
    /// Paused by the user.
    Paused,
    /// Waiting for the identity to be unlocked; work is queued.
    Locked,
    /// Paused by a safety guard (mass deletion, empty root); see `alert`.
    Alert,
    /// The last reconcile failed as a whole; retried with backoff.
    Error,
    /// The folder's metadata is not (or no longer) encrypted to you or
    /// your groups: nothing is synced, nothing is deleted; the files stay
    /// as ciphertext (docs/SHARING.md).
    NotSharedWithYou,
}

/// Status of one pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairStatus {
    /// Pair id.
    pub id: String,
    /// Plaintext folder.
    pub plain: PathBuf,
    /// Mirror folder.
    pub mirror: PathBuf,
    /// Current state.
    pub state: PairState,
    /// Why the pair needs attention.
    pub alert: Option<Alert>,
    /// End of the last reconcile (ns since the epoch).
    pub last_sync: Option<i64>,
    /// Files synced (index entries that are files).
    pub synced_files: usize,
    /// Files waiting for their quiet period.
    pub deferred: usize,
    /// Items that failed in the last round (retried).
    pub errors: Vec<ItemProblem>,
    /// Paths skipped on purpose (symlinks, special files, foreign names).
    pub skips: Vec<Skip>,
    /// Whether the file watcher fell back to polling.
    pub polling: bool,
    /// Ciphertext files that are not encrypted to you or your groups
    /// (plaintext paths when known): left alone, not errors, never deleted.
    #[serde(default)]
    pub not_shared: Vec<String>,
    /// Membership changes the agent made in this folder from what the
    /// directory said (a departed member dropped, a member moved to a
    /// rotated key), oldest first, at most 20; also in the activity log
    /// (`member_departed`, `member_key_moved`).
    #[serde(default)]
    pub notices: Vec<String>,
    /// Full reconciles the file watcher asked for because events were lost:
    /// the kernel's event queue overflowed, or the watcher failed.
    #[serde(default)]
    pub watcher_rescans: u64,
}

/// Status of the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The identity is locked: nothing is encrypted or decrypted.
    pub locked: bool,
    /// This device's name.
    pub device: String,
    /// The pairs.
    pub pairs: Vec<PairStatus>,
    /// Folders shared with you that this agent paired while it runs, oldest
    /// first (the "shared with you" event). `seq` grows by one per folder
    /// and is never reused while the agent runs: remember the highest you
    /// have shown and notify for higher ones. At most the last 256.
    #[serde(default)]
    pub shared_with_you: Vec<SharedWithYou>,
    /// The organisation directory as the agent last saw it (departed
    /// members, rotated group keys, your group keys); `None` when no
    /// directory is set (no broker account on this device).
    #[serde(default)]
    pub directory: Option<DirectoryStatus>,
}

/// A folder shared with you that the agent just paired under "Shared with
/// me" and started syncing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedWithYou {
    /// 1, 2, 3, … in the order the folders were paired.
    pub seq: u64,
    /// The new pair's id.
    pub pair: String,
    /// Where its plaintext appears (`…/Shared with me/Alice - Plans`).
    pub plain: PathBuf,
    /// The mirror in your sync folder.
    pub mirror: PathBuf,
    /// Who shared it (the owner's address, from the folder metadata).
    pub owner: String,
    /// The folder's display name.
    pub title: String,
    /// When (ns since the epoch).
    pub at: i64,
}

/// The last directory refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryStatus {
    /// Last successful refresh (ns since the epoch), if any.
    pub refreshed_at: Option<i64>,
    /// Why the last refresh failed (offline, signed out); the agent keeps
    /// using what it learned before.
    pub error: Option<String>,
    /// Members the directory reports as departed, by address.
    pub departed: Vec<String>,
}

/// One line of the activity log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEntry {
    /// Pair id.
    pub pair: String,
    /// What happened.
    pub action: Action,
    /// Plaintext path.
    pub path: String,
    /// Detail (rename target, conflict copy).
    pub detail: Option<String>,
    /// When (ns).
    pub at: i64,
}

/// A conflict copy waiting for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictEntry {
    /// Pair id.
    pub pair: String,
    /// Plaintext path of the conflict copy.
    pub path: String,
}
