//! Issue 18.1 over TLS: idle HTTP/2 connections (h2 by ALPN) and clients
//! that never start the TLS handshake are closed within the configured
//! timeouts by a real `kluis-broker serve` with `[tls]`, while a legitimate
//! HTTPS client is served. The attacker connects from 127.0.0.2.
//!
//! On the code before issue 18 the idle h2 connection was held for good
//! (no idle deadline, no HTTP/2 keep-alive), and so was a silent TCP
//! connection on the TLS port (no handshake deadline).

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::flood::{connect_from, generous_limits, serve_config};
use crate::pki::issue;

/// A TLS client for `kluis.test` that trusts `ca` and offers only `h2`.
fn h2_connector(ca: &std::path::Path) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// Reads until the peer closes (EOF or error); returns when it did.
async fn until_closed<R: tokio::io::AsyncRead + Unpin>(mut read: R) {
    let mut buf = [0u8; 4096];
    loop {
        match read.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_over_tls_and_silent_tls_clients_are_closed_in_time() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = issue(pki_dir.path(), "kluis.test");
    let served = serve_config(
        &generous_limits(),
        "idle_timeout_secs = 3\nrequest_timeout_secs = 3\ntls_handshake_secs = 3\n\
         http2_keepalive_interval_secs = 2\nhttp2_keepalive_timeout_secs = 2\n",
        &format!("[tls]\ncert = {:?}\nkey = {:?}\n", pki.cert, pki.key),
    );
    let started = Instant::now();

    // An idle h2 connection: TLS with ALPN h2, the preface and an empty
    // SETTINGS frame, then nothing.
    let tcp = connect_from([127, 0, 0, 2], served.addr).await;
    let name = ServerName::try_from("kluis.test").unwrap();
    let mut tls = h2_connector(&pki.ca).connect(name, tcp).await.unwrap();
    assert_eq!(
        tls.get_ref().1.alpn_protocol(),
        Some(&b"h2"[..]),
        "the broker speaks HTTP/2 over TLS"
    );
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    tls.write_all(&hello).await.unwrap();
    tls.flush().await.unwrap();
    let (tls_read, _tls_write) = tokio::io::split(tls);
    let idle_h2 = tokio::spawn(until_closed(tls_read));

    // A client that connects to the TLS port and never says hello.
    let silent = connect_from([127, 0, 0, 2], served.addr).await;
    let (silent_read, _silent_write) = silent.into_split();
    let silent = tokio::spawn(until_closed(silent_read));

    // Meanwhile a legitimate HTTPS client is served.
    let pem = std::fs::read(&pki.ca).unwrap();
    let client = reqwest::Client::builder()
        .https_only(true)
        .resolve("kluis.test", served.addr)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let status = client
        .get(format!("https://kluis.test:{}/healthz", served.addr.port()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert!(
        !idle_h2.is_finished() || !silent.is_finished(),
        "the attack was still on while the legitimate client was served"
    );

    // Both are closed within the 3 s deadlines plus grace; 30 s is only
    // slack for a loaded machine, far below "held for good".
    let deadline = started + Duration::from_secs(30);
    tokio::time::timeout_at(deadline, idle_h2)
        .await
        .expect("an idle HTTP/2-over-TLS connection was held past its idle timeout")
        .unwrap();
    tokio::time::timeout_at(deadline, silent)
        .await
        .expect("a client that never started the TLS handshake was held")
        .unwrap();
    let status = client
        .get(format!("https://kluis.test:{}/healthz", served.addr.port()))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "the broker still serves");
}
