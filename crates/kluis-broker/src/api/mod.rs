//! The HTTP API: router, shared state, middleware and the OpenAPI document.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use rand::RngCore as _;
use rand::rngs::OsRng;

use crate::clock::Clock;
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::opaque::OprfSeed;
use crate::ratelimit::RateLimiter;
use crate::ratelimit::account::LoginPolicy;
use crate::store::Store;

mod account;
mod audit;
mod audit_limit;
mod directory;
mod error;
mod escrow;
mod extract;
mod groups;
mod opaque;
mod openapi;
mod ops;
mod policy;
mod reauth;
mod recovery;
mod recovery_cancel;
mod throttle;

pub use audit::{FAILURE_THRESHOLD, FAILURE_WINDOW_SECS};
pub use audit_limit::{SHARE_ROWS_BURST, SHARE_ROWS_PER_HOUR};
pub use error::ApiError;
pub use extract::{RECENT_LOGIN_SECS, client_ip, token_hash};
pub use openapi::openapi_json;

/// Per-purpose rate limiters (issue 18.2: see `throttle.rs`).
#[derive(Debug)]
pub struct Limiters {
    login_ip: RateLimiter<std::net::IpAddr>,
    login_account: LoginPolicy,
    register_ip: RateLimiter<std::net::IpAddr>,
    register_account: RateLimiter<[u8; 32]>,
    last_prune: std::sync::atomic::AtomicI64,
}

/// Everything a handler can reach.
pub struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) seed: OprfSeed,
    pub(crate) settings: Settings,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Metrics,
    pub(crate) limits: Limiters,
    pub(crate) login_failures: audit::FailureCounter,
    pub(crate) share_audit_limit: audit_limit::ShareAuditLimiter,
    pub(crate) openapi: String,
}

/// Shared, cheaply cloned handler state.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Bundles the parts of a running broker.
    pub fn new(
        store: Arc<dyn Store>,
        seed: OprfSeed,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let l = settings.limits;
        Self(Arc::new(Inner {
            store,
            seed,
            clock,
            metrics: Metrics::default(),
            limits: Limiters {
                login_ip: RateLimiter::new(l.login_per_ip, l.limiter_capacity),
                login_account: LoginPolicy::new(l.login_per_account, l.login_backoff),
                register_ip: RateLimiter::new(l.register_per_ip, l.limiter_capacity),
                register_account: RateLimiter::new(l.register_per_account, l.limiter_capacity),
                last_prune: std::sync::atomic::AtomicI64::new(i64::MIN),
            },
            login_failures: audit::FailureCounter::default(),
            share_audit_limit: audit_limit::ShareAuditLimiter::default(),
            openapi: openapi_json(),
            settings,
        }))
    }

    /// The store (admin commands use it directly).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Appends an audit entry; a failure fails the request (an action that
    /// cannot be recorded is not done silently).
    pub(crate) async fn audit(
        &self,
        entry: kluis_audit::AuditEntry,
    ) -> Result<kluis_audit::AuditRow, ApiError> {
        Ok(crate::store::append_audit(self.store.as_ref(), entry).await?)
    }

    /// Runs `checks` in order and stops at the first refusal: a later
    /// (narrower, e.g. per-account) limit is charged only for attempts that
    /// every earlier (per-network) one let through (issue 18.2).
    fn check_limits(&self, checks: &[&dyn Fn(i64) -> bool]) -> Result<(), ApiError> {
        let now = self.clock.now();
        if checks.iter().all(|check| check(now)) {
            Ok(())
        } else {
            Metrics::inc(&self.metrics.rate_limited);
            Err(ApiError::rate_limited())
        }
    }
}

pub(crate) fn random_16() -> [u8; 16] {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b
}

pub(crate) fn random_32() -> [u8; 32] {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    b
}

/// Counts and logs each request. Logs method, route template, status and
/// latency — never headers, bodies or query strings.
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state.metrics.record(&method, &route, status);
    tracing::info!(
        method,
        route,
        status,
        micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

async fn not_found() -> Response {
    ApiError::not_found("no such route").into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        kluis_types::ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
    .into_response()
}

/// The complete router.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.limits.body_bytes;
    // The small routes that need no session get a smaller body limit
    // (`[http] pre_auth_body_bytes`): anyone can reach them.
    // register/finish carries the sealed identity and keeps `body_bytes`.
    let pre_auth = DefaultBodyLimit::max(state.settings.http.pre_auth_body_bytes);
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route(
            "/v1/register/start",
            post(account::register_start).layer(pre_auth),
        )
        .route("/v1/register/finish", post(account::register_finish))
        .route(
            "/v1/login/start",
            post(account::login_start).layer(pre_auth),
        )
        .route(
            "/v1/login/finish",
            post(account::login_finish).layer(pre_auth),
        )
        .route("/v1/session", get(account::whoami).delete(account::logout))
        .route("/v1/users/{user_id}/sessions", get(account::list_sessions))
        .route(
            "/v1/users/{user_id}/sessions/{session_id}",
            delete(account::revoke_session),
        )
        .route(
            "/v1/users/{user_id}/password/start",
            post(account::password_start),
        )
        .route(
            "/v1/users/{user_id}/password/finish",
            post(account::password_finish),
        )
        .route("/v1/users/{user_id}/escrow", get(escrow::latest))
        .route(
            "/v1/users/{user_id}/escrow/rollback",
            post(escrow::rollback),
        )
        .route("/v1/users/{user_id}/escrow/versions", get(escrow::versions))
        .route(
            "/v1/users/{user_id}/escrow/versions/{version}",
            get(escrow::version),
        )
        .route("/v1/directory", get(directory::search))
        .route("/v1/policy", get(policy::get_policy))
        .route("/v1/recovery/key", get(policy::get_recovery_key))
        .route("/v1/audit/shares", post(audit::record_share))
        .route(
            "/v1/recovery/requests",
            post(recovery::start).layer(pre_auth),
        )
        .route("/v1/recovery/requests/{request_id}", get(recovery::status))
        .route(
            "/v1/recovery/requests/{request_id}/password/start",
            post(recovery::password_start),
        )
        .route(
            "/v1/recovery/requests/{request_id}/password/finish",
            post(recovery::password_finish),
        )
        .route(
            "/v1/recovery/requests/{request_id}/cancel",
            post(recovery_cancel::by_requester),
        )
        .route(
            "/v1/users/{user_id}/recovery/cancel",
            post(recovery_cancel::by_owner),
        )
        .route(
            "/v1/admin/recovery/requests/{request_id}/cancel",
            post(recovery_cancel::by_admin),
        )
        .route("/v1/admin/whoami", get(recovery::admin_whoami))
        .route("/v1/admin/admins", get(recovery::admin_list))
        .route("/v1/admin/recovery/key", put(recovery::publish_key))
        .route("/v1/admin/recovery/requests", get(recovery::open_requests))
        .route(
            "/v1/admin/recovery/requests/{request_id}",
            get(recovery::case),
        )
        .route(
            "/v1/admin/recovery/requests/{request_id}/approvals",
            post(recovery::approve),
        )
        .route(
            "/v1/admin/recovery/requests/{request_id}/package",
            post(recovery::upload_package),
        )
        .route("/v1/groups", get(groups::list).post(groups::create))
        .route("/v1/groups/{name}/secret", get(groups::secret))
        .route("/v1/groups/{name}/members", post(groups::add_member))
        .route("/v1/groups/{name}/remove", post(groups::remove_member))
        .route("/v1/groups/{name}/rotate", post(groups::rotate))
        .route("/v1/groups/{name}/leave", post(groups::leave))
        .route("/v1/groups/{name}/admins", post(groups::set_admin))
        .route("/v1/groups/{name}/secrets", get(groups::secret_versions))
        .route(
            "/v1/groups/{name}/secrets/{version}",
            get(groups::secret_version),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}
