//! Who can read what, as `kluis shares` lists it: a folder's members, each
//! checked against the verified directory now (org certificate and this
//! device's pins), and a file's recipient keys, named from the pins. The
//! faces only format these rows; the tray's share dialog
//! ([`super::dialog::members`]) builds on the same member check.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kluis_account::pins::PinStore;
use kluis_account::{AccountClient, AccountError};
use kluis_format::{KeyId, Recipient};

use super::resolve::{ResolveError, Verified, resolve};
use super::{FolderShares, MemberInfo, MemberKind, list_file};

/// How a folder member's key compares with the verified directory now.
#[derive(Debug)]
pub enum PinStatus {
    /// The directory's certified key is the folder's, and matched the pin.
    Verified,
    /// The directory's certified key is the folder's, pinned just now
    /// (first use on this device).
    FirstSeen,
    /// The directory has another certified key (after a group's key
    /// rotation, or a colleague's new key): a new share moves to it.
    Changed,
    /// The colleague has left (account disabled, or no longer in the
    /// directory).
    Left,
    /// A bare key in the folder, with no name to look up.
    Unnamed,
    /// The directory could not confirm the key (uncertified, changed since
    /// pinned, broker unreachable, …), with the cause.
    NotVerified(ResolveError),
}

impl PinStatus {
    /// Whether the folder's key is the one the directory vouches for now.
    pub fn verified(&self) -> bool {
        matches!(self, PinStatus::Verified | PinStatus::FirstSeen)
    }
}

/// One member of a folder, checked.
#[derive(Debug)]
pub struct MemberRow {
    /// `bob@example.org` or `group:finance` (for a bare key, its key id).
    pub who: String,
    /// User, group or bare key.
    pub kind: MemberKind,
    /// Fingerprint of the key new files are encrypted to.
    pub fingerprint: String,
    /// How that key compares with the directory.
    pub status: PinStatus,
}

/// A folder's metadata and its members, each checked.
#[derive(Debug)]
pub struct FolderListing {
    /// The mirror.
    pub mirror: PathBuf,
    /// Owner (e-mail), empty when not recorded.
    pub owner: String,
    /// Display name, empty when not recorded.
    pub title: String,
    /// Classification label.
    pub label: Option<String>,
    /// Membership epoch.
    pub epoch: u32,
    /// Members in the metadata's order.
    pub members: Vec<MemberRow>,
}

/// The status of `member` given what the directory answered for it.
pub fn pin_status(member: &MemberInfo, found: Result<Verified, ResolveError>) -> PinStatus {
    if member.kind == MemberKind::Key {
        return PinStatus::Unnamed;
    }
    match found {
        Ok(v) if v.member.recipient.fingerprint().to_string() == member.fingerprint => {
            if v.newly_pinned {
                PinStatus::FirstSeen
            } else {
                PinStatus::Verified
            }
        }
        Ok(_) => PinStatus::Changed,
        Err(ResolveError::Left(_))
        | Err(ResolveError::Account {
            source: AccountError::NotFound(_),
            ..
        }) => PinStatus::Left,
        Err(e) => PinStatus::NotVerified(e),
    }
}

/// Check one member against the directory (a bare key is not looked up).
pub async fn member_status(client: &AccountClient, member: &MemberInfo) -> PinStatus {
    if member.kind == MemberKind::Key {
        return PinStatus::Unnamed;
    }
    pin_status(member, resolve(client, &member.who).await)
}

/// Check every member of a listed folder ([`super::list_folder`]) against
/// the directory, one after the other.
pub async fn check_folder(client: &AccountClient, folder: FolderShares) -> FolderListing {
    let mut members = Vec::with_capacity(folder.members.len());
    for m in folder.members {
        let status = member_status(client, &m).await;
        members.push(MemberRow {
            who: m.who,
            kind: m.kind,
            fingerprint: m.fingerprint,
            status,
        });
    }
    FolderListing {
        mirror: folder.mirror,
        owner: folder.owner,
        title: folder.title,
        label: folder.label,
        epoch: folder.epoch,
        members,
    }
}

/// Whose a file's recipient key is, as far as this device knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyHolder {
    /// Yours (your address).
    You(String),
    /// A colleague whose key this device pinned (their address).
    Pinned(String),
    /// Not a key this device pinned.
    Unknown,
}

/// One recipient key of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileKeyRow {
    /// The stanza's key id.
    pub key_id: KeyId,
    /// Whose it is.
    pub holder: KeyHolder,
}

/// A file's recipient keys, in header order.
#[derive(Debug, Clone)]
pub struct FileListing {
    /// The file.
    pub path: PathBuf,
    /// One row per stanza.
    pub keys: Vec<FileKeyRow>,
}

/// The recipient keys of the Kluis file at `path`, each named from the
/// pins in `pins_dir` (the account state directory); `me` is your address
/// and key id.
pub fn list_file_keys(
    path: &Path,
    me: (&str, KeyId),
    pins_dir: &Path,
) -> Result<FileListing, crate::Error> {
    let shares = list_file(path)?;
    let names = pinned_names(pins_dir)?;
    Ok(FileListing {
        path: shares.path,
        keys: name_keys(shares.key_ids, me, &names),
    })
}

/// The colleagues whose keys this device pinned, by key id.
fn pinned_names(pins_dir: &Path) -> Result<HashMap<KeyId, String>, AccountError> {
    Ok(PinStore::new(pins_dir)
        .all()?
        .into_iter()
        .filter_map(|(email, pin)| {
            let r = pin.public_key.as_str().parse::<Recipient>().ok()?;
            Some((r.fingerprint().key_id(), email.to_string()))
        })
        .collect())
}

fn name_keys(
    key_ids: Vec<KeyId>,
    me: (&str, KeyId),
    names: &HashMap<KeyId, String>,
) -> Vec<FileKeyRow> {
    key_ids
        .into_iter()
        .map(|key_id| {
            let holder = if key_id == me.1 {
                KeyHolder::You(me.0.to_owned())
            } else {
                names
                    .get(&key_id)
                    .map_or(KeyHolder::Unknown, |n| KeyHolder::Pinned(n.clone()))
            };
            FileKeyRow { key_id, holder }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use kluis_format::Identity;

    use super::super::Member;
    use super::*;

    fn rng() -> impl rand_core::CryptoRng {
        crate::rng()
    }

    fn info(kind: MemberKind, who: &str, r: &Recipient) -> MemberInfo {
        MemberInfo {
            who: who.into(),
            kind,
            fingerprint: r.fingerprint().to_string(),
        }
    }

    fn found(r: &Recipient, newly_pinned: bool) -> Result<Verified, ResolveError> {
        Ok(Verified {
            member: Member::user("bob@example.org", r.clone()),
            fingerprint: r.fingerprint().to_string(),
            newly_pinned,
        })
    }

    #[test]
    fn member_pins_decide_the_status() {
        let [old, new] = [(); 2].map(|()| Identity::generate(&mut rng()));
        let bob = info(MemberKind::User, "bob@example.org", old.recipient());
        assert!(matches!(
            pin_status(&bob, found(old.recipient(), false)),
            PinStatus::Verified
        ));
        let first = pin_status(&bob, found(old.recipient(), true));
        assert!(matches!(first, PinStatus::FirstSeen));
        assert!(first.verified());
        assert!(matches!(
            pin_status(&bob, found(new.recipient(), false)),
            PinStatus::Changed
        ));
        let key = info(MemberKind::Key, "0123456789abcdef", old.recipient());
        assert!(matches!(
            pin_status(&key, found(old.recipient(), false)),
            PinStatus::Unnamed
        ));
        assert!(matches!(
            pin_status(&bob, Err(ResolveError::Left("bob@example.org".into()))),
            PinStatus::Left
        ));
        assert!(matches!(
            pin_status(
                &bob,
                Err(ResolveError::NotAKluisKey("bob@example.org".into()))
            ),
            PinStatus::NotVerified(ResolveError::NotAKluisKey(_))
        ));
    }

    #[test]
    fn file_keys_are_named_from_pins() {
        let [me, bob, stranger] = [(); 3].map(|()| Identity::generate(&mut rng()));
        let id = |i: &Identity| i.recipient().fingerprint().key_id();
        let names = HashMap::from([(id(&bob), "bob@example.org".to_owned())]);
        let rows = name_keys(
            vec![id(&me), id(&bob), id(&stranger)],
            ("alice@example.org", id(&me)),
            &names,
        );
        let holders: Vec<_> = rows.into_iter().map(|r| r.holder).collect();
        assert_eq!(
            holders,
            [
                KeyHolder::You("alice@example.org".into()),
                KeyHolder::Pinned("bob@example.org".into()),
                KeyHolder::Unknown
            ]
        );
    }
}
