//! Recovery requests (docs/RECOVERY.md §7), issue 18.4f and g: asking for
//! recovery does not tell whether an address has an account, and a request
//! can be cancelled — by its requester, by the account's owner and by an
//! administrator — after which it can be neither approved nor completed.

use serde_json::{Value, json};

use crate::on_both_backends;

use super::hostile_text::register_raw_with;
use super::util::{Backend, TestBroker, start, test_settings, unique};
use super::{b64, send};

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
    // Each one is audited (the unknown ones as "nothing created"), so an
    // administrator sees the probing.
    let rows = tb.store().audit_rows().await.unwrap();
    for email in [&known, &unknown, &no_escrow] {
        assert!(
            rows.iter().any(|r| r.entry.action == kluis_audit::Action::RecoveryRequested
                && &r.entry.target == email),
            "{email}"
        );
    }
    tb.shutdown().await;
}

on_both_backends!(a_recovery_request_does_not_reveal_whether_the_account_exists);
