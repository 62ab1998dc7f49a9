use std::io::{Read, Write};
use std::process::Stdio;

use crate::util::{User, run, run_fail, run_ok};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + i / 4096) as u8).collect()
}

#[test]
fn encrypt_decrypt_files_and_pipes() {
    let u = User::new();
    let me = u.keygen();
    assert!(me.starts_with("kluis1"), "{me}");
    std::fs::write(u.path("report.txt"), b"social-security numbers").unwrap();
    run_ok(
        u.cmd()
            .args(["encrypt", "-r", &me, "-o", "report.kluis", "report.txt"]),
    );
    let out = run_ok(u.cmd().args(["decrypt", "report.kluis"]));
    assert_eq!(out.stdout, b"social-security numbers");

    // stdin -> stdout in both directions.
    let mut enc = u
        .cmd()
        .args(["encrypt", "-r", &me])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    enc.stdin
        .take()
        .unwrap()
        .write_all(b"piped secret")
        .unwrap();
    let enc = enc.wait_with_output().unwrap();
    assert!(enc.status.success());
    let mut dec = u
        .cmd()
        .args(["decrypt", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    dec.stdin.take().unwrap().write_all(&enc.stdout).unwrap();
    let dec = dec.wait_with_output().unwrap();
    assert_eq!(dec.stdout, b"piped secret");

    // The passphrase can come from the environment too.
    let out = run_ok(
        std::process::Command::new(env!("CARGO_BIN_EXE_kluis"))
            .env("KLUIS_HOME", u.path("home"))
            .env("KLUIS_PASSPHRASE", "a long and careful passphrase")
            .current_dir(u.dir.path())
            .args(["decrypt", "report.kluis"]),
    );
    assert_eq!(out.stdout, b"social-security numbers");
}

#[test]
fn large_files_take_the_parallel_path_and_round_trip() {
    let u = User::new();
    let me = u.keygen();
    let data = pattern(9 * 1024 * 1024 + 123);
    std::fs::write(u.path("big.bin"), &data).unwrap();
    run_ok(
        u.cmd()
            .args(["encrypt", "-r", &me, "-o", "big.kluis", "big.bin"]),
    );
    run_ok(u.cmd().args(["decrypt", "-o", "big.out", "big.kluis"]));
    assert!(std::fs::read(u.path("big.out")).unwrap() == data);
    // The streaming path reads what the parallel path wrote, and vice versa.
    let out = run_ok(u.cmd().args(["decrypt", "big.kluis"]));
    assert!(out.stdout == data);
    let mut enc = u
        .cmd()
        .args(["encrypt", "-r", &me, "-o", "stream.kluis", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    enc.stdin.take().unwrap().write_all(&data).unwrap();
    assert!(enc.wait().unwrap().success());
    run_ok(
        u.cmd()
            .args(["decrypt", "-o", "stream.out", "stream.kluis"]),
    );
    assert!(std::fs::read(u.path("stream.out")).unwrap() == data);

    // A flipped byte deep in the payload: the parallel decryptor fails and
    // leaves no output file, and an existing output file is untouched.
    let mut bad = std::fs::read(u.path("big.kluis")).unwrap();
    let n = bad.len();
    bad[n / 2] ^= 0x40;
    std::fs::write(u.path("bad.kluis"), &bad).unwrap();
    run_fail(
        u.cmd().args(["decrypt", "-o", "bad.out", "bad.kluis"]),
        "failed to authenticate",
    );
    assert!(!u.path("bad.out").exists());
    std::fs::write(u.path("keep.txt"), b"precious").unwrap();
    run_fail(
        u.cmd().args(["decrypt", "-o", "keep.txt", "bad.kluis"]),
        "failed to authenticate",
    );
    assert_eq!(std::fs::read(u.path("keep.txt")).unwrap(), b"precious");
    // Truncated at a chunk boundary.
    std::fs::write(
        u.path("short.kluis"),
        &std::fs::read(u.path("big.kluis")).unwrap()[..n - 1000],
    )
    .unwrap();
    run_fail(
        u.cmd().args(["decrypt", "-o", "short.out", "short.kluis"]),
        "truncated",
    );
    assert!(!u.path("short.out").exists());
    // No temporary files are left behind by any of the failures.
    let leftovers: Vec<_> = std::fs::read_dir(u.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".kluis-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn parallel_path_at_chunk_and_batch_edges() {
    // Exactly 4 MiB (a whole number of chunks and of 64-chunk batches: the
    // last chunk is empty), one byte past a batch, one byte short of a chunk.
    let u = User::new();
    let me = u.keygen();
    for len in [4 << 20, (4 << 20) + (1 << 20) + 1, (5 << 20) - 1] {
        let data = pattern(len);
        std::fs::write(u.path("edge.bin"), &data).unwrap();
        run_ok(
            u.cmd()
                .args(["encrypt", "-r", &me, "-o", "edge.kluis", "edge.bin"]),
        );
        // The streaming decryptor checks every chunk the parallel path sealed.
        let out = run_ok(u.cmd().args(["decrypt", "edge.kluis"]));
        assert!(out.stdout == data, "round trip of {len} bytes");
        std::fs::remove_file(u.path("edge.kluis")).unwrap();
    }
}

#[test]
fn wrong_password_and_wrong_identity_are_clear() {
    let u = User::new();
    let me = u.keygen();
    std::fs::write(u.path("a.txt"), b"x").unwrap();
    run_ok(
        u.cmd()
            .args(["encrypt", "-r", &me, "-o", "a.kluis", "a.txt"]),
    );
    std::fs::write(u.path("pass"), "not the passphrase\n").unwrap();
    run_fail(
        u.cmd().args(["decrypt", "-o", "a.out", "a.kluis"]),
        "wrong password",
    );
    assert!(!u.path("a.out").exists());

    let other = User::new();
    other.keygen();
    std::fs::copy(u.path("a.kluis"), other.path("a.kluis")).unwrap();
    run_fail(
        other.cmd().args(["decrypt", "a.kluis"]),
        "no matching recipient",
    );
}

#[test]
fn bad_input_gets_one_line_and_exit_1() {
    let u = User::new();
    let me = u.keygen();
    std::fs::write(u.path("plain.txt"), b"not encrypted").unwrap();
    run_fail(u.cmd().args(["decrypt", "plain.txt"]), "not a Kluis file");
    run_fail(
        u.cmd().args(["encrypt", "-r", "kluis1nope", "plain.txt"]),
        "invalid recipient",
    );
    run_fail(
        u.cmd().args(["encrypt", "-r", &me, "missing.txt"]),
        "missing.txt",
    );
    run_fail(u.cmd().args(["encrypt", "plain.txt"]), "no recipients");
    run_fail(u.cmd().args(["keygen"]), "already exists");
    run_fail(u.cmd().args(["inspect", "plain.txt"]), "not a Kluis file");
    std::fs::write(u.path("bad.key"), b"KLUISKEY\x01\x01garbage").unwrap();
    run_fail(
        u.cmd().args(["decrypt", "-i", "bad.key", "plain.txt"]),
        "invalid identity file",
    );
    // Usage errors exit 2 (clap).
    let out = run(u.cmd().args(["encrypt", "--no-such-flag"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_on_every_command() {
    let u = User::new();
    for args in [
        vec!["--help"],
        vec!["keygen", "--help"],
        vec!["recipient", "--help"],
        vec!["encrypt", "--help"],
        vec!["decrypt", "--help"],
        vec!["inspect", "--help"],
        vec!["recipients", "--help"],
        vec!["recipients", "add", "--help"],
        vec!["recipients", "remove", "--help"],
        vec!["recipients", "list", "--help"],
    ] {
        let out = run_ok(u.cmd().args(&args));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}

#[test]
fn recipients_are_changed_in_place_without_touching_the_payload() {
    let alice = User::new();
    let a = alice.keygen();
    let bob = User::new();
    let b = bob.keygen();
    std::fs::write(alice.path("doc.txt"), pattern(50_000)).unwrap();
    run_ok(
        alice
            .cmd()
            .args(["encrypt", "-r", &a, "-o", "doc.kluis", "doc.txt"]),
    );
    let before = std::fs::read(alice.path("doc.kluis")).unwrap();
    run_ok(
        alice
            .cmd()
            .args(["recipients", "add", "-r", &b, "doc.kluis"]),
    );
    let after = std::fs::read(alice.path("doc.kluis")).unwrap();
    // Same payload: the files share the same tail beyond the header.
    let payload = 50_000 + 56 + 4 * 16;
    assert_eq!(
        &before[before.len() - payload..],
        &after[after.len() - payload..]
    );
    // FORMAT.md §4.7: the new stanza took its bytes from the padding.
    assert_eq!(after.len(), before.len());

    std::fs::copy(alice.path("doc.kluis"), bob.path("doc.kluis")).unwrap();
    let out = run_ok(bob.cmd().args(["decrypt", "doc.kluis"]));
    assert_eq!(out.stdout, pattern(50_000));
    let list = run_ok(alice.cmd().args([
        "recipients",
        "list",
        "-i",
        "home/identity.kluiskey",
        "doc.kluis",
    ]));
    let list = String::from_utf8(list.stdout).unwrap();
    assert_eq!(list.lines().count(), 2);
    assert!(list.contains("(you)"));

    // A stranger cannot change who has access, and the failed attempt
    // leaves the file byte-identical.
    let stranger = User::new();
    stranger.keygen();
    std::fs::copy(alice.path("doc.kluis"), stranger.path("doc.kluis")).unwrap();
    run_fail(
        stranger
            .cmd()
            .args(["recipients", "add", "-r", &b, "doc.kluis"]),
        "no matching recipient",
    );
    assert_eq!(std::fs::read(stranger.path("doc.kluis")).unwrap(), after);

    // Remove Bob by fingerprint.
    let fp = run_ok(bob.cmd().args(["recipient", "--key-id"]));
    let fp = String::from_utf8(fp.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    run_ok(
        alice
            .cmd()
            .args(["recipients", "remove", "-r", &fp, "doc.kluis"]),
    );
    std::fs::copy(alice.path("doc.kluis"), bob.path("doc2.kluis")).unwrap();
    run_fail(
        bob.cmd().args(["decrypt", "doc2.kluis"]),
        "no matching recipient",
    );
    let last = std::fs::read(alice.path("doc.kluis")).unwrap();
    assert_eq!(
        &last[last.len() - payload..],
        &before[before.len() - payload..]
    );
    // Removing the last recipient is refused and changes nothing.
    run_fail(
        alice
            .cmd()
            .args(["recipients", "remove", "-r", &a, "doc.kluis"]),
        "at least one recipient",
    );
    assert_eq!(std::fs::read(alice.path("doc.kluis")).unwrap(), last);
}

#[cfg(unix)]
fn inode(path: &std::path::Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
}

/// The header's length, from `kluis inspect` (no key needed).
fn header_len(u: &User, file: &str) -> usize {
    let out = String::from_utf8(run_ok(u.cmd().args(["inspect", file])).stdout).unwrap();
    let line = out.lines().find(|l| l.starts_with("Header:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Issue 17 point 9: `recipients add/remove` keep the header's padded size
/// and write it in place (same inode) when the padding has room, as
/// FORMAT.md §4.7 and §6 and `--help` say; they grow the header only when
/// they must, and say so. Before, every change grew a 4096-byte header to
/// 5284 and made a new file.
#[test]
fn recipients_add_and_remove_keep_the_header_size_and_the_file() {
    let alice = User::new();
    let a = alice.keygen();
    let others: Vec<String> = (0..3).map(|_| User::new().keygen()).collect();
    std::fs::write(alice.path("doc.txt"), pattern(70_000)).unwrap();
    run_ok(
        alice
            .cmd()
            .args(["encrypt", "-r", &a, "-o", "doc.kluis", "doc.txt"]),
    );
    let path = alice.path("doc.kluis");
    let before = std::fs::read(&path).unwrap();
    assert_eq!(header_len(&alice, "doc.kluis"), 4096);
    #[cfg(unix)]
    let ino = inode(&path);

    let out = run_ok(
        alice
            .cmd()
            .args(["recipients", "add", "-r", &others[0], "doc.kluis"]),
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("X-Wing") && err.contains("in place"), "{err}");
    let after = std::fs::read(&path).unwrap();
    assert_eq!(after.len(), before.len());
    assert_eq!(after[4096..], before[4096..], "payload untouched");
    assert_eq!(header_len(&alice, "doc.kluis"), 4096);
    #[cfg(unix)]
    assert_eq!(inode(&path), ino, "written in place");

    // Removing keeps the size too (the padding takes the bytes back).
    run_ok(
        alice
            .cmd()
            .args(["recipients", "remove", "-r", &others[0], "doc.kluis"]),
    );
    assert_eq!(std::fs::read(&path).unwrap().len(), before.len());
    #[cfg(unix)]
    assert_eq!(inode(&path), ino);

    // Three more X-Wing stanzas do not fit 4096 bytes: the file is
    // rewritten with an 8192-byte header, and the user is told.
    let out = run_ok(alice.cmd().args([
        "recipients",
        "add",
        "-r",
        &others[0],
        "-r",
        &others[1],
        "-r",
        &others[2],
        "doc.kluis",
    ]));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("grew from 4096 to 8192 bytes") && err.contains("rewritten whole"),
        "{err}"
    );
    assert_eq!(header_len(&alice, "doc.kluis"), 8192);
    let grown = std::fs::read(&path).unwrap();
    assert_eq!(grown[8192..], before[4096..]);
    assert_eq!(
        run_ok(alice.cmd().args(["decrypt", "doc.kluis"])).stdout,
        pattern(70_000)
    );

    // Adding someone who is already there changes nothing at all.
    let out = run_ok(
        alice
            .cmd()
            .args(["recipients", "add", "-r", &others[1], "doc.kluis"]),
    );
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("already had access"),
    );
    assert_eq!(std::fs::read(&path).unwrap(), grown);
}

/// Issue 17 point 9: a `--classical` file stays classical when shared (it
/// used to get an X-Wing stanza, 512 -> 1700 bytes), and grows by the
/// 256-byte steps of a small header only when it must.
#[test]
fn recipients_add_keeps_a_classical_file_classical() {
    let alice = User::new();
    let a = alice.keygen();
    let bob = User::new();
    let b = bob.keygen();
    std::fs::write(alice.path("x.txt"), b"klein dossier").unwrap();
    run_ok(
        alice
            .cmd()
            .args(["encrypt", "--classical", "-r", &a, "-o", "x.kluis", "x.txt"]),
    );
    assert_eq!(header_len(&alice, "x.kluis"), 512);
    let out = run_ok(alice.cmd().args(["recipients", "add", "-r", &b, "x.kluis"]));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("(X25519)"), "{err}");
    // 450 + 100 bytes do not fit 512: the next 256-byte step.
    assert!(err.contains("grew from 512 to 768 bytes"), "{err}");
    assert_eq!(header_len(&alice, "x.kluis"), 768);
    let list =
        String::from_utf8(run_ok(alice.cmd().args(["recipients", "list", "x.kluis"])).stdout)
            .unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        list.lines().all(|l| l.ends_with("X25519")),
        "only X25519 stanzas: {list}"
    );
    std::fs::copy(alice.path("x.kluis"), bob.path("x.kluis")).unwrap();
    assert_eq!(
        run_ok(bob.cmd().args(["decrypt", "x.kluis"])).stdout,
        b"klein dossier"
    );
}

/// The key id and the fingerprint (FORMAT.md §2) are printed under their
/// own names: `keygen` used to print the 16-byte key id as "Fingerprint".
#[test]
fn key_id_and_fingerprint_are_told_apart() {
    let u = User::new();
    let out = run_ok(u.cmd().arg("keygen"));
    let err = String::from_utf8(out.stderr).unwrap();
    let field = |label: &str| {
        err.lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("{label}: {err}"))
            .trim_start()
            .split("   ")
            .next()
            .unwrap()
            .trim()
            .to_owned()
    };
    let (key_id, fingerprint) = (field("Key id:"), field("Fingerprint:"));
    assert_eq!(key_id.len(), 39, "8 groups: {key_id}");
    assert_eq!(fingerprint.len(), 79, "16 groups: {fingerprint}");
    assert!(fingerprint.starts_with(&key_id));
    let out =
        String::from_utf8(run_ok(u.cmd().args(["recipient", "--key-id", "--fingerprint"])).stdout)
            .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1..], [key_id.as_str(), fingerprint.as_str()]);
}

/// FORMAT.md §3: the password is the UTF-8 of the passphrase file's first
/// line without its line ending, LF or CR LF alike; spaces are kept.
#[test]
fn a_passphrase_file_gives_its_first_line_without_the_line_ending() {
    let u = User::new();
    std::fs::write(u.path("pass"), " twee woorden \r\nsecond line\n").unwrap();
    let me = u.keygen();
    std::fs::write(u.path("p.txt"), b"x").unwrap();
    run_ok(
        u.cmd()
            .args(["encrypt", "-r", &me, "-o", "p.kluis", "p.txt"]),
    );
    for same in [" twee woorden \n", " twee woorden "] {
        std::fs::write(u.path("pass"), same).unwrap();
        assert_eq!(run_ok(u.cmd().args(["decrypt", "p.kluis"])).stdout, b"x");
    }
    std::fs::write(u.path("pass"), "twee woorden\n").unwrap();
    run_fail(u.cmd().args(["decrypt", "p.kluis"]), "wrong password");
}

#[test]
fn inspect_shows_structure_not_secrets() {
    let u = User::new();
    let me = u.keygen();
    std::fs::write(u.path("dossier-jansen.txt"), b"0123456789").unwrap();
    run_ok(u.cmd().args([
        "encrypt",
        "-r",
        &me,
        "--classical",
        "-o",
        "x.kluis",
        "dossier-jansen.txt",
    ]));
    let out = run_ok(u.cmd().args(["inspect", "x.kluis"]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("X25519"), "{text}");
    assert!(text.contains("plaintext 10 bytes"), "{text}");
    assert!(!text.contains("jansen"));
    assert!(
        !std::fs::read(u.path("x.kluis"))
            .unwrap()
            .windows(6)
            .any(|w| w == b"jansen")
    );
}

#[test]
fn broken_pipe_is_a_quiet_exit() {
    let u = User::new();
    let me = u.keygen();
    std::fs::write(u.path("big.bin"), pattern(8 * 1024 * 1024)).unwrap();
    run_ok(
        u.cmd()
            .args(["encrypt", "-r", &me, "-o", "big.kluis", "big.bin"]),
    );
    let mut child = u
        .cmd()
        .args(["decrypt", "big.kluis"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kluis_home_isolates_users() {
    let a = User::new();
    let ra = a.keygen();
    let b = User::new();
    let rb = b.keygen();
    assert_ne!(ra, rb);
    let out = run_ok(a.cmd().args(["recipient"]));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), ra);
    assert!(a.path("home/identity.kluiskey").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(a.path("home/identity.kluiskey"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn quickstart_creates_an_identity_then_reuses_it() {
    let u = User::new();
    let out = run_ok(u.cmd().arg("quickstart"));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Creating your identity"), "{text}");
    assert!(u.path("home/identity.kluiskey").exists());
    let enc = std::fs::read(u.path("kluis-quickstart/welkom.txt.kluis")).unwrap();
    assert!(!enc.windows(6).any(|w| w == b"Welkom"));
    let plain = std::fs::read(u.path("kluis-quickstart/welkom.txt")).unwrap();
    assert_eq!(
        std::fs::read(u.path("kluis-quickstart/welkom.decrypted.txt")).unwrap(),
        plain
    );
    // The regular decrypt command opens the sample with the same identity.
    let dec = run_ok(
        u.cmd()
            .args(["decrypt", "kluis-quickstart/welkom.txt.kluis"]),
    );
    assert_eq!(dec.stdout, plain);
    let again = run_ok(u.cmd().arg("quickstart"));
    assert!(
        String::from_utf8(again.stdout)
            .unwrap()
            .contains("Using your identity")
    );
    std::fs::write(u.path("pass"), "wrong\n").unwrap();
    run_fail(u.cmd().arg("quickstart"), "wrong password");
}
