//! Rolling a password change back (issue 18.3): one implementation,
//! `impl_rollback_store!`, expanded in `sqlite/rollback.rs` and
//! `postgres/rollback.rs`.
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

/// The one implementation of [`RollbackStore`], expanded for a backend in
/// `sqlite/rollback.rs` and `postgres/rollback.rs`: `impl_rollback_store!(Store)`. The
/// expanding module's parent provides the shared SQL helpers
/// (`store/sql_common.rs`) and its dialect (`begin_write`, …).
macro_rules! impl_rollback_store {
    ($store:ty) => {
        use async_trait::async_trait;
        use kluis_types::EncryptedEscrow;
        use sqlx::Row;

        use super::super::rollback::{PasswordRollback, RollbackStore};
        use super::super::{AuditOf, StoreError};
        use super::{append_audit_rows, insert_next_escrow};

        #[async_trait]
        impl RollbackStore for $store {
            async fn roll_back_password(
                &self,
                r: &PasswordRollback<'_>,
                audit: &AuditOf<'_, (i64, u64)>,
            ) -> Result<Option<(i64, u64)>, StoreError> {
                let _fresh = self.cache.after_write();
                let mut tx = self.pool.begin().await?;
                let old = sqlx::query(
                    "SELECT s.opaque_record, s.ksf_m_cost_kib, s.ksf_t_cost, s.ksf_p_cost, e.blob \
                     FROM superseded_logins s JOIN escrow e \
                       ON e.user_id = s.user_id AND e.version = s.escrow_version \
                     WHERE s.user_id = $1 AND s.escrow_version = $2",
                )
                .bind(r.user_id.as_str())
                .bind(r.to_version)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(old) = old else {
                    return Ok(None);
                };
                let record: Vec<u8> = old.try_get("opaque_record")?;
                let blob: Vec<u8> = old.try_get("blob")?;
                // The trigger keeps the record being replaced, under the current
                // latest version, so the rollback can be undone the same way.
                sqlx::query(
                    "UPDATE users SET opaque_record = $1, ksf_m_cost_kib = $2, ksf_t_cost = $3, \
                     ksf_p_cost = $4 WHERE user_id = $5",
                )
                .bind(&record)
                .bind(old.try_get::<i64, _>("ksf_m_cost_kib")?)
                .bind(old.try_get::<i64, _>("ksf_t_cost")?)
                .bind(old.try_get::<i64, _>("ksf_p_cost")?)
                .bind(r.user_id.as_str())
                .execute(&mut *tx)
                .await?;
                let version = insert_next_escrow(
                    &mut tx,
                    r.user_id,
                    r.expected_version,
                    &EncryptedEscrow::new(blob),
                    r.now,
                )
                .await?;
                let revoked =
                    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND session_id <> $2")
                        .bind(r.user_id.as_str())
                        .bind(r.keep_session.as_str())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                append_audit_rows(&mut tx, audit(&(version, revoked))?).await?;
                tx.commit().await?;
                Ok(Some((version, revoked)))
            }
        }
    };
}
pub(crate) use impl_rollback_store;
