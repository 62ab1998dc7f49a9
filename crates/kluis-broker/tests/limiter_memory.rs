//! Issue 18.2, bounded memory: one million distinct keys into an in-memory
//! rate limiter keep it at its capacity, and the process's resident memory
//! grows by at most [`BOUND_MIB`]. Before, the limiter kept every key of
//! the current window: 1M keys took +112 MiB (bench/results/
//! 2026-12-07-ratelimit-memory.txt). Its own test binary, so that the RSS
//! measured is this test's alone.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::net::{IpAddr, Ipv6Addr};

use kluis_broker::config::Limits;
use kluis_broker::ratelimit::{DEFAULT_CAPACITY, RateLimiter, network};

/// The stated bound on growth for 1M keys at the default capacity (the
/// measured figure is in docs/BROKER.md).
const BOUND_MIB: u64 = 32;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_million_distinct_keys_stay_within_the_cap() {
    let limits = Limits::default();
    assert_eq!(limits.limiter_capacity, DEFAULT_CAPACITY);
    let limiter = RateLimiter::new(limits.login_per_ip, limits.limiter_capacity);
    let before = rss_kib();
    for i in 0..1_000_000u64 {
        // Distinct IPv6 /64s: the widest key an attacker controls.
        let ip = IpAddr::V6(Ipv6Addr::from(u128::from(i) << 64 | 0xdead));
        assert!(limiter.check(network(ip), 1_900_000_000));
    }
    assert_eq!(limiter.len(), DEFAULT_CAPACITY);
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    eprintln!("1M keys: {} kept, RSS +{grown_mib} MiB", limiter.len());
    assert!(
        grown_mib <= BOUND_MIB,
        "RSS grew by {grown_mib} MiB for 1M keys (bound {BOUND_MIB} MiB)"
    );
}
