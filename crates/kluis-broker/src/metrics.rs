//! Prometheus text exposition, hand-rolled: a few counters need no crate.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Broker counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    /// Successful logins.
    pub logins_ok: AtomicU64,
    /// Failed login finishes.
    pub logins_failed: AtomicU64,
    /// Completed registrations.
    pub registrations: AtomicU64,
    /// Requests refused by a rate limit.
    pub rate_limited: AtomicU64,
}

impl Metrics {
    /// Counts one request by method, route template and status.
    pub fn record(&self, method: &str, route: &str, status: u16) {
        let mut map = match self.requests.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        *map.entry((method.to_owned(), route.to_owned(), status))
            .or_insert(0) += 1;
    }

    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Renders the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP kluis_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE kluis_http_requests_total counter\n");
        {
            let map = match self.requests.lock() {
                Ok(m) => m,
                Err(p) => p.into_inner(),
            };
            for ((method, route, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "kluis_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    route.replace('\\', "\\\\").replace('"', "\\\"")
                );
            }
        }
        for (name, help, c) in [
            (
                "kluis_logins_ok_total",
                "Successful logins.",
                &self.logins_ok,
            ),
            (
                "kluis_logins_failed_total",
                "Failed login finishes.",
                &self.logins_failed,
            ),
            (
                "kluis_registrations_total",
                "Completed registrations.",
                &self.registrations,
            ),
            (
                "kluis_rate_limited_total",
                "Requests refused by a rate limit.",
                &self.rate_limited,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Ordering::Relaxed)
            );
        }
        out
    }
}
