//! Versioned escrow of the sealed identity. Versions are append-only.
//!
//! Reading only: a new version is written by a password change (which
//! proves the current password, [`super::reauth`]) or a recovery reset,
//! never by a bare session token (issue 18.3).

use axum::Json;
use axum::extract::State;
use kluis_types::{EscrowRecord, EscrowVersionInfo, EscrowVersionList, UserId};

use kluis_audit::{Action, Actor, AuditEntry, DetailKey, Details};

use super::extract::{ApiPath, Authed};
use super::{ApiError, AppState};

/// The newest escrow version.
#[utoipa::path(get, path = "/v1/users/{user_id}/escrow", tag = "escrow", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "must be the session's own user")),
    responses((status = 200, body = EscrowRecord), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 403, body = kluis_types::ErrorBody),
              (status = 404, body = kluis_types::ErrorBody)))]
pub async fn latest(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<Json<EscrowRecord>, ApiError> {
    auth.require_self(&user_id)?;
    let record = state
        .store
        .escrow_latest(&user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no escrow"))?;
    record_read(&state, &auth, record.version).await?;
    Ok(Json(record))
}

/// `escrow.read`: who fetched their sealed identity (and so could have
/// tried to open it), from which session.
async fn record_read(state: &AppState, auth: &Authed, version: i64) -> Result<(), ApiError> {
    let user = state
        .store
        .user_by_id(&auth.user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let details = Details::new()
        .int(DetailKey::Count, version)?
        .text(DetailKey::Device, auth.session_id.as_str())?;
    state
        .audit(
            AuditEntry::new(
                state.clock.now(),
                Actor::user(user.email.as_str())?,
                Action::EscrowRead,
            )
            .target(user.email.as_str())
            .details(details),
        )
        .await?;
    Ok(())
}

/// All versions (metadata only).
#[utoipa::path(get, path = "/v1/users/{user_id}/escrow/versions", tag = "escrow", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "must be the session's own user")),
    responses((status = 200, body = EscrowVersionList), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 403, body = kluis_types::ErrorBody)))]
pub async fn versions(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<Json<EscrowVersionList>, ApiError> {
    auth.require_self(&user_id)?;
    let versions: Vec<EscrowVersionInfo> = state.store.escrow_versions(&user_id).await?;
    Ok(Json(EscrowVersionList { versions }))
}

/// One version, old ones included.
#[utoipa::path(get, path = "/v1/users/{user_id}/escrow/versions/{version}", tag = "escrow", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "must be the session's own user"),
           ("version" = i64, Path, description = "version number")),
    responses((status = 200, body = EscrowRecord), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 403, body = kluis_types::ErrorBody),
              (status = 404, body = kluis_types::ErrorBody)))]
pub async fn version(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath((user_id, version)): ApiPath<(UserId, i64)>,
) -> Result<Json<EscrowRecord>, ApiError> {
    auth.require_self(&user_id)?;
    let record = state
        .store
        .escrow_version(&user_id, version)
        .await?
        .ok_or_else(|| ApiError::not_found("no such escrow version"))?;
    record_read(&state, &auth, record.version).await?;
    Ok(Json(record))
}
