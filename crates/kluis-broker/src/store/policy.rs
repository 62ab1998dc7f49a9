//! The org-signed policy, one stored version after another.

use async_trait::async_trait;

use super::{AuditOf, StoreError};

/// One stored, org-signed policy version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPolicy {
    /// 1, 2, 3 …
    pub version: i64,
    /// The exact signed JSON text.
    pub policy_json: String,
    /// When the org key signed it.
    pub issued_at: i64,
    /// Ed25519 signature (64 bytes).
    pub signature: Vec<u8>,
}

/// Policy versions.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// The newest policy version, if an administrator set one.
    async fn policy_latest(&self) -> Result<Option<StoredPolicy>, StoreError>;

    /// Inserts a policy version; [`StoreError::Duplicate`] if it exists.
    async fn insert_policy(
        &self,
        policy: &StoredPolicy,
        now: i64,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError>;
}
