//! The check value of the OPRF seed a database was set up with (issue
//! 18.4): one implementation, `impl_seed_store!`, expanded in
//! `sqlite/seed.rs` and `postgres/seed.rs`. `crate::opaque::open_seed` decides with it whether a
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

/// The one implementation of [`SeedStore`], expanded for a backend in
/// `sqlite/seed.rs` and `postgres/seed.rs`: `impl_seed_store!(Store)`. The
/// expanding module's parent provides the shared SQL helpers
/// (`store/sql_common.rs`) and its dialect (`begin_write`, …).
macro_rules! impl_seed_store {
    ($store:ty) => {
        use async_trait::async_trait;

        use super::super::StoreError;
        use super::super::seed::SeedStore;

        #[async_trait]
        impl SeedStore for $store {
            async fn has_users(&self) -> Result<bool, StoreError> {
                let any: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(any.is_some())
            }

            async fn seed_check(&self) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(
                    sqlx::query_scalar("SELECT check_value FROM oprf_seed_check WHERE id = 1")
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn init_seed_check(&self, check: &[u8], now: i64) -> Result<Vec<u8>, StoreError> {
                // Two instances starting at once: one insert wins, both read it.
                sqlx::query(
                    "INSERT INTO oprf_seed_check (id, check_value, created_at) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(check)
                .bind(now)
                .execute(&self.pool)
                .await?;
                Ok(
                    sqlx::query_scalar("SELECT check_value FROM oprf_seed_check WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await?,
                )
            }
        }
    };
}
pub(crate) use impl_seed_store;
