//! Fresh OPAQUE authentication inside a change request (issue 18.3).
//!
//! A session token proves that someone logged in once, up to 30 days ago;
//! whoever steals it must not be able to change what protects the account
//! (the OPAQUE record, the escrow). So such a change carries a
//! [`ReauthProof`]: the finalization of a login the client started moments
//! before with the current password (`POST /v1/login/start`) and finished
//! locally. It is verified here, in the change request itself:
//!
//! * the login attempt is *taken* from the store, so a proof works once;
//! * the attempt expires with the login timeout (`login_ttl_secs`, 120 s);
//! * it must belong to the session's own user (an attempt for an unknown
//!   address, or for someone else, is refused);
//! * the OPAQUE key confirmation must verify — only someone who knows the
//!   password can compute it.
//!
//! Every refusal looks the same (403 `reauth_failed`).

use axum::http::StatusCode;
use kluis_types::{ErrorCode, ReauthProof};

use super::extract::{Authed, PeerIp};
use super::{ApiError, AppState};
use crate::metrics::Metrics;

fn refused() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::ReauthFailed,
        "prove the current password again: the re-authentication is missing, wrong, expired or already used",
    )
}

/// Verifies and consumes `proof` for the session `auth`.
pub(crate) async fn verify(
    state: &AppState,
    auth: &Authed,
    ip: PeerIp,
    proof: &ReauthProof,
) -> Result<(), ApiError> {
    let failed = || {
        Metrics::inc(&state.metrics.logins_failed);
        tracing::warn!(user_id = %auth.user_id, session_id = %auth.session_id, "re-authentication refused");
        refused()
    };
    let finalization = super::opaque::login_finalization(&proof.credential_finalization)?;
    let (user_id, server_state) = state
        .store
        .take_login_attempt(&proof.login_id, state.clock.now())
        .await?
        .ok_or_else(failed)?;
    // User ids are not secret: an ordinary comparison is fine here. The
    // secret part, the key confirmation, is checked by opaque-ke in
    // constant time.
    if user_id.as_ref() != Some(&auth.user_id) {
        return Err(failed());
    }
    // The stored server state holds the key-exchange secrets of this login.
    let server_state = zeroize::Zeroizing::new(server_state);
    if !super::opaque::finish_login(&server_state, finalization)? {
        return Err(failed());
    }
    // A completed proof is a successful login for the failure counter
    // and for its network's backoff (issue 18.2).
    state.login_failures.clear(&auth.user_id);
    if let Some(user) = state.store.user_by_id(&auth.user_id).await? {
        super::throttle::login_succeeded(state, ip, &user.email).await?;
    }
    Ok(())
}
