//! The executor: applies one [`Operation`] at a time, never clobbering.
//!
//! Every write goes to a temp file in the target's directory, is fsynced,
//! and renamed over the target only after re-checking that the target is
//! still what the index says (absent, or the recorded size and mtime);
//! otherwise the item reports [`ItemErrorKind::ChangedDuringSync`] and the
//! engine rescans. The directory is fsynced after the rename. The index is
//! updated after the file system, so a crash between the two leaves a state
//! the planner recovers from (both sides "changed" with equal content).

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use kluis_format::{Identity, KemChoice, Metadata, Recipient};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::copy_names::{self, ConflictName, format_date};
use crate::error::{ItemError, ItemErrorKind};
use crate::index::{Index, IndexEntry};
use crate::names::{DIR_NAME_MARKER, Encoded, NameCipher};
use crate::plan::Operation;
use crate::scan::{self, Kind, Stat, TEMP_PREFIX, TRASH_DIR};

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
    pub recipients: &'a [Recipient],
    /// The index.
    pub index: &'a mut Index,
    /// Randomness (file keys, temp names).
    pub rng: &'a mut R,
    /// fsync files and directories.
    pub fsync: bool,
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

/// fsync a directory (no-op where directories cannot be opened).
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Whether the file at `p` still has the expected (size, mtime); `None`
/// expects it to be absent.
pub(crate) fn matches(p: &Path, expected: Option<(u64, i64)>) -> bool {
    match (fs::symlink_metadata(p), expected) {
        (Err(e), None) => e.kind() == io::ErrorKind::NotFound,
        (Ok(m), Some((size, mtime))) => {
            let s = Stat::from_metadata(&m);
            s.size == size && s.mtime == mtime
        }
        _ => false,
    }
}

/// Opens a plaintext file to read it, without updating its access time
/// where the system allows (Linux `O_NOATIME`, for files the user owns), as
/// backup tools do: the agent reading a file to encrypt it is not the user
/// opening it, and under `relatime` the first read after a change would
/// otherwise dirty the inode, a journal write per file on ext4.
fn open_plain(p: &Path) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Never through a symlink, and never blocking on a FIFO: the path
        // was a regular file when scanned, but may not be any more (the
        // caller checks what was opened). O_NONBLOCK changes nothing for
        // regular files.
        let open = |flags| {
            fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | flags)
                .open(p)
        };
        match open(libc::O_NOATIME) {
            // Not the file's owner: no O_NOATIME then.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(0),
            r => r,
        }
    }
    #[cfg(not(target_os = "linux"))]
    File::open(p)
}

fn stat_of(p: &Path) -> io::Result<Stat> {
    fs::symlink_metadata(p).map(|m| Stat::from_metadata(&m))
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// A freshly written ciphertext temp file.
struct Encrypted {
    /// SHA-256 of the plaintext that was read.
    hash: Vec<u8>,
    /// The Kluis file id in its header.
    file_id: [u8; 16],
    /// Size and mtime of the temp file; a rename keeps both.
    stat: Stat,
    /// Still open, for the fsync.
    file: File,
}

/// Encrypt the plaintext `lp` (stat `s0`) into `tmp` (not yet fsynced).
fn encrypt_to_temp(
    lp: &Path,
    path: &str,
    s0: &Stat,
    to: crate::crypt::To<'_>,
    tmp: &Path,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<Encrypted, ItemError> {
    let (_, name) = split_parent(path);
    let meta = Metadata {
        name: Some(name.to_owned()),
        size: Some(s0.size),
        mtime: Some((
            s0.mtime.div_euclid(1_000_000_000),
            s0.mtime.rem_euclid(1_000_000_000) as u32,
        )),
        label: None,
    };
    let input = open_plain(lp).map_err(io_fail(path))?;
    if !input.metadata().is_ok_and(|m| m.is_file()) {
        return Err(fail(
            path,
            ItemErrorKind::ChangedDuringSync,
            "no longer a regular file",
        ));
    }
    let mut reader = HashingReader {
        inner: input,
        hash: Sha256::new(),
    };
    let out = File::create(tmp).map_err(io_fail(path))?;
    // Small files fit the buffer whole: one write(2) per file.
    let cap = usize::try_from(s0.size)
        .unwrap_or(usize::MAX)
        .saturating_add(8 << 10)
        .min(1 << 16);
    let mut w = BufWriter::with_capacity(cap, out);
    let (_, file_id) =
        crate::crypt::encrypt_stream(&mut reader, &mut w, to, &meta, rng).map_err(|e| match e {
            kluis_format::Error::SizeMismatch { .. } => fail(
                path,
                ItemErrorKind::ChangedDuringSync,
                "size changed while reading",
            ),
            e => fail(path, ItemErrorKind::Failed, e),
        })?;
    let file = w
        .into_inner()
        .map_err(|e| fail(path, ItemErrorKind::Failed, e.error()))?;
    let stat = file
        .metadata()
        .map(|m| Stat::from_metadata(&m))
        .map_err(io_fail(path))?;
    Ok(Encrypted {
        hash: reader.hash.finalize().to_vec(),
        file_id,
        stat,
        file,
    })
}

/// A fresh temp file name in `dir`: [`TEMP_PREFIX`] and 64 random bits.
fn temp_path(dir: &Path, rng: &mut impl rand_core::CryptoRng) -> PathBuf {
    use std::fmt::Write;
    let mut b = [0u8; 8];
    rng.fill_bytes(&mut b);
    let mut name = String::with_capacity(TEMP_PREFIX.len() + 16);
    name.push_str(TEMP_PREFIX);
    for x in b {
        let _ = write!(name, "{x:02x}");
    }
    dir.join(name)
}

mod batch;
mod damaged;
mod follow;
mod transfer;
pub(crate) use damaged::advice as damaged_advice;
mod conflict;
pub mod space;

impl<'a, R: rand_core::CryptoRng> Exec<'a, R> {
    fn temp_path(&mut self, dir: &Path) -> PathBuf {
        temp_path(dir, &mut *self.rng)
    }

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

    fn sync_dir(&self, dir: &Path) -> Result<(), ItemError> {
        if self.fsync {
            fsync_dir(dir)
                .map_err(|e| fail(&dir.display().to_string(), ItemErrorKind::Failed, e))?;
        }
        Ok(())
    }

    /// Create the encrypted directory `path` and its parents (with name
    /// markers for hashed names). Returns its ciphertext path.
    fn ensure_remote_dir(&mut self, path: &str) -> Result<String, ItemError> {
        let mut cpath = String::new();
        if path.is_empty() {
            return Ok(cpath);
        }
        for comp in path.split('/') {
            let enc = self
                .names
                .encrypt_component(comp)
                .map_err(|e| fail(path, ItemErrorKind::Failed, e))?;
            if !cpath.is_empty() {
                cpath.push('/');
            }
            cpath.push_str(enc.stem());
            let full = self.mirror.join(&cpath);
            if !full.is_dir() {
                fs::create_dir(&full)
                    .or_else(|e| if full.is_dir() { Ok(()) } else { Err(e) })
                    .map_err(io_fail(path))?;
                if let Encoded::Hashed { ct_b32, .. } = &enc {
                    self.write_small(&full, DIR_NAME_MARKER, ct_b32.as_bytes())
                        .map_err(io_fail(path))?;
                }
                if let Some(parent) = full.parent() {
                    self.sync_dir(parent)?;
                }
            }
        }
        Ok(cpath)
    }

    /// The `MkdirRemote` operations of `paths`, together: the directories
    /// are made first, then each parent that received one is fsynced once
    /// (not once per directory), and only then are they recorded.
    pub fn mkdir_remote_batch(&mut self, paths: &[String]) -> Vec<ItemResult> {
        let fsync = self.fsync;
        self.fsync = false;
        let made: Vec<Result<String, ItemError>> =
            paths.iter().map(|p| self.ensure_remote_dir(p)).collect();
        self.fsync = fsync;
        let mut parents = std::collections::BTreeSet::new();
        for c in made.iter().flatten() {
            let mut d = self.mirror.join(c);
            // A hashed name's marker file (rare: long names) goes to disk
            // with its directory.
            let marker = d.join(DIR_NAME_MARKER);
            if fsync && marker.is_file() {
                parents.insert(d.clone());
                if let Err(e) = File::open(&marker).and_then(|f| f.sync_all()) {
                    return paths
                        .iter()
                        .map(|p| Err(fail(p, ItemErrorKind::Failed, &e)))
                        .collect();
                }
            }
            while d.pop() && d.starts_with(self.mirror) {
                if !parents.insert(d.clone()) {
                    break;
                }
            }
        }
        let mut failed: Option<ItemError> = None;
        for d in &parents {
            if let Err(e) = self.sync_dir(d) {
                failed = Some(e);
                break;
            }
        }
        paths
            .iter()
            .zip(made)
            .map(|(path, m)| {
                m?;
                if let Some(e) = &failed {
                    return Err(e.clone());
                }
                self.record_dir(path)?;
                Ok(self.activity("mkdir", path, None))
            })
            .collect()
    }

    fn write_small(&mut self, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.temp_path(dir);
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        if self.fsync {
            f.sync_all()?;
        }
        fs::rename(&tmp, dir.join(name))
    }

    fn ensure_local_dir(&self, path: &str) -> Result<(), ItemError> {
        if !path.is_empty() {
            fs::create_dir_all(self.plain.join(path)).map_err(io_fail(path))?;
        }
        Ok(())
    }

    /// Decrypt `cfull` into a temp file in `dir`. Returns (temp, hash, metadata).
    fn decrypt_to_temp(
        &mut self,
        path: &str,
        cfull: &Path,
        dir: &Path,
    ) -> Result<(PathBuf, Vec<u8>, Metadata), ItemError> {
        let f = File::open(cfull).map_err(io_fail(path))?;
        let mut keys = vec![self.identity];
        keys.extend(self.group_keys.iter());
        let mut d = crate::keys::decryptor(BufReader::with_capacity(1 << 16, f), &keys)
            .map_err(|e| crypt_fail(path, e))?;
        let meta = d.metadata().clone();
        // Room for it first: nothing is written to a disk it would fill.
        let size = meta
            .size
            .unwrap_or_else(|| fs::metadata(cfull).map_or(0, |m| m.len()));
        space::check(dir, size, &space::System)
            .map_err(|s| fail(path, ItemErrorKind::NoSpace, s))?;
        let tmp = self.temp_path(dir);
        let result = (|| -> Result<Vec<u8>, ItemError> {
            let out = File::create(&tmp).map_err(io_fail(path))?;
            let mut w = BufWriter::with_capacity(1 << 16, out);
            let mut hash = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = match d.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(crypt_fail(path, kluis_format::Error::from_io(e))),
                };
                hash.update(&buf[..n]);
                w.write_all(&buf[..n]).map_err(io_fail(path))?;
            }
            let f = w
                .into_inner()
                .map_err(|e| fail(path, ItemErrorKind::Failed, e.error()))?;
            if let Some((s, ns)) = meta.mtime
                && s >= 0
            {
                let t = std::time::UNIX_EPOCH + std::time::Duration::new(s as u64, ns);
                let _ = f.set_modified(t);
            }
            if self.fsync {
                f.sync_all().map_err(io_fail(path))?;
            }
            Ok(hash.finalize().to_vec())
        })();
        match result {
            Ok(h) => Ok((tmp, h, meta)),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    fn hash_file(path: &str, p: &Path) -> Result<Vec<u8>, ItemError> {
        let mut r = HashingReader {
            inner: BufReader::with_capacity(1 << 16, open_plain(p).map_err(io_fail(path))?),
            hash: Sha256::new(),
        };
        io::copy(&mut r, &mut io::sink()).map_err(io_fail(path))?;
        Ok(r.hash.finalize().to_vec())
    }

    /// Apply one operation.
    pub fn apply(&mut self, op: &Operation) -> ItemResult {
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
            Operation::MkdirRemote { path } => {
                self.ensure_remote_dir(path)?;
                self.record_dir(path)?;
                Ok(self.activity("mkdir", path, None))
            }
            Operation::MkdirLocal { path } => {
                self.ensure_local_dir(path)?;
                self.record_dir(path)?;
                Ok(self.activity("mkdir", path, None))
            }
            Operation::Record { path } => {
                self.record_dir(path)?;
                Ok(self.activity("recorded", path, None))
            }
            Operation::DeleteRemote { path } => self.delete_remote(path),
            Operation::TrashLocal { path } => self.trash_local(path),
            Operation::RmdirRemote { path } => {
                let cfull = self.mirror.join(self.cpath(path, Kind::Dir)?);
                let _ = fs::remove_file(cfull.join(DIR_NAME_MARKER));
                match fs::remove_dir(&cfull) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(fail(path, ItemErrorKind::Failed, e)),
                }
                self.index_remove(path)?;
                Ok(self.activity("rmdir", path, None))
            }
            Operation::RmdirLocal { path } => {
                match fs::remove_dir(self.plain.join(path)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(fail(path, ItemErrorKind::Failed, e)),
                }
                self.index_remove(path)?;
                Ok(self.activity("rmdir", path, None))
            }
            Operation::Forget { path } => {
                self.index_remove(path)?;
                Ok(self.activity("forgotten", path, None))
            }
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

    fn record_dir(&mut self, path: &str) -> Result<(), ItemError> {
        let l = stat_of(&self.plain.join(path)).map_err(io_fail(path))?;
        let cpath = self.cpath(path, Kind::Dir)?;
        self.index_put(
            path,
            &IndexEntry {
                kind: Kind::Dir,
                l_size: 0,
                l_mtime: l.mtime,
                l_ino: l.ino,
                hash: vec![],
                cpath,
                r_size: 0,
                r_mtime: 0,
                file_id: None,
            },
        )
    }

    fn changed(path: &str, what: &str) -> ItemError {
        fail(path, ItemErrorKind::ChangedDuringSync, what)
    }

    fn rename_remote(&mut self, from: &str, to: &str, kind: Kind) -> ItemResult {
        let (_, to_name) = split_parent(to);
        let to_hashed = matches!(
            self.names.encrypt_component(to_name),
            Ok(Encoded::Hashed { .. })
        );
        if kind == Kind::File && to_hashed {
            // A hashed file name needs the real name in the header: encrypt
            // anew, then delete the old ciphertext.
            let a = self.upload(to)?;
            self.delete_remote(from)?;
            return Ok(a);
        }
        let cfrom = self.mirror.join(self.cpath(from, kind)?);
        let (tparent, _) = split_parent(to);
        let cparent = self.ensure_remote_dir(tparent)?;
        let ctpath = self.cpath(to, kind)?;
        let cto = self.mirror.join(&ctpath);
        if fs::symlink_metadata(&cto).is_ok() {
            return Err(Self::changed(to, "rename target exists in the mirror"));
        }
        fs::rename(&cfrom, &cto).map_err(io_fail(from))?;
        if kind == Kind::Dir {
            let _ = fs::remove_file(cto.join(DIR_NAME_MARKER));
            if let Ok(Encoded::Hashed { ct_b32, .. }) = self.names.encrypt_component(to_name) {
                self.write_small(&cto, DIR_NAME_MARKER, ct_b32.as_bytes())
                    .map_err(io_fail(to))?;
            }
        }
        self.sync_dir(&self.mirror.join(cparent))?;
        if let Some(d) = cfrom.parent() {
            self.sync_dir(d)?;
        }
        self.rename_index_tree(from, to)?;
        Ok(self.activity("renamed", from, Some(to.to_owned())))
    }

    fn rename_local(&mut self, from: &str, to: &str) -> ItemResult {
        let lf = self.plain.join(from);
        let lt = self.plain.join(to);
        let idx = self
            .index
            .get(from)
            .map_err(|e| fail(from, ItemErrorKind::Failed, e))?;
        if !matches(&lf, idx.as_ref().map(|i| (i.l_size, i.l_mtime)))
            || fs::symlink_metadata(&lt).is_ok()
        {
            return Err(Self::changed(from, "plaintext changed before renaming"));
        }
        let (tparent, _) = split_parent(to);
        self.ensure_local_dir(tparent)?;
        fs::rename(&lf, &lt).map_err(io_fail(from))?;
        self.sync_dir(&self.plain.join(tparent))?;
        self.rename_index_tree(from, to)?;
        Ok(self.activity("renamed", from, Some(to.to_owned())))
    }

    /// The whole plaintext directory moves at once, whatever it holds: a
    /// file edited meanwhile moves with it, and the next round sees the
    /// edit at its new path (nothing is lost either way).
    fn rename_local_dir(&mut self, from: &str, to: &str) -> ItemResult {
        let lf = self.plain.join(from);
        let lt = self.plain.join(to);
        let is_dir = fs::symlink_metadata(&lf).is_ok_and(|m| m.file_type().is_dir());
        if !is_dir || fs::symlink_metadata(&lt).is_ok() {
            return Err(Self::changed(from, "plaintext changed before renaming"));
        }
        let (tparent, _) = split_parent(to);
        self.ensure_local_dir(tparent)?;
        fs::rename(&lf, &lt).map_err(io_fail(from))?;
        self.sync_dir(&self.plain.join(tparent))?;
        let (fparent, _) = split_parent(from);
        if fparent != tparent {
            self.sync_dir(&self.plain.join(fparent))?;
        }
        self.rename_index_tree(from, to)?;
        Ok(self.activity("renamed", from, Some(to.to_owned())))
    }

    /// Moves the index entries under `from` to `to`, with their new
    /// ciphertext paths and the mirror's current stat of each.
    fn rename_index_tree(&mut self, from: &str, to: &str) -> Result<(), ItemError> {
        let (names, mirror) = (self.names, self.mirror);
        self.index
            .rename_tree(from, to, |np, e| {
                if let Ok(c) = names.encrypt_path(np, e.kind == Kind::File) {
                    if let Ok(r) = stat_of(&mirror.join(&c)) {
                        e.r_mtime = r.mtime;
                        e.r_size = r.size;
                    }
                    e.cpath = c;
                }
            })
            .map_err(|e| fail(from, ItemErrorKind::Failed, e))
    }

    fn delete_remote(&mut self, path: &str) -> ItemResult {
        let idx = self
            .index
            .get(path)
            .map_err(|e| fail(path, ItemErrorKind::Failed, e))?;
        let cfull = self.mirror.join(self.cpath(path, Kind::File)?);
        if !matches(&cfull, idx.as_ref().map(|i| (i.r_size, i.r_mtime))) {
            return Err(Self::changed(path, "ciphertext changed before deleting"));
        }
        fs::remove_file(&cfull).map_err(io_fail(path))?;
        if let Some(d) = cfull.parent() {
            self.sync_dir(d)?;
        }
        self.index_remove(path)?;
        Ok(self.activity("deleted", path, None))
    }

    fn trash_local(&mut self, path: &str) -> ItemResult {
        let idx = self
            .index
            .get(path)
            .map_err(|e| fail(path, ItemErrorKind::Failed, e))?;
        let lp = self.plain.join(path);
        if !matches(&lp, idx.as_ref().map(|i| (i.l_size, i.l_mtime))) {
            return Err(Self::changed(path, "plaintext changed before trashing"));
        }
        let dest = self.trash_dest(path)?;
        fs::rename(&lp, &dest).map_err(io_fail(path))?;
        if let Some(d) = lp.parent() {
            self.sync_dir(d)?;
        }
        self.index_remove(path)?;
        Ok(self.activity("trashed", path, None))
    }
}

impl<R: rand_core::CryptoRng> Exec<'_, R> {
    /// A free path for `rel` in today's Kluis trash, its directory made.
    fn trash_dest(&self, rel: &str) -> Result<PathBuf, ItemError> {
        let day = copy_names::trash_day(self.now);
        let mut n = 1;
        let mut dest = self.plain.join(copy_names::trash_path(&day, rel, n));
        while fs::symlink_metadata(&dest).is_ok() {
            n += 1;
            dest = self.plain.join(copy_names::trash_path(&day, rel, n));
        }
        if let Some(d) = dest.parent() {
            fs::create_dir_all(d).map_err(io_fail(rel))?;
        }
        Ok(dest)
    }
}

fn unreachable_path(path: &str) -> String {
    format!("{path} (conflict)")
}

/// Remove trash days older than `days` (by folder name `YYYY-MM-DD`).
pub fn purge_trash(plain: &Path, now: i64, days: u32) {
    let Ok(rd) = fs::read_dir(plain.join(TRASH_DIR)) else {
        return;
    };
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if copy_names::is_expired_trash_day(&name, now, days) {
            let _ = fs::remove_dir_all(ent.path());
        }
    }
}

/// Remove our temp files left by a killed process (start-up only: while the
/// engine runs, temp files exist only inside an operation).
pub fn remove_temps(root: &Path) -> usize {
    let mut n = 0;
    walk_files(root, &mut |path, name| {
        if name.starts_with(TEMP_PREFIX) && fs::remove_file(path).is_ok() {
            n += 1;
        }
    });
    n
}

/// Call `f` with the path and name of every regular file under `root`,
/// recursively, skipping the trash.
pub(crate) fn walk_files(root: &Path, f: &mut dyn FnMut(&Path, &str)) {
    let Ok(rd) = fs::read_dir(root) else { return };
    for ent in rd.flatten() {
        let name = ent.file_name();
        let name = name.to_string_lossy();
        let Ok(ft) = ent.file_type() else { continue };
        if ft.is_file() {
            f(&ent.path(), &name);
        } else if ft.is_dir() && name != TRASH_DIR {
            walk_files(&ent.path(), f);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod open_plain_tests {
    use std::fs::{self, FileTimes};
    use std::io::Read as _;
    use std::time::{Duration, SystemTime};

    fn atime_after_read(p: &std::path::Path, open: impl Fn() -> fs::File) -> SystemTime {
        let t = SystemTime::UNIX_EPOCH;
        let f = fs::File::options().write(true).open(p).expect("open");
        // atime before mtime: under relatime the next read updates atime.
        f.set_times(
            FileTimes::new()
                .set_accessed(t + Duration::from_secs(1_000))
                .set_modified(t + Duration::from_secs(2_000)),
        )
        .expect("set times");
        drop(f);
        let mut s = String::new();
        open().read_to_string(&mut s).expect("read");
        fs::metadata(p).expect("stat").accessed().expect("atime")
    }

    #[test]
    fn reading_plaintext_leaves_its_access_time_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.txt");
        fs::write(&p, "hello").expect("write");
        let before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        if atime_after_read(&p, || fs::File::open(&p).expect("open")) == before {
            eprintln!("this mount never updates access times; nothing to check");
            return;
        }
        assert_eq!(
            atime_after_read(&p, || super::open_plain(&p).expect("open")),
            before
        );
    }

    #[test]
    fn a_fifo_or_symlink_in_place_of_the_file_neither_blocks_nor_is_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("was-a-file");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        // Without O_NONBLOCK this open would wait for a writer for ever.
        let f = super::open_plain(&fifo).expect("opens at once");
        assert!(!f.metadata().expect("fstat").is_file());

        let target = dir.path().join("target.txt");
        fs::write(&target, "secret elsewhere").expect("write");
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        assert!(
            super::open_plain(&link).is_err(),
            "a symlink is not followed"
        );
    }
}
