//! Storage behind one trait and two databases: [`sqlite::SqliteStore`]
//! and [`postgres::PgStore`]. Both pass the same integration suite.
//!
//! The SQL is written once (issue 19): the statements use `$n`
//! placeholders, which SQLite reads as numbered parameters, and each
//! implementation is a macro (`sql_store.rs`, `sql_common.rs`,
//! `groups.rs`, `admins.rs`, …) that each backend expands for its own
//! sqlx types. What differs — transactions that take the write lock,
//! table and row locks, the directory search's index use, the migrations
//! — is each backend's small dialect, called by name from the expansions
//! (listed in `sql_common.rs`).
//!
//! The store only ever sees opaque data: OPAQUE records, sealed escrow
//! blobs ([`EncryptedEscrow`]), public-key text and hashes of bearer tokens.

use std::sync::Arc;

use async_trait::async_trait;
pub use cache::LookupCache;
use kluis_audit::{AuditEntry, AuditError, AuditRecord, AuditRow, Head};
use kluis_types::{
    DisplayName, Email, EncryptedEscrow, EscrowRecord, EscrowVersionInfo, KsfParams, LoginId,
    OrgCertificate, PublicKeyString, RecoveryState, RequestId, SessionId, UserId,
};

pub mod admins;
pub mod cache;
mod dialect;
pub mod groups;
mod migrations;
pub mod postgres;
pub mod recovery_cancel;
pub mod rollback;
pub mod seed;
mod sql_common;
mod sql_store;
pub mod sqlite;
pub mod throttle;

pub use admins::AdminStore;
pub use groups::{
    GroupChange, GroupChangeKind, GroupOutcome, GroupRow, GroupSecretRow, GroupStore, NewGroup,
};
pub use recovery_cancel::{CancelRecovery, NewRecoveryDecoy, RecoveryCancelStore};
pub use rollback::{PasswordRollback, RollbackStore};
pub use seed::SeedStore;
pub use throttle::{ThrottleKey, ThrottleStore};

/// SHA-256 of a bearer token; the only form in which tokens are stored.
pub type TokenHash = [u8; 32];

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database driver failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// A schema migration failed.
    #[error("migration {version} failed")]
    Migration {
        /// Migration number.
        version: i64,
        /// Driver error.
        #[source]
        source: sqlx::Error,
    },
    /// The database URL names no supported backend.
    #[error("unsupported database URL scheme (use sqlite: or postgres:)")]
    UnsupportedUrl,
    /// An account with this e-mail already exists.
    #[error("e-mail already registered")]
    EmailTaken,
    /// The invite is unknown, used, expired or bound to another address.
    #[error("invite invalid")]
    InviteInvalid,
    /// The caller's expected version is not the latest.
    #[error("version conflict")]
    VersionConflict,
    /// A group with this name already exists.
    #[error("group name taken")]
    GroupTaken,
    /// The caller (or the person to remove) is not a member of the group.
    #[error("not a member of the group")]
    NotGroupMember,
    /// The person is already a member.
    #[error("already a member of the group")]
    AlreadyGroupMember,
    /// A group keeps at least one member.
    #[error("the last member cannot leave the group")]
    LastGroupMember,
    /// The caller is a member but not an administrator of the group.
    #[error("not an administrator of the group")]
    NotGroupAdmin,
    /// A group keeps at least one administrator.
    #[error("the last administrator cannot leave or lose the role")]
    LastGroupAdmin,
    /// The person a change names is not a member of the group.
    #[error("no such member of the group")]
    NoSuchGroupMember,
    /// A stored row could not be decoded into its wire type.
    #[error("corrupt row in {table}")]
    Corrupt {
        /// Table name.
        table: &'static str,
    },
    /// A row with this key already exists (admin name or key, approval by
    /// the same administrator, policy version).
    #[error("already exists: {0}")]
    Duplicate(&'static str),
    /// An audit row could not be built (the entry broke a rule of the log).
    #[error("audit entry refused")]
    Audit(#[from] AuditError),
}

/// A user to insert at registration.
pub struct NewUser {
    /// New ID.
    pub user_id: UserId,
    /// Address (unique).
    pub email: Email,
    /// Directory name.
    pub display_name: DisplayName,
    /// Serialized OPAQUE `ServerRegistration`.
    pub opaque_record: Vec<u8>,
    /// KSF parameters the client used.
    pub ksf: KsfParams,
    /// Public key text.
    pub public_key: PublicKeyString,
    /// Escrow version 1.
    pub escrow: EncryptedEscrow,
    /// Recovery escrow version 1 (sealed to the recovery key), if any.
    pub recovery_escrow: Option<EncryptedEscrow>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A stored user.
#[derive(Clone)]
pub struct UserRow {
    /// ID.
    pub user_id: UserId,
    /// Address.
    pub email: Email,
    /// Directory name.
    pub display_name: DisplayName,
    /// Serialized OPAQUE `ServerRegistration`.
    pub opaque_record: Vec<u8>,
    /// KSF parameters.
    pub ksf: KsfParams,
    /// Public key text.
    pub public_key: PublicKeyString,
    /// Org certificate of the current key, if any.
    pub certificate: Option<OrgCertificate>,
    /// When an administrator disabled the account, if it is disabled.
    pub disabled_at: Option<i64>,
}

/// A user as the directory shows them: no login secrets.
#[derive(Clone, Debug)]
pub struct DirectoryRow {
    /// ID.
    pub user_id: UserId,
    /// Address.
    pub email: Email,
    /// Directory name.
    pub display_name: DisplayName,
    /// Public key text.
    pub public_key: PublicKeyString,
    /// Org certificate of the current key, if any.
    pub certificate: Option<OrgCertificate>,
    /// When an administrator disabled the account, if it is disabled.
    pub disabled_at: Option<i64>,
}

/// A session to insert after login.
pub struct NewSession {
    /// Public ID.
    pub session_id: SessionId,
    /// Owner.
    pub user_id: UserId,
    /// SHA-256 of the bearer token.
    pub token_hash: TokenHash,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A stored, unexpired session.
#[derive(Clone, Debug)]
pub struct SessionRow {
    /// Public ID.
    pub session_id: SessionId,
    /// Owner.
    pub user_id: UserId,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A password change, applied atomically.
pub struct PasswordChange<'a> {
    /// Whose password.
    pub user_id: &'a UserId,
    /// The session doing the change survives; every other one ends.
    pub keep_session: &'a SessionId,
    /// New serialized OPAQUE record.
    pub opaque_record: &'a [u8],
    /// New KSF parameters.
    pub ksf: KsfParams,
    /// The identity re-sealed under the new export key.
    pub escrow: &'a EncryptedEscrow,
    /// Latest escrow version the client saw.
    pub expected_escrow_version: i64,
    /// A fresh escrow copy sealed to the recovery key, if any.
    pub recovery_escrow: Option<&'a EncryptedEscrow>,
    /// Unix seconds.
    pub now: i64,
}

/// One stored, org-signed policy version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPolicy {
    /// 1, 2, 3 …
    pub version: i64,
    /// The exact signed JSON text.
    pub policy_json: String,
    /// When the org key signed it.
    pub issued_at: i64,
    /// Ed25519 signature (64 bytes).
    pub signature: Vec<u8>,
}

/// The published recovery key, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecoveryKey {
    /// The recovery public key.
    pub public_key: PublicKeyString,
    /// K.
    pub threshold: u8,
    /// N.
    pub shares: u8,
    /// When the org key signed it.
    pub issued_at: i64,
    /// Org signature (64 bytes).
    pub signature: Vec<u8>,
}

/// A recovery administrator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRow {
    /// Unique name.
    pub name: String,
    /// `kluis-admin-ed25519:…`.
    pub admin_key: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When the API token stops working (Unix seconds).
    pub token_expires_at: i64,
}

/// A new recovery request.
pub struct NewRecoveryRequest<'a> {
    /// ID.
    pub request_id: &'a RequestId,
    /// Whose key.
    pub user_id: &'a UserId,
    /// SHA-256 of the user's request token.
    pub token_hash: TokenHash,
    /// The request key text.
    pub request_key: &'a PublicKeyString,
    /// Its fingerprint as the client claims it (64 hex).
    pub request_key_fp: &'a str,
    /// Unix seconds.
    pub requested_at: i64,
}

/// A stored recovery request, with the user's address.
#[derive(Clone, Debug)]
pub struct RecoveryRequestRow {
    /// ID.
    pub request_id: RequestId,
    /// Whose key.
    pub user_id: UserId,
    /// Their address.
    pub email: Email,
    /// The request key text.
    pub request_key: PublicKeyString,
    /// Claimed fingerprint (64 hex).
    pub request_key_fp: String,
    /// Unix seconds.
    pub requested_at: i64,
    /// State.
    pub state: RecoveryState,
    /// The re-sealed identity, once completed.
    pub package: Option<Vec<u8>>,
    /// Admin name who uploaded it.
    pub completed_by: Option<String>,
    /// When.
    pub completed_at: Option<i64>,
}

/// One stored approval.
#[derive(Clone, Debug)]
pub struct ApprovalRow {
    /// The approving admin's key text.
    pub admin_key: String,
    /// The approval's JSON (an `ApprovalWire`).
    pub approval_json: String,
    /// Unix seconds (as signed).
    pub approved_at: i64,
}

/// A new password set after a completed recovery.
pub struct RecoveryReset<'a> {
    /// The request being closed (must be `completed`).
    pub request_id: &'a RequestId,
    /// Whose password.
    pub user_id: &'a UserId,
    /// New serialized OPAQUE record.
    pub opaque_record: &'a [u8],
    /// New KSF parameters.
    pub ksf: KsfParams,
    /// The identity sealed under the new export key.
    pub escrow: &'a EncryptedEscrow,
    /// A fresh escrow copy sealed to the recovery key, if any.
    pub recovery_escrow: Option<&'a EncryptedEscrow>,
    /// Unix seconds.
    pub now: i64,
}

/// The audit entries that record a write, built from its outcome and
/// appended in the write's own transaction: the action and its record
/// commit together or not at all (a crash cannot leave one without the
/// other).
pub type AuditOf<'a, T> = dyn Fn(&T) -> Result<Vec<AuditEntry>, AuditError> + Send + Sync + 'a;

/// Builds the next audit row from the current head (see
/// [`Store::append_audit_with`]).
pub type AuditBuilder<'a> = dyn Fn(&Head) -> Result<AuditRow, AuditError> + Send + Sync + 'a;

/// Everything the broker persists.
#[async_trait]
pub trait Store:
    GroupStore
    + RollbackStore
    + AdminStore
    + SeedStore
    + ThrottleStore
    + RecoveryCancelStore
    + Send
    + Sync
{
    /// Applies pending migrations of this backend.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// Cheap liveness check.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Inserts a user and escrow version 1; when `invite` is given it is
    /// consumed in the same transaction (single use).
    async fn create_user(
        &self,
        user: &NewUser,
        invite: Option<&TokenHash>,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError>;
    /// Looks a user up by address.
    async fn user_by_email(&self, email: &Email) -> Result<Option<UserRow>, StoreError>;
    /// Looks a user up by ID.
    async fn user_by_id(&self, user_id: &UserId) -> Result<Option<UserRow>, StoreError>;
    /// Replaces a user's key and drops the certificate of the old one.
    async fn set_public_key(
        &self,
        user_id: &UserId,
        key: &PublicKeyString,
    ) -> Result<(), StoreError>;
    /// Stores a certificate if it matches the user's current key; returns
    /// whether it was stored.
    async fn set_certificate(
        &self,
        cert: &OrgCertificate,
        audit: &AuditOf<'_, bool>,
    ) -> Result<bool, StoreError>;
    /// A directory search made with a bearer token: users whose e-mail or
    /// lower-cased display name starts with `prefix` (already lower-cased),
    /// ordered by e-mail — or `None` when `token` names no live session
    /// (the test of [`Store::session_by_token_hash`]). Served from the
    /// [`LookupCache`] while it is valid, else from the database.
    async fn search_directory(
        &self,
        token: &TokenHash,
        now: i64,
        prefix: &str,
        limit: i64,
    ) -> Result<Option<Vec<DirectoryRow>>, StoreError> {
        let cache = self.lookup_cache();
        match cache.session(token, now) {
            Some(None) => return Ok(None),
            Some(Some(_)) => {
                if let Some(hits) = cache.search(prefix, limit) {
                    return Ok(Some(hits));
                }
            }
            // Remember the session for the next lookups (and every other
            // authenticated request).
            None => {
                if self.session_by_token_hash(token, now).await?.is_none() {
                    return Ok(None);
                }
            }
        }
        let ticket = cache.ticket();
        let hits = self.db_search_directory(token, now, prefix, limit).await?;
        if let Some(h) = &hits {
            cache.put_search(ticket, prefix, limit, h.clone());
        }
        Ok(hits)
    }

    /// [`Store::search_directory`] in the database: the session test and
    /// the search in one statement (LEFT JOIN, so a live session with no
    /// hits still answers).
    async fn db_search_directory(
        &self,
        token: &TokenHash,
        now: i64,
        prefix: &str,
        limit: i64,
    ) -> Result<Option<Vec<DirectoryRow>>, StoreError>;

    /// The read cache of this store (see [`LookupCache`]).
    fn lookup_cache(&self) -> &LookupCache;

    /// Remembers the server half of a login between its two round trips.
    async fn put_login_attempt(
        &self,
        login_id: &LoginId,
        user_id: Option<&UserId>,
        state: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Removes and returns an unexpired login attempt (single use).
    async fn take_login_attempt(
        &self,
        login_id: &LoginId,
        now: i64,
    ) -> Result<Option<(Option<UserId>, Vec<u8>)>, StoreError>;

    /// Inserts a session.
    async fn create_session(&self, session: &NewSession) -> Result<(), StoreError>;
    /// Finds the unexpired session with this token hash, of an account
    /// that is not disabled: from the [`LookupCache`] while it is valid,
    /// else from the database.
    async fn session_by_token_hash(
        &self,
        hash: &TokenHash,
        now: i64,
    ) -> Result<Option<SessionRow>, StoreError> {
        let cache = self.lookup_cache();
        if let Some(hit) = cache.session(hash, now) {
            return Ok(hit);
        }
        let ticket = cache.ticket();
        let row = self.db_session_by_token_hash(hash, now).await?;
        // Only live sessions are kept: a flood of made-up tokens must not
        // be able to fill the cache.
        if let Some(r) = &row {
            cache.put_session(ticket, *hash, r.clone());
        }
        Ok(row)
    }
    /// [`Store::session_by_token_hash`] in the database.
    async fn db_session_by_token_hash(
        &self,
        hash: &TokenHash,
        now: i64,
    ) -> Result<Option<SessionRow>, StoreError>;
    /// A user's unexpired sessions, oldest first.
    async fn list_sessions(
        &self,
        user_id: &UserId,
        now: i64,
    ) -> Result<Vec<SessionRow>, StoreError>;
    /// Ends one of a user's sessions; returns whether it existed.
    async fn revoke_session(
        &self,
        user_id: &UserId,
        session_id: &SessionId,
    ) -> Result<bool, StoreError>;

    /// The newest escrow version of a user.
    async fn escrow_latest(&self, user_id: &UserId) -> Result<Option<EscrowRecord>, StoreError>;
    /// One escrow version.
    async fn escrow_version(
        &self,
        user_id: &UserId,
        version: i64,
    ) -> Result<Option<EscrowRecord>, StoreError>;
    /// All versions, oldest first.
    async fn escrow_versions(&self, user_id: &UserId)
    -> Result<Vec<EscrowVersionInfo>, StoreError>;
    /// Appends a version if `expected_version` is the latest; returns the new number.
    async fn append_escrow(
        &self,
        user_id: &UserId,
        expected_version: i64,
        escrow: &EncryptedEscrow,
        now: i64,
    ) -> Result<i64, StoreError>;
    /// Rotates the OPAQUE record, appends the re-sealed escrow and ends every
    /// other session, in one transaction. Returns (new version, sessions ended).
    async fn change_password(
        &self,
        change: &PasswordChange<'_>,
        audit: &AuditOf<'_, (i64, u64)>,
    ) -> Result<(i64, u64), StoreError>;

    /// Records a new invite.
    async fn create_invite(
        &self,
        hash: &TokenHash,
        email: Option<&Email>,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Deletes expired sessions and login attempts.
    async fn purge_expired(&self, now: i64) -> Result<(), StoreError>;

    /// Disables (`Some(time)`) or re-enables (`None`) a user. Disabling
    /// deletes every session of the user in the same transaction; returns
    /// how many were deleted.
    async fn set_disabled(
        &self,
        user_id: &UserId,
        disabled_at: Option<i64>,
        audit: &AuditOf<'_, u64>,
    ) -> Result<u64, StoreError>;

    /// The newest policy version, if an administrator set one.
    async fn policy_latest(&self) -> Result<Option<StoredPolicy>, StoreError>;
    /// Inserts a policy version; [`StoreError::Duplicate`] if it exists.
    async fn insert_policy(
        &self,
        policy: &StoredPolicy,
        now: i64,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError>;

    /// The newest escrow copy sealed to the recovery key.
    async fn recovery_escrow_latest(
        &self,
        user_id: &UserId,
    ) -> Result<Option<EscrowRecord>, StoreError>;

    /// The published recovery key, if any.
    async fn recovery_key_latest(&self) -> Result<Option<StoredRecoveryKey>, StoreError>;
    /// Publishes a recovery key (a new version; old ones stay).
    async fn insert_recovery_key(
        &self,
        key: &StoredRecoveryKey,
        now: i64,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError>;

    /// Adds a recovery administrator ([`StoreError::Duplicate`] if the name,
    /// key or token is taken).
    async fn add_admin(
        &self,
        admin: &AdminRow,
        token_hash: &TokenHash,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError>;
    /// The administrator an API token belongs to.
    async fn admin_by_token_hash(&self, hash: &TokenHash) -> Result<Option<AdminRow>, StoreError>;
    /// Every administrator, by name.
    async fn list_admins(&self) -> Result<Vec<AdminRow>, StoreError>;

    /// Records a recovery request.
    async fn create_recovery_request(
        &self,
        req: &NewRecoveryRequest<'_>,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError>;
    /// One request by ID.
    async fn recovery_request(
        &self,
        request_id: &RequestId,
    ) -> Result<Option<RecoveryRequestRow>, StoreError>;
    /// The request a user token belongs to.
    async fn recovery_request_by_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<RecoveryRequestRow>, StoreError>;
    /// Requests not yet closed, oldest first.
    async fn open_recovery_requests(&self) -> Result<Vec<RecoveryRequestRow>, StoreError>;

    /// The recoveries of `user_id`'s key that IT completed (completed or
    /// closed), newest first, at most `limit`.
    async fn recoveries_of(
        &self,
        user_id: &UserId,
        limit: i64,
    ) -> Result<Vec<RecoveryRequestRow>, StoreError>;
    /// Stores an approval ([`StoreError::Duplicate`] if this admin already
    /// approved this request).
    async fn add_approval(
        &self,
        request_id: &RequestId,
        row: &ApprovalRow,
        audit: &AuditOf<'_, ()>,
    ) -> Result<(), StoreError>;
    /// A request's approvals, in the order given.
    async fn approvals(&self, request_id: &RequestId) -> Result<Vec<ApprovalRow>, StoreError>;
    /// Stores the package and marks a pending request completed; false if it
    /// was not pending.
    async fn complete_recovery(
        &self,
        request_id: &RequestId,
        package: &[u8],
        admin_name: &str,
        now: i64,
        audit: &AuditOf<'_, bool>,
    ) -> Result<bool, StoreError>;
    /// Closes a completed request and sets the new password, in one
    /// transaction: OPAQUE record, new escrow version, new recovery escrow
    /// version, every session ended. Returns (escrow version, sessions
    /// ended); [`StoreError::VersionConflict`] if the request is not
    /// completed.
    async fn reset_after_recovery(
        &self,
        reset: &RecoveryReset<'_>,
        audit: &AuditOf<'_, (i64, u64)>,
    ) -> Result<(i64, u64), StoreError>;

    /// Appends one audit row built by `build` from the current head, in a
    /// transaction that holds the log's write lock, so two writers can never
    /// build on the same head.
    async fn append_audit_with(&self, build: &AuditBuilder<'_>) -> Result<AuditRow, StoreError>;
    /// Every audit row in insertion order (not re-sorted: verification must
    /// see reordering).
    async fn audit_rows(&self) -> Result<Vec<AuditRow>, StoreError>;
}

/// Appends `entry` as the next audit row.
pub async fn append_audit(store: &dyn Store, entry: AuditEntry) -> Result<AuditRow, StoreError> {
    store
        .append_audit_with(&move |head: &Head| kluis_audit::next_row(head, entry.clone()))
        .await
}

/// Raw columns of an `audit_log` row.
pub(crate) struct RawAudit {
    pub seq: i64,
    pub time: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl RawAudit {
    /// Decodes a stored row. Field syntax is checked, the hash is not: that
    /// is `kluis_audit::verify`'s job, so tampering is named there.
    pub(crate) fn decode(self) -> Result<AuditRow, StoreError> {
        let corrupt = || StoreError::Corrupt { table: "audit_log" };
        let details = serde_json::from_str(&self.details).map_err(|_| corrupt())?;
        let record = AuditRecord {
            seq: u64::try_from(self.seq).map_err(|_| corrupt())?,
            time: self.time,
            time_utc: String::new(),
            actor: self.actor,
            action: self.action,
            target: self.target,
            details,
            prev_hash: self.prev_hash,
            hash: self.hash,
        };
        AuditRow::try_from(record).map_err(|_| corrupt())
    }

    /// The columns of a row to insert.
    pub(crate) fn encode(row: &AuditRow) -> Result<Self, StoreError> {
        let record = AuditRecord::from(row);
        Ok(Self {
            seq: i64::try_from(record.seq)
                .map_err(|_| StoreError::Corrupt { table: "audit_log" })?,
            time: record.time,
            actor: record.actor,
            action: record.action,
            target: record.target,
            details: serde_json::Value::Object(record.details).to_string(),
            prev_hash: record.prev_hash,
            hash: record.hash,
        })
    }
}

/// Raw columns of a `recovery_requests` row joined with the user's e-mail.
pub(crate) struct RawRequest {
    pub request_id: String,
    pub user_id: String,
    pub email: String,
    pub request_key: String,
    pub request_key_fp: String,
    pub requested_at: i64,
    pub status: String,
    pub package: Option<Vec<u8>>,
    pub completed_by: Option<String>,
    pub completed_at: Option<i64>,
}

pub(crate) const REQUEST_COLUMNS: &str = "r.request_id, r.user_id, u.email, r.request_key, \
     r.request_key_fp, r.requested_at, r.status, r.package, r.completed_by, r.completed_at";

impl RawRequest {
    pub(crate) fn decode(self) -> Result<RecoveryRequestRow, StoreError> {
        let corrupt = |_| StoreError::Corrupt {
            table: "recovery_requests",
        };
        Ok(RecoveryRequestRow {
            request_id: RequestId::parse(&self.request_id).map_err(corrupt)?,
            user_id: UserId::parse(&self.user_id).map_err(corrupt)?,
            email: Email::parse(&self.email).map_err(corrupt)?,
            request_key: PublicKeyString::parse(&self.request_key).map_err(corrupt)?,
            request_key_fp: self.request_key_fp,
            requested_at: self.requested_at,
            state: RecoveryState::parse(&self.status).map_err(corrupt)?,
            package: self.package,
            completed_by: self.completed_by,
            completed_at: self.completed_at,
        })
    }
}

pub(crate) fn decode_recovery_key(
    public_key: String,
    threshold: i64,
    shares: i64,
    issued_at: i64,
    signature: Vec<u8>,
) -> Result<StoredRecoveryKey, StoreError> {
    let corrupt = || StoreError::Corrupt {
        table: "recovery_keys",
    };
    Ok(StoredRecoveryKey {
        public_key: PublicKeyString::parse(&public_key).map_err(|_| corrupt())?,
        threshold: u8::try_from(threshold).map_err(|_| corrupt())?,
        shares: u8::try_from(shares).map_err(|_| corrupt())?,
        issued_at,
        signature,
    })
}

/// A background task that ends with its owner.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens the store a database URL names (`sqlite:PATH` or `postgres://…`),
/// creating a SQLite file if needed, and migrates it.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = if url.starts_with("sqlite:") {
        Arc::new(sqlite::SqliteStore::connect(url).await?)
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Arc::new(postgres::PgStore::connect(url).await?)
    } else {
        return Err(StoreError::UnsupportedUrl);
    };
    store.migrate().await?;
    Ok(store)
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` prefix pattern.
pub(crate) fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Raw columns of a `users` row, shared by both backends' decoders.
pub(crate) struct RawUser {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub opaque_record: Vec<u8>,
    pub ksf_m_cost_kib: i64,
    pub ksf_t_cost: i64,
    pub ksf_p_cost: i64,
    pub public_key: String,
    pub cert_issued_at: Option<i64>,
    pub cert_signature: Option<Vec<u8>>,
    pub disabled_at: Option<i64>,
}

impl RawUser {
    pub(crate) fn decode(self) -> Result<UserRow, StoreError> {
        let corrupt = |_| StoreError::Corrupt { table: "users" };
        let email = Email::parse(&self.email).map_err(corrupt)?;
        let public_key = PublicKeyString::parse(&self.public_key).map_err(corrupt)?;
        let ksf_part =
            |v: i64| u32::try_from(v).map_err(|_| StoreError::Corrupt { table: "users" });
        let certificate = match (self.cert_issued_at, self.cert_signature) {
            (Some(issued_at), Some(sig)) => Some(OrgCertificate {
                email: email.clone(),
                public_key: public_key.clone(),
                issued_at,
                signature: kluis_types::SignatureBytes::new(sig),
            }),
            _ => None,
        };
        Ok(UserRow {
            user_id: UserId::parse(&self.user_id).map_err(corrupt)?,
            display_name: DisplayName::parse(&self.display_name).map_err(corrupt)?,
            email,
            opaque_record: self.opaque_record,
            ksf: KsfParams {
                m_cost_kib: ksf_part(self.ksf_m_cost_kib)?,
                t_cost: ksf_part(self.ksf_t_cost)?,
                p_cost: ksf_part(self.ksf_p_cost)?,
            },
            public_key,
            certificate,
            disabled_at: self.disabled_at,
        })
    }
}

/// Raw columns of a directory hit; `None` throughout for the one row a
/// live session with no hits yields (the search is a LEFT JOIN).
pub(crate) struct RawDirectoryRow {
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub public_key: Option<String>,
    pub cert_issued_at: Option<i64>,
    pub cert_signature: Option<Vec<u8>>,
    pub disabled_at: Option<i64>,
}

impl RawDirectoryRow {
    /// `Ok(None)` for the no-hit row.
    pub(crate) fn decode(self) -> Result<Option<DirectoryRow>, StoreError> {
        let corrupt = |_| StoreError::Corrupt { table: "users" };
        let (Some(user_id), Some(email), Some(display_name), Some(public_key)) =
            (self.user_id, self.email, self.display_name, self.public_key)
        else {
            return Ok(None);
        };
        let email = Email::parse(&email).map_err(corrupt)?;
        let public_key = PublicKeyString::parse(&public_key).map_err(corrupt)?;
        let certificate = match (self.cert_issued_at, self.cert_signature) {
            (Some(issued_at), Some(sig)) => Some(OrgCertificate {
                email: email.clone(),
                public_key: public_key.clone(),
                issued_at,
                signature: kluis_types::SignatureBytes::new(sig),
            }),
            _ => None,
        };
        Ok(Some(DirectoryRow {
            user_id: UserId::parse(&user_id).map_err(corrupt)?,
            display_name: DisplayName::parse(&display_name).map_err(corrupt)?,
            email,
            public_key,
            certificate,
            disabled_at: self.disabled_at,
        }))
    }
}

/// The smallest string greater than every string that starts with
/// `prefix` (code-point order, which is UTF-8 byte order): an upper bound
/// that lets a prefix search walk an index as a range. `None` when there
/// is none (an empty prefix, or one of only U+10FFFF).
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) {
            0xD7FF => Some('\u{E000}'),
            c => char::from_u32(c + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

pub(crate) const USER_COLUMNS: &str = "user_id, email, display_name, opaque_record, \
     ksf_m_cost_kib, ksf_t_cost, ksf_p_cost, public_key, cert_issued_at, cert_signature, \
     disabled_at";

pub(crate) fn decode_session(
    session_id: String,
    user_id: String,
    created_at: i64,
    expires_at: i64,
) -> Result<SessionRow, StoreError> {
    let corrupt = |_| StoreError::Corrupt { table: "sessions" };
    Ok(SessionRow {
        session_id: SessionId::parse(&session_id).map_err(corrupt)?,
        user_id: UserId::parse(&user_id).map_err(corrupt)?,
        created_at,
        expires_at,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::{like_prefix, prefix_upper_bound};

    #[test]
    fn like_prefix_escapes_wildcards() {
        assert_eq!(like_prefix("a%b_c\\"), "a\\%b\\_c\\\\%");
        assert_eq!(like_prefix(""), "%");
    }

    #[test]
    fn prefix_upper_bound_is_the_next_string_after_the_prefix_range() {
        assert_eq!(prefix_upper_bound("abc").as_deref(), Some("abd"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
        // Everything that starts with the prefix sorts below the bound.
        let hi = prefix_upper_bound("al").unwrap();
        for s in ["al", "alice@example.org", "al\u{10FFFF}\u{10FFFF}"] {
            assert!(s < hi.as_str(), "{s}");
        }
        assert!("am" >= hi.as_str());
    }
}
