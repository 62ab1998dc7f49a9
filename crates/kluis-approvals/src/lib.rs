//! Signed approvals for organisation key recovery.
//!
//! A user who lost their password asks for recovery; their client makes a
//! one-time *request key* and shows its fingerprint. Administrators then
//! approve the request by signing an [`ApprovalStatement`] with their own
//! Ed25519 key. Recovery may proceed only when [`verify_approvals`] accepts
//! at least `threshold` approvals, each by a *distinct* known administrator,
//! each over exactly the same request.
//!
//! Both the broker (which collects approvals) and the admin machine (which
//! combines the Shamir shares and must not trust the broker to have counted
//! correctly) run this check. The crate therefore depends on neither the file
//! format nor any storage, and performs no I/O: time is passed in.
//!
//! The signed bytes are defined by [`ApprovalStatement::message`] and
//! described in `docs/RECOVERY.md` §4.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod keys;
mod statement;

pub use keys::{AdminPublicKey, AdminSigningKey, KeyFingerprint, SignatureBytes};
pub use statement::{
    Approval, ApprovalStatement, MAX_REQUEST_ID_LEN, MAX_USER_LEN, RecoveryRequest,
    VerifiedApprovals, verify_approvals,
};

/// Everything that can make an approval, or a set of approvals, unacceptable.
///
/// Variants that concern one approval carry its position in the list given to
/// [`verify_approvals`] and, where known, the administrator's key, so a broker
/// or CLI can say exactly which approval is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// A field of a request or statement breaks its syntax rule.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A key, fingerprint or signature in text form could not be parsed.
    #[error("cannot parse {what}: {reason}")]
    Parse {
        /// What was being parsed.
        what: &'static str,
        /// Why it failed.
        reason: &'static str,
    },
    /// The threshold is zero or larger than the number of administrators.
    #[error("threshold {threshold} is impossible with {admins} administrator key(s)")]
    BadThreshold {
        /// The requested threshold.
        threshold: usize,
        /// How many distinct administrator keys were given.
        admins: usize,
    },
    /// The approval is signed by a key that is not an administrator's.
    #[error("approval #{index} is signed by {admin}, which is not an administrator key")]
    UnknownAdmin {
        /// Position in the list.
        index: usize,
        /// The signer.
        admin: AdminPublicKey,
    },
    /// The approval's signature does not verify.
    #[error("approval #{index} by {admin} has an invalid signature")]
    BadSignature {
        /// Position in the list.
        index: usize,
        /// The claimed signer.
        admin: AdminPublicKey,
    },
    /// The approval is about another request, user or request key.
    #[error("approval #{index} by {admin} is for a different {field}")]
    WrongRequest {
        /// Position in the list.
        index: usize,
        /// The signer.
        admin: AdminPublicKey,
        /// `request id`, `user` or `request key fingerprint`.
        field: &'static str,
    },
    /// The approval is dated before the request was made.
    #[error("approval #{index} by {admin} is dated before the request was made")]
    ApprovedBeforeRequest {
        /// Position in the list.
        index: usize,
        /// The signer.
        admin: AdminPublicKey,
    },
    /// One administrator approved more than once.
    #[error("administrator {admin} approved more than once (approvals #{first} and #{second})")]
    DoubleApproval {
        /// The administrator.
        admin: AdminPublicKey,
        /// Position of the first approval.
        first: usize,
        /// Position of the repeated approval.
        second: usize,
    },
    /// Fewer distinct valid approvals than the threshold.
    #[error("{have} approval(s) from distinct administrators; {need} are required")]
    NotEnoughApprovals {
        /// Valid approvals from distinct administrators.
        have: usize,
        /// The threshold.
        need: usize,
    },
}

pub(crate) fn invalid(field: &'static str, reason: &'static str) -> ApprovalError {
    ApprovalError::Invalid { field, reason }
}

pub(crate) fn parse_error(what: &'static str, reason: &'static str) -> ApprovalError {
    ApprovalError::Parse { what, reason }
}
