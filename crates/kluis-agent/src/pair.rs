//! One owner thread per folder pair. Triggers coalesce (at most one queued),
//! watcher events are hints, a full reconcile runs at start, on every
//! trigger, on a timer, and after unlock. Failures back off with jitter.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use kluis_format::Identity;
use kluis_sync::scan::{KLUIS_PREFIX, Kind, Stat};
use kluis_sync::{Engine, EngineConfig, SystemClock};

use crate::watch::{Debounced, Sink};

use crate::status::{
    Action, ActivityEntry, Alert, ItemProblem, NOTICES_CAP, PairState, PairStatus, Skip,
};

/// Messages to a pair's owner thread.
#[derive(Debug)]
pub(crate) enum Msg {
    Trigger,
    Pause,
    /// `allow_deletions`: the deletions the guard reported go ahead;
    /// `restore`: what it withheld is put back from the other side.
    Resume {
        allow_deletions: bool,
        restore: bool,
    },
    Lock,
    Stop,
}

/// Shared between the owner thread, the watcher and the agent.
pub(crate) struct PairShared {
    pub status: Mutex<PairStatus>,
    pub activity: Arc<Mutex<VecDeque<ActivityEntry>>>,
    pub queued: AtomicBool,
    /// Files the engine itself just wrote, with their stat: watcher echoes.
    pub echo: Mutex<HashMap<PathBuf, (u64, i64)>>,
    /// While a reconcile runs: the paths the watcher reported meanwhile.
    /// Most are echoes of that reconcile's own writes, but the echo map
    /// only knows them once it has ended, so they are judged then.
    pub held: Mutex<Option<Vec<PathBuf>>>,
}

/// Sender side: coalescing trigger.
#[derive(Clone)]
pub(crate) struct PairTx {
    pub tx: SyncSender<Msg>,
    pub shared: Arc<PairShared>,
}

impl PairTx {
    pub fn trigger(&self) {
        if !self.shared.queued.swap(true, Ordering::AcqRel) {
            match self.tx.try_send(Msg::Trigger) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => self.shared.queued.store(false, Ordering::Release),
            }
        }
    }

    pub fn send(&self, m: Msg) {
        let _ = self.tx.send(m);
    }
}

/// Kept alive only: dropping the debouncer stops watching.
#[allow(dead_code, reason = "held for its Drop")]
pub(crate) enum Watch {
    Native(Debounced<notify::RecommendedWatcher>),
    Poll(Debounced<notify::PollWatcher>),
}

impl Sink for PairTx {
    fn changed(&self, paths: Vec<PathBuf>) {
        if let Some(held) = self
            .shared
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            held.extend(paths);
            return;
        }
        if paths.iter().any(|p| !is_echo(&self.shared, p)) {
            self.trigger();
        }
    }

    // Overflow and other watcher errors: every trigger is a full reconcile,
    // and the status counts them (`kluis status`).
    fn rescan(&self) {
        self.shared
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .watcher_rescans += 1;
        self.trigger();
    }
}

fn is_echo(shared: &PairShared, path: &Path) -> bool {
    if path
        .components()
        .any(|c| c.as_os_str().to_string_lossy().starts_with(KLUIS_PREFIX))
    {
        return true;
    }
    let echo = shared.echo.lock().unwrap_or_else(|e| e.into_inner());
    match (echo.get(path), std::fs::symlink_metadata(path)) {
        (Some(&(size, mtime)), Ok(m)) => {
            let s = Stat::from_metadata(&m);
            s.size == size && s.mtime == mtime
        }
        _ => false,
    }
}

/// Start watching both roots; fall back to polling when the OS runs out of
/// watches (or when asked to).
pub(crate) fn watch(
    tx: PairTx,
    roots: &[&Path],
    debounce: Duration,
    force_poll: bool,
) -> Option<Watch> {
    let sink: Arc<dyn Sink> = Arc::new(tx.clone());
    // The engine's staging directory holds only its own temp files.
    let exclude = [kluis_sync::scan::STAGING_DIR];
    if !force_poll
        && let Ok(d) = Debounced::<notify::RecommendedWatcher>::new(
            notify::Config::default(),
            debounce,
            sink.clone(),
        )
        && roots.iter().all(|r| d.watch_root(r, &exclude).is_ok())
    {
        return Some(Watch::Native(d));
    }
    let config = notify::Config::default().with_poll_interval(Duration::from_secs(10));
    let d = Debounced::<notify::PollWatcher>::new(config, debounce, sink).ok()?;
    for r in roots {
        d.watch_root(r, &[]).ok()?;
    }
    tx.shared
        .status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .polling = true;
    Some(Watch::Poll(d))
}

pub(crate) struct Worker {
    pub cfg: EngineConfig,
    pub id: String,
    pub rx: Receiver<Msg>,
    pub shared: Arc<PairShared>,
    pub identity: Arc<RwLock<Option<Arc<Identity>>>>,
    /// Keys of the user's groups, with a generation number that changes
    /// whenever they are replaced.
    pub group_keys: Arc<RwLock<(u64, Arc<Vec<Identity>>)>>,
    /// What the directory last said (departed members, current keys), with
    /// a generation that changes when it is replaced.
    pub directory: Arc<RwLock<(u64, Arc<kluis_sync::DirectoryView>)>>,
    pub full_interval: Duration,
    pub activity_cap: usize,
}

pub(crate) fn now_ns() -> i64 {
    use kluis_sync::Clock;
    SystemClock.now_ns()
}

impl Worker {
    fn set(&self, f: impl FnOnce(&mut PairStatus)) {
        f(&mut self.shared.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub fn run(self) {
        let mut engine = match Engine::open(self.cfg.clone()) {
            Ok(e) => e,
            Err(e) => {
                self.set(|s| {
                    s.state = PairState::Error;
                    s.alert = Some(Alert::SyncFailed {
                        detail: e.to_string(),
                    });
                });
                return;
            }
        };
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let mut paused = false;
        let mut next_full = Instant::now();
        let mut wake: Option<Instant> = None;
        let mut retry: Option<Instant> = None;
        let mut backoff = Duration::from_secs(1);
        // Downloads refused for lack of space wait for it (`stuck`).
        let mut space: Option<crate::stuck::SpaceWait> = None;
        let mut group_gen = 0u64;
        let mut directory_gen = 0u64;
        loop {
            let now = Instant::now();
            let deadline = [
                Some(next_full),
                wake,
                retry,
                space.as_ref().map(crate::stuck::SpaceWait::next_check),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_full);
            let first = if deadline <= now {
                Err(RecvTimeoutError::Timeout)
            } else {
                self.rx.recv_timeout(deadline - now)
            };
            let mut msgs = Vec::new();
            match first {
                Ok(m) => msgs.push(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            while let Ok(m) = self.rx.try_recv() {
                msgs.push(m);
            }
            // Woken only to look at the free space: no pass unless some
            // was freed (or the wait is over).
            let now = Instant::now();
            if msgs.is_empty()
                && next_full > now
                && wake.is_none_or(|w| w > now)
                && retry.is_none_or(|r| r > now)
                && let Some(s) = &mut space
                && !s.due(now)
            {
                continue;
            }
            // A timer that has fired is used up: the pass below (or the
            // pause that skips it) answers it, and leaving it in the past
            // would wake this loop again at once, forever.
            wake = wake.filter(|w| *w > now);
            retry = retry.filter(|r| *r > now);
            for m in msgs {
                match m {
                    Msg::Trigger => self.shared.queued.store(false, Ordering::Release),
                    Msg::Pause => paused = true,
                    Msg::Resume {
                        allow_deletions,
                        restore,
                    } => {
                        // The guard is the engine's: it is judged again by
                        // the pass below, on a fresh scan.
                        paused = false;
                        if allow_deletions {
                            engine.allow_mass_delete_once();
                        }
                        if restore {
                            engine.restore_missing_once();
                        }
                    }
                    Msg::Lock => engine.lock(),
                    Msg::Stop => return,
                }
            }
            if paused {
                self.set(|s| s.state = PairState::Paused);
                next_full = Instant::now() + self.full_interval;
                continue;
            }
            let id = self
                .identity
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let Some(id) = id else {
                engine.lock();
                self.set(|s| s.state = PairState::Locked);
                next_full = Instant::now() + self.full_interval;
                continue;
            };
            let (generation, keys) = self
                .group_keys
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if generation != group_gen {
                group_gen = generation;
                engine.set_group_keys(
                    keys.iter()
                        .filter_map(|k| Identity::from_secret_bytes(&k.to_secret_bytes()[..]).ok())
                        .collect(),
                );
            }
            let (generation, view) = self
                .directory
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            if generation != directory_gen {
                directory_gen = generation;
                engine.set_directory((*view).clone());
            }
            self.set(|s| s.state = PairState::Syncing);
            *self.shared.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
            let result = engine.reconcile(&id, &SystemClock, &mut rng);
            next_full = Instant::now() + self.full_interval;
            match result {
                Ok(rep) => {
                    self.record(&engine, &rep);
                    wake = rep.wake_at.map(|w| {
                        let d = Duration::from_nanos(w.saturating_sub(now_ns()).max(0) as u64);
                        Instant::now() + d + Duration::from_millis(20)
                    });
                    // Items refused for lack of space are not retried on
                    // this backoff; they wait for space (`stuck`).
                    space = crate::stuck::SpaceWait::after(space.take(), &rep, &self.cfg.plain);
                    if crate::stuck::retry(&rep) {
                        retry = Some(Instant::now() + jitter(backoff));
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                    } else {
                        retry = None;
                        backoff = Duration::from_secs(1);
                    }
                    let synced = engine.index().count_files().unwrap_or(0);
                    // While the guard holds deletions back, everything else
                    // goes on syncing, and every pass judges it again: it
                    // clears by itself once the missing files are back.
                    if let Some(g) = &rep.guard {
                        self.set(|s| {
                            s.state = PairState::Alert;
                            s.alert = Some(Alert::from(g));
                        });
                    } else {
                        // Not idle while files fail; a full disk is said.
                        self.set(|s| {
                            s.state = crate::stuck::state(&rep);
                            s.alert = crate::stuck::alert(&rep);
                        });
                    }
                    self.set(|s| {
                        s.last_sync = Some(now_ns());
                        s.synced_files = synced;
                        s.deferred = rep.deferred.len();
                        s.errors = rep.errors.iter().map(ItemProblem::from).collect();
                        s.skips = rep.skips.iter().map(Skip::from).collect();
                        s.not_shared = rep.not_shared.clone();
                        s.notices
                            .extend(rep.membership.iter().map(|c| c.to_string()));
                        let over = s.notices.len().saturating_sub(NOTICES_CAP);
                        s.notices.drain(..over);
                    });
                }
                Err(e @ kluis_sync::SyncError::FolderNotShared(_)) => {
                    // Not an error to retry: checked again at the next
                    // trigger or full reconcile (the metadata may change).
                    retry = None;
                    self.set(|s| {
                        s.state = PairState::NotSharedWithYou;
                        s.alert = Some(Alert::NotSharedWithYou {
                            detail: e.to_string(),
                        });
                    });
                }
                Err(e) => {
                    retry = Some(Instant::now() + jitter(backoff));
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    self.set(|s| {
                        s.state = PairState::Error;
                        s.alert = Some(Alert::SyncFailed {
                            detail: e.to_string(),
                        });
                    });
                }
            }
            // The scans, plans and buffers of the reconcile are freed: give
            // their pages back rather than keep the peak while idle.
            crate::os::trim_heap();
            // Events that came in during the reconcile, judged now that the
            // echo map holds its writes: anything else runs another one.
            let held = self
                .shared
                .held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .unwrap_or_default();
            if held.iter().any(|p| !is_echo(&self.shared, p)) {
                wake = Some(Instant::now());
            }
        }
    }

    fn record(&self, engine: &Engine, rep: &kluis_sync::Report) {
        if rep.activity.is_empty() {
            return;
        }
        let mut echo = self.shared.echo.lock().unwrap_or_else(|e| e.into_inner());
        echo.clear();
        let cfg = engine.config();
        let echo_parent = |echo: &mut HashMap<PathBuf, (u64, i64)>, full: &Path| {
            if let Some(parent) = full.parent()
                && !echo.contains_key(parent)
                && let Ok(m) = std::fs::symlink_metadata(parent)
            {
                let s = Stat::from_metadata(&m);
                echo.insert(parent.to_path_buf(), (s.size, s.mtime));
            }
        };
        // A new file of a batch comes with its ciphertext as recorded, and
        // encrypting only reads the plaintext (opens are not events): that
        // ciphertext is its only echo.
        let mut rest = Vec::new();
        for a in &rep.activity {
            match &a.ciphertext {
                Some(c) if a.action == "encrypted" => {
                    let full = cfg.mirror.join(&c.cpath);
                    echo_parent(&mut echo, &full);
                    echo.insert(full, (c.size, c.mtime));
                }
                _ => rest.push(a),
            }
        }
        // After a big round one read of the whole index beats a query per path.
        let all = if rest.len() > 64 {
            engine.index().load().ok()
        } else {
            None
        };
        for a in rest {
            for p in [Some(a.path.as_str()), a.detail.as_deref()]
                .into_iter()
                .flatten()
            {
                let e = match &all {
                    Some(all) => all.get(p).cloned(),
                    None => engine.index().get(p).ok().flatten(),
                };
                let Some(e) = e else { continue };
                // Encrypting a file only reads its plaintext (and opens
                // are not events): only its ciphertext can echo.
                let plain_written = a.action != "encrypted";
                let sides = [
                    plain_written.then_some((&cfg.plain, p, (e.l_size, e.l_mtime))),
                    Some((&cfg.mirror, e.cpath.as_str(), (e.r_size, e.r_mtime))),
                ];
                for (root, rel, written) in sides.into_iter().flatten() {
                    let full = root.join(rel);
                    // A file's echo is the stat the engine recorded when it
                    // wrote it, never a fresh stat: the user may already have
                    // saved it again, and that change must not pass as ours.
                    if e.kind == Kind::File {
                        echo.insert(full.clone(), written);
                    } else if let Ok(m) = std::fs::symlink_metadata(&full) {
                        let s = Stat::from_metadata(&m);
                        echo.insert(full.clone(), (s.size, s.mtime));
                    }
                    echo_parent(&mut echo, &full);
                }
            }
        }
        drop(echo);
        let mut log = self
            .shared
            .activity
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // Only what the log keeps: a first sync has thousands of entries.
        let keep = rep.activity.len().min(self.activity_cap);
        for a in &rep.activity[rep.activity.len() - keep..] {
            log.push_back(ActivityEntry {
                pair: self.id.clone(),
                action: Action::from_name(&a.action),
                path: a.path.clone(),
                detail: a.detail.clone(),
                at: a.at,
            });
        }
        while log.len() > self.activity_cap {
            log.pop_front();
        }
    }
}

fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let frac = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX);
    d.mul_f64(0.75 + frac * 0.5)
}
