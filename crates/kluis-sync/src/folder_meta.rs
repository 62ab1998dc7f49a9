//! The encrypted folder-metadata file `.kluis-folder` in the mirror root.
//! docs/FORMAT.md §8.2.
//!
//! It is an ordinary Kluis file wrapped to every member, whose payload is
//! (layout version 2, written by this version; version 1 is still read):
//!
//! ```text
//! magic        8   "KLSFOLD2"                    ("KLSFOLD1": version 1, below)
//! folder_id   16   random, fixed for the life of the mirror
//! name_secret 32   random; the name key is derived from it
//! epoch        4   u32 big-endian, +1 at every membership change
//! owner        2+n u16 length (1..=254), UTF-8: who created the folder
//! title        2+n u16 length (1..=255), UTF-8: the folder's display name
//! label        1+n u8 length (0..=32), ASCII [a-z0-9-]; 0 = no label
//! count        2   u16 big-endian, number of members (1..=256)
//! member*          kind u8 (0 bare key, 1 user, 2 group), name u16 length (1..=254) + UTF-8,
//!                  recipient u16 length + recipient string (kluis1…);
//!                  a bare key's name is its key id (`E199 EFE9 …`, §2)
//! ```
//!
//! Version 1 (`KLSFOLD1`) is `folder_id`, `name_secret`, `count`, then
//! `count` times u16 length + recipient string; it is read with owner and
//! title empty, epoch 0 and members of kind [`MemberKind::Key`]. Any other
//! `KLSFOLD` version is an [`FolderMetaError::UnsupportedVersion`].

use std::io::Read;

use kluis_format::{Identity, Metadata, Recipient};
use zeroize::Zeroizing;

use crate::names::NameCipher;

/// File name of the folder metadata in the mirror root.
pub const FOLDER_META_FILE: &str = ".kluis-folder";
const MAGIC_PREFIX: &[u8; 7] = b"KLSFOLD";
/// The layout version this code writes.
pub const VERSION: u8 = 2;
/// Most members one folder can have (the format's stanza limit; use a group
/// for more people).
pub const MAX_MEMBERS: usize = 256;
const MAX_MEMBER_NAME: usize = 254;
const MAX_TITLE: usize = 255;
const MAX_LABEL: usize = 32;

/// Why a folder-metadata payload was rejected.
#[derive(Debug, thiserror::Error)]
pub enum FolderMetaError {
    /// The Kluis layer failed (not shared with us, incomplete, tampered).
    #[error(transparent)]
    Format(#[from] kluis_format::Error),
    /// The payload is not a folder-metadata record.
    #[error("malformed folder metadata: {0}")]
    Malformed(&'static str),
    /// A folder-metadata layout this version of Kluis does not know.
    #[error(
        "folder metadata layout version {0} is not supported by this version of Kluis (it reads 1 and 2); update Kluis"
    )]
    UnsupportedVersion(u8),
    /// A value does not fit the layout (too many members, a name too long).
    #[error("invalid folder metadata: {0}")]
    Invalid(String),
}

/// Whether a member is a person or a group (one stanza for many people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberKind {
    /// Only a key, from a version-1 record (no name known).
    Key,
    /// A person; the name is their e-mail address.
    User,
    /// A group on the broker; the name is the group name.
    Group,
}

impl MemberKind {
    fn code(self) -> u8 {
        match self {
            MemberKind::Key => 0,
            MemberKind::User => 1,
            MemberKind::Group => 2,
        }
    }
}

/// One member of a folder: who, and the key new files are encrypted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Person, group or bare key.
    pub kind: MemberKind,
    /// E-mail address (users) or group name (groups); for bare keys the key id.
    pub name: String,
    /// The public key every new file gets a stanza for.
    pub recipient: Recipient,
}

impl Member {
    /// A person.
    pub fn user(email: impl Into<String>, recipient: Recipient) -> Self {
        Member {
            kind: MemberKind::User,
            name: email.into(),
            recipient,
        }
    }

    /// A group.
    pub fn group(name: impl Into<String>, recipient: Recipient) -> Self {
        Member {
            kind: MemberKind::Group,
            name: name.into(),
            recipient,
        }
    }

    /// How the member is written on the command line: `bob@example.org` or
    /// `group:finance`.
    pub fn display(&self) -> String {
        match self.kind {
            MemberKind::Group => format!("group:{}", self.name),
            _ => self.name.clone(),
        }
    }
}

/// What the organisation's directory says about folder members now, as a
/// client learned it while online (docs/SHARING.md, "Departed users" and
/// "Group key rotation"). Applied to a folder's members at the next write
/// ([`FolderMeta::apply_directory`]); offline, the last view is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryView {
    /// People (e-mail addresses) who left the organisation: account
    /// disabled (key revoked) or no longer in the directory.
    pub departed: Vec<String>,
    /// Members' current keys, each verified by the caller (org certificate
    /// and pin; for a group, a certified rotation to a higher key version).
    pub current: Vec<Member>,
}

impl DirectoryView {
    /// Whether the view says nothing.
    pub fn is_empty(&self) -> bool {
        self.departed.is_empty() && self.current.is_empty()
    }
}

/// One change [`FolderMeta::apply_directory`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// A departed person was dropped from the members.
    Departed(String),
    /// A member's key moved to the directory's current key (`who` as on
    /// the command line, the new key's fingerprint).
    KeyMoved {
        /// `bob@example.org` or `group:finance`.
        who: String,
        /// Fingerprint of the new key.
        fingerprint: String,
    },
}

impl std::fmt::Display for MemberChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberChange::Departed(who) => write!(
                f,
                "{who} has left the organisation and no longer receives new files"
            ),
            MemberChange::KeyMoved { who, fingerprint } => write!(
                f,
                "{who} moved to its current key {fingerprint}; new files use it"
            ),
        }
    }
}

/// The decrypted folder metadata.
pub struct FolderMeta {
    /// Random id of this mirror.
    pub folder_id: [u8; 16],
    name_secret: Zeroizing<[u8; 32]>,
    /// Incremented at every membership change (rotation marker).
    pub epoch: u32,
    /// Who created the folder (e-mail address), empty if unknown.
    pub owner: String,
    /// The folder's display name, empty if unknown.
    pub title: String,
    /// Classification label (`kluis_types::Label` text), if any.
    pub label: Option<String>,
    /// Who the folder is shared with; every new file is encrypted to all.
    pub members: Vec<Member>,
}

impl std::fmt::Debug for FolderMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderMeta")
            .field("epoch", &self.epoch)
            .field("owner", &self.owner)
            .field("title", &self.title)
            .field("label", &self.label)
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FolderMetaError> {
        if self.0.len() < n {
            return Err(FolderMetaError::Malformed("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, FolderMetaError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<usize, FolderMetaError> {
        let b = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn str16(&mut self, max: usize, what: &'static str) -> Result<&'a str, FolderMetaError> {
        let n = self.u16()?;
        if n > max {
            return Err(FolderMetaError::Malformed(what));
        }
        std::str::from_utf8(self.take(n)?).map_err(|_| FolderMetaError::Malformed(what))
    }
}

fn valid_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= MAX_LABEL
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl FolderMeta {
    /// A new folder owned by `owner`.
    pub fn generate(owner: &Recipient, rng: &mut impl rand_core::CryptoRng) -> Self {
        let mut folder_id = [0u8; 16];
        rng.fill_bytes(&mut folder_id);
        let mut name_secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut name_secret[..]);
        FolderMeta {
            folder_id,
            name_secret,
            epoch: 0,
            owner: String::new(),
            title: String::new(),
            label: None,
            members: vec![Member {
                kind: MemberKind::Key,
                name: owner.fingerprint().key_id().to_string(),
                recipient: owner.clone(),
            }],
        }
    }

    /// The name cipher of this folder.
    pub fn name_cipher(&self) -> NameCipher {
        NameCipher::new(self.folder_id, &self.name_secret)
    }

    /// The keys every new file is encrypted to, in member order.
    pub fn recipients(&self) -> Vec<Recipient> {
        self.members.iter().map(|m| m.recipient.clone()).collect()
    }

    /// Checks the limits of the layout (before sealing).
    pub fn validate(&self) -> Result<(), FolderMetaError> {
        let bad = |s: String| Err(FolderMetaError::Invalid(s));
        if self.members.is_empty() || self.members.len() > MAX_MEMBERS {
            return bad(format!(
                "a folder has 1 to {MAX_MEMBERS} members (use a group for more people)"
            ));
        }
        if self.owner.len() > MAX_MEMBER_NAME || self.title.len() > MAX_TITLE {
            return bad("owner or title too long".into());
        }
        if let Some(l) = &self.label
            && !valid_label(l)
        {
            return bad(format!(
                "label {l:?} must be 1 to 32 characters of [a-z0-9-]"
            ));
        }
        for m in &self.members {
            if m.name.is_empty() || m.name.len() > MAX_MEMBER_NAME {
                return bad(format!("member name {:?} must be 1 to 254 bytes", m.name));
            }
            if m.kind == MemberKind::Key && m.name != m.recipient.fingerprint().key_id().to_string()
            {
                return bad(format!("bare key {:?} must be named by its key id", m.name));
            }
        }
        Ok(())
    }

    /// The decrypted payload of `.kluis-folder` (layout above, version 2),
    /// which [`FolderMeta::seal`] encrypts. It holds the name secret.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>, FolderMetaError> {
        self.validate()?;
        let mut out = Zeroizing::new(Vec::new());
        out.extend_from_slice(MAGIC_PREFIX);
        out.push(b'0' + VERSION);
        out.extend_from_slice(&self.folder_id);
        out.extend_from_slice(&self.name_secret[..]);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        // Lengths are bounded by validate() far below u16::MAX.
        for s in [&self.owner, &self.title] {
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        let label = self.label.as_deref().unwrap_or("");
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
        out.extend_from_slice(&(self.members.len() as u16).to_be_bytes());
        for m in &self.members {
            out.push(m.kind.code());
            out.extend_from_slice(&(m.name.len() as u16).to_be_bytes());
            out.extend_from_slice(m.name.as_bytes());
            let s = m.recipient.to_string();
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Ok(out)
    }

    /// Parse a decrypted `.kluis-folder` payload (layout above, versions 1
    /// and 2), as [`FolderMeta::open_any`] does after decrypting. Whoever
    /// can write the mirror can give any member any payload, so every
    /// input either parses to metadata that [`FolderMeta::encode`] writes
    /// again or is an error; `fuzz/` checks it on its own.
    pub fn decode(b: &[u8]) -> Result<Self, FolderMetaError> {
        let bad = FolderMetaError::Malformed;
        if b.len() < 8 || &b[..7] != MAGIC_PREFIX {
            return Err(bad("bad magic or too short"));
        }
        let version = match b[7] {
            c @ b'0'..=b'9' => c - b'0',
            _ => return Err(bad("bad magic or too short")),
        };
        if version != 1 && version != 2 {
            return Err(FolderMetaError::UnsupportedVersion(version));
        }
        let mut c = Cursor(&b[8..]);
        let mut folder_id = [0u8; 16];
        folder_id.copy_from_slice(c.take(16)?);
        let mut name_secret = Zeroizing::new([0u8; 32]);
        name_secret.copy_from_slice(c.take(32)?);
        let (mut epoch, mut owner, mut title, mut label) = (0, String::new(), String::new(), None);
        if version == 2 {
            let e = c.take(4)?;
            epoch = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            owner = c.str16(MAX_MEMBER_NAME, "bad owner")?.to_owned();
            title = c.str16(MAX_TITLE, "bad title")?.to_owned();
            let n = usize::from(c.u8()?);
            if n > 0 {
                let l = std::str::from_utf8(c.take(n)?).map_err(|_| bad("bad label"))?;
                if !valid_label(l) {
                    return Err(bad("bad label"));
                }
                label = Some(l.to_owned());
            }
        }
        let count = c.u16()?;
        if count == 0 || count > MAX_MEMBERS {
            return Err(bad("member count must be 1..=256"));
        }
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let (kind, name) = if version == 2 {
                let kind = match c.u8()? {
                    0 => MemberKind::Key,
                    1 => MemberKind::User,
                    2 => MemberKind::Group,
                    _ => return Err(bad("bad member kind")),
                };
                let name = c.str16(MAX_MEMBER_NAME, "bad member name")?;
                if name.is_empty() {
                    return Err(bad("bad member name"));
                }
                (kind, Some(name.to_owned()))
            } else {
                (MemberKind::Key, None)
            };
            let s = c.str16(usize::from(u16::MAX), "bad member entry")?;
            let recipient: Recipient = s.parse().map_err(|_| bad("bad member recipient"))?;
            let key_id = recipient.fingerprint().key_id().to_string();
            // FORMAT.md §8.2: a bare key is named by its own key id, in the
            // form people compare (`E199 EFE9 …`).
            if kind == MemberKind::Key && name.as_ref().is_some_and(|n| *n != key_id) {
                return Err(bad("bare key not named by its key id"));
            }
            let name = name.unwrap_or(key_id);
            members.push(Member {
                kind,
                name,
                recipient,
            });
        }
        if !c.0.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(FolderMeta {
            folder_id,
            name_secret,
            epoch,
            owner,
            title,
            label,
            members,
        })
    }

    /// Bring the members in line with `view`: drop departed people, move
    /// members to their current verified keys. Never drops the last member
    /// or a member holding one of `mine` (the keys this device opens the
    /// folder with), and changes nothing when the result would no longer
    /// open with any of `mine`, so the writer keeps its access. Returns
    /// what changed; the caller bumps the epoch and re-seals when something
    /// did.
    pub fn apply_directory(
        &mut self,
        view: &DirectoryView,
        mine: &[&Recipient],
    ) -> Vec<MemberChange> {
        let is_mine = |r: &Recipient| mine.contains(&r);
        let mut members = self.members.clone();
        let mut changes = Vec::new();
        let mut i = 0;
        while i < members.len() {
            let m = &members[i];
            if m.kind == MemberKind::User
                && members.len() > 1
                && !is_mine(&m.recipient)
                && view.departed.contains(&m.name)
            {
                changes.push(MemberChange::Departed(m.name.clone()));
                members.remove(i);
            } else {
                i += 1;
            }
        }
        for m in members.iter_mut().filter(|m| m.kind != MemberKind::Key) {
            if let Some(c) = view
                .current
                .iter()
                .find(|c| c.kind == m.kind && c.name == m.name && c.recipient != m.recipient)
            {
                m.recipient = c.recipient.clone();
                changes.push(MemberChange::KeyMoved {
                    who: m.display(),
                    fingerprint: c.recipient.fingerprint().to_string(),
                });
            }
        }
        if changes.is_empty() || !members.iter().any(|m| is_mine(&m.recipient)) {
            return Vec::new();
        }
        self.members = members;
        changes
    }

    /// Encrypt to all members.
    pub fn seal(&self, rng: &mut impl rand_core::CryptoRng) -> Result<Vec<u8>, FolderMetaError> {
        let plain = self.encode()?;
        let mut out = Vec::new();
        let meta = Metadata {
            name: Some(FOLDER_META_FILE.to_owned()),
            size: Some(plain.len() as u64),
            label: self.label.clone(),
            ..Metadata::default()
        };
        kluis_format::encrypt(
            &plain[..],
            &mut out,
            &self.recipients(),
            &meta,
            kluis_format::EncryptOptions::default(),
            rng,
        )?;
        Ok(out)
    }

    /// Decrypt with `identity`.
    pub fn open(bytes: &[u8], identity: &Identity) -> Result<Self, FolderMetaError> {
        Self::open_any(bytes, &[identity])
    }

    /// Decrypt with whichever of `keys` (own identity, group keys) has a
    /// stanza in the file.
    pub fn open_any(bytes: &[u8], keys: &[&Identity]) -> Result<Self, FolderMetaError> {
        let mut d = crate::keys::decryptor(bytes, keys)?;
        let mut plain = Zeroizing::new(Vec::new());
        d.read_to_end(&mut plain)
            .map_err(kluis_format::Error::from_io)?;
        Self::decode(&plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> impl rand_core::CryptoRng {
        rand_core::UnwrapErr(getrandom::SysRng)
    }

    #[test]
    fn seal_open_round_trip() {
        let mut rng = rng();
        let id = Identity::generate(&mut rng);
        let other = Identity::generate(&mut rng);
        let m = FolderMeta::generate(id.recipient(), &mut rng);
        let sealed = m.seal(&mut rng).unwrap();
        let back = FolderMeta::open(&sealed, &id).unwrap();
        assert_eq!(back.folder_id, m.folder_id);
        assert_eq!(back.members, m.members);
        assert_eq!(
            back.name_cipher().encrypt_component("x").unwrap(),
            m.name_cipher().encrypt_component("x").unwrap()
        );
        assert!(matches!(
            FolderMeta::open(&sealed, &other),
            Err(FolderMetaError::Format(
                kluis_format::Error::NoMatchingRecipient
            ))
        ));
        assert!(FolderMeta::open(&sealed[..sealed.len() - 3], &id).is_err());
    }

    #[test]
    fn v2_fields_round_trip_and_open_with_a_group_key() {
        let mut rng = rng();
        let alice = Identity::generate(&mut rng);
        let group = Identity::generate(&mut rng);
        let bob = Identity::generate(&mut rng);
        let mut m = FolderMeta::generate(alice.recipient(), &mut rng);
        m.owner = "alice@example.org".into();
        m.title = "Projects".into();
        m.label = Some("medical".into());
        m.epoch = 7;
        m.members = vec![
            Member::user("alice@example.org", alice.recipient().clone()),
            Member::group("finance", group.recipient().clone()),
        ];
        let sealed = m.seal(&mut rng).unwrap();
        let back = FolderMeta::open_any(&sealed, &[&bob, &group]).unwrap();
        assert_eq!(
            (back.epoch, &back.owner[..], &back.title[..]),
            (7, "alice@example.org", "Projects")
        );
        assert_eq!(back.label.as_deref(), Some("medical"));
        assert_eq!(back.members, m.members);
        let enc = m.encode().unwrap();
        assert_eq!(FolderMeta::decode(&enc).unwrap().members, m.members);
    }

    #[test]
    fn strict_versions_and_bounds() {
        let mut rng = rng();
        let id = Identity::generate(&mut rng);
        let m = FolderMeta::generate(id.recipient(), &mut rng);
        let mut enc = m.encode().unwrap().to_vec();
        enc[7] = b'3';
        assert!(matches!(
            FolderMeta::decode(&enc),
            Err(FolderMetaError::UnsupportedVersion(3))
        ));
        enc[7] = b'2';
        enc.push(0);
        assert!(matches!(
            FolderMeta::decode(&enc),
            Err(FolderMetaError::Malformed("trailing bytes"))
        ));
        // Version 1, as the previous release wrote it.
        let r = id.recipient().to_string();
        let mut v1 = b"KLSFOLD1".to_vec();
        v1.extend_from_slice(&m.folder_id);
        v1.extend_from_slice(&[7u8; 32]);
        v1.extend_from_slice(&1u16.to_be_bytes());
        v1.extend_from_slice(&(r.len() as u16).to_be_bytes());
        v1.extend_from_slice(r.as_bytes());
        let back = FolderMeta::decode(&v1).unwrap();
        assert_eq!(back.members[0].kind, MemberKind::Key);
        assert_eq!(&back.members[0].recipient, id.recipient());
        for cut in 0..v1.len() {
            assert!(FolderMeta::decode(&v1[..cut]).is_err(), "cut {cut}");
        }
        // A bare key is named by its key id (§8.2), on write and on read.
        assert_eq!(
            m.members[0].name,
            id.recipient().fingerprint().key_id().to_string()
        );
        assert_eq!(m.members[0].name.len(), 39);
        let mut renamed = FolderMeta::decode(&m.encode().unwrap()).unwrap();
        renamed.members[0].name = "someone".into();
        assert!(matches!(renamed.encode(), Err(FolderMetaError::Invalid(_))));
        let good = m.encode().unwrap().to_vec();
        let at = good
            .windows(39)
            .position(|w| w == m.members[0].name.as_bytes())
            .unwrap();
        let mut lower = good.clone();
        lower[at..at + 39].make_ascii_lowercase();
        assert!(matches!(
            FolderMeta::decode(&lower),
            Err(FolderMetaError::Malformed(_))
        ));
        let mut bad = m;
        bad.label = Some("Medical!".into());
        assert!(matches!(bad.encode(), Err(FolderMetaError::Invalid(_))));
        bad.label = None;
        bad.members.clear();
        assert!(matches!(bad.encode(), Err(FolderMetaError::Invalid(_))));
    }

    /// Departed people are dropped and members move to their current keys,
    /// but never the writer itself, never the last member, and never into
    /// a state the writer's keys no longer open.
    #[test]
    fn directory_view_applies_safely() {
        let mut rng = rng();
        let [alice, bob, dave, g1, g2] = [(); 5].map(|_| Identity::generate(&mut rng));
        let mut m = FolderMeta::generate(alice.recipient(), &mut rng);
        m.members = vec![
            Member::user("alice@example.org", alice.recipient().clone()),
            Member::user("bob@example.org", bob.recipient().clone()),
            Member::user("dave@example.org", dave.recipient().clone()),
            Member::group("ops", g1.recipient().clone()),
        ];
        let view = DirectoryView {
            departed: vec!["dave@example.org".into(), "alice@example.org".into()],
            current: vec![
                Member::group("ops", g2.recipient().clone()),
                // Same name, other kind: not the group.
                Member::user("ops", dave.recipient().clone()),
            ],
        };
        let changes = m.apply_directory(&view, &[alice.recipient()]);
        assert_eq!(
            changes,
            vec![
                MemberChange::Departed("dave@example.org".into()),
                MemberChange::KeyMoved {
                    who: "group:ops".into(),
                    fingerprint: g2.recipient().fingerprint().to_string(),
                },
            ]
        );
        assert!(changes[0].to_string().contains("left the organisation"));
        let names: Vec<&str> = m.members.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["alice@example.org", "bob@example.org", "ops"]);
        assert_eq!(&m.members[2].recipient, g2.recipient());
        // Applying it again changes nothing.
        assert!(m.apply_directory(&view, &[alice.recipient()]).is_empty());

        // A writer that opens the folder only through the group's old key
        // does not move the group away from it (it would lock itself out).
        let mut only_group = FolderMeta::generate(g1.recipient(), &mut rng);
        only_group.members = vec![
            Member::user("bob@example.org", bob.recipient().clone()),
            Member::group("ops", g1.recipient().clone()),
        ];
        let v = DirectoryView {
            departed: vec![],
            current: vec![Member::group("ops", g2.recipient().clone())],
        };
        assert!(only_group.apply_directory(&v, &[g1.recipient()]).is_empty());
        assert_eq!(&only_group.members[1].recipient, g1.recipient());
        // With the new key too, it moves.
        assert_eq!(
            only_group
                .apply_directory(&v, &[g1.recipient(), g2.recipient()])
                .len(),
            1
        );

        // The last member is never dropped.
        let mut last = FolderMeta::generate(dave.recipient(), &mut rng);
        last.members = vec![Member::user("dave@example.org", dave.recipient().clone())];
        let v = DirectoryView {
            departed: vec!["dave@example.org".into()],
            current: vec![],
        };
        assert!(last.apply_directory(&v, &[alice.recipient()]).is_empty());
        assert_eq!(last.members.len(), 1);
    }
}
