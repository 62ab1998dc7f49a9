//! Group key files travel with the folder (FORMAT.md §8.7, issue #17
//! point 8): after a folder is shared with a group, a member's agent keeps
//! the group's key file in the mirror, and a member holding only their own
//! identity opens the folder with it — no broker. After a member is added
//! or removed (key rotation) the copy follows.

use std::fs;
use std::sync::Arc;

use kluis_account::AccountClient;
use kluis_broker::admin;
use kluis_broker::org::OrgSigningKey;
use kluis_client::share::group_files::{self, GROUP_DIR};
use kluis_client::share::groups::GroupKeys;
use kluis_client::share::{self, Keys, Me};
use kluis_format::Identity;
use kluis_sync::FolderMeta;
use kluis_sync::folder_meta::FOLDER_META_FILE;
use kluis_types::GroupName;

use super::util::{self, Backend};
use super::{opens, rng, user, wait_until};

/// What a member recovers from the mirror alone: the group keys in the
/// group key files that open with `id`, then the folder and `name`.
fn recover(mirror: &std::path::Path, id: &Identity, name: &str) -> Option<(usize, String)> {
    let groups = group_files::open_all(mirror, id);
    let mut keys = vec![id];
    keys.extend(groups.iter());
    let meta = FolderMeta::open_any(&fs::read(mirror.join(FOLDER_META_FILE)).ok()?, &keys).ok()?;
    let path = mirror.join(meta.name_cipher().encrypt_path(name, true).ok()?);
    Some((groups.len(), opens(&path, &keys).ok()?))
}

async fn group_key_files(backend: Backend) {
    let Some(tb) = util::start(backend, util::test_settings()).await else {
        return;
    };
    let org = OrgSigningKey::init(&tb.dir.path().join("org.key")).unwrap();
    let root = tempfile::tempdir().unwrap();
    let alice = user(&tb, &org, "alice", root.path()).await;
    let carol = user(&tb, &org, "carol", root.path()).await;
    let dave = user(&tb, &org, "dave", root.path()).await;
    share::groups::create(&alice.client, &alice.id, "finance", &mut rng())
        .await
        .unwrap();
    share::groups::add_member(
        &alice.client,
        &alice.id,
        "finance",
        &carol.email,
        None,
        &mut rng(),
    )
    .await
    .unwrap();
    let finance = GroupName::parse("finance").unwrap();
    admin::certify_group(tb.store(), &org, &finance, None, tb.now())
        .await
        .unwrap();

    // Alice's agent syncs Budget; she shares it with the group only.
    let (a_plain, mirror, agent) = super::agent_syncing(&alice, "Budget");
    let h = agent.handle();
    let alice_keys = Keys::own(&alice.id);
    let encrypted = |name: &str| {
        share::open_folder(&mirror, alice_keys)
            .ok()
            .and_then(|m| m.name_cipher().encrypt_path(name, true).ok())
            .is_some_and(|c| mirror.join(c).is_file())
    };
    fs::write(a_plain.join("a.txt"), "alpha").unwrap();
    wait_until("Alice's agent to encrypt a.txt", || encrypted("a.txt"));
    let g = share::resolve::resolve(&alice.client, "group:finance")
        .await
        .unwrap();
    let me = Me {
        email: alice.email.clone(),
        title: "Budget".into(),
    };
    share::share_folder(
        &mirror,
        alice_keys,
        &me,
        &[g.member.clone()],
        None,
        &mut |_| {},
        &mut rng(),
    )
    .unwrap();
    let folder_id = share::open_folder(&mirror, alice_keys).unwrap().folder_id;
    let key_file = group_files::path(&mirror, &folder_id, "finance");
    let name = key_file.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.len() == 32
            && name
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "the name reveals nothing: {name}"
    );
    assert_eq!(recover(&mirror, &carol.id, "a.txt"), None, "not there yet");

    // The agent, at its directory refresh, writes the group's key file into
    // the mirror: byte for byte the broker's.
    let dir = kluis_agent::BrokerDirectory::new(
        AccountClient::new(alice.client.config().clone()).unwrap(),
        alice.email.clone(),
    )
    .unwrap();
    h.set_directory(Arc::new(dir));
    let refresh = |h: &kluis_agent::AgentHandle| {
        let h = h.clone();
        // Blocking: off this async test's worker threads, which serve the
        // broker.
        std::thread::spawn(move || h.refresh_directory())
            .join()
            .unwrap()
    };
    refresh(&h).unwrap();
    let broker_file = || async {
        alice
            .client
            .group_secret("finance")
            .await
            .unwrap()
            .secret
            .as_bytes()
            .to_vec()
    };
    assert_eq!(fs::read(&key_file).unwrap(), broker_file().await);

    // Carol, with her own identity and the mirror only (the broker is not
    // asked): the group secret, the folder, the file. Dave has nothing.
    let carol_groups = group_files::open_all(&mirror, &carol.id);
    assert_eq!(carol_groups.len(), 1);
    assert_eq!(carol_groups[0].recipient(), &g.member.recipient);
    assert_eq!(
        recover(&mirror, &carol.id, "a.txt"),
        Some((1, "alpha".into()))
    );
    assert_eq!(recover(&mirror, &dave.id, "a.txt"), None);

    // Dave joins the group: one more stanza on the broker's file; the copy
    // follows at the next refresh and Dave recovers the folder too.
    share::groups::add_member(
        &alice.client,
        &alice.id,
        "finance",
        &dave.email,
        None,
        &mut rng(),
    )
    .await
    .unwrap();
    refresh(&h).unwrap();
    assert_eq!(fs::read(&key_file).unwrap(), broker_file().await);
    assert_eq!(
        recover(&mirror, &dave.id, "a.txt"),
        Some((1, "alpha".into()))
    );

    // Dave leaves: the key rotates (certified). The copy now holds both
    // versions, for Carol only; the folder moves to the new key at Alice's
    // next write, and that file opens with what Carol recovers.
    share::groups::remove_member(&alice.client, &alice.id, "finance", &dave.email, &mut rng())
        .await
        .unwrap();
    admin::certify_group(tb.store(), &org, &finance, None, tb.now())
        .await
        .unwrap();
    refresh(&h).unwrap();
    assert_eq!(fs::read(&key_file).unwrap(), broker_file().await);
    let versions = GroupKeys::open("finance", &fs::read(&key_file).unwrap(), &carol.id).unwrap();
    let numbers: Vec<u32> = versions.keys.iter().map(|(v, _)| *v).collect();
    assert_eq!(numbers, vec![1, 2]);
    assert!(group_files::open_all(&mirror, &dave.id).is_empty());
    fs::write(a_plain.join("b.txt"), "bravo").unwrap();
    wait_until("Alice's agent to encrypt b.txt", || encrypted("b.txt"));
    let moved = share::open_folder(&mirror, alice_keys).unwrap();
    assert_eq!(
        moved
            .members
            .iter()
            .find(|m| m.name == "finance")
            .unwrap()
            .recipient,
        *versions.keys[1].1.recipient(),
        "the folder moved to the new group key"
    );
    assert_eq!(
        recover(&mirror, &carol.id, "b.txt"),
        Some((2, "bravo".into()))
    );
    assert_eq!(recover(&mirror, &dave.id, "b.txt"), None);

    // Unsharing the group removes its key file.
    share::unshare_folder(
        &mirror,
        alice_keys,
        &me,
        &["group:finance".into()],
        false,
        &mut |_| {},
        &mut rng(),
    )
    .unwrap();
    assert!(!key_file.exists());
    assert!(
        fs::read_dir(mirror.join(GROUP_DIR))
            .unwrap()
            .flatten()
            .next()
            .is_none()
    );
    h.shutdown();
    agent.wait();
    tb.shutdown().await;
}

/// A folder created for a user with an account names them as its owner
/// and first member; an existing or non-empty mirror is left alone.
#[test]
fn init_folder_records_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let id = Identity::generate(&mut rng());
    let me = Me {
        email: "me@kluis.local".into(),
        title: "Kluis".into(),
    };
    let mirror = dir.path().join("m");
    assert!(share::init_folder(&mirror, &id, &me, &mut rng()).unwrap());
    let meta = share::open_folder(&mirror, Keys::own(&id)).unwrap();
    assert_eq!(
        (meta.owner.as_str(), meta.title.as_str()),
        ("me@kluis.local", "Kluis")
    );
    assert_eq!(meta.members.len(), 1);
    assert_eq!(meta.members[0].display(), "me@kluis.local");
    let before = fs::read(mirror.join(FOLDER_META_FILE)).unwrap();
    assert!(!share::init_folder(&mirror, &id, &me, &mut rng()).unwrap());
    assert_eq!(fs::read(mirror.join(FOLDER_META_FILE)).unwrap(), before);
    let full = dir.path().join("full");
    fs::create_dir_all(full.join("abc")).unwrap();
    assert!(!share::init_folder(&full, &id, &me, &mut rng()).unwrap());
    assert!(!full.join(FOLDER_META_FILE).exists());
    // No temp file is left behind.
    assert_eq!(fs::read_dir(&mirror).unwrap().count(), 1);
}

/// Issue 18.4, client side: the administrator role, a leave and a
/// rotation through `share::groups`; and a latest secret version that does
/// not open (here: written by an administrator without the member) does
/// not lose the member's keys — the agent falls back on the newest older
/// version that opens.
async fn group_authority_and_old_versions(backend: Backend) {
    let Some(tb) = util::start(backend, util::test_settings()).await else {
        return;
    };
    let org = OrgSigningKey::init(&tb.dir.path().join("org.key")).unwrap();
    let root = tempfile::tempdir().unwrap();
    let alice = user(&tb, &org, "alice", root.path()).await;
    let carol = user(&tb, &org, "carol", root.path()).await;
    let dave = user(&tb, &org, "dave", root.path()).await;
    let g = "auditors";
    share::groups::create(&alice.client, &alice.id, g, &mut rng())
        .await
        .unwrap();
    for who in [&carol.email, &dave.email] {
        share::groups::add_member(&alice.client, &alice.id, g, who, None, &mut rng())
            .await
            .unwrap();
    }
    let v1 = share::groups::fetch_keys(&carol.client, &carol.id, g)
        .await
        .unwrap();
    assert_eq!(v1.keys.len(), 1);
    // Carol is no administrator: she cannot rotate; Alice can.
    let err = share::groups::rotate(&carol.client, &carol.id, g, &mut rng())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("administrator"), "{err}");
    // Dave leaves; the rotation is due until Alice rotates.
    dave.client.leave_group(g).await.unwrap();
    assert!(alice.client.group(g).await.unwrap().rotation_due);
    let new_key = share::groups::rotate(&alice.client, &alice.id, g, &mut rng())
        .await
        .unwrap();
    let info = alice.client.group(g).await.unwrap();
    assert_eq!((info.key_version, info.rotation_due), (2, false));
    assert_eq!(info.public_key.as_str(), new_key.to_string());
    let v2 = share::groups::fetch_keys(&carol.client, &carol.id, g)
        .await
        .unwrap();
    assert_eq!(v2.keys.len(), 2);
    assert!(
        share::groups::fetch_keys(&dave.client, &dave.id, g)
            .await
            .is_err()
    );

    // A new version Carol cannot open (sealed to Alice alone, appended by
    // adding Dave back): Carol still gets both key versions.
    let mine = share::groups::fetch_keys(&alice.client, &alice.id, g)
        .await
        .unwrap();
    let sealed = mine
        .seal(&[alice.id.recipient().clone()], &mut rng())
        .unwrap();
    let s = alice.client.group_secret(g).await.unwrap();
    alice
        .client
        .add_group_member_at(g, &dave.email, sealed, 2, Some(s.secret_version))
        .await
        .unwrap();
    let back = share::groups::fetch_keys(&carol.client, &carol.id, g)
        .await
        .unwrap();
    assert_eq!(back.keys.len(), 2, "fell back on the older version");
    assert_eq!(
        back.current().unwrap().recipient(),
        v2.current().unwrap().recipient()
    );
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_key_files_travel_with_the_folder() {
        super::group_key_files(super::Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_authority_and_old_versions() {
        super::group_authority_and_old_versions(super::Backend::Sqlite).await
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_key_files_travel_with_the_folder() {
        super::group_key_files(super::Backend::Postgres).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_authority_and_old_versions() {
        super::group_authority_and_old_versions(super::Backend::Postgres).await
    }
}
