//! Groups (docs/SHARING.md): list, create, add and remove members, rotate
//! the key, leave, grant or revoke the administrator role, and fetch the
//! encrypted group secret and its older versions. The broker never sees a
//! group's secret key: it stores the blob clients encrypted to the members.
//!
//! Only group administrators change membership, administrators and keys
//! (the creator is the first); any member may leave; a group keeps at
//! least one administrator (issue 18.4). Every change that carries a
//! secret names the key version it was made from, appends a new secret
//! version (none is overwritten), and every change is audited in its own
//! transaction.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kluis_audit::{Action, Actor, AuditEntry, AuditError, DetailKey, Details};
use kluis_types::{
    AddGroupMemberRequest, CreateGroupRequest, Email, GroupInfo, GroupListResponse, GroupName,
    GroupSecretResponse, GroupSecretVersionInfo, GroupSecretVersionsResponse,
    RemoveGroupMemberRequest, RotateGroupKeyRequest, SetGroupAdminRequest, UserId,
};

use super::extract::{ApiJson, ApiPath, Authed};
use super::{ApiError, AppState};
use crate::store::{
    GroupChange, GroupChangeKind, GroupOutcome, GroupSecretRow, NewGroup, StoreError,
};

/// A stale key version is the group's, not the escrow's.
fn group_error(e: StoreError) -> ApiError {
    match e {
        StoreError::VersionConflict => ApiError::conflict(
            "the group changed meanwhile (stale key or secret version); reload it and retry",
        ),
        other => other.into(),
    }
}

/// Largest accepted encrypted group secret (a Kluis file to up to 256
/// members holding up to 64 key versions).
const MAX_SECRET: usize = 1 << 20;

fn check_secret(len: usize) -> Result<(), ApiError> {
    if len == 0 || len > MAX_SECRET {
        return Err(ApiError::bad_request("secret must be 1 byte to 1 MiB"));
    }
    Ok(())
}

/// Every group with its members, administrators and certificate. Clients
/// verify the certificate before using a group key.
#[utoipa::path(get, path = "/v1/groups", tag = "groups", security(("bearer" = [])),
    responses((status = 200, body = GroupListResponse), (status = 401, body = kluis_types::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _auth: Authed,
) -> Result<Json<GroupListResponse>, ApiError> {
    let groups = state
        .store
        .list_groups()
        .await?
        .into_iter()
        .map(|g| GroupInfo {
            fingerprint: g.public_key.fingerprint(),
            name: g.name,
            public_key: g.public_key,
            key_version: g.key_version,
            certificate: g.certificate,
            members: g.members,
            admins: g.admins,
            rotation_due: g.rotation_due,
        })
        .collect();
    Ok(Json(GroupListResponse { groups }))
}

/// The caller's address for the audit log.
async fn actor_of(state: &AppState, auth: &Authed) -> Result<Actor, ApiError> {
    let user = state
        .store
        .user_by_id(&auth.user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    Ok(Actor::user(user.email.as_str())?)
}

/// The audit row of a group change: the group as target, the member it
/// names, the key version after it and the secret version it appended.
fn group_entry(
    now: i64,
    actor: &Actor,
    action: Action,
    name: &GroupName,
    member: Option<&Email>,
    outcome: &GroupOutcome,
) -> Result<AuditEntry, AuditError> {
    let mut details = Details::new().int(DetailKey::KeyVersion, outcome.key_version)?;
    if let Some(m) = member {
        details = details.text(DetailKey::Recipient, m.as_str())?;
    }
    if let Some(v) = outcome.secret_version {
        details = details.int(DetailKey::SecretVersion, v)?;
    }
    Ok(AuditEntry::new(now, actor.clone(), action)
        .target(name.as_str())
        .details(details))
}

/// Create a group; the caller is its first member and administrator.
#[utoipa::path(post, path = "/v1/groups", tag = "groups", security(("bearer" = [])),
    request_body = CreateGroupRequest,
    responses((status = 201), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 409, body = kluis_types::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authed,
    ApiJson(req): ApiJson<CreateGroupRequest>,
) -> Result<StatusCode, ApiError> {
    check_secret(req.secret.len())?;
    let actor = actor_of(&state, &auth).await?;
    let now = state.clock.now();
    let entry = AuditEntry::new(now, actor, Action::GroupCreated)
        .target(req.name.as_str())
        .details(
            Details::new()
                .int(DetailKey::KeyVersion, 1)?
                .int(DetailKey::SecretVersion, 1)?
                .text(
                    DetailKey::Fingerprint,
                    req.public_key.fingerprint().as_str(),
                )?,
        );
    state
        .store
        .create_group(
            &NewGroup {
                name: req.name,
                public_key: req.public_key,
                secret: req.secret,
                created_by: auth.user_id,
                now,
            },
            &|_: &()| Ok(vec![entry.clone()]),
        )
        .await?;
    Ok(StatusCode::CREATED)
}

fn secret_response(row: GroupSecretRow) -> GroupSecretResponse {
    GroupSecretResponse {
        key_version: row.key_version,
        secret: row.secret,
        secret_version: row.secret_version,
    }
}

/// The latest encrypted group secret (members only).
#[utoipa::path(get, path = "/v1/groups/{name}/secret", tag = "groups", security(("bearer" = [])),
    params(("name" = GroupName, Path, description = "group name")),
    responses((status = 200, body = GroupSecretResponse), (status = 401, body = kluis_types::ErrorBody),
              (status = 404, body = kluis_types::ErrorBody)))]
pub async fn secret(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(name): ApiPath<GroupName>,
) -> Result<Json<GroupSecretResponse>, ApiError> {
    let row = state
        .store
        .group_secret(&name, &auth.user_id, None)
        .await?
        .ok_or_else(|| ApiError::not_found("no such group, or you are not a member"))?;
    Ok(Json(secret_response(row)))
}

/// Every version of the group secret, oldest first, without the secrets
/// (members only).
#[utoipa::path(get, path = "/v1/groups/{name}/secrets", tag = "groups", security(("bearer" = [])),
    params(("name" = GroupName, Path, description = "group name")),
    responses((status = 200, body = GroupSecretVersionsResponse), (status = 401, body = kluis_types::ErrorBody),
              (status = 404, body = kluis_types::ErrorBody)))]
pub async fn secret_versions(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(name): ApiPath<GroupName>,
) -> Result<Json<GroupSecretVersionsResponse>, ApiError> {
    let rows = state
        .store
        .group_secret_versions(&name, &auth.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such group, or you are not a member"))?;
    let versions = rows
        .into_iter()
        .map(|r| GroupSecretVersionInfo {
            secret_version: r.secret_version,
            key_version: r.key_version,
            public_key: r.public_key,
            created_at: r.created_at,
            created_by: r.created_by,
        })
        .collect();
    Ok(Json(GroupSecretVersionsResponse { versions }))
}

/// One version of the group secret (members only), e.g. to recover keys
/// when a newer version does not open.
#[utoipa::path(get, path = "/v1/groups/{name}/secrets/{version}", tag = "groups", security(("bearer" = [])),
    params(("name" = GroupName, Path, description = "group name"),
           ("version" = i64, Path, description = "secret version")),
    responses((status = 200, body = GroupSecretResponse), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 404, body = kluis_types::ErrorBody)))]
pub async fn secret_version(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath((name, version)): ApiPath<(GroupName, i64)>,
) -> Result<Json<GroupSecretResponse>, ApiError> {
    let row = state
        .store
        .group_secret(&name, &auth.user_id, Some(version))
        .await?
        .ok_or_else(|| ApiError::not_found("no such group or version, or you are not a member"))?;
    Ok(Json(secret_response(row)))
}

async fn user_id_of(state: &AppState, email: &Email) -> Result<UserId, ApiError> {
    Ok(state
        .store
        .user_by_email(email)
        .await?
        .ok_or_else(|| ApiError::not_found("no user with that e-mail"))?
        .user_id)
}

/// The audit action of a change.
fn action_of(kind: &GroupChangeKind<'_>) -> Action {
    match kind {
        GroupChangeKind::Add { .. } => Action::GroupMemberAdded,
        GroupChangeKind::Remove { .. } => Action::GroupMemberRemoved,
        GroupChangeKind::Rotate { .. } => Action::GroupKeyRotated,
        GroupChangeKind::Leave => Action::GroupMemberLeft,
        GroupChangeKind::SetAdmin { admin: true, .. } => Action::GroupAdminGranted,
        GroupChangeKind::SetAdmin { admin: false, .. } => Action::GroupAdminRevoked,
    }
}

/// Applies a change and writes its audit row (naming `member`) in the
/// same transaction.
async fn apply(
    state: &AppState,
    auth: &Authed,
    name: &GroupName,
    expected_version: i64,
    kind: GroupChangeKind<'_>,
    member: Option<&Email>,
) -> Result<StatusCode, ApiError> {
    let action = action_of(&kind);
    let actor = actor_of(state, auth).await?;
    let now = state.clock.now();
    let audit = |o: &GroupOutcome| Ok(vec![group_entry(now, &actor, action, name, member, o)?]);
    state
        .store
        .change_group(
            &GroupChange {
                name,
                actor: &auth.user_id,
                expected_version,
                kind,
                now,
            },
            &audit,
        )
        .await
        .map_err(group_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a member (group administrators). The secret is re-encrypted by the
/// caller to every member including the new one; no file is touched.
#[utoipa::path(post, path = "/v1/groups/{name}/members", tag = "groups", security(("bearer" = [])),
    params(("name" = GroupName, Path, description = "group name")),
    request_body = AddGroupMemberRequest,
    responses((status = 204), (status = 400, body = kluis_types::ErrorBody), (status = 401, body = kluis_types::ErrorBody),
              (status = 403, body = kluis_types::ErrorBody), (status = 404, body = kluis_types::ErrorBody),
              (status = 409, body = kluis_types::ErrorBody), (status = 422, body = kluis_types::ErrorBody)))]
pub async fn add_member(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(name): ApiPath<GroupName>,
    ApiJson(req): ApiJson<AddGroupMemberRequest>,
) -> Result<StatusCode, ApiError> {
    check_secret(req.secret.len())?;
    // The organisation policy, where the broker can see a violation: an
    // address outside the organisation's domains while external sharing
    // is off. The refusal names the rule.
    let (_, policy) = super::policy::current(&state).await?;
    if let Err(v) = policy.check_share(None, &req.email, &[name.to_string()]) {
        let rule = if v.rule == "external_sharing" {
            "external_sharing"
        } else {
            "recipients"
        };
        return Err(ApiError::policy(rule, v.detail));
    }
    let member = user_id_of(&state, &req.email).await?;
    let kind = GroupChangeKind::Add {
        member: &member,
        secret: &req.secret,
        expected_secret: req.secret_version,
    };
    let member = Some(&req.email);
    apply(&state, &auth, &name, req.key_version, kind, member).await
}

/// Remove another member and rotate the group key (group administrators):
/// the new public key and a secret encrypted to the remaining members
/// only. The new key needs a new org certificate before clients use it.
/// To leave a group yourself, use `…/leave`.
#[utoipa::path(post, path = "/v1/groups/{name}/remove", tag = "groups", security(("bearer" = [])),
    params(("name" = GroupName, Path, description = "group name")),
    request_body = RemoveGroupMemberRequest,
    responses((status = 204), (status = 400, body = kluis_types::ErrorBody), (status = 401, body = kluis_types::ErrorBody),
              (status = 403, body = kluis_types::ErrorBody), (status = 404, body = kluis_types::ErrorBody),
              (status = 409, body = kluis_types::ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(name): ApiPath<GroupName>,
    ApiJson(req): ApiJson<RemoveGroupMemberRequest>,
) -> Result<StatusCode, ApiError> {
    check_secret(req.secret.len())?;
    let member = user_id_of(&state, &req.email).await?;
    if member == auth.user_id {
        // The remover generates the new key, so a member removing
        // themselves would leave knowing it.
        return Err(ApiError::bad_request(
            "you cannot remove yourself: leave the group with POST /v1/groups/{name}/leave",
        ));
    }
    let kind = GroupChangeKind::Remove {
        member: &member,
        new_key: &req.public_key,
        secret: &req.secret,
    };
    let member = Some(&req.email);
    apply(&state, &auth, &name, req.key_version, kind, member).await
}

/// Rotate the group key without a membership change (group
/// administrators), e.g. after a member left.
#[utoipa::path(post, path = "/v1/groups/{name}/rotate", tag = "groups", security(("bearer" = [])),
    params(("name" = GroupName, Path, description = "group name")),
    request_body = RotateGroupKeyRequest,
    responses((status = 204), (status = 400, body = kluis_types::ErrorBody), (status = 401, body = kluis_types::ErrorBody),
              (status = 403, body = kluis_types::ErrorBody), (status = 409, body = kluis_types::ErrorBody)))]
pub async fn rotate(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(name): ApiPath<GroupName>,
    ApiJson(req): ApiJson<RotateGroupKeyRequest>,
) -> Result<StatusCode, ApiError> {
    check_secret(req.secret.len())?;
    let kind = GroupChangeKind::Rotate {
        new_key: &req.public_key,
        secret: &req.secret,
    };
    apply(&state, &auth, &name, req.key_version, kind, None).await
}

/// Leave a group (any member). The key is not rotated — the leaver would
/// know the new one — so the group is marked `rotation_due` until an
/// administrator rotates it. The last administrator cannot leave.
#[utoipa::path(post, path = "/v1/groups/{name}/leave", tag = "groups", security(("bearer" = [])),
    params(("name" = GroupName, Path, description = "group name")),
    responses((status = 204), (status = 401, body = kluis_types::ErrorBody),
              (status = 403, body = kluis_types::ErrorBody), (status = 409, body = kluis_types::ErrorBody)))]
pub async fn leave(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(name): ApiPath<GroupName>,
) -> Result<StatusCode, ApiError> {
    let kind = GroupChangeKind::Leave;
    apply(&state, &auth, &name, 0, kind, None).await
}

/// Grant or revoke a member's administrator role (group administrators).
/// A group always keeps at least one administrator.
#[utoipa::path(post, path = "/v1/groups/{name}/admins", tag = "groups", security(("bearer" = [])),
    params(("name" = GroupName, Path, description = "group name")),
    request_body = SetGroupAdminRequest,
    responses((status = 204), (status = 400, body = kluis_types::ErrorBody), (status = 401, body = kluis_types::ErrorBody),
              (status = 403, body = kluis_types::ErrorBody), (status = 404, body = kluis_types::ErrorBody),
              (status = 409, body = kluis_types::ErrorBody)))]
pub async fn set_admin(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(name): ApiPath<GroupName>,
    ApiJson(req): ApiJson<SetGroupAdminRequest>,
) -> Result<StatusCode, ApiError> {
    let member = user_id_of(&state, &req.email).await?;
    let kind = GroupChangeKind::SetAdmin {
        member: &member,
        admin: req.admin,
    };
    apply(&state, &auth, &name, 0, kind, Some(&req.email)).await
}
