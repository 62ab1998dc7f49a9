//! Integration tests of the Kluis format: official vectors, frozen vectors,
//! round trips, tampering, identities and header-only re-sharing.
#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

mod batch;
mod c2sp;
mod frozen;
mod padding;
mod roundtrip;
mod tamper;
mod util;
