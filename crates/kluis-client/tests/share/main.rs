//! Sharing end to end (issue #6, docs/SHARING.md): a real broker on
//! loopback, three users with their own plaintext and sync folders, and a
//! replicator standing in for the cloud provider's folder sharing.
//!
//! A separate test binary from `tests.rs` because it links the broker and
//! its live-broker harness.
#![allow(clippy::unwrap_used, reason = "tests")]

mod alice_bob_carol;
mod crash;
mod group_files;
mod one_share;

// The broker's live-broker harness, from the test kit.
use kluis_testkit::broker as util;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alice_bob_carol::alice_bob_carol;
use kluis_account::{AccountClient, AccountError, Password, Registration};
use kluis_agent::Config;
use kluis_broker::admin;
use kluis_broker::org::OrgSigningKey;
use kluis_client::share::{self, DiscoveryOutcome, Keys, Me, PolicyContext, ShareError};
use kluis_format::Identity;
use kluis_sync::{Engine, EngineConfig, SyncError, SystemClock};
use kluis_types::{Email, GroupName, Label, OrgPolicy, PublicKeyString};
use util::{Backend, TestBroker};

fn rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

struct User {
    email: String,
    id: Identity,
    client: AccountClient,
    _state: tempfile::TempDir,
    home: PathBuf,
}

impl User {
    fn sync(&self) -> PathBuf {
        self.home.join("Dropbox")
    }
    fn keys(&self) -> Keys<'_> {
        Keys::own(&self.id)
    }
}

/// `user`'s agent, started and unlocked, pairing `Kluis/<folder>` with
/// `<sync folder>/<folder>`: (plaintext folder, mirror, agent).
fn agent_syncing(user: &User, folder: &str) -> (PathBuf, PathBuf, kluis_agent::Agent) {
    let plain = user.home.join("Kluis").join(folder);
    let mirror = user.sync().join(folder);
    fs::create_dir_all(&plain).unwrap();
    fs::create_dir_all(&mirror).unwrap();
    let home = kluis_agent::AgentHome::in_dir(&user.home.join("agent"));
    let mut cfg = Config::default();
    cfg.add_pair(&plain, &mirror).unwrap();
    cfg.save(&home).unwrap();
    let opts = kluis_agent::AgentOptions {
        quiet: Duration::from_millis(50),
        debounce: Duration::from_millis(30),
        ..Default::default()
    };
    let agent = kluis_agent::Agent::start(home, opts, None).unwrap();
    agent
        .handle()
        .unlock_with(Identity::from_secret_bytes(&user.id.to_secret_bytes()[..]).unwrap());
    (plain, mirror, agent)
}

async fn user(tb: &TestBroker, org: &OrgSigningKey, name: &str, root: &Path) -> User {
    let email = format!("{}@example.org", util::unique(name));
    let id = Identity::generate(&mut rng());
    let (client, state) = tb.device(org.public_key());
    client
        .register(&Registration {
            email: &email,
            display_name: name,
            password: &Password::new(util::unique("pw correct horse ")),
            public_key: &id.recipient().to_string(),
            secret_identity: &id.to_secret_bytes()[..],
            invite: None,
        })
        .await
        .unwrap();
    admin::certify(
        tb.store(),
        org,
        &Email::parse(&email).unwrap(),
        None,
        tb.now(),
    )
    .await
    .unwrap();
    let home = root.join(name);
    fs::create_dir_all(home.join("Dropbox")).unwrap();
    User {
        email,
        id,
        client,
        _state: state,
        home,
    }
}

/// One-way copy of every file that is new or different (the provider
/// delivering a shared folder). Writer temp files are not synced.
fn replicate(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap().flatten() {
        let name = e.file_name();
        if name.to_string_lossy().starts_with(".kluis-tmp") {
            continue;
        }
        let (src, dst) = (e.path(), to.join(&name));
        if e.file_type().unwrap().is_dir() {
            replicate(&src, &dst);
        } else if fs::read(&dst).ok() != Some(fs::read(&src).unwrap()) {
            let tmp = to.join(format!(".provider-{}", name.to_string_lossy()));
            fs::copy(&src, &tmp).unwrap();
            fs::rename(&tmp, &dst).unwrap();
        }
    }
}

fn engine(plain: &Path, mirror: &Path, data: &Path, device: &str) -> Engine {
    let mut cfg = EngineConfig::new(
        plain.to_owned(),
        mirror.to_owned(),
        data.join(format!("{device}.sqlite")),
        device.into(),
    );
    cfg.quiet = Duration::ZERO;
    cfg.fsync = false;
    Engine::open(cfg).unwrap()
}

fn reconcile(e: &mut Engine, id: &Identity) -> kluis_sync::Report {
    let r = e.reconcile(id, &SystemClock, &mut rng()).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    r
}

fn read(p: impl AsRef<Path>) -> String {
    fs::read_to_string(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}

/// The ciphertext path of `name` in Alice's mirror (to try other keys on it).
fn cipher_path(mirror: &Path, keys: Keys<'_>, name: &str) -> PathBuf {
    let meta = share::open_folder(mirror, keys).unwrap();
    mirror.join(meta.name_cipher().encrypt_path(name, true).unwrap())
}

fn opens(path: &Path, keys: &[&Identity]) -> Result<String, kluis_format::Error> {
    let f = fs::File::open(path).unwrap();
    let mut d = kluis_sync::keys::decryptor(f, keys)?;
    let mut s = String::new();
    std::io::Read::read_to_string(&mut d, &mut s).map_err(kluis_format::Error::from_io)?;
    Ok(s)
}

fn policy() -> OrgPolicy {
    let mut p = OrgPolicy {
        org_domains: vec!["example.org".into()],
        ..OrgPolicy::default()
    };
    for r in &mut p.labels {
        if r.label == Label::Medical {
            r.only_group = Some("care".into());
        }
    }
    p
}

async fn groups_of(c: &AccountClient) -> Vec<(String, Vec<String>)> {
    c.list_groups()
        .await
        .unwrap()
        .into_iter()
        .map(|g| {
            (
                g.name.to_string(),
                g.members.iter().map(|m| m.as_str().to_owned()).collect(),
            )
        })
        .collect()
}

/// The real agent: a mirror shared with Bob arrives in his sync folder;
/// unlocking his agent pairs it under "Shared with me" and syncs it, and
/// his edit flows back to Alice. (Directory verification is covered above;
/// here Bob's key is taken as is.)
#[test]
fn bobs_agent_picks_up_a_shared_folder_on_unlock() {
    let root = tempfile::tempdir().unwrap();
    let (alice, bob) = (
        Identity::generate(&mut rng()),
        Identity::generate(&mut rng()),
    );
    let a_plain = root.path().join("alice/Kluis/Plans");
    let a_mirror = root.path().join("alice/Dropbox/Plans");
    fs::create_dir_all(&a_plain).unwrap();
    fs::create_dir_all(&a_mirror).unwrap();
    fs::write(a_plain.join("todo.txt"), "ship it").unwrap();
    let mut a_eng = engine(&a_plain, &a_mirror, &root.path().join("data"), "alice");
    reconcile(&mut a_eng, &alice);
    let me = Me {
        email: "alice@example.org".into(),
        title: "Plans".into(),
    };
    let bob_member = kluis_sync::Member::user("bob@example.org", bob.recipient().clone());
    share::share_folder(
        &a_mirror,
        Keys::own(&alice),
        &me,
        &[bob_member],
        None,
        &mut |_| {},
        &mut rng(),
    )
    .unwrap();
    let b_sync = root.path().join("bob/Dropbox");
    replicate(&a_mirror, &b_sync.join("Plans"));

    let home = kluis_agent::AgentHome::in_dir(&root.path().join("bob/home"));
    let shared = root.path().join("bob/Kluis/Shared with me");
    Config {
        shared_roots: vec![b_sync.clone()],
        shared_with_me: Some(shared.clone()),
        ..Config::default()
    }
    .save(&home)
    .unwrap();
    let opts = kluis_agent::AgentOptions {
        quiet: Duration::from_millis(50),
        debounce: Duration::from_millis(30),
        ..Default::default()
    };
    let agent = kluis_agent::Agent::start(home.clone(), opts, None).unwrap();
    let h = agent.handle();
    h.unlock_with(Identity::from_secret_bytes(&bob.to_secret_bytes()[..]).unwrap());
    let b_plain = shared.join("Alice - Plans");
    wait_until("Bob's agent to decrypt the shared folder", || {
        fs::read_to_string(b_plain.join("todo.txt")).ok().as_deref() == Some("ship it")
    });
    assert_eq!(
        Config::load(&home).unwrap().pairs.len(),
        1,
        "the pair is saved"
    );
    fs::write(b_plain.join("todo.txt"), "shipped (bob)").unwrap();
    wait_until("Bob's edit to reach his mirror", || {
        replicate(&b_sync.join("Plans"), &a_mirror);
        a_eng.reconcile(&alice, &SystemClock, &mut rng()).is_ok()
            && read(a_plain.join("todo.txt")) == "shipped (bob)"
    });
    h.shutdown();
    agent.wait();
}

/// No unlock, no `discover_shared` call, no restart: the shared mirror
/// arrives in Bob's sync folder while his agent runs, and the agent's
/// watches on the sync folder find it. Removing Bob later turns the pair
/// "not shared with you" while it runs, and deletes nothing.
#[test]
fn bobs_running_agent_picks_up_a_folder_shared_while_it_runs() {
    let root = tempfile::tempdir().unwrap();
    let (alice, bob) = (
        Identity::generate(&mut rng()),
        Identity::generate(&mut rng()),
    );
    let b_sync = root.path().join("bob/Dropbox");
    fs::create_dir_all(&b_sync).unwrap();
    let home = kluis_agent::AgentHome::in_dir(&root.path().join("bob/home"));
    let shared = root.path().join("bob/Kluis/Shared with me");
    Config {
        shared_roots: vec![b_sync.clone()],
        shared_with_me: Some(shared.clone()),
        ..Config::default()
    }
    .save(&home)
    .unwrap();
    let opts = kluis_agent::AgentOptions {
        quiet: Duration::from_millis(50),
        debounce: Duration::from_millis(30),
        ..Default::default()
    };
    let agent = kluis_agent::Agent::start(home.clone(), opts, None).unwrap();
    let h = agent.handle();
    h.unlock_with(Identity::from_secret_bytes(&bob.to_secret_bytes()[..]).unwrap());
    assert!(h.status().pairs.is_empty(), "nothing is shared yet");

    // Alice shares a folder; the provider delivers it a while later, the
    // folder first and its contents after (as sync clients do).
    let a_plain = root.path().join("alice/Kluis/Plans");
    let a_mirror = root.path().join("alice/Dropbox/Plans");
    fs::create_dir_all(&a_plain).unwrap();
    fs::create_dir_all(&a_mirror).unwrap();
    fs::write(a_plain.join("todo.txt"), "ship it").unwrap();
    let mut a_eng = engine(&a_plain, &a_mirror, &root.path().join("data"), "alice");
    reconcile(&mut a_eng, &alice);
    let me = Me {
        email: "alice@example.org".into(),
        title: "Plans".into(),
    };
    let bob_member = kluis_sync::Member::user("bob@example.org", bob.recipient().clone());
    share::share_folder(
        &a_mirror,
        Keys::own(&alice),
        &me,
        &[bob_member],
        None,
        &mut |_| {},
        &mut rng(),
    )
    .unwrap();
    fs::create_dir_all(b_sync.join("Plans")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    replicate(&a_mirror, &b_sync.join("Plans"));

    let b_plain = shared.join("Alice - Plans");
    wait_until("Bob's running agent to find and decrypt the folder", || {
        fs::read_to_string(b_plain.join("todo.txt")).ok().as_deref() == Some("ship it")
    });
    let event = h
        .activity(100)
        .into_iter()
        .find(|a| a.action == kluis_agent::SHARED_WITH_YOU)
        .expect("a 'shared with you' activity entry for the tray");
    assert_eq!(event.path, b_plain.display().to_string());
    assert_eq!(event.detail.as_deref(), Some("alice@example.org"));
    // The same event in the status, numbered for the tray.
    let shared = h.status().shared_with_you;
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(shared[0].seq, 1);
    assert_eq!(shared[0].plain, b_plain);
    assert_eq!(shared[0].mirror, b_sync.join("Plans"));
    assert_eq!(
        (shared[0].owner.as_str(), shared[0].title.as_str()),
        ("alice@example.org", "Plans")
    );

    // Alice removes Bob; the new metadata reaches Bob's mirror.
    share::unshare_folder(
        &a_mirror,
        Keys::own(&alice),
        &me,
        &["bob@example.org".to_string()],
        false,
        &mut |_| {},
        &mut rng(),
    )
    .unwrap();
    replicate(&a_mirror, &b_sync.join("Plans"));
    wait_until("Bob's pair to turn 'not shared with you'", || {
        h.status()
            .pairs
            .iter()
            .any(|p| p.state == kluis_agent::PairState::NotSharedWithYou)
    });
    assert_eq!(
        read(b_plain.join("todo.txt")),
        "ship it",
        "what Bob had is not deleted"
    );
    h.shutdown();
    agent.wait();
}

/// The running agent learns from the directory (issue #6: "a departed user
/// is dropped from recipient lists on the next write, with a notice";
/// group rotation without re-running `kluis share`): Alice's agent shares
/// a folder with Dave and group `ops` (Bob, Carol). An administrator
/// disables Dave, Bob leaves `ops` (the key rotates) and the new key is
/// certified. After a directory refresh nothing is written until Alice
/// writes a file: then the folder metadata drops Dave and moves `ops` to
/// the new key, the new file is unreadable to Dave and to Bob's old group
/// key and readable to Carol, and the pair's status and the activity log
/// carry the notices. Offline, the agent keeps syncing with what it has.
async fn running_agent_follows_the_directory(backend: Backend) {
    let Some(tb) = util::start(backend, util::test_settings()).await else {
        return;
    };
    let org = OrgSigningKey::init(&tb.dir.path().join("org.key")).unwrap();
    let root = tempfile::tempdir().unwrap();
    let alice = user(&tb, &org, "alice", root.path()).await;
    let bob = user(&tb, &org, "bob", root.path()).await;
    let carol = user(&tb, &org, "carol", root.path()).await;
    let dave = user(&tb, &org, "dave", root.path()).await;
    share::groups::create(&alice.client, &alice.id, "ops", &mut rng())
        .await
        .unwrap();
    for who in [&bob.email, &carol.email] {
        share::groups::add_member(&alice.client, &alice.id, "ops", who, None, &mut rng())
            .await
            .unwrap();
    }
    let ops = GroupName::parse("ops").unwrap();
    admin::certify_group(tb.store(), &org, &ops, None, tb.now())
        .await
        .unwrap();

    // Alice's agent syncs Plans.
    let (a_plain, a_mirror, agent) = agent_syncing(&alice, "Plans");
    let h = agent.handle();
    fs::write(a_plain.join("a.txt"), "before").unwrap();
    let alice_keys = alice.keys();
    wait_until("Alice's agent to encrypt a.txt", || {
        a_mirror.join(".kluis-folder").is_file()
            && share::open_folder(&a_mirror, alice_keys).is_ok_and(|m| {
                m.name_cipher()
                    .encrypt_path("a.txt", true)
                    .is_ok_and(|c| a_mirror.join(c).is_file())
            })
    });
    let me = Me {
        email: alice.email.clone(),
        title: "Plans".into(),
    };
    let d = share::resolve::resolve(&alice.client, &dave.email)
        .await
        .unwrap();
    let g1 = share::resolve::resolve(&alice.client, "group:ops")
        .await
        .unwrap();
    share::share_folder(
        &a_mirror,
        alice.keys(),
        &me,
        &[d.member, g1.member.clone()],
        None,
        &mut |_| {},
        &mut rng(),
    )
    .unwrap();
    let bob_old_group_keys = share::groups::my_group_keys(&bob.client, &bob.id, &bob.email)
        .await
        .unwrap();
    assert_eq!(bob_old_group_keys.len(), 1);

    // The agent asks the broker's directory (Alice's signed-in account).
    let dir = kluis_agent::BrokerDirectory::new(
        AccountClient::new(alice.client.config().clone()).unwrap(),
        alice.email.clone(),
    )
    .unwrap();
    h.set_directory(std::sync::Arc::new(dir));
    let refresh = |h: &kluis_agent::AgentHandle| {
        let h = h.clone();
        // Blocking: off this async test's worker threads, which serve the
        // broker.
        std::thread::spawn(move || h.refresh_directory())
            .join()
            .unwrap()
    };
    refresh(&h).unwrap();
    assert_eq!(
        h.status().directory.unwrap().departed,
        Vec::<String>::new(),
        "nobody has left yet"
    );

    // Dave is deprovisioned; Bob leaves `ops`, whose key rotates and is
    // certified.
    let it = kluis_audit::Actor::admin("it-ops").unwrap();
    admin::disable_user(
        tb.store(),
        &Email::parse(&dave.email).unwrap(),
        &it,
        tb.now(),
    )
    .await
    .unwrap();
    share::groups::remove_member(&alice.client, &alice.id, "ops", &bob.email, &mut rng())
        .await
        .unwrap();
    admin::certify_group(tb.store(), &org, &ops, None, tb.now())
        .await
        .unwrap();
    refresh(&h).unwrap();
    assert_eq!(
        h.status().directory.unwrap().departed,
        vec![dave.email.clone()]
    );
    // Learned, but nothing written yet: the metadata still names Dave.
    let before = share::list_folder(&a_mirror, alice.keys()).unwrap();
    assert!(before.members.iter().any(|m| m.who == dave.email));

    // Alice's next write.
    fs::write(a_plain.join("b.txt"), "after").unwrap();
    let b_cipher = || {
        share::open_folder(&a_mirror, alice_keys)
            .ok()
            .and_then(|m| m.name_cipher().encrypt_path("b.txt", true).ok())
            .map(|c| a_mirror.join(c))
            .filter(|p| p.is_file())
    };
    wait_until("Alice's agent to encrypt b.txt", || b_cipher().is_some());
    let after = share::list_folder(&a_mirror, alice.keys()).unwrap();
    let whos: Vec<&str> = after.members.iter().map(|m| m.who.as_str()).collect();
    assert_eq!(
        whos,
        vec![alice.email.as_str(), "group:ops"],
        "Dave dropped"
    );
    assert!(after.epoch > before.epoch);
    let g2 = share::resolve::resolve(&alice.client, "group:ops")
        .await
        .unwrap();
    assert_ne!(g2.member.recipient, g1.member.recipient, "the key rotated");
    let g2_fp = g2.member.recipient.fingerprint().to_string();
    assert_eq!(after.members[1].fingerprint, g2_fp, "ops on its new key");
    let b = b_cipher().unwrap();
    assert_eq!(opens(&b, &[&alice.id]).unwrap(), "after");
    assert!(matches!(
        opens(&b, &[&dave.id]),
        Err(kluis_format::Error::NoMatchingRecipient)
    ));
    let bob_old: Vec<&Identity> = std::iter::once(&bob.id)
        .chain(&bob_old_group_keys)
        .collect();
    assert!(matches!(
        opens(&b, &bob_old),
        Err(kluis_format::Error::NoMatchingRecipient)
    ));
    let carol_keys = share::groups::my_group_keys(&carol.client, &carol.id, &carol.email)
        .await
        .unwrap();
    let carol_all: Vec<&Identity> = std::iter::once(&carol.id).chain(&carol_keys).collect();
    assert_eq!(opens(&b, &carol_all).unwrap(), "after");
    // The notices: in the pair's status and the activity log.
    wait_until("the notices in the status", || {
        h.status().pairs[0].notices.len() == 2
    });
    let notices = h.status().pairs[0].notices.clone();
    assert!(
        notices[0].contains(&dave.email) && notices[0].contains("left"),
        "{notices:?}"
    );
    assert!(
        notices[1].contains("group:ops") && notices[1].contains(&g2_fp),
        "{notices:?}"
    );
    let actions: Vec<String> = h
        .activity(100)
        .into_iter()
        .map(|a| a.action.to_string())
        .collect();
    assert!(
        actions.iter().any(|a| a == "member_departed"),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a == "member_key_moved"),
        "{actions:?}"
    );

    // Offline (nothing listens where the broker was): the refresh fails and
    // says so; syncing goes on with what the agent learned before.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut offline = alice.client.config().clone();
    offline.broker_url = format!("http://{}", gone.local_addr().unwrap());
    drop(gone);
    h.set_directory(std::sync::Arc::new(
        kluis_agent::BrokerDirectory::new(AccountClient::new(offline).unwrap(), &alice.email)
            .unwrap(),
    ));
    let err = refresh(&h).unwrap_err();
    assert!(
        matches!(err, kluis_agent::AgentError::Directory(_)),
        "{err}"
    );
    let st = h.status().directory.unwrap();
    assert!(st.error.is_some(), "{st:?}");
    assert_eq!(st.departed, vec![dave.email.clone()], "the last view stays");
    fs::write(a_plain.join("c.txt"), "offline").unwrap();
    let c_cipher = || {
        share::open_folder(&a_mirror, alice_keys)
            .ok()
            .and_then(|m| m.name_cipher().encrypt_path("c.txt", true).ok())
            .map(|c| a_mirror.join(c))
            .filter(|p| p.is_file())
    };
    wait_until("Alice's agent to encrypt c.txt offline", || {
        c_cipher().is_some()
    });
    assert_eq!(opens(&c_cipher().unwrap(), &carol_all).unwrap(), "offline");
    assert!(matches!(
        opens(&c_cipher().unwrap(), &[&dave.id]),
        Err(kluis_format::Error::NoMatchingRecipient)
    ));
    h.shutdown();
    agent.wait();
    tb.shutdown().await;
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn alice_bob_carol_share_end_to_end() {
        super::alice_bob_carol(super::Backend::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn running_agent_drops_departed_and_follows_group_rotation() {
        super::running_agent_follows_the_directory(super::Backend::Sqlite).await
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn alice_bob_carol_share_end_to_end() {
        super::alice_bob_carol(super::Backend::Postgres).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn running_agent_drops_departed_and_follows_group_rotation() {
        super::running_agent_follows_the_directory(super::Backend::Postgres).await
    }
}
