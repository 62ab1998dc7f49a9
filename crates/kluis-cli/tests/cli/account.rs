//! `kluis account` and `kluis contacts` against a real broker on loopback.

use std::sync::Arc;

use kluis_broker::clock::SystemClock;
use kluis_broker::config::{Config, Overrides};
use kluis_broker::org::OrgSigningKey;
use kluis_broker::{Broker, server::RunningServer};

use crate::util::{User, run_fail, run_ok};

struct LiveBroker {
    url: String,
    org: OrgSigningKey,
    broker: Broker,
    rt: tokio::runtime::Runtime,
    _server: RunningServer,
    _dir: tempfile::TempDir,
}

impl LiveBroker {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let home = dir.path().join("broker");
        let overrides = Overrides {
            config_file: None,
            data_dir: Some(home.clone()),
            listen: Some("127.0.0.1:0".into()),
        };
        let env = |k: &str| match k {
            "KLUIS_BROKER_REGISTRATION" => Some("open".to_owned()),
            _ => None,
        };
        let config = Config::resolve(&overrides, &env).unwrap();
        let broker = rt
            .block_on(Broker::open(&config, Arc::new(SystemClock)))
            .unwrap();
        let server = rt.block_on(broker.spawn(config.listen, None)).unwrap();
        let org = OrgSigningKey::init(&dir.path().join("org.key")).unwrap();
        LiveBroker {
            url: format!("http://{}", server.local_addr),
            org,
            broker,
            rt,
            _server: server,
            _dir: dir,
        }
    }

    /// `kluis account login` on `u`'s device against this broker.
    fn login_cmd(&self, u: &User, email: &str) -> std::process::Command {
        let mut c = u.cmd();
        c.args([
            "account",
            "login",
            "--broker",
            &self.url,
            "--org-key",
            &self.org_key(),
            "--email",
            email,
        ]);
        c
    }

    fn org_key(&self) -> String {
        self.org.public_key().to_string()
    }

    fn certify(&self, email: &str) {
        let email = kluis_types_email(email);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        self.rt
            .block_on(kluis_broker::admin::certify(
                self.broker.store(),
                &self.org,
                &email,
                None,
                now,
            ))
            .unwrap();
    }

    fn register(&self, u: &User, email: &str, name: &str) -> String {
        let out = run_ok(u.cmd().args([
            "account",
            "register",
            "--broker",
            &self.url,
            "--org-key",
            &self.org_key(),
            "--email",
            email,
            "--name",
            name,
        ]));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Registered"), "{text}");
        fingerprint(u)
    }
}

fn kluis_types_email(e: &str) -> kluis_types::Email {
    kluis_types::Email::parse(e).unwrap()
}

fn fingerprint(u: &User) -> String {
    let out = run_ok(u.cmd().args(["recipient", "--fingerprint"]));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned()
}

#[test]
fn register_share_by_email_new_device_and_password_change() {
    let b = LiveBroker::start();
    let alice = User::new();
    let bob = User::new();
    b.register(&alice, "alice@example.org", "Alice Peeters");
    let bob_fp = b.register(&bob, "bob@example.org", "Bob Janssens");

    // Uncertified keys are refused: the org has not vouched for Bob yet.
    std::fs::write(alice.path("note.txt"), b"dossier 42").unwrap();
    run_fail(
        alice.cmd().args([
            "encrypt",
            "-r",
            "bob@example.org",
            "-o",
            "note.kluis",
            "note.txt",
        ]),
        "not certified by your organisation",
    );
    assert!(!alice.path("note.kluis").exists());

    b.certify("alice@example.org");
    b.certify("bob@example.org");

    // The directory shows Bob with the same fingerprint his own device shows.
    let found = run_ok(alice.cmd().args(["contacts", "find", "bo"]));
    let found = String::from_utf8(found.stdout).unwrap();
    assert!(
        found.contains("bob@example.org")
            && found.contains("Bob Janssens")
            && found.contains(&bob_fp),
        "{found}"
    );

    // Share by e-mail; Bob reads it.
    run_ok(alice.cmd().args([
        "encrypt",
        "-r",
        "bob@example.org",
        "-o",
        "note.kluis",
        "note.txt",
    ]));
    std::fs::copy(alice.path("note.kluis"), bob.path("note.kluis")).unwrap();
    assert_eq!(
        run_ok(bob.cmd().args(["decrypt", "note.kluis"])).stdout,
        b"dossier 42"
    );

    // Bob on a second device: log in, get his identity from escrow, decrypt.
    let laptop = User::new();
    run_ok(&mut b.login_cmd(&laptop, "bob@example.org"));
    assert_eq!(fingerprint(&laptop), bob_fp);
    std::fs::copy(alice.path("note.kluis"), laptop.path("note.kluis")).unwrap();
    assert_eq!(
        run_ok(laptop.cmd().args(["decrypt", "note.kluis"])).stdout,
        b"dossier 42"
    );
    let who = run_ok(laptop.cmd().args(["account", "whoami"]));
    assert!(
        String::from_utf8(who.stdout)
            .unwrap()
            .contains("bob@example.org")
    );

    // Password change on the laptop; the old password no longer logs in.
    std::fs::write(laptop.path("new-pass"), "an even longer new passphrase\n").unwrap();
    run_ok(
        laptop
            .cmd()
            .args(["account", "passwd", "--new-passphrase-file"])
            .arg(laptop.path("new-pass")),
    );
    let phone = User::new();
    run_fail(&mut b.login_cmd(&phone, "bob@example.org"), "login failed");
    std::fs::copy(laptop.path("new-pass"), phone.path("pass")).unwrap();
    run_ok(&mut b.login_cmd(&phone, "bob@example.org"));
    assert_eq!(fingerprint(&phone), bob_fp);
    // The laptop's local identity is re-sealed with the new password.
    std::fs::copy(laptop.path("new-pass"), laptop.path("pass")).unwrap();
    assert_eq!(
        run_ok(laptop.cmd().args(["decrypt", "note.kluis"])).stdout,
        b"dossier 42"
    );

    // Logging out ends the session; the identity keeps working offline.
    run_ok(laptop.cmd().args(["account", "logout"]));
    run_fail(laptop.cmd().args(["account", "whoami"]), "not logged in");
    assert_eq!(
        run_ok(laptop.cmd().args(["decrypt", "note.kluis"])).stdout,
        b"dossier 42"
    );
}

#[test]
fn wrong_org_key_refuses_the_directory() {
    let b = LiveBroker::start();
    let alice = User::new();
    b.register(&alice, "alice@example.org", "Alice");
    let carol = User::new();
    b.register(&carol, "carol@example.org", "Carol");
    b.certify("carol@example.org");
    // A device that pinned a different organisation key (as a substituting
    // broker would need) refuses every certificate.
    let other_org = OrgSigningKey::init(&alice.path("other-org.key")).unwrap();
    let mallory_view = User::new();
    run_ok(mallory_view.cmd().args([
        "account",
        "register",
        "--broker",
        &b.url,
        "--org-key",
        &other_org.public_key().to_string(),
        "--email",
        "dave@example.org",
        "--name",
        "Dave",
    ]));
    run_fail(
        mallory_view.cmd().args([
            "encrypt",
            "-r",
            "carol@example.org",
            "-o",
            "x.kluis",
            "pass",
        ]),
        "does not match the pinned organisation key",
    );
    assert!(!mallory_view.path("x.kluis").exists());
}

/// `kluis share`, `kluis shares` and `kluis unshare` on a file, through the
/// real binary against a live broker: members listed with fingerprints, an
/// uncertified colleague refused with a clear message, and a removed
/// colleague locked out of the current ciphertext.
#[test]
fn share_shares_and_unshare_a_file_from_the_command_line() {
    let b = LiveBroker::start();
    let (alice, bob, carol) = (User::new(), User::new(), User::new());
    b.register(&alice, "alice@example.org", "Alice Peeters");
    let bob_fp = b.register(&bob, "bob@example.org", "Bob Janssens");
    b.register(&carol, "carol@example.org", "Carol Dubois");
    b.certify("alice@example.org");
    b.certify("bob@example.org");
    // Carol's key is not certified by the organisation.

    // 20,000 bytes: the payload (two chunks) is longer than any header.
    let dossier = b"case 7, confidential. ".repeat(910);
    std::fs::write(alice.path("dossier.txt"), &dossier).unwrap();
    let me = String::from_utf8(run_ok(alice.cmd().args(["recipient"])).stdout).unwrap();
    run_ok(alice.cmd().args([
        "encrypt",
        "-r",
        me.trim(),
        "-o",
        "dossier.kluis",
        "dossier.txt",
    ]));
    let payload_before = std::fs::read(alice.path("dossier.kluis")).unwrap();

    run_ok(
        alice
            .cmd()
            .args(["share", "dossier.kluis", "--with", "bob@example.org"]),
    );
    let listed =
        String::from_utf8(run_ok(alice.cmd().args(["shares", "dossier.kluis"])).stdout).unwrap();
    // Each recipient key by name: Bob (pinned when Alice looked him up)
    // with the fingerprint his own device shows, and Alice herself.
    assert!(
        listed
            .lines()
            .any(|l| l.contains(&bob_fp) && l.contains("bob@example.org")),
        "members with fingerprints: {listed}"
    );
    assert!(listed.contains("alice@example.org (you)"), "{listed}");
    // Header-only: the encrypted content is byte for byte the same.
    let after = std::fs::read(alice.path("dossier.kluis")).unwrap();
    let tail = 16 * 1024;
    assert!(after.len() > payload_before.len(), "a stanza was added");
    assert!(
        payload_before[payload_before.len() - tail..] == after[after.len() - tail..],
        "the payload is untouched"
    );
    std::fs::copy(alice.path("dossier.kluis"), bob.path("dossier.kluis")).unwrap();
    assert_eq!(
        run_ok(bob.cmd().args(["decrypt", "dossier.kluis"])).stdout,
        dossier
    );

    // An uncertified key is refused, and the file is left as it was.
    let before_refusal = std::fs::read(alice.path("dossier.kluis")).unwrap();
    run_fail(
        alice
            .cmd()
            .args(["share", "dossier.kluis", "--with", "carol@example.org"]),
        "not certified by your organisation",
    );
    assert_eq!(
        std::fs::read(alice.path("dossier.kluis")).unwrap(),
        before_refusal
    );

    // Unshare: Bob is gone from the list and cannot open the current file.
    run_ok(
        alice
            .cmd()
            .args(["unshare", "dossier.kluis", "--with", "bob@example.org"]),
    );
    let listed =
        String::from_utf8(run_ok(alice.cmd().args(["shares", "dossier.kluis"])).stdout).unwrap();
    assert!(!listed.contains("bob@example.org"), "{listed}");
    std::fs::copy(alice.path("dossier.kluis"), bob.path("dossier2.kluis")).unwrap();
    run_fail(
        bob.cmd().args(["decrypt", "dossier2.kluis"]),
        "no matching recipient",
    );
}
