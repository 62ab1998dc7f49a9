//! [`RecoveryCancelStore`] on the sqlite backend: cancellation and decoys.

use async_trait::async_trait;
use kluis_types::{RecoveryState, RequestId};

use super::super::recovery_cancel::{
    CancelRecovery, DECOY_USER_ID, NewRecoveryDecoy, RecoveryCancelStore,
};
use super::super::{AuditOf, RecoveryRequestRow, StoreError, TokenHash};
use super::{SqliteStore, append_audit_rows, raw_request};

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
        let mut ids: Vec<String> = sqlx::query_scalar(&format!(
            "UPDATE recovery_requests SET status = ?, closed_at = ? \
             WHERE {column} = ? AND status IN ('pending', 'completed') RETURNING request_id"
        ))
        .bind(RecoveryState::Cancelled.as_str())
        .bind(now)
        .bind(value)
        .fetch_all(&mut *tx)
        .await?;
        if let CancelRecovery::Request(id) = which {
            let decoys: Vec<String> = sqlx::query_scalar(
                "UPDATE recovery_decoys SET status = ?, closed_at = ? \
                 WHERE request_id = ? AND status = 'pending' RETURNING request_id",
            )
            .bind(RecoveryState::Cancelled.as_str())
            .bind(now)
            .bind(id.as_str())
            .fetch_all(&mut *tx)
            .await?;
            ids.extend(decoys);
        }
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

    async fn create_recovery_decoy(
        &self,
        d: &NewRecoveryDecoy<'_>,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO recovery_decoys (request_id, email, token_hash, request_key, \
             request_key_fp, requested_at, status) VALUES (?, ?, ?, ?, ?, ?, 'pending')",
        )
        .bind(d.request_id.as_str())
        .bind(d.email.as_str())
        .bind(&d.token_hash[..])
        .bind(d.request_key.as_str())
        .bind(d.request_key_fp)
        .bind(d.requested_at)
        .execute(&mut *tx)
        .await?;
        append_audit_rows(&mut tx, audit(&())?).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn recovery_decoy_by_token(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<RecoveryRequestRow>, StoreError> {
        let sql = format!(
            "SELECT request_id, '{DECOY_USER_ID}' AS user_id, email, request_key, request_key_fp, \
             requested_at, status, NULL AS package, NULL AS completed_by, NULL AS completed_at \
             FROM recovery_decoys WHERE token_hash = ?"
        );
        sqlx::query(&sql)
            .bind(&token_hash[..])
            .fetch_optional(&self.pool)
            .await?
            .map(|row| raw_request(&row))
            .transpose()
    }
}
