//! Test harness: an in-process broker on loopback over SQLite or PostgreSQL,
//! a captured log, and fresh client "devices".
//!
//! PostgreSQL runs when `KLUIS_TEST_POSTGRES_URL` is set (each test gets its
//! own schema); with `KLUIS_REQUIRE_POSTGRES=1` and no URL the PostgreSQL
//! variants fail instead of skipping.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup should panic loudly"
)]

use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, OnceLock};

use kluis_account::{AccountClient, ClientConfig, KsfPolicy, OrgPublicKey};
use kluis_broker::Broker;
use kluis_broker::clock::ManualClock;
use kluis_broker::config::{Limits, RegistrationMode, Settings};
use kluis_broker::opaque::OprfSeed;
use kluis_broker::ratelimit::Limit;
use kluis_broker::ratelimit::account::Backoff;
use kluis_broker::server::RunningServer;
use kluis_broker::store::{self, SchemaStore, Store};
use kluis_types::KsfParams;
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log line of every crate at DEBUG and above.
pub fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
    });
}

/// Everything logged so far, by any test in this binary.
pub fn logs() -> Vec<u8> {
    LOGS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

pub fn pg_url() -> Option<String> {
    match std::env::var("KLUIS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("KLUIS_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "KLUIS_REQUIRE_POSTGRES=1 but KLUIS_TEST_POSTGRES_URL is not set"
            );
            None
        }
    }
}

/// Settings for tests: open registration, test-only KSF announced for
/// unknown users, generous rate limits.
pub fn test_settings() -> Settings {
    let lots = Limit {
        max: 10_000,
        window_secs: 60,
    };
    Settings {
        registration: RegistrationMode::Open,
        default_ksf: KsfPolicy::InsecureTestOnly.registration_params(),
        limits: Limits {
            body_bytes: 64 * 1024,
            login_per_ip: lots,
            login_per_account: lots,
            register_per_ip: lots,
            register_per_account: lots,
            login_backoff: Backoff {
                free: 10_000,
                ..Backoff::default()
            },
            ..Limits::default()
        },
        ..Settings::default()
    }
}

pub const TEST_KSF: fn() -> KsfParams = || KsfPolicy::InsecureTestOnly.registration_params();

pub struct TestBroker {
    pub url: String,
    pub dir: TempDir,
    pub clock: Arc<ManualClock>,
    pub broker: Broker,
    pub backend: Backend,
    pub sqlite_path: Option<PathBuf>,
    pub pg: Option<(String, String)>,
    server: Option<RunningServer>,
}

fn random_hex(n: usize) -> String {
    use std::fmt::Write as _;
    let mut bytes = vec![0u8; n];
    getrandom_fill(&mut bytes);
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub fn getrandom_fill(buf: &mut [u8]) {
    use rand::RngCore as _;
    rand::rngs::OsRng.fill_bytes(buf);
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", random_hex(6))
}

/// Starts a broker; `None` when the PostgreSQL variant is not configured.
pub async fn start(backend: Backend, settings: Settings) -> Option<TestBroker> {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let (store, sqlite_path, pg): (Arc<dyn Store>, _, _) = match backend {
        Backend::Sqlite => {
            let path = dir.path().join("broker.sqlite3");
            let store = store::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            (store, Some(path), None)
        }
        Backend::Postgres => {
            let url = pg_url()?;
            let schema = format!("kluis_test_{}", random_hex(8));
            let admin = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            let options = sqlx::postgres::PgConnectOptions::from_str(&url)
                .unwrap()
                .options([("search_path", schema.as_str())]);
            let store = store::postgres::PgStore::connect_with(options)
                .await
                .unwrap();
            store.migrate().await.unwrap();
            (Arc::new(store) as Arc<dyn Store>, None, Some((url, schema)))
        }
    };
    let clock = Arc::new(ManualClock::new(1_900_000_000));
    let broker = Broker::from_parts(store, OprfSeed::generate(), settings, clock.clone());
    let server = broker
        .spawn("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    Some(TestBroker {
        url: format!("http://{}", server.local_addr),
        dir,
        clock,
        broker,
        backend,
        sqlite_path,
        pg,
        server: Some(server),
    })
}

impl TestBroker {
    pub fn store(&self) -> &dyn Store {
        self.broker.store()
    }

    /// Another store on the same database, as a second broker instance or
    /// `kluis-broker admin` would open it.
    pub async fn second_store(&self) -> Arc<dyn Store> {
        if let Some(path) = &self.sqlite_path {
            return store::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
        }
        let (url, schema) = self.pg.as_ref().unwrap();
        let options = sqlx::postgres::PgConnectOptions::from_str(url)
            .unwrap()
            .options([("search_path", schema.as_str())]);
        Arc::new(
            store::postgres::PgStore::connect_with(options)
                .await
                .unwrap(),
        )
    }

    pub fn now(&self) -> i64 {
        use kluis_broker::clock::Clock as _;
        self.clock.now()
    }

    /// A fresh client "device" with its own state directory.
    pub fn device(&self, org: OrgPublicKey) -> (AccountClient, TempDir) {
        let state = tempfile::tempdir().unwrap();
        let config = ClientConfig::new(self.url.clone(), org, state.path())
            .with_ksf_policy(KsfPolicy::InsecureTestOnly);
        (AccountClient::new(config).unwrap(), state)
    }

    /// Every byte the database holds: the SQLite files, or a text dump of
    /// every row of every table of this test's PostgreSQL schema.
    pub async fn dump(&self) -> Vec<u8> {
        if let Some(path) = &self.sqlite_path {
            let mut out = Vec::new();
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let p = PathBuf::from(format!("{}{suffix}", path.display()));
                if let Ok(bytes) = std::fs::read(&p) {
                    out.extend_from_slice(&bytes);
                }
            }
            assert!(!out.is_empty(), "no database file found");
            return out;
        }
        let (url, schema) = self.pg.as_ref().unwrap();
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
        )
        .bind(schema)
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(
            tables.len() >= 5,
            "expected the broker tables, got {tables:?}"
        );
        let mut out = Vec::new();
        for table in tables {
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT t::text FROM {schema}.\"{table}\" t"))
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            for row in rows {
                out.extend_from_slice(row.as_bytes());
                out.push(b'\n');
            }
        }
        pool.close().await;
        out
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Declares one `#[tokio::test]` per backend for each scenario
/// `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::broker::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::broker::Backend::Postgres).await
                }
            )*
        }
    };
}
