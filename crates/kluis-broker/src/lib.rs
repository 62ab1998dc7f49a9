//! The Kluis broker: zero-knowledge accounts (OPAQUE, RFC 9807), versioned
//! key escrow of sealed identities, and a directory of public keys certified
//! by the organisation's Ed25519 key.
//!
//! Owns: the HTTP API (`api`, with the server half of OPAQUE in
//! `api::opaque` and the OPRF seed in [`opaque`]), storage behind one trait
//! per aggregate and its two SQL backends ([`store`]), rate limits, the
//! administrator commands ([`admin`]) and the server loop ([`server`]).
//! The binary `kluis-broker` is a thin shell over this crate.
//!
//! Must not depend on: `kluis-format`, `kluis-sync` or `kluis-agent` (nor
//! anything client-side that links them). The broker stores opaque blobs
//! (OPAQUE records, sealed escrow, public-key text, token hashes) and
//! never needs to read the file format. Only `kluis-types`, `kluis-audit`,
//! `kluis-approvals` and `kluis-org` are shared with the clients.
#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;

pub mod admin;
pub mod api;
pub mod clock;
pub mod config;
pub mod metrics;
pub mod opaque;
/// The organisation signing key, from its own crate so that the `kluis`
/// client can use it without linking this one.
pub use kluis_org as org;
pub mod ratelimit;
pub mod server;
pub mod store;

use api::AppState;
use clock::Clock;
use config::{Config, Settings};
use opaque::{OprfSeed, SeedError};
use store::{Store, StoreError};

/// Failures opening a broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The OPRF seed could not be loaded.
    #[error(transparent)]
    Seed(#[from] SeedError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configured TLS certificate or key could not be used.
    #[error(transparent)]
    Tls(#[from] server::TlsError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The configured address.
        addr: std::net::SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// A broker ready to serve: store, OPRF seed, settings and clock.
pub struct Broker {
    state: AppState,
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path)?;
    // An existing directory (an older broker's, or systemd's default 0755)
    // is made private too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
            tracing::warn!(dir = %path.display(), "the data directory was open to others: made it private (mode 0700)");
        }
    }
    Ok(())
}

/// Creates the data directory (0700) and opens and migrates the database a
/// configuration names, without the OPRF seed: what `kluis-broker admin`
/// needs.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, BrokerError> {
    create_private_dir(&config.data_dir).map_err(|source| BrokerError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    Ok(store::connect(&config.database_url).await?)
}

impl Broker {
    /// Opens the data directory, OPRF seed and database a configuration names.
    pub async fn open(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, BrokerError> {
        let store = open_store(config).await?;
        let seed = opaque::open_seed(
            &config.oprf_seed,
            store.as_ref(),
            &config.data_dir,
            clock.now(),
        )
        .await?;
        Ok(Self::from_parts(
            store,
            seed,
            config.settings.clone(),
            clock,
        ))
    }

    /// What `kluis-broker serve` does: loads the configured TLS certificate
    /// and key (if any), opens the broker and serves it on the configured
    /// address. Plain HTTP off loopback was already refused by
    /// [`Config::resolve`].
    pub async fn serve_config(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, server::RunningServer), BrokerError> {
        let tls = match &config.tls {
            Some(paths) => Some(server::tls_acceptor(&paths.cert, &paths.key)?),
            None => None,
        };
        let broker = Self::open(config, clock).await?;
        let running =
            broker
                .spawn(config.listen, tls)
                .await
                .map_err(|source| BrokerError::Listen {
                    addr: config.listen,
                    source,
                })?;
        Ok((broker, running))
    }

    /// Assembles a broker from parts (tests use this).
    pub fn from_parts(
        store: Arc<dyn Store>,
        seed: OprfSeed,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            state: AppState::new(store, seed, settings, clock),
        }
    }

    /// Handler state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.state.store().as_ref()
    }

    /// The HTTP router.
    pub fn router(&self) -> axum::Router {
        api::router(self.state.clone())
    }

    /// Binds and serves in the background.
    pub async fn spawn(
        &self,
        addr: std::net::SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<server::RunningServer> {
        server::spawn(addr, self.router(), tls, self.state.settings.http).await
    }
}
