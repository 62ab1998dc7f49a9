//! Wire types for the organisation policy (signed by the org key), the
//! organisation recovery key, key recovery, deprovisioning and the audit
//! log (`docs/BROKER.md`, `docs/RECOVERY.md`).
//!
//! The signed objects carry their exact signed bytes (`policy_json`) or are
//! signed over a length-prefixed encoding defined here, so the broker and
//! every client compute the same message.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

use crate::{
    Email, EncryptedEscrow, KsfParams, OpaqueMessage, OrgCertificate, OrgPolicy, ParseError,
    PublicKeyString, RecoveryToken, RequestId, SignatureBytes, UserId, invalid,
};

fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    // Every field is bounded far below u32::MAX by its parser or by the
    // request body limit; a longer one saturates and then fails to verify.
    out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(field);
}

/// The bytes the organisation key signs for a policy version:
/// `"kluis org policy v1\n" || i64 version || i64 issued_at || u32 len || policy_json`.
pub fn policy_message(version: i64, issued_at: i64, policy_json: &str) -> Vec<u8> {
    const DOMAIN: &[u8] = b"kluis org policy v1\n";
    let mut out = Vec::with_capacity(DOMAIN.len() + 20 + policy_json.len());
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&issued_at.to_be_bytes());
    put_field(&mut out, policy_json.as_bytes());
    out
}

/// `GET /v1/policy`: the organisation policy as the org key signed it.
///
/// Version 0 is the built-in default ([`OrgPolicy::default`]), unsigned,
/// served until an administrator sets a policy. Clients verify
/// `signature` over [`policy_message`] with the org key they pinned, parse
/// `policy_json` themselves, and refuse a version lower than one they have
/// already seen (so a broker cannot roll a policy back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignedPolicy {
    /// 1, 2, 3 … for set policies; 0 for the unsigned default.
    pub version: i64,
    /// When the administrator signed it (Unix seconds); 0 for the default.
    pub issued_at: i64,
    /// The policy, as the exact JSON text that was signed.
    pub policy_json: String,
    /// Ed25519 signature by the organisation key over [`policy_message`];
    /// absent only for version 0.
    #[serde(default)]
    pub signature: Option<SignatureBytes>,
}

impl SignedPolicy {
    /// The unsigned built-in default (version 0).
    pub fn default_unsigned() -> Self {
        Self {
            version: 0,
            issued_at: 0,
            // Serialising a plain struct of strings, numbers and vectors
            // cannot fail.
            policy_json: serde_json::to_string(&OrgPolicy::default()).unwrap_or_default(),
            signature: None,
        }
    }

    /// The bytes the signature covers.
    pub fn message(&self) -> Vec<u8> {
        policy_message(self.version, self.issued_at, &self.policy_json)
    }

    /// Parses and validates `policy_json` (strictly: unknown fields refused).
    pub fn policy(&self) -> Result<OrgPolicy, ParseError> {
        parse_policy(&self.policy_json)
    }
}

/// Parses a policy from JSON text and validates it.
pub fn parse_policy(json: &str) -> Result<OrgPolicy, ParseError> {
    if json.len() > 64 * 1024 {
        return Err(invalid("policy", "larger than 64 KiB"));
    }
    let policy: OrgPolicy =
        serde_json::from_str(json).map_err(|_| invalid("policy", "not a valid policy document"))?;
    policy.validate()?;
    Ok(policy)
}

/// The bytes the organisation key signs to publish the recovery key:
/// `"kluis recovery key v1\n" || u32 len || key text || u8 threshold || u8 shares || i64 issued_at`.
pub fn recovery_key_message(
    public_key: &PublicKeyString,
    threshold: u8,
    shares: u8,
    issued_at: i64,
) -> Vec<u8> {
    const DOMAIN: &[u8] = b"kluis recovery key v1\n";
    let mut out = Vec::with_capacity(DOMAIN.len() + 16 + public_key.as_str().len());
    out.extend_from_slice(DOMAIN);
    put_field(&mut out, public_key.as_str().as_bytes());
    out.push(threshold);
    out.push(shares);
    out.extend_from_slice(&issued_at.to_be_bytes());
    out
}

/// The organisation recovery public key, certified by the org key
/// (`GET /v1/recovery/key`, `PUT /v1/admin/recovery/key`). Clients verify
/// the signature with their pinned org key and pin the key's fingerprint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoveryKeyInfo {
    /// The recovery public key (`kluis1…`).
    pub public_key: PublicKeyString,
    /// Shares needed to rebuild the secret (K).
    pub threshold: u8,
    /// Shares made (N).
    pub shares: u8,
    /// When the org key signed this (Unix seconds).
    pub issued_at: i64,
    /// Ed25519 signature by the org key over [`recovery_key_message`].
    pub signature: SignatureBytes,
}

impl RecoveryKeyInfo {
    /// The bytes the signature covers.
    pub fn message(&self) -> Vec<u8> {
        recovery_key_message(
            &self.public_key,
            self.threshold,
            self.shares,
            self.issued_at,
        )
    }
}

/// `POST /v1/recovery/requests`: a user who lost their password asks for
/// recovery. No session is needed (they cannot log in).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoveryStartRequest {
    /// The account to recover.
    pub email: Email,
    /// The one-time request key's public half (`kluis1…`).
    pub request_key: PublicKeyString,
    /// Its full fingerprint, 64 hex digits (what the admins approve). The
    /// admin machine re-checks it against `request_key`.
    pub request_key_fingerprint: String,
}

/// Answer to a recovery request.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RecoveryStartResponse {
    /// The request.
    pub request_id: RequestId,
    /// Bearer token for the user's side of this request (status, new
    /// password). Keep it with the request key.
    pub token: RecoveryToken,
    /// When the broker recorded it (Unix seconds).
    pub requested_at: i64,
}

/// One approval as the broker shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ApprovalInfo {
    /// The administrator's name on this broker.
    pub admin_name: String,
    /// Their approval key (`kluis-admin-ed25519:…`).
    pub admin_key: String,
    /// When they approved (Unix seconds).
    pub approved_at: i64,
}

/// A recovery of this user's key that IT completed, as `GET /v1/session`
/// reports it so the user's devices can say who recovered the key and
/// when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct KeyRecovery {
    /// The request.
    pub request_id: RequestId,
    /// When it was asked for.
    pub requested_at: i64,
    /// Who approved it, and when.
    pub approvals: Vec<ApprovalInfo>,
    /// Which administrator re-sealed the key to the request key.
    pub completed_by: String,
    /// When (Unix seconds).
    pub completed_at: i64,
}

/// Where a recovery request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RecoveryState {
    /// Waiting for approvals and the re-sealed package.
    Pending,
    /// The package is there; the user may open it and set a new password.
    Completed,
    /// The user set a new password; the request is spent.
    Closed,
    /// Cancelled by its requester, the account's owner or an administrator
    /// before it was used: it can no longer be approved or completed.
    Cancelled,
}

impl RecoveryState {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Completed => "completed",
            Self::Closed => "closed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses the stored text form.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        match text {
            "pending" => Ok(Self::Pending),
            "completed" => Ok(Self::Completed),
            "closed" => Ok(Self::Closed),
            "cancelled" => Ok(Self::Cancelled),
            _ => Err(invalid("recovery state", "unknown")),
        }
    }
}

/// `GET /v1/recovery/requests/{id}` (user, with the request token).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RecoveryStatus {
    /// The request.
    pub request_id: RequestId,
    /// The account.
    pub email: Email,
    /// State.
    pub state: RecoveryState,
    /// When it was made.
    pub requested_at: i64,
    /// Approvals so far.
    pub approvals: Vec<ApprovalInfo>,
    /// Approvals needed (from the published recovery key), if one is published.
    pub threshold: Option<u8>,
    /// The identity re-sealed to the request key, once completed.
    pub package: Option<EncryptedEscrow>,
    /// Which administrator uploaded the package.
    pub completed_by: Option<String>,
    /// When.
    pub completed_at: Option<i64>,
}

/// `POST /v1/recovery/requests/{id}/password/finish`: the new password
/// after a recovery (OPAQUE registration upload, re-sealed escrows).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoveryResetRequest {
    /// OPAQUE `RegistrationUpload` for the new password.
    pub registration_upload: OpaqueMessage,
    /// Argon2id parameters for the new record.
    pub ksf: KsfParams,
    /// The identity sealed under the new export key.
    pub escrow: EncryptedEscrow,
    /// A fresh escrow copy sealed to the recovery key (required when the
    /// policy makes recovery mandatory).
    #[serde(default)]
    pub recovery_escrow: Option<EncryptedEscrow>,
}

/// An approval on the wire: the JSON form of `kluis_approvals::Approval`
/// (docs/RECOVERY.md §4). The broker verifies it with that crate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApprovalWire {
    /// The request approved.
    pub request_id: String,
    /// The user (e-mail).
    pub user: String,
    /// 64 hex digits.
    pub request_key_fingerprint: String,
    /// Unix seconds.
    pub approved_at: i64,
    /// `kluis-admin-ed25519:…`.
    pub admin: String,
    /// base64url, 64 bytes.
    pub signature: String,
}

/// Answer to `POST /v1/users/{user_id}/recovery/cancel`: the account's
/// open recovery requests that were cancelled (none is not an error).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RecoveryCancelResponse {
    /// The requests now `cancelled`, sorted.
    pub cancelled: Vec<RequestId>,
}

/// `GET /v1/admin/recovery/requests`: requests not yet closed.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RecoveryRequestList {
    /// Oldest first.
    pub requests: Vec<RecoveryStatus>,
}

/// `GET /v1/admin/recovery/requests/{id}`: everything the admin machine
/// needs to re-seal, all of which it checks itself.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AdminRecoveryCase {
    /// The request as the user sees it.
    pub status: RecoveryStatus,
    /// The user.
    pub user_id: UserId,
    /// The request key's public half.
    pub request_key: PublicKeyString,
    /// The fingerprint the user's client claimed (64 hex).
    pub request_key_fingerprint: String,
    /// The signed approvals.
    pub approvals: Vec<ApprovalWire>,
    /// The user's current public key.
    pub public_key: PublicKeyString,
    /// Its org certificate (the admin machine verifies it).
    pub certificate: Option<OrgCertificate>,
    /// The newest escrow copy sealed to the recovery key.
    pub recovery_escrow: Option<EncryptedEscrow>,
}

/// `POST /v1/admin/recovery/requests/{id}/package`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoveryPackageUpload {
    /// The identity re-sealed to the request key.
    pub package: EncryptedEscrow,
}

/// `GET /v1/admin/whoami`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AdminInfo {
    /// The administrator's name.
    pub name: String,
    /// Their approval key.
    pub admin_key: String,
}

/// `GET /v1/admin/admins`: the recovery administrators.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AdminList {
    /// By name.
    pub admins: Vec<AdminInfo>,
}

/// What a share event was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ShareEvent {
    /// Access was given.
    Granted,
    /// Access was withdrawn.
    Revoked,
}

/// `POST /v1/audit/shares`: a client records that it shared (or unshared)
/// a folder or file. No content, no keys: names only.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ShareAuditRequest {
    /// Granted or revoked.
    pub event: ShareEvent,
    /// The recipient (user or group name), at most 256 bytes.
    pub recipient: String,
    /// A name for what was shared (folder id or path as the user sees it),
    /// at most 256 bytes.
    pub folder: String,
    /// Its classification label, if any.
    #[serde(default)]
    pub label: Option<String>,
}

/// A directory entry's standing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// A current colleague.
    #[default]
    Active,
    /// Disabled by an administrator: the key is revoked. Do not encrypt to
    /// it; show the colleague as "left".
    Revoked,
}

/// Hint for clients: what they must show a user at enrolment.
pub const RECOVERY_NOTICE: &str = "Your organisation can recover your key. If you forget your \
password, your organisation's recovery administrators, acting together, can restore your \
access. No single person can do this, every recovery is recorded, and you will see who \
approved it and when.";

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_version_zero_and_parses() {
        let p = SignedPolicy::default_unsigned();
        assert_eq!(p.version, 0);
        assert!(p.signature.is_none());
        assert_eq!(p.policy().unwrap(), OrgPolicy::default());
    }

    #[test]
    fn messages_bind_every_field() {
        let a = policy_message(1, 2, "{}");
        assert_ne!(a, policy_message(2, 2, "{}"));
        assert_ne!(a, policy_message(1, 3, "{}"));
        assert_ne!(a, policy_message(1, 2, "{ }"));
        let k = PublicKeyString::parse("kluis1abc").unwrap();
        let m = recovery_key_message(&k, 2, 3, 5);
        assert_ne!(m, recovery_key_message(&k, 3, 3, 5));
        assert_ne!(m, recovery_key_message(&k, 2, 4, 5));
        assert_ne!(m, recovery_key_message(&k, 2, 3, 6));
    }

    #[test]
    fn policy_parse_is_strict() {
        assert!(parse_policy("{\"min_password_score\": 3}").is_err());
        let mut json: serde_json::Value = serde_json::to_value(OrgPolicy::default()).unwrap();
        json["surprise"] = serde_json::Value::Bool(true);
        assert!(parse_policy(&json.to_string()).is_err());
        json.as_object_mut().unwrap().remove("surprise");
        json["min_password_score"] = serde_json::Value::from(9);
        assert!(parse_policy(&json.to_string()).is_err());
    }

    #[test]
    fn states_round_trip() {
        for s in [
            RecoveryState::Pending,
            RecoveryState::Completed,
            RecoveryState::Closed,
        ] {
            assert_eq!(RecoveryState::parse(s.as_str()).unwrap(), s);
        }
        assert!(RecoveryState::parse("open").is_err());
    }
}
