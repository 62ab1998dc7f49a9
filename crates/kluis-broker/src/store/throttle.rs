//! The per-account login limit's state (issue 18.2), one implementation,
//! `impl_throttle_store!`, expanded with each backend's locking in
//! `sqlite/throttle.rs` and `postgres/throttle.rs`: tables
//! `login_backoff` and `login_ceiling` (migration 6). The decision itself
//! is [`crate::ratelimit::account::LoginPolicy`]; the store only makes it
//! atomic across every instance on the database.

use async_trait::async_trait;

use super::StoreError;
pub use crate::ratelimit::account::ThrottleState;

/// Whose state: an account key (SHA-256 of the address) and a source
/// network.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleKey<'a> {
    /// [`crate::ratelimit::account_key`] of the address.
    pub account: &'a [u8; 32],
    /// [`crate::ratelimit::network`] of the client, as text.
    pub network: &'a str,
}

/// Decides on the loaded state; true (with the state charged) lets the
/// attempt go on.
pub type Decide<'a> = dyn Fn(&mut ThrottleState) -> bool + Send + Sync + 'a;

/// Storage of login throttling state.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Loads the state of `key` (defaults for missing rows), runs `decide`
    /// and, if it returns true, stores the charged state — all in one
    /// transaction that excludes every other attempt on the same account,
    /// from any instance. Returns what `decide` returned.
    async fn throttle_login(
        &self,
        key: ThrottleKey<'_>,
        decide: &Decide<'_>,
    ) -> Result<bool, StoreError>;
    /// Replaces the backoff row of `key` with `state` (a successful login).
    async fn reset_login_backoff(
        &self,
        key: ThrottleKey<'_>,
        state: &ThrottleState,
    ) -> Result<(), StoreError>;
    /// Deletes the rows that have expired by `now` (Unix s); returns how
    /// many.
    async fn prune_login_throttle(&self, now: i64) -> Result<u64, StoreError>;
}

/// The expired rows' deletions, with their bound value: backoff rows by
/// `expires_at` (s), ceiling rows by `tat_ms` (ms).
pub(crate) fn prune_statements(now: i64) -> [(&'static str, i64); 2] {
    [
        ("DELETE FROM login_backoff WHERE expires_at < $1", now),
        (
            "DELETE FROM login_ceiling WHERE tat_ms < $1",
            now.saturating_mul(1000),
        ),
    ]
}

/// The one implementation of [`ThrottleStore`], expanded for a backend in
/// `sqlite/throttle.rs` and `postgres/throttle.rs`:
/// `impl_throttle_store!(Store, sqlx::Database)`. The expanding module
/// provides the locking, which differs: `lock_ceiling` (read the account's
/// ceiling so that every other attempt on the account waits until this
/// transaction ends) and `prune` (both tables); the statement that stores
/// the ceiling is its `DIALECT`'s.
macro_rules! impl_throttle_store {
    ($store:ty, $db:ty) => {
        use async_trait::async_trait;
        use sqlx::Row;

        use super::super::StoreError;
        use super::super::throttle::{Decide, ThrottleKey, ThrottleState, ThrottleStore};

        const UPSERT_BACKOFF: &str = "INSERT INTO login_backoff \
             (account, network, failures, next_at, trusted_until, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account, network) DO UPDATE SET \
             failures = excluded.failures, next_at = excluded.next_at, \
             trusted_until = excluded.trusted_until, expires_at = excluded.expires_at";

        async fn upsert_backoff<'e>(
            db: impl sqlx::Executor<'e, Database = $db>,
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
        impl ThrottleStore for $store {
            async fn throttle_login(
                &self,
                key: ThrottleKey<'_>,
                decide: &Decide<'_>,
            ) -> Result<bool, StoreError> {
                let mut tx = super::begin_write(&self.pool).await?;
                let mut state = ThrottleState {
                    ceiling_tat_ms: lock_ceiling(&mut tx, key.account).await?,
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
                    // Nothing charged (on PostgreSQL the ceiling row that
                    // `lock_ceiling` inserted, in the past, stays for the
                    // next prune).
                    tx.commit().await?;
                    return Ok(false);
                }
                upsert_backoff(&mut *tx, key, &state).await?;
                sqlx::query(super::DIALECT.store_ceiling())
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
                prune(&self.pool, now).await
            }
        }
    };
}
pub(crate) use impl_throttle_store;
