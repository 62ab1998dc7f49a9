//! Serving over TLS, as `kluis-broker serve` does with `[tls] cert` and `key`
//! in its configuration file: HTTP/1.1 and HTTP/2 chosen by ALPN, the
//! certificate checked by clients that trust the organisation's CA, and
//! nothing served to clients that do not, or that speak plain HTTP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use kluis_broker::clock::SystemClock;
use kluis_broker::config::{Config, Overrides};
use kluis_broker::server::{TlsError, tls_acceptor};
use kluis_broker::{Broker, BrokerError};

use crate::pki::issue;

fn write_config(dir: &Path, cert: &Path, key: &Path) -> Config {
    let file = dir.join("broker.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nregistration = \"open\"\n\
             [tls]\ncert = {:?}\nkey = {:?}\n",
            dir.join("data"),
            cert,
            key
        ),
    )
    .unwrap();
    let overrides = Overrides {
        config_file: Some(file),
        data_dir: None,
        listen: None,
    };
    Config::resolve(&overrides, &|_| None).unwrap()
}

fn client(ca: Option<&Path>, host: &str, addr: SocketAddr) -> reqwest::Client {
    builder(ca, host, addr).build().unwrap()
}

/// An HTTPS-only client that dials `host` at `addr` and trusts `ca` (if
/// given) on top of the public roots.
fn builder(ca: Option<&Path>, host: &str, addr: SocketAddr) -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder()
        .https_only(true)
        .resolve(host, addr);
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    builder
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_serves_https_from_its_configured_certificate() {
    crate::util::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let pki = issue(dir.path(), "kluis.test");
    let config = write_config(dir.path(), &pki.cert, &pki.key);
    let (_broker, server) = Broker::serve_config(&config, Arc::new(SystemClock))
        .await
        .unwrap();
    let addr = server.local_addr;
    let url = format!("https://kluis.test:{}/healthz", addr.port());

    // A client that trusts the organisation's CA gets HTTP/2 by ALPN…
    let trusted = client(Some(&pki.ca), "kluis.test", addr);
    let response = trusted.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    // …and HTTP/1.1 when that is all it speaks.
    let http1 = builder(Some(&pki.ca), "kluis.test", addr)
        .http1_only()
        .build()
        .unwrap();
    let response = http1.get(&url).send().await.unwrap();
    assert_eq!(
        (response.status(), response.version()),
        (reqwest::StatusCode::OK, reqwest::Version::HTTP_11)
    );

    // Without the CA the certificate is refused: public roots only.
    let e = client(None, "kluis.test", addr)
        .get(&url)
        .send()
        .await
        .unwrap_err();
    assert!(
        chain(&e).to_lowercase().contains("certificate"),
        "{}",
        chain(&e)
    );
    // The certificate names kluis.test, not whatever name the client dialled.
    let e = client(Some(&pki.ca), "other.test", addr)
        .get(format!("https://other.test:{}/healthz", addr.port()))
        .send()
        .await
        .unwrap_err();
    assert!(
        chain(&e).to_lowercase().contains("certificate"),
        "{}",
        chain(&e)
    );
    // Plain HTTP on the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    // And the server still serves after all that.
    let response = trusted.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_certificate_or_key_stops_the_broker_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let pki = issue(dir.path(), "kluis.test");
    let missing = dir.path().join("missing.pem");

    // A missing certificate: the path is in the error and nothing listens.
    let config = write_config(dir.path(), &missing, &pki.key);
    match Broker::serve_config(&config, Arc::new(SystemClock)).await {
        Err(BrokerError::Tls(e @ TlsError::Pem { .. })) => {
            assert!(e.to_string().contains("missing.pem"), "{e}");
        }
        other => panic!("expected a PEM error, got {:?}", other.map(|_| ())),
    }
    // A file that holds no key.
    let e = tls_acceptor(&pki.cert, &pki.cert).err().unwrap();
    assert!(
        matches!(
            e,
            TlsError::Pem {
                what: "private key",
                ..
            }
        ),
        "{e}"
    );
    // A key that does not belong to the certificate.
    let other = issue(
        &{
            let d = dir.path().join("other");
            std::fs::create_dir(&d).unwrap();
            d
        },
        "kluis.test",
    );
    let e = tls_acceptor(&pki.cert, &other.key).err().unwrap();
    assert!(matches!(e, TlsError::Rustls(_)), "{e}");
}
