//! `kluis start`: the README's first command, end to end.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::util::{User, run_ok};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Spawn `kluis start` and wait until it says it is running; returns the
/// child and everything it printed.
fn start(u: &User, port: u16) -> (Child, String) {
    start_with(u.cmd(), port)
}

/// Like [`start`], with a prepared command (environment, flags).
fn start_with(cmd: std::process::Command, port: u16) -> (Child, String) {
    start_cmd(cmd, &["--broker-port", &port.to_string()])
}

/// `kluis start` with `extra` flags; without `--broker-port`, on the port
/// the home chooses (or remembers).
fn start_cmd(mut cmd: std::process::Command, extra: &[&str]) -> (Child, String) {
    let mut child = cmd
        .args(["start", "--plain", "Kluis", "--sync", "Dropbox/Kluis"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !text.contains("Kluis is running") {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 || Instant::now() > deadline {
            let _ = child.kill();
            panic!("kluis start did not come up:\n{text}");
        }
        text.push_str(&line);
    }
    // Keep draining stdout so the agent never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    (child, text)
}

fn ciphertexts(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && e.path().is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn start_encrypts_what_is_dropped_and_restarts_cleanly() {
    let u = User::new();
    let port = free_port();
    let (mut child, first) = start(&u, port);
    assert!(first.contains("Created your Kluis identity"), "{first}");
    assert!(
        first.contains("Drop files in:") && first.contains("Ciphertext appears in:"),
        "{first}"
    );

    std::fs::write(u.path("Kluis/verslag.txt"), b"vertrouwelijk verslag").unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let file = loop {
        if let Some(f) = ciphertexts(&u.path("Dropbox/Kluis")).into_iter().next() {
            break f;
        }
        assert!(Instant::now() < deadline, "no ciphertext appeared");
        std::thread::sleep(Duration::from_millis(200));
    };
    // The mirror name reveals nothing, and the content decrypts with the
    // identity `start` created.
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(!name.contains("verslag"), "{name}");
    let bytes = loop {
        // The agent renames complete files into place; wait until it opens.
        let out = u.cmd().arg("decrypt").arg(&file).output().unwrap();
        if out.status.success() {
            break out.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "ciphertext never became readable"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(bytes, b"vertrouwelijk verslag");

    // With the agent running and unlocked, `kluis decrypt` needs no
    // passphrase: the agent unwraps the file key (no Argon2id run here).
    let no_passphrase = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kluis"));
        c.env("KLUIS_HOME", u.path("home"))
            .env("KLUIS_NO_KEYRING", "1")
            .env_remove("KLUIS_PASSPHRASE")
            .env_remove("KLUIS_PASSPHRASE_FILE")
            .stdin(Stdio::null());
        c
    };
    let out = run_ok(no_passphrase().arg("decrypt").arg(&file));
    assert_eq!(out.stdout, b"vertrouwelijk verslag");
    // Locked, the agent refuses, and decrypt falls back to the identity
    // file, which needs the passphrase (none available here).
    run_ok(u.cmd().arg("lock"));
    let out = no_passphrase().arg("decrypt").arg(&file).output().unwrap();
    assert!(
        !out.status.success(),
        "decrypted while the agent was locked"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("passphrase"), "{err}");
    run_ok(u.cmd().arg("unlock"));
    let out = run_ok(no_passphrase().arg("decrypt").arg(&file));
    assert_eq!(out.stdout, b"vertrouwelijk verslag");
    let status = run_ok(u.cmd().args(["status", "--json"]));
    assert!(String::from_utf8_lossy(&status.stdout).contains("Dropbox/Kluis"));
    // The folder names the account `start` created as its owner and first
    // member (FORMAT.md §8.2), not an empty owner and a bare key.
    let email = first
        .split("account ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(email.ends_with("@kluis.local"), "{first}");
    let shares = String::from_utf8(run_ok(u.cmd().arg("shares")).stdout).unwrap();
    assert!(shares.contains(&format!("owner {email}")), "{shares}");
    assert!(
        shares
            .lines()
            .any(|l| l.trim_start().starts_with(&email) && l.contains(" user ")),
        "{shares}"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    // A second run reuses the identity, account and folder pair.
    let (mut again, second) = start(&u, port);
    assert!(!second.contains("Created"), "{second}");
    assert!(
        second.contains(
            &first
                .lines()
                .find(|l| l.starts_with("Your key id"))
                .unwrap()
                .to_owned()
        )
    );
    again.kill().unwrap();
    again.wait().unwrap();
}

/// Whether this machine has a usable OS keyring (kernel keyutils on Linux).
fn keyring_works() -> bool {
    let entry = keyring::Entry::new("kluis-test", &format!("probe-{}", std::process::id()));
    let Ok(entry) = entry else { return false };
    let ok = entry.set_secret(b"probe").is_ok() && entry.get_secret().is_ok();
    let _ = entry.delete_credential();
    ok
}

#[test]
fn start_unlocks_from_the_os_keyring_until_locked() {
    if !keyring_works() {
        // CI runs this on Linux, where keyutils is part of the kernel.
        assert!(
            std::env::var_os("KLUIS_REQUIRE_KEYRING").is_none(),
            "KLUIS_REQUIRE_KEYRING is set but no OS keyring works here"
        );
        eprintln!("SKIPPED: no usable OS keyring on this machine");
        return;
    }
    let u = User::new();
    let port = free_port();
    let with_keyring = |c: &mut std::process::Command| {
        c.env_remove("KLUIS_NO_KEYRING");
    };
    let mut first_cmd = u.cmd();
    with_keyring(&mut first_cmd);
    let (mut child, _) = start_with(first_cmd, port);
    child.kill().unwrap();
    child.wait().unwrap();

    // No passphrase anywhere: the second start unlocks from the keyring.
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kluis"));
    c.env("KLUIS_HOME", u.path("home"))
        .env_remove("KLUIS_PASSPHRASE")
        .env_remove("KLUIS_PASSPHRASE_FILE")
        .env_remove("KLUIS_NO_KEYRING")
        .current_dir(u.dir.path())
        .stdin(Stdio::null());
    let (mut again, text) = start_with(c, port);
    assert!(text.contains("Unlocked from the OS keyring"), "{text}");
    // `kluis lock` forgets the cached copy: the next start needs the
    // passphrase again.
    let mut lock = u.cmd();
    with_keyring(&mut lock);
    run_ok(lock.arg("lock"));
    again.kill().unwrap();
    again.wait().unwrap();
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_kluis"));
    c.env("KLUIS_HOME", u.path("home"))
        .env_remove("KLUIS_PASSPHRASE")
        .env_remove("KLUIS_PASSPHRASE_FILE")
        .env_remove("KLUIS_NO_KEYRING")
        .current_dir(u.dir.path())
        .stdin(Stdio::null());
    let out = c
        .args(["start", "--broker-port", &port.to_string()])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "started without passphrase after lock"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("passphrase"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The embedded broker's URL as `kluis start` printed it.
fn broker_url(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Embedded broker:"))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no broker line in:\n{out}"))
        .to_owned()
}

/// Two users of one computer run `kluis start` at the same time: each
/// home's embedded broker gets its own free port (issue 17.11; it was a
/// fixed 47181, and the second user got "cannot listen"), and a restart
/// uses the same port again.
#[test]
fn two_homes_start_at_once_each_on_its_own_remembered_port() {
    let (a, b) = (User::new(), User::new());
    // b starts while a runs.
    let (mut ca, oa) = start_cmd(a.cmd(), &[]);
    let (mut cb, ob) = start_cmd(b.cmd(), &[]);
    let (ua, ub) = (broker_url(&oa), broker_url(&ob));
    assert_ne!(ua, ub);
    for (u, url) in [(&a, &ua), (&b, &ub)] {
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        assert!((28000..32000).contains(&port), "{url}");
        // The account talks to its own broker.
        let who = String::from_utf8(run_ok(u.cmd().args(["account", "whoami"])).stdout).unwrap();
        assert!(who.contains("@kluis.local"), "{who}");
    }
    ca.kill().unwrap();
    ca.wait().unwrap();
    let (mut again, out) = start_cmd(a.cmd(), &[]);
    assert_eq!(broker_url(&out), ua, "the port is remembered");
    again.kill().unwrap();
    again.wait().unwrap();
    cb.kill().unwrap();
    cb.wait().unwrap();
}
