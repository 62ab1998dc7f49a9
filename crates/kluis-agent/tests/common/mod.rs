//! Helpers shared by the agent's integration-test targets (`tests.rs` and
//! `hostile/`): polling with a deadline, the agent as a child process (so
//! that a test can SIGKILL it), and walks of the two trees.
#![allow(dead_code, reason = "each test target uses a part of these helpers")]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use kluis_agent::{Agent, AgentHome, AgentOptions};
use kluis_format::Identity;

pub fn rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// Poll `f` until it returns Some, with a generous deadline; never a fixed
/// sleep as an assertion.
pub fn wait_for<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub fn fast_opts() -> AgentOptions {
    AgentOptions {
        quiet: Duration::from_millis(100),
        debounce: Duration::from_millis(50),
        mass_delete_min: 100_000,
        deletion_quiet: Duration::from_millis(500),
        ..AgentOptions::default()
    }
}

pub fn kls_files(mirror: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![mirror.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "kls") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The real mass-deletion guard for a child agent, instead of
/// `fast_opts()`'s (which never trips): `mass_delete_min` and
/// `deletion_quiet`.
#[derive(Clone, Copy, Debug)]
pub struct GuardOpts {
    pub mass_delete_min: usize,
    pub deletion_quiet: Duration,
}

/// The agent as a child process: run by the SIGKILL tests, never on its own.
/// Its home (with the identity's secret bytes in `id.secret`) is in
/// `KLUIS_CRASH_CHILD`; `KLUIS_CRASH_CHILD_GUARD` (`min,quiet_ms`), when
/// set, is its `GuardOpts`.
#[test]
#[ignore = "child process of the SIGKILL tests"]
fn crash_child() {
    let Some(dir) = std::env::var_os("KLUIS_CRASH_CHILD") else {
        return;
    };
    let home = AgentHome::in_dir(Path::new(&dir));
    let secret = fs::read(home.data.join("id.secret")).unwrap();
    let id = Identity::from_secret_bytes(&secret).unwrap();
    let mut opts = fast_opts();
    if let Ok(g) = std::env::var("KLUIS_CRASH_CHILD_GUARD") {
        let (min, ms) = g.split_once(',').unwrap();
        opts.mass_delete_min = min.parse().unwrap();
        opts.deletion_quiet = Duration::from_millis(ms.parse().unwrap());
    }
    let agent = Agent::start(home.clone(), opts, Some(id)).unwrap();
    let _ipc = kluis_agent::ipc::serve(agent.handle(), &home.socket_path()).unwrap();
    agent.wait();
}

pub fn spawn_child(home: &AgentHome) -> Child {
    spawn_child_with(home, None)
}

/// `spawn_child`, with the real mass-deletion guard when `guard` is given.
pub fn spawn_child_with(home: &AgentHome, guard: Option<GuardOpts>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    if let Some(g) = guard {
        cmd.env(
            "KLUIS_CRASH_CHILD_GUARD",
            format!("{},{}", g.mass_delete_min, g.deletion_quiet.as_millis()),
        );
    }
    cmd.args([
        "common::crash_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
        "-q",
    ])
    .env("KLUIS_CRASH_CHILD", &home.data)
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap()
}

/// Kills the child agent when a test ends, however it ends.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The plaintext tree as relative path -> content, without Kluis's own
/// files (`.kluis-*`, the trash) and the tests' save temp files (`*.swp`).
pub fn plain_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((d, prefix)) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".kluis-") || name.ends_with(".swp") {
                continue;
            }
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if e.path().is_dir() {
                stack.push((e.path(), rel));
            } else {
                out.insert(rel, fs::read(e.path()).unwrap_or_default());
            }
        }
    }
    out
}

/// Kluis temp files left in a tree (the trash not included).
pub fn temps(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                if name != ".kluis-trash" {
                    stack.push(e.path());
                }
            } else if name.starts_with(".kluis-tmp-") {
                out.push(e.path());
            }
        }
    }
    out
}
