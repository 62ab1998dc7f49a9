//! Configuration: built-in defaults < TOML file < `KLUIS_BROKER_*`
//! environment variables < command-line flags.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use kluis_types::{KsfParams, OrgPublicKey};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::ratelimit::Limit;

/// Address the broker listens on when nothing else is configured.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8750";

/// Lifetime of a new or rotated admin API token unless `admin_token_ttl_days`
/// says otherwise: 90 days.
pub const DEFAULT_ADMIN_TOKEN_TTL_SECS: i64 = 90 * 24 * 3600;

/// Shortest accepted metrics bearer token, in characters.
pub const MIN_METRICS_TOKEN_CHARS: usize = 32;

/// Configuration problems.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this schema.
    #[error("invalid config file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: toml::de::Error,
    },
    /// A setting has an invalid value.
    #[error("invalid value for {key}: {reason}")]
    Invalid {
        /// Config key or environment variable.
        key: String,
        /// Why.
        reason: String,
    },
    /// TLS is off and the listen address is not loopback.
    #[error("refusing plain HTTP on non-loopback address {0}: configure [tls] cert and key")]
    PlainHttpNotLoopback(SocketAddr),
    /// No data directory could be determined.
    #[error("no data directory: set --data-dir, KLUIS_HOME or data_dir")]
    NoDataDir,
}

/// Whether anyone may register, or only holders of an invite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// Anyone who can reach the broker may register.
    Open,
    /// A valid, unused, unexpired invite token is required.
    Invite,
}

/// Request limits.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest accepted request body, in bytes.
    pub body_bytes: usize,
    /// Login starts per source network (in memory, per instance).
    pub login_per_ip: Limit,
    /// Login starts per account over all networks: the ceiling, shared by
    /// the instances through the database (see `ratelimit::account`).
    pub login_per_account: Limit,
    /// Backoff per (account, source network) after failed logins.
    pub login_backoff: crate::ratelimit::account::Backoff,
    /// Registration requests per source network (in memory, per instance).
    pub register_per_ip: Limit,
    /// Registration requests per e-mail (in memory, per instance).
    pub register_per_account: Limit,
    /// Keys each in-memory limiter remembers (least recently seen first out).
    pub limiter_capacity: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_bytes: 256 * 1024,
            login_per_ip: Limit {
                max: 60,
                window_secs: 60,
            },
            login_per_account: Limit {
                max: 30,
                window_secs: 3600,
            },
            login_backoff: crate::ratelimit::account::Backoff::default(),
            register_per_ip: Limit {
                max: 20,
                window_secs: 3600,
            },
            register_per_account: Limit {
                max: 5,
                window_secs: 3600,
            },
            limiter_capacity: crate::ratelimit::DEFAULT_CAPACITY,
        }
    }
}

/// Connection-level defences: timeouts, connection caps and the body limit
/// of the routes that need no session (`[http]` in `broker.toml`; every
/// value must be positive). docs/BROKER.md ("Threat model") says which
/// attack each one stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLimits {
    /// Open connections, all peers together. Beyond it a new connection is
    /// closed at once and a warning is logged.
    pub max_connections: usize,
    /// Open connections from one peer IP address.
    pub max_connections_per_ip: usize,
    /// A TLS handshake must finish within this many seconds.
    pub tls_handshake_secs: u64,
    /// HTTP/1 request headers must arrive within this many seconds.
    pub header_timeout_secs: u64,
    /// A whole request (headers, body and answer) must finish within this
    /// many seconds; otherwise it gets 408 and the connection is closed.
    pub request_timeout_secs: u64,
    /// A connection with no request in progress for this many seconds is
    /// closed (idle keep-alive, a silent TCP connection, an idle HTTP/2
    /// connection).
    pub idle_timeout_secs: u64,
    /// HTTP/2 keep-alive PING interval.
    pub http2_keepalive_interval_secs: u64,
    /// An HTTP/2 PING must be answered within this many seconds.
    pub http2_keepalive_timeout_secs: u64,
    /// Concurrent HTTP/2 streams per connection.
    pub http2_max_concurrent_streams: u32,
    /// Largest body on the small routes that need no session
    /// (`register/start`, `login/start`, `login/finish`, a new recovery
    /// request), in bytes. The other routes use `[limits] body_bytes`.
    pub pre_auth_body_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: 8192,
            max_connections_per_ip: 512,
            tls_handshake_secs: 10,
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            idle_timeout_secs: 60,
            http2_keepalive_interval_secs: 30,
            http2_keepalive_timeout_secs: 20,
            http2_max_concurrent_streams: 64,
            pre_auth_body_bytes: 16 * 1024,
        }
    }
}

impl Limits {
    fn validate(&self) -> Result<(), ConfigError> {
        let b = self.login_backoff;
        let positive = [
            (
                "limits.login_per_ip.window_secs",
                self.login_per_ip.window_secs,
            ),
            (
                "limits.login_per_account.window_secs",
                self.login_per_account.window_secs,
            ),
            (
                "limits.register_per_ip.window_secs",
                self.register_per_ip.window_secs,
            ),
            (
                "limits.register_per_account.window_secs",
                self.register_per_account.window_secs,
            ),
            ("limits.login_backoff.base_secs", b.base_secs),
            ("limits.login_backoff.max_secs", b.max_secs),
            ("limits.login_backoff.forget_secs", b.forget_secs),
            (
                "limits.limiter_capacity",
                i64::try_from(self.limiter_capacity).unwrap_or(1),
            ),
        ];
        match positive.into_iter().find(|(_, v)| *v <= 0) {
            Some((key, _)) => Err(invalid(key, "must be positive")),
            None => Ok(()),
        }
    }
}

impl HttpLimits {
    fn validate(&self) -> Result<(), ConfigError> {
        let counts = [
            ("http.max_connections", self.max_connections),
            ("http.max_connections_per_ip", self.max_connections_per_ip),
            ("http.pre_auth_body_bytes", self.pre_auth_body_bytes),
        ];
        let secs = [
            ("http.tls_handshake_secs", self.tls_handshake_secs),
            ("http.header_timeout_secs", self.header_timeout_secs),
            ("http.request_timeout_secs", self.request_timeout_secs),
            ("http.idle_timeout_secs", self.idle_timeout_secs),
            (
                "http.http2_keepalive_interval_secs",
                self.http2_keepalive_interval_secs,
            ),
            (
                "http.http2_keepalive_timeout_secs",
                self.http2_keepalive_timeout_secs,
            ),
        ];
        for (key, value) in counts {
            if value == 0 {
                return Err(invalid(key, "must be positive"));
            }
        }
        for (key, value) in secs {
            if value == 0 || value > 86_400 {
                return Err(invalid(key, "must be between 1 and 86400 seconds"));
            }
        }
        if self.http2_max_concurrent_streams == 0 {
            return Err(invalid(
                "http.http2_max_concurrent_streams",
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// Settings the running server needs (no paths, no secrets).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Open or invite-only registration.
    pub registration: RegistrationMode,
    /// Session lifetime.
    pub session_ttl_secs: i64,
    /// How long a login may sit between its two round trips.
    pub login_ttl_secs: i64,
    /// Request limits.
    pub limits: Limits,
    /// Peers whose `X-Forwarded-For` is believed. Empty: the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// KSF parameters announced for unknown accounts, so their login start
    /// looks like a real one. Set it to what your clients register with.
    pub default_ksf: KsfParams,
    /// Most directory hits returned per query.
    pub directory_limit: i64,
    /// The organisation public key, when configured: published recovery
    /// keys must carry its signature.
    pub org_public_key: Option<OrgPublicKey>,
    /// Connection timeouts and caps.
    pub http: HttpLimits,
    /// SHA-256 of the bearer token `/metrics` also accepts (besides an
    /// admin token), when one is configured.
    pub metrics_token_hash: Option<[u8; 32]>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            registration: RegistrationMode::Invite,
            session_ttl_secs: 30 * 24 * 3600,
            login_ttl_secs: 120,
            limits: Limits::default(),
            trusted_proxies: Vec::new(),
            default_ksf: KsfParams {
                m_cost_kib: 65536,
                t_cost: 3,
                p_cost: 1,
            },
            directory_limit: 50,
            org_public_key: None,
            http: HttpLimits::default(),
            metrics_token_hash: None,
        }
    }
}

/// TLS certificate chain and key (PEM files).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPaths {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Where the OPRF seed comes from (`crate::opaque::open_seed` loads it).
pub enum SeedSource {
    /// A 0600 file, created on the first start against an empty database.
    File(PathBuf),
    /// A systemd credential, `$CREDENTIALS_DIRECTORY/oprf-seed`: read,
    /// never created.
    Credential(PathBuf),
    /// Base64 text from `KLUIS_BROKER_OPRF_SEED`.
    Env(Zeroizing<String>),
}

impl std::fmt::Debug for SeedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
            Self::Credential(p) => f.debug_tuple("Credential").field(p).finish(),
            Self::Env(_) => f.write_str("Env(<redacted>)"),
        }
    }
}

/// The seed's location when none is configured: the systemd credential
/// when systemd passes credentials, else `oprf-seed` in the configuration
/// directory — never the data directory, so that a backup of the data
/// directory holds no password oracle. A seed an older broker created in
/// the data directory is still used while it is there (and warned about).
fn default_seed(
    config_dir: Option<PathBuf>,
    data_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SeedSource, ConfigError> {
    if let Some(dir) = env("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) {
        return Ok(SeedSource::Credential(PathBuf::from(dir).join("oprf-seed")));
    }
    let path = config_dir
        .ok_or_else(|| invalid("oprf_seed_file", "no configuration directory: set it"))?
        .join("oprf-seed");
    let legacy = data_dir.join("oprf-seed");
    if !path.exists() && legacy.is_file() {
        return Ok(SeedSource::File(legacy));
    }
    Ok(SeedSource::File(path))
}

/// The TOML file's schema.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    registration: Option<RegistrationMode>,
    public_url: Option<String>,
    org_public_key: Option<String>,
    oprf_seed_file: Option<PathBuf>,
    admin_token_ttl_days: Option<i64>,
    metrics_token_file: Option<PathBuf>,
    trusted_proxies: Option<Vec<IpAddr>>,
    session_ttl_secs: Option<i64>,
    log: Option<String>,
    tls: Option<TlsPaths>,
    limits: Option<Limits>,
    default_ksf: Option<KsfParams>,
    http: Option<HttpLimits>,
}

/// Fully resolved configuration.
#[derive(Debug)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Directory for the SQLite file and the OPRF seed.
    pub data_dir: PathBuf,
    /// `sqlite:…` or `postgres://…`.
    pub database_url: String,
    /// TLS, if any.
    pub tls: Option<TlsPaths>,
    /// Source of the OPRF seed.
    pub oprf_seed: SeedSource,
    /// Base URL clients use (embedded in invites).
    pub public_url: Option<String>,
    /// Org public key (embedded in invites).
    pub org_public_key: Option<OrgPublicKey>,
    /// `tracing` filter.
    pub log_filter: String,
    /// Lifetime of the admin API tokens that `admin admins add` and
    /// `rotate` issue.
    pub admin_token_ttl_secs: i64,
    /// Runtime settings.
    pub settings: Settings,
}

/// Command-line flags that override everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--data-dir DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--listen ADDR`.
    pub listen: Option<String>,
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

fn read_file_config(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// The platform directories used when neither `--data-dir` nor
/// `KLUIS_HOME` is given.
fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("org", "Kluis", "kluis")
}

impl Config {
    /// Resolves the configuration. `env` looks up environment variables (the
    /// binary passes `std::env::var`; tests pass a map).
    pub fn resolve(
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let home = env("KLUIS_HOME").map(PathBuf::from);
        let config_path = overrides
            .config_file
            .clone()
            .or_else(|| env("KLUIS_BROKER_CONFIG").map(PathBuf::from));
        let config_dir = match &config_path {
            Some(path) => Some(match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            }),
            None => home
                .clone()
                .or_else(|| project_dirs().map(|d| d.config_dir().to_owned())),
        };
        let file = match config_path {
            Some(path) => read_file_config(&path)?,
            None => {
                let default = config_dir.as_ref().map(|d| d.join("broker.toml"));
                match default {
                    Some(p) if p.is_file() => read_file_config(&p)?,
                    _ => FileConfig::default(),
                }
            }
        };

        let data_dir = overrides
            .data_dir
            .clone()
            .or_else(|| env("KLUIS_BROKER_DATA_DIR").map(PathBuf::from))
            .or(file.data_dir)
            .or_else(|| home.as_ref().map(|h| h.join("broker")))
            .or_else(|| project_dirs().map(|d| d.data_dir().join("broker")))
            .ok_or(ConfigError::NoDataDir)?;

        let listen_text = overrides
            .listen
            .clone()
            .or_else(|| env("KLUIS_BROKER_LISTEN"))
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| invalid("listen", "expected IP:PORT"))?;

        let database_url = env("KLUIS_BROKER_DATABASE_URL")
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite:{}", data_dir.join("broker.sqlite3").display()));

        let mut settings = Settings::default();
        if let Some(mode) = env("KLUIS_BROKER_REGISTRATION") {
            settings.registration = match mode.as_str() {
                "open" => RegistrationMode::Open,
                "invite" => RegistrationMode::Invite,
                _ => {
                    return Err(invalid(
                        "KLUIS_BROKER_REGISTRATION",
                        "expected open or invite",
                    ));
                }
            };
        } else if let Some(mode) = file.registration {
            settings.registration = mode;
        }
        if let Some(ttl) = file.session_ttl_secs {
            if ttl <= 0 {
                return Err(invalid("session_ttl_secs", "must be positive"));
            }
            settings.session_ttl_secs = ttl;
        }
        if let Some(limits) = file.limits {
            limits.validate()?;
            settings.limits = limits;
        }
        if let Some(http) = file.http {
            http.validate()?;
            settings.http = http;
        }
        if let Some(ksf) = file.default_ksf {
            settings.default_ksf = ksf;
        }
        settings.trusted_proxies = match env("KLUIS_BROKER_TRUSTED_PROXIES") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .map_err(|_| invalid("KLUIS_BROKER_TRUSTED_PROXIES", "bad IP"))
                })
                .collect::<Result<_, _>>()?,
            None => file.trusted_proxies.unwrap_or_default(),
        };

        let oprf_seed = match env("KLUIS_BROKER_OPRF_SEED") {
            Some(text) => SeedSource::Env(Zeroizing::new(text)),
            None => match env("KLUIS_BROKER_OPRF_SEED_FILE")
                .map(PathBuf::from)
                .or(file.oprf_seed_file)
            {
                Some(path) => SeedSource::File(path),
                None => default_seed(config_dir, &data_dir, env)?,
            },
        };
        let admin_token_ttl_secs = match file.admin_token_ttl_days {
            None => DEFAULT_ADMIN_TOKEN_TTL_SECS,
            Some(days @ 1..=3650) => days * 24 * 3600,
            Some(_) => return Err(invalid("admin_token_ttl_days", "must be 1 to 3650")),
        };
        settings.metrics_token_hash = metrics_token(env, file.metrics_token_file.as_deref())?;

        let org_public_key = env("KLUIS_BROKER_ORG_PUBLIC_KEY")
            .or(file.org_public_key)
            .map(|k| OrgPublicKey::parse(&k).map_err(|e| invalid("org_public_key", e.to_string())))
            .transpose()?;
        settings.org_public_key = org_public_key;

        let tls = file.tls;
        if tls.is_none() && !listen.ip().is_loopback() {
            return Err(ConfigError::PlainHttpNotLoopback(listen));
        }

        Ok(Self {
            listen,
            data_dir,
            database_url,
            tls,
            oprf_seed,
            public_url: env("KLUIS_BROKER_PUBLIC_URL").or(file.public_url),
            org_public_key,
            log_filter: env("KLUIS_BROKER_LOG")
                .or(file.log)
                .unwrap_or_else(|| "info".to_owned()),
            admin_token_ttl_secs,
            settings,
        })
    }
}

/// The SHA-256 of the metrics bearer token, from `KLUIS_BROKER_METRICS_TOKEN`
/// or the file `metrics_token_file` names (surrounding white space is
/// ignored). The token itself is not kept.
fn metrics_token(
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&Path>,
) -> Result<Option<[u8; 32]>, ConfigError> {
    use sha2::Digest as _;
    let (key, text) = match (env("KLUIS_BROKER_METRICS_TOKEN"), file) {
        (Some(text), _) => ("KLUIS_BROKER_METRICS_TOKEN", Zeroizing::new(text)),
        (None, Some(path)) => (
            "metrics_token_file",
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?,
            ),
        ),
        (None, None) => return Ok(None),
    };
    let token = text.trim();
    if token.chars().count() < MIN_METRICS_TOKEN_CHARS
        || !token.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(invalid(
            key,
            format!("at least {MIN_METRICS_TOKEN_CHARS} printable ASCII characters, no spaces"),
        ));
    }
    Ok(Some(sha2::Sha256::digest(token.as_bytes()).into()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn kluis_home_gives_data_dir_and_sqlite_default() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap().to_owned();
        let cfg =
            Config::resolve(&Overrides::default(), &env_of(&[("KLUIS_HOME", &home)])).unwrap();
        assert_eq!(cfg.data_dir, dir.path().join("broker"));
        assert!(cfg.database_url.starts_with("sqlite:"));
        assert_eq!(cfg.listen.to_string(), DEFAULT_LISTEN);
        assert!(matches!(cfg.oprf_seed, SeedSource::File(_)));
    }

    #[test]
    fn file_env_and_flags_layer_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:1000\"\nregistration = \"open\"\n[limits]\nbody_bytes = 10\n",
        )
        .unwrap();
        let o = Overrides {
            config_file: Some(path.clone()),
            data_dir: Some(dir.path().into()),
            listen: None,
        };
        let cfg = Config::resolve(&o, &env_of(&[])).unwrap();
        assert_eq!(cfg.listen.port(), 1000);
        assert_eq!(cfg.settings.registration, RegistrationMode::Open);
        assert_eq!(cfg.settings.limits.body_bytes, 10);
        let cfg =
            Config::resolve(&o, &env_of(&[("KLUIS_BROKER_LISTEN", "127.0.0.1:2000")])).unwrap();
        assert_eq!(cfg.listen.port(), 2000);
        let o2 = Overrides {
            listen: Some("127.0.0.1:3000".into()),
            ..o
        };
        let cfg =
            Config::resolve(&o2, &env_of(&[("KLUIS_BROKER_LISTEN", "127.0.0.1:2000")])).unwrap();
        assert_eq!(cfg.listen.port(), 3000);
    }

    #[test]
    fn plain_http_refused_off_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let o = Overrides {
            config_file: None,
            data_dir: Some(dir.path().into()),
            listen: Some("0.0.0.0:8750".into()),
        };
        let home = dir.path().to_str().unwrap().to_owned();
        assert!(matches!(
            Config::resolve(&o, &env_of(&[("KLUIS_HOME", &home)])),
            Err(ConfigError::PlainHttpNotLoopback(_))
        ));
    }

    #[test]
    fn http_limits_are_read_and_zero_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.toml");
        let o = Overrides {
            config_file: Some(path.clone()),
            data_dir: Some(dir.path().into()),
            listen: None,
        };
        std::fs::write(
            &path,
            "[http]\nmax_connections = 7\nidle_timeout_secs = 3\n",
        )
        .unwrap();
        let cfg = Config::resolve(&o, &env_of(&[])).unwrap();
        assert_eq!(cfg.settings.http.max_connections, 7);
        assert_eq!(cfg.settings.http.idle_timeout_secs, 3);
        assert_eq!(
            cfg.settings.http.request_timeout_secs,
            HttpLimits::default().request_timeout_secs
        );
        std::fs::write(&path, "[http]\nrequest_timeout_secs = 0\n").unwrap();
        match Config::resolve(&o, &env_of(&[])) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "http.request_timeout_secs"),
            other => panic!("expected an invalid value, got {other:?}"),
        }
    }

    fn seed_path(cfg: &Config) -> &Path {
        match &cfg.oprf_seed {
            SeedSource::File(p) => p,
            other => panic!("expected a seed file, got {other:?}"),
        }
    }

    #[test]
    fn the_default_seed_is_outside_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap().to_owned();
        // KLUIS_HOME: next to broker.toml, not in $KLUIS_HOME/broker.
        let cfg =
            Config::resolve(&Overrides::default(), &env_of(&[("KLUIS_HOME", &home)])).unwrap();
        assert_eq!(seed_path(&cfg), dir.path().join("oprf-seed"));
        assert!(!seed_path(&cfg).starts_with(&cfg.data_dir));
        // An explicit config file: its directory.
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(etc.join("broker.toml"), "").unwrap();
        let o = Overrides {
            config_file: Some(etc.join("broker.toml")),
            data_dir: Some(dir.path().join("var")),
            listen: None,
        };
        let cfg = Config::resolve(&o, &env_of(&[])).unwrap();
        assert_eq!(seed_path(&cfg), etc.join("oprf-seed"));
        // Under systemd with credentials: the credential, never created.
        let cfg =
            Config::resolve(&o, &env_of(&[("CREDENTIALS_DIRECTORY", "/run/creds/x")])).unwrap();
        assert!(
            matches!(&cfg.oprf_seed, SeedSource::Credential(p) if p == Path::new("/run/creds/x/oprf-seed"))
        );
        // Configured explicitly: as configured.
        let cfg =
            Config::resolve(&o, &env_of(&[("KLUIS_BROKER_OPRF_SEED_FILE", "/srv/seed")])).unwrap();
        assert_eq!(seed_path(&cfg), Path::new("/srv/seed"));
        // An older broker's seed in the data directory is still found.
        std::fs::create_dir(dir.path().join("var")).unwrap();
        std::fs::write(dir.path().join("var").join("oprf-seed"), "x").unwrap();
        let cfg = Config::resolve(&o, &env_of(&[])).unwrap();
        assert_eq!(seed_path(&cfg), dir.path().join("var").join("oprf-seed"));
    }

    #[test]
    fn admin_token_ttl_and_metrics_token_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.toml");
        let o = Overrides {
            config_file: Some(path.clone()),
            data_dir: Some(dir.path().into()),
            listen: None,
        };
        std::fs::write(&path, "").unwrap();
        let cfg = Config::resolve(&o, &env_of(&[])).unwrap();
        assert_eq!(cfg.admin_token_ttl_secs, DEFAULT_ADMIN_TOKEN_TTL_SECS);
        assert_eq!(cfg.settings.metrics_token_hash, None);
        let token_file = dir.path().join("metrics-token");
        std::fs::write(&token_file, "m".repeat(MIN_METRICS_TOKEN_CHARS) + "\n").unwrap();
        std::fs::write(
            &path,
            format!("admin_token_ttl_days = 7\nmetrics_token_file = {token_file:?}\n"),
        )
        .unwrap();
        let cfg = Config::resolve(&o, &env_of(&[])).unwrap();
        assert_eq!(cfg.admin_token_ttl_secs, 7 * 86_400);
        let want: [u8; 32] =
            <sha2::Sha256 as sha2::Digest>::digest("m".repeat(MIN_METRICS_TOKEN_CHARS)).into();
        assert_eq!(cfg.settings.metrics_token_hash, Some(want));
        std::fs::write(&path, "admin_token_ttl_days = 0\n").unwrap();
        assert!(matches!(
            Config::resolve(&o, &env_of(&[])),
            Err(ConfigError::Invalid { .. })
        ));
        std::fs::write(&path, "").unwrap();
        assert!(matches!(
            Config::resolve(&o, &env_of(&[("KLUIS_BROKER_METRICS_TOKEN", "short")])),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let o = Overrides {
            config_file: Some(path),
            ..Overrides::default()
        };
        assert!(matches!(
            Config::resolve(&o, &env_of(&[])),
            Err(ConfigError::Parse { .. })
        ));
    }
}
