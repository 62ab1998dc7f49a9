//! The one never-clobber write path. Every file the engine writes — a
//! single upload, the new files of a batch, a download, a conflict copy, a
//! directory's name marker, the folder metadata — goes through [`commit`]:
//!
//! 1. the new bytes are written to a temp file ([`Temp`]) next to the
//!    target (or in the mirror's staging directory, for a batch);
//! 2. the temp file is fsynced *before* it gets its name: a rename that
//!    reached the disk ahead of the data would leave, after a power loss, a
//!    target of the right name and the wrong (empty or partial) content,
//!    which the next scan would take for the user's file;
//! 3. right before the rename, the caller's own check (the source did not
//!    change while it was read) and the re-check that the target is still
//!    what the index says ([`Expect`]); otherwise nothing is replaced and
//!    the item reports a change, so that the engine rescans (syncthing's
//!    `scanIfItemChanged`);
//! 4. the rename, atomic: the target is either the old file or the new one;
//! 5. the directory is fsynced, so that the rename itself survives a power
//!    loss. Only then does the caller record the new state in the index: a
//!    crash between the two leaves a state the planner recovers from (both
//!    sides "changed" with equal content), never an index entry for a file
//!    that is not on disk.
//!
//! A batch makes its temp files durable itself (a pool of fsyncs or one
//! syncfs) and fsyncs each directory once for many renames:
//! [`Durability::Batch`] leaves both fsyncs out and returns the directories
//! the rename touched, for [`sync_dirs`].

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::scan::{Stat, TEMP_PREFIX, TRASH_DIR};

/// How durable a write is made. Chosen once per pair from its
/// configuration (or per call, for the batch path); never a flag that is
/// switched off and back on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// No fsync at all (benchmarks only: a power loss may lose recent
    /// writes).
    Off,
    /// fsync the temp file before its rename and the directory after it.
    Each,
    /// The caller made the temp file durable already (a batch's fsync pool
    /// or syncfs) and fsyncs the directories of many renames once each
    /// ([`sync_dirs`]), or a syncfs covers them.
    Batch,
}

impl Durability {
    /// [`Durability::Each`] with fsync on, else [`Durability::Off`].
    pub fn from_fsync(fsync: bool) -> Self {
        if fsync {
            Durability::Each
        } else {
            Durability::Off
        }
    }
}

/// What the target must be right before the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Absent; the rename never replaces a file that appeared meanwhile
    /// (atomically where the file system allows, see [`rename_new`]).
    Absent,
    /// What the index recorded (size, mtime), or absent (deleted meanwhile,
    /// nothing to lose); `None`: absent only.
    Unchanged(Option<(u64, i64)>),
    /// Present with exactly this (size, mtime).
    Exactly((u64, i64)),
    /// Anything: only for bytes that are the same whoever writes them (a
    /// directory's name marker).
    Any,
}

/// Why [`commit`] wrote nothing.
#[derive(Debug)]
pub enum WriteError {
    /// The caller's check failed: what was read changed meanwhile.
    SourceChanged,
    /// The target is no longer what [`Expect`] says: nothing was replaced.
    TargetChanged,
    /// A system call failed.
    Io(io::Error),
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        WriteError::Io(e)
    }
}

/// A temp file, removed when dropped unless [`commit`] gave it its name.
#[derive(Debug)]
pub struct Temp {
    path: PathBuf,
    file: Option<File>,
}

impl Temp {
    /// A new temp file in `dir`: [`TEMP_PREFIX`] and 64 random bits.
    pub fn create(dir: &Path, rng: &mut impl rand_core::CryptoRng) -> io::Result<Temp> {
        Temp::create_at(temp_path(dir, rng))
    }

    /// A new temp file at `path` (a name of [`TEMP_PREFIX`], so that a
    /// killed run's leftovers are removed at the next start).
    pub fn create_at(path: PathBuf) -> io::Result<Temp> {
        let file = File::create(&path)?;
        Ok(Temp {
            path,
            file: Some(file),
        })
    }

    /// A temp file that `file` (open, written) already is at `path`.
    pub fn adopt(path: PathBuf, file: Option<File>) -> Temp {
        Temp { path, file }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, for writing.
    pub fn file(&mut self) -> io::Result<&mut File> {
        match &mut self.file {
            Some(f) => Ok(f),
            None => Err(io::Error::other("the temp file is closed")),
        }
    }

    /// Replace the open file (after a buffered writer gave it back).
    pub fn set_file(&mut self, file: File) {
        self.file = Some(file);
    }

    /// Take the open file out (a batch fsyncs it on another thread).
    pub fn take_file(&mut self) -> Option<File> {
        self.file.take()
    }

    /// Its size and mtime as written; the rename keeps both.
    pub fn stat(&self) -> io::Result<Stat> {
        match &self.file {
            Some(f) => f.metadata(),
            None => fs::symlink_metadata(&self.path),
        }
        .map(|m| Stat::from_metadata(&m))
    }

    /// Leave the file where it is (the caller removes it, or a later start).
    fn keep(mut self) {
        self.file = None;
        self.path = PathBuf::new();
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A fresh temp file name in `dir`: [`TEMP_PREFIX`] and 64 random bits.
pub fn temp_path(dir: &Path, rng: &mut impl rand_core::CryptoRng) -> PathBuf {
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

/// Give `temp` the name `target`, never clobbering (see the module's
/// steps). `source_unchanged` runs right before the target's re-check and
/// the rename: false fails with [`WriteError::SourceChanged`]. On any failure the
/// temp file is removed and the target is left as it was. Returns the
/// directories the rename touched that still need an fsync
/// ([`Durability::Batch`] only; empty otherwise).
pub fn commit(
    mut temp: Temp,
    target: &Path,
    expect: Expect,
    durability: Durability,
    source_unchanged: impl FnOnce() -> bool,
) -> Result<Vec<PathBuf>, WriteError> {
    // 2. The data first: see the module's documentation.
    if durability == Durability::Each
        && let Some(f) = &temp.file
    {
        f.sync_all()?;
    }
    temp.file = None;
    // 3. The last look before replacing anything.
    if !source_unchanged() {
        return Err(WriteError::SourceChanged);
    }
    // 4. The rename.
    match expect {
        Expect::Absent => {
            if !rename_new(&temp.path, target)? {
                return Err(WriteError::TargetChanged);
            }
        }
        Expect::Unchanged(was) => {
            if !(matches(target, was) || (was.is_some() && matches(target, None))) {
                return Err(WriteError::TargetChanged);
            }
            fs::rename(&temp.path, target)?;
        }
        Expect::Exactly(was) => {
            if !matches(target, Some(was)) {
                return Err(WriteError::TargetChanged);
            }
            fs::rename(&temp.path, target)?;
        }
        Expect::Any => fs::rename(&temp.path, target)?,
    }
    let from_dir = temp.path.parent().map(Path::to_path_buf);
    temp.keep();
    let to_dir = target.parent().map(Path::to_path_buf);
    // 5. The rename itself, durable before the index records it.
    match durability {
        Durability::Off => Ok(Vec::new()),
        Durability::Each => {
            if let Some(d) = &to_dir {
                fsync_dir(d)?;
            }
            if from_dir != to_dir
                && let Some(d) = &from_dir
            {
                fsync_dir(d)?;
            }
            Ok(Vec::new())
        }
        Durability::Batch => {
            let mut dirs: Vec<PathBuf> = to_dir.into_iter().collect();
            if let Some(d) = from_dir
                && !dirs.contains(&d)
            {
                dirs.push(d);
            }
            Ok(dirs)
        }
    }
}

/// Write `bytes` as `target` through [`commit`]; the temp file is
/// `temp_name` in `dir`, the target's directory.
pub fn write_bytes(
    dir: &Path,
    temp_name: &str,
    target: &Path,
    bytes: &[u8],
    expect: Expect,
    durability: Durability,
) -> Result<(), WriteError> {
    let mut temp = Temp::create_at(dir.join(temp_name))?;
    io::Write::write_all(temp.file()?, bytes)?;
    commit(temp, target, expect, durability, || true)?;
    Ok(())
}

/// fsync each of `dirs` once, with [`Durability::Each`] (the end of a batch:
/// one directory fsync commits the journal with every rename into it).
pub fn sync_dirs<'d>(
    dirs: impl IntoIterator<Item = &'d PathBuf>,
    durability: Durability,
) -> Result<(), (PathBuf, io::Error)> {
    if durability != Durability::Each {
        return Ok(());
    }
    for d in dirs {
        fsync_dir(d).map_err(|e| (d.clone(), e))?;
    }
    Ok(())
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
pub fn matches(p: &Path, expected: Option<(u64, i64)>) -> bool {
    match (fs::symlink_metadata(p), expected) {
        (Err(e), None) => e.kind() == io::ErrorKind::NotFound,
        (Ok(m), Some((size, mtime))) => {
            let s = Stat::from_metadata(&m);
            s.size == size && s.mtime == mtime
        }
        _ => false,
    }
}

/// Rename `from` to `to` unless `to` exists: `Ok(false)` if it does.
/// Atomic with renameat2(RENAME_NOREPLACE) where the file system has it;
/// elsewhere a check right before the rename.
pub fn rename_new(from: &Path, to: &Path) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(true),
            Err(rustix::io::Errno::EXIST) => return Ok(false),
            Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !matches(to, None) {
        return Ok(false);
    }
    fs::rename(from, to).map(|()| true)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_in(dir: &Path, name: &str, bytes: &[u8]) -> Temp {
        let mut t = Temp::create_at(dir.join(format!("{TEMP_PREFIX}{name}"))).expect("temp");
        io::Write::write_all(t.file().expect("open"), bytes).expect("write");
        t
    }

    #[test]
    fn a_target_that_changed_is_never_replaced_and_the_temp_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("a");
        fs::write(&target, "theirs").expect("write");
        let t = temp_in(dir.path(), "1", b"ours");
        let tmp = t.path().to_owned();
        let r = commit(t, &target, Expect::Absent, Durability::Each, || true);
        assert!(matches!(r, Err(WriteError::TargetChanged)));
        assert_eq!(fs::read(&target).expect("read"), b"theirs");
        assert!(!tmp.exists());
        let t = temp_in(dir.path(), "2", b"ours");
        let r = commit(
            t,
            &target,
            Expect::Unchanged(Some((1, 1))),
            Durability::Each,
            || true,
        );
        assert!(matches!(r, Err(WriteError::TargetChanged)));
        assert_eq!(fs::read(&target).expect("read"), b"theirs");
    }

    #[test]
    fn a_source_that_changed_stops_the_rename() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("a");
        let t = temp_in(dir.path(), "1", b"ours");
        let r = commit(t, &target, Expect::Absent, Durability::Off, || false);
        assert!(matches!(r, Err(WriteError::SourceChanged)));
        assert!(!target.exists());
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn an_unchanged_or_absent_target_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("a");
        fs::write(&target, "old").expect("write");
        let s = Stat::from_metadata(&fs::metadata(&target).expect("stat"));
        let t = temp_in(dir.path(), "1", b"new");
        commit(
            t,
            &target,
            Expect::Exactly((s.size, s.mtime)),
            Durability::Each,
            || true,
        )
        .expect("commit");
        assert_eq!(fs::read(&target).expect("read"), b"new");
        let b = dir.path().join("b");
        let t = temp_in(dir.path(), "2", b"new");
        commit(
            t,
            &b,
            Expect::Unchanged(Some((9, 9))),
            Durability::Off,
            || true,
        )
        .expect("absent is fine");
        let staged = dir.path().join("staging");
        fs::create_dir(&staged).expect("mkdir");
        let t = temp_in(&staged, "3", b"new");
        let c = dir.path().join("c");
        let dirs = commit(t, &c, Expect::Absent, Durability::Batch, || true).expect("commit");
        assert_eq!(dirs, vec![dir.path().to_owned(), staged]);
    }
}
