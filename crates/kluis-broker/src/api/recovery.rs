//! Organisation key recovery over HTTP (docs/RECOVERY.md §7).
//!
//! User side (`/v1/recovery/…`, bearer = the request token `krt_…` issued
//! with the request): ask, watch, and set a new password once the package
//! is there. Admin side (`/v1/admin/…`, bearer = an admin token `kat_…`
//! issued by `kluis-broker admin admins add`): publish the recovery key,
//! list requests, fetch a case, approve (signed), upload the package.
//!
//! The broker never sees the recovery secret or a user's identity: the
//! escrow copy is sealed to the recovery key, the package to the request
//! key. It enforces what it can (known admins, signatures, one approval
//! per admin, K approvals before a package is accepted); the admin machine
//! and the user's client check everything again.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use ed25519_dalek::{Signature, VerifyingKey};
use kluis_approvals::{
    AdminPublicKey, Approval, KeyFingerprint, RecoveryRequest, verify_approvals,
};
use kluis_audit::{Action, Actor, AuditEntry, DetailKey, Details};
use kluis_types::{
    AdminInfo, AdminList, AdminRecoveryCase, AdminToken, ApprovalInfo, ApprovalWire,
    EncryptedEscrow, ErrorCode, KeyRecovery, PasswordStartRequest, RecoveryKeyInfo,
    RecoveryPackageUpload, RecoveryRequestList, RecoveryResetRequest, RecoveryStartRequest,
    RecoveryStartResponse, RecoveryState, RecoveryStatus, RecoveryToken, RegisterStartResponse,
    RequestId, UserId,
};
use sha2::{Digest, Sha256};

use super::extract::{ApiJson, ApiPath, PeerIp};
use super::{ApiError, AppState, random_16, random_32};
use crate::store::{
    AdminRow, ApprovalRow, NewRecoveryDecoy, NewRecoveryRequest, RecoveryRequestRow, RecoveryReset,
    StoredRecoveryKey,
};

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|t| t.strip_prefix("Bearer "))
        .ok_or_else(ApiError::unauthorized)
}

/// A request made with an administrator's API token.
#[derive(Debug, Clone)]
pub struct AdminAuthed(pub AdminRow);

impl FromRequestParts<AppState> for AdminAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = AdminToken::parse(bearer(parts)?).map_err(|_| ApiError::unauthorized())?;
        let hash: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
        let admin = state
            .store
            .admin_by_token_hash(&hash)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        if admin.token_expires_at <= state.clock.now() {
            return Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                kluis_types::ErrorCode::Unauthorized,
                "admin token expired: the broker host issues a new one \
                 (kluis-broker admin admins rotate NAME)",
            ));
        }
        Ok(Self(admin))
    }
}

/// A request made with the token of one recovery request.
#[derive(Debug, Clone)]
pub struct RecoveryAuthed(pub RecoveryRequestRow);

impl FromRequestParts<AppState> for RecoveryAuthed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = RecoveryToken::parse(bearer(parts)?).map_err(|_| ApiError::unauthorized())?;
        let hash: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
        // A decoy (issue 18.4f) reads as a pending request.
        let row = match state.store.recovery_request_by_token(&hash).await? {
            Some(row) => Some(row),
            None => state.store.recovery_decoy_by_token(&hash).await?,
        };
        row.map(Self).ok_or_else(ApiError::unauthorized)
    }
}

impl RecoveryAuthed {
    pub(super) fn require(&self, id: &RequestId) -> Result<&RecoveryRequestRow, ApiError> {
        if &self.0.request_id == id {
            Ok(&self.0)
        } else {
            Err(ApiError::forbidden())
        }
    }
}

pub(super) fn admin_actor(admin: &AdminRow) -> Result<Actor, ApiError> {
    Ok(Actor::admin(&admin.name)?)
}

/// The request in the form approvals sign.
fn signed_request(row: &RecoveryRequestRow) -> Result<RecoveryRequest, ApiError> {
    Ok(RecoveryRequest {
        request_id: row.request_id.as_str().to_owned(),
        user: row.email.as_str().to_owned(),
        request_key_fingerprint: KeyFingerprint::from_hex(&row.request_key_fp)
            .map_err(|e| ApiError::internal("stored request fingerprint", &e))?,
        requested_at: row.requested_at,
    })
}

fn admin_keys(admins: &[AdminRow]) -> Vec<AdminPublicKey> {
    admins
        .iter()
        .filter_map(|a| AdminPublicKey::parse(&a.admin_key).ok())
        .collect()
}

fn parse_approvals(rows: &[ApprovalRow]) -> Result<Vec<Approval>, ApiError> {
    rows.iter()
        .map(|r| {
            serde_json::from_str(&r.approval_json)
                .map_err(|e| ApiError::internal("stored approval", &e))
        })
        .collect()
}

/// A request's approvals, with the approving administrators' names.
async fn approvals_of(
    state: &AppState,
    request_id: &RequestId,
    admins: &[AdminRow],
) -> Result<Vec<ApprovalInfo>, ApiError> {
    let names: HashMap<&str, &str> = admins
        .iter()
        .map(|a| (a.admin_key.as_str(), a.name.as_str()))
        .collect();
    let mut approvals: Vec<ApprovalInfo> = state
        .store
        .approvals(request_id)
        .await?
        .into_iter()
        .map(|a| ApprovalInfo {
            admin_name: names
                .get(a.admin_key.as_str())
                .map_or_else(|| "(removed administrator)".to_owned(), |n| (*n).to_owned()),
            admin_key: a.admin_key,
            approved_at: a.approved_at,
        })
        .collect();
    // In the order they were given (by name within a second), whatever
    // order the database returns them in.
    approvals.sort_by(|a, b| (a.approved_at, &a.admin_name).cmp(&(b.approved_at, &b.admin_name)));
    Ok(approvals)
}

/// The last recoveries of a user's key that IT completed, for
/// `GET /v1/session`.
pub(crate) async fn key_recoveries(
    state: &AppState,
    user_id: &UserId,
) -> Result<Vec<KeyRecovery>, ApiError> {
    let rows = state.store.recoveries_of(user_id, 10).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let admins = state.store.list_admins().await?;
    let mut out = Vec::new();
    for row in rows {
        let (Some(completed_by), Some(completed_at)) = (row.completed_by.clone(), row.completed_at)
        else {
            continue;
        };
        out.push(KeyRecovery {
            approvals: approvals_of(state, &row.request_id, &admins).await?,
            request_id: row.request_id,
            requested_at: row.requested_at,
            completed_by,
            completed_at,
        });
    }
    Ok(out)
}

async fn status_of(state: &AppState, row: &RecoveryRequestRow) -> Result<RecoveryStatus, ApiError> {
    let admins = state.store.list_admins().await?;
    let approvals = approvals_of(state, &row.request_id, &admins).await?;
    let threshold = state
        .store
        .recovery_key_latest()
        .await?
        .map(|k| k.threshold);
    Ok(RecoveryStatus {
        request_id: row.request_id.clone(),
        email: row.email.clone(),
        state: row.state,
        requested_at: row.requested_at,
        approvals,
        threshold,
        package: row.package.clone().map(EncryptedEscrow::new),
        completed_by: row.completed_by.clone(),
        completed_at: row.completed_at,
    })
}

/// A user who lost their password asks for recovery with a one-time
/// request key. No session is needed. Returns the request token that
/// authorises the user's side of this request.
#[utoipa::path(post, path = "/v1/recovery/requests", tag = "recovery",
    request_body = RecoveryStartRequest,
    responses((status = 201, body = RecoveryStartResponse), (status = 400, body = kluis_types::ErrorBody),
              (status = 413, body = kluis_types::ErrorBody), (status = 415, body = kluis_types::ErrorBody),
              (status = 422, body = kluis_types::ErrorBody), (status = 429, body = kluis_types::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    ip: PeerIp,
    ApiJson(req): ApiJson<RecoveryStartRequest>,
) -> Result<(StatusCode, Json<RecoveryStartResponse>), ApiError> {
    super::throttle::register_limits(&state, ip, &req.email)?;
    let fp = req.request_key_fingerprint.trim().to_ascii_lowercase();
    if fp.len() != 64 || KeyFingerprint::from_hex(&fp).is_err() {
        return Err(ApiError::bad_request(
            "request_key_fingerprint must be 64 hex digits",
        ));
    }
    // The answer is the same for an address with no account or no
    // recovery escrow (issue 18.4f): 201, a fresh request id and token,
    // and one audited write, so neither the status, the body nor the work
    // done tells whether the account exists. What is written then is a
    // decoy: its token reads as a pending request that never progresses.
    let user = match state.store.user_by_email(&req.email).await? {
        Some(user) => state
            .store
            .recovery_escrow_latest(&user.user_id)
            .await?
            .map(|_| user),
        None => None,
    };
    let request_id = RequestId::from_random_bytes(&random_16());
    let token = RecoveryToken::from_random_bytes(&random_32());
    let now = state.clock.now();
    let display = KeyFingerprint::from_hex(&fp)
        .map(|f| f.to_string())
        .unwrap_or_default();
    let details = Details::new()
        .text(DetailKey::RequestId, request_id.as_str())?
        .text(DetailKey::Fingerprint, &display)?
        .text(DetailKey::Ip, &ip.0.to_string())?;
    let token_hash: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
    let Some(user) = user else {
        let details = details.text(
            DetailKey::Reason,
            "no account or no recovery escrow: a decoy",
        )?;
        let entry = AuditEntry::new(now, Actor::System, Action::RecoveryRequested)
            .target(req.email.as_str())
            .details(details);
        state
            .store
            .create_recovery_decoy(
                &NewRecoveryDecoy {
                    request_id: &request_id,
                    email: &req.email,
                    token_hash,
                    request_key: &req.request_key,
                    request_key_fp: &fp,
                    requested_at: now,
                },
                &|_| Ok(vec![entry.clone()]),
            )
            .await?;
        return Ok((
            StatusCode::CREATED,
            Json(RecoveryStartResponse {
                request_id,
                token,
                requested_at: now,
            }),
        ));
    };
    let entry = AuditEntry::new(now, Actor::System, Action::RecoveryRequested)
        .target(user.email.as_str())
        .details(details);
    state
        .store
        .create_recovery_request(
            &NewRecoveryRequest {
                request_id: &request_id,
                user_id: &user.user_id,
                token_hash,
                request_key: &req.request_key,
                request_key_fp: &fp,
                requested_at: now,
            },
            &|_| Ok(vec![entry.clone()]),
        )
        .await?;
    tracing::info!(request_id = %request_id, user_id = %user.user_id, "recovery requested");
    Ok((
        StatusCode::CREATED,
        Json(RecoveryStartResponse {
            request_id,
            token,
            requested_at: now,
        }),
    ))
}

/// Where the caller's recovery request stands; the package once completed.
#[utoipa::path(get, path = "/v1/recovery/requests/{request_id}", tag = "recovery", security(("recovery" = [])),
    params(("request_id" = RequestId, Path, description = "the request the token belongs to")),
    responses((status = 200, body = RecoveryStatus), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 403, body = kluis_types::ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    auth: RecoveryAuthed,
    ApiPath(request_id): ApiPath<RequestId>,
) -> Result<Json<RecoveryStatus>, ApiError> {
    let row = auth.require(&request_id)?;
    Ok(Json(status_of(&state, row).await?))
}

fn require_completed(row: &RecoveryRequestRow) -> Result<(), ApiError> {
    if row.state == RecoveryState::Completed {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "the request is not completed (still pending, or already used)",
        ))
    }
}

/// After a completed recovery: first round trip of the new password's
/// OPAQUE registration.
#[utoipa::path(post, path = "/v1/recovery/requests/{request_id}/password/start", tag = "recovery", security(("recovery" = [])),
    params(("request_id" = RequestId, Path, description = "the completed request")),
    request_body = PasswordStartRequest,
    responses((status = 200, body = RegisterStartResponse), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 403, body = kluis_types::ErrorBody),
              (status = 409, body = kluis_types::ErrorBody), (status = 413, body = kluis_types::ErrorBody),
              (status = 415, body = kluis_types::ErrorBody), (status = 422, body = kluis_types::ErrorBody)))]
pub async fn password_start(
    State(state): State<AppState>,
    auth: RecoveryAuthed,
    ApiPath(request_id): ApiPath<RequestId>,
    ApiJson(req): ApiJson<PasswordStartRequest>,
) -> Result<Json<RegisterStartResponse>, ApiError> {
    let row = auth.require(&request_id)?;
    require_completed(row)?;
    let (signed, _) = super::policy::current(&state).await?;
    let recovery_key = super::policy::recovery_key_info(&state).await?;
    Ok(Json(super::opaque::registration_response(
        &state,
        &row.email,
        &req.registration_request,
        Some(signed),
        recovery_key,
    )?))
}

/// After a completed recovery: stores the new OPAQUE record and escrow
/// copies, ends every session, and closes the request (single use).
#[utoipa::path(post, path = "/v1/recovery/requests/{request_id}/password/finish", tag = "recovery", security(("recovery" = [])),
    params(("request_id" = RequestId, Path, description = "the completed request")),
    request_body = RecoveryResetRequest,
    responses((status = 204, description = "new password set"), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 403, body = kluis_types::ErrorBody),
              (status = 409, body = kluis_types::ErrorBody), (status = 413, body = kluis_types::ErrorBody),
              (status = 415, body = kluis_types::ErrorBody), (status = 422, body = kluis_types::ErrorBody)))]
pub async fn password_finish(
    State(state): State<AppState>,
    auth: RecoveryAuthed,
    ApiPath(request_id): ApiPath<RequestId>,
    ApiJson(req): ApiJson<RecoveryResetRequest>,
) -> Result<StatusCode, ApiError> {
    let row = auth.require(&request_id)?;
    require_completed(row)?;
    super::opaque::check_ksf(&req.ksf)?;
    if req.escrow.is_empty() {
        return Err(ApiError::bad_request("escrow must not be empty"));
    }
    super::policy::enforce_enrolment(&state, &req.ksf, req.recovery_escrow.as_ref()).await?;
    let record = super::opaque::registration_record(&req.registration_upload)?;
    let now = state.clock.now();
    let actor = Actor::user(row.email.as_str())?;
    let audit =
        |&(version, ended): &(i64, u64)| -> Result<Vec<AuditEntry>, kluis_audit::AuditError> {
            // The escrow version the reset appended (`count`, as in
            // `password.changed`): no escrow write goes unaudited.
            let details = Details::new()
                .text(DetailKey::RequestId, row.request_id.as_str())?
                .int(DetailKey::Count, version)?
                .int(
                    DetailKey::Sessions,
                    i64::try_from(ended).unwrap_or(i64::MAX),
                )?
                .text(DetailKey::Reason, "new password after recovery")?;
            let mut entries = vec![
                AuditEntry::new(now, actor.clone(), Action::SessionsRevoked)
                    .target(row.email.as_str())
                    .details(details),
            ];
            if req.recovery_escrow.is_some() {
                entries.push(
                    AuditEntry::new(now, actor.clone(), Action::RecoveryEscrowStored)
                        .target(row.email.as_str()),
                );
            }
            Ok(entries)
        };
    state
        .store
        .reset_after_recovery(
            &RecoveryReset {
                request_id: &row.request_id,
                user_id: &row.user_id,
                opaque_record: &record,
                ksf: req.ksf,
                escrow: &req.escrow,
                recovery_escrow: req.recovery_escrow.as_ref(),
                now,
            },
            &audit,
        )
        .await
        .map_err(|e| match e {
            crate::store::StoreError::VersionConflict => {
                ApiError::conflict("the request was already used")
            }
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// The administrator the token belongs to.
#[utoipa::path(get, path = "/v1/admin/whoami", tag = "admin", security(("admin" = [])),
    responses((status = 200, body = AdminInfo), (status = 401, body = kluis_types::ErrorBody)))]
pub async fn admin_whoami(auth: AdminAuthed) -> Json<AdminInfo> {
    Json(AdminInfo {
        name: auth.0.name,
        admin_key: auth.0.admin_key,
    })
}

/// Every recovery administrator.
#[utoipa::path(get, path = "/v1/admin/admins", tag = "admin", security(("admin" = [])),
    responses((status = 200, body = AdminList), (status = 401, body = kluis_types::ErrorBody)))]
pub async fn admin_list(
    State(state): State<AppState>,
    _auth: AdminAuthed,
) -> Result<Json<AdminList>, ApiError> {
    Ok(Json(AdminList {
        admins: state
            .store
            .list_admins()
            .await?
            .into_iter()
            .map(|a| AdminInfo {
                name: a.name,
                admin_key: a.admin_key,
            })
            .collect(),
    }))
}

/// Publishes the organisation recovery public key, signed by the org key.
/// When the broker is configured with the org public key it checks the
/// signature; clients always do.
#[utoipa::path(put, path = "/v1/admin/recovery/key", tag = "admin", security(("admin" = [])),
    request_body = RecoveryKeyInfo,
    responses((status = 204, description = "published"), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 413, body = kluis_types::ErrorBody),
              (status = 415, body = kluis_types::ErrorBody), (status = 422, body = kluis_types::ErrorBody)))]
pub async fn publish_key(
    State(state): State<AppState>,
    auth: AdminAuthed,
    ApiJson(info): ApiJson<RecoveryKeyInfo>,
) -> Result<StatusCode, ApiError> {
    if info.threshold < 2 || info.shares < info.threshold {
        return Err(ApiError::bad_request(
            "threshold must be at least 2 and at most the number of shares",
        ));
    }
    if let Some(org) = state.settings.org_public_key {
        let ok = VerifyingKey::from_bytes(&org.to_bytes())
            .ok()
            .zip(Signature::from_slice(info.signature.as_bytes()).ok())
            .is_some_and(|(k, sig)| k.verify_strict(&info.message(), &sig).is_ok());
        if !ok {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::BadRequest,
                "the recovery key is not signed by this organisation's key",
            ));
        }
    }
    let now = state.clock.now();
    let details = Details::new()
        .int(DetailKey::Threshold, i64::from(info.threshold))?
        .int(DetailKey::Shares, i64::from(info.shares))?
        .text(
            DetailKey::Fingerprint,
            info.public_key.fingerprint().as_str(),
        )?;
    let entry =
        AuditEntry::new(now, admin_actor(&auth.0)?, Action::RecoveryInitialised).details(details);
    state
        .store
        .insert_recovery_key(
            &StoredRecoveryKey {
                public_key: info.public_key.clone(),
                threshold: info.threshold,
                shares: info.shares,
                issued_at: info.issued_at,
                signature: info.signature.as_bytes().to_vec(),
            },
            now,
            &|_| Ok(vec![entry.clone()]),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Recovery requests not yet closed, oldest first.
#[utoipa::path(get, path = "/v1/admin/recovery/requests", tag = "admin", security(("admin" = [])),
    responses((status = 200, body = RecoveryRequestList), (status = 401, body = kluis_types::ErrorBody)))]
pub async fn open_requests(
    State(state): State<AppState>,
    _auth: AdminAuthed,
) -> Result<Json<RecoveryRequestList>, ApiError> {
    let rows = state.store.open_recovery_requests().await?;
    let mut requests = Vec::with_capacity(rows.len());
    for row in rows.iter().filter(|r| r.state != RecoveryState::Cancelled) {
        let mut status = status_of(&state, row).await?;
        status.package = None;
        requests.push(status);
    }
    Ok(Json(RecoveryRequestList { requests }))
}

pub(super) async fn request_row(
    state: &AppState,
    id: &RequestId,
) -> Result<RecoveryRequestRow, ApiError> {
    state
        .store
        .recovery_request(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such recovery request"))
}

/// Everything the admin machine needs for one request, including the
/// user's escrow copy sealed to the recovery key. Recorded in the audit
/// log (`escrow.recovery_read`).
#[utoipa::path(get, path = "/v1/admin/recovery/requests/{request_id}", tag = "admin", security(("admin" = [])),
    params(("request_id" = RequestId, Path, description = "the request")),
    responses((status = 200, body = AdminRecoveryCase), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 404, body = kluis_types::ErrorBody)))]
pub async fn case(
    State(state): State<AppState>,
    auth: AdminAuthed,
    ApiPath(request_id): ApiPath<RequestId>,
) -> Result<Json<AdminRecoveryCase>, ApiError> {
    let row = request_row(&state, &request_id).await?;
    let user = state
        .store
        .user_by_id(&row.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("the user is gone"))?;
    let escrow = state.store.recovery_escrow_latest(&row.user_id).await?;
    let approvals = state
        .store
        .approvals(&row.request_id)
        .await?
        .iter()
        .map(|a| {
            serde_json::from_str::<ApprovalWire>(&a.approval_json)
                .map_err(|e| ApiError::internal("stored approval", &e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if escrow.is_some() {
        let details = Details::new().text(DetailKey::RequestId, row.request_id.as_str())?;
        state
            .audit(
                AuditEntry::new(
                    state.clock.now(),
                    admin_actor(&auth.0)?,
                    Action::RecoveryEscrowRead,
                )
                .target(row.email.as_str())
                .details(details),
            )
            .await?;
    }
    Ok(Json(AdminRecoveryCase {
        status: status_of(&state, &row).await?,
        user_id: row.user_id.clone(),
        request_key: row.request_key.clone(),
        request_key_fingerprint: row.request_key_fp.clone(),
        approvals,
        public_key: user.public_key,
        certificate: user.certificate,
        recovery_escrow: escrow.map(|e| e.escrow),
    }))
}

/// One administrator's signed approval. It must be signed by the key of
/// the administrator whose token makes the call, over exactly this request;
/// a second approval by the same administrator is refused (409).
#[utoipa::path(post, path = "/v1/admin/recovery/requests/{request_id}/approvals", tag = "admin", security(("admin" = [])),
    params(("request_id" = RequestId, Path, description = "the request")),
    request_body = ApprovalWire,
    responses((status = 201, body = RecoveryStatus), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 403, body = kluis_types::ErrorBody),
              (status = 404, body = kluis_types::ErrorBody), (status = 409, body = kluis_types::ErrorBody),
              (status = 413, body = kluis_types::ErrorBody), (status = 415, body = kluis_types::ErrorBody),
              (status = 422, body = kluis_types::ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    auth: AdminAuthed,
    ApiPath(request_id): ApiPath<RequestId>,
    ApiJson(wire): ApiJson<ApprovalWire>,
) -> Result<(StatusCode, Json<RecoveryStatus>), ApiError> {
    let row = request_row(&state, &request_id).await?;
    if row.state != RecoveryState::Pending {
        return Err(ApiError::conflict("the request is no longer pending"));
    }
    let text = serde_json::to_string(&wire).map_err(|e| ApiError::internal("approval", &e))?;
    let approval: Approval = serde_json::from_str(&text)
        .map_err(|_| ApiError::bad_request("malformed approval (key, fingerprint or signature)"))?;
    if approval.admin().to_string() != auth.0.admin_key {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "the approval must be signed with your own administrator key",
        ));
    }
    let admins = state.store.list_admins().await?;
    approval
        .verify(0, &signed_request(&row)?, &admin_keys(&admins))
        .map_err(|e| ApiError::bad_request(format!("approval refused: {e}")))?;
    // Recorded with the approval itself: how many this request has now.
    let count = state.store.approvals(&row.request_id).await?.len() + 1;
    let details = Details::new()
        .text(DetailKey::RequestId, row.request_id.as_str())?
        .int(DetailKey::Count, i64::try_from(count).unwrap_or(i64::MAX))?;
    let entry = AuditEntry::new(
        state.clock.now(),
        admin_actor(&auth.0)?,
        Action::RecoveryApproved,
    )
    .target(row.email.as_str())
    .details(details);
    state
        .store
        .add_approval(
            &row.request_id,
            &ApprovalRow {
                admin_key: auth.0.admin_key.clone(),
                approval_json: text,
                approved_at: approval.statement.approved_at,
            },
            &|_| Ok(vec![entry.clone()]),
        )
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Duplicate(_) => {
                ApiError::conflict("you have already approved this request")
            }
            other => other.into(),
        })?;
    let status = status_of(&state, &row).await?;
    Ok((StatusCode::CREATED, Json(status)))
}

/// The user's identity re-sealed to the request key, from the admin
/// machine. Accepted only once the request has K valid approvals from
/// distinct administrators (K from the published recovery key).
#[utoipa::path(post, path = "/v1/admin/recovery/requests/{request_id}/package", tag = "admin", security(("admin" = [])),
    params(("request_id" = RequestId, Path, description = "the request")),
    request_body = RecoveryPackageUpload,
    responses((status = 204, description = "stored; the user can now open it"), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 404, body = kluis_types::ErrorBody),
              (status = 409, body = kluis_types::ErrorBody), (status = 413, body = kluis_types::ErrorBody),
              (status = 415, body = kluis_types::ErrorBody), (status = 422, body = kluis_types::ErrorBody)))]
pub async fn upload_package(
    State(state): State<AppState>,
    auth: AdminAuthed,
    ApiPath(request_id): ApiPath<RequestId>,
    ApiJson(upload): ApiJson<RecoveryPackageUpload>,
) -> Result<StatusCode, ApiError> {
    let row = request_row(&state, &request_id).await?;
    if row.state != RecoveryState::Pending {
        return Err(ApiError::conflict("the request is no longer pending"));
    }
    if upload.package.is_empty() {
        return Err(ApiError::bad_request("package must not be empty"));
    }
    let key = state
        .store
        .recovery_key_latest()
        .await?
        .ok_or_else(|| ApiError::conflict("no recovery key is published"))?;
    let admins = state.store.list_admins().await?;
    let approvals = parse_approvals(&state.store.approvals(&row.request_id).await?)?;
    let verified = verify_approvals(
        usize::from(key.threshold),
        &signed_request(&row)?,
        &approvals,
        &admin_keys(&admins),
    )
    .map_err(|e| ApiError::conflict(format!("not authorised: {e}")))?;
    let now = state.clock.now();
    let details = Details::new()
        .text(DetailKey::RequestId, row.request_id.as_str())?
        .int(
            DetailKey::Count,
            i64::try_from(verified.approvers.len()).unwrap_or(i64::MAX),
        )?
        .int(DetailKey::Threshold, i64::from(key.threshold))?;
    let entry = AuditEntry::new(now, admin_actor(&auth.0)?, Action::RecoveryCompleted)
        .target(row.email.as_str())
        .details(details);
    let audit = |done: &bool| Ok(if *done { vec![entry.clone()] } else { vec![] });
    if !state
        .store
        .complete_recovery(
            &row.request_id,
            upload.package.as_bytes(),
            &auth.0.name,
            now,
            &audit,
        )
        .await?
    {
        return Err(ApiError::conflict("the request is no longer pending"));
    }
    Ok(StatusCode::NO_CONTENT)
}
