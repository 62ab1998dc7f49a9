//! [`RollbackStore`] on the sqlite backend.

use async_trait::async_trait;
use kluis_types::EncryptedEscrow;
use sqlx::Row;

use super::super::rollback::{PasswordRollback, RollbackStore};
use super::super::{AuditOf, StoreError};
use super::{SqliteStore, append_audit_rows, insert_next_escrow};

#[async_trait]
impl RollbackStore for SqliteStore {
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
             WHERE s.user_id = ? AND s.escrow_version = ?",
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
            "UPDATE users SET opaque_record = ?, ksf_m_cost_kib = ?, ksf_t_cost = ?, \
             ksf_p_cost = ? WHERE user_id = ?",
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
        let revoked = sqlx::query("DELETE FROM sessions WHERE user_id = ? AND session_id <> ?")
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
