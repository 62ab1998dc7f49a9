//! Cancelling recovery requests (issue 18.4g), and the decoys that answer
//! a request for an unknown address (issue 18.4f); one implementation per
//! backend in `sqlite/recovery_cancel.rs` and `postgres/recovery_cancel.rs`.
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
