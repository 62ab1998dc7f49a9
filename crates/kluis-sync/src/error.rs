//! Typed errors of the sync engine. Per-item failures are [`ItemError`]
//! results in a report; [`SyncError`] aborts a whole reconcile.

use std::path::PathBuf;

/// A ciphertext or plaintext name could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    /// The plaintext component is empty, too long, `.` or `..`, or holds
    /// '/' or NUL.
    #[error("invalid plaintext name {0:?}")]
    InvalidPlain(String),
    /// Not a name this folder's key produced.
    #[error("not an encrypted name of this folder: {0:?}")]
    NotEncrypted(String),
    /// The decrypted name has bad padding or is not UTF-8.
    #[error("encrypted name has invalid padding")]
    Padding,
    /// The name key is unusable.
    #[error("name key is unusable")]
    Key,
}

/// Errors that stop a reconcile.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// An I/O error on a path.
    #[error("{op} {path}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// Where.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The index database failed.
    #[error("index {path}: {source}")]
    Index {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The folder-metadata file failed.
    #[error("folder metadata {path}: {source}")]
    FolderMeta {
        /// The metadata file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: kluis_format::Error,
    },
    /// The folder-metadata file is malformed.
    #[error("folder metadata {path} is malformed: {reason}")]
    FolderMetaFormat {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// The mirror has content but no folder-metadata file yet (it may still
    /// be syncing in).
    #[error("mirror {0} has files but no folder metadata yet; waiting for it to sync")]
    NoFolderMeta(PathBuf),
    /// The folder metadata is not (or no longer) encrypted to any of our
    /// keys: the folder is not shared with us. Nothing is synced or deleted.
    #[error(
        "the folder {0} is not shared with you (its metadata is not encrypted to your key or your groups' keys)"
    )]
    FolderNotShared(PathBuf),
    /// A name failed.
    #[error(transparent)]
    Name(#[from] NameError),
}

impl SyncError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> SyncError {
        let path = path.into();
        move |source| SyncError::Io { op, path, source }
    }
}

/// Why one item was not synced this round.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ItemErrorKind {
    /// The ciphertext does not (yet) authenticate: partly synced or corrupt.
    /// Retried later; never decrypted, never deleted.
    Incomplete,
    /// The file is not encrypted to our identity.
    NotSharedWithYou,
    /// The file changed while we worked on it; it is rescanned.
    ChangedDuringSync,
    /// A download would not leave enough free space on the plaintext's
    /// disk (`exec::space`): nothing was written; tried again once space is
    /// freed. The detail names the disk and the figures.
    NoSpace,
    /// The ciphertext has failed to authenticate, unchanged, for longer
    /// than a sync client needs to finish writing a file: it is damaged.
    /// Not retried until it changes; a newer version from this device
    /// replaces it (its bytes are kept in the Kluis trash). The detail says
    /// what the user can do.
    Damaged,
    /// Any other I/O or format problem.
    Failed,
}

/// A per-item failure.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ItemError {
    /// The plaintext path (or ciphertext path when unknown).
    pub path: String,
    /// Classification.
    pub kind: ItemErrorKind,
    /// Details for logs.
    pub detail: String,
}
