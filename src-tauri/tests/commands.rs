//! The app's commands through Tauri's IPC on the mock runtime: the same
//! `run_app` the real app uses, a real in-process agent on temp folders.

use std::path::Path;
use std::time::{Duration, Instant};

use kluis_agent::{AgentHome, AgentOptions};
use kluis_tray::engine::Engine;
use kluis_tray::{Shell, run_app};
use serde_json::{Value, json};
use tauri::test::{INVOKE_KEY, get_ipc_response, mock_builder, mock_context, noop_assets};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow, WebviewWindowBuilder};

struct Harness {
    _app: App<tauri::test::MockRuntime>,
    window: WebviewWindow<tauri::test::MockRuntime>,
}

fn opts() -> AgentOptions {
    AgentOptions {
        quiet: Duration::from_millis(50),
        debounce: Duration::from_millis(50),
        ..AgentOptions::default()
    }
}

fn app(home: &Path) -> Harness {
    let engine = Engine::start(AgentHome::in_dir(home), opts());
    let shell = Shell::new(engine, Box::new(|_| Ok(())));
    let app = run_app(mock_builder(), shell)
        .build(mock_context(noop_assets()))
        .expect("app builds");
    let window = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("window");
    Harness { _app: app, window }
}

impl Harness {
    fn call(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        get_ipc_response(
            &self.window,
            InvokeRequest {
                cmd: cmd.into(),
                callback: tauri::ipc::CallbackFn(0),
                error: tauri::ipc::CallbackFn(1),
                // Linux (and macOS) serve the app from tauri://localhost.
                url: "tauri://localhost".parse().expect("url"),
                body: tauri::ipc::InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|b| b.deserialize::<Value>().expect("json"))
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.call(cmd, args)
            .unwrap_or_else(|e| panic!("{cmd}: {e}"))
    }

    fn wait_status(&self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.ok("get_status", json!({}));
            if f(&s) {
                return s;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}: {s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn first_run_unlock_sync_pause_lock_through_ipc() {
    let d = tempfile::tempdir().expect("tempdir");
    let h = app(d.path());
    let s = h.ok("get_status", json!({}));
    assert_eq!(s["has_identity"], false);
    assert_eq!(s["in_process"], true);
    assert_eq!(s["tray"]["kind"], "locked");

    // Errors arrive as {code, message}.
    let e = h
        .call("unlock_identity", json!({"password": "whatever1"}))
        .expect_err("no identity yet");
    assert_eq!(e["code"], "no_identity");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    let e = h
        .call("create_identity", json!({"password": "short"}))
        .expect_err("too short");
    assert_eq!(e["code"], "password_too_short");

    // The wizard's calls.
    h.ok("create_identity", json!({"password": "correct horse"}));
    assert_eq!(
        h.call("create_identity", json!({"password": "correct horse"}))
            .expect_err("twice")["code"],
        "identity_exists"
    );
    let plain = d.path().join("plain");
    let mirror = d.path().join("Dropbox/Kluis");
    h.ok("add_folder_pair", json!({"plain": plain, "mirror": mirror}));
    let e = h
        .call("unlock_identity", json!({"password": "wrong horse"}))
        .expect_err("wrong");
    assert_eq!(e["code"], "wrong_password");
    h.ok("unlock_identity", json!({"password": "correct horse"}));
    h.wait_status("up to date", |s| s["tray"]["kind"] == "up_to_date");

    // A dropped file is encrypted into the mirror and shows in the activity.
    std::fs::write(plain.join("report.txt"), b"quarterly numbers").expect("write");
    let s = h.wait_status("one synced file", |s| {
        s["pairs"][0]["synced_files"] == 1 && s["tray"]["kind"] == "up_to_date"
    });
    assert_eq!(s["pairs"][0]["plain"], plain.display().to_string());
    let act = h.ok("get_activity", json!({"limit": 10}));
    assert!(
        act.as_array()
            .expect("list")
            .iter()
            .any(|a| a["action"] == "encrypted" && a["path"] == "report.txt"),
        "{act}"
    );
    let in_mirror = std::fs::read_dir(&mirror).expect("mirror").count();
    assert!(in_mirror >= 1);

    // This device's ignore rules, through the Settings calls.
    let pair = s["pairs"][0]["id"].as_str().expect("pair id").to_owned();
    let ig = h.ok("get_ignore_patterns", json!({"pair": pair}));
    assert!(
        ig["builtin"]
            .as_array()
            .expect("list")
            .contains(&json!("*.swp"))
    );
    assert_eq!(ig["user"], json!([]));
    let e = h
        .call(
            "set_ignore_patterns",
            json!({"pair": pair, "patterns": ["a/b"]}),
        )
        .expect_err("one name per rule");
    assert_eq!(e["code"], "bad_pattern");
    let e = h
        .call("get_ignore_patterns", json!({"pair": "nope"}))
        .expect_err("unknown pair");
    assert_eq!(e["code"], "no_such_pair");
    h.ok(
        "set_ignore_patterns",
        json!({"pair": pair, "patterns": ["*.log", " "]}),
    );
    let ig = h.ok("get_ignore_patterns", json!({"pair": pair}));
    assert_eq!(ig["user"], json!(["*.log"]));
    // The rule is live: written first, the log file is never encrypted.
    std::fs::write(plain.join("debug.log"), b"noise").expect("write");
    std::fs::write(plain.join("second.txt"), b"more numbers").expect("write");
    h.wait_status("two synced files", |s| s["pairs"][0]["synced_files"] == 2);
    let kls = || {
        std::fs::read_dir(&mirror)
            .expect("mirror")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".kls"))
            .count()
    };
    assert_eq!(kls(), 2, "report.txt and second.txt only");

    h.ok("pause_sync", json!({}));
    h.wait_status("paused", |s| {
        s["tray"]["kind"] == "paused" && s["tray"]["paused"] == true
    });
    h.ok("resume_sync", json!({"allowDeletions": false}));
    h.wait_status("resumed", |s| s["tray"]["kind"] == "up_to_date");
    h.ok("lock_identity", json!({}));
    h.wait_status("locked", |s| s["tray"]["kind"] == "locked");

    // Bad input is refused with a code, not a panic.
    let e = h
        .call("open_folder", json!({"pair": "nope", "which": "plain"}))
        .expect_err("unknown pair");
    assert_eq!(e["code"], "pair");
    let e = h
        .call("set_language", json!({"language": "de"}))
        .expect_err("unknown language");
    assert_eq!(e["code"], "bad_request");
    h.ok("set_language", json!({"language": "nl"}));
    assert_eq!(h.ok("get_settings", json!({}))["language"], "nl");
}

#[test]
fn unlock_attempts_are_rate_limited() {
    let d = tempfile::tempdir().expect("tempdir");
    let h = app(d.path());
    h.ok("create_identity", json!({"password": "correct horse"}));
    for _ in 0..3 {
        assert_eq!(
            h.call("unlock_identity", json!({"password": "nope nope"}))
                .expect_err("wrong")["code"],
            "wrong_password"
        );
    }
    // Even the right password waits now.
    let e = h
        .call("unlock_identity", json!({"password": "correct horse"}))
        .expect_err("limited");
    assert_eq!(e["code"], "too_many_attempts");
}

#[test]
fn a_second_engine_never_syncs_the_same_folders() {
    let d = tempfile::tempdir().expect("tempdir");
    let h = app(d.path());
    h.ok(
        "add_folder_pair",
        json!({"plain": d.path().join("p"), "mirror": d.path().join("m")}),
    );
    // Same home: the second app finds the first's socket and becomes its client.
    let same = Engine::start(AgentHome::in_dir(d.path()), opts());
    assert!(!same.in_process());
    let st = same.call(&kluis_agent::Request::Status);
    assert!(st.is_ok(), "{st:?}");
    // Another home, same folders: the pair lock refuses to start a second engine.
    let other = tempfile::tempdir().expect("tempdir");
    let home2 = AgentHome::in_dir(other.path());
    let mut cfg = kluis_agent::Config::default();
    cfg.add_pair(&d.path().join("p"), &d.path().join("m"))
        .expect("pair");
    cfg.save(&home2).expect("save");
    let second = Engine::start(home2, opts());
    assert!(!second.in_process());
    let e = kluis_tray::UiError::from(
        second
            .call(&kluis_agent::Request::Status)
            .expect_err("refused"),
    );
    assert_eq!(e.code, "already_running");
}

#[test]
fn bindings_in_ui_are_generated_from_the_commands() {
    let want = kluis_tray::bindings_ts().expect("export");
    let have = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts"),
    )
    .unwrap_or_default();
    assert!(
        have == want,
        "ui/src/bindings.ts is stale: run `cargo run -p kluis-tray --example bindings`"
    );
}

/// A broker on loopback with open registration, as an organisation runs it.
struct LoopbackBroker {
    url: String,
    org_key: String,
    broker: kluis_broker::Broker,
    org: kluis_broker::org::OrgSigningKey,
    _server: kluis_broker::server::RunningServer,
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl LoopbackBroker {
    /// IT publishes a recovery key (2 of 3 shares), signed by the
    /// organisation key, and makes recovery enrolment mandatory.
    fn require_recovery(&self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        let mut rng = kluis_format::rand_core::UnwrapErr(getrandom::SysRng);
        let recovery = kluis_format::Identity::generate(&mut rng);
        let public_key =
            kluis_types::PublicKeyString::parse(&recovery.recipient().to_string()).expect("key");
        let message = kluis_types::recovery_key_message(&public_key, 2, 3, now);
        let stored = kluis_broker::store::StoredRecoveryKey {
            public_key,
            threshold: 2,
            shares: 3,
            issued_at: now,
            signature: self.org.sign(&message).to_vec(),
        };
        self.rt
            .block_on(
                self.broker
                    .store()
                    .insert_recovery_key(&stored, now, &|_| Ok(vec![])),
            )
            .expect("recovery key");
        self.set_policy(kluis_types::OrgPolicy {
            recovery_mandatory: true,
            ..kluis_types::OrgPolicy::default()
        });
    }

    /// IT signs `policy` with the organisation key and puts it in force.
    fn set_policy(&self, policy: kluis_types::OrgPolicy) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        self.rt
            .block_on(kluis_broker::admin::set_policy(
                self.broker.store(),
                &self.org,
                &policy,
                &kluis_audit::Actor::admin("it-ops").expect("actor"),
                now,
            ))
            .expect("policy");
    }
}

fn loopback_broker() -> LoopbackBroker {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let overrides = kluis_broker::config::Overrides {
        config_file: None,
        data_dir: Some(dir.path().join("broker")),
        listen: Some("127.0.0.1:0".into()),
    };
    let env = |k: &str| (k == "KLUIS_BROKER_REGISTRATION").then(|| "open".to_owned());
    let config = kluis_broker::config::Config::resolve(&overrides, &env).expect("config");
    let (broker, server) = rt
        .block_on(kluis_broker::Broker::serve_config(
            &config,
            std::sync::Arc::new(kluis_broker::clock::SystemClock),
        ))
        .expect("broker");
    let org = kluis_broker::org::OrgSigningKey::init(&dir.path().join("org.key")).expect("org");
    LoopbackBroker {
        url: format!("http://{}", server.local_addr),
        org_key: org.public_key().to_string(),
        broker,
        org,
        _server: server,
        rt,
        _dir: dir,
    }
}

/// The wizard's "register" and "log in" and Settings' "change password"
/// and "log out", against a real broker on loopback.
#[test]
fn register_log_in_elsewhere_change_password_and_log_out_through_ipc() {
    let b = loopback_broker();
    let broker = json!({"url": b.url, "org_key": b.org_key});
    let d1 = tempfile::tempdir().expect("tempdir");
    let desk = app(d1.path());
    assert_eq!(desk.ok("get_account", json!({})), Value::Null);

    let register = |password: &str, broker: &Value| {
        desk.call(
            "register_account",
            json!({"broker": broker, "email": "ann@example.org", "name": "Ann Peeters", "password": password}),
        )
    };
    let code = |r: Result<Value, Value>| r.expect_err("refused")["code"].clone();
    assert_eq!(code(register("short", &broker)), "password_too_short");
    assert_eq!(code(register("correct horse", &json!({}))), "no_broker");
    assert_eq!(
        code(register(
            "correct horse",
            &json!({"url": b.url, "org_key": "nonsense"})
        )),
        "bad_org_key"
    );
    assert_eq!(
        code(register(
            "correct horse",
            &json!({"invite": "not an invite"})
        )),
        "bad_invite"
    );
    assert!(!d1.path().join("identity.kluiskey").exists());

    let enrolled = register("correct horse", &broker).expect("registered");
    assert_eq!(enrolled["email"], "ann@example.org");
    assert_eq!(enrolled["recovery_enrolled"], false);
    let fingerprint = enrolled["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    assert!(!fingerprint.is_empty());
    assert_eq!(code(register("correct horse", &broker)), "account_exists");
    let account = desk.ok("get_account", json!({}));
    assert_eq!(account["email"], "ann@example.org");
    assert_eq!(account["recovery_enrolled"], false);
    // The identity file opens with the account password: unlocking works.
    desk.ok("unlock_identity", json!({"password": "correct horse"}));

    // A second device logs in and gets the same key back.
    let d2 = tempfile::tempdir().expect("tempdir");
    let laptop = app(d2.path());
    let login = |password: &str| {
        laptop.call(
            "login_account",
            json!({"broker": broker, "email": "ann@example.org", "password": password}),
        )
    };
    assert_eq!(code(login("wrong horse")), "login_failed");
    let again = login("correct horse").expect("logged in");
    assert_eq!(again["fingerprint"], fingerprint);
    laptop.ok("unlock_identity", json!({"password": "correct horse"}));

    // Change the password on the desk: the laptop's session ends.
    let e = desk
        .call(
            "change_password",
            json!({"oldPassword": "wrong horse", "newPassword": "battery staple"}),
        )
        .expect_err("wrong old password");
    assert_eq!(e["code"], "wrong_password");
    let changed = desk.ok(
        "change_password",
        json!({"oldPassword": "correct horse", "newPassword": "battery staple"}),
    );
    assert!(
        changed["sessions_revoked"].as_u64().expect("count") >= 1,
        "{changed}"
    );
    desk.ok("lock_identity", json!({}));
    assert_eq!(
        desk.call("unlock_identity", json!({"password": "correct horse"}))
            .expect_err("old password")["code"],
        "wrong_password"
    );
    desk.ok("unlock_identity", json!({"password": "battery staple"}));
    assert_eq!(code(login("correct horse")), "login_failed");

    // Undo the change (issue 18.3): back on the old password, broker and
    // device; a mistyped previous password after the broker moved is named.
    let undo = |current: &str, previous: &str| {
        desk.call(
            "undo_password_change",
            json!({"currentPassword": current, "previousPassword": previous}),
        )
    };
    assert_eq!(
        code(undo("correct horse", "correct horse")),
        "wrong_password"
    );
    undo("battery staple", "correct horse").expect("undone");
    desk.ok("lock_identity", json!({}));
    desk.ok("unlock_identity", json!({"password": "correct horse"}));
    assert_eq!(code(login("battery staple")), "login_failed");
    assert_eq!(
        code(undo("correct horse", "not the one")),
        "previous_password_refused"
    );
    // That undo did land: the broker is on "battery staple" again.
    login("battery staple").expect("the broker is back on the newer password");

    // Log out: the session ends and Kluis locks; the account stays known.
    desk.ok("logout_account", json!({}));
    desk.wait_status("locked", |s| s["tray"]["kind"] == "locked");
    assert_eq!(
        desk.ok("get_account", json!({}))["email"],
        "ann@example.org"
    );
    laptop.ok("logout_account", json!({}));
    let e = laptop
        .call("logout_account", json!({}))
        .expect_err("already logged out");
    assert_eq!(e["code"], "not_logged_in");
}

/// Under a policy that makes recovery mandatory, registering from the tray
/// seals a copy of the key to the organisation recovery key, and the tray
/// is told so (the wizard's last step and Settings say it plainly).
#[test]
fn an_organisation_that_can_recover_the_key_is_said_so_at_registration() {
    let b = loopback_broker();
    b.require_recovery();
    let d = tempfile::tempdir().expect("tempdir");
    let desk = app(d.path());
    let enrolled = desk.ok(
        "register_account",
        json!({
            "broker": {"url": b.url, "org_key": b.org_key},
            "email": "bo@example.org",
            "name": "Bo",
            "password": "a long and careful passphrase",
        }),
    );
    assert_eq!(enrolled["recovery_enrolled"], true, "{enrolled}");
    assert_eq!(desk.ok("get_account", json!({}))["recovery_enrolled"], true);
    // A password change writes a fresh recovery copy; still enrolled.
    let changed = desk.ok(
        "change_password",
        json!({"oldPassword": "a long and careful passphrase", "newPassword": "another careful passphrase"}),
    );
    assert_eq!(changed["recovery_enrolled"], true, "{changed}");
    desk.ok("logout_account", json!({}));
}

impl LoopbackBroker {
    fn certify(&self, email: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        self.rt
            .block_on(kluis_broker::admin::certify(
                self.broker.store(),
                &self.org,
                &kluis_types::Email::parse(email).expect("email"),
                None,
                now,
            ))
            .expect("certify");
    }

    /// IT disables `email` (the colleague left; the key is revoked).
    fn disable(&self, email: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        self.rt
            .block_on(kluis_broker::admin::disable_user(
                self.broker.store(),
                &kluis_types::Email::parse(email).expect("email"),
                &kluis_audit::Actor::admin("it-ops").expect("actor"),
                now,
            ))
            .expect("disable");
    }
}

/// The share dialog's calls: search the directory, a folder's members with
/// their trust, the policy's verdict before confirming, then the share
/// itself with progress; and the refusals on the way.
#[test]
fn the_share_dialog_finds_checks_and_shares_a_folder_through_ipc() {
    let b = loopback_broker();
    let broker = json!({"url": b.url, "org_key": b.org_key});
    let register = |h: &Harness, email: &str, name: &str| {
        h.ok(
            "register_account",
            json!({"broker": broker, "email": email, "name": name, "password": "a long and careful passphrase"}),
        )
    };
    let d1 = tempfile::tempdir().expect("tempdir");
    let desk = app(d1.path());
    let d2 = tempfile::tempdir().expect("tempdir");
    let bobs = app(d2.path());
    register(&desk, "ann@example.org", "Ann Peeters");
    let bob = register(&bobs, "bob@example.org", "Bob Janssens");
    let d3 = tempfile::tempdir().expect("tempdir");
    let carls = app(d3.path());
    register(&carls, "carl@example.org", "Carl Uncertified");
    b.certify("ann@example.org");
    b.certify("bob@example.org");

    let plain = d1.path().join("plain");
    let mirror = d1.path().join("Dropbox/Kluis");
    desk.ok("add_folder_pair", json!({"plain": plain, "mirror": mirror}));
    // Sharing needs the unlocked keys.
    desk.ok("lock_identity", json!({}));
    let s = desk.ok("get_status", json!({}));
    let pair = s["pairs"][0]["id"].as_str().expect("pair").to_owned();
    let e = desk
        .call("get_folder_shares", json!({"pair": pair}))
        .expect_err("locked");
    assert_eq!(e["code"], "locked");
    desk.ok(
        "unlock_identity",
        json!({"password": "a long and careful passphrase"}),
    );
    for name in ["a.txt", "b.txt", "c.txt"] {
        std::fs::write(plain.join(name), name).expect("write");
    }
    desk.wait_status("three synced files", |s| {
        s["pairs"][0]["synced_files"] == 3 && s["tray"]["kind"] == "up_to_date"
    });

    // The directory: Bob verified with the fingerprint his device showed;
    // Carl's key is listed but refused (not certified).
    let found = desk.ok("share_search", json!({"query": "b"}));
    let bob_found = found
        .as_array()
        .expect("list")
        .iter()
        .find(|c| c["who"] == "bob@example.org")
        .unwrap_or_else(|| panic!("{found}"));
    assert_eq!(bob_found["name"], "Bob Janssens");
    assert_eq!(bob_found["fingerprint"], bob["fingerprint"]);
    assert!(
        bob_found["trust"] == "first_seen" || bob_found["trust"] == "verified",
        "{bob_found}"
    );
    let carl = desk.ok("share_search", json!({"query": "carl"}));
    assert_eq!(carl[0]["trust"], "refused", "{carl}");
    // Why, typed (the UI words it per language).
    assert_eq!(carl[0]["detail"]["kind"], "not_certified", "{carl}");
    assert_eq!(desk.ok("share_search", json!({"query": "  "})), json!([]));

    // The folder: Ann alone, no label.
    let folder = desk.ok("get_folder_shares", json!({"pair": pair}));
    assert_eq!(folder["label"], Value::Null);
    let members: Vec<&str> = folder["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["who"].as_str().expect("who"))
        .collect();
    assert_eq!(members, ["ann@example.org"], "{folder}");

    // The verdict before confirming: Bob allowed, Carl refused with why.
    let verdicts = desk.ok(
        "preview_share",
        json!({"pair": pair, "add": ["bob@example.org", "carl@example.org"]}),
    );
    assert_eq!(verdicts[0]["allowed"], true, "{verdicts}");
    assert_eq!(verdicts[0]["candidate"]["fingerprint"], bob["fingerprint"]);
    assert_eq!(verdicts[1]["allowed"], false, "{verdicts}");
    assert_eq!(
        verdicts[1]["reason"],
        json!({"kind": "refused", "why": {"kind": "not_certified"}}),
        "{verdicts}"
    );
    let e = desk
        .call(
            "apply_share",
            json!({"pair": pair, "add": ["carl@example.org"], "remove": [], "rekey": false}),
        )
        .expect_err("uncertified");
    assert_eq!(e["code"], "share_refused");

    // The policy's verdict: no sharing outside example.org, said before
    // confirming and enforced when confirming.
    let d4 = tempfile::tempdir().expect("tempdir");
    let daves = app(d4.path());
    register(&daves, "dave@partner.be", "Dave Partner");
    b.certify("dave@partner.be");
    b.set_policy(kluis_types::OrgPolicy {
        org_domains: vec!["example.org".into()],
        external_sharing: false,
        ..kluis_types::OrgPolicy::default()
    });
    let verdicts = desk.ok(
        "preview_share",
        json!({"pair": pair, "add": ["dave@partner.be"]}),
    );
    assert_eq!(verdicts[0]["allowed"], false, "{verdicts}");
    assert_eq!(verdicts[0]["reason"]["kind"], "policy", "{verdicts}");
    assert!(
        verdicts[0]["reason"]["rule"]
            .as_str()
            .is_some_and(|r| r.contains("external_sharing")),
        "{verdicts}"
    );
    let e = desk
        .call(
            "apply_share",
            json!({"pair": pair, "add": ["dave@partner.be"], "remove": [], "rekey": false}),
        )
        .expect_err("policy");
    assert_eq!(e["code"], "policy");

    // Share with Bob: every existing file gets his stanza.
    let done = desk.ok(
        "apply_share",
        json!({"pair": pair, "add": ["bob@example.org"], "remove": [], "rekey": false}),
    );
    assert_eq!(done["files_updated"], 3, "{done}");
    assert_eq!(done["files_failed"], json!([]));
    let p = desk.ok("share_progress", json!({}));
    assert_eq!(
        (p["done"].clone(), p["total"].clone(), p["running"].clone()),
        (json!(3), json!(3), json!(false))
    );
    let folder = desk.ok("get_folder_shares", json!({"pair": pair}));
    let bob_member = folder["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["who"] == "bob@example.org")
        .unwrap_or_else(|| panic!("{folder}"));
    assert_eq!(bob_member["trust"], "verified");
    assert_eq!(bob_member["fingerprint"], bob["fingerprint"]);

    // And stop sharing with him again.
    let done = desk.ok(
        "apply_share",
        json!({"pair": pair, "add": [], "remove": ["bob@example.org"], "rekey": false}),
    );
    assert_eq!(done["files_updated"], 3, "{done}");
    let folder = desk.ok("get_folder_shares", json!({"pair": pair}));
    assert_eq!(folder["members"].as_array().expect("members").len(), 1);
    let e = desk
        .call("get_folder_shares", json!({"pair": "nope"}))
        .expect_err("unknown pair");
    assert_eq!(e["code"], "no_such_pair");
}

/// The share dialog shares the way `kluis share` does (issue 19): both call
/// `kluis_client::share::change_folder_members`, which asks the directory
/// first, so a colleague who left is dropped (with the same notice) before
/// the new member is added, and is not a recipient of what follows.
#[test]
fn the_share_dialog_drops_a_departed_member_first_as_kluis_share_does() {
    let b = loopback_broker();
    let broker = json!({"url": b.url, "org_key": b.org_key});
    let password = "a long and careful passphrase";
    let register = |h: &Harness, email: &str, name: &str| {
        h.ok(
            "register_account",
            json!({"broker": broker, "email": email, "name": name, "password": password}),
        )
    };
    let dirs: Vec<_> = (0..3)
        .map(|_| tempfile::tempdir().expect("tempdir"))
        .collect();
    let desk = app(dirs[0].path());
    let bobs = app(dirs[1].path());
    let dans = app(dirs[2].path());
    register(&desk, "ann@example.org", "Ann Peeters");
    register(&bobs, "bob@example.org", "Bob Janssens");
    register(&dans, "dan@example.org", "Dan Claes");
    for who in ["ann@example.org", "bob@example.org", "dan@example.org"] {
        b.certify(who);
    }
    let plain = dirs[0].path().join("plain");
    let mirror = dirs[0].path().join("Dropbox/Kluis");
    desk.ok("add_folder_pair", json!({"plain": plain, "mirror": mirror}));
    desk.ok("unlock_identity", json!({"password": password}));
    std::fs::write(plain.join("a.txt"), "a").expect("write");
    desk.wait_status("one synced file", |s| {
        s["pairs"][0]["synced_files"] == 1 && s["tray"]["kind"] == "up_to_date"
    });
    let pair = desk.ok("get_status", json!({}))["pairs"][0]["id"]
        .as_str()
        .expect("pair")
        .to_owned();
    desk.ok(
        "apply_share",
        json!({"pair": pair, "add": ["bob@example.org"], "remove": [], "rekey": false}),
    );

    // Bob leaves; Ann shares with Dan from the dialog.
    b.disable("bob@example.org");
    let done = desk.ok(
        "apply_share",
        json!({"pair": pair, "add": ["dan@example.org"], "remove": [], "rekey": false}),
    );
    assert!(
        done["notices"]
            .as_array()
            .expect("notices")
            .iter()
            .any(|n| n["kind"] == "departed_dropped" && n["who"] == "bob@example.org"),
        "{done}"
    );
    let folder = desk.ok("get_folder_shares", json!({"pair": pair}));
    let mut members: Vec<&str> = folder["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["who"].as_str().expect("who"))
        .collect();
    members.sort();
    assert_eq!(members, ["ann@example.org", "dan@example.org"], "{folder}");
}
