//! What the SQL of the two backends says differently, side by side
//! (issue 19). The shared implementations (`sql_store.rs`, `sql_common.rs`
//! and the per-concern macros) ask the expanding backend's `DIALECT`;
//! what differs in more than a string (the directory search's index use,
//! the login throttle's row locks, the cache watcher) stays code of the
//! backend's own.

use super::migrations::Migration;

/// A backend's SQL dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite: one writer at a time, on the whole file.
    Sqlite,
    /// PostgreSQL: row and table locks, several instances.
    Postgres,
}

impl Dialect {
    /// How a transaction that writes begins (`None`: a plain `BEGIN`).
    /// SQLite's `BEGIN IMMEDIATE` takes the write lock at once (other
    /// processes on the file included), so what the transaction reads
    /// cannot change before it writes; PostgreSQL's statements take their
    /// own row locks.
    pub(crate) const fn begin_write(self) -> Option<&'static str> {
        match self {
            Self::Sqlite => Some("BEGIN IMMEDIATE"),
            Self::Postgres => None,
        }
    }

    /// Taken before reading the audit log's head, so that a concurrent
    /// writer, on this or another instance, waits instead of building on
    /// the same head. PostgreSQL: a table lock that plain reads do not
    /// conflict with. SQLite: none, the caller's transaction holds the
    /// write lock (it has written or began IMMEDIATE).
    pub(crate) const fn lock_audit_log(self) -> Option<&'static str> {
        match self {
            Self::Sqlite => None,
            Self::Postgres => Some("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE"),
        }
    }

    /// Taken in each migration's transaction: several PostgreSQL instances
    /// may start at once; one migrates, the others wait.
    pub(crate) const fn lock_migrations(self) -> Option<&'static str> {
        match self {
            Self::Sqlite => None,
            Self::Postgres => Some("SELECT pg_advisory_xact_lock(7457324101)"),
        }
    }

    /// Creates the table of applied schema versions.
    pub(crate) const fn schema_version_table(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "CREATE TABLE IF NOT EXISTS kluis_schema_version \
                 (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
            }
            Self::Postgres => {
                "CREATE TABLE IF NOT EXISTS kluis_schema_version \
                 (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"
            }
        }
    }

    /// The current time in Unix seconds.
    pub(crate) const fn now_seconds(self) -> &'static str {
        match self {
            Self::Sqlite => "strftime('%s','now')",
            Self::Postgres => "EXTRACT(EPOCH FROM now())::BIGINT",
        }
    }

    /// The order a request's approvals were given in.
    pub(crate) const fn approvals_order(self) -> &'static str {
        match self {
            Self::Sqlite => "rowid",
            Self::Postgres => "approved_at, admin_key",
        }
    }

    /// The outcome columns a recovery decoy does not have (PostgreSQL
    /// needs them typed as in `recovery_requests`).
    pub(crate) const fn null_outcome(self) -> &'static str {
        match self {
            Self::Sqlite => "NULL AS package, NULL AS completed_by, NULL AS completed_at",
            Self::Postgres => {
                "NULL::bytea AS package, NULL::text AS completed_by, NULL::bigint AS completed_at"
            }
        }
    }

    /// Stores an account's login ceiling (`$1` account, `$2` `tat_ms`).
    /// SQLite: the account may have no row yet. PostgreSQL: the row exists
    /// and is locked (the backend's `lock_ceiling`).
    pub(crate) const fn store_ceiling(self) -> &'static str {
        match self {
            Self::Sqlite => {
                "INSERT INTO login_ceiling (account, tat_ms) VALUES ($1, $2) \
                 ON CONFLICT (account) DO UPDATE SET tat_ms = excluded.tat_ms"
            }
            Self::Postgres => "UPDATE login_ceiling SET tat_ms = $2 WHERE account = $1",
        }
    }

    /// This backend's script of a schema version.
    pub(crate) const fn migration(self, m: &Migration) -> &'static str {
        match self {
            Self::Sqlite => m.sqlite,
            Self::Postgres => m.postgres,
        }
    }
}
