//! Issue 4 end to end, through the `kluis` binary against a live broker on
//! SQLite and (when KLUIS_TEST_POSTGRES_URL is set; required with
//! KLUIS_REQUIRE_POSTGRES=1) PostgreSQL: users enrol under a
//! mandatory-recovery policy, one loses her password and is recovered by 2 of
//! 3 administrators (refusing K−1, a double approval, a wrong fingerprint
//! and a tampered share on the way), decrypts her earlier file, another user
//! is disabled (sessions dead, key revoked, shown as "left"), and the audit
//! log verifies.

use std::path::Path;
use std::sync::Arc;

use kluis_audit::Actor;
use kluis_broker::clock::SystemClock;
use kluis_broker::config::{Config, Overrides};
use kluis_broker::org::OrgSigningKey;
use kluis_broker::{Broker, admin, server::RunningServer};
use kluis_types::{Email, KsfParams, OrgPolicy};

use crate::util::{User, run, run_fail, run_ok};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

struct Org {
    url: String,
    org: OrgSigningKey,
    broker: Broker,
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
    _server: RunningServer,
}

fn pg_url() -> Option<String> {
    match std::env::var("KLUIS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("KLUIS_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "KLUIS_REQUIRE_POSTGRES=1 but KLUIS_TEST_POSTGRES_URL is not set"
            );
            None
        }
    }
}

impl Org {
    fn start(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let url = pg_url()?;
                let schema = format!(
                    "kluis_cli_{}",
                    dir.path()
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .to_ascii_lowercase()
                        .replace(|c: char| !c.is_ascii_alphanumeric(), "")
                );
                rt.block_on(async {
                    let pool = sqlx::PgPool::connect(&url).await.unwrap();
                    sqlx::query(&format!("CREATE SCHEMA {schema}"))
                        .execute(&pool)
                        .await
                        .unwrap();
                    pool.close().await;
                });
                let sep = if url.contains('?') { '&' } else { '?' };
                Some(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
            }
        };
        let org = OrgSigningKey::init(&dir.path().join("org.key")).unwrap();
        let overrides = Overrides {
            config_file: None,
            data_dir: Some(dir.path().join("broker")),
            listen: Some("127.0.0.1:0".into()),
        };
        let org_text = org.public_key().to_string();
        let env = |k: &str| match k {
            "KLUIS_BROKER_REGISTRATION" => Some("open".to_owned()),
            "KLUIS_BROKER_ORG_PUBLIC_KEY" => Some(org_text.clone()),
            "KLUIS_BROKER_DATABASE_URL" => database_url.clone(),
            _ => None,
        };
        let config = Config::resolve(&overrides, &env).unwrap();
        let broker = rt
            .block_on(Broker::open(&config, Arc::new(SystemClock)))
            .unwrap();
        let server = rt.block_on(broker.spawn(config.listen, None)).unwrap();
        Some(Org {
            url: format!("http://{}", server.local_addr),
            org,
            broker,
            rt,
            dir,
            _server: server,
        })
    }

    fn org_key(&self) -> String {
        self.org.public_key().to_string()
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn host() -> Actor {
        Actor::admin("it-ops").unwrap()
    }

    fn certify(&self, email: &str) {
        let email = Email::parse(email).unwrap();
        self.rt
            .block_on(admin::certify(
                self.broker.store(),
                &self.org,
                &email,
                None,
                Self::now(),
            ))
            .unwrap();
    }

    fn register(&self, u: &User, email: &str, name: &str) -> String {
        let out = run_ok(user_cmd(u).args([
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
        String::from_utf8(out.stdout).unwrap()
    }
}

/// The test-only KSF keeps the many OPAQUE runs fast; the policy below
/// admits it, and the broker enforces the policy's minimum.
fn user_cmd(u: &User) -> std::process::Command {
    let mut c = u.cmd();
    c.env("KLUIS_INSECURE_TEST_KSF", "1");
    c
}

struct Admin {
    name: &'static str,
    user: User,
    key_file: std::path::PathBuf,
    token_file: std::path::PathBuf,
    share_pass: std::path::PathBuf,
}

impl Admin {
    fn new(org: &Org, name: &'static str) -> Self {
        let user = User::new();
        let key_file = user.path("approval.key");
        let out = run_ok(
            user.cmd()
                .args(["admin", "key", "init", "--out"])
                .arg(&key_file),
        );
        let public = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(public.starts_with("kluis-admin-ed25519:"), "{public}");
        let token = org
            .rt
            .block_on(admin::add_admin(
                org.broker.store(),
                name,
                &public,
                kluis_broker::config::DEFAULT_ADMIN_TOKEN_TTL_SECS,
                &Org::host(),
                Org::now(),
            ))
            .unwrap();
        let token_file = user.path("admin-token");
        std::fs::write(&token_file, token.expose()).unwrap();
        let share_pass = user.path("share-pass");
        std::fs::write(
            &share_pass,
            format!("share password of {name}, long enough\n"),
        )
        .unwrap();
        Admin {
            name,
            user,
            key_file,
            token_file,
            share_pass,
        }
    }

    fn cmd(&self, org: &Org) -> std::process::Command {
        let mut c = self.user.cmd();
        c.args(["admin", "--broker", &org.url, "--token-file"])
            .arg(&self.token_file);
        c
    }
}

fn line_after<'a>(text: &'a str, marker: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.split_once(marker).map(|(_, rest)| rest.trim()))
        .unwrap_or_else(|| panic!("no {marker:?} in {text}"))
}

fn share_arg(dir: &Path, index: u8, admin: &Admin) -> String {
    let file = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("share-{index}-"))
        })
        .unwrap();
    format!("{}={}", file.display(), admin.share_pass.display())
}

fn recovery_end_to_end(backend: Backend) {
    let Some(org) = Org::start(backend) else {
        return;
    };
    // Three recovery administrators; any two may recover.
    let admins = [
        Admin::new(&org, "ann"),
        Admin::new(&org, "bram"),
        Admin::new(&org, "cem"),
    ];
    let shares_dir = org.dir.path().join("ceremony");
    let mut init = admins[0].user.cmd();
    init.args([
        "admin",
        "recovery",
        "init",
        "--threshold",
        "2",
        "--shares",
        "3",
    ]);
    for a in &admins {
        init.arg("--holder")
            .arg(format!("{}={}", a.name, a.share_pass.display()));
    }
    init.arg("--out-dir").arg(&shares_dir);
    run_ok(&mut init);
    run_ok(
        admins[0]
            .cmd(&org)
            .args(["recovery", "publish", "--recovery"])
            .arg(shares_dir.join("recovery.json"))
            .arg("--org-key")
            .arg(org.dir.path().join("org.key")),
    );

    // Mandatory recovery enrolment.
    let policy = OrgPolicy {
        recovery_mandatory: true,
        min_ksf: KsfParams {
            m_cost_kib: 256,
            t_cost: 1,
            p_cost: 1,
        },
        ..OrgPolicy::default()
    };
    org.rt
        .block_on(admin::set_policy(
            org.broker.store(),
            &org.org,
            &policy,
            &Org::host(),
            Org::now(),
        ))
        .unwrap();

    let alice = User::new();
    let bob = User::new();
    let said = org.register(&alice, "alice@example.org", "Alice Peeters");
    assert!(
        said.contains("Your organisation can recover your key"),
        "{said}"
    );
    org.register(&bob, "bob@example.org", "Bob Janssens");
    org.certify("alice@example.org");
    org.certify("bob@example.org");
    let who =
        String::from_utf8(run_ok(user_cmd(&alice).args(["account", "whoami"])).stdout).unwrap();
    assert!(
        who.contains("your organisation can recover your keys"),
        "{who}"
    );

    // A weak new password is refused by the policy, on the client.
    std::fs::write(alice.path("weak"), "password1\n").unwrap();
    run_fail(
        user_cmd(&alice)
            .args(["account", "passwd", "--new-passphrase-file"])
            .arg(alice.path("weak")),
        "too weak",
    );

    // Alice's earlier file, encrypted to herself.
    std::fs::write(alice.path("plan.txt"), b"begroting 2027").unwrap();
    run_ok(user_cmd(&alice).args([
        "encrypt",
        "-r",
        "alice@example.org",
        "-o",
        "plan.kluis",
        "plan.txt",
    ]));

    // Alice loses her password; on a new laptop she asks for recovery.
    let laptop = User::new();
    std::fs::write(
        laptop.path("new-pass"),
        "a brand new passphrase for alice\n",
    )
    .unwrap();
    let asked = run_ok(
        user_cmd(&laptop)
            .args([
                "account",
                "recover",
                "--email",
                "alice@example.org",
                "--broker",
                &org.url,
                "--org-key",
                &org.org_key(),
                "--new-passphrase-file",
            ])
            .arg(laptop.path("new-pass")),
    );
    let asked = String::from_utf8(asked.stdout).unwrap();
    let fingerprint = line_after(&asked, "Your request fingerprint:").to_owned();
    let request = line_after(&asked, "(request ")
        .trim_end_matches(").")
        .to_owned();
    assert_eq!(request.len(), 32, "{asked}");

    // A fingerprint that is not the user's (a wrong request key) is refused.
    run_fail(
        admins[0].cmd(&org).args([
            "recovery",
            "approve",
            "--request",
            &request,
            "--key",
            admins[0].key_file.to_str().unwrap(),
            "--fingerprint",
            "0000 1111 2222 3333 4444 5555 6666 7777",
        ]),
        "does not match this request",
    );
    let approve = |a: &Admin| {
        run(a.cmd(&org).args([
            "recovery",
            "approve",
            "--request",
            &request,
            "--key",
            a.key_file.to_str().unwrap(),
            "--fingerprint",
            &fingerprint,
        ]))
    };
    assert!(approve(&admins[0]).status.success());
    // Ann cannot approve twice.
    let twice = approve(&admins[0]);
    assert!(!twice.status.success());
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("already approved"),
        "{}",
        String::from_utf8_lossy(&twice.stderr)
    );
    // K−1 approvals do nothing: the re-seal is refused even with K shares.
    let complete = |shares: &[String]| {
        let mut c = admins[0].cmd(&org);
        c.args([
            "recovery",
            "complete",
            "--request",
            &request,
            "--org-public-key",
            &org.org_key(),
        ]);
        for s in shares {
            c.arg("--share").arg(s);
        }
        run(&mut c)
    };
    let two = [
        share_arg(&shares_dir, 1, &admins[0]),
        share_arg(&shares_dir, 2, &admins[1]),
    ];
    let early = complete(&two);
    assert!(!early.status.success());
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("approval"),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );
    let pending = String::from_utf8(
        run_ok(
            user_cmd(&laptop)
                .args(["account", "recover", "--new-passphrase-file"])
                .arg(laptop.path("new-pass")),
        )
        .stdout,
    )
    .unwrap();
    assert!(pending.contains("1 approval(s) of 2"), "{pending}");

    assert!(approve(&admins[1]).status.success());

    // A share altered by someone without its password is named.
    let tampered = shares_dir.join("tampered.kshare");
    let original = two[1].split_once('=').unwrap().0;
    let mut bytes = std::fs::read(original).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&tampered, bytes).unwrap();
    let bad = complete(&[
        two[0].clone(),
        format!("{}={}", tampered.display(), admins[1].share_pass.display()),
    ]);
    assert!(!bad.status.success());
    let why = String::from_utf8_lossy(&bad.stderr);
    assert!(why.contains("share 2 (bram)"), "{why}");

    // K shares and K approvals: re-sealed to Alice's request key.
    let done = complete(&[share_arg(&shares_dir, 3, &admins[2]), two[1].clone()]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );

    // Alice opens it, sets her new password and sees who recovered her key.
    let finished = run_ok(
        user_cmd(&laptop)
            .args(["account", "recover", "--new-passphrase-file"])
            .arg(laptop.path("new-pass")),
    );
    let finished = String::from_utf8(finished.stdout).unwrap();
    assert!(finished.contains("Your key was recovered"), "{finished}");
    assert!(
        finished.contains("ann approved at") && finished.contains("bram approved at"),
        "{finished}"
    );
    assert!(finished.contains("re-sealed by ann"), "{finished}");
    // Every device of hers can tell who recovered the key and when:
    // `kluis account whoami`, and the agent library the tray notifies from
    // (each recovery told once per device).
    let who =
        String::from_utf8(run_ok(user_cmd(&laptop).args(["account", "whoami"])).stdout).unwrap();
    assert!(
        who.contains("Key recovered by IT at ")
            && who.contains(": approved by ")
            && who.contains("ann at ")
            && who.contains("bram at ")
            && who.contains("re-sealed by ann."),
        "{who}"
    );
    let laptop_home = kluis_agent::AgentHome::in_dir(&laptop.path("home"));
    let told = org
        .rt
        .block_on(kluis_client::account::new_recoveries(&laptop_home))
        .unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].completed_by, "ann");
    let mut approvers: Vec<&str> = told[0]
        .approvals
        .iter()
        .map(|a| a.admin_name.as_str())
        .collect();
    approvers.sort_unstable();
    assert_eq!(approvers, ["ann", "bram"]);
    assert!(
        org.rt
            .block_on(kluis_client::account::new_recoveries(&laptop_home))
            .unwrap()
            .is_empty(),
        "a recovery is told once"
    );
    assert_eq!(
        kluis_client::account::known_recoveries(&laptop_home).unwrap(),
        told
    );
    // Her earlier file opens on the laptop with the new password.
    std::fs::copy(alice.path("plan.kluis"), laptop.path("plan.kluis")).unwrap();
    std::fs::copy(laptop.path("new-pass"), laptop.path("pass")).unwrap();
    let plain = run_ok(laptop.cmd().args(["decrypt", "plan.kluis"]));
    assert_eq!(plain.stdout, b"begroting 2027");
    // The old password is dead; the new one logs in.
    run_fail(
        user_cmd(&User::new()).args([
            "account",
            "login",
            "--broker",
            &org.url,
            "--org-key",
            &org.org_key(),
            "--email",
            "alice@example.org",
        ]),
        "login failed",
    );

    // A file Alice shares with Bob before he leaves.
    std::fs::write(laptop.path("dossier.txt"), b"overdracht dossier 7").unwrap();
    run_ok(user_cmd(&laptop).args([
        "encrypt",
        "-r",
        "bob@example.org",
        "-o",
        "dossier.kluis",
        "dossier.txt",
    ]));

    // Bob leaves: his sessions end at once, his key is shown as left.
    let before = run_ok(user_cmd(&bob).args(["account", "whoami"]));
    assert!(before.status.success());
    let ended = org
        .rt
        .block_on(admin::disable_user(
            org.broker.store(),
            &Email::parse("bob@example.org").unwrap(),
            &Org::host(),
            Org::now(),
        ))
        .unwrap();
    assert!(ended >= 1);
    run_fail(user_cmd(&bob).args(["account", "whoami"]), "");
    let found =
        String::from_utf8(run_ok(user_cmd(&laptop).args(["contacts", "find", "bob"])).stdout)
            .unwrap();
    assert!(
        found.contains("bob@example.org") && found.contains("left"),
        "{found}"
    );
    run_fail(
        user_cmd(&laptop).args([
            "encrypt",
            "-r",
            "bob@example.org",
            "-o",
            "x.kluis",
            "plan.kluis",
        ]),
        "has left",
    );

    // Hand-over: Cem recovers the departed Bob's key on his own machine
    // (his own request key), Ann and Bram approve, Bram re-seals.
    std::fs::write(
        admins[2].user.path("handover-pass"),
        "hand-over passphrase for bob's files\n",
    )
    .unwrap();
    let recover_bob = || {
        run_ok(
            user_cmd(&admins[2].user)
                .args([
                    "account",
                    "recover",
                    "--email",
                    "bob@example.org",
                    "--broker",
                    &org.url,
                    "--org-key",
                    &org.org_key(),
                    "--new-passphrase-file",
                ])
                .arg(admins[2].user.path("handover-pass")),
        )
    };
    let asked = String::from_utf8(recover_bob().stdout).unwrap();
    let bob_fp = line_after(&asked, "Your request fingerprint:").to_owned();
    let bob_req = line_after(&asked, "(request ")
        .trim_end_matches(").")
        .to_owned();
    for a in &admins[..2] {
        run_ok(a.cmd(&org).args([
            "recovery",
            "approve",
            "--request",
            &bob_req,
            "--key",
            a.key_file.to_str().unwrap(),
            "--fingerprint",
            &bob_fp,
        ]));
    }
    let mut c = admins[1].cmd(&org);
    c.args([
        "recovery",
        "complete",
        "--request",
        &bob_req,
        "--org-public-key",
        &org.org_key(),
    ]);
    for a in &admins {
        c.arg("--admin").arg(
            String::from_utf8(
                run_ok(a.user.cmd().args(["admin", "key", "show"]).arg(&a.key_file)).stdout,
            )
            .unwrap()
            .trim(),
        );
    }
    c.arg("--share").arg(two[1].clone());
    c.arg("--share").arg(share_arg(&shares_dir, 3, &admins[2]));
    run_ok(&mut c);
    let handed = String::from_utf8(recover_bob().stdout).unwrap();
    assert!(handed.contains("recovered for hand-over"), "{handed}");
    let id_file = line_after(&handed, "kluis decrypt -i ")
        .trim_end_matches('`')
        .trim_end_matches(".`")
        .to_owned();
    let id_file = id_file
        .trim_end_matches('.')
        .trim_end_matches('`')
        .to_owned();
    std::fs::copy(
        laptop.path("dossier.kluis"),
        admins[2].user.path("dossier.kluis"),
    )
    .unwrap();
    std::fs::copy(
        admins[2].user.path("handover-pass"),
        admins[2].user.path("pass"),
    )
    .unwrap();
    let plain = run_ok(
        admins[2]
            .user
            .cmd()
            .args(["decrypt", "-i", &id_file, "dossier.kluis"]),
    );
    assert_eq!(plain.stdout, b"overdracht dossier 7");
    // Still disabled: the hand-over does not let the account log in.
    let wrong_device = User::new();
    std::fs::copy(
        admins[2].user.path("handover-pass"),
        wrong_device.path("pass"),
    )
    .unwrap();
    run_fail(
        user_cmd(&wrong_device).args([
            "account",
            "login",
            "--broker",
            &org.url,
            "--org-key",
            &org.org_key(),
            "--email",
            "bob@example.org",
        ]),
        "disabled",
    );

    // The audit log holds the story and verifies, checkpoint included.
    org.rt
        .block_on(admin::audit_checkpoint(
            org.broker.store(),
            &org.org,
            &Org::host(),
            Org::now(),
        ))
        .unwrap();
    let report = org
        .rt
        .block_on(admin::verify_audit(
            org.broker.store(),
            &org.org.public_key(),
        ))
        .unwrap();
    assert_eq!(report.checkpoints, 1);
    let rows = org.rt.block_on(org.broker.store().audit_rows()).unwrap();
    let codes: Vec<&str> = rows.iter().map(|r| r.entry.action.code()).collect();
    for code in [
        "admin.added",
        "recovery.initialised",
        "policy.changed",
        "user.registered",
        "escrow.recovery_stored",
        "key.certified",
        "recovery.requested",
        "recovery.approved",
        "escrow.recovery_read",
        "recovery.completed",
        "sessions.revoked",
        "user.disabled",
        "key.revoked",
        "audit.checkpoint",
    ] {
        assert!(codes.contains(&code), "{code} missing: {codes:?}");
    }
}

#[test]
fn recovery_end_to_end_sqlite() {
    recovery_end_to_end(Backend::Sqlite);
}

#[test]
fn recovery_end_to_end_postgres() {
    recovery_end_to_end(Backend::Postgres);
}
