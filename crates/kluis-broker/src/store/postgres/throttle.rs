//! [`ThrottleStore`] on the postgres backend.

use async_trait::async_trait;
use sqlx::Row;

use super::super::StoreError;
use super::super::throttle::{Decide, ThrottleKey, ThrottleState, ThrottleStore};
use super::PgStore;

const UPSERT_BACKOFF: &str = "INSERT INTO login_backoff \
     (account, network, failures, next_at, trusted_until, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account, network) DO UPDATE SET \
     failures = excluded.failures, next_at = excluded.next_at, \
     trusted_until = excluded.trusted_until, expires_at = excluded.expires_at";

async fn upsert_backoff<'e>(
    db: impl sqlx::PgExecutor<'e>,
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
impl ThrottleStore for PgStore {
    async fn throttle_login(
        &self,
        key: ThrottleKey<'_>,
        decide: &Decide<'_>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        // The account's ceiling row is the lock: every attempt on this
        // account, from any instance, waits here for the one before it.
        sqlx::query(
            "INSERT INTO login_ceiling (account, tat_ms) VALUES ($1, 0) \
             ON CONFLICT (account) DO NOTHING",
        )
        .bind(&key.account[..])
        .execute(&mut *tx)
        .await?;
        let mut state = ThrottleState {
            ceiling_tat_ms: sqlx::query_scalar(
                "SELECT tat_ms FROM login_ceiling WHERE account = $1 FOR UPDATE",
            )
            .bind(&key.account[..])
            .fetch_one(&mut *tx)
            .await?,
            ..ThrottleState::default()
        };
        if let Some(row) = sqlx::query(
            "SELECT failures, next_at, trusted_until, expires_at FROM login_backoff \
             WHERE account = $1 AND network = $2",
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
        if !decide(&mut state) {
            // Nothing charged; the ceiling row inserted above (if new) is
            // in the past and goes with the next prune.
            tx.commit().await?;
            return Ok(false);
        }
        upsert_backoff(&mut *tx, key, &state).await?;
        sqlx::query("UPDATE login_ceiling SET tat_ms = $2 WHERE account = $1")
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
        let a = sqlx::query("DELETE FROM login_backoff WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected();
        let b = sqlx::query("DELETE FROM login_ceiling WHERE tat_ms < $1")
            .bind(now.saturating_mul(1000))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(a + b)
    }
}
