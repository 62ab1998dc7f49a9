//! Recipients come only from the organisation's directory: each key is
//! checked against the org signing key and the trust-on-first-use pin
//! (kluis-account does both) and must parse as a Kluis recipient. A key that
//! fails either check is refused with the reason, never used.

use kluis_account::{AccountClient, AccountError, PinStatus};
use kluis_format::Recipient;

use super::Member;

/// Why a recipient was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The directory lookup or its verification failed (uncertified key,
    /// certificate not by the org key, key differs from the pin, unknown
    /// address, broker unreachable). The message says which.
    #[error("cannot share with {who}: {source}")]
    Account {
        /// Who was asked for.
        who: String,
        /// Cause.
        #[source]
        source: AccountError,
    },
    /// The colleague has left: an administrator disabled the account and
    /// revoked the key. New files are never encrypted to it.
    #[error(
        "cannot share with {0}: they have left the organisation (account disabled, key revoked)"
    )]
    Left(String),
    /// The certified key is not a Kluis public key.
    #[error("cannot share with {0}: the directory key is not a Kluis public key")]
    NotAKluisKey(String),
}

/// A member whose key passed verification.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The member, ready for [`super::share_folder`].
    pub member: Member,
    /// Fingerprint of the key, to compare out of band.
    pub fingerprint: String,
    /// Whether the key was pinned just now (first use) or matched the pin.
    pub newly_pinned: bool,
}

/// Resolve `who` (`bob@example.org` or `group:finance`) through the
/// verified directory.
pub async fn resolve(client: &AccountClient, who: &str) -> Result<Verified, ResolveError> {
    let acc = |source| ResolveError::Account {
        who: who.to_owned(),
        source,
    };
    if let Some(name) = who.strip_prefix("group:") {
        let g = client.resolve_group(name).await.map_err(acc)?;
        let recipient: Recipient = g
            .public_key
            .as_str()
            .parse()
            .map_err(|_| ResolveError::NotAKluisKey(who.to_owned()))?;
        return Ok(Verified {
            member: Member::group(name, recipient),
            fingerprint: g.fingerprint.to_string(),
            newly_pinned: g.pin == PinStatus::NewlyPinned,
        });
    }
    let c = client.resolve_recipient(who).await.map_err(acc)?;
    if client.colleague_status(who).await.map_err(acc)? == Some(kluis_types::UserStatus::Revoked) {
        return Err(ResolveError::Left(who.to_owned()));
    }
    let recipient: Recipient = c
        .public_key
        .as_str()
        .parse()
        .map_err(|_| ResolveError::NotAKluisKey(who.to_owned()))?;
    Ok(Verified {
        member: Member::user(c.email.as_str(), recipient),
        fingerprint: c.fingerprint.to_string(),
        newly_pinned: c.pin == PinStatus::NewlyPinned,
    })
}
