//! Extractors whose rejections are JSON [`ApiError`]s, the session
//! extractor, and the peer address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use kluis_types::{SessionId, SessionToken, UserId};
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::store::TokenHash;

/// `Json<T>` with JSON errors.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `Path<T>` with JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `Query<T>` with JSON errors.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// SHA-256 of a bearer token, the form the store keeps.
pub fn token_hash(token: &SessionToken) -> [u8; 32] {
    Sha256::digest(token.expose().as_bytes()).into()
}

/// How fresh a session must be to change the password.
pub const RECENT_LOGIN_SECS: i64 = 300;

/// A request made with a valid, unexpired session token.
#[derive(Debug, Clone)]
pub struct Authed {
    /// The session's user.
    pub user_id: UserId,
    /// The session.
    pub session_id: SessionId,
    /// When the session was created (by a full OPAQUE login).
    pub created_at: i64,
    /// Its expiry.
    pub expires_at: i64,
}

impl Authed {
    /// 403 unless the path names the session's own user.
    pub fn require_self(&self, user_id: &UserId) -> Result<(), ApiError> {
        if &self.user_id == user_id {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// 403 unless the session comes from a login within the last
    /// [`RECENT_LOGIN_SECS`]: a stolen long-lived token alone must not be
    /// enough to replace the password.
    pub fn require_recent_login(&self, now: i64) -> Result<(), ApiError> {
        if now - self.created_at <= RECENT_LOGIN_SECS {
            Ok(())
        } else {
            Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                kluis_types::ErrorCode::Forbidden,
                "log in again (with the current password) before changing it",
            ))
        }
    }
}

/// The hash of a well-formed bearer token, not yet checked against the
/// store: for a handler that checks the session in the same statement as
/// its own query (the directory search). Everything else takes [`Authed`].
pub struct Bearer(pub TokenHash);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(ApiError::unauthorized)?;
        let text = header.to_str().map_err(|_| ApiError::unauthorized())?;
        let token = text
            .strip_prefix("Bearer ")
            .map(SessionToken::parse)
            .and_then(Result::ok)
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Self(token_hash(&token)))
    }
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Bearer(hash) = Bearer::from_request_parts(parts, state).await?;
        let now = state.clock.now();
        let row = state
            .store
            .session_by_token_hash(&hash, now)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Self {
            user_id: row.user_id,
            session_id: row.session_id,
            created_at: row.created_at,
            expires_at: row.expires_at,
        })
    }
}

/// The client's IP: the TCP peer, or — only when the peer is a configured
/// trusted proxy — the right-most untrusted address in `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct PeerIp(pub IpAddr);

impl FromRequestParts<AppState> for PeerIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(Self(client_ip(
            peer,
            &parts.headers,
            &state.settings.trusted_proxies,
        )))
    }
}

/// See [`PeerIp`].
pub fn client_ip(peer: IpAddr, headers: &axum::http::HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    hops.into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    #[test]
    fn forwarded_for_only_from_trusted_proxy() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let other: IpAddr = "9.9.9.9".parse().unwrap();
        assert_eq!(
            client_ip(other, &h, &[proxy]),
            other,
            "spoofed header ignored"
        );
        assert_eq!(client_ip(other, &h, &[]), other);
        assert_eq!(
            client_ip(proxy, &h, &[proxy]),
            "2.2.2.2".parse::<IpAddr>().unwrap()
        );
        let trusted2: IpAddr = "2.2.2.2".parse().unwrap();
        assert_eq!(
            client_ip(proxy, &h, &[proxy, trusted2]),
            "1.1.1.1".parse::<IpAddr>().unwrap()
        );
    }
}
