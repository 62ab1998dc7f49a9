//! Groups (docs/SHARING.md): list, create, add and remove members, fetch the
//! encrypted group secret. The broker never sees a group's secret key: it
//! stores the blob clients encrypted to the members. Only members change a
//! group, and every change names the key version it was made from, so two
//! concurrent changes cannot silently drop a member from the secret.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use kluis_types::{
    AddGroupMemberRequest, CreateGroupRequest, GroupInfo, GroupListResponse, GroupName,
    GroupSecretResponse, RemoveGroupMemberRequest,
};

use super::extract::{ApiJson, ApiPath, Authed};
use super::{ApiError, AppState};
use crate::store::{MemberChange, NewGroup, StoreError};

/// A stale key version is the group's, not the escrow's.
fn group_error(e: StoreError) -> ApiError {
    match e {
        StoreError::VersionConflict => ApiError::conflict(
            "the group changed meanwhile (stale key version); reload it and retry",
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

/// Every group with its members and certificate. Clients verify the
/// certificate before using a group key.
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
        })
        .collect();
    Ok(Json(GroupListResponse { groups }))
}

/// Create a group; the caller is its first member.
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
    state
        .store
        .create_group(&NewGroup {
            name: req.name,
            public_key: req.public_key,
            secret: req.secret,
            created_by: auth.user_id,
            now: state.clock.now(),
        })
        .await?;
    Ok(StatusCode::CREATED)
}

/// The encrypted group secret (members only).
#[utoipa::path(get, path = "/v1/groups/{name}/secret", tag = "groups", security(("bearer" = [])),
    params(("name" = GroupName, Path, description = "group name")),
    responses((status = 200, body = GroupSecretResponse), (status = 401, body = kluis_types::ErrorBody),
              (status = 404, body = kluis_types::ErrorBody)))]
pub async fn secret(
    State(state): State<AppState>,
    auth: Authed,
    ApiPath(name): ApiPath<GroupName>,
) -> Result<Json<GroupSecretResponse>, ApiError> {
    let (key_version, secret) = state
        .store
        .group_secret(&name, &auth.user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such group, or you are not a member"))?;
    Ok(Json(GroupSecretResponse {
        key_version,
        secret,
    }))
}

async fn user_id_of(
    state: &AppState,
    email: &kluis_types::Email,
) -> Result<kluis_types::UserId, ApiError> {
    Ok(state
        .store
        .user_by_email(email)
        .await?
        .ok_or_else(|| ApiError::not_found("no user with that e-mail"))?
        .user_id)
}

/// Add a member. The secret is re-encrypted by the caller to every member
/// including the new one; no file is touched.
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
    state
        .store
        .add_group_member(&MemberChange {
            name: &name,
            actor: &auth.user_id,
            member: &member,
            secret: &req.secret,
            expected_version: req.key_version,
            new_key: None,
            now: state.clock.now(),
        })
        .await
        .map_err(group_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Remove a member and rotate the group key: the new public key and a
/// secret encrypted to the remaining members only. The new key needs a new
/// org certificate before clients use it.
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
    state
        .store
        .remove_group_member(&MemberChange {
            name: &name,
            actor: &auth.user_id,
            member: &member,
            secret: &req.secret,
            expected_version: req.key_version,
            new_key: Some(&req.public_key),
            now: state.clock.now(),
        })
        .await
        .map_err(group_error)?;
    Ok(StatusCode::NO_CONTENT)
}
