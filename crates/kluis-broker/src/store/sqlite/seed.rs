//! [`SeedStore`] on the sqlite backend.

use async_trait::async_trait;

use super::super::StoreError;
use super::super::seed::SeedStore;
use super::SqliteStore;

#[async_trait]
impl SeedStore for SqliteStore {
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
            "INSERT INTO oprf_seed_check (id, check_value, created_at) VALUES (1, ?, ?) \
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
