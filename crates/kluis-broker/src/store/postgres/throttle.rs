//! [`ThrottleStore`](super::super::ThrottleStore) on the postgres backend:
//! the shared implementation of `store/throttle.rs`, with PostgreSQL's
//! locking: the account's ceiling row is the lock.

use sqlx::{PgConnection, PgPool};

use super::PgStore;

/// The account's ceiling, its row locked: every attempt on this account,
/// from any instance, waits here for the one before it. A missing row is
/// inserted first (at 0) so that there is one to lock.
async fn lock_ceiling(conn: &mut PgConnection, account: &[u8; 32]) -> Result<i64, StoreError> {
    sqlx::query(
        "INSERT INTO login_ceiling (account, tat_ms) VALUES ($1, 0) \
         ON CONFLICT (account) DO NOTHING",
    )
    .bind(&account[..])
    .execute(&mut *conn)
    .await?;
    Ok(
        sqlx::query_scalar("SELECT tat_ms FROM login_ceiling WHERE account = $1 FOR UPDATE")
            .bind(&account[..])
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// One statement a table, each its own transaction: holding the backoff
/// rows' locks while waiting for a ceiling row that an attempt holds (and
/// that attempt waiting for its backoff row) would deadlock.
async fn prune(pool: &PgPool, now: i64) -> Result<u64, StoreError> {
    let mut n = 0;
    for (sql, bound) in super::super::throttle::prune_statements(now) {
        n += sqlx::query(sql)
            .bind(bound)
            .execute(pool)
            .await?
            .rows_affected();
    }
    Ok(n)
}

super::super::throttle::impl_throttle_store!(PgStore, sqlx::Postgres);
