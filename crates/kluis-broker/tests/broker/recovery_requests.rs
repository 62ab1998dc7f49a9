//! Recovery requests (docs/RECOVERY.md §7), issue 18.4f and g: asking for
//! recovery does not tell whether an address has an account — neither the
//! answer nor what its token reads afterwards — and a request
//! can be cancelled — by its requester, by the account's owner and by an
//! administrator — after which it can be neither approved nor completed.

use kluis_approvals::{AdminSigningKey, Approval, KeyFingerprint, RecoveryRequest};
use kluis_audit::{Action, Actor};
use kluis_broker::admin;
use serde_json::{Value, json};

use crate::on_both_backends;

use super::hostile_text::register_raw_with;
use super::stolen_token::prove;
use super::util::{Backend, TestBroker, start, test_settings, unique};
use super::{b64, json_call, send};

/// The password `register_raw_with` registers with.
const PASSWORD: &str = "correct horse battery staple";

const FINGERPRINT: &str = "4f2a9c1b00001111222233334444555566667777888899990000aaaabbbbcccc";

/// A registered account with a recovery escrow copy on file.
pub(crate) async fn recoverable_account(tb: &TestBroker, name: &str) -> String {
    let email = format!("{}@example.org", unique(name));
    let (status, answer) = register_raw_with(
        tb,
        &email,
        name,
        json!({"recovery_escrow": b64(b"identity sealed to the recovery key")}),
    )
    .await;
    assert!(status == 200 || status == 201, "{answer}");
    email
}

/// `POST /v1/recovery/requests` for `email`: status, content type, body.
pub(crate) async fn ask(tb: &TestBroker, email: &str) -> (u16, String, Vec<u8>) {
    let body = json!({
        "email": email,
        "request_key": "kluis1requestkeyfortests",
        "request_key_fingerprint": FINGERPRINT,
    });
    send(
        tb,
        "POST",
        "/v1/recovery/requests",
        None,
        Some("application/json"),
        serde_json::to_vec(&body).unwrap(),
    )
    .await
}

/// The body with its random parts (request id, token) replaced by their
/// shape, so two answers compare byte for byte.
fn without_random_ids(body: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(body).unwrap();
    let mut text = String::from_utf8(body.to_vec()).unwrap();
    // request_id: 32 hex digits; token: "krt_" + 43 base64url characters.
    for (key, prefix) in [("request_id", ""), ("token", "krt_")] {
        let random = v[key].as_str().unwrap();
        let rest = random.strip_prefix(prefix).unwrap();
        let shape = format!("{prefix}{}", "x".repeat(rest.len()));
        text = text.replace(random, &shape);
    }
    text.into_bytes()
}

async fn a_recovery_request_does_not_reveal_whether_the_account_exists(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let known = recoverable_account(&tb, "known").await;
    // An account without a recovery escrow copy is no different either.
    let no_escrow = format!("{}@example.org", unique("plain"));
    let (status, answer) = register_raw_with(&tb, &no_escrow, "plain", json!({})).await;
    assert!(status == 200 || status == 201, "{answer}");
    let unknown = format!("{}@example.org", unique("nobody"));

    let (k_status, k_type, k_body) = ask(&tb, &known).await;
    assert_eq!(k_status, 201, "{}", String::from_utf8_lossy(&k_body));
    for other in [&unknown, &no_escrow] {
        let (status, content_type, body) = ask(&tb, other).await;
        assert_eq!(
            (status, &content_type),
            (k_status, &k_type),
            "{other}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(
            String::from_utf8(without_random_ids(&body)).unwrap(),
            String::from_utf8(without_random_ids(&k_body)).unwrap(),
            "the answers differ only in their random ids"
        );
        assert_ne!(body, k_body, "the ids are fresh");
    }
    // The tokens do not tell them apart either: each reads as a pending
    // request with no approvals (the unknown ones are decoys that never
    // progress), and each can be withdrawn.
    let mut statuses = Vec::new();
    for email in [&known, &unknown, &no_escrow] {
        let (_, _, body) = ask(&tb, email).await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        let (id, token) = (
            v["request_id"].as_str().unwrap(),
            v["token"].as_str().unwrap(),
        );
        let path = format!("/v1/recovery/requests/{id}");
        let (status, _, body) = send(&tb, "GET", &path, Some(token), None, Vec::new()).await;
        let text = String::from_utf8(body)
            .unwrap()
            .replace(id, "ID")
            .replace(email.as_str(), "EMAIL");
        statuses.push((status, text));
        let cancel = format!("{path}/cancel");
        let (status, _, body) = send(&tb, "POST", &cancel, Some(token), None, Vec::new()).await;
        statuses.push((status, String::from_utf8(body).unwrap()));
        let (status, _, body) = send(&tb, "GET", &path, Some(token), None, Vec::new()).await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        statuses.push((status, v["state"].to_string()));
    }
    assert_eq!(statuses[0].0, 200, "{}", statuses[0].1);
    assert!(
        statuses[0].1.contains("\"state\":\"pending\""),
        "{}",
        statuses[0].1
    );
    assert_eq!(statuses[1].0, 204);
    assert_eq!(statuses[2], (200, "\"cancelled\"".to_owned()));
    assert_eq!(statuses[0..3], statuses[3..6], "unknown address");
    assert_eq!(statuses[0..3], statuses[6..9], "no recovery escrow");

    // Each one is audited (the unknown ones as decoys), so an
    // administrator sees the probing.
    let rows = tb.store().audit_rows().await.unwrap();
    for email in [&known, &unknown, &no_escrow] {
        assert!(
            rows.iter()
                .any(|r| r.entry.action == kluis_audit::Action::RecoveryRequested
                    && &r.entry.target == email),
            "{email}"
        );
    }
    tb.shutdown().await;
}

/// A recovery request: (id, request token, requested_at).
async fn open_request(tb: &TestBroker, email: &str) -> (String, String, i64) {
    let (status, _, body) = ask(tb, email).await;
    assert_eq!(status, 201);
    let v: Value = serde_json::from_slice(&body).unwrap();
    (
        v["request_id"].as_str().unwrap().to_owned(),
        v["token"].as_str().unwrap().to_owned(),
        v["requested_at"].as_i64().unwrap(),
    )
}

struct Admin {
    key: AdminSigningKey,
    token: String,
}

async fn admin(tb: &TestBroker, name: &str, seed: u8) -> Admin {
    let key = AdminSigningKey::from_seed(&[seed; 32]);
    let token = admin::add_admin(
        tb.store(),
        name,
        &key.public_key().to_string(),
        kluis_broker::config::DEFAULT_ADMIN_TOKEN_TTL_SECS,
        &Actor::System,
        tb.now(),
    )
    .await
    .unwrap();
    Admin {
        key,
        token: token.expose().to_owned(),
    }
}

/// `a` signs and submits an approval of the request: the status code.
async fn approve(
    tb: &TestBroker,
    a: &Admin,
    email: &str,
    (id, _, at): &(String, String, i64),
) -> u16 {
    let request = RecoveryRequest {
        request_id: id.clone(),
        user: email.to_owned(),
        request_key_fingerprint: KeyFingerprint::from_hex(FINGERPRINT).unwrap(),
        requested_at: *at,
    };
    let approval =
        serde_json::to_value(Approval::sign(&request, tb.now(), &a.key).unwrap()).unwrap();
    let path = format!("/v1/admin/recovery/requests/{id}/approvals");
    json_call(tb, "POST", &path, Some(&a.token), Some(approval))
        .await
        .0
}

async fn upload(tb: &TestBroker, a: &Admin, id: &str) -> u16 {
    let path = format!("/v1/admin/recovery/requests/{id}/package");
    let body = json!({"package": b64(b"identity sealed to the request key")});
    json_call(tb, "POST", &path, Some(&a.token), Some(body))
        .await
        .0
}

async fn state_of(tb: &TestBroker, (id, token, _): &(String, String, i64)) -> String {
    let path = format!("/v1/recovery/requests/{id}");
    let (status, v) = json_call(tb, "GET", &path, Some(token), None).await;
    assert_eq!(status, 200, "{v}");
    v["state"].as_str().unwrap().to_owned()
}

/// A session of the account made with `register_raw_with` (full login).
async fn session_of(tb: &TestBroker, email: &str) -> (String, String) {
    let proof = prove(tb, email, PASSWORD).await;
    let (status, v) = json_call(tb, "POST", "/v1/login/finish", None, Some(proof)).await;
    assert_eq!(status, 200, "{v}");
    (
        v["user_id"].as_str().unwrap().to_owned(),
        v["session_token"].as_str().unwrap().to_owned(),
    )
}

async fn recovery_requests_can_be_cancelled_and_then_go_nowhere(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let email = recoverable_account(&tb, "victim").await;
    let ann = admin(&tb, "ann", 11).await;
    let bram = admin(&tb, "bram", 12).await;

    // 1. Whoever asked withdraws it (request token), after one approval.
    let r1 = open_request(&tb, &email).await;
    assert_eq!(approve(&tb, &ann, &email, &r1).await, 201);
    let cancel1 = format!("/v1/recovery/requests/{}/cancel", r1.0);
    let (status, v) = json_call(&tb, "POST", &cancel1, Some(&r1.1), None).await;
    assert_eq!(status, 204, "requester cancels: {v}");
    assert_eq!(state_of(&tb, &r1).await, "cancelled");
    assert_eq!(
        approve(&tb, &bram, &email, &r1).await,
        409,
        "no approval after cancel"
    );
    assert_eq!(
        upload(&tb, &ann, &r1.0).await,
        409,
        "no package after cancel"
    );
    let (status, _) = json_call(&tb, "POST", &cancel1, Some(&r1.1), None).await;
    assert_eq!(status, 409, "a second cancel");
    // Another request's token cannot cancel it.
    let other = open_request(&tb, &email).await;
    let (status, _) = json_call(&tb, "POST", &cancel1, Some(&other.1), None).await;
    assert_eq!(status, 403);

    // 2. An administrator cancels one (the admin path of
    //    `kluis admin recovery cancel`); a user's token cannot.
    let r2 = open_request(&tb, &email).await;
    let cancel2 = format!("/v1/admin/recovery/requests/{}/cancel", r2.0);
    let (status, _) = json_call(&tb, "POST", &cancel2, Some(&r2.1), None).await;
    assert_eq!(status, 401, "a request token is no admin token");
    let (status, v) = json_call(&tb, "POST", &cancel2, Some(&bram.token), None).await;
    assert_eq!(status, 204, "admin cancels: {v}");
    assert_eq!(state_of(&tb, &r2).await, "cancelled");
    assert_eq!(approve(&tb, &ann, &email, &r2).await, 409);
    let unknown = format!("/v1/admin/recovery/requests/{}/cancel", "0".repeat(32));
    assert_eq!(
        json_call(&tb, "POST", &unknown, Some(&ann.token), None)
            .await
            .0,
        404
    );

    // 3. A request that was approved and completed but not yet used: the
    //    owner, logged in elsewhere, cancels every open request for the
    //    account, and the completed one can no longer set a password.
    let key = json!({"public_key": unique("kluis1recoverykey"), "threshold": 2, "shares": 2,
                     "issued_at": tb.now(), "signature": b64(&[0u8; 64])});
    let (status, v) = json_call(
        &tb,
        "PUT",
        "/v1/admin/recovery/key",
        Some(&ann.token),
        Some(key),
    )
    .await;
    assert_eq!(status, 204, "{v}");
    let r3 = open_request(&tb, &email).await;
    assert_eq!(approve(&tb, &ann, &email, &r3).await, 201);
    assert_eq!(approve(&tb, &bram, &email, &r3).await, 201);
    assert_eq!(upload(&tb, &ann, &r3.0).await, 204);
    assert_eq!(state_of(&tb, &r3).await, "completed");
    let (user_id, session) = session_of(&tb, &email).await;
    let mine = format!("/v1/users/{user_id}/recovery/cancel");
    let (status, _) = json_call(&tb, "POST", &mine, Some(&r3.1), None).await;
    assert_eq!(status, 401, "a request token is no session");
    let (status, v) = json_call(&tb, "POST", &mine, Some(&session), None).await;
    assert_eq!(status, 200, "owner cancels: {v}");
    let mut expected = vec![other.0.clone(), r3.0.clone()];
    expected.sort();
    assert_eq!(v["cancelled"], json!(expected));
    assert_eq!(state_of(&tb, &r3).await, "cancelled");
    let start = format!("/v1/recovery/requests/{}/password/start", r3.0);
    let body = json!({"registration_request": b64(&[0u8; 32])});
    assert_eq!(
        json_call(&tb, "POST", &start, Some(&r3.1), Some(body))
            .await
            .0,
        409
    );
    let (status, v) = json_call(&tb, "POST", &mine, Some(&session), None).await;
    assert_eq!((status, &v["cancelled"]), (200, &json!([])), "nothing left");
    let (_, list) = json_call(
        &tb,
        "GET",
        "/v1/admin/recovery/requests",
        Some(&ann.token),
        None,
    )
    .await;
    assert_eq!(
        list["requests"],
        json!([]),
        "cancelled requests are not listed"
    );

    // Every cancellation is audited: who, which request, why.
    let rows = tb.store().audit_rows().await.unwrap();
    let cancelled: Vec<(String, String)> = rows
        .iter()
        .filter(|r| r.entry.action == Action::RecoveryCancelled && r.entry.target == email)
        .map(|r| {
            let id = match r.entry.details.get(kluis_audit::DetailKey::RequestId) {
                Some(kluis_audit::Value::Text(id)) => id.clone(),
                other => panic!("request id detail: {other:?}"),
            };
            (r.entry.actor.to_string(), id)
        })
        .collect();
    assert_eq!(
        cancelled,
        vec![
            ("system".to_owned(), r1.0.clone()),
            ("admin:bram".to_owned(), r2.0.clone()),
            (format!("user:{email}"), expected[0].clone()),
            (format!("user:{email}"), expected[1].clone()),
        ]
    );
    tb.shutdown().await;
}

on_both_backends!(
    a_recovery_request_does_not_reveal_whether_the_account_exists,
    recovery_requests_can_be_cancelled_and_then_go_nowhere,
);
