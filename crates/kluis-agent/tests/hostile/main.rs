//! A hostile sync client between two devices of one user (issue 17).
//!
//! Two agent homes share one identity; each has its own plaintext folder
//! and its own sync folder. `cloud::Cloud` replicates between the two sync
//! folders the way Dropbox and OneDrive do at their worst: in-place
//! downloads in chunks with pauses, temp file + rename, "(dev-b's conflicted
//! copy DATE)" renames of a device's *own* ciphertext when both sides
//! changed a file with the winner downloaded after a delay, propagated
//! deletions. `user::User` edits, creates, renames and deletes files on
//! both devices (often the same file on both before either syncs) while
//! both agents are SIGKILLed and restarted at seeded moments, and records
//! every version written.
//!
//! When both devices have converged, every version must be current (under
//! its name or as a conflict copy) or superseded (a later save or deletion
//! on a device replaced it); no sync folder may hold a plaintext name or
//! content, and no file anywhere may hold content no user wrote.
//!
//! `hostile_sync` is the short seeded run of `cargo test`;
//! `tests/hostile-sync.sh SEED SECONDS` runs the same harness longer.
//!
//! `guard::*` empty or remove one device's sync folder under both agents,
//! with the real mass-deletion guard, and restore it (issue 17, point 5).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, reason = "tests")]

#[path = "../common/mod.rs"]
mod common;

mod check;
mod cloud;
mod device;
mod guard;
mod user;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kluis_format::Identity;
use rand_core::{Rng, SeedableRng};

use common::{GuardOpts, kls_files, plain_tree, rng, temps, wait_for};
use device::Device;

/// The tests of this target each run two agents and time-sensitive
/// steps: one at a time.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE.lock().unwrap_or_else(|e| e.into_inner())
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

const FOLDER_META: &str = ".kluis-folder";

/// Two devices of one user; A runs and has created the folder metadata.
fn two_devices(root: &Path) -> (Identity, [Device; 2]) {
    two_devices_with(root, None)
}

/// `two_devices`, both with the real mass-deletion guard when given.
fn two_devices_with(root: &Path, guard: Option<GuardOpts>) -> (Identity, [Device; 2]) {
    let id = Identity::generate(&mut rng());
    let secret = id.to_secret_bytes();
    let mut a = Device::new(root, "dev-a", &secret[..]);
    let mut b = Device::new(root, "dev-b", &secret[..]);
    a.guard = guard;
    b.guard = guard;
    a.start();
    wait_for("dev-a's folder metadata", Duration::from_secs(120), || {
        a.mirror.join(FOLDER_META).exists().then_some(())
    });
    (id, [a, b])
}

/// Activity of both agents, collected while they run (each restart starts
/// a new log).
#[derive(Default)]
struct Activity(BTreeSet<(i64, &'static str, String, String, String)>);

impl Activity {
    fn collect(&mut self, devs: &[Device]) {
        for d in devs {
            for e in d.activity() {
                self.0.insert((
                    e.at,
                    d.name,
                    e.action.to_string(),
                    e.path,
                    e.detail.unwrap_or_default(),
                ));
            }
        }
    }

    /// The entries that mention `name` (a file name without its directory).
    fn about(&self, name: &str) -> Vec<String> {
        let stem = name.rsplit('/').next().unwrap_or(name);
        let stem = stem.strip_suffix(".txt").unwrap_or(stem);
        self.0
            .iter()
            .filter(|e| e.3.contains(stem) || e.4.contains(stem))
            .map(|(at, dev, action, path, detail)| {
                format!("      {at} {dev}: {action} {path} {detail}")
            })
            .collect()
    }
}

#[test]
fn hostile_sync() {
    let _alone = alone();
    let seed: u64 = env("KLUIS_HOSTILE_SEED", 20261207);
    let secs: u64 = env("KLUIS_HOSTILE_SECS", 40);
    let converge: u64 = env("KLUIS_HOSTILE_CONVERGE_SECS", 300);
    eprintln!(
        "hostile sync: seed {seed}, {secs} s of work, {converge} s to converge \
         (KLUIS_HOSTILE_SEED / KLUIS_HOSTILE_SECS / KLUIS_HOSTILE_CONVERGE_SECS)"
    );
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (id, mut devs) = two_devices(dir.path());

    let shared = Arc::new(cloud::Shared::default());
    let client = cloud::Cloud::new(
        seed ^ 0xc10d,
        &[("dev-a", &devs[0].mirror), ("dev-b", &devs[1].mirror)],
    );
    let cloud_thread = {
        let shared = shared.clone();
        std::thread::spawn(move || client.run(&shared))
    };
    // Pair the second device once the folder metadata has reached it.
    wait_for(
        "the folder metadata on dev-b",
        Duration::from_secs(120),
        || devs[1].mirror.join(FOLDER_META).exists().then_some(()),
    );
    devs[1].start();
    for d in &devs {
        wait_for("a first sync", Duration::from_secs(120), || {
            d.idle().then_some(())
        });
    }

    let paths: Vec<(&'static str, PathBuf)> =
        devs.iter().map(|d| (d.name, d.plain.clone())).collect();
    let mut user = user::User::new(seed);
    let mut chaos = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xdead);
    let mut down: [Option<Instant>; 2] = [None, None];
    let mut activity = Activity::default();
    let mut last_look = Instant::now();
    let mut failures: Vec<String> = vec![];
    let work_end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < work_end && failures.is_empty() {
        let d = (chaos.next_u32() % 2) as usize;
        user.act(&paths, d);
        std::thread::sleep(Duration::from_millis(u64::from(
            30 + chaos.next_u32() % 450,
        )));
        if chaos.next_u32() % 12 == 0 {
            let victims: &[usize] = match chaos.next_u32() % 3 {
                0 => &[0],
                1 => &[1],
                _ => &[0, 1],
            };
            for &v in victims {
                if devs[v].running() {
                    activity.collect(&devs[v..=v]);
                    devs[v].kill();
                    let ctx = format!("after SIGKILL {} of {}", devs[v].kills, devs[v].name);
                    if let Err(e) = check::plain_is_known(&devs[v].plain, &user.ledger, &ctx) {
                        failures.push(e);
                    }
                    down[v] = Some(
                        Instant::now() + Duration::from_millis(u64::from(chaos.next_u32() % 2500)),
                    );
                }
            }
        }
        for (v, dev) in devs.iter_mut().enumerate() {
            if down[v].is_some_and(|t| Instant::now() >= t) {
                dev.start();
                down[v] = None;
            }
        }
        if last_look.elapsed() > Duration::from_secs(2) {
            last_look = Instant::now();
            activity.collect(&devs);
            for dev in &devs {
                if let Err(e) = check::no_plaintext_in(&dev.mirror) {
                    failures.push(format!("{}: {e}", dev.name));
                }
            }
        }
    }
    let work_took = started.elapsed();
    for dev in devs.iter_mut().filter(|d| !d.running()) {
        dev.start();
    }

    // Converge: the client has nothing left to do, both agents are idle
    // with no errors, both plaintext trees are equal, twice in a row.
    let end = Instant::now() + Duration::from_secs(converge);
    let mut stable = 0;
    let mut last_actions = None;
    let mut why = String::new();
    while failures.is_empty() {
        activity.collect(&devs);
        let st = shared.stats.lock().unwrap().clone();
        let idle: Vec<bool> = devs.iter().map(Device::idle).collect();
        let no_temps = devs
            .iter()
            .all(|d| temps(&d.plain).is_empty() && temps(&d.mirror).is_empty());
        let (ta, tb) = (plain_tree(&devs[0].plain), plain_tree(&devs[1].plain));
        let ok = st.quiet && idle.iter().all(|x| *x) && no_temps && ta == tb;
        if ok && last_actions == Some(st.actions) {
            stable += 1;
        } else {
            stable = 0;
        }
        last_actions = ok.then_some(st.actions);
        if stable >= 2 {
            break;
        }
        if Instant::now() > end {
            let only = |x: &std::collections::BTreeMap<String, Vec<u8>>,
                        y: &std::collections::BTreeMap<String, Vec<u8>>| {
                x.iter()
                    .filter(|(k, v)| y.get(*k) != Some(*v))
                    .map(|(k, _)| k.clone())
                    .collect::<Vec<_>>()
            };
            why = format!(
                "client quiet {}, agents idle {idle:?}, temp files gone {no_temps}\n  \
                 status dev-a: {:?}\n  status dev-b: {:?}\n  differing on dev-a: {:?}\n  differing on dev-b: {:?}",
                st.quiet,
                devs[0].status(),
                devs[1].status(),
                only(&ta, &tb),
                only(&tb, &ta)
            );
            failures.push(format!("the devices did not converge within {converge} s"));
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let converged_after = started.elapsed() - work_took;
    shared
        .stop
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let client = cloud_thread.join().unwrap();
    let st = shared.stats.lock().unwrap().clone();
    for dev in &mut devs {
        dev.kill();
    }

    // What must hold.
    for dev in &devs {
        if let Err(e) = check::no_plaintext_in(&dev.mirror) {
            failures.push(format!("{}: {e}", dev.name));
        }
        if let Err(e) = check::mirror_is_known(&dev.mirror, &id, &user.ledger, dev.name) {
            failures.push(e);
        }
        if let Err(e) = check::plain_is_known(&dev.plain, &user.ledger, dev.name) {
            failures.push(e);
        }
    }
    for (p, data) in client.server_files() {
        if p.contains(user::NAME_MARKER)
            || data.windows(user::MARKER.len()).any(|w| w == user::MARKER)
        {
            failures.push(format!("plaintext on the sync server: {p}"));
        }
    }
    let final_tree = plain_tree(&devs[0].plain);
    let lost = check::lost_versions(
        &user.ledger,
        &final_tree,
        &[("dev-a", &devs[0].plain), ("dev-b", &devs[1].plain)],
    );
    let conflict_copies = final_tree
        .keys()
        .filter(|k| k.contains("(conflict"))
        .count();
    let summary = format!(
        "seed {seed}: {} versions written ({} saves, {} on both devices at once, {} renames, {} deletions), \
         {} superseded; {} files at the end ({conflict_copies} conflict copies); \
         kills: dev-a {}, dev-b {}; client: {} uploads, {} in-place and {} temp-file downloads, \
         {} conflicted copies, {} deletions; work {:.0} s, converged after {:.0} s more",
        user.ledger.versions.len(),
        user.saves,
        user.both_sides,
        user.renames,
        user.deletes,
        user.ledger.superseded.len(),
        final_tree.len(),
        devs[0].kills,
        devs[1].kills,
        st.uploads,
        st.in_place,
        st.temp_renames,
        st.conflicts,
        st.deletions,
        work_took.as_secs_f64(),
        converged_after.as_secs_f64()
    );
    eprintln!("{summary}");
    if !lost.is_empty() {
        let mut msg = format!(
            "{} of {} versions were lost:\n",
            lost.len(),
            user.ledger.versions.len()
        );
        for l in &lost {
            msg.push_str(&format!("  {l}\n"));
            let path = l
                .split(" to ")
                .nth(1)
                .and_then(|s| s.split(" at ").next())
                .unwrap_or("");
            for a in activity.about(path).iter().take(30) {
                msg.push_str(a);
                msg.push('\n');
            }
        }
        failures.push(msg);
    }
    if !failures.is_empty() {
        let log = st
            .log
            .iter()
            .rev()
            .take(40)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        panic!(
            "{summary}\n{}\n{why}\nlast actions of the sync client:\n{log}\n\
             (rerun: KLUIS_HOSTILE_SEED={seed} KLUIS_HOSTILE_SECS={secs})",
            failures.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------
// Step by step: the provider renames a device's own ciphertext to a
// conflicted-copy name, and downloads the winner later.

/// Copy one file of a sync folder to the same place in another.
fn replicate(from: &Path, to: &Path, rel: &Path) {
    let t = to.join(rel);
    fs::create_dir_all(t.parent().unwrap()).unwrap();
    fs::copy(from.join(rel), &t).unwrap();
}

fn wait_idle(d: &Device) {
    wait_for(
        &format!("{} idle", d.name),
        Duration::from_secs(120),
        || d.idle().then_some(()),
    );
}

/// The ciphertext's path relative to the sync folder, once it differs from
/// `not` (and the agent is idle).
fn ciphertext(d: &Device, not: Option<&[u8]>) -> (PathBuf, Vec<u8>) {
    wait_for(
        &format!("{}'s ciphertext", d.name),
        Duration::from_secs(120),
        || {
            let files = kls_files(&d.mirror);
            let [f] = &files[..] else { return None };
            let bytes = fs::read(f).ok()?;
            (Some(&bytes[..]) != not && d.idle())
                .then(|| (f.strip_prefix(&d.mirror).unwrap().to_path_buf(), bytes))
        },
    )
}

/// `delay` between the two steps, or a SIGKILL and restart of dev-b.
fn own_ciphertext_as_a_conflicted_copy(delay: Duration, restart: bool) {
    let _alone = alone();
    let dir = tempfile::tempdir().unwrap();
    let (_id, [mut a, mut b]) = two_devices(dir.path());
    replicate(&a.mirror, &b.mirror, Path::new(FOLDER_META));
    b.start();
    wait_idle(&a);
    wait_idle(&b);

    // A file both devices have synced.
    fs::create_dir_all(a.plain.join("docs")).unwrap();
    fs::write(a.plain.join("docs/doc-10.txt"), b"base version").unwrap();
    let (rel, base) = ciphertext(&a, None);
    replicate(&a.mirror, &b.mirror, &rel);
    wait_for(
        "the base version on dev-b",
        Duration::from_secs(120),
        || {
            (fs::read(b.plain.join("docs/doc-10.txt")).ok()? == b"base version" && b.idle())
                .then_some(())
        },
    );

    // Both edit it; A's upload wins at the provider.
    fs::write(a.plain.join("docs/doc-10.txt"), b"dev-a's edit, the winner").unwrap();
    let (_, winner) = ciphertext(&a, Some(&base));
    fs::write(
        b.plain.join("docs/doc-10.txt"),
        b"dev-b's edit, must survive",
    )
    .unwrap();
    let (_, _) = ciphertext(&b, Some(&base));

    // Step 1: B's own ciphertext gets the conflicted-copy name.
    let name = rel.file_name().unwrap().to_str().unwrap();
    let cc = rel.with_file_name(cloud::Cloud::conflicted_copy_name(name, "dev-b", 0));
    fs::rename(b.mirror.join(&rel), b.mirror.join(&cc)).unwrap();
    if restart {
        // Killed before it reacts to the rename (its watcher waits 50 ms).
        b.kill();
    } else {
        std::thread::sleep(delay);
    }
    // Step 2: the winner is downloaded in place, in chunks, with pauses;
    // the restarted agent first sees the download begun.
    {
        use std::io::Write;
        let mut f = fs::File::create(b.mirror.join(&rel)).unwrap();
        for (i, chunk) in winner.chunks(3000).enumerate() {
            f.write_all(chunk).unwrap();
            if restart && i == 0 {
                b.start();
                wait_for("dev-b's first reconcile", Duration::from_secs(120), || {
                    b.status()?.last_sync
                });
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    wait_for("the winner on dev-b", Duration::from_secs(120), || {
        (fs::read(b.plain.join("docs/doc-10.txt")).ok()? == b"dev-a's edit, the winner" && b.idle())
            .then_some(())
    });
    let tree = plain_tree(&b.plain);
    let kept: Vec<&String> = tree
        .iter()
        .filter(|(_, v)| v.as_slice() == b"dev-b's edit, must survive")
        .map(|(k, _)| k)
        .collect();
    let in_trash = fs::read_dir(b.plain.join(".kluis-trash")).is_ok();
    assert!(
        kept.len() == 1 && kept[0].contains("(conflict"),
        "delay {delay:?}, restart {restart}: dev-b's edit is not kept as a conflict copy on dev-b: {kept:?}\n\
         dev-b's plaintext: {:?}\n.kluis-trash present: {in_trash}\nactivity of dev-b: {:#?}",
        tree.keys().collect::<Vec<_>>(),
        b.activity()
            .iter()
            .map(|e| format!(
                "{} {} {}",
                e.action,
                e.path,
                e.detail.clone().unwrap_or_default()
            ))
            .collect::<Vec<_>>()
    );
    a.kill();
    b.kill();
}

/// The delay of the reproduction.
#[test]
fn own_ciphertext_renamed_to_a_conflicted_copy_then_the_winner_in_chunks_1_5_s_later() {
    own_ciphertext_as_a_conflicted_copy(Duration::from_millis(1500), false);
}

/// The agent first sees the copy while the winner is half written.
#[test]
fn own_ciphertext_renamed_to_a_conflicted_copy_while_the_winner_is_downloaded() {
    own_ciphertext_as_a_conflicted_copy(Duration::ZERO, false);
}

#[test]
fn own_ciphertext_renamed_to_a_conflicted_copy_then_a_restart_then_the_winner() {
    own_ciphertext_as_a_conflicted_copy(Duration::ZERO, true);
}
