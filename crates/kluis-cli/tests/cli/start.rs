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
    let mut child = u
        .cmd()
        .args([
            "start",
            "--broker-port",
            &port.to_string(),
            "--plain",
            "Kluis",
            "--sync",
            "Dropbox/Kluis",
        ])
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
    let status = run_ok(u.cmd().args(["status", "--json"]));
    assert!(String::from_utf8_lossy(&status.stdout).contains("Dropbox/Kluis"));
    child.kill().unwrap();
    child.wait().unwrap();

    // A second run reuses the identity, account and folder pair.
    let (mut again, second) = start(&u, port);
    assert!(!second.contains("Created"), "{second}");
    assert!(
        second.contains(
            &first
                .lines()
                .find(|l| l.starts_with("Your fingerprint"))
                .unwrap()
                .to_owned()
        )
    );
    again.kill().unwrap();
    again.wait().unwrap();
}
