//! Errors of the account client. The CLI turns these into sentences.

use std::path::PathBuf;

use kluis_types::{Email, ErrorCode, Fingerprint, KsfParams};

/// Everything that can go wrong talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// An argument did not validate (e-mail, key text, URL…).
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which argument.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The broker URL is plain HTTP to a host that is not loopback.
    #[error("refusing plain HTTP to {0}: use https:// (http:// is only for loopback)")]
    InsecureUrl(String),
    /// Network or HTTP failure.
    #[error("cannot reach the broker")]
    Http(#[from] reqwest::Error),
    /// The broker answered with an error.
    #[error("broker refused the request ({status}, {code:?}): {message}")]
    Broker {
        /// HTTP status.
        status: u16,
        /// Machine-readable code.
        code: ErrorCode,
        /// The broker's explanation.
        message: String,
    },
    /// Wrong password or unknown account (deliberately indistinguishable).
    #[error("login failed: wrong e-mail or password")]
    LoginFailed,
    /// The broker asked for Argon2id parameters outside this client's policy.
    #[error(
        "refusing key-stretching parameters {params:?} (below this client's minimum or absurdly large)"
    )]
    KsfRejected {
        /// What the broker announced.
        params: KsfParams,
    },
    /// The broker asked for Argon2id parameters above this client's caps
    /// ([`crate::KSF_MAX_M_COST_KIB`], [`crate::KSF_MAX_T_COST`],
    /// [`crate::KSF_MAX_P_COST`]): refused before anything is allocated, so a
    /// hostile broker cannot make the device spend gigabytes or minutes.
    #[error(
        "refusing key-stretching parameters {params:?}: more than this client accepts \
         (at most 1 GiB of memory, 10 passes, 16 lanes)"
    )]
    KsfTooCostly {
        /// What the broker announced.
        params: KsfParams,
    },
    /// The OPAQUE protocol failed in a way that is not a wrong password.
    #[error("OPAQUE protocol error: {0}")]
    Protocol(&'static str),
    /// The escrow blob did not decrypt (wrong key or tampered); one opaque
    /// variant for every AEAD failure.
    #[error("the escrowed identity could not be unsealed")]
    EscrowUnseal,
    /// No session is stored; log in first.
    #[error("not logged in")]
    NotLoggedIn,
    /// Undo asked for, but the password was never changed: there is no
    /// earlier password and escrow version to return to.
    #[error("there is no earlier password to return to (the password was never changed)")]
    NothingToUndo,
    /// A state file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A state file is corrupt.
    #[error("corrupt state file {path}")]
    CorruptState {
        /// The file.
        path: PathBuf,
    },
    /// A group's key was refused: not certified by the organisation key, or
    /// different from the key pinned on first use.
    #[error("the key of group {group} is refused: {reason}")]
    GroupRefused {
        /// The group.
        group: String,
        /// Why, in words.
        reason: String,
    },
    /// No directory entry for that address.
    #[error("no colleague with e-mail {0} in the directory")]
    NotFound(Email),
    /// The directory entry has no certificate from the pinned org key.
    #[error("the key of {0} is not certified by your organisation: refusing it")]
    Uncertified(Email),
    /// The certificate does not verify, or covers a different (e-mail, key).
    #[error(
        "the certificate for {0} does not match the pinned organisation key or the entry: refusing it"
    )]
    BadCertificate(Email),
    /// The organisation policy the broker served is not acceptable.
    #[error("the organisation policy from the broker was refused: {0}")]
    BadPolicy(&'static str),
    /// The broker served an older policy than this client has seen.
    #[error(
        "the broker served policy version {served}, older than version {seen} seen before: refusing it (rollback)"
    )]
    PolicyRollback {
        /// Highest version seen.
        seen: i64,
        /// Version served now.
        served: i64,
    },
    /// The broker served a policy older than the one the invite was made
    /// under — the unsigned built-in default, say, when a signed policy
    /// exists.
    #[error(
        "the broker served policy version {served}, older than version {invite} named in your \
         invite: refusing it (the broker is misconfigured or hostile; tell your administrator)"
    )]
    PolicyBelowInvite {
        /// The invite's `min_policy_version`.
        invite: i64,
        /// Version served now.
        served: i64,
    },
    /// The recovery key is not certified by the pinned org key.
    #[error(
        "the organisation recovery key from the broker is not certified by your organisation's key"
    )]
    BadRecoveryKey,
    /// The recovery key differs from the one pinned at enrolment.
    #[error(
        "WARNING: the organisation recovery key CHANGED (pinned {pinned}, now {presented}); ask your administrator"
    )]
    RecoveryKeyChanged {
        /// Pinned fingerprint.
        pinned: Fingerprint,
        /// Presented fingerprint.
        presented: Fingerprint,
    },
    /// The new password is too weak for the organisation policy.
    #[error(
        "the password is too weak for your organisation (strength {score} of 4, at least {required} required){hint}"
    )]
    WeakPassword {
        /// zxcvbn score.
        score: u8,
        /// Policy minimum.
        required: u8,
        /// zxcvbn's suggestion, with a leading separator, or empty.
        hint: String,
    },
    /// The policy makes recovery enrolment mandatory but no recovery key is
    /// published or no way to seal to it was given.
    #[error("your organisation requires recovery enrolment, but {0}")]
    RecoveryEnrolment(&'static str),
    /// The account was disabled by an administrator.
    #[error("this account has been disabled by an administrator")]
    AccountDisabled,
    /// The colleague's key differs from the one pinned on first use.
    #[error(
        "WARNING: the key of {email} CHANGED (pinned fingerprint {pinned}, now {presented}). \
         Compare fingerprints out of band before accepting the new key"
    )]
    KeyChanged {
        /// The colleague.
        email: Email,
        /// Fingerprint pinned earlier.
        pinned: Fingerprint,
        /// Fingerprint the directory presents now.
        presented: Fingerprint,
    },
}

impl AccountError {
    /// The broker's error code, when the broker refused the request.
    pub fn broker_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<kluis_types::ParseError> for AccountError {
    fn from(err: kluis_types::ParseError) -> Self {
        match err {
            kluis_types::ParseError::Invalid { what, reason } => Self::InvalidInput {
                what,
                reason: reason.to_owned(),
            },
        }
    }
}
