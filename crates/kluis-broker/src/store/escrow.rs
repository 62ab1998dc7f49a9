//! The escrow aggregate: the versioned, sealed copies of a user's
//! identity (opaque blobs; the broker cannot open them).

use async_trait::async_trait;
use kluis_types::{EncryptedEscrow, EscrowRecord, EscrowVersionInfo, UserId};

use super::StoreError;

/// Escrow versions of a user.
#[async_trait]
pub trait EscrowStore: Send + Sync {
    /// The newest escrow version of a user.
    async fn escrow_latest(&self, user_id: &UserId) -> Result<Option<EscrowRecord>, StoreError>;

    /// One escrow version.
    async fn escrow_version(
        &self,
        user_id: &UserId,
        version: i64,
    ) -> Result<Option<EscrowRecord>, StoreError>;

    /// All versions, oldest first.
    async fn escrow_versions(&self, user_id: &UserId)
    -> Result<Vec<EscrowVersionInfo>, StoreError>;

    /// Appends a version if `expected_version` is the latest; returns the new number.
    async fn append_escrow(
        &self,
        user_id: &UserId,
        expected_version: i64,
        escrow: &EncryptedEscrow,
        now: i64,
    ) -> Result<i64, StoreError>;
}
