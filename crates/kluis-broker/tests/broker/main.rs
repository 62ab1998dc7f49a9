//! Server-side integration tests: authorization matrix, malformed input,
//! database/log dump, escrow immutability, rate limits, login
//! indistinguishability, session expiry and the ops endpoints. Each runs on
//! SQLite and (when configured) PostgreSQL.
#![allow(clippy::unwrap_used, reason = "tests")]

mod audited;
mod bounds;
mod flood;
mod flood_tls;
mod governance;
mod hostile_text;
mod invites;
mod operational;
mod ratelimit;
use kluis_testkit::broker as util;
use kluis_testkit::on_both_backends;

use governance::{
    an_action_and_its_audit_rows_commit_together, audit_tampering_in_the_database_is_named,
    disable_and_enable, login_failures_and_shares_are_audited,
    policy_is_signed_served_and_enforced,
};
use stolen_token::{
    a_change_whose_escrow_does_not_open_is_rolled_back_by_the_client,
    a_password_change_proves_the_old_password_and_is_audited,
    a_reauth_proof_works_once_and_briefly, a_stolen_token_cannot_change_escrow_key_or_password,
    an_unopenable_escrow_version_can_be_rolled_back,
};
mod groups;
use kluis_testkit::pki;
mod recovery_requests;
mod stolen_token;
mod tls;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kluis_account::{AccountClient, Password, Registration, StoredSession};
use kluis_broker::config::{Limits, Settings};
use kluis_broker::opaque::Suite;
use kluis_broker::org::OrgSigningKey;
use kluis_broker::ratelimit::Limit;
use opaque_ke::ClientLogin;
use rand::rngs::OsRng;
use serde_json::{Value, json};
use util::{Backend, TestBroker, contains, start, test_settings, unique};

struct User {
    email: String,
    password: Password,
    password_text: String,
    public_key: String,
    secret: Vec<u8>,
    session: StoredSession,
    client: AccountClient,
    _state: tempfile::TempDir,
}

/// A broker with the test settings and an organisation key in its
/// directory; `None` when the backend is not configured.
async fn org_broker(backend: Backend) -> Option<(TestBroker, OrgSigningKey)> {
    let tb = start(backend, test_settings()).await?;
    let org = OrgSigningKey::init(&tb.dir.path().join("org.key")).unwrap();
    Some((tb, org))
}

/// [`org_broker`] with one registered user per name, in order.
async fn org_broker_with<const N: usize>(
    backend: Backend,
    names: [&str; N],
) -> Option<(TestBroker, OrgSigningKey, [User; N])> {
    let (tb, org) = org_broker(backend).await?;
    let mut users = Vec::with_capacity(N);
    for name in names {
        users.push(user(&tb, &org, name).await);
    }
    let users = users
        .try_into()
        .unwrap_or_else(|_| unreachable!("one user per name"));
    Some((tb, org, users))
}

/// The HTTP status of a broker's refusal.
fn status(e: &kluis_account::AccountError) -> u16 {
    match e {
        kluis_account::AccountError::Broker { status, .. } => *status,
        other => panic!("expected a broker refusal, got {other}"),
    }
}

async fn user(tb: &TestBroker, org: &OrgSigningKey, name: &str) -> User {
    user_at(tb, org, name, "example.org").await
}

async fn user_at(tb: &TestBroker, org: &OrgSigningKey, name: &str, domain: &str) -> User {
    let (client, state) = tb.device(org.public_key());
    let password_text = unique("pw horse battery ");
    let password = Password::new(password_text.clone());
    let mut secret = vec![0u8; 48];
    util::getrandom_fill(&mut secret);
    let email = format!("{}@{domain}", unique(name));
    let public_key = unique("kluis1testkey");
    let out = client
        .register(&Registration {
            email: &email,
            display_name: name,
            password: &password,
            public_key: &public_key,
            secret_identity: &secret,
            invite: None,
        })
        .await
        .unwrap();
    User {
        email,
        password,
        password_text,
        public_key,
        secret,
        session: out.session,
        client,
        _state: state,
    }
}

/// Raw HTTP with full control over method, headers and body.
async fn send(
    tb: &TestBroker,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client
        .request(method, format!("{}{path}", tb.url))
        .body(body);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .unwrap_or_default();
    (status, ct, resp.bytes().await.unwrap().to_vec())
}

async fn json_call(
    tb: &TestBroker,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (ct, bytes) = match body {
        Some(v) => (Some("application/json"), serde_json::to_vec(&v).unwrap()),
        None => (None, Vec::new()),
    };
    let (status, _, bytes) = send(tb, method, path, token, ct, bytes).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

fn fake_ksf() -> Value {
    json!({"m_cost_kib": 256, "t_cost": 1, "p_cost": 1})
}

/// User A's session cannot read or change anything of user B.
async fn authorization_matrix(backend: Backend) {
    let Some((tb, org)) = org_broker(backend).await else {
        return;
    };
    let a = user(&tb, &org, "alice").await;
    let b = user(&tb, &org, "bob").await;
    let (ta, tb_token) = (a.session.token.expose(), b.session.token.expose());
    let (ida, idb) = (a.session.user_id.as_str(), b.session.user_id.as_str());
    let b_session = b.session.session_id.as_str();

    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("/v1/users/{idb}/escrow"), None),
        ("GET", format!("/v1/users/{idb}/escrow/versions"), None),
        ("GET", format!("/v1/users/{idb}/escrow/versions/1"), None),
        ("GET", format!("/v1/users/{idb}/sessions"), None),
        (
            "DELETE",
            format!("/v1/users/{idb}/sessions/{b_session}"),
            None,
        ),
        (
            "POST",
            format!("/v1/users/{idb}/password/start"),
            Some(json!({"registration_request": b64(&[0u8; 32])})),
        ),
        (
            "POST",
            format!("/v1/users/{idb}/password/finish"),
            Some(json!({
            "registration_upload": b64(&[0u8; 64]), "ksf": fake_ksf(),
            "escrow": b64(b"evil"), "expected_escrow_version": 1,
            "reauth": {"login_id": "ab".repeat(16), "credential_finalization": b64(&[0u8; 64])}})),
        ),
    ];
    for (method, path, body) in &cases {
        let (status, value) = json_call(&tb, method, path, Some(ta), body.clone()).await;
        assert_eq!(status, 403, "{method} {path} with A's session: {value}");
        assert_eq!(value["code"], "forbidden", "{method} {path}");
        let (status, value) = json_call(&tb, method, path, None, body.clone()).await;
        assert_eq!(status, 401, "{method} {path} without a session: {value}");
    }
    // Control: the same routes work for one's own user.
    let (status, own) = json_call(
        &tb,
        "GET",
        &format!("/v1/users/{ida}/escrow"),
        Some(ta),
        None,
    )
    .await;
    assert_eq!(status, 200, "{own}");
    let (status, _) = json_call(
        &tb,
        "GET",
        &format!("/v1/users/{ida}/sessions"),
        Some(ta),
        None,
    )
    .await;
    assert_eq!(status, 200);
    // A naming B's session under A's own user id finds nothing.
    let (status, _) = json_call(
        &tb,
        "DELETE",
        &format!("/v1/users/{ida}/sessions/{b_session}"),
        Some(ta),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // B is untouched: session alive, one escrow version, same key, same secret.
    let (status, me) = json_call(&tb, "GET", "/v1/session", Some(tb_token), None).await;
    assert_eq!(status, 200);
    assert_eq!(me["public_key"], b.public_key.as_str());
    let (_, versions) = json_call(
        &tb,
        "GET",
        &format!("/v1/users/{idb}/escrow/versions"),
        Some(tb_token),
        None,
    )
    .await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
    let (again, _d) = tb.device(org.public_key());
    let out = again.login(&b.email, &b.password).await.unwrap();
    assert_eq!(out.secret_identity.expose(), &b.secret[..]);
    tb.shutdown().await;
}

type Case<'a> = (
    &'a str,
    String,
    Option<&'a str>,
    Option<&'a str>,
    Vec<u8>,
    u16,
);

/// Every malformed request gets a 4xx with a JSON `{code, message}`.
async fn malformed_requests_get_json_4xx(backend: Backend) {
    let Some((tb, org)) = org_broker(backend).await else {
        return;
    };
    let a = user(&tb, &org, "alice").await;
    let t = a.session.token.expose();
    let id = a.session.user_id.as_str();
    let j = Some("application/json");
    let good_email = "someone@example.org";
    let big = vec![b'x'; 100 * 1024];
    // (method, path, bearer token, content type, body, expected status)
    let cases: Vec<Case<'_>> = vec![
        ("POST", "/v1/login/start".into(), None, j, b"{".to_vec(), 400),
        ("POST", "/v1/login/start".into(), None, j, b"[]".to_vec(), 422),
        ("POST", "/v1/login/start".into(), None, j, br#"{"email":"x","credential_request":"AAAA"}"#.to_vec(), 422),
        ("POST", "/v1/login/start".into(), None, j, format!(r#"{{"email":"{good_email}","credential_request":"!!"}}"#).into_bytes(), 422),
        ("POST", "/v1/login/start".into(), None, j, format!(r#"{{"email":"{good_email}","credential_request":"AAAA"}}"#).into_bytes(), 400),
        ("POST", "/v1/login/start".into(), None, j, format!(r#"{{"email":"{good_email}","credential_request":"AAAA","x":1}}"#).into_bytes(), 422),
        ("POST", "/v1/login/start".into(), None, Some("text/plain"), b"hello".to_vec(), 415),
        ("POST", "/v1/login/start".into(), None, j, big.clone(), 413),
        ("POST", "/v1/login/finish".into(), None, j, br#"{"login_id":"zz","credential_finalization":"AAAA"}"#.to_vec(), 422),
        ("POST", "/v1/login/finish".into(), None, j, format!(r#"{{"login_id":"{}","credential_finalization":"AAAA"}}"#, "ab".repeat(16)).into_bytes(), 400),
        ("POST", "/v1/register/start".into(), None, j, format!(r#"{{"email":"{good_email}","registration_request":"AAAA"}}"#).into_bytes(), 400),
        ("POST", "/v1/register/finish".into(), None, j, json!({
            "email": good_email, "display_name": "X", "registration_upload": b64(&[1u8; 10]),
            "ksf": fake_ksf(), "public_key": "kluis1x", "escrow": b64(b"e")}).to_string().into_bytes(), 400),
        ("POST", "/v1/register/finish".into(), None, j, json!({
            "email": good_email, "display_name": "X", "registration_upload": b64(&[1u8; 10]),
            "ksf": {"m_cost_kib": 0, "t_cost": 0, "p_cost": 0}, "public_key": "kluis1x", "escrow": b64(b"e")}).to_string().into_bytes(), 400),
        ("POST", "/v1/register/finish".into(), None, j, json!({
            "email": good_email, "display_name": "X", "registration_upload": b64(&[1u8; 10]),
            "ksf": fake_ksf(), "public_key": "not-a-kluis-key", "escrow": b64(b"e")}).to_string().into_bytes(), 422),
        ("GET", "/v1/directory".into(), Some(t), None, vec![], 400),
        ("GET", "/v1/directory?q=".into(), Some(t), None, vec![], 400),
        ("GET", "/v1/directory?q=a".into(), None, None, vec![], 401),
        ("GET", "/v1/users/not-hex/escrow".into(), Some(t), None, vec![], 400),
        ("GET", format!("/v1/users/{id}/escrow/versions/notanumber"), Some(t), None, vec![], 400),
        ("GET", format!("/v1/users/{id}/escrow/versions/99999999999999999999999"), Some(t), None, vec![], 400),
        ("GET", format!("/v1/users/{id}/escrow/versions/7"), Some(t), None, vec![], 404),
        // Escrow versions are written only by a password change (issue 18.3).
        ("POST", format!("/v1/users/{id}/escrow"), Some(t), j, br#"{"escrow":"AAAA","expected_version":1}"#.to_vec(), 405),
        ("PUT", format!("/v1/users/{id}/public-key"), Some(t), j, br#"{"public_key":"kluis1x"}"#.to_vec(), 404),
        ("GET", "/v1/session".into(), Some("kst_garbage"), None, vec![], 401),
        ("PATCH", "/v1/session".into(), Some(t), None, vec![], 405),
        ("GET", "/no/such/route".into(), None, None, vec![], 404),
    ];
    for (method, path, token, ct, body, want) in cases {
        let (status, got_ct, bytes) = send(&tb, method, &path, token, ct, body).await;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert_eq!(status, want, "{method} {path}: {text}");
        assert!(
            got_ct.starts_with("application/json"),
            "{method} {path}: content-type {got_ct}"
        );
        let value: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"));
        assert!(
            value["code"].is_string() && value["message"].is_string(),
            "{method} {path}: {value}"
        );
    }
    // Basic auth instead of a bearer token.
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/session", tb.url))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    tb.shutdown().await;
}

/// After a scripted session, neither the database nor the logs contain the
/// passwords, the secret identity or the session tokens.
async fn database_and_logs_hold_no_secrets(backend: Backend) {
    let Some((tb, org, [alice, bob])) = org_broker_with(backend, ["alice", "bob"]).await else {
        return;
    };
    kluis_broker::admin::certify(
        tb.store(),
        &org,
        &kluis_types::Email::parse(&bob.email).unwrap(),
        None,
        tb.now(),
    )
    .await
    .unwrap();
    let (phone, _p) = tb.device(org.public_key());
    let second = phone.login(&alice.email, &alice.password).await.unwrap();
    let new_text = unique("second pw staple ");
    phone
        .change_password(&alice.password, &Password::new(new_text.clone()))
        .await
        .unwrap();
    let third = phone.session().unwrap().unwrap();
    phone.resolve_recipient(&bob.email).await.unwrap();
    alice.client.logout().await.ok();

    let dump = tb.dump().await;
    let logs = util::logs();
    // The dump is real: it holds what the broker is meant to keep.
    assert!(
        contains(&dump, alice.email.as_bytes()),
        "dump lacks the e-mail: wrong dump?"
    );
    assert!(contains(&dump, alice.public_key.as_bytes()));
    assert!(contains(&logs, b"logged in"), "log capture is not working");

    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let secret_forms: Vec<(&str, Vec<u8>)> = vec![
        ("password", alice.password_text.clone().into_bytes()),
        ("new password", new_text.clone().into_bytes()),
        ("bob's password", bob.password_text.clone().into_bytes()),
        ("secret", alice.secret.clone()),
        ("secret hex", hex(&alice.secret).into_bytes()),
        ("secret base64", STANDARD.encode(&alice.secret).into_bytes()),
        ("token 1", alice.session.token.expose().as_bytes().to_vec()),
        ("token 2", second.session.token.expose().as_bytes().to_vec()),
        ("token 3", third.token.expose().as_bytes().to_vec()),
    ];
    for (what, needle) in &secret_forms {
        assert!(!contains(&dump, needle), "{what} found in the database");
        assert!(!contains(&logs, needle), "{what} found in the logs");
    }
    tb.shutdown().await;
}

/// Escrow versions are appended, never overwritten; even raw SQL cannot
/// update one.
async fn escrow_is_append_only(backend: Backend) {
    let Some((tb, org)) = org_broker(backend).await else {
        return;
    };
    let a = user(&tb, &org, "alice").await;
    let (t, id) = (a.session.token.expose(), a.session.user_id.as_str());
    let (_, v1) = json_call(
        &tb,
        "GET",
        &format!("/v1/users/{id}/escrow/versions/1"),
        Some(t),
        None,
    )
    .await;
    // Only a password change appends over HTTP; the store's append is the
    // primitive under it.
    let sealed_v2 = kluis_types::EncryptedEscrow::new(b"sealed v2".to_vec());
    let store = tb.store();
    let v2 = store
        .append_escrow(&a.session.user_id, 1, &sealed_v2, tb.now())
        .await
        .unwrap();
    assert_eq!(v2, 2);
    let stale = kluis_types::EncryptedEscrow::new(b"stale".to_vec());
    assert!(
        store
            .append_escrow(&a.session.user_id, 1, &stale, tb.now())
            .await
            .is_err(),
        "a stale expected version must conflict"
    );
    let (_, list) = json_call(
        &tb,
        "GET",
        &format!("/v1/users/{id}/escrow/versions"),
        Some(t),
        None,
    )
    .await;
    let versions: Vec<i64> = list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![1, 2]);
    let (_, v1_again) = json_call(
        &tb,
        "GET",
        &format!("/v1/users/{id}/escrow/versions/1"),
        Some(t),
        None,
    )
    .await;
    assert_eq!(v1["escrow"], v1_again["escrow"]);
    let (_, latest) = json_call(&tb, "GET", &format!("/v1/users/{id}/escrow"), Some(t), None).await;
    assert_eq!(latest["escrow"], b64(b"sealed v2"));

    let update = "UPDATE escrow SET blob = blob";
    let refused = match (&tb.sqlite_path, &tb.pg) {
        (Some(path), _) => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            sqlx::query(update).execute(&pool).await.is_err()
        }
        (None, Some((url, schema))) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(&format!("UPDATE {schema}.escrow SET blob = blob"))
                .execute(&pool)
                .await
                .is_err()
        }
        _ => unreachable!(),
    };
    assert!(refused, "an UPDATE of escrow must be refused by the schema");
    tb.shutdown().await;
}

fn credential_request() -> String {
    let start = ClientLogin::<Suite>::start(&mut OsRng, b"some password").unwrap();
    b64(&start.message.serialize())
}

/// Rate limits per account and per peer IP; `X-Forwarded-For` counts only
/// from a trusted proxy.
async fn rate_limits(backend: Backend) {
    let limits = Limits {
        login_per_account: Limit {
            max: 3,
            window_secs: 60,
        },
        login_per_ip: Limit {
            max: 5,
            window_secs: 60,
        },
        register_per_account: Limit {
            max: 2,
            window_secs: 60,
        },
        ..test_settings().limits
    };
    let Some(tb) = start(
        backend,
        Settings {
            limits,
            ..test_settings()
        },
    )
    .await
    else {
        return;
    };
    let login = |email: &str, xff: Option<&str>| {
        let body = json!({"email": email, "credential_request": credential_request()}).to_string();
        let url = format!("{}/v1/login/start", tb.url);
        let xff = xff.map(str::to_owned);
        async move {
            let mut req = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(x) = xff {
                req = req.header("x-forwarded-for", x);
            }
            req.send().await.unwrap().status().as_u16()
        }
    };
    for _ in 0..3 {
        assert_eq!(login("victim@example.org", None).await, 200);
    }
    assert_eq!(
        login("victim@example.org", None).await,
        429,
        "per-account limit"
    );
    assert_eq!(login("other1@example.org", Some("203.0.113.1")).await, 200);
    // Fifth event from this IP was the one above; a spoofed header does not help.
    assert_eq!(
        login("other2@example.org", Some("203.0.113.2")).await,
        429,
        "per-IP limit, XFF ignored"
    );
    tb.clock.advance(60);
    assert_eq!(login("victim@example.org", None).await, 200, "next window");

    for _ in 0..2 {
        let (s, _) = json_call(
            &tb,
            "POST",
            "/v1/register/start",
            None,
            Some(json!({"email": "reg@example.org", "registration_request": b64(&[0u8; 32])})),
        )
        .await;
        assert_ne!(s, 429);
    }
    let (s, v) = json_call(
        &tb,
        "POST",
        "/v1/register/start",
        None,
        Some(json!({"email": "reg@example.org", "registration_request": b64(&[0u8; 32])})),
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (429, Some("rate_limited")));
    tb.shutdown().await;

    // Behind a trusted proxy, each forwarded client has its own IP budget.
    let limits = Limits {
        login_per_ip: Limit {
            max: 1,
            window_secs: 60,
        },
        ..test_settings().limits
    };
    let settings = Settings {
        limits,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..test_settings()
    };
    let Some(tb) = start(backend, settings).await else {
        return;
    };
    let send_login = |ip: &'static str| {
        let url = format!("{}/v1/login/start", tb.url);
        let body = json!({"email": format!("u{ip}@example.org"), "credential_request": credential_request()}).to_string();
        async move {
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .header("x-forwarded-for", ip)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(send_login("198.51.100.1").await, 200);
    assert_eq!(send_login("198.51.100.2").await, 200);
    assert_eq!(send_login("198.51.100.1").await, 429);
    tb.shutdown().await;
}

/// A login start for an unknown address looks like one for a real account.
async fn unknown_login_looks_known(backend: Backend) {
    let Some((tb, org)) = org_broker(backend).await else {
        return;
    };
    let a = user(&tb, &org, "alice").await;
    let mut shapes = Vec::new();
    for email in [a.email.as_str(), "ghost@example.org"] {
        let (status, v) = json_call(
            &tb,
            "POST",
            "/v1/login/start",
            None,
            Some(json!({"email": email, "credential_request": credential_request()})),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        let len = STANDARD
            .decode(v["credential_response"].as_str().unwrap())
            .unwrap()
            .len();
        shapes.push((
            keys,
            len,
            v["ksf"].clone(),
            v["login_id"].as_str().unwrap().len(),
        ));
    }
    assert_eq!(shapes[0], shapes[1]);
    tb.shutdown().await;
}

/// Sessions expire, end on logout, and must be fresh to change the password.
async fn sessions_expire_and_log_out(backend: Backend) {
    let Some((tb, org)) = org_broker(backend).await else {
        return;
    };
    let a = user(&tb, &org, "alice").await;
    let t = a.session.token.expose().to_owned();
    let id = a.session.user_id.as_str();
    assert_eq!(
        json_call(&tb, "GET", "/v1/session", Some(&t), None).await.0,
        200
    );
    // A fresh session may start a password change (garbage OPAQUE message: 400, not 403)…
    let start = format!("/v1/users/{id}/password/start");
    let body = json!({"registration_request": b64(&[0u8; 32])});
    assert_eq!(
        json_call(&tb, "POST", &start, Some(&t), Some(body.clone()))
            .await
            .0,
        400
    );
    // …an old one may not: a stolen long-lived token cannot replace the password.
    tb.clock.advance(kluis_broker::api::RECENT_LOGIN_SECS + 1);
    let (status, v) = json_call(&tb, "POST", &start, Some(&t), Some(body)).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    tb.clock.advance(test_settings().session_ttl_secs);
    assert_eq!(
        json_call(&tb, "GET", "/v1/session", Some(&t), None).await.0,
        401,
        "expired"
    );
    let (dev, _d) = tb.device(org.public_key());
    let s = dev.login(&a.email, &a.password).await.unwrap().session;
    let t2 = s.token.expose();
    assert_eq!(
        json_call(&tb, "DELETE", "/v1/session", Some(t2), None)
            .await
            .0,
        204
    );
    assert_eq!(
        json_call(&tb, "GET", "/v1/session", Some(t2), None).await.0,
        401,
        "logged out"
    );
    tb.shutdown().await;
}

/// `/healthz`, `/metrics` and `/openapi.json`.
async fn ops_endpoints(backend: Backend) {
    let Some(tb) = start(backend, operational::with_metrics_token(test_settings())).await else {
        return;
    };
    let (status, health) = json_call(&tb, "GET", "/healthz", None, None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, doc) = json_call(&tb, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/v1/login/start",
        "/v1/directory",
        "/v1/users/{user_id}/escrow",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from OpenAPI"
        );
    }
    let token = Some(operational::METRICS_TOKEN);
    let (status, ct, body) = send(&tb, "GET", "/metrics", token, None, vec![]).await;
    let text = String::from_utf8(body).unwrap();
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/plain"));
    assert!(
        text.contains(
            "kluis_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("kluis_logins_ok_total 0"));
    tb.shutdown().await;
}

/// Waits (at most 20 s) until `check` holds; false if it never did.
async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

/// The lookup cache serves repeated lookups from memory, yet a change
/// committed through another store on the same database (a second broker
/// instance, or `kluis-broker admin`) reaches this instance's answers: a
/// new key, then a disabled account.
async fn lookup_cache_follows_other_instances(backend: Backend) {
    let Some(tb) = start(backend, operational::with_metrics_token(test_settings())).await else {
        return;
    };
    let org = OrgSigningKey::init(&tb.dir.path().join("org.key")).unwrap();
    let a = user(&tb, &org, "alice").await;
    let b = user(&tb, &org, "bob").await;
    let t = a.session.token.expose().to_owned();
    let cache = tb.store().lookup_cache();
    assert!(
        eventually(|| async { cache.enabled() }).await,
        "the cache turns on once changes are followed"
    );
    // The watcher notices the registrations above a little later (a poll,
    // a notification): let it catch up, so that what follows starts from a
    // settled generation.
    let settled = || async {
        for _ in 0..40 {
            let g = cache.generation();
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            if cache.generation() == g {
                return g;
            }
        }
        panic!("the cache never stopped being invalidated");
    };
    settled().await;
    let q = format!("/v1/directory?q={}", b.email);
    let key_of_bob = || async {
        let (status, v) = json_call(&tb, "GET", &q, Some(&t), None).await;
        assert_eq!(status, 200, "{v}");
        v["entries"][0]["public_key"].as_str().unwrap().to_owned()
    };
    assert_eq!(key_of_bob().await, b.public_key);
    let (hits, _) = cache.counts();
    assert_eq!(key_of_bob().await, b.public_key);
    assert!(
        cache.counts().0 >= hits + 2,
        "session and search from memory"
    );
    let token = Some(operational::METRICS_TOKEN);
    let (_, _, metrics) = send(&tb, "GET", "/metrics", token, None, vec![]).await;
    assert!(
        String::from_utf8(metrics.clone())
            .unwrap()
            .contains("kluis_lookup_cache_enabled 1"),
        "{}",
        String::from_utf8_lossy(&metrics)
    );

    // A login elsewhere (a new session, a login attempt, audit rows) is
    // not a change the cache must drop everything for.
    let before = cache.generation();
    let (dev, _d) = tb.device(org.public_key());
    dev.login(&b.email, &b.password).await.unwrap();
    assert_eq!(settled().await, before, "a login invalidated the cache");
    let (hits, misses) = cache.counts();
    assert_eq!(key_of_bob().await, b.public_key);
    assert_eq!(
        cache.counts(),
        (hits + 2, misses),
        "still warm after a login"
    );

    let other = tb.second_store().await;
    let bob = other
        .user_by_email(&kluis_types::Email::parse(&b.email).unwrap())
        .await
        .unwrap()
        .unwrap();
    let new_key = kluis_types::PublicKeyString::parse(&unique("kluis1rotated")).unwrap();
    other.set_public_key(&bob.user_id, &new_key).await.unwrap();
    assert!(
        eventually(|| async { key_of_bob().await == new_key.as_str() }).await,
        "bob's new key never reached the other instance's lookups"
    );

    let alice = other
        .user_by_email(&kluis_types::Email::parse(&a.email).unwrap())
        .await
        .unwrap()
        .unwrap();
    other
        .set_disabled(&alice.user_id, Some(tb.now()), &|_| Ok(vec![]))
        .await
        .unwrap();
    assert!(
        eventually(|| async {
            json_call(&tb, "GET", &q, Some(&t), None).await.0 == 401
                && json_call(&tb, "GET", "/v1/session", Some(&t), None).await.0 == 401
        })
        .await,
        "a disabled account's session kept working on the other instance"
    );
    tb.shutdown().await;
}

on_both_backends!(
    lookup_cache_follows_other_instances,
    authorization_matrix,
    malformed_requests_get_json_4xx,
    database_and_logs_hold_no_secrets,
    escrow_is_append_only,
    rate_limits,
    unknown_login_looks_known,
    sessions_expire_and_log_out,
    ops_endpoints,
    policy_is_signed_served_and_enforced,
    disable_and_enable,
    an_action_and_its_audit_rows_commit_together,
    login_failures_and_shares_are_audited,
    audit_tampering_in_the_database_is_named,
    a_stolen_token_cannot_change_escrow_key_or_password,
    a_reauth_proof_works_once_and_briefly,
    a_password_change_proves_the_old_password_and_is_audited,
    an_unopenable_escrow_version_can_be_rolled_back,
    a_change_whose_escrow_does_not_open_is_rolled_back_by_the_client,
);
