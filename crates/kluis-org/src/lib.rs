//! The organisation signing key (Ed25519) and certificates over
//! (e-mail, public key) bindings.
//!
//! The secret key lives in a file the administrator controls and may keep
//! offline; the broker process never needs it to serve requests.
//!
//! This crate owns that key file and what the key signs. It is its own crate
//! so that the `kluis` client can sign with the org key (`kluis admin
//! recovery publish`) without linking the broker's server code; it must not
//! depend on `kluis-broker`, a server framework or a database.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use kluis_types::{Email, OrgCertificate, OrgPublicKey, PublicKeyString, SignatureBytes};
use rand::rngs::OsRng;
use zeroize::Zeroizing;

const SECRET_PREFIX: &str = "kluis-org-secret-ed25519:";

/// Failures handling the org key.
#[derive(Debug, thiserror::Error)]
pub enum OrgKeyError {
    /// Reading or writing the key file failed.
    #[error("org key file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an org secret key.
    #[error("org key file {path} is malformed")]
    Malformed {
        /// The file.
        path: PathBuf,
    },
}

/// The organisation's secret signing key. No `Debug`; zeroized on drop by
/// `ed25519-dalek`.
pub struct OrgSigningKey(SigningKey);

impl OrgSigningKey {
    /// Generates a key and writes it to a new 0600 file (never overwrites).
    pub fn init(path: &Path) -> Result<Self, OrgKeyError> {
        let io = |source| OrgKeyError::Io {
            path: path.to_owned(),
            source,
        };
        let key = SigningKey::generate(&mut OsRng);
        let mut text = Zeroizing::new(String::from(SECRET_PREFIX));
        URL_SAFE_NO_PAD.encode_string(key.to_bytes(), &mut text);
        text.push('\n');
        let mut file = create_private(path).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self(key))
    }

    /// Reads a key written by [`OrgSigningKey::init`].
    pub fn load(path: &Path) -> Result<Self, OrgKeyError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| OrgKeyError::Io {
                    path: path.to_owned(),
                    source,
                })?,
            );
        let malformed = || OrgKeyError::Malformed {
            path: path.to_owned(),
        };
        let b64 = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(malformed)?;
        let mut raw = Zeroizing::new([0u8; 33]);
        match URL_SAFE_NO_PAD.decode_slice(b64.as_bytes(), &mut raw[..]) {
            Ok(32) => {}
            _ => return Err(malformed()),
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&raw[..32]);
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// The public half, as pinned by clients.
    pub fn public_key(&self) -> OrgPublicKey {
        OrgPublicKey::from_bytes(self.0.verifying_key().to_bytes())
    }

    /// Signs arbitrary domain-separated bytes (policy versions, the
    /// recovery key, audit checkpoints): the callers build the messages
    /// with the `kluis_types::*_message` functions.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// Signs one (e-mail, key) binding.
    pub fn certify(&self, email: &Email, key: &PublicKeyString, issued_at: i64) -> OrgCertificate {
        let message = kluis_types::certificate_message(email, key, issued_at);
        let signature = self.0.sign(&message);
        OrgCertificate {
            email: email.clone(),
            public_key: key.clone(),
            issued_at,
            signature: SignatureBytes::new(signature.to_bytes().to_vec()),
        }
    }
}

/// Creates a new file readable only by its owner (0600 on Unix); fails if
/// it exists.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

impl kluis_audit::CheckpointSigner for OrgSigningKey {
    fn sign_checkpoint(&self, message: &[u8]) -> [u8; 64] {
        self.sign(message)
    }
}

impl OrgSigningKey {
    /// Signs one (group name, key) binding.
    pub fn certify_group(
        &self,
        name: &kluis_types::GroupName,
        key: &PublicKeyString,
        issued_at: i64,
    ) -> kluis_types::GroupCertificate {
        let message = kluis_types::group_certificate_message(name, key, issued_at);
        kluis_types::GroupCertificate {
            name: name.clone(),
            public_key: key.clone(),
            issued_at,
            signature: SignatureBytes::new(self.0.sign(&message).to_bytes().to_vec()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed test should panic")]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, VerifyingKey};

    #[test]
    fn init_load_and_sign() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("org.key");
        let a = OrgSigningKey::init(&path).unwrap();
        assert!(OrgSigningKey::init(&path).is_err(), "must never overwrite");
        let b = OrgSigningKey::load(&path).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        let email = Email::parse("a@example.org").unwrap();
        let key = PublicKeyString::parse("kluis1xyz").unwrap();
        let cert = b.certify(&email, &key, 5);
        let vk = VerifyingKey::from_bytes(&a.public_key().to_bytes()).unwrap();
        let sig = Signature::from_slice(cert.signature.as_bytes()).unwrap();
        vk.verify_strict(&cert.message(), &sig).unwrap();
    }
}
