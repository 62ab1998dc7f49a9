//! `kluis admin …`: the recovery administrator's side of organisation key
//! recovery (docs/RECOVERY.md §7).
//!
//! These commands live in the `kluis` CLI rather than in `kluis-broker
//! admin` because they seal, open and re-seal identities (kluis-recovery
//! links the file format), and the broker binary must never link the
//! format. They talk to the broker over HTTPS with an admin token issued by
//! `kluis-broker admin admins add`, and trust nothing it says: approvals are
//! re-verified against admin keys given here, the user's key against its org
//! certificate, and the request key against the approved fingerprint.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Subcommand;
use kluis_account::{AdminClient, verify_entry};
use kluis_approvals::{AdminPublicKey, AdminSigningKey, Approval, KeyFingerprint, RecoveryRequest};
use kluis_format::Recipient;
use kluis_recovery::{
    ApprovalPolicy, RecoveryCase, RecoveryEscrow, ShareFile, ShareHolder, reseal_for_request,
};
use kluis_types::{
    AdminRecoveryCase, AdminToken, ApprovalWire, DirectoryEntry, OrgPublicKey, RecoveryKeyInfo,
    RequestId, SignatureBytes, UserStatus,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const ADMIN_SECRET_PREFIX: &str = "kluis-admin-secret-ed25519:";

#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// The broker (https://…, or http:// to loopback).
    #[arg(long, global = true, env = "KLUIS_ADMIN_BROKER", value_name = "URL")]
    broker: Option<String>,
    /// File holding your admin API token (`kat_…`).
    #[arg(
        long,
        global = true,
        env = "KLUIS_ADMIN_TOKEN_FILE",
        value_name = "FILE"
    )]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Your administrator approval key (Ed25519).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Organisation key recovery.
    #[command(subcommand)]
    Recovery(RecoveryCommand),
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Make an approval key in a new 0600 file and print its public half
    /// (give it to whoever runs `kluis-broker admin admins add`).
    Init {
        /// Where to write the secret key (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the public half of an approval key file.
    Show {
        /// The secret key file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum RecoveryCommand {
    /// Offline: make the organisation recovery key and split it into N
    /// password-sealed Shamir share files, K of which rebuild it.
    Init {
        /// Shares needed to rebuild the key (at least 2).
        #[arg(long)]
        threshold: u8,
        /// Shares to make (one per --holder).
        #[arg(long)]
        shares: u8,
        /// A share holder: `NAME` (their password is asked for) or
        /// `NAME=FILE` (first line of FILE). Give it once per share.
        #[arg(long = "holder", value_name = "NAME[=FILE]", required = true)]
        holders: Vec<String>,
        /// Directory for the share files and recovery.json (created).
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
    },
    /// Sign the recovery public key with the org key and publish it.
    Publish {
        /// recovery.json written by `init`.
        #[arg(long, value_name = "FILE")]
        recovery: PathBuf,
        /// The org secret key file.
        #[arg(long, value_name = "FILE")]
        org_key: PathBuf,
    },
    /// Recovery requests waiting on the broker.
    List,
    /// Cancel a request (say, one the user did not make): it can no longer
    /// be approved or used.
    Cancel {
        /// The request.
        #[arg(long, value_name = "ID")]
        request: String,
    },
    /// Approve a request, after confirming its fingerprint with the user
    /// out of band (phone, in person).
    Approve {
        /// The request.
        #[arg(long, value_name = "ID")]
        request: String,
        /// Your approval key file (from `kluis admin key init`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The fingerprint the user read to you (`4F2A 9C1B …`); the
        /// approval is refused unless it matches the request.
        #[arg(long, value_name = "FINGERPRINT")]
        fingerprint: String,
    },
    /// On a trusted machine with K share holders present: combine their
    /// shares, re-seal the user's escrow copy to the request key, upload.
    Complete {
        /// The request.
        #[arg(long, value_name = "ID")]
        request: String,
        /// A share file: `FILE` (its holder types the password) or
        /// `FILE=PASSWORDFILE`. At least K.
        #[arg(long = "share", value_name = "FILE[=PASSWORDFILE]", required = true)]
        shares: Vec<String>,
        /// The organisation public key (verifies the user's certificate).
        #[arg(long, value_name = "KEY")]
        org_public_key: String,
        /// An administrator key allowed to approve (repeat). Default: the
        /// broker's list, which you then trust.
        #[arg(long = "admin", value_name = "KEY")]
        admins: Vec<String>,
    },
}

/// `recovery.json`: what `init` hands to `publish` (no secrets).
#[derive(Debug, Serialize, Deserialize)]
struct RecoveryPublic {
    public_key: String,
    threshold: u8,
    shares: u8,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn rng() -> kluis_format::rand_core::UnwrapErr<getrandom::SysRng> {
    kluis_format::rand_core::UnwrapErr(getrandom::SysRng)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn write_new_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (never overwritten)", path.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

fn read_password_file(path: &Path) -> Result<Zeroizing<String>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    Ok(Zeroizing::new(
        text.lines().next().unwrap_or_default().to_owned(),
    ))
}

fn prompt(what: &str) -> Result<Zeroizing<String>> {
    Ok(Zeroizing::new(rpassword::prompt_password(format!(
        "{what}: "
    ))?))
}

/// `NAME=FILE` or `NAME` → (name, password).
fn split_arg(arg: &str, what: &str) -> Result<(String, Zeroizing<String>)> {
    match arg.split_once('=') {
        Some((name, file)) => Ok((name.to_owned(), read_password_file(Path::new(file))?)),
        None => Ok((
            arg.to_owned(),
            prompt(&format!("Password for {what} {arg}"))?,
        )),
    }
}

fn load_admin_key(path: &Path) -> Result<AdminSigningKey> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let b64 = text
        .trim()
        .strip_prefix(ADMIN_SECRET_PREFIX)
        .with_context(|| format!("{} is not a Kluis admin key", path.display()))?;
    let mut raw = Zeroizing::new([0u8; 33]);
    match URL_SAFE_NO_PAD.decode_slice(b64.as_bytes(), &mut raw[..]) {
        Ok(32) => {}
        _ => bail!("{} is not a Kluis admin key", path.display()),
    }
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&raw[..32]);
    Ok(AdminSigningKey::from_seed(&seed))
}

impl AdminArgs {
    fn client(&self) -> Result<AdminClient> {
        let broker = self
            .broker
            .as_deref()
            .context("give --broker (or KLUIS_ADMIN_BROKER)")?;
        let file = self
            .token_file
            .as_deref()
            .context("give --token-file (or KLUIS_ADMIN_TOKEN_FILE)")?;
        let text = Zeroizing::new(
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
        );
        let token = AdminToken::parse(text.trim()).context("not an admin token (kat_…)")?;
        Ok(AdminClient::new(broker, token)?)
    }
}

pub fn run(args: AdminArgs) -> Result<()> {
    match &args.command {
        AdminCommand::Key(KeyCommand::Init { out }) => {
            let key = AdminSigningKey::generate(&mut rng());
            let mut text = Zeroizing::new(String::from(ADMIN_SECRET_PREFIX));
            URL_SAFE_NO_PAD.encode_string(&key.to_seed()[..], &mut text);
            text.push('\n');
            write_new_private(out, text.as_bytes())?;
            eprintln!("Wrote your approval key to {} (mode 0600).", out.display());
            println!("{}", key.public_key());
            Ok(())
        }
        AdminCommand::Key(KeyCommand::Show { file }) => {
            println!("{}", load_admin_key(file)?.public_key());
            Ok(())
        }
        AdminCommand::Recovery(RecoveryCommand::Init {
            threshold,
            shares,
            holders,
            out_dir,
        }) => init(*threshold, *shares, holders, out_dir),
        AdminCommand::Recovery(RecoveryCommand::Publish { recovery, org_key }) => {
            let public: RecoveryPublic = serde_json::from_slice(&std::fs::read(recovery)?)
                .with_context(|| format!("{} is not a recovery.json", recovery.display()))?;
            let public_key = kluis_types::PublicKeyString::parse(&public.public_key)?;
            let org = kluis_org::OrgSigningKey::load(org_key)?;
            let issued_at = now();
            let message = kluis_types::recovery_key_message(
                &public_key,
                public.threshold,
                public.shares,
                issued_at,
            );
            let info = RecoveryKeyInfo {
                public_key,
                threshold: public.threshold,
                shares: public.shares,
                issued_at,
                signature: SignatureBytes::new(org.sign(&message).to_vec()),
            };
            runtime()?.block_on(args.client()?.publish_recovery_key(&info))?;
            println!(
                "Published the recovery key ({} of {} shares), fingerprint {}.",
                info.threshold,
                info.shares,
                info.public_key.fingerprint()
            );
            Ok(())
        }
        AdminCommand::Recovery(RecoveryCommand::List) => {
            let list = runtime()?.block_on(args.client()?.open_requests())?;
            if list.requests.is_empty() {
                eprintln!("No open recovery requests.");
            }
            for r in list.requests {
                println!(
                    "{}  {}  {:?}  {} approval(s){}",
                    r.request_id,
                    r.email,
                    r.state,
                    r.approvals.len(),
                    r.threshold.map(|k| format!(" of {k}")).unwrap_or_default()
                );
            }
            Ok(())
        }
        AdminCommand::Recovery(RecoveryCommand::Cancel { request }) => {
            let id = RequestId::parse(request)?;
            runtime()?.block_on(args.client()?.cancel(&id))?;
            println!("Cancelled recovery request {id}.");
            Ok(())
        }
        AdminCommand::Recovery(RecoveryCommand::Approve {
            request,
            key,
            fingerprint,
        }) => approve(&args, request, key, fingerprint),
        AdminCommand::Recovery(RecoveryCommand::Complete {
            request,
            shares,
            org_public_key,
            admins,
        }) => complete(&args, request, shares, org_public_key, admins),
    }
}

fn init(threshold: u8, shares: u8, holders: &[String], out_dir: &Path) -> Result<()> {
    if usize::from(shares) != holders.len() {
        bail!(
            "--shares is {shares} but {} --holder given: one holder per share",
            holders.len()
        );
    }
    let parsed = holders
        .iter()
        .map(|h| split_arg(h, "share holder"))
        .collect::<Result<Vec<_>>>()?;
    let list: Vec<ShareHolder<'_>> = parsed
        .iter()
        .map(|(name, pw)| ShareHolder {
            name,
            password: pw.as_bytes(),
        })
        .collect();
    let setup = kluis_recovery::init(threshold, &list, &mut rng())?;
    std::fs::create_dir_all(out_dir)?;
    for ((name, _), bytes) in parsed.iter().zip(&setup.share_files) {
        let info = ShareFile::parse(bytes)?.info().clone();
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = out_dir.join(format!("share-{}-{safe}.kshare", info.index));
        write_new_private(&path, bytes)?;
        println!(
            "Share {} of {} for {name}: {}",
            info.index,
            shares,
            path.display()
        );
    }
    let public = RecoveryPublic {
        public_key: setup.recipient.to_string(),
        threshold,
        shares,
    };
    let path = out_dir.join("recovery.json");
    write_new_private(&path, &serde_json::to_vec_pretty(&public)?)?;
    println!(
        "Recovery key {} ({threshold} of {shares}); public part in {}.",
        setup.recipient.fingerprint(),
        path.display()
    );
    eprintln!("Hand each share file to its holder. Publish with `kluis admin recovery publish`.");
    Ok(())
}

/// The request as approvals sign it, from the broker's case.
fn signed_request(case: &AdminRecoveryCase) -> Result<RecoveryRequest> {
    Ok(RecoveryRequest {
        request_id: case.status.request_id.to_string(),
        user: case.status.email.to_string(),
        request_key_fingerprint: KeyFingerprint::from_hex(&case.request_key_fingerprint)?,
        requested_at: case.status.requested_at,
    })
}

fn normalise_fp(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_lowercase()
}

fn approve(args: &AdminArgs, request: &str, key: &Path, spoken: &str) -> Result<()> {
    let id = RequestId::parse(request)?;
    let key = load_admin_key(key)?;
    let client = args.client()?;
    let rt = runtime()?;
    let case = rt.block_on(client.case(&id))?;
    let req = signed_request(&case)?;
    // The approval binds the request key: it must be the one the user's
    // screen shows, and the broker's copy of the key must have it.
    let actual = kluis_recovery::fingerprint_of(
        &case
            .request_key
            .as_str()
            .parse::<Recipient>()
            .context("the request key is not a Kluis key")?,
    );
    if actual != req.request_key_fingerprint {
        bail!("the broker's request key does not have the fingerprint in the request: refusing");
    }
    let spoken = normalise_fp(spoken);
    if spoken.len() < 16 || !actual.to_hex().starts_with(&spoken) {
        bail!(
            "the fingerprint you were given does not match this request ({}): do not approve",
            actual
        );
    }
    let approval = Approval::sign(&req, now().max(req.requested_at), &key)?;
    let wire: ApprovalWire = serde_json::from_value(serde_json::to_value(&approval)?)?;
    let status = rt.block_on(client.approve(&id, &wire))?;
    println!(
        "Approved recovery of {} ({} approval(s){}).",
        status.email,
        status.approvals.len(),
        status
            .threshold
            .map(|k| format!(" of {k} needed"))
            .unwrap_or_default()
    );
    Ok(())
}

fn complete(
    args: &AdminArgs,
    request: &str,
    shares: &[String],
    org_public_key: &str,
    admins: &[String],
) -> Result<()> {
    let id = RequestId::parse(request)?;
    let org = OrgPublicKey::parse(org_public_key)?;
    let client = args.client()?;
    let rt = runtime()?;
    let case = rt.block_on(client.case(&id))?;

    // The user's key, as the org certified it (verified here, not trusted).
    let entry = DirectoryEntry {
        user_id: case.user_id.clone(),
        email: case.status.email.clone(),
        display_name: kluis_types::DisplayName::parse("-")?,
        public_key: case.public_key.clone(),
        fingerprint: case.public_key.fingerprint(),
        certificate: case.certificate.clone(),
        status: UserStatus::Active,
    };
    verify_entry(&org, &entry).context("the user's key is not certified by the organisation")?;
    let user_key: Recipient = case.public_key.as_str().parse()?;
    let request_key: Recipient = case.request_key.as_str().parse()?;
    let escrow = RecoveryEscrow::from_bytes(
        case.recovery_escrow
            .clone()
            .context("the user has no recovery escrow copy on file")?
            .into_bytes(),
    );
    let approvals: Vec<Approval> = case
        .approvals
        .iter()
        .map(|w| Ok(serde_json::from_value(serde_json::to_value(w)?)?))
        .collect::<Result<_>>()?;
    let admin_keys: Vec<AdminPublicKey> = if admins.is_empty() {
        eprintln!("Using the broker's administrator list (pass --admin to pin your own).");
        rt.block_on(client.admins())?
            .admins
            .iter()
            .map(|a| AdminPublicKey::parse(&a.admin_key))
            .collect::<Result<_, _>>()?
    } else {
        admins
            .iter()
            .map(|a| AdminPublicKey::parse(a))
            .collect::<Result<_, _>>()?
    };

    let opened = shares
        .iter()
        .map(|s| {
            let (file, password) = match s.split_once('=') {
                Some((f, p)) => (f.to_owned(), read_password_file(Path::new(p))?),
                None => {
                    let bytes = std::fs::read(s)?;
                    let info = ShareFile::parse(&bytes)?.info().clone();
                    (
                        s.clone(),
                        prompt(&format!(
                            "{} — password of share {}",
                            info.holder, info.index
                        ))?,
                    )
                }
            };
            let bytes = std::fs::read(&file).with_context(|| format!("reading {file}"))?;
            Ok(ShareFile::parse(&bytes)?.open(password.as_bytes())?)
        })
        .collect::<Result<Vec<_>>>()?;
    let threshold = opened
        .first()
        .map(|s| usize::from(s.info().threshold))
        .context("no shares given")?;
    // The shares are combined here, in this process; the key never leaves it.
    let key = kluis_recovery::combine(&opened)?;
    let req = signed_request(&case)?;
    let (package, verified) = reseal_for_request(
        &key,
        &RecoveryCase {
            request: &req,
            request_key: &request_key,
            approvals: &approvals,
            escrow: &escrow,
            user_key: &user_key,
        },
        &ApprovalPolicy {
            threshold,
            admins: admin_keys,
        },
        &mut rng(),
    )?;
    drop(key);
    rt.block_on(client.upload_package(&id, package.as_bytes().to_vec()))?;
    println!(
        "Re-sealed the key of {} to their request key ({} approvals); they can now set a new password.",
        case.status.email,
        verified.approvers.len()
    );
    Ok(())
}
