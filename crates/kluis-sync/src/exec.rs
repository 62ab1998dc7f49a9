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

use crate::error::{ItemError, ItemErrorKind};
use crate::index::{Index, IndexEntry};
use crate::names::{self, DIR_NAME_MARKER, Encoded, NameCipher};
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

/// `YYYY-MM-DD HHMMSS` (UTC) for a time in ns; no characters Windows forbids.
pub fn format_date(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}{:02}{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
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

/// New files per batch: the unit of one index transaction, and of the work
/// a crash can make the next run redo.
const BATCH_FILES: usize = 1024;
/// The last chunk of a batch has at most this many files: once it is
/// encrypted, its syncfs and renames and one more syncfs are all that is
/// left, with the cores idle, so the smaller it is the sooner a batch ends.
const LAST_CHUNK_FILES: usize = 256;

/// A batch of `n` new files in chunks of at most [`BATCH_FILES`], of even
/// sizes but for the last, of [`LAST_CHUNK_FILES`] or fewer.
fn chunk_ranges(n: usize) -> Vec<std::ops::Range<usize>> {
    let tail = if n <= BATCH_FILES {
        0
    } else {
        match n % BATCH_FILES {
            r @ 1..=LAST_CHUNK_FILES => r,
            _ => LAST_CHUNK_FILES,
        }
    };
    let body = n - tail;
    let k = body.div_ceil(BATCH_FILES);
    let mut out: Vec<_> = (0..k).map(|i| body * i / k..body * (i + 1) / k).collect();
    if tail > 0 {
        out.push(body..n);
    }
    out
}

/// Threads that only wait in fsync(2). Concurrent fsyncs share journal
/// commits (ext4's jbd2 and others batch them), so overlapping many costs
/// about what one costs; they use no CPU while they wait.
const FSYNC_THREADS: usize = 8;

/// From this many new files on, a batch is made durable with one syncfs(2)
/// (Linux) rather than a fsync per file. A smaller batch is cheaper with
/// its few fsyncs, which do not wait for other programs' writes.
const SYNCFS_MIN_FILES: usize = 64;

/// Flush everything written to the file system that holds `dir`, and wait
/// for it (syncfs(2), which reports writeback errors since Linux 5.8).
#[cfg(target_os = "linux")]
fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let d = File::open(dir)?;
    rustix::fs::syncfs(&d).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn sync_filesystem(_dir: &Path) -> io::Result<()> {
    Err(io::Error::other("syncfs is only used on Linux"))
}

/// How a syncfs went, shared by every chunk whose files it covered.
type Synced = Result<(), Arc<io::Error>>;

/// A chunk that reached the index's door: renamed (or failed) and, with a
/// barrier, covered by the syncfs that went as `synced`.
struct Settled {
    seq: usize,
    renamed: Renamed,
    synced: Option<Synced>,
}

/// Chunks sent to be made durable and not yet recorded, at most: this
/// bounds the temp files waiting in the staging directory.
const CHUNKS_IN_FLIGHT: usize = 6;

/// The durability stage of [`Exec::upload_new_batch`], on a thread of its
/// own. It takes the encrypted chunks in order. With `barrier`, a syncfs
/// for each makes its temp files durable; it then goes to a rename thread.
/// A chunk's renames count as durable only once a syncfs that *started*
/// after they ended has returned; the chunk is then sent on to be
/// recorded. The syncfs of one chunk thus runs while the chunk before is
/// renamed, and after the last chunk one more syncfs covers what is left.
/// Without `barrier` a chunk goes on as soon as it is renamed.
fn durability_stage(
    mirror: &Path,
    paths: &[String],
    barrier: bool,
    chunks: mpsc::Receiver<(usize, Written)>,
    settled: mpsc::Sender<Settled>,
) {
    // Renamed and not yet covered by a syncfs (with `barrier`).
    let uncovered: Mutex<Vec<(usize, Renamed)>> = Mutex::new(Vec::new());
    let take_uncovered =
        || std::mem::take(&mut *uncovered.lock().unwrap_or_else(|e| e.into_inner()));
    std::thread::scope(|scope| {
        let (to_rename, renames) = mpsc::channel::<(usize, Written)>();
        let renamer = {
            let (settled, uncovered) = (settled.clone(), &uncovered);
            scope.spawn(move || {
                for (seq, written) in renames {
                    let renamed = rename_temps(mirror, paths, written);
                    if barrier {
                        uncovered
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((seq, renamed));
                    } else if settled
                        .send(Settled {
                            seq,
                            renamed,
                            synced: None,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            })
        };
        // A syncfs; the renames that had ended when it started are surely
        // in it, and go on to be recorded.
        let sync_and_settle = || {
            let covered = take_uncovered();
            let synced = sync_filesystem(mirror).map_err(Arc::new);
            for (seq, renamed) in covered {
                let synced = Some(synced.clone());
                let _ = settled.send(Settled {
                    seq,
                    renamed,
                    synced,
                });
            }
            synced
        };
        for (seq, mut written) in chunks {
            if barrier {
                let synced = sync_and_settle();
                if let Err(e) = &synced {
                    // Not known to be on disk: none may be renamed.
                    for (job, r) in written.jobs.iter().zip(written.encrypted.iter_mut()) {
                        if let Some(r @ Ok(_)) = r {
                            *r = Err(fail(&paths[job.idx], ItemErrorKind::Failed, &**e));
                        }
                    }
                }
            }
            if to_rename.send((seq, written)).is_err() {
                // The rename thread died: this chunk is never settled, and
                // its paths fail for it.
                break;
            }
        }
        drop(to_rename);
        let _ = renamer.join();
        let left = !uncovered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if left {
            // How it went is reported with each chunk it covered.
            let _ = sync_and_settle();
        }
    });
}

/// The never-clobber checks and the renames of a written chunk, on one
/// thread per core (each is a few system calls that wait on directory
/// locks, not CPU work). Except: renames out of the staging directory,
/// while a next chunk is encrypted, run on one thread. The kernel
/// serialises renames between directories with a lock per file system,
/// and a second thread would only spin on it, on a core the encryption
/// needs.
fn rename_temps(mirror: &Path, paths: &[String], written: Written) -> Renamed {
    let Written {
        jobs,
        encrypted,
        early,
        last,
    } = written;
    let staged = jobs
        .first()
        .is_some_and(|j| j.tmp.parent() == Some(&mirror.join(scan::STAGING_DIR)));
    let threads = if staged && !last {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
    };
    let per = jobs.len().div_ceil(threads).max(1);
    let mut all = Renamed {
        results: early,
        dirs: std::collections::BTreeSet::new(),
        done: Vec::with_capacity(jobs.len()),
    };
    let mut work: Vec<(BatchJob, Option<Encrypted1>)> = jobs.into_iter().zip(encrypted).collect();
    let parts: Vec<Renamed> = std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .chunks_mut(per)
            .map(|part| scope.spawn(move || rename_part(mirror, paths, part)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| Renamed {
                    results: Vec::new(),
                    dirs: Default::default(),
                    done: Vec::new(),
                })
            })
            .collect()
    });
    for p in parts {
        all.results.extend(p.results);
        all.dirs.extend(p.dirs);
        all.done.extend(p.done);
    }
    // A part whose thread died reported nothing: those paths fail (their
    // temp files, if any, are removed at the next start).
    let mut seen = vec![false; paths.len()];
    for (idx, _) in &all.results {
        seen[*idx] = true;
    }
    for (idx, _) in &all.done {
        seen[*idx] = true;
    }
    for (job, _) in &work {
        if !seen[job.idx] {
            all.results.push((
                job.idx,
                Err(fail(
                    &paths[job.idx],
                    ItemErrorKind::Failed,
                    "rename thread failed",
                )),
            ));
        }
    }
    all
}

/// [`rename_temps`] for one part of a chunk.
fn rename_part(
    mirror: &Path,
    paths: &[String],
    part: &mut [(BatchJob, Option<Encrypted1>)],
) -> Renamed {
    let mut out = Renamed {
        results: Vec::new(),
        dirs: std::collections::BTreeSet::new(),
        done: Vec::with_capacity(part.len()),
    };
    for (job, enc) in part.iter_mut() {
        let (idx, path) = (job.idx, &paths[job.idx]);
        let cleanup = |e| {
            let _ = fs::remove_file(&job.tmp);
            e
        };
        let (hash, file_id, r) = match enc.take() {
            Some(Ok(e)) => e,
            Some(Err(e)) => {
                out.results.push((idx, Err(cleanup(e))));
                continue;
            }
            None => {
                let e = fail(path, ItemErrorKind::Failed, "encryption thread failed");
                out.results.push((idx, Err(cleanup(e))));
                continue;
            }
        };
        let cfull = mirror.join(&job.cpath);
        if !matches(&job.lp, Some((job.s0.size, job.s0.mtime))) {
            let e = fail(
                path,
                ItemErrorKind::ChangedDuringSync,
                "plaintext changed while encrypting",
            );
            out.results.push((idx, Err(cleanup(e))));
            continue;
        }
        match rename_new(&job.tmp, &cfull) {
            Ok(true) => {}
            Ok(false) => {
                let e = fail(
                    path,
                    ItemErrorKind::ChangedDuringSync,
                    "ciphertext appeared before creating it",
                );
                out.results.push((idx, Err(cleanup(e))));
                continue;
            }
            Err(e) => {
                out.results
                    .push((idx, Err(cleanup(fail(path, ItemErrorKind::Failed, e)))));
                continue;
            }
        }
        // The rename's both ends.
        for d in [cfull.parent(), job.tmp.parent()].into_iter().flatten() {
            if !out.dirs.contains(d) {
                out.dirs.insert(d.to_path_buf());
            }
        }
        out.done.push((
            idx,
            IndexEntry {
                kind: Kind::File,
                l_size: job.s0.size,
                l_mtime: job.s0.mtime,
                l_ino: job.s0.ino,
                hash,
                cpath: std::mem::take(&mut job.cpath),
                r_size: r.size,
                r_mtime: r.mtime,
                file_id: Some(file_id),
            },
        ));
    }
    out
}

/// Rename `from` to `to` unless `to` exists: `Ok(false)` if it does.
/// Atomic with renameat2(RENAME_NOREPLACE) where the file system has it;
/// elsewhere a check right before the rename.
fn rename_new(from: &Path, to: &Path) -> io::Result<bool> {
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

/// One new file of a batch.
struct BatchJob {
    idx: usize,
    lp: PathBuf,
    tmp: PathBuf,
    cpath: String,
    s0: Stat,
}

/// Per job: (plaintext hash, file id, stat of the written temp file).
type Encrypted1 = Result<(Vec<u8>, [u8; 16], Stat), ItemError>;

/// A chunk of new files in temp files.
struct Written {
    jobs: Vec<BatchJob>,
    /// By position in `jobs`.
    encrypted: Vec<Option<Encrypted1>>,
    /// Paths (by index) that failed before encryption.
    early: Vec<(usize, ItemResult)>,
    /// The last chunk of its batch: nothing is encrypted beside its renames.
    last: bool,
}

/// A chunk after its renames, before its index entries.
struct Renamed {
    /// Paths (by index) that are done, failed.
    results: Vec<(usize, ItemResult)>,
    /// Directories that received a file.
    dirs: std::collections::BTreeSet<PathBuf>,
    /// Renamed into place, to record once durable.
    done: Vec<(usize, IndexEntry)>,
}

/// What encrypting a chunk takes from the engine (see `Exec::chunk_crypto`),
/// so that it can run on a thread of its own.
struct ChunkCrypto<'a> {
    /// One per encryption thread, for its ChaCha20 CSPRNG; wiped once the
    /// chunk is encrypted.
    seeds: Zeroizing<Vec<[u8; 32]>>,
    batch: Option<kluis_format::Batch>,
    recipients: &'a [Recipient],
    /// fsync each file as it is finished.
    fsync: bool,
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

/// Encrypt `jobs` (of `chunk`, whose first path has index `offset`) into
/// their temp files on one thread per seed; with `crypto.fsync`, a pool of
/// [`FSYNC_THREADS`] fsyncs each file as it is finished. Results by
/// position in `jobs`.
fn encrypt_chunk(
    crypto: ChunkCrypto<'_>,
    chunk: &[String],
    offset: usize,
    jobs: &[BatchJob],
) -> Vec<Option<Encrypted1>> {
    use rand_core::SeedableRng;
    let ChunkCrypto {
        seeds,
        batch,
        recipients,
        fsync,
    } = crypto;
    let threads = seeds.len();
    let to = match &batch {
        Some(b) => crate::crypt::To::Batch(b),
        None => crate::crypt::To::Recipients(recipients),
    };
    let path_of = |job: &BatchJob| &chunk[job.idx - offset];
    let out: Mutex<Vec<Option<Encrypted1>>> = Mutex::new(vec![None; jobs.len()]);
    let put = |j: usize, r: Encrypted1| {
        out.lock().unwrap_or_else(|e| e.into_inner())[j] = Some(r);
    };
    // Bounded: at most this many finished files wait (open) for fsync.
    let (tx, rx) = mpsc::sync_channel::<(usize, Encrypted)>(64);
    let rx = Mutex::new(rx);
    std::thread::scope(|scope| {
        if fsync {
            for _ in 0..FSYNC_THREADS.min(jobs.len()) {
                let (rx, put) = (&rx, &put);
                scope.spawn(move || {
                    loop {
                        let next = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((j, e)) = next else { break };
                        let r = match e.file.sync_all() {
                            Ok(()) => Ok((e.hash, e.file_id, e.stat)),
                            Err(err) => Err(fail(path_of(&jobs[j]), ItemErrorKind::Failed, err)),
                        };
                        put(j, r);
                    }
                });
            }
        }
        for (t, seed) in seeds.iter().enumerate() {
            let (tx, put) = (tx.clone(), &put);
            scope.spawn(move || {
                let mut rng = rand_chacha::ChaCha20Rng::from_seed(*seed);
                for (j, job) in jobs.iter().enumerate().skip(t).step_by(threads) {
                    let path = path_of(job);
                    match encrypt_to_temp(&job.lp, path, &job.s0, to, &job.tmp, &mut rng) {
                        Ok(e) if fsync => {
                            if let Err(mpsc::SendError((j, _))) = tx.send((j, e)) {
                                put(
                                    j,
                                    Err(fail(path, ItemErrorKind::Failed, "fsync threads ended")),
                                );
                            }
                        }
                        Ok(e) => put(j, Ok((e.hash, e.file_id, e.stat))),
                        Err(e) => put(j, Err(e)),
                    }
                }
            });
        }
        // The pool ends once every encryption thread has dropped its sender.
        drop(tx);
    });
    out.into_inner().unwrap_or_else(|e| e.into_inner())
}

impl<'a, R: rand_core::CryptoRng> Exec<'a, R> {
    /// Encrypt many *new* files (no index entry), [`BATCH_FILES`] at a time.
    /// Encryption runs on one thread per core (each with a ChaCha20 CSPRNG
    /// seeded from ours) and shares one HPKE encapsulation per recipient
    /// (FORMAT.md §4.8). Each encrypted chunk then goes to the durability
    /// stage ([`durability_stage`]) for the never-clobber checks of
    /// [`Exec::apply`] and the renames, while the next chunk is encrypted;
    /// only once those renames are durable are the chunk's index entries
    /// written, in one transaction — a ciphertext that a crash or power
    /// loss could still take away is never recorded as synced.
    ///
    /// Durability, with fsync on: on Linux, for [`SYNCFS_MIN_FILES`] files
    /// or more, a chunk waits for one syncfs(2), which makes its temp files
    /// durable before any is renamed. The same syncfs makes durable the
    /// renames that had ended when it started; their chunks are recorded
    /// right after it, and one more syncfs follows the last renames.
    /// Otherwise a pool of [`FSYNC_THREADS`] fsyncs every finished temp
    /// file, so the CPU never waits for the disk, and each chunk's touched
    /// directories are fsynced after its renames.
    ///
    /// `scanned[i]` is what the scan saw of `paths[i]`, if the caller has it
    /// (else it is looked up now). It is what the header's metadata and the
    /// index record, and what the file must still match right before its
    /// rename: a change after the scan fails the file as changed during
    /// the sync, as a change after a fresh stat would.
    pub fn upload_new_batch(
        &mut self,
        paths: &[String],
        scanned: &[Option<Stat>],
    ) -> Vec<ItemResult> {
        let barrier = self.fsync && paths.len() >= SYNCFS_MIN_FILES && cfg!(target_os = "linux");
        let mirror = self.mirror;
        let ranges = chunk_ranges(paths.len());
        let chunks = ranges.len();
        let mut results: Vec<(usize, ItemResult)> = Vec::with_capacity(paths.len());
        let mut recorded = vec![false; chunks];
        let (to_durable, durable_rx) = mpsc::channel::<(usize, Written)>();
        let (settled_tx, settled) = mpsc::channel::<Settled>();
        std::thread::scope(|scope| {
            let stage = scope
                .spawn(move || durability_stage(mirror, paths, barrier, durable_rx, settled_tx));
            let mut record = |this: &mut Self, s: Settled| {
                recorded[s.seq] = true;
                let synced = s
                    .synced
                    .as_ref()
                    .map(|r| r.as_ref().map(|_| ()).map_err(|e| &**e));
                results.extend(this.record_batch(paths, s.renamed, synced));
            };
            let mut in_flight = 0;
            for (seq, range) in ranges.iter().enumerate() {
                let (chunk, offset) = (&paths[range.clone()], range.start);
                let (jobs, early) = self.prepare_chunk(chunk, offset, scanned, barrier);
                let crypto = self.chunk_crypto(jobs.len(), !barrier);
                // The chunk is encrypted on threads of its own while this
                // one records what has become durable.
                let encrypted = std::thread::scope(|inner| {
                    let enc = inner.spawn(|| encrypt_chunk(crypto, chunk, offset, &jobs));
                    while let Ok(s) = settled.try_recv() {
                        record(self, s);
                        in_flight -= 1;
                    }
                    // Should it have died, no file of the chunk was
                    // finished: each fails, and its temp file is removed.
                    enc.join().unwrap_or_else(|_| vec![None; jobs.len()])
                });
                let written = Written {
                    jobs,
                    encrypted,
                    early,
                    last: seq + 1 == chunks,
                };
                if let Err(mpsc::SendError((_, written))) = to_durable.send((seq, written)) {
                    // The durability thread died: nothing of this chunk
                    // is renamed (its paths fail below).
                    for job in &written.jobs {
                        let _ = fs::remove_file(&job.tmp);
                    }
                    break;
                }
                in_flight += 1;
                while in_flight > CHUNKS_IN_FLIGHT {
                    let Ok(s) = settled.recv() else { break };
                    record(self, s);
                    in_flight -= 1;
                }
            }
            drop(to_durable);
            // Until the durability thread and its rename thread have ended.
            for s in settled.iter() {
                record(self, s);
            }
            // Should it have died, what it never settled fails below.
            let _ = stage.join();
        });
        // A chunk that a dead thread never settled: each of its paths fails
        // (its temp files, if any, are removed at the next start).
        for (range, done) in ranges.into_iter().zip(recorded) {
            if !done {
                results.extend(range.map(|i| {
                    let e = fail(&paths[i], ItemErrorKind::Failed, "the rename thread failed");
                    (i, Err(e))
                }));
            }
        }
        results.sort_by_key(|(idx, _)| *idx);
        results.into_iter().map(|(_, r)| r).collect()
    }

    /// Prepare `chunk` (whose first path is `paths[offset]`) for
    /// [`encrypt_chunk`]: its mirror directories, ciphertext names and temp
    /// paths; and the paths that failed already.
    fn prepare_chunk(
        &mut self,
        chunk: &[String],
        offset: usize,
        scanned: &[Option<Stat>],
        barrier: bool,
    ) -> (Vec<BatchJob>, Vec<(usize, ItemResult)>) {
        let mut early: Vec<(usize, ItemResult)> = Vec::new();
        let mut jobs: Vec<BatchJob> = Vec::with_capacity(chunk.len());
        let mut dirs_done: std::collections::HashMap<&str, String> =
            std::collections::HashMap::new();
        // Temp files go to the staging directory when it can be had, else
        // next to their targets.
        let staging = self.mirror.join(scan::STAGING_DIR);
        let staged = staging.is_dir() || fs::create_dir(&staging).is_ok();
        // The directories made here are covered by the syncfs that follows,
        // before anything is renamed into them: no fsync each.
        let fsync = self.fsync;
        self.fsync = fsync && !barrier;
        // Temp names from a CSPRNG seeded from ours: a thousand reads of
        // the system's would be a thousand system calls here, before the
        // chunk's encryption can start.
        let mut names_rng = {
            use rand_core::SeedableRng;
            let mut seed = Zeroizing::new([0u8; 32]);
            self.rng.fill_bytes(&mut seed[..]);
            rand_chacha::ChaCha20Rng::from_seed(*seed)
        };
        for (i, path) in chunk.iter().enumerate() {
            let idx = offset + i;
            let prep = (|| {
                let lp = self.plain.join(path);
                let s0 = match scanned.get(idx) {
                    Some(Some(s)) => *s,
                    _ => stat_of(&lp).map_err(io_fail(path))?,
                };
                if s0.kind != Kind::File {
                    return Err(Self::changed(path, "no longer a file"));
                }
                let (parent, _) = split_parent(path);
                let cparent = match dirs_done.get(parent) {
                    Some(c) => c.clone(),
                    None => {
                        let c = self.ensure_remote_dir(parent)?;
                        dirs_done.insert(parent, c.clone());
                        c
                    }
                };
                let cpath = self.cpath(path, Kind::File)?;
                let tmp = if staged {
                    temp_path(&staging, &mut names_rng)
                } else {
                    temp_path(&self.mirror.join(cparent), &mut names_rng)
                };
                Ok(BatchJob {
                    idx,
                    lp,
                    tmp,
                    cpath,
                    s0,
                })
            })();
            match prep {
                Ok(job) => jobs.push(job),
                Err(e) => early.push((idx, Err(e))),
            }
        }
        self.fsync = fsync;
        (jobs, early)
    }

    /// Make a renamed chunk durable and record it in the index; results by
    /// index in `paths`. `after_syncfs`: how the syncfs that was to make the
    /// renames durable went, or `None` to fsync the directories here.
    fn record_batch(
        &mut self,
        paths: &[String],
        renamed: Renamed,
        after_syncfs: Option<Result<(), &io::Error>>,
    ) -> Vec<(usize, ItemResult)> {
        let Renamed {
            mut results,
            dirs,
            mut done,
        } = renamed;
        let mut unsynced = |done: &mut Vec<(usize, IndexEntry)>, e: ItemError| {
            for (idx, _) in done.drain(..) {
                results.push((idx, Err(e.clone())));
            }
        };
        if let Some(Err(e)) = after_syncfs {
            let e = fail(&self.mirror.display().to_string(), ItemErrorKind::Failed, e);
            unsynced(&mut done, e);
        }
        // One directory fsync commits the journal with every rename above;
        // the others then return at once. A syncfs has done it already.
        if after_syncfs.is_none() {
            for d in &dirs {
                if done.is_empty() {
                    break;
                }
                if let Err(e) = self.sync_dir(d) {
                    unsynced(&mut done, e);
                }
            }
        }
        let (idxs, entries): (Vec<usize>, Vec<(String, IndexEntry)>) = done
            .into_iter()
            .map(|(idx, e)| (idx, (paths[idx].clone(), e)))
            .unzip();
        match self.index.put_many(&entries) {
            Ok(()) => {
                for (idx, (_, e)) in idxs.into_iter().zip(entries) {
                    let a = Activity {
                        ciphertext: Some(WrittenCiphertext {
                            cpath: e.cpath,
                            size: e.r_size,
                            mtime: e.r_mtime,
                        }),
                        ..self.activity("encrypted", &paths[idx], None)
                    };
                    results.push((idx, Ok(a)));
                }
            }
            Err(e) => {
                for idx in idxs {
                    results.push((idx, Err(fail(&paths[idx], ItemErrorKind::Failed, &e))));
                }
            }
        }
        results
    }

    /// What [`encrypt_chunk`] needs for `jobs` files from this engine's
    /// state: a seed per encryption thread, the batch's encapsulations,
    /// the recipients, and with `fsync_each` whether to fsync each file.
    fn chunk_crypto(&mut self, jobs: usize, fsync_each: bool) -> ChunkCrypto<'a> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
            .min(jobs.max(1));
        let mut seeds = Zeroizing::new(vec![[0u8; 32]; threads]);
        for s in seeds.iter_mut() {
            self.rng.fill_bytes(s);
        }
        let recipients = self.recipients;
        // One encapsulation per recipient for the whole batch (FORMAT.md
        // §4.8) rather than one per file: for small files it is most of the
        // work. Should it fail, each file tries on its own and reports why.
        let batch = (jobs > 1)
            .then(|| {
                kluis_format::Batch::new(recipients, KemChoice::default(), &mut *self.rng).ok()
            })
            .flatten();
        ChunkCrypto {
            seeds,
            batch,
            recipients,
            fsync: self.fsync && fsync_each,
        }
    }

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
            Operation::AdoptSyncConflict { cpath, of } => self.adopt(cpath, of),
            Operation::RenameRemote { from, to, kind } => self.rename_remote(from, to, *kind),
            Operation::RenameLocal { from, to } => self.rename_local(from, to),
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

    fn upload(&mut self, path: &str) -> ItemResult {
        let lp = self.plain.join(path);
        let s0 = stat_of(&lp).map_err(io_fail(path))?;
        if s0.kind != Kind::File {
            return Err(Self::changed(path, "no longer a file"));
        }
        let idx = self
            .index
            .get(path)
            .map_err(|e| fail(path, ItemErrorKind::Failed, e))?;
        let (parent, _) = split_parent(path);
        let cparent = self.ensure_remote_dir(parent)?;
        let cpath = self.cpath(path, Kind::File)?;
        let cfull = self.mirror.join(&cpath);
        let cdir = self.mirror.join(&cparent);
        let tmp = self.temp_path(&cdir);
        let cleanup = |e| {
            let _ = fs::remove_file(&tmp);
            e
        };
        let enc = encrypt_to_temp(
            &lp,
            path,
            &s0,
            crate::crypt::To::Recipients(self.recipients),
            &tmp,
            self.rng,
        )
        .map_err(cleanup)?;
        if self.fsync {
            enc.file
                .sync_all()
                .map_err(|e| cleanup(fail(path, ItemErrorKind::Failed, e)))?;
        }
        drop(enc.file);
        let (hash, file_id) = (enc.hash, enc.file_id);
        // Never clobber: the plaintext must not have changed while we read
        // it, and the ciphertext must still be what the index says.
        if !matches(&lp, Some((s0.size, s0.mtime))) {
            return Err(cleanup(Self::changed(
                path,
                "plaintext changed while encrypting",
            )));
        }
        let expect_remote = idx.as_ref().map(|i| (i.r_size, i.r_mtime));
        if !(matches(&cfull, expect_remote) || (expect_remote.is_some() && matches(&cfull, None))) {
            return Err(cleanup(Self::changed(
                path,
                "ciphertext changed before replacing it",
            )));
        }
        fs::rename(&tmp, &cfull).map_err(|e| cleanup(fail(path, ItemErrorKind::Failed, e)))?;
        self.sync_dir(&cdir)?;
        let entry = IndexEntry {
            kind: Kind::File,
            l_size: s0.size,
            l_mtime: s0.mtime,
            l_ino: s0.ino,
            hash,
            cpath,
            r_size: enc.stat.size,
            r_mtime: enc.stat.mtime,
            file_id: Some(file_id),
        };
        self.index_put(path, &entry)?;
        Ok(self.activity("encrypted", path, None))
    }

    fn download(&mut self, path: &str) -> ItemResult {
        let cpath = self.cpath(path, Kind::File)?;
        let cfull = self.mirror.join(&cpath);
        let r0 = stat_of(&cfull).map_err(io_fail(path))?;
        let idx = self
            .index
            .get(path)
            .map_err(|e| fail(path, ItemErrorKind::Failed, e))?;
        let (parent, _) = split_parent(path);
        self.ensure_local_dir(parent)?;
        let ldir = self.plain.join(parent);
        let lp = self.plain.join(path);
        let (tmp, hash, _) = self.decrypt_to_temp(path, &cfull, &ldir)?;
        let cleanup = |e| {
            let _ = fs::remove_file(&tmp);
            e
        };
        if !matches(&cfull, Some((r0.size, r0.mtime))) {
            return Err(cleanup(Self::changed(
                path,
                "ciphertext changed while decrypting",
            )));
        }
        let expect_local = idx.as_ref().map(|i| (i.l_size, i.l_mtime));
        if !(matches(&lp, expect_local) || (expect_local.is_some() && matches(&lp, None))) {
            return Err(cleanup(Self::changed(
                path,
                "plaintext changed before replacing it",
            )));
        }
        // What we wrote, stated before it gets its name: a save by the user
        // right after the rename then differs from the index and is synced.
        let l = stat_of(&tmp).map_err(|e| cleanup(io_fail(path)(e)))?;
        fs::rename(&tmp, &lp).map_err(|e| cleanup(fail(path, ItemErrorKind::Failed, e)))?;
        self.sync_dir(&ldir)?;
        let entry = IndexEntry {
            kind: Kind::File,
            l_size: l.size,
            l_mtime: l.mtime,
            l_ino: l.ino,
            hash,
            cpath,
            r_size: r0.size,
            r_mtime: r0.mtime,
            file_id: scan::read_file_id(&cfull),
        };
        self.index_put(path, &entry)?;
        Ok(self.activity("decrypted", path, None))
    }

    /// A free conflict-copy path next to `path`.
    fn conflict_path(&self, path: &str, device: &str) -> String {
        let (parent, name) = split_parent(path);
        let date = format_date(self.now);
        for n in 1.. {
            let dev = if n == 1 {
                device.to_owned()
            } else {
                format!("{device} {n}")
            };
            let cn = names::conflict_name(name, &dev, &date);
            let cp = if parent.is_empty() {
                cn
            } else {
                format!("{parent}/{cn}")
            };
            if !self.plain.join(&cp).exists() {
                return cp;
            }
        }
        unreachable_path(path)
    }

    fn merge(&mut self, path: &str) -> ItemResult {
        let lp = self.plain.join(path);
        let l0 = stat_of(&lp).map_err(io_fail(path))?;
        let cpath = self.cpath(path, Kind::File)?;
        let cfull = self.mirror.join(&cpath);
        let r_is_file = fs::symlink_metadata(&cfull).is_ok_and(|m| m.is_file());
        if l0.kind != Kind::File || !r_is_file {
            // File against directory: move the local one aside; the next
            // round brings the other in.
            let cp = self.conflict_path(path, self.device);
            fs::rename(&lp, self.plain.join(&cp)).map_err(io_fail(path))?;
            self.index_remove(path)?;
            return Ok(self.activity("conflict", path, Some(cp)));
        }
        let r0 = stat_of(&cfull).map_err(io_fail(path))?;
        let (parent, _) = split_parent(path);
        let ldir = self.plain.join(parent);
        let (tmp, rhash, _) = self.decrypt_to_temp(path, &cfull, &ldir)?;
        let cleanup = |e| {
            let _ = fs::remove_file(&tmp);
            e
        };
        let lhash = Self::hash_file(path, &lp).map_err(cleanup)?;
        if !matches(&lp, Some((l0.size, l0.mtime))) {
            return Err(cleanup(Self::changed(
                path,
                "plaintext changed while comparing",
            )));
        }
        let mut detail = None;
        // The stat the index keeps is the one of the content just compared
        // or written, never a later one (a save right after would be missed).
        let l;
        if lhash == rhash {
            let _ = fs::remove_file(&tmp);
            l = l0;
        } else {
            l = stat_of(&tmp).map_err(|e| cleanup(io_fail(path)(e)))?;
            let cp = self.conflict_path(path, self.device);
            fs::rename(&lp, self.plain.join(&cp))
                .map_err(|e| cleanup(fail(path, ItemErrorKind::Failed, e)))?;
            if let Err(e) = fs::rename(&tmp, &lp) {
                let _ = fs::rename(self.plain.join(&cp), &lp);
                return Err(cleanup(fail(path, ItemErrorKind::Failed, e)));
            }
            self.sync_dir(&ldir)?;
            detail = Some(cp);
        }
        let entry = IndexEntry {
            kind: Kind::File,
            l_size: l.size,
            l_mtime: l.mtime,
            l_ino: l.ino,
            hash: rhash,
            cpath,
            r_size: r0.size,
            r_mtime: r0.mtime,
            file_id: scan::read_file_id(&cfull),
        };
        self.index_put(path, &entry)?;
        Ok(match detail {
            Some(cp) => self.activity("conflict", path, Some(cp)),
            None => self.activity("merged", path, None),
        })
    }

    fn adopt(&mut self, ccopy: &str, of: &str) -> ItemResult {
        let cfull = self.mirror.join(ccopy);
        let r0 = stat_of(&cfull).map_err(io_fail(ccopy))?;
        let (parent, _) = split_parent(of);
        self.ensure_local_dir(parent)?;
        let ldir = self.plain.join(parent);
        let (tmp, hash, _) = self.decrypt_to_temp(of, &cfull, &ldir)?;
        let same = self
            .index
            .get(of)
            .ok()
            .flatten()
            .is_some_and(|i| i.hash == hash);
        if same {
            // Identical to the file it is a copy of: nothing to keep.
            let _ = fs::remove_file(&tmp);
            fs::remove_file(&cfull).map_err(io_fail(ccopy))?;
            return Ok(self.activity(
                "deleted",
                ccopy,
                Some(format!("identical sync-client copy of {of}")),
            ));
        }
        let target = self.conflict_path(of, "sync");
        let tcpath = self.cpath(&target, Kind::File)?;
        let tcfull = self.mirror.join(&tcpath);
        if tcfull.exists() || !matches(&cfull, Some((r0.size, r0.mtime))) {
            let _ = fs::remove_file(&tmp);
            return Err(Self::changed(of, "conflict copy target busy"));
        }
        let lt = self.plain.join(&target);
        let l = stat_of(&tmp).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_fail(of)(e)
        })?;
        fs::rename(&tmp, &lt).map_err(io_fail(of))?;
        self.sync_dir(&ldir)?;
        // The ciphertext keeps the sync client's name's content but moves to
        // the encrypted name of the conflict copy. Its header metadata still
        // names the original, which only matters for hashed names.
        fs::rename(&cfull, &tcfull).map_err(io_fail(of))?;
        if let Some(d) = tcfull.parent() {
            self.sync_dir(d)?;
        }
        // A rename keeps size and mtime: the stats from before it.
        let r = r0;
        let entry = IndexEntry {
            kind: Kind::File,
            l_size: l.size,
            l_mtime: l.mtime,
            l_ino: l.ino,
            hash,
            cpath: tcpath,
            r_size: r.size,
            r_mtime: r.mtime,
            file_id: scan::read_file_id(&tcfull),
        };
        self.index_put(&target, &entry)?;
        Ok(self.activity("conflict", of, Some(target)))
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
        let day = format_date(self.now);
        let day = &day[..10];
        let mut dest = self.plain.join(TRASH_DIR).join(day).join(path);
        let mut n = 1;
        while dest.exists() {
            n += 1;
            dest = self
                .plain
                .join(TRASH_DIR)
                .join(day)
                .join(format!("{path}.{n}"));
        }
        if let Some(d) = dest.parent() {
            fs::create_dir_all(d).map_err(io_fail(path))?;
        }
        fs::rename(&lp, &dest).map_err(io_fail(path))?;
        if let Some(d) = lp.parent() {
            self.sync_dir(d)?;
        }
        self.index_remove(path)?;
        Ok(self.activity("trashed", path, None))
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
    let cutoff = format_date(now - i64::from(days) * 86_400 * 1_000_000_000);
    for ent in rd.flatten() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.len() == 10 && name.as_str() < &cutoff[..10] {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_date(0), "1970-01-01 000000");
        assert_eq!(
            format_date(1_709_251_199 * 1_000_000_000),
            "2024-02-29 235959"
        );
    }

    #[test]
    fn a_batch_is_cut_into_chunks_with_a_small_last_one() {
        let sizes = |n| -> Vec<usize> { chunk_ranges(n).iter().map(|r| r.len()).collect() };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(64), [64]);
        assert_eq!(sizes(1024), [1024]);
        assert_eq!(sizes(1025), [1024, 1]);
        assert_eq!(sizes(1300), [522, 522, 256]);
        assert_eq!(sizes(2048), [896, 896, 256]);
        assert_eq!(sizes(2100), [1024, 1024, 52]);
        assert_eq!(
            sizes(10_000),
            [974, 974, 975, 974, 975, 974, 974, 975, 974, 975, 256]
        );
        for n in 0..5000 {
            let r = chunk_ranges(n);
            // In order, back to back, covering 0..n, none empty or too big.
            assert_eq!(r.first().map_or(0, |r| r.start), 0);
            assert_eq!(r.last().map_or(0, |r| r.end), n);
            assert!(r.windows(2).all(|w| w[0].end == w[1].start));
            assert!(r.iter().all(|r| !r.is_empty() && r.len() <= BATCH_FILES));
            if n > BATCH_FILES {
                assert!(r.last().is_some_and(|r| r.len() <= LAST_CHUNK_FILES));
            }
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
