//! Client side of the Kluis broker, as a library (no printing).
//!
//! * OPAQUE (RFC 9807) registration and login: the password never leaves
//!   this process; the Argon2id parameters are enforced here, by the client
//!   ([`KsfPolicy`]).
//! * Escrow: the caller's secret identity (opaque bytes) is sealed with
//!   XChaCha20-Poly1305 under a key derived (HKDF-SHA256) from the OPAQUE
//!   export key, so the broker only ever holds ciphertext.
//! * Sessions persist in a 0600 file in the client's state directory.
//! * Directory lookups are checked against the organisation key the client
//!   pinned from its invite or configuration, and each colleague's key is
//!   pinned on first use ([`pins`]); a changed key is a hard error.
//!
//! Public keys are opaque `kluis…` strings here: this crate does not link
//! the file-format crate, and must not depend on it, on the sync engine, on
//! the agent, or on the broker (which it only talks to over HTTP).
#![forbid(unsafe_code)]

mod admin;
mod client;
mod directory;
mod error;
mod escrow;
mod groups;
mod http;
mod ksf;
pub mod pins;
mod policy;
mod recovery_cancel;
mod secret;
mod session;

pub use admin::AdminClient;
pub use client::{
    AccountClient, ClientConfig, LoginOutcome, PasswordChanged, RecoverySealer, RecoveryTicket,
    Registration,
};
pub use directory::{
    DirectorySearch, PinStatus, RejectedEntry, RejectionReason, VerifiedContact, verify_entry,
};
pub use error::AccountError;
pub use escrow::{seal_identity, unseal_identity};
pub use groups::{VerifiedGroup, verify_group};
pub use ksf::{KSF_MAX_M_COST_KIB, KSF_MAX_P_COST, KSF_MAX_T_COST, KsfPolicy};
pub use policy::{
    POLICY_PIN_FILE, PolicyPin, check_password_strength, verify_policy, verify_recovery_key,
};
pub use secret::{ExportKey, Password, SecretIdentity};
pub use session::StoredSession;

pub use kluis_types::{
    Invite, InviteToken, OrgPolicy, OrgPublicKey, RECOVERY_NOTICE, RecoveryKeyInfo, RecoveryState,
    RecoveryStatus, UserStatus, WhoAmI,
};
