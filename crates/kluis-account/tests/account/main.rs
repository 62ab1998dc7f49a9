//! Integration tests of the account client against a real broker, on
//! SQLite and (when configured) PostgreSQL.
#![allow(clippy::unwrap_used, reason = "tests")]

// The same live-broker harness as the broker's own suite: one copy.
use kluis_testkit::broker as util;
use kluis_testkit::on_both_backends;

mod hostile_broker;

use kluis_account::{
    AccountClient, AccountError, ClientConfig, Invite, KsfPolicy, Password, PinStatus,
    Registration, RejectionReason,
};
use kluis_broker::admin;
use kluis_broker::config::RegistrationMode;
use kluis_broker::org::OrgSigningKey;
use kluis_types::{Email, ErrorCode, OrgCertificate, PublicKeyString};
use util::{Backend, TestBroker, start, test_settings, unique};

fn reg<'a>(p: &'a Person, invite: Option<&'a kluis_account::InviteToken>) -> Registration<'a> {
    Registration {
        email: &p.email,
        display_name: &p.email,
        password: &p.password,
        public_key: &p.public_key,
        secret_identity: &p.secret,
        invite,
    }
}

struct Person {
    email: String,
    password: Password,
    public_key: String,
    secret: Vec<u8>,
}

fn person(name: &str) -> Person {
    let mut secret = vec![0u8; 48];
    util::getrandom_fill(&mut secret);
    Person {
        email: format!("{}@example.org", unique(name)),
        password: Password::new(unique("pw correct horse ")),
        public_key: unique("kluis1testkey"),
        secret,
    }
}

async fn register(client: &AccountClient, p: &Person) -> kluis_account::LoginOutcome {
    client
        .register(&Registration {
            email: &p.email,
            display_name: &p.email,
            password: &p.password,
            public_key: &p.public_key,
            secret_identity: &p.secret,
            invite: None,
        })
        .await
        .unwrap()
}

fn org_key(tb: &TestBroker, name: &str) -> OrgSigningKey {
    OrgSigningKey::init(&tb.dir.path().join(name)).unwrap()
}

async fn certify(tb: &TestBroker, org: &OrgSigningKey, p: &Person) -> OrgCertificate {
    let email = Email::parse(&p.email).unwrap();
    admin::certify(tb.store(), org, &email, None, tb.now())
        .await
        .unwrap()
}

fn is_status(err: &AccountError, want: u16) -> bool {
    matches!(err, AccountError::Broker { status, .. } if *status == want)
}

/// Register, log in on a second device, unseal, change the password, and
/// check the old password and the other sessions are dead.
async fn register_second_device_and_password_change(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let org = org_key(&tb, "org.key");
    let alice = person("alice");

    let (laptop, _l) = tb.device(org.public_key());
    let first = register(&laptop, &alice).await;
    assert_eq!(first.secret_identity.expose(), &alice.secret[..]);
    assert_eq!(first.escrow_version, 1);
    assert_eq!(first.public_key.as_str(), alice.public_key);

    let (phone, _p) = tb.device(org.public_key());
    assert!(
        phone.session().unwrap().is_none(),
        "a fresh device has no session"
    );
    let second = phone.login(&alice.email, &alice.password).await.unwrap();
    assert_eq!(
        second.secret_identity.expose(),
        &alice.secret[..],
        "unsealed on the second device"
    );
    assert_eq!(phone.whoami().await.unwrap().email.as_str(), alice.email);

    let (stranger, _s) = tb.device(org.public_key());
    let wrong = stranger
        .login(&alice.email, &Password::new("not the password"))
        .await;
    assert!(matches!(wrong, Err(AccountError::LoginFailed)), "{wrong:?}");

    let new_password = Password::new(unique("new pw "));
    let changed = phone
        .change_password(&alice.password, &new_password)
        .await
        .unwrap();
    assert_eq!(changed.escrow_version, 2);
    assert!(
        changed.sessions_revoked >= 2,
        "laptop and the phone's older session end"
    );

    let laptop_after = laptop.whoami().await;
    assert!(
        laptop_after.as_ref().is_err_and(|e| is_status(e, 401)),
        "{laptop_after:?}"
    );
    phone.whoami().await.unwrap();

    let (tablet, _t) = tb.device(org.public_key());
    let old = tablet.login(&alice.email, &alice.password).await;
    assert!(
        matches!(old, Err(AccountError::LoginFailed)),
        "old password must fail: {old:?}"
    );
    let fresh = tablet.login(&alice.email, &new_password).await.unwrap();
    assert_eq!(fresh.secret_identity.expose(), &alice.secret[..]);
    assert_eq!(fresh.escrow_version, 2);

    tablet.logout().await.unwrap();
    assert!(matches!(
        tablet.whoami().await,
        Err(AccountError::NotLoggedIn)
    ));
    tb.shutdown().await;
}

/// Unknown accounts fail exactly like wrong passwords; a production client
/// refuses an account whose KSF parameters are below its minimum.
async fn unknown_user_and_ksf_downgrade(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let org = org_key(&tb, "org.key");
    let (dev, _d) = tb.device(org.public_key());
    let nobody = dev
        .login("nobody@example.org", &Password::new("whatever"))
        .await;
    assert!(
        matches!(nobody, Err(AccountError::LoginFailed)),
        "{nobody:?}"
    );

    let bob = person("bob");
    register(&dev, &bob).await;
    let state = tempfile::tempdir().unwrap();
    let strict = AccountClient::new(ClientConfig::new(
        tb.url.clone(),
        org.public_key(),
        state.path(),
    ))
    .unwrap();
    assert_eq!(strict.config().ksf_policy, KsfPolicy::Standard);
    let downgraded = strict.login(&bob.email, &bob.password).await;
    assert!(
        matches!(downgraded, Err(AccountError::KsfRejected { .. })),
        "{downgraded:?}"
    );
    tb.shutdown().await;
}

/// The broker hands out keys the org did not certify: the client refuses.
async fn key_substitution_is_refused(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let org = org_key(&tb, "org.key");
    let rogue = org_key(&tb, "rogue.key");
    let (alice, bob, carol, dave) = (
        person("alice"),
        person("bob"),
        person("carol"),
        person("dave"),
    );
    for p in [&alice, &bob, &carol, &dave] {
        let (dev, _d) = tb.device(org.public_key());
        register(&dev, p).await;
    }
    certify(&tb, &org, &alice).await;
    certify(&tb, &rogue, &bob).await; // signed, but not by the pinned org key
    let dave_cert = certify(&tb, &org, &dave).await;

    let (client, _c) = tb.device(org.public_key());
    client.login(&alice.email, &alice.password).await.unwrap();

    let ok = client.resolve_recipient(&dave.email).await.unwrap();
    assert_eq!(ok.public_key.as_str(), dave.public_key);
    assert_eq!(ok.pin, PinStatus::NewlyPinned);
    assert_eq!(
        client.resolve_recipient(&dave.email).await.unwrap().pin,
        PinStatus::Matches
    );

    let bob_res = client.resolve_recipient(&bob.email).await;
    assert!(
        matches!(bob_res, Err(AccountError::BadCertificate(_))),
        "{bob_res:?}"
    );
    let carol_res = client.resolve_recipient(&carol.email).await;
    assert!(
        matches!(carol_res, Err(AccountError::Uncertified(_))),
        "{carol_res:?}"
    );

    // A compromised broker swaps Dave's key and replays his old certificate.
    let dave_email = Email::parse(&dave.email).unwrap();
    let dave_id = tb
        .store()
        .user_by_email(&dave_email)
        .await
        .unwrap()
        .unwrap()
        .user_id;
    let evil = PublicKeyString::parse(&unique("kluis1evil")).unwrap();
    tb.store().set_public_key(&dave_id, &evil).await.unwrap();
    let replayed = OrgCertificate {
        public_key: evil.clone(),
        ..dave_cert
    };
    assert!(
        tb.store()
            .set_certificate(&replayed, &|_| Ok(vec![]))
            .await
            .unwrap()
    );
    let swapped = client.resolve_recipient(&dave.email).await;
    assert!(
        matches!(swapped, Err(AccountError::BadCertificate(_))),
        "{swapped:?}"
    );

    // Even a key the org did certify is refused while it contradicts the pin.
    let rotated = PublicKeyString::parse(&unique("kluis1rotated")).unwrap();
    tb.store().set_public_key(&dave_id, &rotated).await.unwrap();
    admin::certify(tb.store(), &org, &dave_email, Some(&rotated), tb.now())
        .await
        .unwrap();
    let changed = client.resolve_recipient(&dave.email).await;
    assert!(
        matches!(changed, Err(AccountError::KeyChanged { .. })),
        "{changed:?}"
    );
    let search = client.find_contacts("dave").await.unwrap();
    assert!(search.contacts.iter().all(|c| c.email != dave_email));
    assert!(
        search.rejected.iter().any(
            |r| r.email == dave_email && matches!(r.reason, RejectionReason::KeyChanged { .. })
        )
    );
    assert!(client.accept_key_change(&dave.email).unwrap());
    let accepted = client.resolve_recipient(&dave.email).await.unwrap();
    assert_eq!(accepted.public_key, rotated);

    // A client pinned to another org key trusts nobody here.
    let (other_org_client, _o) = tb.device(rogue.public_key());
    other_org_client
        .login(&alice.email, &alice.password)
        .await
        .unwrap();
    let alice_res = other_org_client.resolve_recipient(&alice.email).await;
    assert!(
        matches!(alice_res, Err(AccountError::BadCertificate(_))),
        "{alice_res:?}"
    );
    tb.shutdown().await;
}

/// Invite-only registration: invites work once, expire, and honour their
/// address binding; the org key comes from the invite.
async fn invites_are_single_use_and_expire(backend: Backend) {
    let settings = kluis_broker::config::Settings {
        registration: RegistrationMode::Invite,
        ..test_settings()
    };
    let Some(tb) = start(backend, settings).await else {
        return;
    };
    let org = org_key(&tb, "org.key");
    let token = admin::create_invite(tb.store(), tb.now(), 3600, None)
        .await
        .unwrap();
    let text = Invite {
        broker_url: tb.url.clone(),
        token,
        org_public_key: org.public_key(),
        email: None,
        min_policy_version: 0,
    }
    .encode()
    .unwrap();
    let invite = Invite::decode(&text).unwrap();
    assert_eq!(invite.org_public_key, org.public_key());

    let state = tempfile::tempdir().unwrap();
    let client = AccountClient::new(
        ClientConfig::from_invite(&invite, state.path())
            .with_ksf_policy(KsfPolicy::InsecureTestOnly),
    )
    .unwrap();
    let (a, b) = (person("inv-a"), person("inv-b"));
    let invite_refused = |r: &Result<kluis_account::LoginOutcome, AccountError>| {
        matches!(
            r,
            Err(AccountError::Broker {
                status: 403,
                code: ErrorCode::InviteRequired,
                ..
            })
        )
    };

    let none = client.register(&reg(&a, None)).await;
    assert!(invite_refused(&none), "{none:?}");
    client
        .register(&reg(&a, Some(&invite.token)))
        .await
        .unwrap();
    let reused = client.register(&reg(&b, Some(&invite.token))).await;
    assert!(invite_refused(&reused), "second use: {reused:?}");

    let short = admin::create_invite(tb.store(), tb.now(), 60, None)
        .await
        .unwrap();
    tb.clock.advance(61);
    let expired = client.register(&reg(&b, Some(&short))).await;
    assert!(invite_refused(&expired), "expired: {expired:?}");

    let c = person("inv-c");
    let bound = admin::create_invite(
        tb.store(),
        tb.now(),
        3600,
        Some(&Email::parse(&c.email).unwrap()),
    )
    .await
    .unwrap();
    let wrong_addr = client.register(&reg(&b, Some(&bound))).await;
    assert!(
        invite_refused(&wrong_addr),
        "bound to another address: {wrong_addr:?}"
    );
    client.register(&reg(&c, Some(&bound))).await.unwrap();

    assert!(Invite::decode("kluis-invite-v1:not-base64!").is_err());
    tb.shutdown().await;
}

/// The session file is private and never shows its token through Debug.
async fn session_file_is_private(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    let org = org_key(&tb, "org.key");
    let (dev, dir) = tb.device(org.public_key());
    let p = person("erin");
    let out = register(&dev, &p).await;
    let shown = format!("{out:?}");
    assert!(!shown.contains(out.session.token.expose()));
    assert!(!util::contains(shown.as_bytes(), &p.secret));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("session.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "session file must be 0600");
    }
    tb.shutdown().await;
}

on_both_backends!(
    register_second_device_and_password_change,
    unknown_user_and_ksf_downgrade,
    key_substitution_is_refused,
    invites_are_single_use_and_expire,
    session_file_is_private,
);
