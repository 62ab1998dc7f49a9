//! The one folder share operation that `kluis share`/`kluis unshare` and
//! the tray's share dialog both call, so they behave alike
//! (docs/SHARING.md, "Departed users"):
//!
//! 1. the folder's members are brought in line with the directory first
//!    ([`refresh_members`]): people who left are dropped, members move to
//!    their current verified keys; offline, the folder is left as it is;
//! 2. the new members are added ([`super::share_folder`]);
//! 3. the members to remove are removed ([`super::unshare_folder`]), less
//!    those the refresh already dropped;
//! 4. the key files of the folder's groups in the mirror are brought up to
//!    date ([`publish_group_files`]).
//!
//! The work is blocking (it rewrites headers); the broker calls are driven
//! on the caller's tokio runtime ([`Broker`]). What a face should show comes
//! through [`ShareEvents`], in order.

use std::path::Path;

use kluis_account::AccountClient;

use super::{
    Keys, Me, Member, PolicyContext, Progress, ShareError, ShareNotice, ShareReport, directory,
    group_files, open_folder, refresh_folder, share_folder, unshare_folder,
};

/// The tokio runtime that drives the broker calls of a blocking share.
/// The share must run on a thread outside any async task (the CLI's main
/// thread, the tray's `spawn_blocking`): tokio refuses to block inside one.
#[derive(Debug, Clone, Copy)]
pub enum Runtime<'a> {
    /// A runtime of the caller's own (the CLI's current-thread runtime).
    Own(&'a tokio::runtime::Runtime),
    /// A handle to a multi-thread runtime, used from a blocking thread (the
    /// tray app's `spawn_blocking`).
    Handle(&'a tokio::runtime::Handle),
}

impl Runtime<'_> {
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        match self {
            Runtime::Own(rt) => rt.block_on(f),
            Runtime::Handle(h) => h.block_on(f),
        }
    }
}

/// The broker as a share sees it: the signed-in account on this device.
#[derive(Clone, Copy)]
pub struct Broker<'a> {
    /// A client holding a session.
    pub client: &'a AccountClient,
    /// Your address.
    pub me: &'a str,
    /// Drives the calls.
    pub runtime: Runtime<'a>,
}

impl std::fmt::Debug for Broker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// What a face shows while a share runs, in the order it happens.
pub trait ShareEvents {
    /// Something the person should know (a departed member dropped, the
    /// directory not reachable, a group key file not written).
    fn notice(&mut self, notice: &ShareNotice);
    /// Progress through the folder's files.
    fn progress(&mut self, _progress: &Progress) {}
    /// A share or unshare step finished.
    fn report(&mut self, _report: &ShareReport) {}
}

/// Who to add to and remove from a folder.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChangeMembers<'a> {
    /// New members, each already verified through the directory
    /// ([`super::resolve::resolve`]).
    pub add: &'a [Member],
    /// Members to remove (`bob@example.org`, `group:finance` or a key id).
    pub remove: &'a [String],
    /// Re-encrypt the existing files after a removal.
    pub rekey_existing: bool,
}

/// What [`change_folder_members`] did.
#[derive(Debug, Default)]
pub struct FolderChange {
    /// Members the directory refresh dropped (they left), as displayed.
    pub dropped: Vec<String>,
    /// The share step, when there was someone to add.
    pub shared: Option<ShareReport>,
    /// The unshare step, when there was someone left to remove.
    pub unshared: Option<ShareReport>,
}

/// Before a write, bring the folder's members in line with the directory:
/// people who left (deprovisioned) are dropped, and members move to their
/// current verified keys (a group after a certified rotation), each with a
/// notice. Offline, the folder is left as it is (and a notice says so).
/// Returns who was dropped.
pub fn refresh_members(
    broker: Broker<'_>,
    keys: Keys<'_>,
    mirror: &Path,
    events: &mut dyn ShareEvents,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<String>, ShareError> {
    let meta = open_folder(mirror, keys)?;
    let view =
        match broker
            .runtime
            .block_on(directory::lookup(broker.client, broker.me, &meta.members))
        {
            Ok(v) => v,
            Err(e) => {
                events.notice(&ShareNotice::DirectoryUnreachable {
                    error: e.to_string(),
                });
                return Ok(Vec::new());
            }
        };
    let r = refresh_folder(mirror, keys, &view, &mut |_| {}, rng)?;
    for n in &r.notices {
        events.notice(n);
    }
    let now = open_folder(mirror, keys)?;
    Ok(meta
        .members
        .iter()
        .filter(|m| {
            !now.members
                .iter()
                .any(|x| x.kind == m.kind && x.name == m.name)
        })
        .map(|m| m.display())
        .collect())
}

/// Change who can read the folder whose mirror is `mirror`: the directory
/// refresh first, then add, then remove, then the group key files (see the
/// module documentation). The policy is checked for every new member.
#[allow(
    clippy::too_many_arguments,
    reason = "each argument is a separate input of the one share operation"
)]
pub fn change_folder_members(
    broker: Broker<'_>,
    keys: Keys<'_>,
    mirror: &Path,
    me: &Me,
    change: ChangeMembers<'_>,
    policy: Option<PolicyContext<'_>>,
    events: &mut dyn ShareEvents,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<FolderChange, ShareError> {
    let mut out = FolderChange {
        dropped: refresh_members(broker, keys, mirror, events, rng)?,
        ..FolderChange::default()
    };
    if !change.add.is_empty() {
        let r = share_folder(
            mirror,
            keys,
            me,
            change.add,
            policy,
            &mut |p| events.progress(p),
            rng,
        )?;
        events.report(&r);
        out.shared = Some(r);
    }
    let remove: Vec<String> = change
        .remove
        .iter()
        .filter(|w| !out.dropped.contains(w))
        .cloned()
        .collect();
    if !remove.is_empty() {
        let r = unshare_folder(
            mirror,
            keys,
            me,
            &remove,
            change.rekey_existing,
            &mut |p| events.progress(p),
            rng,
        )?;
        events.report(&r);
        out.unshared = Some(r);
    }
    if out.shared.is_some() || out.unshared.is_some() {
        publish_group_files(broker, keys, mirror, events);
    }
    Ok(out)
}

/// Keep the key files of the folder's groups in its mirror current
/// (FORMAT.md §8.7), so members can open it without the broker. Only a
/// member of a group can fetch its file; for the others a member's agent
/// does it. Best effort: problems are notices.
pub fn publish_group_files(
    broker: Broker<'_>,
    keys: Keys<'_>,
    mirror: &Path,
    events: &mut dyn ShareEvents,
) {
    let Ok(groups) = group_files::groups_of(mirror, keys) else {
        return;
    };
    if groups.is_empty() {
        return;
    }
    let fetched = match broker.runtime.block_on(group_files::fetch_from_broker(
        broker.client,
        broker.me,
        &groups,
    )) {
        Ok(f) => f,
        Err(e) => {
            events.notice(&ShareNotice::GroupFilesUnreachable {
                error: e.to_string(),
            });
            return;
        }
    };
    let r = group_files::publish_all(mirror, keys, &mut |g| {
        Ok(fetched.iter().find(|(n, _)| n == g).map(|(_, b)| b.clone()))
    });
    match r {
        Ok(r) => {
            for (g, why) in r.failed {
                events.notice(&ShareNotice::GroupFileNotWritten {
                    group: g,
                    error: why,
                });
            }
        }
        Err(e) => events.notice(&ShareNotice::GroupFilesNotUpdated {
            error: e.to_string(),
        }),
    }
    for g in groups
        .iter()
        .filter(|g| !fetched.iter().any(|(n, _)| n == *g))
    {
        events.notice(&ShareNotice::NotGroupMember { group: g.clone() });
    }
}

/// After a group changed (a member added or removed), refresh its key file
/// in every one of `mirrors` whose folder is shared with it.
pub fn publish_group_everywhere<'m>(
    broker: Broker<'_>,
    keys: Keys<'_>,
    mirrors: impl IntoIterator<Item = &'m Path>,
    group: &str,
    events: &mut dyn ShareEvents,
) {
    for mirror in mirrors {
        if group_files::groups_of(mirror, keys).is_ok_and(|g| g.iter().any(|n| n == group)) {
            publish_group_files(broker, keys, mirror, events);
        }
    }
}
