//! File watching with a quiet period, that never drops an overflow.
//!
//! A burst of events (a folder being copied in) should cost one reconcile
//! after the burst, not one per event: path events are collected until
//! they have been quiet for `quiet`, then handed over together. But the one
//! event that carries no path — the kernel's "queue overflowed, events were
//! lost" (`IN_Q_OVERFLOW`, surfaced by notify as a `Rescan` flag) — and
//! watcher errors must reach the agent at once, because after them only a
//! full rescan is correct. (`notify-debouncer-mini`, used before, keys its
//! map by path and silently dropped that event.)
//!
//! A watched root that is removed (or moved away) takes its watches with
//! it: they stay on the old folder, and a folder of the same name that
//! comes back (a sync client re-downloading the sync folder, a disk mounted
//! again) is not watched. The root's own `IN_DELETE_SELF` is no reliable
//! sign: the kernel sends it only once nothing holds the folder any more,
//! and the pair's lock file is held open in the plaintext root. So the
//! roots added with [`Debounced::watch_root`] are watched from their parent
//! folder too (not recursively; the parent's other entries are dropped
//! here), whose `IN_DELETE`, `IN_MOVED_*` and `IN_CREATE` of the root's
//! name come at once. A thread of their own then waits for the root to be
//! a directory again (a stat, every 100 ms at first and every second at
//! most, for as long as it is missing), watches it anew and asks for a
//! full rescan.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use notify::{Event, EventHandler, RecursiveMode, Watcher};

/// Where debounced events go.
pub(crate) trait Sink: Send + Sync + 'static {
    /// These paths changed and have been quiet since.
    fn changed(&self, paths: Vec<PathBuf>);
    /// Events may have been lost (overflow, watcher error): rescan all.
    fn rescan(&self);
}

/// A watcher whose events reach a [`Sink`] debounced. Dropping it stops
/// the watcher and then its debounce thread.
pub(crate) struct Debounced<W: Watcher> {
    watcher: Arc<Mutex<W>>,
    roots: Arc<Mutex<Vec<Root>>>,
}

/// A folder watched recursively, and the sub-folders left out of its watch.
#[derive(Clone)]
struct Root {
    path: PathBuf,
    exclude: Vec<PathBuf>,
}

/// What the watcher's thread tells the re-watch thread.
#[derive(Debug, PartialEq)]
enum Lost {
    /// This root was removed or moved away: its watch is gone.
    Root(PathBuf),
    /// The watcher failed: see whether a root is missing.
    Check,
}

/// How often a missing root is looked for: at first, and at most.
const ROOT_POLL_MIN: Duration = Duration::from_millis(100);
const ROOT_POLL_MAX: Duration = Duration::from_secs(1);

impl<W: Watcher + Send + 'static> Debounced<W> {
    /// Starts `W` with `config`; path events reach `sink` after `quiet`
    /// without new ones (and at most `10 × quiet` after the first, so a
    /// never-ending stream is still seen).
    pub fn new(
        config: notify::Config,
        quiet: Duration,
        sink: Arc<dyn Sink>,
    ) -> notify::Result<Self> {
        let (tx, rx) = channel::<Vec<PathBuf>>();
        let (lost_tx, lost_rx) = channel::<Lost>();
        let roots = Arc::new(Mutex::new(Vec::new()));
        let handler = Handler {
            sink: sink.clone(),
            paths: tx,
            roots: roots.clone(),
            lost: lost_tx,
        };
        // The watcher thread is woken for every file event, so it and the
        // debounce thread are batch threads (see `os::as_batch`).
        crate::os::as_batch(move || {
            let watcher = Arc::new(Mutex::new(W::new(handler, config)?));
            let debounce_sink = sink.clone();
            std::thread::Builder::new()
                .name("kluis-debounce".into())
                .spawn(move || debounce(&rx, quiet, debounce_sink.as_ref()))
                .map_err(notify::Error::io)?;
            // Holds the watcher weakly: dropping `Debounced` drops the
            // watcher, whose handler holds `lost_tx`, which ends the thread.
            let weak = Arc::downgrade(&watcher);
            let watched = roots.clone();
            std::thread::Builder::new()
                .name("kluis-rewatch".into())
                .spawn(move || rewatch(&weak, &watched, &lost_rx, sink.as_ref()))
                .map_err(notify::Error::io)?;
            Ok(Debounced { watcher, roots })
        })
    }

    /// The watcher, to add and remove paths.
    pub fn watcher(&self) -> MutexGuard<'_, W> {
        self.watcher.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watch `root` recursively, except its sub-folders `exclude` (when
    /// they exist), and watch it again whenever it is removed and comes
    /// back (see the module's documentation).
    pub fn watch_root(&self, root: &Path, exclude: &[&str]) -> notify::Result<()> {
        let root = Root {
            path: root.to_path_buf(),
            exclude: exclude.iter().map(|e| root.join(e)).collect(),
        };
        add_root(&mut *self.watcher(), &root)?;
        self.roots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(root);
        Ok(())
    }
}

fn add_root<W: Watcher>(w: &mut W, root: &Root) -> notify::Result<()> {
    w.watch(&root.path, RecursiveMode::Recursive)?;
    for d in &root.exclude {
        if d.is_dir() {
            let _ = w.unwatch(d);
        }
    }
    // Best effort: without it, a removed root is still seen by its own
    // watch's events, when the kernel sends them.
    if let Some(parent) = root.path.parent()
        && parent.is_dir()
    {
        let _ = w.watch(parent, RecursiveMode::NonRecursive);
    }
    Ok(())
}

/// Waits for lost roots to come back and watches them again; ends when the
/// watcher is dropped.
fn rewatch<W: Watcher>(
    watcher: &Weak<Mutex<W>>,
    roots: &Mutex<Vec<Root>>,
    lost: &Receiver<Lost>,
    sink: &dyn Sink,
) {
    let mut missing: Vec<PathBuf> = Vec::new();
    let mut wait = ROOT_POLL_MIN;
    loop {
        let got = if missing.is_empty() {
            match lost.recv() {
                Ok(m) => Some(m),
                Err(_) => return,
            }
        } else {
            match lost.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        let known: Vec<Root> = roots.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // A removal and a re-creation come as a few events: one re-watch.
        let got: Vec<Lost> = got.into_iter().chain(lost.try_iter()).collect();
        if got.is_empty() {
            wait = (wait * 2).min(ROOT_POLL_MAX);
        } else {
            wait = ROOT_POLL_MIN;
        }
        for l in got {
            match l {
                Lost::Root(p) => {
                    if !missing.contains(&p) {
                        missing.push(p);
                    }
                }
                Lost::Check => {
                    for r in &known {
                        if !r.path.is_dir() && !missing.contains(&r.path) {
                            missing.push(r.path.clone());
                        }
                    }
                }
            }
        }
        if missing.iter().all(|p| !p.is_dir()) {
            continue;
        }
        let Some(w) = watcher.upgrade() else { return };
        let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
        let mut back = 0;
        missing.retain(|p| {
            let Some(root) = known.iter().find(|r| &r.path == p) else {
                return false;
            };
            if !p.is_dir() {
                return true;
            }
            // The old watch is gone (removed) or follows the folder to
            // where it was moved: drop whatever is left of it.
            let _ = w.unwatch(p);
            let ok = add_root(&mut *w, root).is_ok();
            back += usize::from(ok);
            !ok
        });
        drop(w);
        if back > 0 {
            // Whatever arrived while the root was unwatched.
            sink.rescan();
        }
    }
}

/// What the watcher's own thread runs for each event.
struct Handler {
    sink: Arc<dyn Sink>,
    paths: Sender<Vec<PathBuf>>,
    roots: Arc<Mutex<Vec<Root>>>,
    lost: Sender<Lost>,
}

impl EventHandler for Handler {
    fn handle_event(&mut self, event: notify::Result<Event>) {
        let roots = self.roots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = lost_root(&event, roots.iter().map(|r| r.path.as_path())) {
            let _ = self.lost.send(l);
        }
        // The parents' watches: only the roots' own names matter (above).
        if let Ok(e) = &event
            && !roots.is_empty()
            && !e.paths.is_empty()
            && !e
                .paths
                .iter()
                .any(|p| roots.iter().any(|r| p.starts_with(&r.path)))
        {
            return;
        }
        drop(roots);
        on_event(self.sink.as_ref(), &self.paths, event);
    }
}

/// Whether `event` says a root's watch is gone: the root removed
/// (`IN_DELETE` in its parent, `IN_DELETE_SELF`), moved (`IN_MOVED_*` in
/// its parent, `IN_MOVE_SELF`: a rename of the root or of a folder above
/// it) or made (`IN_CREATE` in its parent: it was gone), or an error of
/// the watcher.
fn lost_root<'a>(
    event: &notify::Result<Event>,
    mut roots: impl Iterator<Item = &'a Path>,
) -> Option<Lost> {
    use notify::event::{EventKind, ModifyKind};
    match event {
        Err(_) => Some(Lost::Check),
        Ok(e)
            if matches!(
                e.kind,
                EventKind::Remove(_)
                    | EventKind::Create(_)
                    | EventKind::Modify(ModifyKind::Name(_))
            ) =>
        {
            roots
                .find(|r| e.paths.iter().any(|p| p == r))
                .map(|r| Lost::Root(r.to_path_buf()))
        }
        Ok(_) => None,
    }
}

fn on_event(sink: &dyn Sink, paths: &Sender<Vec<PathBuf>>, event: notify::Result<Event>) {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match event {
        Ok(e) if e.need_rescan() => sink.rescan(),
        Ok(e) if e.paths.is_empty() => {}
        // notify also watches opens (IN_OPEN). Opening or reading a file
        // changes nothing, but without this every file a viewer, indexer
        // or virus scanner opened, and every file the agent itself read
        // to encrypt it, cost a full reconcile of both trees.
        Ok(Event {
            kind:
                EventKind::Access(
                    AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read),
                ),
            ..
        }) => {}
        // The engine's own temp files: every new ciphertext is written as
        // one (create, open, write, close, rename away), so they are most
        // of the events of a large sync, and never a change to act on.
        Ok(e) if e.paths.iter().all(|p| is_temp(p)) => {}
        // The debounce thread only ends after the watcher has dropped us.
        Ok(e) => {
            let _ = paths.send(e.paths);
        }
        Err(_) => sink.rescan(),
    }
}

fn is_temp(p: &std::path::Path) -> bool {
    p.file_name().is_some_and(|n| {
        n.as_encoded_bytes()
            .starts_with(kluis_sync::scan::TEMP_PREFIX.as_bytes())
    })
}

fn debounce(rx: &Receiver<Vec<PathBuf>>, quiet: Duration, sink: &dyn Sink) {
    // Blocks with no timer while nothing happens; ends with the watcher.
    // Within a burst it polls the channel a few times per quiet period
    // instead of waiting on it: a thread blocked in `recv` is woken once
    // per event, and encrypting 10,000 files makes ~80,000 events, whose
    // wake-ups cost as much CPU as the watcher itself. Nobody is blocked
    // in `recv` while it sleeps, so sending an event wakes no one.
    let tick = (quiet / 4).clamp(Duration::from_millis(1), Duration::from_millis(50));
    while let Ok(first) = rx.recv() {
        let mut batch: HashSet<PathBuf> = first.into_iter().collect();
        let deadline = Instant::now() + quiet * 10;
        let mut last = Instant::now();
        loop {
            std::thread::sleep(tick);
            let mut got = false;
            loop {
                match rx.try_recv() {
                    Ok(more) => {
                        batch.extend(more);
                        got = true;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            let now = Instant::now();
            if got {
                last = now;
            }
            if now >= deadline || now.duration_since(last) >= quiet {
                break;
            }
        }
        sink.changed(batch.into_iter().collect());
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "tests: a poisoned lock should fail loudly"
)]
mod tests {
    use super::*;
    use notify::event::{EventKind, Flag, ModifyKind};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Record {
        changed: Mutex<Vec<Vec<PathBuf>>>,
        rescans: Mutex<usize>,
    }

    impl Sink for Record {
        fn changed(&self, mut paths: Vec<PathBuf>) {
            paths.sort();
            self.changed.lock().unwrap().push(paths);
        }
        fn rescan(&self) {
            *self.rescans.lock().unwrap() += 1;
        }
    }

    fn modify(p: &str) -> notify::Result<Event> {
        Ok(Event::new(EventKind::Modify(ModifyKind::Any)).add_path(PathBuf::from(p)))
    }

    #[test]
    fn an_overflow_or_a_watcher_error_asks_for_a_rescan_at_once() {
        let rec = Record::default();
        let (tx, _rx) = channel();
        // What notify's inotify backend emits for IN_Q_OVERFLOW: no path.
        on_event(
            &rec,
            &tx,
            Ok(Event::new(EventKind::Other).set_flag(Flag::Rescan)),
        );
        on_event(
            &rec,
            &tx,
            Err(notify::Error::generic("inotify read failed")),
        );
        assert_eq!(*rec.rescans.lock().unwrap(), 2);
        on_event(&rec, &tx, modify("/a"));
        assert_eq!(
            *rec.rescans.lock().unwrap(),
            2,
            "a path event is not a rescan"
        );
    }

    #[test]
    fn opening_or_reading_a_file_or_our_temp_files_is_not_a_change_but_closing_a_write_is() {
        use notify::event::{AccessKind, AccessMode};
        let rec = Record::default();
        let (tx, rx) = channel();
        let access = |k: AccessKind, p: &str| {
            Ok(Event::new(EventKind::Access(k)).add_path(PathBuf::from(p)))
        };
        on_event(
            &rec,
            &tx,
            access(AccessKind::Open(AccessMode::Any), "/opened"),
        );
        on_event(&rec, &tx, access(AccessKind::Read, "/read"));
        on_event(
            &rec,
            &tx,
            access(AccessKind::Close(AccessMode::Read), "/closed"),
        );
        on_event(
            &rec,
            &tx,
            access(AccessKind::Close(AccessMode::Write), "/written"),
        );
        on_event(&rec, &tx, modify("/modified"));
        on_event(&rec, &tx, modify("/d/.kluis-tmp-0123456789abcdef"));
        drop(tx);
        let got: Vec<PathBuf> = rx.iter().flatten().collect();
        assert_eq!(got, [PathBuf::from("/written"), PathBuf::from("/modified")]);
    }

    #[test]
    fn a_root_removed_or_moved_away_or_a_watcher_error_means_its_watch_is_lost() {
        use notify::event::{RemoveKind, RenameMode};
        let roots = [Path::new("/p"), Path::new("/m")];
        let ev = |k: EventKind, p: &str| -> notify::Result<Event> {
            Ok(Event::new(k).add_path(PathBuf::from(p)))
        };
        // IN_DELETE_SELF and IN_MOVE_SELF of a root, as notify reports them.
        assert_eq!(
            lost_root(
                &ev(EventKind::Remove(RemoveKind::Folder), "/m"),
                roots.into_iter()
            ),
            Some(Lost::Root(PathBuf::from("/m")))
        );
        assert_eq!(
            lost_root(
                &ev(EventKind::Modify(ModifyKind::Name(RenameMode::From)), "/p"),
                roots.into_iter()
            ),
            Some(Lost::Root(PathBuf::from("/p")))
        );
        assert_eq!(
            lost_root(&Err(notify::Error::generic("x")), roots.into_iter()),
            Some(Lost::Check)
        );
        // A file or folder inside a root is not the root.
        assert_eq!(
            lost_root(
                &ev(EventKind::Remove(RemoveKind::Folder), "/m/d"),
                roots.into_iter()
            ),
            None
        );
        assert_eq!(lost_root(&modify("/m"), roots.into_iter()), None);
    }

    #[test]
    fn a_root_removed_and_made_again_is_watched_again_and_rescanned() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let rec = Arc::new(Record::default());
        let d = Debounced::<notify::RecommendedWatcher>::new(
            notify::Config::default(),
            Duration::from_millis(20),
            rec.clone(),
        )
        .unwrap();
        d.watch_root(&root, &[]).unwrap();
        let wait = |what: &str, f: &dyn Fn() -> bool| {
            let end = Instant::now() + Duration::from_secs(60);
            while !f() {
                assert!(Instant::now() < end, "timed out waiting for {what}");
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        // A file held open in it (the pair lock) does not keep it watched.
        let _open = std::fs::File::create(root.join("lock")).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::create_dir(&root).unwrap();
        wait("the rescan", &|| *rec.rescans.lock().unwrap() >= 1);
        // The new folder is watched: a file made in it is an event.
        std::fs::write(root.join("new.txt"), b"x").unwrap();
        let new = root.join("new.txt");
        wait("the new file's event", &|| {
            rec.changed
                .lock()
                .unwrap()
                .iter()
                .flatten()
                .any(|p| *p == new)
        });
    }

    #[test]
    fn a_burst_becomes_one_batch_after_the_quiet_period() {
        let rec = Arc::new(Record::default());
        let (tx, rx) = channel();
        let sink = rec.clone();
        let t = std::thread::spawn(move || debounce(&rx, Duration::from_millis(50), sink.as_ref()));
        for p in ["/a", "/b", "/a"] {
            on_event(rec.as_ref(), &tx, modify(p));
        }
        while rec.changed.lock().unwrap().is_empty() {
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(tx);
        t.join().unwrap();
        assert_eq!(
            *rec.changed.lock().unwrap(),
            vec![vec![PathBuf::from("/a"), PathBuf::from("/b")]]
        );
    }
}
