//! The session aggregate: login attempts between OPAQUE's two round
//! trips, and the sessions a login opens (only hashes of their tokens).

use async_trait::async_trait;
use kluis_types::{LoginId, SessionId, UserId};

use super::{LookupCache, StoreError, TokenHash};

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

/// Login attempts and sessions.
#[async_trait]
pub trait SessionStore: Send + Sync {
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

    /// [`SessionStore::session_by_token_hash`] in the database.
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

    /// Deletes expired sessions and login attempts.
    async fn purge_expired(&self, now: i64) -> Result<(), StoreError>;
}

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
