//! Colleague directory: prefix search by e-mail or display name.

use axum::Json;
use axum::extract::State;
use kluis_types::{DirectoryEntry, DirectoryResponse, UserStatus};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{ApiQuery, Bearer};
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
    Bearer(token): Bearer,
    query: Result<ApiQuery<DirectoryQuery>, ApiError>,
) -> Result<Json<DirectoryResponse>, ApiError> {
    let now = state.clock.now();
    let prefix = query.and_then(|ApiQuery(query)| {
        let prefix = query.q.trim().to_lowercase();
        let chars = prefix.chars().count();
        if chars == 0 || chars > 254 || prefix.chars().any(char::is_control) {
            return Err(ApiError::bad_request(
                "q must be 1 to 254 printable characters",
            ));
        }
        Ok(prefix)
    });
    let prefix = match prefix {
        Ok(p) => p,
        Err(bad_query) => {
            // As on every other route, a dead session is the first complaint.
            state
                .store
                .session_by_token_hash(&token, now)
                .await?
                .ok_or_else(ApiError::unauthorized)?;
            return Err(bad_query);
        }
    };
    // The session is checked on every call: from the store's lookup cache,
    // which no revocation or disabled account outlives (store/cache.rs), or
    // in the search's own statement.
    let rows = state
        .store
        .search_directory(&token, now, &prefix, state.settings.directory_limit)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
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
