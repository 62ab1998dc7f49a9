//! Cancelling recovery requests (issue 18.4g, docs/RECOVERY.md §7).
//!
//! Three parties may cancel an open request (pending, or completed but not
//! yet used): whoever asked (with the request token), the account's owner
//! (with a session: every open request for the account at once — the
//! answer to a recovery someone else started in their name), and any
//! recovery administrator. Each cancellation is audited
//! (`recovery.cancelled`, with who and why); a cancelled request can no
//! longer be approved, completed or used to set a password.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kluis_audit::{Action, Actor, AuditEntry, DetailKey, Details};
use kluis_types::{Email, RecoveryCancelResponse, RecoveryState, RequestId, UserId};

use super::extract::{ApiPath, Authed};
use super::recovery::{AdminAuthed, RecoveryAuthed, admin_actor, request_row};
use super::{ApiError, AppState};
use crate::store::CancelRecovery;

/// Cancels `which`, auditing one `recovery.cancelled` row per request.
async fn cancel(
    state: &AppState,
    which: CancelRecovery<'_>,
    actor: Actor,
    target: &Email,
    reason: &'static str,
) -> Result<Vec<RequestId>, ApiError> {
    let now = state.clock.now();
    let audit = |ids: &Vec<RequestId>| {
        ids.iter()
            .map(|id| {
                let details = Details::new()
                    .text(DetailKey::RequestId, id.as_str())?
                    .text(DetailKey::Reason, reason)?;
                Ok(
                    AuditEntry::new(now, actor.clone(), Action::RecoveryCancelled)
                        .target(target.as_str())
                        .details(details),
                )
            })
            .collect()
    };
    let ids = state.store.cancel_recovery(which, now, &audit).await?;
    for id in &ids {
        tracing::info!(request_id = %id, reason, "recovery request cancelled");
    }
    Ok(ids)
}

fn not_open() -> ApiError {
    ApiError::conflict("the request is no longer open (already used or cancelled)")
}

/// Whoever asked for recovery withdraws the request.
#[utoipa::path(post, path = "/v1/recovery/requests/{request_id}/cancel", tag = "recovery", security(("recovery" = [])),
    params(("request_id" = RequestId, Path, description = "the request the token belongs to")),
    responses((status = 204, description = "cancelled"), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 403, body = kluis_types::ErrorBody),
              (status = 409, body = kluis_types::ErrorBody)))]
pub async fn by_requester(
    State(state): State<AppState>,
    auth: RecoveryAuthed,
    ApiPath(request_id): ApiPath<RequestId>,
) -> Result<StatusCode, ApiError> {
    let row = auth.require(&request_id)?;
    let done = cancel(
        &state,
        CancelRecovery::Request(&row.request_id),
        Actor::System,
        &row.email,
        "cancelled by the requester",
    )
    .await?;
    if done.is_empty() {
        return Err(not_open());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The account's owner, logged in, cancels every open recovery request
/// for their account.
#[utoipa::path(post, path = "/v1/users/{user_id}/recovery/cancel", tag = "recovery", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "must be the session's own user")),
    responses((status = 200, body = RecoveryCancelResponse), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 403, body = kluis_types::ErrorBody)))]
pub async fn by_owner(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<Json<RecoveryCancelResponse>, ApiError> {
    auth.require_self(&user_id)?;
    let user = state
        .store
        .user_by_id(&user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let cancelled = cancel(
        &state,
        CancelRecovery::OfUser(&user.user_id),
        Actor::user(user.email.as_str())?,
        &user.email,
        "cancelled by the account owner",
    )
    .await?;
    Ok(Json(RecoveryCancelResponse { cancelled }))
}

/// A recovery administrator cancels a request.
#[utoipa::path(post, path = "/v1/admin/recovery/requests/{request_id}/cancel", tag = "admin", security(("admin" = [])),
    params(("request_id" = RequestId, Path, description = "the request")),
    responses((status = 204, description = "cancelled"), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 404, body = kluis_types::ErrorBody),
              (status = 409, body = kluis_types::ErrorBody)))]
pub async fn by_admin(
    State(state): State<AppState>,
    auth: AdminAuthed,
    ApiPath(request_id): ApiPath<RequestId>,
) -> Result<StatusCode, ApiError> {
    let row = request_row(&state, &request_id).await?;
    if !matches!(row.state, RecoveryState::Pending | RecoveryState::Completed) {
        return Err(not_open());
    }
    let done = cancel(
        &state,
        CancelRecovery::Request(&row.request_id),
        admin_actor(&auth.0)?,
        &row.email,
        "cancelled by an administrator",
    )
    .await?;
    if done.is_empty() {
        return Err(not_open());
    }
    Ok(StatusCode::NO_CONTENT)
}
