//! Storage behind one trait, with one implementation (and one set of
//! migrations) per database: [`sqlite::SqliteStore`] and
//! [`postgres::PgStore`]. Both pass the same integration suite.
//!
//! The store only ever sees opaque data: OPAQUE records, sealed escrow
//! blobs ([`EncryptedEscrow`]), public-key text and hashes of bearer tokens.

use std::sync::Arc;

use async_trait::async_trait;
use kluis_types::{
    DisplayName, Email, EncryptedEscrow, EscrowRecord, EscrowVersionInfo, KsfParams, LoginId,
    OrgCertificate, PublicKeyString, SessionId, UserId,
};

pub mod postgres;
pub mod sqlite;

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
    /// A stored row could not be decoded into its wire type.
    #[error("corrupt row in {table}")]
    Corrupt {
        /// Table name.
        table: &'static str,
    },
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
    /// Unix seconds.
    pub now: i64,
}

/// Everything the broker persists.
#[async_trait]
pub trait Store: Send + Sync {
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
    async fn set_certificate(&self, cert: &OrgCertificate) -> Result<bool, StoreError>;
    /// Users whose e-mail or lower-cased display name starts with `prefix`
    /// (already lower-cased), ordered by e-mail.
    async fn search_directory(&self, prefix: &str, limit: i64) -> Result<Vec<UserRow>, StoreError>;

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
    /// Finds the unexpired session with this token hash.
    async fn session_by_token_hash(
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
    async fn change_password(&self, change: &PasswordChange<'_>) -> Result<(i64, u64), StoreError>;

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
        })
    }
}

pub(crate) const USER_COLUMNS: &str = "user_id, email, display_name, opaque_record, \
     ksf_m_cost_kib, ksf_t_cost, ksf_p_cost, public_key, cert_issued_at, cert_signature";

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
    use super::like_prefix;

    #[test]
    fn like_prefix_escapes_wildcards() {
        assert_eq!(like_prefix("a%b_c\\"), "a\\%b\\_c\\\\%");
        assert_eq!(like_prefix(""), "%");
    }
}
