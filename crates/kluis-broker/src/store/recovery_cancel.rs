//! Cancelling recovery requests (issue 18.4g), one implementation per
//! backend in `sqlite/recovery_cancel.rs` and `postgres/recovery_cancel.rs`.
//!
//! A request that is still open (`pending`, or `completed` but not yet
//! used) becomes `cancelled`; from then on it can be neither approved, nor
//! completed, nor used to set a new password: every one of those writes
//! names the state it expects. A cancelled request is kept, like a closed
//! one.

use async_trait::async_trait;
use kluis_types::{RequestId, UserId};

use super::{AuditOf, StoreError};

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
    /// Marks the matching open requests `cancelled` (with `closed_at =
    /// now`) in one transaction with `audit`'s rows, built from the ids
    /// actually cancelled. Returns those ids (none when nothing was open).
    async fn cancel_recovery(
        &self,
        which: CancelRecovery<'_>,
        now: i64,
        audit: &AuditOf<'_, Vec<RequestId>>,
    ) -> Result<Vec<RequestId>, StoreError>;
}
