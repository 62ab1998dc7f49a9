//! The executor: applies one [`Operation`] at a time, never clobbering.
//! This module is the dispatcher and what every operation shares; each
//! kind of operation has a module of its own:
//!
//! - [`write`]: the one never-clobber write path (temp file, fsync,
//!   re-check, rename, fsync of the directory) that every write goes
//!   through; a target that is no longer what the index says makes the
//!   item report [`ItemErrorKind::ChangedDuringSync`] and the engine
//!   rescans. The index is updated after the file system, so a crash
//!   between the two leaves a state the planner recovers from (both sides
//!   "changed" with equal content);
//! - `stream`: plaintext and ciphertext read into temp files;
//! - `transfer`: uploads and downloads of one file; `batch`: new files in
//!   parallel batches; `conflict`: merges and sync clients' copies;
//!   `damaged`, `follow`: the plaintext over a damaged ciphertext, an edit
//!   following another device's rename;
//! - `rename`, `delete`, `dirs`: renames, deletions and the trash,
//!   directories; `folder`: the folder metadata;
//! - [`space`]: room for a download.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use kluis_format::{Identity, KemChoice, Metadata, Recipient};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::copy_names::{self, ConflictName, format_date};
use crate::error::{ItemError, ItemErrorKind, SyncError};
use crate::index::{Index, IndexEntry};
use crate::names::{DIR_NAME_MARKER, Encoded, NameCipher};
use crate::plan::Operation;
use crate::scan::{self, Kind, Stat, TRASH_DIR};

/// Something the engine did, for the activity log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// What happened: `encrypted`, `decrypted`, `renamed`, `conflict`,
    /// `trashed`, `deleted`, `mkdir`, `rmdir`.
    pub action: String,
    /// Plaintext path.
    pub path: String,
    /// Extra detail (rename target, conflict copy name).
    pub detail: Option<String>,
    /// When (ns since the epoch).
    pub at: i64,
    /// The ciphertext file this wrote, as the index records it, where the
    /// executor has it at hand (new files encrypted in a batch): the agent
    /// knows the watcher events of its own writes by it, without reading
    /// the index back. Not part of the activity log.
    #[serde(skip)]
    pub ciphertext: Option<WrittenCiphertext>,
}

/// A ciphertext file as the engine wrote it and recorded it in the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenCiphertext {
    /// Relative ciphertext path in the mirror.
    pub cpath: String,
    /// Its size and mtime (ns) right after it was written.
    pub size: u64,
    /// See `size`.
    pub mtime: i64,
}

/// What an executor needs. Borrowed from the engine for one round.
pub struct Exec<'a, R: rand_core::CryptoRng> {
    /// Plaintext root.
    pub plain: &'a Path,
    /// Mirror root.
    pub mirror: &'a Path,
    /// Name cipher of the mirror.
    pub names: &'a NameCipher,
    /// The unlocked identity.
    pub identity: &'a Identity,
    /// Keys of the groups the user belongs to (files shared with a group).
    pub group_keys: &'a [Identity],
    /// Who new ciphertext is encrypted to.
    pub recipients: &'a mut Vec<Recipient>,
    /// The folder metadata, for [`Operation::UpdateMembers`].
    pub folder: folder::Folder<'a>,
    /// The index.
    pub index: &'a mut Index,
    /// Randomness (file keys, temp names).
    pub rng: &'a mut R,
    /// How durable each write is made (from the pair's configuration).
    pub durability: Durability,
    /// This device's name, for conflict copies.
    pub device: &'a str,
    /// The clock value of this round (ns).
    pub now: i64,
}

type ItemResult = Result<Activity, ItemError>;

fn fail(path: &str, kind: ItemErrorKind, detail: impl std::fmt::Display) -> ItemError {
    ItemError {
        path: path.to_owned(),
        kind,
        detail: detail.to_string(),
    }
}

fn io_fail(path: &str) -> impl FnOnce(io::Error) -> ItemError + '_ {
    move |e| fail(path, ItemErrorKind::Failed, e)
}

/// Classify a decryption failure: anything that is not "not for us" is
/// treated as incomplete (retry later, never delete).
fn crypt_fail(path: &str, e: kluis_format::Error) -> ItemError {
    match e {
        kluis_format::Error::NoMatchingRecipient => fail(path, ItemErrorKind::NotSharedWithYou, e),
        kluis_format::Error::Io(ref io) if io.kind() != io::ErrorKind::UnexpectedEof => {
            fail(path, ItemErrorKind::Failed, e)
        }
        _ => fail(path, ItemErrorKind::Incomplete, e),
    }
}

fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

mod batch;
mod conflict;
mod damaged;
mod delete;
mod dirs;
pub mod folder;
mod follow;
mod rename;
pub mod space;
mod stream;
mod transfer;
pub mod write;

pub(crate) use damaged::advice as damaged_advice;
pub use delete::purge_trash;
use stream::{Encrypted, HashingReader, encrypt_to_temp, stat_of};
pub use write::{Durability, fsync_dir, remove_temps};
use write::{Expect, Temp, WriteError};
pub(crate) use write::{matches, walk_files};

/// An item error for a failed [`write::commit`]: `changed` says what
/// changed when the target is no longer what the index says.
fn write_fail(path: &str, e: WriteError, changed: &str) -> ItemError {
    match e {
        WriteError::SourceChanged | WriteError::TargetChanged => {
            fail(path, ItemErrorKind::ChangedDuringSync, changed)
        }
        WriteError::Io(e) => fail(path, ItemErrorKind::Failed, e),
    }
}

impl<'a, R: rand_core::CryptoRng> Exec<'a, R> {
    fn activity(&self, action: &str, path: &str, detail: Option<String>) -> Activity {
        Activity {
            action: action.to_owned(),
            path: path.to_owned(),
            detail,
            at: self.now,
            ciphertext: None,
        }
    }

    fn cpath(&self, path: &str, kind: Kind) -> Result<String, ItemError> {
        self.names
            .encrypt_path(path, kind == Kind::File)
            .map_err(|e| fail(path, ItemErrorKind::Failed, e))
    }

    /// fsync `dir` after a rename or removal in it, with
    /// [`Durability::Each`].
    fn sync_dir(&self, dir: &Path, durability: Durability) -> Result<(), ItemError> {
        write::sync_dirs([&dir.to_path_buf()], durability)
            .map_err(|(d, e)| fail(&d.display().to_string(), ItemErrorKind::Failed, e))
    }

    /// Apply one operation: one result per path it is about (one, but for
    /// the batches; none for [`Operation::UpdateMembers`], whose changes
    /// are in [`folder::Folder::changes`]). An error is one that stops the
    /// reconcile: only the folder metadata's (no file may be written to
    /// the old members meanwhile).
    pub fn apply(&mut self, op: &Operation) -> Result<Vec<ItemResult>, SyncError> {
        Ok(match op {
            Operation::UploadNew { paths, scanned } => self.upload_new_batch(paths, scanned),
            Operation::MkdirRemoteRun { paths } => self.mkdir_remote_batch(paths),
            Operation::UpdateMembers => {
                self.update_members()?;
                Vec::new()
            }
            op => vec![self.apply_one(op)],
        })
    }

    fn apply_one(&mut self, op: &Operation) -> ItemResult {
        match op {
            Operation::Upload { path } => self.upload(path),
            Operation::Download { path } => self.download(path),
            Operation::Merge { path } => self.merge(path),
            Operation::ReplaceDamaged { path } => self.replace_damaged(path),
            Operation::AdoptSyncConflict { cpath, of } => self.adopt(cpath, of),
            Operation::RenameRemote { from, to, kind } => self.rename_remote(from, to, *kind),
            Operation::RenameLocal { from, to } => self.rename_local(from, to),
            Operation::FollowRename { from, to } => self.follow_rename(from, to),
            Operation::RenameLocalDir { from, to } => self.rename_local_dir(from, to),
            Operation::MkdirRemote { path } => self.mkdir_remote(path),
            Operation::MkdirLocal { path } => self.mkdir_local(path),
            Operation::Record { path } => self.record(path),
            Operation::DeleteRemote { path } => self.delete_remote(path),
            Operation::TrashLocal { path } => self.trash_local(path),
            Operation::RmdirRemote { path } => self.rmdir_remote(path),
            Operation::RmdirLocal { path } => self.rmdir_local(path),
            Operation::Forget { path } => self.forget(path),
            Operation::UploadNew { paths, .. } | Operation::MkdirRemoteRun { paths } => {
                let path = paths.first().map_or("", String::as_str);
                Err(fail(
                    path,
                    ItemErrorKind::Failed,
                    "a batch is applied whole",
                ))
            }
            Operation::UpdateMembers => Err(fail(
                "",
                ItemErrorKind::Failed,
                "the folder's members are updated by `apply`",
            )),
        }
    }

    fn index_remove(&mut self, path: &str) -> Result<(), ItemError> {
        self.index
            .remove(path)
            .map_err(|e| fail(path, ItemErrorKind::Failed, e))
    }

    fn index_put(&mut self, path: &str, e: &IndexEntry) -> Result<(), ItemError> {
        self.index
            .put(path, e)
            .map_err(|e| fail(path, ItemErrorKind::Failed, e))
    }

    fn changed(path: &str, what: &str) -> ItemError {
        fail(path, ItemErrorKind::ChangedDuringSync, what)
    }
}

fn unreachable_path(path: &str) -> String {
    format!("{path} (conflict)")
}
