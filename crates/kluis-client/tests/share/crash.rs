//! Sharing survives being killed at any moment (docs/SHARING.md): a child
//! process shares and unshares a folder while the parent kills it with
//! SIGKILL at seeded random points; after the journal recovery that the
//! agent runs at start-up, every file still opens, for its old members with
//! its exact content, and for the added person either fully or not at all.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kluis_client::share::{self, Keys, Me};
use kluis_format::{EncryptOptions, Identity, Metadata};
use kluis_sync::FolderMeta;
use kluis_sync::folder_meta::FOLDER_META_FILE;
use rand::{Rng, SeedableRng};

use super::rng;

const BOB: &str = "bob@example.org";

fn me() -> Me {
    Me {
        email: "alice@example.org".into(),
        title: "Crash".into(),
    }
}

fn identity(dir: &Path, who: &str) -> Identity {
    Identity::from_secret_bytes(&fs::read(dir.join(format!("{who}.secret"))).unwrap()).unwrap()
}

/// The sharing process: run by the test below, never on its own.
#[test]
#[ignore = "child process of sharing_survives_sigkill_at_random_points"]
fn share_child() {
    let Some(dir) = std::env::var_os("KLUIS_SHARE_CHILD") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let (alice, bob) = (identity(&dir, "alice"), identity(&dir, "bob"));
    let mirror = dir.join("mirror");
    let say = |what: &str| {
        println!("{what}");
        let _ = std::io::Write::flush(&mut std::io::stdout());
    };
    say("ready");
    // Every file is prepared once progress reaches the total: then the
    // in-place batch is written under its journal.
    let mut progress = |p: &share::Progress| {
        if p.done == p.total {
            say("committing");
        }
    };
    // Errors (bob is not a member yet, after a kill before the metadata
    // was written) are fine: the parent only checks the files.
    let _ = match std::env::var("KLUIS_SHARE_OP").as_deref() {
        Ok("share") => share::share_folder(
            &mirror,
            Keys::own(&alice),
            &me(),
            &[kluis_sync::Member::user(BOB, bob.recipient().clone())],
            None,
            &mut progress,
            &mut rng(),
        ),
        _ => share::unshare_folder(
            &mirror,
            Keys::own(&alice),
            &me(),
            &[BOB.into()],
            false,
            &mut progress,
            &mut rng(),
        ),
    };
}

/// When to kill the child: `after` this long past the line `mark`.
struct Kill {
    mark: &'static str,
    after: Duration,
}

/// Runs the child; returns how long it ran after "ready" and after
/// "committing" (when it got that far).
fn run_child(dir: &Path, op: &str, kill: Option<Kill>) -> (Duration, Option<Duration>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash::share_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env("KLUIS_SHARE_CHILD", dir)
        .env("KLUIS_SHARE_OP", op)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let mut ready = None;
    let mut committing = None;
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let now = Instant::now();
        if line.contains("ready") {
            ready = Some(now);
        } else if line.contains("committing") {
            committing = Some(now);
        }
        if let Some(k) = &kill
            && line.contains(k.mark)
        {
            std::thread::sleep(k.after);
            let _ = child.kill();
            break;
        }
    }
    let _ = child.wait();
    let end = Instant::now();
    let ready = ready.expect("the child started");
    (end - ready, committing.map(|c| end - c))
}

fn opens(file: &Path, id: &Identity) -> Result<Vec<u8>, kluis_format::Error> {
    let bytes = fs::read(file).unwrap();
    let mut d = kluis_format::Decryptor::new(&bytes[..], id)?;
    let mut out = Vec::new();
    d.read_to_end(&mut out)
        .map_err(kluis_format::Error::from_io)?;
    Ok(out)
}

fn leftovers(mirror: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![mirror.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if name.starts_with(".kluis-journal") || name.starts_with(".kluis-tmp") {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn sharing_survives_sigkill_at_random_points() {
    let seed: u64 = std::env::var("KLUIS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261129);
    let iters: usize = std::env::var("KLUIS_SHARE_CRASH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    eprintln!("share crash test: seed {seed}, {iters} iterations");
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    let ids: Vec<Identity> = (0..4).map(|_| Identity::generate(&mut rng())).collect();
    for (who, id) in ["alice", "bob", "carol", "dave"].iter().zip(&ids) {
        fs::write(dir.join(format!("{who}.secret")), &id.to_secret_bytes()[..]).unwrap();
    }
    let (alice, bob) = (&ids[0], &ids[1]);
    let mirror = dir.join("mirror");
    fs::create_dir_all(&mirror).unwrap();
    let meta = FolderMeta::generate(alice.recipient(), &mut rng());
    fs::write(
        mirror.join(FOLDER_META_FILE),
        meta.seal(&mut rng()).unwrap(),
    )
    .unwrap();
    // Most files have room for Bob in their header's padding (in place,
    // journaled); one in five already holds three X-Wing stanzas (a copy,
    // renamed over the file).
    let mut expected = BTreeMap::new();
    for i in 0..100usize {
        let to: Vec<_> = if i % 5 != 0 {
            vec![alice.recipient().clone()]
        } else {
            ids.iter()
                .filter(|id| id.recipient() != bob.recipient())
                .map(|id| id.recipient().clone())
                .collect()
        };
        let plain: Vec<u8> = (0..(i * 997 % 40_000))
            .map(|k| (k * 31 + i) as u8)
            .collect();
        let path = mirror.join(format!("d{}/f{i:03}.kls", i % 8));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut out = Vec::new();
        kluis_format::encrypt(
            &plain[..],
            &mut out,
            &to,
            &Metadata::default(),
            EncryptOptions::default(),
            &mut rng(),
        )
        .unwrap();
        fs::write(&path, out).unwrap();
        expected.insert(path, plain);
    }

    // How long one uninterrupted share takes, and its in-place commit, to
    // spread the kills over them: every other kill lands in the commit, while
    // the journal exists.
    let (full, commit) = run_child(dir, "share", None);
    let commit = commit.expect("the share reached its commit");
    let (mut bob_reads, mut bob_locked, mut journals) = (0usize, 0usize, 0usize);
    for it in 0..iters {
        let op = if it % 2 == 0 { "unshare" } else { "share" };
        let (mark, window) = if it % 4 < 2 {
            ("ready", full)
        } else {
            ("committing", commit)
        };
        let at = Duration::from_micros(r.gen_range(0..=(window.as_micros() as u64 * 6 / 5)));
        run_child(dir, op, Some(Kill { mark, after: at }));
        // What the agent does at start-up, and every share before it starts.
        journals += kluis_sync::inplace::recover_all(&mirror);
        kluis_sync::exec::remove_temps(&mirror);
        let ctx = format!("seed {seed} iteration {it} ({op}, killed {at:?} after {mark})");
        assert_eq!(leftovers(&mirror), Vec::<PathBuf>::new(), "{ctx}");
        for (path, plain) in &expected {
            assert_eq!(
                &opens(path, alice).unwrap_or_else(|e| panic!("{ctx}: {}: {e}", path.display())),
                plain,
                "{ctx}"
            );
            match opens(path, bob) {
                Ok(p) => {
                    assert_eq!(&p, plain, "{ctx}");
                    bob_reads += 1;
                }
                Err(kluis_format::Error::NoMatchingRecipient) => bob_locked += 1,
                Err(e) => panic!("{ctx}: {}: Bob: {e}", path.display()),
            }
        }
    }
    eprintln!(
        "share crash test: one share took {full:?}, its commit {commit:?}; over all iterations Bob could open {bob_reads} files and not {bob_locked}; {journals} journal(s) recovered"
    );
    assert!(
        bob_reads > 0 && bob_locked > 0,
        "kills landed before and after the shares"
    );
}
