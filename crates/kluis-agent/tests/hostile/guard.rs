//! One device's sync folder goes away under both running agents and comes
//! back (issue 17, point 5), with the real mass-deletion guard.
//!
//! 200 files are synced on both devices. Then dev-b's sync folder is
//! emptied (`rm -rf` of its contents) or removed whole, as when a sync
//! client unlinks a folder; the client passes the deletions on to dev-a's
//! sync folder, so both guards trip. Then the folder comes back on dev-b,
//! all at once or a tenth every second (as a client re-downloads it; the
//! client uploads it again and brings it to dev-a), with a plain `kluis
//! resume` on both devices in the middle of a gradual return. Both alerts
//! must clear by themselves, both devices converge, and at no moment is a
//! plaintext file missing or in the trash on either device.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kluis_agent::{PairState, Request};
use kluis_sync::scan::{STAGING_DIR, TEMP_PREFIX};
use rand_core::{Rng, SeedableRng};

use crate::common::{GuardOpts, kls_files, plain_tree, temps};
use crate::device::Device;
use crate::{FOLDER_META, alone, cloud, two_devices_with};

const FILES: usize = 200;
const SEED: u64 = 20261217;
/// For each step to reach its state; generous, for a loaded CI machine.
const DEADLINE: Duration = Duration::from_secs(240);
/// The guard of `AgentOptions::default()`, with a short wave.
const GUARD: GuardOpts = GuardOpts {
    mass_delete_min: 10,
    deletion_quiet: Duration::from_secs(1),
};

/// How dev-b's sync folder goes away.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Loss {
    /// Everything in it is deleted; the folder stays.
    Contents,
    /// The folder itself is removed, and made again when files return.
    Root,
}

/// How it comes back.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Return {
    AtOnce,
    /// A tenth about every second, `kluis resume` on both devices halfway.
    Gradually,
}

struct World {
    devs: [Device; 2],
    shared: Arc<cloud::Shared>,
    client: Option<JoinHandle<cloud::Cloud>>,
    /// The plaintext both devices must hold, at every moment once synced.
    expected: BTreeMap<String, Vec<u8>>,
    /// Whether a file missing from a plaintext folder is a failure yet.
    synced: bool,
    rng: rand_chacha::ChaCha8Rng,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(c) = self.client.take() {
            let _ = c.join();
        }
    }
}

/// Every file of a sync folder, as the client replicates them (Kluis's
/// temp files and staging directory excluded): relative path -> bytes.
fn mirror_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) || name == STAGING_DIR {
                continue;
            }
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push((e.path(), rel));
            } else if ft.is_file() {
                out.insert(rel, fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// Files in a plaintext folder's `.kluis-trash`.
fn trashed(plain: &Path) -> Vec<String> {
    let trash = plain.join(".kluis-trash");
    mirror_files(&trash).into_keys().collect()
}

fn state(d: &Device) -> Option<(PairState, Option<String>)> {
    d.status()
        .map(|s| (s.state, s.alert.map(|a| a.to_string())))
}

impl World {
    /// Both devices running with the real guard, `FILES` files synced.
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let (_id, mut devs) = two_devices_with(dir.path(), Some(GUARD));
        let shared = Arc::new(cloud::Shared::default());
        let client = cloud::Cloud::new(
            SEED ^ 0xc10d,
            &[("dev-a", &devs[0].mirror), ("dev-b", &devs[1].mirror)],
        );
        let client = {
            let shared = shared.clone();
            std::thread::spawn(move || client.run(&shared))
        };
        crate::common::wait_for("the folder metadata on dev-b", DEADLINE, || {
            devs[1].mirror.join(FOLDER_META).exists().then_some(())
        });
        devs[1].start();
        let mut expected = BTreeMap::new();
        for i in 0..FILES {
            let rel = format!("dir-{:02}/file-{i:03}.txt", i % 10);
            let data = format!("file {i}\n{}", "kluis ".repeat(i * 5)).into_bytes();
            let p = devs[0].plain.join(&rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, &data).unwrap();
            expected.insert(rel, data);
        }
        let mut w = World {
            devs,
            shared,
            client: Some(client),
            expected,
            synced: false,
            rng: SeedableRng::seed_from_u64(SEED),
            _dir: dir,
        };
        w.converge("the first sync of both devices");
        w.synced = true;
        w
    }

    /// Everything both devices show, for a failure report.
    fn report(&self) -> String {
        let st = self.shared.stats.lock().unwrap().clone();
        let mut out = String::new();
        for d in &self.devs {
            let tree = plain_tree(&d.plain);
            let missing: Vec<&String> = self
                .expected
                .keys()
                .filter(|k| tree.get(*k) != self.expected.get(*k))
                .take(10)
                .collect();
            out.push_str(&format!(
                "{}: {:?}\n  {} ciphertexts, missing or different in plaintext: {missing:?}, \
                 trashed: {:?}\n  last activity:\n",
                d.name,
                d.status(),
                kls_files(&d.mirror).len(),
                trashed(&d.plain),
            ));
            let act = d.activity();
            for e in act.iter().rev().take(25).rev() {
                out.push_str(&format!(
                    "    {} {} {} {}\n",
                    e.at,
                    e.action,
                    e.path,
                    e.detail.clone().unwrap_or_default()
                ));
            }
        }
        out.push_str(&format!("client quiet {}; last actions:\n", st.quiet));
        for l in st.log.iter().rev().take(25).rev() {
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    /// Once both devices have synced: no plaintext file may be missing,
    /// changed or trashed on either device, at any moment.
    fn check_nothing_lost(&self, during: &str) {
        if !self.synced {
            return;
        }
        for d in &self.devs {
            let tree = plain_tree(&d.plain);
            let trash = trashed(&d.plain);
            let lost = self.expected.iter().any(|(k, v)| tree.get(k) != Some(v));
            assert!(
                !lost && trash.is_empty(),
                "{during}: a plaintext file of {} was lost or trashed\n{}",
                d.name,
                self.report()
            );
        }
    }

    /// Wait, checking that nothing is lost meanwhile, until `f` holds.
    fn wait(&self, what: &str, mut f: impl FnMut(&World) -> bool) {
        let end = Instant::now() + DEADLINE;
        loop {
            self.check_nothing_lost(what);
            if f(self) {
                return;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what} ({} s)\n{}",
                DEADLINE.as_secs(),
                self.report()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `wait` for `d` (no condition), still checking.
    fn pause(&self, what: &str, d: Duration) {
        let end = Instant::now() + d;
        self.wait(what, |_| Instant::now() >= end);
    }

    /// Both devices idle without an alert or errors, holding the expected
    /// plaintext and `FILES` ciphertexts, the client quiet, no temp files:
    /// twice in a row with no client action between.
    fn converge(&self, what: &str) {
        let mut last: Option<u64> = None;
        let mut stable = 0;
        self.wait(what, |w| {
            let st = w.shared.stats.lock().unwrap().clone();
            let ok = st.quiet
                && w.devs.iter().all(|d| {
                    d.idle()
                        && state(d).is_some_and(|(_, alert)| alert.is_none())
                        && plain_tree(&d.plain) == w.expected
                        && kls_files(&d.mirror).len() == FILES
                        && d.mirror.join(FOLDER_META).is_file()
                        && temps(&d.plain).is_empty()
                        && temps(&d.mirror).is_empty()
                });
            if ok && last == Some(st.actions) {
                stable += 1;
            } else {
                stable = 0;
            }
            last = ok.then_some(st.actions);
            stable >= 2
        });
    }

    /// dev-b's sync folder goes away and comes back; both devices must come
    /// back to `converge` by themselves.
    fn round(&mut self, loss: Loss, ret: Return) {
        let what = format!("{loss:?} of dev-b's sync folder, returned {ret:?}");
        eprintln!("guard: {what}");
        let started = Instant::now();
        let mirror = self.devs[1].mirror.clone();
        let saved = mirror_files(&mirror);
        match loss {
            Loss::Contents => {
                for e in fs::read_dir(&mirror).unwrap().flatten() {
                    if e.file_type().unwrap().is_dir() {
                        fs::remove_dir_all(e.path()).unwrap();
                    } else {
                        fs::remove_file(e.path()).unwrap();
                    }
                }
            }
            Loss::Root => fs::remove_dir_all(&mirror).unwrap(),
        }
        // The client has passed the deletions on to dev-a; both guards
        // hold them (dev-b without its root stops with an error instead).
        self.wait(&format!("{what}: the guard on both devices"), |w| {
            let alert =
                |d: &Device| state(d).is_some_and(|(s, a)| s == PairState::Alert && a.is_some());
            kls_files(&w.devs[0].mirror).is_empty()
                && alert(&w.devs[0])
                && (alert(&w.devs[1])
                    || loss == Loss::Root
                        && state(&w.devs[1]).is_some_and(|(s, _)| s == PairState::Error))
        });
        // It stays held while nothing comes back.
        self.pause(
            &format!("{what}: while the folder is away"),
            GUARD.deletion_quiet * 3,
        );

        let mut order: Vec<(String, Vec<u8>)> = saved.into_iter().collect();
        for i in (1..order.len()).rev() {
            order.swap(i, self.rng.next_u32() as usize % (i + 1));
        }
        fs::create_dir_all(&mirror).unwrap();
        let put = |rel: &str, data: &[u8]| {
            let p = mirror.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, data).unwrap();
        };
        match ret {
            Return::AtOnce => {
                for (rel, data) in &order {
                    put(rel, data);
                }
            }
            Return::Gradually => {
                let tenth = order.len().div_ceil(10);
                for (k, chunk) in order.chunks(tenth).enumerate() {
                    for (rel, data) in chunk {
                        put(rel, data);
                    }
                    if k == 4 {
                        // A plain `kluis resume` while half is back must
                        // delete nothing.
                        for d in &self.devs {
                            let resumed = d.request(&Request::Resume {
                                pair: None,
                                allow_deletions: false,
                                restore: false,
                            });
                            assert!(resumed, "{what}: resume on {} failed", d.name);
                        }
                    }
                    self.pause(
                        &format!("{what}: returning, tenth {}", k + 1),
                        Duration::from_secs(1),
                    );
                }
            }
        }
        self.converge(&format!(
            "{what}: both devices back in sync, the alerts gone"
        ));
        eprintln!(
            "guard: {what}: converged {:.1} s after the folder went away",
            started.elapsed().as_secs_f64()
        );
    }
}

/// The two ways the folder goes away and the two ways it comes back, on
/// the same two devices (the guard must trip again after it has cleared).
#[test]
fn a_sync_folder_emptied_and_restored_at_once_then_removed_and_restored_gradually() {
    let _alone = alone();
    let mut w = World::new();
    w.round(Loss::Contents, Return::AtOnce);
    w.round(Loss::Root, Return::Gradually);
}

#[test]
fn a_sync_folder_removed_and_restored_at_once_then_emptied_and_restored_gradually() {
    let _alone = alone();
    let mut w = World::new();
    w.round(Loss::Root, Return::AtOnce);
    w.round(Loss::Contents, Return::Gradually);
}
