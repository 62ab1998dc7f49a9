//! The Kluis sync daemon, run by `kluis agent` and in-process by the tray
//! app. It owns what runs while nobody watches: the supervisor and one
//! owner thread per folder pair, the watcher, echo suppression, discovery
//! of folders shared with you, the directory refresh, the typed status and
//! the IPC transports. What a person does on this device (set up, account,
//! share, groups, recoveries) is `kluis-client`, which builds on this crate;
//! this crate must never depend on `kluis-client` or on any face (CLI, tray).
//!
//! - [`AgentHome`]: where configuration, data and the IPC socket live
//!   (`KLUIS_HOME` overrides the platform directories);
//! - [`Config`]: folder pairs;
//! - [`Agent`]: one owner thread per folder pair, each with a file watcher,
//!   a coalescing trigger channel, and a periodic full reconcile; identity
//!   lock/unlock; pause/resume; an activity log;
//! - [`keycache`]: the unlocked identity in the OS keyring, so the agent
//!   starts unlocked after login;
//! - [`ipc`]: a typed JSON-lines protocol over a Unix socket (owner-only),
//!   with [`ipc::Client`] for the CLI and the tray app;
//! - [`share`]: what the daemon needs of sharing: opening a folder's
//!   members, the directory refresh, group keys and their files in the
//!   mirrors, and pairing folders shared with you;
//! - [`ignore`]: this device's own ignore rules of a folder pair.
// `deny`, not `forbid`: one module, `os`, makes two calls that no safe
// crate wraps (see there); everything else stays free of `unsafe`.
#![deny(unsafe_code)]

mod agent;
mod config;
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
