//! Accept loop: plain HTTP (loopback only, enforced by the config) or TLS
//! through rustls, HTTP/1.1 and HTTP/2 via hyper, with the connection caps
//! and timeouts of `[http]` (docs/BROKER.md, "Threat model").

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower_service::Service as _;

use crate::config::HttpLimits;

/// TLS setup failures.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot load {what} from {path}")]
    Pem {
        /// Certificate or key.
        what: &'static str,
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// rustls refused the certificate/key pair.
    #[error("invalid TLS certificate or key")]
    Rustls(#[from] rustls::Error),
}

/// Builds a rustls acceptor (ring provider) from PEM files.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Pem {
            what: "certificate chain",
            path: cert.display().to_string(),
            source,
        })?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Pem {
        what: "private key",
        path: key.display().to_string(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A server running in the background.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address (useful with port 0).
    pub local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting and waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Waits until the accept loop ends (it ends only on shutdown).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// A handle that asks the server to stop.
    pub fn stopper(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Open connections per peer address, bounded by the global cap (an entry
/// exists only while that peer has a connection open).
#[derive(Debug, Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// Held for the life of one connection; gives its per-address slot back.
struct IpSlot {
    table: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    fn try_take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = map.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            table: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self
            .table
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = map.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Logs refused connections: the first at once, then at most one line
/// every 10 s with the number refused in between, so a flood cannot flood
/// the log too.
#[derive(Debug, Default)]
struct Refusals {
    last: Mutex<Option<Instant>>,
    unlogged: AtomicU64,
}

impl Refusals {
    fn note(&self, limits: &HttpLimits, open: usize, per_ip: Option<IpAddr>) {
        let unlogged = self.unlogged.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
            return;
        }
        *last = Some(Instant::now());
        self.unlogged.store(0, Ordering::Relaxed);
        match per_ip {
            Some(ip) => tracing::warn!(
                peer = %ip,
                limit = limits.max_connections_per_ip,
                refused = unlogged,
                "per-address connection limit reached: new connections from this address are closed at once (http.max_connections_per_ip)"
            ),
            None => tracing::warn!(
                open,
                limit = limits.max_connections,
                refused = unlogged,
                "connection limit reached: new connections are closed at once (http.max_connections)"
            ),
        }
    }
}

/// Requests in progress on one connection and when the last one ended: the
/// connection is idle when none is in progress for `idle_timeout_secs`.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn touch(&self) {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    /// When the connection becomes idle, if nothing happens until then.
    fn idle_at(&self, idle: Duration) -> Instant {
        let last = *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = last + idle;
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // A request is running (bounded by the request timeout): look again later.
            at.max(Instant::now() + idle)
        } else {
            at
        }
    }
}

/// Counts one request as in progress until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.touch();
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The answer to a request that ran past `request_timeout_secs`.
fn request_timeout() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut response = crate::api::ApiError::new(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        kluis_types::ErrorCode::BadRequest,
        "the request took too long to arrive or to complete",
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// Serves one connection until it ends, is idle for too long, or the
/// broker stops; then closes it (gracefully, and by force after the
/// request timeout).
async fn serve_one<I>(io: I, router: Router, peer: SocketAddr, limits: HttpLimits)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        last: Mutex::new(Instant::now()),
    });
    let request_limit = secs(limits.request_timeout_secs);
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            let in_flight = InFlight::start(&activity);
            async move {
                // The body is read inside the handler, so this bounds a
                // slow body as well as a slow answer.
                let response = tokio::time::timeout(request_limit, router.call(request)).await;
                drop(in_flight);
                match response {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::info!(
                            %peer,
                            "request timed out (http.request_timeout_secs): answered 408, closing the connection"
                        );
                        Ok(request_timeout())
                    }
                }
            }
        })
    };
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(secs(limits.header_timeout_secs));
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(secs(limits.http2_keepalive_interval_secs))
        .keep_alive_timeout(secs(limits.http2_keepalive_timeout_secs))
        .max_concurrent_streams(limits.http2_max_concurrent_streams);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let idle = secs(limits.idle_timeout_secs);
    let mut force_close_at: Option<Instant> = None;
    loop {
        let wake = force_close_at.unwrap_or_else(|| activity.idle_at(idle));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with error");
                }
                return;
            }
            () = tokio::time::sleep_until(wake.into()) => {
                if force_close_at.is_some() {
                    tracing::debug!(%peer, "connection closed by force after the grace period");
                    return;
                }
                if activity.in_flight.load(Ordering::Acquire) == 0
                    && activity.idle_at(idle) <= Instant::now()
                {
                    tracing::debug!(%peer, "closing idle connection");
                    conn.as_mut().graceful_shutdown();
                    force_close_at = Some(Instant::now() + request_limit);
                }
            }
        }
    }
}

/// Binds `addr` and serves `router` in a background task, with the
/// timeouts and connection caps of `limits`.
pub async fn spawn(
    addr: SocketAddr,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: HttpLimits,
) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let (tx, mut rx) = watch::channel(false);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip = Arc::new(PerIp::default());
    let refusals = Arc::new(Refusals::default());
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = rx.changed() => break,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off briefly.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Over a cap the socket is closed at once: it costs no task and
            // holds its file descriptor for no time.
            let Ok(permit) = Arc::clone(&open).try_acquire_owned() else {
                refusals.note(&limits, limits.max_connections, None);
                continue;
            };
            let Some(slot) = per_ip.try_take(peer.ip(), limits.max_connections_per_ip) else {
                let in_use = limits.max_connections - open.available_permits();
                refusals.note(&limits, in_use, Some(peer.ip()));
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let router = router.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _held = (permit, slot);
                match tls {
                    Some(acceptor) => {
                        let handshake = tokio::time::timeout(
                            secs(limits.tls_handshake_secs),
                            acceptor.accept(tcp),
                        )
                        .await;
                        if let Ok(Ok(stream)) = handshake {
                            serve_one(stream, router, peer, limits).await;
                        }
                    }
                    None => serve_one(tcp, router, peer, limits).await,
                }
            });
        }
    });
    Ok(RunningServer {
        local_addr,
        shutdown: tx,
        task,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[test]
    fn per_address_slots_are_capped_and_given_back() {
        let table = Arc::new(PerIp::default());
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = table.try_take(a, 2).unwrap();
        let _second = table.try_take(a, 2).unwrap();
        assert!(table.try_take(a, 2).is_none(), "a third from one address");
        let other = table.try_take(b, 2).unwrap();
        drop(first);
        assert!(
            table.try_take(a, 2).is_some(),
            "a closed connection frees its slot"
        );
        drop(other);
        assert!(
            !table.0.lock().unwrap().contains_key(&b),
            "an address with no connection leaves no entry"
        );
    }

    #[test]
    fn a_connection_is_idle_only_with_no_request_in_progress() {
        let activity = Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(Instant::now() - Duration::from_secs(10)),
        });
        let idle = Duration::from_secs(5);
        assert!(activity.idle_at(idle) <= Instant::now());
        let running = InFlight::start(&activity);
        assert!(activity.idle_at(idle) > Instant::now() + Duration::from_secs(4));
        drop(running);
        assert!(activity.idle_at(idle) > Instant::now() + Duration::from_secs(4));
    }
}
