//! What a share dialog shows before anything changes: colleagues and groups
//! found in the directory, each with its fingerprint and how far its key is
//! trusted; a folder's members in the same terms; and the organisation
//! policy's verdict on each person or group about to be added, for the
//! folder's classification label. The tray app's share dialog calls these;
//! `kluis share` prints the same facts.
//!
//! Nothing here changes a folder: [`super::share_folder`] and
//! [`super::unshare_folder`] do, once the person confirmed.

use kluis_account::{AccountClient, AccountError, PinStatus, RejectionReason};
use kluis_format::Recipient;
use kluis_types::{Label, OrgPolicy, UserStatus};

use super::list::{PinStatus as MemberPin, member_status};
use super::resolve::{ResolveError, resolve};
use super::{FolderShares, Member, MemberKind, PolicyContext};

/// How far a key is trusted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum Trust {
    /// Certified by the organisation key and matching the key pinned
    /// earlier.
    Verified,
    /// Certified by the organisation key and seen for the first time: pinned
    /// now. Compare the fingerprint with the person.
    FirstSeen,
    /// The folder still uses an older key; the directory has a newer
    /// certified one (after a group's key rotation).
    NewerKey,
    /// The colleague has left (account disabled, key revoked).
    Left,
    /// A bare key in the folder, with no name in the directory.
    Unnamed,
    /// Refused: not certified, certificate not by the org key, key changed
    /// since it was pinned, or the directory cannot say. Why, typed.
    Refused(RefusalReason),
}

/// Why a key is refused (a screen words it in its own language).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum RefusalReason {
    /// Not certified by the organisation.
    NotCertified,
    /// The certificate is not by the organisation's key.
    BadCertificate,
    /// The key changed since it was pinned.
    KeyChanged {
        /// Fingerprint pinned earlier.
        pinned: String,
    },
    /// The directory key is not a Kluis public key.
    NotAKluisKey,
    /// The colleague has left the organisation.
    Left,
    /// No such colleague in the directory.
    NotFound,
    /// A group's key is refused (uncertified, or changed since pinned).
    GroupKeyRefused,
    /// The broker cannot be reached.
    Unreachable,
    /// The directory could not confirm the key for another reason.
    Other {
        /// The cause, in English (for logs; screens word the kind).
        error: String,
    },
}

impl RefusalReason {
    /// Why resolving a member failed.
    pub fn of_resolve(e: &ResolveError) -> RefusalReason {
        match e {
            ResolveError::Left(_) => RefusalReason::Left,
            ResolveError::NotAKluisKey(_) => RefusalReason::NotAKluisKey,
            ResolveError::Account { source, .. } => RefusalReason::of_account(source),
        }
    }

    /// Why the directory refused a key.
    pub fn of_account(e: &AccountError) -> RefusalReason {
        match e {
            AccountError::Uncertified(_) => RefusalReason::NotCertified,
            AccountError::BadCertificate(_) => RefusalReason::BadCertificate,
            AccountError::KeyChanged { pinned, .. } => RefusalReason::KeyChanged {
                pinned: pinned.to_string(),
            },
            AccountError::NotFound(_) => RefusalReason::NotFound,
            AccountError::GroupRefused { .. } => RefusalReason::GroupKeyRefused,
            AccountError::Http(_) => RefusalReason::Unreachable,
            other => RefusalReason::Other {
                error: other.to_string(),
            },
        }
    }
}

/// Why the policy (or the key's trust) forbids adding someone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum VerdictReason {
    /// A rule of the organisation policy forbids it.
    Policy {
        /// The rule's stable name, e.g. `labels.medical.only_group`.
        rule: String,
    },
    /// The folder's classification label is not valid.
    BadLabel,
    /// The person's or group's key is refused.
    Refused {
        /// Why.
        why: RefusalReason,
    },
}

impl Trust {
    /// Whether new files may be encrypted to this key.
    pub fn usable(&self) -> bool {
        matches!(self, Trust::Verified | Trust::FirstSeen)
    }
}

/// A person or group, as the dialog lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Candidate {
    /// `bob@example.org` or `group:finance`: what share and unshare take.
    pub who: String,
    /// Display name (a person's name, a group's name).
    pub name: String,
    /// User or group (or a bare key among a folder's members).
    pub kind: MemberKind,
    /// Fingerprint of the key (as `kluis recipient --fingerprint` and the
    /// person's own device show it), to compare out of band; empty when
    /// the key was refused.
    pub fingerprint: String,
    /// How far the key is trusted.
    pub trust: Trust,
}

fn rejection(reason: &RejectionReason) -> RefusalReason {
    match reason {
        RejectionReason::Uncertified => RefusalReason::NotCertified,
        RejectionReason::BadCertificate => RefusalReason::BadCertificate,
        RejectionReason::KeyChanged { pinned } => RefusalReason::KeyChanged {
            pinned: pinned.to_string(),
        },
    }
}

/// The longest query sent to the directory.
pub const MAX_QUERY_CHARS: usize = 100;

/// Colleagues whose address or name starts with `query`, and groups whose
/// name contains it. Verified and refused entries alike are listed (refused
/// ones with the reason), so a forged or changed key is seen, not hidden.
pub async fn search(client: &AccountClient, query: &str) -> Result<Vec<Candidate>, AccountError> {
    let query = query.trim();
    if query.is_empty() {
        return Ok(Vec::new());
    }
    let query: String = query.chars().take(MAX_QUERY_CHARS).collect();
    let found = client.find_contacts(&query).await?;
    let mut out = Vec::new();
    for c in found.contacts {
        // The fingerprint people compare is their key's own (`kluis
        // recipient --fingerprint`, the wizard's), not the directory's.
        let Ok(recipient) = c.public_key.as_str().parse::<Recipient>() else {
            out.push(Candidate {
                who: c.email.as_str().to_owned(),
                name: c.display_name.as_str().to_owned(),
                kind: MemberKind::User,
                fingerprint: String::new(),
                trust: Trust::Refused(RefusalReason::NotAKluisKey),
            });
            continue;
        };
        let trust = if c.status == UserStatus::Revoked {
            Trust::Left
        } else if c.pin == PinStatus::NewlyPinned {
            Trust::FirstSeen
        } else {
            Trust::Verified
        };
        out.push(Candidate {
            who: c.email.as_str().to_owned(),
            name: c.display_name.as_str().to_owned(),
            kind: MemberKind::User,
            fingerprint: recipient.fingerprint().to_string(),
            trust,
        });
    }
    for r in found.rejected {
        out.push(Candidate {
            who: r.email.as_str().to_owned(),
            name: r.email.as_str().to_owned(),
            kind: MemberKind::User,
            fingerprint: String::new(),
            trust: Trust::Refused(rejection(&r.reason)),
        });
    }
    let needle = query.to_lowercase();
    for g in client.list_groups().await? {
        let name = g.name.to_string();
        if !name.to_lowercase().contains(&needle) {
            continue;
        }
        let who = format!("group:{name}");
        out.push(match resolve(client, &who).await {
            Ok(v) => Candidate {
                who,
                name,
                kind: MemberKind::Group,
                fingerprint: v.member.recipient.fingerprint().to_string(),
                trust: if v.newly_pinned {
                    Trust::FirstSeen
                } else {
                    Trust::Verified
                },
            },
            Err(e) => Candidate {
                who,
                name,
                kind: MemberKind::Group,
                fingerprint: String::new(),
                trust: Trust::Refused(RefusalReason::of_resolve(&e)),
            },
        });
    }
    Ok(out)
}

/// A folder's members, each checked against the directory now. `me` is
/// your address and key fingerprint: a folder made before it was first
/// shared lists your key without a name, and it is shown as you.
pub async fn members(
    client: &AccountClient,
    folder: &FolderShares,
    me: (&str, &str),
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for m in &folder.members {
        if m.kind == MemberKind::Key && m.fingerprint == me.1 {
            out.push(Candidate {
                who: me.0.to_owned(),
                name: me.0.to_owned(),
                kind: MemberKind::User,
                fingerprint: m.fingerprint.clone(),
                trust: Trust::Verified,
            });
            continue;
        }
        // The same check as `kluis shares`; a first-seen key is listed as
        // verified here too.
        let trust = match member_status(client, m).await {
            MemberPin::Verified | MemberPin::FirstSeen => Trust::Verified,
            MemberPin::Changed => Trust::NewerKey,
            MemberPin::Left => Trust::Left,
            MemberPin::Unnamed => Trust::Unnamed,
            MemberPin::NotVerified(e) => Trust::Refused(RefusalReason::of_resolve(&e)),
        };
        let name = m.who.strip_prefix("group:").unwrap_or(&m.who).to_owned();
        out.push(Candidate {
            who: m.who.clone(),
            name,
            kind: m.kind,
            fingerprint: m.fingerprint.clone(),
            trust,
        });
    }
    out
}

/// The organisation policy (signed by the org key, checked by
/// kluis-account) and every group with its members, as
/// [`PolicyContext`] needs them.
pub async fn policy(
    client: &AccountClient,
) -> Result<(OrgPolicy, Vec<(String, Vec<String>)>), AccountError> {
    let policy = client.fetch_policy().await?;
    let groups = client
        .list_groups()
        .await?
        .into_iter()
        .map(|g| {
            (
                g.name.to_string(),
                g.members.iter().map(|m| m.as_str().to_owned()).collect(),
            )
        })
        .collect();
    Ok((policy, groups))
}

/// The policy's verdict on adding `member` to a folder labelled `label`:
/// `None` when allowed, else the rule that forbids it.
pub fn verdict(
    ctx: PolicyContext<'_>,
    label: Option<&str>,
    member: &Member,
) -> Option<VerdictReason> {
    let label = match label.map(Label::parse) {
        None => None,
        Some(Ok(l)) => Some(l),
        Some(Err(_)) => return Some(VerdictReason::BadLabel),
    };
    ctx.check(label, member)
        .err()
        .map(|v| VerdictReason::Policy { rule: v.rule })
}

/// The dialog's verdict on adding one person or group, before confirming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// Who, with key and trust (refused, with the reason, when the
    /// directory did not vouch for them).
    pub candidate: Candidate,
    /// Why the share may not go ahead for them; `None` when it may.
    pub reason: Option<VerdictReason>,
}

/// Look `who` (`bob@example.org` or `group:finance`) up in the verified
/// directory and judge adding them to a folder labelled `label`: the key's
/// trust first, then the policy. The share itself checks both again.
pub async fn preview(
    client: &AccountClient,
    ctx: PolicyContext<'_>,
    label: Option<&str>,
    who: &str,
) -> Preview {
    match resolve(client, who).await {
        Ok(v) => Preview {
            reason: verdict(ctx, label, &v.member),
            candidate: Candidate {
                who: who.to_owned(),
                name: v.member.name.clone(),
                kind: v.member.kind,
                fingerprint: v.member.recipient.fingerprint().to_string(),
                trust: if v.newly_pinned {
                    Trust::FirstSeen
                } else {
                    Trust::Verified
                },
            },
        },
        Err(e) => refused_preview(who, &e),
    }
}

fn refused_preview(who: &str, e: &ResolveError) -> Preview {
    let why = RefusalReason::of_resolve(e);
    Preview {
        candidate: Candidate {
            who: who.to_owned(),
            name: who.to_owned(),
            kind: if who.starts_with("group:") {
                MemberKind::Group
            } else {
                MemberKind::User
            },
            fingerprint: String::new(),
            trust: Trust::Refused(why.clone()),
        },
        reason: Some(VerdictReason::Refused { why }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_typed_not_english() {
        assert_eq!(
            RefusalReason::of_resolve(&ResolveError::Left("bob@example.org".into())),
            RefusalReason::Left
        );
        assert_eq!(
            RefusalReason::of_resolve(&ResolveError::NotAKluisKey("bob@example.org".into())),
            RefusalReason::NotAKluisKey
        );
        assert_eq!(
            rejection(&RejectionReason::Uncertified),
            RefusalReason::NotCertified
        );
        assert!(matches!(
            RefusalReason::of_account(&AccountError::NotLoggedIn),
            RefusalReason::Other { .. }
        ));
        assert_eq!(
            serde_json::to_value(Trust::Refused(RefusalReason::KeyChanged {
                pinned: "AAAA".into()
            }))
            .unwrap(),
            serde_json::json!({"state": "refused", "detail": {"kind": "key_changed", "pinned": "AAAA"}})
        );
    }

    #[test]
    fn a_refused_preview_names_the_kind_and_the_reason() {
        let p = refused_preview("group:finance", &ResolveError::Left("group:finance".into()));
        assert_eq!(p.candidate.kind, MemberKind::Group);
        assert_eq!(p.candidate.trust, Trust::Refused(RefusalReason::Left));
        assert_eq!(
            p.reason,
            Some(VerdictReason::Refused {
                why: RefusalReason::Left
            })
        );
        let p = refused_preview(
            "bob@example.org",
            &ResolveError::NotAKluisKey("bob@example.org".into()),
        );
        assert_eq!(p.candidate.kind, MemberKind::User);
        assert_eq!(p.candidate.name, "bob@example.org");
        assert!(p.candidate.fingerprint.is_empty());
    }
}
