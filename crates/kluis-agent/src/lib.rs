//! The Kluis sync daemon library, used by `kluis agent` and the tray app.
//!
//! - [`AgentHome`]: where configuration, data and the IPC socket live
//!   (`KLUIS_HOME` overrides the platform directories);
//! - [`Config`]: folder pairs, and [`detect_sync_folders`] to offer the
//!   Dropbox and OneDrive folders found on this machine;
//! - [`Agent`]: one owner thread per folder pair, each with a file watcher,
//!   a coalescing trigger channel, and a periodic full reconcile; identity
//!   lock/unlock; pause/resume; an activity log;
//! - [`keycache`]: the unlocked identity in the OS keyring, so the agent
//!   starts unlocked after login;
//! - [`ipc`]: a typed JSON-lines protocol over a Unix socket (owner-only),
//!   with [`ipc::Client`] for the CLI and the tray app;
//! - [`share`]: share and unshare folders and files with verified
//!   colleagues and groups, and pair folders shared with you;
//! - [`ignore`]: this device's own ignore rules of a folder pair;
//! - [`account`]: this device's identity and broker account (register, log
//!   in, change the password, log out), for `kluis account` and the tray.
// `deny`, not `forbid`: one module, `os`, makes two calls that no safe
// crate wraps (see there); everything else stays free of `unsafe`.
#![deny(unsafe_code)]

pub mod account;
mod agent;
mod config;
mod detect;
mod error;
mod home;
pub mod ipc;
pub mod keycache;
mod lock;
mod os;
mod pair;
pub mod share;
mod status;
mod stuck;
mod watch;

pub use agent::{Agent, AgentHandle, AgentOptions, SHARED_WITH_YOU};
pub use config::{Config, PairConfig};
pub use detect::{SyncFolderCandidate, detect_sync_folders};
pub use error::AgentError;
pub use home::AgentHome;
pub use ipc::{Request, Response};
pub use lock::PairLock;
pub use status::{
    Action, ActivityEntry, Alert, ConflictEntry, DirectoryStatus, ItemProblem, PairState,
    PairStatus, ProblemKind, SharedWithYou, Skip, SkipKind, Status,
};

/// This device's ignore rules for a pair's plaintext folder
/// (`.kluisignore`, never synced): read, and replace atomically. The
/// running agent's watcher picks a change up by itself.
pub mod ignore {
    pub use kluis_sync::scan::{
        BUILTIN_IGNORES, IgnoreError, MAX_USER_IGNORES, check_ignore_pattern, set_user_ignores,
        user_ignores,
    };
}
/// Names of conflict copies and of the trash: written, recognised and
/// parsed back by the sync engine only, so that every face reads them alike.
pub use kluis_sync::copy_names;
pub use share::directory::{BrokerDirectory, Directory};
