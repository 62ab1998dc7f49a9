//! Issue 18.2, rate limits that stop guessing without locking out victims.
//!
//! * `an_attacker_over_its_limit_cannot_lock_the_victim_out`: a real
//!   `kluis-broker serve`; the attacker hammers the victim's account from
//!   127.0.0.2 (and then from eight addresses), the victim logs in from
//!   127.0.0.1. Before: every refused attempt still charged the account, so
//!   the victim got 429.
//! * `no_double_burst_at_a_window_edge`: fixed windows let the limit through
//!   at second 59 and again at second 60; the token bucket lets only the
//!   burst through.
//! * `two_instances_share_the_account_ceiling` and
//!   `two_instances_share_the_backoff`: two brokers on one database.
//!   Before: counters per instance, N instances = N times the limit.
//!
//! Bounded memory is `tests/limiter_memory.rs` (its own process, so that
//! its RSS is its own).

use std::net::IpAddr;

use kluis_broker::Broker;
use kluis_broker::config::{Limits, Settings};
use kluis_broker::opaque::OprfSeed;
use kluis_broker::org::OrgSigningKey;
use kluis_broker::ratelimit::Limit;
use kluis_broker::ratelimit::account::Backoff;
use kluis_broker::server::RunningServer;
use serde_json::json;

use crate::flood::{account, device, serve_with};
use crate::util::{Backend, start, test_settings, unique};

/// One `POST /v1/login/start` for `email`; the connection comes from
/// `from` (a loopback address) and carries `X-Forwarded-For: xff` if given.
/// Returns the status.
async fn login_start(base: &str, email: &str, from: Option<IpAddr>, xff: Option<&str>) -> u16 {
    let mut client = reqwest::Client::builder();
    if let Some(ip) = from {
        client = client.local_address(ip);
    }
    let body =
        json!({"email": email, "credential_request": super::credential_request()}).to_string();
    let mut req = client
        .build()
        .unwrap()
        .post(format!("{base}/v1/login/start"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.unwrap().status().as_u16()
}

/// The attacker is over its per-address limit and keeps going, then
/// spreads over eight addresses until the account's ceiling is spent: the
/// victim, from the address it always logs in from, still logs in at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attacker_over_its_limit_cannot_lock_the_victim_out() {
    let lots = "{ max = 100000, window_secs = 60 }";
    let served = serve_with(
        &format!(
            "login_per_ip = {{ max = 5, window_secs = 3600 }}\n\
             login_per_account = {{ max = 10, window_secs = 3600 }}\n\
             register_per_ip = {lots}\nregister_per_account = {lots}"
        ),
        "",
    );
    let base = format!("http://{}", served.addr);
    let org = OrgSigningKey::init(&served.dir.path().join("org.key")).unwrap();
    // Registering logs the victim in from 127.0.0.1.
    let (email, password) = account(&served, &org).await;

    let attacker: IpAddr = [127, 0, 0, 2].into();
    let mut passed = 0;
    for _ in 0..100 {
        if login_start(&base, &email, Some(attacker), None).await == 200 {
            passed += 1;
        }
    }
    assert_eq!(passed, 5, "the attacker's address is held to its limit");
    let (victim, _state) = device(&served, &org);
    victim
        .login(&email, &password)
        .await
        .expect("the victim logs in while one address hammers the account");

    // Eight addresses, each until refused: the ceiling (10) is spent.
    let mut passed = 0;
    for last in 3..=10u8 {
        for _ in 0..20 {
            if login_start(&base, &email, Some([127, 0, 0, last].into()), None).await == 200 {
                passed += 1;
            }
        }
    }
    assert!(passed <= 10, "the account's ceiling held: {passed}");
    let (victim, _state) = device(&served, &org);
    victim
        .login(&email, &password)
        .await
        .expect("the victim's usual address is exempt from the spent ceiling");
}

/// Ten login starts at second 59 of a minute and ten more at second 60,
/// with `{ max = 10, window_secs = 60 }` per address and per account.
async fn no_double_burst_at_a_window_edge(backend: Backend) {
    let edge = Limit {
        max: 10,
        window_secs: 60,
    };
    let settings = Settings {
        limits: Limits {
            login_per_ip: edge,
            login_per_account: edge,
            ..test_settings().limits
        },
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..test_settings()
    };
    let Some(tb) = start(backend, settings).await else {
        return;
    };
    let to_59 = 59 - tb.now().rem_euclid(60);
    tb.clock.advance(to_59);

    // Per address: one address, a new account each time.
    let mut passed = 0;
    for second in [59, 60] {
        for _ in 0..10 {
            let email = format!("{}@example.org", unique("edge"));
            if login_start(&tb.url, &email, None, Some("198.51.100.7")).await == 200 {
                passed += 1;
            }
        }
        if second == 59 {
            tb.clock.advance(1);
        }
    }
    assert_eq!(passed, 10, "per address: only the burst around the edge");

    // Per account: one account, a new address each time.
    tb.clock.advance(59);
    let email = format!("{}@example.org", unique("edge"));
    let mut passed = 0;
    for second in [59, 60] {
        for i in 0..10 {
            let ip = format!("203.0.113.{}", (second - 59) * 10 + i);
            if login_start(&tb.url, &email, None, Some(&ip)).await == 200 {
                passed += 1;
            }
        }
        if second == 59 {
            tb.clock.advance(1);
        }
    }
    assert_eq!(passed, 10, "per account: only the burst around the edge");
    // One token comes back every 6 s.
    tb.clock.advance(6);
    assert_eq!(
        login_start(&tb.url, &email, None, Some("192.0.2.1")).await,
        200
    );
    assert_eq!(
        login_start(&tb.url, &email, None, Some("192.0.2.2")).await,
        429
    );
    tb.shutdown().await;
}

/// A second broker on the same database, with its own address and seed
/// (login starts only need the store).
async fn second_instance(
    tb: &crate::util::TestBroker,
    settings: Settings,
) -> (RunningServer, String) {
    let b = Broker::from_parts(
        tb.second_store().await,
        OprfSeed::generate(),
        settings,
        tb.clock.clone(),
    );
    let server = b.spawn("127.0.0.1:0".parse().unwrap(), None).await.unwrap();
    let url = format!("http://{}", server.local_addr);
    (server, url)
}

fn proxied(limits: Limits) -> Settings {
    Settings {
        limits,
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ..test_settings()
    }
}

/// The ceiling of 6 per account is one for both instances: three
/// addresses spend it through A, and B refuses the next address.
async fn two_instances_share_the_account_ceiling(backend: Backend) {
    let limits = Limits {
        login_per_account: Limit {
            max: 6,
            window_secs: 3600,
        },
        ..test_settings().limits
    };
    let Some(tb) = start(backend, proxied(limits)).await else {
        return;
    };
    let (b, url_b) = second_instance(&tb, proxied(limits)).await;
    let email = format!("{}@example.org", unique("shared"));
    for i in 0..6 {
        let ip = format!("198.51.100.{i}");
        assert_eq!(login_start(&tb.url, &email, None, Some(&ip)).await, 200);
    }
    for i in 6..12 {
        let ip = format!("198.51.100.{i}");
        assert_eq!(
            login_start(&url_b, &email, None, Some(&ip)).await,
            429,
            "instance B let a guess past the shared ceiling"
        );
    }
    b.shutdown().await;
    tb.shutdown().await;
}

/// Five failures from one address through A: the sixth attempt, through
/// B, must wait; after the wait B lets one through, and the next wait
/// (doubled) holds on A.
async fn two_instances_share_the_backoff(backend: Backend) {
    let limits = Limits {
        login_backoff: Backoff::default(),
        ..test_settings().limits
    };
    let Some(tb) = start(backend, proxied(limits)).await else {
        return;
    };
    let (b, url_b) = second_instance(&tb, proxied(limits)).await;
    let email = format!("{}@example.org", unique("backoff"));
    let from = Some("198.51.100.9");
    for _ in 0..5 {
        assert_eq!(login_start(&tb.url, &email, None, from).await, 200);
    }
    assert_eq!(login_start(&url_b, &email, None, from).await, 429);
    assert_eq!(
        login_start(&url_b, &email, None, Some("198.51.100.10")).await,
        200,
        "another address is not delayed"
    );
    tb.clock.advance(1);
    assert_eq!(login_start(&url_b, &email, None, from).await, 200);
    tb.clock.advance(1);
    assert_eq!(login_start(&tb.url, &email, None, from).await, 429);
    tb.clock.advance(1);
    assert_eq!(login_start(&tb.url, &email, None, from).await, 200);
    b.shutdown().await;
    tb.shutdown().await;
}

/// The throttling rows of a database expire and are deleted.
async fn expired_throttle_rows_are_pruned(backend: Backend) {
    let Some(tb) = start(backend, test_settings()).await else {
        return;
    };
    for _ in 0..3 {
        let email = format!("{}@example.org", unique("prune"));
        assert_eq!(login_start(&tb.url, &email, None, None).await, 200);
    }
    let store = tb.store();
    assert_eq!(store.prune_login_throttle(tb.now()).await.unwrap(), 0);
    // Past `forget_secs` of the backoff (and the refilled ceiling).
    let later = tb.now() + 3600 + 1;
    assert!(store.prune_login_throttle(later).await.unwrap() >= 6);
    tb.shutdown().await;
}

crate::on_both_backends!(
    no_double_burst_at_a_window_edge,
    two_instances_share_the_account_ceiling,
    two_instances_share_the_backoff,
    expired_throttle_rows_are_pruned,
);
