//! Request and response bodies of the broker's HTTP API (`/v1/...`).

use serde::{Deserialize, Serialize};

use crate::{
    DisplayName, Email, EncryptedEscrow, Fingerprint, InviteToken, LoginId, OpaqueMessage,
    OrgCertificate, PublicKeyString, RecoveryKeyInfo, SessionId, SessionToken, SignedPolicy,
    UserId, UserStatus,
};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Argon2id parameters of the OPAQUE key-stretching function. The client
/// chooses them at registration and enforces its own minimum at login; the
/// broker only stores and returns them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct KsfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

/// `POST /v1/register/start`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterStartRequest {
    /// Account address.
    pub email: Email,
    /// OPAQUE `RegistrationRequest`.
    pub registration_request: OpaqueMessage,
}

/// Answer to a registration or password-change start.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RegisterStartResponse {
    /// OPAQUE `RegistrationResponse`.
    pub registration_response: OpaqueMessage,
    /// The organisation policy the client must apply before finishing
    /// (password strength, KSF minimum, mandatory recovery). It is signed:
    /// verify it with the pinned org key.
    #[serde(default)]
    pub policy: Option<SignedPolicy>,
    /// The organisation recovery key, certified by the org key, if one is
    /// published.
    #[serde(default)]
    pub recovery_key: Option<RecoveryKeyInfo>,
}

/// `POST /v1/register/finish`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterFinishRequest {
    /// Account address (same as in the start request).
    pub email: Email,
    /// Name shown in the directory.
    pub display_name: DisplayName,
    /// Required when the broker is invite-only.
    #[serde(default)]
    pub invite: Option<InviteToken>,
    /// OPAQUE `RegistrationUpload`.
    pub registration_upload: OpaqueMessage,
    /// Argon2id parameters the client used.
    pub ksf: KsfParams,
    /// The user's public key text.
    pub public_key: PublicKeyString,
    /// The sealed secret identity (escrow version 1).
    pub escrow: EncryptedEscrow,
    /// The identity sealed to the organisation recovery key (required when
    /// the policy makes recovery mandatory).
    #[serde(default)]
    pub recovery_escrow: Option<EncryptedEscrow>,
}

/// Answer to a successful registration.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RegisterFinishResponse {
    /// The new user's ID.
    pub user_id: UserId,
}

/// `POST /v1/login/start`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginStartRequest {
    /// Account address.
    pub email: Email,
    /// OPAQUE `CredentialRequest`.
    pub credential_request: OpaqueMessage,
}

/// Answer to a login start. It has the same shape whether or not the account
/// exists.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LoginStartResponse {
    /// Pass back in the finish request.
    pub login_id: LoginId,
    /// OPAQUE `CredentialResponse`.
    pub credential_response: OpaqueMessage,
    /// Argon2id parameters registered for this account.
    pub ksf: KsfParams,
}

/// `POST /v1/login/finish`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginFinishRequest {
    /// From the start response.
    pub login_id: LoginId,
    /// OPAQUE `CredentialFinalization`.
    pub credential_finalization: OpaqueMessage,
}

/// A new session.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct LoginFinishResponse {
    /// Bearer token for `Authorization: Bearer …`.
    pub session_token: SessionToken,
    /// Public ID of the session.
    pub session_id: SessionId,
    /// The logged-in user.
    pub user_id: UserId,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

/// `GET /v1/session`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct WhoAmI {
    /// The user.
    pub user_id: UserId,
    /// Account address.
    pub email: Email,
    /// Directory name.
    pub display_name: DisplayName,
    /// Current public key.
    pub public_key: PublicKeyString,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// Org certificate for the key, once an administrator has signed it.
    pub certificate: Option<OrgCertificate>,
    /// This session.
    pub session_id: SessionId,
    /// This session's expiry (Unix seconds).
    pub session_expires_at: i64,
    /// Whether an escrow copy sealed to the organisation recovery key is
    /// on file: if so, the organisation can recover this user's key.
    #[serde(default)]
    pub recovery_enrolled: bool,
    /// The last recoveries of this key by IT (newest first, at most ten).
    #[serde(default)]
    pub key_recoveries: Vec<crate::KeyRecovery>,
}

/// One of a user's sessions.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionInfo {
    /// Public ID.
    pub session_id: SessionId,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
    /// Whether this is the session making the request.
    pub current: bool,
}

/// `GET /v1/users/{user_id}/sessions`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SessionList {
    /// Live sessions, oldest first.
    pub sessions: Vec<SessionInfo>,
}

/// Metadata of one escrow version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EscrowVersionInfo {
    /// 1 for the registration upload, then +1 per change.
    pub version: i64,
    /// Upload time (Unix seconds).
    pub created_at: i64,
}

/// One escrow version with its blob.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EscrowRecord {
    /// Version number.
    pub version: i64,
    /// Upload time (Unix seconds).
    pub created_at: i64,
    /// The sealed identity.
    pub escrow: EncryptedEscrow,
}

/// `GET /v1/users/{user_id}/escrow/versions`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EscrowVersionList {
    /// All versions, oldest first.
    pub versions: Vec<EscrowVersionInfo>,
}

/// `POST /v1/users/{user_id}/password/start`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordStartRequest {
    /// OPAQUE `RegistrationRequest` for the new password.
    pub registration_request: OpaqueMessage,
}

/// A fresh OPAQUE authentication carried inside a change request.
///
/// The client runs `POST /v1/login/start` for its own address with the
/// *current* password, finishes the login locally and, instead of sending
/// the finalization to `/v1/login/finish`, puts it here. The broker
/// verifies it in the change request itself: the login attempt must belong
/// to the session's user, be younger than the login timeout (2 minutes)
/// and is consumed, so the proof works once, for that one request, with
/// that session. A stolen session token cannot make one.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReauthProof {
    /// The `login_id` that `/v1/login/start` returned.
    pub login_id: LoginId,
    /// OPAQUE `CredentialFinalization` of that login.
    pub credential_finalization: OpaqueMessage,
}

/// `POST /v1/users/{user_id}/password/finish`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordFinishRequest {
    /// OPAQUE `RegistrationUpload` for the new password.
    pub registration_upload: OpaqueMessage,
    /// Argon2id parameters for the new record.
    pub ksf: KsfParams,
    /// The identity re-sealed under the new export key.
    pub escrow: EncryptedEscrow,
    /// The escrow version the client last saw.
    #[serde(deserialize_with = "crate::deserialize_version")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 9_007_199_254_740_991.0)
    )]
    pub expected_escrow_version: i64,
    /// Proof of the current password, made moments before (see
    /// [`ReauthProof`]): a bearer token alone cannot change the password.
    pub reauth: ReauthProof,
    /// A fresh escrow copy sealed to the organisation recovery key
    /// (required when the policy makes recovery mandatory).
    #[serde(default)]
    pub recovery_escrow: Option<EncryptedEscrow>,
}

/// `POST /v1/users/{user_id}/escrow/rollback`: return to the password and
/// escrow version in effect before a password change (for instance when the
/// new version does not open). Appends a copy of `to_version` as the new
/// latest version and makes the OPAQUE record that opens it current again.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EscrowRollbackRequest {
    /// The version to return to; a password change or reset replaced the
    /// record that opens it.
    #[serde(deserialize_with = "crate::deserialize_version")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 9_007_199_254_740_991.0)
    )]
    pub to_version: i64,
    /// The latest version the client saw; a mismatch is a 409.
    #[serde(deserialize_with = "crate::deserialize_version")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 9_007_199_254_740_991.0)
    )]
    pub expected_version: i64,
    /// Proof of the *current* password, made moments before.
    pub reauth: ReauthProof,
}

/// Answer to a password change or rollback.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PasswordFinishResponse {
    /// The escrow version holding the re-sealed identity.
    pub escrow_version: i64,
    /// How many other sessions were ended.
    pub sessions_revoked: u64,
}

/// One directory hit.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DirectoryEntry {
    /// The colleague.
    pub user_id: UserId,
    /// Their address.
    pub email: Email,
    /// Their name.
    pub display_name: DisplayName,
    /// Their public key text.
    pub public_key: PublicKeyString,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
    /// The org's signature over (email, key), if any. Clients refuse entries
    /// without a valid one.
    pub certificate: Option<OrgCertificate>,
    /// `revoked` once an administrator disabled the account: clients must
    /// not encrypt new files to this key and show the colleague as "left".
    #[serde(default)]
    pub status: UserStatus,
}

/// `GET /v1/directory?q=…`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DirectoryResponse {
    /// Hits, ordered by e-mail; at most 50.
    pub entries: Vec<DirectoryEntry>,
}

/// `GET /healthz`
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Health {
    /// `"ok"` when the database answers.
    pub status: String,
}
