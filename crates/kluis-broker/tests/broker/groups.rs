//! Groups on both backends (docs/SHARING.md): only group administrators
//! change a group (issue 18.4), changes name the key version they were made
//! from, removal rotates the key and drops the certificate, every version
//! of the secret is kept, and the secret is only ever handed to members.

use kluis_account::verify_group;

use crate::on_both_backends;
use kluis_broker::admin;
use kluis_broker::org::OrgSigningKey;
use kluis_types::GroupName;

use super::util::{Backend, unique};
use super::{org_broker_with, status};

async fn group_membership_and_rotation(backend: Backend) {
    let Some((tb, org, [alice, bob])) = org_broker_with(backend, ["alice", "bob"]).await else {
        return;
    };
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
    // Nobody removes themselves (the remover knows the new key); the last
    // member and administrator cannot leave either.
    let k3 = unique("kluis1groupkey");
    let own = alice
        .client
        .remove_group_member(&name, &alice.email, &k3, b"x".to_vec(), 2)
        .await
        .unwrap_err();
    assert_eq!(status(&own), 400);
    let last = alice.client.leave_group(&name).await.unwrap_err();
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

/// Issue 18.4: a member who is not a group administrator cannot remove
/// another member, rotate the key, overwrite the secret or promote
/// themselves (on the code before, any member could do all of it); the
/// administrator role can be handed on, a group keeps one administrator,
/// and a member can leave (the key is then due for rotation).
async fn only_group_administrators_manage_the_group(backend: Backend) {
    let Some((tb, _, [alice, bob, carol])) =
        org_broker_with(backend, ["alice", "bob", "carol"]).await
    else {
        return;
    };
    let name = unique("auth-");
    let k1 = unique("kluis1groupkey");
    let (a, b, c) = (&alice.client, &bob.client, &carol.client);
    a.create_group(&name, &k1, b"sealed-v1".to_vec())
        .await
        .unwrap();
    a.add_group_member(&name, &bob.email, b"sealed-v2".to_vec(), 1)
        .await
        .unwrap();
    let g = a.group(&name).await.unwrap();
    assert_eq!(g.admins.len(), 1);
    assert_eq!(g.admins[0].as_str(), alice.email);

    // Bob is a member but not an administrator.
    let evil = unique("kluis1groupkey");
    let err = b
        .remove_group_member(&name, &alice.email, &evil, b"evil".to_vec(), 1)
        .await
        .unwrap_err();
    assert_eq!(status(&err), 403, "a member removed another: {err}");
    let err = b
        .rotate_group_key(&name, &evil, b"evil".to_vec(), 1)
        .await
        .unwrap_err();
    assert_eq!(status(&err), 403, "a member rotated the key: {err}");
    let err = b
        .remove_group_member(&name, &bob.email, &evil, b"evil".to_vec(), 1)
        .await
        .unwrap_err();
    assert_eq!(status(&err), 400, "a member rotated by removing himself");
    let err = b
        .add_group_member(&name, &carol.email, b"evil".to_vec(), 1)
        .await
        .unwrap_err();
    assert_eq!(status(&err), 403, "a member overwrote the secret: {err}");
    let err = b
        .set_group_admin(&name, &bob.email, true)
        .await
        .unwrap_err();
    assert_eq!(status(&err), 403, "a member made himself administrator");
    let g = a.group(&name).await.unwrap();
    assert_eq!(
        (g.key_version, g.members.len(), g.public_key.as_str()),
        (1, 2, k1.as_str()),
        "nothing changed"
    );
    let s = a.group_secret(&name).await.unwrap();
    assert_eq!(
        (s.secret.as_bytes(), s.secret_version),
        (&b"sealed-v2"[..], 2)
    );

    // Alice hands the role on; Bob manages the group now.
    a.set_group_admin(&name, &bob.email, true).await.unwrap();
    b.add_group_member(&name, &carol.email, b"sealed-v3".to_vec(), 1)
        .await
        .unwrap();
    a.set_group_admin(&name, &alice.email, false).await.unwrap();
    let g = a.group(&name).await.unwrap();
    assert_eq!(
        g.admins.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        [bob.email.as_str()]
    );
    let err = b
        .set_group_admin(&name, &bob.email, false)
        .await
        .unwrap_err();
    assert_eq!(status(&err), 409, "the last administrator");
    assert_eq!(status(&b.leave_group(&name).await.unwrap_err()), 409);
    let err = a
        .set_group_admin(&name, &alice.email, true)
        .await
        .unwrap_err();
    assert_eq!(status(&err), 403, "a former administrator");
    let err = b
        .set_group_admin(&name, &alice.email.replace('@', "-x@"), true)
        .await
        .unwrap_err();
    assert_eq!(status(&err), 404, "not a user");

    // Carol leaves: no rotation by the leaver, the key is due for one.
    c.leave_group(&name).await.unwrap();
    let g = a.group(&name).await.unwrap();
    assert_eq!(
        (g.members.len(), g.key_version, g.rotation_due),
        (2, 1, true)
    );
    assert_eq!(status(&c.group_secret(&name).await.unwrap_err()), 404);
    assert_eq!(status(&c.leave_group(&name).await.unwrap_err()), 403);
    let k2 = unique("kluis1groupkey");
    let err = a
        .rotate_group_key(&name, &k2, b"x".to_vec(), 1)
        .await
        .unwrap_err();
    assert_eq!(status(&err), 403);
    b.rotate_group_key(&name, &k2, b"sealed-v4".to_vec(), 1)
        .await
        .unwrap();
    let g = a.group(&name).await.unwrap();
    assert_eq!(
        (g.key_version, g.rotation_due, g.public_key.as_str()),
        (2, false, k2.as_str())
    );
    let err = b
        .rotate_group_key(&name, &evil, b"x".to_vec(), 1)
        .await
        .unwrap_err();
    assert_eq!(status(&err), 409, "stale key version");
    tb.shutdown().await;
}

/// Every version of a group secret is kept (insert-only) and members can
/// read each back; a removed member reads none; an addition made from a
/// stale secret version is refused instead of dropping a member.
async fn old_group_secret_versions_stay_retrievable(backend: Backend) {
    let Some((tb, _, [alice, bob, carol, dave])) =
        org_broker_with(backend, ["alice", "bob", "carol", "dave"]).await
    else {
        return;
    };
    let name = unique("hist-");
    let a = &alice.client;
    a.create_group(&name, &unique("kluis1groupkey"), b"s1".to_vec())
        .await
        .unwrap();
    a.add_group_member_at(&name, &bob.email, b"s2".to_vec(), 1, Some(1))
        .await
        .unwrap();
    a.add_group_member_at(&name, &carol.email, b"s3".to_vec(), 1, Some(2))
        .await
        .unwrap();
    let err = a
        .add_group_member_at(&name, &dave.email, b"stale".to_vec(), 1, Some(2))
        .await
        .unwrap_err();
    assert_eq!(status(&err), 409, "made from an older secret version");
    a.remove_group_member(
        &name,
        &carol.email,
        &unique("kluis1groupkey"),
        b"s4".to_vec(),
        1,
    )
    .await
    .unwrap();

    let listed = a.group_secret_versions(&name).await.unwrap().versions;
    let got: Vec<(i64, i64)> = listed
        .iter()
        .map(|v| (v.secret_version, v.key_version))
        .collect();
    assert_eq!(got, [(1, 1), (2, 1), (3, 1), (4, 2)]);
    assert!(
        listed
            .iter()
            .all(|v| v.created_by.as_ref().map(|e| e.as_str()) == Some(alice.email.as_str()))
    );
    for (n, want) in [(1, "s1"), (2, "s2"), (3, "s3"), (4, "s4")] {
        for who in [a, &bob.client] {
            let s = who.group_secret_version(&name, n).await.unwrap();
            assert_eq!(
                (s.secret.as_bytes(), s.secret_version),
                (want.as_bytes(), n)
            );
        }
    }
    assert_eq!(a.group_secret(&name).await.unwrap().secret_version, 4);
    assert_eq!(
        status(&a.group_secret_version(&name, 99).await.unwrap_err()),
        404
    );
    assert_eq!(
        status(&a.group_secret_version(&name, -1).await.unwrap_err()),
        404
    );
    for n in [1, 3] {
        let err = carol
            .client
            .group_secret_version(&name, n)
            .await
            .unwrap_err();
        assert_eq!(status(&err), 404, "a removed member");
    }
    let err = carol.client.group_secret_versions(&name).await.unwrap_err();
    assert_eq!(status(&err), 404);
    tb.shutdown().await;
}

on_both_backends!(
    group_membership_and_rotation,
    only_group_administrators_manage_the_group,
    old_group_secret_versions_stay_retrievable,
);
