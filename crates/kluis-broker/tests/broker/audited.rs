//! Issue 18.4: every state change is audited, and clients cannot flood the
//! audit log (both backends, through the in-process broker's HTTP API).

use kluis_broker::admin;
use kluis_broker::api::{SHARE_ROWS_BURST, SHARE_ROWS_PER_HOUR};
use kluis_types::{GroupName, ShareEvent};

use crate::on_both_backends;

use super::util::{Backend, unique};
use super::{org_broker_with, status};

/// Each group change (create, add, admin grant and revoke, remove with its
/// rotation, leave, rotation), `admin certify-group` and `admin invite
/// create` writes its audit row: who, what, the group or address, and the
/// versions. None of them was audited before.
async fn every_group_change_certificate_and_invite_is_audited(backend: Backend) {
    let Some((tb, org, [alice, bob, carol])) =
        org_broker_with(backend, ["alice", "bob", "carol"]).await
    else {
        return;
    };
    let name = unique("audited-");
    let a = &alice.client;
    let before = tb.store().audit_rows().await.unwrap().len();

    a.create_group(&name, &unique("kluis1groupkey"), b"s1".to_vec())
        .await
        .unwrap();
    a.add_group_member(&name, &bob.email, b"s2".to_vec(), 1)
        .await
        .unwrap();
    a.set_group_admin(&name, &bob.email, true).await.unwrap();
    a.set_group_admin(&name, &bob.email, false).await.unwrap();
    a.add_group_member(&name, &carol.email, b"s3".to_vec(), 1)
        .await
        .unwrap();
    a.remove_group_member(
        &name,
        &carol.email,
        &unique("kluis1groupkey"),
        b"s4".to_vec(),
        1,
    )
    .await
    .unwrap();
    bob.client.leave_group(&name).await.unwrap();
    a.rotate_group_key(&name, &unique("kluis1groupkey"), b"s5".to_vec(), 2)
        .await
        .unwrap();
    let gname = GroupName::parse(&name).unwrap();
    let it = kluis_audit::Actor::admin("it-ops").unwrap();
    admin::certify_group_as(tb.store(), &org, &gname, None, &it, tb.now())
        .await
        .unwrap();
    let invitee = kluis_types::Email::parse(&format!("{}@example.org", unique("new"))).unwrap();
    admin::create_invite_as(tb.store(), tb.now(), 7_200, Some(&invitee), &it)
        .await
        .unwrap();
    // A refused change writes nothing.
    let err = bob
        .client
        .rotate_group_key(&name, &unique("kluis1groupkey"), b"x".to_vec(), 3)
        .await
        .unwrap_err();
    assert_eq!(status(&err), 403);

    let rows = tb.store().audit_rows().await.unwrap();
    let got: Vec<(String, String, String, String)> = rows[before..]
        .iter()
        .map(|r| {
            let e = &r.entry;
            (
                e.actor.to_string(),
                e.action.code().to_owned(),
                e.target.clone(),
                e.details
                    .iter()
                    .map(|(k, v)| format!("{}={v:?}", k.code()))
                    .collect::<Vec<_>>()
                    .join(","),
            )
        })
        .collect();
    let (ua, ub) = (
        format!("user:{}", alice.email),
        format!("user:{}", bob.email),
    );
    let want = [
        (&ua, "group.created", name.as_str()),
        (&ua, "group.member_added", &name),
        (&ua, "group.admin_granted", &name),
        (&ua, "group.admin_revoked", &name),
        (&ua, "group.member_added", &name),
        (&ua, "group.member_removed", &name),
        (&ub, "group.member_left", &name),
        (&ua, "group.key_rotated", &name),
        (&"admin:it-ops".to_owned(), "group.certified", &name),
        (
            &"admin:it-ops".to_owned(),
            "invite.created",
            invitee.as_str(),
        ),
    ];
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(want) {
        assert_eq!(
            (g.0.as_str(), g.1.as_str(), g.2.as_str()),
            (w.0.as_str(), w.1, w.2),
            "{got:#?}"
        );
    }
    // The details name the member and the versions.
    assert!(
        got[1].3.contains(&bob.email) && got[1].3.contains("secret_version=Int(2)"),
        "{:?}",
        got[1]
    );
    assert!(
        got[5].3.contains("key_version=Int(2)") && got[5].3.contains(&carol.email),
        "{:?}",
        got[5]
    );
    assert!(got[7].3.contains("key_version=Int(3)"), "{:?}", got[7]);
    assert!(got[9].3.contains("valid_secs=Int(7200)"), "{:?}", got[9]);
    tb.shutdown().await;
}

/// A client reporting share rows as fast as it can gets 429 once its
/// budget is spent, and the log grows by exactly the budget: the burst,
/// then one row per `3600 / SHARE_ROWS_PER_HOUR` seconds (the broker's
/// clock, moved by the test). Another user keeps their own budget. Before
/// this change every row was written (~1,700/s).
async fn a_client_flooding_share_rows_gets_429_and_the_log_stays_bounded(backend: Backend) {
    let Some((tb, _, [mallory, bob])) = org_broker_with(backend, ["mallory", "bob"]).await else {
        return;
    };
    let before = tb.store().audit_rows().await.unwrap().len();
    let flood = |n: u32| {
        let c = &mallory.client;
        async move {
            let (mut ok, mut limited) = (0u32, 0u32);
            for i in 0..n {
                let folder = format!("folder-{i}");
                match c
                    .record_share(ShareEvent::Granted, "x@example.org", &folder, None)
                    .await
                {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        assert_eq!(status(&e), 429, "{e}");
                        limited += 1;
                    }
                }
            }
            (ok, limited)
        }
    };
    let (ok, limited) = flood(SHARE_ROWS_BURST + 40).await;
    assert_eq!((ok, limited), (SHARE_ROWS_BURST, 40));
    let rows = tb.store().audit_rows().await.unwrap().len() - before;
    assert_eq!(
        rows, SHARE_ROWS_BURST as usize,
        "the log grew past the bound"
    );

    let per_row = i64::from(3_600 / SHARE_ROWS_PER_HOUR);
    tb.clock.advance(10 * per_row);
    assert_eq!(flood(50).await, (10, 40), "ten rows earned");
    bob.client
        .record_share(ShareEvent::Granted, "y@example.org", "projects", None)
        .await
        .unwrap();
    let rows = tb.store().audit_rows().await.unwrap().len() - before;
    assert_eq!(rows, SHARE_ROWS_BURST as usize + 10 + 1);
    tb.shutdown().await;
}

on_both_backends!(
    every_group_change_certificate_and_invite_is_audited,
    a_client_flooding_share_rows_gets_429_and_the_log_stays_bounded,
);
