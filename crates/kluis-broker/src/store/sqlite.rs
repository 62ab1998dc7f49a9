//! SQLite backend: the embedded default. One file in the data directory,
//! WAL journal, foreign keys on.

use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::SqliteConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::dialect::Dialect;
use super::{AbortOnDrop, LookupCache, StoreError, like_prefix, prefix_upper_bound};
use common::{
    append_audit_rows, begin_write, insert_next_escrow, is_unique_violation, raw_request,
};

mod admins;
mod common;
mod files;
mod groups;
mod recovery_cancel;
mod rollback;
mod seed;
mod store_impl;
mod throttle;

/// What this backend's SQL says differently.
const DIALECT: Dialect = Dialect::Sqlite;

/// The SQLite implementation of [`Store`](super::Store).
pub struct SqliteStore {
    pool: SqlitePool,
    options: SqliteConnectOptions,
    cache: Arc<LookupCache>,
    /// The change watcher, started once the schema is migrated.
    watch: std::sync::Mutex<Option<AbortOnDrop>>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database a `sqlite:` URL names.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        files::make_private(&options).map_err(|e| StoreError::Database(e.into()))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await?;
        Ok(Self {
            pool,
            options,
            cache: Arc::new(LookupCache::new()),
            watch: std::sync::Mutex::new(None),
        })
    }
}

/// How often the change counter is read.
const CHANGES_POLL: Duration = Duration::from_millis(50);

/// Keeps the lookup cache honest against other processes on the same file
/// (`kluis-broker admin …` disabling a user while the server runs): the
/// triggers of migration 4 count every change to `users` and every ended
/// session in `kluis_changes`, and a connection of this watcher's own reads
/// the count. The cache is on only while this works.
async fn watch_changes(options: SqliteConnectOptions, cache: Weak<LookupCache>) {
    loop {
        let result = async {
            let mut conn = <SqliteConnection as sqlx::Connection>::connect_with(&options).await?;
            let mut seen = None;
            loop {
                let n: i64 = sqlx::query_scalar("SELECT n FROM kluis_changes WHERE id = 1")
                    .fetch_one(&mut conn)
                    .await?;
                let Some(cache) = cache.upgrade() else {
                    return Ok::<(), sqlx::Error>(());
                };
                if seen.is_none() {
                    cache.set_enabled(true);
                } else if seen != Some(n) {
                    cache.invalidate();
                }
                seen = Some(n);
                drop(cache);
                tokio::time::sleep(CHANGES_POLL).await;
            }
        }
        .await;
        let Some(cache) = cache.upgrade() else { return };
        cache.set_enabled(false);
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "lookup cache off: cannot watch the database for changes; retrying");
            }
        }
        drop(cache);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The statement of [`DirectoryStore::db_search_directory`](super::DirectoryStore::db_search_directory)
/// with its first parameters bound (the prefix); the caller binds the
/// last three (token hash, now, limit). It makes the session test, then
/// finds the hits. SQLite's LIKE ignores ASCII case, so it
/// cannot use the (binary) indexes; the stored values and the prefix are
/// lower case, so a range on each column finds the same rows through its
/// index, and the LIKE keeps the exact meaning.
fn directory_query(
    prefix: &str,
) -> sqlx::query::Query<'_, sqlx::Sqlite, <sqlx::Sqlite as sqlx::Database>::Arguments<'_>> {
    let pattern = like_prefix(prefix);
    match prefix_upper_bound(prefix) {
        Some(hi) => sqlx::query(
            "SELECT u.user_id, u.email, u.display_name, u.public_key, u.cert_issued_at, \
                 u.cert_signature, u.disabled_at FROM sessions s \
                 JOIN users su ON su.user_id = s.user_id LEFT JOIN users u ON \
                 ((u.email >= ?1 AND u.email < ?2 AND u.email LIKE ?3 ESCAPE '\\') \
                 OR (u.display_name_lc >= ?1 AND u.display_name_lc < ?2 \
                 AND u.display_name_lc LIKE ?3 ESCAPE '\\')) \
                 WHERE s.token_hash = ?4 AND s.expires_at > ?5 AND su.disabled_at IS NULL \
                 ORDER BY u.email LIMIT ?6",
        )
        .bind(prefix)
        .bind(hi),
        None => sqlx::query(
            "SELECT u.user_id, u.email, u.display_name, u.public_key, u.cert_issued_at, \
                 u.cert_signature, u.disabled_at FROM sessions s \
                 JOIN users su ON su.user_id = s.user_id LEFT JOIN users u ON \
                 ((u.email >= ?1 AND u.email LIKE ?3 ESCAPE '\\') \
                 OR (u.display_name_lc >= ?1 AND u.display_name_lc LIKE ?3 ESCAPE '\\')) \
                 WHERE s.token_hash = ?4 AND s.expires_at > ?5 AND su.disabled_at IS NULL \
                 ORDER BY u.email LIMIT ?6",
        )
        .bind(prefix)
        .bind(None::<String>),
    }
    .bind(pattern)
}

impl SqliteStore {
    /// After migrating: the change counter exists now, so start following
    /// it (once).
    fn migrated(&self) {
        let mut watch = self
            .watch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if watch.is_none() {
            let task = watch_changes(self.options.clone(), Arc::downgrade(&self.cache));
            *watch = Some(AbortOnDrop(tokio::spawn(task)));
        }
    }
}
