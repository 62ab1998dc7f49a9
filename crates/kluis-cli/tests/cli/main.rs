//! End-to-end tests of the `kluis` binary.
#![allow(clippy::unwrap_used, reason = "a failing unwrap is a failing test")]

mod account;
mod crypt;
use kluis_testkit::pki;
mod recovery;
mod start;
mod util;
