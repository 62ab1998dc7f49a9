//! The one implementation over SQL of the aggregates' traits that make up
//! [`Store`](super::Store) (all but the ones with a module and macro of
//! their own: groups, admins, rollback, seed, throttle, recovery
//! cancellation), written once in [`impl_store!`] and expanded in `sqlite/store_impl.rs` and
//! `postgres/store_impl.rs` (issue 19). The dialect it calls through
//! `super::` is listed in [`super::sql_common`].

/// Expands the aggregates' traits for a backend:
/// `impl_store!(Store, sqlx::Database)`.
macro_rules! impl_store {
    ($store:ty, $db:ty) => {
        use async_trait::async_trait;
        use kluis_audit::AuditRow;
        use kluis_types::{
            Email, EncryptedEscrow, EscrowRecord, EscrowVersionInfo, LoginId, OrgCertificate,
            PublicKeyString, RecoveryState, RequestId, SessionId, UserId,
        };
        use sqlx::Row;

        use super::super::{
            ApprovalRow, AuditBuilder, AuditOf, AuditStore, DirectoryRow, DirectoryStore,
            EscrowStore, InviteStore, LookupCache, NewRecoveryRequest, NewSession, NewUser,
            PasswordChange, PolicyStore, REQUEST_COLUMNS, RecoveryKeyStore, RecoveryRequestRow,
            RecoveryReset, RecoveryStore, SchemaStore, SessionRow, SessionStore, StoreError,
            StoredPolicy, StoredRecoveryKey, TokenHash, USER_COLUMNS, UserRow, UserStore,
            decode_recovery_key,
        };
        use super::common::*;

        #[async_trait]
        impl SchemaStore for $store {
            async fn migrate(&self) -> Result<(), StoreError> {
                sqlx::query(super::DIALECT.schema_version_table())
                    .execute(&self.pool)
                    .await?;
                for m in super::super::migrations::MIGRATIONS {
                    let (version, sql) = (m.version, super::DIALECT.migration(m));
                    let mut tx = self.pool.begin().await?;
                    if let Some(lock) = super::DIALECT.lock_migrations() {
                        sqlx::query(lock).execute(&mut *tx).await?;
                    }
                    let done: Option<i64> =
                        sqlx::query_scalar("SELECT version FROM kluis_schema_version WHERE version = $1")
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
                    sqlx::query(&format!(
                        "INSERT INTO kluis_schema_version (version, applied_at) VALUES ($1, {})",
                        super::DIALECT.now_seconds()
                    ))
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                }
                self.migrated();
                Ok(())
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }
        }

        #[async_trait]
        impl UserStore for $store {
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
                        "UPDATE invites SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL \
                         AND expires_at > $3 AND (email IS NULL OR email = $4)",
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
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
                or_duplicate(inserted, StoreError::EmailTaken)?;
                insert_next_escrow(&mut tx, &user.user_id, 0, &user.escrow, user.created_at).await?;
                if let Some(r) = &user.recovery_escrow {
                    insert_recovery_escrow(&mut tx, &user.user_id, r, user.created_at).await?;
                }
                commit_audited(tx, audit, ()).await
            }

            async fn user_by_email(&self, email: &Email) -> Result<Option<UserRow>, StoreError> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
                let query = sqlx::query(&sql)
                    .bind(email.as_str());
                fetch_optional(&self.pool, query, raw_user).await
            }

            async fn user_by_id(&self, user_id: &UserId) -> Result<Option<UserRow>, StoreError> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE user_id = $1");
                let query = sqlx::query(&sql)
                    .bind(user_id.as_str());
                fetch_optional(&self.pool, query, raw_user).await
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
                    "UPDATE users SET public_key = $1, cert_issued_at = NULL, cert_signature = NULL \
                     WHERE user_id = $2",
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
                let mut tx = super::begin_write(&self.pool).await?;
                let done = sqlx::query(
                    "UPDATE users SET cert_issued_at = $1, cert_signature = $2 \
                     WHERE email = $3 AND public_key = $4",
                )
                .bind(cert.issued_at)
                .bind(cert.signature.as_bytes())
                .bind(cert.email.as_str())
                .bind(cert.public_key.as_str())
                .execute(&mut *tx)
                .await?;
                let stored = done.rows_affected() == 1;
                commit_audited(tx, audit, stored).await
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
                sqlx::query("UPDATE users SET disabled_at = $1 WHERE user_id = $2")
                    .bind(disabled_at)
                    .bind(user_id.as_str())
                    .execute(&mut *tx)
                    .await?;
                let ended = if disabled_at.is_some() {
                    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                        .bind(user_id.as_str())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                } else {
                    0
                };
                commit_audited(tx, audit, ended).await
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
                    "UPDATE users SET opaque_record = $1, ksf_m_cost_kib = $2, ksf_t_cost = $3, \
                     ksf_p_cost = $4 WHERE user_id = $5",
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
                let revoked = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND session_id <> $2")
                    .bind(change.user_id.as_str())
                    .bind(change.keep_session.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                commit_audited(tx, audit, (version, revoked)).await
            }
        }

        #[async_trait]
        impl DirectoryStore for $store {
            async fn db_search_directory(
                &self,
                token: &TokenHash,
                now: i64,
                prefix: &str,
                limit: i64,
            ) -> Result<Option<Vec<DirectoryRow>>, StoreError> {
                // One statement: the session test of `session_by_token_hash`, then
                // the hits (a LEFT JOIN, so a live session with no hits still gives
                // one row); the backend's `directory_query` says how it finds them.
                let rows = super::directory_query(prefix)
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
        }

        #[async_trait]
        impl SessionStore for $store {
            fn lookup_cache(&self) -> &LookupCache {
                &self.cache
            }

            async fn put_login_attempt(
                &self,
                login_id: &LoginId,
                user_id: Option<&UserId>,
                state: &[u8],
                expires_at: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO login_attempts (login_id, user_id, state, expires_at) VALUES ($1, $2, $3, $4)",
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
                    "DELETE FROM login_attempts WHERE login_id = $1 RETURNING user_id, state, expires_at",
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
                     VALUES ($1, $2, $3, $4, $5)",
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
                let query = sqlx::query(
                    "SELECT s.session_id, s.user_id, s.created_at, s.expires_at FROM sessions s \
                     JOIN users u ON u.user_id = s.user_id \
                     WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
                )
                .bind(&hash[..])
                .bind(now);
                fetch_optional(&self.pool, query, session_row).await
            }

            async fn list_sessions(
                &self,
                user_id: &UserId,
                now: i64,
            ) -> Result<Vec<SessionRow>, StoreError> {
                let query = sqlx::query(
                    "SELECT session_id, user_id, created_at, expires_at FROM sessions \
                     WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, session_id",
                )
                .bind(user_id.as_str())
                .bind(now);
                fetch_all(&self.pool, query, session_row).await
            }

            async fn revoke_session(
                &self,
                user_id: &UserId,
                session_id: &SessionId,
            ) -> Result<bool, StoreError> {
                // After it returns (committed, failed or cancelled) nothing cached
                // before may be served.
                let _fresh = self.cache.after_write();
                let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND session_id = $2")
                    .bind(user_id.as_str())
                    .bind(session_id.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn purge_expired(&self, now: i64) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                sqlx::query("DELETE FROM login_attempts WHERE expires_at <= $1")
                    .bind(now)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl EscrowStore for $store {
            async fn escrow_latest(&self, user_id: &UserId) -> Result<Option<EscrowRecord>, StoreError> {
                let query = sqlx::query(
                    "SELECT version, created_at, blob FROM escrow WHERE user_id = $1 \
                     ORDER BY version DESC LIMIT 1",
                )
                .bind(user_id.as_str());
                fetch_optional(&self.pool, query, escrow_record).await
            }

            async fn escrow_version(
                &self,
                user_id: &UserId,
                version: i64,
            ) -> Result<Option<EscrowRecord>, StoreError> {
                let query = sqlx::query(
                    "SELECT version, created_at, blob FROM escrow WHERE user_id = $1 AND version = $2",
                )
                .bind(user_id.as_str())
                .bind(version);
                fetch_optional(&self.pool, query, escrow_record).await
            }

            async fn escrow_versions(
                &self,
                user_id: &UserId,
            ) -> Result<Vec<EscrowVersionInfo>, StoreError> {
                let query = sqlx::query(
                    "SELECT version, created_at FROM escrow WHERE user_id = $1 ORDER BY version",
                )
                .bind(user_id.as_str());
                fetch_all(&self.pool, query, |r| {
                    Ok(EscrowVersionInfo {
                        version: r.try_get("version")?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .await
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
        }

        #[async_trait]
        impl InviteStore for $store {
            async fn create_invite(
                &self,
                hash: &TokenHash,
                email: Option<&Email>,
                created_at: i64,
                expires_at: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO invites (token_hash, email, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&hash[..])
                .bind(email.map(Email::as_str))
                .bind(created_at)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl PolicyStore for $store {
            async fn policy_latest(&self) -> Result<Option<StoredPolicy>, StoreError> {
                let query = sqlx::query(
                    "SELECT version, policy_json, issued_at, signature FROM policies \
                     ORDER BY version DESC LIMIT 1",
                );
                fetch_optional(&self.pool, query, |r| {
                    Ok(StoredPolicy {
                        version: r.try_get("version")?,
                        policy_json: r.try_get("policy_json")?,
                        issued_at: r.try_get("issued_at")?,
                        signature: r.try_get("signature")?,
                    })
                })
                .await
            }

            async fn insert_policy(
                &self,
                policy: &StoredPolicy,
                now: i64,
                audit: &AuditOf<'_, ()>,
            ) -> Result<(), StoreError> {
                let write = sqlx::query(
                    "INSERT INTO policies (version, policy_json, issued_at, signature, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(policy.version)
                .bind(&policy.policy_json)
                .bind(policy.issued_at)
                .bind(&policy.signature)
                .bind(now);
                let taken = StoreError::Duplicate("policy version");
                write_audited(&self.pool, write, Some(taken), audit).await
            }
        }

        #[async_trait]
        impl RecoveryKeyStore for $store {
            async fn recovery_escrow_latest(
                &self,
                user_id: &UserId,
            ) -> Result<Option<EscrowRecord>, StoreError> {
                let query = sqlx::query(
                    "SELECT version, created_at, blob FROM recovery_escrow WHERE user_id = $1 \
                     ORDER BY version DESC LIMIT 1",
                )
                .bind(user_id.as_str());
                fetch_optional(&self.pool, query, escrow_record).await
            }

            async fn recovery_key_latest(&self) -> Result<Option<StoredRecoveryKey>, StoreError> {
                let query = sqlx::query(
                    "SELECT public_key, threshold, shares, issued_at, signature FROM recovery_keys \
                     ORDER BY version DESC LIMIT 1",
                );
                fetch_optional(&self.pool, query, |r| {
                    decode_recovery_key(
                        r.try_get("public_key")?,
                        r.try_get("threshold")?,
                        r.try_get("shares")?,
                        r.try_get("issued_at")?,
                        r.try_get("signature")?,
                    )
                })
                .await
            }

            async fn insert_recovery_key(
                &self,
                key: &StoredRecoveryKey,
                now: i64,
                audit: &AuditOf<'_, ()>,
            ) -> Result<(), StoreError> {
                let write = sqlx::query(
                    "INSERT INTO recovery_keys (version, public_key, threshold, shares, issued_at, \
                     signature, created_at) \
                     SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3, $4, $5, $6 FROM recovery_keys",
                )
                .bind(key.public_key.as_str())
                .bind(i64::from(key.threshold))
                .bind(i64::from(key.shares))
                .bind(key.issued_at)
                .bind(&key.signature)
                .bind(now);
                write_audited(&self.pool, write, None, audit).await
            }
        }

        #[async_trait]
        impl RecoveryStore for $store {
            async fn create_recovery_request(
                &self,
                req: &NewRecoveryRequest<'_>,
                audit: &AuditOf<'_, ()>,
            ) -> Result<(), StoreError> {
                let write = sqlx::query(
                    "INSERT INTO recovery_requests (request_id, user_id, token_hash, request_key, \
                     request_key_fp, requested_at, status) VALUES ($1, $2, $3, $4, $5, $6, 'pending')",
                )
                .bind(req.request_id.as_str())
                .bind(req.user_id.as_str())
                .bind(&req.token_hash[..])
                .bind(req.request_key.as_str())
                .bind(req.request_key_fp)
                .bind(req.requested_at);
                write_audited(&self.pool, write, None, audit).await
            }

            async fn recovery_request(
                &self,
                request_id: &RequestId,
            ) -> Result<Option<RecoveryRequestRow>, StoreError> {
                let sql = format!(
                    "SELECT {REQUEST_COLUMNS} FROM recovery_requests r \
                     JOIN users u ON u.user_id = r.user_id WHERE r.request_id = $1"
                );
                let query = sqlx::query(&sql)
                    .bind(request_id.as_str());
                fetch_optional(&self.pool, query, raw_request).await
            }

            async fn recovery_request_by_token(
                &self,
                hash: &TokenHash,
            ) -> Result<Option<RecoveryRequestRow>, StoreError> {
                let sql = format!(
                    "SELECT {REQUEST_COLUMNS} FROM recovery_requests r \
                     JOIN users u ON u.user_id = r.user_id WHERE r.token_hash = $1"
                );
                let query = sqlx::query(&sql)
                    .bind(&hash[..]);
                fetch_optional(&self.pool, query, raw_request).await
            }

            async fn open_recovery_requests(&self) -> Result<Vec<RecoveryRequestRow>, StoreError> {
                let sql = format!(
                    "SELECT {REQUEST_COLUMNS} FROM recovery_requests r \
                     JOIN users u ON u.user_id = r.user_id WHERE r.status <> 'closed' \
                     ORDER BY r.requested_at, r.request_id"
                );
                fetch_all(&self.pool, sqlx::query(&sql), raw_request).await
            }

            async fn recoveries_of(
                &self,
                user_id: &UserId,
                limit: i64,
            ) -> Result<Vec<RecoveryRequestRow>, StoreError> {
                let sql = format!(
                    "SELECT {REQUEST_COLUMNS} FROM recovery_requests r \
                     JOIN users u ON u.user_id = r.user_id \
                     WHERE r.user_id = $1 AND r.status IN ('completed', 'closed') \
                     ORDER BY r.completed_at DESC, r.request_id LIMIT $2"
                );
                let query = sqlx::query(&sql)
                    .bind(user_id.as_str())
                    .bind(limit);
                fetch_all(&self.pool, query, raw_request).await
            }

            async fn add_approval(
                &self,
                request_id: &RequestId,
                row: &ApprovalRow,
                audit: &AuditOf<'_, ()>,
            ) -> Result<(), StoreError> {
                let write = sqlx::query(
                    "INSERT INTO recovery_approvals (request_id, admin_key, approval, approved_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(request_id.as_str())
                .bind(&row.admin_key)
                .bind(&row.approval_json)
                .bind(row.approved_at);
                let taken = StoreError::Duplicate("approval");
                write_audited(&self.pool, write, Some(taken), audit).await
            }

            async fn approvals(&self, request_id: &RequestId) -> Result<Vec<ApprovalRow>, StoreError> {
                let sql = format!(
                    "SELECT admin_key, approval, approved_at FROM recovery_approvals \
                     WHERE request_id = $1 ORDER BY {}",
                    super::DIALECT.approvals_order()
                );
                let query = sqlx::query(&sql).bind(request_id.as_str());
                fetch_all(&self.pool, query, |r| {
                    Ok(ApprovalRow {
                        admin_key: r.try_get("admin_key")?,
                        approval_json: r.try_get("approval")?,
                        approved_at: r.try_get("approved_at")?,
                    })
                })
                .await
            }

            async fn complete_recovery(
                &self,
                request_id: &RequestId,
                package: &[u8],
                admin_name: &str,
                now: i64,
                audit: &AuditOf<'_, bool>,
            ) -> Result<bool, StoreError> {
                let mut tx = super::begin_write(&self.pool).await?;
                let done = sqlx::query(
                    "UPDATE recovery_requests SET status = 'completed', package = $1, completed_by = $2, \
                     completed_at = $3 WHERE request_id = $4 AND status = 'pending'",
                )
                .bind(package)
                .bind(admin_name)
                .bind(now)
                .bind(request_id.as_str())
                .execute(&mut *tx)
                .await?;
                let stored = done.rows_affected() == 1;
                commit_audited(tx, audit, stored).await
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
                    "UPDATE recovery_requests SET status = $1, closed_at = $2 \
                     WHERE request_id = $3 AND user_id = $4 AND status = 'completed'",
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
                    "UPDATE users SET opaque_record = $1, ksf_m_cost_kib = $2, ksf_t_cost = $3, \
                     ksf_p_cost = $4 WHERE user_id = $5",
                )
                .bind(reset.opaque_record)
                .bind(i64::from(reset.ksf.m_cost_kib))
                .bind(i64::from(reset.ksf.t_cost))
                .bind(i64::from(reset.ksf.p_cost))
                .bind(reset.user_id.as_str())
                .execute(&mut *tx)
                .await?;
                let latest: i64 =
                    sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM escrow WHERE user_id = $1")
                        .bind(reset.user_id.as_str())
                        .fetch_one(&mut *tx)
                        .await?;
                let version =
                    insert_next_escrow(&mut tx, reset.user_id, latest, reset.escrow, reset.now).await?;
                if let Some(r) = reset.recovery_escrow {
                    insert_recovery_escrow(&mut tx, reset.user_id, r, reset.now).await?;
                }
                let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(reset.user_id.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                commit_audited(tx, audit, (version, ended)).await
            }
        }

        #[async_trait]
        impl AuditStore for $store {
            async fn append_audit_with(&self, build: &AuditBuilder<'_>) -> Result<AuditRow, StoreError> {
                // The dialect's write locks (`begin_write`, `lock_audit_log`) make
                // a concurrent writer wait instead of building on the same head.
                let mut tx = super::begin_write(&self.pool).await?;
                let row = append_audit_row(&mut tx, build).await?;
                tx.commit().await?;
                Ok(row)
            }

            async fn audit_rows(&self) -> Result<Vec<AuditRow>, StoreError> {
                let query = sqlx::query(
                    "SELECT seq, time, actor, action, target, details, prev_hash, hash \
                     FROM audit_log ORDER BY id",
                );
                fetch_all(&self.pool, query, raw_audit).await
            }
        }
    };
}
pub(crate) use impl_store;
