//! [`RecoveryCancelStore`] on the sqlite backend.

use async_trait::async_trait;
use kluis_types::{RecoveryState, RequestId};

use super::super::recovery_cancel::{CancelRecovery, RecoveryCancelStore};
use super::super::{AuditOf, StoreError};
use super::{SqliteStore, append_audit_rows};

#[async_trait]
impl RecoveryCancelStore for SqliteStore {
    async fn cancel_recovery(
        &self,
        which: CancelRecovery<'_>,
        now: i64,
        audit: &AuditOf<'_, Vec<RequestId>>,
    ) -> Result<Vec<RequestId>, StoreError> {
        let (column, value) = match which {
            CancelRecovery::Request(id) => ("request_id", id.as_str()),
            CancelRecovery::OfUser(user) => ("user_id", user.as_str()),
        };
        let mut tx = self.pool.begin().await?;
        let ids: Vec<String> = sqlx::query_scalar(&format!(
            "UPDATE recovery_requests SET status = ?, closed_at = ? \
             WHERE {column} = ? AND status IN ('pending', 'completed') RETURNING request_id"
        ))
        .bind(RecoveryState::Cancelled.as_str())
        .bind(now)
        .bind(value)
        .fetch_all(&mut *tx)
        .await?;
        let mut ids = ids
            .iter()
            .map(|id| {
                RequestId::parse(id).map_err(|_| StoreError::Corrupt {
                    table: "recovery_requests",
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort();
        if !ids.is_empty() {
            append_audit_rows(&mut tx, audit(&ids)?).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }
}
