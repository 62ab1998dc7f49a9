//! Integration tests of the Kluis format: official vectors (the raw C2SP
//! ones run as unit tests in src/payload/c2sp.rs), frozen vectors,
//! round trips, the chunk-level API, tampering, identities and header-only re-sharing.
#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

mod batch;
mod chunks;
mod frozen;
mod padding;
mod roundtrip;
mod tamper;
mod util;
