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
        Self::start_with(None)
    }

    /// A broker serving HTTPS for `localhost` with a certificate from an
    /// organisation CA (not a public one); returns the CA's PEM file too.
    fn start_tls() -> (Self, std::path::PathBuf) {
        let pki_dir = tempfile::tempdir().unwrap();
        let pki = crate::pki::issue(pki_dir.path(), "localhost");
        let file = pki_dir.path().join("broker.toml");
        std::fs::write(
            &file,
            format!("[tls]\ncert = {:?}\nkey = {:?}\n", pki.cert, pki.key),
        )
        .unwrap();
        let broker = Self::start_with(Some(file));
        let ca = broker._dir.path().join("ca.pem");
        std::fs::copy(&pki.ca, &ca).unwrap();
        (broker.with_scheme("https", "localhost"), ca)
    }

    fn with_scheme(mut self, scheme: &str, host: &str) -> Self {
        let port = self.url.rsplit(':').next().unwrap().to_owned();
        self.url = format!("{scheme}://{host}:{port}");
        self
    }

    fn start_with(config_file: Option<std::path::PathBuf>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let home = dir.path().join("broker");
        let overrides = Overrides {
            config_file,
            data_dir: Some(home.clone()),
            listen: Some("127.0.0.1:0".into()),
        };
        let env = |k: &str| match k {
            "KLUIS_BROKER_REGISTRATION" => Some("open".to_owned()),
            _ => None,
        };
        let config = Config::resolve(&overrides, &env).unwrap();
        let (broker, server) = rt
            .block_on(Broker::serve_config(&config, Arc::new(SystemClock)))
            .unwrap();
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
        let out = run_ok(&mut self.register_cmd(u, email, name));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("Registered"), "{text}");
        fingerprint(u)
    }

    fn register_cmd(&self, u: &User, email: &str, name: &str) -> std::process::Command {
        let mut c = u.cmd();
        c.args([
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
        ]);
        c
    }
}

impl LiveBroker {
    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn certify_group(&self, name: &str) {
        self.rt
            .block_on(kluis_broker::admin::certify_group(
                self.broker.store(),
                &self.org,
                &kluis_types::GroupName::parse(name).unwrap(),
                None,
                Self::now(),
            ))
            .unwrap();
    }

    fn disable(&self, email: &str) {
        self.rt
            .block_on(kluis_broker::admin::disable_user(
                self.broker.store(),
                &kluis_types_email(email),
                &kluis_audit::Actor::admin("it-ops").unwrap(),
                Self::now(),
            ))
            .unwrap();
    }

    /// `medical` folders only for members of the group `care`.
    fn medical_only_for_care(&self) {
        let mut policy = kluis_types::OrgPolicy {
            org_domains: vec!["example.org".into()],
            ..kluis_types::OrgPolicy::default()
        };
        for r in &mut policy.labels {
            if r.label == kluis_types::Label::Medical {
                r.only_group = Some("care".into());
            }
        }
        self.rt
            .block_on(kluis_broker::admin::set_policy(
                self.broker.store(),
                &self.org,
                &policy,
                &kluis_audit::Actor::admin("it-ops").unwrap(),
                Self::now(),
            ))
            .unwrap();
    }

    /// The broker hands out another key for `email` (a substitution).
    fn substitute_key(&self, email: &str, fake: &str) {
        let store = self.broker.store();
        let row = self
            .rt
            .block_on(store.user_by_email(&kluis_types_email(email)))
            .unwrap()
            .unwrap();
        self.rt
            .block_on(store.set_public_key(
                &row.user_id,
                &kluis_types::PublicKeyString::parse(fake).unwrap(),
            ))
            .unwrap();
    }
}

fn kluis_types_email(e: &str) -> kluis_types::Email {
    kluis_types::Email::parse(e).unwrap()
}

fn fingerprint(u: &User) -> String {
    let out = run_ok(u.cmd().args(["recipient", "--key-id"]));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned()
}

/// An organisation serves its broker with a certificate from its own CA and
/// deploys that CA to its machines' trust store (on Linux `SSL_CERT_FILE`
/// stands in for it). Kluis trusts it there; a machine without it refuses
/// the broker instead of talking to it.
#[test]
fn a_broker_certified_by_the_organisation_ca_is_trusted_through_the_os_store() {
    let (b, ca) = LiveBroker::start_tls();
    assert!(b.url.starts_with("https://localhost:"), "{}", b.url);
    let stranger = User::new();
    run_fail(
        b.register_cmd(&stranger, "eve@example.org", "Eve")
            .env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR"),
        "invalid peer certificate",
    );
    let alice = User::new();
    let mut register = b.register_cmd(&alice, "alice@example.org", "Alice Peeters");
    let out = run_ok(register.env("SSL_CERT_FILE", &ca));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("Registered"),
        "registration over TLS failed"
    );
    // A second device logs in over the same TLS connection setup.
    let laptop = User::new();
    let mut login = b.login_cmd(&laptop, "alice@example.org");
    run_ok(login.env("SSL_CERT_FILE", &ca));
    assert_eq!(fingerprint(&laptop), fingerprint(&alice));
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

    // Undo the change (issue 18.3): the broker returns to the previous
    // password and escrow version, and the laptop's identity is sealed with
    // the previous password again. A wrong previous password is named.
    std::fs::write(laptop.path("old-pass"), "a long and careful passphrase\n").unwrap();
    std::fs::write(laptop.path("typo-pass"), "a long and careless passphrase\n").unwrap();
    run_ok(
        laptop
            .cmd()
            .args(["account", "undo-passwd", "--previous-passphrase-file"])
            .arg(laptop.path("old-pass")),
    );
    let tablet = User::new();
    run_ok(&mut b.login_cmd(&tablet, "bob@example.org"));
    assert_eq!(fingerprint(&tablet), bob_fp);
    run_fail(&mut b.login_cmd(&phone, "bob@example.org"), "login failed");
    std::fs::copy(laptop.path("old-pass"), laptop.path("pass")).unwrap();
    assert_eq!(
        run_ok(laptop.cmd().args(["decrypt", "note.kluis"])).stdout,
        b"dossier 42"
    );
    // The current password is checked on the device first. An undo is a
    // change too: undoing it returns to the new password, and a mistyped
    // previous password is named after the broker has moved.
    std::fs::copy(laptop.path("new-pass"), laptop.path("pass")).unwrap();
    run_fail(
        laptop
            .cmd()
            .args(["account", "undo-passwd", "--previous-passphrase-file"])
            .arg(laptop.path("new-pass")),
        "current password does not open",
    );
    std::fs::copy(laptop.path("old-pass"), laptop.path("pass")).unwrap();
    run_fail(
        laptop
            .cmd()
            .args(["account", "undo-passwd", "--previous-passphrase-file"])
            .arg(laptop.path("typo-pass")),
        "does not log in",
    );
    std::fs::copy(laptop.path("new-pass"), tablet.path("pass")).unwrap();
    run_ok(&mut b.login_cmd(&tablet, "bob@example.org"));

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
    // Header-only, and in place: Bob's stanza took bytes from the header's
    // padding (FORMAT.md §4.7), so the file kept its length, and the
    // encrypted content is byte for byte the same.
    let after = std::fs::read(alice.path("dossier.kluis")).unwrap();
    let tail = 16 * 1024;
    assert_eq!(
        after.len(),
        payload_before.len(),
        "the header kept its length"
    );
    assert_ne!(after, payload_before, "a stanza was added");
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

fn text(out: std::process::Output) -> (String, String) {
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The real `kluis agent` encrypts the folder once (creating its folder
/// metadata), then stops.
fn run_agent_once(u: &User, mirror: &std::path::Path) {
    let mut child = u
        .cmd()
        .arg("agent")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    // The metadata and one encrypted file.
    let synced = || {
        mirror.join(".kluis-folder").is_file()
            && std::fs::read_dir(mirror).is_ok_and(|d| {
                d.flatten()
                    .any(|e| !e.file_name().to_string_lossy().starts_with(".kluis"))
            })
    };
    while !synced() {
        assert!(std::time::Instant::now() < end, "the agent did not sync");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let home = kluis_agent::AgentHome::in_dir(&u.path("home"));
    let stopped = kluis_agent::ipc::Client::connect(&home.socket_path())
        .and_then(|mut c| c.request(&kluis_agent::Request::Shutdown));
    if stopped.is_err() {
        child.kill().unwrap();
    }
    child.wait().unwrap();
}

/// `kluis share`, `shares`, `unshare` and `groups` on a synced folder,
/// through the real binary against a live broker (issue #6): members listed
/// with their fingerprints and verification state; an uncertified key and
/// a substituted one refused with a clear message and exit code 1, the
/// folder unchanged; a policy refusal that names the rule; groups created,
/// certified, extended and rotated — the folder following the rotated key
/// at the next `kluis` write; and a departed colleague dropped with a
/// notice.
#[test]
fn share_unshare_shares_and_groups_on_a_folder_from_the_command_line() {
    let b = LiveBroker::start();
    let (alice, bob, carol, dave) = (User::new(), User::new(), User::new(), User::new());
    b.register(&alice, "alice@example.org", "Alice Peeters");
    let bob_fp = b.register(&bob, "bob@example.org", "Bob Janssens");
    b.register(&carol, "carol@example.org", "Carol Dubois");
    let dave_fp = b.register(&dave, "dave@example.org", "Dave Smet");
    for who in ["alice@example.org", "bob@example.org", "dave@example.org"] {
        b.certify(who);
    }
    // Carol's key is not certified.

    let (plain, mirror) = (alice.path("Plans"), alice.path("Dropbox/Plans"));
    run_ok(
        alice
            .cmd()
            .arg("folders")
            .arg("add")
            .arg(&plain)
            .arg(&mirror),
    );
    std::fs::write(plain.join("todo.txt"), "ship it").unwrap();
    run_agent_once(&alice, &mirror);
    let meta = || std::fs::read(mirror.join(".kluis-folder")).unwrap();

    // Share with Bob and Dave: each key's fingerprint, pinned on first use.
    let (out, err) = text(run_ok(alice.cmd().arg("share").arg(&plain).args([
        "--with",
        "bob@example.org",
        "--with",
        "dave@example.org",
    ])));
    assert!(err.contains(&format!("bob@example.org: {bob_fp}")), "{err}");
    assert!(err.contains("first use: pinned now"), "{err}");
    assert!(out.contains("Now share the mirror"), "{out}");
    let (out, _) = text(run_ok(
        alice.cmd().arg("shares").arg(&plain).arg("--fingerprints"),
    ));
    for (who, fp) in [("bob@example.org", &bob_fp), ("dave@example.org", &dave_fp)] {
        assert!(
            out.lines()
                .any(|l| l.contains(who) && l.contains("verified") && l.contains(fp.as_str())),
            "{who} listed with fingerprint {fp}: {out}"
        );
    }
    assert!(out.contains("alice@example.org"), "{out}");

    // An uncertified colleague: refused, nothing changed.
    let before = meta();
    run_fail(
        alice
            .cmd()
            .arg("share")
            .arg(&plain)
            .args(["--with", "carol@example.org"]),
        "not certified by your organisation",
    );
    assert_eq!(meta(), before, "the folder is unchanged");
    // Not a member: a clear refusal.
    run_fail(
        alice
            .cmd()
            .arg("unshare")
            .arg(&plain)
            .args(["--with", "carol@example.org"]),
        "carol@example.org is not a member of this folder",
    );

    // Policy: a `medical` label is refused while Bob (outside `care`) is a
    // member; the refusal names the rule.
    b.medical_only_for_care();
    run_fail(
        alice
            .cmd()
            .arg("share")
            .arg(&plain)
            .args(["--label", "medical"]),
        "refused by policy rule `labels.medical.only_group`",
    );
    assert_eq!(meta(), before, "the folder is unchanged");

    // Groups: created (uncertified until an administrator certifies it),
    // extended without touching files, rotated when someone leaves.
    let (out, _) = text(run_ok(alice.cmd().args(["groups", "create", "finance"])));
    assert!(
        out.contains("Created group finance") && out.contains("certify-group"),
        "{out}"
    );
    let (out, _) = text(run_ok(alice.cmd().args(["groups", "list"])));
    assert!(out.contains("finance (key v1, NOT certified"), "{out}");
    run_fail(
        alice
            .cmd()
            .arg("share")
            .arg(&plain)
            .args(["--with", "group:finance"]),
        "not certified by your organisation",
    );
    b.certify_group("finance");
    let (out, _) = text(run_ok(alice.cmd().args([
        "groups",
        "add",
        "finance",
        "bob@example.org",
    ])));
    assert!(out.contains("No file changed"), "{out}");
    run_ok(
        alice
            .cmd()
            .arg("share")
            .arg(&plain)
            .args(["--with", "group:finance"]),
    );
    let (out, _) = text(run_ok(alice.cmd().args(["groups", "list"])));
    assert!(
        out.contains("finance (key v1, certified") && out.contains("  bob@example.org"),
        "{out}"
    );
    let (out, _) = text(run_ok(alice.cmd().args([
        "groups",
        "remove",
        "finance",
        "bob@example.org",
    ])));
    assert!(out.contains("the group key rotated"), "{out}");
    b.certify_group("finance");
    let (out, _) = text(run_ok(alice.cmd().arg("shares").arg(&plain)));
    assert!(
        out.lines()
            .any(|l| l.contains("group:finance") && l.contains("directory has a newer key")),
        "{out}"
    );

    // Dave leaves the organisation. The next write (here: unsharing Bob)
    // drops him with a notice and moves the folder to finance's new key.
    b.disable("dave@example.org");
    let (out, _) = text(run_ok(alice.cmd().arg("shares").arg(&plain)));
    assert!(
        out.lines()
            .any(|l| l.contains("dave@example.org") && l.contains("left")),
        "{out}"
    );
    let (_, err) = text(run_ok(
        alice
            .cmd()
            .arg("unshare")
            .arg(&plain)
            .args(["--with", "bob@example.org"]),
    ));
    assert!(
        err.contains("notice: dave@example.org has left the organisation"),
        "{err}"
    );
    assert!(
        err.contains("notice: group:finance moved to its current key"),
        "{err}"
    );
    assert!(err.contains("cannot be taken back"), "{err}");
    let (out, _) = text(run_ok(alice.cmd().arg("shares").arg(&plain)));
    assert!(!out.contains("dave@example.org"), "{out}");
    assert!(!out.contains("bob@example.org"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("group:finance") && l.contains("verified")),
        "{out}"
    );

    // A substituted key: the broker hands out Mallory's key for Bob. Refused
    // while uncertified, and still refused once certified, because Alice
    // pinned Bob's key on first use; the message names the pinned
    // fingerprint to compare out of band.
    let mallory = User::new();
    let fake = mallory.keygen();
    b.substitute_key("bob@example.org", &fake);
    run_fail(
        alice
            .cmd()
            .arg("share")
            .arg(&plain)
            .args(["--with", "bob@example.org"]),
        "not certified by your organisation",
    );
    b.certify("bob@example.org");
    let before = meta();
    let out = run_fail(
        alice
            .cmd()
            .arg("share")
            .arg(&plain)
            .args(["--with", "bob@example.org"]),
        "CHANGED",
    );
    let (_, err) = text(out);
    assert!(
        err.contains("bob@example.org") && err.contains("Compare fingerprints out of band"),
        "{err}"
    );
    assert_eq!(meta(), before, "the folder is unchanged");
    drop((bob, carol, dave));
}

/// `kluis share` shares the way the tray's share dialog does (issue 19):
/// both call `kluis_client::share::change_folder_members`, which asks the
/// directory first, so a colleague who left is dropped (with the same
/// notice) before the new member is added.
#[test]
fn kluis_share_drops_a_departed_member_first_as_the_tray_does() {
    let b = LiveBroker::start();
    let (alice, bob, dave) = (User::new(), User::new(), User::new());
    b.register(&alice, "alice@example.org", "Alice Peeters");
    b.register(&bob, "bob@example.org", "Bob Janssens");
    b.register(&dave, "dave@example.org", "Dave Smet");
    for who in ["alice@example.org", "bob@example.org", "dave@example.org"] {
        b.certify(who);
    }
    let (plain, mirror) = (alice.path("Plans"), alice.path("Dropbox/Plans"));
    run_ok(
        alice
            .cmd()
            .arg("folders")
            .arg("add")
            .arg(&plain)
            .arg(&mirror),
    );
    std::fs::write(plain.join("todo.txt"), "ship it").unwrap();
    run_agent_once(&alice, &mirror);
    run_ok(
        alice
            .cmd()
            .arg("share")
            .arg(&plain)
            .args(["--with", "dave@example.org"]),
    );

    // Dave leaves; Alice shares with Bob.
    b.disable("dave@example.org");
    let (out, err) = text(run_ok(
        alice
            .cmd()
            .arg("share")
            .arg(&plain)
            .args(["--with", "bob@example.org"]),
    ));
    assert!(
        err.contains("notice: dave@example.org has left the organisation"),
        "{err}"
    );
    assert!(out.contains("Now share the mirror"), "{out}");
    let (out, _) = text(run_ok(alice.cmd().arg("shares").arg(&plain)));
    assert!(!out.contains("dave@example.org"), "{out}");
    assert!(out.contains("bob@example.org"), "{out}");
    drop((bob, dave));
}
