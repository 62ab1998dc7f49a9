//! Issue 18.2 benchmark: the memory and per-check cost of the in-memory
//! rate limiter at one million distinct keys, against the unbounded
//! fixed-window map it replaced. Run by `bench/ratelimit-memory.sh`:
//!
//! ```sh
//! cargo run --release -p kluis-broker --example ratelimit_memory
//! ```
//!
//! Each measurement runs in a fresh child process (this program calls
//! itself with the case's name), so one case's freed memory does not hide
//! the next one's growth.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Instant;

use kluis_broker::config::Limits;
use kluis_broker::ratelimit::RateLimiter;

const KEYS: u32 = 1_000_000;
const NOW: i64 = 1_900_000_000;

/// Resident set size of this process, from `/proc/self/status` (KiB).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

/// The limiter of `[limits] login_per_ip` at the defaults.
fn bounded() {
    let l = Limits::default();
    let limiter = RateLimiter::new(l.login_per_ip, l.limiter_capacity);
    let before = rss_kib();
    let start = Instant::now();
    for i in 0..KEYS {
        std::hint::black_box(limiter.check(ip(i), NOW));
    }
    let fill = start.elapsed();
    let grown = rss_kib().saturating_sub(before);
    // A key already held: the common case for a real client.
    let start = Instant::now();
    for i in 0..KEYS {
        std::hint::black_box(limiter.check(ip(KEYS - 1 - (i % 1000)), NOW + 3600));
    }
    let hit = start.elapsed();
    println!(
        "bounded (now):   {KEYS} keys offered, {} kept (cap {}), RSS +{:.1} MiB, \
         {:.0} ns per check with a new key (evicting), {:.0} ns per check with a held key",
        limiter.len(),
        l.limiter_capacity,
        grown as f64 / 1024.0,
        fill.as_nanos() as f64 / f64::from(KEYS),
        hit.as_nanos() as f64 / f64::from(KEYS),
    );
}

/// The map the broker used before issue 18.2: `HashMap<String, (window
/// start, count)>` keyed by the address as text, pruned only of entries
/// from past windows (all of these are in the current one).
fn unbounded() {
    let mut map: HashMap<String, (i64, u32)> = HashMap::new();
    let before = rss_kib();
    let start = Instant::now();
    for i in 0..KEYS {
        let e = map.entry(ip(i).to_string()).or_insert((NOW, 0));
        e.1 += 1;
    }
    let fill = start.elapsed();
    let grown = rss_kib().saturating_sub(before);
    println!(
        "unbounded (before): {KEYS} keys offered, {} kept, RSS +{:.1} MiB, {:.0} ns per check with a new key",
        map.len(),
        grown as f64 / 1024.0,
        fill.as_nanos() as f64 / f64::from(KEYS),
    );
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("bounded") => bounded(),
        Some("unbounded") => unbounded(),
        _ => {
            let me = std::env::current_exe().expect("own path");
            for case in ["bounded", "unbounded"] {
                let status = Command::new(&me).arg(case).status().expect("run a case");
                assert!(status.success(), "case {case} failed");
            }
        }
    }
}
