//! The row decoders and in-transaction helpers of the SQL backends,
//! written once in [`impl_sql_common!`] and expanded in `sqlite/common.rs`
//! and `postgres/common.rs` (issue 19).
//!
//! Both backends run the same statements: `$n` placeholders, which SQLite
//! reads as numbered parameters. What differs between the two databases
//! is the expanding backend's `DIALECT` (`store/dialect.rs`), and a few
//! functions of its own that the expansions call through `super::`:
//! `directory_query` and `migrated` (for
//! [`impl_store!`](super::sql_store::impl_store)), `lock_ceiling` and
//! `prune` (for the throttle).

/// Expands the shared helpers for a backend:
/// `impl_sql_common!(sqlx::Database)`.
macro_rules! impl_sql_common {
    ($db:ty) => {
        use kluis_audit::{AuditRow, Head};
        use kluis_types::{EncryptedEscrow, EscrowRecord, UserId};
        use sqlx::Row;

        use super::super::{
            AuditBuilder, AuditOf, RawAudit, RawDirectoryRow, RawRequest, RawUser, RecoveryRequestRow,
            SessionRow, StoreError, UserRow, decode_session,
        };

        /// A connection of the backend.
        pub(in super::super) type Conn = <$db as sqlx::Database>::Connection;
        /// A row of the backend.
        pub(in super::super) type DbRow = <$db as sqlx::Database>::Row;

        /// A statement of the backend, with its parameters bound.
        pub(in super::super) type DbQuery<'q> =
            sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>;

        /// Runs `query` on `pool` and decodes the row it finds, if any.
        pub(in super::super) async fn fetch_optional<T>(
            pool: &sqlx::Pool<$db>,
            query: DbQuery<'_>,
            decode: impl Fn(&DbRow) -> Result<T, StoreError>,
        ) -> Result<Option<T>, StoreError> {
            let row = query.fetch_optional(pool).await?;
            row.as_ref().map(decode).transpose()
        }

        /// Runs `query` on `pool` and decodes every row, in order.
        pub(in super::super) async fn fetch_all<T>(
            pool: &sqlx::Pool<$db>,
            query: DbQuery<'_>,
            decode: impl Fn(&DbRow) -> Result<T, StoreError>,
        ) -> Result<Vec<T>, StoreError> {
            let rows = query.fetch_all(pool).await?;
            rows.iter().map(decode).collect()
        }

        /// A write's result, with a unique-key violation reported as
        /// `taken` (the row already exists).
        pub(in super::super) fn or_duplicate<T>(
            result: Result<T, sqlx::Error>,
            taken: StoreError,
        ) -> Result<T, StoreError> {
            match result {
                Ok(done) => Ok(done),
                Err(e) if is_unique_violation(&e) => Err(taken),
                Err(e) => Err(e.into()),
            }
        }

        /// Appends `audit`'s rows for `outcome` in `tx` and commits: the
        /// write and its record commit together or not at all.
        pub(in super::super) async fn commit_audited<T>(
            mut tx: sqlx::Transaction<'static, $db>,
            audit: &AuditOf<'_, T>,
            outcome: T,
        ) -> Result<T, StoreError> {
            append_audit_rows(&mut tx, audit(&outcome)?).await?;
            tx.commit().await?;
            Ok(outcome)
        }

        /// Runs one write and `audit`'s rows in a transaction that takes the
        /// write lock ([`begin_write`]); a unique-key violation of the write
        /// is `taken`, when given.
        pub(in super::super) async fn write_audited(
            pool: &sqlx::Pool<$db>,
            write: DbQuery<'_>,
            taken: Option<StoreError>,
            audit: &AuditOf<'_, ()>,
        ) -> Result<(), StoreError> {
            let mut tx = begin_write(pool).await?;
            let done = write.execute(&mut *tx).await;
            match taken {
                Some(taken) => or_duplicate(done, taken)?,
                None => done?,
            };
            commit_audited(tx, audit, ()).await
        }

        /// Begins a transaction that writes, the dialect's way
        /// (`Dialect::begin_write`).
        pub(in super::super) async fn begin_write(
            pool: &sqlx::Pool<$db>,
        ) -> Result<sqlx::Transaction<'static, $db>, sqlx::Error> {
            match super::DIALECT.begin_write() {
                Some(begin) => pool.begin_with(begin).await,
                None => pool.begin().await,
            }
        }

        /// Appends one audit row built from the log's head, on `conn` (inside the
        /// caller's transaction), after the dialect's `lock_audit_log`: a
        /// concurrent writer, on this or another instance or process, waits
        /// instead of building on the same head.
        pub(in super::super) async fn append_audit_row(
            conn: &mut Conn,
            build: &AuditBuilder<'_>,
        ) -> Result<AuditRow, StoreError> {
            if let Some(lock) = super::DIALECT.lock_audit_log() {
                sqlx::query(lock).execute(&mut *conn).await?;
            }
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
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
        pub(in super::super) async fn append_audit_rows(
            conn: &mut Conn,
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

        pub(in super::super) fn raw_user(row: &DbRow) -> Result<UserRow, StoreError> {
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

        pub(in super::super) fn raw_request(row: &DbRow) -> Result<RecoveryRequestRow, StoreError> {
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

        pub(in super::super) fn raw_audit(row: &DbRow) -> Result<AuditRow, StoreError> {
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
        pub(in super::super) async fn insert_recovery_escrow(
            conn: &mut Conn,
            user_id: &UserId,
            escrow: &EncryptedEscrow,
            now: i64,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO recovery_escrow (user_id, version, blob, created_at) \
                 SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3 FROM recovery_escrow WHERE user_id = $4",
            )
            .bind(user_id.as_str())
            .bind(escrow.as_bytes())
            .bind(now)
            .bind(user_id.as_str())
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        pub(in super::super) fn directory_row(row: &DbRow) -> Result<RawDirectoryRow, StoreError> {
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

        pub(in super::super) fn session_row(row: &DbRow) -> Result<SessionRow, StoreError> {
            decode_session(
                row.try_get("session_id")?,
                row.try_get("user_id")?,
                row.try_get("created_at")?,
                row.try_get("expires_at")?,
            )
        }

        pub(in super::super) fn is_unique_violation(err: &sqlx::Error) -> bool {
            err.as_database_error()
                .is_some_and(|e| e.is_unique_violation())
        }

        /// Appends escrow version `expected + 1` in one statement; 0 rows means the
        /// caller's view was stale.
        pub(in super::super) async fn insert_next_escrow(
            conn: &mut Conn,
            user_id: &UserId,
            expected_version: i64,
            escrow: &EncryptedEscrow,
            now: i64,
        ) -> Result<i64, StoreError> {
            let result = sqlx::query(
                "INSERT INTO escrow (user_id, version, blob, created_at) \
                 SELECT $1, $2 + 1, $3, $4 \
                 WHERE (SELECT COALESCE(MAX(version), 0) FROM escrow WHERE user_id = $5) = $6",
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

        pub(in super::super) fn escrow_record(row: &DbRow) -> Result<EscrowRecord, StoreError> {
            Ok(EscrowRecord {
                version: row.try_get("version")?,
                created_at: row.try_get("created_at")?,
                escrow: EncryptedEscrow::new(row.try_get("blob")?),
            })
        }

    };
}
pub(crate) use impl_sql_common;
