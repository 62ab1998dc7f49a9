//! Wire types shared by the Kluis broker (`kluis-broker`) and its clients
//! (`kluis-account`).
//!
//! Everything here is plain data: serde structs for requests and responses,
//! validated string newtypes (e-mail, display name, IDs) and opaque byte
//! newtypes that travel as base64. Opaque blobs are typed
//! ([`EncryptedEscrow`], [`OpaqueMessage`]) so that a server function that
//! accepts only an `EncryptedEscrow` cannot be handed plaintext by mistake.
//! Bearer secrets ([`SessionToken`], [`InviteToken`]) zeroize on drop and
//! never print their contents through `Debug`.
//!
//! It depends on no other Kluis crate and must not: both sides of the wire
//! link it, the broker included, so it must never pull in the file format,
//! the sync engine or a server framework.
#![forbid(unsafe_code)]

mod api;
mod bytes;
mod cert;
mod error;
mod group;
mod ids;
mod invite;
mod policy;
mod recovery;
#[cfg(feature = "openapi")]
mod schema;
mod secret;
mod text;
mod version;

pub use api::*;
pub use bytes::{EncryptedEscrow, EncryptedGroupSecret, OpaqueMessage, SignatureBytes};
pub use cert::{Fingerprint, OrgCertificate, OrgPublicKey, PublicKeyString, certificate_message};
pub use error::{ErrorBody, ErrorCode};
pub use group::*;
pub use ids::{DisplayName, Email, LoginId, RequestId, SessionId, UserId};
pub use invite::Invite;
pub use policy::{Label, LabelRule, OrgPolicy, PolicyViolation, Sensitivity};
pub use recovery::*;
pub use secret::{AdminToken, InviteToken, RecoveryToken, SessionToken};
pub use text::{display_text_problem, is_bidi_or_separator};
pub use version::{MAX_VERSION, VersionNumber, deserialize_version, version_in_range};

/// Why a value could not be parsed into one of the validated wire types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The value is not a valid instance of the named type.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which type was being parsed.
        what: &'static str,
        /// Why it was rejected (never contains the value of a secret).
        reason: &'static str,
    },
}

pub(crate) fn invalid(what: &'static str, reason: &'static str) -> ParseError {
    ParseError::Invalid { what, reason }
}
