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

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::{Duration, Instant};

use notify::{Event, EventHandler, Watcher};

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
    watcher: W,
}

impl<W: Watcher> Debounced<W> {
    /// Starts `W` with `config`; path events reach `sink` after `quiet`
    /// without new ones (and at most `10 × quiet` after the first, so a
    /// never-ending stream is still seen).
    pub fn new(
        config: notify::Config,
        quiet: Duration,
        sink: Arc<dyn Sink>,
    ) -> notify::Result<Self> {
        let (tx, rx) = channel::<Vec<PathBuf>>();
        let handler = Handler {
            sink: sink.clone(),
            paths: tx,
        };
        // The watcher thread is woken for every file event, so it and the
        // debounce thread are batch threads (see `os::as_batch`).
        crate::os::as_batch(move || {
            let watcher = W::new(handler, config)?;
            std::thread::Builder::new()
                .name("kluis-debounce".into())
                .spawn(move || debounce(&rx, quiet, sink.as_ref()))
                .map_err(notify::Error::io)?;
            Ok(Debounced { watcher })
        })
    }

    /// The watcher, to add and remove paths.
    pub fn watcher(&mut self) -> &mut W {
        &mut self.watcher
    }
}

/// What the watcher's own thread runs for each event.
struct Handler {
    sink: Arc<dyn Sink>,
    paths: Sender<Vec<PathBuf>>,
}

impl EventHandler for Handler {
    fn handle_event(&mut self, event: notify::Result<Event>) {
        on_event(self.sink.as_ref(), &self.paths, event);
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
