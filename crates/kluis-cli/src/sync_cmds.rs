//! folders, agent, status, pause/resume, lock/unlock, activity, conflicts:
//! the sync agent's commands. All behaviour lives in `kluis-agent`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use kluis_agent::ProblemKind;
use kluis_agent::ipc::Client;
use kluis_agent::{Agent, AgentHome, AgentOptions, Config, Request, Response};
use kluis_client::detect_sync_folders;

use crate::secret::Passphrases;

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Pair a plaintext folder with an encrypted mirror in a sync folder.
    #[command(subcommand)]
    Folders(FoldersCommand),
    /// Run the sync agent in the foreground (the systemd unit runs this).
    Agent(AgentArgs),
    /// Show what the agent is doing.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Pause syncing (one pair, or all).
    Pause {
        /// Pair id (see `kluis folders list`).
        pair: Option<String>,
    },
    /// Resume syncing (one pair, or all).
    Resume {
        /// Pair id.
        pair: Option<String>,
        /// Let through exactly the deletions the mass-deletion guard
        /// reported (`kluis status` names them).
        #[arg(long, conflicts_with = "restore")]
        allow_deletions: bool,
        /// Put back what the guard held back instead: files gone from the
        /// sync folder are encrypted again from this computer, files gone
        /// from this computer are decrypted again from the sync folder.
        #[arg(long)]
        restore: bool,
    },
    /// Lock the agent's identity: nothing is encrypted or decrypted until unlock.
    Lock,
    /// Unlock the agent's identity with its passphrase.
    Unlock,
    /// Reconcile every folder pair now (normally the watcher does this).
    #[command(name = "sync")]
    SyncNow,
    /// Recent sync activity.
    Activity {
        /// How many entries.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Conflict copies waiting for you.
    Conflicts {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum FoldersCommand {
    /// Pair PLAIN (where you work) with SYNC (the encrypted mirror, e.g.
    /// ~/Dropbox/Kluis). Both are created if missing.
    Add { plain: PathBuf, sync: PathBuf },
    /// List folder pairs and the sync folders found on this machine.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove a pair (by id or either folder). No files are touched.
    Remove { pair: String },
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Start locked; unlock later with `kluis unlock`.
    #[arg(long)]
    locked: bool,
    /// Do not fsync (benchmarks only: a power loss may lose recent writes).
    #[arg(long, hide = true)]
    no_fsync: bool,
    /// Quiet period in milliseconds before a changed file is picked up.
    #[arg(long, default_value_t = 500, hide = true)]
    quiet_ms: u64,
}

pub fn run(cmd: SyncCommand, pass: &Passphrases) -> Result<()> {
    let home = AgentHome::resolve()?;
    match cmd {
        SyncCommand::Folders(f) => folders(f, &home),
        SyncCommand::Agent(a) => agent(a, &home, pass),
        SyncCommand::Status { json } => {
            let Response::Status(st) = client(&home)?.call(&Request::Status)? else {
                bail!("unexpected answer from the agent");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
                return Ok(());
            }
            println!(
                "device {}: identity {}",
                st.device,
                if st.locked { "LOCKED" } else { "unlocked" }
            );
            for p in &st.pairs {
                println!(
                    "{}  {:?}  {} -> {}  ({} files{}{})",
                    p.id,
                    p.state,
                    p.plain.display(),
                    p.mirror.display(),
                    p.synced_files,
                    if p.deferred > 0 {
                        format!(", {} waiting", p.deferred)
                    } else {
                        String::new()
                    },
                    if p.polling { ", polling" } else { "" },
                );
                if let Some(a) = &p.alert {
                    println!("    ! {a}");
                }
                if p.watcher_rescans > 0 {
                    println!(
                        "    {} full rescan(s) after lost watcher events (event queue overflow)",
                        p.watcher_rescans
                    );
                }
                for e in &p.errors {
                    let what = match e.kind {
                        ProblemKind::Damaged => "damaged",
                        ProblemKind::NoSpace => "waiting for disk space",
                        _ => "retrying",
                    };
                    println!("    {what} {}: {}", e.path, e.detail);
                }
                for s in &p.skips {
                    println!("    skipped {}: {}", s.path, s.reason);
                }
                for n in &p.not_shared {
                    println!("    not shared with you: {n}");
                }
            }
            Ok(())
        }
        SyncCommand::Pause { pair } => ok(client(&home)?.call(&Request::Pause { pair })?),
        SyncCommand::Resume {
            pair,
            allow_deletions,
            restore,
        } => ok(client(&home)?.call(&Request::Resume {
            pair,
            allow_deletions,
            restore,
        })?),
        SyncCommand::Lock => ok(client(&home)?.call(&Request::Lock)?),
        SyncCommand::SyncNow => ok(client(&home)?.call(&Request::Sync)?),
        SyncCommand::Unlock => {
            let mut c = client(&home)?;
            let passphrase = pass.get("your identity", false)?;
            ok(c.call(&Request::Unlock {
                passphrase: passphrase.to_string(),
            })?)
        }
        SyncCommand::Activity { limit, json } => {
            let Response::Activity { entries } =
                client(&home)?.call(&Request::Activity { limit })?
            else {
                bail!("unexpected answer from the agent");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                for e in entries {
                    let detail = e.detail.map(|d| format!(" -> {d}")).unwrap_or_default();
                    println!("{}  {}  {}{}", e.pair, e.action, e.path, detail);
                }
            }
            Ok(())
        }
        SyncCommand::Conflicts { json } => {
            let Response::Conflicts { entries } = client(&home)?.call(&Request::Conflicts)? else {
                bail!("unexpected answer from the agent");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                for e in entries {
                    println!("{}  {}", e.pair, e.path);
                }
            }
            Ok(())
        }
    }
}

fn ok(r: Response) -> Result<()> {
    match r {
        Response::Ok => Ok(()),
        other => bail!("unexpected answer from the agent: {other:?}"),
    }
}

fn client(home: &AgentHome) -> Result<Client> {
    Ok(Client::connect(&home.socket_path())?)
}

fn folders(cmd: FoldersCommand, home: &AgentHome) -> Result<()> {
    match cmd {
        FoldersCommand::Add { plain, sync } => {
            let p = kluis_client::folders::add_pair(home, &plain, &sync)?;
            println!(
                "paired {} (work here) with {} (ciphertext appears here) as {}",
                p.plain.display(),
                p.mirror.display(),
                p.id
            );
            println!("restart `kluis agent` (or the kluis-agent service) to start syncing it");
        }
        FoldersCommand::List { json } => {
            let cfg = Config::load(home)?;
            let found = detect_sync_folders();
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "pairs": cfg.pairs, "sync_folders": found })
                );
                return Ok(());
            }
            if cfg.pairs.is_empty() {
                println!("no folder pairs yet; add one with `kluis folders add PLAIN SYNC`");
            }
            for p in &cfg.pairs {
                println!("{}  {} -> {}", p.id, p.plain.display(), p.mirror.display());
            }
            for c in found {
                println!(
                    "found {} folder: {} (e.g. `kluis folders add ~/Kluis {}`)",
                    c.provider,
                    c.path.display(),
                    c.path.join("Kluis").display()
                );
            }
        }
        FoldersCommand::Remove { pair } => {
            let p = kluis_client::folders::remove_pair(home, &pair)?;
            println!(
                "removed pair {} ({} -> {}); no files were touched",
                p.id,
                p.plain.display(),
                p.mirror.display()
            );
        }
    }
    Ok(())
}

fn agent(args: AgentArgs, home: &AgentHome, pass: &Passphrases) -> Result<()> {
    let cache = kluis_agent::keycache::KeyCache::for_home(home);
    let cached = if args.locked { None } else { cache.load() };
    let identity = if args.locked {
        None
    } else if let Some(id) = cached {
        eprintln!("kluis agent: unlocked from the OS keyring");
        Some(id)
    } else {
        let path = home.identity_file();
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "cannot read identity {}; create one with `kluis keygen`",
                path.display()
            )
        })?;
        let passphrase = pass.get("your identity", false)?;
        let id = kluis_format::open_identity(&bytes, passphrase.as_bytes())?;
        cache.store(&id);
        Some(id)
    };
    let opts = AgentOptions {
        fsync: !args.no_fsync,
        quiet: std::time::Duration::from_millis(args.quiet_ms),
        ..AgentOptions::default()
    };
    let agent = Agent::start(home.clone(), opts, identity)?;
    // With a broker account on this device, the agent follows the
    // directory: departed members and rotated group keys are applied at the
    // next write, and group keys arrive (docs/SHARING.md). Without one it
    // syncs as before.
    if let Some((client, acct)) = crate::home::Home::resolve()
        .ok()
        .and_then(|h| crate::account_cmds::device_client(&h).ok())
    {
        match kluis_agent::BrokerDirectory::new(client, acct.email.clone()) {
            Ok(d) => {
                agent.handle().set_directory(std::sync::Arc::new(d));
                eprintln!(
                    "kluis agent: folder members follow the directory of {}",
                    acct.broker_url
                );
            }
            Err(e) => eprintln!("kluis agent: no directory refresh: {e}"),
        }
    }
    let ipc = kluis_agent::ipc::serve(agent.handle(), &home.socket_path());
    match &ipc {
        Ok(_) => eprintln!("kluis agent: listening on {}", home.socket_path().display()),
        Err(e) => eprintln!("kluis agent: no control endpoint: {e}"),
    }
    for p in agent.handle().status().pairs {
        eprintln!(
            "kluis agent: syncing {} <-> {}",
            p.plain.display(),
            p.mirror.display()
        );
    }
    agent.wait();
    Ok(())
}
