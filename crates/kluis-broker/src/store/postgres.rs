//! PostgreSQL backend: for deployments that run several stateless broker
//! instances behind a load balancer on one database.

use std::str::FromStr;
use std::sync::{Arc, Weak};

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};

use super::dialect::Dialect;
use super::{AbortOnDrop, LookupCache, StoreError, like_prefix};
use common::{
    append_audit_rows, begin_write, insert_next_escrow, is_unique_violation, raw_request,
};

mod admins;
mod common;
mod groups;
mod recovery_cancel;
mod rollback;
mod seed;
mod store_impl;
mod throttle;

/// What this backend's SQL says differently.
const DIALECT: Dialect = Dialect::Postgres;

/// The PostgreSQL implementation of [`Store`](super::Store).
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

/// The statement of [`DirectoryStore::db_search_directory`](super::DirectoryStore::db_search_directory)
/// with its first parameters bound (the prefix); the caller binds the
/// last three (token hash, now, limit). It makes the session test, then
/// finds the hits. The text_pattern_ops indexes serve the
/// LIKE prefixes.
fn directory_query(
    prefix: &str,
) -> sqlx::query::Query<'_, sqlx::Postgres, <sqlx::Postgres as sqlx::Database>::Arguments<'_>> {
    sqlx::query(
        "SELECT u.user_id, u.email, u.display_name, u.public_key, u.cert_issued_at, \
         u.cert_signature, u.disabled_at FROM sessions s \
         JOIN users su ON su.user_id = s.user_id LEFT JOIN users u ON \
         (u.email LIKE $1 ESCAPE '\\' OR u.display_name_lc LIKE $1 ESCAPE '\\') \
         WHERE s.token_hash = $2 AND s.expires_at > $3 AND su.disabled_at IS NULL \
         ORDER BY u.email LIMIT $4",
    )
    .bind(like_prefix(prefix))
}

impl PgStore {
    /// After migrating: nothing to start (the listener runs from `connect`).
    fn migrated(&self) {}
}
