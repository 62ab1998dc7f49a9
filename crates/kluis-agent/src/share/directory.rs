//! What the running agent learns from the organisation's directory while
//! online (docs/SHARING.md, "Departed users" and "Group key rotation"):
//! which folder members have left, which members have a newer verified key
//! (a certified group-key rotation), and the keys of your own groups.
//!
//! The agent asks a [`Directory`] at unlock, when one is set, when asked
//! ([`crate::AgentHandle::refresh_directory`]) and periodically
//! ([`crate::AgentOptions::directory_interval`]). Offline, a refresh fails
//! and the agent keeps going with what it learned last. The sync engine
//! applies the result to a folder at its next write into that folder
//! ([`kluis_sync::Engine::set_directory`]).
//!
//! [`BrokerDirectory`] is the real one: the broker's directory through
//! `kluis-account`, every key verified (org certificate and pin). Nothing
//! here logs or returns secrets; group keys are handed to the agent only.

use kluis_account::AccountClient;
use kluis_format::Identity;
use kluis_sync::{DirectoryView, Member, MemberKind};

/// A source of directory facts for the agent. Implementations must verify
/// every key they return in [`DirectoryView::current`] (org certificate,
/// pin; for groups a certified rotation to a higher version).
pub trait Directory: Send + Sync {
    /// Look up the users and groups among `members` (the members of every
    /// folder this device syncs). `Err` (with a message for the status,
    /// no secrets) when the directory cannot be reached: the agent keeps
    /// its last view.
    fn lookup(&self, members: &[Member]) -> Result<DirectoryView, String>;

    /// Every key version of every group you belong to, so folders shared
    /// with a group open (`AgentHandle::set_group_keys`). `Ok(None)` when
    /// this directory does not provide group keys.
    fn group_keys(&self, identity: &Identity) -> Result<Option<Vec<Identity>>, String>;

    /// Group `group`'s key file (FORMAT.md §8.7) as the directory holds it,
    /// for the copy the agent keeps in the mirrors of folders shared with
    /// the group. `Ok(None)` when this directory does not provide it or you
    /// are not a member of the group.
    fn group_key_file(&self, group: &str) -> Result<Option<Vec<u8>>, String> {
        let _ = group;
        Ok(None)
    }
}

/// The broker's directory, as the signed-in account on this device sees it.
pub struct BrokerDirectory {
    client: AccountClient,
    me: String,
    /// Always `Some` until dropped.
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for BrokerDirectory {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which tokio forbids inside another
        // runtime (a caller may replace the directory from async code).
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for BrokerDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerDirectory")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl BrokerDirectory {
    /// `client` must hold a session (signed in); `me` is your address.
    pub fn new(client: AccountClient, me: impl Into<String>) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(BrokerDirectory {
            client,
            me: me.into(),
            rt: Some(rt),
        })
    }

    /// Run `f` to completion on our runtime, from a thread of our own, so a
    /// caller inside another async runtime (the tray app) cannot trip
    /// tokio's "runtime within a runtime" check.
    fn block_on<T: Send>(
        &self,
        f: impl std::future::Future<Output = T> + Send,
    ) -> Result<T, String> {
        let rt = self.rt.as_ref().ok_or("directory closed")?;
        std::thread::scope(|s| {
            s.spawn(|| rt.block_on(f))
                .join()
                .map_err(|_| "directory lookup failed".to_owned())
        })
    }
}

/// Look up the users and groups among `members` in the broker's directory:
/// users whose account is disabled (key revoked) or gone are `departed`;
/// users and groups whose key verifies (org certificate, pin, certified
/// group rotation) are in `current` with that key. `me` is skipped. Fails
/// only when the broker cannot be reached or the session is gone; a member
/// that cannot be looked up or verified is left out (keeps its key).
pub async fn lookup(
    client: &AccountClient,
    me: &str,
    members: &[Member],
) -> Result<DirectoryView, kluis_account::AccountError> {
    // One call that needs the session: tells "offline or signed out" apart
    // from facts about single members.
    client.list_groups().await?;
    let mut view = DirectoryView::default();
    let mut seen = std::collections::HashSet::new();
    for m in members {
        if !seen.insert((m.kind, m.name.clone())) {
            continue;
        }
        match m.kind {
            MemberKind::Key => {}
            MemberKind::User if m.name == me => {}
            MemberKind::User => match client.colleague_status(&m.name).await {
                Ok(None) | Ok(Some(kluis_types::UserStatus::Revoked)) => {
                    view.departed.push(m.name.clone())
                }
                Ok(Some(_)) => {
                    // A key that fails verification (changed, not
                    // certified) is not used: the member keeps the key the
                    // folder has.
                    if let Ok(v) = super::resolve::resolve(client, &m.name).await {
                        view.current.push(v.member);
                    }
                }
                // Transient: nothing learned about this one.
                Err(_) => {}
            },
            MemberKind::Group => {
                let who = format!("group:{}", m.name);
                if let Ok(v) = super::resolve::resolve(client, &who).await {
                    view.current.push(v.member);
                }
            }
        }
    }
    Ok(view)
}

impl Directory for BrokerDirectory {
    fn lookup(&self, members: &[Member]) -> Result<DirectoryView, String> {
        self.block_on(lookup(&self.client, &self.me, members))?
            .map_err(|e| format!("directory not reachable: {e}"))
    }

    fn group_keys(&self, identity: &Identity) -> Result<Option<Vec<Identity>>, String> {
        self.block_on(super::groups::my_group_keys(
            &self.client,
            identity,
            &self.me,
        ))?
        .map(Some)
        .map_err(|e| format!("group keys: {e}"))
    }

    fn group_key_file(&self, group: &str) -> Result<Option<Vec<u8>>, String> {
        let groups = [group.to_owned()];
        self.block_on(super::group_files::fetch_from_broker(
            &self.client,
            &self.me,
            &groups,
        ))?
        .map(|mut v| v.pop().map(|(_, b)| b))
        .map_err(|e| format!("group key file: {e}"))
    }
}
