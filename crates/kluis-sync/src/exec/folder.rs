//! The folder metadata file (`.kluis-folder`), written through the one
//! write path and always fsynced (the folder key and the members live in
//! it, and every device reads it).
//!
//! Rewriting it for the directory's view of the members is a planned
//! operation ([`crate::Operation::UpdateMembers`], first in its plan): the
//! recipients of every later write of the round follow from it, and its
//! failure stops the reconcile (no file is written to the old members
//! meanwhile). Creating the file for a new, empty folder is not planned:
//! the plan needs the name cipher it holds.

use std::fs;
use std::path::Path;

use kluis_format::Recipient;

use super::write::{self, Durability, Expect, WriteError};
use crate::error::SyncError;
use crate::folder_meta::{
    DirectoryView, FOLDER_META_FILE, FolderMeta, FolderMetaError, MemberChange,
};
use crate::scan::{self, Stat};

/// What [`crate::Operation::UpdateMembers`] works on, borrowed from the
/// engine for one round.
pub struct Folder<'a> {
    /// The decrypted folder metadata.
    pub meta: &'a mut FolderMeta,
    /// Size and mtime of `.kluis-folder` as last read or written.
    pub stat: &'a mut Option<(u64, i64)>,
    /// What the organisation's directory says about members now.
    pub directory: &'a DirectoryView,
    /// The keys this device opens the folder with (never dropped).
    pub mine: Vec<&'a Recipient>,
    /// The changes made, for the engine's report (taken after each
    /// operation).
    pub changes: Vec<MemberChange>,
}

impl<R: rand_core::CryptoRng> super::Exec<'_, R> {
    /// [`crate::Operation::UpdateMembers`]: see [`update_members`]; the
    /// recipients of what follows are the new members.
    pub(super) fn update_members(&mut self) -> Result<(), SyncError> {
        let f = &mut self.folder;
        let changes = update_members(
            self.mirror,
            f.meta,
            f.directory,
            &f.mine,
            f.stat,
            &mut *self.rng,
        )?;
        if !changes.is_empty() {
            *self.recipients = f.meta.recipients();
        }
        f.changes.extend(changes);
        Ok(())
    }
}

/// Whether the directory view would change the members of `meta` (for
/// the plan's [`crate::plan::PlanInput::members_outdated`]). Changes nothing.
pub(crate) fn members_outdated(
    meta: &mut FolderMeta,
    directory: &DirectoryView,
    mine: &[&Recipient],
) -> bool {
    if directory.is_empty() {
        return false;
    }
    let members = meta.members.clone();
    let outdated = !meta.apply_directory(directory, mine).is_empty();
    meta.members = members;
    outdated
}

/// Apply the directory view to the members of `meta` and replace the file
/// in `mirror` with the result (next epoch), unless it no longer has the
/// stat `*stat` (another device changed it); `*stat` becomes the new one.
/// Returns what changed; on failure `meta` and `stat` are as they were.
pub(crate) fn update_members(
    mirror: &Path,
    meta: &mut FolderMeta,
    directory: &DirectoryView,
    mine: &[&Recipient],
    stat: &mut Option<(u64, i64)>,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Vec<MemberChange>, SyncError> {
    if directory.is_empty() {
        return Ok(Vec::new());
    }
    let (members, epoch) = (meta.members.clone(), meta.epoch);
    let changes = meta.apply_directory(directory, mine);
    if changes.is_empty() {
        return Ok(changes);
    }
    meta.epoch = meta.epoch.wrapping_add(1);
    let path = mirror.join(FOLDER_META_FILE);
    let written = meta
        .seal(rng)
        .map_err(|e| SyncError::FolderMetaFormat {
            path: path.clone(),
            reason: match e {
                FolderMetaError::Invalid(_) => "invalid values",
                _ => "cannot be sealed",
            },
        })
        .and_then(|bytes| replace(mirror, &bytes, *stat));
    match written {
        Ok(new) => {
            *stat = Some(new);
            Ok(changes)
        }
        Err(e) => {
            meta.members = members;
            meta.epoch = epoch;
            Err(e)
        }
    }
}

/// Replace `.kluis-folder` in `dir` with `bytes` unless it no longer has
/// the stat `expected` (another device wrote it meanwhile). Returns the
/// new stat.
pub(crate) fn replace(
    dir: &Path,
    bytes: &[u8],
    expected: Option<(u64, i64)>,
) -> Result<(u64, i64), SyncError> {
    let target = dir.join(FOLDER_META_FILE);
    let changed = || SyncError::Io {
        op: "replace",
        path: target.clone(),
        source: std::io::Error::other(
            "the folder metadata changed meanwhile (another device); it is read again",
        ),
    };
    let expected = expected.ok_or_else(changed)?;
    write::write_bytes(
        dir,
        &format!("{}folder-next", scan::TEMP_PREFIX),
        &target,
        bytes,
        Expect::Exactly(expected),
        Durability::Each,
    )
    .map_err(|e| match e {
        WriteError::Io(e) => SyncError::io("replace", &target)(e),
        _ => changed(),
    })?;
    let m = fs::metadata(&target).map_err(SyncError::io("stat", &target))?;
    let s = Stat::from_metadata(&m);
    Ok((s.size, s.mtime))
}

/// Create `.kluis-folder` in `dir` with `bytes`, never over one another
/// device created meanwhile.
pub(crate) fn create(dir: &Path, bytes: &[u8]) -> Result<(), SyncError> {
    let target = dir.join(FOLDER_META_FILE);
    write::write_bytes(
        dir,
        &format!("{}folder-new", scan::TEMP_PREFIX),
        &target,
        bytes,
        Expect::Absent,
        Durability::Each,
    )
    .map_err(|e| match e {
        WriteError::Io(e) => SyncError::io("create", &target)(e),
        _ => SyncError::io("create", &target)(std::io::ErrorKind::AlreadyExists.into()),
    })
}
