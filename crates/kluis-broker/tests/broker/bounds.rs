//! Issue 18.4a: a version number near or beyond `i64::MAX` in a request is
//! a 400 at the boundary on both backends. Before, PostgreSQL answered 500
//! ("bigint out of range") to `expected_escrow_version = 2^63-1` and SQLite
//! turned `2^63-1 + 1` into a float.

use serde_json::{Value, json};

use crate::on_both_backends;

use super::stolen_token::{password_change_body, prove};
use super::util::{Backend, TestBroker, unique};
use super::{User, b64, json_call, org_broker, send, user};

/// 2^63-1 and u64::MAX as JSON numbers (u64::MAX does not fit the field's
/// i64, but must still be a 4xx and not a 5xx).
const HUGE: [&str; 2] = ["9223372036854775807", "18446744073709551615"];

/// Replaces the JSON number at `field` with the literal `number` (so
/// u64::MAX travels as written, not as a float).
fn with_number(body: &Value, field: &str, number: &str) -> Vec<u8> {
    let mut body = body.clone();
    body[field] = json!("@@N@@");
    serde_json::to_string(&body)
        .unwrap()
        .replace("\"@@N@@\"", number)
        .into_bytes()
}

/// POSTs `body` to `route` with the user's `token`, the JSON number at
/// `field` written as `number`: the status and the answer.
async fn post_number(
    tb: &TestBroker,
    token: &str,
    route: &str,
    body: &Value,
    field: &str,
    number: &str,
) -> (u16, Vec<u8>) {
    let json = Some("application/json");
    let body = with_number(body, field, number);
    let (status, _, answer) = send(tb, "POST", route, Some(token), json, body).await;
    (status, answer)
}

/// password/finish with a genuine upload for `password` and a genuine
/// proof of the current password, its expected escrow version written as
/// `number`: the route, the status and the answer.
async fn password_finish_with(
    tb: &TestBroker,
    u: &User,
    token: &str,
    password: &str,
    number: &str,
) -> (String, u16, Vec<u8>) {
    let reauth = prove(tb, &u.email, &u.password_text).await;
    let body = password_change_body(tb, u, token, password, Some(reauth)).await;
    let route = format!("/v1/users/{}/password/finish", u.session.user_id.as_str());
    let field = "expected_escrow_version";
    let (status, answer) = post_number(tb, token, &route, &body, field, number).await;
    (route, status, answer)
}

fn assert_bounded(status: u16, body: &[u8], route: &str, number: &str) {
    let text = String::from_utf8_lossy(body);
    // 422: the broker's answer to a well-formed JSON body of wrong content.
    assert_eq!(status, 422, "{route} with {number}: {text}");
    assert!(
        text.contains("\"code\"") && text.contains("version"),
        "{route} with {number}: a JSON error naming the version: {text}"
    );
}

async fn huge_version_numbers_are_refused_at_the_boundary(backend: Backend) {
    let Some((tb, org)) = org_broker(backend).await else {
        return;
    };
    let u = user(&tb, &org, "vera").await;
    let token = u.session.token.expose().to_owned();
    let id = u.session.user_id.as_str().to_owned();

    for number in HUGE {
        // password/finish with a genuine upload and a genuine proof of the
        // current password: only the version is wrong.
        let (route, status, answer) =
            password_finish_with(&tb, &u, &token, "a new password", number).await;
        assert_bounded(status, &answer, &route, number);

        let route = format!("/v1/users/{id}/escrow/rollback");
        for field in ["to_version", "expected_version"] {
            let reauth = prove(&tb, &u.email, &u.password_text).await;
            let body = json!({"to_version": 1, "expected_version": 1, "reauth": reauth});
            let (status, answer) = post_number(&tb, &token, &route, &body, field, number).await;
            assert_bounded(status, &answer, &route, number);
        }

        let route = format!("/v1/users/{id}/escrow/versions/{number}");
        let (status, _, answer) = send(&tb, "GET", &route, Some(&token), None, Vec::new()).await;
        assert_eq!(status, 400, "{route}: {}", String::from_utf8_lossy(&answer));
    }

    // Group changes name the key version they were made from.
    let name = unique("bounds-");
    u.client
        .create_group(&name, &unique("kluis1groupkey"), b"sealed".to_vec())
        .await
        .unwrap();
    let member = json!({"email": u.email, "secret": b64(b"x"), "key_version": 1});
    let removal = json!({"email": u.email, "public_key": unique("kluis1groupkey"),
                         "secret": b64(b"x"), "key_version": 1});
    for number in HUGE {
        for (route, body) in [
            (format!("/v1/groups/{name}/members"), &member),
            (format!("/v1/groups/{name}/remove"), &removal),
        ] {
            let (status, answer) =
                post_number(&tb, &token, &route, body, "key_version", number).await;
            assert_bounded(status, &answer, &route, number);
        }
    }

    // The largest allowed number is an ordinary stale version (409), not
    // an error of the database.
    let (_, status, answer) =
        password_finish_with(&tb, &u, &token, "another password", "9007199254740991").await;
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&answer));
    let (status, _) = json_call(&tb, "GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    tb.shutdown().await;
}

on_both_backends!(huge_version_numbers_are_refused_at_the_boundary);
