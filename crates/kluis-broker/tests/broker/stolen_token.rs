//! Issue 18.3: a stolen session token cannot do lasting damage. Whoever
//! holds only a bearer token (even one from a login seconds ago) cannot
//! append an escrow version, replace the public key or set a new password;
//! the legitimate password change still works, proves the old password in
//! the change request itself, and is audited.

use kluis_account::Password;
use kluis_audit::Action;
use kluis_broker::opaque::Suite;
use opaque_ke::argon2::{Algorithm, Argon2, Params, Version};
use opaque_ke::{
    ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialResponse, Identifiers, RegistrationResponse,
};
use rand::rngs::OsRng;
use serde_json::{Value, json};

use super::util::{Backend, TestBroker, test_settings};
use super::{User, b64, json_call, org_broker, org_broker_with, user};

fn argon(ksf: &Value) -> Argon2<'static> {
    let n = |k: &str| u32::try_from(ksf[k].as_u64().unwrap()).unwrap();
    let p = Params::new(n("m_cost_kib"), n("t_cost"), n("p_cost"), None).unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
}

fn unb64(v: &Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap()
}

/// What a client that knows the password sends as `reauth`: login/start,
/// then the key confirmation computed locally (never sent to login/finish).
pub(crate) async fn prove(tb: &TestBroker, email: &str, password: &str) -> Value {
    let start = ClientLogin::<Suite>::start(&mut OsRng, password.as_bytes()).unwrap();
    let (status, answer) = json_call(
        tb,
        "POST",
        "/v1/login/start",
        None,
        Some(json!({"email": email, "credential_request": b64(&start.message.serialize())})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let response =
        CredentialResponse::<Suite>::deserialize(&unb64(&answer["credential_response"])).unwrap();
    let ksf = argon(&answer["ksf"]);
    let finish = start
        .state
        .finish(
            &mut OsRng,
            password.as_bytes(),
            response,
            ClientLoginFinishParameters::new(None, Identifiers::default(), Some(&ksf)),
        )
        .unwrap();
    json!({"login_id": answer["login_id"], "credential_finalization": b64(&finish.message.serialize())})
}

/// A complete password/finish body for `new_password` (a real OPAQUE
/// registration upload through password/start), with `reauth` if given.
pub(crate) async fn password_change_body(
    tb: &TestBroker,
    u: &User,
    token: &str,
    new_password: &str,
    reauth: Option<Value>,
) -> Value {
    let id = u.session.user_id.as_str();
    let start = ClientRegistration::<Suite>::start(&mut OsRng, new_password.as_bytes()).unwrap();
    let (status, reply) = json_call(
        tb,
        "POST",
        &format!("/v1/users/{id}/password/start"),
        Some(token),
        Some(json!({"registration_request": b64(&start.message.serialize())})),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let ksf = json!({"m_cost_kib": 256, "t_cost": 1, "p_cost": 1});
    let response =
        RegistrationResponse::<Suite>::deserialize(&unb64(&reply["registration_response"]))
            .unwrap();
    let argon = argon(&ksf);
    let finish = start
        .state
        .finish(
            &mut OsRng,
            new_password.as_bytes(),
            response,
            ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon)),
        )
        .unwrap();
    let mut body = json!({
        "registration_upload": b64(&finish.message.serialize()),
        "ksf": ksf,
        "escrow": b64(b"garbage the owner cannot open"),
        "expected_escrow_version": 1,
    });
    if let Some(r) = reauth {
        body["reauth"] = r;
    }
    body
}

async fn escrow_versions(tb: &TestBroker, u: &User) -> Vec<i64> {
    let id = u.session.user_id.as_str();
    let (_, list) = json_call(
        tb,
        "GET",
        &format!("/v1/users/{id}/escrow/versions"),
        Some(u.session.token.expose()),
        None,
    )
    .await;
    list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect()
}

/// Replays a victim's fresh session token (younger than the 5-minute
/// password-change window) against every route that changes the escrow,
/// the public key or the password. Each is refused with a 4xx, nothing
/// changes, and the victim still logs in on a new device.
pub async fn a_stolen_token_cannot_change_escrow_key_or_password(backend: Backend) {
    let Some((tb, org, [victim, thief])) = org_broker_with(backend, ["victim", "thief"]).await
    else {
        return;
    };
    let stolen = victim.session.token.expose().to_owned();
    let id = victim.session.user_id.as_str();

    // Escrow append: the route is gone.
    let (status, v) = json_call(
        &tb,
        "POST",
        &format!("/v1/users/{id}/escrow"),
        Some(&stolen),
        Some(json!({"escrow": b64(b"garbage"), "expected_version": 1})),
    )
    .await;
    assert!((400..500).contains(&status), "escrow append: {status} {v}");
    // Public key replacement: the route is gone.
    let (status, v) = json_call(
        &tb,
        "PUT",
        &format!("/v1/users/{id}/public-key"),
        Some(&stolen),
        Some(json!({"public_key": "kluis1attackerkey"})),
    )
    .await;
    assert!((400..500).contains(&status), "key replace: {status} {v}");

    // Password change: without a proof, with made-up bytes, with a proof
    // the thief made for their own account, and with a proof for the
    // victim's address made without the password (the thief can start a
    // login, but cannot compute its key confirmation).
    let fake_finalization = b64(&[7u8; 64]);
    let (status, thief_start) = json_call(
        &tb,
        "POST",
        "/v1/login/start",
        None,
        Some(json!({"email": victim.email, "credential_request": super::credential_request()})),
    )
    .await;
    assert_eq!(status, 200);
    let attempts = [
        None,
        Some(json!({"login_id": "ab".repeat(16), "credential_finalization": fake_finalization})),
        Some(prove(&tb, &thief.email, &thief.password_text).await),
        Some(
            json!({"login_id": thief_start["login_id"], "credential_finalization": fake_finalization}),
        ),
    ];
    for reauth in attempts {
        let what = format!("{reauth:?}");
        let body = password_change_body(&tb, &victim, &stolen, "thief's pw", reauth).await;
        let (status, v) = json_call(
            &tb,
            "POST",
            &format!("/v1/users/{id}/password/finish"),
            Some(&stolen),
            Some(body),
        )
        .await;
        assert!(
            (400..500).contains(&status),
            "password change with {what}: {status} {v}"
        );
    }

    // Nothing changed: one escrow version, the same key, the old password.
    assert_eq!(escrow_versions(&tb, &victim).await, vec![1]);
    let (_, me) = json_call(&tb, "GET", "/v1/session", Some(&stolen), None).await;
    assert_eq!(me["public_key"], victim.public_key.as_str());
    let (phone, _p) = tb.device(org.public_key());
    let out = phone.login(&victim.email, &victim.password).await.unwrap();
    assert_eq!(out.secret_identity.expose(), &victim.secret[..]);
    let rows = tb.store().audit_rows().await.unwrap();
    assert!(
        !rows
            .iter()
            .any(|r| r.entry.action == Action::PasswordChanged),
        "a refused change was audited as done"
    );

    // The schema schemathesis fuzzes says the same.
    let (_, doc) = json_call(&tb, "GET", "/openapi.json", None, None).await;
    assert!(doc["paths"]["/v1/users/{user_id}/public-key"].is_null());
    assert!(doc["paths"]["/v1/users/{user_id}/escrow"]["post"].is_null());
    assert!(doc["paths"]["/v1/users/{user_id}/escrow"]["get"].is_object());
    let finish = &doc["components"]["schemas"]["PasswordFinishRequest"];
    assert!(
        finish["required"]
            .as_array()
            .unwrap()
            .contains(&json!("reauth")),
        "{finish}"
    );
    assert!(doc["components"]["schemas"]["ReauthProof"].is_object());
    tb.shutdown().await;
}

/// The proof is single use and short-lived: a proof already used (even by
/// a request that then failed) or older than the login timeout is refused
/// with `reauth_failed`, and a fresh one works.
pub async fn a_reauth_proof_works_once_and_briefly(backend: Backend) {
    let Some((tb, org)) = org_broker(backend).await else {
        return;
    };
    let a = user(&tb, &org, "alice").await;
    let t = a.session.token.expose().to_owned();
    let finish = format!("/v1/users/{}/password/finish", a.session.user_id.as_str());

    let proof = prove(&tb, &a.email, &a.password_text).await;
    let mut bad = password_change_body(&tb, &a, &t, "new pw one", Some(proof.clone())).await;
    bad["ksf"] = json!({"m_cost_kib": 0, "t_cost": 0, "p_cost": 0});
    let (status, v) = json_call(&tb, "POST", &finish, Some(&t), Some(bad)).await;
    assert_eq!(status, 400, "{v}");
    let replay = password_change_body(&tb, &a, &t, "new pw one", Some(proof)).await;
    let (status, v) = json_call(&tb, "POST", &finish, Some(&t), Some(replay)).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (403, Some("reauth_failed")),
        "replay: {v}"
    );

    let late = prove(&tb, &a.email, &a.password_text).await;
    tb.clock.advance(test_settings().login_ttl_secs + 1);
    let body = password_change_body(&tb, &a, &t, "new pw one", Some(late)).await;
    let (status, v) = json_call(&tb, "POST", &finish, Some(&t), Some(body)).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (403, Some("reauth_failed")),
        "expired: {v}"
    );

    let fresh = prove(&tb, &a.email, &a.password_text).await;
    let body = password_change_body(&tb, &a, &t, "new pw one", Some(fresh)).await;
    let (status, v) = json_call(&tb, "POST", &finish, Some(&t), Some(body)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["escrow_version"], 2);
    tb.shutdown().await;
}

/// The shipped flow (`kluis account passwd`, the tray) keeps working: the
/// client proves the old password inside the change, the identity opens
/// under the new password on a new device, and `password.changed` names
/// the new escrow version, the sessions ended and the session that did it.
pub async fn a_password_change_proves_the_old_password_and_is_audited(backend: Backend) {
    let Some((tb, org)) = org_broker(backend).await else {
        return;
    };
    let a = user(&tb, &org, "alice").await;
    let new = Password::new("a brand new horse staple".to_owned());
    let done = a.client.change_password(&a.password, &new).await.unwrap();
    assert_eq!(done.escrow_version, 2);
    let session = a.client.session().unwrap().unwrap();

    let (phone, _p) = tb.device(org.public_key());
    assert!(
        phone.login(&a.email, &a.password).await.is_err(),
        "old password"
    );
    let out = phone.login(&a.email, &new).await.unwrap();
    assert_eq!(out.secret_identity.expose(), &a.secret[..]);
    assert_eq!(out.escrow_version, 2);

    let rows = tb.store().audit_rows().await.unwrap();
    let changed: Vec<_> = rows
        .iter()
        .filter(|r| r.entry.action == Action::PasswordChanged)
        .collect();
    assert_eq!(changed.len(), 1, "one password.changed row");
    let entry = &changed[0].entry;
    assert_eq!(entry.target, a.email);
    use kluis_audit::{DetailKey, Value as V};
    assert_eq!(entry.details.get(DetailKey::Count), Some(&V::Int(2)));
    assert_eq!(entry.details.get(DetailKey::Sessions), Some(&V::Int(1)));
    assert_eq!(
        entry.details.get(DetailKey::Device),
        Some(&V::Text(session.session_id.as_str().to_owned()))
    );
    tb.shutdown().await;
}

/// An escrow version its owner cannot open (a buggy client, or anyone who
/// once knew the password) does not lock the owner out for good: a stolen
/// token cannot roll back, but the owner, proving the current password,
/// returns to the previous password and version. Nothing is overwritten
/// and the rollback is audited.
pub async fn an_unopenable_escrow_version_can_be_rolled_back(backend: Backend) {
    let Some((tb, org)) = org_broker(backend).await else {
        return;
    };
    let a = user(&tb, &org, "alice").await;
    let t = a.session.token.expose().to_owned();
    let id = a.session.user_id.as_str();
    let new_text = "the new pw nobody can open";

    // A change, properly proven, whose escrow does not open.
    let proof = prove(&tb, &a.email, &a.password_text).await;
    let body = password_change_body(&tb, &a, &t, new_text, Some(proof)).await;
    let finish = format!("/v1/users/{id}/password/finish");
    let (status, v) = json_call(&tb, "POST", &finish, Some(&t), Some(body)).await;
    assert_eq!(
        (status, v["escrow_version"].as_i64()),
        (200, Some(2)),
        "{v}"
    );
    let new = Password::new(new_text.to_owned());
    let (phone, _p) = tb.device(org.public_key());
    assert!(
        matches!(
            phone.login(&a.email, &new).await,
            Err(kluis_account::AccountError::EscrowUnseal)
        ),
        "the garbage version is current"
    );

    // The stolen token cannot roll back (nor forward).
    let rollback = format!("/v1/users/{id}/escrow/rollback");
    for reauth in [
        None,
        Some(json!({"login_id": "ab".repeat(16), "credential_finalization": b64(&[7u8; 64])})),
    ] {
        let mut body = json!({"to_version": 1, "expected_version": 2});
        if let Some(r) = reauth {
            body["reauth"] = r;
        }
        let (status, v) = json_call(&tb, "POST", &rollback, Some(&t), Some(body)).await;
        assert!((400..500).contains(&status), "rollback: {status} {v}");
    }
    assert_eq!(escrow_versions(&tb, &a).await, vec![1, 2]);

    // The owner rolls back with the current password.
    let done = a.client.roll_back_password(&new, 1).await.unwrap();
    assert_eq!(done.escrow_version, 3);
    let (laptop, _l) = tb.device(org.public_key());
    assert!(laptop.login(&a.email, &new).await.is_err(), "new password");
    let out = laptop.login(&a.email, &a.password).await.unwrap();
    assert_eq!(out.secret_identity.expose(), &a.secret[..]);
    assert_eq!(out.escrow_version, 3);
    let me = laptop.session().unwrap().unwrap();
    let (_, list) = json_call(
        &tb,
        "GET",
        &format!("/v1/users/{id}/escrow/versions"),
        Some(me.token.expose()),
        None,
    )
    .await;
    assert_eq!(list["versions"].as_array().unwrap().len(), 3, "{list}");
    // No replaced password opens the latest version: 404.
    let proof = prove(&tb, &a.email, &a.password_text).await;
    let body = json!({"to_version": 3, "expected_version": 3, "reauth": proof});
    let (status, v) = json_call(&tb, "POST", &rollback, Some(me.token.expose()), Some(body)).await;
    assert_eq!(status, 404, "{v}");

    let rows = tb.store().audit_rows().await.unwrap();
    let rolled: Vec<_> = rows
        .iter()
        .filter(|r| r.entry.action == Action::EscrowRolledBack)
        .collect();
    assert_eq!(rolled.len(), 1);
    use kluis_audit::{DetailKey, Value as V};
    let d = &rolled[0].entry.details;
    assert_eq!(d.get(DetailKey::Count), Some(&V::Int(3)));
    assert_eq!(d.get(DetailKey::Old), Some(&V::Text("1".to_owned())));
    tb.shutdown().await;
}

/// Forwards to the broker; the first `GET …/escrow` after a successful
/// password change answers a version that does not open (what a damaged
/// upload or a faulty store would give).
async fn corrupting_proxy(broker: String) -> (String, tokio::task::JoinHandle<()>) {
    use axum::extract::{Request, State};
    use axum::response::IntoResponse;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Clone)]
    struct P {
        broker: String,
        armed: Arc<AtomicBool>,
    }
    async fn forward(State(p): State<P>, req: Request) -> axum::response::Response {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let target = format!("{}{}", p.broker, req.uri());
        let mut out = reqwest::Client::new().request(method.clone(), target);
        for name in ["authorization", "content-type"] {
            if let Some(v) = req.headers().get(name) {
                out = out.header(name, v.as_bytes());
            }
        }
        let body = axum::body::to_bytes(req.into_body(), 1 << 20)
            .await
            .unwrap();
        let resp = out.body(body).send().await.unwrap();
        let status = axum::http::StatusCode::from_u16(resp.status().as_u16()).unwrap();
        let mut bytes = resp.bytes().await.unwrap().to_vec();
        if path.ends_with("/password/finish") && status.is_success() {
            p.armed.store(true, Ordering::SeqCst);
        } else if method == "GET"
            && path.ends_with("/escrow")
            && p.armed.swap(false, Ordering::SeqCst)
        {
            let mut v: Value = serde_json::from_slice(&bytes).unwrap();
            v["escrow"] = json!(b64(b"damaged on the way"));
            bytes = serde_json::to_vec(&v).unwrap();
        }
        (status, [("content-type", "application/json")], bytes).into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(forward).with_state(P {
        broker,
        armed: Arc::new(AtomicBool::new(false)),
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

/// `change_password` confirms that the version now current opens under the
/// new password; when it does not, the client rolls back at once and
/// reports it, and the old password keeps working.
pub async fn a_change_whose_escrow_does_not_open_is_rolled_back_by_the_client(backend: Backend) {
    let Some((tb, org)) = org_broker(backend).await else {
        return;
    };
    let a = user(&tb, &org, "alice").await;
    let (proxy, task) = corrupting_proxy(tb.url.clone()).await;
    let state = tempfile::tempdir().unwrap();
    let config = kluis_account::ClientConfig::new(proxy, org.public_key(), state.path())
        .with_ksf_policy(kluis_account::KsfPolicy::InsecureTestOnly);
    let client = kluis_account::AccountClient::new(config).unwrap();
    client.login(&a.email, &a.password).await.unwrap();
    let new = Password::new("a new pw that never sticks".to_owned());
    let err = client.change_password(&a.password, &new).await.unwrap_err();
    assert!(
        matches!(err, kluis_account::AccountError::EscrowUnseal),
        "{err:?}"
    );
    task.abort();

    let (laptop, _l) = tb.device(org.public_key());
    assert!(laptop.login(&a.email, &new).await.is_err(), "new password");
    let out = laptop.login(&a.email, &a.password).await.unwrap();
    assert_eq!(out.secret_identity.expose(), &a.secret[..]);
    assert_eq!(out.escrow_version, 3, "v2 changed, v3 the copy of v1");
    let rows = tb.store().audit_rows().await.unwrap();
    let actions: Vec<_> = rows.iter().map(|r| r.entry.action).collect();
    assert!(actions.contains(&Action::PasswordChanged));
    assert!(actions.contains(&Action::EscrowRolledBack));
    tb.shutdown().await;
}
