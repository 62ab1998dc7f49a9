//! Login throttling (issue 18.2), in the order that keeps victims out of
//! it: the per-network limit first, in memory
//! ([`crate::ratelimit::RateLimiter`]); only an attempt it lets through is
//! charged to the account, in the database
//! ([`crate::ratelimit::account::LoginPolicy`]), so a network over its
//! limit costs the account nothing and one network's failures delay only
//! that network.

use std::sync::atomic::Ordering;

use kluis_types::Email;

use super::extract::PeerIp;
use super::{ApiError, AppState};
use crate::metrics::Metrics;
use crate::ratelimit::account::LoginPolicy;
use crate::ratelimit::{account_key, network};
use crate::store::ThrottleKey;

/// Registration (and recovery) requests: per network, then per address.
pub(crate) fn register_limits(state: &AppState, ip: PeerIp, email: &Email) -> Result<(), ApiError> {
    let net = network(ip.0);
    let account = account_key(email);
    state.check_limits(&[&|now| state.limits.register_ip.check(net, now), &|now| {
        state.limits.register_account.check(account, now)
    }])
}

/// Expired throttling rows are deleted at most this often per instance.
const PRUNE_EVERY_SECS: i64 = 60;

/// The per-network limit of login starts.
pub(crate) fn login_network(state: &AppState, ip: PeerIp) -> Result<(), ApiError> {
    let net = network(ip.0);
    state.check_limits(&[&|now| state.limits.login_ip.check(net, now)])
}

/// Charges one login start to (account, network) and the account's
/// ceiling; 429 if the network must wait or the ceiling is reached.
pub(crate) async fn login_account(
    state: &AppState,
    ip: PeerIp,
    email: &Email,
) -> Result<(), ApiError> {
    let now = state.clock.now();
    prune(state, now).await;
    let account = account_key(email);
    let net = network(ip.0).to_string();
    let policy = state.limits.login_account;
    let key = ThrottleKey {
        account: &account,
        network: &net,
    };
    if state
        .store
        .throttle_login(key, &|s| policy.attempt(s, now))
        .await?
    {
        Ok(())
    } else {
        Metrics::inc(&state.metrics.rate_limited);
        tracing::info!(network = %net, "login start refused: account backoff or ceiling");
        Err(ApiError::rate_limited())
    }
}

/// A login from `ip` succeeded: its network's failures are forgotten and it
/// is exempt from the account's ceiling for a while.
pub(crate) async fn login_succeeded(
    state: &AppState,
    ip: PeerIp,
    email: &Email,
) -> Result<(), ApiError> {
    let account = account_key(email);
    let net = network(ip.0).to_string();
    let key = ThrottleKey {
        account: &account,
        network: &net,
    };
    let reset = LoginPolicy::success(state.clock.now());
    state.store.reset_login_backoff(key, &reset).await?;
    Ok(())
}

/// Deletes expired rows, once per [`PRUNE_EVERY_SECS`] per instance. A
/// failure is logged, not returned: the login itself does not depend on it.
async fn prune(state: &AppState, now: i64) {
    let last = state.limits.last_prune.load(Ordering::Relaxed);
    if now.saturating_sub(last) < PRUNE_EVERY_SECS
        || state
            .limits
            .last_prune
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    match state.store.prune_login_throttle(now).await {
        Ok(n) if n > 0 => tracing::debug!(rows = n, "expired login throttling rows deleted"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot delete expired login throttling rows"),
    }
}
