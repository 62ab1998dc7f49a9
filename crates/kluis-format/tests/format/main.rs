//! Integration tests of the Kluis format: official vectors, frozen vectors,
//! round trips, tampering, identities and header-only re-sharing.

mod c2sp;
mod frozen;
mod roundtrip;
mod tamper;
mod util;
