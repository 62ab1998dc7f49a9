//! Storage behind one trait per aggregate and two databases:
//! [`sqlite::SqliteStore`] and [`postgres::PgStore`]. Both pass the same
//! integration suite.
//!
//! Each aggregate has its trait, with its row types, in its own module:
//! users and the directory (`users.rs`), sessions and login attempts
//! (`sessions.rs`), escrow, invites, policy, the recovery key and
//! requests (`recovery.rs`), administrators, the audit log, groups,
//! password rollbacks, recovery cancellation, the login throttle and the
//! seed check. [`Store`] is all of them together (a blanket
//! implementation: anything that implements every aggregate's trait is a
//! `Store`); the server holds an `Arc<dyn Store>`.
//!
//! The SQL is written once (issue 19): the statements use `$n`
//! placeholders, which SQLite reads as numbered parameters, and each
//! implementation is a macro (`sql_store.rs`, `sql_common.rs`,
//! `groups.rs`, `admins.rs`, …) that each backend expands for its own
//! sqlx types. What differs — transactions that take the write lock,
//! table and row locks, the directory search's index use, the migrations
//! — is each backend's small dialect, called by name from the expansions
//! (listed in `sql_common.rs`).
//!
//! The store only ever sees opaque data: OPAQUE records, sealed escrow
//! blobs ([`EncryptedEscrow`](kluis_types::EncryptedEscrow)), public-key
//! text and hashes of bearer tokens.

use std::sync::Arc;

use async_trait::async_trait;
pub use cache::LookupCache;
use kluis_audit::{AuditEntry, AuditError};

pub mod admins;
mod audit;
pub mod cache;
mod dialect;
mod escrow;
pub mod groups;
mod invites;
mod migrations;
mod policy;
pub mod postgres;
mod recovery;
pub mod recovery_cancel;
pub mod rollback;
pub mod seed;
mod sessions;
mod sql_common;
mod sql_store;
pub mod sqlite;
pub mod throttle;
mod users;

pub use admins::{AdminRow, AdminStore};
pub(crate) use audit::RawAudit;
pub use audit::{AuditBuilder, AuditStore, append_audit};
pub use escrow::EscrowStore;
pub use groups::{
    GroupChange, GroupChangeKind, GroupOutcome, GroupRow, GroupSecretRow, GroupStore, NewGroup,
};
pub use invites::InviteStore;
pub use policy::{PolicyStore, StoredPolicy};
pub use recovery::{
    ApprovalRow, NewRecoveryRequest, RecoveryKeyStore, RecoveryRequestRow, RecoveryReset,
    RecoveryStore, StoredRecoveryKey,
};
pub(crate) use recovery::{REQUEST_COLUMNS, RawRequest, decode_recovery_key};
pub use recovery_cancel::{CancelRecovery, NewRecoveryDecoy, RecoveryCancelStore};
pub use rollback::{PasswordRollback, RollbackStore};
pub use seed::SeedStore;
pub(crate) use sessions::decode_session;
pub use sessions::{NewSession, SessionRow, SessionStore};
pub use throttle::{ThrottleKey, ThrottleStore};
pub use users::{DirectoryRow, DirectoryStore, NewUser, PasswordChange, UserRow, UserStore};
pub(crate) use users::{RawDirectoryRow, RawUser, USER_COLUMNS, like_prefix, prefix_upper_bound};

/// SHA-256 of a bearer token; the only form in which tokens are stored.
pub type TokenHash = [u8; 32];

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database driver failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A schema migration failed.
    #[error("migration {version} failed")]
    Migration {
        /// Migration number.
        version: i64,
        /// Driver error.
        #[source]
        source: sqlx::Error,
    },
    /// The database URL names no supported backend.
    #[error("unsupported database URL scheme (use sqlite: or postgres:)")]
    UnsupportedUrl,
    /// An account with this e-mail already exists.
    #[error("e-mail already registered")]
    EmailTaken,
    /// The invite is unknown, used, expired or bound to another address.
    #[error("invite invalid")]
    InviteInvalid,
    /// The caller's expected version is not the latest.
    #[error("version conflict")]
    VersionConflict,
    /// A group with this name already exists.
    #[error("group name taken")]
    GroupTaken,
    /// The caller (or the person to remove) is not a member of the group.
    #[error("not a member of the group")]
    NotGroupMember,
    /// The person is already a member.
    #[error("already a member of the group")]
    AlreadyGroupMember,
    /// A group keeps at least one member.
    #[error("the last member cannot leave the group")]
    LastGroupMember,
    /// The caller is a member but not an administrator of the group.
    #[error("not an administrator of the group")]
    NotGroupAdmin,
    /// A group keeps at least one administrator.
    #[error("the last administrator cannot leave or lose the role")]
    LastGroupAdmin,
    /// The person a change names is not a member of the group.
    #[error("no such member of the group")]
    NoSuchGroupMember,
    /// A stored row could not be decoded into its wire type.
    #[error("corrupt row in {table}")]
    Corrupt {
        /// Table name.
        table: &'static str,
    },
    /// A row with this key already exists (admin name or key, approval by
    /// the same administrator, policy version).
    #[error("already exists: {0}")]
    Duplicate(&'static str),
    /// An audit row could not be built (the entry broke a rule of the log).
    #[error("audit entry refused")]
    Audit(#[from] AuditError),
}

/// The audit entries that record a write, built from its outcome and
/// appended in the write's own transaction: the action and its record
/// commit together or not at all (a crash cannot leave one without the
/// other).
pub type AuditOf<'a, T> = dyn Fn(&T) -> Result<Vec<AuditEntry>, AuditError> + Send + Sync + 'a;

/// The database itself: its schema and its liveness.
#[async_trait]
pub trait SchemaStore: Send + Sync {
    /// Applies pending migrations of this backend.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// Cheap liveness check.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Everything the broker persists: every aggregate's trait. Implemented
/// for anything that implements them all.
pub trait Store:
    SchemaStore
    + UserStore
    + DirectoryStore
    + SessionStore
    + EscrowStore
    + InviteStore
    + PolicyStore
    + RecoveryKeyStore
    + RecoveryStore
    + AdminStore
    + AuditStore
    + GroupStore
    + RollbackStore
    + SeedStore
    + ThrottleStore
    + RecoveryCancelStore
    + Send
    + Sync
{
}

impl<T> Store for T where
    T: SchemaStore
        + UserStore
        + DirectoryStore
        + SessionStore
        + EscrowStore
        + InviteStore
        + PolicyStore
        + RecoveryKeyStore
        + RecoveryStore
        + AdminStore
        + AuditStore
        + GroupStore
        + RollbackStore
        + SeedStore
        + ThrottleStore
        + RecoveryCancelStore
        + Send
        + Sync
{
}

/// A background task that ends with its owner.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens the store a database URL names (`sqlite:PATH` or `postgres://…`),
/// creating a SQLite file if needed, and migrates it.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(sqlite::SqliteStore::connect(url).await?)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Arc::new(postgres::PgStore::connect(url).await?)
    } else {
        return Err(StoreError::UnsupportedUrl);
    };
    store.migrate().await?;
    Ok(store)
}
