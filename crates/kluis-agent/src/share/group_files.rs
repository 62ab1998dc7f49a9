//! Group key files in the mirror (docs/FORMAT.md §8.7), so that a folder
//! shared with a group opens without the broker.
//!
//! A group's key file — every key version of the group, a Kluis file
//! encrypted to the group's members ([`super::groups::GroupKeys`]) — is
//! kept, byte for byte as the broker holds it, at
//! `<mirror>/.kluis-groups/<id>` in every mirror that has the group as a
//! member. A member who has only their own identity file (and FORMAT.md)
//! opens it, derives the group's keys, and with them the folder metadata
//! and the files. The name `<id>` hides the group's name from anyone who
//! cannot read the folder metadata ([`file_name`]).
//!
//! The copy is written by a device of a group member (only members can
//! fetch the file from the broker): when the folder is shared with the
//! group, after `kluis groups add/remove` for the folders this device
//! syncs, and at every directory refresh of a running agent, each time
//! only when the broker's file differs from the copy. It is removed when
//! the group is unshared from the folder. The sync engine never lists it
//! (names starting with `.kluis-` are Kluis's own, FORMAT.md §8.1).

use std::fs;
use std::path::{Path, PathBuf};

use kluis_format::Identity;
use sha2::{Digest, Sha256};

use super::groups::{GroupError, GroupKeys};
use super::replace::replace_atomic;
use super::{Keys, MemberKind, ShareError, open_folder};

/// The directory of group key files in the mirror root.
pub const GROUP_DIR: &str = ".kluis-groups";

/// The file name of group `group`'s key file in the mirror of folder
/// `folder_id` (FORMAT.md §8.7): the first 16 bytes of
/// `SHA-256("kluis/group-file/v1" || 0x00 || folder_id || group)` in
/// lower-case hex.
pub fn file_name(folder_id: &[u8; 16], group: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"kluis/group-file/v1\0");
    h.update(folder_id);
    h.update(group.as_bytes());
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where group `group`'s key file lives in `mirror`.
pub fn path(mirror: &Path, folder_id: &[u8; 16], group: &str) -> PathBuf {
    mirror.join(GROUP_DIR).join(file_name(folder_id, group))
}

/// What [`publish_all`] did.
#[derive(Debug, Default)]
pub struct PublishReport {
    /// Groups whose key file was written (new or changed).
    pub written: Vec<String>,
    /// Groups whose key file was already current.
    pub unchanged: Vec<String>,
    /// Groups whose key file could not be written, with why (the old copy,
    /// if any, is left as it was).
    pub failed: Vec<(String, String)>,
}

/// Write `blob` — group `group`'s key file as the broker holds it — as the
/// group's key file in `mirror`. The folder must have the group as a
/// member, and the file must open with `keys.identity` and hold the key the
/// folder uses for the group (so a copy never carries keys the folder does
/// not use). Replaced atomically, and only when it differs; returns whether
/// it was written.
pub fn publish(
    mirror: &Path,
    keys: Keys<'_>,
    group: &str,
    blob: &[u8],
) -> Result<bool, ShareError> {
    let meta = open_folder(mirror, keys)?;
    let member = meta
        .members
        .iter()
        .find(|m| m.kind == MemberKind::Group && m.name == group)
        .ok_or_else(|| ShareError::NotAMember(format!("group:{group}")))?;
    let opened = GroupKeys::open(group, blob, keys.identity)?;
    if !opened
        .keys
        .iter()
        .any(|(_, k)| k.recipient() == &member.recipient)
    {
        return Err(GroupError::Secret {
            group: group.to_owned(),
            reason: "it does not hold the key this folder uses for the group".into(),
        }
        .into());
    }
    let dir = mirror.join(GROUP_DIR);
    let target = path(mirror, &meta.folder_id, group);
    match fs::read(&target) {
        Ok(old) if old == blob => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ShareError::io("read", &target)(e)),
    }
    if !dir.is_dir() {
        fs::create_dir_all(&dir).map_err(ShareError::io("create", &dir))?;
        kluis_sync::exec::fsync_dir(mirror).map_err(ShareError::io("sync", mirror))?;
    }
    replace_atomic(&target, |w| {
        w.write_all(blob).map_err(kluis_format::Error::Io)
    })
    .map_err(|e| e.for_path(&target))?;
    Ok(true)
}

/// Asks for a group's key file by group name (see [`publish_all`]).
pub type FetchKeyFile<'a> = dyn FnMut(&str) -> Result<Option<Vec<u8>>, String> + 'a;

/// For every group among the folder's members, ask `fetch` for the group's
/// key file (`None`: not available here, e.g. this user is not a member of
/// that group) and [`publish`] it. Fails only when the folder metadata
/// cannot be opened; per-group failures are listed.
pub fn publish_all(
    mirror: &Path,
    keys: Keys<'_>,
    fetch: &mut FetchKeyFile<'_>,
) -> Result<PublishReport, ShareError> {
    let meta = open_folder(mirror, keys)?;
    let mut report = PublishReport::default();
    for m in meta.members.iter().filter(|m| m.kind == MemberKind::Group) {
        let blob = match fetch(&m.name) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) => {
                report.failed.push((m.name.clone(), e));
                continue;
            }
        };
        match publish(mirror, keys, &m.name, &blob) {
            Ok(true) => report.written.push(m.name.clone()),
            Ok(false) => report.unchanged.push(m.name.clone()),
            Err(e) => report.failed.push((m.name.clone(), e.to_string())),
        }
    }
    Ok(report)
}

/// Remove group `group`'s key file from `mirror` (after the group was
/// unshared from the folder). Returns whether there was one.
pub fn remove(mirror: &Path, folder_id: &[u8; 16], group: &str) -> Result<bool, ShareError> {
    let target = path(mirror, folder_id, group);
    match fs::remove_file(&target) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ShareError::io("remove", &target)(e)),
    }
}

/// Every group key the group key files in `mirror` give `identity`: each
/// file that carries a stanza for it is opened, all its versions returned
/// (oldest first per file). Files not encrypted to `identity`, or that do
/// not open, are skipped. This is the recovery path of FORMAT.md §8.7: with
/// these keys and `identity`, the folder metadata and the files open
/// without the broker.
pub fn open_all(mirror: &Path, identity: &Identity) -> Vec<Identity> {
    let Ok(rd) = fs::read_dir(mirror.join(GROUP_DIR)) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect();
    names.sort();
    let mut out = Vec::new();
    for p in names {
        let Ok(bytes) = fs::read(&p) else {
            continue;
        };
        if let Ok(k) = GroupKeys::open("", &bytes, identity) {
            out.extend(k.keys.into_iter().map(|(_, k)| k));
        }
    }
    out
}

/// The group key file of every group among the members of `mirror`'s
/// folder that `me` belongs to, fetched from the broker, as
/// [`publish_all`] needs it.
pub async fn fetch_from_broker(
    client: &kluis_account::AccountClient,
    me: &str,
    groups: &[String],
) -> Result<Vec<(String, Vec<u8>)>, GroupError> {
    let mut out = Vec::new();
    let listed = client.list_groups().await?;
    for g in groups {
        let member = listed
            .iter()
            .any(|l| l.name.as_str() == g && l.members.iter().any(|m| m.as_str() == me));
        if member {
            let s = client.group_secret(g).await?;
            out.push((g.clone(), s.secret.as_bytes().to_vec()));
        }
    }
    Ok(out)
}

/// The groups among the members of `mirror`'s folder.
pub fn groups_of(mirror: &Path, keys: Keys<'_>) -> Result<Vec<String>, ShareError> {
    Ok(open_folder(mirror, keys)?
        .members
        .into_iter()
        .filter(|m| m.kind == MemberKind::Group)
        .map(|m| m.name)
        .collect())
}
