//! Versioned escrow of the sealed identity. Versions are append-only.
//!
//! A new version is written by a password change or a rollback (both prove
//! the current password, [`super::reauth`]) or a recovery reset, never by a
//! bare session token (issue 18.3).

use axum::Json;
use axum::extract::State;
use kluis_types::{
    EscrowRecord, EscrowRollbackRequest, EscrowVersionInfo, EscrowVersionList,
    PasswordFinishResponse, UserId, VersionNumber,
};

use kluis_audit::{Action, Actor, AuditEntry, DetailKey, Details};

use super::extract::{ApiJson, ApiPath, Authed};
use super::{ApiError, AppState};
use crate::store::PasswordRollback;

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
           ("version" = i64, Path, minimum = 0, maximum = 9_007_199_254_740_991.0, description = "version number")),
    responses((status = 200, body = EscrowRecord), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 403, body = kluis_types::ErrorBody),
              (status = 404, body = kluis_types::ErrorBody)))]
pub async fn version(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath((user_id, VersionNumber(version))): ApiPath<(UserId, VersionNumber)>,
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

/// Returns to the password and escrow version in effect before a password
/// change: the OPAQUE record that opens `to_version` becomes current again
/// and a copy of `to_version` is appended as the latest version. Needs a
/// young session and a fresh proof of the current password; ends every
/// other session; writes `escrow.rolled_back`.
#[utoipa::path(post, path = "/v1/users/{user_id}/escrow/rollback", tag = "escrow", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "must be the session's own user")),
    request_body = EscrowRollbackRequest,
    responses((status = 200, body = PasswordFinishResponse), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody),
              (status = 403, description = "another user's id, a session older than 5 minutes, or a missing, wrong, expired or used `reauth` proof", body = kluis_types::ErrorBody),
              (status = 404, description = "no replaced password opens that version", body = kluis_types::ErrorBody),
              (status = 409, body = kluis_types::ErrorBody), (status = 413, body = kluis_types::ErrorBody),
              (status = 415, body = kluis_types::ErrorBody), (status = 422, body = kluis_types::ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    auth: Authed,
    ip: super::extract::PeerIp,
    ApiPath(user_id): ApiPath<UserId>,
    ApiJson(req): ApiJson<EscrowRollbackRequest>,
) -> Result<Json<PasswordFinishResponse>, ApiError> {
    auth.require_self(&user_id)?;
    auth.require_recent_login(state.clock.now())?;
    super::reauth::verify(&state, &auth, ip, &req.reauth).await?;
    let user = state
        .store
        .user_by_id(&user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let now = state.clock.now();
    let actor = Actor::user(user.email.as_str())?;
    let audit = |&(version, revoked): &(i64, u64)| {
        Ok(vec![
            AuditEntry::new(now, actor.clone(), Action::EscrowRolledBack)
                .target(user.email.as_str())
                .details(
                    Details::new()
                        .int(DetailKey::Count, version)?
                        .text(DetailKey::Old, &req.to_version.to_string())?
                        .int(
                            DetailKey::Sessions,
                            i64::try_from(revoked).unwrap_or(i64::MAX),
                        )?
                        .text(DetailKey::Device, auth.session_id.as_str())?,
                ),
        ])
    };
    let (escrow_version, sessions_revoked) = state
        .store
        .roll_back_password(
            &PasswordRollback {
                user_id: &user_id,
                keep_session: &auth.session_id,
                to_version: req.to_version,
                expected_version: req.expected_version,
                now,
            },
            &audit,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("no replaced password opens that escrow version"))?;
    tracing::info!(user_id = %user_id, sessions_revoked, "password rolled back");
    Ok(Json(PasswordFinishResponse {
        escrow_version,
        sessions_revoked,
    }))
}
