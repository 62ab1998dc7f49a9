//! The recovery aggregate: the org's recovery key, the escrow copies
//! sealed to it, and the requests that administrators approve and
//! complete (cancelling one is [`super::RecoveryCancelStore`]).

use async_trait::async_trait;
use kluis_types::{
    Email, EncryptedEscrow, EscrowRecord, KsfParams, PublicKeyString, RecoveryState, RequestId,
    UserId,
};

use super::{AuditOf, StoreError, TokenHash};

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

/// The published recovery key and the escrow copies sealed to it.
#[async_trait]
pub trait RecoveryKeyStore: Send + Sync {
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
}

/// Recovery requests, their approvals, completion and the password reset
/// that closes them.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
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
