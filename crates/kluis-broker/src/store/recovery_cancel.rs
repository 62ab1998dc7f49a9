//! Cancelling recovery requests (issue 18.4g), and the decoys that answer
//! a request for an unknown address (issue 18.4f); one implementation,
//! `impl_recovery_cancel_store!`, expanded in `sqlite/recovery_cancel.rs`
//! and `postgres/recovery_cancel.rs`.
//!
//! A request that is still open (`pending`, or `completed` but not yet
//! used) becomes `cancelled`; from then on it can be neither approved, nor
//! completed, nor used to set a new password: every one of those writes
//! names the state it expects. A cancelled request is kept, like a closed
//! one.
//!
//! A decoy (`recovery_decoys`, migration 9) stands where a request would
//! be when the address has no account or no recovery escrow: its token
//! reads as a pending request (no approvals, never completed) until it is
//! cancelled, so the token cannot tell a real account from a made-up one.
//! Administrators never see decoys, except in the audit log.

use async_trait::async_trait;
use kluis_types::{Email, PublicKeyString, RequestId, UserId};

use super::{AuditOf, RecoveryRequestRow, StoreError, TokenHash};

/// The user id a decoy's row carries: no account has it (ids are 16
/// random bytes), and nothing a pending request allows uses it.
pub const DECOY_USER_ID: &str = "00000000000000000000000000000000";

/// A new decoy request.
pub struct NewRecoveryDecoy<'a> {
    /// ID.
    pub request_id: &'a RequestId,
    /// The address asked for.
    pub email: &'a Email,
    /// SHA-256 of the token handed out.
    pub token_hash: TokenHash,
    /// The request key text.
    pub request_key: &'a PublicKeyString,
    /// Its fingerprint as the client claims it (64 hex).
    pub request_key_fp: &'a str,
    /// Unix seconds.
    pub requested_at: i64,
}

/// Which open requests to cancel.
#[derive(Clone, Copy, Debug)]
pub enum CancelRecovery<'a> {
    /// This one.
    Request(&'a RequestId),
    /// Every open request for this account.
    OfUser(&'a UserId),
}

/// Storage side of cancellation.
#[async_trait]
pub trait RecoveryCancelStore: Send + Sync {
    /// Marks the matching open requests (and, by id, a pending decoy)
    /// `cancelled` (with `closed_at = now`) in one transaction with
    /// `audit`'s rows, built from the ids actually cancelled. Returns those
    /// ids (none when nothing was open).
    async fn cancel_recovery(
        &self,
        which: CancelRecovery<'_>,
        now: i64,
        audit: &AuditOf<'_, Vec<RequestId>>,
    ) -> Result<Vec<RequestId>, StoreError>;

    /// Stores a decoy, in one transaction with `audit`'s rows.
    async fn create_recovery_decoy(
        &self,
        decoy: &NewRecoveryDecoy<'_>,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError>;

    /// The decoy a token belongs to, as a request row (user id
    /// [`DECOY_USER_ID`], no package).
    async fn recovery_decoy_by_token(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<RecoveryRequestRow>, StoreError>;
}

/// The one implementation of [`RecoveryCancelStore`], expanded for a backend in
/// `sqlite/recovery_cancel.rs` and `postgres/recovery_cancel.rs`: `impl_recovery_cancel_store!(Store)`. The
/// expanding module's parent provides the shared SQL helpers
/// (`store/sql_common.rs`) and its dialect (`begin_write`, …).
macro_rules! impl_recovery_cancel_store {
    ($store:ty) => {
        use async_trait::async_trait;
        use kluis_types::{RecoveryState, RequestId};

        use super::super::recovery_cancel::{
            CancelRecovery, DECOY_USER_ID, NewRecoveryDecoy, RecoveryCancelStore,
        };
        use super::super::{AuditOf, RecoveryRequestRow, StoreError, TokenHash};
        use super::{append_audit_rows, raw_request};

        #[async_trait]
        impl RecoveryCancelStore for $store {
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
                    "UPDATE recovery_requests SET status = $1, closed_at = $2 \
                     WHERE {column} = $3 AND status IN ('pending', 'completed') RETURNING request_id"
                ))
                .bind(RecoveryState::Cancelled.as_str())
                .bind(now)
                .bind(value)
                .fetch_all(&mut *tx)
                .await?;
                if let CancelRecovery::Request(id) = which {
                    let decoys: Vec<String> = sqlx::query_scalar(
                        "UPDATE recovery_decoys SET status = $1, closed_at = $2 \
                         WHERE request_id = $3 AND status = 'pending' RETURNING request_id",
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
                     request_key_fp, requested_at, status) VALUES ($1, $2, $3, $4, $5, $6, 'pending')",
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
                     requested_at, status, {} FROM recovery_decoys WHERE token_hash = $1",
                    super::DIALECT.null_outcome()
                );
                sqlx::query(&sql)
                    .bind(&token_hash[..])
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|row| raw_request(&row))
                    .transpose()
            }
        }
    };
}
pub(crate) use impl_recovery_cancel_store;
