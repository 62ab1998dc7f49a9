//! SQLite backend: the embedded default. One file in the data directory,
//! WAL journal, foreign keys on.

use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use kluis_types::{
    Email, EncryptedEscrow, EscrowRecord, EscrowVersionInfo, LoginId, OrgCertificate,
    PublicKeyString, SessionId, UserId,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};

use super::{
    AbortOnDrop, AdminRow, ApprovalRow, AuditBuilder, AuditOf, DirectoryRow, LookupCache,
    NewRecoveryRequest, NewSession, NewUser, PasswordChange, REQUEST_COLUMNS, RawAudit,
    RawDirectoryRow, RawRequest, RawUser, RecoveryRequestRow, RecoveryReset, SessionRow, Store,
    StoreError, StoredPolicy, StoredRecoveryKey, TokenHash, USER_COLUMNS, UserRow,
    decode_recovery_key, decode_session, like_prefix, prefix_upper_bound,
};
use kluis_audit::{AuditRow, Head};
use kluis_types::{RecoveryState, RequestId};

mod admins;
mod files;
mod groups;
mod recovery_cancel;
mod rollback;
mod seed;
mod throttle;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_recovery.sql")),
    (3, include_str!("../../migrations/sqlite/0003_groups.sql")),
    (
        4,
        include_str!("../../migrations/sqlite/0004_change_counter.sql"),
    ),
    (
        5,
        include_str!("../../migrations/sqlite/0005_superseded_logins.sql"),
    ),
    (6, include_str!("../../migrations/sqlite/0006_limits.sql")),
    (7, include_str!("../../migrations/sqlite/0007_ops.sql")),
    (
        8,
        include_str!("../../migrations/sqlite/0008_group_authority.sql"),
    ),
    (
        9,
        include_str!("../../migrations/sqlite/0009_recovery_decoys.sql"),
    ),
];

/// The SQLite implementation of [`Store`].
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

/// Appends one audit row built from the log's head, on `conn` (inside the
/// caller's transaction, which must hold the log's write lock: SQLite's
/// write lock is held once the transaction has written or began
/// IMMEDIATE).
async fn append_audit_row(
    conn: &mut SqliteConnection,
    build: &AuditBuilder<'_>,
) -> Result<AuditRow, StoreError> {
    let last = sqlx::query(
        "SELECT seq, time, actor, action, target, details, prev_hash, hash \
             FROM audit_log ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let head = match last {
        Some(r) => Head::of(&raw_audit(&r)?),
        None => Head::GENESIS,
    };
    let row = build(&head)?;
    let raw = RawAudit::encode(&row)?;
    sqlx::query(
        "INSERT INTO audit_log (seq, time, actor, action, target, details, prev_hash, hash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(raw.seq)
    .bind(raw.time)
    .bind(&raw.actor)
    .bind(&raw.action)
    .bind(&raw.target)
    .bind(&raw.details)
    .bind(&raw.prev_hash)
    .bind(&raw.hash)
    .execute(&mut *conn)
    .await?;
    Ok(row)
}

/// Appends `entries` in order, inside the caller's transaction: the write
/// they record and its audit rows commit together or not at all.
async fn append_audit_rows(
    conn: &mut SqliteConnection,
    entries: Vec<kluis_audit::AuditEntry>,
) -> Result<(), StoreError> {
    for entry in entries {
        append_audit_row(conn, &move |head: &Head| {
            kluis_audit::next_row(head, entry.clone())
        })
        .await?;
    }
    Ok(())
}

fn raw_user(row: &SqliteRow) -> Result<UserRow, StoreError> {
    RawUser {
        user_id: row.try_get("user_id")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        opaque_record: row.try_get("opaque_record")?,
        ksf_m_cost_kib: row.try_get("ksf_m_cost_kib")?,
        ksf_t_cost: row.try_get("ksf_t_cost")?,
        ksf_p_cost: row.try_get("ksf_p_cost")?,
        public_key: row.try_get("public_key")?,
        cert_issued_at: row.try_get("cert_issued_at")?,
        cert_signature: row.try_get("cert_signature")?,
        disabled_at: row.try_get("disabled_at")?,
    }
    .decode()
}

fn raw_request(row: &SqliteRow) -> Result<RecoveryRequestRow, StoreError> {
    RawRequest {
        request_id: row.try_get("request_id")?,
        user_id: row.try_get("user_id")?,
        email: row.try_get("email")?,
        request_key: row.try_get("request_key")?,
        request_key_fp: row.try_get("request_key_fp")?,
        requested_at: row.try_get("requested_at")?,
        status: row.try_get("status")?,
        package: row.try_get("package")?,
        completed_by: row.try_get("completed_by")?,
        completed_at: row.try_get("completed_at")?,
    }
    .decode()
}

fn raw_audit(row: &SqliteRow) -> Result<AuditRow, StoreError> {
    RawAudit {
        seq: row.try_get("seq")?,
        time: row.try_get("time")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        details: row.try_get("details")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    }
    .decode()
}

/// Appends the next recovery-escrow version (latest + 1).
async fn insert_recovery_escrow(
    conn: &mut SqliteConnection,
    user_id: &UserId,
    escrow: &EncryptedEscrow,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO recovery_escrow (user_id, version, blob, created_at) \
         SELECT ?, COALESCE(MAX(version), 0) + 1, ?, ? FROM recovery_escrow WHERE user_id = ?",
    )
    .bind(user_id.as_str())
    .bind(escrow.as_bytes())
    .bind(now)
    .bind(user_id.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn directory_row(row: &SqliteRow) -> Result<RawDirectoryRow, StoreError> {
    Ok(RawDirectoryRow {
        user_id: row.try_get(0)?,
        email: row.try_get(1)?,
        display_name: row.try_get(2)?,
        public_key: row.try_get(3)?,
        cert_issued_at: row.try_get(4)?,
        cert_signature: row.try_get(5)?,
        disabled_at: row.try_get(6)?,
    })
}

fn session_row(row: &SqliteRow) -> Result<SessionRow, StoreError> {
    decode_session(
        row.try_get("session_id")?,
        row.try_get("user_id")?,
        row.try_get("created_at")?,
        row.try_get("expires_at")?,
    )
}

fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.is_unique_violation())
}

/// Appends escrow version `expected + 1` in one statement; 0 rows means the
/// caller's view was stale.
async fn insert_next_escrow(
    conn: &mut SqliteConnection,
    user_id: &UserId,
    expected_version: i64,
    escrow: &EncryptedEscrow,
    now: i64,
) -> Result<i64, StoreError> {
    let result = sqlx::query(
        "INSERT INTO escrow (user_id, version, blob, created_at) \
         SELECT ?, ? + 1, ?, ? \
         WHERE (SELECT COALESCE(MAX(version), 0) FROM escrow WHERE user_id = ?) = ?",
    )
    .bind(user_id.as_str())
    .bind(expected_version)
    .bind(escrow.as_bytes())
    .bind(now)
    .bind(user_id.as_str())
    .bind(expected_version)
    .execute(&mut *conn)
    .await;
    match result {
        Ok(done) if done.rows_affected() == 1 => Ok(expected_version + 1),
        Ok(_) => Err(StoreError::VersionConflict),
        Err(e) if is_unique_violation(&e) => Err(StoreError::VersionConflict),
        Err(e) => Err(e.into()),
    }
}

fn escrow_record(row: &SqliteRow) -> Result<EscrowRecord, StoreError> {
    Ok(EscrowRecord {
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        escrow: EncryptedEscrow::new(row.try_get("blob")?),
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS kluis_schema_version \
             (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        for &(version, sql) in MIGRATIONS {
            let mut tx = self.pool.begin().await?;
            let done: Option<i64> =
                sqlx::query_scalar("SELECT version FROM kluis_schema_version WHERE version = ?")
                    .bind(version)
                    .fetch_optional(&mut *tx)
                    .await?;
            if done.is_some() {
                continue;
            }
            // A plain &str runs as a multi-statement (simple) query.
            sqlx::Executor::execute(&mut *tx, sql)
                .await
                .map_err(|source| StoreError::Migration { version, source })?;
            sqlx::query("INSERT INTO kluis_schema_version (version, applied_at) VALUES (?, strftime('%s','now'))")
                .bind(version)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        // The change counter exists now: start following it (once).
        let mut watch = self
            .watch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if watch.is_none() {
            let task = watch_changes(self.options.clone(), Arc::downgrade(&self.cache));
            *watch = Some(AbortOnDrop(tokio::spawn(task)));
        }
        Ok(())
    }

    fn lookup_cache(&self) -> &LookupCache {
        &self.cache
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_user(
        &self,
        user: &NewUser,
        invite: Option<&TokenHash>,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError> {
        // After it returns (committed, failed or cancelled) nothing cached
        // before may be served.
        let _fresh = self.cache.after_write();
        let mut tx = self.pool.begin().await?;
        if let Some(hash) = invite {
            let used = sqlx::query(
                "UPDATE invites SET used_at = ? WHERE token_hash = ? AND used_at IS NULL \
                 AND expires_at > ? AND (email IS NULL OR email = ?)",
            )
            .bind(user.created_at)
            .bind(&hash[..])
            .bind(user.created_at)
            .bind(user.email.as_str())
            .execute(&mut *tx)
            .await?;
            if used.rows_affected() != 1 {
                return Err(StoreError::InviteInvalid);
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO users (user_id, email, display_name, display_name_lc, opaque_record, \
             ksf_m_cost_kib, ksf_t_cost, ksf_p_cost, public_key, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user.user_id.as_str())
        .bind(user.email.as_str())
        .bind(user.display_name.as_str())
        .bind(user.display_name.as_str().to_lowercase())
        .bind(&user.opaque_record[..])
        .bind(i64::from(user.ksf.m_cost_kib))
        .bind(i64::from(user.ksf.t_cost))
        .bind(i64::from(user.ksf.p_cost))
        .bind(user.public_key.as_str())
        .bind(user.created_at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(StoreError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        insert_next_escrow(&mut tx, &user.user_id, 0, &user.escrow, user.created_at).await?;
        if let Some(r) = &user.recovery_escrow {
            insert_recovery_escrow(&mut tx, &user.user_id, r, user.created_at).await?;
        }
        append_audit_rows(&mut tx, audit(&())?).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn user_by_email(&self, email: &Email) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = ?");
        let row = sqlx::query(&sql)
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(raw_user).transpose()
    }

    async fn user_by_id(&self, user_id: &UserId) -> Result<Option<UserRow>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE user_id = ?");
        let row = sqlx::query(&sql)
            .bind(user_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(raw_user).transpose()
    }

    async fn set_public_key(
        &self,
        user_id: &UserId,
        key: &PublicKeyString,
    ) -> Result<(), StoreError> {
        // After it returns (committed, failed or cancelled) nothing cached
        // before may be served.
        let _fresh = self.cache.after_write();
        sqlx::query(
            "UPDATE users SET public_key = ?, cert_issued_at = NULL, cert_signature = NULL \
             WHERE user_id = ?",
        )
        .bind(key.as_str())
        .bind(user_id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_certificate(
        &self,
        cert: &OrgCertificate,
        audit: &AuditOf<'_, bool>,
    ) -> Result<bool, StoreError> {
        // After it returns (committed, failed or cancelled) nothing cached
        // before may be served.
        let _fresh = self.cache.after_write();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE users SET cert_issued_at = ?, cert_signature = ? \
             WHERE email = ? AND public_key = ?",
        )
        .bind(cert.issued_at)
        .bind(cert.signature.as_bytes())
        .bind(cert.email.as_str())
        .bind(cert.public_key.as_str())
        .execute(&mut *tx)
        .await?;
        let stored = done.rows_affected() == 1;
        append_audit_rows(&mut tx, audit(&stored)?).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn db_search_directory(
        &self,
        token: &TokenHash,
        now: i64,
        prefix: &str,
        limit: i64,
    ) -> Result<Option<Vec<DirectoryRow>>, StoreError> {
        // One statement: the session test of `session_by_token_hash`, then
        // the hits (a LEFT JOIN, so a live session with no hits still gives
        // one row). SQLite's LIKE ignores ASCII case, so it cannot use the
        // (binary) indexes; the stored values and the prefix are lower case,
        // so a range on each column finds the same rows through its index,
        // and the LIKE keeps the exact meaning.
        let pattern = like_prefix(prefix);
        let rows = match prefix_upper_bound(prefix) {
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
        .bind(&pattern)
        .bind(&token[..])
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut hits = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(hit) = directory_row(row)?.decode()? {
                hits.push(hit);
            }
        }
        Ok(Some(hits))
    }

    async fn put_login_attempt(
        &self,
        login_id: &LoginId,
        user_id: Option<&UserId>,
        state: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO login_attempts (login_id, user_id, state, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(login_id.as_str())
        .bind(user_id.map(UserId::as_str))
        .bind(state)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_login_attempt(
        &self,
        login_id: &LoginId,
        now: i64,
    ) -> Result<Option<(Option<UserId>, Vec<u8>)>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM login_attempts WHERE login_id = ? RETURNING user_id, state, expires_at",
        )
        .bind(login_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= now {
            return Ok(None);
        }
        let user_id: Option<String> = row.try_get("user_id")?;
        let user_id = user_id
            .map(|u| UserId::parse(&u))
            .transpose()
            .map_err(|_| StoreError::Corrupt {
                table: "login_attempts",
            })?;
        Ok(Some((user_id, row.try_get("state")?)))
    }

    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (session_id, user_id, token_hash, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(session.session_id.as_str())
        .bind(session.user_id.as_str())
        .bind(&session.token_hash[..])
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn db_session_by_token_hash(
        &self,
        hash: &TokenHash,
        now: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        // The join makes a disabled account's sessions dead even if one was
        // created by a login racing the disable.
        let row = sqlx::query(
            "SELECT s.session_id, s.user_id, s.created_at, s.expires_at FROM sessions s \
             JOIN users u ON u.user_id = s.user_id \
             WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled_at IS NULL",
        )
        .bind(&hash[..])
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_row).transpose()
    }

    async fn list_sessions(
        &self,
        user_id: &UserId,
        now: i64,
    ) -> Result<Vec<SessionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT session_id, user_id, created_at, expires_at FROM sessions \
             WHERE user_id = ? AND expires_at > ? ORDER BY created_at, session_id",
        )
        .bind(user_id.as_str())
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_row).collect()
    }

    async fn revoke_session(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
    ) -> Result<bool, StoreError> {
        // After it returns (committed, failed or cancelled) nothing cached
        // before may be served.
        let _fresh = self.cache.after_write();
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = ? AND session_id = ?")
            .bind(user_id.as_str())
            .bind(session_id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn escrow_latest(&self, user_id: &UserId) -> Result<Option<EscrowRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT version, created_at, blob FROM escrow WHERE user_id = ? \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(user_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(escrow_record).transpose()
    }

    async fn escrow_version(
        &self,
        user_id: &UserId,
        version: i64,
    ) -> Result<Option<EscrowRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT version, created_at, blob FROM escrow WHERE user_id = ? AND version = ?",
        )
        .bind(user_id.as_str())
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(escrow_record).transpose()
    }

    async fn escrow_versions(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<EscrowVersionInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, created_at FROM escrow WHERE user_id = ? ORDER BY version",
        )
        .bind(user_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EscrowVersionInfo {
                    version: r.try_get("version")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn append_escrow(
        &self,
        user_id: &UserId,
        expected_version: i64,
        escrow: &EncryptedEscrow,
        now: i64,
    ) -> Result<i64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_next_escrow(&mut conn, user_id, expected_version, escrow, now).await
    }

    async fn change_password(
        &self,
        change: &PasswordChange<'_>,
        audit: &AuditOf<'_, (i64, u64)>,
    ) -> Result<(i64, u64), StoreError> {
        // After it returns (committed, failed or cancelled) nothing cached
        // before may be served.
        let _fresh = self.cache.after_write();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE users SET opaque_record = ?, ksf_m_cost_kib = ?, ksf_t_cost = ?, \
             ksf_p_cost = ? WHERE user_id = ?",
        )
        .bind(change.opaque_record)
        .bind(i64::from(change.ksf.m_cost_kib))
        .bind(i64::from(change.ksf.t_cost))
        .bind(i64::from(change.ksf.p_cost))
        .bind(change.user_id.as_str())
        .execute(&mut *tx)
        .await?;
        let version = insert_next_escrow(
            &mut tx,
            change.user_id,
            change.expected_escrow_version,
            change.escrow,
            change.now,
        )
        .await?;
        if let Some(r) = change.recovery_escrow {
            insert_recovery_escrow(&mut tx, change.user_id, r, change.now).await?;
        }
        let revoked = sqlx::query("DELETE FROM sessions WHERE user_id = ? AND session_id <> ?")
            .bind(change.user_id.as_str())
            .bind(change.keep_session.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        append_audit_rows(&mut tx, audit(&(version, revoked))?).await?;
        tx.commit().await?;
        Ok((version, revoked))
    }

    async fn create_invite(
        &self,
        hash: &TokenHash,
        email: Option<&Email>,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO invites (token_hash, email, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&hash[..])
        .bind(email.map(Email::as_str))
        .bind(created_at)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn purge_expired(&self, now: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM login_attempts WHERE expires_at <= ?")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_disabled(
        &self,
        user_id: &UserId,
        disabled_at: Option<i64>,
        audit: &AuditOf<'_, u64>,
    ) -> Result<u64, StoreError> {
        // After it returns (committed, failed or cancelled) nothing cached
        // before may be served.
        let _fresh = self.cache.after_write();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET disabled_at = ? WHERE user_id = ?")
            .bind(disabled_at)
            .bind(user_id.as_str())
            .execute(&mut *tx)
            .await?;
        let ended = if disabled_at.is_some() {
            sqlx::query("DELETE FROM sessions WHERE user_id = ?")
                .bind(user_id.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
        } else {
            0
        };
        append_audit_rows(&mut tx, audit(&ended)?).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn policy_latest(&self) -> Result<Option<StoredPolicy>, StoreError> {
        let row = sqlx::query(
            "SELECT version, policy_json, issued_at, signature FROM policies \
             ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(StoredPolicy {
                version: r.try_get("version")?,
                policy_json: r.try_get("policy_json")?,
                issued_at: r.try_get("issued_at")?,
                signature: r.try_get("signature")?,
            })
        })
        .transpose()
    }

    async fn insert_policy(
        &self,
        policy: &StoredPolicy,
        now: i64,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "INSERT INTO policies (version, policy_json, issued_at, signature, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(policy.version)
        .bind(&policy.policy_json)
        .bind(policy.issued_at)
        .bind(&policy.signature)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match done {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate("policy version"));
            }
            Err(e) => return Err(e.into()),
        }
        append_audit_rows(&mut tx, audit(&())?).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn recovery_escrow_latest(
        &self,
        user_id: &UserId,
    ) -> Result<Option<EscrowRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT version, created_at, blob FROM recovery_escrow WHERE user_id = ? \
             ORDER BY version DESC LIMIT 1",
        )
        .bind(user_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(escrow_record).transpose()
    }

    async fn recovery_key_latest(&self) -> Result<Option<StoredRecoveryKey>, StoreError> {
        let row = sqlx::query(
            "SELECT public_key, threshold, shares, issued_at, signature FROM recovery_keys \
             ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            decode_recovery_key(
                r.try_get("public_key")?,
                r.try_get("threshold")?,
                r.try_get("shares")?,
                r.try_get("issued_at")?,
                r.try_get("signature")?,
            )
        })
        .transpose()
    }

    async fn insert_recovery_key(
        &self,
        key: &StoredRecoveryKey,
        now: i64,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO recovery_keys (version, public_key, threshold, shares, issued_at, \
             signature, created_at) \
             SELECT COALESCE(MAX(version), 0) + 1, ?, ?, ?, ?, ?, ? FROM recovery_keys",
        )
        .bind(key.public_key.as_str())
        .bind(i64::from(key.threshold))
        .bind(i64::from(key.shares))
        .bind(key.issued_at)
        .bind(&key.signature)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        append_audit_rows(&mut tx, audit(&())?).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_admin(
        &self,
        admin: &AdminRow,
        token_hash: &TokenHash,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError> {
        self.insert_admin(admin, token_hash, audit).await
    }

    async fn admin_by_token_hash(&self, hash: &TokenHash) -> Result<Option<AdminRow>, StoreError> {
        self.select_admin(hash).await
    }

    async fn list_admins(&self) -> Result<Vec<AdminRow>, StoreError> {
        self.select_admins().await
    }

    async fn create_recovery_request(
        &self,
        req: &NewRecoveryRequest<'_>,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO recovery_requests (request_id, user_id, token_hash, request_key, \
             request_key_fp, requested_at, status) VALUES (?, ?, ?, ?, ?, ?, 'pending')",
        )
        .bind(req.request_id.as_str())
        .bind(req.user_id.as_str())
        .bind(&req.token_hash[..])
        .bind(req.request_key.as_str())
        .bind(req.request_key_fp)
        .bind(req.requested_at)
        .execute(&mut *tx)
        .await?;
        append_audit_rows(&mut tx, audit(&())?).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn recovery_request(
        &self,
        request_id: &RequestId,
    ) -> Result<Option<RecoveryRequestRow>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM recovery_requests r \
             JOIN users u ON u.user_id = r.user_id WHERE r.request_id = ?"
        );
        let row = sqlx::query(&sql)
            .bind(request_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(raw_request).transpose()
    }

    async fn recovery_request_by_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RecoveryRequestRow>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM recovery_requests r \
             JOIN users u ON u.user_id = r.user_id WHERE r.token_hash = ?"
        );
        let row = sqlx::query(&sql)
            .bind(&hash[..])
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(raw_request).transpose()
    }

    async fn open_recovery_requests(&self) -> Result<Vec<RecoveryRequestRow>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM recovery_requests r \
             JOIN users u ON u.user_id = r.user_id WHERE r.status <> 'closed' \
             ORDER BY r.requested_at, r.request_id"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(raw_request).collect()
    }

    async fn recoveries_of(
        &self,
        user_id: &UserId,
        limit: i64,
    ) -> Result<Vec<RecoveryRequestRow>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM recovery_requests r \
             JOIN users u ON u.user_id = r.user_id \
             WHERE r.user_id = ? AND r.status IN ('completed', 'closed') \
             ORDER BY r.completed_at DESC, r.request_id LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(user_id.as_str())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(raw_request).collect()
    }

    async fn add_approval(
        &self,
        request_id: &RequestId,
        row: &ApprovalRow,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "INSERT INTO recovery_approvals (request_id, admin_key, approval, approved_at) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(request_id.as_str())
        .bind(&row.admin_key)
        .bind(&row.approval_json)
        .bind(row.approved_at)
        .execute(&mut *tx)
        .await;
        match done {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(StoreError::Duplicate("approval")),
            Err(e) => return Err(e.into()),
        }
        append_audit_rows(&mut tx, audit(&())?).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn approvals(&self, request_id: &RequestId) -> Result<Vec<ApprovalRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT admin_key, approval, approved_at FROM recovery_approvals \
             WHERE request_id = ? ORDER BY rowid",
        )
        .bind(request_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ApprovalRow {
                    admin_key: r.try_get("admin_key")?,
                    approval_json: r.try_get("approval")?,
                    approved_at: r.try_get("approved_at")?,
                })
            })
            .collect()
    }

    async fn complete_recovery(
        &self,
        request_id: &RequestId,
        package: &[u8],
        admin_name: &str,
        now: i64,
        audit: &AuditOf<'_, bool>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let done = sqlx::query(
            "UPDATE recovery_requests SET status = 'completed', package = ?, completed_by = ?, \
             completed_at = ? WHERE request_id = ? AND status = 'pending'",
        )
        .bind(package)
        .bind(admin_name)
        .bind(now)
        .bind(request_id.as_str())
        .execute(&mut *tx)
        .await?;
        let stored = done.rows_affected() == 1;
        append_audit_rows(&mut tx, audit(&stored)?).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn reset_after_recovery(
        &self,
        reset: &RecoveryReset<'_>,
        audit: &AuditOf<'_, (i64, u64)>,
    ) -> Result<(i64, u64), StoreError> {
        // After it returns (committed, failed or cancelled) nothing cached
        // before may be served.
        let _fresh = self.cache.after_write();
        let mut tx = self.pool.begin().await?;
        let closed = sqlx::query(
            "UPDATE recovery_requests SET status = ?, closed_at = ? \
             WHERE request_id = ? AND user_id = ? AND status = 'completed'",
        )
        .bind(RecoveryState::Closed.as_str())
        .bind(reset.now)
        .bind(reset.request_id.as_str())
        .bind(reset.user_id.as_str())
        .execute(&mut *tx)
        .await?;
        if closed.rows_affected() != 1 {
            return Err(StoreError::VersionConflict);
        }
        sqlx::query(
            "UPDATE users SET opaque_record = ?, ksf_m_cost_kib = ?, ksf_t_cost = ?, \
             ksf_p_cost = ? WHERE user_id = ?",
        )
        .bind(reset.opaque_record)
        .bind(i64::from(reset.ksf.m_cost_kib))
        .bind(i64::from(reset.ksf.t_cost))
        .bind(i64::from(reset.ksf.p_cost))
        .bind(reset.user_id.as_str())
        .execute(&mut *tx)
        .await?;
        let latest: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM escrow WHERE user_id = ?")
                .bind(reset.user_id.as_str())
                .fetch_one(&mut *tx)
                .await?;
        let version =
            insert_next_escrow(&mut tx, reset.user_id, latest, reset.escrow, reset.now).await?;
        if let Some(r) = reset.recovery_escrow {
            insert_recovery_escrow(&mut tx, reset.user_id, r, reset.now).await?;
        }
        let ended = sqlx::query("DELETE FROM sessions WHERE user_id = ?")
            .bind(reset.user_id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        append_audit_rows(&mut tx, audit(&(version, ended))?).await?;
        tx.commit().await?;
        Ok((version, ended))
    }

    async fn append_audit_with(&self, build: &AuditBuilder<'_>) -> Result<AuditRow, StoreError> {
        // IMMEDIATE takes SQLite's write lock before reading the head, so a
        // concurrent writer waits instead of building on the same head.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let row = append_audit_row(&mut tx, build).await?;
        tx.commit().await?;
        Ok(row)
    }

    async fn audit_rows(&self) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, time, actor, action, target, details, prev_hash, hash \
             FROM audit_log ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(raw_audit).collect()
    }
}
