//! The check value of the OPRF seed a database was set up with (issue
//! 18.4), one implementation per backend in `sqlite/seed.rs` and
//! `postgres/seed.rs`. `crate::opaque::open_seed` decides with it whether a
//! seed may be created and whether the loaded one belongs to this
//! database.

use async_trait::async_trait;

use super::StoreError;

/// Storage of the seed check value (table `oprf_seed_check`, migration 7).
#[async_trait]
pub trait SeedStore: Send + Sync {
    /// Whether any account exists.
    async fn has_users(&self) -> Result<bool, StoreError>;
    /// The stored check value, if a seed was recorded.
    async fn seed_check(&self) -> Result<Option<Vec<u8>>, StoreError>;
    /// Records `check` unless a check value is stored already, and returns
    /// the stored one: `check` itself, or the earlier value when another
    /// instance was first (the caller compares).
    async fn init_seed_check(&self, check: &[u8], now: i64) -> Result<Vec<u8>, StoreError>;
}
