//! The broker `kluis start` runs inside the process, on loopback, when no
//! organisation's broker is configured on this device.
//!
//! It is the whole server (axum, hyper's server side, sqlx), so it sits
//! behind the cargo feature `embedded-broker` (on by default). Without the
//! feature, [`EmbeddedBroker`] is a type with no values and
//! [`EmbeddedBroker::start`] fails with [`MISSING`], which says what to do
//! instead; `kluis start` itself has no `cfg` of its own.

use anyhow::Result;

/// What `kluis start` says when it needs the embedded broker and this build
/// has none.
pub const MISSING: &str = "this build of kluis has no embedded broker (it was built without the cargo feature `embedded-broker`), and `kluis start` needs one on a device without an account or with an account on an embedded broker. Connect this device to your organisation's broker instead (`kluis account register --invite …` or `kluis account login --broker URL --org-key KEY --email …`) and run `kluis start` again, or use a build with the embedded broker (`cargo build -p kluis-cli`, which has it by default)";

/// Whether this build can run the embedded broker; `Err` with [`MISSING`]
/// when it cannot, so that `kluis start` says so before asking for a
/// password.
pub fn available() -> Result<()> {
    if cfg!(feature = "embedded-broker") {
        Ok(())
    } else {
        Err(anyhow::anyhow!(MISSING))
    }
}

#[cfg(feature = "embedded-broker")]
pub use with::EmbeddedBroker;
#[cfg(not(feature = "embedded-broker"))]
pub use without::EmbeddedBroker;

#[cfg(feature = "embedded-broker")]
mod with {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::Arc;

    use anyhow::{Context, Result, bail};

    use crate::home::Home;

    /// The embedded broker: runs on its own threads as long as `start` runs.
    pub struct EmbeddedBroker {
        rt: tokio::runtime::Runtime,
        broker: kluis_broker::Broker,
        org: kluis_org::OrgSigningKey,
        url: String,
        _server: kluis_broker::server::RunningServer,
    }

    impl EmbeddedBroker {
        /// Runs the broker on the first of `ports` that is free.
        pub fn start(home: &Home, ports: &[u16]) -> Result<Self> {
            let dir = home.data.join("broker");
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let first = *ports.first().context("no port to listen on")?;
            let overrides = kluis_broker::config::Overrides {
                config_file: None,
                data_dir: Some(dir.clone()),
                listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, first)).to_string()),
            };
            // Only loopback can reach it, and the one user registers themselves.
            // Its OPRF seed lives with the configuration, not in the broker's
            // data directory (issue 18.4); a seed an older version left there
            // moves over.
            let seed = home.config.join("broker-oprf-seed");
            let legacy = dir.join("oprf-seed");
            if !seed.exists() && legacy.is_file() {
                std::fs::create_dir_all(&home.config)?;
                std::fs::rename(&legacy, &seed).with_context(|| {
                    format!("moving the broker's OPRF seed to {}", seed.display())
                })?;
            }
            let env = |k: &str| match k {
                "KLUIS_BROKER_REGISTRATION" => Some("open".to_owned()),
                "KLUIS_BROKER_OPRF_SEED_FILE" => Some(seed.display().to_string()),
                _ => None,
            };
            let config = kluis_broker::config::Config::resolve(&overrides, &env)?;
            let broker = rt.block_on(kluis_broker::Broker::open(
                &config,
                Arc::new(kluis_broker::clock::SystemClock),
            ))?;
            let mut tried = ports.iter();
            let server = loop {
                let Some(&port) = tried.next() else {
                    bail!(
                        "no free loopback port for the embedded broker (tried {} from {first}); pass --broker-port",
                        ports.len()
                    );
                };
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                match rt.block_on(broker.spawn(addr, None)) {
                    Ok(s) => break s,
                    Err(e) if ports.len() == 1 => {
                        return Err(anyhow::Error::new(e).context(format!(
                            "cannot listen on {addr}, the embedded broker's port of {} (is `kluis start` already running for it? if another program holds the port, pass --broker-port with a free one)",
                            home.data.display()
                        )));
                    }
                    Err(_) => {}
                }
            };
            let org_path = dir.join("org.key");
            let org = if org_path.exists() {
                kluis_org::OrgSigningKey::load(&org_path)?
            } else {
                kluis_org::OrgSigningKey::init(&org_path)?
            };
            let url = format!("http://{}", server.local_addr);
            Ok(EmbeddedBroker {
                rt,
                broker,
                org,
                url,
                _server: server,
            })
        }
    }

    impl EmbeddedBroker {
        /// The broker's address, `http://127.0.0.1:PORT`.
        pub fn url(&self) -> &str {
            &self.url
        }

        /// The organisation key this broker's directory is certified with.
        pub fn org_public_key(&self) -> String {
            self.org.public_key().to_string()
        }

        /// Runs a client call against this broker on its runtime.
        pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
            self.rt.block_on(f)
        }

        /// Certifies the key registered for `email`: the one user of an
        /// embedded broker is their own organisation.
        pub fn certify(&self, email: &kluis_types::Email, now: i64) -> Result<()> {
            self.rt.block_on(kluis_broker::admin::certify(
                self.broker.store(),
                &self.org,
                email,
                None,
                now,
            ))?;
            Ok(())
        }
    }
}

#[cfg(not(feature = "embedded-broker"))]
mod without {
    use anyhow::Result;

    use crate::home::Home;

    /// No embedded broker in this build: there are no values of this type.
    pub enum EmbeddedBroker {}

    impl EmbeddedBroker {
        /// Fails with [`super::MISSING`].
        pub fn start(_home: &Home, _ports: &[u16]) -> Result<Self> {
            Err(anyhow::anyhow!(super::MISSING))
        }

        pub fn url(&self) -> &str {
            match *self {}
        }

        pub fn org_public_key(&self) -> String {
            match *self {}
        }

        pub fn block_on<F: std::future::Future>(&self, _f: F) -> F::Output {
            match *self {}
        }

        pub fn certify(&self, _email: &kluis_types::Email, _now: i64) -> Result<()> {
            match *self {}
        }
    }
}
