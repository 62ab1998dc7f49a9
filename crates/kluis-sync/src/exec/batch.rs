//! New files in parallel batches: encryption on every core, one HPKE
//! encapsulation per batch, and a durability pipeline (syncfs, renames,
//! index) behind it.

use super::*;

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

/// What the batch's thread sends to the durability stage.
enum ToStage {
    /// An encrypted chunk, in order.
    Chunk(usize, Written),
    /// The batch's thread waits for a chunk to be recorded: settle what
    /// is renamed now, or else the next chunk whose renames end. Without
    /// it, renames that end after the last chunk arrived would wait for a
    /// next chunk that the waiting thread cannot send (issue 17: a first
    /// sync of a large folder stopped after seven chunks).
    Flush,
}

/// Renamed chunks not yet covered by a syncfs, and whether the batch's
/// thread is waiting for one of them.
#[derive(Default)]
struct Uncovered {
    chunks: Vec<(usize, Renamed)>,
    flush_wanted: bool,
}

/// One syncfs; the renames in `covered` had ended when it started, so they
/// are surely in it, and go on to be recorded with how it went.
fn sync_and_settle(
    mirror: &Path,
    covered: Vec<(usize, Renamed)>,
    settled: &mpsc::Sender<Settled>,
) -> Synced {
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
}

/// The durability stage of [`Exec::upload_new_batch`], on a thread of its
/// own. It takes the encrypted chunks in order. With `barrier`, a syncfs
/// for each makes its temp files durable; it then goes to a rename thread
/// (`rename`). A chunk's renames count as durable only once a syncfs that
/// *started* after they ended has returned; the chunk is then sent on to be
/// recorded. The syncfs of one chunk thus runs while the chunk before is
/// renamed, and after the last chunk one more syncfs covers what is left.
/// When the batch's thread waits ([`ToStage::Flush`]), renames are
/// settled without waiting for a next chunk. Without `barrier` a chunk
/// goes on as soon as it is renamed.
fn durability_stage(
    mirror: &Path,
    paths: &[String],
    barrier: bool,
    chunks: mpsc::Receiver<ToStage>,
    settled: mpsc::Sender<Settled>,
    rename: &(dyn Fn(Written) -> Renamed + Sync),
) {
    let uncovered: Mutex<Uncovered> = Mutex::new(Uncovered::default());
    let lock = || uncovered.lock().unwrap_or_else(|e| e.into_inner());
    std::thread::scope(|scope| {
        let (to_rename, renames) = mpsc::channel::<(usize, Written)>();
        let renamer = {
            let (settled, lock) = (settled.clone(), &lock);
            scope.spawn(move || {
                for (seq, written) in renames {
                    let renamed = rename(written);
                    if barrier {
                        let flush = {
                            let mut u = lock();
                            u.chunks.push((seq, renamed));
                            std::mem::take(&mut u.flush_wanted)
                                .then(|| std::mem::take(&mut u.chunks))
                        };
                        if let Some(covered) = flush {
                            let _ = sync_and_settle(mirror, covered, &settled);
                        }
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
        for msg in chunks {
            let (seq, mut written) = match msg {
                ToStage::Chunk(seq, written) => (seq, written),
                ToStage::Flush if barrier => {
                    let covered = {
                        let mut u = lock();
                        if u.chunks.is_empty() {
                            // The rename thread settles its next chunk.
                            u.flush_wanted = true;
                        }
                        std::mem::take(&mut u.chunks)
                    };
                    if !covered.is_empty() {
                        let _ = sync_and_settle(mirror, covered, &settled);
                    }
                    continue;
                }
                ToStage::Flush => continue,
            };
            if barrier {
                let covered = std::mem::take(&mut lock().chunks);
                let synced = sync_and_settle(mirror, covered, &settled);
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
        let left = std::mem::take(&mut lock().chunks);
        if !left.is_empty() {
            // How it went is reported with each chunk it covered.
            let _ = sync_and_settle(mirror, left, &settled);
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
        // The temp file is durable already (the fsync pool, or a syncfs):
        // the batch's durability leaves both fsyncs out, and the rename's
        // directories are fsynced once per chunk (`Exec::record_batch`).
        let temp = Temp::adopt(std::mem::take(&mut job.tmp), None);
        let (lp, s0) = (&job.lp, job.s0);
        match write::commit(temp, &cfull, Expect::Absent, Durability::Batch, || {
            matches(lp, Some((s0.size, s0.mtime)))
        }) {
            Ok(dirs) => out.dirs.extend(dirs),
            Err(WriteError::SourceChanged) => {
                let e = fail(
                    path,
                    ItemErrorKind::ChangedDuringSync,
                    "plaintext changed while encrypting",
                );
                out.results.push((idx, Err(e)));
                continue;
            }
            Err(e) => {
                let e = write_fail(path, e, "ciphertext appeared before creating it");
                out.results.push((idx, Err(e)));
                continue;
            }
        }
        let cpath = std::mem::take(&mut job.cpath);
        out.done
            .push((idx, IndexEntry::file(&s0, hash, cpath, &r, Some(file_id))));
    }
    out
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
struct ChunkCrypto {
    /// One per encryption thread, for its ChaCha20 CSPRNG; wiped once the
    /// chunk is encrypted.
    seeds: Zeroizing<Vec<[u8; 32]>>,
    batch: Option<kluis_format::Batch>,
    /// A copy (a few keys): an `UpdateMembers` may change the executor's.
    recipients: Vec<Recipient>,
    /// fsync each file as it is finished.
    fsync: bool,
}

/// Encrypt `jobs` (of `chunk`, whose first path has index `offset`) into
/// their temp files on one thread per seed; with `crypto.fsync`, a pool of
/// [`FSYNC_THREADS`] fsyncs each file as it is finished. Results by
/// position in `jobs`.
fn encrypt_chunk(
    crypto: ChunkCrypto,
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
        None => crate::crypt::To::Recipients(&recipients),
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
    pub(super) fn upload_new_batch(
        &mut self,
        paths: &[String],
        scanned: &[Option<Stat>],
    ) -> Vec<ItemResult> {
        let barrier = self.durability == Durability::Each
            && paths.len() >= SYNCFS_MIN_FILES
            && cfg!(target_os = "linux");
        let mirror = self.mirror;
        let ranges = chunk_ranges(paths.len());
        let chunks = ranges.len();
        let mut results: Vec<(usize, ItemResult)> = Vec::with_capacity(paths.len());
        let mut recorded = vec![false; chunks];
        let (to_durable, durable_rx) = mpsc::channel::<ToStage>();
        let (settled_tx, settled) = mpsc::channel::<Settled>();
        let rename = |written| rename_temps(mirror, paths, written);
        std::thread::scope(|scope| {
            let stage = scope.spawn(move || {
                durability_stage(mirror, paths, barrier, durable_rx, settled_tx, &rename)
            });
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
                if let Err(mpsc::SendError(msg)) = to_durable.send(ToStage::Chunk(seq, written)) {
                    // The durability thread died: nothing of this chunk
                    // is renamed (its paths fail below).
                    if let ToStage::Chunk(_, written) = msg {
                        for job in &written.jobs {
                            let _ = fs::remove_file(&job.tmp);
                        }
                    }
                    break;
                }
                in_flight += 1;
                while in_flight > CHUNKS_IN_FLIGHT {
                    let s = match settled.try_recv() {
                        Ok(s) => s,
                        Err(_) => {
                            // Nothing settled yet: ask for it, then wait.
                            let _ = to_durable.send(ToStage::Flush);
                            let Ok(s) = settled.recv() else { break };
                            s
                        }
                    };
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
        let dirs_durability = if barrier {
            Durability::Batch
        } else {
            self.durability
        };
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
                        let c = self.ensure_remote_dir(parent, dirs_durability)?;
                        dirs_done.insert(parent, c.clone());
                        c
                    }
                };
                let cpath = self.cpath(path, Kind::File)?;
                let tmp = if staged {
                    write::temp_path(&staging, &mut names_rng)
                } else {
                    write::temp_path(&self.mirror.join(cparent), &mut names_rng)
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
        if after_syncfs.is_none()
            && !done.is_empty()
            && let Err((d, e)) = write::sync_dirs(&dirs, self.durability)
        {
            let e = fail(&d.display().to_string(), ItemErrorKind::Failed, e);
            unsynced(&mut done, e);
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
    fn chunk_crypto(&mut self, jobs: usize, fsync_each: bool) -> ChunkCrypto {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
            .min(jobs.max(1));
        let mut seeds = Zeroizing::new(vec![[0u8; 32]; threads]);
        for s in seeds.iter_mut() {
            self.rng.fill_bytes(s);
        }
        let recipients = self.recipients.clone();
        // One encapsulation per recipient for the whole batch (FORMAT.md
        // §4.8) rather than one per file: for small files it is most of the
        // work. Should it fail, each file tries on its own and reports why.
        let batch = (jobs > 1)
            .then(|| {
                kluis_format::Batch::new(&recipients, KemChoice::default(), &mut *self.rng).ok()
            })
            .flatten();
        ChunkCrypto {
            seeds,
            batch,
            recipients,
            fsync: self.durability == Durability::Each && fsync_each,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn empty_chunk() -> Written {
        Written {
            jobs: Vec::new(),
            encrypted: Vec::new(),
            early: Vec::new(),
            last: false,
        }
    }

    /// Issue 17, point 2: renames that end after the last chunk reached the
    /// stage were settled only by a next chunk, which the batch's thread,
    /// waiting for a settled chunk, could never send. With a rename thread
    /// slower than the stage, every chunk in flight was renamed and none
    /// recorded, for ever.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_waiting_batch_gets_a_chunk_settled_when_renames_lag_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (to_stage, rx) = mpsc::channel::<ToStage>();
        let (settled_tx, settled) = mpsc::channel::<Settled>();
        // Renames much slower than a syncfs of an idle file system.
        let slow_rename = |w: Written| {
            std::thread::sleep(std::time::Duration::from_millis(200));
            Renamed {
                results: w.early,
                dirs: Default::default(),
                done: Vec::new(),
            }
        };
        std::thread::scope(|scope| {
            let mirror = dir.path();
            let stage = scope
                .spawn(move || durability_stage(mirror, &[], true, rx, settled_tx, &slow_rename));
            for seq in 0..=CHUNKS_IN_FLIGHT {
                to_stage.send(ToStage::Chunk(seq, empty_chunk())).unwrap();
            }
            // As the batch's thread does once too many chunks are in flight.
            to_stage.send(ToStage::Flush).unwrap();
            let first = settled.recv_timeout(std::time::Duration::from_secs(120));
            assert!(
                first.is_ok(),
                "no chunk was settled while the batch's thread waited"
            );
            drop(to_stage);
            let rest: Vec<usize> = settled.iter().map(|s| s.seq).collect();
            let mut all: Vec<usize> = rest;
            all.push(first.map(|s| s.seq).unwrap_or(usize::MAX));
            all.sort_unstable();
            assert_eq!(all, (0..=CHUNKS_IN_FLIGHT).collect::<Vec<_>>());
            stage.join().unwrap();
        });
    }
}
