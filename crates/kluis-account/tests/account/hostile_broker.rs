//! A hostile broker against a client.
//!
//! Issue 18.4b: it cannot make the client run a costly Argon2id. The broker
//! announces the KSF parameters of an account in its login answer (for an
//! unknown address, its `default_ksf`); the client refuses anything above
//! its caps before allocating, under every policy.
//!
//! Issue 18.4c: it cannot hand a fresh device the unsigned version-0
//! policy (or any policy older than the invite's).

use kluis_account::{
    AccountClient, AccountError, ClientConfig, Invite, KSF_MAX_T_COST, KsfPolicy, Password,
    Registration,
};
use kluis_audit::Actor;
use kluis_broker::admin;
use kluis_broker::org::OrgSigningKey;
use kluis_types::{KsfParams, OrgPolicy};

use super::util::{Backend, start, test_settings, unique};

async fn a_hostile_broker_cannot_make_the_client_run_a_costly_ksf(backend: Backend) {
    for ksf in [
        // Cheap in memory, but more passes than the client accepts: the old
        // client ran it.
        KsfParams {
            m_cost_kib: 256,
            t_cost: 64,
            p_cost: 1,
        },
        KsfParams {
            m_cost_kib: 256,
            t_cost: KSF_MAX_T_COST + 1,
            p_cost: 1,
        },
        // What the attack asked for: 4 GiB and 64 passes.
        KsfParams {
            m_cost_kib: 4 * 1024 * 1024,
            t_cost: 64,
            p_cost: 1,
        },
        KsfParams {
            m_cost_kib: 2 * 1024 * 1024,
            t_cost: 1,
            p_cost: 1,
        },
        KsfParams {
            m_cost_kib: 256,
            t_cost: 1,
            p_cost: 64,
        },
    ] {
        let mut settings = test_settings();
        settings.default_ksf = ksf;
        let Some(tb) = start(backend, settings).await else {
            return;
        };
        let org = OrgSigningKey::init(&tb.dir.path().join("org.key")).unwrap();
        let (dev, _state) = tb.device(org.public_key());
        let answer = dev
            .login("nobody@example.org", &Password::new("whatever"))
            .await;
        assert!(
            matches!(answer, Err(AccountError::KsfTooCostly { params }) if params == ksf),
            "{ksf:?}: {answer:?}"
        );
        let text = answer.unwrap_err().to_string();
        assert!(text.contains("at most 1 GiB"), "{text}");
        tb.shutdown().await;
    }
}

/// A policy the test-only client can register under.
fn test_policy() -> OrgPolicy {
    OrgPolicy {
        min_ksf: KsfParams {
            m_cost_kib: 256,
            t_cost: 1,
            p_cost: 1,
        },
        ..OrgPolicy::default()
    }
}

async fn a_device_joining_with_an_invite_refuses_an_older_policy(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let org = OrgSigningKey::init(&tb.dir.path().join("org.key")).unwrap();
    // The invite, as `kluis-broker admin invite create` makes it, when the
    // organisation's policy was at version 1; the broker now serves the
    // unsigned built-in version 0 (its policy table was rolled back, or it
    // is not the broker it claims to be).
    let invite = |min_policy_version| {
        let tb = &tb;
        let org = &org;
        async move {
            let token = admin::create_invite(tb.store(), tb.now(), 3600, None)
                .await
                .unwrap();
            let text = Invite {
                broker_url: tb.url.clone(),
                token,
                org_public_key: org.public_key(),
                email: None,
                min_policy_version,
            }
            .encode()
            .unwrap();
            Invite::decode(&text).unwrap()
        }
    };
    assert_eq!(admin::current_policy(tb.store()).await.unwrap().version, 0);
    let join = |invite: Invite| async move {
        let state = tempfile::tempdir().unwrap();
        let client = AccountClient::new(
            ClientConfig::from_invite(&invite, state.path())
                .with_ksf_policy(KsfPolicy::InsecureTestOnly),
        )
        .unwrap();
        client.accept_invite(&invite).unwrap();
        let secret = b"a secret identity".to_vec();
        let outcome = client
            .register(&Registration {
                email: &format!("{}@example.org", unique("joiner")),
                display_name: "Joiner",
                password: &Password::new(unique("pw correct horse battery ")),
                public_key: &unique("kluis1joinkey"),
                secret_identity: &secret,
                invite: Some(&invite.token),
            })
            .await;
        (outcome.map(|_| ()), state)
    };

    let (refused, _state) = join(invite(1).await).await;
    assert!(
        matches!(
            refused,
            Err(AccountError::PolicyBelowInvite {
                invite: 1,
                served: 0
            })
        ),
        "{refused:?}"
    );
    let text = refused.unwrap_err().to_string();
    assert!(
        text.contains("older than version 1 named in your invite"),
        "{text}"
    );

    // An invite made before any signed policy (or a v1 invite) still joins
    // a broker on the built-in default.
    let (joined, _s) = join(invite(0).await).await;
    joined.unwrap();

    // Once the broker serves the signed version 1, the same kind of invite
    // joins.
    let signed = admin::set_policy(tb.store(), &org, &test_policy(), &Actor::System, tb.now())
        .await
        .unwrap();
    assert_eq!(signed.version, 1);
    let (joined, _s) = join(invite(1).await).await;
    joined.unwrap();
    tb.shutdown().await;
}

crate::on_both_backends!(
    a_hostile_broker_cannot_make_the_client_run_a_costly_ksf,
    a_device_joining_with_an_invite_refuses_an_older_policy,
);
