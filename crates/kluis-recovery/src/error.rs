//! Typed errors. Every failure that concerns one share names that share by
//! its index (the Shamir x-coordinate, 1-based) and its holder, so the admin
//! tool can say precisely whose file is wrong.

use kluis_approvals::{ApprovalError, KeyFingerprint};

/// Which part of a share file contradicts the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TamperedPart {
    /// The share value does not match the commitment the other files hold
    /// for it, and the combined key is wrong.
    Value,
    /// The file's list of commitments disagrees with genuine shares.
    Commitments,
}

impl std::fmt::Display for TamperedPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TamperedPart::Value => "its share value was replaced",
            TamperedPart::Commitments => "its commitments to the other shares were altered",
        })
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// Parameters given to [`crate::init`] or a seal function are unusable.
    #[error("invalid parameters: {0}")]
    BadParameters(&'static str),
    /// Key-derivation parameters below the minimum (64 MiB, 3 passes).
    #[error("share file uses weak key-derivation parameters ({0}); refusing it")]
    WeakKdf(&'static str),
    /// The bytes are not a Kluis share file.
    #[error("not a Kluis recovery share file")]
    NotAShareFile,
    /// A share file of a version this build does not know.
    #[error("unsupported share file version {0}; a newer Kluis may read it")]
    UnsupportedShareVersion(u8),
    /// A share file breaks a rule of RECOVERY.md §3.
    #[error("malformed share file: {0}")]
    MalformedShare(&'static str),
    /// The share's AEAD did not open: wrong password, or the file was
    /// altered by someone without the password. (The two cannot be told
    /// apart, by design.)
    #[error("share {index} ({holder}) did not open: wrong password, or the file was altered")]
    ShareUnreadable {
        /// The share index.
        index: u8,
        /// Who holds it.
        holder: String,
    },
    /// Fewer distinct shares than the threshold.
    #[error("{have} share(s) given; {need} are needed to rebuild the recovery key")]
    NotEnoughShares {
        /// Distinct shares given.
        have: usize,
        /// The threshold.
        need: usize,
    },
    /// The same share index was given twice.
    #[error("share {index} was given more than once")]
    DuplicateShare {
        /// The repeated index.
        index: u8,
    },
    /// A share belongs to another recovery setup (another `init`).
    #[error("share {index} ({holder}) belongs to a different recovery key setup")]
    MixedShareSets {
        /// The index of the odd share.
        index: u8,
        /// Who holds it.
        holder: String,
    },
    /// A share file was altered by someone who knew its password (an
    /// insider): it contradicts the commitments in the other files.
    #[error("share {index} ({holder}) has been tampered with: {part}")]
    TamperedShare {
        /// The tampered share.
        index: u8,
        /// Who holds it.
        holder: String,
        /// What was changed.
        part: TamperedPart,
    },
    /// Every commitment agrees but the rebuilt key is not the recovery key
    /// the shares name. Only possible if every share given was forged
    /// together.
    #[error("the shares combine to a key that is not the recovery key they name")]
    CombinedKeyMismatch,
    /// The approvals do not authorise this recovery.
    #[error("approvals: {0}")]
    Approvals(#[from] ApprovalError),
    /// The request key offered is not the one the approvals name.
    #[error("the request key {actual} is not the approved request key {expected}")]
    RequestKeyMismatch {
        /// The approved fingerprint.
        expected: KeyFingerprint,
        /// The fingerprint of the key offered.
        actual: KeyFingerprint,
    },
    /// The escrow copy is not sealed to this recovery key.
    #[error("this escrow copy is not sealed to the organisation recovery key")]
    EscrowNotForThisKey,
    /// The escrow copy is for another user than the one being recovered.
    #[error("the escrow copy belongs to {found}, not to {expected}")]
    EscrowForAnotherUser {
        /// The user being recovered.
        expected: String,
        /// The user named inside the escrow.
        found: String,
    },
    /// The escrow copy holds a key other than the user's certified key
    /// (someone sealed a key of their choosing to the recovery key).
    #[error("the escrow copy holds a key other than the user's certified key")]
    EscrowKeyMismatch,
    /// The recovery package is not sealed to this request key.
    #[error("this recovery package was sealed to a different request key")]
    WrongRequestKey,
    /// The recovery package answers another request (id or user).
    #[error("this recovery package answers a different request ({0})")]
    PackageForAnotherRequest(&'static str),
    /// A decrypted escrow copy or package breaks its format rule.
    #[error("malformed {what}: {reason}")]
    MalformedPayload {
        /// `escrow copy` or `recovery package`.
        what: &'static str,
        /// The rule broken.
        reason: &'static str,
    },
    /// The Kluis file format layer failed.
    #[error("kluis format: {0}")]
    Format(#[source] kluis_format::Error),
}

/// Result alias for this crate.
pub type Result<T, E = RecoveryError> = std::result::Result<T, E>;
