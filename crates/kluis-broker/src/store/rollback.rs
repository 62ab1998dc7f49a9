//! Rolling a password change back (issue 18.3), one implementation per
//! backend in `sqlite/rollback.rs` and `postgres/rollback.rs`.
//!
//! Every replaced OPAQUE record is kept in `superseded_logins` with the
//! escrow version it opens (a trigger, migration 5). A rollback makes such
//! a record current again and appends a copy of its escrow version as the
//! new latest one: nothing is overwritten, and the rollback can itself be
//! rolled back.

use async_trait::async_trait;
use kluis_types::{SessionId, UserId};

use super::{AuditOf, StoreError};

/// A rollback, applied atomically.
pub struct PasswordRollback<'a> {
    /// Whose login.
    pub user_id: &'a UserId,
    /// The session doing it survives; every other one ends.
    pub keep_session: &'a SessionId,
    /// The escrow version to return to (with the record that opens it).
    pub to_version: i64,
    /// The latest escrow version the client saw.
    pub expected_version: i64,
    /// Unix seconds.
    pub now: i64,
}

/// Storage of superseded logins.
#[async_trait]
pub trait RollbackStore: Send + Sync {
    /// Makes the record that opens `to_version` current again, appends a
    /// copy of that version and ends every other session, in one
    /// transaction with `audit`'s rows. `Ok(None)` when no replaced record
    /// opens `to_version`; [`StoreError::VersionConflict`] when
    /// `expected_version` is not the latest. Returns (new version,
    /// sessions ended).
    async fn roll_back_password(
        &self,
        rollback: &PasswordRollback<'_>,
        audit: &AuditOf<'_, (i64, u64)>,
    ) -> Result<Option<(i64, u64)>, StoreError>;
}
