//! Every failure becomes a status code plus a JSON [`ErrorBody`].

use std::borrow::Cow;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kluis_types::{ErrorBody, ErrorCode};

use crate::store::StoreError;

/// An API error: status, code and a message safe to show (no secrets).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: Cow<'static, str>,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    /// 400.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }
    /// 401: no valid session.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "missing, invalid or expired session token",
        )
    }
    /// 401: login did not succeed.
    pub fn login_failed() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::LoginFailed,
            "login failed",
        )
    }
    /// 403.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "this session may not act on that user",
        )
    }
    /// 403: the account was disabled by an administrator.
    pub fn account_disabled() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ErrorCode::AccountDisabled,
            "this account has been disabled by an administrator",
        )
    }
    /// 422: refused by the organisation policy (names the rule).
    pub fn policy(rule: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        let message = message.into();
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::PolicyViolation,
            format!("refused by policy rule `{rule}`: {message}"),
        )
    }
    /// 404.
    pub fn not_found(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }
    /// 409.
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
    }
    /// 429.
    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            "too many attempts, try again later",
        )
    }
    /// 500; the cause is logged, not returned.
    pub fn internal(context: &'static str, err: &dyn std::error::Error) -> Self {
        tracing::error!(context, error = %err, source = ?err.source().map(ToString::to_string), "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error",
        )
    }
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            message: self.message.into_owned(),
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<kluis_audit::AuditError> for ApiError {
    fn from(err: kluis_audit::AuditError) -> Self {
        Self::internal("audit entry", &err)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::EmailTaken => Self::conflict("e-mail already registered"),
            StoreError::InviteInvalid => Self::new(
                StatusCode::FORBIDDEN,
                ErrorCode::InviteRequired,
                "invite is unknown, used, expired or for another address",
            ),
            StoreError::VersionConflict => Self::conflict("escrow version is not the latest"),
            StoreError::Duplicate(what) => Self::conflict(format!("{what} already exists")),
            StoreError::GroupTaken => Self::conflict("a group with this name exists"),
            StoreError::AlreadyGroupMember => Self::conflict("already a member of the group"),
            StoreError::LastGroupMember => Self::conflict("the last member cannot leave the group"),
            StoreError::NotGroupMember => Self::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "not a member of the group (only members change a group)",
            ),
            StoreError::NotGroupAdmin => Self::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "only a group administrator may change the group's members, administrators and keys",
            ),
            StoreError::LastGroupAdmin => Self::conflict(
                "a group keeps at least one administrator: make another member an administrator first",
            ),
            StoreError::NoSuchGroupMember => {
                Self::not_found("that person is not a member of the group")
            }
            other => Self::internal("store", &other),
        }
    }
}

fn code_for(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        _ => ErrorCode::BadRequest,
    }
}

/// Keeps the client-error status axum chose but never passes a 5xx through:
/// a body we cannot read is the client's problem.
fn client_status(status: StatusCode) -> StatusCode {
    if status.is_client_error() {
        status
    } else {
        StatusCode::BAD_REQUEST
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = client_status(rejection.status());
        Self::new(status, code_for(status), rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        let status = client_status(rejection.status());
        Self::new(status, ErrorCode::BadRequest, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(rejection.body_text())
    }
}
