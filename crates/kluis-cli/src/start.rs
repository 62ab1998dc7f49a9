//! `kluis start`: Kluis's main job with embedded defaults.
//!
//! With no server to set up: it runs a broker inside this process on
//! loopback (the single user is their own organisation, so their key is
//! certified by a locally generated organisation key), creates the identity
//! and account on first run, pairs a plaintext folder with the sync folder it
//! finds (Dropbox, OneDrive) or with a plain local folder, and runs the sync
//! agent in the foreground. Later runs reuse all of it. A build without the
//! embedded broker (see [`embedded`]) still starts a device whose account is
//! on an organisation's broker.

mod embedded;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use kluis_account::{Password, Registration};
use kluis_agent::keycache::KeyCache;
use kluis_agent::{Agent, AgentHome, AgentOptions, Config};
use kluis_client::suggest_pair;
use kluis_format::{Identity, open_identity};

use crate::account_cmds::{AccountFile, client, keep_identity, load_account, save_account};
use crate::home::Home;
use crate::secret::Passphrases;
use embedded::EmbeddedBroker;

/// Where a new home's embedded broker looks for a free loopback port:
/// below Linux's ephemeral ports (32768-60999) and Windows' (49152-),
/// so that an outgoing connection of another program does not hold the
/// port at the next start. Each home starts at its own place in the range
/// (from a hash of its path), so two users of one computer rarely even
/// try the same port; the port found is remembered in the account file's
/// broker URL and used again at every start.
const PORTS: std::ops::Range<u16> = 28000..32000;
/// How many ports of [`PORTS`] a first start tries.
const PORT_TRIES: u16 = 64;

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Where you work with plaintext files (default: ~/Kluis, or Kluis/ in
    /// KLUIS_HOME when that is set).
    #[arg(long, value_name = "DIR")]
    plain: Option<PathBuf>,
    /// Where the ciphertext goes (default: Kluis/ inside the Dropbox or
    /// OneDrive folder found on this machine, else ~/Kluis-encrypted).
    #[arg(long, value_name = "DIR")]
    sync: Option<PathBuf>,
    /// Loopback port of the embedded broker (default: the one this home
    /// used before, else a free one chosen for it, remembered).
    #[arg(long, value_name = "PORT")]
    broker_port: Option<u16>,
}

/// The ports a home's embedded broker tries: the one asked for, else the
/// one its account remembers, else [`PORT_TRIES`] of [`PORTS`] from a place
/// that depends on the home.
fn broker_ports(home: &Home, asked: Option<u16>, account: Option<&AccountFile>) -> Vec<u16> {
    if let Some(p) = asked.or_else(|| account.and_then(|a| remembered_port(&a.broker_url))) {
        return vec![p];
    }
    // FNV-1a: stable across runs and builds (not for security).
    let h = home
        .data
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    let span = PORTS.end - PORTS.start;
    let at = (h % u64::from(span)) as u16;
    (0..PORT_TRIES)
        .map(|i| PORTS.start + (at + i) % span)
        .collect()
}

/// The port of an embedded broker's URL (`http://127.0.0.1:PORT`).
fn remembered_port(url: &str) -> Option<u16> {
    url.strip_prefix("http://127.0.0.1:")
        .or_else(|| url.strip_prefix("http://localhost:"))?
        .trim_end_matches('/')
        .parse()
        .ok()
}

fn local_email() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "me".into())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect::<String>();
    let user = if user.is_empty() {
        "me".to_owned()
    } else {
        user.to_lowercase()
    };
    format!("{user}@kluis.local")
}

pub fn run(args: StartArgs, pass: &Passphrases) -> Result<()> {
    let home = Home::resolve()?;
    let agent_home = AgentHome::resolve()?;
    let id_path = home.identity();
    let first_run = !id_path.exists();
    let account = load_account(&home)?;
    // The broker: embedded unless this device belongs to an organisation's.
    let embedded = match &account {
        None => true,
        Some(a) => {
            a.broker_url.starts_with("http://127.0.0.1:")
                || a.broker_url.starts_with("http://localhost:")
        }
    };
    if embedded {
        // Before any password prompt: a build without it cannot go on.
        embedded::available()?;
    }
    // After the first run, the OS keyring may still hold the unlocked
    // identity (see kluis_agent::keycache): then no password is asked.
    let cache = KeyCache::for_home(&agent_home);
    let cached = match &account {
        Some(_) if !first_run => cache.load(),
        _ => None,
    };
    let password = match cached {
        Some(_) => None,
        None => Some(pass.get(
            if first_run {
                "your new Kluis identity"
            } else {
                "your Kluis identity"
            },
            first_run,
        )?),
    };
    let password = || password.as_ref().context("no password was asked for");

    // 1. Start the embedded broker when it is needed.
    let broker = if embedded {
        let ports = broker_ports(&home, args.broker_port, account.as_ref());
        let b = EmbeddedBroker::start(&home, &ports)?;
        // Moved with --broker-port: remember the new port.
        if let Some(a) = &account
            && a.broker_url != b.url()
        {
            save_account(
                &home,
                &AccountFile {
                    broker_url: b.url().to_owned(),
                    ..a.clone()
                },
            )?;
        }
        Some(b)
    } else {
        None
    };

    // 2. The identity and the account.
    let identity = match (&account, &broker) {
        (None, Some(b)) => {
            let identity = if first_run {
                Identity::generate(&mut kluis_format::rand_core::UnwrapErr(getrandom::SysRng))
            } else {
                open_identity(&std::fs::read(&id_path)?, password()?.as_bytes())
                    .with_context(|| format!("cannot open {}", id_path.display()))?
            };
            let email = local_email();
            let org = b.org_public_key();
            let c = client(&home, b.url(), &org)?;
            let public = identity.recipient().to_string();
            let secret = identity.to_secret_bytes();
            let pw = Password::new(password()?.as_str());
            let name = email.split('@').next().unwrap_or("me").to_owned();
            let reg = Registration {
                email: &email,
                display_name: &name,
                password: &pw,
                public_key: &public,
                secret_identity: &secret[..],
                invite: None,
            };
            let registered = b
                .block_on(c.register(&reg))
                .context("registering with the embedded broker")?;
            // This user is their own organisation: certify their key.
            let e = kluis_types::Email::parse(&email).map_err(|e| anyhow::anyhow!("{e}"))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs() as i64;
            b.certify(&e, now)?;
            keep_identity(&home, &identity, password()?)?;
            save_account(
                &home,
                &AccountFile {
                    broker_url: b.url().to_owned(),
                    org_public_key: org,
                    email: email.clone(),
                    recovery_enrolled: Some(registered.recovery_enrolled),
                },
            )?;
            println!("Created your Kluis identity and account {email} on the embedded broker.");
            identity
        }
        _ => match cached {
            Some(id) => {
                println!("Unlocked from the OS keyring.");
                id
            }
            None => open_identity(
                &std::fs::read(&id_path)
                    .with_context(|| format!("cannot read {}", id_path.display()))?,
                password()?.as_bytes(),
            )
            .with_context(|| format!("cannot open {}", id_path.display()))?,
        },
    };
    cache.store(&identity);
    println!(
        "Your key id: {}",
        identity.recipient().fingerprint().key_id()
    );

    // 3. The folder pair.
    let mut cfg = Config::load(&agent_home)?;
    if cfg.pairs.is_empty() || args.plain.is_some() || args.sync.is_some() {
        // The pair the tray's wizard offers too (kluis_client::suggest_pair).
        let suggested =
            suggest_pair().context("cannot find a home directory; pass --plain and --sync")?;
        let plain = args.plain.unwrap_or(suggested.plain);
        let sync = match (args.sync, suggested.found.first()) {
            (Some(s), _) => s,
            (None, Some(c)) => {
                println!("Found your {} folder: {}", c.provider, c.path.display());
                suggested.mirror
            }
            (None, None) => suggested.mirror,
        };
        let plain = std::path::absolute(&plain)?;
        let sync = std::path::absolute(&sync)?;
        if !cfg
            .pairs
            .iter()
            .any(|p| p.plain == plain && p.mirror == sync)
        {
            cfg.add_pair(&plain, &sync)?;
            cfg.save(&agent_home)?;
        }
    }
    if cfg.pairs.is_empty() {
        bail!("no folder pair configured");
    }

    // A new mirror's folder metadata names you as its owner (FORMAT.md
    // §8.2); the agent would create it without one.
    if let Some(acct) = load_account(&home)? {
        for p in &cfg.pairs {
            let me = kluis_client::share::Me {
                email: acct.email.clone(),
                title: p
                    .plain
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            };
            kluis_client::share::init_folder(
                &p.mirror,
                &identity,
                &me,
                &mut kluis_format::rand_core::UnwrapErr(getrandom::SysRng),
            )
            .with_context(|| format!("creating the folder metadata in {}", p.mirror.display()))?;
        }
    }

    // 4. Run the agent.
    let agent = Agent::start(agent_home.clone(), AgentOptions::default(), Some(identity))?;
    if let Err(e) = kluis_agent::ipc::serve(agent.handle(), &agent_home.socket_path()) {
        eprintln!("kluis: no control endpoint ({e}); `kluis status` will not work");
    }
    for p in agent.handle().status().pairs {
        println!("Drop files in:          {}", p.plain.display());
        println!("Ciphertext appears in:  {}", p.mirror.display());
    }
    if let Some(b) = &broker {
        println!("Embedded broker:        {} (loopback only)", b.url());
    }
    println!("Kluis is running. `kluis status` shows what it is doing; Ctrl-C stops it.");
    agent.wait();
    Ok(())
}
