//! Audit entries written by the API: failed-login alerts and the share
//! records clients send (`POST /v1/audit/shares`, at most
//! [`super::SHARE_ROWS_BURST`] at once and [`super::SHARE_ROWS_PER_HOUR`]
//! per hour per user: `audit_limit.rs`).
//!
//! Failed logins: with OPAQUE a wrong password is detected by the client,
//! which then never sends the second message, so the broker counts login
//! starts of an account that no successful login followed. Past
//! [`FAILURE_THRESHOLD`] within [`FAILURE_WINDOW_SECS`] it writes one
//! `login.failures_exceeded` entry. Counters are per broker instance.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::StatusCode;
use kluis_audit::{Action, Actor, AuditEntry, DetailKey, Details};
use kluis_types::{Label, ShareAuditRequest, ShareEvent, UserId};

use super::extract::{ApiJson, Authed};
use super::{ApiError, AppState};

/// Failed logins of one account within [`FAILURE_WINDOW_SECS`] that raise
/// a `login.failures_exceeded` audit entry (once per window).
pub const FAILURE_THRESHOLD: u32 = 5;
/// The window for [`FAILURE_THRESHOLD`].
pub const FAILURE_WINDOW_SECS: i64 = 900;

/// Per-instance failed-login counters (like the rate limiters).
#[derive(Debug, Default)]
pub struct FailureCounter(Mutex<HashMap<UserId, (u32, i64)>>);

impl FailureCounter {
    /// Forgets the failures of an account after a successful login.
    pub(crate) fn clear(&self, user: &UserId) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(user);
    }

    /// Counts one failure; returns the count when it goes past the
    /// threshold (once per window).
    fn hit(&self, user: &UserId, now: i64) -> Option<u32> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, start)| now - *start < FAILURE_WINDOW_SECS);
        }
        let entry = map.entry(user.clone()).or_insert((0, now));
        if now - entry.1 >= FAILURE_WINDOW_SECS {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
        // The first `FAILURE_THRESHOLD` starts may all be honest logins in
        // flight; one more unfinished start is past the threshold.
        (entry.0 == FAILURE_THRESHOLD + 1).then_some(FAILURE_THRESHOLD)
    }
}

/// Counts an unfinished login of a known account; writes the audit entry
/// when the threshold is passed.
pub(crate) async fn login_failed(
    state: &AppState,
    user_id: &UserId,
    now: i64,
) -> Result<(), ApiError> {
    let Some(count) = state.login_failures.hit(user_id, now) else {
        return Ok(());
    };
    let Some(user) = state.store.user_by_id(user_id).await? else {
        return Ok(());
    };
    let details = Details::new()
        .int(DetailKey::Count, i64::from(count))?
        .int(DetailKey::Threshold, i64::from(FAILURE_THRESHOLD))?;
    state
        .audit(
            AuditEntry::new(now, Actor::System, Action::LoginFailuresExceeded)
                .target(user.email.as_str())
                .details(details),
        )
        .await?;
    Ok(())
}

/// Records that the caller shared (or stopped sharing) something. Names
/// only: the entry holds the recipient, a folder name and the label.
#[utoipa::path(post, path = "/v1/audit/shares", tag = "audit", security(("bearer" = [])),
    request_body = ShareAuditRequest,
    responses((status = 204, description = "recorded"), (status = 400, body = kluis_types::ErrorBody),
              (status = 401, body = kluis_types::ErrorBody), (status = 413, body = kluis_types::ErrorBody),
              (status = 415, body = kluis_types::ErrorBody), (status = 422, body = kluis_types::ErrorBody),
              (status = 429, body = kluis_types::ErrorBody)))]
pub async fn record_share(
    State(state): State<AppState>,
    auth: Authed,
    ApiJson(req): ApiJson<ShareAuditRequest>,
) -> Result<StatusCode, ApiError> {
    let user = state
        .store
        .user_by_id(&auth.user_id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let bad = |_| ApiError::bad_request("recipient, folder and label must be short plain text");
    let mut details = Details::new()
        .text(DetailKey::Recipient, &req.recipient)
        .map_err(bad)?
        .text(DetailKey::Folder, &req.folder)
        .map_err(bad)?;
    if let Some(label) = &req.label {
        let label = Label::parse(label).map_err(|_| ApiError::bad_request("unknown label"))?;
        details = details
            .text(DetailKey::Label, label.as_str())
            .map_err(bad)?;
    }
    if req.recipient.is_empty() || req.folder.is_empty() {
        return Err(ApiError::bad_request(
            "recipient and folder must not be empty",
        ));
    }
    let action = match req.event {
        ShareEvent::Granted => Action::ShareGranted,
        ShareEvent::Revoked => Action::ShareRevoked,
    };
    // Last, so a malformed row costs nothing: the per-user budget of
    // reported rows (`audit_limit`), 429 beyond it and nothing written.
    if !state
        .share_audit_limit
        .take(&auth.user_id, state.clock.now())
    {
        crate::metrics::Metrics::inc(&state.metrics.rate_limited);
        return Err(ApiError::rate_limited());
    }
    state
        .audit(
            AuditEntry::new(state.clock.now(), Actor::user(user.email.as_str())?, action)
                .target(&req.recipient)
                .details(details),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
