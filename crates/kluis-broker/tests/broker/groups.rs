//! Groups on both backends (docs/SHARING.md): only members change a group,
//! changes name the key version they were made from, removal rotates the
//! key and drops the certificate, and the secret is only ever handed to
//! members.

use kluis_account::{AccountError, verify_group};

use crate::on_both_backends;
use kluis_broker::admin;
use kluis_broker::org::OrgSigningKey;
use kluis_types::GroupName;

use super::user;
use super::util::{Backend, start, test_settings, unique};

fn status(e: &AccountError) -> u16 {
    match e {
        AccountError::Broker { status, .. } => *status,
        other => panic!("expected a broker refusal, got {other}"),
    }
}

async fn group_membership_and_rotation(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let org = OrgSigningKey::init(&tb.dir.path().join("org.key")).unwrap();
    let alice = user(&tb, &org, "alice").await;
    let bob = user(&tb, &org, "bob").await;
    let name = unique("ops-");
    let k1 = unique("kluis1groupkey");
    alice
        .client
        .create_group(&name, &k1, b"sealed-v1".to_vec())
        .await
        .unwrap();
    assert_eq!(
        status(
            &alice
                .client
                .create_group(&name, &k1, b"x".to_vec())
                .await
                .unwrap_err()
        ),
        409
    );
    let g = alice.client.group(&name).await.unwrap();
    assert_eq!(
        (g.key_version, g.members.len(), g.certificate.is_none()),
        (1, 1, true)
    );
    assert!(verify_group(&org.public_key(), &g).is_err(), "uncertified");

    assert_eq!(
        alice
            .client
            .group_secret(&name)
            .await
            .unwrap()
            .secret
            .as_bytes(),
        b"sealed-v1"
    );
    assert_eq!(
        status(&bob.client.group_secret(&name).await.unwrap_err()),
        404
    );
    assert_eq!(
        status(
            &bob.client
                .add_group_member(&name, &bob.email, b"x".to_vec(), 1)
                .await
                .unwrap_err()
        ),
        403
    );
    assert_eq!(
        status(
            &alice
                .client
                .add_group_member(&name, &bob.email, b"x".to_vec(), 0)
                .await
                .unwrap_err()
        ),
        409
    );
    alice
        .client
        .add_group_member(&name, &bob.email, b"sealed-v1-bob".to_vec(), 1)
        .await
        .unwrap();
    assert_eq!(
        status(
            &alice
                .client
                .add_group_member(&name, &bob.email, b"x".to_vec(), 1)
                .await
                .unwrap_err()
        ),
        409
    );
    assert_eq!(
        bob.client
            .group_secret(&name)
            .await
            .unwrap()
            .secret
            .as_bytes(),
        b"sealed-v1-bob"
    );

    let gname = GroupName::parse(&name).unwrap();
    admin::certify_group(tb.store(), &org, &gname, None, tb.now())
        .await
        .unwrap();
    let g = alice.client.group(&name).await.unwrap();
    verify_group(&org.public_key(), &g).unwrap();
    // A certificate by another key, or for another group, does not verify.
    let rogue = OrgSigningKey::init(&tb.dir.path().join("rogue.key")).unwrap();
    assert!(verify_group(&rogue.public_key(), &g).is_err());

    let k2 = unique("kluis1groupkey");
    alice
        .client
        .remove_group_member(&name, &bob.email, &k2, b"sealed-v2".to_vec(), 1)
        .await
        .unwrap();
    let g = alice.client.group(&name).await.unwrap();
    assert_eq!(
        (g.key_version, g.members.len(), g.public_key.as_str()),
        (2, 1, k2.as_str())
    );
    assert!(
        g.certificate.is_none(),
        "a rotated key needs a new certificate"
    );
    assert_eq!(
        status(&bob.client.group_secret(&name).await.unwrap_err()),
        404
    );
    let k3 = unique("kluis1groupkey");
    let last = alice
        .client
        .remove_group_member(&name, &alice.email, &k3, b"x".to_vec(), 2)
        .await
        .unwrap_err();
    assert_eq!(status(&last), 409);
    assert_eq!(
        alice.client.group(&name).await.unwrap().key_version,
        2,
        "nothing changed"
    );

    // The broker refuses a member the organisation policy forbids, and the
    // refusal names the rule.
    let policy = kluis_types::OrgPolicy {
        external_sharing: false,
        org_domains: vec!["example.org".into()],
        ..kluis_types::OrgPolicy::default()
    };
    let outsider = super::user_at(&tb, &org, "eve", "elsewhere.test").await;
    let host = kluis_audit::Actor::admin("it-ops").unwrap();
    admin::set_policy(tb.store(), &org, &policy, &host, tb.now())
        .await
        .unwrap();
    let err = alice
        .client
        .add_group_member(&name, &outsider.email, b"x".to_vec(), 2)
        .await
        .unwrap_err();
    assert_eq!(status(&err), 422);
    assert!(err.to_string().contains("external_sharing"), "{err}");
    assert_eq!(alice.client.group(&name).await.unwrap().members.len(), 1);
    tb.shutdown().await;
}

on_both_backends!(group_membership_and_rotation);
