//! What the daemon itself needs of sharing (docs/SHARING.md): opening a
//! folder's members with your keys and your groups' keys, finding folders
//! shared with you ([`discover_shared`]), asking the organisation's
//! directory which members left or have a newer key ([`directory`]), your
//! groups' keys ([`groups`]) and the copies of their key files in the
//! mirrors ([`group_files`]).
//!
//! Changing who a folder or file is shared with — what a person does — is
//! `kluis_client::share`, the library behind `kluis share` and the tray's
//! share dialog. It builds on the types here ([`Keys`], [`ShareError`]).

pub mod directory;
mod discover;
pub mod group_files;
pub mod groups;
pub mod replace;
pub mod resolve;

use std::path::{Path, PathBuf};

use kluis_format::Identity;
use kluis_sync::folder_meta::{FOLDER_META_FILE, FolderMetaError};
pub use kluis_sync::{DirectoryView, FolderMeta, Member, MemberChange, MemberKind};
use kluis_types::PolicyViolation;

pub use discover::{Discovered, DiscoveryOutcome, discover_shared, shared_plain_name};

/// Why a share operation failed as a whole (per-file failures are listed in
/// the share report instead).
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// Reading or writing a path failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The folder metadata could not be read or written.
    #[error("folder metadata {path}: {source}")]
    Meta {
        /// The `.kluis-folder` file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: FolderMetaError,
    },
    /// The folder or file is not encrypted to any of our keys.
    #[error("{0} is not shared with you, so you cannot change who it is shared with")]
    NotShared(PathBuf),
    /// The path is not a Kluis mirror (no `.kluis-folder`).
    #[error(
        "{0} is not an encrypted Kluis folder (no .kluis-folder); pair it first with `kluis folders add`"
    )]
    NotAMirror(PathBuf),
    /// A file could not be opened or rewritten.
    #[error("{path}: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: kluis_format::Error,
    },
    /// The organisation policy forbids it; the message names the rule.
    #[error(transparent)]
    Policy(#[from] PolicyViolation),
    /// Removing these members would leave nobody.
    #[error("a folder needs at least one member; {0} is the last one")]
    LastMember(String),
    /// The member to remove is not a member.
    #[error("{0} is not a member of this folder")]
    NotAMember(String),
    /// A group's key file could not be fetched or opened (FORMAT.md §8.7).
    #[error(transparent)]
    Group(Box<groups::GroupError>),
}

impl From<groups::GroupError> for ShareError {
    fn from(e: groups::GroupError) -> Self {
        ShareError::Group(Box::new(e))
    }
}

impl ShareError {
    /// `map_err` helper: an [`ShareError::Io`] for `op` on `path`.
    pub fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ShareError {
        let path = path.into();
        move |source| ShareError::Io { op, path, source }
    }
}

/// The keys you hold: your identity and the keys of your groups.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    /// Your identity.
    pub identity: &'a Identity,
    /// Your groups' keys (all versions you hold).
    pub groups: &'a [Identity],
}

impl std::fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Keys<'a> {
    /// Only your own identity.
    pub fn own(identity: &'a Identity) -> Self {
        Keys {
            identity,
            groups: &[],
        }
    }

    /// Your identity, then every group key.
    pub fn all(&self) -> Vec<&'a Identity> {
        let mut v = vec![self.identity];
        v.extend(self.groups.iter());
        v
    }
}

/// The folder metadata file of `mirror`.
pub fn meta_path(mirror: &Path) -> PathBuf {
    mirror.join(FOLDER_META_FILE)
}

/// Read and open a folder's metadata with any of `keys`.
pub fn open_folder(mirror: &Path, keys: Keys<'_>) -> Result<FolderMeta, ShareError> {
    let path = meta_path(mirror);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ShareError::NotAMirror(mirror.to_owned()));
        }
        Err(e) => return Err(ShareError::io("read", &path)(e)),
    };
    FolderMeta::open_any(&bytes, &keys.all()).map_err(|e| match e {
        FolderMetaError::Format(kluis_format::Error::NoMatchingRecipient) => {
            ShareError::NotShared(mirror.to_owned())
        }
        source => ShareError::Meta {
            path: path.clone(),
            source,
        },
    })
}
