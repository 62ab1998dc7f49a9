//! The share dialog's commands: search the directory, show a folder's
//! members and the policy's verdict on a proposed change, then apply it
//! with progress. Each delegates to `kluis_client::share` with this
//! device's account and the keys the in-process engine holds unlocked;
//! applying a change is [`share::change_folder_members`], the operation
//! `kluis share` and `kluis unshare` run too (the directory refresh first).

use std::path::PathBuf;

use kluis_agent::AgentHandle;
use kluis_client::account;
use kluis_client::share::dialog::{self, Candidate, RefusalReason, Trust, VerdictReason};
use kluis_client::share::{
    self, Broker, ChangeMembers, FileProblem, Me, MemberKind, PolicyContext, Progress, ShareEvents,
    ShareNotice, ShareReport,
};
use serde::Serialize;
use tauri::State;

use crate::error::{ErrorCode, UiError};
use crate::shell::Shell;
pub use crate::shell::{ShareProgress, ShareProgressView};

/// What a candidate is (the UI words it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum CandidateKind {
    /// A colleague.
    User,
    /// A group.
    Group,
    /// A bare key, without a directory entry.
    Key,
}

/// How far a candidate's key is trusted (the UI words it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum KeyTrust {
    /// Certified by the organisation, and the key we pinned.
    Verified,
    /// Certified, and seen for the first time: compare the fingerprint.
    FirstSeen,
    /// The directory has a newer key.
    NewerKey,
    /// The person has left.
    Left,
    /// A key without a name.
    Unnamed,
    /// Refused (`detail` says why).
    Refused,
}

/// A person or group in the dialog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct CandidateView {
    /// `bob@example.org` or `group:finance`.
    pub who: String,
    /// Name to show.
    pub name: String,
    /// A colleague, a group or a bare key.
    pub kind: CandidateKind,
    /// Key fingerprint, to compare with the person.
    pub fingerprint: String,
    /// How far the key is trusted.
    pub trust: KeyTrust,
    /// Why, when refused (the UI words it).
    pub detail: Option<RefusalReason>,
}

impl From<Candidate> for CandidateView {
    fn from(c: Candidate) -> Self {
        let (trust, detail) = match c.trust {
            Trust::Verified => (KeyTrust::Verified, None),
            Trust::FirstSeen => (KeyTrust::FirstSeen, None),
            Trust::NewerKey => (KeyTrust::NewerKey, None),
            Trust::Left => (KeyTrust::Left, None),
            Trust::Unnamed => (KeyTrust::Unnamed, None),
            Trust::Refused(why) => (KeyTrust::Refused, Some(why)),
        };
        CandidateView {
            who: c.who,
            name: c.name,
            kind: match c.kind {
                MemberKind::User => CandidateKind::User,
                MemberKind::Group => CandidateKind::Group,
                MemberKind::Key => CandidateKind::Key,
            },
            fingerprint: c.fingerprint,
            trust,
            detail,
        }
    }
}

/// A folder as the dialog shows it.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct FolderShareView {
    /// The pair.
    pub pair: String,
    /// The folder's name.
    pub title: String,
    /// Its classification label, if any.
    pub label: Option<String>,
    /// Your address (you are not offered for removal).
    pub me: String,
    /// Its members, each checked against the directory now.
    pub members: Vec<CandidateView>,
}

/// The verdict on adding one person or group.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct VerdictView {
    /// Who, with key and trust.
    pub candidate: CandidateView,
    /// Whether the share may go ahead for them.
    pub allowed: bool,
    /// Why not (policy rule, or the key's trust; the UI words it).
    pub reason: Option<VerdictReason>,
}

/// What a share or unshare did.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct ShareOutcome {
    /// Files whose header (or content, when re-keyed) was rewritten.
    pub files_updated: u32,
    /// Files that already had the change.
    pub files_unchanged: u32,
    /// Files left as they were, with the reason.
    pub files_failed: Vec<FileFailure>,
    /// Things to know (departed members dropped, …; the UI words them).
    pub notices: Vec<ShareNotice>,
}

/// A file a share left as it was, and why.
#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct FileFailure {
    /// The ciphertext file.
    pub path: String,
    /// Why (the UI words it).
    pub problem: FileProblem,
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn client(shell: &Shell) -> Result<(kluis_client::AccountClient, account::AccountFile), UiError> {
    Ok(account::device_client(shell.engine.home())?)
}

fn agent(shell: &Shell) -> Result<AgentHandle, UiError> {
    shell.engine.agent().ok_or_else(|| {
        UiError::new(
            ErrorCode::ShareNeedsAppEngine,
            "sharing from the app needs the app's own engine; use `kluis share` with `kluis agent`",
        )
    })
}

/// The pair's mirror and its folder name.
fn folder(shell: &Shell, pair: &str) -> Result<(PathBuf, String), UiError> {
    let s = shell.status()?;
    let p = s
        .pairs
        .iter()
        .find(|p| p.id == pair)
        .ok_or_else(|| UiError::new(ErrorCode::NoSuchPair, format!("no folder pair {pair}")))?;
    let title = p
        .plain
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((p.mirror.clone(), title))
}

/// Colleagues and groups matching `query` in the directory, each with its
/// fingerprint and trust (refused entries too, with the reason).
#[tauri::command]
#[specta::specta]
pub async fn share_search(
    shell: State<'_, Shell>,
    query: String,
) -> Result<Vec<CandidateView>, UiError> {
    let (client, _) = client(&shell)?;
    Ok(dialog::search(&client, &query)
        .await?
        .into_iter()
        .map(CandidateView::from)
        .collect())
}

/// A folder pair's label and members, as the dialog opens.
#[tauri::command]
#[specta::specta]
pub async fn get_folder_shares(
    shell: State<'_, Shell>,
    pair: String,
) -> Result<FolderShareView, UiError> {
    let (client, acct) = client(&shell)?;
    let (mirror, title) = folder(&shell, &pair)?;
    let (listed, mine) = agent(&shell)?
        .with_keys(|keys| {
            share::list_folder(&mirror, keys)
                .map(|l| (l, keys.identity.recipient().fingerprint().to_string()))
        })
        .map_err(UiError::from)?
        .map_err(UiError::from)?;
    let members = dialog::members(&client, &listed, (&acct.email, &mine)).await;
    Ok(FolderShareView {
        pair,
        title: if listed.title.is_empty() {
            title
        } else {
            listed.title.clone()
        },
        label: listed.label.clone(),
        me: acct.email.clone(),
        members: members.into_iter().map(CandidateView::from).collect(),
    })
}

/// Before confirming: for each person or group to add, their verified key
/// and the policy's verdict for this folder's label.
#[tauri::command]
#[specta::specta]
pub async fn preview_share(
    shell: State<'_, Shell>,
    pair: String,
    add: Vec<String>,
) -> Result<Vec<VerdictView>, UiError> {
    let (client, _) = client(&shell)?;
    let (mirror, _) = folder(&shell, &pair)?;
    let label = agent(&shell)?
        .with_keys(|keys| share::list_folder(&mirror, keys))
        .map_err(UiError::from)?
        .map_err(UiError::from)?
        .label;
    let (policy, groups) = dialog::policy(&client).await?;
    let ctx = PolicyContext {
        policy: &policy,
        groups: &groups,
    };
    let mut out = Vec::new();
    for who in add.iter().map(|w| w.trim()).filter(|w| !w.is_empty()) {
        let p = dialog::preview(&client, ctx, label.as_deref(), who).await;
        out.push(VerdictView {
            candidate: CandidateView::from(p.candidate),
            allowed: p.reason.is_none(),
            reason: p.reason,
        });
    }
    Ok(out)
}

/// Share a folder pair with `add` and stop sharing it with `remove` (with
/// `rekey`, existing files are re-encrypted too). Every key is verified and
/// the policy checked again here, whatever the preview said. Progress is
/// read with [`share_progress`].
#[tauri::command]
#[specta::specta]
pub async fn apply_share(
    shell: State<'_, Shell>,
    pair: String,
    add: Vec<String>,
    remove: Vec<String>,
    rekey: bool,
) -> Result<ShareOutcome, UiError> {
    let (client, acct) = client(&shell)?;
    let (mirror, title) = folder(&shell, &pair)?;
    let handle = agent(&shell)?;
    let mut members = Vec::new();
    for who in add.iter().map(|w| w.trim()).filter(|w| !w.is_empty()) {
        members.push(
            share::resolve::resolve(&client, who)
                .await
                .map_err(|e| UiError::new(ErrorCode::ShareRefused, e.to_string()))?
                .member,
        );
    }
    let (policy, groups) = dialog::policy(&client).await?;
    // The broker calls of the share run on this command's runtime, driven
    // from the blocking thread below.
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| UiError::new(ErrorCode::Failed, e.to_string()))?;
    let progress = shell.share_progress.clone();
    {
        let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
        if p.running {
            return Err(UiError::new(
                ErrorCode::ShareRunning,
                "a share is still running",
            ));
        }
        *p = ShareProgressView {
            running: true,
            ..ShareProgressView::default()
        };
    }
    let me = Me {
        email: acct.email,
        title,
    };
    let bar = progress.clone();
    let remove: Vec<String> = remove
        .iter()
        .map(|w| w.trim().to_owned())
        .filter(|w| !w.is_empty())
        .collect();
    let work = tauri::async_runtime::spawn_blocking(move || {
        let mut events = Outcome {
            bar,
            outcome: ShareOutcome {
                files_updated: 0,
                files_unchanged: 0,
                files_failed: Vec::new(),
                notices: Vec::new(),
            },
        };
        let broker = Broker {
            client: &client,
            me: &me.email,
            runtime: share::Runtime::Handle(&runtime),
        };
        let ctx = PolicyContext {
            policy: &policy,
            groups: &groups,
        };
        let change = ChangeMembers {
            add: &members,
            remove: &remove,
            rekey_existing: rekey,
        };
        handle.with_keys(|keys| {
            share::change_folder_members(
                broker,
                keys,
                &mirror,
                &me,
                change,
                Some(ctx),
                &mut events,
                &mut kluis_client::rng(),
            )
            .map(|_| events.outcome)
        })
    })
    .await;
    progress.lock().unwrap_or_else(|e| e.into_inner()).running = false;
    let outcome = work
        .map_err(|e| UiError::new(ErrorCode::Failed, e.to_string()))?
        .map_err(UiError::from)?
        .map_err(UiError::from)?;
    // New members' folders appear on their devices; ours re-reads the
    // metadata at once.
    let _ = shell.engine.call(&kluis_agent::Request::Sync);
    Ok(outcome)
}

/// Collects what a share shows into the dialog's outcome and progress bar.
struct Outcome {
    bar: ShareProgress,
    outcome: ShareOutcome,
}

impl ShareEvents for Outcome {
    fn notice(&mut self, notice: &ShareNotice) {
        self.outcome.notices.push(notice.clone());
    }

    fn progress(&mut self, p: &Progress) {
        let mut v = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        v.done = count(p.done);
        v.total = count(p.total);
    }

    fn report(&mut self, r: &ShareReport) {
        let o = &mut self.outcome;
        o.files_updated += count(r.files_updated);
        o.files_unchanged += count(r.files_unchanged);
        o.files_failed
            .extend(r.files_failed.iter().map(|(p, why)| FileFailure {
                path: p.display().to_string(),
                problem: why.clone(),
            }));
        o.notices.extend(r.notices.iter().cloned());
    }
}

/// How far the running share got.
#[tauri::command]
#[specta::specta]
pub fn share_progress(shell: State<'_, Shell>) -> ShareProgressView {
    *shell
        .share_progress
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}
