//! `kluis account …` and `kluis contacts …`: the broker from the client side.
//!
//! The account password is also the passphrase of the local identity file,
//! so a person has one secret. The identity is generated here, on the device;
//! the broker only receives its public key and the escrow sealed under the
//! OPAQUE export key. Recipients named by e-mail are resolved through the
//! directory, verified against the organisation key pinned at enrolment, and
//! pinned on first use.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use kluis_account::{AccountClient, AccountError, Invite, Password, RecoveryState, RecoveryTicket};
use kluis_format::{Identity, KdfParams, Recipient, open_identity, seal_identity};
use serde::{Deserialize, Serialize};

use crate::home::Home;
use crate::output::Output;
use crate::secret::Passphrases;

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create your account on the organisation's broker. Your key pair is
    /// generated on this device (or your existing identity is used).
    Register {
        /// The invite your administrator gave you (`kluis-invite-v2:…`), or a
        /// file holding it. It carries the broker address and the
        /// organisation key to trust.
        #[arg(long, value_name = "INVITE")]
        invite: Option<String>,
        /// Broker address, when registering without an invite.
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// The organisation key to trust (`kluis-org-ed25519:…`), from your
        /// administrator, when registering without an invite.
        #[arg(long, value_name = "KEY")]
        org_key: Option<String>,
        /// Your e-mail address.
        #[arg(long)]
        email: String,
        /// The name colleagues will find you by.
        #[arg(long)]
        name: String,
    },
    /// Log in on this device and fetch your identity from the broker.
    Login {
        /// Broker address (default: the one this device already knows).
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// The organisation key to trust (default: the pinned one).
        #[arg(long, value_name = "KEY")]
        org_key: Option<String>,
        /// Your e-mail address (default: the one this device knows).
        #[arg(long)]
        email: Option<String>,
    },
    /// End this device's session. Your local identity stays usable offline.
    Logout,
    /// Show who you are logged in as.
    Whoami,
    /// Change your password: re-seals your identity and ends your other
    /// sessions.
    Passwd {
        /// Read the new password from this file instead of prompting.
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
    },
    /// Undo your last password change: return to the password (and key
    /// escrow) you had before it, e.g. when another device cannot open your
    /// key since the change. Asks for the current and the previous password.
    UndoPasswd {
        /// Read the previous password from this file instead of prompting.
        #[arg(long, value_name = "FILE")]
        previous_passphrase_file: Option<PathBuf>,
    },
    /// Lost your password? Ask your organisation to recover your key. Run it
    /// again to see progress and, once administrators have acted, to set
    /// your new password.
    Recover {
        /// Your e-mail address (default: the one this device knows).
        #[arg(long)]
        email: Option<String>,
        /// Broker address (default: the one this device knows).
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// The organisation key to trust (default: the pinned one).
        #[arg(long, value_name = "KEY")]
        org_key: Option<String>,
        /// Read the new password from this file instead of prompting.
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
        /// Keep checking for up to this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        wait: u64,
        /// Withdraw this device's pending request instead.
        #[arg(long, conflicts_with_all = ["wait", "new_passphrase_file"])]
        cancel: bool,
    },
    /// Cancel every open recovery request for your account (one you did
    /// not make, say). Needs a login on this device.
    CancelRecovery,
}

#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// Find colleagues by e-mail or name prefix. Only keys certified by your
    /// organisation are shown.
    Find {
        /// Start of an e-mail address or name.
        query: String,
    },
    /// Accept a colleague's new key after checking its fingerprint with them
    /// out of band.
    AcceptKeyChange {
        /// Their e-mail address.
        email: String,
    },
}

use kluis_agent::AgentHome;
pub(crate) use kluis_client::account::AccountFile;
use kluis_client::account::{self as device, BrokerRef, Sealer};

fn agent_home(home: &Home) -> AgentHome {
    AgentHome {
        config: home.config.clone(),
        data: home.data.clone(),
        runtime: AgentHome::resolve().map_or_else(|_| home.data.clone(), |h| h.runtime),
    }
}

pub(crate) fn state_dir(home: &Home) -> PathBuf {
    device::state_dir(&agent_home(home))
}

pub(crate) fn load_account(home: &Home) -> Result<Option<AccountFile>> {
    Ok(device::load(&agent_home(home))?)
}

pub(crate) fn save_account(home: &Home, acct: &AccountFile) -> Result<()> {
    Ok(device::save(&agent_home(home), acct)?)
}

fn broker_ref(broker: &str, org: &str) -> BrokerRef {
    BrokerRef {
        url: broker.to_owned(),
        org_public_key: org.to_owned(),
    }
}

pub(crate) fn client(home: &Home, broker: &str, org: &str) -> Result<AccountClient> {
    Ok(device::client(&agent_home(home), &broker_ref(broker, org))?)
}

/// The client for this device's account, if it has one.
pub(crate) fn device_client(home: &Home) -> Result<(AccountClient, AccountFile)> {
    Ok(device::device_client(&agent_home(home))?)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Keep `identity` as this device's own, sealed with the account password.
pub(crate) fn keep_identity(home: &Home, id: &Identity, password: &str) -> Result<()> {
    Ok(device::keep_identity(&agent_home(home), id, password)?)
}

fn rng() -> kluis_format::rand_core::UnwrapErr<getrandom::SysRng> {
    kluis_format::rand_core::UnwrapErr(getrandom::SysRng)
}

fn tell_recoverable(enrolled: bool) {
    if enrolled {
        println!("{}", kluis_account::RECOVERY_NOTICE);
    }
}

fn read_invite(text: &str) -> Result<Invite> {
    let text = if Path::new(text).is_file() {
        std::fs::read_to_string(text)?
    } else {
        text.to_owned()
    };
    Invite::decode(&text).context("invalid invite")
}

fn explain_device(e: device::DeviceAccountError) -> anyhow::Error {
    match e {
        device::DeviceAccountError::Account(e) => explain(e),
        other => other.into(),
    }
}

fn explain(e: AccountError) -> anyhow::Error {
    match e {
        AccountError::LoginFailed => {
            anyhow::anyhow!("login failed: wrong e-mail address or password")
        }
        AccountError::RecoveryEnrolment(why) => {
            anyhow::anyhow!("your organisation requires that it can recover your key, but {why}")
        }
        other => other.into(),
    }
}

pub fn run_account(cmd: AccountCommand, pass: &Passphrases) -> Result<()> {
    let home = Home::resolve()?;
    let rt = runtime()?;
    match cmd {
        AccountCommand::Register {
            invite,
            broker,
            org_key,
            email,
            name,
        } => {
            let invite = invite.as_deref().map(read_invite).transpose()?;
            let (broker, org) = match (&invite, broker, org_key) {
                (Some(inv), _, _) => (inv.broker_url.clone(), inv.org_public_key.to_string()),
                (None, Some(b), Some(k)) => (b, k),
                _ => bail!("give --invite, or both --broker and --org-key"),
            };
            let password = pass.get("your new Kluis account", true)?;
            let enrolled = rt
                .block_on(device::register(
                    &agent_home(&home),
                    &broker_ref(&broker, &org),
                    invite.as_ref(),
                    &email,
                    &name,
                    &password,
                ))
                .map_err(explain_device)?;
            println!("Registered {email} on {}.", enrolled.broker_url);
            tell_recoverable(enrolled.recovery_enrolled);
            println!("Your key id: {}", enrolled.fingerprint);
            println!(
                "Ask your administrator to certify your key; compare this fingerprint with them."
            );
            Ok(())
        }
        AccountCommand::Login {
            broker,
            org_key,
            email,
        } => {
            let known = load_account(&home)?;
            let broker = broker
                .or_else(|| known.as_ref().map(|a| a.broker_url.clone()))
                .context("give --broker")?;
            let org = org_key
                .or_else(|| known.as_ref().map(|a| a.org_public_key.clone()))
                .context("give --org-key")?;
            let email = email
                .or_else(|| known.as_ref().map(|a| a.email.clone()))
                .context("give --email")?;
            let password = pass.get(&format!("Kluis account {email}"), false)?;
            let enrolled = rt
                .block_on(device::login(
                    &agent_home(&home),
                    &broker_ref(&broker, &org),
                    &email,
                    &password,
                ))
                .map_err(explain_device)?;
            println!("Logged in as {email}. Your identity is now on this device (works offline).");
            println!("Your key id: {}", enrolled.fingerprint);
            Ok(())
        }
        AccountCommand::Logout => {
            let acct = rt
                .block_on(device::logout(&agent_home(&home)))
                .map_err(explain_device)?;
            println!("Logged out {} on this device.", acct.email);
            Ok(())
        }
        AccountCommand::Whoami => {
            let (c, acct) = device_client(&home)?;
            let me = rt.block_on(c.whoami()).map_err(explain)?;
            println!("{} ({}) on {}", me.email, me.display_name, acct.broker_url);
            if let Ok(r) = me.public_key.as_str().parse::<Recipient>() {
                println!("Key id: {}", r.fingerprint().key_id());
            }
            if me.recovery_enrolled {
                println!("Recovery: your organisation can recover your keys.");
            } else {
                println!("Recovery: not enrolled (only your password opens your escrow).");
            }
            for r in &me.key_recoveries {
                let approvers: Vec<String> = r
                    .approvals
                    .iter()
                    .map(|a| format!("{} at {}", a.admin_name, utc(a.approved_at)))
                    .collect();
                println!(
                    "Key recovered by IT at {}: approved by {}; re-sealed by {}.",
                    utc(r.completed_at),
                    approvers.join(", "),
                    r.completed_by
                );
            }
            Ok(())
        }
        AccountCommand::Passwd {
            new_passphrase_file,
        } => {
            let acct = load_account(&home)?.ok_or(device::DeviceAccountError::NoAccount)?;
            let old = pass.get(
                &format!("Kluis account {} (current password)", acct.email),
                false,
            )?;
            let new = Passphrases::new(new_passphrase_file).get_new("your new password")?;
            let changed = rt
                .block_on(device::change_password(&agent_home(&home), &old, &new))
                .map_err(explain_device)?;
            println!(
                "Password changed; {} other session(s) ended.",
                changed.sessions_revoked
            );
            tell_recoverable(changed.recovery_enrolled);
            Ok(())
        }
        AccountCommand::UndoPasswd {
            previous_passphrase_file,
        } => {
            let acct = load_account(&home)?.ok_or(device::DeviceAccountError::NoAccount)?;
            let current = pass.get(
                &format!("Kluis account {} (current password)", acct.email),
                false,
            )?;
            let previous = Passphrases::new(previous_passphrase_file).get_other(&format!(
                "Kluis account {} (the password before the change)",
                acct.email
            ))?;
            let undone = rt
                .block_on(device::undo_password_change(
                    &agent_home(&home),
                    &current,
                    &previous,
                ))
                .map_err(explain_device)?;
            println!(
                "Back on your previous password; {} other session(s) ended.",
                undone.sessions_revoked
            );
            tell_recoverable(undone.recovery_enrolled);
            Ok(())
        }
        AccountCommand::CancelRecovery => {
            let (c, acct) = device_client(&home)?;
            let cancelled = rt.block_on(c.cancel_recovery_requests()).map_err(explain)?;
            if cancelled.is_empty() {
                println!("No open recovery request for {}.", acct.email);
            }
            for id in cancelled {
                println!("Cancelled recovery request {id}.");
            }
            Ok(())
        }
        AccountCommand::Recover { cancel: true, .. } => cancel_pending_recovery(&home, &rt),
        AccountCommand::Recover {
            email,
            broker,
            org_key,
            new_passphrase_file,
            wait,
            cancel: false,
        } => recover(
            &home,
            &rt,
            email,
            broker,
            org_key,
            new_passphrase_file,
            wait,
        ),
    }
}

pub fn run_contacts(cmd: ContactsCommand) -> Result<()> {
    let home = Home::resolve()?;
    let rt = runtime()?;
    let (c, _) = device_client(&home)?;
    match cmd {
        ContactsCommand::Find { query } => {
            let found = rt.block_on(c.find_contacts(&query)).map_err(explain)?;
            for contact in &found.contacts {
                let fp = contact
                    .public_key
                    .as_str()
                    .parse::<Recipient>()
                    .map(|r| r.fingerprint().to_string())
                    .unwrap_or_else(|_| "(not a Kluis key)".into());
                let left = if contact.status == kluis_account::UserStatus::Revoked {
                    "  left (key revoked; new files are not encrypted to them)"
                } else {
                    ""
                };
                println!("{}  {}  {fp}{left}", contact.email, contact.display_name);
            }
            for r in &found.rejected {
                eprintln!(
                    "WARNING: refused the key the broker gave for {}: {:?}",
                    r.email, r.reason
                );
            }
            if found.contacts.is_empty() && found.rejected.is_empty() {
                eprintln!("No colleague matches {query:?}.");
            }
            Ok(())
        }
        ContactsCommand::AcceptKeyChange { email } => {
            if c.accept_key_change(&email)? {
                println!("Forgot the old key of {email}; the next lookup pins the current one.");
            } else {
                println!("No key was pinned for {email}.");
            }
            Ok(())
        }
    }
}

/// Resolve a recipient named by e-mail through the verified directory.
pub fn resolve_email(email: &str) -> Result<Recipient> {
    let home = Home::resolve()?;
    let (c, _) = device_client(&home)?;
    let contact = runtime()?
        .block_on(c.resolve_recipient(email))
        .map_err(explain)
        .with_context(|| format!("recipient {email}"))?;
    if contact.status == kluis_account::UserStatus::Revoked {
        bail!("{email} has left the organisation (key revoked): not encrypting to them");
    }
    let r: Recipient = contact
        .public_key
        .as_str()
        .parse()
        .with_context(|| format!("the key of {email}"))?;
    let note = match contact.pin {
        kluis_account::PinStatus::NewlyPinned => {
            " (first use: pinned now; compare the fingerprint with them)"
        }
        kluis_account::PinStatus::Matches => "",
    };
    eprintln!("{email}: {}{note}", r.fingerprint());
    Ok(r)
}

/// The recovery in progress on this device: the ticket, and the one-time
/// request key sealed with the new password (0600, deleted when done).
#[derive(Serialize, Deserialize)]
struct PendingRecovery {
    ticket: RecoveryTicket,
    org_public_key: String,
    request_key: String,
}

fn pending_path(home: &Home) -> PathBuf {
    state_dir(home).join("recovery-request.json")
}

/// `kluis account recover --cancel`: withdraws this device's pending
/// request on the broker and forgets it here.
fn cancel_pending_recovery(home: &Home, rt: &tokio::runtime::Runtime) -> Result<()> {
    let path = pending_path(home);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("this device has no pending recovery request")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let pending: PendingRecovery =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is damaged", path.display()))?;
    let ticket = &pending.ticket;
    let c = client(home, &ticket.broker_url, &pending.org_public_key)?;
    rt.block_on(c.cancel_recovery(ticket)).map_err(explain)?;
    std::fs::remove_file(&path)?;
    println!("Cancelled recovery request {}.", ticket.request_id);
    Ok(())
}

fn recover(
    home: &Home,
    rt: &tokio::runtime::Runtime,
    email: Option<String>,
    broker: Option<String>,
    org_key: Option<String>,
    new_passphrase_file: Option<PathBuf>,
    wait: u64,
) -> Result<()> {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use kluis_recovery::{RecoveryPackage, RequestKey};

    let known = load_account(home)?;
    let path = pending_path(home);
    let new_pass = Passphrases::new(new_passphrase_file);
    let pending: PendingRecovery = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is damaged", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let broker = broker
                .or_else(|| known.as_ref().map(|a| a.broker_url.clone()))
                .context("give --broker")?;
            let org = org_key
                .or_else(|| known.as_ref().map(|a| a.org_public_key.clone()))
                .context("give --org-key")?;
            let email = email
                .or_else(|| known.as_ref().map(|a| a.email.clone()))
                .context("give --email")?;
            let password = new_pass.get_new("your new password")?;
            let key = RequestKey::generate(&mut rng());
            let sealed = seal_identity(
                key.identity(),
                password.as_bytes(),
                KdfParams::DEFAULT,
                &mut rng(),
            )?;
            let c = client(home, &broker, &org)?;
            let fp = key.fingerprint();
            let ticket = rt
                .block_on(c.request_recovery(&email, &key.recipient().to_string(), &fp.to_hex()))
                .map_err(explain)?;
            let pending = PendingRecovery {
                ticket,
                org_public_key: org,
                request_key: STANDARD.encode(&sealed),
            };
            std::fs::create_dir_all(state_dir(home))?;
            let mut out = Output::open(Some(&path))?;
            std::io::Write::write_all(&mut out, &serde_json::to_vec_pretty(&pending)?)?;
            #[cfg(unix)]
            if let Output::File { tmp, .. } = &out {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(
                    tmp.get_ref().path(),
                    std::fs::Permissions::from_mode(0o600),
                )?;
            }
            out.commit()?;
            println!(
                "Recovery requested for {email} (request {}).",
                pending.ticket.request_id
            );
            println!("Your request fingerprint: {fp}");
            println!(
                "Read this fingerprint to your recovery administrators (by phone or in person); \
                 they must see the same one before they approve."
            );
            pending
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let ticket = &pending.ticket;
    let c = client(home, &ticket.broker_url, &pending.org_public_key)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait);
    let status = loop {
        let status = rt.block_on(c.recovery_status(ticket)).map_err(explain)?;
        if status.state != RecoveryState::Pending || std::time::Instant::now() >= deadline {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    };
    match status.state {
        RecoveryState::Pending => {
            println!(
                "Waiting for your administrators: {} approval(s){} so far. Run `kluis account recover` again later.",
                status.approvals.len(),
                status
                    .threshold
                    .map(|k| format!(" of {k}"))
                    .unwrap_or_default()
            );
            return Ok(());
        }
        RecoveryState::Closed => {
            std::fs::remove_file(&path)?;
            bail!("this recovery request was already used; start a new one");
        }
        RecoveryState::Cancelled => {
            std::fs::remove_file(&path)?;
            bail!("this recovery request was cancelled; start a new one if you still need it");
        }
        RecoveryState::Completed => {}
    }
    let package = status
        .package
        .clone()
        .context("the broker sent no package")?;
    let password = new_pass.get("your new password (as chosen when you asked)", false)?;
    let sealed = STANDARD
        .decode(&pending.request_key)
        .context("damaged request key")?;
    let key = RequestKey::from_identity(
        open_identity(&sealed, password.as_bytes())
            .context("that is not the new password you chose when you asked for recovery")?,
    );
    let request = kluis_recovery::kluis_approvals::RecoveryRequest {
        request_id: ticket.request_id.to_string(),
        user: ticket.email.to_string(),
        request_key_fingerprint: key.fingerprint(),
        requested_at: ticket.requested_at,
    };
    let recovered = kluis_recovery::open_recovered(
        &RecoveryPackage::from_bytes(package.into_bytes()),
        &key,
        &request,
    )?;
    let secret = recovered.identity.to_secret_bytes();
    rt.block_on(c.reset_after_recovery(
        ticket,
        &Password::new(password.as_str()),
        &secret[..],
        Some(&Sealer(&recovered.identity)),
    ))
    .map_err(explain)?;
    let login = rt.block_on(c.login(ticket.email.as_str(), &Password::new(password.as_str())));
    let enrolled = match login {
        Ok(outcome) => {
            if outcome.public_key.as_str() != recovered.identity.recipient().to_string() {
                bail!("the recovered key is not your registered key; contact your administrator");
            }
            let enrolled = device::remember(
                &agent_home(home),
                &broker_ref(&ticket.broker_url, &pending.org_public_key),
                ticket.email.as_str(),
                &recovered.identity,
                &password,
                outcome.recovery_enrolled,
            )?;
            println!("Your key id: {}", enrolled.fingerprint);
            println!("Your key was recovered and your new password is set.");
            outcome.recovery_enrolled
        }
        // Handing over a departed colleague's files: the account stays
        // disabled, and the key goes to its own file (never over this
        // device's identity), sealed with the new password.
        Err(AccountError::AccountDisabled) => {
            let out = home
                .data
                .join("handover")
                .join(format!("{}.identity", ticket.email));
            device::seal_to_file(&out, &recovered.identity, &password)?;
            println!(
                "The key of the disabled account {} was recovered for hand-over: {}",
                ticket.email,
                out.display()
            );
            println!(
                "Decrypt its files with `kluis decrypt -i {}`.",
                out.display()
            );
            false
        }
        Err(e) => return Err(explain(e)),
    };
    std::fs::remove_file(&path)?;
    println!("Who recovered your key:");
    for (admin, at) in &recovered.approvals {
        let name = status
            .approvals
            .iter()
            .find(|a| a.admin_key == admin.to_string())
            .map_or("(unknown administrator)", |a| a.admin_name.as_str());
        println!("  {name} approved at {} (key {admin})", utc(*at));
    }
    if let (Some(by), Some(at)) = (&status.completed_by, status.completed_at) {
        println!("  re-sealed by {by} at {}", utc(at));
    }
    tell_recoverable(enrolled);
    Ok(())
}

fn utc(t: i64) -> String {
    kluis_client::account::utc_text(t)
}
