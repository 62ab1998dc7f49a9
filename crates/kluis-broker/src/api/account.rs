//! Registration, login (OPAQUE), sessions, password change and key updates.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kluis_audit::{Action, Actor, AuditEntry, DetailKey, Details};
use kluis_types::{
    ErrorCode, LoginFinishRequest, LoginFinishResponse, LoginId, LoginStartRequest,
    LoginStartResponse, PasswordFinishRequest, PasswordFinishResponse, PasswordStartRequest,
    RegisterFinishRequest, RegisterFinishResponse, RegisterStartRequest, RegisterStartResponse,
    SessionId, SessionInfo, SessionList, SessionToken, UserId, WhoAmI,
};
use sha2::{Digest, Sha256};

use super::extract::{ApiJson, ApiPath, Authed, PeerIp, token_hash};
use super::{ApiError, AppState, random_16, random_32};
use crate::config::RegistrationMode;
use crate::metrics::Metrics;
use crate::store::{NewSession, NewUser, PasswordChange};

/// First OPAQUE registration round trip. Stateless; reveals nothing about
/// whether the address is taken.
#[utoipa::path(post, path = "/v1/register/start", tag = "account",
    request_body = RegisterStartRequest,
    responses((status = 200, body = RegisterStartResponse),
              (status = 400, body = kluis_types::ErrorBody), (status = 413, body = kluis_types::ErrorBody),
              (status = 415, body = kluis_types::ErrorBody), (status = 422, body = kluis_types::ErrorBody),
              (status = 429, body = kluis_types::ErrorBody)))]
pub async fn register_start(
    State(state): State<AppState>,
    ip: PeerIp,
    ApiJson(req): ApiJson<RegisterStartRequest>,
) -> Result<Json<RegisterStartResponse>, ApiError> {
    super::throttle::register_limits(&state, ip, &req.email)?;
    let (signed, _) = super::policy::current(&state).await?;
    let recovery_key = super::policy::recovery_key_info(&state).await?;
    Ok(Json(super::opaque::registration_response(
        &state,
        &req.email,
        &req.registration_request,
        Some(signed),
        recovery_key,
    )?))
}

/// Second round trip: stores the OPAQUE record, public key and escrow v1.
#[utoipa::path(post, path = "/v1/register/finish", tag = "account",
    request_body = RegisterFinishRequest,
    responses((status = 201, body = RegisterFinishResponse),
              (status = 400, body = kluis_types::ErrorBody), (status = 403, description = "invite required or invalid", body = kluis_types::ErrorBody),
              (status = 409, description = "address taken", body = kluis_types::ErrorBody),
              (status = 413, body = kluis_types::ErrorBody), (status = 415, body = kluis_types::ErrorBody),
              (status = 422, body = kluis_types::ErrorBody), (status = 429, body = kluis_types::ErrorBody)))]
pub async fn register_finish(
    State(state): State<AppState>,
    ip: PeerIp,
    ApiJson(req): ApiJson<RegisterFinishRequest>,
) -> Result<(StatusCode, Json<RegisterFinishResponse>), ApiError> {
    super::throttle::register_limits(&state, ip, &req.email)?;
    let invite_hash: Option<[u8; 32]> = req
        .invite
        .as_ref()
        .map(|t| Sha256::digest(t.expose().as_bytes()).into());
    if state.settings.registration == RegistrationMode::Invite && invite_hash.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::InviteRequired,
            "this broker is invite-only",
        ));
    }
    super::opaque::check_ksf(&req.ksf)?;
    if req.escrow.is_empty() {
        return Err(ApiError::bad_request("escrow must not be empty"));
    }
    super::policy::enforce_enrolment(&state, &req.ksf, req.recovery_escrow.as_ref()).await?;
    let record = super::opaque::registration_record(&req.registration_upload)?;
    let user_id = UserId::from_random_bytes(&random_16());
    let user = NewUser {
        user_id: user_id.clone(),
        email: req.email,
        display_name: req.display_name,
        opaque_record: record,
        ksf: req.ksf,
        public_key: req.public_key,
        escrow: req.escrow,
        recovery_escrow: req.recovery_escrow,
        created_at: state.clock.now(),
    };
    let actor = Actor::user(user.email.as_str())?;
    let mut entries = vec![
        AuditEntry::new(user.created_at, actor.clone(), Action::UserRegistered)
            .target(user.email.as_str())
            .details(Details::new().text(
                DetailKey::Fingerprint,
                user.public_key.fingerprint().as_str(),
            )?),
    ];
    if user.recovery_escrow.is_some() {
        entries.push(
            AuditEntry::new(user.created_at, actor, Action::RecoveryEscrowStored)
                .target(user.email.as_str()),
        );
    }
    // In open mode an invite is optional, but if one is given it must be valid.
    state
        .store
        .create_user(&user, invite_hash.as_ref(), &|_| Ok(entries.clone()))
        .await?;
    Metrics::inc(&state.metrics.registrations);
    tracing::info!(user_id = %user_id, "registered");
    Ok((
        StatusCode::CREATED,
        Json(RegisterFinishResponse { user_id }),
    ))
}

/// First login round trip. Unknown addresses get a response of the same
/// shape, built from a fake record (RFC 9807 §10.9).
#[utoipa::path(post, path = "/v1/login/start", tag = "account",
    request_body = LoginStartRequest,
    responses((status = 200, body = LoginStartResponse),
              (status = 400, body = kluis_types::ErrorBody), (status = 413, body = kluis_types::ErrorBody),
              (status = 415, body = kluis_types::ErrorBody), (status = 422, body = kluis_types::ErrorBody),
              (status = 429, body = kluis_types::ErrorBody)))]
pub async fn login_start(
    State(state): State<AppState>,
    ip: PeerIp,
    ApiJson(req): ApiJson<LoginStartRequest>,
) -> Result<Json<LoginStartResponse>, ApiError> {
    super::throttle::login_network(&state, ip)?;
    let request = super::opaque::login_request(&req.credential_request)?;
    super::throttle::login_account(&state, ip, &req.email).await?;
    let user = state.store.user_by_email(&req.email).await?;
    let record = user.as_ref().map(|u| u.opaque_record.as_slice());
    let (server_state, credential_response) =
        super::opaque::start_login(&state, record, request, &req.email)?;
    let login_id = LoginId::from_random_bytes(&random_16());
    let now = state.clock.now();
    // With OPAQUE a wrong password fails on the client, which then never
    // sends the finish: an unfinished login counts as a failure until a
    // successful one clears the count.
    if let Some(u) = &user {
        super::audit::login_failed(&state, &u.user_id, now).await?;
    }
    state
        .store
        .put_login_attempt(
            &login_id,
            user.as_ref().map(|u| &u.user_id),
            &server_state,
            now + state.settings.login_ttl_secs,
        )
        .await?;
    Ok(Json(LoginStartResponse {
        login_id,
        credential_response,
        ksf: user.map_or(state.settings.default_ksf, |u| u.ksf),
    }))
}

/// Second login round trip: verifies the client's key confirmation and
/// issues a session token.
#[utoipa::path(post, path = "/v1/login/finish", tag = "account",
    request_body = LoginFinishRequest,
    responses((status = 200, body = LoginFinishResponse),
              (status = 400, body = kluis_types::ErrorBody), (status = 401, body = kluis_types::ErrorBody),
              (status = 413, body = kluis_types::ErrorBody), (status = 415, body = kluis_types::ErrorBody),
              (status = 422, body = kluis_types::ErrorBody)))]
pub async fn login_finish(
    State(state): State<AppState>,
    ip: PeerIp,
    ApiJson(req): ApiJson<LoginFinishRequest>,
) -> Result<Json<LoginFinishResponse>, ApiError> {
    let finalization = super::opaque::login_finalization(&req.credential_finalization)?;
    let now = state.clock.now();
    let failed = || {
        Metrics::inc(&state.metrics.logins_failed);
        ApiError::login_failed()
    };
    let (user_id, server_state) = state
        .store
        .take_login_attempt(&req.login_id, now)
        .await?
        .ok_or_else(failed)?;
    if !super::opaque::finish_login(&server_state, finalization)? {
        return Err(failed());
    }
    let user_id = user_id.ok_or_else(failed)?;
    let user = state.store.user_by_id(&user_id).await?.ok_or_else(failed)?;
    if user.disabled_at.is_some() {
        Metrics::inc(&state.metrics.logins_failed);
        return Err(ApiError::account_disabled());
    }
    let token = SessionToken::from_random_bytes(&random_32());
    let session = NewSession {
        session_id: SessionId::from_random_bytes(&random_16()),
        user_id: user_id.clone(),
        token_hash: token_hash(&token),
        created_at: now,
        expires_at: now + state.settings.session_ttl_secs,
    };
    state.store.create_session(&session).await?;
    state.login_failures.clear(&user_id);
    super::throttle::login_succeeded(&state, ip, &user.email).await?;
    Metrics::inc(&state.metrics.logins_ok);
    tracing::info!(user_id = %user_id, session_id = %session.session_id, "logged in");
    Ok(Json(LoginFinishResponse {
        session_token: token,
        session_id: session.session_id,
        user_id,
        expires_at: session.expires_at,
    }))
}

/// Who the session belongs to.
#[utoipa::path(get, path = "/v1/session", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = WhoAmI), (status = 401, body = kluis_types::ErrorBody)))]
pub async fn whoami(State(state): State<AppState>, auth: Authed) -> Result<Json<WhoAmI>, ApiError> {
    let user = state
        .store
        .user_by_id(&auth.user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let recovery_enrolled = state
        .store
        .recovery_escrow_latest(&user.user_id)
        .await?
        .is_some();
    let key_recoveries = super::recovery::key_recoveries(&state, &user.user_id).await?;
    Ok(Json(WhoAmI {
        recovery_enrolled,
        key_recoveries,
        fingerprint: user.public_key.fingerprint(),
        user_id: user.user_id,
        email: user.email,
        display_name: user.display_name,
        public_key: user.public_key,
        certificate: user.certificate,
        session_id: auth.session_id,
        session_expires_at: auth.expires_at,
    }))
}

/// Ends the current session.
#[utoipa::path(delete, path = "/v1/session", tag = "account", security(("bearer" = [])),
    responses((status = 204, description = "logged out"), (status = 401, body = kluis_types::ErrorBody)))]
pub async fn logout(State(state): State<AppState>, auth: Authed) -> Result<StatusCode, ApiError> {
    state
        .store
        .revoke_session(&auth.user_id, &auth.session_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The user's live sessions.
#[utoipa::path(get, path = "/v1/users/{user_id}/sessions", tag = "account", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "must be the session's own user")),
    responses((status = 200, body = SessionList), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 403, body = kluis_types::ErrorBody)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(user_id): ApiPath<UserId>,
) -> Result<Json<SessionList>, ApiError> {
    auth.require_self(&user_id)?;
    let rows = state
        .store
        .list_sessions(&user_id, state.clock.now())
        .await?;
    Ok(Json(SessionList {
        sessions: rows
            .into_iter()
            .map(|r| SessionInfo {
                current: r.session_id == auth.session_id,
                session_id: r.session_id,
                created_at: r.created_at,
                expires_at: r.expires_at,
            })
            .collect(),
    }))
}

/// Ends one of the user's sessions.
#[utoipa::path(delete, path = "/v1/users/{user_id}/sessions/{session_id}", tag = "account", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "must be the session's own user"),
           ("session_id" = SessionId, Path, description = "session to end")),
    responses((status = 204, description = "ended"), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 403, body = kluis_types::ErrorBody),
              (status = 404, body = kluis_types::ErrorBody)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath((user_id, session_id)): ApiPath<(UserId, SessionId)>,
) -> Result<StatusCode, ApiError> {
    auth.require_self(&user_id)?;
    if state.store.revoke_session(&user_id, &session_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no such session"))
    }
}

/// First round trip of a password change (OPAQUE registration of the new
/// password). Needs a session from a login in the last five minutes.
#[utoipa::path(post, path = "/v1/users/{user_id}/password/start", tag = "account", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "must be the session's own user")),
    request_body = PasswordStartRequest,
    responses((status = 200, body = RegisterStartResponse), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 403, body = kluis_types::ErrorBody),
              (status = 413, body = kluis_types::ErrorBody), (status = 415, body = kluis_types::ErrorBody),
              (status = 422, body = kluis_types::ErrorBody)))]
pub async fn password_start(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(user_id): ApiPath<UserId>,
    ApiJson(req): ApiJson<PasswordStartRequest>,
) -> Result<Json<RegisterStartResponse>, ApiError> {
    auth.require_self(&user_id)?;
    auth.require_recent_login(state.clock.now())?;
    let user = state
        .store
        .user_by_id(&user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let (signed, _) = super::policy::current(&state).await?;
    let recovery_key = super::policy::recovery_key_info(&state).await?;
    Ok(Json(super::opaque::registration_response(
        &state,
        &user.email,
        &req.registration_request,
        Some(signed),
        recovery_key,
    )?))
}

/// Second round trip: verifies the fresh proof of the current password
/// (`reauth`), rotates the OPAQUE record, stores the re-sealed escrow as a
/// new version, ends every other session and writes `password.changed`.
#[utoipa::path(post, path = "/v1/users/{user_id}/password/finish", tag = "account", security(("bearer" = [])),
    params(("user_id" = UserId, Path, description = "must be the session's own user")),
    request_body = PasswordFinishRequest,
    responses((status = 200, body = PasswordFinishResponse), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody),
              (status = 403, description = "another user's id, a session older than 5 minutes, or a missing, wrong, expired or used `reauth` proof", body = kluis_types::ErrorBody),
              (status = 409, body = kluis_types::ErrorBody), (status = 413, body = kluis_types::ErrorBody),
              (status = 415, body = kluis_types::ErrorBody), (status = 422, body = kluis_types::ErrorBody)))]
pub async fn password_finish(
    State(state): State<AppState>,
    auth: Authed,
    ip: PeerIp,
    ApiPath(user_id): ApiPath<UserId>,
    ApiJson(req): ApiJson<PasswordFinishRequest>,
) -> Result<Json<PasswordFinishResponse>, ApiError> {
    auth.require_self(&user_id)?;
    auth.require_recent_login(state.clock.now())?;
    // A young session is not enough: prove the current password in this
    // very request (issue 18.3).
    super::reauth::verify(&state, &auth, ip, &req.reauth).await?;
    super::opaque::check_ksf(&req.ksf)?;
    if req.escrow.is_empty() {
        return Err(ApiError::bad_request("escrow must not be empty"));
    }
    super::policy::enforce_enrolment(&state, &req.ksf, req.recovery_escrow.as_ref()).await?;
    let record = super::opaque::registration_record(&req.registration_upload)?;
    let user = state
        .store
        .user_by_id(&user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let now = state.clock.now();
    let actor = Actor::user(user.email.as_str())?;
    let mut entries = Vec::new();
    if req.recovery_escrow.is_some() {
        entries.push(
            AuditEntry::new(now, actor.clone(), Action::RecoveryEscrowStored)
                .target(user.email.as_str()),
        );
    }
    // `password.changed`: the new escrow version, the sessions ended and
    // the session that made the change, in the change's own transaction.
    let audit = |&(version, revoked): &(i64, u64)| {
        let mut all = entries.clone();
        all.push(
            AuditEntry::new(now, actor.clone(), Action::PasswordChanged)
                .target(user.email.as_str())
                .details(
                    Details::new()
                        .int(DetailKey::Count, version)?
                        .int(
                            DetailKey::Sessions,
                            i64::try_from(revoked).unwrap_or(i64::MAX),
                        )?
                        .text(DetailKey::Device, auth.session_id.as_str())?,
                ),
        );
        Ok(all)
    };
    let (escrow_version, sessions_revoked) = state
        .store
        .change_password(
            &PasswordChange {
                user_id: &user_id,
                keep_session: &auth.session_id,
                opaque_record: &record,
                ksf: req.ksf,
                escrow: &req.escrow,
                expected_escrow_version: req.expected_escrow_version,
                recovery_escrow: req.recovery_escrow.as_ref(),
                now,
            },
            &audit,
        )
        .await?;
    tracing::info!(user_id = %user_id, sessions_revoked, "password changed");
    Ok(Json(PasswordFinishResponse {
        escrow_version,
        sessions_revoked,
    }))
}
