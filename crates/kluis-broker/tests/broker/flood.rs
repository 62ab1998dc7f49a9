//! Issue 18.1, one client must not take the broker down: attacks on a real
//! `kluis-broker serve` process with short `[http]` timeouts. The attacker
//! connects from other loopback addresses (127.0.0.2 and up: Linux routes
//! all of 127/8 to `lo`), the legitimate client from 127.0.0.1.
//!
//! On the code before issue 18 both tests fail: a silent TCP connection and
//! an idle HTTP/2 connection were held for good (hyper waits for the first
//! bytes with no deadline), a slow body was held as long as it trickled,
//! and nothing capped the number of connections.

use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kluis_account::{AccountClient, ClientConfig, KsfPolicy, Password, Registration};
use kluis_broker::org::OrgSigningKey;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::util::unique;

/// A `kluis-broker serve` child process, killed on drop, with its log.
pub(crate) struct Served {
    child: Child,
    pub(crate) addr: SocketAddr,
    log: Arc<Mutex<String>>,
    pub(crate) dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// Starts `kluis-broker serve` with open registration, the test KSF,
/// generous rate limits and the given `[http]` table.
fn serve(http: &str) -> Served {
    serve_with(&generous_limits(), http)
}

/// A `[limits]` table no test here reaches.
pub(crate) fn generous_limits() -> String {
    let lots = "{ max = 100000, window_secs = 60 }";
    format!(
        "login_per_ip = {lots}\nlogin_per_account = {lots}\n\
         register_per_ip = {lots}\nregister_per_account = {lots}"
    )
}

/// [`serve`] with the given `[limits]` table.
pub(crate) fn serve_with(limits: &str, http: &str) -> Served {
    serve_config(limits, http, "")
}

/// [`serve_with`] plus `tables` (more TOML tables, e.g. `[tls]`) at the end
/// of the configuration file.
pub(crate) fn serve_config(limits: &str, http: &str, tables: &str) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let ksf = KsfPolicy::InsecureTestOnly.registration_params();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\nregistration = \"open\"\n\
             [default_ksf]\nm_cost_kib = {}\nt_cost = {}\np_cost = {}\n\
             [limits]\n{limits}\n\
             [http]\n{http}\n{tables}",
            dir.path().join("data"),
            ksf.m_cost_kib,
            ksf.t_cost,
            ksf.p_cost,
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kluis-broker"))
        .env_remove("KLUIS_HOME")
        .env_remove("KLUIS_BROKER_CONFIG")
        .env_remove("KLUIS_BROKER_DATABASE_URL")
        .env_remove("KLUIS_BROKER_LISTEN")
        .env("KLUIS_BROKER_LOG", "info")
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let line = strip_ansi(&line);
            let rest = line
                .split("address=http://")
                .nth(1)
                .or_else(|| line.split("address=https://").nth(1));
            if let Some(rest) = rest {
                let addr = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(addr.to_owned());
            }
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let addr = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(a) => a.parse().unwrap(),
        Err(_) => {
            let _ = child.kill();
            panic!("kluis-broker serve did not start:\n{}", log.lock().unwrap());
        }
    };
    Served {
        child,
        addr,
        log,
        dir,
    }
}

/// The log without its colour escapes (`ESC [ ... m`).
pub(crate) fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A TCP connection to `to` from the loopback address `from`.
pub(crate) async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::from(from), 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// The three hostile connection kinds of the issue.
#[derive(Debug, Clone, Copy)]
enum Hostile {
    /// Connects and sends nothing.
    SilentTcp,
    /// Headers of a login start, then one body byte every 300 ms.
    SlowBody,
    /// The HTTP/2 (h2c) preface and an empty SETTINGS frame, then nothing.
    IdleH2c,
}

/// Opens one hostile connection and returns when the broker has closed
/// it (EOF or reset). `open` counts the ones still held.
async fn hostile(kind: Hostile, from: [u8; 4], to: SocketAddr, open: Arc<AtomicUsize>) {
    let stream = connect_from(from, to).await;
    open.fetch_add(1, Ordering::SeqCst);
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        match kind {
            Hostile::SilentTcp => std::future::pending::<()>().await,
            Hostile::IdleH2c => {
                let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
                hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
                let _ = write.write_all(&hello).await;
                std::future::pending::<()>().await;
            }
            Hostile::SlowBody => {
                let head = format!(
                    "POST /v1/login/start HTTP/1.1\r\nHost: {to}\r\n\
                     Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n"
                );
                if write.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    if write.write_all(b" ").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    });
    let mut buf = [0u8; 4096];
    loop {
        match read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    writer.abort();
    open.fetch_sub(1, Ordering::SeqCst);
}

/// Registers an account on the served broker; returns its e-mail and password.
pub(crate) async fn account(served: &Served, org: &OrgSigningKey) -> (String, Password) {
    let (client, _state) = device(served, org);
    let email = format!("{}@example.org", unique("legit"));
    let password = Password::new(unique("pw horse battery "));
    let mut secret = vec![0u8; 48];
    crate::util::getrandom_fill(&mut secret);
    client
        .register(&Registration {
            email: &email,
            display_name: "Legit",
            password: &password,
            public_key: &unique("kluis1testkey"),
            secret_identity: &secret,
            invite: None,
        })
        .await
        .unwrap();
    (email, password)
}

pub(crate) fn device(served: &Served, org: &OrgSigningKey) -> (AccountClient, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let config = ClientConfig::new(
        format!("http://{}", served.addr),
        org.public_key(),
        state.path(),
    )
    .with_ksf_policy(KsfPolicy::InsecureTestOnly);
    (AccountClient::new(config).unwrap(), state)
}

async fn healthz(addr: SocketAddr) -> Result<u16, reqwest::Error> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = client.get(format!("http://{addr}/healthz")).send().await?;
    Ok(r.status().as_u16())
}

/// Waits until `open` reaches `want`, or panics at the deadline.
async fn wait_for(open: &AtomicUsize, want: usize, deadline: Instant, what: &str) {
    while open.load(Ordering::SeqCst) != want {
        assert!(
            Instant::now() < deadline,
            "{what}: {} held, expected {want}",
            open.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 60 hostile connections from three addresses (silent TCP, slow login
/// body, idle h2c; 20 each) against a per-address cap of 12: 36 are held,
/// 24 are closed at once with a log line. Meanwhile the legitimate client
/// gets `/healthz` and logs in; then every held connection is closed within
/// the idle / request timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_cannot_hold_the_broker_and_its_connections_time_out() {
    let served = serve(
        "max_connections = 40\nmax_connections_per_ip = 12\nheader_timeout_secs = 4\n\
         request_timeout_secs = 4\nidle_timeout_secs = 4\n",
    );
    let org = OrgSigningKey::init(&served.dir.path().join("org.key")).unwrap();
    let (email, password) = account(&served, &org).await;

    let open = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut attackers = Vec::new();
    for (kind, from) in [
        (Hostile::SilentTcp, [127, 0, 0, 2]),
        (Hostile::SlowBody, [127, 0, 0, 3]),
        (Hostile::IdleH2c, [127, 0, 0, 4]),
    ] {
        for _ in 0..20 {
            attackers.push(tokio::spawn(hostile(
                kind,
                from,
                served.addr,
                Arc::clone(&open),
            )));
        }
    }
    // The 8 over the cap of each address are closed at once; 3 x 12 stay.
    wait_for(
        &open,
        36,
        started + Duration::from_secs(3),
        "over-cap connections closed at once",
    )
    .await;

    // Meanwhile: a legitimate client is served.
    assert_eq!(healthz(served.addr).await.unwrap(), 200);
    let (client, _state) = device(&served, &org);
    let out = client.login(&email, &password).await.unwrap();
    assert_eq!(out.secret_identity.expose().len(), 48);
    let held = open.load(Ordering::SeqCst);
    assert!(held > 0, "the attack was still on when the login finished");

    // Every held connection is closed within idle/request timeout + grace
    // (4 s + 4 s), with slack for a loaded machine.
    let deadline = started + Duration::from_secs(30);
    for a in attackers {
        tokio::time::timeout_at(deadline, a)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "held connections not closed in time ({} still open)",
                    open.load(Ordering::SeqCst)
                )
            })
            .unwrap();
    }
    let log = served.log();
    assert!(
        log.contains("per-address connection limit reached"),
        "a clear log line names the cap:\n{log}"
    );
    // The slow body got 408 and the broker still serves.
    assert!(log.contains("request timed out"), "{log}");
    assert_eq!(healthz(served.addr).await.unwrap(), 200);
}

/// Past `max_connections`, new connections are closed at once with one log
/// line; once the idle ones time out the broker serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_are_refused_until_idle_ones_close() {
    let served = serve(
        "max_connections = 8\nmax_connections_per_ip = 100\nrequest_timeout_secs = 3\n\
         idle_timeout_secs = 3\n",
    );
    let open = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let attackers: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(hostile(
                Hostile::SilentTcp,
                [127, 0, 0, 2],
                served.addr,
                Arc::clone(&open),
            ))
        })
        .collect();
    wait_for(&open, 8, started + Duration::from_secs(3), "8 held").await;
    // Make sure the broker has accepted all 8 before the ninth.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let over = Arc::new(AtomicUsize::new(0));
    tokio::time::timeout(
        Duration::from_secs(2),
        hostile(Hostile::SilentTcp, [127, 0, 0, 5], served.addr, over),
    )
    .await
    .expect("the ninth connection is closed at once, well before the idle timeout");
    for a in attackers {
        tokio::time::timeout_at(started + Duration::from_secs(20), a)
            .await
            .expect("idle connections closed within the idle timeout")
            .unwrap();
    }
    assert_eq!(healthz(served.addr).await.unwrap(), 200);
    let log = served.log();
    assert!(
        log.contains("connection limit reached: new connections are closed at once"),
        "{log}"
    );
}
