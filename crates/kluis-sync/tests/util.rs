//! Test helpers: devices (a plaintext folder + its own mirror copy + an
//! engine) and a replicator between mirror copies that behaves like a sync
//! client (in-place chunked writes, temp-file renames, conflicted copies).

#![allow(dead_code, reason = "not every test binary uses every helper")]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kluis_format::Identity;
use kluis_sync::{Clock, Engine, EngineConfig, Report};

/// Real time plus an offset, so quiet periods can be skipped.
pub struct TestClock {
    pub offset_ns: i64,
}

impl Clock for TestClock {
    fn now_ns(&self) -> i64 {
        kluis_sync::SystemClock.now_ns() + self.offset_ns
    }
}

pub struct Device {
    pub name: String,
    pub plain: PathBuf,
    pub mirror: PathBuf,
    pub engine: Engine,
    pub identity: Arc<Identity>,
    pub log: Vec<Report>,
    /// The test clock's lead over real time: an hour, plus a minute per
    /// sync, so that quiet periods (of changed files, of a wave of
    /// deletions) are over by the next sync.
    pub clock_offset: i64,
    /// How far the test clock moves at each sync (ns).
    pub clock_step: i64,
}

pub fn rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

impl Device {
    pub fn new(root: &Path, name: &str, identity: Arc<Identity>) -> Device {
        Self::build(root, name, identity, false)
    }

    /// With fsync on, as the agent runs by default.
    pub fn new_durable(root: &Path, name: &str, identity: Arc<Identity>) -> Device {
        Self::build(root, name, identity, true)
    }

    fn build(root: &Path, name: &str, identity: Arc<Identity>, fsync: bool) -> Device {
        let plain = root.join(name).join("plain");
        let mirror = root.join(name).join("mirror");
        fs::create_dir_all(&plain).unwrap();
        fs::create_dir_all(&mirror).unwrap();
        let mut cfg = EngineConfig::new(
            plain.clone(),
            mirror.clone(),
            root.join(name).join("index.db"),
            name.to_owned(),
        );
        cfg.quiet = Duration::from_millis(200);
        cfg.fsync = fsync;
        let engine = Engine::open(cfg).unwrap();
        Device {
            name: name.to_owned(),
            plain,
            mirror,
            engine,
            identity,
            log: vec![],
            clock_offset: 3_600_000_000_000,
            clock_step: 60_000_000_000,
        }
    }

    /// Reconcile with the quiet period already elapsed.
    pub fn sync(&mut self) -> Report {
        self.clock_offset += self.clock_step;
        let clock = TestClock {
            offset_ns: self.clock_offset,
        };
        let r = self
            .engine
            .reconcile(&self.identity, &clock, &mut rng())
            .unwrap();
        self.log.push(r.clone());
        r
    }

    pub fn write(&self, rel: &str, data: &[u8]) {
        let p = self.plain.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }

    /// Synced plaintext: without the noise the ignore rules keep local.
    pub fn tree(&self) -> BTreeMap<String, Vec<u8>> {
        let ig = kluis_sync::scan::Ignore::load(&self.plain);
        tree(&self.plain)
            .into_iter()
            .filter(|(k, _)| {
                k.trim_end_matches('/')
                    .split('/')
                    .all(|c| !ig.is_ignored(c))
            })
            .collect()
    }

    pub fn activity(&self, action: &str) -> Vec<String> {
        self.log
            .iter()
            .flat_map(|r| r.activity.iter())
            .filter(|a| a.action == action)
            .map(|a| a.path.clone())
            .collect()
    }
}

/// Files under `root` (relative path → content), skipping Kluis's own.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    walk(root, "", &mut out, true);
    out
}

/// Every file, including Kluis's own (temp files, trash).
pub fn tree_all(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    walk(root, "", &mut out, false);
    out
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>, skip_own: bool) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if skip_own && name.starts_with(".kluis-") {
            continue;
        }
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            out.insert(format!("{rel}/"), vec![]);
            walk(&e.path(), &rel, out, skip_own);
        } else if ft.is_file() {
            out.insert(rel, fs::read(e.path()).unwrap_or_default());
        }
    }
}

/// A stand-in for Dropbox between two mirror copies. It remembers what it
/// last saw on both sides; changes on one side are copied to the other in
/// chunks (in place, or via a temp file and rename), deletions travel, and
/// changes on both sides produce a "(conflicted copy …)" file.
pub struct Replicator {
    pub a: PathBuf,
    pub b: PathBuf,
    pub base: BTreeMap<String, Vec<u8>>,
    pub chunks: usize,
    pub via_temp: bool,
    pub copies: usize,
}

impl Replicator {
    pub fn new(a: &Path, b: &Path) -> Replicator {
        Replicator {
            a: a.into(),
            b: b.into(),
            base: BTreeMap::new(),
            chunks: 3,
            via_temp: false,
            copies: 0,
        }
    }

    fn put(&mut self, root: &Path, rel: &str, data: &[u8]) {
        let p = root.join(rel);
        if rel.ends_with('/') {
            fs::create_dir_all(&p).unwrap();
            return;
        }
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        // Alternate between in-place chunked writes and temp + rename.
        self.copies += 1;
        let target = if self.via_temp && self.copies % 2 == 0 {
            p.with_file_name(format!(
                ".{}.dbtmp",
                p.file_name().unwrap().to_string_lossy()
            ))
        } else {
            p.clone()
        };
        let mut f = fs::File::create(&target).unwrap();
        let step = data.len().div_ceil(self.chunks.max(1)).max(1);
        for c in data.chunks(step) {
            f.write_all(c).unwrap();
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(f);
        if target != p {
            fs::rename(&target, &p).unwrap();
        }
    }

    /// Write only the first `fraction` of a file (a sync still in flight).
    pub fn put_partial(&self, to_b: bool, rel: &str, fraction: f64) {
        let (src, dst) = if to_b {
            (&self.a, &self.b)
        } else {
            (&self.b, &self.a)
        };
        let data = fs::read(src.join(rel)).unwrap();
        let n = (data.len() as f64 * fraction) as usize;
        let p = dst.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, &data[..n]).unwrap();
    }

    /// The in-flight transfer completes.
    pub fn finish(&mut self, to_b: bool, rel: &str) {
        let (src, dst) = if to_b {
            (&self.a, &self.b)
        } else {
            (&self.b, &self.a)
        };
        let data = fs::read(src.join(rel)).unwrap();
        fs::write(dst.join(rel), &data).unwrap();
        self.base.insert(rel.to_owned(), data);
    }

    fn remove(root: &Path, rel: &str) {
        let p = root.join(rel);
        if rel.ends_with('/') {
            let _ = fs::remove_dir_all(p);
        } else {
            let _ = fs::remove_file(p);
        }
    }

    /// One full pass. Returns how many changes it carried.
    pub fn run(&mut self) -> usize {
        let ta = tree_all(&self.a);
        let tb = tree_all(&self.b);
        let ta: BTreeMap<_, _> = ta
            .into_iter()
            .filter(|(k, _)| !k.contains(".kluis-tmp-") && !k.ends_with(".dbtmp"))
            .collect();
        let tb: BTreeMap<_, _> = tb
            .into_iter()
            .filter(|(k, _)| !k.contains(".kluis-tmp-") && !k.ends_with(".dbtmp"))
            .collect();
        let mut keys: Vec<String> = ta
            .keys()
            .chain(tb.keys())
            .chain(self.base.keys())
            .cloned()
            .collect();
        keys.sort();
        keys.dedup();
        let mut n = 0;
        let mut new_base = BTreeMap::new();
        // Deletions deepest first, creations shallowest first.
        let mut deletes = vec![];
        for k in keys {
            let (x, y, base) = (ta.get(&k), tb.get(&k), self.base.get(&k));
            match (x, y) {
                (Some(x), Some(y)) if x == y => {
                    new_base.insert(k, x.clone());
                }
                (Some(x), Some(y)) => {
                    let a_changed = base != Some(x);
                    let b_changed = base != Some(y);
                    if a_changed && !b_changed {
                        self.put(&self.b.clone(), &k, x);
                        new_base.insert(k, x.clone());
                    } else if b_changed && !a_changed {
                        self.put(&self.a.clone(), &k, y);
                        new_base.insert(k, y.clone());
                    } else {
                        // Both changed: A wins the name, B's version becomes a
                        // conflicted copy on both sides.
                        let stem = k.strip_suffix(".kls").unwrap_or(&k);
                        let cc = format!("{stem} (conflicted copy 2026-11-28).kls");
                        self.put(&self.b.clone(), &k, x);
                        self.put(&self.a.clone(), &cc, y);
                        self.put(&self.b.clone(), &cc, y);
                        new_base.insert(k, x.clone());
                        new_base.insert(cc, y.clone());
                    }
                    n += 1;
                }
                (Some(x), None) => {
                    if base == Some(x) {
                        deletes.push((self.a.clone(), k.clone()));
                    } else {
                        self.put(&self.b.clone(), &k, x);
                        new_base.insert(k, x.clone());
                    }
                    n += 1;
                }
                (None, Some(y)) => {
                    if base == Some(y) {
                        deletes.push((self.b.clone(), k.clone()));
                    } else {
                        self.put(&self.a.clone(), &k, y);
                        new_base.insert(k, y.clone());
                    }
                    n += 1;
                }
                (None, None) => {}
            }
        }
        deletes.sort_by(|x, y| y.1.cmp(&x.1));
        for (root, k) in deletes {
            Self::remove(&root, &k);
        }
        self.base = new_base;
        n
    }
}

/// Reconcile and replicate until nothing moves (generous round limit).
pub fn converge(devs: &mut [&mut Device], rep: &mut Replicator) {
    for _ in 0..30 {
        let mut work = 0;
        for d in devs.iter_mut() {
            let r = d.sync();
            work += r.activity.len() + r.errors.len();
        }
        work += rep.run();
        if work == 0 {
            // Each device's `.kluisignore` is its own: compare what no
            // device's rules keep local.
            let rules: Vec<kluis_sync::scan::Ignore> = devs
                .iter()
                .map(|d| kluis_sync::scan::Ignore::load(&d.plain))
                .collect();
            let synced = |d: &Device| -> BTreeMap<String, Vec<u8>> {
                d.tree()
                    .into_iter()
                    .filter(|(k, _)| {
                        let k = k.trim_end_matches('/');
                        k != kluis_sync::scan::IGNORE_FILE
                            && !rules.iter().any(|r| r.is_ignored_path(k))
                    })
                    .collect()
            };
            let t0 = synced(devs[0]);
            if devs.iter().all(|d| synced(d) == t0) {
                return;
            }
        }
    }
    for d in devs.iter() {
        eprintln!(
            "--- {} plain: {:?}",
            d.name,
            d.tree().keys().collect::<Vec<_>>()
        );
        eprintln!(
            "--- {} mirror: {:?}",
            d.name,
            tree_all(&d.mirror).keys().collect::<Vec<_>>()
        );
        eprintln!(
            "--- {} last reports: {:#?}",
            d.name,
            d.log.iter().rev().take(2).collect::<Vec<_>>()
        );
    }
    panic!("devices did not converge");
}

/// Two devices of one user, A initialised first and its folder metadata
/// replicated to B.
pub fn pair(root: &Path) -> (Device, Device, Replicator) {
    let id = Arc::new(Identity::generate(&mut rng()));
    let mut a = Device::new(root, "laptop", id.clone());
    let mut b = Device::new(root, "desktop", id);
    a.sync();
    let mut rep = Replicator::new(&a.mirror, &b.mirror);
    rep.run();
    b.sync();
    (a, b, rep)
}
