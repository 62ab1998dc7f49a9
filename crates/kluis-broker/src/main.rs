//! `kluis-broker`: parses arguments, calls the library, prints.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};
use kluis_audit::Actor;
use kluis_broker::clock::{Clock as _, SystemClock};
use kluis_broker::config::{Config, Overrides};
use kluis_broker::org::OrgSigningKey;
use kluis_broker::{Broker, admin};
use kluis_types::{Email, Invite, OrgPublicKey, PublicKeyString};

#[derive(Parser)]
#[command(name = "kluis-broker", version, about = "Kluis key broker")]
struct Cli {
    /// TOML configuration file (default: $KLUIS_HOME/broker.toml or the platform config dir).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory for the SQLite database and the OPRF seed.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP(S) server.
    Serve {
        /// Listen address, e.g. 127.0.0.1:8750.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Administrator commands (run on the broker host, against its database).
    Admin {
        /// Who you are, for the audit log (default: $KLUIS_ADMIN_NAME, $USER, or "broker-host").
        #[arg(long = "as", global = true, value_name = "NAME")]
        actor: Option<String>,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Organisation signing key.
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// The OPRF seed (the OPAQUE server secret).
    Seed {
        #[command(subcommand)]
        command: SeedCommand,
    },
    /// Certify a user's (e-mail, public key) binding with the org key.
    Certify {
        /// The org secret key file (can live on removable media).
        #[arg(long, value_name = "FILE")]
        org_key: PathBuf,
        /// The user's address.
        #[arg(long)]
        email: String,
        /// Refuse unless this exact key is on file (compare fingerprints with the user first).
        #[arg(long, value_name = "KEY")]
        public_key: Option<String>,
    },
    /// Certify a group's (name, public key) binding with the org key (after
    /// creation and after every member removal, which rotates the key).
    CertifyGroup {
        /// The org secret key file.
        #[arg(long, value_name = "FILE")]
        org_key: PathBuf,
        /// The group name.
        #[arg(long)]
        name: String,
        /// Refuse unless this exact key is on file.
        #[arg(long, value_name = "KEY")]
        public_key: Option<String>,
    },
    /// Invites for invite-only registration.
    Invite {
        #[command(subcommand)]
        command: InviteCommand,
    },
    /// The organisation policy (signed with the org key).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Disable or re-enable a user (deprovisioning).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Recovery administrators (approval keys and admin API tokens).
    Admins {
        #[command(subcommand)]
        command: AdminsCommand,
    },
    /// The hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Print the policy in force (JSON) and its version.
    Show,
    /// Sign a policy document (TOML if the name ends in .toml, else JSON)
    /// with the org key and make it the next version.
    Set {
        /// The policy document.
        file: PathBuf,
        /// The org secret key file.
        #[arg(long, value_name = "FILE")]
        org_key: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// End every session at once, refuse login, mark the key revoked.
    Disable {
        /// The user's address.
        email: String,
    },
    /// Allow login again (old sessions stay ended).
    Enable {
        /// The user's address.
        email: String,
    },
}

#[derive(Subcommand)]
enum AdminsCommand {
    /// Register a recovery administrator and print their API token (once).
    Add {
        /// Unique name, shown to users whose key is recovered.
        #[arg(long)]
        name: String,
        /// Their approval key (`kluis-admin-ed25519:…`, from `kluis admin key init`).
        #[arg(long, value_name = "KEY")]
        key: String,
    },
    /// List recovery administrators and when their API tokens expire.
    List,
    /// Remove an administrator: their API token stops working at once.
    Remove {
        /// Their name.
        name: String,
    },
    /// Issue a new API token for an administrator and print it (once); the
    /// old one stops working at once.
    Rotate {
        /// Their name.
        name: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Export the log as JSON lines or CSV.
    Export {
        /// Output format.
        #[arg(long, value_parser = ["jsonl", "csv"], default_value = "jsonl")]
        format: String,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Verify the chain and checkpoints as stored in the database; names the
    /// first edited, deleted or reordered row.
    Verify {
        /// The org public key (default: org_public_key from the config).
        #[arg(long, value_name = "KEY")]
        org_public_key: Option<String>,
    },
    /// Sign the current head with the org key and append a checkpoint.
    Checkpoint {
        /// The org secret key file.
        #[arg(long, value_name = "FILE")]
        org_key: PathBuf,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Generate the org signing key into a new 0600 file and print its public key.
    Init {
        /// Where to write the secret key (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum SeedCommand {
    /// Generate a new OPRF seed into a new 0600 file, e.g. the file a
    /// systemd `LoadCredential=oprf-seed:FILE` line names. Only for a new
    /// database: a broker refuses a seed its database was not set up with.
    Init {
        /// Where to write it (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum InviteCommand {
    /// Create a single-use invite and print it.
    Create {
        /// Bind the invite to this address.
        #[arg(long)]
        email: Option<String>,
        /// Validity in hours.
        #[arg(long, default_value_t = 72)]
        ttl_hours: i64,
        /// Broker URL to embed (default: public_url from the config).
        #[arg(long)]
        broker_url: Option<String>,
        /// Org public key to embed (default: org_public_key from the config).
        #[arg(long)]
        org_public_key: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match try_main(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kluis-broker: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn try_main(cli: Cli) -> anyhow::Result<()> {
    let listen = match &cli.command {
        Command::Serve { listen } => listen.clone(),
        Command::Admin { .. } => None,
    };
    let overrides = Overrides {
        config_file: cli.config,
        data_dir: cli.data_dir,
        listen,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Serve { .. } => {
            let config = Config::resolve(&overrides, &|k| std::env::var(k).ok())?;
            init_tracing(&config.log_filter);
            runtime.block_on(serve(config))
        }
        Command::Admin {
            command:
                AdminCommand::Org {
                    command: OrgCommand::Init { out },
                },
            ..
        } => {
            let key = OrgSigningKey::init(&out)?;
            eprintln!(
                "Wrote the org secret key to {} (mode 0600). Keep it offline.",
                out.display()
            );
            println!("{}", key.public_key());
            Ok(())
        }
        Command::Admin {
            command:
                AdminCommand::Seed {
                    command: SeedCommand::Init { out },
                },
            ..
        } => {
            kluis_broker::opaque::OprfSeed::create(&out)?;
            eprintln!(
                "Wrote a new OPRF seed to {} (mode 0600). Back it up apart from the database.",
                out.display()
            );
            Ok(())
        }
        Command::Admin { command, actor } => {
            let config = Config::resolve(&overrides, &|k| std::env::var(k).ok())?;
            let name = actor
                .or_else(|| std::env::var("KLUIS_ADMIN_NAME").ok())
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| admin::HOST_ACTOR.to_owned());
            let actor = Actor::admin(&name).context("invalid --as name")?;
            runtime.block_on(run_admin(config, command, actor))
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let (broker, running) = Broker::serve_config(&config, Arc::new(SystemClock)).await?;
    tracing::info!(
        address = %format!("{scheme}://{}", running.local_addr),
        data_dir = %config.data_dir.display(),
        backend = if config.database_url.starts_with("sqlite:") { "sqlite" } else { "postgres" },
        registration = ?config.settings.registration,
        "kluis-broker listening"
    );
    let stop = running.stopper();
    let store = broker.state().store().clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(600)).await;
            if let Err(e) = store.purge_expired(SystemClock.now()).await {
                tracing::warn!(error = %e, "purging expired sessions failed");
            }
        }
    });
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });
    running.wait().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The database as `kluis-broker admin` opens it: no OPRF seed.
struct Host(Arc<dyn kluis_broker::store::Store>);

impl Host {
    fn store(&self) -> &dyn kluis_broker::store::Store {
        self.0.as_ref()
    }
}

async fn run_admin(config: Config, command: AdminCommand, actor: Actor) -> anyhow::Result<()> {
    let broker = Host(kluis_broker::open_store(&config).await?);
    let now = SystemClock.now();
    match command {
        AdminCommand::Org { .. } | AdminCommand::Seed { .. } => {
            bail!("unreachable: handled before opening the database")
        }
        AdminCommand::Certify {
            org_key,
            email,
            public_key,
        } => {
            let key = OrgSigningKey::load(&org_key)?;
            let email = Email::parse(&email)?;
            let expected = public_key
                .as_deref()
                .map(PublicKeyString::parse)
                .transpose()?;
            let cert =
                admin::certify_as(broker.store(), &key, &email, expected.as_ref(), &actor, now)
                    .await?;
            eprintln!("Certified {} with org key {}", cert.email, key.public_key());
            println!("{}", cert.public_key.fingerprint());
            Ok(())
        }
        AdminCommand::CertifyGroup {
            org_key,
            name,
            public_key,
        } => {
            let key = OrgSigningKey::load(&org_key)?;
            let name = kluis_types::GroupName::parse(&name)?;
            let expected = public_key
                .as_deref()
                .map(PublicKeyString::parse)
                .transpose()?;
            let cert = admin::certify_group_as(
                broker.store(),
                &key,
                &name,
                expected.as_ref(),
                &actor,
                now,
            )
            .await?;
            eprintln!(
                "Certified group {} with org key {}",
                cert.name,
                key.public_key()
            );
            println!("{}", cert.public_key.fingerprint());
            Ok(())
        }
        AdminCommand::Invite {
            command:
                InviteCommand::Create {
                    email,
                    ttl_hours,
                    broker_url,
                    org_public_key,
                },
        } => {
            if ttl_hours <= 0 {
                bail!("--ttl-hours must be positive");
            }
            let email = email.as_deref().map(Email::parse).transpose()?;
            let org_key = match org_public_key {
                Some(k) => OrgPublicKey::parse(&k)?,
                None => config
                    .org_public_key
                    .context("no org public key: pass --org-public-key or set org_public_key")?,
            };
            let broker_url = broker_url
                .or(config.public_url.clone())
                .context("no broker URL: pass --broker-url or set public_url")?;
            let token = admin::create_invite_as(
                broker.store(),
                now,
                ttl_hours * 3600,
                email.as_ref(),
                &actor,
            )
            .await?;
            let invite = Invite {
                broker_url,
                token,
                org_public_key: org_key,
                email,
                // The joining device refuses any older policy (issue 18.4c).
                min_policy_version: admin::current_policy(broker.store()).await?.version,
            };
            println!("{}", invite.encode()?);
            Ok(())
        }
        AdminCommand::Policy { command } => match command {
            PolicyCommand::Show => {
                let current = admin::current_policy(broker.store()).await?;
                let policy = current.policy()?;
                eprintln!(
                    "Policy version {}{}",
                    current.version,
                    if current.version == 0 {
                        " (built-in default, unsigned)"
                    } else {
                        " (signed by the org key)"
                    }
                );
                println!("{}", serde_json::to_string_pretty(&policy)?);
                Ok(())
            }
            PolicyCommand::Set { file, org_key } => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let is_toml = file.extension().is_some_and(|e| e == "toml");
                let policy = admin::parse_policy_document(&text, is_toml)?;
                let key = OrgSigningKey::load(&org_key)?;
                let signed = admin::set_policy(broker.store(), &key, &policy, &actor, now).await?;
                println!("Policy version {} is now in force.", signed.version);
                Ok(())
            }
        },
        AdminCommand::User { command } => match command {
            UserCommand::Disable { email } => {
                let email = Email::parse(&email)?;
                let ended = admin::disable_user(broker.store(), &email, &actor, now).await?;
                println!(
                    "Disabled {email}: {ended} session(s) ended, login refused, key marked revoked."
                );
                Ok(())
            }
            UserCommand::Enable { email } => {
                let email = Email::parse(&email)?;
                admin::enable_user(broker.store(), &email, &actor, now).await?;
                println!("Enabled {email}. Old sessions stay ended; they must log in again.");
                Ok(())
            }
        },
        AdminCommand::Admins { command } => match command {
            AdminsCommand::Add { name, key } => {
                let ttl = config.admin_token_ttl_secs;
                let token = admin::add_admin(broker.store(), &name, &key, ttl, &actor, now).await?;
                eprintln!(
                    "Administrator {name} added. Their API token (shown once, keep it secret; \
                     valid {} days):",
                    ttl / 86_400
                );
                println!("{}", token.expose());
                Ok(())
            }
            AdminsCommand::List => {
                for a in broker.store().list_admins().await? {
                    let state = if a.token_expires_at <= now {
                        "token expired"
                    } else {
                        "token valid"
                    };
                    println!(
                        "{}  {}  {state} until {} (Unix time)",
                        a.name, a.admin_key, a.token_expires_at
                    );
                }
                Ok(())
            }
            AdminsCommand::Remove { name } => {
                admin::remove_admin(broker.store(), &name, &actor, now).await?;
                println!("Administrator {name} removed; their API token no longer works.");
                Ok(())
            }
            AdminsCommand::Rotate { name } => {
                let ttl = config.admin_token_ttl_secs;
                let token =
                    admin::rotate_admin_token(broker.store(), &name, ttl, &actor, now).await?;
                eprintln!(
                    "New API token for {name} (shown once, keep it secret; valid {} days). \
                     The old one no longer works:",
                    ttl / 86_400
                );
                println!("{}", token.expose());
                Ok(())
            }
        },
        AdminCommand::Audit { command } => match command {
            AuditCommand::Export { format, out } => {
                let rows = broker.store().audit_rows().await?;
                let mut sink: Box<dyn std::io::Write> = match &out {
                    Some(path) => Box::new(std::io::BufWriter::new(
                        std::fs::File::create(path)
                            .with_context(|| format!("creating {}", path.display()))?,
                    )),
                    None => Box::new(std::io::stdout().lock()),
                };
                if format == "csv" {
                    kluis_audit::export_csv(&rows, &mut sink)?;
                } else {
                    kluis_audit::export_jsonl(&rows, &mut sink)?;
                }
                sink.flush()?;
                Ok(())
            }
            AuditCommand::Verify { org_public_key } => {
                let org = match org_public_key {
                    Some(k) => OrgPublicKey::parse(&k)?,
                    None => config.org_public_key.context(
                        "no org public key: pass --org-public-key or set org_public_key",
                    )?,
                };
                let report = admin::verify_audit(broker.store(), &org).await?;
                println!(
                    "Audit log intact: {} rows, head {} (seq {}), {} checkpoint(s), {} row(s) after the last checkpoint.",
                    report.rows,
                    report.head.hash.to_hex(),
                    report.head.seq,
                    report.checkpoints,
                    report.unsigned_tail
                );
                Ok(())
            }
            AuditCommand::Checkpoint { org_key } => {
                let key = OrgSigningKey::load(&org_key)?;
                let row = admin::audit_checkpoint(broker.store(), &key, &actor, now).await?;
                println!("Checkpoint appended as row {}.", row.seq);
                Ok(())
            }
        },
    }
}
