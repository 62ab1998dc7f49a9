//! Issue 18.4e: names and audit text must read as what they are. A display
//! name, an administrator name or client-reported audit text with a bidi
//! override, an isolate, a control character or leading/trailing
//! whitespace is refused (the broker does not trim or rewrite it). Before,
//! "ann " became a second administrator next to "ann", and a display name
//! or audit text could carry U+202E.

use kluis_approvals::AdminSigningKey;
use kluis_audit::Actor;
use kluis_broker::admin::{self, AdminError};
use kluis_broker::config::DEFAULT_ADMIN_TOKEN_TTL_SECS as TTL;
use kluis_broker::opaque::Suite;
use kluis_broker::org::OrgSigningKey;
use opaque_ke::RegistrationResponse;
use opaque_ke::argon2::{Algorithm, Argon2, Params, Version};
use opaque_ke::{ClientRegistration, ClientRegistrationFinishParameters, Identifiers};
use rand::rngs::OsRng;
use serde_json::json;

use crate::on_both_backends;

use super::util::{Backend, TestBroker, start, test_settings, unique};
use super::{b64, json_call, user};

const HOSTILE: [&str; 6] = [
    "ann ",
    " ann",
    "ann\u{202E}nimda",
    "ann\u{2067}x\u{2069}",
    "ann\u{200F}",
    "ann\u{7}",
];

async fn register_raw(tb: &TestBroker, name: &str) -> (u16, serde_json::Value) {
    let email = format!("{}@example.org", unique("text"));
    register_raw_with(tb, &email, name, json!({})).await
}

/// A genuine registration (real OPAQUE upload, test KSF) of `email` under
/// `name`, with `extra` fields added to the finish body, sent raw so that
/// the client's own checks do not stop it first.
pub(crate) async fn register_raw_with(
    tb: &TestBroker,
    email: &str,
    name: &str,
    extra: serde_json::Value,
) -> (u16, serde_json::Value) {
    use base64::Engine as _;
    let password = b"correct horse battery staple";
    let start = ClientRegistration::<Suite>::start(&mut OsRng, password).unwrap();
    let (status, reply) = json_call(
        tb,
        "POST",
        "/v1/register/start",
        None,
        Some(json!({"email": email, "registration_request": b64(&start.message.serialize())})),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let response = base64::engine::general_purpose::STANDARD
        .decode(reply["registration_response"].as_str().unwrap())
        .unwrap();
    let params = Params::new(256, 1, 1, None).unwrap();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let finish = start
        .state
        .finish(
            &mut OsRng,
            password,
            RegistrationResponse::<Suite>::deserialize(&response).unwrap(),
            ClientRegistrationFinishParameters::new(Identifiers::default(), Some(&argon)),
        )
        .unwrap();
    let mut body = json!({
        "email": email,
        "display_name": name,
        "registration_upload": b64(&finish.message.serialize()),
        "ksf": {"m_cost_kib": 256, "t_cost": 1, "p_cost": 1},
        "public_key": unique("kluis1textkey"),
        "escrow": b64(b"sealed identity"),
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    json_call(tb, "POST", "/v1/register/finish", None, Some(body)).await
}

async fn names_and_audit_text_must_read_as_what_they_are(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    // The broker refuses a hostile display name at the wire (422); a plain
    // one registers.
    for name in HOSTILE {
        let (status, answer) = register_raw(&tb, name).await;
        assert_eq!(status, 422, "display name {name:?}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("display name"),
            "{answer}"
        );
    }
    let (status, answer) = register_raw(&tb, "Ann de Vries").await;
    assert!(status == 200 || status == 201, "{answer}");

    // `kluis-broker admin admins add`: "ann" is fine, "ann " and the rest
    // are not a second "ann".
    let key = AdminSigningKey::from_seed(&[7u8; 32])
        .public_key()
        .to_string();
    let actor = Actor::System;
    admin::add_admin(tb.store(), "ann", &key, TTL, &actor, tb.now())
        .await
        .unwrap();
    for name in HOSTILE {
        let other = AdminSigningKey::from_seed(&[8u8; 32])
            .public_key()
            .to_string();
        let refused = admin::add_admin(tb.store(), name, &other, TTL, &actor, tb.now()).await;
        assert!(
            matches!(refused, Err(AdminError::Invalid { what: "name", .. })),
            "admin name {name:?}: {:?}",
            refused.map(|_| ())
        );
    }
    let admins = tb.store().list_admins().await.unwrap();
    assert_eq!(admins.len(), 1, "only \"ann\" was added");

    // Client-reported audit text (a share's recipient and folder).
    let org = OrgSigningKey::init(&tb.dir.path().join("org.key")).unwrap();
    let alice = user(&tb, &org, "alice").await;
    let token = alice.session.token.expose().to_owned();
    for text in HOSTILE {
        for body in [
            json!({"event": "granted", "recipient": text, "folder": "Finance"}),
            json!({"event": "granted", "recipient": "bob@example.org", "folder": text}),
        ] {
            let (status, answer) =
                json_call(&tb, "POST", "/v1/audit/shares", Some(&token), Some(body)).await;
            assert_eq!(status, 400, "audit text {text:?}: {answer}");
        }
    }
    let rows = tb.store().audit_rows().await.unwrap();
    assert!(
        rows.iter()
            .all(|r| HOSTILE.iter().all(|h| r.entry.target != *h)),
        "no hostile text reached the log"
    );
    tb.shutdown().await;
}

on_both_backends!(names_and_audit_text_must_read_as_what_they_are);
