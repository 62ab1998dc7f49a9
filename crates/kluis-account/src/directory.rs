//! Verifying directory answers against the pinned organisation key.

use ed25519_dalek::{Signature, VerifyingKey};
use kluis_types::{
    DirectoryEntry, DisplayName, Email, Fingerprint, OrgPublicKey, PublicKeyString, UserStatus,
};

use crate::AccountError;

/// Whether a verified key was pinned just now or matched an earlier pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinStatus {
    /// First time seen: pinned now.
    NewlyPinned,
    /// Matches the key pinned earlier.
    Matches,
}

/// A colleague whose key the org certified and that matches our pin.
#[derive(Debug, Clone)]
pub struct VerifiedContact {
    /// Their address.
    pub email: Email,
    /// Their name.
    pub display_name: DisplayName,
    /// Their public key text (opaque `kluis…` string).
    pub public_key: PublicKeyString,
    /// Fingerprint to compare out of band.
    pub fingerprint: Fingerprint,
    /// When the org signed the binding (Unix seconds).
    pub certified_at: i64,
    /// Pin state.
    pub pin: PinStatus,
    /// `Revoked` once an administrator disabled the colleague: show them as
    /// "left" and do not encrypt new files to this key.
    pub status: UserStatus,
}

/// Why a directory entry was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectionReason {
    /// No certificate.
    Uncertified,
    /// Certificate does not verify under the pinned org key or does not
    /// match the entry.
    BadCertificate,
    /// Certified, but differs from the key pinned on first use.
    KeyChanged {
        /// Fingerprint pinned earlier.
        pinned: Fingerprint,
    },
}

/// A refused entry, reported so the caller can warn loudly.
#[derive(Debug, Clone)]
pub struct RejectedEntry {
    /// The address the broker claimed.
    pub email: Email,
    /// Fingerprint of the key the broker presented.
    pub presented: Fingerprint,
    /// Why it was refused.
    pub reason: RejectionReason,
}

/// Result of a prefix search.
#[derive(Debug, Clone, Default)]
pub struct DirectorySearch {
    /// Usable contacts.
    pub contacts: Vec<VerifiedContact>,
    /// Entries refused (uncertified, forged, or changed keys).
    pub rejected: Vec<RejectedEntry>,
}

/// Checks that `entry` carries a certificate by `org` over exactly its
/// (e-mail, public key). Returns the certification time.
pub fn verify_entry(org: &OrgPublicKey, entry: &DirectoryEntry) -> Result<i64, AccountError> {
    let cert = entry
        .certificate
        .as_ref()
        .ok_or_else(|| AccountError::Uncertified(entry.email.clone()))?;
    let bad = || AccountError::BadCertificate(entry.email.clone());
    if cert.email != entry.email || cert.public_key != entry.public_key {
        return Err(bad());
    }
    let key = VerifyingKey::from_bytes(&org.to_bytes()).map_err(|_| bad())?;
    let sig = Signature::from_slice(cert.signature.as_bytes()).map_err(|_| bad())?;
    key.verify_strict(&cert.message(), &sig)
        .map_err(|_| bad())?;
    Ok(cert.issued_at)
}
