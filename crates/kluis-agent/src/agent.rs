//! The agent: owns the identity and one worker per folder pair.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use kluis_format::Identity;
use kluis_sync::{DirectoryView, EngineConfig};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use zeroize::Zeroizing;

mod service;

use crate::config::Config;
use crate::error::AgentError;
use crate::home::AgentHome;
use crate::lock::PairLock;
use crate::pair::{Msg, PairShared, PairTx, Watch, Worker, watch};
use crate::share::directory::Directory;
use crate::status::{
    Action, ActivityEntry, ConflictEntry, DirectoryStatus, PairState, PairStatus, SharedWithYou,
    Status,
};
use crate::watch::{Debounced, Sink};

/// The activity `action` of a folder shared with you that the agent has
/// just paired under "Shared with me" (`path`: its plaintext folder,
/// `detail`: the owner). The tray app notifies about it.
pub const SHARED_WITH_YOU: Action = Action::SharedWithYou;

/// Tunables.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// Quiet period before a changed file is picked up.
    pub quiet: Duration,
    /// Watcher debounce.
    pub debounce: Duration,
    /// Full reconcile at least this often, even without events.
    pub full_interval: Duration,
    /// fsync writes (off only for benchmarks).
    pub fsync: bool,
    /// Use the polling watcher even when native watches are available.
    pub force_poll: bool,
    /// Fewest deletions that can trip the mass-deletion guard.
    pub mass_delete_min: usize,
    /// Deletions wait until no new one has come for this long, so that the
    /// guard judges a wave of them whole (docs/SYNC.md).
    pub deletion_quiet: Duration,
    /// Activity log length.
    pub activity_cap: usize,
    /// Ask the organisation directory (when one is set) this often, besides
    /// at unlock and when asked: departed members, rotated group keys.
    pub directory_interval: Duration,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            quiet: Duration::from_millis(500),
            debounce: Duration::from_millis(150),
            full_interval: Duration::from_secs(600),
            fsync: true,
            force_poll: false,
            mass_delete_min: 10,
            deletion_quiet: Duration::from_secs(15),
            activity_cap: 1000,
            directory_interval: Duration::from_secs(15 * 60),
        }
    }
}

struct PairRuntime {
    tx: PairTx,
    thread: Option<JoinHandle<()>>,
    _watch: Option<Watch>,
    _lock: PairLock,
}

struct Inner {
    home: AgentHome,
    device: String,
    identity: Arc<RwLock<Option<Arc<Identity>>>>,
    group_keys: Arc<RwLock<(u64, Arc<Vec<Identity>>)>>,
    pairs: Mutex<Vec<PairRuntime>>,
    activity: Arc<Mutex<VecDeque<ActivityEntry>>>,
    stopped: AtomicBool,
    /// Signalled on shutdown (no polling while idle).
    stop_cv: (Mutex<bool>, std::sync::Condvar),
    /// Tunables, kept to start pairs added later (folders shared with you).
    opts: AgentOptions,
    /// The IPC socket, poked on shutdown to wake the blocking accept.
    pub(crate) socket: Mutex<Option<std::path::PathBuf>>,
    /// Watches on the sync folders for mirrors shared with you.
    discovery: Mutex<Option<Discovery>>,
    /// The thread that runs a discovery pass when those watches fire.
    discovery_thread: Mutex<Option<JoinHandle<()>>>,
    /// Folders paired as "shared with you" while running: (last seq, events).
    shared_events: Mutex<(u64, VecDeque<SharedWithYou>)>,
    /// Where directory facts come from (none: no broker account).
    directory: Mutex<Option<Arc<dyn Directory>>>,
    /// The last directory view, with a generation that changes when it is
    /// replaced; each pair's engine applies it at its next write.
    directory_view: Arc<RwLock<(u64, Arc<DirectoryView>)>>,
    /// What the last refresh found (for status).
    directory_status: Mutex<Option<DirectoryStatus>>,
    /// Wakes the directory thread (set: refresh now). Its own `Arc` so the
    /// thread waits without keeping the agent alive.
    directory_wake: Arc<(Mutex<bool>, std::sync::Condvar)>,
    /// The thread that refreshes from the directory.
    directory_thread: Mutex<Option<JoinHandle<()>>>,
    /// One refresh at a time.
    refresh_lock: Mutex<()>,
}

/// Most "shared with you" events kept for the status.
const SHARED_EVENTS_CAP: usize = 256;

/// Native (non-recursive) watches on every folder where a shared mirror can
/// appear — each search root and the folders one and two levels below it,
/// the depth `share::discover_shared` looks at — minus our own mirrors,
/// whose pairs watch them already. A new folder or a `.kluis-folder`
/// arriving there wakes the discovery thread; a pass also re-arms the
/// watches, so a folder that arrives empty is watched before its metadata
/// lands.
struct Discovery {
    debouncer: Debounced<RecommendedWatcher>,
    watched: HashSet<PathBuf>,
    /// Dropped on shutdown, which ends the discovery thread.
    _wake: Option<SyncSender<()>>,
}

/// A cheap, cloneable handle for the IPC server and the tray app.
#[derive(Clone)]
pub struct AgentHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AgentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle")
            .field("home", &self.inner.home)
            .finish_non_exhaustive()
    }
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    handle: AgentHandle,
}

impl Agent {
    /// Start one worker per configured pair. `identity` may be `None`
    /// (locked): work queues until [`AgentHandle::unlock`].
    pub fn start(
        home: AgentHome,
        opts: AgentOptions,
        identity: Option<Identity>,
    ) -> Result<Agent, AgentError> {
        let config = Config::load(&home)?;
        let device = config.device_name();
        let inner = Arc::new(Inner {
            home: home.clone(),
            device: device.clone(),
            identity: Arc::new(RwLock::new(identity.map(Arc::new))),
            group_keys: Arc::new(RwLock::new((0, Arc::new(Vec::new())))),
            pairs: Mutex::new(Vec::new()),
            activity: Arc::new(Mutex::new(VecDeque::new())),
            stopped: AtomicBool::new(false),
            stop_cv: (Mutex::new(false), std::sync::Condvar::new()),
            socket: Mutex::new(None),
            opts,
            discovery: Mutex::new(None),
            discovery_thread: Mutex::new(None),
            shared_events: Mutex::new((0, VecDeque::new())),
            directory: Mutex::new(None),
            directory_view: Arc::new(RwLock::new((0, Arc::new(DirectoryView::default())))),
            directory_status: Mutex::new(None),
            directory_wake: Arc::new((Mutex::new(false), std::sync::Condvar::new())),
            directory_thread: Mutex::new(None),
            refresh_lock: Mutex::new(()),
        });
        let mut runtimes = Vec::new();
        for p in &config.pairs {
            runtimes.push(start_pair(&inner, p)?);
        }
        *inner.pairs.lock().unwrap_or_else(|e| e.into_inner()) = runtimes;
        start_discovery(&inner)?;
        start_directory_thread(&inner)?;
        Ok(Agent {
            handle: AgentHandle { inner },
        })
    }

    /// A handle for control.
    pub fn handle(&self) -> AgentHandle {
        self.handle.clone()
    }

    /// Block until [`AgentHandle::shutdown`] is called, then join workers.
    pub fn wait(self) {
        let (lock, cv) = &self.handle.inner.stop_cv;
        let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*stopped {
            stopped = cv.wait(stopped).unwrap_or_else(|e| e.into_inner());
        }
        drop(stopped);
        self.handle.join();
    }
}

/// Lock a pair's folders and start its watcher and owner thread.
fn start_pair(
    inner: &Arc<Inner>,
    p: &crate::config::PairConfig,
) -> Result<PairRuntime, AgentError> {
    for d in [&p.plain, &p.mirror] {
        if !d.is_dir() {
            return Err(AgentError::Pair(format!(
                "folder {} of pair {} is missing (unmounted disk or logged-out sync client?)",
                d.display(),
                p.id
            )));
        }
    }
    let lock = PairLock::acquire(&p.plain, &p.mirror, &inner.home.lock_dir())?;
    let mut cfg = EngineConfig::new(
        p.plain.clone(),
        p.mirror.clone(),
        inner.home.index_path(&p.id),
        inner.device.clone(),
    );
    cfg.quiet = inner.opts.quiet;
    cfg.fsync = inner.opts.fsync;
    cfg.mass_delete_min = inner.opts.mass_delete_min;
    cfg.deletion_quiet = inner.opts.deletion_quiet;
    let shared = Arc::new(PairShared {
        status: Mutex::new(PairStatus {
            id: p.id.clone(),
            plain: p.plain.clone(),
            mirror: p.mirror.clone(),
            state: PairState::Starting,
            alert: None,
            last_sync: None,
            synced_files: 0,
            deferred: 0,
            errors: vec![],
            skips: vec![],
            polling: false,
            not_shared: vec![],
            notices: vec![],
            watcher_rescans: 0,
        }),
        activity: inner.activity.clone(),
        queued: AtomicBool::new(false),
        echo: Mutex::new(Default::default()),
        held: Mutex::new(None),
    });
    let (tx, rx) = sync_channel(64);
    let ptx = PairTx {
        tx,
        shared: shared.clone(),
    };
    // Made here, before the watch, so that it can be left out of it (never
    // with its parent: a missing mirror root is for the guard to report).
    let _ = std::fs::create_dir(p.mirror.join(kluis_sync::scan::STAGING_DIR));
    let w = watch(
        ptx.clone(),
        &[&p.plain, &p.mirror],
        inner.opts.debounce,
        inner.opts.force_poll,
    );
    let worker = Worker {
        cfg,
        id: p.id.clone(),
        rx,
        shared,
        identity: inner.identity.clone(),
        group_keys: inner.group_keys.clone(),
        directory: inner.directory_view.clone(),
        full_interval: inner.opts.full_interval,
        activity_cap: inner.opts.activity_cap,
    };
    let thread = std::thread::Builder::new()
        .name(format!("kluis-pair-{}", p.id))
        .spawn(move || worker.run())
        .map_err(AgentError::io("spawn", "pair worker"))?;
    Ok(PairRuntime {
        tx: ptx,
        thread: Some(thread),
        _watch: w,
        _lock: lock,
    })
}

/// Wakes the discovery thread; a pass is already queued when the channel
/// is full.
struct WakeDiscovery(SyncSender<()>);

impl Sink for WakeDiscovery {
    fn changed(&self, _: Vec<PathBuf>) {
        let _ = self.0.try_send(());
    }
    fn rescan(&self) {
        let _ = self.0.try_send(());
    }
}

/// Start the discovery watches and their thread. Without native watches
/// (exotic file systems) folders shared with you are found at unlock, when
/// group keys arrive, and when a caller asks (`discover_shared`).
fn start_discovery(inner: &Arc<Inner>) -> Result<(), AgentError> {
    let (wake, rx) = sync_channel::<()>(1);
    let Ok(debouncer) = Debounced::<RecommendedWatcher>::new(
        notify::Config::default(),
        inner.opts.debounce,
        Arc::new(WakeDiscovery(wake.clone())),
    ) else {
        return Ok(());
    };
    *inner.discovery.lock().unwrap_or_else(|e| e.into_inner()) = Some(Discovery {
        debouncer,
        watched: HashSet::new(),
        _wake: Some(wake),
    });
    let weak = Arc::downgrade(inner);
    let thread = std::thread::Builder::new()
        .name("kluis-discovery".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                let Some(inner) = weak.upgrade() else { break };
                if inner.stopped.load(Ordering::Acquire) {
                    break;
                }
                let h = AgentHandle { inner };
                h.arm_discovery();
                // Locked, or an unreadable folder: tried again at the next
                // event or unlock; callers who ask get the error.
                let _ = h.discover_shared();
            }
        })
        .map_err(AgentError::io("spawn", "discovery"))?;
    *inner
        .discovery_thread
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(thread);
    AgentHandle {
        inner: inner.clone(),
    }
    .arm_discovery();
    Ok(())
}

/// Start the thread that asks the directory at unlock, when poked and every
/// `directory_interval` (a timed wait on a condition variable, no polling).
fn start_directory_thread(inner: &Arc<Inner>) -> Result<(), AgentError> {
    let weak = Arc::downgrade(inner);
    let wake = inner.directory_wake.clone();
    let interval = inner.opts.directory_interval;
    let thread = std::thread::Builder::new()
        .name("kluis-directory".into())
        .spawn(move || {
            loop {
                {
                    let (lock, cv) = &*wake;
                    let mut poked = lock.lock().unwrap_or_else(|e| e.into_inner());
                    if !*poked {
                        poked = cv
                            .wait_timeout(poked, interval)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    *poked = false;
                }
                let Some(inner) = weak.upgrade() else { break };
                if inner.stopped.load(Ordering::Acquire) {
                    break;
                }
                // Locked, no directory, offline: the status says so; the
                // agent keeps what it learned before.
                let _ = AgentHandle { inner }.refresh_directory();
            }
        })
        .map_err(AgentError::io("spawn", "directory"))?;
    *inner
        .directory_thread
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some(thread);
    Ok(())
}

/// `dir` and the folders up to `depth` levels below it, skipping hidden
/// folders, symlinks and anything inside `skip` (our own mirrors).
fn discovery_dirs(dir: &Path, depth: usize, skip: &[PathBuf], out: &mut Vec<PathBuf>) {
    if skip.iter().any(|m| dir.starts_with(m)) {
        return;
    }
    out.push(dir.to_owned());
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        if !hidden && e.file_type().is_ok_and(|t| t.is_dir()) {
            discovery_dirs(&e.path(), depth - 1, skip, out);
        }
    }
}

impl AgentHandle {
    /// Watch every folder where a shared mirror may appear (see
    /// [`Discovery`]); drop watches on folders that went away or became
    /// one of our mirrors.
    fn arm_discovery(&self) {
        let Ok(config) = Config::load(&self.inner.home) else {
            return;
        };
        let mirrors: Vec<PathBuf> = config.pairs.iter().map(|p| p.mirror.clone()).collect();
        let mut want = Vec::new();
        for root in config.shared_search_roots() {
            discovery_dirs(&root, 2, &mirrors, &mut want);
        }
        let want: HashSet<PathBuf> = want.into_iter().collect();
        let mut g = self
            .inner
            .discovery
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let Some(d) = g.as_mut() else { return };
        let stale: Vec<PathBuf> = d.watched.difference(&want).cloned().collect();
        for dir in stale {
            let _ = d.debouncer.watcher().unwatch(&dir);
            d.watched.remove(&dir);
        }
        for dir in want {
            if !d.watched.contains(&dir)
                && d.debouncer
                    .watcher()
                    .watch(&dir, RecursiveMode::NonRecursive)
                    .is_ok()
            {
                d.watched.insert(dir);
            }
        }
    }

    fn each(&self, pair: Option<&str>, m: impl Fn() -> Msg) -> Result<(), AgentError> {
        let pairs = self.inner.pairs.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = false;
        for p in pairs.iter() {
            let id =
                p.tx.shared
                    .status
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .id
                    .clone();
            if pair.is_none_or(|want| want == id) {
                found = true;
                p.tx.send(m());
            }
        }
        if found || pair.is_none() {
            Ok(())
        } else {
            Err(AgentError::Pair(format!(
                "no folder pair {}",
                pair.unwrap_or_default()
            )))
        }
    }

    /// Status of the agent and every pair.
    pub fn status(&self) -> Status {
        let pairs = self.inner.pairs.lock().unwrap_or_else(|e| e.into_inner());
        Status {
            locked: self.is_locked(),
            device: self.inner.device.clone(),
            shared_with_you: self.shared_with_you(),
            directory: self
                .inner
                .directory_status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            pairs: pairs
                .iter()
                .map(|p| {
                    p.tx.shared
                        .status
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone()
                })
                .collect(),
        }
    }

    /// Whether the identity is locked.
    pub fn is_locked(&self) -> bool {
        self.inner
            .identity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// Pause one pair (by id) or all.
    pub fn pause(&self, pair: Option<&str>) -> Result<(), AgentError> {
        self.each(pair, || Msg::Pause)
    }

    /// Resume. `allow_deletions` lets exactly the deletions the guard
    /// reported through; `restore` puts them back from the other side
    /// instead. Either way the guard is judged again on a fresh scan.
    pub fn resume(
        &self,
        pair: Option<&str>,
        allow_deletions: bool,
        restore: bool,
    ) -> Result<(), AgentError> {
        self.each(pair, || Msg::Resume {
            allow_deletions,
            restore,
        })?;
        self.sync_now();
        Ok(())
    }

    /// Forget the identity. Nothing is encrypted or decrypted until unlock.
    /// The copy cached in the OS keyring is removed too, so the agent stays
    /// locked across restarts until the passphrase is given again.
    pub fn lock(&self) {
        *self
            .inner
            .identity
            .write()
            .unwrap_or_else(|e| e.into_inner()) = None;
        crate::keycache::KeyCache::for_home(&self.inner.home).forget();
        {
            let mut g = self
                .inner
                .group_keys
                .write()
                .unwrap_or_else(|e| e.into_inner());
            *g = (g.0 + 1, Arc::new(Vec::new()));
        }
        let _ = self.each(None, || Msg::Lock);
    }

    /// Open the identity file with `passphrase` and run queued work.
    pub fn unlock(&self, passphrase: &Zeroizing<String>) -> Result<(), AgentError> {
        let path = self.inner.home.identity_file();
        let bytes = std::fs::read(&path).map_err(AgentError::io("read", &path))?;
        let id = kluis_format::open_identity(&bytes, passphrase.as_bytes())
            .map_err(AgentError::Identity)?;
        crate::keycache::KeyCache::for_home(&self.inner.home).store(&id);
        self.unlock_with(id);
        Ok(())
    }

    /// Unlock with an already opened identity (the tray app, tests).
    pub fn unlock_with(&self, identity: Identity) {
        *self
            .inner
            .identity
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(identity));
        // Folders shared with you since the last start. A failure here
        // (unreadable sync folder, a pair that cannot be locked) must not
        // stop the unlock; `discover_shared` reports it to callers who ask.
        let _ = self.discover_shared();
        self.sync_now();
        // Departed members and rotated group keys, in the background.
        self.poke_directory();
    }

    /// Unwrap the file key of a Kluis file header with the unlocked
    /// identity, after checking the header MAC, so that `kluis decrypt` can
    /// decrypt without running the password KDF again (like `ssh-agent`). The
    /// identity never leaves the agent; the socket is owner-only, and a
    /// process that may talk to it could read the plaintext folder anyway.
    pub fn unwrap_file_key(&self, header: &[u8]) -> Result<kluis_format::FileKey, AgentError> {
        if header.len() > kluis_format::MAX_HEADER_LEN {
            return Err(AgentError::Protocol("header too long".into()));
        }
        let id = self.unlocked_identity()?;
        let mut r = header;
        let parsed = kluis_format::Header::read(&mut r).map_err(AgentError::Identity)?;
        if !r.is_empty() {
            return Err(AgentError::Protocol("bytes after the header".into()));
        }
        parsed.unwrap_file_key(&id).map_err(AgentError::Identity)
    }

    /// Run `f` with the unlocked keys (your identity and your groups' keys):
    /// for work in this process that needs them, such as the tray app's
    /// share dialog. The keys never leave the process; `IdentityLocked`
    /// when locked.
    pub fn with_keys<T>(
        &self,
        f: impl FnOnce(crate::share::Keys<'_>) -> T,
    ) -> Result<T, AgentError> {
        let identity = self.unlocked_identity()?;
        let groups = self.group_keys();
        Ok(f(crate::share::Keys {
            identity: &identity,
            groups: &groups,
        }))
    }

    /// The unlocked identity (shared), or `IdentityLocked`.
    fn unlocked_identity(&self) -> Result<Arc<Identity>, AgentError> {
        self.inner
            .identity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or(AgentError::IdentityLocked)
    }

    /// Your groups' keys (all versions held).
    fn group_keys(&self) -> Arc<Vec<Identity>> {
        self.inner
            .group_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// The keys of the groups the user belongs to (fetched from the broker
    /// with `kluis_agent::share::groups::my_group_keys`): folders and files
    /// shared with a group open with them. Every pair re-reads its folder
    /// metadata and reconciles.
    pub fn set_group_keys(&self, keys: Vec<Identity>) {
        {
            let mut g = self
                .inner
                .group_keys
                .write()
                .unwrap_or_else(|e| e.into_inner());
            *g = (g.0 + 1, Arc::new(keys));
        }
        // Folders shared with a group become visible now (errors: as in unlock).
        let _ = self.discover_shared();
        self.sync_now();
    }

    /// Look for folders shared with you in the sync folders
    /// (`share::discover_shared`, with your key and your group keys), pair
    /// each new one under "Shared with me" in the configuration and start
    /// syncing it at once. Runs by itself on unlock and when group keys
    /// arrive; the tray app may call it any time. Needs the identity.
    pub fn discover_shared(&self) -> Result<Vec<crate::share::Discovered>, AgentError> {
        let id = self.unlocked_identity()?;
        let groups = self.group_keys();
        let mut config = Config::load(&self.inner.home)?;
        let Some(dir) = config.shared_with_me_dir() else {
            return Err(AgentError::NoHome);
        };
        let before = config.pairs.len();
        let found = crate::share::discover_shared(
            &mut config,
            crate::share::Keys {
                identity: &id,
                groups: &groups,
            },
            &dir,
        )?;
        if config.pairs.len() > before {
            config.save(&self.inner.home)?;
            let mut pairs = self.inner.pairs.lock().unwrap_or_else(|e| e.into_inner());
            for p in &config.pairs[before..] {
                let rt = start_pair(&self.inner, p)?;
                rt.tx.trigger();
                pairs.push(rt);
                // The event the tray app notifies about ("shared with you").
                let (owner, title) = found
                    .iter()
                    .find(|d| d.mirror == p.mirror)
                    .map(|d| (d.owner.clone(), d.title.clone()))
                    .unwrap_or_default();
                let at = crate::pair::now_ns();
                self.push_activity(ActivityEntry {
                    pair: p.id.clone(),
                    action: SHARED_WITH_YOU,
                    path: p.plain.display().to_string(),
                    detail: Some(owner.clone()),
                    at,
                });
                let mut ev = self
                    .inner
                    .shared_events
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                ev.0 += 1;
                let seq = ev.0;
                ev.1.push_back(SharedWithYou {
                    seq,
                    pair: p.id.clone(),
                    plain: p.plain.clone(),
                    mirror: p.mirror.clone(),
                    owner,
                    title,
                    at,
                });
                while ev.1.len() > SHARED_EVENTS_CAP {
                    ev.1.pop_front();
                }
            }
            drop(pairs);
            // The new mirrors are watched by their pairs now.
            self.arm_discovery();
        }
        Ok(found)
    }

    /// Folders shared with you that this agent paired while running, oldest
    /// first; `seq` grows by one per folder (see [`Status::shared_with_you`]).
    /// A caller that remembers the highest `seq` it showed notifies for the
    /// entries above it.
    pub fn shared_with_you(&self) -> Vec<SharedWithYou> {
        self.inner
            .shared_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .iter()
            .cloned()
            .collect()
    }

    /// Where the agent learns about departed members, rotated group keys and
    /// your group keys ([`crate::BrokerDirectory`] for the broker account on
    /// this device). Asked at once (when unlocked), at every unlock, every
    /// [`AgentOptions::directory_interval`], and on
    /// [`AgentHandle::refresh_directory`].
    pub fn set_directory(&self, directory: Arc<dyn Directory>) {
        *self
            .inner
            .directory
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(directory);
        // What the previous one said stays in force until this one answers.
        self.inner
            .directory_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(DirectoryStatus {
                refreshed_at: None,
                error: None,
                departed: Vec::new(),
            });
        self.poke_directory();
    }

    fn poke_directory(&self) {
        let (lock, cv) = &*self.inner.directory_wake;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }

    /// Ask the directory now, on this thread: first your group keys (handed
    /// to every pair when they changed, see [`AgentHandle::set_group_keys`]),
    /// then the members of every folder this device syncs. The view
    /// (departed members, members' current verified keys) reaches every
    /// pair, whose engine applies it at its next write into the folder: that
    /// file and every later one exclude departed people and use rotated
    /// group keys, and the folder metadata is rewritten accordingly (a
    /// notice in the pair's status and the activity log). Offline, the
    /// error is returned and kept in the status; the last view stays in
    /// force. `Ok` without a directory set.
    pub fn refresh_directory(&self) -> Result<(), AgentError> {
        let Some(dir) = self
            .inner
            .directory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return Ok(());
        };
        let id = self.unlocked_identity()?;
        let _one = self
            .inner
            .refresh_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let result = self.refresh_with(&*dir, &id);
        let mut st = self
            .inner
            .directory_status
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let st = st.get_or_insert(DirectoryStatus {
            refreshed_at: None,
            error: None,
            departed: Vec::new(),
        });
        match &result {
            Ok(departed) => {
                st.refreshed_at = Some(crate::pair::now_ns());
                st.error = None;
                st.departed = departed.clone();
            }
            Err(e) => st.error = Some(e.to_string()),
        }
        result.map(|_| ())
    }

    fn refresh_with(&self, dir: &dyn Directory, id: &Identity) -> Result<Vec<String>, AgentError> {
        if let Some(keys) = dir.group_keys(id).map_err(AgentError::Directory)? {
            let (_, have) = self
                .inner
                .group_keys
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let same = have.len() == keys.len()
                && have
                    .iter()
                    .zip(&keys)
                    .all(|(a, b)| a.recipient() == b.recipient());
            if !same {
                self.set_group_keys(keys);
            }
        }
        let groups = self.group_keys();
        let keys = crate::share::Keys {
            identity: id,
            groups: &groups,
        };
        let mut members = Vec::new();
        for p in &self.status().pairs {
            // A folder not (or no longer) shared with us has nothing to say.
            if let Ok(meta) = crate::share::open_folder(&p.mirror, keys) {
                // Keep the group key files in the mirror current, so the
                // folder opens without the broker (FORMAT.md §8.7). Best
                // effort: a failure leaves the old copy, the next refresh
                // tries again.
                if meta
                    .members
                    .iter()
                    .any(|m| m.kind == kluis_sync::MemberKind::Group)
                {
                    let _ = crate::share::group_files::publish_all(&p.mirror, keys, &mut |g| {
                        dir.group_key_file(g)
                    });
                }
                members.extend(meta.members);
            }
        }
        let view = dir.lookup(&members).map_err(AgentError::Directory)?;
        let departed = view.departed.clone();
        let mut g = self
            .inner
            .directory_view
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if *g.1 != view {
            *g = (g.0 + 1, Arc::new(view));
        }
        Ok(departed)
    }

    fn push_activity(&self, entry: ActivityEntry) {
        let mut log = self
            .inner
            .activity
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        log.push_back(entry);
        while log.len() > self.inner.opts.activity_cap {
            log.pop_front();
        }
    }

    /// Reconcile every pair now.
    pub fn sync_now(&self) {
        let pairs = self.inner.pairs.lock().unwrap_or_else(|e| e.into_inner());
        for p in pairs.iter() {
            p.tx.trigger();
        }
    }

    /// The last `limit` activity entries, oldest first.
    pub fn activity(&self, limit: usize) -> Vec<ActivityEntry> {
        let log = self
            .inner
            .activity
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        log.iter()
            .skip(log.len().saturating_sub(limit))
            .cloned()
            .collect()
    }

    /// Conflict copies (`… (conflict <device> <date>)…`, read by
    /// [`kluis_sync::copy_names`]) in every pair.
    pub fn conflicts(&self) -> Vec<ConflictEntry> {
        let mut out = Vec::new();
        for st in self.status().pairs {
            let Ok(idx) = kluis_sync::index::Index::open(&self.inner.home.index_path(&st.id))
            else {
                continue;
            };
            if let Ok(all) = idx.load() {
                out.extend(
                    all.keys()
                        .filter(|p| kluis_sync::copy_names::is_conflict_copy(p))
                        .map(|p| ConflictEntry {
                            pair: st.id.clone(),
                            path: p.clone(),
                        }),
                );
            }
        }
        out
    }

    /// Stop all workers (the IPC server exits too).
    pub fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        self.poke_directory();
        // Dropping the watches and the wake-up sender ends the discovery thread.
        *self
            .inner
            .discovery
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
        let _ = self.each(None, || Msg::Stop);
        let (lock, cv) = &self.inner.stop_cv;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        // Wake the listener, blocked waiting for a client: on Windows its
        // one waiting pipe instance takes this connection.
        let endpoint = self
            .inner
            .socket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(endpoint) = endpoint {
            #[cfg(unix)]
            let _ = std::os::unix::net::UnixStream::connect(endpoint);
            #[cfg(windows)]
            let _ = crate::ipc::pipe::open(&endpoint);
        }
    }

    pub(crate) fn set_socket(&self, path: std::path::PathBuf) {
        *self.inner.socket.lock().unwrap_or_else(|e| e.into_inner()) = Some(path);
    }

    /// Whether shutdown was requested.
    pub fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Acquire)
    }

    fn join(&self) {
        let discovery = self
            .inner
            .discovery_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = discovery {
            let _ = t.join();
        }
        let directory = self
            .inner
            .directory_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = directory {
            let _ = t.join();
        }
        let mut pairs = self.inner.pairs.lock().unwrap_or_else(|e| e.into_inner());
        for p in pairs.iter_mut() {
            if let Some(t) = p.thread.take() {
                let _ = t.join();
            }
        }
        pairs.clear();
    }
}
