//! [`ThrottleStore`] on the sqlite backend.

use async_trait::async_trait;
use sqlx::Row;

use super::super::StoreError;
use super::super::throttle::{Decide, ThrottleKey, ThrottleState, ThrottleStore};
use super::SqliteStore;

const UPSERT_BACKOFF: &str = "INSERT INTO login_backoff \
     (account, network, failures, next_at, trusted_until, expires_at) \
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, network) DO UPDATE SET \
     failures = excluded.failures, next_at = excluded.next_at, \
     trusted_until = excluded.trusted_until, expires_at = excluded.expires_at";

async fn upsert_backoff<'e>(
    db: impl sqlx::SqliteExecutor<'e>,
    key: ThrottleKey<'_>,
    state: &ThrottleState,
) -> Result<(), StoreError> {
    sqlx::query(UPSERT_BACKOFF)
        .bind(&key.account[..])
        .bind(key.network)
        .bind(state.failures)
        .bind(state.next_at)
        .bind(state.trusted_until)
        .bind(state.expires_at)
        .execute(db)
        .await?;
    Ok(())
}

#[async_trait]
impl ThrottleStore for SqliteStore {
    async fn throttle_login(
        &self,
        key: ThrottleKey<'_>,
        decide: &Decide<'_>,
    ) -> Result<bool, StoreError> {
        // IMMEDIATE: the write lock from the start, so two attempts cannot
        // both read the same state (other processes on the file included).
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut state = ThrottleState::default();
        if let Some(row) = sqlx::query(
            "SELECT failures, next_at, trusted_until, expires_at FROM login_backoff \
             WHERE account = ? AND network = ?",
        )
        .bind(&key.account[..])
        .bind(key.network)
        .fetch_optional(&mut *tx)
        .await?
        {
            state.failures = row.try_get("failures")?;
            state.next_at = row.try_get("next_at")?;
            state.trusted_until = row.try_get("trusted_until")?;
            state.expires_at = row.try_get("expires_at")?;
        }
        state.ceiling_tat_ms =
            sqlx::query_scalar("SELECT tat_ms FROM login_ceiling WHERE account = ?")
                .bind(&key.account[..])
                .fetch_optional(&mut *tx)
                .await?
                .unwrap_or(0);
        if !decide(&mut state) {
            return Ok(false);
        }
        upsert_backoff(&mut *tx, key, &state).await?;
        sqlx::query(
            "INSERT INTO login_ceiling (account, tat_ms) VALUES (?, ?) \
             ON CONFLICT (account) DO UPDATE SET tat_ms = excluded.tat_ms",
        )
        .bind(&key.account[..])
        .bind(state.ceiling_tat_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn reset_login_backoff(
        &self,
        key: ThrottleKey<'_>,
        state: &ThrottleState,
    ) -> Result<(), StoreError> {
        upsert_backoff(&self.pool, key, state).await
    }

    async fn prune_login_throttle(&self, now: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let a = sqlx::query("DELETE FROM login_backoff WHERE expires_at < ?")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let b = sqlx::query("DELETE FROM login_ceiling WHERE tat_ms < ?")
            .bind(now.saturating_mul(1000))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(a + b)
    }
}
