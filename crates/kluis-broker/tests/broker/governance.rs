//! Policy, deprovisioning and the audit log, against a live broker on both
//! backends.

use kluis_account::{AccountError, OrgPolicy};
use kluis_audit::{Actor, Tamper};
use kluis_broker::admin;
use kluis_broker::org::OrgSigningKey;
use kluis_types::{ErrorCode, KsfParams, UserStatus};
use serde_json::json;

use crate::util::{Backend, start, test_settings};
use crate::{json_call, user};

fn host() -> Actor {
    Actor::admin("it-ops").unwrap()
}

fn test_policy() -> OrgPolicy {
    OrgPolicy {
        // What the test-only client registers with: the broker enforces
        // whatever the administrator sets.
        min_ksf: KsfParams {
            m_cost_kib: 256,
            t_cost: 1,
            p_cost: 1,
        },
        org_domains: vec!["example.org".into()],
        ..OrgPolicy::default()
    }
}

/// The default policy is served unsigned as version 0; an administrator's
/// policy is signed by the org key, verified by clients, enforced by the
/// server (minimum KSF), and recorded in the audit log.
pub async fn policy_is_signed_served_and_enforced(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let org = OrgSigningKey::init(&dir.path().join("org.key")).unwrap();
    let alice = user(&tb, &org, "alice").await;
    assert_eq!(
        alice.client.fetch_policy().await.unwrap(),
        OrgPolicy::default()
    );

    let mut strict = test_policy();
    strict.external_sharing = false;
    let signed = admin::set_policy(tb.store(), &org, &strict, &host(), tb.now())
        .await
        .unwrap();
    assert_eq!(signed.version, 1);
    assert_eq!(alice.client.fetch_policy().await.unwrap(), strict);
    assert_eq!(alice.client.policy_pin().unwrap().version, 1);

    // A client pinned to another org key refuses the policy.
    let (stranger, _s) = tb.device(
        OrgSigningKey::init(&dir.path().join("other.key"))
            .unwrap()
            .public_key(),
    );
    stranger.login(&alice.email, &alice.password).await.unwrap();
    assert!(matches!(
        stranger.fetch_policy().await,
        Err(AccountError::BadPolicy(_))
    ));

    // The endpoint needs a session and is in the OpenAPI document.
    let (status, _) = json_call(&tb, "GET", "/v1/policy", None, None).await;
    assert_eq!(status, 401);
    let (_, doc) = json_call(&tb, "GET", "/openapi.json", None, None).await;
    assert!(doc["paths"]["/v1/policy"]["get"].is_object());

    // Server-side minimum KSF: registering below it is refused by rule.
    let mut heavier = test_policy();
    heavier.min_ksf.m_cost_kib = 512;
    admin::set_policy(tb.store(), &org, &heavier, &host(), tb.now())
        .await
        .unwrap();
    let (bob_client, _b) = tb.device(org.public_key());
    let err = bob_client
        .register(&kluis_account::Registration {
            email: "bob@example.org",
            display_name: "Bob",
            password: &kluis_account::Password::new("a perfectly fine passphrase"),
            public_key: "kluis1bobkey",
            secret_identity: b"bob secret",
            invite: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.broker_code(), Some(ErrorCode::PolicyViolation), "{err}");
    assert!(err.to_string().contains("min_ksf"), "{err}");

    // Every change is in the audit log, and the log verifies.
    let rows = tb.store().audit_rows().await.unwrap();
    let changes = rows
        .iter()
        .filter(|r| r.entry.action == kluis_audit::Action::PolicyChanged)
        .count();
    assert_eq!(changes, 2);
    admin::verify_audit(tb.store(), &org.public_key())
        .await
        .unwrap();
    tb.shutdown().await;
}

/// Disabling ends every session at once, refuses login, marks the key
/// revoked in directory answers; enabling does not revive old sessions.
pub async fn disable_and_enable(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let org = OrgSigningKey::init(&dir.path().join("org.key")).unwrap();
    let alice = user(&tb, &org, "alice").await;
    let carol = user(&tb, &org, "carol").await;
    let carol_token = carol.session.token.expose().to_owned();
    let (status, _) = json_call(&tb, "GET", "/v1/session", Some(&carol_token), None).await;
    assert_eq!(status, 200);

    let email = kluis_types::Email::parse(&carol.email).unwrap();
    let ended = admin::disable_user(tb.store(), &email, &host(), tb.now())
        .await
        .unwrap();
    assert_eq!(ended, 1);
    let (status, _) = json_call(&tb, "GET", "/v1/session", Some(&carol_token), None).await;
    assert_eq!(status, 401, "the old session is dead at once");
    let login = carol.client.login(&carol.email, &carol.password).await;
    let err = login.unwrap_err();
    assert!(matches!(err, AccountError::AccountDisabled), "{err}");

    let (status, found) = json_call(
        &tb,
        "GET",
        &format!("/v1/directory?q={}", carol.email),
        Some(alice.session.token.expose()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(found["entries"][0]["status"], json!("revoked"));
    let entry: kluis_types::DirectoryEntry =
        serde_json::from_value(found["entries"][0].clone()).unwrap();
    assert_eq!(entry.status, UserStatus::Revoked);

    admin::enable_user(tb.store(), &email, &host(), tb.now())
        .await
        .unwrap();
    let (status, _) = json_call(&tb, "GET", "/v1/session", Some(&carol_token), None).await;
    assert_eq!(status, 401, "re-enabling does not revive old sessions");
    carol
        .client
        .login(&carol.email, &carol.password)
        .await
        .unwrap();
    let (_, found) = json_call(
        &tb,
        "GET",
        &format!("/v1/directory?q={}", carol.email),
        Some(alice.session.token.expose()),
        None,
    )
    .await;
    assert_eq!(found["entries"][0]["status"], json!("active"));

    let actions: Vec<_> = tb
        .store()
        .audit_rows()
        .await
        .unwrap()
        .iter()
        .map(|r| r.entry.action.code())
        .collect();
    for code in [
        "user.disabled",
        "sessions.revoked",
        "key.revoked",
        "user.enabled",
        "user.registered",
        "escrow.read",
    ] {
        assert!(actions.contains(&code), "{code} missing from {actions:?}");
    }
    tb.shutdown().await;
}

/// Failed logins beyond the threshold are recorded once; shares recorded by
/// clients land in the log.
pub async fn login_failures_and_shares_are_audited(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let org = OrgSigningKey::init(&dir.path().join("org.key")).unwrap();
    let alice = user(&tb, &org, "alice").await;
    let (phone, _p) = tb.device(org.public_key());
    for _ in 0..kluis_broker::api::FAILURE_THRESHOLD + 2 {
        let wrong = kluis_account::Password::new("not her password");
        assert!(phone.login(&alice.email, &wrong).await.is_err());
    }
    alice
        .client
        .record_share(
            kluis_types::ShareEvent::Granted,
            "bob@example.org",
            "Finance",
            Some(kluis_types::Label::Confidential),
        )
        .await
        .unwrap();
    let (status, _) = json_call(
        &tb,
        "POST",
        "/v1/audit/shares",
        Some(alice.session.token.expose()),
        Some(json!({"event": "granted", "recipient": "bob@example.org", "folder": "kluis-org-secret-ed25519:AAAA"})),
    )
    .await;
    assert_eq!(status, 400, "secret-looking text is refused");
    let rows = tb.store().audit_rows().await.unwrap();
    let alerts: Vec<_> = rows
        .iter()
        .filter(|r| r.entry.action == kluis_audit::Action::LoginFailuresExceeded)
        .collect();
    assert_eq!(alerts.len(), 1, "one alert per window");
    assert_eq!(alerts[0].entry.target, alice.email);
    assert!(
        rows.iter()
            .any(|r| r.entry.action == kluis_audit::Action::ShareGranted
                && r.entry.target == "bob@example.org")
    );
    tb.shutdown().await;
}

async fn raw_exec(tb: &crate::util::TestBroker, sql: &str) {
    match tb.backend {
        Backend::Sqlite => {
            let path = tb.sqlite_path.as_ref().unwrap();
            let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let (url, schema) = tb.pg.as_ref().unwrap();
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::raw_sql(&format!("SET search_path TO {schema}; {sql}"))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }
}

/// `admin audit verify` reads the rows from the database and names an
/// edited, a deleted and a reordered row; the triggers refuse plain
/// UPDATE/DELETE, so the attacker here drops them first.
pub async fn audit_tampering_in_the_database_is_named(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let org = OrgSigningKey::init(&dir.path().join("org.key")).unwrap();
    for name in ["a", "b", "c"] {
        user(&tb, &org, name).await;
    }
    admin::audit_checkpoint(tb.store(), &org, &host(), tb.now())
        .await
        .unwrap();
    for name in ["d", "e"] {
        user(&tb, &org, name).await;
    }
    let report = admin::verify_audit(tb.store(), &org.public_key())
        .await
        .unwrap();
    assert_eq!(report.checkpoints, 1);
    let n = report.rows;
    assert!(n >= 10, "{n} rows");

    // The schema refuses edits outright.
    let refused = match tb.backend {
        Backend::Sqlite => {
            let path = tb.sqlite_path.as_ref().unwrap();
            let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            sqlx::raw_sql("UPDATE audit_log SET target = 'x' WHERE seq = 2")
                .execute(&pool)
                .await
                .is_err()
        }
        Backend::Postgres => {
            let (url, schema) = tb.pg.as_ref().unwrap();
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::raw_sql(&format!(
                "SET search_path TO {schema}; UPDATE audit_log SET target = 'x' WHERE seq = 2"
            ))
            .execute(&pool)
            .await
            .is_err()
        }
    };
    assert!(refused, "the append-only trigger must refuse UPDATE");
    let drop_triggers = match tb.backend {
        Backend::Sqlite => "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
        Backend::Postgres => {
            "DROP TRIGGER audit_log_no_update ON audit_log; DROP TRIGGER audit_log_no_delete ON audit_log;"
        }
    };
    raw_exec(&tb, drop_triggers).await;

    let verify = || async {
        match admin::verify_audit(tb.store(), &org.public_key()).await {
            Err(admin::AdminError::Audit(kluis_audit::AuditError::Tampered(t))) => t,
            other => panic!("expected a tamper finding, got {other:?}"),
        }
    };
    // Each step tampers earlier in the log than the last, so the first
    // finding is always the newest tampering. Edit one field of row 9:
    raw_exec(
        &tb,
        "UPDATE audit_log SET target = 'mallory@example.org' WHERE seq = 9",
    )
    .await;
    assert_eq!(verify().await, Tamper::Edited { seq: 9 });
    if tb.backend == Backend::Sqlite {
        // The operator's commands, on the same database file.
        let broker = |args: &[&str]| {
            std::process::Command::new(env!("CARGO_BIN_EXE_kluis-broker"))
                .env_remove("KLUIS_HOME")
                .env_remove("KLUIS_BROKER_CONFIG")
                .env_remove("KLUIS_BROKER_DATABASE_URL")
                .arg("--data-dir")
                .arg(tb.dir.path())
                .args(args)
                .output()
                .unwrap()
        };
        let org_text = org.public_key().to_string();
        let out = broker(&["admin", "audit", "verify", "--org-public-key", &org_text]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("9"), "the finding names row 9: {stderr}");
        let csv = broker(&["admin", "audit", "export", "--format", "csv"]);
        assert!(csv.status.success());
        let csv = String::from_utf8(csv.stdout).unwrap();
        assert!(csv.starts_with("seq,"), "{csv}");
        assert!(csv.contains("mallory@example.org") && csv.contains("user.registered"));
        let jsonl = broker(&["admin", "audit", "export", "--format", "jsonl"]);
        let first: serde_json::Value = serde_json::from_str(
            String::from_utf8(jsonl.stdout)
                .unwrap()
                .lines()
                .next()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(first["seq"], json!(1));
    }
    // Swap the stored order of rows 5 and 6 (ids equal seqs in a fresh log):
    raw_exec(
        &tb,
        "UPDATE audit_log SET id = 0 WHERE seq = 5; \
         UPDATE audit_log SET id = 5 WHERE seq = 6; \
         UPDATE audit_log SET id = 6 WHERE seq = 5;",
    )
    .await;
    let t = verify().await;
    assert!(matches!(t, Tamper::Reordered { .. }), "{t:?}");
    assert!(t.seq() == 5 || t.seq() == 6, "{t:?}");
    // Delete row 2:
    raw_exec(&tb, "DELETE FROM audit_log WHERE seq = 2").await;
    assert_eq!(verify().await, Tamper::Deleted { seq: 2 });
    tb.shutdown().await;
}

/// A write and the audit rows that record it are one transaction: when
/// the rows cannot be written, the action does not happen either (and a
/// crash can never leave an action without its record).
pub async fn an_action_and_its_audit_rows_commit_together(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let org = OrgSigningKey::init(&dir.path().join("org.key")).unwrap();
    let carol = user(&tb, &org, "carol").await;
    let token = carol.session.token.expose().to_owned();
    let email = kluis_types::Email::parse(&carol.email).unwrap();
    let id = tb
        .store()
        .user_by_email(&email)
        .await
        .unwrap()
        .unwrap()
        .user_id;
    let rows_before = tb.store().audit_rows().await.unwrap().len();

    let refused = tb
        .store()
        .set_disabled(&id, Some(tb.now()), &|_| {
            Err(kluis_audit::AuditError::Invalid {
                field: "test",
                reason: "the log refuses this row",
            })
        })
        .await;
    assert!(refused.is_err(), "the write must fail with its audit rows");
    let row = tb.store().user_by_email(&email).await.unwrap().unwrap();
    assert_eq!(row.disabled_at, None, "not disabled without a record");
    let (status, _) = json_call(&tb, "GET", "/v1/session", Some(&token), None).await;
    assert_eq!(status, 200, "the session survived the rolled-back disable");
    assert_eq!(tb.store().audit_rows().await.unwrap().len(), rows_before);

    admin::disable_user(tb.store(), &email, &host(), tb.now())
        .await
        .unwrap();
    let rows = tb.store().audit_rows().await.unwrap();
    let actions: Vec<String> = rows[rows_before..]
        .iter()
        .map(|r| r.entry.action.to_string())
        .collect();
    assert_eq!(
        actions,
        ["user.disabled", "sessions.revoked", "key.revoked"],
        "the disable and its three rows, together"
    );
    tb.shutdown().await;
}
