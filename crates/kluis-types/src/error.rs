//! The JSON error body every non-2xx broker response carries.

use serde::{Deserialize, Serialize};

/// Machine-readable error code. Clients match on this; `message` is for people.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request was malformed (bad JSON, bad field, bad OPAQUE message).
    BadRequest,
    /// No valid session token.
    Unauthorized,
    /// The session may not act on this resource.
    Forbidden,
    /// No such resource or route.
    NotFound,
    /// The HTTP method is not supported on this route.
    MethodNotAllowed,
    /// The request conflicts with current state (e.g. e-mail taken, stale version).
    Conflict,
    /// The body exceeded the configured limit.
    PayloadTooLarge,
    /// The body was not `application/json`.
    UnsupportedMediaType,
    /// Too many attempts; try later.
    RateLimited,
    /// Registration needs a valid, unused, unexpired invite.
    InviteRequired,
    /// Login did not succeed (wrong password and unknown user look the same).
    LoginFailed,
    /// Something failed inside the broker.
    Internal,
    /// The account was disabled by an administrator.
    AccountDisabled,
    /// Refused by the organisation policy; the message names the rule.
    PolicyViolation,
    /// A change of the password (and so of the escrow) needs a fresh proof
    /// of the current password (`reauth`): it was wrong, expired, already
    /// used or made for another account.
    ReauthFailed,
    /// A code this client does not know yet.
    #[serde(other)]
    Unknown,
}

/// `{ "code": …, "message": … }`
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation; never contains secrets.
    pub message: String,
}
