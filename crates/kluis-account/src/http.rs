//! Thin JSON-over-HTTPS wrapper around reqwest (rustls).

use kluis_types::{ErrorBody, ErrorCode, SessionToken};
use reqwest::{Method, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::AccountError;

/// Talks to one broker.
#[derive(Clone)]
pub(crate) struct BrokerHttp {
    client: reqwest::Client,
    base: Url,
}

/// Accepts `https://…`, or `http://…` only to a loopback host.
pub(crate) fn check_url(text: &str) -> Result<Url, AccountError> {
    let mut url = Url::parse(text).map_err(|e| AccountError::InvalidInput {
        what: "broker URL",
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "https" => {}
        "http" => {
            let loopback = match url.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                None => false,
            };
            if !loopback {
                return Err(AccountError::InsecureUrl(text.to_owned()));
            }
        }
        _ => {
            return Err(AccountError::InvalidInput {
                what: "broker URL",
                reason: "scheme must be https".to_owned(),
            });
        }
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

impl BrokerHttp {
    pub(crate) fn new(base: Url) -> Result<Self, AccountError> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("kluis-account/", env!("CARGO_PKG_VERSION")))
            .https_only(base.scheme() == "https")
            .build()?;
        Ok(Self { client, base })
    }

    fn url(&self, path: &str) -> Result<Url, AccountError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| AccountError::InvalidInput {
                what: "request path",
                reason: e.to_string(),
            })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&dyn erased::Body>,
    ) -> Result<reqwest::Response, AccountError> {
        let mut request = self.client.request(method, self.url(path)?);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_json()?);
        }
        let response = request.send().await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body: ErrorBody = response.json().await.unwrap_or(ErrorBody {
            code: ErrorCode::Unknown,
            message: "(no JSON error body)".to_owned(),
        });
        Err(AccountError::Broker {
            status,
            code: body.code,
            message: body.message,
        })
    }

    /// Request with a JSON body and a JSON answer.
    pub(crate) async fn json<B: Serialize + Sync, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&SessionToken>,
        body: Option<&B>,
    ) -> Result<R, AccountError> {
        let body = body.map(|b| b as &dyn erased::Body);
        let token = token.map(SessionToken::expose);
        Ok(self.send(method, path, token, body).await?.json().await?)
    }

    /// [`BrokerHttp::json`] with any bearer token (admin, recovery).
    pub(crate) async fn json_bearer<B: Serialize + Sync, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&B>,
    ) -> Result<R, AccountError> {
        let body = body.map(|b| b as &dyn erased::Body);
        Ok(self
            .send(method, path, Some(token), body)
            .await?
            .json()
            .await?)
    }

    /// [`BrokerHttp::no_content`] with any bearer token (admin, recovery).
    pub(crate) async fn no_content_bearer<B: Serialize + Sync>(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&B>,
    ) -> Result<(), AccountError> {
        let body = body.map(|b| b as &dyn erased::Body);
        self.send(method, path, Some(token), body).await.map(drop)
    }

    /// Request whose answer has no body we need.
    pub(crate) async fn no_content<B: Serialize + Sync>(
        &self,
        method: Method,
        path: &str,
        token: Option<&SessionToken>,
        body: Option<&B>,
    ) -> Result<(), AccountError> {
        let body = body.map(|b| b as &dyn erased::Body);
        let token = token.map(SessionToken::expose);
        self.send(method, path, token, body).await.map(drop)
    }
}

mod erased {
    use serde::Serialize;

    use crate::AccountError;

    /// Object-safe "serialize to JSON bytes".
    pub(crate) trait Body: Sync {
        fn to_json(&self) -> Result<Vec<u8>, AccountError>;
    }

    impl<T: Serialize + Sync> Body for T {
        fn to_json(&self) -> Result<Vec<u8>, AccountError> {
            serde_json::to_vec(self).map_err(|e| AccountError::InvalidInput {
                what: "request body",
                reason: e.to_string(),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_url("https://broker.example").is_ok());
        assert!(check_url("http://127.0.0.1:8750").is_ok());
        assert!(
            check_url("http://localhost:8750/base")
                .unwrap()
                .as_str()
                .ends_with("/base/")
        );
        assert!(matches!(
            check_url("http://broker.example"),
            Err(AccountError::InsecureUrl(_))
        ));
        assert!(check_url("ftp://x").is_err());
    }
}
