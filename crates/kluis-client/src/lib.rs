//! What a person does with Kluis on this device — the one client API that
//! the `kluis` command line and the tray app call, so that both faces
//! behave alike: set up (sync folders found here, a local identity, the
//! folder pairs: [`folders`]), this device's broker account ([`account`]:
//! register, log in, change or undo the password, log out, recovery
//! enrolment), the verified directory, sharing and groups ([`share`]).
//!
//! It owns no daemon: it builds on `kluis-agent` (the home, the
//! configuration, the keys a running agent holds) and on `kluis-account`
//! for the broker. Dependencies point one way, `kluis-format` <-
//! `kluis-sync` <- `kluis-agent` <- `kluis-client` <- the faces: this crate
//! must never depend on a face (`kluis-cli`, `kluis-tray`) nor on the
//! broker server; nothing here prints.
#![forbid(unsafe_code)]

pub mod account;
mod detect;
mod error;
mod error_code;
pub mod folders;
pub mod share;

pub use detect::{SuggestedPair, SyncFolderCandidate, detect_sync_folders, suggest_pair};
pub use error::Error;
pub use error_code::ErrorCode;
/// The broker client types a face names (an invite, the client itself).
pub use kluis_account::{AccountClient, AccountError, Invite};

/// The random number generator for the client's operations: the operating
/// system's, failing loudly rather than silently weak.
pub fn rng() -> impl rand_core::CryptoRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}
