//! The test kit of Kluis's integration tests (issue 19): a live broker on
//! loopback over SQLite or PostgreSQL ([`broker`]) and a throw-away
//! organisation PKI for tests that serve over TLS ([`pki`]).
//!
//! Owns: test fixtures only. It is `publish = false` and may only ever be
//! a **dev-dependency**: it links the whole broker, which no client
//! crate's normal build may do. Its helpers panic on a failed setup (a
//! failed setup is a failed test).
#![forbid(unsafe_code)]

pub mod broker;
pub mod pki;
