//! Sharing folders and files with named colleagues and groups: the library
//! behind `kluis share`, `kluis unshare`, `kluis shares` and the tray app's
//! share dialog. docs/SHARING.md describes the behaviour.
//!
//! - A folder's members live in its encrypted `.kluis-folder` (FORMAT.md
//!   §8.2), wrapped to the members. The sync engine encrypts every new file
//!   to all of them.
//! - [`share_folder`] adds members: the metadata is re-sealed, then every
//!   existing file gets one more stanza in its header (FORMAT.md §6), the
//!   payload untouched. Each file is replaced atomically (temp file, fsync,
//!   re-check, rename): a failure leaves the old file intact.
//! - [`unshare_folder`] removes members: new metadata (epoch + 1) sealed to
//!   the others only, the removed member's stanzas dropped from every header,
//!   and with `rekey_existing` every file re-encrypted under a fresh file key.
//! - Every recipient key is resolved by the caller through the verified
//!   directory ([`resolve`], org certificate + TOFU pin); this module only
//!   takes [`Member`]s, and checks the organisation policy on them.
//!
//! - [`change_folder_members`] is what a person does: the directory
//!   refresh first (departed members dropped), then add and remove, then the
//!   group key files. `kluis share`, `kluis unshare` and the tray's share
//!   dialog all call it.
//!
//! Work on many files reports [`Progress`] through a callback after each
//! file, so a UI can show a bar and a CLI a counter.

pub mod dialog;
mod files;
pub mod groups;
pub mod list;
pub mod notice;
mod ops;
pub mod target;

use std::path::{Path, PathBuf};

use kluis_agent::share::replace::replace_atomic;
use kluis_format::Identity;
use kluis_types::{Email, Label, OrgPolicy, PolicyViolation};

pub use files::{FileShares, list_file, share_file, unshare_file};
/// What the daemon needs of sharing, used here too: the directory refresh,
/// discovery of folders shared with you, group key files, verified lookups.
pub use kluis_agent::share::{
    DirectoryView, Discovered, DiscoveryOutcome, FolderMeta, Keys, Member, MemberChange,
    MemberKind, ShareError, directory, discover_shared, group_files, meta_path, open_folder,
    resolve, shared_plain_name,
};
pub use notice::{FileProblem, ShareNotice};
pub use ops::{
    Broker, ChangeMembers, FolderChange, Runtime, ShareEvents, change_folder_members,
    publish_group_everywhere, publish_group_files, refresh_members,
};

/// Progress of a long operation, reported after each file.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Files handled so far.
    pub done: usize,
    /// Files in all.
    pub total: usize,
    /// The ciphertext file just handled.
    pub path: PathBuf,
}

/// What a share or unshare did.
#[derive(Debug, Default)]
pub struct ShareReport {
    /// Files whose header (or, with rekeying, content) was rewritten.
    pub files_updated: usize,
    /// Files left as they were, because they already had the change.
    pub files_unchanged: usize,
    /// Files not changed, with the reason (not shared with you, changed
    /// meanwhile, unreadable). The old file is intact in every case.
    pub files_failed: Vec<(PathBuf, FileProblem)>,
    /// Things the user should know (departed users dropped, …).
    pub notices: Vec<ShareNotice>,
    /// The folder metadata's epoch after the change.
    pub epoch: u32,
}

/// The organisation's rules and the facts needed to apply them.
#[derive(Debug, Clone, Copy)]
pub struct PolicyContext<'a> {
    /// The policy (from the broker's `GET /v1/policy`).
    pub policy: &'a OrgPolicy,
    /// Every group and its member addresses, as the broker lists them.
    pub groups: &'a [(String, Vec<String>)],
}

impl PolicyContext<'_> {
    fn groups_of(&self, email: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, m)| m.iter().any(|e| e == email))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// Whether content with `label` may go to `member`. For a group, each
    /// person in it is checked as a member of that group.
    pub fn check(&self, label: Option<Label>, member: &Member) -> Result<(), PolicyViolation> {
        let people: Vec<String> = match member.kind {
            MemberKind::Group => self
                .groups
                .iter()
                .find(|(g, _)| *g == member.name)
                .map(|(_, m)| m.clone())
                .unwrap_or_default(),
            _ => vec![member.name.clone()],
        };
        if let Some(l) = label {
            self.policy.check_label(l)?;
        }
        for p in people {
            let Ok(email) = Email::parse(&p) else {
                return Err(PolicyViolation {
                    rule: "recipients".into(),
                    detail: format!("{p} is not an e-mail address"),
                });
            };
            let mut groups = self.groups_of(&p);
            if member.kind == MemberKind::Group {
                groups.push(member.name.clone());
            }
            self.policy.check_share(label, &email, &groups)?;
        }
        Ok(())
    }
}

fn label_of(meta: &FolderMeta) -> Option<Label> {
    meta.label.as_deref().and_then(|l| Label::parse(l).ok())
}

/// Who can read a folder.
#[derive(Debug, Clone)]
pub struct FolderShares {
    /// The mirror.
    pub mirror: PathBuf,
    /// Owner (e-mail), if recorded.
    pub owner: String,
    /// Display name.
    pub title: String,
    /// Classification label.
    pub label: Option<String>,
    /// Membership epoch (grows at every change).
    pub epoch: u32,
    /// Members with their key fingerprints.
    pub members: Vec<MemberInfo>,
}

/// One member as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MemberInfo {
    /// `bob@example.org` or `group:finance`.
    pub who: String,
    /// User, group or bare key.
    pub kind: MemberKind,
    /// Fingerprint of the key new files are encrypted to.
    pub fingerprint: String,
}

/// Who can read the folder whose mirror is `mirror`.
pub fn list_folder(mirror: &Path, keys: Keys<'_>) -> Result<FolderShares, ShareError> {
    let meta = open_folder(mirror, keys)?;
    Ok(FolderShares {
        mirror: mirror.to_owned(),
        owner: meta.owner.clone(),
        title: meta.title.clone(),
        label: meta.label.clone(),
        epoch: meta.epoch,
        members: meta
            .members
            .iter()
            .map(|m| MemberInfo {
                who: m.display(),
                kind: m.kind,
                fingerprint: m.recipient.fingerprint().to_string(),
            })
            .collect(),
    })
}

/// Replace `.kluis-folder` atomically (temp, fsync, rename, fsync dir).
fn write_meta(
    mirror: &Path,
    meta: &FolderMeta,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(), ShareError> {
    let path = meta_path(mirror);
    let bytes = meta.seal(rng).map_err(|source| ShareError::Meta {
        path: path.clone(),
        source,
    })?;
    replace_atomic(&path, |w| {
        w.write_all(&bytes).map_err(kluis_format::Error::Io)
    })
    .map_err(|e| e.for_path(&path))
}

/// Fill in the owner and title of a folder created before they were
/// recorded, and name the owner's bare-key member.
fn adopt(meta: &mut FolderMeta, keys: Keys<'_>, owner: &str, title: &str) {
    if meta.owner.is_empty() {
        meta.owner = owner.to_owned();
    }
    if meta.title.is_empty() {
        meta.title = title.to_owned();
    }
    for m in &mut meta.members {
        if m.kind == MemberKind::Key
            && &m.recipient == keys.identity.recipient()
            && !owner.is_empty()
        {
            m.kind = MemberKind::User;
            m.name = owner.to_owned();
        }
    }
}

/// Who you are, for folders you create or first share.
#[derive(Debug, Clone, Default)]
pub struct Me {
    /// Your e-mail address.
    pub email: String,
    /// The folder's display name when none is recorded (the plaintext
    /// folder's name).
    pub title: String,
}

/// Create the folder metadata of a new, empty mirror with `me` as its
/// owner and first member (a user member named by `me.email`), as the sync
/// engine would on its first run but with the owner recorded (FORMAT.md
/// §8.2). Only when the mirror holds nothing but Kluis's own `.kluis-*`
/// entries, and never over a `.kluis-folder` that appeared meanwhile
/// (temp file, then a hard link that fails if the name exists). Returns
/// whether it created the file.
pub fn init_folder(
    mirror: &Path,
    identity: &Identity,
    me: &Me,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<bool, ShareError> {
    let path = meta_path(mirror);
    if std::fs::symlink_metadata(&path).is_ok() {
        return Ok(false);
    }
    std::fs::create_dir_all(mirror).map_err(ShareError::io("create", mirror))?;
    let has_content = std::fs::read_dir(mirror)
        .map_err(ShareError::io("read", mirror))?
        .flatten()
        .any(|e| {
            !e.file_name()
                .to_string_lossy()
                .starts_with(kluis_sync::scan::KLUIS_PREFIX)
        });
    if has_content {
        return Ok(false);
    }
    let mut meta = FolderMeta::generate(identity.recipient(), rng);
    adopt(&mut meta, Keys::own(identity), &me.email, &me.title);
    let bytes = meta.seal(rng).map_err(|source| ShareError::Meta {
        path: path.clone(),
        source,
    })?;
    let mut rnd = [0u8; 8];
    rng.fill_bytes(&mut rnd);
    let tmp = mirror.join(format!(
        "{}init-{}",
        kluis_sync::scan::TEMP_PREFIX,
        rnd.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, &bytes)?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, &path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(ShareError::io("create", &path)(e)),
    }
    kluis_sync::exec::fsync_dir(mirror).map_err(ShareError::io("sync", mirror))?;
    Ok(true)
}

/// Share the folder whose mirror is `mirror` with `add` (already verified
/// through the directory). The folder metadata is re-sealed to all members,
/// then every existing file gets the new members' stanzas (header only).
/// Policy is checked first, for every new member and the folder's label.
pub fn share_folder(
    mirror: &Path,
    keys: Keys<'_>,
    me: &Me,
    add: &[Member],
    policy: Option<PolicyContext<'_>>,
    progress: &mut dyn FnMut(&Progress),
    rng: &mut impl rand_core::CryptoRng,
) -> Result<ShareReport, ShareError> {
    let mut meta = open_folder(mirror, keys)?;
    adopt(&mut meta, keys, &me.email, &me.title);
    if let Some(ctx) = policy {
        for m in add {
            ctx.check(label_of(&meta), m)?;
        }
    }
    let mut fresh = Vec::new();
    for m in add {
        match meta
            .members
            .iter_mut()
            .find(|x| x.kind == m.kind && x.name == m.name)
        {
            // Same person, new key (after a rotation or a re-key): replace.
            Some(x) if x.recipient != m.recipient => {
                x.recipient = m.recipient.clone();
                fresh.push(m.clone());
            }
            Some(_) => {}
            None => {
                meta.members.push(m.clone());
                fresh.push(m.clone());
            }
        }
    }
    meta.epoch = meta.epoch.wrapping_add(1);
    write_meta(mirror, &meta, rng)?;
    let mut report = ShareReport {
        epoch: meta.epoch,
        ..ShareReport::default()
    };
    let recipients: Vec<_> = fresh.iter().map(|m| m.recipient.clone()).collect();
    files::for_each_file(
        mirror,
        progress,
        |path| files::add_recipients(path, keys, &recipients, rng),
        &mut report,
    )?;
    Ok(report)
}

/// Remove members (by `bob@example.org` or `group:finance`). New metadata
/// (epoch + 1) is sealed to the remaining members only, so files written
/// afterwards get fresh file keys wrapped only to them; the removed members'
/// stanzas are dropped from every existing header, and with `rekey_existing`
/// every existing file is re-encrypted under a new file key. Files the
/// removed people already downloaded cannot be taken back.
pub fn unshare_folder(
    mirror: &Path,
    keys: Keys<'_>,
    me: &Me,
    remove: &[String],
    rekey_existing: bool,
    progress: &mut dyn FnMut(&Progress),
    rng: &mut impl rand_core::CryptoRng,
) -> Result<ShareReport, ShareError> {
    let mut meta = open_folder(mirror, keys)?;
    adopt(&mut meta, keys, &me.email, &me.title);
    let mut gone = Vec::new();
    for who in remove {
        let pos = meta
            .members
            .iter()
            .position(|m| {
                m.display() == *who || m.recipient.fingerprint().key_id().to_string() == *who
            })
            .ok_or_else(|| ShareError::NotAMember(who.clone()))?;
        if meta.members.len() == 1 {
            return Err(ShareError::LastMember(who.clone()));
        }
        gone.push(meta.members.remove(pos));
    }
    let mut report = ShareReport::default();
    rewrite_after_removal(
        mirror,
        keys,
        &mut meta,
        &gone,
        rekey_existing,
        progress,
        rng,
        &mut report,
    )?;
    // A group no longer a member: its key file goes too (FORMAT.md §8.7).
    for g in gone.iter().filter(|m| m.kind == MemberKind::Group) {
        group_files::remove(mirror, &meta.folder_id, &g.name)?;
    }
    Ok(report)
}

#[allow(
    clippy::too_many_arguments,
    reason = "internal helper shared by unshare and prune"
)]
fn rewrite_after_removal(
    mirror: &Path,
    keys: Keys<'_>,
    meta: &mut FolderMeta,
    gone: &[Member],
    rekey_existing: bool,
    progress: &mut dyn FnMut(&Progress),
    rng: &mut impl rand_core::CryptoRng,
    report: &mut ShareReport,
) -> Result<(), ShareError> {
    meta.epoch = meta.epoch.wrapping_add(1);
    write_meta(mirror, meta, rng)?;
    report.epoch = meta.epoch;
    let recipients = meta.recipients();
    let gone_ids: Vec<_> = gone
        .iter()
        .map(|m| m.recipient.fingerprint().key_id())
        .collect();
    files::for_each_file(
        mirror,
        progress,
        |path| {
            if rekey_existing {
                files::reencrypt(path, keys, &recipients, rng)
            } else {
                files::remove_recipients(path, keys, &gone_ids)
            }
        },
        report,
    )
}

/// Users the directory reports as departed (deprovisioned), by e-mail.
/// Drops them from the folder's members (new metadata, new epoch) so the
/// next write no longer encrypts to them, and removes their stanzas from
/// existing headers. Returns a notice per person dropped; nothing is written
/// when none of them is a member.
pub fn prune_departed(
    mirror: &Path,
    keys: Keys<'_>,
    departed: &[String],
    progress: &mut dyn FnMut(&Progress),
    rng: &mut impl rand_core::CryptoRng,
) -> Result<ShareReport, ShareError> {
    let view = DirectoryView {
        departed: departed.to_vec(),
        current: Vec::new(),
    };
    refresh_folder(mirror, keys, &view, progress, rng)
}

/// Bring a folder's members in line with what the directory says now
/// ([`directory::lookup`]): departed people are dropped (and their stanzas
/// removed from existing headers), members move to their current verified
/// keys — a group after a certified key rotation — so what is written
/// afterwards uses them. New metadata (next epoch) only when something
/// changed, with a notice per change. Existing files keep their stanzas for
/// a group's older key: its members still hold it.
pub fn refresh_folder(
    mirror: &Path,
    keys: Keys<'_>,
    view: &DirectoryView,
    progress: &mut dyn FnMut(&Progress),
    rng: &mut impl rand_core::CryptoRng,
) -> Result<ShareReport, ShareError> {
    let mut meta = open_folder(mirror, keys)?;
    let before = meta.members.clone();
    let mine: Vec<_> = keys.all().into_iter().map(|k| k.recipient()).collect();
    let changes = meta.apply_directory(view, &mine);
    let mut report = ShareReport {
        epoch: meta.epoch,
        ..ShareReport::default()
    };
    if changes.is_empty() {
        return Ok(report);
    }
    report.notices = changes
        .iter()
        .map(|c| ShareNotice::of_change(c, mirror))
        .collect();
    let gone: Vec<Member> = before
        .into_iter()
        .filter(|m| {
            !meta
                .members
                .iter()
                .any(|x| x.kind == m.kind && x.name == m.name)
        })
        .collect();
    if gone.is_empty() {
        meta.epoch = meta.epoch.wrapping_add(1);
        write_meta(mirror, &meta, rng)?;
        report.epoch = meta.epoch;
        return Ok(report);
    }
    rewrite_after_removal(
        mirror,
        keys,
        &mut meta,
        &gone,
        false,
        progress,
        rng,
        &mut report,
    )?;
    Ok(report)
}

/// Set or clear the folder's classification label. The label must be
/// allowed by the policy, and every current member must be allowed to
/// receive it (a refusal names the rule).
pub fn set_label(
    mirror: &Path,
    keys: Keys<'_>,
    me: &Me,
    label: Option<Label>,
    policy: Option<PolicyContext<'_>>,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<(), ShareError> {
    let mut meta = open_folder(mirror, keys)?;
    adopt(&mut meta, keys, &me.email, &me.title);
    if let (Some(ctx), Some(l)) = (policy, label) {
        ctx.policy.check_label(l)?;
        for m in meta
            .members
            .iter()
            .filter(|m| m.recipient != *keys.identity.recipient())
        {
            ctx.check(Some(l), m)?;
        }
    }
    meta.label = label.map(|l| l.as_str().to_owned());
    write_meta(mirror, &meta, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kluis_format::{EncryptOptions, Metadata};
    use kluis_sync::folder_meta::FOLDER_META_FILE;

    fn rng() -> impl rand_core::CryptoRng {
        rand_core::UnwrapErr(getrandom::SysRng)
    }

    fn encrypt_to(path: &Path, to: &[&Identity], text: &str) {
        let r: Vec<_> = to.iter().map(|i| i.recipient().clone()).collect();
        let m = Metadata {
            size: Some(text.len() as u64),
            ..Metadata::default()
        };
        let mut out = Vec::new();
        kluis_format::encrypt(
            text.as_bytes(),
            &mut out,
            &r,
            &m,
            EncryptOptions::default(),
            &mut rng(),
        )
        .unwrap();
        std::fs::write(path, out).unwrap();
    }

    /// A file that fails (tampered, not shared with you) is listed and left
    /// byte for byte as it was; the others are shared header-only, their
    /// payload bytes unchanged.
    #[test]
    fn per_file_failures_leave_the_old_file_intact() {
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path();
        let (alice, bob, carol) = (
            Identity::generate(&mut rng()),
            Identity::generate(&mut rng()),
            Identity::generate(&mut rng()),
        );
        let meta = FolderMeta::generate(alice.recipient(), &mut rng());
        std::fs::write(
            mirror.join(FOLDER_META_FILE),
            meta.seal(&mut rng()).unwrap(),
        )
        .unwrap();
        std::fs::create_dir(mirror.join("d")).unwrap();
        let (good, tampered, foreign) = (
            mirror.join("d/a.kls"),
            mirror.join("b.kls"),
            mirror.join("c.kls"),
        );
        encrypt_to(&good, &[&alice], "good");
        encrypt_to(&tampered, &[&alice], "tampered");
        let mut t = std::fs::read(&tampered).unwrap();
        let last_header_byte = kluis_format::Header::read(&t[..]).unwrap().to_bytes().len() - 1;
        t[last_header_byte] ^= 1; // the header MAC
        std::fs::write(&tampered, &t).unwrap();
        encrypt_to(&foreign, &[&carol], "not for alice");
        let foreign_before = std::fs::read(&foreign).unwrap();
        let good_before = std::fs::read(&good).unwrap();

        let me = Me {
            email: "alice@example.org".into(),
            title: "T".into(),
        };
        let mut seen = 0;
        let r = share_folder(
            mirror,
            Keys::own(&alice),
            &me,
            &[Member::user("bob@example.org", bob.recipient().clone())],
            None,
            &mut |p| seen = p.done,
            &mut rng(),
        )
        .unwrap();
        assert_eq!((r.files_updated, r.files_failed.len(), seen), (1, 2, 3));
        assert_eq!(std::fs::read(&tampered).unwrap(), t);
        assert_eq!(std::fs::read(&foreign).unwrap(), foreign_before);
        assert!(
            r.files_failed
                .iter()
                .any(|(p, why)| p == &foreign && why.to_string().contains("not shared with you"))
        );
        // Bob reads the good file; its payload bytes did not change.
        let after = std::fs::read(&good).unwrap();
        let hb = kluis_format::Header::read(&good_before[..])
            .unwrap()
            .to_bytes()
            .len();
        let ha = kluis_format::Header::read(&after[..])
            .unwrap()
            .to_bytes()
            .len();
        assert_eq!(after[ha..], good_before[hb..]);
        let mut s = String::new();
        std::io::Read::read_to_string(
            &mut kluis_format::Decryptor::new(&after[..], &bob).unwrap(),
            &mut s,
        )
        .unwrap();
        assert_eq!(s, "good");
        // No temp files left behind.
        assert!(
            std::fs::read_dir(mirror)
                .unwrap()
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with(".kluis-tmp"))
        );
        // Unsharing the last member is refused; an unknown one too.
        assert!(matches!(
            unshare_folder(
                mirror,
                Keys::own(&alice),
                &me,
                &["nobody@example.org".into()],
                false,
                &mut |_| {},
                &mut rng()
            ),
            Err(ShareError::NotAMember(_))
        ));
        let r = unshare_folder(
            mirror,
            Keys::own(&alice),
            &me,
            &["bob@example.org".into()],
            false,
            &mut |_| {},
            &mut rng(),
        )
        .unwrap();
        assert_eq!(r.files_updated, 1);
        assert!(matches!(
            unshare_folder(
                mirror,
                Keys::own(&alice),
                &me,
                &["alice@example.org".into()],
                false,
                &mut |_| {},
                &mut rng()
            ),
            Err(ShareError::LastMember(_))
        ));
    }

    /// Sharing writes the new header over the old one when it fits the
    /// padding (FORMAT.md §4.7): same file, same length, the payload never
    /// read or written. When the padding is used up, the file is replaced
    /// by a copy with a freshly padded header, and a payload larger than the
    /// read buffer (part buffered while the header was parsed, the rest
    /// copied file to file) lands byte for byte after it.
    #[cfg(unix)]
    #[test]
    fn a_share_fits_in_place_and_a_full_header_is_copied_exactly() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let mirror = dir.path();
        let ids: Vec<Identity> = (0..4).map(|_| Identity::generate(&mut rng())).collect();
        let meta = FolderMeta::generate(ids[0].recipient(), &mut rng());
        std::fs::write(
            mirror.join(FOLDER_META_FILE),
            meta.seal(&mut rng()).unwrap(),
        )
        .unwrap();
        let text: String = (0..300_001)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let path = mirror.join("big.kls");
        encrypt_to(&path, &[&ids[0]], &text);
        let me = Me {
            email: "alice@example.org".into(),
            title: "T".into(),
        };
        let header_len = |b: &[u8]| kluis_format::Header::read(b).unwrap().to_bytes().len();
        let reads = |b: &[u8], id: &Identity| {
            let mut s = String::new();
            std::io::Read::read_to_string(
                &mut kluis_format::Decryptor::new(b, id).unwrap(),
                &mut s,
            )
            .unwrap();
            s == text
        };
        let mut copied = false;
        for (i, who) in ["bob", "carol", "dave"].iter().enumerate() {
            let before = std::fs::read(&path).unwrap();
            let ino = std::fs::metadata(&path).unwrap().ino();
            let r = share_folder(
                mirror,
                Keys::own(&ids[0]),
                &me,
                &[Member::user(
                    format!("{who}@example.org"),
                    ids[i + 1].recipient().clone(),
                )],
                None,
                &mut |_| {},
                &mut rng(),
            )
            .unwrap();
            assert_eq!(r.files_updated, 1);
            let after = std::fs::read(&path).unwrap();
            let (hb, ha) = (header_len(&before), header_len(&after));
            assert_eq!(after[ha..], before[hb..], "{who}: payload unchanged");
            assert!(ids[..i + 2].iter().all(|id| reads(&after, id)), "{who}");
            if ha == hb {
                assert_eq!(
                    std::fs::metadata(&path).unwrap().ino(),
                    ino,
                    "{who}: in place"
                );
                assert!(!copied, "in place after a copy needs fresh padding");
            } else {
                assert!(
                    ha > hb && ha.is_multiple_of(kluis_format::HEADER_BLOCK),
                    "{who}: repadded"
                );
                copied = true;
            }
        }
        // Bob and Carol fit a one-recipient header's 4 KiB; Dave did not.
        assert!(copied);
        assert!(std::fs::read_dir(mirror).unwrap().flatten().all(|e| {
            !e.file_name()
                .to_string_lossy()
                .starts_with(".kluis-journal")
        }));
    }
}
