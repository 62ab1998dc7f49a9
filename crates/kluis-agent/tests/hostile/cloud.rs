//! A hostile stand-in for Dropbox between the two devices' sync folders.
//!
//! It keeps a server copy of every file (path -> revision, content or
//! tombstone) and, per device, the revision and stat of what it last
//! synced there. Each tick it looks at one device's folder after the
//! other, in a seeded random order:
//!
//! - a file that changed there is uploaded when the device's base is the
//!   server's revision (or the server has a tombstone: an edit beats a
//!   deletion); otherwise both sides changed, and the device's **own**
//!   ciphertext is renamed to `<name> (dev-b's conflicted copy
//!   2026-12-07).kls` (uploaded as a new file on a later tick), and the
//!   winner is downloaded to the original name after a delay;
//! - a file deleted there is deleted on the server, and then in the other
//!   folder (when that one has not changed it);
//! - a newer server revision is downloaded either **in place**, through
//!   one file handle, in chunks with pauses between them, or to a temp
//!   file that is renamed over the target (the target is re-checked just
//!   before: a client never clobbers a change it has not seen).
//!
//! Kluis's temp files and staging directory are not replicated; every
//! other file is, `.kluis-folder` included.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};

use kluis_sync::scan::{STAGING_DIR, TEMP_PREFIX};
use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use sha2::{Digest, Sha256};

/// Prefix of the client's own download temp files (not a `.kls` name, so
/// the agent skips them as a real client's partial downloads).
const CLIENT_TMP: &str = ".sync-tmp-";

/// What the test thread can see of the client while it runs.
#[derive(Default)]
pub struct Shared {
    pub stop: AtomicBool,
    pub stats: Mutex<Stats>,
}

#[derive(Default, Clone)]
pub struct Stats {
    /// No download in flight and the last full pass changed nothing.
    pub quiet: bool,
    /// Everything the client has done so far (grows with every action).
    pub actions: u64,
    pub uploads: u64,
    pub in_place: u64,
    pub temp_renames: u64,
    pub conflicts: u64,
    pub deletions: u64,
    /// Timestamped log of the client's actions (for failure reports).
    pub log: Vec<String>,
}

/// (size, mtime in ns, inode).
type FStat = (u64, i64, u64);

fn fstat(m: &fs::Metadata) -> FStat {
    (m.len(), m.mtime() * 1_000_000_000 + m.mtime_nsec(), m.ino())
}

fn hash(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

struct Srv {
    rev: u64,
    data: Option<Arc<Vec<u8>>>,
}

struct Known {
    rev: u64,
    stat: FStat,
    hash: [u8; 32],
}

struct Replica {
    /// Device name as the provider shows it in conflicted copies.
    name: String,
    root: PathBuf,
    known: BTreeMap<String, Known>,
    known_dirs: BTreeSet<String>,
}

enum Write_ {
    /// A conflict: the loser was renamed, the winner comes after a delay.
    Waiting,
    InPlace {
        file: File,
        off: usize,
    },
    Temp {
        tmp: PathBuf,
        file: File,
        off: usize,
    },
}

struct Pending {
    dev: usize,
    path: String,
    rev: u64,
    data: Arc<Vec<u8>>,
    due: Instant,
    state: Write_,
}

pub struct Cloud {
    rng: ChaCha8Rng,
    server: BTreeMap<String, Srv>,
    dirs: BTreeSet<String>,
    reps: Vec<Replica>,
    pending: Vec<Pending>,
    next_rev: u64,
    t0: Instant,
    stats: Stats,
    /// The conflict delay is always this long (the deterministic tests);
    /// seeded between 50 ms and 2 s when None.
    pub fixed_delay: Option<Duration>,
}

impl Cloud {
    /// `devices`: (name, sync folder).
    pub fn new(seed: u64, devices: &[(&str, &Path)]) -> Cloud {
        Cloud {
            rng: rand_core::SeedableRng::seed_from_u64(seed),
            server: BTreeMap::new(),
            dirs: BTreeSet::new(),
            reps: devices
                .iter()
                .map(|(n, r)| Replica {
                    name: (*n).to_owned(),
                    root: r.to_path_buf(),
                    known: BTreeMap::new(),
                    known_dirs: BTreeSet::new(),
                })
                .collect(),
            pending: vec![],
            next_rev: 1,
            t0: Instant::now(),
            stats: Stats::default(),
            fixed_delay: None,
        }
    }

    /// Runs until `shared.stop`, publishing its stats after every tick;
    /// returns itself (for the final leak check of the server's copies).
    pub fn run(mut self, shared: &Shared) -> Cloud {
        while !shared.stop.load(Ordering::Relaxed) {
            let acted = self.tick();
            self.stats.quiet = !acted && self.pending.is_empty();
            {
                let mut s = shared.stats.lock().unwrap_or_else(|e| e.into_inner());
                let mut log = std::mem::take(&mut s.log);
                log.append(&mut self.stats.log);
                *s = Stats {
                    log,
                    ..self.stats.clone()
                };
            }
            let pause = 20 + self.rng.next_u32() % 100;
            std::thread::sleep(Duration::from_millis(u64::from(pause)));
        }
        self
    }

    fn log(&mut self, what: String) {
        self.stats.actions += 1;
        let t = self.t0.elapsed().as_secs_f64();
        self.stats.log.push(format!("{t:8.3}s cloud: {what}"));
    }

    /// One pass: due downloads, then each device's folder. Whether anything
    /// was done.
    pub fn tick(&mut self) -> bool {
        let before = self.stats.actions;
        self.advance_pending();
        let mut order: Vec<usize> = (0..self.reps.len()).collect();
        if self.rng.next_u32() % 2 == 1 {
            order.reverse();
        }
        for d in order {
            self.sync_device(d);
        }
        self.stats.actions != before
    }

    /// Rename one device's file to the provider's conflicted-copy name (the
    /// deterministic tests play this step themselves).
    pub fn conflicted_copy_name(rel: &str, device: &str, n: u32) -> String {
        let (dir, base) = match rel.rfind('/') {
            Some(i) => (&rel[..=i], &rel[i + 1..]),
            None => ("", rel),
        };
        let (stem, ext) = match base.rfind('.') {
            Some(i) if i > 0 => base.split_at(i),
            _ => (base, ""),
        };
        let extra = if n == 0 {
            String::new()
        } else {
            format!(" {n}")
        };
        format!("{dir}{stem} ({device}'s conflicted copy 2026-12-07{extra}){ext}")
    }

    fn scan(root: &Path) -> (BTreeMap<String, FStat>, BTreeSet<String>) {
        let mut files = BTreeMap::new();
        let mut dirs = BTreeSet::new();
        let mut stack = vec![(root.to_path_buf(), String::new())];
        while let Some((d, prefix)) = stack.pop() {
            for e in fs::read_dir(&d).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(TEMP_PREFIX)
                    || name == STAGING_DIR
                    || name.starts_with(CLIENT_TMP)
                {
                    continue;
                }
                let rel = if prefix.is_empty() {
                    name
                } else {
                    format!("{prefix}/{name}")
                };
                let Ok(m) = fs::symlink_metadata(e.path()) else {
                    continue;
                };
                if m.is_dir() {
                    dirs.insert(rel.clone());
                    stack.push((e.path(), rel));
                } else if m.is_file() {
                    files.insert(rel, fstat(&m));
                }
            }
        }
        (files, dirs)
    }

    fn busy(&self, d: usize, p: &str) -> bool {
        self.pending.iter().any(|w| w.dev == d && w.path == p)
    }

    fn sync_device(&mut self, d: usize) {
        let root = self.reps[d].root.clone();
        let (files, dirs) = Self::scan(&root);
        // Directories: new ones are created on the server, vanished ones
        // removed (their files are deleted one by one below).
        for dir in &dirs {
            if self.reps[d].known_dirs.insert(dir.clone()) && self.dirs.insert(dir.clone()) {
                self.log(format!("{}: new dir {dir}", self.reps[d].name));
            }
        }
        let gone: Vec<String> = self.reps[d]
            .known_dirs
            .iter()
            .filter(|x| {
                !dirs.contains(*x)
                    && !self
                        .pending
                        .iter()
                        .any(|w| w.dev == d && w.path.starts_with(x.as_str()))
            })
            .cloned()
            .collect();
        for dir in gone {
            self.reps[d].known_dirs.remove(&dir);
            if self.dirs.remove(&dir) {
                self.log(format!("{}: dir {dir} deleted", self.reps[d].name));
            }
        }
        // Local changes and new files.
        for (p, st) in &files {
            if self.busy(d, p) || self.reps[d].known.get(p).is_some_and(|k| k.stat == *st) {
                continue;
            }
            let full = root.join(p);
            let Ok(data) = fs::read(&full) else { continue };
            match fs::symlink_metadata(&full) {
                Ok(m) if fstat(&m) == *st => {}
                _ => continue, // changing right now: next tick
            }
            self.upload(d, p, data, *st);
        }
        // Local deletions.
        let deleted: Vec<String> = self.reps[d]
            .known
            .keys()
            .filter(|p| !files.contains_key(*p) && !self.busy(d, p))
            .cloned()
            .collect();
        for p in deleted {
            let k = self.reps[d].known.remove(&p).expect("listed");
            if let Some(s) = self.server.get_mut(&p)
                && s.rev == k.rev
                && s.data.is_some()
            {
                s.rev = self.next_rev;
                s.data = None;
                self.next_rev += 1;
                self.stats.deletions += 1;
                self.log(format!("{}: deleted {p}", self.reps[d].name));
            }
        }
        // Server directories this device lacks.
        let want: Vec<String> = self
            .dirs
            .iter()
            .filter(|x| !self.reps[d].known_dirs.contains(*x))
            .cloned()
            .collect();
        for dir in want {
            if fs::create_dir_all(root.join(&dir)).is_ok() {
                self.reps[d].known_dirs.insert(dir.clone());
                self.log(format!("{}: made dir {dir}", self.reps[d].name));
            }
        }
        let stale: Vec<String> = self.reps[d]
            .known_dirs
            .iter()
            .filter(|x| !self.dirs.contains(*x))
            .cloned()
            .collect();
        for dir in stale.iter().rev() {
            // Only if empty: files under it are still coming or going.
            if fs::remove_dir(root.join(dir)).is_ok() {
                self.reps[d].known_dirs.remove(dir);
                self.log(format!("{}: removed dir {dir}", self.reps[d].name));
            }
        }
        // Downloads and remote deletions.
        let todo: Vec<(String, u64, Option<Arc<Vec<u8>>>)> = self
            .server
            .iter()
            .filter(|(p, s)| {
                !self.busy(d, p) && self.reps[d].known.get(*p).is_none_or(|k| k.rev != s.rev)
            })
            .map(|(p, s)| (p.clone(), s.rev, s.data.clone()))
            .collect();
        for (p, rev, data) in todo {
            let local = files.get(&p).copied();
            let known = self.reps[d].known.get(&p).map(|k| k.stat);
            // Only where the device has not changed the file since the last
            // sync (its changes were handled above, or come next tick).
            let unchanged = match (local, known) {
                (None, None) => true,
                (Some(l), Some(k)) => l == k,
                _ => false,
            };
            if !unchanged {
                continue;
            }
            match data {
                None => {
                    // Re-checked right before: never delete a change.
                    let still = fs::symlink_metadata(root.join(&p)).ok().map(|m| fstat(&m));
                    if local.is_some() && still != local {
                        continue;
                    }
                    if local.is_some() && fs::remove_file(root.join(&p)).is_ok() {
                        self.log(format!("{}: applied deletion of {p}", self.reps[d].name));
                    }
                    self.reps[d].known.remove(&p);
                }
                Some(data) => self.pending.push(Pending {
                    dev: d,
                    path: p,
                    rev,
                    data,
                    due: Instant::now(),
                    state: Write_::Waiting,
                }),
            }
        }
    }

    fn upload(&mut self, d: usize, p: &str, data: Vec<u8>, st: FStat) {
        let h = hash(&data);
        let name = self.reps[d].name.clone();
        let base = self.reps[d].known.get(p).map(|k| k.rev);
        if let Some(k) = self.reps[d].known.get_mut(p)
            && k.hash == h
        {
            k.stat = st; // touched, same bytes
            return;
        }
        let server = self.server.get(p).map(|s| (s.rev, s.data.clone()));
        match server {
            Some((rev, Some(sd))) if Some(rev) != base => {
                if hash(&sd) == h {
                    self.reps[d].known.insert(
                        p.to_owned(),
                        Known {
                            rev,
                            stat: st,
                            hash: h,
                        },
                    );
                    return;
                }
                // Both sides changed: this device's own file loses its name.
                let root = self.reps[d].root.clone();
                let mut n = 0;
                let cc = loop {
                    let cc = Self::conflicted_copy_name(p, &name, n);
                    if fs::symlink_metadata(root.join(&cc)).is_err() {
                        break cc;
                    }
                    n += 1;
                };
                if rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &root.join(p),
                    rustix::fs::CWD,
                    &root.join(&cc),
                    rustix::fs::RenameFlags::NOREPLACE,
                )
                .is_err()
                {
                    return;
                }
                self.reps[d].known.remove(p);
                let delay = self.fixed_delay.unwrap_or_else(|| {
                    Duration::from_millis(match self.rng.next_u32() % 3 {
                        0 => 50 + u64::from(self.rng.next_u32() % 100),
                        1 => 1500,
                        _ => 200 + u64::from(self.rng.next_u32() % 1800),
                    })
                });
                self.stats.conflicts += 1;
                self.log(format!(
                    "{name}: both changed {p}: renamed its own copy to {cc}, winner (rev {rev}) in {delay:?}"
                ));
                self.pending.push(Pending {
                    dev: d,
                    path: p.to_owned(),
                    rev,
                    data: sd,
                    due: Instant::now() + delay,
                    state: Write_::Waiting,
                });
            }
            _ => {
                let rev = self.next_rev;
                self.next_rev += 1;
                self.server.insert(
                    p.to_owned(),
                    Srv {
                        rev,
                        data: Some(Arc::new(data)),
                    },
                );
                self.reps[d].known.insert(
                    p.to_owned(),
                    Known {
                        rev,
                        stat: st,
                        hash: h,
                    },
                );
                self.stats.uploads += 1;
                self.log(format!("{name}: uploaded {p} (rev {rev})"));
            }
        }
    }

    fn advance_pending(&mut self) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].due > now {
                i += 1;
                continue;
            }
            let w = self.pending.swap_remove(i);
            if let Some(w) = self.step(w) {
                self.pending.push(w);
            }
        }
    }

    /// One step of a download; the download back when there is more to do.
    fn step(&mut self, mut w: Pending) -> Option<Pending> {
        let root = self.reps[w.dev].root.clone();
        let full = root.join(&w.path);
        let name = self.reps[w.dev].name.clone();
        let chunk = 4096 + self.rng.next_u32() as usize % 20_000;
        let pause = Duration::from_millis(u64::from(10 + self.rng.next_u32() % 300));
        match std::mem::replace(&mut w.state, Write_::Waiting) {
            Write_::Waiting => {
                // The target must still be as the client last saw it.
                let now = fs::symlink_metadata(&full).ok().map(|m| fstat(&m));
                let known = self.reps[w.dev].known.get(&w.path).map(|k| k.stat);
                if now != known {
                    self.log(format!(
                        "{name}: {} changed before its download: later",
                        w.path
                    ));
                    return None;
                }
                if let Some(parent) = full.parent() {
                    let _ = fs::create_dir_all(parent);
                }
                let in_place = self.rng.next_u32() % 2 == 0;
                let opened = if in_place {
                    fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(&full)
                        .map(|file| Write_::InPlace { file, off: 0 })
                } else {
                    let tmp = full.with_file_name(format!("{CLIENT_TMP}{}", self.rng.next_u64()));
                    File::create(&tmp).map(|file| Write_::Temp { tmp, file, off: 0 })
                };
                let Ok(state) = opened else {
                    return None;
                };
                let kind = if in_place {
                    "in place, in chunks"
                } else {
                    "to a temp file"
                };
                self.log(format!(
                    "{name}: downloading {} (rev {}) {kind}",
                    w.path, w.rev
                ));
                w.state = state;
                w.due = Instant::now();
                Some(w)
            }
            Write_::InPlace { mut file, off } => {
                let end = (off + chunk).min(w.data.len());
                if file.write_all(&w.data[off..end]).is_err() {
                    return None;
                }
                if end < w.data.len() {
                    w.state = Write_::InPlace { file, off: end };
                    w.due = Instant::now() + pause;
                    return Some(w);
                }
                let st = file.metadata().map(|m| fstat(&m)).ok()?;
                drop(file);
                self.stats.in_place += 1;
                self.finish(&w, st);
                None
            }
            Write_::Temp { tmp, mut file, off } => {
                let end = (off + chunk).min(w.data.len());
                if file.write_all(&w.data[off..end]).is_err() {
                    let _ = fs::remove_file(&tmp);
                    return None;
                }
                if end < w.data.len() {
                    w.state = Write_::Temp {
                        tmp,
                        file,
                        off: end,
                    };
                    w.due = Instant::now() + pause / 4;
                    return Some(w);
                }
                let st = file.metadata().map(|m| fstat(&m)).ok();
                drop(file);
                let now = fs::symlink_metadata(&full).ok().map(|m| fstat(&m));
                let known = self.reps[w.dev].known.get(&w.path).map(|k| k.stat);
                if now != known || st.is_none() || fs::rename(&tmp, &full).is_err() {
                    let _ = fs::remove_file(&tmp);
                    self.log(format!(
                        "{name}: {} changed during its download: later",
                        w.path
                    ));
                    return None;
                }
                self.stats.temp_renames += 1;
                self.finish(&w, st.expect("checked"));
                None
            }
        }
    }

    fn finish(&mut self, w: &Pending, st: FStat) {
        let name = self.reps[w.dev].name.clone();
        self.reps[w.dev].known.insert(
            w.path.clone(),
            Known {
                rev: w.rev,
                stat: st,
                hash: hash(&w.data),
            },
        );
        self.log(format!("{name}: downloaded {} (rev {})", w.path, w.rev));
    }

    /// Every byte the server holds (for the leak check).
    pub fn server_files(&self) -> Vec<(String, Arc<Vec<u8>>)> {
        self.server
            .iter()
            .filter_map(|(p, s)| s.data.clone().map(|d| (p.clone(), d)))
            .collect()
    }
}
