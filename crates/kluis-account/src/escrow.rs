//! Sealing the secret identity for escrow.
//!
//! key   = HKDF-SHA256(salt = "kluis escrow v1", ikm = OPAQUE export key,
//!                     info = "kluis escrow key\0" || e-mail)
//! blob  = 0x01 || nonce (24) || XChaCha20-Poly1305(key, nonce, identity,
//!                                                   aad = "kluis escrow v1\0" || e-mail)

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use kluis_types::{Email, EncryptedEscrow};
use rand::RngCore as _;
use rand::rngs::OsRng;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{AccountError, ExportKey, SecretIdentity};

const VERSION: u8 = 1;
const SALT: &[u8] = b"kluis escrow v1";
const NONCE_LEN: usize = 24;

fn cipher(export_key: &ExportKey, email: &Email) -> Result<XChaCha20Poly1305, AccountError> {
    let hk = Hkdf::<Sha256>::new(Some(SALT), &export_key.0[..]);
    let mut info = b"kluis escrow key\0".to_vec();
    info.extend_from_slice(email.as_str().as_bytes());
    let mut key = Zeroizing::new([0u8; 32]);
    hk.expand(&info, &mut key[..])
        .map_err(|_| AccountError::Protocol("HKDF expand"))?;
    Ok(XChaCha20Poly1305::new((&*key).into()))
}

fn aad(email: &Email) -> Vec<u8> {
    let mut aad = b"kluis escrow v1\0".to_vec();
    aad.extend_from_slice(email.as_str().as_bytes());
    aad
}

/// Seals `identity` for `email` under a key derived from the export key.
pub fn seal_identity(
    export_key: &ExportKey,
    email: &Email,
    identity: &[u8],
) -> Result<EncryptedEscrow, AccountError> {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let ct = cipher(export_key, email)?
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: identity,
                aad: &aad(email),
            },
        )
        .map_err(|_| AccountError::Protocol("AEAD seal"))?;
    let mut blob = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    blob.push(VERSION);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&ct);
    Ok(EncryptedEscrow::new(blob))
}

/// Opens a blob made by [`seal_identity`]. Every failure is
/// [`AccountError::EscrowUnseal`].
pub fn unseal_identity(
    export_key: &ExportKey,
    email: &Email,
    blob: &EncryptedEscrow,
) -> Result<SecretIdentity, AccountError> {
    let bytes = blob.as_bytes();
    if bytes.len() < 1 + NONCE_LEN || bytes[0] != VERSION {
        return Err(AccountError::EscrowUnseal);
    }
    let (nonce, ct) = bytes[1..].split_at(NONCE_LEN);
    let pt = cipher(export_key, email)?
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: &aad(email),
            },
        )
        .map_err(|_| AccountError::EscrowUnseal)?;
    Ok(SecretIdentity::new(pt))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;

    #[test]
    fn seal_unseal_round_trip_and_failures_are_opaque() {
        let k = ExportKey::from_bytes([7u8; 64]);
        let email = Email::parse("a@example.org").unwrap();
        let blob = seal_identity(&k, &email, b"secret identity").unwrap();
        assert!(!blob.as_bytes().windows(6).any(|w| w == b"secret"));
        assert_eq!(
            unseal_identity(&k, &email, &blob).unwrap().expose(),
            b"secret identity"
        );
        let other = ExportKey::from_bytes([8u8; 64]);
        assert!(matches!(
            unseal_identity(&other, &email, &blob),
            Err(AccountError::EscrowUnseal)
        ));
        let mallory = Email::parse("m@example.org").unwrap();
        assert!(matches!(
            unseal_identity(&k, &mallory, &blob),
            Err(AccountError::EscrowUnseal)
        ));
        let mut tampered = blob.into_bytes();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            unseal_identity(&k, &email, &EncryptedEscrow::new(tampered)),
            Err(AccountError::EscrowUnseal)
        ));
        assert!(matches!(
            unseal_identity(&k, &email, &EncryptedEscrow::new(vec![1, 2])),
            Err(AccountError::EscrowUnseal)
        ));
    }
}
