//! Issue #6 "Show it", steps 1 to 6: Alice, Bob and Carol share folders
//! and files through one broker.

use super::*;

/// Issue #6 "Show it", steps 1 to 6, on one broker.
pub(crate) async fn alice_bob_carol(backend: Backend) {
    let Some(tb) = util::start(backend, util::test_settings()).await else {
        return;
    };
    let org = OrgSigningKey::init(&tb.dir.path().join("org.key")).unwrap();
    let root = tempfile::tempdir().unwrap();
    let alice = user(&tb, &org, "alice", root.path()).await;
    let bob = user(&tb, &org, "bob", root.path()).await;
    let carol = user(&tb, &org, "carol", root.path()).await;
    let policy = policy();
    let data = root.path().join("data");

    // Alice's folder pair: ~/Kluis/Projects <-> ~/Dropbox/Projects.
    let a_plain = alice.home.join("Kluis/Projects");
    let a_mirror = alice.sync().join("Projects");
    fs::create_dir_all(a_plain.join("plans")).unwrap();
    fs::create_dir_all(&a_mirror).unwrap();
    fs::write(a_plain.join("a.txt"), "alpha v1").unwrap();
    fs::write(a_plain.join("plans/b.txt"), "bravo").unwrap();
    let mut a_eng = engine(&a_plain, &a_mirror, &data, "alice");
    reconcile(&mut a_eng, &alice.id);

    // (1) Alice shares with Bob, through the verified directory.
    let v = share::resolve::resolve(&alice.client, &bob.email)
        .await
        .unwrap();
    assert!(v.newly_pinned, "first use pins Bob's key");
    let me = Me {
        email: alice.email.clone(),
        title: "Projects".into(),
    };
    let groups = groups_of(&alice.client).await;
    let ctx = PolicyContext {
        policy: &policy,
        groups: &groups,
    };
    let mut seen = Vec::new();
    let rep = share::share_folder(
        &a_mirror,
        alice.keys(),
        &me,
        &[v.member],
        Some(ctx),
        &mut |p| seen.push(p.done),
        &mut rng(),
    )
    .unwrap();
    assert_eq!((rep.files_updated, rep.files_failed.len()), (2, 0));
    assert_eq!(seen, vec![1, 2], "progress after each file");
    let listed = share::list_folder(&a_mirror, alice.keys()).unwrap();
    assert_eq!(
        listed
            .members
            .iter()
            .map(|m| m.who.clone())
            .collect::<Vec<_>>(),
        vec![alice.email.clone(), bob.email.clone()]
    );
    // The provider shares the mirror with Bob, and by mistake with Carol.
    replicate(&a_mirror, &bob.sync().join("Projects"));
    replicate(&a_mirror, &carol.sync().join("Projects"));

    let mut b_cfg = Config {
        shared_roots: vec![bob.sync()],
        ..Config::default()
    };
    let found = share::discover_shared(
        &mut b_cfg,
        bob.keys(),
        &bob.home.join("Kluis/Shared with me"),
    )
    .unwrap();
    let b_plain = bob
        .home
        .join("Kluis/Shared with me")
        .join(share::shared_plain_name(&alice.email, "Projects"));
    assert!(
        b_plain.to_string_lossy().ends_with(" - Projects")
            && b_plain.to_string_lossy().contains("/Alice")
    );
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].outcome,
        DiscoveryOutcome::Added {
            plain: b_plain.clone()
        }
    );
    let mut b_eng = engine(&b_plain, &bob.sync().join("Projects"), &data, "bob");
    reconcile(&mut b_eng, &bob.id);
    assert_eq!(read(b_plain.join("a.txt")), "alpha v1");
    assert_eq!(read(b_plain.join("plans/b.txt")), "bravo");

    let mut c_cfg = Config {
        shared_roots: vec![carol.sync()],
        ..Config::default()
    };
    let found = share::discover_shared(
        &mut c_cfg,
        carol.keys(),
        &carol.home.join("Kluis/Shared with me"),
    )
    .unwrap();
    assert_eq!(found[0].outcome, DiscoveryOutcome::NotSharedWithYou);
    assert!(c_cfg.pairs.is_empty());
    let c_plain = carol.home.join("Kluis/mis-shared");
    fs::create_dir_all(&c_plain).unwrap();
    let mut c_eng = engine(&c_plain, &carol.sync().join("Projects"), &data, "carol");
    assert!(matches!(
        c_eng.reconcile(&carol.id, &SystemClock, &mut rng()),
        Err(SyncError::FolderNotShared(_))
    ));
    assert_eq!(
        fs::read_dir(&c_plain).unwrap().count(),
        0,
        "Carol reads nothing"
    );
    let a_ct = cipher_path(&a_mirror, alice.keys(), "a.txt");
    assert!(matches!(
        opens(&a_ct, &[&carol.id]),
        Err(kluis_format::Error::NoMatchingRecipient)
    ));
    assert!(
        carol
            .sync()
            .join("Projects")
            .join(a_ct.strip_prefix(&a_mirror).unwrap())
            .exists(),
        "ciphertext left alone"
    );

    // (2) Bob edits; his edit is encrypted to every member; Alice sees it.
    fs::write(b_plain.join("a.txt"), "alpha v2 by bob").unwrap();
    reconcile(&mut b_eng, &bob.id);
    replicate(&bob.sync().join("Projects"), &a_mirror);
    reconcile(&mut a_eng, &alice.id);
    assert_eq!(read(a_plain.join("a.txt")), "alpha v2 by bob");

    // (3) Group `finance` holding Carol; Alice shares with the group.
    share::groups::create(&alice.client, &alice.id, "finance", &mut rng())
        .await
        .unwrap();
    share::groups::add_member(
        &alice.client,
        &alice.id,
        "finance",
        &carol.email,
        Some(&policy),
        &mut rng(),
    )
    .await
    .unwrap();
    admin::certify_group(
        tb.store(),
        &org,
        &GroupName::parse("finance").unwrap(),
        None,
        tb.now(),
    )
    .await
    .unwrap();
    let g = share::resolve::resolve(&alice.client, "group:finance")
        .await
        .unwrap();
    let groups = groups_of(&alice.client).await;
    let ctx = PolicyContext {
        policy: &policy,
        groups: &groups,
    };
    let rep = share::share_folder(
        &a_mirror,
        alice.keys(),
        &me,
        &[g.member],
        Some(ctx),
        &mut |_| {},
        &mut rng(),
    )
    .unwrap();
    assert_eq!(rep.files_updated, 2);
    replicate(&a_mirror, &carol.sync().join("Projects"));
    let carol_groups = share::groups::my_group_keys(&carol.client, &carol.id, &carol.email)
        .await
        .unwrap();
    assert_eq!(carol_groups.len(), 1);
    let c_keys = Keys {
        identity: &carol.id,
        groups: &carol_groups,
    };
    let found =
        share::discover_shared(&mut c_cfg, c_keys, &carol.home.join("Kluis/Shared with me"))
            .unwrap();
    let DiscoveryOutcome::Added { plain: c_plain } = found[0].outcome.clone() else {
        panic!("{found:?}")
    };
    let mut c_eng = engine(&c_plain, &carol.sync().join("Projects"), &data, "carol2");
    c_eng.set_group_keys(
        share::groups::my_group_keys(&carol.client, &carol.id, &carol.email)
            .await
            .unwrap(),
    );
    reconcile(&mut c_eng, &carol.id);
    assert_eq!(read(c_plain.join("a.txt")), "alpha v2 by bob");
    // A file in the folder that is not encrypted to Carol (say, written by
    // a device with stale metadata) stays ciphertext: "not shared with
    // you", not an error, not deleted.
    let private = cipher_path(&a_mirror, alice.keys(), "private.txt");
    let mut ct = Vec::new();
    let m = kluis_format::Metadata {
        name: Some("private.txt".into()),
        size: Some(6),
        ..Default::default()
    };
    kluis_format::encrypt(
        &b"secret"[..],
        &mut ct,
        &[alice.id.recipient().clone()],
        &m,
        Default::default(),
        &mut rng(),
    )
    .unwrap();
    let c_private = carol
        .sync()
        .join("Projects")
        .join(private.strip_prefix(&a_mirror).unwrap());
    fs::write(&c_private, &ct).unwrap();
    let rep = reconcile(&mut c_eng, &carol.id);
    assert_eq!(rep.not_shared, vec!["private.txt".to_owned()]);
    assert!(!c_plain.join("private.txt").exists());
    reconcile(&mut c_eng, &carol.id);
    assert_eq!(fs::read(&c_private).unwrap(), ct, "left alone");
    fs::remove_file(&c_private).unwrap();
    // A file's header has one stanza for the whole group.
    let stanzas = share::list_file(&a_ct).unwrap().key_ids.len();
    assert_eq!(stanzas, 3, "alice, bob, group:finance");
    // Adding a person to the group touches no file.
    let before = snapshot(&a_mirror);
    share::groups::add_member(
        &alice.client,
        &alice.id,
        "finance",
        &bob.email,
        Some(&policy),
        &mut rng(),
    )
    .await
    .unwrap();
    assert_eq!(snapshot(&a_mirror), before);
    let bob_group_keys = share::groups::my_group_keys(&bob.client, &bob.id, &bob.email)
        .await
        .unwrap();
    assert_eq!(bob_group_keys.len(), 1);
    // Taking Bob out of the group rotates the group key; once certified,
    // re-sharing moves the folder to the new key.
    share::groups::remove_member(&alice.client, &alice.id, "finance", &bob.email, &mut rng())
        .await
        .unwrap();
    let err = share::resolve::resolve(&alice.client, "group:finance")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not certified"), "{err}");
    admin::certify_group(
        tb.store(),
        &org,
        &GroupName::parse("finance").unwrap(),
        None,
        tb.now(),
    )
    .await
    .unwrap();
    let g2 = share::resolve::resolve(&alice.client, "group:finance")
        .await
        .unwrap();
    share::share_folder(
        &a_mirror,
        alice.keys(),
        &me,
        &[g2.member],
        None,
        &mut |_| {},
        &mut rng(),
    )
    .unwrap();
    assert!(
        share::groups::fetch_keys(&bob.client, &bob.id, "finance")
            .await
            .is_err(),
        "Bob has no access to the new group secret"
    );
    let carol_groups = share::groups::my_group_keys(&carol.client, &carol.id, &carol.email)
        .await
        .unwrap();
    assert_eq!(
        carol_groups.len(),
        2,
        "Carol keeps the old key version and gets the new one"
    );

    // (4) Alice removes Bob; what she writes afterwards Bob cannot read.
    let rep = share::unshare_folder(
        &a_mirror,
        alice.keys(),
        &me,
        &[bob.email.clone()],
        false,
        &mut |_| {},
        &mut rng(),
    )
    .unwrap();
    assert_eq!(
        rep.files_updated, 2,
        "Bob's stanzas dropped from existing headers"
    );
    fs::write(a_plain.join("c.txt"), "charlie, after Bob left").unwrap();
    reconcile(&mut a_eng, &alice.id);
    replicate(&a_mirror, &bob.sync().join("Projects"));
    let c_ct = cipher_path(&a_mirror, alice.keys(), "c.txt");
    assert!(matches!(
        opens(&c_ct, &[&bob.id]),
        Err(kluis_format::Error::NoMatchingRecipient)
    ));
    let bob_all: Vec<&Identity> = std::iter::once(&bob.id)
        .chain(bob_group_keys.iter())
        .collect();
    assert!(
        matches!(
            opens(&c_ct, &bob_all),
            Err(kluis_format::Error::NoMatchingRecipient)
        ),
        "not even with the old group key"
    );
    let carol_all: Vec<&Identity> = std::iter::once(&carol.id)
        .chain(carol_groups.iter())
        .collect();
    assert_eq!(
        opens(&c_ct, &carol_all).unwrap(),
        "charlie, after Bob left",
        "the group still reads it"
    );
    assert!(matches!(
        b_eng.reconcile(&bob.id, &SystemClock, &mut rng()),
        Err(SyncError::FolderNotShared(_))
    ));
    assert!(!b_plain.join("c.txt").exists());
    assert_eq!(
        read(b_plain.join("a.txt")),
        "alpha v2 by bob",
        "what Bob already had stays (the docs say so)"
    );
    // With --rekey-existing every file gets a new file key.
    let old_id = kluis_sync::scan::read_file_id(&a_ct).unwrap();
    share::unshare_folder(
        &a_mirror,
        alice.keys(),
        &me,
        &["group:finance".into()],
        true,
        &mut |_| {},
        &mut rng(),
    )
    .unwrap();
    assert_ne!(kluis_sync::scan::read_file_id(&a_ct).unwrap(), old_id);
    assert!(matches!(
        opens(&a_ct, &carol_all),
        Err(kluis_format::Error::NoMatchingRecipient)
    ));
    assert_eq!(opens(&a_ct, &[&alice.id]).unwrap(), "alpha v2 by bob");

    // (5) A "medical" folder refuses a share with someone outside `care`.
    let m_plain = alice.home.join("Kluis/Medical");
    let m_mirror = alice.sync().join("Medical");
    fs::create_dir_all(&m_plain).unwrap();
    fs::create_dir_all(&m_mirror).unwrap();
    fs::write(m_plain.join("x-ray.txt"), "private").unwrap();
    let mut m_eng = engine(&m_plain, &m_mirror, &data, "alice-medical");
    reconcile(&mut m_eng, &alice.id);
    let groups = groups_of(&alice.client).await;
    let ctx = PolicyContext {
        policy: &policy,
        groups: &groups,
    };
    share::set_label(
        &m_mirror,
        alice.keys(),
        &me,
        Some(Label::Medical),
        Some(ctx),
        &mut rng(),
    )
    .unwrap();
    let v = share::resolve::resolve(&alice.client, &carol.email)
        .await
        .unwrap();
    let err = share::share_folder(
        &m_mirror,
        alice.keys(),
        &me,
        &[v.member],
        Some(ctx),
        &mut |_| {},
        &mut rng(),
    )
    .unwrap_err();
    match &err {
        ShareError::Policy(p) => assert_eq!(p.rule, "labels.medical.only_group"),
        other => panic!("{other}"),
    }
    assert!(
        err.to_string().contains("labels.medical.only_group"),
        "the refusal names the rule: {err}"
    );
    assert_eq!(
        share::list_folder(&m_mirror, alice.keys())
            .unwrap()
            .members
            .len(),
        1,
        "nothing changed"
    );

    // (6) The broker substitutes Mallory's key for Bob's: refused, whether
    // the substitute is uncertified or even certified (Alice pinned Bob).
    let mallory = Identity::generate(&mut rng());
    let bob_row = tb
        .store()
        .user_by_email(&Email::parse(&bob.email).unwrap())
        .await
        .unwrap()
        .unwrap();
    let fake = PublicKeyString::parse(&mallory.recipient().to_string()).unwrap();
    tb.store()
        .set_public_key(&bob_row.user_id, &fake)
        .await
        .unwrap();
    let err = share::resolve::resolve(&alice.client, &bob.email)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            share::resolve::ResolveError::Account {
                source: AccountError::Uncertified(_),
                ..
            }
        ),
        "{err}"
    );
    admin::certify(
        tb.store(),
        &org,
        &Email::parse(&bob.email).unwrap(),
        None,
        tb.now(),
    )
    .await
    .unwrap();
    let err = share::resolve::resolve(&alice.client, &bob.email)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            share::resolve::ResolveError::Account {
                source: AccountError::KeyChanged { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("CHANGED"), "{err}");
    // A key signed by another org key is refused too.
    let rogue = OrgSigningKey::init(&tb.dir.path().join("rogue.key")).unwrap();
    admin::certify(
        tb.store(),
        &rogue,
        &Email::parse(&carol.email).unwrap(),
        None,
        tb.now(),
    )
    .await
    .unwrap();
    let err = share::resolve::resolve(&alice.client, &carol.email)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            share::resolve::ResolveError::Account {
                source: AccountError::BadCertificate(_),
                ..
            }
        ),
        "{err}"
    );

    // A departed colleague: once an administrator disabled Dave, sharing
    // with him is refused ("left"), and the next write drops him from the
    // folder with a notice.
    let dave = user(&tb, &org, "dave", root.path()).await;
    let v = share::resolve::resolve(&alice.client, &dave.email)
        .await
        .unwrap();
    share::share_folder(
        &a_mirror,
        alice.keys(),
        &me,
        &[v.member],
        None,
        &mut |_| {},
        &mut rng(),
    )
    .unwrap();
    let host = kluis_audit::Actor::admin("it-ops").unwrap();
    admin::disable_user(
        tb.store(),
        &Email::parse(&dave.email).unwrap(),
        &host,
        tb.now(),
    )
    .await
    .unwrap();
    let err = share::resolve::resolve(&alice.client, &dave.email)
        .await
        .unwrap_err();
    assert!(
        matches!(err, share::resolve::ResolveError::Left(_)),
        "{err}"
    );
    let rep = share::prune_departed(
        &a_mirror,
        alice.keys(),
        &[dave.email.clone()],
        &mut |_| {},
        &mut rng(),
    )
    .unwrap();
    assert_eq!(rep.notices.len(), 1, "{:?}", rep.notices);
    assert!(rep.notices[0].to_string().contains(&dave.email));
    let members: Vec<String> = share::list_folder(&a_mirror, alice.keys())
        .unwrap()
        .members
        .into_iter()
        .map(|m| m.who)
        .collect();
    assert_eq!(members, vec![alice.email.clone()]);
    tb.shutdown().await;
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}
