//! Administrator operations, run by `kluis-broker admin …` directly against
//! the store (there is no admin HTTP API).

use kluis_types::{Email, InviteToken, OrgCertificate, PublicKeyString};
use sha2::{Digest, Sha256};

use crate::org::OrgSigningKey;
use crate::store::{Store, StoreError};

/// Admin failures.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No account has that address.
    #[error("no user with e-mail {0}")]
    NoSuchUser(Email),
    /// The key the administrator expected is not the one on file.
    #[error("the key on file for {email} (fingerprint {actual}) is not the expected one")]
    KeyMismatch {
        /// The user.
        email: Email,
        /// Fingerprint of the key on file.
        actual: kluis_types::Fingerprint,
    },
    /// The key changed between reading and certifying.
    #[error("the key of {0} changed while certifying; retry")]
    Raced(Email),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates a single-use invite valid for `ttl_secs`, optionally bound to
/// one address. Only its SHA-256 is stored.
pub async fn create_invite(
    store: &dyn Store,
    now: i64,
    ttl_secs: i64,
    email: Option<&Email>,
) -> Result<InviteToken, StoreError> {
    let token = InviteToken::from_random_bytes(&crate::api::random_32());
    let hash: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
    store
        .create_invite(&hash, email, now, now + ttl_secs)
        .await?;
    Ok(token)
}

/// Signs the (e-mail, key) binding on file and stores the certificate.
/// With `expected`, refuses unless that exact key is on file — the
/// administrator should compare the fingerprint with the user out of band.
pub async fn certify(
    store: &dyn Store,
    key: &OrgSigningKey,
    email: &Email,
    expected: Option<&PublicKeyString>,
    now: i64,
) -> Result<OrgCertificate, AdminError> {
    let user = store
        .user_by_email(email)
        .await?
        .ok_or_else(|| AdminError::NoSuchUser(email.clone()))?;
    if let Some(expected) = expected
        && expected != &user.public_key
    {
        return Err(AdminError::KeyMismatch {
            email: email.clone(),
            actual: user.public_key.fingerprint(),
        });
    }
    let cert = key.certify(&user.email, &user.public_key, now);
    if !store.set_certificate(&cert).await? {
        return Err(AdminError::Raced(email.clone()));
    }
    Ok(cert)
}
