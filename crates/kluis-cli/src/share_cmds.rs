//! share, unshare, shares, groups: sharing with named colleagues. All
//! behaviour lives in `kluis_client::share`; this parses, asks for the
//! passphrase, and prints. docs/SHARING.md.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use kluis_account::AccountClient;
use kluis_agent::{AgentHome, Config};
use kluis_client::share::list::{self, KeyHolder, PinStatus};
use kluis_client::share::target::{Target, TargetError};
use kluis_client::share::{
    self, Broker, ChangeMembers, Keys, Me, Member, PolicyContext, Progress, ShareEvents,
};
use kluis_format::Identity;
use kluis_types::{Label, OrgPolicy};

use crate::account_cmds::{device_client, runtime};
use crate::secret::Passphrases;

#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// Share a synced folder (or a single Kluis file) with colleagues or
    /// groups. Keys come from the organisation's directory, verified.
    Share(ShareArgs),
    /// Stop sharing with someone. Files they already downloaded cannot be
    /// taken back; what is written afterwards is unreadable to them.
    Unshare(UnshareArgs),
    /// Who can read what: members, labels, verification state; and pair
    /// folders shared with you (`--discover`).
    Shares(SharesArgs),
    /// Groups on the broker: one key for many people.
    #[command(subcommand)]
    Groups(GroupsCommand),
}

#[derive(Debug, Args)]
pub struct ShareArgs {
    /// A paired folder (plaintext or mirror), or a Kluis file.
    path: PathBuf,
    /// `bob@example.org` or `group:finance`; repeat for more.
    #[arg(long = "with", value_name = "WHO", required_unless_present = "label")]
    with: Vec<String>,
    /// Set the folder's classification label (public, internal,
    /// confidential, personal, social, medical).
    #[arg(long)]
    label: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnshareArgs {
    /// A paired folder (plaintext or mirror), or a Kluis file.
    path: PathBuf,
    /// `bob@example.org` or `group:finance`; repeat for more.
    #[arg(long = "with", value_name = "WHO", required = true)]
    with: Vec<String>,
    /// Also re-encrypt every existing file under a new file key.
    #[arg(long)]
    rekey_existing: bool,
}

#[derive(Debug, Args)]
pub struct SharesArgs {
    /// A paired folder or a Kluis file; every pair when omitted.
    path: Option<PathBuf>,
    /// Show key fingerprints.
    #[arg(long)]
    fingerprints: bool,
    /// Look for folders shared with you in your sync folders and pair them
    /// under "Shared with me" (restart the agent to start syncing them).
    #[arg(long)]
    discover: bool,
}

#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// Create a group with a fresh key; you are its first member.
    Create {
        /// Group name (lower case).
        name: String,
    },
    /// Add a colleague (no file changes).
    Add {
        /// Group name.
        name: String,
        /// Their address.
        email: String,
    },
    /// Remove a colleague (group administrators): the group key rotates.
    Remove {
        /// Group name.
        name: String,
        /// Their address.
        email: String,
    },
    /// Rotate the group key (group administrators), e.g. after a member left.
    Rotate {
        /// Group name.
        name: String,
    },
    /// Leave a group yourself; an administrator then rotates its key.
    Leave {
        /// Group name.
        name: String,
    },
    /// Make a member a group administrator, or with --revoke take the role
    /// away (a group keeps at least one).
    Admin {
        /// Group name.
        name: String,
        /// The member's address.
        email: String,
        /// Take the role away instead.
        #[arg(long)]
        revoke: bool,
    },
    /// Groups and their members.
    List,
}

/// Every group and its member addresses.
type GroupMembers = Vec<(String, Vec<String>)>;

struct Ctx {
    home: AgentHome,
    config: Config,
    identity: Identity,
    group_keys: Vec<Identity>,
    client: AccountClient,
    email: String,
    rt: tokio::runtime::Runtime,
}

impl Ctx {
    fn open(pass: &Passphrases) -> Result<Ctx> {
        let home = AgentHome::resolve()?;
        let config = Config::load(&home)?;
        let path = home.identity_file();
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "cannot read identity {}; create one with `kluis keygen`",
                path.display()
            )
        })?;
        let passphrase = pass.get("your identity", false)?;
        let identity = kluis_format::open_identity(&bytes, passphrase.as_bytes())?;
        let (client, acct) = device_client(&crate::home::Home::resolve()?)?;
        let rt = runtime()?;
        let group_keys = rt
            .block_on(share::groups::my_group_keys(
                &client,
                &identity,
                &acct.email,
            ))
            .context("fetching your groups' keys")?;
        Ok(Ctx {
            home,
            config,
            identity,
            group_keys,
            client,
            email: acct.email,
            rt,
        })
    }

    fn keys(&self) -> Keys<'_> {
        Keys {
            identity: &self.identity,
            groups: &self.group_keys,
        }
    }

    /// The organisation policy (signed by the org key, checked by
    /// kluis-account) and the group list it needs.
    fn policy(&self) -> Result<(OrgPolicy, GroupMembers)> {
        self.rt
            .block_on(share::dialog::policy(&self.client))
            .context("fetching the organisation policy")
    }
}

/// What `path` names; the refusals worded for the command line.
fn target(config: &Config, path: &Path) -> Result<Target> {
    match share::target::target(config, path) {
        Ok(t) => Ok(t),
        Err(TargetError::InsidePair { pair, .. }) => bail!(
            "{} is inside the synced folder {}: files there are shared with the folder's members; share {} instead",
            path.display(),
            pair.display(),
            pair.display()
        ),
        Err(TargetError::NotShareable(_)) => bail!(
            "{} is neither a paired folder (see `kluis folders list`) nor a Kluis file",
            path.display()
        ),
        Err(TargetError::Io { source, .. }) => Err(source.into()),
    }
}

fn progress_printer() -> impl FnMut(&Progress) {
    let bar = indicatif::ProgressBar::hidden();
    let mut started = false;
    move |p: &Progress| {
        if !started {
            started = true;
            bar.set_length(p.total as u64);
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        bar.set_position(p.done as u64);
        if p.done == p.total {
            bar.finish_and_clear();
        }
    }
}

fn resolve_all(ctx: &Ctx, who: &[String]) -> Result<Vec<Member>> {
    let mut out = Vec::new();
    for w in who {
        let v = ctx.rt.block_on(share::resolve::resolve(&ctx.client, w))?;
        let note = if v.newly_pinned {
            "  (first use: pinned now; compare the fingerprint with them)"
        } else {
            ""
        };
        // The fingerprint their own device shows (`kluis recipient
        // --fingerprint`), the one `kluis shares --fingerprints` lists.
        eprintln!("{w}: {}{note}", v.member.recipient.fingerprint());
        out.push(v.member);
    }
    Ok(out)
}

fn print_report(r: &share::ShareReport) {
    for n in &r.notices {
        eprintln!("notice: {n}");
    }
    println!(
        "{} file(s) updated, {} already up to date.",
        r.files_updated, r.files_unchanged
    );
    for (p, why) in &r.files_failed {
        eprintln!("not changed: {}: {why}", p.display());
    }
}

/// What a share shows on the terminal: notices on stderr as they come, a
/// progress bar, and each step's report.
struct Terminal<P> {
    bar: P,
}

impl<P: FnMut(&Progress)> ShareEvents for Terminal<P> {
    fn notice(&mut self, notice: &share::ShareNotice) {
        eprintln!("notice: {notice}");
    }

    fn progress(&mut self, p: &Progress) {
        (self.bar)(p)
    }

    fn report(&mut self, r: &share::ShareReport) {
        print_report(r)
    }
}

fn terminal() -> Terminal<impl FnMut(&Progress)> {
    Terminal {
        bar: progress_printer(),
    }
}

impl Ctx {
    fn broker(&self) -> Broker<'_> {
        Broker {
            client: &self.client,
            me: &self.email,
            runtime: share::Runtime::Own(&self.rt),
        }
    }
}

/// After a group changed (a member added or removed), refresh its key file
/// in every paired folder shared with it.
fn publish_group_everywhere(ctx: &Ctx, group: &str) {
    share::publish_group_everywhere(
        ctx.broker(),
        ctx.keys(),
        ctx.config.pairs.iter().map(|p| p.mirror.as_path()),
        group,
        &mut terminal(),
    );
}

fn rand() -> impl rand_core::CryptoRng {
    kluis_client::rng()
}

pub fn run(cmd: ShareCommand, pass: &Passphrases) -> Result<()> {
    match cmd {
        ShareCommand::Share(a) => {
            let ctx = Ctx::open(pass)?;
            let (policy, groups) = ctx.policy()?;
            let pctx = PolicyContext {
                policy: &policy,
                groups: &groups,
            };
            let members = resolve_all(&ctx, &a.with)?;
            match target(&ctx.config, &a.path)? {
                Target::Folder { mirror, title } => {
                    let me = Me {
                        email: ctx.email.clone(),
                        title,
                    };
                    if let Some(l) = &a.label {
                        let label = Label::parse(l).map_err(|e| anyhow::anyhow!("{e}"))?;
                        share::set_label(
                            &mirror,
                            ctx.keys(),
                            &me,
                            Some(label),
                            Some(pctx),
                            &mut rand(),
                        )?;
                        println!("Label set to {label}.");
                    }
                    // The directory refresh first (departed members dropped),
                    // then the share: the tray's share dialog runs the same.
                    let change = ChangeMembers {
                        add: &members,
                        ..ChangeMembers::default()
                    };
                    let done = share::change_folder_members(
                        ctx.broker(),
                        ctx.keys(),
                        &mirror,
                        &me,
                        change,
                        Some(pctx),
                        &mut terminal(),
                        &mut rand(),
                    )?;
                    if done.shared.is_some() {
                        println!(
                            "Now share the mirror {} with them through your sync provider.",
                            mirror.display()
                        );
                    }
                }
                Target::File(f) => {
                    for m in &members {
                        pctx.check(None, m)?;
                    }
                    let changed = share::share_file(&f, ctx.keys(), &members, &mut rand())?;
                    println!(
                        "{}",
                        if changed {
                            "Shared."
                        } else {
                            "Already shared with them."
                        }
                    );
                }
            }
            Ok(())
        }
        ShareCommand::Unshare(a) => {
            let ctx = Ctx::open(pass)?;
            match target(&ctx.config, &a.path)? {
                Target::Folder { mirror, title } => {
                    let me = Me {
                        email: ctx.email.clone(),
                        title,
                    };
                    let change = ChangeMembers {
                        remove: &a.with,
                        rekey_existing: a.rekey_existing,
                        ..ChangeMembers::default()
                    };
                    let done = share::change_folder_members(
                        ctx.broker(),
                        ctx.keys(),
                        &mirror,
                        &me,
                        change,
                        None,
                        &mut terminal(),
                        &mut rand(),
                    )?;
                    if done.unshared.is_none() {
                        println!("Nobody else to remove.");
                        return Ok(());
                    }
                    eprintln!(
                        "Files they already downloaded cannot be taken back; new files are encrypted without them.{}",
                        if a.rekey_existing {
                            ""
                        } else {
                            " Add --rekey-existing to re-encrypt the existing files too."
                        }
                    );
                }
                Target::File(f) => {
                    let members = resolve_all(&ctx, &a.with)?;
                    let gone: Vec<_> = members.iter().map(|m| m.recipient.clone()).collect();
                    let keep = [ctx.identity.recipient().clone()];
                    share::unshare_file(
                        &f,
                        ctx.keys(),
                        &gone,
                        a.rekey_existing.then_some(&keep[..]),
                        &mut rand(),
                    )?;
                    println!("Unshared.");
                }
            }
            Ok(())
        }
        ShareCommand::Shares(a) => shares(a, pass),
        ShareCommand::Groups(g) => groups(g, pass),
    }
}

/// How `kluis shares` words a member's check.
fn verification(status: &PinStatus) -> String {
    match status {
        PinStatus::Unnamed => "unnamed key".into(),
        PinStatus::Verified | PinStatus::FirstSeen => "verified".into(),
        PinStatus::Changed => {
            "directory has a newer key (run `kluis share` again to move to it)".into()
        }
        PinStatus::Left => "left".into(),
        PinStatus::NotVerified(e) => format!("NOT VERIFIED: {e}"),
    }
}

fn shares(a: SharesArgs, pass: &Passphrases) -> Result<()> {
    let mut ctx = Ctx::open(pass)?;
    if a.discover {
        let dir = ctx
            .config
            .shared_with_me_dir()
            .context("cannot determine the home directory; set shared_with_me in sync.json")?;
        let mut config = ctx.config.clone();
        let found = share::discover_shared(&mut config, ctx.keys(), &dir)?;
        for d in &found {
            match &d.outcome {
                share::DiscoveryOutcome::Added { plain } => println!(
                    "{}: shared with you by {}, now at {}",
                    d.mirror.display(),
                    d.owner,
                    plain.display()
                ),
                share::DiscoveryOutcome::NotSharedWithYou => println!(
                    "{}: not shared with you (left as ciphertext)",
                    d.mirror.display()
                ),
                share::DiscoveryOutcome::Unreadable(e) => println!(
                    "{}: cannot read its folder metadata yet: {e}",
                    d.mirror.display()
                ),
                share::DiscoveryOutcome::Own | share::DiscoveryOutcome::AlreadyPaired => {}
            }
        }
        config.save(&ctx.home)?;
        ctx.config = config;
    }
    let targets: Vec<Target> = match &a.path {
        Some(p) => vec![target(&ctx.config, p)?],
        None => ctx
            .config
            .pairs
            .iter()
            .map(|p| Target::Folder {
                mirror: p.mirror.clone(),
                title: String::new(),
            })
            .collect(),
    };
    for t in targets {
        match t {
            Target::Folder { mirror, .. } => match share::list_folder(&mirror, ctx.keys()) {
                Ok(listed) => {
                    let meta = ctx.rt.block_on(list::check_folder(&ctx.client, listed));
                    let label = meta
                        .label
                        .as_deref()
                        .map(|l| format!(", label {l}"))
                        .unwrap_or_default();
                    let owner = if meta.owner.is_empty() {
                        String::new()
                    } else {
                        format!(", owner {}", meta.owner)
                    };
                    println!(
                        "{} ({}{owner}{label})",
                        if meta.title.is_empty() {
                            "folder"
                        } else {
                            &meta.title
                        },
                        mirror.display()
                    );
                    for m in &meta.members {
                        let fp = if a.fingerprints {
                            format!("  {}", m.fingerprint)
                        } else {
                            String::new()
                        };
                        println!(
                            "  {:<40} {:<6} {}{fp}",
                            m.who,
                            format!("{:?}", m.kind).to_lowercase(),
                            verification(&m.status)
                        );
                    }
                }
                Err(share::ShareError::NotShared(_)) => {
                    println!("{}: not shared with you", mirror.display())
                }
                Err(e) => println!("{}: {e}", mirror.display()),
            },
            Target::File(f) => {
                let home = crate::home::Home::resolve()?;
                let mine = ctx.identity.recipient().fingerprint().key_id();
                let s = list::list_file_keys(
                    &f,
                    (&ctx.email, mine),
                    &crate::account_cmds::state_dir(&home),
                )?;
                println!("{}: {} recipient key(s)", f.display(), s.keys.len());
                for k in s.keys {
                    let who = match k.holder {
                        KeyHolder::You(email) => format!("{email} (you)"),
                        KeyHolder::Pinned(email) => email,
                        KeyHolder::Unknown => "(not a colleague whose key you have pinned)".into(),
                    };
                    println!("  {}  {who}", k.key_id);
                }
            }
        }
    }
    Ok(())
}

fn groups(cmd: GroupsCommand, pass: &Passphrases) -> Result<()> {
    let ctx = Ctx::open(pass)?;
    match cmd {
        GroupsCommand::Create { name } => {
            let r = ctx.rt.block_on(share::groups::create(
                &ctx.client,
                &ctx.identity,
                &name,
                &mut rand(),
            ))?;
            println!("Created group {name}; key fingerprint {}.", r.fingerprint());
            println!(
                "Ask an administrator to certify it: kluis-broker admin certify-group --name {name} --public-key {r}"
            );
        }
        GroupsCommand::Add { name, email } => {
            let (policy, _) = ctx.policy()?;
            ctx.rt.block_on(share::groups::add_member(
                &ctx.client,
                &ctx.identity,
                &name,
                &email,
                Some(&policy),
                &mut rand(),
            ))?;
            publish_group_everywhere(&ctx, &name);
            println!(
                "Added {email} to {name}. No file changed: folders shared with {name} are readable to them now."
            );
        }
        GroupsCommand::Remove { name, email } => {
            let r = ctx.rt.block_on(share::groups::remove_member(
                &ctx.client,
                &ctx.identity,
                &name,
                &email,
                &mut rand(),
            ))?;
            publish_group_everywhere(&ctx, &name);
            println!(
                "Removed {email} from {name}; the group key rotated (new fingerprint {}).",
                r.fingerprint()
            );
            println!(
                "After an administrator certifies it, folders shared with {name} move to the new key at the next write by a member's agent or `kluis share`."
            );
        }
        GroupsCommand::Rotate { name } => {
            let r = ctx.rt.block_on(share::groups::rotate(
                &ctx.client,
                &ctx.identity,
                &name,
                &mut rand(),
            ))?;
            publish_group_everywhere(&ctx, &name);
            println!(
                "Rotated the key of {name} (new fingerprint {}).",
                r.fingerprint()
            );
            println!(
                "Ask an administrator to certify it: kluis-broker admin certify-group --name {name} --public-key {r}"
            );
        }
        GroupsCommand::Leave { name } => {
            ctx.rt.block_on(ctx.client.leave_group(&name))?;
            println!(
                "You left {name}. Its administrators are asked to rotate the group key (`kluis groups rotate {name}`)."
            );
        }
        GroupsCommand::Admin {
            name,
            email,
            revoke,
        } => {
            ctx.rt
                .block_on(ctx.client.set_group_admin(&name, &email, !revoke))?;
            if revoke {
                println!("{email} is no longer an administrator of {name}.");
            } else {
                println!("{email} is now an administrator of {name}.");
            }
        }
        GroupsCommand::List => {
            for g in ctx.rt.block_on(ctx.client.list_groups())? {
                let cert = if g.certificate.is_some() {
                    "certified"
                } else {
                    "NOT certified"
                };
                // As `groups create` and `shares --fingerprints` show it.
                let fp = g
                    .public_key
                    .as_str()
                    .parse::<kluis_format::Recipient>()
                    .map_or_else(
                        |_| g.fingerprint.to_string(),
                        |r| r.fingerprint().to_string(),
                    );
                let due = if g.rotation_due {
                    ", key rotation due: a member left"
                } else {
                    ""
                };
                println!("{} (key v{}, {cert}, {fp}{due})", g.name, g.key_version);
                for m in g.members {
                    let role = if g.admins.contains(&m) {
                        " (administrator)"
                    } else {
                        ""
                    };
                    println!("  {m}{role}");
                }
            }
        }
    }
    Ok(())
}
