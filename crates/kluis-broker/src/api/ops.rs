//! Health, metrics and the OpenAPI document.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::response::IntoResponse;
use kluis_types::Health;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::recovery::AdminAuthed;
use super::{ApiError, AppState};

/// Liveness and database reachability.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "healthy", body = Health),
              (status = 503, description = "database unreachable", body = kluis_types::ErrorBody)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    match state.store.ping().await {
        Ok(()) => Ok(Json(Health {
            status: "ok".to_owned(),
        })),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                kluis_types::ErrorCode::Internal,
                "database unreachable",
            ))
        }
    }
}

/// A request that may read `/metrics`: its bearer token is the configured
/// metrics token (`metrics_token_file`, compared in constant time as
/// SHA-256 digests) or a live admin token.
pub struct MetricsReader;

impl FromRequestParts<AppState> for MetricsReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let refused = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                kluis_types::ErrorCode::Unauthorized,
                "/metrics needs the metrics token or an admin token (Authorization: Bearer …)",
            )
        };
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|t| t.strip_prefix("Bearer "))
            .ok_or_else(refused)?;
        if let Some(want) = &state.settings.metrics_token_hash {
            let got: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
            if bool::from(got.ct_eq(want)) {
                return Ok(Self);
            }
        }
        match AdminAuthed::from_request_parts(parts, state).await {
            Ok(_) => Ok(Self),
            Err(e) if e.status() == StatusCode::UNAUTHORIZED => Err(refused()),
            Err(e) => Err(e),
        }
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "ops", security(("metrics" = []), ("admin" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
              (status = 401, description = "no metrics or admin token", body = kluis_types::ErrorBody)))]
pub async fn metrics(_reader: MetricsReader, State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render() + &cache_metrics(state.store.lookup_cache()),
    )
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "ops",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], state.openapi.clone())
}

fn cache_metrics(cache: &crate::store::LookupCache) -> String {
    let (hits, misses) = cache.counts();
    format!(
        "# HELP kluis_lookup_cache_hits_total Session and directory lookups answered from memory.\n\
         # TYPE kluis_lookup_cache_hits_total counter\nkluis_lookup_cache_hits_total {hits}\n\
         # HELP kluis_lookup_cache_misses_total Lookups the cache sent to the database while it was on.\n\
         # TYPE kluis_lookup_cache_misses_total counter\nkluis_lookup_cache_misses_total {misses}\n\
         # HELP kluis_lookup_cache_enabled 1 while changes by other instances are being followed (cache on), else 0.\n\
         # TYPE kluis_lookup_cache_enabled gauge\nkluis_lookup_cache_enabled {}\n",
        u8::from(cache.enabled())
    )
}
