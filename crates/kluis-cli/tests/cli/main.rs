//! End-to-end tests of the `kluis` binary.
#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

mod account;
mod crypt;
#[path = "../../../../tests/support/pki.rs"]
mod pki;
mod recovery;
mod start;
mod util;
