//! A folder of a pair that is removed and comes back is watched again at
//! once (issue 17, point 5): its watch went with the old folder, and the
//! only other way to see what arrives in the new one is the periodic full
//! reconcile, set here to an hour so that only the watcher can pass.

use std::fs;
use std::path::Path;
use std::time::Duration;

mod common;

use common::{fast_opts, kls_files, rng, wait_for};
use kluis_agent::{Agent, AgentHandle, AgentHome, AgentOptions, Config, PairState};
use kluis_format::Identity;

const DEADLINE: Duration = Duration::from_secs(60);

fn opts() -> AgentOptions {
    AgentOptions {
        full_interval: Duration::from_secs(3600),
        ..fast_opts()
    }
}

fn start(dir: &Path) -> (Agent, std::path::PathBuf, std::path::PathBuf) {
    let home = AgentHome::in_dir(&dir.join("home"));
    let plain = dir.join("Kluis");
    let mirror = dir.join("Dropbox/Kluis");
    let mut cfg = Config::load(&home).unwrap();
    cfg.device = Some("testdev".into());
    cfg.add_pair(&plain, &mirror).unwrap();
    cfg.save(&home).unwrap();
    let agent = Agent::start(home, opts(), Some(Identity::generate(&mut rng()))).unwrap();
    (agent, plain, mirror)
}

fn idle(h: &AgentHandle) -> Option<i64> {
    let st = h.status();
    let p = &st.pairs[0];
    (p.state == PairState::Idle && p.errors.is_empty())
        .then_some(p.last_sync)
        .flatten()
}

/// Replace `root` by a new folder holding what `fill` puts in it: removed
/// with everything in it, then the new one renamed into place whole (a
/// sync client re-downloading the folder). Then make sure that the agent
/// has finished with it (a reconcile asked for after the new folder was
/// in place has ended), so that what comes next can only be seen by a
/// watch on the new folder.
fn replace_root(h: &AgentHandle, root: &Path, fill: impl FnOnce(&Path)) {
    fs::remove_dir_all(root).unwrap();
    let staged = root.with_extension("new");
    fs::create_dir(&staged).unwrap();
    fill(&staged);
    fs::rename(&staged, root).unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    h.sync_now();
    wait_for("a reconcile after the folder came back", DEADLINE, || {
        idle(h).filter(|t| *t > before)
    });
}

#[test]
fn a_removed_and_recreated_plaintext_folder_is_watched_again() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, plain, mirror) = start(dir.path());
    let h = agent.handle();
    wait_for("the first reconcile", DEADLINE, || idle(&h));
    replace_root(&h, &plain, |_| {});
    fs::write(plain.join("after.txt"), b"written into the new folder").unwrap();
    wait_for("the new file encrypted", DEADLINE, || {
        (kls_files(&mirror).len() == 1).then_some(())
    });
    assert!(
        h.status().pairs[0].watcher_rescans >= 1,
        "the lost watch is counted"
    );
    agent.handle().shutdown();
    agent.wait();
}

#[test]
fn a_removed_and_recreated_sync_folder_is_watched_again() {
    let dir = tempfile::tempdir().unwrap();
    let (agent, plain, mirror) = start(dir.path());
    let h = agent.handle();
    // A ciphertext of this folder, kept aside while the agent forgets it:
    // later it arrives in the new sync folder as from another device.
    // (`keep.txt` stays, so that neither folder is ever empty: that would
    // be for the mass-deletion guard.)
    fs::write(plain.join("keep.txt"), b"stays").unwrap();
    wait_for("keep.txt encrypted", DEADLINE, || {
        (kls_files(&mirror).len() == 1).then_some(())
    });
    let before = kls_files(&mirror);
    fs::write(plain.join("doc.txt"), b"from the other device").unwrap();
    let kls = wait_for("doc.txt encrypted", DEADLINE, || {
        kls_files(&mirror).into_iter().find(|k| !before.contains(k))
    });
    let rel = kls.strip_prefix(&mirror).unwrap().to_path_buf();
    let aside = dir.path().join("aside");
    copy_tree(&mirror, &aside);
    fs::remove_file(plain.join("doc.txt")).unwrap();
    wait_for("doc.txt deleted", DEADLINE, || {
        (!kls.exists()).then_some(())
    });
    wait_for("idle", DEADLINE, || idle(&h));
    // The new sync folder holds the folder's metadata (as a sync client
    // restores it), not yet the ciphertext.
    replace_root(&h, &mirror, |new| {
        copy_tree(&aside, new);
        fs::remove_file(new.join(&rel)).unwrap();
    });
    fs::rename(aside.join(&rel), mirror.join(&rel)).unwrap();
    let got = wait_for("doc.txt back from the sync folder", DEADLINE, || {
        fs::read(plain.join("doc.txt")).ok()
    });
    assert_eq!(got, b"from the other device");
    agent.handle().shutdown();
    agent.wait();
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            fs::copy(e.path(), &dst).unwrap();
        }
    }
}
