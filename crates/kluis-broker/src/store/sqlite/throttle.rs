//! [`ThrottleStore`](super::super::ThrottleStore) on the sqlite backend:
//! the shared implementation of `store/throttle.rs`, with SQLite's
//! locking. Every transaction here began IMMEDIATE (`begin_write`): it
//! holds the write lock from the start, so two attempts cannot both read
//! the same state (other processes on the file included).

use sqlx::{SqliteConnection, SqlitePool};

use super::SqliteStore;

/// The account's ceiling (0 when it has no row).
async fn lock_ceiling(conn: &mut SqliteConnection, account: &[u8; 32]) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT tat_ms FROM login_ceiling WHERE account = $1")
            .bind(&account[..])
            .fetch_optional(conn)
            .await?
            .unwrap_or(0),
    )
}

/// Both tables in one IMMEDIATE transaction.
async fn prune(pool: &SqlitePool, now: i64) -> Result<u64, StoreError> {
    let mut tx = super::begin_write(pool).await?;
    let mut n = 0;
    for (sql, bound) in super::super::throttle::prune_statements(now) {
        n += sqlx::query(sql)
            .bind(bound)
            .execute(&mut *tx)
            .await?
            .rows_affected();
    }
    tx.commit().await?;
    Ok(n)
}

super::super::throttle::impl_throttle_store!(SqliteStore, sqlx::Sqlite);
