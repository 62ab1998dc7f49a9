//! Revoking and rotating administrator API tokens (issue 18.4), one
//! implementation per backend in `sqlite/admins.rs` and
//! `postgres/admins.rs`. Adding and looking up administrators stay on
//! [`super::Store`].
//!
//! Only the SHA-256 of a token is stored (`admins.token_hash`), with its
//! expiry (`admins.token_expires_at`, migration 7).

use async_trait::async_trait;

use super::{AuditOf, StoreError, TokenHash};

/// Removing administrators and replacing their tokens.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Deletes the administrator `name`, and with it their token, in one
    /// transaction with `audit`'s rows. `false` (and nothing written) when
    /// no administrator has that name.
    async fn remove_admin(&self, name: &str, audit: &AuditOf<'_, ()>) -> Result<bool, StoreError>;

    /// Replaces the token of `name` (its hash and expiry): the old token
    /// stops working in the same transaction as `audit`'s rows. `false`
    /// (and nothing written) when no administrator has that name.
    async fn rotate_admin_token(
        &self,
        name: &str,
        token_hash: &TokenHash,
        expires_at: i64,
        audit: &AuditOf<'_, ()>,
    ) -> Result<bool, StoreError>;
}
