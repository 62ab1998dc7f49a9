//! One share for both faces (issue 19): `kluis share` and the tray's share
//! dialog both call `share::change_folder_members`, which asks the
//! directory first. A member who left (disabled on the broker) is dropped
//! before the new member is added, whichever runtime drives the broker
//! calls: the CLI's own current-thread runtime or, as in the tray, a handle
//! to a multi-thread runtime used from a blocking thread.

use kluis_broker::admin;
use kluis_broker::org::OrgSigningKey;
use kluis_client::share::{
    self, Broker, ChangeMembers, Me, Progress, Runtime, ShareEvents, ShareReport,
};
use kluis_types::Email;

use super::util::{self, Backend};
use super::{rng, user};

/// What a face would show.
#[derive(Default)]
struct Seen {
    notices: Vec<String>,
    progress: usize,
    reports: usize,
}

impl ShareEvents for Seen {
    fn notice(&mut self, notice: &share::ShareNotice) {
        self.notices.push(notice.to_string());
    }
    fn progress(&mut self, _: &Progress) {
        self.progress += 1;
    }
    fn report(&mut self, _: &ShareReport) {
        self.reports += 1;
    }
}

/// Which runtime drives the broker calls, as each face does.
#[derive(Clone, Copy)]
enum Face {
    /// `kluis share`: a current-thread runtime of its own.
    Cli,
    /// The tray's `apply_share`: its multi-thread runtime, from a blocking
    /// thread.
    Tray,
}

async fn departed_member_is_dropped_before_sharing(backend: Backend, face: Face) {
    let Some(tb) = util::start(backend, util::test_settings()).await else {
        return;
    };
    let org = OrgSigningKey::init(&tb.dir.path().join("org.key")).unwrap();
    let root = tempfile::tempdir().unwrap();
    let alice = user(&tb, &org, "alice", root.path()).await;
    let bob = user(&tb, &org, "bob", root.path()).await;
    let dave = user(&tb, &org, "dave", root.path()).await;
    let mirror = alice.sync().join("Projects");
    let me = Me {
        email: alice.email.clone(),
        title: "Projects".into(),
    };
    assert!(share::init_folder(&mirror, &alice.id, &me, &mut rng()).unwrap());
    let dave_member = share::resolve::resolve(&alice.client, &dave.email)
        .await
        .unwrap()
        .member;
    share::share_folder(
        &mirror,
        alice.keys(),
        &me,
        &[dave_member],
        None,
        &mut |_| {},
        &mut rng(),
    )
    .unwrap();
    let bob_member = share::resolve::resolve(&alice.client, &bob.email)
        .await
        .unwrap()
        .member;
    // Dave leaves the organisation.
    admin::disable_user(
        tb.store(),
        &Email::parse(&dave.email).unwrap(),
        &kluis_audit::Actor::admin("it-ops").unwrap(),
        tb.now(),
    )
    .await
    .unwrap();

    let handle = tokio::runtime::Handle::current();
    let (done, seen) = std::thread::scope(|s| {
        s.spawn(|| {
            let own = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let runtime = match face {
                Face::Cli => Runtime::Own(&own),
                Face::Tray => Runtime::Handle(&handle),
            };
            let broker = Broker {
                client: &alice.client,
                me: &alice.email,
                runtime,
            };
            let mut seen = Seen::default();
            let add = [bob_member];
            let done = share::change_folder_members(
                broker,
                alice.keys(),
                &mirror,
                &me,
                ChangeMembers {
                    add: &add,
                    ..ChangeMembers::default()
                },
                None,
                &mut seen,
                &mut rng(),
            )
            .unwrap();
            (done, seen)
        })
        .join()
        .unwrap()
    });

    assert_eq!(done.dropped, vec![dave.email.clone()]);
    assert!(done.shared.is_some() && done.unshared.is_none());
    assert_eq!(seen.reports, 1);
    assert!(
        seen.notices
            .iter()
            .any(|n| n.contains(&dave.email) && n.contains("has left the organisation")),
        "{:?}",
        seen.notices
    );
    let meta = share::open_folder(&mirror, alice.keys()).unwrap();
    let mut members: Vec<String> = meta.members.iter().map(|m| m.display()).collect();
    members.sort();
    let mut want = vec![alice.email.clone(), bob.email.clone()];
    want.sort();
    assert_eq!(members, want, "Dave is no longer a member");
    assert!(
        !meta.recipients().iter().any(|r| r == dave.id.recipient()),
        "new files are not encrypted to Dave"
    );
    tb.shutdown().await;
}

mod sqlite {
    use super::{Face, departed_member_is_dropped_before_sharing};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cli_share_drops_a_departed_member_first() {
        departed_member_is_dropped_before_sharing(super::Backend::Sqlite, Face::Cli).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_tray_share_drops_a_departed_member_first() {
        departed_member_is_dropped_before_sharing(super::Backend::Sqlite, Face::Tray).await
    }
}
