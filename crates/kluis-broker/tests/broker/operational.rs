//! Issue 18.4, operational safety: the OPRF seed lives apart from the data
//! and is checked against the database, admin tokens expire and can be
//! removed and rotated, `/metrics` needs a token, and the SQLite files are
//! private.
//!
//! On the code before issue 18.4 each test fails: a missing seed was
//! created anew whatever the database held (and any seed was accepted), an
//! admin token worked for ever and could be neither removed nor rotated,
//! `/metrics` answered anyone, and the database files were created 0644.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use kluis_account::{AccountClient, ClientConfig, KsfPolicy, Password, Registration};
use kluis_approvals::AdminPublicKey;
use kluis_audit::Action;
use kluis_broker::admin;
use kluis_broker::clock::ManualClock;
use kluis_broker::config::{Config, DEFAULT_ADMIN_TOKEN_TTL_SECS, Overrides, Settings};
use kluis_broker::opaque::{OprfSeed, SeedError};
use kluis_broker::org::OrgSigningKey;
use kluis_broker::{Broker, BrokerError};
use sha2::{Digest as _, Sha256};

use crate::on_both_backends;
use crate::util::{Backend, getrandom_fill, pg_url, start, test_settings, unique};

/// The metrics token of [`with_metrics_token`].
pub const METRICS_TOKEN: &str = "metrics-token-of-the-broker-tests-0123456789";

/// `settings` with [`METRICS_TOKEN`] configured for `/metrics`.
pub fn with_metrics_token(settings: Settings) -> Settings {
    Settings {
        metrics_token_hash: Some(Sha256::digest(METRICS_TOKEN.as_bytes()).into()),
        ..settings
    }
}

/// A database URL of a fresh, empty database: a SQLite file in `dir`, or a
/// new schema of the test PostgreSQL database. `None` when PostgreSQL is
/// not configured.
async fn fresh_database(backend: Backend, dir: &Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite:{}", dir.join("shared.sqlite3").display())),
        Backend::Postgres => {
            let url = pg_url()?;
            let schema = unique("kluis_test_seed_");
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            Some(format!("{url}?options=-c%20search_path%3D{schema}"))
        }
    }
}

/// The configuration of one broker instance: its own data directory, the
/// shared database, and the seed at `seed`.
fn instance(root: &Path, name: &str, database_url: &str, seed: &Path) -> Config {
    let data_dir = root.join(name);
    let env = |k: &str| match k {
        "KLUIS_BROKER_DATABASE_URL" => Some(database_url.to_owned()),
        "KLUIS_BROKER_OPRF_SEED_FILE" => Some(seed.display().to_string()),
        "KLUIS_BROKER_REGISTRATION" => Some("open".to_owned()),
        _ => None,
    };
    let overrides = Overrides {
        config_file: None,
        data_dir: Some(data_dir),
        listen: Some("127.0.0.1:0".to_owned()),
    };
    let mut config = Config::resolve(&overrides, &env).unwrap();
    config.settings = test_settings();
    config
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_900_000_000))
}

fn device(url: &str, org: &OrgSigningKey) -> (AccountClient, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let config = ClientConfig::new(url.to_owned(), org.public_key(), state.path())
        .with_ksf_policy(KsfPolicy::InsecureTestOnly);
    (AccountClient::new(config).unwrap(), state)
}

/// Registers an account through `broker`; returns its address and password.
async fn register(broker: &Broker, org: &OrgSigningKey) -> (String, Password) {
    let server = broker
        .spawn("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let (client, _state) = device(&format!("http://{}", server.local_addr), org);
    let email = format!("{}@example.org", unique("seed"));
    let password = Password::new(unique("pw correct horse "));
    client
        .register(&Registration {
            email: &email,
            display_name: "Seed Tester",
            password: &password,
            public_key: &unique("kluis1testkey"),
            secret_identity: b"secret identity bytes",
            invite: None,
        })
        .await
        .unwrap();
    server.shutdown().await;
    (email, password)
}

/// The first start on an empty database creates the seed; afterwards a
/// missing seed stops the broker (no new seed), and so does a second
/// instance on the same database with a seed of its own. The right seed
/// still opens, and its accounts still log in.
async fn the_seed_is_never_replaced_silently(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let Some(db) = fresh_database(backend, root.path()).await else {
        return;
    };
    let org = OrgSigningKey::init(&root.path().join("org.key")).unwrap();
    let seed = root.path().join("config").join("oprf-seed");

    // An empty database: the seed is created (0600), the check recorded.
    let first = Broker::open(&instance(root.path(), "one", &db, &seed), clock())
        .await
        .unwrap();
    assert!(seed.is_file(), "the first start creates the seed");
    let (email, password) = register(&first, &org).await;

    // A second instance with a seed of its own is refused, whatever it is.
    let other_seed = root.path().join("other-seed");
    OprfSeed::create(&other_seed).unwrap();
    let refused = Broker::open(&instance(root.path(), "two", &db, &other_seed), clock()).await;
    let Err(BrokerError::Seed(SeedError::Mismatch { origin })) = refused else {
        panic!("a second instance with another seed started");
    };
    assert_eq!(origin, other_seed.display().to_string());

    // …and one with no seed at all gets none: refused, nothing created.
    let missing = root.path().join("third").join("oprf-seed");
    let refused = Broker::open(&instance(root.path(), "three", &db, &missing), clock()).await;
    let Err(err @ BrokerError::Seed(SeedError::Missing { .. })) = refused else {
        panic!("an instance without the seed started");
    };
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("already has accounts"), "{err}");
    assert!(!missing.exists(), "no new seed was written");

    // The first seed lost: refused too, and it is not recreated.
    drop(first);
    let kept = std::fs::read(&seed).unwrap();
    std::fs::remove_file(&seed).unwrap();
    let refused = Broker::open(&instance(root.path(), "one", &db, &seed), clock()).await;
    assert!(
        matches!(refused, Err(BrokerError::Seed(SeedError::Missing { .. }))),
        "the broker started without its seed"
    );
    assert!(!seed.exists(), "no new seed was written");

    // Restored, it opens and the account logs in.
    std::fs::write(&seed, kept).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&seed, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let again = Broker::open(&instance(root.path(), "one", &db, &seed), clock())
        .await
        .unwrap();
    let server = again
        .spawn("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let (client, _state) = device(&format!("http://{}", server.local_addr), &org);
    client.login(&email, &password).await.unwrap();
    server.shutdown().await;
}

/// A seed recorded in a database with no account yet is still never
/// replaced: another instance may be serving with it.
async fn a_recorded_seed_is_required_even_before_the_first_account(backend: Backend) {
    let root = tempfile::tempdir().unwrap();
    let Some(db) = fresh_database(backend, root.path()).await else {
        return;
    };
    let seed = root.path().join("oprf-seed");
    Broker::open(&instance(root.path(), "one", &db, &seed), clock())
        .await
        .unwrap();
    let missing = root.path().join("elsewhere").join("oprf-seed");
    let refused = Broker::open(&instance(root.path(), "two", &db, &missing), clock()).await;
    let Err(err @ BrokerError::Seed(SeedError::Missing { .. })) = refused else {
        panic!("an instance without the recorded seed started");
    };
    assert!(err.to_string().contains("another instance"), "{err}");
    assert!(!missing.exists());
}

/// The token of a recovery administrator.
fn admin_key() -> String {
    let mut bytes = [0u8; 32];
    getrandom_fill(&mut bytes);
    AdminPublicKey::from_bytes(bytes).to_string()
}

async fn whoami(url: &str, token: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(format!("{url}/v1/admin/whoami"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Admin tokens expire; after a rotation only the new token works; a
/// removed administrator's token stops at once; each step is audited.
async fn admin_tokens_expire_rotate_and_are_revoked(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let actor = kluis_audit::Actor::admin("host").unwrap();
    let name = unique("bram");
    let ttl = 7 * 24 * 3600;
    let first = admin::add_admin(tb.store(), &name, &admin_key(), ttl, &actor, tb.now())
        .await
        .unwrap();
    let first = first.expose().to_owned();
    assert_eq!(whoami(&tb.url, &first).await.0, 200);

    // Expiry: one second before it works, at it it does not.
    tb.clock.advance(ttl - 1);
    assert_eq!(whoami(&tb.url, &first).await.0, 200);
    tb.clock.advance(1);
    let (status, body) = whoami(&tb.url, &first).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("expired"), "{body}");

    // Rotation: the old token stays refused, the new one works.
    let second = admin::rotate_admin_token(tb.store(), &name, ttl, &actor, tb.now())
        .await
        .unwrap();
    let second = second.expose().to_owned();
    assert_ne!(first, second);
    assert_eq!(whoami(&tb.url, &first).await.0, 401);
    assert_eq!(whoami(&tb.url, &second).await.0, 200);
    // A rotation before expiry ends the old token too.
    let third = admin::rotate_admin_token(tb.store(), &name, ttl, &actor, tb.now())
        .await
        .unwrap();
    assert_eq!(whoami(&tb.url, &second).await.0, 401, "rotated away");
    assert_eq!(whoami(&tb.url, third.expose()).await.0, 200);

    // Removal: the live token stops at once.
    admin::remove_admin(tb.store(), &name, &actor, tb.now())
        .await
        .unwrap();
    assert_eq!(whoami(&tb.url, third.expose()).await.0, 401, "removed");
    assert!(matches!(
        admin::remove_admin(tb.store(), &name, &actor, tb.now()).await,
        Err(admin::AdminError::NoSuchAdmin(_))
    ));
    assert!(matches!(
        admin::rotate_admin_token(tb.store(), &name, ttl, &actor, tb.now()).await,
        Err(admin::AdminError::NoSuchAdmin(_))
    ));

    let rows = tb.store().audit_rows().await.unwrap();
    let of = |action: Action| {
        rows.iter()
            .filter(|r| r.entry.action == action && r.entry.target == name)
            .count()
    };
    assert_eq!(of(Action::AdminAdded), 1);
    assert_eq!(of(Action::AdminTokenRotated), 2);
    assert_eq!(
        of(Action::AdminRemoved),
        1,
        "one removal; the failed one left none"
    );
    tb.shutdown().await;
}

/// `/metrics` answers only the configured metrics token or an admin token;
/// `/healthz` stays open.
async fn metrics_need_a_token(backend: Backend) {
    let metrics_token = unique("metrics-token-0123456789abcdef-");
    let settings = Settings {
        metrics_token_hash: Some(Sha256::digest(metrics_token.as_bytes()).into()),
        ..test_settings()
    };
    let Some(tb) = start(backend, settings).await else {
        return;
    };
    let get = |token: Option<String>, path: &'static str| {
        let url = format!("{}{path}", tb.url);
        async move {
            let mut req = reqwest::Client::new().get(url);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let (status, body) = get(None, "/metrics").await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("kluis_"), "{body}");
    assert_eq!(get(None, "/healthz").await.0, 200);
    assert_eq!(get(Some("wrong".into()), "/metrics").await.0, 401);
    assert_eq!(
        get(Some(format!("{metrics_token}x")), "/metrics").await.0,
        401
    );
    let org = OrgSigningKey::init(&tb.dir.path().join("org.key")).unwrap();
    let (client, _state) = tb.device(org.public_key());
    let out = client
        .register(&Registration {
            email: &format!("{}@example.org", unique("m")),
            display_name: "M",
            password: &Password::new(unique("pw ")),
            public_key: &unique("kluis1testkey"),
            secret_identity: b"s",
            invite: None,
        })
        .await
        .unwrap();
    assert_eq!(
        get(Some(out.session.token.expose().to_owned()), "/metrics")
            .await
            .0,
        401,
        "a user's session token is not enough"
    );
    let (status, body) = get(Some(metrics_token.clone()), "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains("kluis_registrations_total 1"), "{body}");
    let actor = kluis_audit::Actor::admin("host").unwrap();
    let token = admin::add_admin(
        tb.store(),
        &unique("ops"),
        &admin_key(),
        DEFAULT_ADMIN_TOKEN_TTL_SECS,
        &actor,
        tb.now(),
    )
    .await
    .unwrap();
    assert_eq!(
        get(Some(token.expose().to_owned()), "/metrics").await.0,
        200
    );
    tb.clock.advance(DEFAULT_ADMIN_TOKEN_TTL_SECS);
    assert_eq!(
        get(Some(token.expose().to_owned()), "/metrics").await.0,
        401,
        "an expired admin token is not enough"
    );
    tb.shutdown().await;
}

on_both_backends!(
    the_seed_is_never_replaced_silently,
    a_recorded_seed_is_required_even_before_the_first_account,
    admin_tokens_expire_rotate_and_are_revoked,
    metrics_need_a_token,
);

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The data directory is 0700 and the database with its `-wal` and `-shm`
/// files 0600, also when an older broker left them open to others.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_files_and_data_directory_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = tempfile::tempdir().unwrap();
    let org = OrgSigningKey::init(&root.path().join("org.key")).unwrap();
    let config = |dir: &str| {
        let env = |k: &str| match k {
            "KLUIS_HOME" => Some(root.path().display().to_string()),
            _ => None,
        };
        let overrides = Overrides {
            config_file: None,
            data_dir: Some(root.path().join(dir)),
            listen: None,
        };
        let mut c = Config::resolve(&overrides, &env).unwrap();
        c.settings = test_settings();
        c
    };
    // A fresh data directory.
    let broker = Broker::open(&config("fresh"), clock()).await.unwrap();
    register(&broker, &org).await;
    let data = root.path().join("fresh");
    let db = data.join("broker.sqlite3");
    assert_eq!(mode(&data), 0o700);
    for file in [db.clone(), wal(&db, "-wal"), wal(&db, "-shm")] {
        assert!(file.is_file(), "{} missing", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    drop(broker);

    // An older broker's files, 0755 and 0644: made private at start.
    let old = root.path().join("old");
    std::fs::create_dir(&old).unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old_db = old.join("broker.sqlite3");
    std::fs::write(&old_db, b"").unwrap();
    std::fs::set_permissions(&old_db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let broker = Broker::open(&config("old"), clock()).await.unwrap();
    register(&broker, &org).await;
    assert_eq!(mode(&old), 0o700);
    for file in [old_db.clone(), wal(&old_db, "-wal"), wal(&old_db, "-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

fn wal(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Runs `kluis-broker` with `args` in `home` (its config directory; data in
/// `home/data`), and returns (exit code, stdout, stderr).
fn run(home: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kluis-broker"))
        .env_clear()
        .env("KLUIS_HOME", home)
        .env("KLUIS_BROKER_LOG", "info")
        .envs(env.iter().copied())
        .args(["--data-dir", &home.join("data").display().to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `kluis-broker serve` child process, killed on drop.
struct Served {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Served {
    /// Starts `kluis-broker serve` as [`run`] would run a command, with open
    /// registration, and waits for its address.
    fn start(home: &Path, env: &[(&str, &str)]) -> Self {
        use std::io::BufRead as _;
        let mut child = Command::new(env!("CARGO_BIN_EXE_kluis-broker"))
            .env_clear()
            .env("KLUIS_HOME", home)
            .env("KLUIS_BROKER_LOG", "info")
            .env("KLUIS_BROKER_REGISTRATION", "open")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .args(["--data-dir", &home.join("data").display().to_string()])
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut log = String::new();
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let line = crate::flood::strip_ansi(&line);
                if let Some(rest) = line.split("address=http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or_default();
                    let _ = tx.send(Ok(addr.to_owned()));
                }
                log.push_str(&line);
                log.push('\n');
            }
            let _ = tx.send(Err(log));
        });
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(Ok(addr)) => Self {
                child,
                addr: addr.parse().unwrap(),
            },
            other => {
                let _ = child.kill();
                panic!("kluis-broker serve did not start: {other:?}");
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The released binary: the seed is created outside the data directory,
/// `serve` refuses to start without it once accounts exist, the admin
/// token commands work and are audited, and `/metrics` needs a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_binary_guards_its_seed_tokens_and_metrics() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let metrics_token = unique("metrics-token-for-the-binary-test-");
    let mut served = Served::start(home, &[("KLUIS_BROKER_METRICS_TOKEN", &metrics_token)]);
    let seed = home.join("oprf-seed");
    assert!(seed.is_file(), "the seed is in the config directory");
    assert!(
        !home.join("data").join("oprf-seed").exists(),
        "not in the data directory"
    );
    let url = format!("http://{}", served.addr);
    let org = OrgSigningKey::init(&home.join("org.key")).unwrap();
    let (client, _state) = device(&url, &org);
    client
        .register(&Registration {
            email: &format!("{}@example.org", unique("bin")),
            display_name: "Bin",
            password: &Password::new(unique("pw ")),
            public_key: &unique("kluis1testkey"),
            secret_identity: b"s",
            invite: None,
        })
        .await
        .unwrap();
    let get = |token: Option<&str>| {
        let mut req = reqwest::Client::new().get(format!("{url}/metrics"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(None).await, 401, "unauthenticated /metrics");
    assert_eq!(get(Some(&metrics_token)).await, 200);

    // Admin tokens through the commands.
    let key = admin_key();
    let (code, token, err) = run(
        home,
        &["admin", "admins", "add", "--name", "bram", "--key", &key],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("valid 90 days"), "{err}");
    let token = token.trim().to_owned();
    assert_eq!(whoami(&url, &token).await.0, 200);
    assert_eq!(
        get(Some(&token)).await,
        200,
        "an admin token reads /metrics"
    );
    let (code, new_token, err) = run(home, &["admin", "admins", "rotate", "bram"], &[]);
    assert_eq!(code, 0, "{err}");
    let new_token = new_token.trim().to_owned();
    assert_eq!(
        whoami(&url, &token).await.0,
        401,
        "the old token after rotation"
    );
    assert_eq!(whoami(&url, &new_token).await.0, 200);
    let (code, list, err) = run(home, &["admin", "admins", "list"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        list.contains("bram") && list.contains("token valid until"),
        "{list}"
    );
    let (code, _, err) = run(home, &["admin", "admins", "remove", "bram"], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        whoami(&url, &new_token).await.0,
        401,
        "a removed admin's token"
    );
    let (code, _, err) = run(home, &["admin", "admins", "remove", "bram"], &[]);
    assert_eq!(
        (code, err.contains("no administrator named bram")),
        (1, true),
        "{err}"
    );
    let (code, audit, err) = run(home, &["admin", "audit", "export"], &[]);
    assert_eq!(code, 0, "{err}");
    for action in ["admin.added", "admin.token_rotated", "admin.removed"] {
        assert!(audit.contains(action), "{action} not audited: {audit}");
    }
    served.stop();

    // The seed gone: `serve` refuses, names the file, and creates none.
    std::fs::remove_file(&seed).unwrap();
    let (code, _, err) = run(home, &["serve", "--listen", "127.0.0.1:0"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&seed.display().to_string()), "{err}");
    assert!(err.contains("already has accounts"), "{err}");
    assert!(!seed.exists(), "a new seed was created");
}
