//! PostgreSQL backend: for deployments that run several stateless broker
//! instances behind a load balancer on one database.

use std::str::FromStr;
use std::sync::{Arc, Weak};

use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};

use super::{AbortOnDrop, LookupCache, StoreError, TokenHash, like_prefix};
use common::{append_audit_rows, insert_next_escrow, is_unique_violation, raw_request};

mod admins;
mod common;
mod groups;
mod recovery_cancel;
mod rollback;
mod seed;
mod store_impl;
mod throttle;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_recovery.sql"),
    ),
    (3, include_str!("../../migrations/postgres/0003_groups.sql")),
    (
        4,
        include_str!("../../migrations/postgres/0004_change_notify.sql"),
    ),
    (
        5,
        include_str!("../../migrations/postgres/0005_superseded_logins.sql"),
    ),
    (6, include_str!("../../migrations/postgres/0006_limits.sql")),
    (7, include_str!("../../migrations/postgres/0007_ops.sql")),
    (
        8,
        include_str!("../../migrations/postgres/0008_group_authority.sql"),
    ),
    (
        9,
        include_str!("../../migrations/postgres/0009_recovery_decoys.sql"),
    ),
];

/// The PostgreSQL implementation of [`Store`].
pub struct PgStore {
    pool: PgPool,
    cache: Arc<LookupCache>,
    _listen: AbortOnDrop,
}

impl PgStore {
    /// Connects to the database a `postgres://` URL names.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(PgConnectOptions::from_str(url)?).await
    }

    /// Connects with explicit options (tests use this to pick a schema).
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await?;
        let cache = Arc::new(LookupCache::new());
        let listen = tokio::spawn(listen_for_changes(pool.clone(), Arc::downgrade(&cache)));
        Ok(Self {
            pool,
            cache,
            _listen: AbortOnDrop(listen),
        })
    }
}

/// The channel the `users` and `sessions` triggers notify on commit
/// (migration 4).
const CHANGES_CHANNEL: &str = "kluis_cache";

/// Keeps the lookup cache honest against the other broker instances on
/// the same database (and `kluis-broker admin …`): every commit that
/// changes a user or ends a session notifies `kluis_cache`; each
/// notification invalidates the cache. The cache is on only while this
/// instance is listening: after the connection drops, notifications may
/// have been missed, so it stays off until `LISTEN` succeeds again.
async fn listen_for_changes(pool: PgPool, cache: Weak<LookupCache>) {
    loop {
        let result = async {
            let schema: String = sqlx::query_scalar("SELECT current_schema()::text")
                .fetch_one(&pool)
                .await?;
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANGES_CHANNEL).await?;
            if let Some(c) = cache.upgrade() {
                c.set_enabled(true);
            }
            // `Ok(None)`: the connection was lost (missed notifications).
            while let Some(n) = listener.try_recv().await? {
                let Some(c) = cache.upgrade() else {
                    return Ok(());
                };
                // Another schema of the same database is another broker.
                if n.payload() == schema {
                    c.invalidate();
                }
            }
            Err(sqlx::Error::PoolClosed)
        }
        .await;
        let Some(cache) = cache.upgrade() else { return };
        cache.set_enabled(false);
        if let Err(e) = result {
            tracing::warn!(error = %e, "lookup cache off: not listening for changes; retrying");
        } else {
            return;
        }
        drop(cache);
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// Begins a transaction that writes: a plain one on PostgreSQL, where the
/// statements take their own row locks (and the audit log its table lock).
async fn begin_write(
    pool: &PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    pool.begin().await
}

/// Taken before reading the audit log's head. The table lock, which plain
/// reads do not conflict with, makes a concurrent writer, on this or
/// another instance, wait instead of building on the same head.
async fn lock_audit_log(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Several instances may start at once: one migrates, the others wait.
async fn lock_migrations(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(7457324101)")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

const SCHEMA_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS kluis_schema_version \
     (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)";

/// The current time in Unix seconds, in SQL.
const NOW_SECONDS: &str = "EXTRACT(EPOCH FROM now())::BIGINT";

/// The order approvals were given in.
const APPROVALS_ORDER: &str = "approved_at, admin_key";

/// The rows of [`Store::db_search_directory`](super::Store::db_search_directory):
/// the session test, then the hits. The text_pattern_ops indexes serve the
/// LIKE prefixes.
async fn directory_rows(
    pool: &PgPool,
    token: &TokenHash,
    now: i64,
    prefix: &str,
    limit: i64,
) -> Result<Vec<PgRow>, StoreError> {
    Ok(sqlx::query(
        "SELECT u.user_id, u.email, u.display_name, u.public_key, u.cert_issued_at, \
         u.cert_signature, u.disabled_at FROM sessions s \
         JOIN users su ON su.user_id = s.user_id LEFT JOIN users u ON \
         (u.email LIKE $1 ESCAPE '\\' OR u.display_name_lc LIKE $1 ESCAPE '\\') \
         WHERE s.token_hash = $2 AND s.expires_at > $3 AND su.disabled_at IS NULL \
         ORDER BY u.email LIMIT $4",
    )
    .bind(like_prefix(prefix))
    .bind(&token[..])
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

impl PgStore {
    /// After migrating: nothing to start (the listener runs from `connect`).
    fn migrated(&self) {}
}

/// The outcome columns a recovery decoy does not have, typed as in
/// `recovery_requests`.
const NULL_OUTCOME: &str =
    "NULL::bytea AS package, NULL::text AS completed_by, NULL::bigint AS completed_at";
