//! Health, metrics and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use kluis_types::Health;

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

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
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
