//! Colleague directory: prefix search by e-mail or display name.

use axum::Json;
use axum::extract::State;
use kluis_types::{DirectoryEntry, DirectoryResponse, UserStatus};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{ApiQuery, Authed};
use super::{ApiError, AppState};

/// Query string of `GET /v1/directory`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DirectoryQuery {
    /// Prefix of an e-mail address or display name (case-insensitive), 1 to 254 characters.
    pub q: String,
}

/// Prefix search. Results carry the org certificate; clients must verify it.
#[utoipa::path(get, path = "/v1/directory", tag = "directory", security(("bearer" = [])),
    params(DirectoryQuery),
    responses((status = 200, body = DirectoryResponse), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    _auth: Authed,
    ApiQuery(query): ApiQuery<DirectoryQuery>,
) -> Result<Json<DirectoryResponse>, ApiError> {
    let prefix = query.q.trim().to_lowercase();
    let chars = prefix.chars().count();
    if chars == 0 || chars > 254 || prefix.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "q must be 1 to 254 printable characters",
        ));
    }
    let rows = state
        .store
        .search_directory(&prefix, state.settings.directory_limit)
        .await?;
    Ok(Json(DirectoryResponse {
        entries: rows
            .into_iter()
            .map(|u| DirectoryEntry {
                fingerprint: u.public_key.fingerprint(),
                user_id: u.user_id,
                email: u.email,
                display_name: u.display_name,
                public_key: u.public_key,
                certificate: u.certificate,
                status: if u.disabled_at.is_some() {
                    UserStatus::Revoked
                } else {
                    UserStatus::Active
                },
            })
            .collect(),
    }))
}
